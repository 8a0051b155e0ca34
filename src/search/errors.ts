/**
 * The one error type of the search layer. It carries a machine-readable `code`, whether trying
 * again could help, and the cause when it wraps another failure, so the MCP and CLI layers can
 * turn it into an answer that says how to fix the call.
 */

/** Machine-readable kinds of search failures. */
export type SearchErrorCode =
  /** The query string is empty, too long, or has no searchable terms. */
  | 'bad_query'
  /** An option (limit, offset, fuzzy, status, …) is out of range or of the wrong type. */
  | 'bad_option'
  /** A ref does not have the `<runId>/<phaseId>/<taskId>` shape or an id is not allowed. */
  | 'bad_ref'
  /** The run or task a ref names has no stored agent record. */
  | 'not_found'
  /** A record handed to an index belongs to another run. */
  | 'wrong_run'
  /** Reading the store failed (I/O); another try may succeed. */
  | 'io';

/** A search-layer failure: prefixed `search:`, typed, with whether a retry can help. */
export class SearchError extends Error {
  /** What kind of failure this is. */
  readonly code: SearchErrorCode;
  /** Whether the same call could succeed later (true only for I/O failures). */
  readonly retryable: boolean;

  constructor(code: SearchErrorCode, message: string, options?: { cause?: unknown }) {
    super(`search: ${message}`, options);
    this.name = 'SearchError';
    this.code = code;
    this.retryable = code === 'io';
  }
}
