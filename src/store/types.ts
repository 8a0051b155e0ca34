/**
 * Shapes of everything persisted under `.agent_workflows/<runId>/`. Every file carries
 * `schemaVersion`; readers refuse an unknown version loudly.
 */
import type { Plan } from '../spec/types.js';

/** Current schema version of every file fanfold writes. */
export const SCHEMA_VERSION = 1 as const;

/** Every final status of one agent attempt, in the order people read them. */
export const AGENT_STATUSES = ['succeeded', 'failed', 'timed_out', 'cancelled', 'skipped'] as const;

/**
 * Schema version of the agent records written now. 2: an output over 1 MiB lives beside its record
 * (`outputFile`) and its structured answer is not copied into the record (`structuredIn`).
 * Records of version 1 (the whole output inline) are still read.
 */
export const AGENT_RECORD_VERSION = 2 as const;

/** Agent record versions this code reads. */
export const AGENT_RECORD_VERSIONS: readonly number[] = [SCHEMA_VERSION, AGENT_RECORD_VERSION];

/** Final status of one agent attempt. */
export type AgentStatus = (typeof AGENT_STATUSES)[number];

/**
 * Run status. `completed` only when every task succeeded; `budget_exhausted` when the engine
 * stopped dispatching because the next agent could cross `limits.budget`; `paused` when a runner
 * hit a usage or auth limit (an end, resumable, with `resumeAfter` when known);
 * `awaiting_approval` while a checkpoint waits for a person (not an end: the owner waits).
 */
export type RunStatus = 'running' | 'awaiting_approval' | 'completed' | 'failed' | 'stopped' | 'interrupted' | 'budget_exhausted' | 'paused';

/** A checkpoint waiting for a person's answer (RunRecord.checkpoints). */
export interface CheckpointWait {
  /** The phase that starts once approved. */
  phaseId: string;
  /** The question. */
  message: string;
  /** When it was asked (ISO). */
  askedAt: string;
  /** When an unanswered checkpoint gives up (ISO), and what it then does. */
  timeoutAt?: string;
  onTimeout: 'stop' | 'continue';
}

/** A runner that may not start agents any more in this run (usage or auth limit). */
export interface PausedRunner {
  runner: string;
  /** `quota` or `auth`. */
  kind: string;
  /** The failure that tripped it, as the CLI said it. */
  cause: string;
  /** The attempt that tripped it. */
  ref: string;
  /** When the limit resets (ISO), when the CLI said. */
  resumeAfter?: string;
}

/** A failure that crossed a process or disk boundary: typed, with whether a retry can help. */
export interface FailureInfo {
  /** Machine-readable kind, e.g. `exit_code`, `signal`, `timeout`, `spawn_enoent`, `dependency_failed`. */
  type: string;
  /** Sentence a person can act on. */
  message: string;
  /** Whether another attempt could succeed. */
  retryable: boolean;
  /** `quota`: when the limit resets, as the CLI said (ISO time). */
  resumeAfter?: string;
  /** A rate limit's own wait before the next attempt (ms), when the CLI reported one. */
  retryAfterMs?: number;
}

/** Token usage as reported by an agent CLI. */
export interface Usage {
  inputTokens?: number;
  outputTokens?: number;
  cachedInputTokens?: number;
}

/** `agents/<phaseId>.<taskId>.<attempt>.json`: one file per agent attempt. */
export interface AgentRecord {
  /** 2 when written by this code; 1 for records of older runs (same fields, output always inline). */
  schemaVersion: typeof SCHEMA_VERSION | typeof AGENT_RECORD_VERSION;
  runId: string;
  phaseId: string;
  taskId: string;
  /** The task's content key (see PlanTask.key). */
  key: string;
  /** 1-based attempt number, increasing across resumes. */
  attempt: number;
  status: AgentStatus;
  /** Agent name and runner kind it ran with. */
  agent: string;
  runner: string;
  /** The prompt after templating, as the child received it. */
  prompt: string;
  /**
   * Stored output (stdout or final message), at most `maxOutputBytes` bytes — or, when `outputFile`
   * is set, only the first 256 KiB of it (the whole is in that file).
   */
  output: string;
  /**
   * File under agents/ (`<phase>.<task>.<attempt>.out`, plain UTF-8) holding the whole stored
   * output, when it is over 1 MiB. Written atomically before the record. Read it through
   * RunStore.readAgentOutput / readAgentOutputPage, never whole into one string.
   */
  outputFile?: string;
  /** UTF-8 bytes of the whole stored output (set with `outputFile`). */
  storedBytes?: number;
  /**
   * `output`: the structured answer is the JSON the output carries (the runners parse it from
   * there), so it is not copied into the record; a reader that needs it parses the output file.
   */
  structuredIn?: 'output';
  /**
   * Set when the output is longer than what search indexes: only its first `indexedBytes` bytes
   * are in the search index (hits say so too).
   */
  indexedBytes?: number;
  /** Bytes the child produced in all, stored or not. */
  outputBytes: number;
  /** True when `output` holds less than `outputBytes`. */
  truncated: boolean;
  exitCode: number | null;
  signal: string | null;
  /** Last few KiB of stderr. */
  stderrTail: string;
  startedAt: string;
  endedAt: string;
  durationMs: number;
  /** Why it did not succeed (absent on success). */
  error?: FailureInfo;
  /** Parsed structured result, when the task asked for one. */
  structured?: unknown;
  /**
   * A gate check's verdict. The attempt itself succeeded (the check ran); `passed: false` means the
   * gate was not satisfied (command exit code, or the critic's `pass`), shown as a failed check.
   */
  check?: { passed: boolean };
  usage?: Usage;
  costUsd?: number;
  /** Session or thread id the agent CLI reported. */
  sessionId?: string;
  /**
   * The CLI's session kept for a later continuation: `file` under the run's `sessions/` folder,
   * `origin` where the CLI keeps it relative to its home (issue 12 item 3).
   */
  session?: { file: string; origin: string };
  /**
   * This attempt continued the session of an earlier attempt instead of starting fresh; `ref` when
   * that attempt was another task's (a gate's previous fix).
   */
  continuedFrom?: { attempt: number; sessionId: string; ref?: string };
  /** Why this attempt started fresh although a continuation was asked for. */
  continueFallback?: string;
  /**
   * The change of an isolated (`worktree`) attempt, as a patch against the commit it started from.
   * `redacted`: secrets were replaced in this stored copy; the merge applied the original, which
   * is never written to the run folder.
   */
  patch?: { base: string; diff: string; files: string[]; bytes: number; truncated: boolean; redacted?: boolean };
  /**
   * Secrets replaced by `[REDACTED:<rule>]` in what this record keeps of the child (output, stderr
   * tail, structured answer, error, patch), per rule; absent when none.
   */
  redactions?: { rule: string; count: number }[];
}

/** What resume needs to know of one agent attempt (see RunStore.census). */
export interface AttemptSummary {
  phaseId: string;
  taskId: string;
  attempt: number;
  key: string;
  status: AgentStatus;
  /** File name under agents/. */
  file: string;
  costUsd?: number;
  usage?: Usage;
  errorType?: string;
  /** Secrets redacted from this attempt's record. */
  redactions?: number;
  /** A gate check that ran and did not pass. */
  checkFailed?: boolean;
}

/** Per-state task counts (see counts.ts, the one function that makes them). */
export interface Counts {
  total: number;
  succeeded: number;
  /** Gate checks that ran and did not pass (absent in files written before it existed). */
  checkFailed?: number;
  /** Agents that could not do their job: crashed, timed out, bad output. */
  failed: number;
  /** Running when the run was stopped (absent in files written before it existed). */
  cancelled?: number;
  skipped: number;
  running: number;
  pending: number;
  /** Run totals only: secrets replaced by `[REDACTED:<rule>]` in the run's agent records so far. */
  redactions?: number;
}

/** Phase status, derived from its tasks. */
export type PhaseStatus = 'pending' | 'running' | 'completed' | 'failed' | 'stopped';

/** State of one phase in run.json. */
export interface PhaseState {
  id: string;
  status: PhaseStatus;
  counts: Counts;
  /** The phase's digest once it has ended (bounded; see digest/). */
  digest?: string;
  /** What the dynamic parts of the phase did so far (bounded lists). */
  dynamic?: DynamicState;
}

/** A finding and what its skeptics made of it. */
export interface Verdict {
  /** `f<N>`, numbered in the phase. */
  id: string;
  /** Ref of the task that found it. */
  from: string;
  /** The finding as text (at most 300 characters). */
  finding: string;
  verdict: 'confirmed' | 'refuted';
  /** Skeptics that refuted it, of how many voted. */
  refute: number;
  of: number;
  /** Each skeptic's reasons (at most 300 characters each). */
  reasons: string[];
}

/** The dynamic parts of one phase, as run.json and the report show them. */
export interface DynamicState {
  /** forEach / pipeline: items found, tasks made, items dropped over a cap (never silently). */
  items?: { found: number; made: number; dropped: number; duplicates: number; droppedItems: string[]; dropReason?: string; problems?: string[] };
  verify?: { skeptics: number; refuteBy: string; findings: number; confirmed: number; refuted: number; unverified: number; verdicts: Verdict[] };
  gate?: { kind: 'command' | 'critic'; maxIterations: number; iterations: number; passed: boolean | null; last?: string };
  converge?: { untilDry: number; maxRounds: number; rounds: number; dryRounds: number; findings: number; newPerRound: number[]; stopped?: string };
  merge?: { applied: string[]; conflicts: { ref: string; files: string[]; message: string }[]; empty: number };
}

/** `run.json`: written only by the run owner holding the lease. */
export interface RunRecord {
  schemaVersion: typeof SCHEMA_VERSION;
  runId: string;
  name: string;
  status: RunStatus;
  /** Why the run ended the way it did (absent while running or when completed). */
  reason?: string;
  /** Project directory the agents run in. */
  cwd: string;
  /** Path of the spec file the run came from, when there was one. */
  specPath?: string;
  createdAt: string;
  startedAt: string;
  endedAt?: string;
  /** Elapsed run time of finished segments plus the current one. */
  elapsedMs: number;
  /** How many times the run was resumed. */
  resumes: number;
  plan: Plan;
  phases: PhaseState[];
  totals: Counts;
  /** What the run's agents cost so far, as their CLIs reported it (all attempts, all segments, phase summarizers included). */
  spend?: { usd: number; tokens: number };
  /** Checkpoints waiting for a person right now (status `awaiting_approval`). */
  checkpoints?: CheckpointWait[];
  /** Runners stopped by a usage or auth limit in this segment (status `paused` at the end). */
  pausedRunners?: PausedRunner[];
  /** `paused`: the earliest time the limit is known to reset (ISO), when a CLI said. */
  resumeAfter?: string;
  /** Phase summarizer agents started (or refused) so far, all segments. */
  summarizers?: SummarizerRun[];
  updatedAt: string;
}

/** The owner that wrote `run.started`/`run.resumed` (absent in journals written before it existed). */
export interface EventOwner {
  pid: number;
  host: string;
  /** Its lease's fencing epoch. */
  epoch: number;
}

/** `lease.json`: who owns the run right now. */
export interface LeaseRecord {
  schemaVersion: typeof SCHEMA_VERSION;
  /** Random id of this ownership; a fencing token checked on every heartbeat and before every owner write. */
  ownerId: string;
  /**
   * Fencing epoch: 1 for the first owner of lease.json, one more than the record it replaced for
   * each takeover of a stale lease. Absent in leases written before it existed (read as 0).
   */
  epoch?: number;
  pid: number;
  host: string;
  acquiredAt: string;
  /** Last heartbeat; a lease whose heartbeat is older than its ttl is stale. */
  heartbeatAt: string;
  ttlMs: number;
}

/** `control.json`: a request from any session to the owner (the owner polls it). */
export interface ControlRecord {
  schemaVersion: typeof SCHEMA_VERSION;
  request: 'stop';
  requestedAt: string;
  /** Who asked: pid and host of the requesting process. */
  by: { pid: number; host: string };
}

/**
 * `requests/<id>.json`: what any session asks of the run's owner besides a stop — a checkpoint's
 * answer, or an action on one agent. Each request is its own file, so two sessions never
 * overwrite each other; the owner acts on it, journals it and removes it.
 */
export interface RequestRecord {
  schemaVersion: typeof SCHEMA_VERSION;
  /** File id: time-ordered and unique. */
  id: string;
  request: 'answer' | 'stop_agent' | 'restart_agent';
  /** `answer`: the phase whose checkpoint is answered. */
  phaseId?: string;
  /** `answer`: true approves, false rejects. */
  approve?: boolean;
  /** `stop_agent` / `restart_agent`: the task, `phase/task`. */
  ref?: string;
  requestedAt: string;
  /** Who asked: a description (CLI, MCP with or without a person's form), pid and host. */
  by: { pid: number; host: string; via: string };
}

/**
 * One phase summarizer agent (a phase with `summarize: {agent}` has its digest written by it):
 * what it cost and how it ended. Kept in run.json (`summarizers`) and journaled as
 * `summarizer.finished`, so its spend survives a resume.
 */
export interface SummarizerRun {
  phaseId: string;
  /** `<phaseId>/_digest`: the ref its `agent.spawned` line carries. */
  ref: string;
  agent: string;
  runner: string;
  /** Numbered per phase across owners, so a resume can tell its spawn from an earlier one. */
  attempt: number;
  /** `not_started`: the budget was spent (or could be crossed); the extractive digest stands in. */
  status: 'succeeded' | 'failed' | 'not_started';
  /** Why it failed or did not start. */
  cause?: string;
  pid?: number;
  costUsd?: number;
  usage?: Usage;
  durationMs: number;
  startedAt: string;
}

/** Fields every journal event has. */
interface EventBase {
  /** ISO time. */
  t: string;
}

/** One line of `events.jsonl`, a discriminated union on `type`. */
export type RunEvent =
  | (EventBase & { type: 'run.started'; runId: string; name: string; agentCount: number; owner?: EventOwner })
  | (EventBase & { type: 'run.resumed'; runId: string; reused: number; toRun: number; resumes: number; owner?: EventOwner })
  | (EventBase & { type: 'phase.started'; phaseId: string })
  | (EventBase & { type: 'phase.finished'; phaseId: string; status: PhaseStatus })
  | (EventBase & { type: 'agent.started'; ref: string; key: string; attempt: number; slot: number })
  /** A phase summarizer ended (or was not started); its pid was journaled with `agent.spawned` (ref `<phase>/_digest`). */
  | (EventBase & { type: 'summarizer.finished' } & SummarizerRun)
  | (EventBase & {
      type: 'agent.spawned';
      ref: string;
      attempt: number;
      /** The child's pid, which leads its own process group. */
      pid: number;
      /** Its start time in clock ticks since boot (Linux /proc), to tell it from a reused pid. */
      startTicks?: number;
      /** Where there is no /proc: its start as `ps -o lstart=` prints it, as `YYYY-MM-DDTHH:MM:SS` (UTC). */
      psStart?: string;
    })
  | (EventBase & {
      type: 'agent.finished';
      ref: string;
      key: string;
      attempt: number;
      status: AgentStatus;
      durationMs: number;
      /** File name under agents/. */
      file: string;
      /**
       * What resume needs of the record, so it need not read the file: its cost, its usage and
       * its error type. Absent on lines written before it existed (resume reads those files).
       */
      census?: { costUsd?: number; usage?: Usage; errorType?: string; redactions?: number; checkFailed?: boolean };
    })
  | (EventBase & { type: 'agent.retry_scheduled'; ref: string; attempt: number; delayMs: number; cause: string })
  | (EventBase & { type: 'agent.skipped'; ref: string; cause: string; file: string })
  | (EventBase & {
      type: 'agent.reused';
      /** Every task a resume reuses, in one line: one append instead of one per task. */
      tasks: { ref: string; key: string; file: string }[];
    })
  | (EventBase & { type: 'phase.expanded'; phaseId: string; made: number; reused: number; dropped: number; step: string })
  | (EventBase & { type: 'verify.verdict'; phaseId: string; finding: string; from: string; verdict: 'confirmed' | 'refuted'; refute: number; of: number })
  | (EventBase & { type: 'gate.checked'; phaseId: string; iteration: number; passed: boolean; summary: string })
  | (EventBase & { type: 'converge.round'; phaseId: string; round: number; fresh: number; dryRounds: number })
  | (EventBase & { type: 'merge.applied'; phaseId: string; ref: string; files: string[] })
  | (EventBase & { type: 'merge.conflict'; phaseId: string; ref: string; files: string[]; message: string })
  | (EventBase & { type: 'run.stop_requested'; by: string })
  | (EventBase & {
      type: 'runner.paused';
      /** The runner that may start no more agents in this run, and the limit's kind (`quota` | `auth`). */
      runner: string;
      kind: string;
      ref: string;
      cause: string;
      resumeAfter?: string;
    })
  | (EventBase & { type: 'checkpoint.asked'; phaseId: string; message: string; timeoutAt?: string })
  | (EventBase & {
      type: 'checkpoint.answered';
      phaseId: string;
      /** `approve` / `reject` from a person, or what `onTimeout` did. */
      answer: 'approve' | 'reject' | 'timeout_stop' | 'timeout_continue';
      /** Who answered (CLI, MCP form, terminal, timeout). */
      by: string;
    })
  | (EventBase & {
      type: 'agent.stop_requested' | 'agent.restart_requested';
      ref: string;
      by: string;
      /** What the owner did: stopping / restarting a running attempt, will_not_start, not_running, already_ended, unknown_task, or rerun (a restart by resume). */
      effect: string;
    })
  | (EventBase & { type: 'run.finished'; status: RunStatus; reason?: string; elapsedMs: number });

/** The `type` values of RunEvent. */
export type RunEventType = RunEvent['type'];
