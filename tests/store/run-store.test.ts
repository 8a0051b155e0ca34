import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import fs from 'node:fs/promises';
import fss from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Memory } from 'lowdb';
import {
  AGENT_FILE_PATTERN,
  RunStore,
  agentFileName,
  compareAgentRecords,
  parseAgentFileName,
} from '../../src/store/run-store.js';
import { StoreError, type StoreErrorCode } from '../../src/store/errors.js';
import { readLease } from '../../src/store/lease.js';
import { AGENT_RECORD_VERSION, type AgentRecord, type RunRecord } from '../../src/store/types.js';
import { cleanupTmp, killChildren, ls, makeAgent, makeRun, sleep, spawnNode, storeModule, tmpDir } from './helpers.js';

const open: RunStore[] = [];
afterEach(async () => {
  killChildren();
  await Promise.all(open.splice(0).map((s) => s.close().catch(() => {})));
});
afterAll(cleanupTmp);

async function expectCode(p: Promise<unknown> | (() => unknown), code: StoreErrorCode): Promise<StoreError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).code).toBe(code);
    return err as StoreError;
  }
  throw new Error(`expected StoreError '${code}'`);
}

async function create(root: string, runId = 'run1', over: Partial<RunRecord> = {}): Promise<RunStore> {
  const s = await RunStore.create(root, makeRun(runId, over));
  open.push(s);
  return s;
}

async function openRun(root: string, runId = 'run1'): Promise<RunStore> {
  const s = await RunStore.open(root, runId);
  open.push(s);
  return s;
}

describe('agent file names', () => {
  it('builds and parses <phase>.<task>.<attempt>.json', () => {
    expect(agentFileName('map', 'core', 3)).toBe('map.core.3.json');
    expect(parseAgentFileName('map.core.3.json')).toEqual({ phaseId: 'map', taskId: 'core', attempt: 3 });
    expect(parseAgentFileName('a-b_c.D-9.999999.json')).toEqual({ phaseId: 'a-b_c', taskId: 'D-9', attempt: 999999 });
  });

  it.each(['map.core.0.json', 'map.core.01.json', 'map.core.1000000.json', 'map.core.json', 'map.core.1.json.123', 'map.core.1.txt', '.core.1.json', 'map..1.json', 'a.b.c.1.json', 'map.core.-1.json', 'map.core.1e3.json'])(
    'does not parse %j',
    (n) => {
      expect(parseAgentFileName(n)).toBeUndefined();
      expect(AGENT_FILE_PATTERN.test(n)).toBe(false);
    },
  );

  it('checks ids and attempt', () => {
    expect(() => agentFileName('../x', 'a', 1)).toThrow(/invalid phase id/);
    expect(() => agentFileName('map', 'a.b', 1)).toThrow(/invalid task id/);
    for (const bad of [0, -1, 1.5, Number.NaN, 1_000_000, '1' as unknown as number]) {
      expect(() => agentFileName('map', 'a', bad)).toThrow(StoreError);
    }
  });

  it('orders by phase, task, then attempt numerically', () => {
    const parts = ['b.a.1', 'a.b.10', 'a.b.2', 'a.a.1', 'a.b.1'].map((s) => parseAgentFileName(`${s}.json`)!);
    expect(parts.sort(compareAgentRecords).map((p) => `${p.phaseId}.${p.taskId}.${p.attempt}`)).toEqual(['a.a.1', 'a.b.1', 'a.b.2', 'a.b.10', 'b.a.1']);
  });
});

describe('RunStore.create / open', () => {
  it('creates the root recursively, the run directory, agents/, inputs/ and run.json', async () => {
    const root = path.join(await tmpDir(), 'deep', 'store');
    const s = await create(root, 'run1');
    expect(s.runId).toBe('run1');
    expect(s.dir).toBe(path.join(root, 'run1'));
    expect(ls(s.dir)).toEqual(['agents', 'inputs', 'run.json']);
    expect(JSON.parse(await fs.readFile(path.join(s.dir, 'run.json'), 'utf8'))).toEqual(makeRun('run1'));
    expect(await s.readRun()).toEqual(makeRun('run1'));
  });

  it('refuses an existing run id', async () => {
    const root = await tmpDir();
    await create(root, 'run1');
    const err = await expectCode(RunStore.create(root, makeRun('run1')), 'exists');
    expect(err.message).toBe(`store: run 'run1' already exists in ${root}`);
  });

  it('exactly one of many concurrent creators of the same run id wins', async () => {
    const root = await tmpDir();
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => RunStore.create(root, makeRun('same', { name: `n${i}` }))));
    const ok = results.filter((r): r is PromiseFulfilledResult<RunStore> => r.status === 'fulfilled');
    expect(ok).toHaveLength(1);
    open.push(ok[0]!.value);
    for (const r of results) if (r.status === 'rejected') expect((r.reason as StoreError).code).toBe('exists');
    expect((await ok[0]!.value.readRun()).name).toMatch(/^n\d+$/);
    expect(ls(path.join(root, 'same'))).toEqual(['agents', 'inputs', 'run.json']);
  });

  it.each(['../x', '..', '.', '', 'a/b', 'a\0b', '/abs', 'x'.repeat(65), '.plans', 'r\u0430n'])('create refuses run id %j and creates nothing', async (runId) => {
    const root = await tmpDir();
    await expectCode(RunStore.create(root, makeRun(runId)), 'invalid_id');
    expect(ls(root)).toEqual([]);
  });

  it('a create that fails after making the directory removes it, so the id stays usable', async () => {
    const root = await tmpDir();
    const bad = makeRun('half', { elapsedMs: 1n as unknown as number });
    await expectCode(RunStore.create(root, bad), 'invalid_argument');
    expect(ls(root)).toEqual([]);
    await create(root, 'half');
  });

  it('create refuses a record of another schema version', async () => {
    const root = await tmpDir();
    await expectCode(RunStore.create(root, { ...makeRun('r'), schemaVersion: 2 } as unknown as RunRecord), 'bad_version');
    expect(ls(root)).toEqual([]);
  });

  it('open: unknown run is named with the absolute root', async () => {
    const root = await tmpDir();
    const err = await expectCode(RunStore.open(root, 'x7'), 'unknown_run');
    expect(err.message).toBe(`store: unknown run 'x7' in ${root}`);
    await expectCode(RunStore.open(path.join(root, 'missing-root'), 'x7'), 'unknown_run');
  });

  it('open: a relative root is reported absolute', async () => {
    const err = await expectCode(RunStore.open('definitely-not-here', 'x7'), 'unknown_run');
    expect(err.message).toBe(`store: unknown run 'x7' in ${path.resolve('definitely-not-here')}`);
  });

  it.each(['../x', '..', 'a/b', '', 'a\0'])('open: invalid id %j', async (runId) => {
    const err = await expectCode(RunStore.open(await tmpDir(), runId), 'invalid_id');
    expect(err.message).toMatch(/^store: invalid run id /);
  });

  it('open: a file where the run directory should be is an unknown run', async () => {
    const root = await tmpDir();
    await fs.writeFile(path.join(root, 'afile'), '');
    await expectCode(RunStore.open(root, 'afile'), 'unknown_run');
  });

  it('open: a run directory that is a symlink out of the store is refused', async () => {
    const base = await tmpDir();
    const root = path.join(base, 'store');
    await fs.mkdir(root);
    const outside = await create(path.join(base, 'other-store'), 'run1');
    await fs.symlink(outside.dir, path.join(root, 'evil'));
    await expectCode(RunStore.open(root, 'evil'), 'path_escape');
  });

  it('create refuses when the run id is taken by a symlink (even a dangling one)', async () => {
    const root = await tmpDir();
    await fs.symlink('/nonexistent-target-xyz', path.join(root, 'runx'));
    await expectCode(RunStore.create(root, makeRun('runx')), 'path_escape');
  });

  it('open succeeds for an existing run and reads the same record', async () => {
    const root = await tmpDir();
    await create(root, 'run1');
    const s = await openRun(root, 'run1');
    expect((await s.readRun()).runId).toBe('run1');
  });
});

describe('run.json', () => {
  it('readRun reads fresh from disk on every call', async () => {
    const root = await tmpDir();
    const s = await create(root);
    const f = path.join(s.dir, 'run.json');
    await fs.writeFile(f, JSON.stringify(makeRun('run1', { name: 'edited' })));
    expect((await s.readRun()).name).toBe('edited');
  });

  it('readRun: missing run.json, wrong run id, bad version, corrupt', async () => {
    const root = await tmpDir();
    const s = await create(root);
    const f = path.join(s.dir, 'run.json');
    await fs.writeFile(f, JSON.stringify(makeRun('other')));
    expect((await expectCode(s.readRun(), 'corrupt')).message).toMatch(/names run 'other', expected 'run1'/);
    await fs.writeFile(f, JSON.stringify({ ...makeRun('run1'), schemaVersion: 3 }));
    await expectCode(s.readRun(), 'bad_version');
    await fs.writeFile(f, '{"schemaVersion":1,');
    await expectCode(s.readRun(), 'corrupt');
    await fs.unlink(f);
    expect((await expectCode(s.readRun(), 'corrupt')).message).toMatch(/has no run\.json/);
  });

  it('writeRun replaces atomically; refuses a record of another run or version', async () => {
    const root = await tmpDir();
    const s = await create(root);
    await s.writeRun(makeRun('run1', { status: 'completed' }));
    expect((await s.readRun()).status).toBe('completed');
    await expectCode(s.writeRun(makeRun('run2')), 'invalid_argument');
    await expectCode(s.writeRun({ ...makeRun('run1'), schemaVersion: 2 } as unknown as RunRecord), 'bad_version');
    expect(ls(s.dir)).toEqual(['agents', 'inputs', 'run.json']);
  });

  it('writeRun keeps its own copy: mutating the argument afterwards changes nothing', async () => {
    const root = await tmpDir();
    const s = await create(root);
    const rec = makeRun('run1', { resumes: 1 });
    await s.writeRun(rec);
    rec.resumes = 99;
    const after = await s.updateRun((r) => {
      r.elapsedMs = 5;
    });
    expect(after.resumes).toBe(1);
  });

  it('updateRun applies the change, sets updatedAt, returns a copy', async () => {
    const root = await tmpDir();
    const s = await create(root);
    const before = Date.now();
    const out = await s.updateRun((r) => {
      r.status = 'failed';
      r.reason = 'x';
    });
    expect(out.status).toBe('failed');
    expect(Date.parse(out.updatedAt)).toBeGreaterThanOrEqual(before - 1);
    out.status = 'running';
    expect((await s.readRun()).status).toBe('failed');
    const kept = await s.updateRun((r) => {
      r.updatedAt = '2030-01-01T00:00:00.000Z';
    });
    expect(kept.updatedAt).toBe('2030-01-01T00:00:00.000Z');
  });

  it('concurrent updateRun calls never lose each other’s changes', async () => {
    const root = await tmpDir();
    const s = await create(root);
    await Promise.all(
      Array.from({ length: 100 }, () =>
        s.updateRun((r) => {
          r.resumes += 1;
        }),
      ),
    );
    expect((await s.readRun()).resumes).toBe(100);
    expect(ls(s.dir)).toEqual(['agents', 'inputs', 'run.json']);
  });

  it('updateRun on a freshly opened store starts from disk', async () => {
    const root = await tmpDir();
    const a = await create(root);
    await a.updateRun((r) => {
      r.resumes = 4;
    });
    const b = await openRun(root);
    expect(
      (
        await b.updateRun((r) => {
          r.resumes += 1;
        })
      ).resumes,
    ).toBe(5);
  });

  it('a throwing update writes nothing and the next update starts from disk', async () => {
    const root = await tmpDir();
    const s = await create(root);
    await expect(
      s.updateRun((r) => {
        r.resumes = 50;
        throw new Error('half-way');
      }),
    ).rejects.toThrow('half-way');
    expect((await s.readRun()).resumes).toBe(0);
    expect(
      (
        await s.updateRun((r) => {
          r.elapsedMs = 1;
        })
      ).resumes,
    ).toBe(0);
  });

  it('updateRun must not change runId', async () => {
    const root = await tmpDir();
    const s = await create(root);
    await expectCode(
      s.updateRun((r) => {
        r.runId = 'other';
      }),
      'invalid_argument',
    );
    expect((await s.readRun()).runId).toBe('run1');
  });

  it('runs on the in-memory twin when the caller passes lowdb Memory', async () => {
    const root = await tmpDir();
    const s = await RunStore.create(root, makeRun('mem1'), { runAdapter: new Memory<RunRecord>() });
    open.push(s);
    expect(ls(s.dir)).toEqual(['agents', 'inputs']);
    await s.updateRun((r) => {
      r.status = 'completed';
    });
    expect((await s.readRun()).status).toBe('completed');
    expect(fss.existsSync(path.join(s.dir, 'run.json'))).toBe(false);
  });
});

describe('journal via RunStore', () => {
  it('appendEvent / readEvents / readJournal', async () => {
    const root = await tmpDir();
    const s = await create(root);
    expect(await s.readEvents()).toEqual([]);
    expect(await s.readJournal()).toEqual({ events: [], corrupt: [], tornTailBytes: 0 });
    await s.appendEvent({ type: 'run.started', runId: 'run1', name: 'demo', agentCount: 1 });
    await s.appendEvent({ type: 'phase.started', phaseId: 'map', t: '2025-01-01T00:00:00.000Z' });
    await s.syncEvents();
    const events = await s.readEvents();
    expect(events.map((e) => e.type)).toEqual(['run.started', 'phase.started']);
    expect(events[1]!.t).toBe('2025-01-01T00:00:00.000Z');
    expect(ls(s.dir)).toContain('events.jsonl');
    // Another reader sees the same.
    const other = await openRun(root);
    expect((await other.readEvents()).length).toBe(2);
  });

  it('concurrent appends land in call order, the first ones queued behind the opening of the journal, each with its own time', async () => {
    const root = await tmpDir();
    const s = await create(root);
    const order: number[] = [];
    let seq = 0;
    // Producers that interleave with awaits the way the owner's attempts do; nothing waits for the
    // journal to be open first, so the first appends race its opening.
    const producer = async (k: number) => {
      for (let i = 0; i < 40; i++) {
        if ((i + k) % 5 === 0) await sleep(Math.random() * 2);
        const slot = seq++;
        order.push(slot);
        const p = s.appendEvent({ type: 'agent.started', ref: `p/t${k}`, key: `k${k}`, attempt: i + 1, slot, ...(slot % 7 === 0 ? { t: '2020-01-01T00:00:00.000Z' } : {}) });
        if (i % 4 === 0) await p;
      }
    };
    await Promise.all(Array.from({ length: 12 }, (_, k) => producer(k)));
    await s.syncEvents();
    const events = await s.readEvents();
    expect(events.map((e) => (e as { slot: number }).slot)).toEqual(order);
    // Each line has its own time: the one given, else when it was appended (in order).
    const own = events.filter((e) => (e as { slot: number }).slot % 7 !== 0).map((e) => Date.parse(e.t));
    expect(own.every((t, i) => Number.isFinite(t) && (i === 0 || t >= own[i - 1]!))).toBe(true);
    expect(events.filter((e) => (e as { slot: number }).slot % 7 === 0).every((e) => e.t === '2020-01-01T00:00:00.000Z')).toBe(true);
  });

  it('readEvents is strict about damage in the middle; readJournal is tolerant', async () => {
    const root = await tmpDir();
    const s = await create(root);
    await s.appendEvent({ type: 'phase.started', phaseId: 'a' });
    await fs.appendFile(path.join(s.dir, 'events.jsonl'), 'junk\n');
    await s.appendEvent({ type: 'phase.started', phaseId: 'b' });
    await expectCode(s.readEvents(), 'corrupt');
    const j = await s.readJournal();
    expect(j.events).toHaveLength(2);
    expect(j.corrupt.map((c) => c.line)).toEqual([2]);
  });

  it('a new owner appending after a crash cuts the torn tail first', async () => {
    const root = await tmpDir();
    const s = await create(root);
    await s.appendEvent({ type: 'phase.started', phaseId: 'a' });
    await s.close();
    await fs.appendFile(path.join(s.dir, 'events.jsonl'), '{"type":"phase.sta');
    const again = await openRun(root);
    await again.appendEvent({ type: 'phase.started', phaseId: 'b' });
    const j = await again.readJournal();
    expect(j).toMatchObject({ corrupt: [], tornTailBytes: 0 });
    expect(j.events.map((e) => (e as { phaseId: string }).phaseId)).toEqual(['a', 'b']);
  });

  it('a journal that is a symlink is refused', async () => {
    const root = await tmpDir();
    const s = await create(root);
    await fs.writeFile(path.join(root, 'elsewhere.jsonl'), '');
    await fs.symlink(path.join(root, 'elsewhere.jsonl'), path.join(s.dir, 'events.jsonl'));
    await expectCode(s.appendEvent({ type: 'phase.started', phaseId: 'a' }), 'path_escape');
    await expectCode(s.readEvents(), 'path_escape');
  });
});

describe('agent records', () => {
  it('writeAgentRecord writes agents/<phase>.<task>.<attempt>.json and returns the name', async () => {
    const root = await tmpDir();
    const s = await create(root);
    const rec = makeAgent('run1', 'map', 'core', 3);
    expect(await s.writeAgentRecord(rec)).toBe('map.core.3.json');
    expect(ls(path.join(s.dir, 'agents'))).toEqual(['map.core.3.json']);
    expect(await s.readAgentRecord('map.core.3.json')).toEqual({ ...rec, schemaVersion: AGENT_RECORD_VERSION });
    expect(s.agentFileName('map', 'core', 3)).toBe('map.core.3.json');
    expect(await s.agentPath('map.core.3.json')).toBe(path.join(s.dir, 'agents', 'map.core.3.json'));
  });

  it('rewriting an attempt replaces it atomically', async () => {
    const root = await tmpDir();
    const s = await create(root);
    await s.writeAgentRecord(makeAgent('run1', 'map', 'a', 1, { status: 'failed' }));
    await s.writeAgentRecord(makeAgent('run1', 'map', 'a', 1, { status: 'succeeded' }));
    expect((await s.readAgentRecord('map.a.1.json')).status).toBe('succeeded');
    expect(ls(path.join(s.dir, 'agents'))).toEqual(['map.a.1.json']);
  });

  it('refuses records of another run, another version, or with bad ids', async () => {
    const root = await tmpDir();
    const s = await create(root);
    await expectCode(s.writeAgentRecord(makeAgent('run2', 'map', 'a', 1)), 'invalid_argument');
    await expectCode(s.writeAgentRecord({ ...makeAgent('run1', 'map', 'a', 1), schemaVersion: 3 } as unknown as AgentRecord), 'bad_version');
    await expectCode(s.writeAgentRecord(makeAgent('run1', '../..', 'a', 1)), 'invalid_id');
    await expectCode(s.writeAgentRecord(makeAgent('run1', 'map', 'a/b', 1)), 'invalid_id');
    await expectCode(s.writeAgentRecord(makeAgent('run1', 'map', 'a', 0)), 'invalid_argument');
    expect(ls(path.join(s.dir, 'agents'))).toEqual([]);
  });

  it.each(['../run.json', '../../x.json', 'map.a.1', 'run.json', '/etc/passwd', 'map.a.1.json/', 'map.a.1.json\0'])(
    'readAgentRecord refuses name %j',
    async (name) => {
      const root = await tmpDir();
      const s = await create(root);
      await expectCode(s.readAgentRecord(name), 'invalid_name');
      await expectCode(s.agentPath(name), 'invalid_name');
    },
  );

  it('readAgentRecord: not_found, corrupt, bad_version, and a record that disagrees with its name', async () => {
    const root = await tmpDir();
    const s = await create(root);
    const dir = path.join(s.dir, 'agents');
    await expectCode(s.readAgentRecord('map.a.1.json'), 'not_found');
    await fs.writeFile(path.join(dir, 'map.a.1.json'), '{"schemaVersion":1,"phaseId":');
    await expectCode(s.readAgentRecord('map.a.1.json'), 'corrupt');
    await fs.writeFile(path.join(dir, 'map.a.1.json'), JSON.stringify({ ...makeAgent('run1', 'map', 'a', 1), schemaVersion: 3 }));
    await expectCode(s.readAgentRecord('map.a.1.json'), 'bad_version');
    await fs.writeFile(path.join(dir, 'map.a.1.json'), JSON.stringify(makeAgent('run1', 'map', 'b', 1)));
    expect((await expectCode(s.readAgentRecord('map.a.1.json'), 'corrupt')).message).toMatch(/does not match its file name/);
  });

  it('an agent record that is a symlink out of the store is refused', async () => {
    const root = await tmpDir();
    const s = await create(root);
    const outside = path.join(root, 'outside.json');
    await fs.writeFile(outside, JSON.stringify(makeAgent('run1', 'map', 'a', 1)));
    await fs.symlink(outside, path.join(s.dir, 'agents', 'map.a.1.json'));
    await expectCode(s.readAgentRecord('map.a.1.json'), 'path_escape');
    await expectCode(s.writeAgentRecord(makeAgent('run1', 'map', 'a', 1, { output: 'overwrite?' })), 'path_escape');
    expect(JSON.parse(await fs.readFile(outside, 'utf8')).output).not.toBe('overwrite?');
  });

  it('an agents/ folder that is a symlink out of the store is refused', async () => {
    const root = await tmpDir();
    const s = await create(root);
    const outside = await tmpDir();
    await fs.rm(path.join(s.dir, 'agents'), { recursive: true });
    await fs.symlink(outside, path.join(s.dir, 'agents'));
    await expectCode(s.writeAgentRecord(makeAgent('run1', 'map', 'a', 1)), 'path_escape');
    await expectCode(s.listAgentRecords(), 'path_escape');
    expect(ls(outside)).toEqual([]);
  });

  it('listAgentRecords sorts by phase, task, attempt and reports unreadable files', async () => {
    const root = await tmpDir();
    const s = await create(root);
    const dir = path.join(s.dir, 'agents');
    for (const [p, t, a] of [
      ['reduce', 'all', 1],
      ['map', 'b', 10],
      ['map', 'b', 2],
      ['map', 'a', 1],
      ['map', 'b', 1],
    ] as const) {
      await s.writeAgentRecord(makeAgent('run1', p, t, a));
    }
    await fs.writeFile(path.join(dir, 'map.c.1.json'), '{"schemaVersion":1,'); // corrupt
    await fs.writeFile(path.join(dir, 'map.d.1.json'), JSON.stringify({ ...makeAgent('run1', 'map', 'd', 1), schemaVersion: 3 }));
    await fs.writeFile(path.join(dir, 'notes.json'), '{}'); // not an agent record name
    await fs.writeFile(path.join(dir, 'map.e.1.json.2837465'), 'half'); // temp file of an interrupted write
    await fs.writeFile(path.join(dir, 'README.txt'), 'hi');
    await fs.mkdir(path.join(dir, 'map.f.1.json')); // a directory with a record's name
    const { records, unreadable } = await s.listAgentRecords();
    expect(records.map((r) => `${r.phaseId}.${r.taskId}.${r.attempt}`)).toEqual(['map.a.1', 'map.b.1', 'map.b.2', 'map.b.10', 'reduce.all.1']);
    expect(unreadable.map((u) => u.file)).toEqual(['map.c.1.json', 'map.d.1.json', 'map.f.1.json', 'notes.json']);
    expect(unreadable[0]!.error).toMatch(/not valid JSON/);
    expect(unreadable[1]!.error).toMatch(/schemaVersion 3, expected 1 or 2/);
    expect(unreadable[3]!.error).toMatch(/not an agent record file name/);
  });

  it('listAgentFiles lists record names without reading them', async () => {
    const root = await tmpDir();
    const s = await create(root);
    await s.writeAgentRecord(makeAgent('run1', 'map', 'b', 10));
    await s.writeAgentRecord(makeAgent('run1', 'map', 'b', 2));
    await fs.writeFile(path.join(s.dir, 'agents', 'map.a.1.json'), 'not even json');
    await fs.writeFile(path.join(s.dir, 'agents', 'map.a.1.json.1-abc.tmp'), '');
    expect(await s.listAgentFiles()).toEqual([
      { phaseId: 'map', taskId: 'a', attempt: 1, file: 'map.a.1.json' },
      { phaseId: 'map', taskId: 'b', attempt: 2, file: 'map.b.2.json' },
      { phaseId: 'map', taskId: 'b', attempt: 10, file: 'map.b.10.json' },
    ]);
  });

  it('listAgentRecords on an empty run, and with agents/ removed', async () => {
    const root = await tmpDir();
    const s = await create(root);
    expect(await s.listAgentRecords()).toEqual({ records: [], unreadable: [] });
    await fs.rm(path.join(s.dir, 'agents'), { recursive: true });
    expect(await s.listAgentRecords()).toEqual({ records: [], unreadable: [] });
  });

  it('nextAttempt is 1 + the highest attempt on disk', async () => {
    const root = await tmpDir();
    const s = await create(root);
    expect(await s.nextAttempt('map', 'a')).toBe(1);
    await s.writeAgentRecord(makeAgent('run1', 'map', 'a', 1));
    await s.writeAgentRecord(makeAgent('run1', 'map', 'a', 7));
    await s.writeAgentRecord(makeAgent('run1', 'map', 'b', 9));
    expect(await s.nextAttempt('map', 'a')).toBe(8);
    expect(await s.nextAttempt('map', 'c')).toBe(1);
    await expectCode(s.nextAttempt('../x', 'a'), 'invalid_id');
  });

  it('handles many concurrent writes of different records', async () => {
    const root = await tmpDir();
    const s = await create(root);
    await Promise.all(Array.from({ length: 200 }, (_, i) => s.writeAgentRecord(makeAgent('run1', `p${i % 5}`, `t${i}`, 1))));
    const { records, unreadable } = await s.listAgentRecords();
    expect(records).toHaveLength(200);
    expect(unreadable).toEqual([]);
    expect(ls(path.join(s.dir, 'agents'))).toHaveLength(200);
  });
});

describe('inputs', () => {
  it('writeInput writes under inputs/ and returns the absolute path', async () => {
    const root = await tmpDir();
    const s = await create(root);
    const p = await s.writeInput('map.a.1.prompt.txt', 'hello\nworld');
    expect(p).toBe(path.join(s.dir, 'inputs', 'map.a.1.prompt.txt'));
    expect(await fs.readFile(p, 'utf8')).toBe('hello\nworld');
    await s.writeInput('map.a.1.prompt.txt', 'again');
    expect(await fs.readFile(p, 'utf8')).toBe('again');
    expect(ls(path.join(s.dir, 'inputs'))).toEqual(['map.a.1.prompt.txt']);
  });

  it.each(['../run.json', '../../escape.txt', 'a/b.txt', 'noext', '.hidden.txt', '/etc/passwd', 'a.txt\0', 'C:\\x.txt', '\uff0e\uff0e.txt'])(
    'writeInput refuses name %j',
    async (name) => {
      const root = await tmpDir();
      const s = await create(root);
      await expectCode(s.writeInput(name, 'x'), 'invalid_name');
      expect(ls(path.join(s.dir, 'inputs'))).toEqual([]);
      expect(ls(root)).toEqual(['run1']);
    },
  );
});

describe('control', () => {
  it('any session can request a stop; the owner reads and clears it', async () => {
    const root = await tmpDir();
    const owner = await create(root);
    expect(await owner.readControl()).toBeUndefined();
    const other = await openRun(root);
    const rec = await other.requestStop({ pid: 1234, host: 'h' });
    expect(rec).toMatchObject({ schemaVersion: 1, request: 'stop', by: { pid: 1234, host: 'h' } });
    expect(await owner.readControl()).toEqual(rec);
    await owner.clearControl();
    expect(await owner.readControl()).toBeUndefined();
    await owner.clearControl(); // idempotent
  });

  it('requestStop defaults to this process', async () => {
    const root = await tmpDir();
    const s = await create(root);
    const rec = await s.requestStop();
    expect(rec.by).toEqual({ pid: process.pid, host: os.hostname() });
  });

  it('a non-owner can request a stop while a lease is held by someone else', async () => {
    const root = await tmpDir();
    const owner = await create(root);
    await owner.acquireLease({ heartbeatMs: 0 });
    const other = await openRun(root);
    await other.requestStop();
    expect((await owner.readControl())?.request).toBe('stop');
  });

  it('readControl refuses an unknown request and another version', async () => {
    const root = await tmpDir();
    const s = await create(root);
    const f = path.join(s.dir, 'control.json');
    await fs.writeFile(f, JSON.stringify({ schemaVersion: 1, request: 'explode', requestedAt: 'x', by: { pid: 1, host: 'h' } }));
    await expectCode(s.readControl(), 'corrupt');
    await fs.writeFile(f, JSON.stringify({ schemaVersion: 5, request: 'stop' }));
    await expectCode(s.readControl(), 'bad_version');
  });
});

describe('listRuns', () => {
  it('lists runs newest first, skips non-ids and files, puts unreadable runs last', async () => {
    const root = await tmpDir();
    await create(root, 'old', { createdAt: '2024-01-01T00:00:00.000Z' });
    await create(root, 'new', { createdAt: '2025-06-01T00:00:00.000Z' });
    await create(root, 'mid', { createdAt: '2025-01-01T00:00:00.000Z' });
    await fs.mkdir(path.join(root, '.plans'));
    await fs.mkdir(path.join(root, 'has.dot'));
    await fs.writeFile(path.join(root, 'afile'), '');
    await fs.mkdir(path.join(root, 'broken'));
    await fs.mkdir(path.join(root, 'badjson'));
    await fs.writeFile(path.join(root, 'badjson', 'run.json'), '{');
    const list = await RunStore.listRuns(root);
    expect(list.map((e) => e.runId)).toEqual(['new', 'mid', 'old', 'badjson', 'broken']);
    expect(list[0]!.run!.createdAt).toBe('2025-06-01T00:00:00.000Z');
    expect(list[3]!.error).toMatch(/not valid JSON/);
    expect(list[4]!.error).toMatch(/has no run\.json/);
    expect(list[4]!.run).toBeUndefined();
  });

  it('returns [] for a missing root', async () => {
    expect(await RunStore.listRuns(path.join(await tmpDir(), 'none'))).toEqual([]);
  });

  it('does not follow a run symlink out of the store', async () => {
    const base = await tmpDir();
    const root = path.join(base, 'store');
    await fs.mkdir(root);
    const other = await create(path.join(base, 'elsewhere'), 'secret');
    await fs.symlink(other.dir, path.join(root, 'secret'));
    expect(await RunStore.listRuns(root)).toEqual([]);
  });
});

describe('ownership fencing and close', () => {
  it('acquireLease through the store fences owner-only writes once the lease is lost', async () => {
    const root = await tmpDir();
    const s = await create(root);
    const lease = await s.acquireLease({ heartbeatMs: 0 });
    expect(s.lease).toBe(lease);
    expect(await s.acquireLease()).toBe(lease); // idempotent while held
    await s.writeAgentRecord(makeAgent('run1', 'map', 'a', 1));
    await fs.writeFile(
      path.join(s.dir, 'lease.json'),
      JSON.stringify({ ...lease.record, ownerId: 'usurper000000000', heartbeatAt: new Date().toISOString() }),
    );
    expect(await lease.heartbeat()).toBe(false);
    await expectCode(s.writeAgentRecord(makeAgent('run1', 'map', 'a', 2)), 'lease_lost');
    await expectCode(s.writeRun(makeRun('run1')), 'lease_lost');
    await expectCode(
      s.updateRun(() => {}),
      'lease_lost',
    );
    await expectCode(s.appendEvent({ type: 'phase.started', phaseId: 'x' }), 'lease_lost');
    await expectCode(s.writeInput('a.txt', 'x'), 'lease_lost');
    await expectCode(s.clearControl(), 'lease_lost');
    // Reads still work; close does not remove the usurper's lease.
    expect((await s.listAgentRecords()).records).toHaveLength(1);
    await s.close();
    expect((await readLease(s.dir))!.ownerId).toBe('usurper000000000');
  });

  it('close releases a lease taken through the store', async () => {
    const root = await tmpDir();
    const s = await create(root);
    await s.acquireLease({ heartbeatMs: 0 });
    expect(ls(s.dir)).toContain('lease.json');
    await s.close();
    expect(ls(s.dir)).not.toContain('lease.json');
  });

  it('attachLease fences with a lease acquired elsewhere and leaves its release to the caller', async () => {
    const root = await tmpDir();
    const s = await create(root);
    const other = await create(root, 'run2');
    const { acquireLease } = await import('../../src/store/lease.js');
    const lease = await acquireLease(s.dir, { heartbeatMs: 0 });
    expect(() => other.attachLease(lease)).toThrow(StoreError);
    s.attachLease(lease);
    await s.writeAgentRecord(makeAgent('run1', 'map', 'a', 1));
    await s.close();
    expect(ls(s.dir)).toContain('lease.json');
    await lease.release();
  });

  it('a second store cannot take the lease while the first holds it', async () => {
    const root = await tmpDir();
    const a = await create(root);
    await a.acquireLease({ heartbeatMs: 0 });
    const b = await openRun(root);
    await expectCode(b.acquireLease(), 'lease_held');
  });

  it('close waits for pending writes, is idempotent, and refuses writes afterwards', async () => {
    const root = await tmpDir();
    const s = await create(root);
    const pending = [
      s.appendEvent({ type: 'phase.started', phaseId: 'a' }),
      s.updateRun((r) => {
        r.resumes = 3;
      }),
    ];
    const [c1, c2] = [s.close(), s.close()];
    expect(c2).toBe(c1);
    await c1;
    await Promise.all(pending);
    await s.close();
    await expectCode(s.appendEvent({ type: 'phase.started', phaseId: 'b' }), 'closed');
    await expectCode(s.writeAgentRecord(makeAgent('run1', 'map', 'a', 1)), 'closed');
    await expectCode(s.requestStop(), 'closed');
    expect((await s.readRun()).resumes).toBe(3);
    expect(await s.readEvents()).toHaveLength(1);
  });
});

describe('durability under SIGKILL', () => {
  it('the owner’s write order (started → record → finished) survives a kill at any point', async () => {
    const mod = await storeModule();
    const root = await tmpDir();
    const s = await create(root, 'crash');
    await s.close();
    for (let round = 0; round < 4; round++) {
      const child = spawnNode(
        `
        const { RunStore } = await import(ARGS[0]);
        const store = await RunStore.open(ARGS[1], 'crash');
        await store.acquireLease({ ttlMs: 60000 });
        const base = Number(ARGS[2]);
        const body = 'x'.repeat(5000);
        process.stdout.write('ready\\n');
        const worker = async (w) => {
          for (let i = 0; ; i++) {
            const task = 't' + w + '-' + (base + i);
            await store.appendEvent({ type: 'agent.started', ref: 'map/' + task, key: 'k', attempt: 1, slot: w });
            const file = await store.writeAgentRecord({
              schemaVersion: 1, runId: 'crash', phaseId: 'map', taskId: task, key: 'k', attempt: 1, status: 'succeeded',
              agent: 'a', runner: 'command', prompt: 'p', output: body, outputBytes: 5000, truncated: false, exitCode: 0,
              signal: null, stderrTail: '', startedAt: 'x', endedAt: 'y', durationMs: 1,
            });
            await store.appendEvent({ type: 'agent.finished', ref: 'map/' + task, key: 'k', attempt: 1, status: 'succeeded', durationMs: 1, file });
          }
        };
        await Promise.all([0, 1, 2, 3].map(worker));
        `,
        [mod, root, String(round * 100_000)],
      );
      await child.waitFor('ready');
      await sleep(150 + round * 50);
      child.proc.kill('SIGKILL');
      await child.exited;

      const store = await openRun(root, 'crash');
      const journal = await store.readJournal();
      expect(journal.corrupt).toEqual([]);
      const { records, unreadable } = await store.listAgentRecords();
      expect(unreadable).toEqual([]);
      const onDisk = new Set(records.map((r) => `map/${r.taskId}`));
      const started = new Set(journal.events.filter((e) => e.type === 'agent.started').map((e) => (e as { ref: string }).ref));
      for (const e of journal.events) {
        // Every finished event points at a whole record on disk.
        if (e.type === 'agent.finished') expect(onDisk.has(e.ref)).toBe(true);
      }
      // Every record on disk was announced as started first.
      for (const ref of onDisk) expect(started.has(ref)).toBe(true);
      // The dead owner's lease is stale at once (its pid is gone), so a new owner can take over.
      await store.acquireLease({ heartbeatMs: 0 });
      await store.appendEvent({ type: 'run.resumed', runId: 'crash', reused: onDisk.size, toRun: 0, resumes: round + 1 });
      expect((await store.readJournal()).corrupt).toEqual([]);
      await store.close();
      open.splice(open.indexOf(store), 1);
    }
    const final = await openRun(root, 'crash');
    const { records } = await final.listAgentRecords();
    console.log(`[run-store] ${records.length} agent records survived 4 SIGKILLed owners intact`);
    expect(records.length).toBeGreaterThan(0);
  });
});

describe('fsync option', () => {
  async function syncCalls(fsync: boolean | undefined): Promise<number> {
    const root = await tmpDir();
    const s = await RunStore.create(root, makeRun('r1'), fsync === undefined ? {} : { fsync });
    open.push(s);
    const probe = await fs.open(path.join(root, 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as { sync: () => Promise<void> };
    await probe.close();
    const spy = vi.spyOn(proto, 'sync');
    try {
      await s.writeAgentRecord(makeAgent('r1', 'map', 'a', 1));
      await s.writeInput('a.txt', 'x');
      await s.updateRun((r) => {
        r.resumes = 1;
      });
      return spy.mock.calls.length;
    } finally {
      spy.mockRestore();
    }
  }
  // Inputs are rebuilt for every attempt, so only the record and run.json are flushed.
  // Three: the record, the agents folder (the record is a new name in it), run.json (replaced).
  it('fsyncs record and run.json writes by default (and the folder of the new record), not inputs', async () => expect(await syncCalls(undefined)).toBe(3));
  it('skips fsync when asked, still writing atomically', async () => expect(await syncCalls(false)).toBe(0));
});

describe('performance', () => {
  it('records 1000 agent records of 5 KB with two journal appends each (measured, not asserted)', async () => {
    const root = await tmpDir();
    const body = 'o'.repeat(5 * 1024 - 600);
    const runOnce = async (runId: string, concurrency: number, fsync = true) => {
      const s = await RunStore.create(root, makeRun(runId), { fsync });
      open.push(s);
      const t0 = performance.now();
      let next = 0;
      const worker = async () => {
        while (next < 1000) {
          const i = next++;
          const taskId = `t${i}`;
          await s.appendEvent({ type: 'agent.started', ref: `map/${taskId}`, key: 'k', attempt: 1, slot: 0 });
          const file = await s.writeAgentRecord(makeAgent(runId, 'map', taskId, 1, { output: body, outputBytes: body.length }));
          await s.appendEvent({ type: 'agent.finished', ref: `map/${taskId}`, key: 'k', attempt: 1, status: 'succeeded', durationMs: 1, file });
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      const ms = performance.now() - t0;
      const size = (await fs.stat(path.join(s.dir, 'agents', 'map.t0.1.json'))).size;
      expect(size).toBeGreaterThan(4900);
      expect(size).toBeLessThan(5300);
      expect((await s.readEvents()).length).toBe(2000);
      return ms;
    };
    const sequential = await runOnce('perfseq', 1);
    const parallel = await runOnce('perfpar', 16);
    const noSync = await runOnce('perfnosync', 1, false);
    const load = os.loadavg()[0]!.toFixed(1);
    console.log(
      `[run-store perf] 1000 records x 5 KB + 2000 journal appends: sequential ${sequential.toFixed(0)} ms, ` +
        `16 concurrent ${parallel.toFixed(0)} ms, sequential without fsync ${noSync.toFixed(0)} ms (load average ${load} on ${os.cpus().length} CPUs)`,
    );
  });
});
