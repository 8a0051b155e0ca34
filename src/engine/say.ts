/**
 * Small text helpers the engine shares: timestamps, durations, error text and warnings on stderr
 * (stdout may be the MCP channel of the process that hosts the engine).
 */

/** The current time as an ISO string (journal and record timestamps). */
export const now = (): string => new Date().toISOString();

/** `90s`, `10m`, `1h` style rendering of a duration. */
export function fmtMs(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${+(ms / 1000).toFixed(1)}s`;
  if (ms < 3_600_000) return `${+(ms / 60_000).toFixed(1)}m`;
  return `${+(ms / 3_600_000).toFixed(1)}h`;
}

/** The message of an error, or the thing thrown as text. */
export function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A warning for the person running the owner, on stderr. */
export function warn(msg: string): void {
  process.stderr.write(`fanfold: ${msg}\n`);
}
