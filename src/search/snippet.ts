/**
 * Snippets: a short window of an agent's output around the densest cluster of matched terms,
 * cut at word boundaries, whitespace collapsed, matches marked `**like this**`.
 */
import { TOKEN_PATTERN, indexTerms } from './analyze.js';

/** Default and largest snippet length, in characters, not counting the `**` markers. */
export const SNIPPET_CHARS = 300;

/** Marks put around each matched word. */
const MARK = '**';
/** Put where the window cuts the text. */
const ELLIPSIS = '…';
/** Longest stretch a cut end moves to reach a word boundary; longer words are cut. */
const MAX_WORD_SNAP = 40;
/**
 * Matches looked at per text: bounds the work on huge outputs full of one common term. Why 400:
 * a page of 20 hits on 50 KB outputs spent most of a query's time here at 2,000 (bench B6); the
 * densest cluster is nearly always among the first few hundred matches, and `ref` reads the rest.
 */
const MAX_MATCHES = 400;

const WORD_CHAR = /[\p{L}\p{N}\p{M}]/u;
const WHOLE_WORD = /^[\p{L}\p{N}\p{M}]+$/u;
const SPACE = /\s/;
const REGEX_SPECIAL = /[.*+?^${}()|[\]\\]/g;
/** ANSI escape sequences (colored CLI output) and other control characters: dropped from snippets. */
const CONTROL = /\x1b\[[0-9;?]*[ -/]*[@-~]|[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g;
/** Markdown bold/emphasis runs in the source: dropped so `**` in a snippet only ever marks a match. */
const STARS = /\*{2,}/g;

/** A matched word of the text: [start, end) and the indexed term it matched. */
interface Match {
  start: number;
  end: number;
  term: string;
}

/** Options of buildSnippet. */
export interface SnippetOptions {
  /** Longest snippet in characters, not counting `**` markers (default and max 300, min 40). */
  maxChars?: number;
}

function isWord(text: string, i: number): boolean {
  const c = text[i];
  return c !== undefined && WORD_CHAR.test(c);
}

function isSpace(text: string, i: number): boolean {
  const c = text[i];
  return c !== undefined && SPACE.test(c);
}

/** With more matched terms than this, scanning word by word beats one regex alternation. */
const MAX_REGEX_TERMS = 8;

/** The term `word` was indexed under that is in `termSet`, if any. */
function matchedTerm(word: string, termSet: ReadonlySet<string>): string | undefined {
  const lower = word.toLowerCase();
  if (termSet.has(lower)) return lower;
  // Only camelCase words are indexed under more than their lowercase form.
  if (lower === word) return undefined;
  return indexTerms(word)?.find((t) => termSet.has(t));
}

/**
 * Finds the words of `text` that were indexed under one of `terms` (the document terms a search
 * result reports), case-insensitively, whole words only, the way the indexer saw them. With few
 * terms a regex finds candidates that are then widened to their whole word; with many (a prefix
 * or fuzzy query) the text is scanned word by word against a set.
 */
export function findMatches(text: string, terms: Iterable<string>): Match[] {
  const termSet = new Set<string>();
  for (const t of terms) if (t.length > 0) termSet.add(t.toLowerCase());
  if (termSet.size === 0) return [];
  const out: Match[] = [];
  if (termSet.size > MAX_REGEX_TERMS) {
    const words = new RegExp(TOKEN_PATTERN.source, TOKEN_PATTERN.flags);
    let m: RegExpExecArray | null;
    while ((m = words.exec(text)) !== null && out.length < MAX_MATCHES) {
      const term = matchedTerm(m[0], termSet);
      if (term !== undefined) out.push({ start: m.index, end: m.index + m[0].length, term });
    }
    return out;
  }
  // Longest first, so that the alternation prefers `injection` over `inject`.
  const alternatives = [...termSet].sort((a, b) => b.length - a.length).map((t) => t.replace(REGEX_SPECIAL, '\\$&'));
  const scan = new RegExp(alternatives.join('|'), 'giu');
  let m: RegExpExecArray | null;
  while ((m = scan.exec(text)) !== null && out.length < MAX_MATCHES) {
    let start = m.index;
    let end = m.index + m[0].length;
    if (end === start) {
      scan.lastIndex++;
      continue;
    }
    while (start > 0 && isWord(text, start - 1)) start--;
    while (end < text.length && isWord(text, end)) end++;
    scan.lastIndex = end;
    const word = text.slice(start, end);
    // A term is made of word characters only; a candidate that is not one whole word is noise.
    if (!WHOLE_WORD.test(word)) continue;
    const term = matchedTerm(word, termSet);
    if (term !== undefined) out.push({ start, end, term });
  }
  return out;
}

/** Picks the run of matches, spanning at most `span` chars, with the most distinct terms, then the most matches. */
function densestCluster(matches: readonly Match[], span: number): { start: number; end: number; first: number; last: number } {
  let best = { score: -1, i: 0, j: 1 };
  const counts = new Map<string, number>();
  let j = 0;
  for (let i = 0; i < matches.length; i++) {
    const from = matches[i]!;
    while (j < matches.length && matches[j]!.end - from.start <= span) {
      const t = matches[j]!.term;
      counts.set(t, (counts.get(t) ?? 0) + 1);
      j++;
    }
    // Distinct terms dominate: "sql … injection" together beats five lone "sql".
    const score = counts.size * 8 + (j - i);
    if (score > best.score) best = { score, i, j };
    const t = from.term;
    const left = (counts.get(t) ?? 1) - 1;
    if (left === 0) counts.delete(t);
    else counts.set(t, left);
  }
  const first = matches[best.i]!;
  const last = matches[best.j - 1]!;
  return { start: first.start, end: last.end, first: best.i, last: best.j - 1 };
}

/** Length of text[from, to) once whitespace runs are collapsed to one space. */
function collapsedLength(text: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    if (isSpace(text, i)) {
      while (i + 1 < to && isSpace(text, i + 1)) i++;
    }
    n++;
  }
  return n;
}

/** Grows [l, r) outward, alternating sides, until `room` collapsed characters are used or the text ends. */
function expand(text: string, l: number, r: number, room: number): [number, number] {
  while (room > 0 && (l > 0 || r < text.length)) {
    if (l > 0) {
      l--;
      if (isSpace(text, l)) while (l > 0 && isSpace(text, l - 1)) l--;
      room--;
    }
    if (room > 0 && r < text.length) {
      if (isSpace(text, r)) while (r + 1 < text.length && isSpace(text, r + 1)) r++;
      r++;
      room--;
    }
  }
  return [l, r];
}

/** Cleans one stretch of text between marks: control characters and markdown `**` go. */
function clean(segment: string): string {
  return segment.replace(CONTROL, '').replace(STARS, '');
}

/**
 * Builds a snippet of `text` around the densest cluster of `terms` (a search result's matched
 * document terms). At most `maxChars` characters (300 by default) besides the `**` markers,
 * including the `…` at each side where the text was cut; cuts fall on word boundaries;
 * whitespace runs become one space. With no matching word in the text (the task matched on its
 * prompt or ids), the snippet is the start of the text.
 */
export function buildSnippet(text: string, terms: Iterable<string>, options: SnippetOptions = {}): string {
  const maxChars = Math.max(40, Math.min(SNIPPET_CHARS, Math.floor(options.maxChars ?? SNIPPET_CHARS)));
  if (text.length === 0) return '';
  const budget = maxChars - 2 * ELLIPSIS.length;
  const matches = findMatches(text, terms);

  let l = 0;
  let r = 0;
  let inWindow: Match[] = [];
  if (matches.length > 0) {
    // The cluster takes at most ~60% of the window so there is context around it.
    const cluster = densestCluster(matches, Math.floor(budget * 0.6));
    l = cluster.start;
    r = cluster.end;
    inWindow = matches.slice(cluster.first, cluster.last + 1);
  }
  [l, r] = expand(text, l, r, budget - collapsedLength(text, l, r));

  // Never cut a word in two: move each cut end inward to the nearest word boundary, but not
  // past the matched cluster (whose ends are word boundaries already), and not by more than a
  // long word — a hash or blob is cut where it is rather than emptying the snippet.
  const keepFrom = inWindow[0]?.start ?? r;
  const keepTo = inWindow[inWindow.length - 1]?.end ?? l;
  if (l > 0 && isWord(text, l - 1)) {
    let at = l;
    while (at < keepFrom && isWord(text, at)) at++;
    if (at - l <= MAX_WORD_SNAP) l = at;
  }
  if (r < text.length && isWord(text, r)) {
    let at = r;
    while (at > keepTo && isWord(text, at - 1)) at--;
    if (r - at <= MAX_WORD_SNAP) r = at;
  }
  while (l < r && isSpace(text, l)) l++;
  while (r > l && isSpace(text, r - 1)) r--;

  // Matches outside the final window (found beyond the cluster by expansion) are marked too.
  const marks = matches.filter((m) => m.start >= l && m.end <= r);
  let body = '';
  let at = l;
  for (const m of marks) {
    body += clean(text.slice(at, m.start)) + MARK + text.slice(m.start, m.end) + MARK;
    at = m.end;
  }
  body += clean(text.slice(at, r));
  body = body.replace(/\s+/g, ' ').trim();
  return (l > 0 ? ELLIPSIS : '') + body + (r < text.length ? ELLIPSIS : '');
}
