/**
 * Big outputs live beside their agent record.
 *
 * Why: an agent may print up to `limits.maxOutputBytes` (64 MiB). Kept inside the JSON record, such
 * an output — escaped, and next to an indented copy of its parsed JSON — made records larger than
 * any reader accepts (the 64 MiB JSON cap), and every reader that only wanted the status paid for
 * parsing all of it on its event loop. So an output over OUTPUT_INLINE_MAX_BYTES is written as plain
 * UTF-8 text to `agents/<phase>.<task>.<attempt>.out` (atomically, before the record that names
 * it), and the record keeps its first OUTPUT_HEAD_BYTES as `output` plus `outputFile`. A reader
 * that needs more reads a bounded prefix or a page of the file; nothing ever has to hold it whole.
 *
 * Everything here works in slices (at most SLICE_CHARS characters encoded or decoded per step) so
 * no step blocks the event loop for long, whatever the output's size.
 */
import fs from 'node:fs/promises';
import { constants as C } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { StoreError, errnoCode, ioError } from './errors.js';
import { writeChunksAtomic } from './atomic.js';

/** Outputs up to this many UTF-8 bytes stay inside the record; larger ones go to an `.out` file. */
export const OUTPUT_INLINE_MAX_BYTES = 1024 * 1024;

/**
 * Bytes of an output stored in the record when the whole lives in its `.out` file — also the
 * prefix of every output the search index reads (see search/documents.ts).
 */
export const OUTPUT_HEAD_BYTES = 256 * 1024;

/** Characters encoded or decoded per step (about 1 MiB of ASCII: ~1 ms). */
const SLICE_CHARS = 1024 * 1024;

/** Extension of an output file beside its record. */
export const OUTPUT_FILE_EXT = '.out';

/** `p.t.1.json` → `p.t.1.out`. */
export function outputFileName(recordFile: string): string {
  return recordFile.replace(/\.json$/, OUTPUT_FILE_EXT);
}

/** Yields to the event loop (so timers, the heartbeat among them, run between slices). */
const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** End of a slice of `text` starting at `start`, moved back so a surrogate pair is never split. */
function sliceEnd(text: string, start: number, chars: number): number {
  let end = Math.min(text.length, start + chars);
  if (end < text.length && end > start + 1) {
    const c = text.charCodeAt(end - 1);
    if (c >= 0xd800 && c <= 0xdbff) end--;
  }
  return end;
}

/**
 * UTF-8 byte length of `text`, counted in slices with a yield between them. Returns early with
 * `limit + 1` once more than `limit` bytes are counted, when a limit is given.
 */
export async function utf8Length(text: string, limit = Infinity): Promise<number> {
  // Fast path: small strings cost microseconds.
  if (text.length <= SLICE_CHARS) return Buffer.byteLength(text, 'utf8');
  let bytes = 0;
  for (let i = 0; i < text.length; ) {
    const end = sliceEnd(text, i, SLICE_CHARS);
    bytes += Buffer.byteLength(text.slice(i, end), 'utf8');
    if (bytes > limit) return limit + 1;
    i = end;
    await yieldToLoop();
  }
  return bytes;
}

/** The longest prefix of `text` of at most `maxBytes` UTF-8 bytes, never splitting a character. */
export function utf8Head(text: string, maxBytes: number): string {
  // Each character is at least one byte: the first maxBytes characters hold the answer.
  const candidate = text.slice(0, sliceEnd(text, 0, maxBytes));
  const buf = Buffer.from(candidate, 'utf8');
  if (buf.length <= maxBytes) return candidate;
  let end = maxBytes;
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--;
  return buf.subarray(0, end).toString('utf8');
}

/**
 * Writes `text` atomically to `file` (see writeTextAtomic), encoding it one slice at a time with a
 * yield between slices, so a 60 MiB output never blocks the event loop for long.
 */
export async function writeOutputFile(file: string, text: string, opts: { fsync?: boolean; fence?: () => void } = {}): Promise<void> {
  async function* chunks(): AsyncGenerator<Buffer> {
    for (let i = 0; i < text.length; ) {
      const end = sliceEnd(text, i, SLICE_CHARS);
      yield Buffer.from(text.slice(i, end), 'utf8');
      i = end;
    }
  }
  await writeChunksAtomic(file, chunks(), opts);
}

async function openOutput(file: string): Promise<fs.FileHandle> {
  try {
    // O_NOFOLLOW: the name was checked, but a symlink swapped in later must not be followed.
    return await fs.open(file, C.O_RDONLY | C.O_NOFOLLOW);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT') throw new StoreError('not_found', `agent output ${file} does not exist (the record names it, so the run folder was altered)`, { cause: err });
    if (code === 'ELOOP') throw new StoreError('path_escape', `refusing to read agent output ${file}: it is a symlink`, { cause: err });
    throw ioError('reading agent output', file, err);
  }
}

/**
 * The first at most `maxBytes` bytes of an output file as text (never a split character), and
 * whether the file holds more.
 */
export async function readOutputHead(file: string, maxBytes: number): Promise<{ text: string; more: boolean; fileBytes: number }> {
  const fh = await openOutput(file);
  try {
    const size = (await fh.stat()).size;
    const want = Math.min(size, Math.max(0, maxBytes));
    const buf = Buffer.alloc(want);
    let got = 0;
    while (got < want) {
      const { bytesRead } = await fh.read(buf, got, Math.min(want - got, 4 * SLICE_CHARS), got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    let end = got;
    if (got < size) while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--;
    // Decoding at most maxBytes at once: callers pass context- or page-sized limits.
    return { text: buf.subarray(0, end).toString('utf8'), more: end < size, fileBytes: size };
  } catch (err) {
    throw ioError('reading agent output', file, err);
  } finally {
    await fh.close().catch(() => {});
  }
}

/** The last at most `maxBytes` bytes of an output file as text (never a split character). */
export async function readOutputTail(file: string, maxBytes: number): Promise<{ text: string; fileBytes: number }> {
  const fh = await openOutput(file);
  try {
    const size = (await fh.stat()).size;
    const want = Math.min(size, Math.max(0, maxBytes));
    const buf = Buffer.alloc(want);
    let got = 0;
    while (got < want) {
      const { bytesRead } = await fh.read(buf, got, want - got, size - want + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    // Skip continuation bytes of a character that began before the tail.
    let start = 0;
    while (start < got && start < 3 && (buf[start]! & 0xc0) === 0x80) start++;
    return { text: buf.subarray(start, got).toString('utf8'), fileBytes: size };
  } catch (err) {
    throw ioError('reading agent output', file, err);
  } finally {
    await fh.close().catch(() => {});
  }
}

/**
 * Characters [offset, offset + limit) of an output file, as `readRef` pages them (offsets in
 * UTF-16 code units, like String#slice over the whole output), plus the whole output's length in
 * characters. Streams the file in slices, holding at most one slice and the page in memory.
 */
export async function readOutputPage(file: string, offset: number, limit: number): Promise<{ text: string; totalChars: number }> {
  const fh = await openOutput(file);
  const decoder = new StringDecoder('utf8');
  const parts: string[] = [];
  let pos = 0; // characters decoded so far
  const end = offset + limit;
  try {
    const buf = Buffer.alloc(SLICE_CHARS);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      const s = bytesRead === 0 ? decoder.end() : decoder.write(buf.subarray(0, bytesRead));
      if (s.length > 0) {
        const from = Math.max(offset, pos);
        const to = Math.min(end, pos + s.length);
        if (to > from) parts.push(s.slice(from - pos, to - pos));
        pos += s.length;
      }
      if (bytesRead === 0) break;
    }
  } catch (err) {
    throw ioError('reading agent output', file, err);
  } finally {
    await fh.close().catch(() => {});
  }
  return { text: parts.join(''), totalChars: pos };
}

