/**
 * The public-API fallbacks used when minisearch's internals are not reachable (a future
 * minisearch): search through `MiniSearch#search`, save by packing `MiniSearch#toJSON()`.
 */
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RunIndex, search } from '../../src/search/index.js';
import { RELEVANCE, auditRecords, noSnippets, removeDir, tempDir } from './fixtures.js';

vi.mock('../../src/search/internals.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/search/internals.js')>();
  return {
    ...real,
    cacheTermLookups: <T>(ms: T): T => ms,
    scoringView: () => undefined,
    packSource: () => undefined,
  };
});

let dir: string;
beforeEach(async () => {
  dir = await tempDir();
});
afterEach(async () => {
  await removeDir(dir);
});

describe('without minisearch internals', () => {
  it('ranks, filters, pages and persists the same way', async () => {
    const records = auditRecords('r1');
    const open = () => RunIndex.open({ indexFile: path.join(dir, 'index.json'), runId: 'r1', loadRecords: async () => records });
    const index = await open();
    for (const [query, taskId] of RELEVANCE) expect(search([index], query).hits[0]?.taskId).toBe(taskId);
    expect(search([index], 'travers', { prefix: true }).hits[0]?.snippet).toContain('**traversal**');
    expect(search([index], 'fixaton', { fuzzy: 1 }).hits[0]?.taskId).toBe('auth-session');
    expect(search([index], 'recommendation', { limit: 5, offset: 15 })).toMatchObject({ total: 16 });
    expect(search([index], 'recommendation', { status: 'failed' }).total).toBe(0);
    await index.save();
    const again = await open();
    expect(again.openInfo.source).toBe('disk');
    expect(again.packed).toBe(true);
    expect(search([again], 'SQL injection', { limit: 50 })).toEqual(noSnippets(search([index], 'SQL injection', { limit: 50 })));
  });
});
