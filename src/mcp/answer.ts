/**
 * Every tool answer goes through here, so every answer is bounded the same way.
 *
 * Why 40 KB: Claude Code warns at 10,000 tokens and cuts tool output at 25,000 (MAX_MCP_OUTPUT_TOKENS);
 * 40 KB of text is roughly 10,000 tokens, so one answer never gets near the cut, even with its
 * structured copy beside it. Anything bigger is paged (query_workflow `ref`, status `offset`) or
 * referenced (resources, file paths).
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

/** Most UTF-8 bytes of text in one tool answer or resource read. */
export const MAX_ANSWER_BYTES = 40 * 1024;

/** Most UTF-8 bytes of the JSON of one answer's structuredContent. */
export const MAX_STRUCTURED_BYTES = 40 * 1024;

/** UTF-8 length of a string. */
export function utf8Length(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/**
 * The longest prefix of `text` (in UTF-16 units) whose UTF-8 encoding fits in `maxBytes`, never
 * ending between the two halves of a surrogate pair.
 */
export function prefixFitting(text: string, maxBytes: number): number {
  if (maxBytes <= 0) return 0;
  // Fast path: every UTF-16 unit takes at most 3 UTF-8 bytes.
  if (text.length * 3 <= maxBytes || utf8Length(text) <= maxBytes) return text.length;
  let bytes = 0;
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    let width: number;
    let units = 1;
    if (c < 0x80) width = 1;
    else if (c < 0x800) width = 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        width = 4;
        units = 2;
      } else width = 3;
    } else width = 3;
    if (bytes + width > maxBytes) break;
    bytes += width;
    i += units;
  }
  return i;
}

/**
 * `text` cut to at most `maxBytes` UTF-8 bytes, the cut marked with `note` (which is included in
 * the budget). Returns the text unchanged when it fits.
 */
export function clipBytes(text: string, maxBytes: number, note = '\n… [clipped]'): string {
  if (utf8Length(text) <= maxBytes) return text;
  const room = Math.max(0, maxBytes - utf8Length(note));
  return text.slice(0, prefixFitting(text, room)) + note;
}

/**
 * Shrinks the longest strings of a JSON value until its JSON is at most `maxBytes`. Arrays are
 * bounded by the tools themselves (they page); this is the last line of defence for free text
 * (digests, reports, outputs) so an answer can never blow past the cap whatever a run holds.
 * Returns a new value; the input is not modified.
 */
export function boundStructured<T>(value: T, maxBytes = MAX_STRUCTURED_BYTES): T {
  let copy = structuredClone(value);
  for (let round = 0; round < 64; round++) {
    const size = utf8Length(JSON.stringify(copy));
    if (size <= maxBytes) return copy;
    const longest = findLongestString(copy);
    if (!longest || longest.length < 64) break;
    // Cut the longest string by the excess (plus room for the note and JSON escapes); when that
    // is not enough the next round takes the next longest.
    const current = longest.get();
    const target = Math.max(32, utf8Length(current) - (size - maxBytes) - 96);
    longest.set(clipBytes(current, target, ' … [clipped to fit the answer]'));
  }
  const size = utf8Length(JSON.stringify(copy));
  if (size > maxBytes) {
    // Nothing left to shrink (many short strings): refuse loudly rather than send an oversized answer.
    throw new Error(`mcp: answer is ${size} bytes of structured content, over the ${maxBytes}-byte cap; this is a bug in the tool`);
  }
  return copy;
}

interface StringSlot {
  length: number;
  get(): string;
  set(v: string): void;
}

function findLongestString(root: unknown): StringSlot | undefined {
  let best: StringSlot | undefined;
  const visit = (holder: Record<string | number, unknown>, key: string | number): void => {
    const v = holder[key];
    if (typeof v === 'string') {
      if (!best || v.length > best.length) {
        best = { length: v.length, get: () => holder[key] as string, set: (s) => (holder[key] = s) };
      }
    } else if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) visit(v as unknown as Record<number, unknown>, i);
    } else if (v && typeof v === 'object') {
      for (const k of Object.keys(v)) visit(v as Record<string, unknown>, k);
    }
  };
  visit({ root } as Record<string, unknown>, 'root');
  return best;
}

/**
 * A successful tool answer: `structured` (validated by the SDK against the tool's output schema)
 * plus its text rendering, both bounded. Hosts read the text, so it must carry every id and the
 * status on its own.
 */
export function okResult<T extends Record<string, unknown>>(structured: T, text: string): CallToolResult {
  return {
    content: [{ type: 'text', text: clipBytes(text, MAX_ANSWER_BYTES, '\n… [answer clipped at 40 KB; page with offset or read the resource]') }],
    structuredContent: boundStructured(structured),
  };
}

/** A failed tool call: `isError: true` and text saying what was wrong and how to fix the call. */
export function errorResult(text: string): CallToolResult {
  return { content: [{ type: 'text', text: clipBytes(text, MAX_ANSWER_BYTES) }], isError: true };
}

/** `n word(s)`. */
export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}

/** JSON for a tool-call example in guidance text: `run_workflow {"planId":"p1"}`. */
export function callText(tool: string, args: Record<string, unknown>): string {
  return `${tool} ${JSON.stringify(args)}`;
}

/**
 * Joins `head`, `sections` and `tail` into one text of at most `maxBytes`: head and tail (ids,
 * status, next step) are kept whole; sections are clipped in order to the room that is left, so
 * the parts a host needs to continue are never the ones cut.
 */
export function composeText(head: string[], sections: string[], tail: string[], maxBytes = MAX_ANSWER_BYTES): string {
  const top = head.join('\n');
  const bottom = tail.join('\n');
  const leftOut = '… [more left out to keep the answer within 40 KB]';
  // Room for the separators and for the left-out note, so adding the note never overflows.
  let room = maxBytes - utf8Length(top) - utf8Length(bottom) - 16 - utf8Length(leftOut) - 2;
  const middle: string[] = [];
  for (const s of sections) {
    if (!s) continue;
    if (room <= 80) {
      middle.push(leftOut);
      break;
    }
    const piece = clipBytes(s, room - 2, '\n… [section clipped to keep the answer within 40 KB]');
    middle.push(piece);
    room -= utf8Length(piece) + 2;
  }
  return clipBytes([top, ...middle, bottom].filter(Boolean).join('\n\n'), maxBytes);
}
