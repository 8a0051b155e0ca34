import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import fs from 'node:fs/promises';
import fss from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  DEFAULT_LEASE_TTL_MS,
  LEASE_FILE,
  acquireLease,
  describeLease,
  leaseState,
  processAlive,
  readLease,
  type Lease,
} from '../../src/store/lease.js';
import { StoreError, type StoreErrorCode } from '../../src/store/errors.js';
import { SCHEMA_VERSION, type LeaseRecord } from '../../src/store/types.js';
import { cleanupTmp, deadPid, killChildren, ls, sleep, spawnNode, storeModule, tmpDir } from './helpers.js';

const held: Lease[] = [];
afterEach(async () => {
  killChildren();
  vi.useRealTimers();
  await Promise.all(held.splice(0).map((l) => l.release().catch(() => {})));
});
afterAll(cleanupTmp);

async function acquire(dir: string, opts: Parameters<typeof acquireLease>[1] = {}): Promise<Lease> {
  const l = await acquireLease(dir, opts);
  held.push(l);
  return l;
}

async function expectCode(p: Promise<unknown>, code: StoreErrorCode): Promise<StoreError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).code).toBe(code);
    return err as StoreError;
  }
  throw new Error(`expected StoreError '${code}'`);
}

function record(over: Partial<LeaseRecord> = {}): LeaseRecord {
  const now = new Date().toISOString();
  return {
    schemaVersion: SCHEMA_VERSION,
    ownerId: 'someoneelse0000a',
    pid: process.pid,
    host: os.hostname(),
    acquiredAt: now,
    heartbeatAt: now,
    ttlMs: 10_000,
    ...over,
  };
}

async function writeLease(dir: string, rec: LeaseRecord | string, name = LEASE_FILE): Promise<void> {
  await fs.writeFile(path.join(dir, name), typeof rec === 'string' ? rec : JSON.stringify(rec));
}

const ago = (ms: number) => new Date(Date.now() - ms).toISOString();

describe('leaseState', () => {
  const now = Date.parse('2025-06-01T00:00:10.000Z');
  const at = (iso: string, over: Partial<LeaseRecord> = {}) => record({ heartbeatAt: iso, host: 'elsewhere', ...over });

  it('none without a record', () => expect(leaseState(undefined, now)).toBe('none'));

  it('live within the ttl, stale after it (the boundary counts as live)', () => {
    expect(leaseState(at('2025-06-01T00:00:05.000Z', { ttlMs: 5000 }), now)).toBe('live');
    expect(leaseState(at('2025-06-01T00:00:04.999Z', { ttlMs: 5000 }), now)).toBe('stale');
    expect(leaseState(at('2025-06-01T00:00:09.999Z', { ttlMs: 1 }), now)).toBe('live');
    expect(leaseState(at('2025-06-01T00:00:09.998Z', { ttlMs: 1 }), now)).toBe('stale');
  });

  it('a heartbeat from the future counts as live (clock skew is not death)', () => {
    expect(leaseState(at('2025-06-01T01:00:00.000Z'), now)).toBe('live');
  });

  it('an unparseable heartbeat is stale', () => {
    expect(leaseState(at('yesterday'), now)).toBe('stale');
  });

  it('on this host, a dead pid makes even a fresh lease stale', async () => {
    const pid = await deadPid();
    expect(leaseState(record({ pid }))).toBe('stale');
    expect(leaseState(record({ pid: process.pid }))).toBe('live');
  });

  it('on another host, the pid is not consulted', async () => {
    const pid = await deadPid();
    expect(leaseState(record({ pid, host: 'other-host' }))).toBe('live');
    expect(leaseState(record({ pid, host: 'other-host', heartbeatAt: ago(20_000) }))).toBe('stale');
  });

  it('processAlive: self alive, dead pid not, never probes groups or junk', async () => {
    expect(processAlive(process.pid)).toBe(true);
    expect(processAlive(await deadPid())).toBe(false);
    expect(processAlive(0)).toBe(false);
    expect(processAlive(-1)).toBe(false);
    expect(processAlive(1.5)).toBe(false);
    expect(processAlive(Number.NaN)).toBe(false);
    // pid 1 exists; EPERM (not root) or success (root) both mean alive.
    expect(processAlive(1)).toBe(true);
  });

  it('describeLease names pid, host, heartbeat age and ttl', () => {
    const r = record({ pid: 4242, host: 'h1', heartbeatAt: '2025-06-01T00:00:07.900Z', ttlMs: 10_000 });
    expect(describeLease(r, now)).toBe("pid 4242 on host 'h1', heartbeat 2.1 s ago (ttl 10 s)");
    expect(describeLease(record({ heartbeatAt: 'x' }), now)).toMatch(/unreadable time 'x'/);
  });
});

describe('acquireLease: basics', () => {
  it('creates lease.json with pid, host, owner id, times and ttl; nothing else is left behind', async () => {
    const dir = await tmpDir();
    const before = Date.now();
    const l = await acquire(dir);
    expect(ls(dir)).toEqual([LEASE_FILE]);
    const rec = await readLease(dir);
    expect(rec).toEqual(l.record);
    expect(rec).toMatchObject({ schemaVersion: 1, ownerId: l.ownerId, pid: process.pid, host: os.hostname(), ttlMs: DEFAULT_LEASE_TTL_MS });
    expect(l.ownerId).toMatch(/^[a-z0-9]{16}$/);
    expect(Date.parse(rec!.acquiredAt)).toBeGreaterThanOrEqual(before - 1);
    expect(leaseState(rec)).toBe('live');
    expect(l.file).toBe(path.join(dir, LEASE_FILE));
    expect(l.runDir).toBe(dir);
  });

  it('refuses a second owner while the first is live, naming pid, host and heartbeat age', async () => {
    const dir = await tmpDir();
    await acquire(dir);
    const err = await expectCode(acquireLease(dir), 'lease_held');
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(new RegExp(`^store: run ${dir} is owned by pid ${process.pid} on host '${os.hostname()}', heartbeat \\d+\\.\\d s ago \\(ttl 10 s\\)`));
    expect(ls(dir)).toEqual([LEASE_FILE]);
  });

  it('release removes lease.json; the run can then be acquired again; release is idempotent', async () => {
    const dir = await tmpDir();
    const a = await acquire(dir);
    await a.release();
    expect(a.released).toBe(true);
    expect(ls(dir)).toEqual([]);
    await a.release();
    const b = await acquire(dir);
    expect(b.ownerId).not.toBe(a.ownerId);
    expect((await readLease(dir))!.ownerId).toBe(b.ownerId);
    // The released lease cannot heartbeat and does not remove the new owner's file.
    expect(await a.heartbeat()).toBe(false);
    await a.release();
    expect((await readLease(dir))!.ownerId).toBe(b.ownerId);
  });

  it('release never removes another owner’s lease', async () => {
    const dir = await tmpDir();
    const a = await acquire(dir, { heartbeatMs: 0 });
    await writeLease(dir, record({ ownerId: 'intruder00000000' }));
    await a.release();
    expect((await readLease(dir))!.ownerId).toBe('intruder00000000');
  });

  it('readLease: undefined when absent; corrupt and bad_version are loud', async () => {
    const dir = await tmpDir();
    expect(await readLease(dir)).toBeUndefined();
    await writeLease(dir, '{"schemaVersion": 1, "pid":');
    await expectCode(readLease(dir), 'corrupt');
    await writeLease(dir, { ...record(), schemaVersion: 2 } as unknown as LeaseRecord);
    await expectCode(readLease(dir), 'bad_version');
    await writeLease(dir, { schemaVersion: 1, ownerId: 'x' } as unknown as LeaseRecord);
    await expectCode(readLease(dir), 'corrupt');
  });

  it.each([
    ['owner id with traversal', { ownerId: '../../escape' }],
    ['owner id with a slash', { ownerId: 'a/b' }],
    ['pid 0 (would signal our process group)', { pid: 0 }],
    ['negative pid', { pid: -1 }],
    ['fractional pid', { pid: 1.5 }],
    ['pid as string', { pid: '123' }],
    ['missing host', { host: undefined }],
    ['ttl 0', { ttlMs: 0 }],
  ])('a lease.json with %s is refused as corrupt, and nothing is written outside', async (_n, over) => {
    const dir = await tmpDir();
    await writeLease(dir, record({ heartbeatAt: ago(60_000), ...(over as Partial<LeaseRecord>) }));
    await expectCode(acquireLease(dir), 'corrupt');
    expect(ls(dir)).toEqual([LEASE_FILE]);
    expect(fss.existsSync(path.join(dir, '..', 'escape'))).toBe(false);
  });

  it('a lease of a newer schema version is refused, not taken over', async () => {
    const dir = await tmpDir();
    await writeLease(dir, { ...record({ heartbeatAt: ago(60_000) }), schemaVersion: 2 } as unknown as LeaseRecord);
    await expectCode(acquireLease(dir), 'bad_version');
  });

  it.each([
    [{ ttlMs: 0 }],
    [{ ttlMs: -5 }],
    [{ ttlMs: 1.5 }],
    [{ ttlMs: 1000, heartbeatMs: 1000 }],
    [{ ttlMs: 1000, heartbeatMs: 5000 }],
    [{ ttlMs: 1000, heartbeatMs: -1 }],
    [{ ttlMs: 1000, heartbeatMs: Number.NaN }],
  ])('rejects options %j', async (opts) => {
    const dir = await tmpDir();
    await expectCode(acquireLease(dir, opts), 'invalid_argument');
    expect(ls(dir)).toEqual([]);
  });

  it('not_found when the run directory does not exist', async () => {
    const dir = await tmpDir();
    await expectCode(acquireLease(path.join(dir, 'nope')), 'not_found');
  });

  it('refuses when lease.json is a symlink out of the run', async () => {
    const base = await tmpDir();
    const dir = path.join(base, 'run');
    await fs.mkdir(dir);
    await fs.writeFile(path.join(base, 'elsewhere.json'), JSON.stringify(record({ heartbeatAt: ago(60_000) })));
    await fs.symlink(path.join(base, 'elsewhere.json'), path.join(dir, LEASE_FILE));
    await expectCode(acquireLease(dir), 'path_escape');
    await expectCode(readLease(dir), 'path_escape');
  });
});

describe('acquireLease: taking over a stale lease', () => {
  it('takes over a lease whose heartbeat is older than its ttl', async () => {
    const dir = await tmpDir();
    await writeLease(dir, record({ heartbeatAt: ago(11_000), ttlMs: 10_000 }));
    const l = await acquire(dir);
    expect((await readLease(dir))!.ownerId).toBe(l.ownerId);
    expect(ls(dir)).toEqual([LEASE_FILE]);
  });

  it('takes over a fresh lease whose owner process is dead (same host)', async () => {
    const dir = await tmpDir();
    await writeLease(dir, record({ pid: await deadPid(), heartbeatAt: ago(0), ttlMs: 600_000 }));
    const l = await acquire(dir);
    expect((await readLease(dir))!.ownerId).toBe(l.ownerId);
  });

  it('does not take over a fresh lease of another host even with an unknown pid', async () => {
    const dir = await tmpDir();
    await writeLease(dir, record({ pid: await deadPid(), host: 'another-machine', heartbeatAt: ago(0) }));
    const err = await expectCode(acquireLease(dir), 'lease_held');
    expect(err.message).toContain("on host 'another-machine'");
  });

  it('uses the ttl written in the record, not the caller’s', async () => {
    const dir = await tmpDir();
    await writeLease(dir, record({ heartbeatAt: ago(3000), ttlMs: 60_000, host: 'h2' }));
    await expectCode(acquireLease(dir, { ttlMs: 1000 }), 'lease_held');
  });

  it('exactly one of many concurrent acquirers wins a fresh run', async () => {
    for (let round = 0; round < 5; round++) {
      const dir = await tmpDir();
      const results = await Promise.allSettled(Array.from({ length: 40 }, () => acquireLease(dir, { heartbeatMs: 0 })));
      const won = results.filter((r): r is PromiseFulfilledResult<Lease> => r.status === 'fulfilled');
      expect(won).toHaveLength(1);
      held.push(won[0]!.value);
      for (const r of results) if (r.status === 'rejected') expect((r.reason as StoreError).code).toBe('lease_held');
      expect((await readLease(dir))!.ownerId).toBe(won[0]!.value.ownerId);
      expect(ls(dir)).toEqual([LEASE_FILE]);
    }
  });

  it('exactly one of many concurrent acquirers takes over a stale lease', async () => {
    for (let round = 0; round < 5; round++) {
      const dir = await tmpDir();
      await writeLease(dir, record({ pid: await deadPid(), heartbeatAt: ago(30_000) }));
      const results = await Promise.allSettled(Array.from({ length: 40 }, () => acquireLease(dir, { heartbeatMs: 0 })));
      const won = results.filter((r): r is PromiseFulfilledResult<Lease> => r.status === 'fulfilled');
      expect(won).toHaveLength(1);
      held.push(won[0]!.value);
      for (const r of results) if (r.status === 'rejected') expect((r.reason as StoreError).code).toBe('lease_held');
      expect((await readLease(dir))!.ownerId).toBe(won[0]!.value.ownerId);
      expect(ls(dir)).toEqual([LEASE_FILE]);
    }
  });

  it('clears the claim of a taker that died mid-takeover, then takes over', async () => {
    const dir = await tmpDir();
    const stale = record({ ownerId: 'staleowner000000', pid: await deadPid(), heartbeatAt: ago(30_000) });
    await writeLease(dir, stale);
    const deadClaimer = record({ ownerId: 'deadclaimer00000', pid: await deadPid() });
    await writeLease(dir, deadClaimer, `lease.takeover.${stale.ownerId}.json`);
    const l = await acquire(dir);
    expect((await readLease(dir))!.ownerId).toBe(l.ownerId);
    expect(ls(dir)).toEqual([LEASE_FILE]);
  });

  it('clears a chain of dead claimers', async () => {
    const dir = await tmpDir();
    const stale = record({ ownerId: 'staleowner000000', pid: await deadPid(), heartbeatAt: ago(30_000) });
    await writeLease(dir, stale);
    await writeLease(dir, record({ ownerId: 'claimer1', pid: await deadPid() }), `lease.takeover.${stale.ownerId}.json`);
    await writeLease(dir, record({ ownerId: 'claimer2', heartbeatAt: ago(60_000), host: 'h' }), 'lease.takeover.claimer1.json');
    const l = await acquire(dir);
    expect((await readLease(dir))!.ownerId).toBe(l.ownerId);
    expect(ls(dir)).toEqual([LEASE_FILE]);
  });

  it('backs off when a live process is in the middle of taking over', async () => {
    const dir = await tmpDir();
    const stale = record({ ownerId: 'staleowner000000', pid: await deadPid(), heartbeatAt: ago(30_000) });
    await writeLease(dir, stale);
    await writeLease(dir, record({ ownerId: 'liveclaimer00000' }), `lease.takeover.${stale.ownerId}.json`);
    const err = await expectCode(acquireLease(dir), 'lease_held');
    expect(err.message).toMatch(/another process is taking over/);
    expect((await readLease(dir))!.ownerId).toBe(stale.ownerId);
  });

  it('does not take over if the old owner renews its heartbeat before the takeover completes', async () => {
    // The re-check under the claim: simulate the owner coming back by renewing between reads.
    const dir = await tmpDir();
    const stale = record({ ownerId: 'sleepyowner00000', heartbeatAt: ago(30_000) });
    await writeLease(dir, stale);
    const realLink = fs.link;
    vi.spyOn(fs, 'link').mockImplementation(async (from, to) => {
      if (String(to).includes('lease.takeover.')) await writeLease(dir, { ...stale, heartbeatAt: new Date().toISOString() });
      return realLink(from, to);
    });
    await expectCode(acquireLease(dir), 'lease_held');
    expect((await readLease(dir))!.ownerId).toBe(stale.ownerId);
    expect(ls(dir)).toEqual([LEASE_FILE]);
  });
});

describe('heartbeat and lost-lease detection', () => {
  it('heartbeat() rewrites heartbeatAt and keeps the owner id', async () => {
    const dir = await tmpDir();
    const l = await acquire(dir, { heartbeatMs: 0 });
    const first = (await readLease(dir))!.heartbeatAt;
    await sleep(15);
    expect(await l.heartbeat()).toBe(true);
    const rec = (await readLease(dir))!;
    expect(Date.parse(rec.heartbeatAt)).toBeGreaterThan(Date.parse(first));
    expect(rec.ownerId).toBe(l.ownerId);
    expect(rec.acquiredAt).toBe(l.record.acquiredAt);
    expect(l.record.heartbeatAt).toBe(rec.heartbeatAt);
    expect(ls(dir)).toEqual([LEASE_FILE]);
  });

  it('the automatic heartbeat keeps the lease fresh (real time; tolerance: 4 beats expected, 1 required)', async () => {
    const dir = await tmpDir();
    const l = await acquire(dir, { ttlMs: 1000, heartbeatMs: 50 });
    const first = l.record.heartbeatAt;
    await sleep(300);
    const rec = (await readLease(dir))!;
    expect(Date.parse(rec.heartbeatAt)).toBeGreaterThan(Date.parse(first));
    expect(leaseState(rec)).toBe('live');
  });

  it('concurrent heartbeat() calls are serialized and all succeed', async () => {
    const dir = await tmpDir();
    const l = await acquire(dir, { heartbeatMs: 0 });
    const results = await Promise.all(Array.from({ length: 20 }, () => l.heartbeat()));
    expect(results.every(Boolean)).toBe(true);
    expect(ls(dir)).toEqual([LEASE_FILE]);
  });

  it('detects another owner overwriting lease.json: onLost once, heartbeats stop, lost is set', async () => {
    const dir = await tmpDir();
    const onLost = vi.fn();
    const l = await acquire(dir, { heartbeatMs: 0, onLost });
    await writeLease(dir, record({ ownerId: 'newowner00000000' }));
    expect(await l.heartbeat()).toBe(false);
    expect(await l.heartbeat()).toBe(false);
    expect(onLost).toHaveBeenCalledTimes(1);
    const reason = onLost.mock.calls[0]![0] as StoreError;
    expect(reason).toBeInstanceOf(StoreError);
    expect(reason.code).toBe('lease_lost');
    expect(reason.message).toMatch(/now belongs to pid/);
    expect(l.lost).toBe(true);
    expect(() => l.assertHeld()).toThrow(/lost the lease/);
    // It never overwrote the new owner.
    expect((await readLease(dir))!.ownerId).toBe('newowner00000000');
  });

  it('the automatic heartbeat detects the loss and calls onLost', async () => {
    const dir = await tmpDir();
    const lost = new Promise<StoreError>((resolve) => {
      void acquire(dir, { ttlMs: 1000, heartbeatMs: 20, onLost: resolve }).then(() => writeLease(dir, record({ ownerId: 'thief00000000000' })));
    });
    const reason = await Promise.race([lost, sleep(5000).then(() => undefined)]);
    expect(reason?.code).toBe('lease_lost');
    await sleep(100);
    expect((await readLease(dir))!.ownerId).toBe('thief00000000000');
  });

  it('detects lease.json removed', async () => {
    const dir = await tmpDir();
    const onLost = vi.fn();
    const l = await acquire(dir, { heartbeatMs: 0, onLost });
    await fs.unlink(path.join(dir, LEASE_FILE));
    expect(await l.heartbeat()).toBe(false);
    expect(onLost.mock.calls[0]![0].message).toMatch(/removed/);
    expect(ls(dir)).toEqual([]);
  });

  it('detects lease.json replaced by garbage or by a newer version', async () => {
    for (const text of ['garbage', JSON.stringify({ ...record(), schemaVersion: 9 })]) {
      const dir = await tmpDir();
      const onLost = vi.fn();
      const l = await acquire(dir, { heartbeatMs: 0, onLost });
      await writeLease(dir, text);
      expect(await l.heartbeat()).toBe(false);
      expect(onLost).toHaveBeenCalledTimes(1);
      expect(await fs.readFile(path.join(dir, LEASE_FILE), 'utf8')).toBe(text);
    }
  });

  it('an owner paused past its ttl finds it was taken over when it wakes up', async () => {
    const dir = await tmpDir();
    const onLostA = vi.fn();
    const a = await acquire(dir, { ttlMs: 100, heartbeatMs: 0, onLost: onLostA });
    await sleep(150); // A "paused": no heartbeat for longer than its ttl
    const b = await acquire(dir, { ttlMs: 10_000 });
    expect(await a.heartbeat()).toBe(false);
    expect(onLostA).toHaveBeenCalledTimes(1);
    expect((await readLease(dir))!.ownerId).toBe(b.ownerId);
    await a.release();
    expect((await readLease(dir))!.ownerId).toBe(b.ownerId);
  });

  it('errors thrown by onLost are ignored', async () => {
    const dir = await tmpDir();
    const l = await acquire(dir, {
      heartbeatMs: 0,
      onLost: () => {
        throw new Error('bad callback');
      },
    });
    await fs.unlink(path.join(dir, LEASE_FILE));
    expect(await l.heartbeat()).toBe(false);
    expect(l.lost).toBe(true);
  });

  it('write failures throw io; when they outlast the ttl the lease is declared lost', async () => {
    const dir = await tmpDir();
    const onLost = vi.fn();
    const l = await acquire(dir, { ttlMs: 200, heartbeatMs: 0, onLost });
    const realOpen = fs.open;
    const spy = vi.spyOn(fs, 'open').mockImplementation(async (p, ...rest) => {
      if (String(p).includes(LEASE_FILE)) throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
      return realOpen(p, ...(rest as [])) as never;
    });
    await expectCode(l.heartbeat(), 'io');
    expect(onLost).not.toHaveBeenCalled();
    await sleep(250);
    await expectCode(l.heartbeat(), 'io');
    expect(onLost).toHaveBeenCalledTimes(1);
    expect(l.lost).toBe(true);
    spy.mockRestore();
    expect(await l.heartbeat()).toBe(false);
  });

  it('release waits for an in-flight heartbeat and then removes the file', async () => {
    const dir = await tmpDir();
    const l = await acquire(dir, { heartbeatMs: 0 });
    const hb = l.heartbeat();
    await l.release();
    expect(await hb).toBe(true);
    expect(ls(dir)).toEqual([]);
  });
});

describe('leases across real processes', () => {
  it('a child holding a lease blocks us; after SIGKILL the lease is stale and we take it over', async () => {
    const mod = await storeModule();
    const dir = await tmpDir();
    const child = spawnNode(
      `
      const { acquireLease } = await import(ARGS[0]);
      const lease = await acquireLease(ARGS[1], { ttlMs: 60000, heartbeatMs: 100 });
      process.stdout.write('acquired ' + lease.ownerId + '\\n');
      setInterval(() => {}, 1000);
      `,
      [mod, dir],
    );
    await child.waitFor('acquired');
    const rec = (await readLease(dir))!;
    expect(rec.pid).toBe(child.proc.pid);
    expect(leaseState(rec)).toBe('live');
    const err = await expectCode(acquireLease(dir), 'lease_held');
    expect(err.message).toContain(`pid ${child.proc.pid}`);
    child.proc.kill('SIGKILL');
    await child.exited;
    // The ttl is a minute, but the owner's pid is gone on this host: stale at once.
    expect(leaseState(await readLease(dir))).toBe('stale');
    const mine = await acquire(dir);
    expect((await readLease(dir))!.ownerId).toBe(mine.ownerId);
    expect(ls(dir)).toEqual([LEASE_FILE]);
  });

  it('a hand-written lease of a sleeping child process is live until the child is SIGKILLed', async () => {
    const dir = await tmpDir();
    const child = spawnNode(
      `
      import fs from 'node:fs';
      import os from 'node:os';
      const now = new Date().toISOString();
      fs.writeFileSync(ARGS[0] + '/lease.json', JSON.stringify({ schemaVersion: 1, ownerId: 'childowner000000', pid: process.pid, host: os.hostname(), acquiredAt: now, heartbeatAt: now, ttlMs: 600000 }));
      process.stdout.write('written\\n');
      setInterval(() => {}, 1000);
      `,
      [dir],
    );
    await child.waitFor('written');
    await expectCode(acquireLease(dir), 'lease_held');
    child.proc.kill('SIGKILL');
    await child.exited;
    const mine = await acquire(dir);
    expect((await readLease(dir))!.ownerId).toBe(mine.ownerId);
  });

  it('exactly one of several processes racing for the same run wins (fresh and stale)', async () => {
    const mod = await storeModule();
    const racers = 6;
    for (const mode of ['fresh', 'stale', 'fresh', 'stale']) {
      const dir = await tmpDir();
      if (mode === 'stale') await writeLease(dir, record({ pid: await deadPid(), heartbeatAt: ago(60_000) }));
      const startAt = Date.now() + 700; // all children start acquiring at the same instant
      const kids = Array.from({ length: racers }, () =>
        spawnNode(
          `
          const { acquireLease } = await import(ARGS[0]);
          const startAt = Number(ARGS[2]);
          while (Date.now() < startAt) {}
          try {
            const l = await acquireLease(ARGS[1], { heartbeatMs: 0 });
            process.stdout.write(JSON.stringify({ ok: true, ownerId: l.ownerId }) + '\\n');
          } catch (e) {
            process.stdout.write(JSON.stringify({ ok: false, code: e.code, message: e.message }) + '\\n');
          }
          // Stay alive: a winner that exits leaves a lease with a dead pid, which is rightly stale.
          setInterval(() => {}, 1000);
          `,
          [mod, dir, String(startAt)],
        ),
      );
      await Promise.all(kids.map((k) => k.waitFor('"ok"')));
      const results = kids.map((k) => JSON.parse(k.stdout().trim()));
      const winners = results.filter((r) => r.ok);
      expect(winners, JSON.stringify(results)).toHaveLength(1);
      for (const r of results.filter((x) => !x.ok)) expect(r.code).toBe('lease_held');
      expect((await readLease(dir))!.ownerId).toBe(winners[0].ownerId);
      expect(ls(dir)).toEqual([LEASE_FILE]);
      killChildren();
    }
  });

  it('the heartbeat timer does not keep a process alive', async () => {
    const mod = await storeModule();
    const dir = await tmpDir();
    const child = spawnNode(
      `
      const { acquireLease } = await import(ARGS[0]);
      await acquireLease(ARGS[1], { ttlMs: 1000, heartbeatMs: 10 });
      process.stdout.write('done\\n');
      `,
      [mod, dir],
    );
    const exit = await Promise.race([child.exited, sleep(10_000).then(() => 'hung' as const)]);
    expect(exit).not.toBe('hung');
    expect(child.stdout()).toContain('done');
  });
});
