/**
 * The pool, judged from the journal of a real run through the built CLI (real child processes):
 * never more than `maxConcurrent` agents at once, the cap reached when work allows, one agent per
 * slot at a time, DAG order, and work-conserving.
 *
 * Work-conserving, measured: whenever a slot is free while a task whose dependencies have all
 * finished waits, how long until the next `agent.started` (a "wait"). The stated tolerance is
 * 200 ms (DISPATCH_TOLERANCE_MS): at least 80% of the waits stay under it, and none reaches
 * 500 ms (WAIT_CEILING_MS). Why a share and a ceiling rather than one bound: between a child's exit
 * and the next start the owner writes the agent file and the next task's prompt and context files
 * (fsynced atomic writes), appends the journal (fdatasync), and for a task after a phase boundary
 * computes that phase's digest — 15–40 ms on an idle machine, but on two cores shared with a dozen
 * busy processes single dispatches were measured at 230–414 ms while most stayed under 160 ms. A
 * fixed-wave scheduler fails both criteria on this workflow by a wide margin (checked below on a
 * simulated wave schedule: most waits ≥ 200 ms, the longest ≥ 800 ms). When one run still misses,
 * the workflow runs once more and that run is judged: a stall explains one miss, a scheduler that
 * is not work-conserving misses every time.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { intervals, makeProject, sh, sweep, type Interval, type Project } from '../cli/project.js';

const DISPATCH_TOLERANCE_MS = 200;
const WAIT_CEILING_MS = 500;
/** Share of waits that must stay under DISPATCH_TOLERANCE_MS. */
const WITHIN_SHARE = 0.8;
const CAP = 3;
const SLEEPS = [0.1, 0.9, 0.3, 1.1, 0.2, 0.6, 0.1, 0.8, 0.4, 0.2];

const spec = {
  version: 1,
  name: 'pool',
  limits: { maxConcurrent: CAP, retries: 0 },
  agents: { nap: sh('sleep "$(cat)"; echo "slept $FANFOLD_TASK_ID"') },
  phases: [
    { id: 'a', agent: 'nap', tasks: SLEEPS.map((s, i) => ({ id: `t${i}`, prompt: String(s) })) },
    // No phase-level edge: b1 may start as soon as a/t0 is done, while `a` still runs.
    {
      id: 'b',
      agent: 'nap',
      tasks: [
        { id: 'b1', prompt: '0.3', dependsOn: ['a/t0'] },
        { id: 'b2', prompt: '0.2', dependsOn: ['a/t5'] },
        { id: 'b3', prompt: '0.15', dependsOn: ['b1', 'b2'] },
        { id: 'b4', prompt: '0.1', dependsOn: ['b3'] },
      ],
    },
    { id: 'c', agent: 'nap', dependsOn: ['a'], tasks: [{ id: 'c1', prompt: '0.25' }, { id: 'c2', prompt: '0.1' }] },
  ],
};

describe('the pool, from the journal of a real run', () => {
  let p: Project;
  let iv: Interval[];
  let deps: Map<string, string[]>;

  const runOnce = () => {
    const r = p.cli(['run', p.spec, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const runId = r.json().runId;
    iv = intervals(p.journal(runId));
    deps = new Map(p.runJson(runId).plan.tasks.map((t: any) => [t.ref, t.deps]));
  };

  beforeAll(() => {
    p = makeProject(spec);
    runOnce();
  });

  it('ran every task once', () => {
    expect(iv.map((i) => i.ref).sort()).toEqual([...deps.keys()].sort());
  });

  it(`never runs more than maxConcurrent (${CAP}) agents, and reaches the cap`, () => {
    const { peak } = sweep(iv, deps, CAP);
    expect(peak).toBeLessThanOrEqual(CAP);
    expect(peak).toBe(CAP);
  });

  it('gives each slot to one agent at a time', () => {
    for (const i of iv) expect(i.slot).toBeGreaterThanOrEqual(0), expect(i.slot).toBeLessThan(CAP);
    for (let s = 0; s < CAP; s++) {
      const mine = iv.filter((i) => i.slot === s).sort((x, y) => x.start - y.start);
      for (let k = 1; k < mine.length; k++) {
        expect(mine[k]!.start, `slot ${s}: ${mine[k]!.ref} started before ${mine[k - 1]!.ref} ended`).toBeGreaterThanOrEqual(mine[k - 1]!.end);
      }
    }
  });

  it('respects dependencies: nothing starts before all of its deps finished', () => {
    const byRef = new Map(iv.map((i) => [i.ref, i]));
    for (const [ref, ds] of deps) {
      for (const d of ds) expect(byRef.get(ref)!.start, `${ref} before ${d}`).toBeGreaterThanOrEqual(byRef.get(d)!.end);
    }
    // Task-level edges are finer than phases, and the longest chain goes first: b1 (a/t0 → b1 →
    // b3 → b4 hangs below it) started while phase `a` still had tasks waiting for a slot.
    const lastAStart = Math.max(...iv.filter((i) => i.ref.startsWith('a/')).map((i) => i.start));
    expect(iv.find((i) => i.ref === 'b/b1')!.start).toBeLessThan(lastAStart);
  });

  it(`is work-conserving: ≥ ${WITHIN_SHARE * 100}% of waits under ${DISPATCH_TOLERANCE_MS} ms, none ≥ ${WAIT_CEILING_MS} ms`, () => {
    let s = sweep(iv, deps, CAP);
    const misses: string[] = [];
    if (!conserving(s.waits)) {
      misses.push(`waits ${s.waits.join(', ')} ms`);
      runOnce();
      s = sweep(iv, deps, CAP);
      expect(s.peak).toBeLessThanOrEqual(CAP);
    }
    const where = `waits ${s.waits.join(', ')} ms (longest from ${s.waitFrom ? new Date(s.waitFrom).toISOString() : '-'}); earlier run: ${misses.join('') || 'none'}`;
    expect(s.waits.length, where).toBeGreaterThan(3);
    expect(s.longestWaitMs, where).toBeLessThan(WAIT_CEILING_MS);
    expect(share(s.waits), where).toBeGreaterThanOrEqual(WITHIN_SHARE);
    // And the makespan stays near its lower bound (work ÷ slots): list scheduling pays at most
    // about one task length more, a wave scheduler the longest task of every wave.
    const work = iv.reduce((sum, i) => sum + (i.end - i.start), 0);
    const longest = Math.max(...iv.map((i) => i.end - i.start));
    const makespan = Math.max(...iv.map((i) => i.end)) - Math.min(...iv.map((i) => i.start));
    expect(makespan).toBeLessThan(work / CAP + longest + 2 * WAIT_CEILING_MS);
  });
});

/** Share of waits under the tolerance. */
const share = (waits: number[]) => waits.filter((w) => w < DISPATCH_TOLERANCE_MS).length / Math.max(1, waits.length);
const conserving = (waits: number[]) => Math.max(0, ...waits) < WAIT_CEILING_MS && share(waits) >= WITHIN_SHARE;

/** The spec's tasks as refs with their deps (phase edges expanded) and lengths in ms. */
function specTasks(): { ref: string; deps: string[]; ms: number }[] {
  const out: { ref: string; deps: string[]; ms: number }[] = [];
  for (const ph of spec.phases as any[]) {
    const phaseDeps = (ph.dependsOn ?? []).flatMap((d: string) => out.filter((t) => t.ref.startsWith(`${d}/`)).map((t) => t.ref));
    for (const t of ph.tasks) {
      const own = (t.dependsOn ?? []).map((d: string) => (d.includes('/') ? d : `${ph.id}/${d}`));
      out.push({ ref: `${ph.id}/${t.id}`, deps: [...phaseDeps, ...own], ms: Number(t.prompt) * 1000 });
    }
  }
  return out;
}

describe('sweep (the journal analysis itself)', () => {
  it('would catch a fixed-wave scheduler on this workflow: most waits ≥ 200 ms, the longest ≥ 800 ms', () => {
    const tasks = specTasks();
    const deps = new Map(tasks.map((t) => [t.ref, t.deps]));
    const iv: Interval[] = [];
    const end = new Map<string, number>();
    let t = 0;
    while (end.size < tasks.length) {
      const wave = tasks.filter((x) => !end.has(x.ref) && x.deps.every((d) => end.has(d))).slice(0, CAP);
      wave.forEach((x, slot) => iv.push({ ref: x.ref, attempt: 1, slot, start: t, end: t + x.ms }));
      for (const x of wave) end.set(x.ref, t + x.ms);
      t += Math.max(...wave.map((x) => x.ms));
    }
    const s = sweep(iv, deps, CAP);
    expect(s.peak).toBe(CAP);
    expect(s.longestWaitMs).toBeGreaterThanOrEqual(800);
    expect(share(s.waits)).toBeLessThan(0.5);
    expect(conserving(s.waits)).toBe(false);
  });

  const d = new Map<string, string[]>([['x', []], ['y', []], ['z', ['x']]]);
  it('sees a slot left idle while a task was ready', () => {
    // cap 2: x and y start at 0; x ends at 100 and z (ready from then) starts only at 600.
    const iv: Interval[] = [
      { ref: 'x', attempt: 1, slot: 0, start: 0, end: 100 },
      { ref: 'y', attempt: 1, slot: 1, start: 0, end: 1000 },
      { ref: 'z', attempt: 1, slot: 0, start: 600, end: 700 },
    ];
    const s = sweep(iv, d, 2);
    expect(s.peak).toBe(2);
    expect(s.longestWaitMs).toBe(500);
    expect(s.waitFrom).toBe(100);
    expect(s.longestIdleStretchMs).toBe(500);
  });
  it('counts overlap above the cap', () => {
    const iv: Interval[] = [
      { ref: 'x', attempt: 1, slot: 0, start: 0, end: 100 },
      { ref: 'y', attempt: 1, slot: 1, start: 10, end: 100 },
      { ref: 'z', attempt: 1, slot: 0, start: 50, end: 200 },
    ];
    expect(sweep(iv, d, 2).peak).toBe(3);
  });
  it('a finish and a start in the same millisecond do not overlap', () => {
    const iv: Interval[] = [
      { ref: 'x', attempt: 1, slot: 0, start: 0, end: 100 },
      { ref: 'z', attempt: 1, slot: 0, start: 100, end: 200 },
    ];
    const s = sweep(iv, d, 1);
    expect(s.peak).toBe(1);
  });
});
