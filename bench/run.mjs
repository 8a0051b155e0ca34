#!/usr/bin/env node
/**
 * Runs the benchmarks: every `bench/b<N>-*.mjs`, in order of N, each in its own
 * `node --expose-gc` child process so that one scenario's heap, JIT state and open handles do not
 * colour the next one's figures. Output is streamed as it comes; a summary follows.
 *
 *   npm run bench                 # build, then every benchmark
 *   node bench/run.mjs b2 b4      # only these (after `npm run build`)
 *
 * Figures are reported, not asserted: a missed goal is a figure line containing `MISS` and does
 * not change the exit code. The exit code is 1 when a benchmark crashed (non-zero exit, signal,
 * or over its time limit), 2 for an unknown filter.
 * `BENCH_TIMEOUT_S` overrides the per-benchmark time limit (default 300 s).
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT_S ?? 300) * 1000;
/** A headline figure: the scenario's id, one space, text (`B2 dispatch …`); detail lines are indented (`B2   …`). */
const FIGURE = /^B\d+ \S/;

const all = readdirSync(here)
  .map((f) => /^b(\d+)[-.].*\.mjs$/.exec(f))
  .filter(Boolean)
  .map((m) => ({ file: m[0], n: Number(m[1]), id: `b${m[1]}` }))
  .sort((a, b) => a.n - b.n || (a.file < b.file ? -1 : 1));

const filters = process.argv.slice(2).map((a) => a.toLowerCase().replace(/\.mjs$/, ''));
const chosen = filters.length === 0 ? all : all.filter((b) => filters.some((f) => f === b.id || b.file.startsWith(f)));
const unknown = filters.filter((f) => !all.some((b) => f === b.id || b.file.startsWith(f)));
if (unknown.length > 0) {
  process.stderr.write(`bench: no benchmark matches ${unknown.map((f) => `'${f}'`).join(', ')}; have ${all.map((b) => b.id).join(', ')}\n`);
  process.exit(2);
}

/** Runs one benchmark file; resolves with how it ended and the figure lines it printed. */
function runOne(b) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    // detached: its own process group, so a timeout can take down whatever the bench started too.
    const child = spawn(process.execPath, ['--expose-gc', path.join(here, b.file)], {
      cwd: path.dirname(here),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const figures = [];
    let partial = '';
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop();
      for (const l of lines) if (FIGURE.test(l)) figures.push(l);
    });
    child.stderr.on('data', (chunk) => process.stderr.write(chunk));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* gone already */
      }
    }, TIMEOUT_MS);
    const onSignal = (sig) => {
      try {
        process.kill(-child.pid, sig);
      } catch {
        /* gone already */
      }
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      if (FIGURE.test(partial)) figures.push(partial);
      resolve({ ...b, code, signal, timedOut, seconds: (performance.now() - t0) / 1000, figures });
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ ...b, code: null, signal: null, timedOut: false, error: err.message, seconds: (performance.now() - t0) / 1000, figures });
    });
  });
}

// The figures are wall-clock times: say what machine, and how busy, they were measured on.
const load = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');
const cpus = os.cpus();
process.stdout.write(
  `bench: node ${process.version}, ${cpus.length} × ${cpus[0]?.model ?? 'cpu'}, ${os.platform()} ${os.release()}, tmpdir ${os.tmpdir()}, load average ${load()}\n`,
);

const results = [];
for (const b of chosen) {
  process.stdout.write(`\n=== ${b.file} ===\n`);
  results.push(await runOne(b));
}

const crashed = (r) => r.timedOut || r.error !== undefined || r.code !== 0;
const how = (r) =>
  r.timedOut ? `TIMED OUT after ${TIMEOUT_MS / 1000} s` : r.error ? `could not start: ${r.error}` : r.signal ? `killed by ${r.signal}` : r.code !== 0 ? `CRASHED (exit ${r.code})` : 'ok';

process.stdout.write('\n=== summary ===\n');
for (const r of results) {
  process.stdout.write(`${r.file.padEnd(20)} ${how(r).padEnd(18)} ${r.seconds.toFixed(1).padStart(6)} s\n`);
  for (const f of r.figures) process.stdout.write(`    ${f}\n`);
}
const misses = results.flatMap((r) => r.figures).filter((f) => /\bMISS\b/.test(f)).length;
const bad = results.filter(crashed);
process.stdout.write(
  `${results.length} benchmark(s), ${bad.length} crashed, ${misses} figure line(s) missing their goal` +
    (misses > 0 ? ' (reported, not failed)' : '') + `; load average now ${load()}\n`,
);
process.exitCode = bad.length > 0 ? 1 : 0;
