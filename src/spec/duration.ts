/**
 * Durations in a spec: a string with a unit (`"500ms"`, `"90s"`, `"10m"`, `"1h"`, `"2d"`) parsed
 * by the `ms` package, or a plain number meaning seconds.
 */
import ms from 'ms';

/**
 * Longest duration accepted, 24 days. Why: Node's timers hold a signed 32-bit millisecond count
 * (about 24.8 days); a longer delay overflows and fires at once, which would turn a generous
 * timeout into an instant one.
 */
export const MAX_DURATION_MS = 24 * 24 * 60 * 60 * 1000;

/** What a duration looks like, for error messages. */
export const DURATION_HINT = "a duration like '500ms', '90s', '10m', '1h' or a number of seconds";

/**
 * Converts a spec duration to whole milliseconds. Returns a sentence saying what is wrong instead
 * when `value` is not a duration (a unit-less string is refused: `"10"` would be 10 ms to `ms` but
 * 10 s as a number, so it is ambiguous).
 */
export function parseDuration(value: unknown): number | string {
  let millis: number | undefined;
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) return `expected ${DURATION_HINT}, got ${value}`;
    millis = value * 1000;
  } else if (typeof value === 'string') {
    const text = value.trim();
    if (/^-?[\d.]+$/.test(text)) {
      return `expected ${DURATION_HINT}, got "${value}": add a unit, e.g. "${text}s"`;
    }
    if (text.length > 0 && text.length <= 100) {
      try {
        millis = ms(text as ms.StringValue);
      } catch {
        millis = undefined;
      }
    }
    if (millis === undefined || !Number.isFinite(millis) || millis < 0) {
      return `expected ${DURATION_HINT}, got ${JSON.stringify(value.slice(0, 60))}`;
    }
  } else {
    return `expected ${DURATION_HINT}, got ${value === null ? 'null' : typeof value}`;
  }
  return Math.round(millis);
}

const UNITS: ReadonlyArray<[string, number]> = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
];

/**
 * Formats milliseconds with the largest unit that divides them exactly (`90s`, `10m`, `1h`,
 * `500ms`); never rounds, unlike `ms(n)` which shows 90 s as `2m`.
 */
export function formatDuration(millis: number): string {
  if (!Number.isFinite(millis)) return String(millis);
  for (const [unit, size] of UNITS) {
    if (millis !== 0 && millis % size === 0) return `${millis / size}${unit}`;
  }
  if (millis >= 1000) return `${Math.round(millis / 100) / 10}s`;
  return `${millis}ms`;
}
