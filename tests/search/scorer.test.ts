/**
 * The scorer (src/search/scorer.ts) must rank exactly as minisearch's own search does: same
 * documents, same scores, same matched words — for random corpora and queries, with OR and AND,
 * prefix and fuzzy, filters and discarded documents.
 */
import fc from 'fast-check';
import MiniSearch from 'minisearch';
import { describe, expect, it } from 'vitest';
import { indexTerms, queryTerm, tokenize } from '../../src/search/analyze.js';
import { scoringView } from '../../src/search/internals.js';
import { ScoreScratch, scoreQuery, type ScoreQuery } from '../../src/search/scorer.js';

interface Doc {
  id: string;
  body: string;
  title: string;
  kind: string;
}

const BOOSTS = { body: 1, title: 1.5 };
const options = {
  fields: ['body', 'title'],
  storeFields: ['kind'],
  tokenize,
  processTerm: indexTerms,
  searchOptions: { tokenize, processTerm: queryTerm, boost: BOOSTS },
};

// A small vocabulary with shared prefixes and near-misses, so prefix and fuzzy have work to do.
const VOCAB = ['cache', 'cached', 'caches', 'cachet', 'lock', 'locks', 'locked', 'block', 'race', 'raced', 'trace', 'grace', 'queue', 'queued', 'query', 'quest', 'inject', 'injection', 'injected'];
const word = fc.constantFrom(...VOCAB);
const text = fc.array(word, { minLength: 1, maxLength: 30 }).map((w) => w.join(' '));
const corpus = fc.array(fc.record({ body: text, title: text, kind: fc.constantFrom('a', 'b') }), { minLength: 1, maxLength: 25 });
const queryWords = fc.uniqueArray(fc.constantFrom(...VOCAB, 'cach', 'injektion', 'lokc', 'zzz'), { minLength: 1, maxLength: 4 });

function build(docs: { body: string; title: string; kind: string }[]): MiniSearch<Doc> {
  const ms = new MiniSearch<Doc>({ ...options, autoVacuum: false });
  ms.addAll(docs.map((d, i) => ({ id: `d${i}`, ...d })));
  return ms;
}

function ours(ms: MiniSearch<Doc>, q: Omit<ScoreQuery, 'boosts' | 'want' | 'minExpanded' | 'maxPrefixExpansions' | 'maxFuzzy'>) {
  const view = scoringView(ms)!;
  const { total, top } = scoreQuery(
    view,
    { ...q, boosts: BOOSTS, minExpanded: 0, maxPrefixExpansions: Number.POSITIVE_INFINITY, maxFuzzy: 6, want: 1000 },
    new ScoreScratch(),
  );
  return { total, hits: top.map((d) => ({ id: view.documentIds.get(d.shortId) as string, score: d.score, terms: [...d.terms].sort() })) };
}

function theirs(ms: MiniSearch<Doc>, terms: string[], q: { and: boolean; prefix: boolean; fuzzy: number | false; kind?: string }) {
  const results = ms.search(terms.join(' '), {
    combineWith: q.and ? 'AND' : 'OR',
    prefix: q.prefix,
    fuzzy: q.fuzzy,
    ...(q.kind !== undefined ? { filter: (r) => r['kind'] === q.kind } : {}),
  });
  return { total: results.length, hits: results.map((r) => ({ id: r.id as string, score: r.score, terms: [...r.terms].sort() })) };
}

function expectSameRanking(a: ReturnType<typeof ours>, b: ReturnType<typeof theirs>): void {
  expect(a.total).toBe(b.total);
  const byId = new Map(b.hits.map((h) => [h.id, h]));
  for (const h of a.hits) {
    const other = byId.get(h.id);
    expect(other, `document ${h.id}`).toBeDefined();
    expect(h.score).toBeCloseTo(other!.score, 9);
    expect(h.terms).toEqual(other!.terms);
  }
  // Same order up to ties.
  for (let i = 1; i < a.hits.length; i++) expect(a.hits[i - 1]!.score).toBeGreaterThanOrEqual(a.hits[i]!.score);
}

describe('scoreQuery', () => {
  it('property: ranks as MiniSearch#search does', () => {
    fc.assert(
      fc.property(
        corpus,
        queryWords,
        fc.boolean(),
        fc.boolean(),
        fc.constantFrom<number | false>(false, 0.2, 1, 2),
        fc.constantFrom<string | undefined>(undefined, 'a'),
        (docs, words, and, prefix, fuzzy, kind) => {
          const ms = build(docs);
          const terms = words.map((w) => queryTerm(w)!).filter(Boolean);
          const mine = ours(ms, { terms, and, prefix, fuzzy, ...(kind !== undefined ? { keep: (s) => s['kind'] === kind } : {}) });
          expectSameRanking(mine, theirs(ms, terms, { and, prefix, fuzzy, ...(kind !== undefined ? { kind } : {}) }));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('property: with discarded documents awaiting vacuum, ranks as the vacuumed index does', async () => {
    await fc.assert(
      fc.asyncProperty(corpus, queryWords, fc.array(fc.nat(), { maxLength: 5 }), fc.boolean(), async (docs, words, drop, fuzzy) => {
        const ms = build(docs);
        for (const i of new Set(drop.map((n) => n % docs.length))) ms.discard(`d${i}`);
        const terms = words.map((w) => queryTerm(w)!).filter(Boolean);
        const q = { terms, and: false, prefix: true, fuzzy: fuzzy ? 1 : (false as const) };
        const mine = ours(ms, q);
        await ms.vacuum();
        expectSameRanking(mine, theirs(ms, terms, q));
        expectSameRanking(ours(ms, q), theirs(ms, terms, q));
      }),
      { numRuns: 200 },
    );
  });

  it('keeps only the best `want`, best first, ties by indexing order, and counts all', () => {
    const ms = build(Array.from({ length: 40 }, (_, i) => ({ body: i % 2 ? 'cache cache lock' : 'cache', title: '', kind: 'a' })));
    const view = scoringView(ms)!;
    const q: ScoreQuery = { terms: ['cache'], and: false, prefix: false, fuzzy: false, maxFuzzy: 6, minExpanded: 3, maxPrefixExpansions: 10, boosts: BOOSTS, want: 5 };
    const { total, top } = scoreQuery(view, q, new ScoreScratch());
    expect(total).toBe(40);
    expect(top.map((d) => view.documentIds.get(d.shortId))).toEqual(['d1', 'd3', 'd5', 'd7', 'd9']);
    const none = scoreQuery(view, { ...q, want: 0 }, new ScoreScratch());
    expect(none).toEqual({ total: 40, top: [] });
  });

  it('reuses its scratch buffers cleanly across queries and index growth', () => {
    const ms = build([{ body: 'race lock', title: '', kind: 'a' }]);
    const scratch = new ScoreScratch();
    const q: ScoreQuery = { terms: ['race'], and: false, prefix: false, fuzzy: false, maxFuzzy: 6, minExpanded: 3, maxPrefixExpansions: 10, boosts: BOOSTS, want: 10 };
    const first = scoreQuery(scoringView(ms)!, q, scratch);
    ms.addAll(Array.from({ length: 200 }, (_, i) => ({ id: `n${i}`, body: 'race', title: '', kind: 'b' })));
    const second = scoreQuery(scoringView(ms)!, q, scratch);
    const third = scoreQuery(scoringView(ms)!, q, scratch);
    expect(first.total).toBe(1);
    expect(second.total).toBe(201);
    expect(third).toEqual(second);
  });
});
