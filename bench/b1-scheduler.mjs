// B1: makespan of our sliding-window DAG pool against a wave scheduler, in one run.
// A 100-task layered DAG with lognormal task durations (real timers). The figure is
// makespan ÷ max(critical path, total work ÷ slots): 1.0 is the lower bound.
// Goal: ours ≤ 1.15 and at least 2× better than waves.
import { runDag } from '../dist/engine/scheduler.js';

const SLOTS = 4;
const N = 100;

function rng(seed) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

/** A layered DAG: 10 layers of 10, each task depending on 0–2 tasks of earlier layers. */
function makeDag(seed) {
  const r = rng(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const tasks = [];
  const dur = new Map();
  for (let i = 0; i < N; i++) {
    const layer = Math.floor(i / 10);
    const deps = new Set();
    if (layer > 0) for (let k = 0; k < 2; k++) if (r() < 0.5) deps.add(`p/t${Math.floor(r() * layer * 10)}`);
    const ref = `p/t${i}`;
    tasks.push({ ref, phaseId: 'p', deps: [...deps] });
    // lognormal: median 20 ms, sigma 1.0 — a long tail like real agents.
    dur.set(ref, Math.max(1, Math.round(20 * Math.exp(1.0 * normal()))));
  }
  return { tasks, dur };
}

function lowerBound({ tasks, dur }) {
  const finish = new Map();
  for (const t of tasks) finish.set(t.ref, Math.max(0, ...t.deps.map((d) => finish.get(d))) + dur.get(t.ref));
  const cp = Math.max(...finish.values());
  const work = [...dur.values()].reduce((a, b) => a + b, 0);
  return { cp, work, bound: Math.max(cp, work / SLOTS) };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function ours({ tasks, dur }) {
  const t0 = performance.now();
  await runDag({
    tasks, maxConcurrent: SLOTS, retries: 0, backoffMs: 0, onFailure: () => 'stop',
    execute: async (t) => {
      await sleep(dur.get(t.ref));
      return { status: 'succeeded', retryable: false };
    },
  });
  return performance.now() - t0;
}

/** The baseline: topological layers run as waves of SLOTS tasks; each wave waits for its slowest. */
async function waves({ tasks, dur }) {
  const depth = new Map();
  for (const t of tasks) depth.set(t.ref, Math.max(-1, ...t.deps.map((d) => depth.get(d))) + 1);
  const levels = [];
  for (const t of tasks) (levels[depth.get(t.ref)] ??= []).push(t);
  const t0 = performance.now();
  for (const level of levels) {
    for (let i = 0; i < level.length; i += SLOTS) {
      await Promise.all(level.slice(i, i + SLOTS).map((t) => sleep(dur.get(t.ref))));
    }
  }
  return performance.now() - t0;
}

const ratios = { ours: [], waves: [] };
for (const seed of [11, 22, 33]) {
  const dag = makeDag(seed);
  const { bound } = lowerBound(dag);
  ratios.ours.push((await ours(dag)) / bound);
  ratios.waves.push((await waves(dag)) / bound);
}
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const o = median(ratios.ours);
const w = median(ratios.waves);
console.log(`B1 makespan/lower-bound ours=${o.toFixed(3)} waves=${w.toFixed(3)} waves/ours=${(w / o).toFixed(2)}x  (100 tasks, ${SLOTS} slots, lognormal durations, median of 3 DAGs; goal ours<=1.15, >=2x better than waves)`);
