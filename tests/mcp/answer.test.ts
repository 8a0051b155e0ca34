/**
 * The answer-bounding helpers every tool goes through: UTF-8 prefixes that never split a
 * character, clipping with a note inside the budget, the structured-content shrinker, and the
 * text composer that keeps head and next step whole.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_ANSWER_BYTES, boundStructured, clipBytes, composeText, okResult, prefixFitting, utf8Length } from '../../src/mcp/answer.js';

const isWellFormed = (s: string) => !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);

describe('prefixFitting', () => {
  it('returns the whole string when it fits', () => {
    expect(prefixFitting('abc', 3)).toBe(3);
    expect(prefixFitting('', 0)).toBe(0);
  });

  it('counts 1-, 2-, 3- and 4-byte characters', () => {
    expect(prefixFitting('aé漢😀', 1)).toBe(1);
    expect(prefixFitting('aé漢😀', 2)).toBe(1);
    expect(prefixFitting('aé漢😀', 3)).toBe(2);
    expect(prefixFitting('aé漢😀', 6)).toBe(3);
    expect(prefixFitting('aé漢😀', 9)).toBe(3);
    expect(prefixFitting('aé漢😀', 10)).toBe(5);
  });

  it('never splits a surrogate pair and never exceeds the budget (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), fc.integer({ min: 0, max: 800 }), (s, max) => {
        const n = prefixFitting(s, max);
        const head = s.slice(0, n);
        expect(utf8Length(head)).toBeLessThanOrEqual(max);
        expect(isWellFormed(head)).toBe(true);
        // Maximal: one more code point would not fit.
        if (n < s.length) {
          const next = s.codePointAt(n)!;
          expect(utf8Length(head + String.fromCodePoint(next))).toBeGreaterThan(max);
        }
      }),
    );
  });

  it('treats a lone surrogate as 3 bytes, like Buffer.byteLength', () => {
    const s = 'a\ud800b';
    expect(prefixFitting(s, utf8Length(s))).toBe(3);
  });
});

describe('clipBytes', () => {
  it('leaves fitting text alone and fits the note into the budget otherwise', () => {
    expect(clipBytes('short', 100)).toBe('short');
    const out = clipBytes('x'.repeat(1000), 100, ' [cut]');
    expect(utf8Length(out)).toBeLessThanOrEqual(100);
    expect(out.endsWith(' [cut]')).toBe(true);
  });

  it('stays within budget for any text (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 500 }), fc.integer({ min: 20, max: 600 }), (s, max) => {
        const out = clipBytes(s, max);
        expect(utf8Length(out)).toBeLessThanOrEqual(max);
        expect(isWellFormed(out)).toBe(true);
      }),
    );
  });
});

describe('boundStructured', () => {
  it('returns small values unchanged (a copy)', () => {
    const v = { a: 'x', b: [1, 2] };
    const out = boundStructured(v, 1000);
    expect(out).toEqual(v);
    expect(out).not.toBe(v);
  });

  it('shrinks the longest strings until the JSON fits, leaving short fields intact', () => {
    const v = { runId: 'abc', report: 'r'.repeat(50_000), digest: 'd'.repeat(30_000), rows: [{ ref: 'abc/p/t', note: 'n'.repeat(10_000) }] };
    const out = boundStructured(v, 20_000);
    expect(utf8Length(JSON.stringify(out))).toBeLessThanOrEqual(20_000);
    expect(out.runId).toBe('abc');
    expect(out.rows[0]!.ref).toBe('abc/p/t');
    expect(out.report).toMatch(/\[clipped to fit the answer\]$/);
    expect(v.report).toHaveLength(50_000); // input untouched
  });

  it('copes with escape-heavy and multi-byte strings', () => {
    const v = { a: '"\n\\'.repeat(20_000), b: '😀'.repeat(20_000) };
    const out = boundStructured(v, 10_000);
    expect(utf8Length(JSON.stringify(out))).toBeLessThanOrEqual(10_000);
    expect(isWellFormed(out.b)).toBe(true);
  });

  it('refuses loudly when only many short strings remain', () => {
    const v = { rows: Array.from({ length: 5000 }, (_, i) => `row-${i}`) };
    expect(() => boundStructured(v, 1000)).toThrow(/over the 1000-byte cap/);
  });

  it('holds for random nested values (property)', () => {
    const json = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: 'small' }, fc.string({ maxLength: 3000 }), fc.integer(), fc.array(tie('value'), { maxLength: 5 }), fc.dictionary(fc.string({ maxLength: 5 }), tie('value'), { maxKeys: 5 })),
    })).value;
    fc.assert(
      fc.property(json, (v) => {
        let out: unknown;
        try {
          out = boundStructured(v, 4096);
        } catch (e) {
          expect(String(e)).toMatch(/cap/);
          return;
        }
        expect(utf8Length(JSON.stringify(out))).toBeLessThanOrEqual(4096);
      }),
      { numRuns: 200 },
    );
  });
});

describe('composeText', () => {
  it('keeps head and tail whole and clips sections in order', () => {
    const text = composeText(['runId: r1 — completed'], ['A'.repeat(30_000), 'B'.repeat(30_000), 'C'.repeat(30_000)], ['Next: do this']);
    expect(utf8Length(text)).toBeLessThanOrEqual(MAX_ANSWER_BYTES);
    expect(text.startsWith('runId: r1 — completed')).toBe(true);
    expect(text.endsWith('Next: do this')).toBe(true);
    expect(text).toContain('A'.repeat(30_000));
    expect(text).toMatch(/B+\n… \[section clipped/);
    expect(text).toMatch(/more left out/);
    expect(text).not.toContain('C');
  });

  it('fits any mix of sections (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'grapheme', maxLength: 30_000 }), { maxLength: 6 }), fc.integer({ min: 2000, max: 50_000 }), (sections, max) => {
        const text = composeText(['head'], sections, ['Next: tail'], max);
        expect(utf8Length(text)).toBeLessThanOrEqual(max);
        expect(text.endsWith('Next: tail')).toBe(true);
      }),
      { numRuns: 100 },
    );
  });
});

describe('okResult', () => {
  it('bounds the text of an answer and its structured copy', () => {
    const r = okResult({ report: 'x'.repeat(100_000) }, 'y'.repeat(100_000));
    const text = (r.content[0] as { text: string }).text;
    expect(utf8Length(text)).toBeLessThanOrEqual(MAX_ANSWER_BYTES);
    expect(text).toMatch(/answer clipped at 40 KB/);
    expect(utf8Length(JSON.stringify(r.structuredContent))).toBeLessThanOrEqual(40 * 1024);
  });
});
