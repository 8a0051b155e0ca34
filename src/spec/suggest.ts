/**
 * Helpers for friendly messages: "did you mean …?" suggestions, bounded name lists and short
 * descriptions of values that arrived where something else was expected.
 */

/** Edit distance (insert, delete, substitute, swap of neighbours), case-insensitive. */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  if (s === t) return 0;
  // Three rolling rows are enough for the optimal-string-alignment variant.
  let prev2: number[] = [];
  let prev: number[] = Array.from({ length: t.length + 1 }, (_, j) => j);
  for (let i = 1; i <= s.length; i++) {
    const cur: number[] = [i];
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      let d = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1]) {
        d = Math.min(d, prev2[j - 2]! + 1);
      }
      cur.push(d);
    }
    prev2 = prev;
    prev = cur;
  }
  return prev[t.length]!;
}

/**
 * The candidate closest to `input`, if close enough to be a likely typo: distance at most a third
 * of the longer word (so one-letter names only match by case); ties go to the earlier candidate.
 */
export function closest(input: string, candidates: Iterable<string>): string | undefined {
  if (input.length > 200) return undefined; // junk, not a typo; keeps the cost bounded
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    if (c === input || c.length > 200) continue;
    const limit = Math.floor(Math.max(c.length, input.length) / 3);
    const d = editDistance(input, c);
    if (d <= limit && d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

/** ` (did you mean 'x'?)` when a candidate is close to `input`, else ``. */
export function didYouMean(input: string, candidates: Iterable<string>): string {
  const hit = closest(input, candidates);
  return hit === undefined ? '' : ` (did you mean '${hit}'?)`;
}

/** Truncates `text` to `max` characters, marking the cut with `…`. */
export function clip(text: string, max: number): string {
  return text.length <= max ? text : text.slice(0, Math.max(0, max - 1)) + '…';
}

/** Quotes a name for a message: `'name'`, clipped to 60 characters. */
export function quote(name: string): string {
  return `'${clip(name, 60)}'`;
}

/** A bounded list of names for a message: `'a', 'b', 'c' and 7 more`, or `(none)`. */
export function nameList(names: readonly string[], max = 10): string {
  if (names.length === 0) return '(none)';
  const shown = names.slice(0, max).map(quote).join(', ');
  return names.length > max ? `${shown} and ${names.length - max} more` : shown;
}

/**
 * A short description of a value of the wrong type: `number 3`, `string 'x'`, `boolean true`,
 * `null`, `an array`, `an object`, `nothing` (for undefined).
 */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.length === 0 ? 'an empty array' : 'an array';
  switch (typeof value) {
    case 'string':
      return value === '' ? 'an empty string' : `string ${JSON.stringify(clip(value, 60))}`;
    case 'number':
    case 'boolean':
    case 'bigint':
      return `${typeof value} ${String(value)}`;
    case 'object':
      return 'an object';
    default:
      return typeof value;
  }
}

/** A value as it arrived, for range messages: `40`, `"abc"`, or describeValue otherwise. */
export function showValue(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return JSON.stringify(clip(value, 60));
  return describeValue(value);
}
