/**
 * One attempt of one agent task, from inputs to record, in the order the durability contract asks:
 * inputs written → journal `agent.started` → child spawned (`agent.spawned` with its pid, awaited
 * before the child gets its prompt on stdin) → agent file written atomically → journal
 * `agent.finished`. Also the record of a task skipped because a dependency failed.
 */
import path from 'node:path';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Plan, PlanTask, RunnerKind } from '../spec/types.js';
import type { AgentRecord, FailureInfo, RunEvent } from '../store/types.js';
import { SCHEMA_VERSION } from '../store/types.js';
import type { RunStore } from '../store/index.js';
import { NO_CHILD, notStarted, type Runner, type RunnerResult } from '../runners/types.js';
import type { AttemptOutcome } from './scheduler.js';
import type { TaskInputs } from './inputs.js';
import type { Spend } from './spend.js';
import { spawnedEvent } from './leftovers.js';
import { collectPatch, createWorktree, removeWorktree, type Worktree } from './worktree.js';
import { idleTimeoutFor } from '../runners/idle.js';
import { errText, now, warn } from './say.js';
import { redactAttemptAsync, type PatchOriginals } from './secrets.js';
import { Redactor, totalRedactions } from '../redact/index.js';
import { criticVerdict } from './findings.js';
import { SessionChain, continuesSessions } from './sessions.js';

/** What attempts need from their owner. */
export interface AttemptDeps {
  store: RunStore;
  plan: Plan;
  /** Store root (sub-agents' read-only MCP server reads it). */
  root: string;
  /** The run's working folder. */
  cwd: string;
  /** Where worktrees of isolated tasks are made. */
  worktreesDir: string;
  inputs: TaskInputs;
  spend: Spend;
  runners: (kind: RunnerKind) => Runner;
  journal: (e: RunEvent) => Promise<void>;
  /** An attempt's record is on disk under `file`. */
  onRecord: (ref: string, file: string, rec: AgentRecord) => void;
  /** Replaces secrets in what a record keeps of the child (default: the format rules only). */
  redactor?: Redactor;
  /** Redacts a big output with `redactor` off this thread (the owner's worker); inline without. */
  redactBig?: (text: string, counts: Map<string, number>) => Promise<string>;
  /** Where the originals of redacted patches are kept for the merge (memory only). */
  originals?: PatchOriginals;
  /** The run's folder for agent sessions (default `<run dir>/sessions`; see engine/sessions.ts). */
  sessionDir?: string;
}

/** The redactor of attempts whose owner gave none: the format rules, no exact values. */
const FORMATS_ONLY = new Redactor();

/** Runs the attempts of a run's agent tasks and writes their records. */
export class Attempts {
  readonly #d: AttemptDeps;
  /** Why the last attempt of a task was refused, when the next attempt should be told. */
  readonly #feedback = new Map<string, string>();
  /** Files of refused attempts whose reasons are read when the task runs again. */
  readonly #feedbackFrom = new Map<string, string>();
  /** Which session each task's next attempt continues. */
  readonly #sessions: SessionChain;
  readonly #sessionDir: string;
  /** Record files of earlier owners' cut-off attempts, read when the task runs again. */
  readonly #continueFrom = new Map<string, string>();

  constructor(deps: AttemptDeps) {
    this.#d = deps;
    this.#sessionDir = deps.sessionDir ?? path.join(deps.store.dir, 'sessions');
    this.#sessions = new SessionChain(this.#sessionDir);
  }

  /** An earlier owner's last attempt of `ref` is in `file`: the next attempt may continue its session. */
  endedBefore(ref: string, file: string): void {
    this.#continueFrom.set(ref, file);
  }

  /** An earlier owner started attempt `attempt` of `ref` and died before recording it. */
  cutOffBefore(ref: string, attempt: number): void {
    this.#sessions.cutOff(this.#d.store.runId, ref, attempt);
  }

  /** An earlier owner's attempt of `ref` (in `file`) was refused: the next attempt is told why. */
  refusedBefore(ref: string, file: string): void {
    this.#feedbackFrom.set(ref, file);
  }

  /**
   * Runs attempt `attempt` of task `t` in `slot` to its record. The outcome carries the record's
   * error (the owner reads usage limits from it). `cancelNote`, asked when the attempt was
   * cancelled, says why in the record when it was not the whole run's stop (a person stopped or
   * restarted this one agent).
   */
  async run(t: PlanTask, attempt: number, slot: number, signal: AbortSignal, cancelNote?: () => string | undefined): Promise<AttemptOutcome & { error?: FailureInfo }> {
    const { store, plan } = this.#d;
    const agent = plan.agents[t.agent]!;
    const earlier = this.#feedbackFrom.get(t.ref);
    if (earlier !== undefined && !this.#feedback.has(t.ref)) {
      const old = await store.readAgentRecord(earlier).catch(() => undefined);
      if (old?.error) this.#feedback.set(t.ref, old.error.message);
    }
    this.#feedbackFrom.delete(t.ref);
    const endedFile = this.#continueFrom.get(t.ref);
    if (endedFile !== undefined) {
      this.#continueFrom.delete(t.ref);
      const old = await store.readAgentRecord(endedFile).catch(() => undefined);
      if (old) this.#sessions.ended(t.ref, old);
    }
    // A gate's next fix continues the previous fix's session; an earlier owner's record names it.
    const n = t.origin?.kind === 'fix' ? t.origin.iteration ?? 1 : 1;
    const prevFix = `${t.phaseId}/fix-${n - 1}`;
    if (n > 1 && !this.#sessions.knows(prevFix)) {
      const files = (await store.listAgentFiles().catch(() => [])).filter((f) => f.phaseId === t.phaseId && f.taskId === `fix-${n - 1}`);
      const last = files.sort((a, b) => b.attempt - a.attempt)[0];
      const old = last ? await store.readAgentRecord(last.file).catch(() => undefined) : undefined;
      if (old) this.#sessions.keep(prevFix, old);
    }
    const continueFrom = this.#sessions.forAttempt(t, attempt, agent, plan.limits);
    // Sessions are kept only where they can be continued: the same folder every attempt.
    const keepSession = continuesSessions(agent, plan.limits) && t.isolation !== 'worktree';
    const prepared = await this.#d.inputs.prepare(t, attempt, this.#feedback.get(t.ref));
    const startedAt = new Date();
    await this.#d.journal({ type: 'agent.started', t: startedAt.toISOString(), ref: t.ref, key: t.key, attempt, slot });
    let result: RunnerResult;
    let wt: Worktree | undefined;
    let patch: AgentRecord['patch'];
    try {
      if (t.isolation === 'worktree') {
        // The worktree lives in the run folder: fenced like every owner write (git makes its files).
        store.fence();
        wt = await createWorktree({ cwd: this.#d.cwd, dir: path.join(this.#d.worktreesDir, `${t.phaseId}.${t.taskId}.${attempt}`), signal });
      }
      const remainingUsd = this.#d.spend.remainingUsd();
      result = await this.#d.runners(agent.runner).run({
        runId: store.runId,
        phaseId: t.phaseId,
        taskId: t.taskId,
        attempt,
        prompt: prepared.prompt,
        agent,
        cwd: wt ? wt.cwd : this.#d.cwd,
        promptFile: prepared.promptFile,
        contextFile: prepared.contextFile,
        timeoutMs: plan.limits.agentTimeoutMs,
        idleTimeoutMs: idleTimeoutFor(agent, plan.limits),
        maxOutputBytes: plan.limits.maxOutputBytes,
        signal,
        // Awaited before the child gets its prompt: a crash of the owner leaves no agent at work
        // that the journal does not name. A refused line (lost lease) stops the run through the
        // lease's onLost; nothing to add here.
        onSpawn: async (pid) => {
          await this.#d.journal(await spawnedEvent(t.ref, attempt, pid)).catch(() => {});
        },
        ...(t.schema ? { schema: t.schema } : {}),
        ...(remainingUsd !== undefined ? { maxBudgetUsd: remainingUsd } : {}),
        // Why fenced: session files are moved into the run folder, an owner-only write.
        ...(keepSession ? { sessionDir: this.#sessionDir, fence: store.fence } : {}),
        // A continuation sends a short prompt; the validation errors of a refused answer ride along.
        ...(keepSession && continueFrom ? { continueFrom, ...(this.#feedback.has(t.ref) ? { feedback: this.#feedback.get(t.ref)! } : {}) } : {}),
        // Agents that speak MCP and build on earlier phases may look those outputs up (read-only).
        ...((agent.runner === 'claude' || agent.runner === 'codex') && t.deps.length > 0 ? { mcp: childServer(this.#d.root) } : {}),
      });
      if (wt) patch = await collectPatch(wt, { maxBytes: 8 * 1024 * 1024 });
    } catch (e) {
      // A runner should never throw; if one does, it is this task's failure, not the run's.
      const isolation = e instanceof Error && e.name === 'IsolationError';
      result = notStarted(isolation
        ? { type: 'isolation', message: errText(e), retryable: (e as { retryable?: boolean }).retryable ?? false }
        : { type: 'runner_error', message: `runner '${agent.runner}' threw: ${errText(e)}`, retryable: false });
    } finally {
      // An owner that lost the lease leaves the worktree to the owner that has the run now.
      if (wt && !store.lease?.lost) await removeWorktree(wt.repo, wt.dir).catch((e) => warn(`cannot remove worktree ${wt!.dir}: ${errText(e)}`));
    }
    // A gate's command that ran and exited has done its job: its exit code is the gate's
    // verdict, read by the gate step; only a check that could not run (timeout, missing
    // command) is a failed task.
    if (t.origin?.kind === 'check' && result.status === 'failed' && result.error?.type === 'exit_code') {
      const { error: _verdict, ...rest } = result;
      result = { ...rest, status: 'succeeded' };
    }
    const note = result.status === 'cancelled' ? cancelNote?.() : undefined;
    if (note !== undefined) result = { ...result, error: { type: 'cancelled', message: note, retryable: false } };
    // Why before the record: every later copy (file, journal cause, index, digests, context files,
    // report, MCP answers) is made from the record, so the original never reaches any of them.
    const clean = await redactAttemptAsync(this.#d.redactor ?? FORMATS_ONLY, result, patch, this.#d.redactor ? this.#d.redactBig : undefined);
    if (patch && clean.patch?.redacted) this.#d.originals?.remember(t.ref, clean.patch, patch);
    const rec = agentRecord(store.runId, t, attempt, agent.runner, prepared.prompt, clean.result, startedAt, new Date(), clean.patch);
    if (clean.redactions.length > 0) rec.redactions = clean.redactions;
    // The check's verdict goes on its record, so every front can show a check that did not pass
    // as a failed check (not a green task, not a crashed agent). A critic answers with `pass`.
    if (t.origin?.kind === 'check' && rec.status === 'succeeded') {
      rec.check = { passed: t.schema ? criticVerdict(rec).pass : rec.exitCode === 0 };
    }
    const file = await store.writeAgentRecord(rec);
    this.#sessions.ended(t.ref, rec);
    this.#d.spend.account(rec);
    // Invalid structured output is retried with the validation errors fed back (bounded by retries).
    if (rec.error?.type === 'invalid_structured_output') this.#feedback.set(t.ref, rec.error.message);
    else this.#feedback.delete(t.ref);
    this.#d.onRecord(t.ref, file, rec);
    await this.#d.journal({
      type: 'agent.finished', t: rec.endedAt, ref: t.ref, key: t.key, attempt, status: rec.status, durationMs: rec.durationMs, file,
      census: {
        ...(rec.costUsd !== undefined ? { costUsd: rec.costUsd } : {}), ...(rec.usage ? { usage: rec.usage } : {}), ...(rec.error ? { errorType: rec.error.type } : {}),
        ...(rec.redactions ? { redactions: totalRedactions(rec.redactions) } : {}),
        ...(rec.check?.passed === false ? { checkFailed: true } : {}),
      },
    });
    return {
      status: rec.status === 'skipped' ? 'failed' : rec.status,
      retryable: rec.error?.retryable ?? false,
      ...(rec.error ? { cause: rec.error.message, error: rec.error } : {}),
      ...(rec.error?.retryAfterMs !== undefined ? { retryAfterMs: rec.error.retryAfterMs } : {}),
    };
  }

  /** Records attempt `attempt` of `t` as cancelled before it started (a person stopped it; `why`). */
  async cancelled(t: PlanTask, attempt: number, why: string): Promise<void> {
    const { store, plan } = this.#d;
    const at = now();
    const rec: AgentRecord = { ...skippedRecord(store.runId, plan, t, attempt, why, at), status: 'cancelled', error: { type: 'cancelled', message: why, retryable: false } };
    const file = await store.writeAgentRecord(rec);
    this.#d.onRecord(t.ref, file, rec);
    await this.#d.journal({ type: 'agent.finished', t: at, ref: t.ref, key: t.key, attempt, status: 'cancelled', durationMs: 0, file, census: { errorType: 'cancelled' } });
  }

  /** Records attempt `attempt` of `t` as skipped: a dependency failed (`cause`). */
  async skip(t: PlanTask, attempt: number, cause: string): Promise<void> {
    const { store, plan } = this.#d;
    const at = now();
    const rec = skippedRecord(store.runId, plan, t, attempt, cause, at);
    const file = store.agentFileName(t.phaseId, t.taskId, attempt);
    await store.writeAgentRecord(rec);
    this.#d.onRecord(t.ref, file, rec);
    await this.#d.journal({ type: 'agent.skipped', t: at, ref: t.ref, cause, file });
  }
}

/** The fields that name an attempt's record: whose, which task, which attempt. */
function recordHead(runId: string, t: PlanTask, attempt: number): Pick<AgentRecord, 'schemaVersion' | 'runId' | 'phaseId' | 'taskId' | 'key' | 'attempt'> {
  return { schemaVersion: SCHEMA_VERSION, runId, phaseId: t.phaseId, taskId: t.taskId, key: t.key, attempt };
}

function agentRecord(runId: string, t: PlanTask, attempt: number, runner: RunnerKind, prompt: string, result: RunnerResult,
  startedAt: Date, endedAt: Date, patch: AgentRecord['patch']): AgentRecord {
  return {
    ...recordHead(runId, t, attempt),
    status: result.status,
    agent: t.agent,
    runner,
    prompt,
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
    ...(result.session ? { session: { file: path.basename(result.session.file), origin: result.session.origin } } : {}),
    ...(result.continuedFrom ? { continuedFrom: result.continuedFrom } : {}),
    ...(result.continueFallback !== undefined ? { continueFallback: result.continueFallback } : {}),
    ...(patch ? { patch } : {}),
  };
}

function skippedRecord(runId: string, plan: Plan, t: PlanTask, attempt: number, cause: string, at: string): AgentRecord {
  return {
    ...recordHead(runId, t, attempt),
    status: 'skipped',
    agent: t.agent,
    runner: plan.agents[t.agent]?.runner ?? 'unknown',
    prompt: t.prompt,
    ...NO_CHILD,
    startedAt: at,
    endedAt: at,
    durationMs: 0,
    error: { type: 'dependency_failed', message: cause, retryable: false },
  };
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
