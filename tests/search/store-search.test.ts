import { mkdir, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  READ_REF_MAX_LIMIT,
  SearchError,
  clearSearchCache,
  openStoreRunIndex,
  parseRef,
  readRef,
  refToUri,
  searchCacheStats,
  searchStore,
} from '../../src/search/index.js';
import { RunStore } from '../../src/store/index.js';
import { auditRecords, makeRecord, makeRunRecord, removeDir, tempDir, writeAgent, writeRun } from './fixtures.js';

let root: string;
beforeEach(async () => {
  root = await tempDir();
  clearSearchCache();
});
afterEach(async () => {
  await removeDir(root);
});

/** Bumps a path's mtime so a change is visible even on coarse-timestamp filesystems. */
async function touch(p: string, secondsAhead: number): Promise<void> {
  const t = new Date(Date.now() + secondsAhead * 1000);
  await utimes(p, t, t);
}

async function caught(p: Promise<unknown>): Promise<SearchError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(SearchError);
    return err as SearchError;
  }
  throw new Error('expected a SearchError');
}

describe('searchStore', () => {
  it('searches every run of the store, best first', async () => {
    await writeRun(root, 'r1', auditRecords('r1'));
    await writeRun(root, 'r2', [makeRecord({ runId: 'r2', phaseId: 'audit', taskId: 'orm', output: 'raw SQL in reports.ts allows injection' })]);
    const page = await searchStore(root, 'SQL injection');
    expect(page.runsSearched).toBe(2);
    expect(page.skipped).toEqual([]);
    expect(page.total).toBe(2);
    expect(page.hits.map((h) => h.ref).sort()).toEqual(['r1/audit/db-query', 'r2/audit/orm']);
  });

  it('searches only opts.runId and names an unknown run', async () => {
    await writeRun(root, 'r1', auditRecords('r1'));
    await writeRun(root, 'r2', [makeRecord({ runId: 'r2', phaseId: 'audit', taskId: 'orm', output: 'SQL injection' })]);
    const page = await searchStore(root, 'SQL injection', { runId: 'r2' });
    expect(page.hits.map((h) => h.ref)).toEqual(['r2/audit/orm']);
    expect((await caught(searchStore(root, 'sql', { runId: 'nope' }))).message).toMatch(/no run 'nope' in the store/);
    expect((await caught(searchStore(root, 'sql', { runId: '../r1' }))).code).toBe('bad_option');
  });

  it('indexes phase titles from run.json', async () => {
    await writeRun(root, 'r1', [makeRecord({ runId: 'r1', phaseId: 'p1', taskId: 't', output: 'nothing' })], [{ id: 'p1', title: 'Threat modelling' }]);
    expect((await searchStore(root, 'threat')).hits[0]?.ref).toBe('r1/p1/t');
  });

  it('fails on a bad query before touching the disk', async () => {
    expect((await caught(searchStore(path.join(root, 'missing'), '   '))).code).toBe('bad_query');
  });

  it('returns an empty page for an empty or missing store', async () => {
    expect(await searchStore(path.join(root, 'missing'), 'sql')).toEqual({ hits: [], total: 0, runsSearched: 0, skipped: [] });
  });

  it('does not write index.json (read-only), and serves a settled run from the cache', async () => {
    await writeRun(root, 'r1', auditRecords('r1'));
    await touch(path.join(root, 'r1', 'agents'), -60); // a run that finished a minute ago
    await searchStore(root, 'sql');
    await searchStore(root, 'xss');
    await searchStore(root, 'race');
    expect(searchCacheStats()).toMatchObject({ runs: 1, loads: 1, hits: 2, syncs: 0 });
    await expect(readFile(path.join(root, 'r1', 'index.json'))).rejects.toThrow(/ENOENT/);
  });

  it('re-checks a recently changed run with a listing instead of trusting its mtime', async () => {
    await writeRun(root, 'r1', auditRecords('r1'));
    await searchStore(root, 'sql');
    await searchStore(root, 'xss');
    expect(searchCacheStats()).toMatchObject({ loads: 1, hits: 0, syncs: 1 });
  });

  it('loads a persisted index, then catches the cached index up in place as agents finish', async () => {
    await writeRun(root, 'r1', auditRecords('r1'));
    const owner = await openStoreRunIndex(root, 'r1', { saveRebuilt: true });
    expect(owner.openInfo.source).toBe('rebuilt');
    const reader = await openStoreRunIndex(root, 'r1');
    expect(reader.openInfo).toEqual({ source: 'disk', ms: expect.any(Number) });

    expect((await searchStore(root, 'kerberos')).total).toBe(0);
    // A new agent finishes: its file lands before the owner's (debounced) save.
    const rec = makeRecord({ runId: 'r1', phaseId: 'audit', taskId: 'kdc', output: 'kerberos tickets never expire' });
    await writeAgent(root, rec);
    await touch(path.join(root, 'r1', 'agents'), 5);
    expect((await searchStore(root, 'kerberos')).hits.map((h) => h.ref)).toEqual(['r1/audit/kdc']);
    // A retry of an old task replaces its document.
    await writeAgent(root, makeRecord({ runId: 'r1', phaseId: 'audit', taskId: 'db-query', attempt: 2, output: 'second look: blind injection' }));
    await touch(path.join(root, 'r1', 'agents'), 10);
    expect((await searchStore(root, 'blind')).hits[0]).toMatchObject({ ref: 'r1/audit/db-query', attempt: 2 });
    expect((await searchStore(root, 'parameterized')).total).toBe(0);
    expect(searchCacheStats()).toMatchObject({ loads: 1 });
    expect(searchCacheStats().syncs).toBeGreaterThanOrEqual(2);

    // The owner's later save does not make readers reload.
    owner.add(rec);
    await owner.flush();
    await searchStore(root, 'kerberos');
    expect(searchCacheStats().loads).toBe(1);
    // A fresh process loads the saved index and catches up only the retry the owner did not index.
    clearSearchCache();
    expect((await openStoreRunIndex(root, 'r1')).openInfo).toMatchObject({ source: 'disk', caughtUp: 1 });
  });

  it('reopens a cached run whose agent files disappeared', async () => {
    await writeRun(root, 'r1', auditRecords('r1'));
    expect((await searchStore(root, 'session fixation')).total).toBe(1);
    await rm(path.join(root, 'r1', 'agents', 'audit.auth-session.1.json'));
    await touch(path.join(root, 'r1', 'agents'), 5);
    expect((await searchStore(root, 'session fixation')).total).toBe(0);
    expect(searchCacheStats().loads).toBe(2);
  });

  it('an aborted search does not fail a concurrent one sharing its open', async () => {
    await writeRun(root, 'r1', auditRecords('r1'));
    const ac = new AbortController();
    const aborted = searchStore(root, 'sql', { signal: ac.signal });
    const other = searchStore(root, 'sql');
    ac.abort(new Error('caller went away'));
    await expect(aborted).rejects.toThrow('caller went away');
    expect((await other).total).toBe(1);
    expect(searchCacheStats().loads).toBe(1);
  });

  it('shares one open between concurrent searches of a run', async () => {
    await writeRun(root, 'r1', auditRecords('r1'));
    await Promise.all([searchStore(root, 'sql'), searchStore(root, 'xss'), searchStore(root, 'race')]);
    expect(searchCacheStats().loads).toBe(1);
  });

  it('sees a new run', async () => {
    await writeRun(root, 'r1', auditRecords('r1'));
    expect((await searchStore(root, 'kerberos')).total).toBe(0);
    await writeRun(root, 'r2', [makeRecord({ runId: 'r2', phaseId: 'a', taskId: 'kdc', output: 'kerberos' })]);
    await touch(root, 5);
    expect((await searchStore(root, 'kerberos')).hits.map((h) => h.ref)).toEqual(['r2/a/kdc']);
  });

  it('searches a run written through RunStore', async () => {
    const store = await RunStore.create(root, makeRunRecord('r9', [{ id: 'audit', title: 'Audit' }]));
    for (const rec of auditRecords('r9').slice(0, 4)) await store.writeAgentRecord(rec);
    await store.close();
    expect((await searchStore(root, 'session fixation')).hits[0]?.ref).toBe('r9/audit/auth-session');
  });

  it('skips unreadable agent files and still searches the rest of the run', async () => {
    await writeRun(root, 'r1', auditRecords('r1'));
    await writeFile(path.join(root, 'r1', 'agents', 'audit.broken.1.json'), '{ nope');
    const page = await searchStore(root, 'session fixation');
    expect(page.hits[0]?.ref).toBe('r1/audit/auth-session');
  });

  it('refuses a run directory that is a symlink out of the store, and lists it as skipped', async () => {
    const outside = await tempDir();
    try {
      await writeRun(outside, 'evil', [makeRecord({ runId: 'evil', phaseId: 'a', taskId: 'b', output: 'secret sauce' })]);
      await writeRun(root, 'r1', auditRecords('r1'));
      await symlink(path.join(outside, 'evil'), path.join(root, 'evil'));
      const page = await searchStore(root, 'secret sauce');
      expect(page.total).toBe(0);
      await expect(readRef(root, 'evil/a/b')).rejects.toThrow(/outside|symlink/);
    } finally {
      await removeDir(outside);
    }
  });
});

describe('readRef', () => {
  const long = Array.from({ length: 3000 }, (_, i) => `line ${i} of the report`).join('\n');

  beforeEach(async () => {
    await writeRun(root, 'r1', [
      makeRecord({ runId: 'r1', phaseId: 'audit', taskId: 'big', attempt: 1, status: 'failed', output: 'first try' }),
      makeRecord({ runId: 'r1', phaseId: 'audit', taskId: 'big', attempt: 2, output: long, truncated: true }),
      makeRecord({ runId: 'r1', phaseId: 'audit', taskId: 'emoji', output: `${'a'.repeat(9)}😀tail` }),
    ]);
  });

  it('reads the latest attempt, paged, until nextOffset is null', async () => {
    let offset: number | null = 0;
    let text = '';
    let pages = 0;
    while (offset !== null) {
      const page = await readRef(root, 'r1/audit/big', { offset, limit: 20_000 });
      expect(page).toMatchObject({ ref: 'r1/audit/big', runId: 'r1', phaseId: 'audit', taskId: 'big', attempt: 2, status: 'succeeded', totalChars: long.length, truncated: true, offset });
      text += page.text;
      offset = page.nextOffset;
      pages++;
    }
    expect(text).toBe(long);
    expect(pages).toBe(Math.ceil(long.length / 20_000));
  });

  it('defaults to 8,000 characters from the start', async () => {
    const page = await readRef(root, 'r1/audit/big');
    expect(page.text).toBe(long.slice(0, 8000));
    expect(page.nextOffset).toBe(8000);
  });

  it('accepts the resource URI form', async () => {
    const page = await readRef(root, refToUri({ runId: 'r1', phaseId: 'audit', taskId: 'emoji' }));
    expect(page.ref).toBe('r1/audit/emoji');
  });

  it('never splits a surrogate pair', async () => {
    const first = await readRef(root, 'r1/audit/emoji', { limit: 10 });
    expect(first.text).toBe('a'.repeat(9));
    const second = await readRef(root, 'r1/audit/emoji', { offset: first.nextOffset!, limit: 10 });
    expect(second.text).toBe('😀tail');
    expect(second.nextOffset).toBeNull();
  });

  it('an offset at the end is an empty last page; beyond it is an error', async () => {
    const total = (await readRef(root, 'r1/audit/emoji')).totalChars;
    expect(await readRef(root, 'r1/audit/emoji', { offset: total })).toMatchObject({ text: '', nextOffset: null });
    expect((await caught(readRef(root, 'r1/audit/emoji', { offset: total + 1 }))).message).toMatch(/expected `offset` to be 0–15/);
  });

  it('refuses bad limits and offsets', async () => {
    for (const opts of [{ limit: 0 }, { limit: READ_REF_MAX_LIMIT + 1 }, { limit: 2.5 }, { offset: -1 }, { offset: Number.NaN }]) {
      expect((await caught(readRef(root, 'r1/audit/big', opts))).code).toBe('bad_option');
    }
  });

  it('names a missing run or task', async () => {
    expect((await caught(readRef(root, 'r0/audit/big'))).message).toMatch(/no run 'r0'/);
    expect((await caught(readRef(root, 'r1/audit/none'))).message).toMatch(/no agent record for task 'audit\/none' in run 'r1'/);
    await mkdir(path.join(root, 'r3'));
    expect((await caught(readRef(root, 'r3/audit/big'))).code).toBe('not_found');
  });

  const badRefs: [string, unknown, RegExp][] = [
    ['climbing', '../x/y/z', /4 parts/],
    ['a dot-dot run id', '../y/z', /invalid run id '\.\.'/],
    ['a dot-dot task id', 'r1/audit/..', /invalid task id/],
    ['a dot phase id', 'r1/./big', /invalid phase id/],
    ['two parts', 'r1/audit', /expected a ref '<runId>\/<phaseId>\/<taskId>'.*2 parts/],
    ['one part', 'r1', /1 part\)/],
    ['empty', '', /got an empty string/],
    ['an empty middle part', 'r1//big', /invalid phase id ''/],
    ['a NUL byte', 'r1/aud\0it/big', /contains a NUL byte/],
    ['a backslash', 'r1\\..\\x/a/b', /invalid run id/],
    ['an absolute path', '/etc/passwd/x', /4 parts/],
    ['spaces', 'r1/audit/big ', /invalid task id/],
    ['non-ASCII', 'r1/аudit/big', /invalid phase id/],
    ['a URI of another shape', 'fanfold://runs/r1/inputs/a/b', /expected a ref/],
    ['not a string', 42, /got number/],
    ['a huge string', 'a/'.repeat(500), /at most 256 characters/],
  ];
  it.each(badRefs)('refuses a ref with %s', async (_name, ref, message) => {
    const err = await caught(readRef(root, ref as string));
    expect(err.code).toBe('bad_ref');
    expect(err.message).toMatch(/^search: /);
    expect(err.message).toMatch(message);
  });

  it('parseRef round-trips ids and the URI form', () => {
    expect(parseRef('r1/audit/big')).toEqual({ runId: 'r1', phaseId: 'audit', taskId: 'big' });
    expect(parseRef('fanfold://runs/r1/agents/audit/big')).toEqual({ runId: 'r1', phaseId: 'audit', taskId: 'big' });
  });

  it('reports a record whose content disagrees with its file name', async () => {
    const rec = makeRecord({ runId: 'r1', phaseId: 'audit', taskId: 'other', output: 'x' });
    await writeFile(path.join(root, 'r1', 'agents', 'audit.moved.1.json'), JSON.stringify(rec));
    await expect(readRef(root, 'r1/audit/moved')).rejects.toThrow(/does not match its file name/);
    await rm(path.join(root, 'r1', 'agents', 'audit.moved.1.json'));
  });
});
