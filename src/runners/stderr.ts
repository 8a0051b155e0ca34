/**
 * The most telling line of a child's stderr: what a failed child's cause quotes (status, report,
 * digest). The last line is often a banner (`Node.js v20.20.2`), a stack frame or the closing brace
 * of an error's properties; the line a person needs is the error itself (`Error: Cannot find
 * module 'nope'`, `ModuleNotFoundError: No module named 'x'`, `fatal: not a git repository`).
 * `fanfold show` keeps the whole tail; this picks one line of it.
 */

/** Longest line quoted in a cause. */
export const MAX_QUOTED_LINE = 300;

/**
 * Lines that never explain a failure by themselves: stack frames (JS, Python), a runtime's version
 * banner, source-location headers, the caret under a source line, lone braces, the `Require stack`
 * list and the properties Node prints after an error (`code: 'MODULE_NOT_FOUND',`).
 */
const NOISE: readonly RegExp[] = [
  /^at\s/,
  /^File ".*", line \d+/,
  /^Traceback \(most recent call last\):$/,
  /^(Node\.js|Deno|Bun) v?\d+(\.\d+)*$/,
  /^[\^~{}[\]()\s]+$/,
  /^-\s/,
  /^Require stack:$/,
  /^\S+:\d+(:\d+)?$/,
  /^[A-Za-z_$][\w$]*: (['"[{]|\d|true\b|false\b|null\b|undefined\b)/,
  /^\.\.\. \d+ (more|lines matching)/,
];

/** A line that names an error: `TypeError: …`, `Error [ERR_X]: …`, `error: …`, `fatal: …`, `panic: …`. */
const STRONG = /^(?:[\w$]+\.)*(?:[\w$]*(?:Error|Exception)(?:\s*\[[\w-]+\])?|error|fatal|panic|ERROR|FATAL)(?:\[\w+\])?:\s*\S/i;

/** A line that speaks of a failure without naming an error type. */
const WEAK = /\b(error|exception|fatal|panic|cannot|can't|could not|failed|failure|denied|not found|no such|invalid|unknown|refused|missing)\b/i;

const clipLine = (line: string): string => (line.length > MAX_QUOTED_LINE ? `${line.slice(0, MAX_QUOTED_LINE)}…` : line);

/**
 * The most telling line of `stderr`, trimmed and cut to MAX_QUOTED_LINE characters ('' when stderr
 * is blank): the last line naming an error (`SomethingError: …`, `error: …`, `fatal: …`); else the
 * last line speaking of a failure that is not a stack frame, banner or property dump; else the last
 * such line of any kind; else the last non-empty line.
 * Why the last and not the first: a chained error (Python's "During handling of the above
 * exception…", a wrapper re-throwing) ends with the one that stopped the process.
 */
export function tellingLine(stderr: string): string {
  const lines = stderr.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  if (lines.length === 0) return '';
  // A line naming an error is never noise, even when it looks like a property (`Error: 'x' …`).
  const plain = lines.filter((l) => STRONG.test(l) || !NOISE.some((re) => re.test(l)));
  const pick = findLast(plain, (l) => STRONG.test(l)) ?? findLast(plain, (l) => WEAK.test(l)) ?? plain[plain.length - 1] ?? lines[lines.length - 1]!;
  return clipLine(pick);
}

function findLast(lines: readonly string[], ok: (l: string) => boolean): string | undefined {
  for (let i = lines.length - 1; i >= 0; i--) if (ok(lines[i]!)) return lines[i];
  return undefined;
}
