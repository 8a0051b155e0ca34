#!/usr/bin/env node
/**
 * B2 — dispatch overhead per agent above a bare spawn.
 *
 * N agents running a trivial command (`/bin/echo x`) through the real run owner (createRun +
 * ownRun, command runner, a temp store) against the same N spawns done bare with
 * child_process.spawn under the same concurrency (same stdio, own process group, prompt on stdin,
 * stdout collected, wait for 'close' — what any runner must do). Per-agent overhead =
 * (owner − bare) / N, per repetition, median over repetitions; A/B interleaved in one process.
 *
 * Then where it goes: one owner pass at concurrency 1 under a file-system probe (time per fsync,
 * atomic write, journal append, path check, per file kind), and a what-if variant measured
 * interleaved with the others: the owner with the store changes proposed for the hot path
 * (input files written in place, one shared file for identical contexts, agent-record path
 * checked without a realpath walk; see lib/whatif.mjs). src/ is unchanged; the variant patches
 * this process's copy of dist/ only. (`owner(c, { syncSkip })` measures a run without fsync.)
 *
 *   npm run build && node --expose-gc bench/b2-dispatch.mjs [--n 200] [--reps 3] [--profile FILE.cpuprofile]
 *
 * With --profile, one more owner pass at c=1 runs under the CPU profiler (written to FILE) and the
 * files and functions with the most self time are printed.
 *
 * Goal: < 2 ms per agent. Always exits 0 unless something crashed (MISS marks a missed goal).
 */
import { spawn } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { buildPlan } from '../dist/spec/index.js';
import { createRun } from '../dist/engine/lifecycle.js';
import { ownRun } from '../dist/engine/owner.js';
import { getRunner } from '../dist/runners/index.js';
import { calibrate, collect, f, median, numArg, oneCommandPhaseSpec, range, tempDir, verdict } from './lib/common.mjs';
import { installProbe, skipSync, startProbe, stopProbe, summarize } from './lib/fsprobe.mjs';
import { patchCachedAgentPath, patchPlainInputs } from './lib/whatif.mjs';
import { flatProfile, profiled } from './lib/profile.mjs';

const N = numArg('n', 200);
const REPS = numArg('reps', 3);
const CONCURRENCY = [1, 4];
const ARGV = ['/bin/echo', 'x'];
const GOAL_MS = 2;
const PROFILE = process.argv.includes('--profile') ? process.argv[process.argv.indexOf('--profile') + 1] : undefined;

const { dir: tmp, cleanup } = await tempDir('b2');
const cwd = path.join(tmp, 'project');
const storeRoot = path.join(tmp, 'store');
await mkdir(cwd);

/** The same N spawns without fanfold. */
const bare = (c) => bareN(c, N);

/** `n` spawns by `c` workers, each spawning the next command when its last one closed. */
async function bareN(c, n) {
  const one = (i) =>
    new Promise((resolve, reject) => {
      const child = spawn(ARGV[0], ARGV.slice(1), { cwd, env: process.env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
      const out = [];
      child.stdout.on('data', (b) => out.push(b));
      child.stderr.on('data', () => {});
      child.stdin.on('error', () => {});
      child.stdin.end(`task ${i}`);
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out).toString()) : reject(new Error(`bare spawn exited ${code}`))));
    });
  let next = 0;
  const worker = async () => {
    while (next < n) await one(next++);
  };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: c }, worker));
  return { total: performance.now() - t0, cpu: cpuMs(process.cpuUsage(cpu0)) };
}

/** user + system CPU of this process (all its threads; children not included), in ms. */
const cpuMs = (u) => (u.user + u.system) / 1000;

/**
 * One run through the owner. Returns total ownRun time and its split: call → first runner call,
 * first runner call → last runner return (the dispatch window), last return → ownRun resolves.
 */
async function owner(c, { syncSkip, proposed, probe } = {}) {
  const plan = buildPlan(oneCommandPhaseSpec({ name: 'b2', n: N, argv: ARGV, maxConcurrent: c }));
  const runId = await createRun({ root: storeRoot, plan, cwd });
  const base = getRunner('command');
  let first;
  let last;
  const runner = {
    kind: 'command',
    async run(input) {
      first ??= performance.now();
      const r = await base.run(input);
      last = performance.now();
      return r;
    },
  };
  const undo = proposed ? [patchPlainInputs(), patchCachedAgentPath()] : [];
  // The probe only where it is needed: its wrappers cost microseconds per fs call.
  if (syncSkip || probe) undo.push(await installProbe());
  if (syncSkip) skipSync(syncSkip);
  if (probe) startProbe();
  try {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const rec = await ownRun({ root: storeRoot, runId, runners: () => runner });
    const t1 = performance.now();
    const cpu = cpuMs(process.cpuUsage(cpu0));
    if (rec.status !== 'completed') throw new Error(`b2: run ended ${rec.status}: ${rec.reason}`);
    return { total: t1 - t0, cpu, startup: first - t0, window: last - first, tail: t1 - last, first, last, calls: probe ? stopProbe() : undefined };
  } finally {
    for (const u of undo.reverse()) u();
    await rm(path.join(storeRoot, runId), { recursive: true, force: true });
  }
}

const VARIANTS = {
  bare: (c) => bare(c),
  owner: (c) => owner(c),
  'owner + proposed store changes': (c) => owner(c, { proposed: true }),
};
const names = Object.keys(VARIANTS);

try {
  const cal = await calibrate(tmp);
  console.log(`B2   this machine now: fs round trip ${f(cal.rttMs, 3)} ms, creating a 6 kB file ${f(cal.createCpuMs, 2)} ms of CPU, its fsync ${f(cal.fsyncMs, 2)} ms`);
  // Warm-up: JIT, page cache of /bin/echo, the thread pool.
  await bare(4);
  await owner(4);

  /** results[c][variant] = array of { total, … } per repetition. */
  const results = Object.fromEntries(CONCURRENCY.map((c) => [c, Object.fromEntries(names.map((n) => [n, []]))]));
  for (let rep = 0; rep < REPS; rep++) {
    for (const c of CONCURRENCY) {
      // Rotate the order each repetition so no variant always runs first (or after the same one).
      const order = names.map((_, i) => names[(i + rep + c) % names.length]);
      for (const v of order) {
        collect();
        results[c][v].push(await VARIANTS[v](c));
      }
    }
  }

  const perAgent = (c, v) => median(results[c][v].map((r, i) => (r.total - results[c].bare[i].total) / N));
  for (const c of CONCURRENCY) {
    const o = perAgent(c, 'owner');
    const [lo, hi] = range(results[c].owner.map((r, i) => (r.total - results[c].bare[i].total) / N));
    const ownerMs = median(results[c].owner.map((r) => r.total));
    const bareMs = median(results[c].bare.map((r) => r.total));
    console.log(
      `B2 dispatch overhead c=${c}: ${f(o, 2)} ms/agent (owner ${f(ownerMs, 0)} ms, bare ${f(bareMs, 0)} ms, N=${N}, median of ${REPS}, range ${f(lo, 2)}–${f(hi, 2)}; goal < ${GOAL_MS} ms: ${verdict(o < GOAL_MS)})`,
    );
    const split = (k) => median(results[c].owner.map((r) => r[k]));
    const windowOver = median(results[c].owner.map((r, i) => (r.window - results[c].bare[i].total) / N));
    const cpuOver = median(results[c].owner.map((r, i) => (r.cpu - results[c].bare[i].cpu) / N));
    console.log(
      `B2   c=${c} CPU of this process (user+sys, all threads): ${f(cpuOver, 2)} ms/agent more than bare ` +
        `(owner ${f(median(results[c].owner.map((r) => r.cpu)) / N, 2)}, bare ${f(median(results[c].bare.map((r) => r.cpu)) / N, 2)} ms/agent); ` +
        `CPU time is far less sensitive to a busy machine than wall time`,
    );
    console.log(
      `B2   c=${c} split: call→first dispatch ${f(split('startup'), 0)} ms, dispatch window ${f(split('window'), 0)} ms ` +
        `(${f(windowOver, 2)} ms/agent over bare), last exit→ownRun returns ${f(split('tail'), 0)} ms`,
    );
    for (const v of names.slice(2)) {
      const cpuV = median(results[c][v].map((r, i) => (r.cpu - results[c].bare[i].cpu) / N));
      console.log(
        `B2   c=${c} what-if ${v}: ${f(perAgent(c, v), 2)} ms/agent (owner ${f(median(results[c][v].map((r) => r.total)), 0)} ms; CPU ${f(cpuV, 2)} ms/agent more than bare)`,
      );
    }
  }

  // Where the time goes: one owner pass at c=1 under the probe, counting only calls made inside
  // the dispatch window (first runner call → last runner return), so start-up and the end-of-run
  // work (digests, reports) are left out. At c=1 the per-agent calls do not overlap, apart from
  // the owner's timers (lease heartbeat, control poll, coalesced run.json and index writes).
  const bareRef = median(results[1].bare.map((r) => r.total));
  for (const [label, opts] of [['as is', {}], ['with the proposed store changes', { proposed: true }]]) {
    collect();
    const probed = await owner(1, { probe: true, ...opts });
    const rows = summarize(probed.calls, probed.first, probed.last);
    const per = (pred) => rows.filter(pred).reduce((a, r) => a + r.count, 0) / N;
    const fsync = rows.filter((r) => r.op === 'fsync');
    const fsyncMs = fsync.reduce((a, r) => a + r.ms, 0);
    const fsMs = rows.reduce((a, r) => a + r.ms, 0);
    const calls = per(() => true);
    const syncs = per((r) => r.op === 'fsync');
    // What the calls would cost on an idle machine with this disk: round trips and fsyncs at the
    // calibrated prices, nothing else (no spawn, no CPU, no waiting for a busy event loop).
    const model = (calls - syncs) * cal.rttMs + syncs * cal.fsyncMs;
    console.log(
      `B2   c=1 ${label}, probed dispatch window: ${f((probed.window - bareRef) / N, 2)} ms/agent over bare; ` +
        `${f(calls, 1)} fs calls/agent (${f(syncs, 2)} fsync, ${f(per((r) => r.op === 'open'), 2)} open, ${f(per((r) => r.op === 'rename'), 2)} rename, ` +
        `${f(per((r) => r.op === 'realpath' || r.op === 'lstat'), 2)} realpath/lstat) taking ${f(fsMs / N, 2)} ms/agent, of which fsync ${f(fsyncMs / N, 2)} ms ` +
        `(${fsync.map((r) => `${r.kind} ${f(r.count / N, 2)}×`).join(', ')}); at the calibrated prices ${f(model, 2)} ms/agent`,
    );
    if (opts.proposed) continue;
    console.log('B2   c=1 as is, fs calls per agent in the dispatch window (calls/agent × ms/call = ms/agent), largest first:');
    for (const r of rows.filter((r) => r.ms / N >= 0.05).slice(0, 16)) {
      console.log(`B2     ${`${r.op} ${r.kind}`.padEnd(30)} ${f(r.count / N, 2).padStart(6)} × ${f(r.ms / r.count, 3)} ms = ${f(r.ms / N, 3)} ms/agent`);
    }
  }

  // The owner forks itself for every agent, and fork copies the parent's page tables: a bigger
  // owner (records, digests, the in-memory search index) makes every spawn dearer.
  const spawnCost = async () => {
    collect();
    const rss = process.memoryUsage().rss / 1e6;
    const runs = [];
    for (let i = 0; i < 5; i++) runs.push(await bareN(1, 10));
    return { rss, wall: median(runs.map((r) => r.total)) / 10, cpu: median(runs.map((r) => r.cpu)) / 10 };
  };
  const small = await spawnCost();
  const ballast = Array.from({ length: 300 }, () => Array.from({ length: 10_000 }, (_, i) => ({ i, s: `x${i}` })));
  const large = await spawnCost();
  ballast.length = 0;
  console.log(
    `B2   one bare spawn vs the RSS of the process that spawns: ${f(small.rss, 0)} MB → ${f(small.wall, 1)} ms wall, ${f(small.cpu, 2)} ms CPU; ` +
      `${f(large.rss, 0)} MB → ${f(large.wall, 1)} ms wall, ${f(large.cpu, 2)} ms CPU`,
  );

  if (PROFILE) {
    collect();
    const { result, profile } = await profiled(path.resolve(PROFILE), () => owner(1));
    const flat = flatProfile(profile);
    console.log(
      `B2   CPU profile of one owner pass at c=1 (${path.resolve(PROFILE)}): ${f(result.total, 0)} ms wall, ${f(flat.total - flat.idle, 0)} ms on the main thread, ${f(flat.idle, 0)} ms idle`,
    );
    for (const x of flat.byFile.slice(0, 14)) console.log(`B2     file ${x.name.padEnd(60)} ${f(x.ms / N, 3).padStart(7)} ms/agent self`);
    for (const x of flat.byFunction.slice(0, 16)) console.log(`B2     fn   ${x.name.slice(0, 60).padEnd(60)} ${f(x.ms / N, 3).padStart(7)} ms/agent self`);
  }
} finally {
  await cleanup();
}
