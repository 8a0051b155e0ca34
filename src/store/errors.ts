/**
 * The one error type of the store layer. Every failure that touches the disk comes out as a
 * `StoreError` with a machine-readable `code`, whether a retry can help, and the original cause.
 */

/** Machine-readable kinds of store failures. */
export type StoreErrorCode =
  /** An id (run, phase, task, owner) is off the allow-list. */
  | 'invalid_id'
  /** A file name (`map.core.3.json`, `prompt.md`) is off the allow-list. */
  | 'invalid_name'
  /** A caller passed something unusable (bad option, record for another run, unserializable value). */
  | 'invalid_argument'
  /** No run directory with that id under the store root. */
  | 'unknown_run'
  /** A file the caller asked for does not exist. */
  | 'not_found'
  /** A path would leave its root (lexically or through a symlink). */
  | 'path_escape'
  /** A file carries a `schemaVersion` this code does not understand. */
  | 'bad_version'
  /** A file exists but is not what it should be (unparseable JSON, wrong shape, mismatched name). */
  | 'corrupt'
  /** A file is larger than the reader is willing to hold in memory. */
  | 'too_large'
  /** Another live process owns the run. */
  | 'lease_held'
  /** This process owned the run but lost the lease; it must stop writing. */
  | 'lease_lost'
  /** Something that must be new already exists (e.g. a run id). */
  | 'exists'
  /** The object was closed. */
  | 'closed'
  /** Any other I/O failure; see `cause`. */
  | 'io';

/** Options of the StoreError constructor. */
export interface StoreErrorOptions {
  /** Whether trying the same call again later could succeed. Defaults by code (see `isRetryableCode`). */
  retryable?: boolean;
  /** The underlying error, usually a Node `ErrnoException`. */
  cause?: unknown;
}

/** Node error codes after which a retry can reasonably succeed. */
const RETRYABLE_ERRNO = new Set(['EAGAIN', 'EBUSY', 'EMFILE', 'ENFILE', 'EINTR', 'ETIMEDOUT', 'ENOSPC', 'EDQUOT']);

/** Default `retryable` for a code: a held lease frees up; I/O may be transient; the rest will not change. */
export function isRetryableCode(code: StoreErrorCode, cause?: unknown): boolean {
  if (code === 'lease_held') return true;
  if (code === 'io') return RETRYABLE_ERRNO.has(errnoCode(cause) ?? '');
  return false;
}

/** A store failure: typed (`code`), with whether a retry can help (`retryable`) and the `cause`. */
export class StoreError extends Error {
  /** What went wrong, for programs. */
  readonly code: StoreErrorCode;
  /** Whether the same call could succeed later without anyone fixing anything. */
  readonly retryable: boolean;

  /**
   * @param code what went wrong
   * @param message a sentence naming the object; `store: ` is prefixed when missing
   */
  constructor(code: StoreErrorCode, message: string, options: StoreErrorOptions = {}) {
    super(message.startsWith('store: ') ? message : `store: ${message}`, { cause: options.cause });
    this.name = 'StoreError';
    this.code = code;
    this.retryable = options.retryable ?? isRetryableCode(code, options.cause);
  }
}

/** True when `err` is a StoreError, optionally of the given code. */
export function isStoreError(err: unknown, code?: StoreErrorCode): err is StoreError {
  return err instanceof StoreError && (code === undefined || err.code === code);
}

/** The `code` of a Node system error (`ENOENT`, `EEXIST`…), or undefined. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/**
 * Wraps a Node I/O error as StoreError 'io' (unless it already is a StoreError), naming what was
 * being done: `ioError('writing agent record', file, err)`.
 */
export function ioError(doing: string, file: string, cause: unknown): StoreError {
  if (cause instanceof StoreError) return cause;
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new StoreError('io', `${doing} ${file} failed: ${detail}`, { cause });
}

/**
 * Quotes a value for an error message: strings in single quotes with control characters escaped
 * and long values shortened, anything else described by type.
 */
export function quote(value: unknown, max = 80): string {
  if (typeof value !== 'string') {
    if (value === null) return 'null';
    if (typeof value === 'object') return Array.isArray(value) ? 'an array' : 'an object';
    return `${typeof value} ${String(value)}`;
  }
  // Why: ids arrive from disk and from hosts; a NUL or newline must show up in the message, not
  // break the log line it lands in.
  const escaped = value.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => {
    const hex = c.charCodeAt(0).toString(16).padStart(4, '0');
    return `\\u${hex}`;
  });
  const short = escaped.length > max ? `${escaped.slice(0, max)}…(${value.length} chars)` : escaped;
  return `'${short}'`;
}
