import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RunIndex, SEARCH_INDEX_KIND, search } from '../../src/search/index.js';
import type { AgentRecord } from '../../src/store/types.js';
import { FINDINGS, RELEVANCE, auditRecords, makeRecord, noSnippets, removeDir, tempDir } from './fixtures.js';

let dir: string;
beforeEach(async () => {
  dir = await tempDir();
});
afterEach(async () => {
  await removeDir(dir);
});

/** Opens the index of run `r1` at `<dir>/index.json` over `records`, counting loadRecords calls. */
async function openRun(records: AgentRecord[], extra: Partial<Parameters<typeof RunIndex.open>[0]> = {}) {
  let loads = 0;
  const index = await RunIndex.open({
    indexFile: path.join(dir, 'index.json'),
    runId: 'r1',
    loadRecords: async () => {
      loads++;
      return records;
    },
    phaseTitles: { audit: 'Security audit' },
    ...extra,
  });
  return { index, loads: () => loads };
}

describe('RunIndex relevance', () => {
  it.each(RELEVANCE)('%s → %s ranks first', async (query, taskId) => {
    const { index } = await openRun(auditRecords('r1'));
    const { hits } = search([index], query);
    expect(hits[0]?.taskId).toBe(taskId);
  });

  it('has one document per task and ≥ 12 distinct outputs', async () => {
    const { index } = await openRun(auditRecords('r1'));
    expect(index.docCount).toBe(FINDINGS.length);
    expect(FINDINGS.length).toBeGreaterThanOrEqual(12);
    expect(RELEVANCE.length).toBeGreaterThanOrEqual(10);
  });

  it('finds a task by its phase title and task id', async () => {
    const records = [
      makeRecord({ runId: 'r1', phaseId: 'plan', taskId: 'outline', output: 'three chapters' }),
      makeRecord({ runId: 'r1', phaseId: 'audit', taskId: 'zebra-check', output: 'nothing found' }),
    ];
    const { index } = await openRun(records, { phaseTitles: { plan: 'Outline the handbook' } });
    expect(search([index], 'handbook').hits.map((h) => h.taskId)).toEqual(['outline']);
    expect(search([index], 'zebra').hits.map((h) => h.taskId)).toEqual(['zebra-check']);
  });
});

describe('RunIndex persistence', () => {
  it('rebuilds when index.json is missing, then reloads from disk to the same results', async () => {
    const records = auditRecords('r1');
    const first = await openRun(records);
    expect(first.index.openInfo).toMatchObject({ source: 'rebuilt', reason: 'missing' });
    expect(first.index.dirty).toBe(true);
    await first.index.save();
    expect(first.index.dirty).toBe(false);

    const second = await openRun(records);
    expect(second.index.openInfo.source).toBe('disk');
    expect(second.index.docCount).toBe(records.length);
    for (const [query] of RELEVANCE) {
      expect(search([second.index], query, { limit: 50 })).toEqual(noSnippets(search([first.index], query, { limit: 50 })));
    }
    expect(search([second.index], 'inj', { prefix: true })).toEqual(noSnippets(search([first.index], 'inj', { prefix: true })));
    expect(search([second.index], 'fixaton', { fuzzy: 1 })).toEqual(noSnippets(search([first.index], 'fixaton', { fuzzy: 1 })));
  });

  it('writes a versioned envelope', async () => {
    const { index } = await openRun(auditRecords('r1'));
    await index.save();
    const env = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8'));
    expect(env).toMatchObject({ schemaVersion: 2, kind: SEARCH_INDEX_KIND, format: 'packed-1', runId: 'r1', docCount: FINDINGS.length });
    expect(env.refs).toHaveLength(FINDINGS.length);
    // No output text in the file: snippets are read from the agent records.
    expect(JSON.stringify(env)).not.toContain('DROP TABLE');
  });

  it('uses listAttempts for the freshness check and loads no record when fresh', async () => {
    const records = auditRecords('r1');
    const { index } = await openRun(records);
    await index.save();
    const latest = new Map(records.map((r) => [`${r.phaseId}/${r.taskId}`, r.attempt]));
    const again = await openRun(records, { listAttempts: async () => latest });
    expect(again.index.openInfo.source).toBe('disk');
    expect(again.loads()).toBe(0);
  });

  const damaged: [string, (env: Record<string, unknown>, text: string) => string, RegExp][] = [
    ['garbage', () => 'not json {', /^corrupt/],
    ['truncated JSON', (_e, text) => text.slice(0, Math.floor(text.length / 2)), /^corrupt/],
    ['a JSON array', () => '[]', /^corrupt/],
    ['an old schemaVersion', (e) => JSON.stringify({ ...e, schemaVersion: 0 }), /^schemaVersion 0/],
    ['another kind', (e) => JSON.stringify({ ...e, kind: 'fanfold.run' }), /^corrupt: kind/],
    ['another format', (e) => JSON.stringify({ ...e, format: 'packed-0' }), /^format/],
    ['the minisearch JSON of index schema 1', (e) => JSON.stringify({ schemaVersion: 1, kind: e['kind'], minisearch: '7', analyzer: e['analyzer'], runId: 'r1', docCount: e['docCount'], index: {} }), /^schemaVersion 1 ≠ 2/],
    ['another analyzer', (e) => JSON.stringify({ ...e, analyzer: 'old' }), /^analyzer/],
    ['another run', (e) => JSON.stringify({ ...e, runId: 'r2' }), /^belongs to run/],
    ['a docCount that disagrees with the index', (e) => JSON.stringify({ ...e, docCount: 3 }), /^corrupt: docCount/],
    ['postings that are not base64 pieces', (e) => JSON.stringify({ ...e, postings: 7 }), /^corrupt/],
    ['a postings piece that is not base64', (_e, text) => text.replace(',"postings":["', ',"postings":["!"'), /^corrupt: postings piece 0 is not base64/],
    ['a postings piece with bytes the offsets do not cover', (_e, text) => text.replace(/",?"?\]\}\s*$/, 'AAAA"]}'), /^corrupt: offsets/],
    ['offsets that do not fit the postings', (e) => JSON.stringify({ ...e, offsets: Buffer.alloc(8).toString('base64') }), /^corrupt: offsets/],
    ['statuses that are not statuses', (e) => JSON.stringify({ ...e, statuses: (e['statuses'] as string[]).map(() => 'great') }), /^corrupt: statuses/],
  ];
  it.each(damaged)('rebuilds an index.json with %s', async (_name, damage, reason) => {
    const records = auditRecords('r1');
    const { index } = await openRun(records);
    await index.save();
    const file = path.join(dir, 'index.json');
    const text = await readFile(file, 'utf8');
    await writeFile(file, damage(JSON.parse(text), text));
    const again = await openRun(records);
    expect(again.index.openInfo.source).toBe('rebuilt');
    expect(again.index.openInfo.reason).toMatch(reason);
    expect(search([again.index], 'SQL injection').hits[0]?.taskId).toBe('db-query');
  });

  it('catches up an index that lacks tasks instead of rebuilding it', async () => {
    const records = auditRecords('r1');
    const { index } = await openRun(records.slice(0, 5));
    await index.save();
    const again = await openRun(records);
    expect(again.index.openInfo).toMatchObject({ source: 'disk', reason: 'behind: 11 tasks', caughtUp: 11 });
    expect(again.index.docCount).toBe(16);
    expect(again.index.dirty).toBe(true);
    for (const [query, taskId] of RELEVANCE) expect(search([again.index], query).hits[0]?.taskId).toBe(taskId);
  });

  it('catches up a newer attempt on disk', async () => {
    const records = auditRecords('r1');
    const { index } = await openRun(records);
    await index.save();
    const retried = makeRecord({ runId: 'r1', phaseId: 'audit', taskId: 'db-query', attempt: 2, output: 'retry says: blind boolean injection' });
    const again = await openRun([...records, retried]);
    expect(again.index.openInfo).toMatchObject({ source: 'disk', reason: 'behind: 1 task', caughtUp: 1 });
    expect(search([again.index], 'boolean').hits[0]).toMatchObject({ taskId: 'db-query', attempt: 2 });
    expect(search([again.index], 'parameterized').total).toBe(0);
  });

  it('with listAttempts + readRecord, reads only the records the index lacks', async () => {
    const records = auditRecords('r1');
    const { index } = await openRun(records.slice(0, 14));
    await index.save();
    const latest = new Map(records.map((r) => [`${r.phaseId}/${r.taskId}`, 1]));
    const read: string[] = [];
    const again = await openRun(records, {
      listAttempts: async () => latest,
      readRecord: async (phaseId, taskId) => {
        read.push(`${phaseId}/${taskId}`);
        return records.find((r) => r.phaseId === phaseId && r.taskId === taskId)!;
      },
    });
    expect(again.loads()).toBe(0);
    expect(read).toEqual(records.slice(14).map((r) => `audit/${r.taskId}`));
    expect(again.index.openInfo).toMatchObject({ source: 'disk', caughtUp: 2 });
  });

  it('rebuilds an index that holds a task the run does not have', async () => {
    const records = auditRecords('r1');
    const { index } = await openRun(records);
    await index.save();
    const again = await openRun(records.slice(1));
    expect(again.index.openInfo).toMatchObject({ source: 'rebuilt', reason: 'stale: 1 indexed tasks have no agent file' });
    expect(again.index.docCount).toBe(15);
  });

  it('rebuilds an index that holds a newer attempt than the run', async () => {
    const records = auditRecords('r1');
    const retried = makeRecord({ runId: 'r1', phaseId: 'audit', taskId: 'db-query', attempt: 2, output: 'second' });
    const { index } = await openRun([...records, retried]);
    await index.save();
    const again = await openRun(records);
    expect(again.index.openInfo.reason).toMatch(/^stale: audit\/db-query attempt 2 indexed, 1 on disk/);
    expect(again.index.get('audit', 'db-query')?.attempt).toBe(1);
  });

  it('saves a rebuilt or caught-up index when asked (the owner does)', async () => {
    const records = auditRecords('r1');
    await openRun(records.slice(0, 3), { saveRebuilt: true });
    const caught = await openRun(records, { saveRebuilt: true });
    expect(caught.index.openInfo.caughtUp).toBe(13);
    expect(caught.index.dirty).toBe(false);
    const again = await openRun(records);
    expect(again.index.openInfo).toEqual({ source: 'disk', ms: expect.any(Number) });
  });

  it('aborts a rebuild on signal', async () => {
    const ac = new AbortController();
    ac.abort(new Error('stop now'));
    await expect(openRun(auditRecords('r1'), { signal: ac.signal })).rejects.toThrow('stop now');
  });
});

describe('RunIndex.add', () => {
  it('replaces the document of an earlier attempt and ignores an older one', async () => {
    const { index } = await openRun([]);
    const a1 = makeRecord({ runId: 'r1', phaseId: 'audit', taskId: 't', attempt: 1, status: 'failed', output: 'alpha crashed' });
    const a2 = makeRecord({ runId: 'r1', phaseId: 'audit', taskId: 't', attempt: 2, output: 'beta finished' });
    expect(index.add(a1)).toBe(true);
    expect(index.add(a2)).toBe(true);
    expect(index.docCount).toBe(1);
    expect(search([index], 'alpha').total).toBe(0);
    expect(search([index], 'beta').hits[0]).toMatchObject({ attempt: 2, status: 'succeeded', ref: 'r1/audit/t' });
    expect(index.add(a1)).toBe(false);
    expect(search([index], 'alpha').total).toBe(0);
    expect(index.get('audit', 't')?.attempt).toBe(2);
  });

  it('keeps only the latest attempt when records arrive out of order in a rebuild', async () => {
    const records = [
      makeRecord({ runId: 'r1', phaseId: 'p', taskId: 't', attempt: 3, output: 'third gamma' }),
      makeRecord({ runId: 'r1', phaseId: 'p', taskId: 't', attempt: 1, output: 'first alpha' }),
    ];
    const { index } = await openRun(records);
    expect(index.docCount).toBe(1);
    expect(search([index], 'alpha').total).toBe(0);
    expect(search([index], 'gamma').hits[0]?.attempt).toBe(3);
  });

  it('refuses a record of another run', async () => {
    const { index } = await openRun([]);
    expect(() => index.add(makeRecord({ runId: 'r2', phaseId: 'p', taskId: 't' }))).toThrow(/expected a record of run 'r1', got one of run 'r2'/);
  });

  it('survives many replacements (discard + vacuum) and persists the result', async () => {
    const { index } = await openRun([]);
    for (let attempt = 1; attempt <= 60; attempt++) {
      index.add(makeRecord({ runId: 'r1', phaseId: 'p', taskId: 't', attempt, output: `attempt${attempt} marker` }));
    }
    expect(search([index], 'marker').total).toBe(1);
    expect(search([index], 'attempt60').total).toBe(1);
    expect(search([index], 'attempt59').total).toBe(0);
    await index.save();
    const latest = new Map([['p/t', 60]]);
    const again = await openRun([], { listAttempts: async () => latest });
    expect(again.index.openInfo.source).toBe('disk');
    expect(search([again.index], 'marker').hits[0]?.attempt).toBe(60);
  });

  it('indexes with the phase title given to add', async () => {
    const { index } = await openRun([]);
    index.add(makeRecord({ runId: 'r1', phaseId: 'verify', taskId: 't', output: 'ok' }), 'Adversarial verification');
    expect(search([index], 'adversarial').total).toBe(1);
  });
});

describe('RunIndex saving', () => {
  it('saveDebounced coalesces many adds into few saves; flush saves the rest', async () => {
    const { index } = await openRun([], { saveDebounceMs: 50 });
    for (let i = 0; i < 200; i++) {
      index.add(makeRecord({ runId: 'r1', phaseId: 'p', taskId: `t${i}`, output: `output number ${i}` }));
      index.saveDebounced();
    }
    await index.flush();
    // Real timers: 200 synchronous adds fall into one 50 ms window; allow one more for slow machines.
    expect(index.saveCount).toBeLessThanOrEqual(2);
    expect(index.dirty).toBe(false);
    const latest = new Map(Array.from({ length: 200 }, (_, i) => [`p/t${i}`, 1] as [string, number]));
    const again = await openRun([], { listAttempts: async () => latest });
    expect(again.index.openInfo.source).toBe('disk');
    expect(again.index.docCount).toBe(200);
  });

  it('saves at most once per window while adds keep coming, and the last state reaches disk', async () => {
    const { index } = await openRun([], { saveDebounceMs: 20 });
    for (let i = 0; i < 10; i++) {
      index.add(makeRecord({ runId: 'r1', phaseId: 'p', taskId: `t${i}`, output: 'x' }));
      index.saveDebounced();
      await new Promise((r) => setTimeout(r, 8));
    }
    await index.flush();
    expect(index.saveCount).toBeGreaterThanOrEqual(1);
    expect(index.saveCount).toBeLessThanOrEqual(6);
    const env = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8'));
    expect(env.docCount).toBe(10);
  });

  it('flush with nothing unsaved writes nothing', async () => {
    const { index } = await openRun(auditRecords('r1'));
    await index.flush();
    expect(index.saveCount).toBe(1);
    await index.flush();
    expect(index.saveCount).toBe(1);
  });

  it('reports a failed background save on flush, and flush retries it', async () => {
    const bad = path.join(dir, 'no-such-dir', 'index.json');
    const index = await RunIndex.open({ indexFile: bad, runId: 'r1', loadRecords: async () => [], saveDebounceMs: 5 });
    index.add(makeRecord({ runId: 'r1', phaseId: 'p', taskId: 't', output: 'x' }));
    index.saveDebounced();
    await new Promise((r) => setTimeout(r, 50));
    expect(index.dirty).toBe(true);
    await expect(index.flush()).rejects.toThrow(/index\.json/);
  });

  it('a rebuild of 3,000 documents yields to the event loop', async () => {
    const words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta', 'iota', 'kappa'];
    const records = Array.from({ length: 3000 }, (_, i) =>
      makeRecord({
        runId: 'r1',
        phaseId: 'p',
        taskId: `t${i}`,
        output: Array.from({ length: 300 }, (_, j) => `${words[(i * 7 + j * 3) % 10]}${(i * j) % 97}`).join(' '),
      }),
    );
    // Two probes: a setImmediate chain counts the turns the rebuild gives back (every ~8 ms of
    // work, so at least one per 8 ms of CPU whatever the machine's load), and a 1 ms interval
    // measures the longest gap between timer runs.
    let turns = 0;
    let probing = true;
    const turn = (): void => {
      turns++;
      if (probing) setImmediate(turn);
    };
    setImmediate(turn);
    let last = performance.now();
    let longest = 0;
    const probe = setInterval(() => {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
    }, 1);
    const cpu = process.cpuUsage();
    const { index } = await openRun(records);
    const cpuMs = process.cpuUsage(cpu).user / 1000;
    probing = false;
    clearInterval(probe);
    expect(index.docCount).toBe(3000);
    expect(turns).toBeGreaterThanOrEqual(Math.floor(cpuMs / 8 / 2));
    // The goal is < 50 ms (bench/b5-search.mjs measures it); this bound only catches a rebuild
    // that does not yield at all, with room for GC pauses and preemption on loaded CI machines.
    expect(longest).toBeLessThan(1000);
  });
});
