/**
 * Pins the fast paths that reach into minisearch's internals (src/search/internals.ts) against
 * minisearch's public behaviour: same serialization, same results with and without the term
 * cache, through discards and vacuuming.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import MiniSearch from 'minisearch';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { indexTerms, queryTerm, tokenize } from '../../src/search/analyze.js';
import { cacheTermLookups, hasInternals, scoringView, type ScoringView } from '../../src/search/internals.js';
import { PackedIndex, packMiniSearch, packPlain } from '../../src/search/packed.js';
import { ScoreScratch, scoreQuery } from '../../src/search/scorer.js';
import { MAX_PREFIX_EXPANSIONS, RunIndex, search } from '../../src/search/index.js';
import { auditRecords, makeRecord, noSnippets, removeDir, tempDir } from './fixtures.js';

interface Doc {
  id: string;
  text: string;
  title: string;
}

const options = { fields: ['text', 'title'], storeFields: ['title'], tokenize, processTerm: indexTerms, searchOptions: { tokenize, processTerm: queryTerm } };
const docs: Doc[] = auditRecords('r1').map((r) => ({ id: r.taskId, text: r.output, title: r.prompt }));
const noPause = async (): Promise<void> => {};

let dir: string;
beforeEach(async () => {
  dir = await tempDir();
});
afterEach(async () => {
  await removeDir(dir);
});

describe('minisearch internals', () => {
  it('are there in the installed minisearch (else the fast paths are silently off)', () => {
    expect(hasInternals(new MiniSearch<Doc>(options))).toBe(true);
  });
});

const fieldIds = { text: 0, title: 1 };

/** Doc id → score of every match, through scorer.ts over a view. */
function scores(view: ScoringView, terms: string[], extra: { prefix?: boolean; fuzzy?: number | false } = {}): Map<string, number> {
  const { top } = scoreQuery(
    view,
    { terms, and: false, prefix: extra.prefix ?? false, fuzzy: extra.fuzzy ?? false, maxFuzzy: 3, minExpanded: 3, maxPrefixExpansions: 500, boosts: { text: 1, title: 0.5 }, want: 100 },
    new ScoreScratch(),
  );
  return new Map(top.map((d) => [String(view.documentIds.get(d.shortId)), Math.round(d.score * 1e9) / 1e9]));
}

describe('packMiniSearch and PackedIndex', () => {
  const build = (): MiniSearch<Doc> => {
    const ms = new MiniSearch<Doc>(options);
    ms.addAll(docs);
    ms.discard('db-query'); // leaves dirt: postings of a discarded document
    ms.add({ id: 'db-query', text: 'rewritten: SQL injection fixed', title: 'again' });
    return ms;
  };

  it('packs the same through the internals and through toJSON, terms sorted', async () => {
    const ms = build();
    const packed = (await packMiniSearch(ms, noPause, 1))!;
    expect(packed).toEqual(packPlain(ms.toJSON()));
    expect([...packed.terms].sort()).toEqual(packed.terms);
    expect(packed.refs).toHaveLength(ms.documentCount);
    expect(Object.keys(fieldIds)).toEqual(packed.fields);
  });

  it('scores exactly like the minisearch it was packed from: plain, prefix and fuzzy', async () => {
    const ms = build();
    const view = new PackedIndex((await packMiniSearch(ms, noPause, 1))!).view();
    const live = scoringView(ms)!;
    for (const q of [['injection'], ['sql', 'injection'], ['race', 'condition'], ['cors', 'origin'], ['rewritten']]) {
      expect(scores(view, q)).toEqual(scores(live, q));
    }
    for (const q of ['inj', 'ses', 'cook', 'rec']) expect(scores(view, [q], { prefix: true })).toEqual(scores(live, [q], { prefix: true }));
    for (const [q, d] of [['injecton', 1], ['fixaton', 1], ['sesion', 2], ['raec', 2], ['cookei', 3]] as const) {
      expect(scores(view, [q], { fuzzy: d })).toEqual(scores(live, [q], { fuzzy: d }));
    }
    // The words found within an edit distance, against minisearch's own walk of its tree (on an
    // index without dirt: minisearch still finds words only discarded documents had).
    const clean = new MiniSearch<Doc>(options);
    clean.addAll(docs);
    const packedClean = new PackedIndex((await packMiniSearch(clean, noPause, 1))!).view();
    for (const [q, d] of [['injecton', 1], ['fixaton', 1], ['sesion', 2], ['raec', 2], ['cookei', 3], ['a', 1], ['zzzzzzzz', 3]] as const) {
      const mine = [...packedClean.fuzzy(q, d)].map(([w, [, dist]]) => [w, dist]).sort();
      const theirs = [...scoringView(clean)!.fuzzy(q, d)].map(([w, [, dist]]) => [w, dist]).sort();
      expect(mine).toEqual(theirs);
    }
  });

  it('turns back into a minisearch that searches the same', async () => {
    const ms = build();
    const packed = new PackedIndex((await packMiniSearch(ms, noPause, 1))!);
    const thawed = MiniSearch.loadJS<Doc>(await packed.toPlain(noPause, 1), options);
    for (const q of ['injection', 'race condition', 'cors origin', 'rewritten']) {
      expect(thawed.search(q).map((r) => [r.id, r.score])).toEqual(ms.search(q).map((r) => [r.id, r.score]));
    }
  });

  it('pauses between slices', async () => {
    const ms = new MiniSearch<Doc>(options);
    ms.addAll(docs);
    let pauses = 0;
    await packMiniSearch(ms, async () => void pauses++, 0);
    expect(pauses).toBeGreaterThan(0);
  });
});

describe('cacheTermLookups', () => {
  it('gives the same results as a plain index through discards, vacuum and re-adds', async () => {
    const plain = new MiniSearch<Doc>({ ...options, autoVacuum: false });
    const cached = cacheTermLookups(new MiniSearch<Doc>({ ...options, autoVacuum: false }));
    for (const ms of [plain, cached]) {
      ms.addAll(docs);
      for (const d of docs.slice(0, 8)) ms.discard(d.id);
      await ms.vacuum(); // deletes terms only the discarded documents had
      // Re-add documents whose terms were deleted from the tree: they must not land in orphaned postings.
      ms.addAll(docs.slice(0, 8).map((d) => ({ ...d, text: `${d.text} zanzibar` })));
    }
    for (const q of ['SQL injection', 'zanzibar', 'race condition', 'session fixation', 'lodash', 'cors']) {
      expect(cached.search(q)).toEqual(plain.search(q));
    }
    expect(cached.search('zanzibar')).toHaveLength(8);
    expect(cached.termCount).toBe(plain.termCount);
  });

  it('keeps working after a term is replaced by loadJS-style set', () => {
    const ms = cacheTermLookups(new MiniSearch<Doc>(options));
    ms.add({ id: 'a', text: 'alpha', title: '' });
    ms.remove({ id: 'a', text: 'alpha', title: '' });
    ms.add({ id: 'b', text: 'alpha beta', title: '' });
    expect(ms.search('alpha').map((r) => r.id)).toEqual(['b']);
  });
});

describe('prefix expansion cap', () => {
  it('keeps the shortest extensions of a prefix', async () => {
    const letters = (n: number): string => (n < 26 ? String.fromCharCode(97 + n) : letters(Math.floor(n / 26) - 1) + letters(n % 26));
    const words = Array.from({ length: MAX_PREFIX_EXPANSIONS + 20 }, (_, i) => `pre${letters(i)}`);
    const index = await RunIndex.open({
      indexFile: path.join(dir, 'index.json'),
      runId: 'r1',
      loadRecords: async () => words.map((w, i) => makeRecord({ runId: 'r1', phaseId: 'p', taskId: `t${i}`, output: w })),
    });
    const { total, hits } = search([index], 'pre', { prefix: true, limit: 50 });
    expect(total).toBe(MAX_PREFIX_EXPANSIONS);
    expect(hits[0]?.taskId).toBe('t0'); // a 4-letter extension weighs most; ties go to the first indexed
    expect(hits[0]?.snippet).toBe('**prea**');
  });
});

describe('RunIndex.save, packing in slices', () => {
  it('holds adds made while it walks the index, and indexes them right after', async () => {
    const file = path.join(dir, 'index.json');
    const words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta'];
    const many = Array.from({ length: 3000 }, (_, i) =>
      makeRecord({ runId: 'r1', phaseId: 'p', taskId: `t${i}`, output: Array.from({ length: 200 }, (_, j) => `${words[(i + j) % 8]}${(i * j) % 101}`).join(' ') }),
    );
    const index = await RunIndex.open({ indexFile: file, runId: 'r1', loadRecords: async () => many });
    const saving = index.save();
    await new Promise((r) => setImmediate(r)); // the save is walking the index now (it takes many slices)
    expect(index.add(makeRecord({ runId: 'r1', phaseId: 'p', taskId: 'late', output: 'kerberos' }))).toBe(true);
    expect(index.add(makeRecord({ runId: 'r1', phaseId: 'p', taskId: 't5', attempt: 2, output: 'kerberos retried' }))).toBe(true);
    expect(index.add(makeRecord({ runId: 'r1', phaseId: 'p', taskId: 't5', attempt: 1, output: 'old' }))).toBe(false);
    expect(search([index], 'kerberos').total).toBe(0); // held
    await saving;
    expect(search([index], 'kerberos').total).toBe(2);
    expect(index.get('p', 't5')?.attempt).toBe(2);
    expect(JSON.parse(await readFile(file, 'utf8')).docCount).toBe(3000);
    expect(index.dirty).toBe(true);
    await index.flush();
    expect(JSON.parse(await readFile(file, 'utf8')).docCount).toBe(3001);
  });

  it('vacuums replaced attempts before writing', async () => {
    const file = path.join(dir, 'index.json');
    const index = await RunIndex.open({ indexFile: file, runId: 'r1', loadRecords: async () => auditRecords('r1') });
    for (const attempt of [2, 3]) for (const r of auditRecords('r1')) index.add({ ...r, attempt, output: `${r.output} again` });
    expect(index.docCount).toBe(16);
    await index.save();
    expect(search([index], 'again').total).toBe(16);
    // The file holds the latest attempts only: loaded, it finds the same and nothing of the replaced ones.
    const latest = new Map(auditRecords('r1').map((r) => [`${r.phaseId}/${r.taskId}`, 3]));
    const again = await RunIndex.open({ indexFile: file, runId: 'r1', loadRecords: async () => [], listAttempts: async () => latest });
    expect(again.openInfo.source).toBe('disk');
    expect(again.docCount).toBe(16);
    expect(search([again], 'again').total).toBe(16);
    expect(noSnippets(search([again], 'injection'))).toEqual(noSnippets(search([index], 'injection')));
  });

  it('writes an index that loads to the same results, while adds go on during the save', async () => {
    const file = path.join(dir, 'index.json');
    const records = auditRecords('r1');
    const index = await RunIndex.open({ indexFile: file, runId: 'r1', loadRecords: async () => records.slice(0, 10) });
    const saving = index.save();
    await new Promise((r) => setImmediate(r)); // the save has taken its snapshot, the write is under way
    for (const r of records.slice(10)) index.add(r); // lands in the next save
    await saving;
    expect(JSON.parse(await readFile(file, 'utf8')).docCount).toBe(10);
    expect(index.dirty).toBe(true);
    await index.flush();
    const latest = new Map(records.map((r) => [`${r.phaseId}/${r.taskId}`, 1]));
    const again = await RunIndex.open({ indexFile: file, runId: 'r1', loadRecords: async () => records, listAttempts: async () => latest });
    expect(again.openInfo.source).toBe('disk');
    for (const q of ['SQL injection', 'race', 'timingSafeEqual', 'lodash']) {
      expect(search([again], q, { limit: 50 })).toEqual(noSnippets(search([index], q, { limit: 50 })));
    }
    expect(search([again], 'inj', { prefix: true })).toEqual(noSnippets(search([index], 'inj', { prefix: true })));
  });
});
