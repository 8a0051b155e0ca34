/**
 * The bounded buffers behind runProcess, checked against plain reference implementations with
 * random chunkings of random (often multi-byte) text.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cutUtf8, HeadBuffer, LineSplitter, TailRing } from '../../src/runners/buffers.js';

/** Random text mixing 1-, 2-, 3- and 4-byte characters, newlines and CR. */
const text = fc
  .array(fc.constantFrom('a', 'b', 'é', '€', '😀', '\n', '\r\n', ' '), { maxLength: 200 })
  .map((parts) => parts.join(''));

/** Splits `buf` at random points, as a pipe would. */
function chunksOf(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    chunks.push(buf.subarray(from, p));
    from = p;
  }
  chunks.push(buf.subarray(from));
  return chunks;
}

const cuts = fc.array(fc.nat(1000), { maxLength: 10 });

describe('cutUtf8', () => {
  it('returns the longest prefix of whole characters within max', () => {
    fc.assert(
      fc.property(text, fc.nat(900), (s, max) => {
        const buf = Buffer.from(s, 'utf8');
        const out = cutUtf8(buf, max);
        expect(out.length).toBeLessThanOrEqual(max);
        const str = out.toString('utf8');
        expect(s.startsWith(str)).toBe(true);
        // Longest: adding the next character would exceed max.
        const next = [...s.slice(str.length)][0];
        if (next !== undefined) expect(out.length + Buffer.byteLength(next)).toBeGreaterThan(max);
      }),
    );
  });
});

describe('HeadBuffer', () => {
  it('keeps the head, counts everything, flags truncation', () => {
    fc.assert(
      fc.property(text, cuts, fc.nat(300), (s, cutPoints, cap) => {
        const buf = Buffer.from(s, 'utf8');
        const head = new HeadBuffer(cap);
        for (const c of chunksOf(buf, cutPoints)) head.push(c);
        expect(head.total).toBe(buf.length);
        expect(head.truncated).toBe(buf.length > cap);
        expect(head.toString()).toBe(cutUtf8(buf, cap).toString('utf8'));
      }),
    );
  });
});

describe('HeadBuffer.text', () => {
  it('decodes a head of several MiB in slices to exactly what toString gives, cut inside a character', async () => {
    const unit = Buffer.from('ab€😀ü\n', 'utf8'); // 1+1+3+4+2+1 bytes
    const whole = Buffer.concat(Array.from({ length: 500_000 }, () => unit)); // ~6 MB
    for (const cap of [whole.length, 5 * 1024 * 1024 + 3, 4 * 1024 * 1024 + 7]) {
      const head = new HeadBuffer(cap);
      for (let i = 0; i < whole.length; i += 65_537) head.push(whole.subarray(i, i + 65_537));
      const text = await head.text();
      expect(text).toBe(head.toString());
      expect(text).not.toContain('\uFFFD');
    }
  });
});

describe('TailRing', () => {
  it('keeps the last bytes, starting on a character boundary', () => {
    fc.assert(
      fc.property(text, cuts, fc.nat(300), (s, cutPoints, cap) => {
        const buf = Buffer.from(s, 'utf8');
        const ring = new TailRing(cap);
        for (const c of chunksOf(buf, cutPoints)) ring.push(c);
        expect(ring.total).toBe(buf.length);
        const tail = ring.toString();
        expect(Buffer.byteLength(tail)).toBeLessThanOrEqual(cap);
        expect(s.endsWith(tail)).toBe(true);
        expect(tail).not.toContain('\uFFFD');
        // Longest: the character before the tail would not have fitted.
        const before = [...s.slice(0, s.length - tail.length)].pop();
        if (before !== undefined) expect(Buffer.byteLength(tail) + Buffer.byteLength(before)).toBeGreaterThan(cap);
      }),
    );
  });

  it('wraps around many times in constant memory', () => {
    const ring = new TailRing(10);
    for (let i = 0; i < 1000; i++) ring.push(Buffer.from(`${i},`));
    expect(ring.toString()).toBe('7,998,999,');
    expect(ring.total).toBe(3890);
  });
});

describe('LineSplitter', () => {
  it('emits the same lines as a split, whatever the chunking, cut to max bytes', () => {
    fc.assert(
      fc.property(text, cuts, fc.integer({ min: 1, max: 40 }), (s, cutPoints, max) => {
        const got: Array<[string, boolean]> = [];
        const splitter = new LineSplitter(max, (line, info) => got.push([line, info.truncated]));
        for (const c of chunksOf(Buffer.from(s, 'utf8'), cutPoints)) splitter.push(c);
        splitter.end();

        const lines = s.split('\n');
        if (lines[lines.length - 1] === '') lines.pop(); // no empty line after a final newline
        const expected = lines.map((raw): [string, boolean] => {
          const bytes = Buffer.from(raw, 'utf8');
          if (bytes.length > max) return [cutUtf8(bytes, max).toString('utf8'), true];
          return [raw.endsWith('\r') ? raw.slice(0, -1) : raw, false];
        });
        expect(got).toEqual(expected);
      }),
    );
  });
});
