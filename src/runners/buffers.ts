/**
 * Bounded byte buffers for child output: the head of stdout, the tail of stderr, and stdout split
 * into lines. Each holds a fixed maximum whatever the child prints, and never splits a UTF-8
 * character when it turns bytes into text.
 */
import { StringDecoder } from 'node:string_decoder';

/**
 * The first `max` bytes of `buf`, moved back so that no multi-byte UTF-8 character is split.
 * Returns `buf` itself when it is short enough.
 */
export function cutUtf8(buf: Buffer, max: number): Buffer {
  if (buf.length <= max) return buf;
  let end = Math.max(0, max);
  // buf[end] is the first byte left out; if it continues a character, that character began before
  // `end` and must go too. A character has at most 3 continuation bytes.
  let steps = 0;
  while (end > 0 && steps < 4 && isContinuation(buf[end])) {
    end--;
    steps++;
  }
  return buf.subarray(0, end);
}

/** Whether `byte` is a UTF-8 continuation byte (10xxxxxx). */
export function isContinuation(byte: number | undefined): boolean {
  return byte !== undefined && (byte & 0xc0) === 0x80;
}

/** Keeps the last `cap` bytes written to it, in constant memory. */
export class TailRing {
  readonly #buf: Buffer;
  #pos = 0;
  #full = false;
  #total = 0;

  /** A ring of `cap` bytes, allocated once. */
  constructor(cap: number) {
    this.#buf = Buffer.alloc(Math.max(0, cap));
  }

  /** Bytes pushed in all. */
  get total(): number {
    return this.#total;
  }

  /** Appends `chunk`, overwriting the oldest bytes. */
  push(chunk: Buffer): void {
    this.#total += chunk.length;
    const cap = this.#buf.length;
    if (cap === 0) return;
    if (chunk.length >= cap) {
      chunk.copy(this.#buf, 0, chunk.length - cap);
      this.#pos = 0;
      this.#full = true;
      return;
    }
    const first = Math.min(chunk.length, cap - this.#pos);
    chunk.copy(this.#buf, this.#pos, 0, first);
    if (first < chunk.length) {
      chunk.copy(this.#buf, 0, first);
      this.#pos = chunk.length - first;
      this.#full = true;
    } else {
      this.#pos += first;
      if (this.#pos === this.#buf.length) {
        this.#pos = 0;
        this.#full = true;
      }
    }
  }

  /** The kept bytes as text, starting on a character boundary when older bytes were dropped. */
  toString(): string {
    const bytes = this.#full
      ? Buffer.concat([this.#buf.subarray(this.#pos), this.#buf.subarray(0, this.#pos)])
      : this.#buf.subarray(0, this.#pos);
    let start = 0;
    // When bytes were dropped, the ring may begin in the middle of a character: skip its tail.
    if (this.#total > bytes.length) {
      while (start < bytes.length && start < 3 && isContinuation(bytes[start])) start++;
    }
    return bytes.subarray(start).toString('utf8');
  }
}

/** Keeps the first `cap` bytes of stdout and counts the rest. */
export class HeadBuffer {
  readonly #cap: number;
  readonly #chunks: Buffer[] = [];
  #kept = 0;
  #total = 0;

  /** Keeps at most `cap` bytes (plus one of look-ahead). */
  constructor(cap: number) {
    this.#cap = Math.max(0, cap);
  }

  /** Bytes pushed in all. */
  get total(): number {
    return this.#total;
  }

  /** Whether more was pushed than `cap`. */
  get truncated(): boolean {
    return this.#total > this.#cap;
  }

  /** Appends `chunk`; bytes past the cap are only counted. */
  push(chunk: Buffer): void {
    this.#total += chunk.length;
    // Keep one byte past the cap: cutUtf8 needs to see the byte after the cut to know whether
    // a character straddles it.
    const room = this.#cap + 1 - this.#kept;
    if (room <= 0) return;
    const part = chunk.length <= room ? chunk : Buffer.from(chunk.subarray(0, room));
    this.#chunks.push(part);
    this.#kept += part.length;
  }

  /** The kept head as text: at most `cap` bytes, cut on a character boundary. */
  toString(): string {
    const all = Buffer.concat(this.#chunks, this.#kept);
    return cutUtf8(all, this.#cap).toString('utf8');
  }

  /**
   * The same text as toString(), decoded chunk by chunk with a yield to the event loop every few
   * MiB. Why: copying and decoding a 64 MiB head in one go blocks the caller's event loop for
   * hundreds of ms — in the run owner, long enough to starve its lease heartbeat.
   */
  async text(): Promise<string> {
    if (this.#kept <= TEXT_SLICE_BYTES) return this.toString();
    const decoder = new StringDecoder('utf8');
    const parts: string[] = [];
    let used = 0;
    let sinceYield = 0;
    for (const chunk of this.#chunks) {
      if (used >= this.#cap) break;
      let part = chunk;
      if (used + chunk.length > this.#cap) {
        // The last kept chunk: cut at the cap, moved back to a character boundary (cutUtf8 looks
        // at the byte after the cut, which the one byte of look-ahead keeps).
        part = cutUtf8(chunk, this.#cap - used);
      }
      used += chunk.length;
      parts.push(decoder.write(part));
      sinceYield += part.length;
      if (sinceYield >= TEXT_SLICE_BYTES) {
        sinceYield = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    parts.push(decoder.end());
    return parts.join('');
  }
}

/** Bytes decoded between two yields of HeadBuffer.text(). */
const TEXT_SLICE_BYTES = 4 * 1024 * 1024;

/**
 * Splits a byte stream into lines (`\n` or `\r\n`) and hands each to `emit`. A line longer than
 * `max` bytes is cut to `max` (on a character boundary) and flagged; the rest of it is dropped.
 */
export class LineSplitter {
  readonly #max: number;
  readonly #emit: (line: string, info: { truncated: boolean }) => void;
  #parts: Buffer[] = [];
  #len = 0;
  #cut = false;

  /** Lines of at most `max` bytes go to `emit`. */
  constructor(max: number, emit: (line: string, info: { truncated: boolean }) => void) {
    this.#max = Math.max(1, max);
    this.#emit = emit;
  }

  /** Feeds bytes; emits every line they complete. */
  push(chunk: Buffer): void {
    let from = 0;
    // '\n' (0x0a) never occurs inside a multi-byte UTF-8 character, so splitting bytes is safe.
    for (let nl = chunk.indexOf(0x0a, from); nl !== -1; nl = chunk.indexOf(0x0a, from)) {
      this.#add(chunk.subarray(from, nl));
      this.#emitLine();
      from = nl + 1;
    }
    if (from < chunk.length) this.#add(chunk.subarray(from));
  }

  /** Emits a last line that had no newline. */
  end(): void {
    if (this.#len > 0 || this.#cut) this.#emitLine();
  }

  #emitLine(): void {
    const buf = Buffer.concat(this.#parts, this.#len);
    let line = cutUtf8(buf, this.#max).toString('utf8');
    if (!this.#cut && line.endsWith('\r')) line = line.slice(0, -1);
    const truncated = this.#cut;
    this.#parts = [];
    this.#len = 0;
    this.#cut = false;
    this.#emit(line, { truncated });
  }

  #add(part: Buffer): void {
    if (part.length === 0) return;
    // One byte of slack for cutUtf8, as in HeadBuffer.
    const room = this.#max + 1 - this.#len;
    if (room <= 0) {
      this.#cut = true;
      return;
    }
    if (part.length > room) this.#cut = true;
    const kept = part.length <= room ? Buffer.from(part) : Buffer.from(part.subarray(0, room));
    this.#parts.push(kept);
    this.#len += kept.length;
    if (this.#len > this.#max) this.#cut = true;
  }
}
