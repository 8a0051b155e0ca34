/**
 * The fence of owner-only writes (issue 10, item 1): a store whose lease was taken over refuses
 * every owner-only write before it lands — agent file, journal line, run.json, inputs, and the
 * writers outside the store that take its fence (reports, the search index) — and names the owner
 * that has the run now. Each takeover bumps the lease's epoch.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { RunStore } from '../../src/store/run-store.js';
import { acquireLease, readLease } from '../../src/store/lease.js';
import { writeTextAtomic } from '../../src/store/atomic.js';
import { StoreError } from '../../src/store/errors.js';
import { cleanupTmp, makeAgent, makeRun, tmpDir } from './helpers.js';

const open: RunStore[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close().catch(() => {})));
});
afterAll(cleanupTmp);

/** Replaces lease.json with another owner's record, as a takeover of a stale lease would. */
function takeOverOnDisk(dir: string, pid: number): void {
  const cur = JSON.parse(fs.readFileSync(path.join(dir, 'lease.json'), 'utf8'));
  const next = { ...cur, ownerId: 'other-owner-0001', pid, epoch: (cur.epoch ?? 0) + 1, heartbeatAt: new Date().toISOString() };
  fs.writeFileSync(path.join(dir, 'lease.json.tmp'), JSON.stringify(next));
  fs.renameSync(path.join(dir, 'lease.json.tmp'), path.join(dir, 'lease.json'));
}

function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const f = path.join(d, e.name);
      if (e.isDirectory()) walk(f);
      else out[path.relative(dir, f)] = fs.readFileSync(f, 'utf8');
    }
  };
  walk(dir);
  return out;
}

async function lostWith(p: Promise<unknown>): Promise<StoreError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(StoreError);
  expect((err as StoreError).code).toBe('lease_lost');
  return err as StoreError;
}

describe('the fence of owner-only writes', () => {
  it('refuses every owner-only write once lease.json names another owner, before anything lands', async () => {
    const root = await tmpDir();
    const s = await RunStore.create(root, makeRun('run1'));
    open.push(s);
    let lostCalls = 0;
    const lease = await s.acquireLease({ heartbeatMs: 0, onLost: () => lostCalls++ });
    expect(lease.record.epoch).toBe(1);
    await s.appendEvent({ type: 'run.started', runId: 'run1', name: 'n', agentCount: 1 });
    await s.writeAgentRecord(makeAgent('run1', 'p', 't', 1));
    takeOverOnDisk(s.dir, 424242);
    const before = snapshot(s.dir);

    const err = await lostWith(s.writeAgentRecord(makeAgent('run1', 'p', 't', 1, { status: 'cancelled' })));
    expect(err.message).toContain('pid 424242');
    expect(lease.lost).toBe(true);
    expect(lease.lostTo?.pid).toBe(424242);
    expect(lostCalls).toBe(1);
    await lostWith(s.appendEvent({ type: 'run.finished', status: 'failed', elapsedMs: 1 } as never));
    await lostWith(s.writeRun(makeRun('run1', { status: 'failed' })));
    await lostWith(s.writeInput('p.t.2.prompt.txt', 'x'));
    await lostWith(writeTextAtomic(path.join(s.dir, 'report.md'), 'stale', { fence: s.fence }));
    expect(snapshot(s.dir)).toEqual(before);
  });

  it('checks lease.json on disk at the write itself, not only at the next heartbeat', async () => {
    const root = await tmpDir();
    const s = await RunStore.create(root, makeRun('run2'));
    open.push(s);
    // No heartbeat at all: only the fence can notice.
    const lease = await s.acquireLease({ heartbeatMs: 0 });
    fs.rmSync(path.join(s.dir, 'lease.json'));
    await lostWith(s.appendEvent({ type: 'run.started', runId: 'run2', name: 'n', agentCount: 1 }));
    expect(lease.lost).toBe(true);
    expect(fs.existsSync(path.join(s.dir, 'events.jsonl'))).toBe(false);
  });

  it('a takeover of a stale lease carries the next epoch', async () => {
    const dir = await tmpDir();
    const a = await acquireLease(dir, { ttlMs: 200, heartbeatMs: 0 });
    expect(a.record.epoch).toBe(1);
    await new Promise((r) => setTimeout(r, 300));
    const b = await acquireLease(dir, { ttlMs: 5000, heartbeatMs: 0 });
    expect(b.record.epoch).toBe(2);
    expect((await readLease(dir))?.epoch).toBe(2);
    expect(() => a.assertOnDisk()).toThrow(/now belongs to pid/);
    await b.release();
  });

  it('a new owner removes the temp files other processes left, and keeps everything else', async () => {
    const root = await tmpDir();
    const s = await RunStore.create(root, makeRun('run3'));
    open.push(s);
    await s.acquireLease({ heartbeatMs: 0 });
    const stale = ['index.json.1-0123456789ab.tmp', 'agents/p.t.1.json.2-abcdefabcdef.tmp', 'inputs/p.t.1.prompt.txt.3-00000000000f.tmp'];
    const mine = `run.json.${process.pid}-aaaaaaaaaaaa.tmp`;
    for (const f of [...stale, mine, 'agents/notes.tmp']) fs.writeFileSync(path.join(s.dir, f), 'x');
    expect((await s.removeStaleTemps()).sort()).toEqual([...stale].sort());
    for (const f of stale) expect(fs.existsSync(path.join(s.dir, f))).toBe(false);
    expect(fs.existsSync(path.join(s.dir, mine))).toBe(true);
    expect(fs.existsSync(path.join(s.dir, 'agents/notes.tmp'))).toBe(true);
  });
});
