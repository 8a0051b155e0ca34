/**
 * Text analysis shared by indexing, querying and snippets: how text is cut into terms and how a
 * term is normalized. Changing anything here changes what a persisted index means, so bump
 * ANALYZER_VERSION with it (a persisted index of another analyzer version is rebuilt).
 */

/** Version of the tokenizer, term processing and indexed fields; stored in index.json. */
// Not bumped when outputs began to be indexed up to OUTPUT_HEAD_BYTES only: an older index stays
// valid (its documents simply lack `indexedBytes`), and readers never rewrite it, so a bump would
// make every cold query of an older store rebuild all of it.
export const ANALYZER_VERSION = 'fanfold-1';

/**
 * Longest term kept, in UTF-16 units. Longer tokens are hashes, base64 blobs or minified code:
 * nobody types them as a query, and they would bloat the term tree.
 */
export const MAX_TERM_LENGTH = 64;

/**
 * Anything that is not a letter, digit or combining mark separates terms. Unlike minisearch's
 * default (space or punctuation), this also splits on symbols such as `<`, `=`, `$`, `|`, which
 * agent outputs full of code and paths contain everywhere: `db/query.ts:42` → `db`, `query`, `ts`, `42`.
 */
const SEPARATOR = /[^\p{L}\p{N}\p{M}]+/u;

/** One token at a time, for scanning text (snippets). Same alphabet as SEPARATOR's complement. */
export const TOKEN_PATTERN = /[\p{L}\p{N}\p{M}]+/gu;

/** Words too common to be worth indexing or marking in snippets. Short on purpose. */
const STOP_WORDS: ReadonlySet<string> = new Set([
  'a', 'an', 'and', 'are', 'as', 'at', 'be', 'but', 'by', 'for', 'from', 'has', 'have', 'if', 'in',
  'into', 'is', 'it', 'its', 'of', 'on', 'or', 'so', 'that', 'the', 'their', 'then', 'there',
  'these', 'this', 'to', 'was', 'were', 'which', 'will', 'with',
]);

/** Splits camelCase / PascalCase words: `getUserById` → get|User|By|Id, `XMLHttpRequest` → XML|Http|Request. */
const CAMEL_BOUNDARY = /(?<=[\p{Ll}\p{N}])(?=\p{Lu})|(?<=\p{Lu})(?=\p{Lu}\p{Ll})/u;

/** Cuts text into raw tokens (not yet normalized; may contain empty strings). */
export function tokenize(text: string): string[] {
  return text.split(SEPARATOR);
}

/**
 * Normalizes one indexed token into the terms it is found under: its lowercase form and, for a
 * camelCase identifier, each part as well, so `user` finds `getUserById`. Returns null for a token
 * that is not indexed (empty, stop word, longer than MAX_TERM_LENGTH).
 */
export function indexTerms(token: string): string[] | null {
  if (token.length === 0 || token.length > MAX_TERM_LENGTH) return null;
  const lower = token.toLowerCase();
  // Fast path: an all-lowercase token has no camel parts (true for most prose).
  if (lower === token) return STOP_WORDS.has(lower) ? null : [lower];
  const terms = STOP_WORDS.has(lower) ? [] : [lower];
  const parts = token.split(CAMEL_BOUNDARY);
  if (parts.length > 1) {
    for (const part of parts) {
      const p = part.toLowerCase();
      if (p.length >= 2 && !STOP_WORDS.has(p) && !terms.includes(p)) terms.push(p);
    }
  }
  return terms.length > 0 ? terms : null;
}

/**
 * `indexTerms` shaped for minisearch's `processTerm`: a lone term comes back as a string, not a
 * one-element array — one allocation less per token of every output indexed.
 */
export function processIndexTerm(token: string): string | string[] | null {
  if (token.length === 0 || token.length > MAX_TERM_LENGTH) return null;
  const lower = token.toLowerCase();
  if (lower === token) return STOP_WORDS.has(lower) ? null : lower;
  return indexTerms(token);
}

/**
 * Normalizes one query token: lowercase, no camelCase splitting (a query for `getUserById` asks
 * for that identifier, not for every document mentioning `user`). Null when not searchable.
 */
export function queryTerm(token: string): string | null {
  if (token.length === 0 || token.length > MAX_TERM_LENGTH) return null;
  const lower = token.toLowerCase();
  return STOP_WORDS.has(lower) ? null : lower;
}

/** The searchable terms of a query string, in order, duplicates removed. */
export function queryTerms(query: string): string[] {
  const out: string[] = [];
  for (const token of tokenize(query)) {
    const term = queryTerm(token);
    if (term !== null && !out.includes(term)) out.push(term);
  }
  return out;
}
