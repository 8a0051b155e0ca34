/**
 * The run owner: the one process that executes a run. It holds the lease, is the only writer of
 * run.json, the journal and the agent files, and turns the scheduler's moves into durable records.
 * This file wires the pieces together; each lives in its own module:
 * - `prior.ts`        what earlier owners left (resume)
 * - `stops.ts`        why a run stops early (Ctrl-C, `fanfold stop`, timeout, lost lease)
 * - `attempt.ts`      one attempt of an agent: inputs, spawn, record, journal order
 * - `run-persist.ts`  run.json: snapshot, record, coalesced writes, the final commit
 * - `phases.ts`       phase bookkeeping (counts and statuses)
 * - `spend.ts`        the budget
 */
import path from 'node:path';
import { existsSync } from 'node:fs';
import type { Plan, RunnerKind } from '../spec/types.js';
import type { AgentRecord, EventOwner, RunEvent, RunRecord, RunStatus, SummarizerRun } from '../store/types.js';
import { summarizerCount } from '../spec/estimate.js';
import { RunStore, isFailedCheck } from '../store/index.js';
import { getRunner, warmBwrapStatus } from '../runners/index.js';
import type { Runner } from '../runners/types.js';
import { runDag, type SchedResult, type SchedTask, type TaskFinal } from './scheduler.js';
import { TaskInputs } from './inputs.js';
import { PhaseDigests } from './digests.js';
import { killLeftovers, spawnedEvent } from './leftovers.js';
import { writeReports } from './reports.js';
import { RunIndex } from '../search/index.js';
import { forSteps } from './outputs.js';
import { Offloader } from './offload.js';
import { Dynamics, staticPlan } from './dynamic.js';
import { isVirtualRef } from '../spec/normalize.js';
import { applyPatches, cleanupWorktrees, gitTopLevel } from './worktree.js';
import { readPrior } from './prior.js';
import { Stops, type StopReason } from './stops.js';
import { Attempts } from './attempt.js';
import { RunPersist, isLiveStatus, type Snapshot } from './run-persist.js';
import { countStates, phaseStates, type TaskState } from './phases.js';
import { Spend } from './spend.js';
import { PatchOriginals, runRedactor } from './secrets.js';
import { restoreSecretEnv } from './secret-env.js';
import { totalRedactions } from '../redact/index.js';
import { errText, fmtMs, now, warn } from './say.js';
import { Breaker } from './breaker.js';
import { Checkpoints, isCheckpointRef, withCheckpoints, type CheckpointDeps } from './checkpoints.js';
import { AgentControl, clearAgentRequests, pollRequests } from './control.js';
import { tripsBreaker } from '../runners/limits.js';
import { LeaseLostError, leaseLost, leaseLostError, leaseTtl, takeLease } from './fence.js';

// Re-exported so callers keep one import for the owner and what it reports.
export { Spend } from './spend.js';
export { childServer } from './attempt.js';
export { countStates, emptyCounts, phaseStates, phaseStatus, type TaskState } from './phases.js';
export { fmtMs } from './say.js';
export type { Snapshot } from './run-persist.js';
export type { StopReason } from './stops.js';
export { LeaseLostError, LEASE_TTL_ENV } from './fence.js';

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
  /** Lease time-to-live (ms); default FANFOLD_LEASE_TTL_MS, else 10 s. */
  leaseTtlMs?: number;
  /** Minimum interval between run.json rewrites (ms). */
  persistEveryMs?: number;
  /**
   * Tasks to run again although they succeeded (`fanfold restart` of an ended run), with every
   * task downstream of them that had already run.
   */
  rerun?: string[];
  /** Asks a checkpoint's question on the foreground terminal (see CheckpointDeps.ask). */
  ask?: CheckpointDeps['ask'];
}

/** Journal events that record a decision of a dynamic phase's step (replayed, not journaled again, on resume). */
const DECISIONS = new Set(['verify.verdict', 'gate.checked', 'converge.round', 'merge.applied', 'merge.conflict', 'phase.expanded']);

/**
 * Executes (or resumes) a run that already exists in the store, to its end. Resolves with the
 * final run record. Tasks whose latest succeeded record carries their current key are reused.
 * Rejects with LeaseLostError when another owner took the run over meanwhile: its agents are
 * stopped and nothing more is written.
 */
export async function ownRun(opts: OwnerOptions): Promise<RunRecord> {
  const ttlMs = leaseTtl(opts.leaseTtlMs);
  const store = await RunStore.open(opts.root, opts.runId);
  const stops = new Stops();
  let persisted: RunPersist | undefined;
  try {
    // Attached to the store: every owner-only write checks lease.json right before it lands.
    await takeLease(store, ttlMs, () => stops.stop({ kind: 'lease_lost' }));
  } catch (e) {
    await store.close();
    throw e;
  }
  // Digests and reports render in a worker thread: this loop keeps the lease's heartbeat.
  const offloader = new Offloader();
  let requestTimer: NodeJS.Timeout | undefined;
  try {
    const before = await store.readRun();
    // Tasks made at run time are made again from the stored answers (the same keys), so a resume
    // starts from the plan as written.
    // run.json keeps `[REDACTED]` for secret-looking values of the agents' env; the owner gives
    // its children the real ones, kept beside the run folder (secret-env.ts).
    const plan = staticPlan(opts.plan ?? (await restoreSecretEnv(opts.root, store.runId, before.plan)));
    // Tolerant read: a damaged journal line must not stop a resume (agent files are the truth).
    const { events } = await store.readJournal();
    // What each attempt on disk came to, mostly from the journal: resume reads few agent files.
    const { attempts: records } = await store.census(events);
    for (const k of await killLeftovers(store.runId, events)) {
      warn(`killed agent ${k.ref} (attempt ${k.attempt}, process group ${k.pid}${k.by === 'env' ? ', found by its environment: its pid was never journaled' : ''}) left running by a dead owner of run ${store.runId}`);
    }
    const resuming = records.length > 0 || events.some((e: RunEvent) => e.type === 'run.started');
    // The sandbox probe runs here without blocking: done synchronously at the first spawn, it
    // stalled this loop (which renews the lease) for ~80 ms.
    await warmBwrapStatus();
    // Worktrees of attempts a dead owner left behind: no agent runs in them any more.
    const worktreesDir = path.join(store.dir, 'worktrees');
    const repo = plan.phases.some((p) => p.dynamic?.merge) ? await gitTopLevel(before.cwd) : undefined;
    if (repo && existsSync(worktreesDir)) {
      for (const dir of await cleanupWorktrees(repo, worktreesDir).catch(() => [])) warn(`removed worktree ${dir} left by an earlier owner`);
    }
    // A stop asked of an earlier owner must not stop this one; nor may its per-agent requests.
    await store.clearControl();
    await clearAgentRequests(store);
    // Half-written files of earlier owners (crashed, or paused mid-write and taken over).
    await store.removeStaleTemps();

    const taskByRef = new Map(plan.tasks.map((t) => [t.ref, t]));
    const { maxAttempt, latestCurrent, succeededByKey, done, succeededFile, latestFile, recorded } = readPrior(records, plan, taskByRef, events);
    // A restart of an ended run: the task and everything downstream of it run again.
    const forced = forcedClosure(plan.tasks, opts.rerun ?? []);
    for (const ref of forced) {
      done.delete(ref);
      succeededFile.delete(ref);
    }
    const spend = new Spend(plan.limits.budget);
    for (const r of records) spend.account(r);
    // Secrets: one redactor for the run (the owner's env, passEnv, the agents' own env), the
    // originals of redacted patches in memory for the merge, and the count run.json shows.
    const redactor = runRedactor(plan);
    const originals = new PatchOriginals();
    let redactions = records.reduce((n, r) => n + (r.redactions ?? 0), 0);
    // Phase summarizers have no agent file: what they cost, and how many ran, is in the journal.
    const summarizerRuns: SummarizerRun[] = [];
    const summarizerAttempts = new Map<string, number>();
    for (const e of events) {
      if (e.type === 'agent.spawned' && e.ref.endsWith('/_digest')) summarizerAttempts.set(e.ref, Math.max(summarizerAttempts.get(e.ref) ?? 0, e.attempt));
      if (e.type !== 'summarizer.finished') continue;
      const { type: _type, t: _t, ...run } = e;
      summarizerRuns.push(run);
      summarizerAttempts.set(run.ref, Math.max(summarizerAttempts.get(run.ref) ?? 0, run.attempt));
      spend.account(run);
    }

    // A reused gate check that did not pass stays a failed check (its record says so).
    const failedCheckFiles = new Set(records.filter((r) => r.checkFailed).map((r) => r.file));
    const doneState = (file: string | undefined): TaskState => (file !== undefined && failedCheckFiles.has(file) ? 'check_failed' : 'succeeded');
    const state = new Map<string, TaskState>(plan.tasks.map((t) => [t.ref, done.has(t.ref) ? doneState(succeededFile.get(t.ref)) : 'pending']));
    /** Checks of this segment that ran and did not pass: done for the scheduler, shown as failed checks. */
    const failedChecks = new Set<string>();
    const running = new Map<string, { ref: string; attempt: number; startedAt: number }>();
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
      store, plan, cwd: before.cwd, latestFile, runners: opts.runners ?? getRunner, signal: stops.signal,
      render: (input) => offloader.run('digest', input),
      include: (ref) => { const k = taskByRef.get(ref)?.origin?.kind; return k !== 'skeptic' && k !== 'check'; },
      note: (phaseId) => dyn.digestNote(phaseId),
      view: (rec) => dyn.withoutRefuted(rec),
      onReady: (phaseId, d) => {
        digestText.set(phaseId, d);
        changed();
      },
      summarizers: {
        refuse: () => {
          // Why the running count: a summarizer shares the budget with the agents still running.
          const a = spend.admit(running.size);
          return a === true ? undefined : a === false ? 'the agents still running could spend what is left of limits.budget' : a;
        },
        remainingUsd: () => spend.remainingUsd(),
        nextAttempt: (phaseId) => {
          const ref = `${phaseId}/_digest`;
          const n = (summarizerAttempts.get(ref) ?? 0) + 1;
          summarizerAttempts.set(ref, n);
          return n;
        },
        // Awaited before the summarizer gets its prompt (see Attempts.run's onSpawn).
        spawned: async (ref, attempt, pid) => {
          await journal(await spawnedEvent(ref, attempt, pid)).catch(() => {});
        },
        redact: (text) => redactor.redact(text).text,
        finished: async (r) => {
          spend.account(r);
          summarizerRuns.push(r);
          await journal({ type: 'summarizer.finished', t: now(), ...r });
          changed();
        },
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
        // The owner never searches: no output text kept in its memory.
        keepTexts: false,
        fence: store.fence,
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
    const journal = (e: RunEvent) => store.appendEvent(e);
    /** A journal line nobody waits for: a lost lease stops the run; other failures are told. */
    const journalLater = (e: RunEvent): void => void journal(e).catch((err: unknown) => {
      if (leaseLost(store, err)) stops.stop({ kind: 'lease_lost' });
      else warn(`cannot journal ${e.type}: ${errText(err)}`);
    });
    const attempts = new Attempts({
      store, plan, root: opts.root, cwd: before.cwd, worktreesDir, inputs, spend, runners: opts.runners ?? getRunner, journal,
      redactor,
      // A big output is redacted in the rendering worker: inline, 60 MiB blocked this loop ~2.5 s.
      redactBig: (text, counts) => offloader.redact(redactor, text, counts),
      originals,
      onRecord(ref, file, rec) {
        redactions += totalRedactions(rec.redactions);
        latestFile.set(ref, file);
        if (isFailedCheck(rec)) failedChecks.add(ref);
        else failedChecks.delete(ref);
        if (rec.status === 'succeeded') inputs.recordFile(ref, file);
        indexRecord(rec);
      },
    });

    const stepCause = new Map<string, string>();
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
        // A big output's structured answer (and its end) stay in its output file: steps need them.
        const rec = await forSteps(store, await store.readAgentRecord(file));
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
          if (t.deps.some((d) => forced.has(d))) forced.add(t.ref);
          const rec = forced.has(t.ref) ? undefined : succeededByKey.get(`${t.ref}\0${t.key}`);
          if (rec) {
            reused.add(t.ref);
            state.set(t.ref, doneState(rec.file));
            latestFile.set(t.ref, rec.file);
            inputs.recordFile(t.ref, rec.file);
            lines.push({ ref: t.ref, key: t.key, file: rec.file });
          } else {
            state.set(t.ref, 'pending');
            const last = records.filter((r) => r.key === t.key && `${r.phaseId}/${r.taskId}` === t.ref).sort((a, b) => b.attempt - a.attempt)[0];
            if (last?.errorType === 'invalid_structured_output') attempts.refusedBefore(t.ref, last.file);
          }
        }
        if (lines.length > 0) journalLater({ type: 'agent.reused', t: now(), tasks: lines });
        changed();
        return reused;
      },
      // Phase summarizers take room under limits.maxAgents like every other agent.
      room: () => plan.limits.maxAgents - plan.tasks.length - summarizerCount(plan),
      // Replayed steps decide what they decided before: their events are journaled once.
      journal: (e) => (replayed(e) ? Promise.resolve() : journal(e)),
      update: () => changed(),
      applyPatches: async (items, onApplied) => {
        // The merge applies what the agent wrote; the stored copies may hold [REDACTED:…] markers.
        const { items: ready, lost } = originals.resolve(items);
        const res = await applyPatches(before.cwd, ready, { onApplied });
        return { ...res, conflicts: [...res.conflicts, ...lost] };
      },
      mergedBefore,
      recorded,
      ended: (ref) => virtualFinal.has(ref) && ref.endsWith('/_done'),
    });

    const breaker = new Breaker();
    const agents = new AgentControl();
    let checkpoints: Checkpoints | undefined;
    const run = new RunPersist({
      store, before, plan, resuming, state, running, virtualFinal, dynamicStates: () => dyn.states(), digestText, spend, summarizers: summarizerRuns,
      redactions: () => redactions,
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      ...(opts.persistEveryMs !== undefined ? { persistEveryMs: opts.persistEveryMs } : {}),
      extra: () => {
        const after = breaker.resumeAfter();
        return { checkpoints: checkpoints?.waiting() ?? [], pausedRunners: breaker.paused, ...(after ? { resumeAfter: after } : {}) };
      },
    });
    persisted = run;
    const changed = () => run.changed();
    const approvedBefore = new Set(events.flatMap((e) => (e.type === 'checkpoint.answered' && (e.answer === 'approve' || e.answer === 'timeout_continue') ? [e.phaseId] : [])));
    checkpoints = new Checkpoints({
      plan, approvedBefore, journal, signal: stops.signal,
      holdClock: () => stops.holdClock(),
      releaseClock: () => stops.releaseClock(),
      // Readers watch run.json: a question (or its answer) is written at once, not coalesced.
      onChange: () => {
        const waiting = checkpoints!.waiting().length > 0;
        if (isLiveStatus(run.status)) run.status = waiting ? 'awaiting_approval' : 'running';
        changed();
        void run.persistNow().then(async () => {
          // The report shows the question too (a person may look there first): a snapshot report,
          // rewritten at the end as always.
          if (waiting) await writeReports(store, run.record(), (r, records, storeDir, pauses) => offloader.run('reports', { run: r, records, storeDir, pauses }));
        }).catch((e) => warn(`cannot write the report while a checkpoint waits: ${errText(e)}`));
      },
      ...(opts.ask ? { ask: opts.ask } : {}),
    });
    const cps = checkpoints;

    if (resuming) {
      await journal({ type: 'run.resumed', t: now(), runId: store.runId, reused: done.size, toRun: plan.tasks.length - done.size, resumes: before.resumes + 1, owner: ownerOf(store) });
      const tasks = [...done].map((ref) => ({ ref, key: taskByRef.get(ref)!.key, file: inputs.fileOf(ref)! })).filter((x) => x.file);
      if (tasks.length > 0) await journal({ type: 'agent.reused', t: now(), tasks });
      for (const ref of opts.rerun ?? []) await journal({ type: 'agent.restart_requested', t: now(), ref, by: 'fanfold restart', effect: 'rerun' });
    } else {
      await journal({ type: 'run.started', t: now(), runId: store.runId, name: plan.name, agentCount: plan.agentCount, owner: ownerOf(store) });
    }
    await run.persistNow();

    // Stop requests: the caller's signal (Ctrl-C), control.json from any session, the run timeout.
    stops.watch({
      ...(opts.signal ? { outer: opts.signal } : {}),
      readControl: () => store.readControl(),
      pollMs: opts.controlPollMs ?? 500,
      runTimeoutMs: plan.limits.runTimeoutMs,
      onStopRequested: (by) => journalLater({ type: 'run.stop_requested', t: now(), by }),
    });
    // Checkpoint answers and per-agent stops/restarts from other sessions (requests/).
    let polling = false;
    requestTimer = setInterval(() => {
      if (polling) return;
      polling = true;
      void pollRequests({
        store, checkpoints: cps, agents, journal,
        task: (ref) => (taskByRef.has(ref) ? { final: ['succeeded', 'failed', 'skipped'].includes(state.get(ref) ?? '') } : undefined),
      }).finally(() => (polling = false));
    }, opts.controlPollMs ?? 500);
    const runnerOf = (ref: string) => plan.agents[taskByRef.get(ref)?.agent ?? '']?.runner ?? 'unknown';

    const phaseStarted = new Set<string>();
    const phaseFinished = new Set<string>();
    for (const r of latestCurrent.values()) {
      const ref = `${r.phaseId}/${r.taskId}`;
      if (r.errorType === 'invalid_structured_output') attempts.refusedBefore(ref, r.file);
      // A resume continues the session of an attempt that was cut off (engine/sessions.ts decides).
      if (!done.has(ref)) attempts.endedBefore(ref, r.file);
    }
    // Attempts an earlier owner started but never recorded (it died): their sessions are cut off.
    for (const t of plan.tasks) {
      const started = maxAttempt.get(t.ref) ?? 0;
      if (started > (latestCurrent.get(t.ref)?.attempt ?? 0) && !done.has(t.ref)) attempts.cutOffBefore(t.ref, started);
    }
    const finalState = (ref: string, f: TaskFinal): TaskState =>
      f === 'succeeded' ? (failedChecks.has(ref) ? 'check_failed' : 'succeeded')
      : f === 'failed' || f === 'skipped' || f === 'cancelled' ? f
      : 'pending';
    const sched = await runDag({
      tasks: withCheckpoints(plan, [...(plan.tasks as SchedTask[]), ...dyn.initialNodes()]),
      done,
      maxConcurrent: plan.limits.maxConcurrent,
      retries: plan.limits.retries,
      backoffMs: plan.limits.retryBackoffMs,
      onFailure: (phaseId) => plan.phases.find((p) => p.id === phaseId)?.onFailure ?? 'stop',
      firstAttempt: (ref) => (maxAttempt.get(ref) ?? 0) + 1,
      signal: stops.signal,
      admit: () => spend.admit(running.size),
      // A runner whose account hit a usage limit (or whose login was refused) starts nothing more.
      held: (task) => !task.virtual && breaker.isOpen(runnerOf(task.ref)),
      hooks: {
        onDispatch(task, attempt) {
          if (task.virtual) return;
          if (!indexP) setImmediate(index);
          state.set(task.ref, 'running');
          running.set(task.ref, { ref: task.ref, attempt, startedAt: Date.now() });
          if (!phaseStarted.has(task.phaseId)) {
            phaseStarted.add(task.phaseId);
            journalLater({ type: 'phase.started', t: now(), phaseId: task.phaseId });
          }
          changed();
        },
        onAttemptEnd(task) {
          if (task.virtual) return;
          // No redraw here: the scheduler calls onFinal or onRetry next, synchronously, and they
          // say where the task stands. Drawing now would show a finished task as pending for
          // one frame.
          running.delete(task.ref);
        },
        onFinal(task, f) {
          if (isCheckpointRef(task.ref)) return changed();
          if (task.virtual) {
            if (task.ref.endsWith('/_done') || f !== 'succeeded') virtualFinal.set(task.ref, f);
          } else {
            state.set(task.ref, finalState(task.ref, f));
          }
          const phase = phaseById.get(task.phaseId);
          // Extractive digests are cheap: compute them as soon as a phase ends. A summarizer agent
          // runs later, in the slot of a task that needs it or after the pool has drained.
          if (phase && !phase.summarize && phaseEnded(phase.id) && !digests.started(phase.id)) void digests.get(phase.id).catch(() => {});
          // The journal says when each phase ended, not only when the run did (timelines read it).
          if (phase && !phaseFinished.has(phase.id) && phaseEnded(phase.id)) {
            phaseFinished.add(phase.id);
            const st = phaseStates({ ...plan, phases: [phase] }, state, false, virtualFinal, dyn.states())[0]!;
            journalLater({ type: 'phase.finished', t: now(), phaseId: phase.id, status: st.status });
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
          // Waiting out its back-off: pending again until it is dispatched.
          state.set(task.ref, 'pending');
          changed();
          journalLater({ type: 'agent.retry_scheduled', t: now(), ref: task.ref, attempt, delayMs, cause });
        },
        async onSkip(task, cause) {
          const attempt = (maxAttempt.get(task.ref) ?? 0) + 1;
          maxAttempt.set(task.ref, attempt);
          await attempts.skip(taskByRef.get(task.ref)!, attempt, cause).catch(unlessLeaseLost);
        },
      },
      execute: async (task, { attempt, slot, signal }) => {
        try {
          if (isCheckpointRef(task.ref)) {
            const a = await cps.wait(task.phaseId);
            if (a?.answer === 'approve' || a?.answer === 'timeout_continue') return { status: 'succeeded', retryable: false };
            if (a) stops.stop({ kind: 'checkpoint', phaseId: task.phaseId, by: a.by, answer: a.answer });
            return { status: 'cancelled', retryable: false };
          }
          if (task.virtual) {
            const out = await dyn.run(task);
            if (out.status !== 'succeeded' && out.cause) stepCause.set(task.ref, out.cause);
            return out;
          }
          const t = taskByRef.get(task.ref)!;
          const stopper = agents.takeStopBefore(t.ref);
          if (stopper !== undefined) {
            const why = `stopped by ${stopper} before it started; its dependents are skipped`;
            agents.stopped.set(t.ref, stopper);
            await attempts.cancelled(t, attempt, why);
            return { status: 'cancelled', retryable: false, stopped: true, cause: why };
          }
          const own = agents.begin(t.ref);
          const out = await attempts.run(t, attempt, slot, AbortSignal.any([signal, own]), () => agents.note(t.ref));
          const asked = agents.end(t.ref);
          if (out.status === 'cancelled' && asked && !signal.aborted) {
            if (asked.action === 'stop') agents.stopped.set(t.ref, asked.by);
            return asked.action === 'stop' ? { ...out, stopped: true, cause: `stopped by ${asked.by}` } : { ...out, restart: true };
          }
          if (out.status !== 'succeeded' && tripsBreaker(out.error)) {
            const runner = runnerOf(t.ref);
            const opened = breaker.trip(runner, t.ref, out.error!);
            if (opened) {
              warn(`run ${store.runId}: ${runner} ${opened.kind === 'auth' ? 'cannot log in' : 'hit a usage limit'}; no further ${runner} agent will start (${out.error!.message})`);
              await journal({ type: 'runner.paused', t: now(), runner, kind: opened.kind, ref: t.ref, cause: opened.cause, ...(opened.resumeAfter ? { resumeAfter: opened.resumeAfter } : {}) });
            }
            changed();
            // Not a failure of the work: set aside, to run again on resume.
            return { ...out, hold: true };
          }
          return out;
        } catch (e) {
          unlessLeaseLost(e);
          // Why not throw: the other attempts must end too (their children killed) before this owner leaves.
          return { status: 'cancelled', retryable: false };
        }
      },
    });
    clearInterval(requestTimer);

    // Final states: failed attempts that will not be retried are `failed`, attempts a stop cut
    // short `cancelled`; tasks never started (not_run) stay pending.
    for (const [ref, f] of sched.final) {
      if (isVirtualRef(ref)) continue; // steps of dynamic phases are not agents
      if (f !== 'succeeded') state.set(ref, finalState(ref, f));
    }
    const stopReason = stops.reason;
    // Another owner has the run now: write nothing more.
    if (stopReason?.kind === 'lease_lost') throw await leaseLostError(store);
    const end = decideEnd({
      stopReason, halted: sched.halted, final: sched.final, state, stepCause, breaker, stoppedAgents: agents.stopped,
      conflicts: [...dyn.states().values()].flatMap((d) => d.merge?.conflicts.map((c) => c.ref) ?? []),
      unfinishedPhase: plan.phases.some((p) => p.dynamic && sched.final.get(p.dynamic.done) !== 'succeeded'),
    });
    run.end(end.status, end.reason);
    // Digests of every phase that produced anything (summarizer agents run now, after the pool).
    for (const p of plan.phases) {
      if (p.taskRefs.some((r) => latestFile.has(r))) await digests.get(p.id).catch((e) => warn(`digest of phase ${p.id}: ${errText(e)}`));
    }
    for (const p of phaseStates(plan, state, true, virtualFinal, dyn.states())) {
      if (!phaseFinished.has(p.id)) await journal({ type: 'phase.finished', t: now(), phaseId: p.id, status: p.status });
    }
    const finalRecord = await run.final();
    const ix = await index();
    await ix?.flush().catch((e) => warn(`cannot save the search index: ${errText(e)}`));
    await writeReports(store, finalRecord, (r, records, storeDir, pauses) => offloader.run('reports', { run: r, records, storeDir, pauses }))
      .catch((e) => warn(`cannot write the reports: ${errText(e)}`));
    await journal({ type: 'run.finished', t: now(), status: end.status, ...(end.reason ? { reason: end.reason } : {}), elapsedMs: finalRecord.elapsedMs });
    // run.json is the commit point that readers (status --wait, stop, MCP workflow_status) watch:
    // it says the run ended only once the index, the reports and the journal are all on disk.
    // A crash before this line leaves the run `interrupted`, and resume finishes it.
    await run.commit(finalRecord);
    return finalRecord;
  } catch (e) {
    // A write refused by the fence surfaces here as a StoreError 'lease_lost': say who has the run.
    if (!(e instanceof LeaseLostError) && leaseLost(store, e)) throw await leaseLostError(store);
    throw e;
  } finally {
    clearInterval(requestTimer);
    persisted?.dispose();
    stops.dispose();
    await offloader.close();
    // Waits for writes in flight, then releases the lease (only if lease.json is still ours).
    await store.close().catch(() => {});
  }

  /** Swallows a lost lease (stopping the run); rethrows anything else. */
  function unlessLeaseLost(e: unknown): void {
    if (!leaseLost(store, e)) throw e;
    stops.stop({ kind: 'lease_lost' });
  }
}

/** Who this owner is, for the journal: the next owner to find its lease lost can name it. */
function ownerOf(store: RunStore): EventOwner {
  const l = store.lease!.record;
  return { pid: l.pid, host: l.host, epoch: l.epoch ?? 0 };
}

/** How a scheduler pass ended, as `decideEnd` reads it. */
interface EndFacts {
  stopReason: StopReason | undefined;
  halted: SchedResult['halted'];
  final: ReadonlyMap<string, TaskFinal>;
  state: ReadonlyMap<string, TaskState>;
  stepCause: ReadonlyMap<string, string>;
  /** Refs whose patches did not apply. */
  conflicts: string[];
  /** A dynamic phase whose end node did not succeed. */
  unfinishedPhase: boolean;
  /** Runners paused by a usage or auth limit. */
  breaker: Breaker;
  /** Agents a person stopped one by one, with who did. */
  stoppedAgents: ReadonlyMap<string, string>;
}

/** The run's final status and reason, from how its pass ended. */
function decideEnd(f: EndFacts): { status: RunStatus; reason?: string } {
  const totals = countStates(f.state.values());
  const checks = totals.checkFailed ?? 0;
  const tally = `${totals.succeeded}/${totals.total} tasks succeeded${checks ? `, ${checks} gate check${checks === 1 ? '' : 's'} did not pass` : ''}`;
  // A step of a dynamic phase that failed (a gate out of iterations, no room under maxAgents) ends
  // the run failed with its cause, whatever the tasks did.
  const dynFailure = [...f.final].filter(([ref, v]) => v === 'failed' && isVirtualRef(ref)).map(([ref]) => f.stepCause.get(ref) ?? `${ref} failed`)[0];
  if (f.stopReason?.kind === 'stop') return { status: 'stopped', reason: `stopped by ${f.stopReason.by}; ${tally}` };
  if (f.stopReason?.kind === 'checkpoint') {
    const s = f.stopReason;
    const what = s.answer === 'reject' ? `rejected by ${s.by}` : `not answered in time (${s.by}; onTimeout: stop)`;
    return { status: 'stopped', reason: `the checkpoint before phase ${s.phaseId} was ${what}; ${tally}` };
  }
  if (f.stoppedAgents.size > 0) {
    const list = [...f.stoppedAgents].map(([ref, by]) => `${ref} (by ${by})`);
    return { status: 'stopped', reason: `agent${list.length === 1 ? '' : 's'} stopped: ${list.slice(0, 5).join(', ')}${list.length > 5 ? ', …' : ''}; dependents skipped; ${tally}` };
  }
  // A usage or auth limit: the run is not complete, but nothing failed that a resume cannot redo.
  if (f.breaker.paused.length > 0) return { status: 'paused', reason: `${f.breaker.describe()}; ${tally}` };
  if (f.halted?.by === 'refused') {
    return { status: 'budget_exhausted', reason: `${f.halted.cause}; ${tally}, every output kept; raise limits.budget and resume to go on` };
  }
  if (f.stopReason?.kind === 'timeout') return { status: 'failed', reason: `run timeout: limits.runTimeout of ${fmtMs(f.stopReason.afterMs)} reached; ${tally}` };
  if (dynFailure !== undefined) return { status: 'failed', reason: `${dynFailure}; ${tally}` };
  if (f.conflicts.length > 0) {
    // Work whose patch did not apply has not landed: the run is not complete.
    const c = f.conflicts;
    return { status: 'failed', reason: `merge conflicts: the patches of ${c.slice(0, 5).join(', ')}${c.length > 5 ? ` and ${c.length - 5} more` : ''} did not apply; each is kept in its agent record (patch.diff)` };
  }
  if (totals.failed > 0 || totals.skipped > 0 || totals.succeeded + checks < totals.total || f.unfinishedPhase) {
    const firstFailed = [...f.state].find(([, s]) => s === 'failed')?.[0];
    return {
      status: 'failed',
      reason: `${totals.failed} task(s) failed, ${totals.skipped} skipped` +
        (f.halted?.by === 'failure' ? `; stopped dispatching after ${f.halted.cause}` : firstFailed ? `; first: ${firstFailed}` : ''),
    };
  }
  return { status: 'completed' };
}

/**
 * `refs` and every task downstream of them (through dependencies, transitively): what a restart
 * of an ended run runs again.
 */
function forcedClosure(tasks: readonly { ref: string; deps: readonly string[] }[], refs: readonly string[]): Set<string> {
  const forced = new Set(refs);
  if (forced.size === 0) return forced;
  for (let grew = true; grew; ) {
    grew = false;
    for (const t of tasks) {
      if (!forced.has(t.ref) && t.deps.some((d) => forced.has(d))) {
        forced.add(t.ref);
        grew = true;
      }
    }
  }
  return forced;
}
