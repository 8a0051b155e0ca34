/**
 * The run owner: the one process that executes a run. It holds the lease, is the only writer of
 * run.json, the journal and the agent files, and turns the scheduler's moves into durable records
 * in the order the durability contract asks: journal `agent.started` → agent file (atomic) →
 * journal `agent.finished`.
 */
import os from 'node:os';
import type { Plan, PlanTask } from '../spec/types.js';
import type { AgentRecord, AgentStatus, Counts, PhaseState, PhaseStatus, RunEvent, RunRecord, RunStatus } from '../store/types.js';
import { SCHEMA_VERSION } from '../store/types.js';
import { RunStore, acquireLease, type Lease } from '../store/index.js';
import { getRunner } from '../runners/index.js';
import type { Runner, RunnerResult } from '../runners/types.js';
import { runDag, type AttemptOutcome, type SchedTask } from './scheduler.js';
import { TaskInputs } from './inputs.js';

/** Why a run was cut short from outside the scheduler. */
export type StopReason =
  | { kind: 'stop'; by: string }
  | { kind: 'timeout'; afterMs: number }
  | { kind: 'lease_lost' };

/** Where one task stands, as the progress view and status see it. */
export type TaskState = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped';

/** A live picture of the run for progress views. */
export interface Snapshot {
  runId: string;
  name: string;
  status: RunStatus;
  phases: PhaseState[];
  totals: Counts;
  running: { ref: string; attempt: number; startedAt: number }[];
  elapsedMs: number;
  reason?: string;
}

/** Options of `ownRun`. */
export interface OwnerOptions {
  /** Store root. */
  root: string;
  runId: string;
  /** A new plan to resume with (`resume --spec NEW`): unchanged keys are reused. */
  plan?: Plan;
  /** Aborting stops the run gracefully (children killed, statuses recorded). */
  signal?: AbortSignal;
  /** Called (throttled) whenever something changes. */
  onProgress?: (s: Snapshot) => void;
  /** Runner lookup; defaults to the registry. */
  runners?: (kind: string) => Runner;
  /** How often control.json is polled for a stop request (ms). */
  controlPollMs?: number;
  /** Lease time-to-live (ms). */
  leaseTtlMs?: number;
  /** Minimum interval between run.json rewrites (ms). */
  persistEveryMs?: number;
}

const now = () => new Date().toISOString();

/** Empty counts for `total` tasks. */
export function emptyCounts(total = 0): Counts {
  return { total, succeeded: 0, failed: 0, skipped: 0, running: 0, pending: total };
}

/** Counts of a set of task states. */
export function countStates(states: Iterable<TaskState>): Counts {
  const c = emptyCounts();
  for (const s of states) {
    c.total++;
    if (s === 'pending') continue;
    c.pending--;
    c[s]++;
  }
  return c;
}

/** Phase status from its counts; `runEnded` turns unfinished phases into `stopped`. */
export function phaseStatus(c: Counts, runEnded: boolean): PhaseStatus {
  if (c.total > 0 && c.succeeded === c.total) return 'completed';
  const unfinished = c.pending + c.running;
  if (unfinished === 0 && c.failed + c.skipped > 0) return 'failed';
  if (runEnded) return c.failed + c.skipped > 0 ? 'failed' : 'stopped';
  return c.succeeded + c.running + c.failed + c.skipped > 0 ? 'running' : 'pending';
}

/** Statuses that mean an attempt is over for good with this outcome. */
const FAILED_STATUSES: ReadonlySet<AgentStatus> = new Set(['failed', 'timed_out']);

/**
 * Executes (or resumes) a run that already exists in the store, to its end. Resolves with the
 * final run record. Tasks whose latest succeeded record carries their current key are reused.
 */
export async function ownRun(opts: OwnerOptions): Promise<RunRecord> {
  const store = await RunStore.open(opts.root, opts.runId);
  const stopCtl = new AbortController();
  const stop = (r: StopReason) => {
    if (!stopCtl.signal.aborted) stopCtl.abort(r);
  };
  const lease: Lease = await acquireLease(store.dir, {
    ...(opts.leaseTtlMs ? { ttlMs: opts.leaseTtlMs } : {}),
    onLost: () => stop({ kind: 'lease_lost' }),
  });
  const timers: NodeJS.Timeout[] = [];
  const onOuter = () => stop({ kind: 'stop', by: describeReason(opts.signal?.reason) });
  try {
    const before = await store.readRun();
    const plan = opts.plan ?? before.plan;
    const { records } = await store.listAgentRecords();
    const events = await store.readEvents();
    const resuming = records.length > 0 || events.some((e: RunEvent) => e.type === 'run.started');
    // A stop asked of an earlier owner must not stop this one.
    await store.clearControl();

    const latest = new Map<string, AgentRecord>();
    const maxAttempt = new Map<string, number>();
    for (const r of records) {
      const ref = `${r.phaseId}/${r.taskId}`;
      maxAttempt.set(ref, Math.max(maxAttempt.get(ref) ?? 0, r.attempt));
      const prev = latest.get(ref);
      // Reuse only a succeeded record whose key matches the task as planned now.
      if (r.status === 'succeeded' && (!prev || prev.attempt < r.attempt)) latest.set(ref, r);
    }
    const taskByRef = new Map(plan.tasks.map((t) => [t.ref, t]));
    const done = new Set<string>();
    for (const t of plan.tasks) {
      const rec = latest.get(t.ref);
      if (rec && rec.key === t.key) done.add(t.ref);
    }

    const state = new Map<string, TaskState>(plan.tasks.map((t) => [t.ref, done.has(t.ref) ? 'succeeded' : 'pending']));
    const running = new Map<string, { ref: string; attempt: number; startedAt: number }>();
    const segmentStart = Date.now();
    const priorElapsed = resuming ? before.elapsedMs : 0;
    const inputs = new TaskInputs(store, plan, latestFiles(records, done));

    let status: RunStatus = 'running';
    let reason: string | undefined;
    const snapshot = (): Snapshot => {
      const phases = phaseStates(plan, state, status !== 'running');
      return {
        runId: store.runId,
        name: plan.name,
        status,
        phases,
        totals: countStates(state.values()),
        running: [...running.values()],
        elapsedMs: priorElapsed + (Date.now() - segmentStart),
        ...(reason ? { reason } : {}),
      };
    };
    const record = (): RunRecord => {
      const s = snapshot();
      return {
        ...before,
        schemaVersion: SCHEMA_VERSION,
        plan,
        status,
        ...(reason ? { reason } : { reason: undefined }),
        startedAt: resuming ? before.startedAt : now(),
        ...(status !== 'running' ? { endedAt: now() } : { endedAt: undefined }),
        elapsedMs: s.elapsedMs,
        resumes: before.resumes + (resuming ? 1 : 0),
        phases: s.phases,
        totals: s.totals,
        updatedAt: now(),
      };
    };

    // run.json is rewritten whole on each write, so writes are coalesced: at most one per interval.
    let persistTimer: NodeJS.Timeout | undefined;
    let persisting: Promise<void> = Promise.resolve();
    const persistNow = () => {
      if (persistTimer) clearTimeout(persistTimer);
      persistTimer = undefined;
      const rec = record();
      persisting = persisting.then(() => store.writeRun(rec)).catch((e) => warn(`cannot write run.json: ${errText(e)}`));
      return persisting;
    };
    const changed = () => {
      opts.onProgress?.(snapshot());
      if (!persistTimer) persistTimer = setTimeout(persistNow, opts.persistEveryMs ?? 250);
    };

    const journal = (e: RunEvent) => store.appendEvent(e);
    if (resuming) {
      await journal({ type: 'run.resumed', t: now(), runId: store.runId, reused: done.size, toRun: plan.tasks.length - done.size, resumes: before.resumes + 1 });
      for (const ref of done) {
        const file = inputs.fileOf(ref);
        if (file) await journal({ type: 'agent.reused', t: now(), ref, key: taskByRef.get(ref)!.key, file });
      }
    } else {
      await journal({ type: 'run.started', t: now(), runId: store.runId, name: plan.name, agentCount: plan.agentCount });
    }
    await persistNow();

    // Stop requests: the caller's signal (Ctrl-C), control.json from any session, the run timeout.
    if (opts.signal?.aborted) onOuter();
    else opts.signal?.addEventListener('abort', onOuter, { once: true });
    timers.push(setInterval(() => {
      store.readControl().then((c) => {
        if (c?.request === 'stop') stop({ kind: 'stop', by: `pid ${c.by.pid} on ${c.by.host}` });
      }, () => {});
    }, opts.controlPollMs ?? 500));
    timers.push(setTimeout(() => stop({ kind: 'timeout', afterMs: plan.limits.runTimeoutMs }), plan.limits.runTimeoutMs));
    stopCtl.signal.addEventListener('abort', () => {
      const r = stopCtl.signal.reason as StopReason;
      if (r.kind === 'stop') void journal({ type: 'run.stop_requested', t: now(), by: r.by });
    }, { once: true });

    const phaseStarted = new Set<string>();
    const runnerFor = opts.runners ?? getRunner;
    const sched = await runDag({
      tasks: plan.tasks as SchedTask[],
      done,
      maxConcurrent: plan.limits.maxConcurrent,
      retries: plan.limits.retries,
      backoffMs: plan.limits.retryBackoffMs,
      onFailure: (phaseId) => plan.phases.find((p) => p.id === phaseId)?.onFailure ?? 'stop',
      firstAttempt: (ref) => (maxAttempt.get(ref) ?? 0) + 1,
      signal: stopCtl.signal,
      hooks: {
        onDispatch(task, attempt) {
          state.set(task.ref, 'running');
          running.set(task.ref, { ref: task.ref, attempt, startedAt: Date.now() });
          if (!phaseStarted.has(task.phaseId)) {
            phaseStarted.add(task.phaseId);
            void journal({ type: 'phase.started', t: now(), phaseId: task.phaseId });
          }
          changed();
        },
        onAttemptEnd(task, _attempt, outcome) {
          running.delete(task.ref);
          state.set(task.ref, outcome.status === 'succeeded' ? 'succeeded' : 'pending');
          changed();
        },
        onRetry(task, attempt, delayMs, cause) {
          void journal({ type: 'agent.retry_scheduled', t: now(), ref: task.ref, attempt, delayMs, cause });
        },
        async onSkip(task, cause) {
          state.set(task.ref, 'skipped');
          const t = taskByRef.get(task.ref)!;
          const attempt = (maxAttempt.get(task.ref) ?? 0) + 1;
          maxAttempt.set(task.ref, attempt);
          const at = now();
          const file = await store.writeAgentRecord(skippedRecord(store.runId, plan, t, attempt, cause, at));
          await journal({ type: 'agent.skipped', t: at, ref: task.ref, cause, file });
          changed();
        },
      },
      execute: async (task, { attempt, slot, signal }) => {
        const t = taskByRef.get(task.ref)!;
        const agent = plan.agents[t.agent]!;
        const prepared = await inputs.prepare(t, attempt);
        const startedAt = new Date();
        await journal({ type: 'agent.started', t: startedAt.toISOString(), ref: t.ref, key: t.key, attempt, slot });
        let result: RunnerResult;
        try {
          result = await runnerFor(agent.runner).run({
            runId: store.runId,
            phaseId: t.phaseId,
            taskId: t.taskId,
            attempt,
            prompt: prepared.prompt,
            agent,
            cwd: before.cwd,
            promptFile: prepared.promptFile,
            contextFile: prepared.contextFile,
            timeoutMs: plan.limits.agentTimeoutMs,
            maxOutputBytes: plan.limits.maxOutputBytes,
            signal,
          });
        } catch (e) {
          // A runner should never throw; if one does, it is this task's failure, not the run's.
          result = {
            status: 'failed', output: '', outputBytes: 0, truncated: false, exitCode: null, signal: null, stderrTail: '',
            error: { type: 'runner_error', message: `runner '${agent.runner}' threw: ${errText(e)}`, retryable: false },
          };
        }
        const endedAt = new Date();
        const rec: AgentRecord = {
          schemaVersion: SCHEMA_VERSION,
          runId: store.runId,
          phaseId: t.phaseId,
          taskId: t.taskId,
          key: t.key,
          attempt,
          status: result.status,
          agent: t.agent,
          runner: agent.runner,
          prompt: prepared.prompt,
          output: result.output,
          outputBytes: result.outputBytes,
          truncated: result.truncated,
          exitCode: result.exitCode,
          signal: result.signal,
          stderrTail: result.stderrTail,
          startedAt: startedAt.toISOString(),
          endedAt: endedAt.toISOString(),
          durationMs: endedAt.getTime() - startedAt.getTime(),
          ...(result.error ? { error: result.error } : {}),
          ...(result.structured !== undefined ? { structured: result.structured } : {}),
          ...(result.usage ? { usage: result.usage } : {}),
          ...(result.costUsd !== undefined ? { costUsd: result.costUsd } : {}),
          ...(result.sessionId ? { sessionId: result.sessionId } : {}),
        };
        const file = await store.writeAgentRecord(rec);
        if (rec.status === 'succeeded') inputs.recordFile(t.ref, file);
        await journal({ type: 'agent.finished', t: rec.endedAt, ref: t.ref, key: t.key, attempt, status: rec.status, durationMs: rec.durationMs, file });
        const outcome: AttemptOutcome = {
          status: rec.status === 'skipped' ? 'failed' : rec.status,
          retryable: rec.error?.retryable ?? false,
          ...(rec.error ? { cause: rec.error.message } : {}),
        };
        return outcome;
      },
    });

    // Final states: failed attempts that will not be retried are `failed`; cancelled/not_run stay pending.
    for (const [ref, f] of sched.final) {
      if (f === 'failed') state.set(ref, 'failed');
      else if (f === 'skipped') state.set(ref, 'skipped');
      else if (f !== 'succeeded') state.set(ref, 'pending');
    }
    const stopReason = stopCtl.signal.aborted ? (stopCtl.signal.reason as StopReason) : undefined;
    if (stopReason?.kind === 'lease_lost') {
      // Another owner has the run now: write nothing more.
      throw new Error(`engine: lost the lease of run '${store.runId}' to another owner; stopped without writing`);
    }
    const totals = countStates(state.values());
    if (stopReason?.kind === 'stop') {
      status = 'stopped';
      reason = `stopped by ${stopReason.by}; ${totals.succeeded}/${totals.total} tasks succeeded`;
    } else if (stopReason?.kind === 'timeout') {
      status = 'failed';
      reason = `run timeout: limits.runTimeout of ${fmtMs(stopReason.afterMs)} reached; ${totals.succeeded}/${totals.total} tasks succeeded`;
    } else if (totals.failed > 0 || totals.skipped > 0 || totals.succeeded < totals.total) {
      status = 'failed';
      const firstFailed = [...state].find(([, s]) => s === 'failed')?.[0];
      reason = `${totals.failed} task(s) failed, ${totals.skipped} skipped` +
        (sched.halted?.by === 'failure' ? `; stopped dispatching after ${sched.halted.cause}` : firstFailed ? `; first: ${firstFailed}` : '');
    } else {
      status = 'completed';
    }
    for (const p of phaseStates(plan, state, true)) {
      await journal({ type: 'phase.finished', t: now(), phaseId: p.id, status: p.status });
    }
    const finalRecord = record();
    await persisting;
    if (persistTimer) clearTimeout(persistTimer);
    persistTimer = undefined;
    await store.writeRun(finalRecord);
    await journal({ type: 'run.finished', t: now(), status, ...(reason ? { reason } : {}), elapsedMs: finalRecord.elapsedMs });
    opts.onProgress?.(snapshot());
    return finalRecord;
  } finally {
    for (const t of timers) clearTimeout(t);
    opts.signal?.removeEventListener('abort', onOuter);
    await lease.release().catch(() => {});
    await store.close();
  }
}

/** Per-phase states from task states. */
export function phaseStates(plan: Plan, state: Map<string, TaskState>, runEnded: boolean): PhaseState[] {
  return plan.phases.map((p) => {
    const counts = countStates(p.taskRefs.map((r) => state.get(r) ?? 'pending'));
    return { id: p.id, status: phaseStatus(counts, runEnded), counts };
  });
}

function latestFiles(records: AgentRecord[], done: Set<string>): Map<string, string> {
  const files = new Map<string, { attempt: number; file: string }>();
  for (const r of records) {
    const ref = `${r.phaseId}/${r.taskId}`;
    if (!done.has(ref) || r.status !== 'succeeded') continue;
    const prev = files.get(ref);
    if (!prev || prev.attempt < r.attempt) files.set(ref, { attempt: r.attempt, file: `${r.phaseId}.${r.taskId}.${r.attempt}.json` });
  }
  return new Map([...files].map(([k, v]) => [k, v.file]));
}

function skippedRecord(runId: string, plan: Plan, t: PlanTask, attempt: number, cause: string, at: string): AgentRecord {
  return {
    schemaVersion: SCHEMA_VERSION,
    runId,
    phaseId: t.phaseId,
    taskId: t.taskId,
    key: t.key,
    attempt,
    status: 'skipped',
    agent: t.agent,
    runner: plan.agents[t.agent]?.runner ?? 'unknown',
    prompt: t.prompt,
    output: '',
    outputBytes: 0,
    truncated: false,
    exitCode: null,
    signal: null,
    stderrTail: '',
    startedAt: at,
    endedAt: at,
    durationMs: 0,
    error: { type: 'dependency_failed', message: cause, retryable: false },
  };
}

function describeReason(r: unknown): string {
  if (typeof r === 'string') return r;
  if (r && typeof r === 'object' && 'by' in r) return String((r as { by: unknown }).by);
  return `a signal to pid ${process.pid} on ${os.hostname()}`;
}

/** `90s`, `10m`, `1h` style rendering of a duration. */
export function fmtMs(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${+(ms / 1000).toFixed(1)}s`;
  if (ms < 3_600_000) return `${+(ms / 60_000).toFixed(1)}m`;
  return `${+(ms / 3_600_000).toFixed(1)}h`;
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function warn(msg: string) {
  process.stderr.write(`fanfold: ${msg}\n`);
}

export { FAILED_STATUSES };
