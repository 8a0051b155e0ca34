#!/usr/bin/env node
/**
 * B3 — time and bytes to record N agents of 5 KB output each through the store, for N = 250,
 * 500, 1000: per agent, in the owner's order, journal `agent.started` (awaited) → journal
 * `agent.spawned` (awaited, as the owner awaits it before the child gets its prompt) → RunStore.writeAgentRecord (atomic,
 * fsynced) → journal `agent.finished` (awaited). One agent
 * after another (one slot: the worst case, every fsync on the clock), and with 4 agents recorded
 * at once (the owner's default maxConcurrent). A fresh run directory per measurement; sizes in
 * repetition-interleaved order; median of the repetitions.
 *
 * Also prints bytes on disk (apparent and allocated), whether time is linear in N (ms/agent
 * roughly constant), a what-if without the per-record realpath walk (the change proposed for the
 * store, see lib/whatif.mjs), and the same recording on tmpfs (/dev/shm, when present), which
 * says what the code costs with no disk. (`record(n, 1, { fsyncRecords: false })` measures the
 * same without the record's fsync, by patching FileHandle.sync in this process only.)
 *
 *   npm run build && node --expose-gc bench/b3-record.mjs [--reps 3]
 *
 * Goal: 1000 agents in < 2 s, linear in N.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { buildPlan } from '../dist/spec/index.js';
import { createRun } from '../dist/engine/lifecycle.js';
import { RunStore, SCHEMA_VERSION } from '../dist/store/index.js';
import { bytes, calibrate, collect, diskUsage, f, filler, median, numArg, oneCommandPhaseSpec, succeededRecord, tempDir, verdict } from './lib/common.mjs';
import { installProbe, skipSync } from './lib/fsprobe.mjs';
import { patchCachedAgentPath } from './lib/whatif.mjs';

const SIZES = [250, 500, 1000];
const REPS = numArg('reps', 3);
const OUTPUT_BYTES = 5000;
const GOAL_MS = 2000;

const { dir: tmp, cleanup } = await tempDir('b3');
const storeRoot = path.join(tmp, 'store');
const plan = buildPlan(oneCommandPhaseSpec({ name: 'b3', n: Math.max(...SIZES), argv: ['/bin/true'] }));
// Distinct outputs, so nothing downstream (the page cache, the disk) sees repeated blocks.
const outputs = plan.tasks.map((_, i) => filler(OUTPUT_BYTES, i + 1));

// The same on a RAM file system, when there is one: what the code costs without a disk under it.
const shm = await stat('/dev/shm').then((s) => s.isDirectory(), () => false) ? await mkdtemp('/dev/shm/fanfold-b3-') : undefined;

/** Records `n` agents with `slots` in flight; returns ms and the run directory's size. */
async function record(n, slots, { fsyncRecords = true, ram = false, cachedPath = false } = {}) {
  const root = ram ? shm : storeRoot;
  const runId = await createRun({ root, plan, cwd: tmp });
  const store = await RunStore.open(root, runId);
  const before = await diskUsage(store.dir);
  const uninstall = fsyncRecords ? undefined : await installProbe();
  const unpatch = cachedPath ? patchCachedAgentPath() : undefined;
  if (!fsyncRecords) skipSync((p) => p.includes(`${path.sep}agents${path.sep}`));
  let next = 0;
  const one = async (i) => {
    const task = plan.tasks[i];
    const startedAt = new Date();
    await store.appendEvent({ type: 'agent.started', t: startedAt.toISOString(), ref: task.ref, key: task.key, attempt: 1, slot: 0 });
    await store.appendEvent({ type: 'agent.spawned', t: startedAt.toISOString(), ref: task.ref, attempt: 1, pid: 100_000 + i, startTicks: 1 });
    const rec = succeededRecord({ runId, plan, task, output: outputs[i], SCHEMA_VERSION, startedAt });
    const file = await store.writeAgentRecord(rec);
    await store.appendEvent({
      type: 'agent.finished', t: rec.endedAt, ref: task.ref, key: task.key, attempt: 1, status: rec.status, durationMs: rec.durationMs, file,
    });
  };
  const worker = async () => {
    while (next < n) await one(next++);
  };
  try {
    const t0 = performance.now();
    await Promise.all(Array.from({ length: slots }, worker));
    await store.close(); // the journal's final fdatasync is part of recording
    const ms = performance.now() - t0;
    const after = await diskUsage(store.dir);
    return { ms, size: after.size - before.size, allocated: after.allocated - before.allocated, files: after.files - before.files };
  } finally {
    uninstall?.();
    unpatch?.();
    await store.close();
    await rm(store.dir, { recursive: true, force: true });
  }
}

const CASES = [
  { name: 'c=1', slots: 1 },
  { name: 'c=4', slots: 4 },
  { name: 'c=1, agent path checked once per store (what-if)', slots: 1, cachedPath: true },
  ...(shm ? [{ name: 'c=1 on tmpfs /dev/shm (no disk)', slots: 1, ram: true }] : []),
];

try {
  const cal = await calibrate(tmp);
  console.log(
    `B3   this machine now: fs round trip ${f(cal.rttMs, 3)} ms, creating a 6 kB file ${f(cal.createCpuMs, 2)} ms of CPU, its fsync ${f(cal.fsyncMs, 2)} ms ` +
      `(so one slot cannot record 1000 fsynced agents in less than ~${f(cal.fsyncMs, 1)} s)`,
  );
  await record(100, 4); // warm-up
  const res = new Map(); // `${case}|${n}` → results[]
  for (let rep = 0; rep < REPS; rep++) {
    for (const c of CASES) {
      // Rotate the sizes so none is always measured first.
      const order = SIZES.map((_, i) => SIZES[(i + rep) % SIZES.length]);
      for (const n of order) {
        collect();
        const k = `${c.name}|${n}`;
        (res.get(k) ?? res.set(k, []).get(k)).push(await record(n, c.slots, c));
      }
    }
  }
  for (const c of CASES) {
    const perAgent = [];
    const floor = [];
    for (const n of SIZES) {
      const rs = res.get(`${c.name}|${n}`);
      const ms = median(rs.map((r) => r.ms));
      perAgent.push(ms / n);
      floor.push(Math.min(...rs.map((r) => r.ms)) / n);
      console.log(
        `B3   ${c.name} N=${n}: ${f(ms, 0)} ms (${f(ms / n, 2)} ms/agent), ${bytes(median(rs.map((r) => r.size)))} written, ` +
          `${bytes(median(rs.map((r) => r.allocated)))} allocated on disk`,
      );
    }
    // Linear when the cost per agent does not grow with N. Judged on the fastest repetition of
    // each N: on a busy machine noise only ever adds time, so the minimum is its best estimate.
    const spread = Math.max(...floor) / Math.min(...floor);
    const linear = `linear in N: ${spread <= 1.25 ? 'yes' : 'no'} (fastest ms/agent ${floor.map((x) => f(x, 2)).join(' / ')} for N=${SIZES.join('/')}, max/min ${f(spread, 2)})`;
    const rs = res.get(`${c.name}|1000`);
    const ms = median(rs.map((r) => r.ms));
    const size = median(rs.map((r) => r.size));
    const alloc = median(rs.map((r) => r.allocated));
    const what =
      `${c.slots === 1 ? 'one at a time' : `${c.slots} at once`}` +
      `${c.fsyncRecords === false ? ', record not fsynced (what-if)' : ''}${c.cachedPath ? ', no realpath walk per record (what-if)' : ''}` +
      `${c.ram ? ', on tmpfs (no disk)' : ''}`;
    const line =
      `1000 agents of 5 KB, ${what}: ${f(ms, 0)} ms (${f(ms / 1000, 2)} ms/agent), ${bytes(size)} written (${f(size / 1000 / 1000, 2)} kB/agent), ` +
      `${bytes(alloc)} allocated; ${linear}`;
    if (c.fsyncRecords === false || c.ram || c.cachedPath) console.log(`B3   ${line}`);
    else console.log(`B3 record ${line}; goal < ${GOAL_MS} ms: ${verdict(ms < GOAL_MS)}`);
  }
} finally {
  await cleanup();
  if (shm) await rm(shm, { recursive: true, force: true });
}
