/**
 * Whole-file JSON writes that are atomic (a reader sees the old file or the new one, never a mix)
 * and JSON reads that refuse unknown schema versions loudly.
 */
import fs from 'node:fs/promises';
import { constants as C } from 'node:fs';
import writeFileAtomic from 'write-file-atomic';
import { StoreError, errnoCode, ioError } from './errors.js';

/** Default cap on a JSON file read into memory: 64 MiB. */
export const DEFAULT_MAX_JSON_BYTES = 64 * 1024 * 1024;

/** Options of writeJsonAtomic. */
export interface WriteJsonOptions {
  /** Indentation passed to JSON.stringify (default 2; 0 for compact). */
  indent?: number;
  /** fsync the temp file before the rename (default true). */
  fsync?: boolean;
}

/**
 * Serializes `value` as JSON (plus a final newline) and replaces `file` atomically with
 * writeTextAtomic. Throws StoreError 'invalid_argument' for values JSON cannot hold (cycles,
 * BigInt, undefined). Callers build `file` with safeJoin/safeJoinReal first.
 */
export async function writeJsonAtomic(file: string, value: unknown, opts: WriteJsonOptions = {}): Promise<void> {
  let text: string | undefined;
  try {
    text = JSON.stringify(value, null, opts.indent ?? 2);
  } catch (err) {
    throw new StoreError('invalid_argument', `cannot serialize JSON for ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (text === undefined) {
    throw new StoreError('invalid_argument', `cannot serialize JSON for ${file}: value is ${typeof value}`);
  }
  await writeTextAtomic(file, `${text}\n`, opts);
}

/**
 * Replaces `file` with `text` atomically: write-file-atomic writes a temp file with a unique name
 * in the same folder, fsyncs it, and renames it over `file`, removing the temp file on failure. A
 * reader sees the old content or the new, never a mix. Refuses to write through a symlink at
 * `file` (StoreError 'path_escape'); other failures are StoreError 'io'.
 */
export async function writeTextAtomic(file: string, text: string | Buffer, opts: { fsync?: boolean } = {}): Promise<void> {
  // Why: write-file-atomic resolves symlinks and writes to their target; a symlink in the store
  // must never turn an atomic replace into a write somewhere else.
  try {
    const st = await fs.lstat(file);
    if (st.isSymbolicLink()) {
      throw new StoreError('path_escape', `refusing to write ${file}: it is a symlink`);
    }
  } catch (err) {
    if (err instanceof StoreError) throw err;
    if (errnoCode(err) !== 'ENOENT') throw ioError('checking', file, err);
  }
  try {
    // Why a library and not a fixed `file.tmp`: two writers (or a crashed one) would share the temp
    // name; write-file-atomic derives a unique one from pid, thread and a counter, in the same
    // folder so the rename cannot cross filesystems.
    await writeFileAtomic(file, text, { fsync: opts.fsync ?? true });
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') {
      throw new StoreError('not_found', `cannot write ${file}: its directory does not exist`, { cause: err });
    }
    throw ioError('writing', file, err);
  }
}

/** Options of readJsonFile. */
export interface ReadJsonOptions {
  /** What the file is, for messages (`run record`, `lease`, `agent record`). */
  kind: string;
  /** When set, the file must be a JSON object whose `schemaVersion` equals this. */
  expectVersion?: number;
  /** Refuse files larger than this many bytes (default DEFAULT_MAX_JSON_BYTES). */
  maxBytes?: number;
}

/**
 * Reads and parses a JSON file. Throws StoreError:
 * - 'not_found' when the file does not exist;
 * - 'corrupt' when it is not valid JSON (or, with `expectVersion`, not a JSON object);
 * - 'bad_version' when `expectVersion` is set and `schemaVersion` differs, naming file, found and
 *   expected — a newer fanfold's file is refused, never half-understood;
 * - 'too_large' above `maxBytes`; 'path_escape' when `file` is a symlink; 'io' otherwise.
 * The result is not validated beyond that; `T` is the caller's claim.
 */
export async function readJsonFile<T>(file: string, opts: ReadJsonOptions): Promise<T> {
  const text = await readTextFile(file, opts.kind, opts.maxBytes ?? DEFAULT_MAX_JSON_BYTES);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new StoreError('corrupt', `${opts.kind} ${file} is not valid JSON (${(err as Error).message})`, { cause: err });
  }
  if (opts.expectVersion !== undefined) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new StoreError('corrupt', `${opts.kind} ${file} is not a JSON object`);
    }
    const found = (value as { schemaVersion?: unknown }).schemaVersion;
    if (found !== opts.expectVersion) {
      const shown = found === undefined ? 'none' : JSON.stringify(found);
      throw new StoreError(
        'bad_version',
        `${opts.kind} ${file} has schemaVersion ${shown}, expected ${opts.expectVersion}` +
          (typeof found === 'number' && found > opts.expectVersion ? ' (written by a newer fanfold?)' : ''),
      );
    }
  }
  return value as T;
}

/**
 * Reads a whole UTF-8 file, refusing symlinks (O_NOFOLLOW) and files over `maxBytes`.
 * Throws StoreError 'not_found', 'path_escape', 'too_large' or 'io'.
 */
export async function readTextFile(file: string, kind: string, maxBytes: number): Promise<string> {
  let fh: fs.FileHandle;
  try {
    // Why O_NOFOLLOW: the path was checked, but the last component could be swapped for a symlink
    // afterwards; refusing to follow it keeps reads inside the store.
    fh = await fs.open(file, C.O_RDONLY | C.O_NOFOLLOW);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT') throw new StoreError('not_found', `${kind} ${file} does not exist`, { cause: err });
    if (code === 'ELOOP') throw new StoreError('path_escape', `refusing to read ${kind} ${file}: it is a symlink`, { cause: err });
    throw ioError(`reading ${kind}`, file, err);
  }
  try {
    const st = await fh.stat();
    if (st.size > maxBytes) {
      throw new StoreError('too_large', `${kind} ${file} is ${st.size} bytes, more than the ${maxBytes}-byte limit`);
    }
    const buf = await fh.readFile();
    // Why check again: the file may have grown between stat and read.
    if (buf.length > maxBytes) {
      throw new StoreError('too_large', `${kind} ${file} is ${buf.length} bytes, more than the ${maxBytes}-byte limit`);
    }
    return buf.toString('utf8');
  } catch (err) {
    throw ioError(`reading ${kind}`, file, err);
  } finally {
    await fh.close().catch(() => {});
  }
}
