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
import { cacheTermLookups, hasInternals, serializeSnapshot, snapshotIndex } from '../../src/search/internals.js';
import { MAX_PREFIX_EXPANSIONS, RunIndex, search } from '../../src/search/index.js';
import { auditRecords, makeRecord, removeDir, tempDir } from './fixtures.js';

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

describe('snapshotIndex + serializeSnapshot', () => {
  it('produce what JSON.stringify(minisearch) produces', async () => {
    const ms = new MiniSearch<Doc>(options);
    ms.addAll(docs);
    ms.discard('db-query'); // leaves dirt: postings of a discarded document
    ms.add({ id: 'db-query', text: 'rewritten: SQL injection fixed', title: 'again' });
    const snap = snapshotIndex(ms)!;
    const text = (await serializeSnapshot(snap, noPause, 1)).join('');
    expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(ms)));
    const loaded = MiniSearch.loadJSON<Doc>(text, options);
    expect(loaded.search('injection')).toEqual(ms.search('injection'));
  });

  it('is a copy: later changes do not reach it', async () => {
    const ms = new MiniSearch<Doc>(options);
    ms.addAll(docs.slice(0, 3));
    const snap = snapshotIndex(ms)!;
    const before = (await serializeSnapshot(snap, noPause, 1)).join('');
    ms.addAll(docs.slice(3));
    ms.discard(docs[0]!.id);
    expect((await serializeSnapshot(snap, noPause, 1)).join('')).toBe(before);
    expect(MiniSearch.loadJSON<Doc>(before, options).documentCount).toBe(3);
  });

  it('pauses between slices', async () => {
    const ms = new MiniSearch<Doc>(options);
    ms.addAll(docs);
    let pauses = 0;
    await serializeSnapshot(snapshotIndex(ms)!, async () => void pauses++, 0);
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

describe('RunIndex.save with the snapshot serializer', () => {
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
      expect(search([again], q, { limit: 50 })).toEqual(search([index], q, { limit: 50 }));
    }
    expect(search([again], 'inj', { prefix: true })).toEqual(search([index], 'inj', { prefix: true }));
  });
});
