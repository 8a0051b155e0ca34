import { describe, expect, it } from 'vitest';
import { runDag, bottomLevels, type AttemptOutcome, type SchedTask } from '../../src/engine/scheduler.js';

type Ev = { kind: 'start' | 'end'; ref: string; attempt: number };

/** Runs a DAG whose tasks sleep for `dur(ref)` ms and then return `outcome(ref, attempt)`. */
async function simulate(
  tasks: SchedTask[],
  opts: {
    cap: number;
    dur?: (ref: string) => number;
    outcome?: (ref: string, attempt: number) => AttemptOutcome;
    retries?: number;
    onFailure?: 'stop' | 'continue';
    signal?: AbortSignal;
    done?: Set<string>;
  },
) {
  const log: Ev[] = [];
  let running = 0;
  let maxRunning = 0;
  const res = await runDag({
    tasks,
    maxConcurrent: opts.cap,
    retries: opts.retries ?? 0,
    backoffMs: 5,
    onFailure: () => opts.onFailure ?? 'stop',
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.done ? { done: opts.done } : {}),
    hooks: {
      onDispatch: (t, attempt) => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        log.push({ kind: 'start', ref: t.ref, attempt });
      },
      onAttemptEnd: (t, attempt) => {
        running--;
        log.push({ kind: 'end', ref: t.ref, attempt });
      },
    },
    execute: (t, { attempt, signal }) =>
      new Promise<AttemptOutcome>((resolve) => {
        const timer = setTimeout(() => resolve(opts.outcome?.(t.ref, attempt) ?? { status: 'succeeded', retryable: false }), opts.dur?.(t.ref) ?? 10);
        signal.addEventListener('abort', () => {
          clearTimeout(timer);
          resolve({ status: 'cancelled', retryable: false });
        });
      }),
  });
  return { res, log, maxRunning };
}

const independent = (n: number, phase = 'p'): SchedTask[] =>
  Array.from({ length: n }, (_, i) => ({ ref: `${phase}/t${i}`, phaseId: phase, deps: [] }));

/** A layered random DAG (deps only on earlier tasks), deterministic from a seed. */
function randomDag(n: number, seed: number): SchedTask[] {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const tasks: SchedTask[] = [];
  for (let i = 0; i < n; i++) {
    const deps = new Set<string>();
    for (let k = 0; k < 3 && i > 0; k++) if (rnd() < 0.4) deps.add(`p/t${Math.floor(rnd() * i)}`);
    tasks.push({ ref: `p/t${i}`, phaseId: 'p', deps: [...deps] });
  }
  return tasks;
}

/**
 * Replays a hook log and checks work conservation: between events, whenever fewer than `cap`
 * tasks run, no task that has not started has all its dependencies finished.
 */
function assertWorkConserving(tasks: SchedTask[], log: Ev[], cap: number) {
  const running = new Set<string>();
  const finished = new Set<string>();
  const started = new Set<string>();
  for (let i = 0; i < log.length; i++) {
    const e = log[i]!;
    if (e.kind === 'start') {
      running.add(e.ref);
      started.add(e.ref);
    } else {
      running.delete(e.ref);
      finished.add(e.ref);
    }
    // Check only at quiet points: the next event is an end (dispatches after an end are synchronous).
    const next = log[i + 1];
    if (next && next.kind === 'start') continue;
    if (running.size < cap) {
      const idleReady = tasks.filter((t) => !started.has(t.ref) && t.deps.every((d) => finished.has(d)));
      expect(idleReady.map((t) => t.ref), `slot idle at event ${i} while tasks were ready`).toEqual([]);
    }
  }
}

describe('runDag', () => {
  it('never exceeds the cap and reaches it when work allows', async () => {
    const { res, maxRunning } = await simulate(independent(24), { cap: 4 });
    expect(maxRunning).toBe(4);
    expect([...res.final.values()].every((s) => s === 'succeeded')).toBe(true);
  });

  it('refills a slot the moment it frees (no waves) — checked from the log', async () => {
    const tasks = independent(12);
    // One long task and many short ones: with waves the short ones would wait for the long one.
    const { log } = await simulate(tasks, { cap: 3, dur: (r) => (r === 'p/t0' ? 120 : 10) });
    const t0End = log.findIndex((e) => e.kind === 'end' && e.ref === 'p/t0');
    const startsBefore = log.slice(0, t0End).filter((e) => e.kind === 'start').length;
    expect(startsBefore).toBe(12);
    assertWorkConserving(tasks, log, 3);
  });

  it('respects DAG order and is work-conserving on random DAGs', async () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const tasks = randomDag(40, seed);
      const { res, log, maxRunning } = await simulate(tasks, { cap: 4, dur: (r) => 2 + (r.length * 7 + seed) % 9 });
      expect(maxRunning).toBeLessThanOrEqual(4);
      const endIdx = new Map(log.filter((e) => e.kind === 'end').map((e) => [e.ref, log.indexOf(e)]));
      for (const t of tasks) {
        const startIdx = log.findIndex((e) => e.kind === 'start' && e.ref === t.ref);
        for (const d of t.deps) expect(endIdx.get(d)!).toBeLessThan(startIdx);
      }
      assertWorkConserving(tasks, log, 4);
      expect([...res.final.values()].every((s) => s === 'succeeded')).toBe(true);
    }
  });

  it('retries a retryable failure with back-off, then succeeds', async () => {
    const { res, log } = await simulate(independent(1), {
      cap: 2,
      retries: 2,
      outcome: (_r, attempt) => (attempt < 3 ? { status: 'failed', retryable: true, cause: 'flaky' } : { status: 'succeeded', retryable: false }),
    });
    expect(log.filter((e) => e.kind === 'start').map((e) => e.attempt)).toEqual([1, 2, 3]);
    expect(res.final.get('p/t0')).toBe('succeeded');
  });

  it('does not retry a non-retryable failure and skips dependents with the cause', async () => {
    const tasks: SchedTask[] = [
      { ref: 'a/x', phaseId: 'a', deps: [] },
      { ref: 'b/y', phaseId: 'b', deps: ['a/x'] },
      { ref: 'c/z', phaseId: 'c', deps: ['b/y'] },
    ];
    const skipped: [string, string][] = [];
    const res = await runDag({
      tasks, maxConcurrent: 2, retries: 3, backoffMs: 1, onFailure: () => 'continue',
      hooks: { onSkip: (t, cause) => void skipped.push([t.ref, cause]) },
      execute: async () => ({ status: 'failed', retryable: false, cause: 'exit 3' }),
    });
    expect(res.final.get('a/x')).toBe('failed');
    expect(res.final.get('b/y')).toBe('skipped');
    expect(res.final.get('c/z')).toBe('skipped');
    expect(skipped.map((s) => s[0]).sort()).toEqual(['b/y', 'c/z']);
    expect(skipped[0]![1]).toContain('dependency a/x failed: exit 3');
  });

  it('onFailure stop: dispatches nothing new but lets running tasks finish', async () => {
    const tasks = independent(10);
    const { res, log } = await simulate(tasks, {
      cap: 3,
      dur: (r) => (r === 'p/t0' ? 5 : 40),
      outcome: (r) => (r === 'p/t0' ? { status: 'failed', retryable: false, cause: 'boom' } : { status: 'succeeded', retryable: false }),
    });
    expect(res.halted?.by).toBe('failure');
    expect(res.final.get('p/t0')).toBe('failed');
    // t1 and t2 were running when t0 failed: they finish and succeed; nothing else starts.
    expect(log.filter((e) => e.kind === 'start').map((e) => e.ref)).toEqual(['p/t0', 'p/t1', 'p/t2']);
    expect(res.final.get('p/t1')).toBe('succeeded');
    expect(res.final.get('p/t5')).toBe('not_run');
  });

  it('onFailure continue: unrelated work goes on', async () => {
    const { res } = await simulate(independent(8), {
      cap: 3,
      onFailure: 'continue',
      outcome: (r) => (r === 'p/t0' ? { status: 'failed', retryable: false } : { status: 'succeeded', retryable: false }),
    });
    expect([...res.final.values()].filter((s) => s === 'succeeded')).toHaveLength(7);
  });

  it('abort cancels running attempts and dispatches nothing more', async () => {
    const ctl = new AbortController();
    setTimeout(() => ctl.abort('stop'), 30);
    const { res } = await simulate(independent(10), { cap: 2, dur: () => 1000, signal: ctl.signal });
    expect(res.halted?.by).toBe('abort');
    const finals = [...res.final.values()];
    expect(finals.filter((s) => s === 'cancelled')).toHaveLength(2);
    expect(finals.filter((s) => s === 'not_run')).toHaveLength(8);
  });

  it('never dispatches tasks given as done, and their dependents become ready at once', async () => {
    const tasks: SchedTask[] = [
      { ref: 'a/x', phaseId: 'a', deps: [] },
      { ref: 'b/y', phaseId: 'b', deps: ['a/x'] },
    ];
    const { log, res } = await simulate(tasks, { cap: 2, done: new Set(['a/x']) });
    expect(log.filter((e) => e.kind === 'start').map((e) => e.ref)).toEqual(['b/y']);
    expect(res.final.get('a/x')).toBe('succeeded');
  });

  it('bottomLevels ranks long chains first', () => {
    const tasks: SchedTask[] = [
      { ref: 'p/a', phaseId: 'p', deps: [] },
      { ref: 'p/b', phaseId: 'p', deps: ['p/a'] },
      { ref: 'p/c', phaseId: 'p', deps: ['p/b'] },
      { ref: 'p/d', phaseId: 'p', deps: [] },
    ];
    const lv = bottomLevels(tasks);
    expect(lv.get('p/a')).toBe(3);
    expect(lv.get('p/d')).toBe(1);
  });
});
