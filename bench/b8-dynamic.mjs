#!/usr/bin/env node
/**
 * B8 — what making tasks at run time costs, against the same work written out in the spec.
 *
 * In-process ownRun with an instant runner (every agent succeeds at once, with a structured answer
 * when its task has a schema), so the figures are the engine's own work: store writes, journal,
 * scheduler, index, digests. Each pair runs in the same process, interleaved, N items each:
 *   - forEach: a lister answers N items, a forEach phase makes one task per item;
 *     baseline: the lister and N written tasks.
 *   - pipeline: the same, plus a pipeline stage (2N agents); baseline: two written phases of N,
 *     the second with a task-level dependency per item (the pre-dynamic way to pipeline).
 *   - verify: N written tasks each answering one finding, 1 skeptic per finding (2N agents);
 *     baseline: N written tasks and N written checks, each waiting for its own task.
 * Also the time of the expansion step itself (journal: lister's agent.finished → phase.expanded).
 *
 *   npm run build && node --expose-gc bench/b8-dynamic.mjs [--n 300] [--reps 3]
 *
 * Goal: dynamic ÷ written ≤ 1.25 for each pair (the mechanism adds little over the work it makes).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { buildPlan } from '../dist/spec/index.js';
import { createRun } from '../dist/engine/lifecycle.js';
import { ownRun } from '../dist/engine/owner.js';
import { collect, f, median, numArg, range, tempDir, verdict } from './lib/common.mjs';

const N = numArg('n', 300);
const REPS = numArg('reps', 3);
const GOAL = 1.25;

const LIST_SCHEMA = { type: 'object', properties: { items: { type: 'array', items: { type: 'string' } } }, required: ['items'] };
const FINDINGS_SCHEMA = { type: 'object', properties: { findings: { type: 'array', items: { type: 'string' } } }, required: ['findings'] };

const base = (name, phases, maxAgents = 1000) => ({
  version: 1,
  name,
  limits: { maxConcurrent: 4, maxAgents, retries: 0, agentTimeout: '1m', runTimeout: '30m' },
  agents: { a: { runner: 'command', command: ['true'] }, skeptic: { runner: 'command', command: ['true'] } },
  defaults: { agent: 'a' },
  phases,
});
const items = Array.from({ length: N }, (_, i) => `item-${i}`);
const written = (prefix, n, extra = () => ({})) => Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, prompt: `do ${items[i % N]}`, ...extra(i) }));

const PAIRS = {
  forEach: {
    dynamic: base('b8-foreach', [
      { id: 'list', prompt: 'list', schema: LIST_SCHEMA },
      { id: 'each', forEach: { from: 'list', items: 'items' }, prompt: 'do {{item}}' },
    ]),
    written: base('b8-foreach-w', [{ id: 'list', prompt: 'list', schema: LIST_SCHEMA }, { id: 'each', dependsOn: ['list'], tasks: written('t', N) }]),
    agents: N + 1,
  },
  pipeline: {
    dynamic: base('b8-pipeline', [
      { id: 'list', prompt: 'list', schema: LIST_SCHEMA },
      { id: 's1', forEach: { from: 'list', items: 'items' }, prompt: 'one {{item}}' },
      { id: 's2', mode: 'pipeline', dependsOn: ['s1'], prompt: 'two {{item}} {{prev}}' },
    ]),
    written: base('b8-pipeline-w', [
      { id: 'list', prompt: 'list', schema: LIST_SCHEMA },
      { id: 's1', dependsOn: ['list'], tasks: written('a', N) },
      { id: 's2', tasks: written('b', N, (i) => ({ dependsOn: [`s1/a${i}`] })) },
    ]),
    agents: 2 * N + 1,
  },
  verify: {
    dynamic: base('b8-verify', [{ id: 'find', schema: FINDINGS_SCHEMA, verify: { skeptics: 1 }, tasks: written('f', N) }]),
    // Each written check waits for its own finding task only, as each skeptic does.
    written: base('b8-verify-w', [{ id: 'find', tasks: written('f', N) }, { id: 'check', agent: 'skeptic', tasks: written('s', N, (i) => ({ dependsOn: [`find/f${i}`] })) }]),
    agents: 2 * N,
  },
};

/** An instant runner: the answer its task's schema asks for. */
const runner = {
  kind: 'command',
  async run(input) {
    const props = input.schema?.properties ?? {};
    let structured;
    if ('items' in props) structured = { items };
    else if ('findings' in props) structured = { findings: [`finding of ${input.taskId}`] };
    else if ('refuted' in props) structured = { refuted: false, reasons: 'holds' };
    const output = structured ? JSON.stringify(structured) : `done ${input.taskId}\n`;
    return { status: 'succeeded', output, outputBytes: output.length, truncated: false, exitCode: 0, signal: null, stderrTail: '', ...(structured ? { structured } : {}) };
  },
};

async function once(spec, agents) {
  const { dir: root, cleanup } = await tempDir('b8');
  const plan = buildPlan(spec);
  const runId = await createRun({ root, plan, cwd: root });
  collect();
  const t0 = performance.now();
  const run = await ownRun({ root, runId, runners: () => runner });
  const ms = performance.now() - t0;
  if (run.status !== 'completed' || run.totals.succeeded !== agents) throw new Error(`b8: ${spec.name} ended ${run.status} with ${run.totals.succeeded}/${agents} (${run.reason})`);
  // The expansion step: from the lister's end to the phase.expanded line that made the items.
  let expandMs;
  const events = (await readFile(path.join(root, runId, 'events.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
  const listed = events.find((e) => e.type === 'agent.finished' && e.ref === 'list/list');
  const expanded = events.find((e) => e.type === 'phase.expanded' && e.step === 'items');
  if (listed && expanded) expandMs = Date.parse(expanded.t) - Date.parse(listed.t);
  await cleanup();
  return { ms, expandMs };
}

// Warm-up of both paths.
await once(PAIRS.forEach.dynamic, PAIRS.forEach.agents);
await once(PAIRS.forEach.written, PAIRS.forEach.agents);

for (const [name, pair] of Object.entries(PAIRS)) {
  const dyn = [];
  const wr = [];
  const expand = [];
  for (let rep = 0; rep < REPS; rep++) {
    // Interleaved, the order swapped each repetition: the machine's noise falls on both.
    const order = rep % 2 === 0 ? ['dynamic', 'written'] : ['written', 'dynamic'];
    for (const which of order) {
      const r = await once(pair[which], pair.agents);
      (which === 'dynamic' ? dyn : wr).push(r.ms);
      if (which === 'dynamic' && r.expandMs !== undefined) expand.push(r.expandMs);
    }
  }
  const ratios = dyn.map((d, i) => d / wr[i]);
  const ratio = median(ratios);
  const [lo, hi] = range(ratios);
  console.log(
    `B8 ${name}: dynamic ÷ written = ${f(ratio, 2)} (${pair.agents} agents; ${f(median(dyn), 0)} vs ${f(median(wr), 0)} ms, ` +
      `range ${f(lo, 2)}–${f(hi, 2)}, median of ${REPS}; goal ≤ ${GOAL}: ${verdict(ratio <= GOAL)})`,
  );
  if (expand.length > 0) console.log(`B8   ${name}: the expansion step (lister done → ${N} tasks made) took ${f(median(expand), 0)} ms`);
}
