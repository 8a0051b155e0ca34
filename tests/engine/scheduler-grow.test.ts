/**
 * The scheduler's virtual nodes: they run without a slot, and a virtual node that succeeds may add
 * tasks to the running graph and hold a phase's end node until those tasks are done.
 */
import { describe, expect, it } from 'vitest';
import { bottomLevels, runDag, type AttemptOutcome, type Growth, type SchedTask } from '../../src/engine/scheduler.js';

const ok: AttemptOutcome = { status: 'succeeded', retryable: false };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A graph `src/a → p/_start → p/_done → dst/z`, whose start grows `n` tasks (and a step). */
function fanGraph(): SchedTask[] {
  return [
    { ref: 'src/a', phaseId: 'src', deps: [] },
    { ref: 'p/_start', phaseId: 'p', deps: ['src/a'], virtual: true },
    { ref: 'p/_done', phaseId: 'p', deps: ['p/_start'], virtual: true },
    { ref: 'dst/z', phaseId: 'dst', deps: ['p/_done'] },
  ];
}

function growth(n: number, done: string[] = []): Growth {
  const tasks: SchedTask[] = Array.from({ length: n }, (_, i) => ({ ref: `p/t-${i + 1}`, phaseId: 'p', deps: ['src/a'] }));
  tasks.push({ ref: 'p/_post', phaseId: 'p', deps: tasks.map((t) => t.ref), virtual: true });
  return { tasks, done: new Set(done), extend: [{ ref: 'p/_done', deps: ['p/_post'] }] };
}

describe('virtual nodes and growth', () => {
  it('grown tasks run under the cap, and the end node waits for them', async () => {
    const log: string[] = [];
    let running = 0;
    let peak = 0;
    const res = await runDag({
      tasks: fanGraph(),
      maxConcurrent: 2,
      retries: 0,
      backoffMs: 1,
      onFailure: () => 'stop',
      hooks: {
        onDispatch: (t) => {
          expect(t.virtual).toBeFalsy(); // virtual nodes take no slot
          running++;
          peak = Math.max(peak, running);
        },
        onAttemptEnd: (t) => {
          if (!t.virtual) running--;
        },
      },
      execute: async (t) => {
        log.push(`start ${t.ref}`);
        if (t.ref === 'p/_start') return { ...ok, grow: growth(5) };
        if (!t.virtual) await sleep(10);
        log.push(`end ${t.ref}`);
        return ok;
      },
    });
    expect([...res.final.values()].every((f) => f === 'succeeded')).toBe(true);
    expect(res.final.size).toBe(4 + 6);
    expect(peak).toBe(2);
    const at = (s: string) => log.indexOf(s);
    for (let i = 1; i <= 5; i++) expect(at(`end p/t-${i}`)).toBeLessThan(at('start p/_post'));
    expect(at('start p/_post')).toBeLessThan(at('start p/_done'));
    expect(at('start p/_done')).toBeLessThan(at('start dst/z'));
  });

  it('grown tasks already done are not run, and their dependents start at once', async () => {
    const ran: string[] = [];
    const res = await runDag({
      tasks: fanGraph(),
      maxConcurrent: 2,
      retries: 0,
      backoffMs: 1,
      onFailure: () => 'stop',
      execute: async (t) => {
        ran.push(t.ref);
        return t.ref === 'p/_start' ? { ...ok, grow: growth(3, ['p/t-1', 'p/t-3']) } : ok;
      },
    });
    expect(ran.filter((r) => r.startsWith('p/t-'))).toEqual(['p/t-2']);
    expect(res.final.get('p/t-1')).toBe('succeeded');
    expect(res.final.get('dst/z')).toBe('succeeded');
  });

  it('a growth whose tasks are all done releases the end node', async () => {
    const res = await runDag({
      tasks: fanGraph(),
      maxConcurrent: 1,
      retries: 0,
      backoffMs: 1,
      onFailure: () => 'stop',
      execute: async (t) => (t.ref === 'p/_start' ? { ...ok, grow: growth(2, ['p/t-1', 'p/t-2']) } : ok),
    });
    expect(res.final.get('p/_done')).toBe('succeeded');
    expect(res.final.get('dst/z')).toBe('succeeded');
  });

  it('a failed virtual node halts the pass with its cause and skips what waits for it', async () => {
    const res = await runDag({
      tasks: fanGraph(),
      maxConcurrent: 2,
      retries: 3,
      backoffMs: 1,
      onFailure: () => 'stop',
      execute: async (t) => (t.ref === 'p/_start' ? { status: 'failed', retryable: true, cause: 'gate still failing' } : ok),
    });
    expect(res.final.get('p/_start')).toBe('failed'); // never retried
    expect(res.final.get('p/_done')).toBe('skipped');
    expect(res.final.get('dst/z')).toBe('skipped');
    expect(res.halted).toEqual({ by: 'failure', cause: 'p/_start failed: gate still failing' });
  });

  it('a grown task that fails skips the step after it and the end node', async () => {
    const res = await runDag({
      tasks: fanGraph(),
      maxConcurrent: 2,
      retries: 0,
      backoffMs: 1,
      onFailure: () => 'continue',
      execute: async (t) => {
        if (t.ref === 'p/_start') return { ...ok, grow: growth(2) };
        if (t.ref === 'p/t-2') return { status: 'failed', retryable: false, cause: 'boom' };
        return ok;
      },
    });
    expect(res.final.get('p/t-1')).toBe('succeeded');
    expect(res.final.get('p/_post')).toBe('skipped');
    expect(res.final.get('p/_done')).toBe('skipped');
    expect(res.final.get('dst/z')).toBe('skipped');
  });

  it('steps may grow again (a loop of rounds) until one adds nothing', async () => {
    let rounds = 0;
    const res = await runDag({
      tasks: [
        { ref: 'p/_start', phaseId: 'p', deps: [], virtual: true },
        { ref: 'p/_done', phaseId: 'p', deps: ['p/_start'], virtual: true },
      ],
      maxConcurrent: 3,
      retries: 0,
      backoffMs: 1,
      onFailure: () => 'stop',
      execute: async (t) => {
        if (!t.virtual || t.ref === 'p/_done' || rounds >= 4) return ok;
        rounds++;
        const task = { ref: `p/r-${rounds}`, phaseId: 'p', deps: [] };
        const step = { ref: `p/_round-${rounds}`, phaseId: 'p', deps: [task.ref], virtual: true };
        return { ...ok, grow: { tasks: [task, step], extend: [{ ref: 'p/_done', deps: [step.ref] }] } };
      },
    });
    expect(rounds).toBe(4);
    expect([...res.final.keys()].filter((r) => r.startsWith('p/r-'))).toHaveLength(4);
    expect(res.final.get('p/_done')).toBe('succeeded');
  });

  it('a growth onto a phase end that has already ended is dropped and reported, never forced', async () => {
    const dropped: Growth[] = [];
    const res = await runDag({
      tasks: [
        { ref: 'p/_start', phaseId: 'p', deps: [], virtual: true },
        { ref: 'p/bad', phaseId: 'p', deps: [] },
        { ref: 'p/_done', phaseId: 'p', deps: ['p/_start', 'p/bad'], virtual: true },
      ],
      maxConcurrent: 1,
      retries: 0,
      backoffMs: 1,
      onFailure: () => 'continue',
      hooks: { onGrowDropped: (g) => dropped.push(g) },
      execute: async (t) => {
        if (t.ref === 'p/bad') return { status: 'failed', retryable: false, cause: 'boom' };
        // The start node answers after p/bad failed and p/_done was skipped.
        await sleep(30);
        return { ...ok, grow: { tasks: [{ ref: 'p/late', phaseId: 'p', deps: [] }], extend: [{ ref: 'p/_done', deps: ['p/late'] }] } };
      },
    });
    expect(res.final.get('p/_done')).toBe('skipped');
    expect(res.final.has('p/late')).toBe(false);
    expect(dropped.map((g) => g.tasks.map((t) => t.ref))).toEqual([['p/late']]);
  });

  it('growing a task twice is an error, not a silent overwrite', async () => {
    await expect(runDag({
      tasks: fanGraph(),
      maxConcurrent: 1,
      retries: 0,
      backoffMs: 1,
      onFailure: () => 'stop',
      execute: async (t) => (t.ref === 'p/_start' ? { ...ok, grow: { tasks: [{ ref: 'src/a', phaseId: 'src', deps: [] }] } } : ok),
    })).rejects.toThrow(/added twice/);
  });

  it('bottom levels count real tasks only and need no topological order', () => {
    const levels = bottomLevels([
      { ref: 'p/_done', phaseId: 'p', deps: ['p/_start', 'p/t-1'], virtual: true },
      { ref: 'p/_start', phaseId: 'p', deps: ['a/x'], virtual: true },
      { ref: 'a/x', phaseId: 'a', deps: [] },
      { ref: 'p/t-1', phaseId: 'p', deps: ['a/x'] },
      { ref: 'z/z', phaseId: 'z', deps: ['p/_done'] },
    ]);
    expect(levels.get('z/z')).toBe(1);
    expect(levels.get('p/_done')).toBe(1);
    expect(levels.get('p/t-1')).toBe(2);
    expect(levels.get('a/x')).toBe(3);
  });
});
