/**
 * RunStore.census: what resume knows of every attempt on disk, taken from the journal's
 * `agent.finished` lines where they carry a census, else read from the agent file.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RunStore } from '../../src/store/index.js';
import type { RunEvent } from '../../src/store/types.js';
import { cleanupTmp, makeAgent, makeRun, tmpDir } from './helpers.js';

afterEach(cleanupTmp);

const finished = (file: string, over: Partial<Extract<RunEvent, { type: 'agent.finished' }>> = {}): RunEvent => ({
  type: 'agent.finished', t: '2026-01-01T00:00:00.000Z', ref: 'map/a', key: 'k-a', attempt: 1, status: 'succeeded', durationMs: 5, file, ...over,
});

describe('census', () => {
  it('takes attempts with a census line from the journal, without reading their files', async () => {
    const root = await tmpDir();
    const store = await RunStore.create(root, makeRun('cens1'));
    try {
      const a1 = await store.writeAgentRecord(makeAgent('cens1', 'map', 'a', 1, { key: 'k-a', costUsd: 0.5, usage: { inputTokens: 10, outputTokens: 2 } }));
      const b1 = await store.writeAgentRecord(makeAgent('cens1', 'map', 'b', 1, { key: 'k-b', status: 'failed', error: { type: 'invalid_structured_output', message: 'no', retryable: true } }));
      // Make a1's file unreadable garbage: a census line must be enough to know it.
      await fs.writeFile(path.join(store.dir, 'agents', a1), 'not json');
      const events: RunEvent[] = [finished(a1, { census: { costUsd: 0.5, usage: { inputTokens: 10, outputTokens: 2 } } })];
      const { attempts, unreadable } = await store.census(events);
      expect(unreadable).toEqual([]);
      expect(attempts).toEqual([
        { phaseId: 'map', taskId: 'a', attempt: 1, key: 'k-a', status: 'succeeded', file: a1, costUsd: 0.5, usage: { inputTokens: 10, outputTokens: 2 } },
        // No journal line: read from its file, error type included.
        { phaseId: 'map', taskId: 'b', attempt: 1, key: 'k-b', status: 'failed', file: b1, errorType: 'invalid_structured_output' },
      ]);
    } finally {
      await store.close();
    }
  });

  it('reads the file when the journal line predates the census field, and reports unreadable files', async () => {
    const root = await tmpDir();
    const store = await RunStore.create(root, makeRun('cens2'));
    try {
      const a1 = await store.writeAgentRecord(makeAgent('cens2', 'map', 'a', 1, { key: 'k-real', costUsd: 1.25 }));
      await fs.writeFile(path.join(store.dir, 'agents', 'map.c.1.json'), '{"torn');
      const { attempts, unreadable } = await store.census([finished(a1, { key: 'k-stale' })]);
      expect(attempts).toHaveLength(1);
      expect(attempts[0]).toMatchObject({ key: 'k-real', costUsd: 1.25, file: a1 });
      expect(unreadable.map((u) => u.file)).toEqual(['map.c.1.json']);
    } finally {
      await store.close();
    }
  });

  it('agrees with reading every record on a run the owner wrote', async () => {
    const root = await tmpDir();
    const store = await RunStore.create(root, makeRun('cens3'));
    try {
      const events: RunEvent[] = [];
      for (let i = 1; i <= 20; i++) {
        const rec = makeAgent('cens3', 'map', `t${i}`, 1 + (i % 2), { key: `k${i}`, ...(i % 3 === 0 ? { costUsd: i / 100 } : {}) });
        const file = await store.writeAgentRecord(rec);
        if (i % 4 !== 0) events.push(finished(file, { ref: `map/t${i}`, key: rec.key, attempt: rec.attempt, census: rec.costUsd !== undefined ? { costUsd: rec.costUsd } : {} }));
      }
      const { attempts } = await store.census(events);
      const { records } = await store.listAgentRecords();
      expect(attempts.map((a) => [a.phaseId, a.taskId, a.attempt, a.key, a.status, a.costUsd])).toEqual(
        records.map((r) => [r.phaseId, r.taskId, r.attempt, r.key, r.status, r.costUsd]),
      );
    } finally {
      await store.close();
    }
  });
});
