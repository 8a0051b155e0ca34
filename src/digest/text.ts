/**
 * Small text helpers shared by the digest and report modules: cleaning untrusted agent output,
 * clipping without splitting a character, measuring JSON and UTF-8 sizes, and human formats.
 * Everything here is pure and deterministic.
 */

/** ANSI escape sequences (CSI and OSC) that agent CLIs print for colour and cursor movement. */
const ANSI = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|\u001b[@-Z\\-_]/g;

/**
 * Normalizes line endings (CRLF and lone CR become LF) and removes ANSI escape sequences.
 * Other control characters are left for {@link cleanLine} to judge per line.
 */
export function normalizeNewlines(text: string): string {
  return text.replace(ANSI, '').replace(/\r\n?/g, '\n');
}

/** True for a UTF-16 code unit that is a control character other than tab (C0, DEL, C1). */
function isControl(code: number): boolean {
  return (code < 0x20 && code !== 0x09) || (code >= 0x7f && code <= 0x9f);
}

/**
 * Share of code units in `line` that look like binary junk: control characters, U+FFFD
 * (a decoder's replacement for invalid bytes), private-use characters and lone surrogates.
 */
export function junkRatio(line: string): number {
  if (line.length === 0) return 0;
  let junk = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (isControl(c) || c === 0xfffd || (c >= 0xe000 && c <= 0xf8ff)) {
      junk++;
    } else if (c >= 0xd800 && c <= 0xdbff) {
      const next = line.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
      else junk++;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      junk++;
    }
  }
  return junk / line.length;
}

/**
 * True when a sample of `text` looks like binary data rather than prose or code: it holds a NUL,
 * or more than 30% of its first 4096 code units are junk (see {@link junkRatio}).
 */
export function looksBinary(text: string): boolean {
  const sample = text.slice(0, 4096);
  return sample.includes('\u0000') || junkRatio(sample.replace(/\n/g, ' ')) > 0.3;
}

/**
 * Makes one line of untrusted text safe to show: tabs become spaces, control characters are
 * dropped, lone surrogates become U+FFFD, runs of spaces collapse, ends are trimmed.
 */
export function cleanLine(line: string): string {
  let out = '';
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c === 0x09 || c === 0x0a) {
      out += ' ';
    } else if (isControl(c)) {
      continue;
    } else if (c >= 0xd800 && c <= 0xdbff) {
      const next = line.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        out += line[i]! + line[i + 1]!;
        i++;
      } else {
        out += '\ufffd';
      }
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      out += '\ufffd';
    } else {
      out += line[i]!;
    }
  }
  return out.replace(/ {2,}/g, ' ').trim();
}

/**
 * Makes a block of untrusted text safe to quote while keeping its layout: LF line endings, no ANSI
 * sequences or control characters other than tab and LF, lone surrogates replaced by U+FFFD.
 */
export function cleanBlock(text: string): string {
  return normalizeNewlines(text)
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '')
    .replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}

/**
 * Cuts `text` to at most `maxBytes` UTF-8 bytes, on a line boundary when one exists in the kept
 * part (otherwise on a character boundary). `cut` says whether anything was dropped.
 */
export function clipBlockBytes(text: string, maxBytes: number): { text: string; cut: boolean } {
  if (utf8Bytes(text) <= maxBytes) return { text, cut: false };
  const head = truncateUtf8(text, Math.max(0, maxBytes));
  const nl = head.lastIndexOf('\n');
  return { text: nl > 0 ? head.slice(0, nl) : head, cut: true };
}

/**
 * Clips `text` to at most `max` UTF-16 code units, ending with `…` when clipped, and never
 * splitting a surrogate pair. `max` below 1 yields the empty string.
 */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  if (max < 1) return '';
  let cut = max - 1;
  const last = text.charCodeAt(cut - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut--;
  return text.slice(0, cut) + '…';
}

/** Number of lines in `text` holding something other than whitespace (CR, LF or CRLF separated). */
export function countNonEmptyLines(text: string): number {
  let count = 0;
  let filled = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x0a || c === 0x0d) {
      if (filled) count++;
      filled = false;
    } else if (c !== 0x20 && c !== 0x09) {
      filled = true;
    }
  }
  return filled ? count + 1 : count;
}

/** UTF-8 byte length of a string (lone surrogates count as the 3 bytes of U+FFFD). */
export function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/**
 * UTF-8 bytes one code point takes inside a JSON string literal produced by `JSON.stringify`
 * (which escapes `"`, `\`, control characters and lone surrogates).
 */
function jsonCodePointBytes(text: string, i: number): { bytes: number; units: number } {
  const c = text.charCodeAt(i);
  if (c === 0x22 || c === 0x5c) return { bytes: 2, units: 1 };
  if (c === 0x08 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d) return { bytes: 2, units: 1 };
  if (c < 0x20) return { bytes: 6, units: 1 };
  if (c < 0x80) return { bytes: 1, units: 1 };
  if (c < 0x800) return { bytes: 2, units: 1 };
  if (c >= 0xd800 && c <= 0xdbff) {
    const next = text.charCodeAt(i + 1);
    if (next >= 0xdc00 && next <= 0xdfff) return { bytes: 4, units: 2 };
    return { bytes: 6, units: 1 };
  }
  if (c >= 0xdc00 && c <= 0xdfff) return { bytes: 6, units: 1 };
  return { bytes: 3, units: 1 };
}

/**
 * UTF-8 bytes of `JSON.stringify(text)` without its two quotes, counting no further than `cap`
 * (returns `cap + 1` as soon as the size exceeds `cap`, so huge strings cost only what is read).
 */
export function jsonStringBytes(text: string, cap = Number.POSITIVE_INFINITY): number {
  // Every code unit takes at least one byte: a string longer than the cap is over it unread.
  if (text.length > cap) return cap + 1;
  let total = 0;
  for (let i = 0; i < text.length; ) {
    const { bytes, units } = jsonCodePointBytes(text, i);
    total += bytes;
    if (total > cap) return cap + 1;
    i += units;
  }
  return total;
}

/**
 * Longest prefix of `text`, cut on a code point boundary, whose JSON string body (without quotes)
 * takes at most `maxBytes` UTF-8 bytes.
 */
export function truncateForJson(text: string, maxBytes: number): string {
  let total = 0;
  let i = 0;
  while (i < text.length) {
    const { bytes, units } = jsonCodePointBytes(text, i);
    if (total + bytes > maxBytes) break;
    total += bytes;
    i += units;
  }
  return text.slice(0, i);
}

/**
 * Longest prefix of `text`, cut on a code point boundary, that takes at most `maxBytes` UTF-8 bytes.
 */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (text.length * 3 <= maxBytes) return text;
  let total = 0;
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    let bytes = 3;
    let units = 1;
    if (c < 0x80) bytes = 1;
    else if (c < 0x800) bytes = 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes = 4;
        units = 2;
      }
    }
    if (total + bytes > maxBytes) break;
    total += bytes;
    i += units;
  }
  return text.slice(0, i);
}

/**
 * Shares `budget` among claims fairly ("water-filling"): a claim smaller than the equal share gets
 * all it asks, and what it leaves is shared among the larger claims. Returns whole units per claim,
 * in the order given; their sum never exceeds `budget`.
 */
export function fairShares(claims: readonly number[], budget: number): number[] {
  const shares = claims.map(() => 0);
  const order = claims.map((_, i) => i).sort((a, b) => claims[a]! - claims[b]! || a - b);
  let left = Math.max(0, Math.floor(budget));
  for (let k = 0; k < order.length; k++) {
    const i = order[k]!;
    const equal = Math.floor(left / (order.length - k));
    const give = Math.min(Math.max(0, Math.floor(claims[i]!)), equal);
    shares[i] = give;
    left -= give;
  }
  return shares;
}

/** A duration for people: `850 ms`, `12.3 s`, `4m 05s`, `2h 03m`; `—` when not a finite number. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  const v = Math.max(0, ms);
  if (v < 1000) return `${Math.round(v)} ms`;
  if (v < 60_000) return `${(v / 1000).toFixed(1)} s`;
  const totalSeconds = Math.round(v / 1000);
  const h = Math.floor(totalSeconds / 3600);
  const m = Math.floor((totalSeconds % 3600) / 60);
  const s = totalSeconds % 60;
  if (h > 0) return `${h}h ${String(m).padStart(2, '0')}m`;
  return `${m}m ${String(s).padStart(2, '0')}s`;
}

/** A byte count for people: `512 B`, `12.0 KiB`, `3.4 MiB`. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return '—';
  if (bytes < 1024) return `${Math.round(bytes)} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

/** Milliseconds since the epoch of an ISO time, or NaN when it does not parse. */
export function parseTime(iso: string | undefined): number {
  return iso ? Date.parse(iso) : Number.NaN;
}
