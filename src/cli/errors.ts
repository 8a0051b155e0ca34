/**
 * How the CLI turns errors into words and exit codes: 2 for anything the user can fix in the
 * call (bad usage, a bad spec, an unknown or malformed run id, a run another owner holds), 1 for
 * everything else.
 */
import { SpecError } from '../spec/types.js';
import { StoreError } from '../store/index.js';
import { SearchError } from '../search/index.js';

/** A mistake in the command line itself. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

// `lease_held`: another live owner has the run — the same answer `resume` gives when its own check
// sees the live owner first, so two racing resumes get one exit code whichever check refuses them.
const USER_STORE_CODES = new Set(['invalid_id', 'unknown_run', 'path_escape', 'lease_held']);

/** Exit code for an error that reached the top. */
export function exitCodeFor(e: unknown): number {
  if (e instanceof UsageError || e instanceof SpecError) return 2;
  if (e instanceof StoreError && USER_STORE_CODES.has(e.code)) return 2;
  if (e instanceof SearchError && !e.retryable) return 2;
  return 1;
}

/** The words of an error, without a leading `fanfold: `. */
export function errorMessage(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.replace(/^fanfold: /, '');
}

/** Prints an error for a person, on stderr. */
export function printError(e: unknown): void {
  process.stderr.write(`fanfold: ${errorMessage(e)}\n`);
  if (process.env.FANFOLD_DEBUG && e instanceof Error && e.stack) process.stderr.write(e.stack + '\n');
}
