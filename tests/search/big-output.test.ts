/**
 * Search over big outputs (issue 10 item 3): only a bounded prefix of each output is indexed (hits
 * say so), and readRef pages through the whole of an output that lives beside its record.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { clearSearchCache, readRef, searchStore } from '../../src/search/index.js';
import { OUTPUT_HEAD_BYTES, RunStore } from '../../src/store/index.js';
import { makeRecord, removeDir, tempDir, writeAgent, writeRun } from './fixtures.js';

let root: string;
beforeEach(async () => {
  root = await tempDir();
  clearSearchCache();
});
afterEach(async () => {
  await removeDir(root);
});

const filler = (n: number): string => 'lorem ipsum dolor sit amet consectetur\n'.repeat(Math.ceil(n / 39)).slice(0, n);

describe('big outputs in search', () => {
  it('indexes the first OUTPUT_HEAD_BYTES of an output beside its record, and readRef reads all of it', async () => {
    await writeRun(root, 'r1', [makeRecord({ runId: 'r1', phaseId: 'audit', taskId: 'small', output: 'zanzibar near the start' })]);
    const output = `quokkaword at the start\n${filler(5 * 1024 * 1024)}\nwombatword at the very end\n`;
    const store = await RunStore.open(root, 'r1');
    await store.writeAgentRecord(makeRecord({ runId: 'r1', phaseId: 'audit', taskId: 'big', output, outputBytes: output.length }));
    await store.close();

    const start = await searchStore(root, 'quokkaword');
    expect(start.hits.map((h) => h.ref)).toEqual(['r1/audit/big']);
    expect(start.hits[0]!.indexedBytes).toBe(OUTPUT_HEAD_BYTES);
    // Past the indexed prefix: not searched (and said so on every hit of that output).
    expect((await searchStore(root, 'wombatword')).total).toBe(0);
    const small = await searchStore(root, 'zanzibar');
    expect(small.hits[0]!.indexedBytes).toBeUndefined();

    let page = await readRef(root, 'r1/audit/big', { limit: 40_000 });
    expect(page.totalChars).toBe(output.length);
    page = await readRef(root, 'r1/audit/big', { offset: output.length - 1000, limit: 40_000 });
    expect(page.text).toContain('wombatword at the very end');
    expect(page.nextOffset).toBeNull();
  });

  it('indexes only the head of a big inline output of an older (version 1) record', async () => {
    const output = `capybaraword first\n${filler(3 * 1024 * 1024)}`;
    await writeRun(root, 'r2', []);
    await writeAgent(root, makeRecord({ runId: 'r2', phaseId: 'audit', taskId: 'old', output, outputBytes: output.length }));
    const page = await searchStore(root, 'capybaraword');
    expect(page.hits.map((h) => h.ref)).toEqual(['r2/audit/old']);
    expect(page.hits[0]!.indexedBytes).toBe(OUTPUT_HEAD_BYTES);
  });
});
