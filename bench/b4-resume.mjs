#!/usr/bin/env node
/**
 * B4 — time from `resume` to the first new dispatch at 1000 agents.
 *
 * The fixture is what a SIGKILLed owner leaves: a run of a 1000-task plan (maxAgents 1000) with
 * 990 succeeded agent records (5 KB outputs), the journal up to the crash (run.started,
 * phase.started, agent.started/spawned/finished per finished agent, agent.started/spawned of the 4
 * that were running — pids of exited processes, so nothing is killed — and a torn last line), run.json still `running`, lease.json naming a dead pid, and
 * the search index as its debounced save left it: holding all but the last 3 finished agents.
 * The fixture is built once and copied for every measurement (same run id, same bytes).
 * A detail line gives the same resume with no usable index.json (rebuilt from the records).
 *
 * In-process: ownRun with a runner that notes the time of its first run() call and returns
 * success at once; the figure is ownRun() called → first run() call. Then the same through the
 * CLI: `node dist/cli/main.js resume <id>` spawned, until the first `agent.started` line lands
 * in events.jsonl, minus a bare `node -e 0`. Then the pieces of resume, each timed alone on a
 * fixture of its own, to say where the time goes; and a what-if measured interleaved with the
 * real thing: the changes once proposed for resume (search index opened after the first dispatch,
 * one append for all `agent.reused` events, the census of finished agents read from the journal
 * instead of from every record; see lib/whatif.mjs). All three are now in src/ (the census as
 * RunStore.census over the `census` field of `agent.finished` lines), so the what-if line should
 * read about the same as the real one; it stays as a check that nothing regressed.
 * src/ is unchanged by the bench; the what-ifs patch this process's copy of dist/ only.
 *
 *   npm run build && node --expose-gc bench/b4-resume.mjs [--reps 3] [--profile FILE.cpuprofile]
 *
 * With --profile, one more in-process resume runs under the CPU profiler (written to FILE) and
 * the functions and files with the most self time up to the first dispatch are printed.
 *
 * Goal: < 200 ms in-process.
 */
import { spawn, spawnSync } from 'node:child_process';
import { cp, mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { buildPlan } from '../dist/spec/index.js';
import { createRun } from '../dist/engine/lifecycle.js';
import { ownRun } from '../dist/engine/owner.js';
import { Journal, RunStore, SCHEMA_VERSION, acquireLease, agentFileName } from '../dist/store/index.js';
import { RunIndex } from '../dist/search/index.js';
import { collect, f, filler, median, numArg, oneCommandPhaseSpec, range, succeededRecord, tempDir, verdict } from './lib/common.mjs';
import { flatProfile, profiled } from './lib/profile.mjs';
import { patchBatchReused, patchDeferIndex, patchJournalCensus } from './lib/whatif.mjs';

const TASKS = 1000;
const DONE = 990;
const RUNNING_AT_CRASH = 4;
/** Finished agents the crashed owner's last index save did not include yet. */
const INDEX_LAG = 3;
const RUN_ID = 'b4crashed';
const REPS = numArg('reps', 3);
const GOAL_MS = 200;
const PROFILE = process.argv.includes('--profile') ? process.argv[process.argv.indexOf('--profile') + 1] : undefined;
const CLI = new URL('../dist/cli/main.js', import.meta.url).pathname;

const { dir: tmp, cleanup } = await tempDir('b4');
const cwd = path.join(tmp, 'project');
await mkdir(cwd);
const plan = buildPlan(oneCommandPhaseSpec({ name: 'b4', n: TASKS, argv: ['/bin/true'], maxConcurrent: 4, maxAgents: TASKS }));
const outputs = plan.tasks.map((_, i) => filler(5000, i + 1));

/** The pid of a process that has exited (for the dead owner's lease). */
function deadPid() {
  return new Promise((resolve, reject) => {
    const c = spawn('/bin/true', { stdio: 'ignore' });
    c.on('error', reject);
    c.on('exit', () => resolve(c.pid));
  });
}

/**
 * Builds the crashed run under `root`. run.json, the lease and index.json go through the store and
 * the search module; agent records and journal lines are written with the store's exact encodings
 * (JSON with 2-space indent plus a newline; one JSON object per line) but without fsync or temp
 * files, which only matter for how a fixture survives a crash, not for what resume finds.
 */
async function buildCrashedRun(root) {
  await createRun({ root, plan, cwd, runId: RUN_ID });
  const dir = path.join(root, RUN_ID);
  const dead = await deadPid();
  await acquireLease(dir, { pid: dead, heartbeatMs: 0 });
  const t0 = Date.now() - 3_600_000;
  const at = (ms) => new Date(t0 + ms).toISOString();
  const lines = [
    { type: 'run.started', t: at(0), runId: RUN_ID, name: plan.name, agentCount: plan.agentCount },
    { type: 'phase.started', t: at(0), phaseId: 'p' },
  ];
  const records = [];
  for (let i = 0; i < DONE + RUNNING_AT_CRASH; i++) {
    const task = plan.tasks[i];
    lines.push({ type: 'agent.started', t: at(i * 10), ref: task.ref, key: task.key, attempt: 1, slot: i % 4 });
    // startTicks 1 never matches a live process, so resume's leftover-killer leaves every pid alone.
    lines.push({ type: 'agent.spawned', t: at(i * 10), ref: task.ref, attempt: 1, pid: dead, startTicks: 1 });
    if (i >= DONE) continue;
    const rec = succeededRecord({ runId: RUN_ID, plan, task, output: outputs[i], SCHEMA_VERSION, startedAt: new Date(t0 + i * 10) });
    records.push(rec);
    const file = agentFileName(task.phaseId, task.taskId, 1);
    // As the owner writes it: with the census resume reads instead of the record.
    const census = { ...(rec.costUsd !== undefined ? { costUsd: rec.costUsd } : {}), ...(rec.usage ? { usage: rec.usage } : {}) };
    lines.push({ type: 'agent.finished', t: rec.endedAt, ref: task.ref, key: task.key, attempt: 1, status: 'succeeded', durationMs: 1000, file, census });
  }
  for (let i = 0; i < records.length; i += 64) {
    await Promise.all(
      records.slice(i, i + 64).map((r) => writeFile(path.join(dir, 'agents', agentFileName(r.phaseId, r.taskId, r.attempt)), `${JSON.stringify(r, null, 2)}\n`)),
    );
  }
  // The SIGKILL came in the middle of an append: a torn last line.
  await writeFile(path.join(dir, 'events.jsonl'), `${lines.map((l) => JSON.stringify(l)).join('\n')}\n{"type":"agent.finished","t":"20`);
  await RunIndex.open({
    indexFile: path.join(dir, 'index.json'),
    runId: RUN_ID,
    loadRecords: async () => records.slice(0, DONE - INDEX_LAG),
    phaseTitles: Object.fromEntries(plan.phases.map((p) => [p.id, p.title])),
    saveRebuilt: true,
  });
}

const template = path.join(tmp, 'template');
let copies = 0;

/** A fresh copy of the crashed run in a store root of its own; returns that root. */
async function crashedRun({ index = true } = {}) {
  const root = path.join(tmp, `store${++copies}`);
  await cp(path.join(template, RUN_ID), path.join(root, RUN_ID), { recursive: true });
  if (!index) await rm(path.join(root, RUN_ID, 'index.json'));
  return root;
}

/**
 * In-process resume: ownRun() called → the runner's first run() call, and → ownRun resolved.
 * `onFirst` runs at the first dispatch (the profiler stops there). `whatif`: 'defer-index' or
 * 'proposed' (see the header).
 */
async function resumeInProcess(root, onFirst, whatif) {
  let first;
  let open;
  const gate = new Promise((r) => (open = r));
  const undo = [];
  if (whatif) undo.push(patchDeferIndex(gate));
  if (whatif === 'proposed') undo.push(patchBatchReused(), patchJournalCensus());
  const runner = {
    kind: 'command',
    async run() {
      if (first === undefined) {
        first = performance.now();
        // Everything patched has been called by now; the rest of the run uses the real code.
        for (const u of undo.splice(0)) u();
        open();
        await onFirst?.();
      }
      return { status: 'succeeded', output: 'ok\n', outputBytes: 3, truncated: false, exitCode: 0, signal: null, stderrTail: '' };
    },
  };
  const t0 = performance.now();
  let run;
  try {
    run = await ownRun({ root, runId: RUN_ID, runners: () => runner });
  } finally {
    for (const u of undo) u();
    open();
  }
  const t1 = performance.now();
  if (run.status !== 'completed' || run.totals.succeeded !== TASKS) throw new Error(`b4: resumed run ended ${run.status} (${run.reason})`);
  return { dispatch: first - t0, total: t1 - t0 };
}

/** Wall time of a spawned command until it exits (stdout/stderr discarded). */
function timeSpawn(args) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const c = spawn(process.execPath, args, { cwd, stdio: 'ignore' });
    c.on('error', reject);
    c.on('exit', (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`b4: node ${args.join(' ')} exited ${code}`))));
  });
}

/** CLI resume: spawn → first `agent.started` appended to events.jsonl; and → exit. */
async function resumeCli(root) {
  const journal = path.join(root, RUN_ID, 'events.jsonl');
  // New lines start where the torn tail starts: the owner cuts it off before appending.
  let offset = (await readFile(journal)).lastIndexOf(0x0a) + 1;
  const fh = await open(journal, 'r');
  try {
    const t0 = performance.now();
    const wall0 = Date.now();
    const child = spawn(process.execPath, [CLI, '--store', root, 'resume', RUN_ID], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b) => (stderr = (stderr + b).slice(-4000)));
    const exited = new Promise((resolve) => child.on('exit', (code) => resolve({ code, t: performance.now() })));
    let dispatch;
    let rssMb;
    let text = '';
    const buf = Buffer.alloc(256 * 1024);
    const deadline = t0 + 60_000;
    while (dispatch === undefined && performance.now() < deadline) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
      // Only whole lines count, and only they move the offset: until the owner has cut the torn
      // tail off, a read still sees it.
      const whole = bytesRead > 0 ? buf.subarray(0, bytesRead).lastIndexOf(0x0a) + 1 : 0;
      if (whole > 0) {
        offset += whole;
        text += buf.toString('utf8', 0, whole);
        if (text.includes('"type":"agent.started"')) {
          dispatch = performance.now() - t0;
          rssMb = await readFile(`/proc/${child.pid}/status`, 'utf8').then((st) => Number(/VmRSS:\s+(\d+)/.exec(st)?.[1]) / 1000, () => NaN);
        }
      } else {
        const done = await Promise.race([exited, new Promise((r) => setTimeout(r, 1))]);
        if (done) break;
      }
    }
    const { code, t } = await exited;
    if (dispatch === undefined || code !== 0) throw new Error(`b4: CLI resume exited ${code} without a dispatch seen; stderr: ${stderr}`);
    // The journal's own timestamps split the CLI's time: spawn → run.resumed (start-up, imports,
    // lease, census of the records) and run.resumed → first agent.started.
    const events = text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const tOf = (type) => Date.parse(events.find((e) => e.type === type)?.t ?? 'x');
    return { dispatch, rssMb, total: t - t0, toResumed: tOf('run.resumed') - wall0, resumedToStart: tOf('agent.started') - tOf('run.resumed') };
  } finally {
    await fh.close();
  }
}

/** Each step of resume alone, on a fixture of its own (never resumed). */
async function pieces(root) {
  const out = [];
  const time = async (name, fn, alternative = false) => {
    collect();
    const t0 = performance.now();
    const r = await fn();
    out.push({ name, ms: performance.now() - t0, alternative });
    return r;
  };
  const store = await time('RunStore.open', () => RunStore.open(root, RUN_ID));
  const lease = await time('acquireLease (take over the dead owner)', () => acquireLease(store.dir, { heartbeatMs: 0 }));
  const run = await time('readRun (run.json with the 1000-task plan)', () => store.readRun());
  const { records } = await time(`listAgentRecords (${DONE} files)`, () => store.listAgentRecords());
  await time('readEvents (journal)', () => store.readEvents());
  const scratch = await Journal.open(path.join(root, 'scratch.jsonl'));
  await time(`${DONE} agent.reused appends, one at a time`, async () => {
    for (const r of records) {
      await scratch.append({ type: 'agent.reused', ref: `${r.phaseId}/${r.taskId}`, key: r.key, file: agentFileName(r.phaseId, r.taskId, r.attempt) });
    }
  });
  await time(
    `(instead: one event listing the ${DONE} reused tasks)`,
    () =>
      scratch.append({
        type: 'agents.reused',
        tasks: records.map((r) => ({ ref: `${r.phaseId}/${r.taskId}`, key: r.key, file: agentFileName(r.phaseId, r.taskId, r.attempt) })),
      }),
    true,
  );
  await scratch.close();
  await time('writeRun (run.json, fsynced)', () => store.writeRun({ ...run, updatedAt: new Date().toISOString() }));
  const phaseTitles = Object.fromEntries(plan.phases.map((p) => [p.id, p.title]));
  const loaded = await time(`RunIndex.open: load index.json, catch up ${INDEX_LAG} agents`, () =>
    RunIndex.open({ indexFile: path.join(store.dir, 'index.json'), runId: RUN_ID, loadRecords: async () => records, phaseTitles }),
  );
  if (loaded.openInfo.source !== 'disk') out.at(-1).name += ` (it was ${loaded.openInfo.source}: ${loaded.openInfo.reason})`;
  await time(
    `(with no usable index.json: rebuild over ${DONE} records)`,
    () => RunIndex.open({ indexFile: path.join(root, 'missing-index.json'), runId: RUN_ID, loadRecords: async () => records, phaseTitles }),
    true,
  );
  await store.close();
  await lease.release();
  return out;
}

try {
  await buildCrashedRun(template);
  // Warm-up: JIT of the store, owner and index code.
  await resumeInProcess(await crashedRun());
  await timeSpawn(['-e', '0']);

  const WHATIFS = { 'all proposed resume changes': 'proposed' };
  const inproc = [];
  const noIndex = [];
  const whatif = Object.fromEntries(Object.keys(WHATIFS).map((k) => [k, []]));
  const cli = [];
  const nodeStart = [];
  const cliStart = [];
  for (let rep = 0; rep < REPS; rep++) {
    // Copies are made first, and flushed, so their write-back does not compete with the measurements.
    const roots = [];
    for (let i = 0; i < 4; i++) roots.push(await crashedRun({ index: i !== 1 }));
    spawnSync('sync');
    const jobs = [
      async () => inproc.push(await resumeInProcess(roots[0])),
      async () => noIndex.push(await resumeInProcess(roots[1])),
      ...Object.entries(WHATIFS).map(([k, v], i) => async () => whatif[k].push(await resumeInProcess(roots[i + 2], undefined, v))),
      async () => {
        nodeStart.push(await timeSpawn(['-e', '0']));
        cliStart.push(await timeSpawn([CLI, '--version']));
        cli.push(await resumeCli(roots[3]));
      },
    ];
    // Rotate the order each repetition.
    for (let j = 0; j < jobs.length; j++) {
      collect();
      await jobs[(j + rep) % jobs.length]();
    }
    for (const root of roots) await rm(root, { recursive: true, force: true });
  }
  const d = inproc.map((r) => r.dispatch);
  const m = median(d);
  const [lo, hi] = range(d);
  console.log(
    `B4 resume→first dispatch in-process: ${f(m, 0)} ms (${DONE}/${TASKS} done, range ${f(lo, 0)}–${f(hi, 0)}, median of ${REPS}; goal < ${GOAL_MS} ms: ${verdict(m < GOAL_MS)})`,
  );
  console.log(`B4   in-process resume→run finished (${TASKS - DONE} new agents, then digests, reports, index): ${f(median(inproc.map((r) => r.total)), 0)} ms`);
  console.log(
    `B4   in-process with no usable index.json (rebuilt): ${f(median(noIndex.map((r) => r.dispatch)), 0)} ms to the first dispatch ` +
      `(run finished ${f(median(noIndex.map((r) => r.total)), 0)} ms)`,
  );
  for (const [k, rs] of Object.entries(whatif)) {
    console.log(`B4   what-if ${k}: ${f(median(rs.map((r) => r.dispatch)), 0)} ms to the first dispatch (run finished ${f(median(rs.map((r) => r.total)), 0)} ms)`);
  }
  const node0 = median(nodeStart);
  const cliD = median(cli.map((r) => r.dispatch));
  console.log(
    `B4 resume→first dispatch via CLI: ${f(cliD - node0, 0)} ms above a bare node start (CLI ${f(cliD, 0)} ms, node -e 0 ${f(node0, 0)} ms, ` +
      `fanfold --version ${f(median(cliStart), 0)} ms; median of ${REPS})`,
  );
  console.log(
    `B4   CLI split by the journal's timestamps: spawn→run.resumed ${f(median(cli.map((r) => r.toResumed)), 0)} ms, ` +
      `run.resumed→first agent.started ${f(median(cli.map((r) => r.resumedToStart)), 0)} ms; resume→exit ${f(median(cli.map((r) => r.total)), 0)} ms; ` +
      `owner RSS at the first dispatch ${f(median(cli.map((r) => r.rssMb)), 0)} MB (every spawn forks it: see B2)`,
  );

  const piecesRoot = await crashedRun();
  spawnSync('sync');
  const p = await pieces(piecesRoot);
  console.log(`B4   pieces of resume, each timed alone (sum ${f(p.filter((x) => !x.alternative).reduce((a, x) => a + x.ms, 0), 0)} ms):`);
  for (const x of p) console.log(`B4     ${x.name.padEnd(48)} ${f(x.ms, 1).padStart(7)} ms`);

  if (PROFILE) {
    const root = await crashedRun();
    spawnSync('sync');
    collect();
    // Profile only up to the first dispatch: the profiler is stopped from inside the runner.
    let stop;
    const stopped = new Promise((r) => (stop = r));
    let resumed;
    const { profile } = await profiled(path.resolve(PROFILE), async () => {
      resumed = resumeInProcess(root, async () => stop());
      await Promise.race([stopped, resumed]);
    });
    await resumed; // let that run end before the folder goes
    const flat = flatProfile(profile);
    console.log(`B4   CPU profile of resume→first dispatch (${path.resolve(PROFILE)}): ${f(flat.total, 0)} ms sampled, ${f(flat.idle, 0)} ms idle`);
    for (const x of flat.byFile.slice(0, 12)) console.log(`B4     file ${x.name.padEnd(60)} ${f(x.ms, 1).padStart(7)} ms self`);
    for (const x of flat.byFunction.slice(0, 15)) console.log(`B4     fn   ${x.name.slice(0, 60).padEnd(60)} ${f(x.ms, 1).padStart(7)} ms self`);
  }
} finally {
  await cleanup();
}
