#!/usr/bin/env node
/**
 * B9 — owner liveness: an agent prints 60 MiB (limits.maxOutputBytes 64 MiB) and a dependent
 * reads it; while the owner records, indexes, digests and reports it, how long is its event loop
 * ever blocked, and does any reader ever judge the live owner dead?
 *
 * The owner runs in this process (ownRun), watched by a 1 ms interval probe and the event-loop
 * delay histogram (GC pauses are reported beside them: they are stalls the code does not
 * schedule). A separate process polls `readStatus` — what `fanfold status` and `workflow_status`
 * show — every 100 ms until the run ends, and records every status and the lease's heartbeat age.
 *
 *   npm run build && node --expose-gc bench/b9-liveness.mjs [--mib 60]
 *
 * Goals: longest stall < 50 ms; status never `interrupted`. Prints `B9 …` lines; always exits 0
 * unless the run itself fails (a missed goal is flagged `MISS`).
 */
import { spawn } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PerformanceObserver, monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { buildPlan } from '../dist/spec/index.js';
import { createRun } from '../dist/engine/lifecycle.js';
import { ownRun } from '../dist/engine/owner.js';
import { bytes, f, numArg, tempDir, verdict } from './lib/common.mjs';

const MIB = numArg('mib', 60);
const GOAL_MS = 50;
const { dir: root, cleanup } = await tempDir('b9');
try {
  // The agent: writes MIB × 1 MiB of varied text (not one repeated line: indexing cost depends on
  // the vocabulary), honouring back-pressure.
  const gen = `
    const words = 'cache lease journal heartbeat index shard token parser queue retry backoff socket'.split(' ');
    let s = 7, left = ${MIB};
    const block = () => { let out = ''; while (out.length < 1048576) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      out += words[s % words.length] + (s % 97) + ((s >>> 9) % 11 === 0 ? '.\\n' : ' '); } return out.slice(0, 1048576); };
    (function pump() { while (left > 0) { left--; if (!process.stdout.write(block())) return process.stdout.once('drain', pump); } })();`;
  const spec = {
    version: 1,
    name: 'b9',
    limits: { maxConcurrent: 2, maxAgents: 4, retries: 0, agentTimeout: '5m', runTimeout: '30m', maxOutputBytes: 64 * 1024 * 1024 },
    agents: { big: { runner: 'command', command: [process.execPath, '-e', gen] }, reader: { runner: 'command', command: ['/bin/cat'] } },
    phases: [
      { id: 'p', agent: 'big', tasks: [{ id: 'big', prompt: 'print a lot' }] },
      { id: 'q', agent: 'reader', dependsOn: ['p'], tasks: [{ id: 'dep', prompt: 'read what p printed' }] },
    ],
  };
  const plan = buildPlan(spec);
  const runId = await createRun({ root, plan, cwd: root });

  // The reader, in its own process so that the owner's stalls do not delay its polls.
  const statusUrl = new URL('../dist/engine/status.js', import.meta.url).href;
  const pollerSrc = `
    const { readStatus } = await import(${JSON.stringify(statusUrl)});
    const seen = {}; let maxAge = 0, polls = 0;
    for (;;) {
      const s = await readStatus(${JSON.stringify(root)}, ${JSON.stringify(runId)}).catch((e) => ({ status: 'error:' + e.message }));
      polls++; seen[s.status] = (seen[s.status] ?? 0) + 1;
      if (s.owner) maxAge = Math.max(maxAge, s.owner.heartbeatAgeMs);
      if (['completed', 'failed', 'stopped', 'interrupted', 'budget_exhausted'].includes(s.status)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    process.stdout.write(JSON.stringify({ seen, maxAge, polls }));`;
  const poller = spawn(process.execPath, ['--input-type=module', '-e', pollerSrc], { stdio: ['ignore', 'pipe', 'inherit'] });
  let pollerOut = '';
  poller.stdout.on('data', (c) => (pollerOut += c));
  const pollerDone = new Promise((r) => poller.on('close', r));

  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  let gcMax = 0;
  const gcObs = new PerformanceObserver((l) => { for (const e of l.getEntries()) gcMax = Math.max(gcMax, e.duration); });
  gcObs.observe({ entryTypes: ['gc'] });
  // Wall-clock gaps between probe ticks, and the CPU time this process used during each gap
  // (all its threads): on a shared, overloaded machine a long gap with little CPU in it is time the
  // scheduler gave to others, not work of the owner.
  let last = performance.now();
  let lastCpu = process.cpuUsage();
  let longest = 0;
  let cpuOfLongest = 0;
  let longestCpu = 0;
  const probe = setInterval(() => {
    const now = performance.now();
    const cpu = process.cpuUsage();
    const cpuMs = (cpu.user - lastCpu.user + cpu.system - lastCpu.system) / 1000;
    if (now - last > longest) {
      longest = now - last;
      cpuOfLongest = cpuMs;
    }
    longestCpu = Math.max(longestCpu, Math.min(cpuMs, now - last));
    last = now;
    lastCpu = cpu;
  }, 1);
  const t0 = performance.now();
  const rec = await ownRun({ root, runId });
  const wall = (performance.now() - t0) / 1000;
  clearInterval(probe);
  h.disable();
  gcObs.disconnect();
  await pollerDone;
  const polled = JSON.parse(pollerOut || '{}');

  const agents = path.join(root, runId, 'agents');
  const files = {};
  for (const n of await readdir(agents)) files[n] = (await stat(path.join(agents, n))).size;
  const interrupted = polled.seen?.interrupted ?? 0;
  console.log(`B9 owner liveness stall.max=${f(longest, 0)}ms (cpu in it ${f(cpuOfLongest, 0)}ms) cpu-bound stall.max=${f(longestCpu, 0)}ms eld.max=${f(h.max / 1e6, 0)}ms gc.max=${f(gcMax, 0)}ms goal<${GOAL_MS}ms ${verdict(longest < GOAL_MS)} loadavg=${os.loadavg()[0].toFixed(1)}`);
  console.log(`B9 status polls=${polled.polls} seen=${JSON.stringify(polled.seen)} interrupted=${interrupted} heartbeat.maxAge=${polled.maxAge}ms ttl=10000ms ${verdict(interrupted === 0 && rec.status === 'completed')}`);
  console.log(`B9   run ${rec.status} in ${f(wall)} s; output ${MIB} MiB; agents/: ${Object.entries(files).map(([n, s]) => `${n} ${bytes(s)}`).join(', ')}; rss ${bytes(process.memoryUsage().rss)}`);
} finally {
  await cleanup();
}
