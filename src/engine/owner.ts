/**
 * The run owner: the one process that executes a run. It holds the lease, is the only writer of
 * run.json, the journal and the agent files, and turns the scheduler's moves into durable records
 * in the order the durability contract asks: journal `agent.started` → agent file (atomic) →
 * journal `agent.finished`.
 */
import { setMaxListeners } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import type { Plan, PlanTask, RunnerKind } from '../spec/types.js';
import type { AgentRecord, AttemptSummary, Counts, DynamicState, PhaseState, PhaseStatus, RunEvent, RunRecord, RunStatus } from '../store/types.js';
import { SCHEMA_VERSION } from '../store/types.js';
import { RunStore, acquireLease, type Lease } from '../store/index.js';
import { getRunner } from '../runners/index.js';
import type { Runner, RunnerResult } from '../runners/types.js';
import { runDag, type AttemptOutcome, type SchedTask } from './scheduler.js';
import { TaskInputs } from './inputs.js';
import { PhaseDigests } from './digests.js';
import { killLeftovers, procStartTicks } from './leftovers.js';
import { writeReports } from './reports.js';
import { RunIndex } from '../search/index.js';
import { Dynamics, staticPlan } from './dynamic.js';
import { isVirtualRef } from '../spec/normalize.js';
import { applyPatches, cleanupWorktrees, collectPatch, createWorktree, gitTopLevel, removeWorktree, type Worktree } from './worktree.js';

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
  runners?: (kind: RunnerKind) => Runner;
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

/**
 * Executes (or resumes) a run that already exists in the store, to its end. Resolves with the
 * final run record. Tasks whose latest succeeded record carries their current key are reused.
 */
export async function ownRun(opts: OwnerOptions): Promise<RunRecord> {
  const store = await RunStore.open(opts.root, opts.runId);
  const stopCtl = new AbortController();
  // Every running attempt, back-off sleep and summarizer listens on this signal; the pool cap (≤ 16)
  // bounds them, but Node's default warning threshold is 10.
  setMaxListeners(256, stopCtl.signal);
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
    // Tasks made at run time are made again from the stored answers (the same keys), so a resume
    // starts from the plan as written.
    const plan = staticPlan(opts.plan ?? before.plan);
    // Tolerant read: a damaged journal line must not stop a resume (agent files are the truth).
    const { events } = await store.readJournal();
    // What each attempt on disk came to, mostly from the journal: resume reads few agent files.
    const { attempts: records } = await store.census(events);
    for (const k of killLeftovers(events)) {
      warn(`killed agent ${k.ref} (attempt ${k.attempt}, process group ${k.pid}) left running by a dead owner of run ${store.runId}`);
    }
    const resuming = records.length > 0 || events.some((e: RunEvent) => e.type === 'run.started');
    // Worktrees of attempts a dead owner left behind: no agent runs in them any more.
    const worktreesDir = path.join(store.dir, 'worktrees');
    const repo = plan.phases.some((p) => p.dynamic?.merge) ? await gitTopLevel(before.cwd) : undefined;
    if (repo && existsSync(worktreesDir)) {
      for (const dir of await cleanupWorktrees(repo, worktreesDir).catch(() => [])) warn(`removed worktree ${dir} left by an earlier owner`);
    }
    // A stop asked of an earlier owner must not stop this one.
    await store.clearControl();

    const taskByRef = new Map(plan.tasks.map((t) => [t.ref, t]));
    const maxAttempt = new Map<string, number>();
    /** Latest attempt, and latest succeeded attempt, per ref among records whose key matches the task as planned now. */
    const latestCurrent = new Map<string, AttemptSummary>();
    const latestSucceeded = new Map<string, AttemptSummary>();
    const newer = (m: Map<string, AttemptSummary>, ref: string, r: AttemptSummary) => {
      const prev = m.get(ref);
      if (!prev || prev.attempt < r.attempt) m.set(ref, r);
    };
    /** Latest succeeded record per ref and key: what a task made at run time may reuse. */
    const succeededByKey = new Map<string, AttemptSummary>();
    for (const r of records) {
      const ref = `${r.phaseId}/${r.taskId}`;
      maxAttempt.set(ref, Math.max(maxAttempt.get(ref) ?? 0, r.attempt));
      if (r.status === 'succeeded') newer(succeededByKey, `${ref}\0${r.key}`, r);
      if (taskByRef.get(ref)?.key !== r.key) continue;
      newer(latestCurrent, ref, r);
      if (r.status === 'succeeded') newer(latestSucceeded, ref, r);
    }
    const fileOf = (r: AttemptSummary) => r.file;
    // Reuse a task only when a succeeded record carries its current key.
    const done = new Set(latestSucceeded.keys());
    const succeededFile = new Map([...latestSucceeded].map(([ref, r]) => [ref, fileOf(r)]));
    // For digests: the succeeded attempt when there is one, else the latest.
    const latestFile = new Map([...latestCurrent].map(([ref, r]) => [ref, fileOf(r)]));
    for (const [ref, f] of succeededFile) latestFile.set(ref, f);

    /** Why the last attempt of a task was refused, when the next attempt should be told. */
    const feedback = new Map<string, string>();
    /** Files of refused attempts whose reasons are read when the task runs again. */
    const feedbackFrom = new Map<string, string>();
    const spend = new Spend(plan.limits.budget);
    for (const r of records) spend.account(r);

    const state = new Map<string, TaskState>(plan.tasks.map((t) => [t.ref, done.has(t.ref) ? 'succeeded' : 'pending']));
    const running = new Map<string, { ref: string; attempt: number; startedAt: number }>();
    const segmentStart = Date.now();
    const startedAt = resuming ? before.startedAt : new Date(segmentStart).toISOString();
    const priorElapsed = resuming ? before.elapsedMs : 0;
    const phaseById = new Map(plan.phases.map((p) => [p.id, p]));
    /** Final state of the virtual nodes (a dynamic phase has ended when its end node has). */
    const virtualFinal = new Map<string, string>();
    const phaseEnded = (phaseId: string) => {
      const d = phaseById.get(phaseId)?.dynamic;
      if (d) return virtualFinal.has(d.done);
      return (phaseById.get(phaseId)?.taskRefs ?? []).every((r) => {
        const s = state.get(r);
        return s === 'succeeded' || s === 'failed' || s === 'skipped';
      });
    };
    const digestText = new Map<string, string>();
    const digests = new PhaseDigests({
      store, plan, cwd: before.cwd, latestFile, runners: opts.runners ?? getRunner, signal: stopCtl.signal,
      include: (ref) => { const k = taskByRef.get(ref)?.origin?.kind; return k !== 'skeptic' && k !== 'check'; },
      note: (phaseId) => dyn.digestNote(phaseId),
      view: (rec) => dyn.withoutRefuted(rec),
      onReady: (phaseId, d) => {
        digestText.set(phaseId, d);
        changed();
      },
    });
    // A digest exists only for a phase that has ended; later phases read it in their prompts.
    const inputs = new TaskInputs(store, plan, succeededFile, async (p) => (phaseEnded(p) ? digests.get(p) : undefined),
      (ref) => dyn.outputsOf(ref.slice(0, ref.indexOf('/'))), (rec) => dyn.withoutRefuted(rec));
    const phaseTitles = Object.fromEntries(plan.phases.map((p) => [p.id, p.title]));
    // The search index opens only once the first agent is on its way: loading or rebuilding it
    // runs on this event loop, and must never delay the first dispatch of a resume (bench B4).
    let indexP: Promise<RunIndex | undefined> | undefined;
    const index = () =>
      (indexP ??= RunIndex.open({
        indexFile: path.join(store.dir, 'index.json'),
        runId: store.runId,
        loadRecords: async () => (await store.listAgentRecords()).records,
        phaseTitles,
        saveRebuilt: true,
      }).catch((e) => {
        warn(`search index unavailable for run ${store.runId}: ${errText(e)}`);
        return undefined;
      }));
    const indexRecord = (rec: AgentRecord) =>
      void index().then((ix) => {
        if (!ix) return;
        ix.add(rec, phaseTitles[rec.phaseId]);
        ix.saveDebounced();
      });

    const stepCause = new Map<string, string>();
    /** Tasks made at run time that an earlier owner recorded, by phase (they keep their room). */
    const recorded = new Map<string, Set<string>>();
    for (const r of records) {
      const ref = `${r.phaseId}/${r.taskId}`;
      if (taskByRef.has(ref) || !phaseById.get(r.phaseId)?.dynamic) continue;
      (recorded.get(r.phaseId) ?? recorded.set(r.phaseId, new Set()).get(r.phaseId)!).add(ref);
    }
    const DECISIONS = new Set(['verify.verdict', 'gate.checked', 'converge.round', 'merge.applied', 'merge.conflict', 'phase.expanded']);
    const signature = (e: RunEvent) => JSON.stringify({ ...e, t: undefined });
    const decidedBefore = new Set(events.filter((e) => DECISIONS.has(e.type)).map(signature));
    const replayed = (e: RunEvent) =>
      (e.type === 'phase.expanded' && e.made > 0 && e.made === e.reused) || (DECISIONS.has(e.type) && decidedBefore.has(signature(e)));
    const mergedBefore = new Set(events.flatMap((e) => (e.type === 'merge.applied' ? [e.ref] : [])));
    const recordCache = new Map<string, AgentRecord>();
    const dyn: Dynamics = new Dynamics({
      plan,
      async record(ref) {
        const file = inputs.fileOf(ref);
        if (!file) return undefined;
        const hit = recordCache.get(file);
        if (hit) return hit;
        const rec = await store.readAgentRecord(file);
        recordCache.set(file, rec);
        return rec;
      },
      addTasks(tasks) {
        const reused = new Set<string>();
        const lines: { ref: string; key: string; file: string }[] = [];
        for (const t of tasks) {
          plan.tasks.push(t);
          taskByRef.set(t.ref, t);
          phaseById.get(t.phaseId)!.taskRefs.push(t.ref);
          const rec = succeededByKey.get(`${t.ref}\0${t.key}`);
          if (rec) {
            const file = fileOf(rec);
            reused.add(t.ref);
            state.set(t.ref, 'succeeded');
            latestFile.set(t.ref, file);
            inputs.recordFile(t.ref, file);
            lines.push({ ref: t.ref, key: t.key, file });
          } else {
            state.set(t.ref, 'pending');
            const last = records.filter((r) => r.key === t.key && `${r.phaseId}/${r.taskId}` === t.ref).sort((a, b) => b.attempt - a.attempt)[0];
            if (last?.errorType === 'invalid_structured_output') feedbackFrom.set(t.ref, last.file);
          }
        }
        if (lines.length > 0) void journal({ type: 'agent.reused', t: now(), tasks: lines });
        changed();
        return reused;
      },
      room: () => plan.limits.maxAgents - plan.tasks.length,
      // Replayed steps decide what they decided before: their events are journaled once.
      journal: (e) => (replayed(e) ? Promise.resolve() : journal(e)),
      update: () => changed(),
      applyPatches: (items, onApplied) => applyPatches(before.cwd, items, { onApplied }),
      mergedBefore,
      recorded,
      ended: (ref) => virtualFinal.has(ref) && ref.endsWith('/_done'),
    });

    let status: RunStatus = 'running';
    let reason: string | undefined;
    const snapshot = (): Snapshot => {
      const dynStates = dyn.states();
      const phases = phaseStates(plan, state, status !== 'running', virtualFinal, dynStates).map((p) => {
        const d = digestText.get(p.id);
        const ds = dynStates.get(p.id);
        return { ...p, ...(d === undefined ? {} : { digest: d }), ...(ds && Object.keys(ds).length > 0 ? { dynamic: ds } : {}) };
      });
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
        startedAt,
        ...(status !== 'running' ? { endedAt: now() } : { endedAt: undefined }),
        elapsedMs: s.elapsedMs,
        resumes: before.resumes + (resuming ? 1 : 0),
        phases: s.phases,
        totals: s.totals,
        spend: spend.total(),
        updatedAt: now(),
      };
    };

    // run.json is rewritten whole on each write, so writes are coalesced: at most one per interval.
    let persistTimer: NodeJS.Timeout | undefined;
    let persisting: Promise<void> = Promise.resolve();
    // Set once the run's end is decided: from then on run.json is written once, last (see below).
    let ending = false;
    const persistNow = () => {
      if (persistTimer) clearTimeout(persistTimer);
      persistTimer = undefined;
      if (ending) return persisting;
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
      const tasks = [...done].map((ref) => ({ ref, key: taskByRef.get(ref)!.key, file: inputs.fileOf(ref)! })).filter((x) => x.file);
      if (tasks.length > 0) await journal({ type: 'agent.reused', t: now(), tasks });
    } else {
      await journal({ type: 'run.started', t: now(), runId: store.runId, name: plan.name, agentCount: plan.agentCount });
    }
    await persistNow();

    // Stop requests: the caller's signal (Ctrl-C), control.json from any session, the run timeout.
    if (opts.signal?.aborted) onOuter();
    else opts.signal?.addEventListener('abort', onOuter, { once: true });
    timers.push(setInterval(() => {
      store.readControl().then((c) => {
        if (c?.request === 'stop') stop({ kind: 'stop', by: `fanfold stop (pid ${c.by.pid} on ${c.by.host})` });
      }, () => {});
    }, opts.controlPollMs ?? 500));
    timers.push(setTimeout(() => stop({ kind: 'timeout', afterMs: plan.limits.runTimeoutMs }), plan.limits.runTimeoutMs));
    stopCtl.signal.addEventListener('abort', () => {
      const r = stopCtl.signal.reason as StopReason;
      if (r.kind === 'stop') void journal({ type: 'run.stop_requested', t: now(), by: r.by });
    }, { once: true });

    const phaseStarted = new Set<string>();
    const phaseFinished = new Set<string>();
    for (const r of latestCurrent.values()) {
      if (r.errorType === 'invalid_structured_output') feedbackFrom.set(`${r.phaseId}/${r.taskId}`, r.file);
    }
    const runnerFor = opts.runners ?? getRunner;
    const sched = await runDag({
      tasks: [...(plan.tasks as SchedTask[]), ...dyn.initialNodes()],
      done,
      maxConcurrent: plan.limits.maxConcurrent,
      retries: plan.limits.retries,
      backoffMs: plan.limits.retryBackoffMs,
      onFailure: (phaseId) => plan.phases.find((p) => p.id === phaseId)?.onFailure ?? 'stop',
      firstAttempt: (ref) => (maxAttempt.get(ref) ?? 0) + 1,
      signal: stopCtl.signal,
      admit: () => spend.admit(running.size),
      hooks: {
        onDispatch(task, attempt) {
          if (task.virtual) return;
          if (!indexP) setImmediate(index);
          state.set(task.ref, 'running');
          running.set(task.ref, { ref: task.ref, attempt, startedAt: Date.now() });
          if (!phaseStarted.has(task.phaseId)) {
            phaseStarted.add(task.phaseId);
            void journal({ type: 'phase.started', t: now(), phaseId: task.phaseId });
          }
          changed();
        },
        onAttemptEnd(task) {
          if (task.virtual) return;
          running.delete(task.ref);
          if (state.get(task.ref) === 'running') state.set(task.ref, 'pending');
          changed();
        },
        onFinal(task, f) {
          if (task.virtual) {
            if (task.ref.endsWith('/_done') || f !== 'succeeded') virtualFinal.set(task.ref, f);
          } else {
            state.set(task.ref, f === 'succeeded' || f === 'failed' || f === 'skipped' ? f : 'pending');
          }
          const phase = phaseById.get(task.phaseId);
          // Extractive digests are cheap: compute them as soon as a phase ends. A summarizer agent
          // runs later, in the slot of a task that needs it or after the pool has drained.
          if (phase && !phase.summarize && phaseEnded(phase.id) && !digests.started(phase.id)) void digests.get(phase.id).catch(() => {});
          // The journal says when each phase ended, not only when the run did (timelines read it).
          if (phase && !phaseFinished.has(phase.id) && phaseEnded(phase.id)) {
            phaseFinished.add(phase.id);
            const st = phaseStates({ ...plan, phases: [phase] }, state, false, virtualFinal, dyn.states())[0]!;
            void journal({ type: 'phase.finished', t: now(), phaseId: phase.id, status: st.status });
          }
          changed();
        },
        onGrowDropped(g) {
          // Made but never added to the graph: they leave the plan again, so nothing waits on them
          // as pending and they take no room under limits.maxAgents.
          const gone = new Set(g.tasks.filter((t) => !t.virtual).map((t) => t.ref));
          if (gone.size === 0) return;
          plan.tasks = plan.tasks.filter((t) => !gone.has(t.ref));
          for (const p of plan.phases) p.taskRefs = p.taskRefs.filter((r) => !gone.has(r));
          for (const ref of gone) {
            taskByRef.delete(ref);
            state.delete(ref);
          }
          changed();
        },
        onRetry(task, attempt, delayMs, cause) {
          void journal({ type: 'agent.retry_scheduled', t: now(), ref: task.ref, attempt, delayMs, cause });
        },
        async onSkip(task, cause) {
          const t = taskByRef.get(task.ref)!;
          const attempt = (maxAttempt.get(task.ref) ?? 0) + 1;
          maxAttempt.set(task.ref, attempt);
          const at = now();
          const rec = skippedRecord(store.runId, plan, t, attempt, cause, at);
          const file = store.agentFileName(t.phaseId, t.taskId, attempt);
          await store.writeAgentRecord(rec);
          latestFile.set(t.ref, file);
          indexRecord(rec);
          await journal({ type: 'agent.skipped', t: at, ref: task.ref, cause, file });
        },
      },
      execute: async (task, { attempt, slot, signal }) => {
        if (task.virtual) {
          const out = await dyn.run(task);
          if (out.status !== 'succeeded' && out.cause) stepCause.set(task.ref, out.cause);
          return out;
        }
        const t = taskByRef.get(task.ref)!;
        const agent = plan.agents[t.agent]!;
        const earlier = feedbackFrom.get(t.ref);
        if (earlier !== undefined && !feedback.has(t.ref)) {
          const old = await store.readAgentRecord(earlier).catch(() => undefined);
          if (old?.error) feedback.set(t.ref, old.error.message);
        }
        feedbackFrom.delete(t.ref);
        const prepared = await inputs.prepare(t, attempt, feedback.get(t.ref));
        const startedAt = new Date();
        await journal({ type: 'agent.started', t: startedAt.toISOString(), ref: t.ref, key: t.key, attempt, slot });
        let result: RunnerResult;
        let wt: Worktree | undefined;
        let patch: AgentRecord['patch'];
        try {
          if (t.isolation === 'worktree') {
            wt = await createWorktree({ cwd: before.cwd, dir: path.join(worktreesDir, `${t.phaseId}.${t.taskId}.${attempt}`), signal });
          }
          result = await runnerFor(agent.runner).run({
            runId: store.runId,
            phaseId: t.phaseId,
            taskId: t.taskId,
            attempt,
            prompt: prepared.prompt,
            agent,
            cwd: wt ? wt.cwd : before.cwd,
            promptFile: prepared.promptFile,
            contextFile: prepared.contextFile,
            timeoutMs: plan.limits.agentTimeoutMs,
            maxOutputBytes: plan.limits.maxOutputBytes,
            signal,
            onSpawn: (pid) => {
              const startTicks = procStartTicks(pid);
              void journal({ type: 'agent.spawned', t: now(), ref: t.ref, attempt, pid, ...(startTicks !== undefined ? { startTicks } : {}) });
            },
            ...(t.schema ? { schema: t.schema } : {}),
            ...(spend.remainingUsd() !== undefined ? { maxBudgetUsd: spend.remainingUsd()! } : {}),
            // Agents that speak MCP and build on earlier phases may look those outputs up (read-only).
            ...((agent.runner === 'claude' || agent.runner === 'codex') && t.deps.length > 0 ? { mcp: childServer(opts.root) } : {}),
          });
          if (wt) patch = await collectPatch(wt, { maxBytes: 8 * 1024 * 1024 });
        } catch (e) {
          // A runner should never throw; if one does, it is this task's failure, not the run's.
          const isolation = e instanceof Error && e.name === 'IsolationError';
          result = {
            status: 'failed', output: '', outputBytes: 0, truncated: false, exitCode: null, signal: null, stderrTail: '',
            error: isolation
              ? { type: 'isolation', message: errText(e), retryable: (e as { retryable?: boolean }).retryable ?? false }
              : { type: 'runner_error', message: `runner '${agent.runner}' threw: ${errText(e)}`, retryable: false },
          };
        } finally {
          if (wt) await removeWorktree(wt.repo, wt.dir).catch((e) => warn(`cannot remove worktree ${wt!.dir}: ${errText(e)}`));
        }
        // A gate's command that ran and exited has done its job: its exit code is the gate's
        // verdict, read by the gate step; only a check that could not run (timeout, missing
        // command) is a failed task.
        if (t.origin?.kind === 'check' && result.status === 'failed' && result.error?.type === 'exit_code') {
          const { error: _verdict, ...rest } = result;
          result = { ...rest, status: 'succeeded' };
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
          ...(patch ? { patch } : {}),
        };
        const file = await store.writeAgentRecord(rec);
        spend.account(rec);
        // Invalid structured output is retried with the validation errors fed back (bounded by retries).
        if (rec.error?.type === 'invalid_structured_output') feedback.set(t.ref, rec.error.message);
        else feedback.delete(t.ref);
        latestFile.set(t.ref, file);
        if (rec.status === 'succeeded') inputs.recordFile(t.ref, file);
        indexRecord(rec);
        await journal({
          type: 'agent.finished', t: rec.endedAt, ref: t.ref, key: t.key, attempt, status: rec.status, durationMs: rec.durationMs, file,
          census: { ...(rec.costUsd !== undefined ? { costUsd: rec.costUsd } : {}), ...(rec.usage ? { usage: rec.usage } : {}), ...(rec.error ? { errorType: rec.error.type } : {}) },
        });
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
      if (isVirtualRef(ref)) continue; // steps of dynamic phases are not agents
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
    // A step of a dynamic phase that failed (a gate out of iterations, no room under maxAgents) ends
    // the run failed with its cause, whatever the tasks did.
    const dynFailure = [...sched.final].filter(([ref, f]) => f === 'failed' && isVirtualRef(ref)).map(([ref]) => stepCause.get(ref) ?? `${ref} failed`)[0];
    const conflicts = [...dyn.states().values()].flatMap((d) => d.merge?.conflicts.map((c) => c.ref) ?? []);
    const unfinishedPhase = plan.phases.find((p) => p.dynamic && sched.final.get(p.dynamic.done) !== 'succeeded');
    ending = true;
    if (stopReason?.kind === 'stop') {
      status = 'stopped';
      reason = `stopped by ${stopReason.by}; ${totals.succeeded}/${totals.total} tasks succeeded`;
    } else if (sched.halted?.by === 'refused') {
      status = 'budget_exhausted';
      reason = `${sched.halted.cause}; ${totals.succeeded}/${totals.total} tasks succeeded, every output kept; raise limits.budget and resume to go on`;
    } else if (stopReason?.kind === 'timeout') {
      status = 'failed';
      reason = `run timeout: limits.runTimeout of ${fmtMs(stopReason.afterMs)} reached; ${totals.succeeded}/${totals.total} tasks succeeded`;
    } else if (dynFailure !== undefined) {
      status = 'failed';
      reason = `${dynFailure}; ${totals.succeeded}/${totals.total} tasks succeeded`;
    } else if (conflicts.length > 0) {
      // Work whose patch did not apply has not landed: the run is not complete.
      status = 'failed';
      reason = `merge conflicts: the patches of ${conflicts.slice(0, 5).join(', ')}${conflicts.length > 5 ? ` and ${conflicts.length - 5} more` : ''} did not apply; each is kept in its agent record (patch.diff)`;
    } else if (totals.failed > 0 || totals.skipped > 0 || totals.succeeded < totals.total || unfinishedPhase !== undefined) {
      status = 'failed';
      const firstFailed = [...state].find(([, s]) => s === 'failed')?.[0];
      reason = `${totals.failed} task(s) failed, ${totals.skipped} skipped` +
        (sched.halted?.by === 'failure' ? `; stopped dispatching after ${sched.halted.cause}` : firstFailed ? `; first: ${firstFailed}` : '');
    } else {
      status = 'completed';
    }
    // Digests of every phase that produced anything (summarizer agents run now, after the pool).
    for (const p of plan.phases) {
      if (p.taskRefs.some((r) => latestFile.has(r))) await digests.get(p.id).catch((e) => warn(`digest of phase ${p.id}: ${errText(e)}`));
    }
    for (const p of phaseStates(plan, state, true, virtualFinal, dyn.states())) {
      if (!phaseFinished.has(p.id)) await journal({ type: 'phase.finished', t: now(), phaseId: p.id, status: p.status });
    }
    const finalRecord = record();
    await persisting;
    if (persistTimer) clearTimeout(persistTimer);
    persistTimer = undefined;
    const ix = await index();
    await ix?.flush().catch((e) => warn(`cannot save the search index: ${errText(e)}`));
    await writeReports(store, finalRecord).catch((e) => warn(`cannot write the reports: ${errText(e)}`));
    await journal({ type: 'run.finished', t: now(), status, ...(reason ? { reason } : {}), elapsedMs: finalRecord.elapsedMs });
    // run.json is the commit point that readers (status --wait, stop, MCP workflow_status) watch:
    // it says the run ended only once the index, the reports and the journal are all on disk.
    // A crash before this line leaves the run `interrupted`, and resume finishes it.
    await store.writeRun(finalRecord);
    opts.onProgress?.(snapshot());
    return finalRecord;
  } finally {
    for (const t of timers) clearTimeout(t);
    opts.signal?.removeEventListener('abort', onOuter);
    await lease.release().catch(() => {});
    await store.close();
  }
}

/**
 * The run's spend against `limits.budget`. Before each dispatch it answers whether one more agent
 * could cross a ceiling, reserving the expected cost of every agent already running. The expected
 * cost of one agent is the spec's `perAgentUsd`/`perAgentTokens`, else the most any agent of this
 * run has cost so far; before anything is known, agents start one at a time.
 */
export class Spend {
  readonly #budget: Plan['limits']['budget'];
  #usd = 0;
  #tokens = 0;
  #maxUsd: number | undefined;
  #maxTokens: number | undefined;

  constructor(budget: Plan['limits']['budget']) {
    this.#budget = budget;
  }

  /** Adds what one attempt cost. */
  account(r: Pick<AgentRecord, 'costUsd' | 'usage'>): void {
    if (typeof r.costUsd === 'number' && Number.isFinite(r.costUsd)) {
      this.#usd += r.costUsd;
      this.#maxUsd = Math.max(this.#maxUsd ?? 0, r.costUsd);
    }
    if (r.usage) {
      const t = (r.usage.inputTokens ?? 0) + (r.usage.outputTokens ?? 0);
      this.#tokens += t;
      this.#maxTokens = Math.max(this.#maxTokens ?? 0, t);
    }
  }

  /** Dollars left under `limits.budget.usd`, when there is such a ceiling. */
  remainingUsd(): number | undefined {
    return this.#budget?.usd === undefined ? undefined : Math.max(0, this.#budget.usd - this.#usd);
  }

  /** Spend so far. */
  total(): { usd: number; tokens: number } {
    return { usd: Math.round(this.#usd * 1e6) / 1e6, tokens: this.#tokens };
  }

  /** `true`: dispatch; `false`: wait for a running agent; a string: stop, with why. */
  admit(running: number): boolean | string {
    const b = this.#budget;
    if (!b) return true;
    const checks = [
      { ceiling: b.usd, spent: this.#usd, per: b.perAgentUsd ?? this.#maxUsd, fmt: (n: number) => `$${n.toFixed(2)}`, name: 'usd' },
      { ceiling: b.tokens, spent: this.#tokens, per: b.perAgentTokens ?? this.#maxTokens, fmt: (n: number) => `${Math.round(n)} tokens`, name: 'tokens' },
    ];
    for (const c of checks) {
      if (c.ceiling === undefined) continue;
      if (c.spent >= c.ceiling) return `budget spent: ${c.fmt(c.spent)} of limits.budget.${c.name} ${c.fmt(c.ceiling)}`;
      if (c.per === undefined) {
        if (running > 0) return false;
        continue;
      }
      if (c.spent + (running + 1) * c.per > c.ceiling) {
        if (running > 0) return false;
        return `the next agent (≈ ${c.fmt(c.per)}) could cross limits.budget.${c.name} ${c.fmt(c.ceiling)}; spent ${c.fmt(c.spent)}`;
      }
    }
    return true;
  }
}

/**
 * How a sub-agent starts fanfold's read-only MCP server for this store: this very CLI, so the
 * child server matches the owner's version. It offers only workflow_status and query_workflow.
 */
export function childServer(root: string): { command: string; args: string[] } {
  let cli = fileURLToPath(new URL('../cli/main.js', import.meta.url));
  // From the TypeScript sources (tests), the runnable CLI is the built one.
  if (!existsSync(cli)) cli = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
  return { command: process.execPath, args: [cli, 'serve', '--child', '--store', path.resolve(root)] };
}

/** Per-phase states from task states. */
export function phaseStates(plan: Plan, state: Map<string, TaskState>, runEnded: boolean, virtualFinal?: ReadonlyMap<string, string>,
  dynamic?: ReadonlyMap<string, DynamicState>): PhaseState[] {
  return plan.phases.map((p) => {
    const counts = countStates(p.taskRefs.map((r) => state.get(r) ?? 'pending'));
    let status = phaseStatus(counts, runEnded);
    const d = p.dynamic;
    if (d && virtualFinal) {
      // A dynamic phase is done when its end node is: its tasks may all have succeeded while a
      // gate still fails, or it may have made no task at all (no items).
      const f = virtualFinal.get(d.done);
      const failedStep = [...virtualFinal].some(([ref, v]) => ref.startsWith(`${p.id}/_`) && v !== 'succeeded');
      if (f === 'succeeded') status = 'completed';
      else if (failedStep || f !== undefined) status = 'failed';
      else if (status === 'completed') status = runEnded ? 'stopped' : 'running';
      else if (status === 'pending' && counts.total === 0 && runEnded) status = 'stopped';
      // Patches that did not apply: the phase's work has not landed.
      if ((dynamic?.get(p.id)?.merge?.conflicts.length ?? 0) > 0) status = 'failed';
    }
    return { id: p.id, status, counts };
  });
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
