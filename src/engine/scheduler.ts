/**
 * The DAG pool scheduler: a sliding window of at most `maxConcurrent` tasks over a dependency
 * graph. A slot is refilled the moment it frees — never fixed waves. It knows nothing about
 * processes or files: `execute` does the work, hooks report what happens, so the same scheduler
 * runs real agents, benchmarks and tests.
 */

/** The scheduler's view of one task. */
export interface SchedTask {
  /** Unique ref, `phase/task`. */
  ref: string;
  phaseId: string;
  /** Refs this task waits for. */
  deps: string[];
  /**
   * A control node of a dynamic phase: it runs without a slot, is never admitted or retried, and
   * may grow the graph when it succeeds (see AttemptOutcome.grow).
   */
  virtual?: boolean;
}

/** Tasks a virtual node adds to the running graph. */
export interface Growth {
  /** New tasks, dependencies first. Their deps may name existing or new tasks. */
  tasks: SchedTask[];
  /** Refs among `tasks` already done (reused on resume): they count as succeeded at once. */
  done?: ReadonlySet<string>;
  /** More dependencies for tasks that have not started yet (a phase's end node). */
  extend?: { ref: string; deps: string[] }[];
}

/** What one attempt of a task came to. */
export interface AttemptOutcome {
  /** `succeeded`, or how it failed. `cancelled` means the run's stop reached it. */
  status: 'succeeded' | 'failed' | 'timed_out' | 'cancelled';
  /** Whether another attempt could help. */
  retryable: boolean;
  /** Short cause, for dependents' skip messages. */
  cause?: string;
  /** From a virtual node that succeeded: tasks to add before its dependents are released. */
  grow?: Growth;
  /**
   * Set the task aside: it ends `not_run` (it runs again on resume), is neither retried nor a
   * failure, and its dependents wait (they end `not_run` too). For an attempt cut off by a usage
   * limit: the work did not fail, the account did.
   */
  hold?: boolean;
  /** With `cancelled`: a person stopped this task alone; it ends `cancelled` and its dependents are skipped. */
  stopped?: boolean;
  /** With `cancelled`: run the task again at once (next attempt), without using up a retry. */
  restart?: boolean;
  /** A wait the failure itself asked for (a rate limit's retry-after), used when longer than the back-off. */
  retryAfterMs?: number;
}

/** Final state of each task after a scheduler pass. */
export type TaskFinal = 'succeeded' | 'failed' | 'skipped' | 'cancelled' | 'not_run';

/** Hooks fired as the pool moves; all synchronous and cheap. */
export interface SchedHooks {
  /** A task got a slot (slot index 0..maxConcurrent-1). */
  onDispatch?(task: SchedTask, attempt: number, slot: number): void;
  /** An attempt ended. */
  onAttemptEnd?(task: SchedTask, attempt: number, outcome: AttemptOutcome): void;
  /** A failed attempt will be retried after `delayMs`. */
  onRetry?(task: SchedTask, nextAttempt: number, delayMs: number, cause: string): void;
  /** A task will never run because a dependency failed. */
  onSkip?(task: SchedTask, cause: string): void | Promise<void>;
  /** A phase with `onFailure: stop` failed: nothing new will be dispatched. */
  onHalt?(task: SchedTask, cause: string): void;
  /** A dispatched or skipped task reached its final state in this pass. */
  onFinal?(task: SchedTask, final: TaskFinal): void;
  /** Tasks were added by a virtual node. */
  onGrow?(growth: Growth): void;
  /** A virtual node's growth was not added (the pass halted, or the phase had ended): its tasks never exist. */
  onGrowDropped?(growth: Growth): void;
}

/** Inputs of one scheduler pass. */
export interface SchedOptions {
  /** Tasks in a topological order. */
  tasks: SchedTask[];
  /** Refs already done (reused on resume); they count as succeeded and are never dispatched. */
  done?: ReadonlySet<string>;
  /** Slots. */
  maxConcurrent: number;
  /** Extra attempts after a retryable failure. */
  retries: number;
  /** First back-off delay; doubles per attempt, capped at 30 s. */
  backoffMs: number;
  /** Per phase: stop dispatching after a final failure, or go on with what does not depend on it. */
  onFailure: (phaseId: string) => 'stop' | 'continue';
  /** First attempt number per task (resume continues numbering); default 1. */
  firstAttempt?: (ref: string) => number;
  /**
   * Asked before each dispatch: `true` to go ahead, `false` to wait until a running attempt
   * ends, or a reason to stop dispatching (e.g. the next agent could cross the budget). A
   * refusal halts the pass like a failure does: running attempts finish, nothing new starts.
   */
  admit?: (task: SchedTask) => boolean | string;
  /**
   * Asked before each dispatch, before `admit`: true sets the task aside for this pass (it ends
   * `not_run`, and so do its dependents) while other tasks go on — e.g. every task of a runner that
   * hit a usage limit.
   */
  held?: (task: SchedTask) => boolean;
  /** Runs one attempt. Must settle; should honour `signal` promptly. */
  execute: (task: SchedTask, ctx: { attempt: number; slot: number; signal: AbortSignal }) => Promise<AttemptOutcome>;
  /** Aborting stops dispatch and aborts every running attempt's signal. */
  signal?: AbortSignal;
  hooks?: SchedHooks;
  /** Injectable sleep for back-off (tests use fake timers). */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** Result of a scheduler pass. */
export interface SchedResult {
  final: Map<string, TaskFinal>;
  /** Why dispatch stopped early, if it did. */
  halted?: { by: 'failure' | 'abort' | 'refused'; cause: string };
}

const MAX_BACKOFF_MS = 30_000;
/** Longest wait a rate limit's retry-after may ask for before one retry (5 min). */
const MAX_RETRY_AFTER_MS = 300_000;

/** Sleep that resolves early (without throwing) when the signal aborts. */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Priority of each task: the length of the longest chain of tasks that still hangs below it.
 * Critical-path-first list scheduling keeps the long chains moving while short side tasks fill
 * the remaining slots, which is what keeps makespan near its lower bound.
 */
export function bottomLevels(tasks: SchedTask[]): Map<string, number> {
  // Kahn's algorithm from the sinks up, so the list need not be in topological order (a phase's
  // end node gains dependencies on tasks added after it). Virtual nodes weigh nothing.
  const byRef = new Map(tasks.map((t) => [t.ref, t]));
  const pendingChildren = new Map<string, number>();
  for (const t of tasks) pendingChildren.set(t.ref, 0);
  for (const t of tasks) for (const d of t.deps) if (byRef.has(d)) pendingChildren.set(d, pendingChildren.get(d)! + 1);
  const level = new Map<string, number>();
  const best = new Map<string, number>();
  const stack = tasks.filter((t) => pendingChildren.get(t.ref) === 0).map((t) => t.ref);
  while (stack.length > 0) {
    const ref = stack.pop()!;
    const t = byRef.get(ref)!;
    const own = (best.get(ref) ?? 0) + (t.virtual ? 0 : 1);
    level.set(ref, own);
    for (const d of t.deps) {
      if (!byRef.has(d)) continue;
      best.set(d, Math.max(best.get(d) ?? 0, own));
      const left = pendingChildren.get(d)! - 1;
      pendingChildren.set(d, left);
      if (left === 0) stack.push(d);
    }
  }
  for (const t of tasks) if (!level.has(t.ref)) level.set(t.ref, 1);
  return level;
}

/**
 * Runs the DAG to the end (or until halted) and reports each task's final state.
 * Never rejects because a task failed; rejects only if `execute` or a hook throws.
 */
export async function runDag(opts: SchedOptions): Promise<SchedResult> {
  const { tasks, maxConcurrent, hooks = {} } = opts;
  const sleep = opts.sleep ?? abortableSleep;
  const outer = opts.signal ?? new AbortController().signal;
  // Back-off sleeps end on a halt or an outer abort; running attempts end only on an outer abort
  // (a halt lets them finish).
  const sleeps = new AbortController();

  const all = [...tasks];
  const byRef = new Map(all.map((t) => [t.ref, t]));
  const final = new Map<string, TaskFinal>();
  const waitingOn = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  let priority = bottomLevels(all);
  const order = new Map(all.map((t, i) => [t.ref, i]));
  const attemptOf = new Map<string, number>();
  const ready: SchedTask[] = [];
  /** Virtual nodes ready to run (they need no slot) and how many are running. */
  const readyVirtual: SchedTask[] = [];
  let virtualRunning = 0;
  const makeReady = (t: SchedTask) => (t.virtual ? readyVirtual : ready).push(t);
  const freeSlots: number[] = [];
  for (let s = maxConcurrent - 1; s >= 0; s--) freeSlots.push(s);
  let running = 0;
  let retrying = 0;
  /** Restarts a person asked for, per task: they do not use up `retries`. */
  const restarts = new Map<string, number>();
  let halted: SchedResult['halted'];

  for (const t of tasks) {
    for (const d of t.deps) (dependents.get(d) ?? dependents.set(d, []).get(d)!).push(t.ref);
  }
  for (const t of tasks) {
    if (opts.done?.has(t.ref)) {
      final.set(t.ref, 'succeeded');
      continue;
    }
    waitingOn.set(t.ref, t.deps.filter((d) => !opts.done?.has(d)).length);
  }
  for (const t of tasks) if (!final.has(t.ref) && waitingOn.get(t.ref) === 0) makeReady(t);

  const pendingSkips: Promise<void>[] = [];
  const setFinal = (ref: string, f: TaskFinal) => {
    final.set(ref, f);
    hooks.onFinal?.(byRef.get(ref)!, f);
  };
  let settle!: () => void;
  let fail!: (e: unknown) => void;
  const finished = new Promise<void>((res, rej) => {
    settle = res;
    fail = rej;
  });

  function takeNext(): SchedTask | undefined {
    if (ready.length === 0) return undefined;
    let bi = 0;
    for (let i = 1; i < ready.length; i++) {
      const a = ready[i]!;
      const b = ready[bi]!;
      const pa = priority.get(a.ref)!;
      const pb = priority.get(b.ref)!;
      if (pa > pb || (pa === pb && order.get(a.ref)! < order.get(b.ref)!)) bi = i;
    }
    return ready.splice(bi, 1)[0];
  }

  function skipDependents(ref: string, cause: string) {
    const stack = [...(dependents.get(ref) ?? [])];
    while (stack.length) {
      const r = stack.pop()!;
      if (final.has(r)) continue;
      const t = byRef.get(r)!;
      final.set(r, 'skipped');
      const p = t.virtual ? undefined : hooks.onSkip?.(t, cause);
      hooks.onFinal?.(t, 'skipped');
      if (p) pendingSkips.push(p);
      stack.push(...(dependents.get(r) ?? []));
    }
  }

  function maybeDone() {
    if (running > 0 || retrying > 0 || virtualRunning > 0) return;
    if ((ready.length > 0 || readyVirtual.length > 0) && !halted) return;
    Promise.all(pendingSkips).then(() => settle(), fail);
  }

  /** Adds a virtual node's growth to the graph; runs before its dependents are released. */
  function grow(g: Growth) {
    for (const t of g.tasks) {
      if (byRef.has(t.ref)) throw new Error(`scheduler: task ${t.ref} added twice`);
      all.push(t);
      byRef.set(t.ref, t);
      order.set(t.ref, order.size);
      for (const d of t.deps) (dependents.get(d) ?? dependents.set(d, []).get(d)!).push(t.ref);
      if (g.done?.has(t.ref)) final.set(t.ref, 'succeeded');
    }
    for (const e of g.extend ?? []) {
      const t = byRef.get(e.ref);
      if (!t || final.has(e.ref)) throw new Error(`scheduler: cannot extend ${e.ref}: ${t ? 'it has ended' : 'no such task'}`);
      for (const d of e.deps) {
        if (t.deps.includes(d)) continue;
        t.deps.push(d);
        (dependents.get(d) ?? dependents.set(d, []).get(d)!).push(e.ref);
        if (final.get(d) !== 'succeeded') waitingOn.set(e.ref, (waitingOn.get(e.ref) ?? 0) + 1);
      }
    }
    priority = bottomLevels(all);
    hooks.onGrow?.(g);
    for (const t of g.tasks) {
      if (final.has(t.ref)) continue;
      const bad = t.deps.find((d) => { const f = final.get(d); return f !== undefined && f !== 'succeeded'; });
      if (bad !== undefined) {
        waitingOn.set(t.ref, 1);
        continue; // skipped below, once every new task is in place
      }
      waitingOn.set(t.ref, t.deps.filter((d) => final.get(d) !== 'succeeded').length);
    }
    for (const t of g.tasks) {
      if (final.has(t.ref)) continue;
      const bad = t.deps.find((d) => { const f = final.get(d); return f !== undefined && f !== 'succeeded'; });
      if (bad !== undefined) {
        final.set(t.ref, 'skipped');
        const p = t.virtual ? undefined : hooks.onSkip?.(t, `dependency ${bad} ${final.get(bad)}`);
        hooks.onFinal?.(t, 'skipped');
        if (p) pendingSkips.push(p);
        skipDependents(t.ref, `dependency ${bad} ${final.get(bad)}`);
      } else if (waitingOn.get(t.ref) === 0) makeReady(t);
    }
  }

  function runVirtual(task: SchedTask) {
    virtualRunning++;
    const attempt = 1;
    opts
      .execute(task, { attempt, slot: -1, signal: outer })
      .then((outcome) => {
        virtualRunning--;
        // A phase whose end node has already ended (skipped after a failure under onFailure:
        // continue) takes no more tasks: the growth is dropped, not forced onto a finished node.
        const g = outcome.grow;
        if (outcome.status === 'succeeded' && g) {
          if (!halted && !(g.extend ?? []).some((e) => final.has(e.ref))) grow(g);
          else hooks.onGrowDropped?.(g);
        }
        onAttemptEnd(task, attempt, { ...outcome, retryable: false });
        pump();
        maybeDone();
      })
      .catch((err: unknown) => fail(err));
  }

  function pump() {
    while (!halted && readyVirtual.length > 0) runVirtual(readyVirtual.shift()!);
    while (!halted && running < maxConcurrent && ready.length > 0) {
      const task = takeNext()!;
      if (opts.held?.(task)) continue; // stays without a final state: not_run at the end
      const verdict = opts.admit ? opts.admit(task) : true;
      if (verdict !== true) {
        ready.push(task);
        // `false` means "not now": a running attempt's end will pump again. With nothing
        // running there is nothing to wait for, so it becomes a refusal.
        if (verdict === false && running > 0) break;
        halted = { by: 'refused', cause: verdict === false ? `dispatch of ${task.ref} refused` : verdict };
        sleeps.abort('refused');
        break;
      }
      const slot = freeSlots.pop()!;
      const attempt = attemptOf.get(task.ref) ?? opts.firstAttempt?.(task.ref) ?? 1;
      attemptOf.set(task.ref, attempt);
      running++;
      hooks.onDispatch?.(task, attempt, slot);
      const ctrl = new AbortController();
      const abortChild = () => ctrl.abort(outer.reason);
      if (outer.aborted) abortChild();
      else outer.addEventListener('abort', abortChild, { once: true });
      opts
        .execute(task, { attempt, slot, signal: ctrl.signal })
        .then(
          (outcome) => {
            outer.removeEventListener('abort', abortChild);
            running--;
            freeSlots.push(slot);
            onAttemptEnd(task, attempt, outcome);
            pump();
            maybeDone();
          },
          (err) => fail(err),
        );
    }
    maybeDone();
  }

  function onAttemptEnd(task: SchedTask, attempt: number, outcome: AttemptOutcome) {
    hooks.onAttemptEnd?.(task, attempt, outcome);
    if (outcome.status === 'succeeded') {
      setFinal(task.ref, 'succeeded');
      for (const c of dependents.get(task.ref) ?? []) {
        const left = waitingOn.get(c)! - 1;
        waitingOn.set(c, left);
        if (left === 0 && !final.has(c)) makeReady(byRef.get(c)!);
      }
      return;
    }
    if (outcome.status === 'cancelled' && outcome.restart && !outer.aborted && !halted) {
      restarts.set(task.ref, (restarts.get(task.ref) ?? 0) + 1);
      attemptOf.set(task.ref, attempt + 1);
      ready.push(task);
      return;
    }
    if (outcome.status === 'cancelled' || outer.aborted) {
      setFinal(task.ref, 'cancelled');
      if (outcome.stopped && !outer.aborted) skipDependents(task.ref, `dependency ${task.ref} was stopped: ${outcome.cause ?? 'by a person'}`);
      return;
    }
    // Set aside: no final state now, so it ends not_run; dependents never become ready.
    if (outcome.hold) return;
    const cause = outcome.cause ?? outcome.status;
    const firstAttempt = opts.firstAttempt?.(task.ref) ?? 1;
    const used = attempt - firstAttempt + 1 - (restarts.get(task.ref) ?? 0);
    if (outcome.retryable && used <= opts.retries && !halted) {
      const backoff = Math.min(opts.backoffMs * 2 ** (used - 1), MAX_BACKOFF_MS);
      const delayMs = Math.max(backoff, Math.min(outcome.retryAfterMs ?? 0, MAX_RETRY_AFTER_MS));
      attemptOf.set(task.ref, attempt + 1);
      hooks.onRetry?.(task, attempt + 1, delayMs, cause);
      retrying++;
      // The slot is free during back-off: other ready work runs meanwhile (work-conserving).
      sleep(delayMs, sleeps.signal).then(() => {
        retrying--;
        if (outer.aborted) setFinal(task.ref, 'cancelled');
        else if (halted) setFinal(task.ref, 'not_run');
        else ready.push(task);
        pump();
      }, fail);
      return;
    }
    setFinal(task.ref, 'failed');
    skipDependents(task.ref, `dependency ${task.ref} failed: ${cause}`);
    if (opts.onFailure(task.phaseId) === 'stop' && !halted) {
      halted = { by: 'failure', cause: `${task.ref} failed: ${cause}` };
      hooks.onHalt?.(task, cause);
      // Running tasks finish on their own; only back-off sleeps end now.
      sleeps.abort('halt');
    }
  }

  const onOuterAbort = () => {
    if (!halted) halted = { by: 'abort', cause: String(outer.reason ?? 'aborted') };
    sleeps.abort(outer.reason);
    maybeDone();
  };
  if (outer.aborted) onOuterAbort();
  else outer.addEventListener('abort', onOuterAbort, { once: true });

  pump();
  try {
    await finished;
  } finally {
    outer.removeEventListener('abort', onOuterAbort);
  }
  for (const t of all) if (!final.has(t.ref)) final.set(t.ref, 'not_run');
  return { final, ...(halted ? { halted } : {}) };
}
