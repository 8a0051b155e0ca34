/**
 * Small Markdown helpers shared by the reports: escaping untrusted inline text, fenced blocks
 * that cannot be broken out of, code spans and plurals.
 */
import { cleanLine } from './text.js';

/** Escapes Markdown syntax in untrusted inline text (one line, no HTML, no emphasis, no tables). */
export function escapeMarkdownInline(text: string): string {
  // `_` inside a word never starts emphasis, so only word-edge underscores are escaped.
  return cleanLine(text)
    .replace(/([\\`*[\]<>|])/g, '\\$1')
    .replace(/_/g, (_m, at: number, all: string) => (isWordChar(all[at - 1]) && isWordChar(all[at + 1]) ? '_' : '\\_'));
}

function isWordChar(c: string | undefined): boolean {
  return c !== undefined && /[\p{L}\p{N}]/u.test(c);
}

/** A fenced code block whose fence is longer than any backtick run in `text`. */
export function fence(text: string, lang = 'text'): string {
  let longest = 0;
  for (const m of text.matchAll(/`+/g)) longest = Math.max(longest, m[0].length);
  const bar = '`'.repeat(Math.max(3, longest + 1));
  return `${bar}${lang}\n${text}\n${bar}`;
}

/** `code` span for an identifier we print (ids are allow-listed, but be safe anyway). */
export function code(text: string): string {
  const clean = cleanLine(text).replace(/`/g, "'");
  return `\`${clean}\``;
}

/** Plural helper: `1 task`, `2 tasks`. */
export function n(count: number, word: string, plural = `${word}s`): string {
  return `${count} ${count === 1 ? word : plural}`;
}
export const plural = n;
