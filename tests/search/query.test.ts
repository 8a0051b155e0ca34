import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunIndex, SearchError, search } from '../../src/search/index.js';
import type { AgentRecord } from '../../src/store/types.js';
import { auditRecords, makeRecord, removeDir, tempDir } from './fixtures.js';

let dir: string;
let audit: RunIndex;
let other: RunIndex;

async function build(runId: string, records: AgentRecord[], phaseTitles: Record<string, string> = {}): Promise<RunIndex> {
  return RunIndex.open({ indexFile: path.join(dir, `${runId}.json`), runId, loadRecords: async () => records, phaseTitles });
}

beforeAll(async () => {
  dir = await tempDir();
  const records = auditRecords('r1');
  // A second phase that re-checks two findings; one verifier failed.
  records.push(
    makeRecord({ runId: 'r1', phaseId: 'verify', taskId: 'db-query', output: 'Confirmed: the SQL injection in listOrders is exploitable with a UNION payload.' }),
    makeRecord({ runId: 'r1', phaseId: 'verify', taskId: 'web-render', status: 'failed', output: 'Could not reproduce the XSS: the page failed to build.' }),
  );
  audit = await build('r1', records, { audit: 'Security audit', verify: 'Verify findings' });
  other = await build('r2', [
    makeRecord({ runId: 'r2', phaseId: 'audit', taskId: 'orm-review', output: 'The ORM escapes values, but raw SQL in reports.ts allows injection through the sort key.' }),
    makeRecord({ runId: 'r2', phaseId: 'audit', taskId: 'docs', output: 'README lacks a security section.' }),
  ]);
});

afterAll(async () => {
  await removeDir(dir);
});

describe('search across runs', () => {
  it('merges hits of several runs by score with refs naming the run', () => {
    const { hits, total } = search([audit, other], 'SQL injection', { limit: 50 });
    expect(total).toBe(3);
    const refs = hits.map((h) => h.ref);
    expect(refs).toContain('r2/audit/orm-review');
    expect(refs).toContain('r1/audit/db-query');
    expect(refs).toContain('r1/verify/db-query');
    for (let i = 1; i < hits.length; i++) expect(hits[i - 1]!.score).toBeGreaterThanOrEqual(hits[i]!.score);
    for (const h of hits) expect(h.ref).toBe(`${h.runId}/${h.phaseId}/${h.taskId}`);
  });

  it('filters by run', () => {
    const { hits, total } = search([audit, other], 'SQL injection', { runId: 'r2' });
    expect(total).toBe(1);
    expect(hits[0]?.ref).toBe('r2/audit/orm-review');
  });

  it('counts a run passed twice once', () => {
    expect(search([other, other], 'injection').total).toBe(1);
  });
});

describe('filters', () => {
  it('by phase', () => {
    const { hits } = search([audit], 'SQL injection', { phaseId: 'verify' });
    expect(hits.map((h) => h.ref)).toEqual(['r1/verify/db-query']);
  });

  it('by status, one or several', () => {
    expect(search([audit], 'XSS', { status: 'failed' }).hits.map((h) => h.ref)).toEqual(['r1/verify/web-render']);
    expect(search([audit], 'XSS', { status: ['failed', 'succeeded'] }).total).toBe(2);
    expect(search([audit], 'XSS', { status: 'timed_out' }).total).toBe(0);
  });
});

describe('prefix and fuzzy', () => {
  it('prefix matches word beginnings', () => {
    expect(search([audit], 'travers').total).toBe(0);
    expect(search([audit], 'travers', { prefix: true }).hits[0]?.taskId).toBe('upload-path');
  });

  it('does not expand one- and two-letter terms', () => {
    expect(search([audit], 'xz', { prefix: true, fuzzy: true }).total).toBe(0);
  });

  it('fuzzy tolerates typos', () => {
    expect(search([audit], 'deserialisation').total).toBe(0);
    expect(search([audit], 'deserialisation', { fuzzy: true }).hits[0]?.taskId).toBe('rpc-decode');
    expect(search([audit], 'fixaton', { fuzzy: 1 }).hits[0]?.taskId).toBe('auth-session');
    expect(search([audit], 'certifcate verfication', { fuzzy: 0.2 }).hits[0]?.taskId).toBe('tls-verify');
  });

  it('finds camelCase parts of identifiers', () => {
    expect(search([audit], 'zip object deep').hits[0]?.taskId).toBe('deps-audit');
  });

  it('and requires every term', () => {
    expect(search([audit], 'injection cookie').total).toBeGreaterThan(1);
    expect(search([audit], 'injection union', { combineWith: 'and' }).hits.map((h) => h.taskId).sort()).toEqual(['db-query', 'db-query']);
  });
});

describe('paging', () => {
  it('limit/offset walk all hits in order and total counts them all', () => {
    const all = search([audit], 'recommendation severity', { limit: 50 });
    expect(all.total).toBe(16);
    expect(all.hits).toHaveLength(16);
    const pages = [0, 5, 10, 15].map((offset) => search([audit], 'recommendation severity', { limit: 5, offset }));
    for (const p of pages) expect(p.total).toBe(16);
    expect(pages.map((p) => p.hits.length)).toEqual([5, 5, 5, 1]);
    expect(pages.flatMap((p) => p.hits)).toEqual(all.hits);
    expect(search([audit], 'recommendation', { offset: 100 })).toEqual({ hits: [], total: 16 });
    expect(search([audit], 'recommendation', { offset: 1e12 })).toEqual({ hits: [], total: 16 });
  });

  it('pages across runs consistently', () => {
    const all = search([audit, other], 'injection', { limit: 50 });
    const paged = [0, 1, 2].flatMap((offset) => search([audit, other], 'injection', { limit: 1, offset }).hits);
    expect(paged).toEqual(all.hits.slice(0, 3));
  });

  it('defaults to 10 hits', () => {
    expect(search([audit], 'recommendation').hits).toHaveLength(10);
  });
});

describe('hits', () => {
  it('carry attempt, status, score and a marked snippet ≤ 300 chars', () => {
    const { hits } = search([audit], 'race condition');
    const h = hits[0]!;
    expect(h).toMatchObject({ runId: 'r1', phaseId: 'audit', taskId: 'cache-lru', attempt: 1, status: 'succeeded', ref: 'r1/audit/cache-lru' });
    expect(h.score).toBeGreaterThan(0);
    expect(h.snippet.replaceAll('**', '').length).toBeLessThanOrEqual(300);
    expect(h.snippet).toContain('**race**');
    expect(h.snippet).toContain('**condition**');
  });

  it('mark the words a prefix or fuzzy query matched', () => {
    expect(search([audit], 'travers', { prefix: true }).hits[0]?.snippet).toContain('**traversal**');
    expect(search([audit], 'fixaton', { fuzzy: 1 }).hits[0]?.snippet).toContain('**fixation**');
  });

  it('every hit snippet of the corpus stays within bounds', () => {
    for (const q of ['severity', 'recommendation file line', 'the finding']) {
      for (const h of search([audit, other], q, { limit: 50 }).hits) {
        expect(h.snippet.replaceAll('**', '').length).toBeLessThanOrEqual(300);
        expect(h.snippet).toMatch(/\*\*[^*]+\*\*/);
      }
    }
  });
});

describe('validation', () => {
  const bad: [string, string, object, RegExp][] = [
    ['empty query', '', {}, /expected a non-empty query, got ""/],
    ['whitespace query', '  \n\t', {}, /expected a non-empty query/],
    ['stop words only', 'the of and', {}, /has no searchable terms/],
    ['punctuation only', '?!.,', {}, /has no searchable terms/],
    ['huge query', 'x '.repeat(600), {}, /at most 1000 characters/],
    ['too many terms', Array.from({ length: 40 }, (_, i) => `w${i}`).join(' '), {}, /at most 32 distinct terms/],
    ['limit 0', 'sql', { limit: 0 }, /expected `limit` to be an integer 1–50, got `0`/],
    ['limit 51', 'sql', { limit: 51 }, /expected `limit` to be an integer 1–50, got `51`/],
    ['limit 1.5', 'sql', { limit: 1.5 }, /`limit`/],
    ['negative offset', 'sql', { offset: -1 }, /expected `offset` to be an integer ≥ 0, got `-1`/],
    ['fuzzy 7', 'sql', { fuzzy: 7 }, /expected `fuzzy` to be a boolean, a fraction in \(0, 1\) or an edit distance 1–3, got `7`/],
    ['fuzzy negative', 'sql', { fuzzy: -0.5 }, /`fuzzy`/],
    ['unknown status', 'sql', { status: 'done' }, /expected `status` to be one of succeeded, failed/],
    ['empty status list', 'sql', { status: [] }, /`status`/],
    ['prefix string', 'sql', { prefix: 'yes' }, /expected `prefix` to be a boolean/],
    ['combineWith xor', 'sql', { combineWith: 'xor' }, /`combineWith`/],
    ['empty phaseId', 'sql', { phaseId: '' }, /`phaseId`/],
  ];
  it.each(bad)('refuses %s clearly', (_name, query, opts, message) => {
    let err: unknown;
    try {
      search([audit], query, opts as never);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SearchError);
    expect((err as SearchError).message).toMatch(/^search: /);
    expect((err as SearchError).message).toMatch(message);
    expect((err as SearchError).retryable).toBe(false);
  });

  it('searching no indexes is an empty page', () => {
    expect(search([], 'sql')).toEqual({ hits: [], total: 0 });
  });
});
