/**
 * Small helpers shared by the benchmarks: arguments, statistics, temp folders, formatting, and
 * the agent records and specs the scenarios build. Benchmarks import the engine from ../dist.
 */
import { mkdtemp, open, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** `--name value` from argv as a number, else `fallback`. */
export function numArg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`bench: expected --${name} to be a positive number, got '${process.argv[i + 1]}'`);
  return v;
}

/** Median (upper median for an even count). */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Smallest and largest value. */
export function range(xs) {
  return [Math.min(...xs), Math.max(...xs)];
}

/** A fresh temp folder, removed by the returned `cleanup` (also on process exit via the caller). */
export async function tempDir(prefix) {
  const dir = await mkdtemp(path.join(tmpdir(), `fanfold-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** `1.23` style, with `d` decimals. */
export const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : String(x));

/** `ok` or `MISS` for a goal. */
export const verdict = (met) => (met ? 'ok' : 'MISS');

/** Bytes as `4.2 MB` (decimal units). */
export function bytes(n) {
  if (n < 1e3) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  return `${(n / 1e6).toFixed(2)} MB`;
}

/** Apparent size and allocated size (st.blocks × 512) of every file under `dir`, and the file count. */
export async function diskUsage(dir) {
  let size = 0;
  let allocated = 0;
  let files = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const st = await stat(path.join(e.parentPath ?? e.path, e.name));
    size += st.size;
    allocated += st.blocks * 512;
    files++;
  }
  return { size, allocated, files };
}

/** Deterministic filler text of exactly `n` ASCII bytes (words and newlines, like agent output). */
export function filler(n, seed = 1) {
  const words = ['cache', 'lock', 'retry', 'parser', 'queue', 'token', 'index', 'shard', 'lease', 'journal', 'stream', 'buffer'];
  let s = seed >>> 0;
  let out = '';
  while (out.length < n) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out += words[s % words.length] + ((s >>> 8) % 13 === 0 ? '.\n' : ' ');
  }
  return out.slice(0, n);
}

/** A spec of one phase with `n` tasks of one command agent. */
export function oneCommandPhaseSpec({ name, n, argv, maxConcurrent = 4, maxAgents = 1000 }) {
  return {
    version: 1,
    name,
    limits: { maxConcurrent, maxAgents, retries: 0, agentTimeout: '1m', runTimeout: '30m' },
    agents: { cmd: { runner: 'command', command: argv } },
    phases: [{ id: 'p', agent: 'cmd', tasks: Array.from({ length: n }, (_, i) => ({ id: `t${i}`, prompt: `task ${i}` })) }],
  };
}

/** A succeeded agent record for task `t` of `plan`, as the owner writes it. */
export function succeededRecord({ runId, plan, task, attempt = 1, output, SCHEMA_VERSION, startedAt = new Date() }) {
  const endedAt = new Date(startedAt.getTime() + 1000);
  return {
    schemaVersion: SCHEMA_VERSION,
    runId,
    phaseId: task.phaseId,
    taskId: task.taskId,
    key: task.key,
    attempt,
    status: 'succeeded',
    agent: task.agent,
    runner: plan.agents[task.agent].runner,
    prompt: task.prompt,
    output,
    outputBytes: Buffer.byteLength(output),
    truncated: false,
    exitCode: 0,
    signal: null,
    stderrTail: '',
    startedAt: startedAt.toISOString(),
    endedAt: endedAt.toISOString(),
    durationMs: 1000,
  };
}

/** Runs `gc()` when the bench was started with --expose-gc. */
export function collect() {
  globalThis.gc?.();
}

/**
 * What the machine's file system costs right now, measured in `dir`: one thread-pool round trip
 * (an async stat), the CPU (user + sys) of creating, writing and closing a new 6 kB file, and one
 * fsync of such a file. Medians of `n` tries. Printed beside the figures, which scale with them.
 */
export async function calibrate(dir, n = 30) {
  const rtt = [];
  const fsync = [];
  const create = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await stat(dir);
    rtt.push(performance.now() - t0);
    const u0 = process.cpuUsage();
    const fh = await open(path.join(dir, `calibrate-${i}`), 'w');
    await fh.writeFile('y'.repeat(6000));
    await fh.close();
    const u = process.cpuUsage(u0);
    create.push((u.user + u.system) / 1000);
    await rm(path.join(dir, `calibrate-${i}`));
  }
  for (let i = 0; i < n; i++) {
    const fh = await open(path.join(dir, `calibrate-${i}`), 'w');
    await fh.writeFile('x'.repeat(6000));
    const t0 = performance.now();
    await fh.sync();
    fsync.push(performance.now() - t0);
    await fh.close();
    await rm(path.join(dir, `calibrate-${i}`));
  }
  return { rttMs: median(rtt), fsyncMs: median(fsync), createCpuMs: median(create) };
}
