import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { indexTerms, queryTerms, tokenize } from '../../src/search/analyze.js';
import { SNIPPET_CHARS, buildSnippet, findMatches } from '../../src/search/snippet.js';

/** The snippet without its `**` markers: what counts against the 300-character budget. */
const visible = (s: string): string => s.replaceAll('**', '');
/** The words marked in a snippet. */
const marked = (s: string): string[] => [...s.matchAll(/\*\*([^*]+)\*\*/g)].map((m) => m[1]!);

describe('analyze', () => {
  it('splits on symbols and punctuation, not only spaces', () => {
    expect(tokenize('db/query.ts:88 a<b x=y').filter(Boolean)).toEqual(['db', 'query', 'ts', '88', 'a', 'b', 'x', 'y']);
  });

  it('indexes camelCase identifiers whole and by part', () => {
    expect(indexTerms('getUserById')).toEqual(['getuserbyid', 'get', 'user', 'id']);
    expect(indexTerms('XMLHttpRequest')).toEqual(['xmlhttprequest', 'xml', 'http', 'request']);
    expect(indexTerms('plain')).toEqual(['plain']);
  });

  it('drops stop words and over-long tokens', () => {
    expect(indexTerms('The')).toBeNull();
    expect(indexTerms('x'.repeat(65))).toBeNull();
    expect(indexTerms('x'.repeat(64))).toEqual(['x'.repeat(64)]);
  });

  it('keeps query identifiers whole and removes duplicates', () => {
    expect(queryTerms('getUserById and the getuserbyid, SQL sql')).toEqual(['getuserbyid', 'sql']);
  });
});

describe('findMatches', () => {
  it('finds whole words only, case-insensitively', () => {
    const text = 'Injection here; no reinjection there; INJECTION again.';
    const words = findMatches(text, ['injection']).map((m) => text.slice(m.start, m.end));
    expect(words).toEqual(['Injection', 'INJECTION']);
  });

  it('finds a camelCase part by its whole identifier', () => {
    const text = 'call getUserById(id) then user.save()';
    const words = findMatches(text, ['user']).map((m) => text.slice(m.start, m.end));
    expect(words).toEqual(['getUserById', 'user']);
  });

  it('property: the word-scan path (many terms) finds what the regex path (few terms) finds', () => {
    const word = fc.constantFrom('race', 'Race', 'racer', 'getRaceLock', 'lock', 'x', 'déjà', 'DÉJÀ', 'a_b', 'raceLOCK');
    const sep = fc.constantFrom(' ', '.', '\n', '-', '/', '');
    const text = fc.array(fc.tuple(word, sep), { maxLength: 60 }).map((p) => p.map(([w, s]) => w + s).join(''));
    const dummies = Array.from({ length: 9 }, (_, i) => `zz${i}q`);
    fc.assert(
      fc.property(text, fc.subarray(['race', 'lock', 'déjà', 'getracelock', 'a'], { minLength: 1 }), (t, terms) => {
        expect(findMatches(t, [...terms, ...dummies])).toEqual(findMatches(t, terms));
      }),
      { numRuns: 300 },
    );
  });

  it('escapes regex characters in terms', () => {
    expect(findMatches('a.b (c) [d]', ['.*', '(c)'])).toEqual([]);
  });
});

describe('buildSnippet', () => {
  it('marks matched words and collapses whitespace', () => {
    const s = buildSnippet('Found   SQL\n\n injection\tin db/query.ts', ['sql', 'injection']);
    expect(s).toBe('Found **SQL** **injection** in db/query.ts');
  });

  it('returns a short text whole, without ellipses', () => {
    expect(buildSnippet('just a line', ['line'])).toBe('just a **line**');
  });

  it('cuts a long text around the match at word boundaries with ellipses', () => {
    const before = 'lorem ipsum dolor sit amet '.repeat(100);
    const after = ' consectetur adipiscing elit sed do'.repeat(100);
    const text = `${before}the deadlock happens here${after}`;
    const s = buildSnippet(text, ['deadlock']);
    expect(s.startsWith('…')).toBe(true);
    expect(s.endsWith('…')).toBe(true);
    expect(visible(s).length).toBeLessThanOrEqual(SNIPPET_CHARS);
    expect(visible(s).length).toBeGreaterThan(SNIPPET_CHARS - 30);
    expect(s).toContain('**deadlock**');
    // Word boundaries: every word of the snippet is a whole word of the source.
    const words = new Set(text.split(/\s+/));
    for (const w of visible(s).replace(/…/g, '').trim().split(' ')) expect(words.has(w)).toBe(true);
  });

  it('picks the densest cluster: both terms together beat one term alone', () => {
    const filler = (n: number): string => 'neutral words fill this space nicely '.repeat(n);
    const text = `${filler(20)}a lone mutex mention ${filler(20)} the eviction race needs a mutex here ${filler(20)}`;
    const s = buildSnippet(text, ['mutex', 'eviction']);
    expect(s).toContain('**eviction**');
    expect(s).toContain('**mutex**');
    expect(s).not.toContain('lone');
  });

  it('falls back to the start of the text when no word matches', () => {
    const text = `${'alpha beta gamma '.repeat(40)}`;
    const s = buildSnippet(text, ['zeta']);
    expect(s.startsWith('alpha beta')).toBe(true);
    expect(s.endsWith('…')).toBe(true);
    expect(s.length).toBeLessThanOrEqual(SNIPPET_CHARS);
  });

  it('drops markdown bold and ANSI colors so ** only marks matches', () => {
    const s = buildSnippet('## Finding: **SQL injection** \u001b[31mcritical\u001b[0m', ['sql']);
    expect(s).toBe('## Finding: **SQL** injection critical');
  });

  it('handles the match at the very start and the very end', () => {
    const body = ' middle words'.repeat(60);
    expect(buildSnippet(`start${body}`, ['start']).startsWith('**start**')).toBe(true);
    expect(buildSnippet(`${body} finish`, ['finish']).endsWith('**finish**')).toBe(true);
  });

  it('cuts a blob rather than returning an empty snippet', () => {
    const blob = 'QUJD'.repeat(3000);
    const s = buildSnippet(`${blob} and then the token leaked`, ['zzz']);
    expect(s.startsWith('QUJD')).toBe(true);
    expect(s.endsWith('…')).toBe(true);
    expect(s.length).toBeGreaterThan(200);
    const around = buildSnippet(`${blob} the token leaked here ${blob}`, ['leaked']);
    expect(around).toContain('**leaked**');
    expect(visible(around).length).toBeLessThanOrEqual(SNIPPET_CHARS);
  });

  it('returns an empty snippet for an empty text', () => {
    expect(buildSnippet('', ['x'])).toBe('');
  });

  it('property: ≤ 300 visible chars, balanced markers, marked words match a term', () => {
    const word = fc.constantFrom('race', 'Race', 'lock', 'cache', 'evict', 'getRaceLock', 'the', 'x', 'déjà', '𝒳', '**', '`');
    const sep = fc.constantFrom(' ', '  ', '\n', '\t', '.', ', ', '/', '\u001b[1m');
    const text = fc.array(fc.tuple(word, sep), { maxLength: 400 }).map((parts) => parts.map(([w, s]) => w + s).join(''));
    const terms = fc.subarray(['race', 'lock', 'cache', 'evict', 'déjà'], { minLength: 1 });
    fc.assert(
      fc.property(text, terms, (t, ts) => {
        const s = buildSnippet(t, ts);
        expect(visible(s).length).toBeLessThanOrEqual(SNIPPET_CHARS);
        expect((s.match(/\*\*/g) ?? []).length % 2).toBe(0);
        expect(s).not.toMatch(/\s{2}/);
        for (const w of marked(s)) {
          expect(indexTerms(w)?.some((x) => ts.includes(x))).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });
});
