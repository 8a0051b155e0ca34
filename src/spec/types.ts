/**
 * The normalized plan: what `spec/` produces from a user's WorkflowSpec and what every other layer
 * consumes. The raw spec schema (zod) lives in `schema.ts`; this file holds only the output shapes.
 */

/** Which kind of child process runs an agent. */
export type RunnerKind = 'command' | 'claude' | 'codex' | 'pi';

/** Permission tier of an agent: read-only by default; `edit` needs approval. */
export type Tier = 'read_only' | 'edit';

/** A resolved agent definition, as a task will run it. */
export interface AgentDef {
  /** Name the spec (or a profile) gives the agent. */
  name: string;
  /** Runner kind. */
  runner: RunnerKind;
  /** argv for the `command` runner (no shell unless argv calls one). */
  command?: string[];
  /** Model name for agent CLIs. */
  model?: string;
  /** Tool names for agent CLIs. */
  tools?: string[];
  /** Permission tier. */
  tier: Tier;
  /** Turn cap for agent CLIs. */
  maxTurns?: number;
  /** Idle watchdog of this agent in ms (0 = off); over `Limits.agentIdleTimeoutMs` and the runner's default. */
  idleTimeoutMs?: number;
  /** Continue this agent's CLI session on a retry (over `Limits.continueSessions`); absent: the limit's. */
  continueSessions?: boolean;
  /** Appended to the agent CLI's system prompt. */
  systemPrompt?: string;
  /** Extra environment variables for the child. */
  env?: Record<string, string>;
  /**
   * Names of the owner's environment variables the child receives (values read at run time, never
   * stored): the place for secrets. Everything else of the owner's env is withheld (runners/env.ts).
   */
  passEnv?: string[];
  /** `worktree`: the agent's tasks run in their own git worktree. */
  isolation?: Isolation;
  /**
   * The agent may reach the network. Set by the spec, or implied by WebFetch/WebSearch in `tools`.
   * Without it a sandboxed child has no network, except what its agent CLI needs for its model.
   */
  network?: boolean;
  /** `off`: unconfined on purpose; `required`: never run unconfined (see runners/sandbox.ts). */
  sandbox?: SandboxMode;
  /** Extra folders the agent may read, as written (resolved against the project at run time). */
  readDirs?: string[];
}

/** An agent's `sandbox` setting. */
export type SandboxMode = 'off' | 'required';

/** Where an edit-capable task works: its own git worktree, or the project directory. */
export type Isolation = 'worktree' | 'none';

/** What happens to the rest of the run when a task of a phase fails for good. */
export type OnFailure = 'stop' | 'continue';

/** Limits with defaults applied; durations in milliseconds. */
export interface Limits {
  /** Concurrent agents, 1–16 (default 4). */
  maxConcurrent: number;
  /** Total agents a run may plan, 1–1000 (default 64). */
  maxAgents: number;
  /** Per-agent timeout (default 10 min). */
  agentTimeoutMs: number;
  /** Whole-run timeout (default 60 min). */
  runTimeoutMs: number;
  /**
   * Idle watchdog in ms (0 = off) for every agent that sets none itself; absent: 15 min for
   * claude/codex/pi, off for `command` (see `idleTimeoutFor`).
   */
  agentIdleTimeoutMs?: number;
  /**
   * Continue an agent's CLI session when it runs again after a transient failure, a timeout, a
   * stall or a cut-off (absent: true; see engine/sessions.ts).
   */
  continueSessions?: boolean;
  /** Extra attempts after a transient failure (default 1). */
  retries: number;
  /** First back-off delay; doubles per attempt (default 1 s). */
  retryBackoffMs: number;
  /** Stored output cap per agent in bytes (default 256 KiB); the rest is counted. */
  maxOutputBytes: number;
  /** Cap on the JSON handed to a child in FANFOLD_CONTEXT_FILE (default 64 KiB). */
  maxContextBytes: number;
  /** Spending ceilings; the engine dispatches nothing that could cross them. */
  budget?: Budget;
}

/** `limits.budget`: ceilings and the per-agent expectation used to plan against them. */
export interface Budget {
  usd?: number;
  tokens?: number;
  perAgentUsd?: number;
  perAgentTokens?: number;
}

/** One phase of the plan, in declaration order. */
export interface PlanPhase {
  id: string;
  title: string;
  /** Phases whose every task must finish before this phase's tasks start. */
  dependsOn: string[];
  onFailure: OnFailure;
  /** Refs (`phase/task`) of this phase's tasks, in order. */
  taskRefs: string[];
  /** Marks the synthesis phase whose output the report quotes. */
  final?: boolean;
  /** Agent that writes this phase's digest instead of the extractive default. */
  summarize?: { agent: string };
  /**
   * What makes the phase dynamic; absent for a phase whose tasks are all known at plan time and
   * that nothing checks. A dynamic phase ends at its virtual `<phase>/_done` node, which later
   * phases depend on; its tasks made at run time are appended to `taskRefs` and `Plan.tasks`.
   */
  dynamic?: PhaseDynamics;
  /** A person answers before the phase starts (the run is `awaiting_approval` meanwhile). */
  checkpoint?: Checkpoint;
}

/** A phase's human checkpoint, normalized. */
export interface Checkpoint {
  /** The question shown to the person. */
  message: string;
  /** How long to wait for an answer (ms); absent: until answered. */
  timeoutMs?: number;
  /** What an unanswered checkpoint does once `timeoutMs` has passed. */
  onTimeout: 'stop' | 'continue';
}

/** A task as written in a forEach, pipeline or converge phase: instantiated at run time. */
export interface TaskTemplate {
  id: string;
  prompt: string;
  agent: string;
  schema?: Record<string, unknown>;
  isolation?: Isolation;
}

/** The dynamic parts of one phase, normalized. */
export interface PhaseDynamics {
  /** Ref of the virtual node that starts the phase's dynamic work (`<phase>/_start`). */
  start: string;
  /** Refs the start node waits for. */
  startDeps: string[];
  /** Ref of the virtual node later phases wait for (`<phase>/_done`), what it waits for at first, and its content key. */
  done: string;
  doneDeps: string[];
  doneKey: string;
  /** Refs every task made at run time depends on (the phase's upstream), with their keys. */
  upstream: string[];
  /** Templates, for phases whose tasks are made at run time (forEach, pipeline, converge). */
  templates?: TaskTemplate[];
  forEach?: { from: string; items?: string; max?: number };
  /** A pipeline stage: one task per item of `from`, each waiting only for that item's tasks. */
  pipeline?: { from: string };
  verify?: { skeptics: number; agent: string; refuteBy: 'majority' | 'any' | 'all'; items?: string; prompt?: string; max?: number };
  gate?: {
    /** The agent that runs the check: a synthetic command agent, or the critic. */
    agent: string;
    kind: 'command' | 'critic';
    command?: string;
    prompt?: string;
    maxIterations: number;
    fixAgent: string;
    fixPrompt?: string;
    maxFailureChars: number;
  };
  converge?: { untilDry: number; maxRounds: number; items?: string; key?: string };
  /** True when some task of the phase runs in a git worktree: a merge step applies the patches. */
  merge?: boolean;
}

/** What a task made at run time was made for. */
export interface TaskOrigin {
  kind: 'item' | 'round' | 'skeptic' | 'check' | 'fix';
  /** forEach/pipeline item and its 0-based index. */
  item?: unknown;
  index?: number;
  /** Converge round (1-based). */
  round?: number;
  /** Gate iteration (1-based). */
  iteration?: number;
  /** Skeptic: the finding (as text), where it came from, and which skeptic of N. */
  finding?: string;
  findingId?: string;
  from?: string;
  skeptic?: number;
  /** Fix task: the gate's failure output (bounded). */
  failure?: string;
  /** Converge round: what earlier rounds found (bounded), for `{{seen}}`. */
  seen?: string;
}

/** One task of the plan. */
export interface PlanTask {
  /** `phaseId/taskId`, unique in the plan. */
  ref: string;
  phaseId: string;
  taskId: string;
  /** The prompt template as written (may contain `{{digest}}` placeholders). */
  prompt: string;
  /** Name of the agent in `Plan.agents`. */
  agent: string;
  /** Direct dependencies as refs: phase-level edges expanded to tasks, plus task-level edges. */
  deps: string[];
  /** JSON Schema the task's answer must match (the task's, else its phase's `schema`). */
  schema?: Record<string, unknown>;
  /**
   * Content key: hash of phase, task, prompt, resolved agent and the keys of its dependencies.
   * Never derived from time or randomness. A succeeded record with this key is reused on resume.
   */
  key: string;
  /** `worktree` when the task runs in its own git worktree. */
  isolation?: Isolation;
  /** Set on tasks made at run time (forEach, pipeline, converge, verify, gate). */
  origin?: TaskOrigin;
}

/** The normalized, validated plan. */
export interface Plan {
  schemaVersion: 1;
  name: string;
  goal?: string;
  limits: Limits;
  agents: Record<string, AgentDef>;
  phases: PlanPhase[];
  /** All tasks in a topological order (dependencies before dependents). */
  tasks: PlanTask[];
  /** Longest dependency chain, counted in tasks, with its refs. */
  criticalPath: { length: number; refs: string[] };
  /** Number of agents the plan will start at least (one per task). */
  agentCount: number;
  /** True when some phase makes tasks at run time: agentCount is then a lower bound. */
  dynamic?: boolean;
  /** Things worth a look that are not errors (e.g. a phase with no dependsOn starts at once). */
  warnings: string[];
  /**
   * How the agents are confined on the machine that planned the run, one line each: network
   * access, `sandbox: off`, agents that run unconfined or cannot start without bubblewrap (with
   * the install hint). Shown by the plan, the status and the report. Absent when there is nothing to say.
   */
  security?: string[];
}

/** A validation problem, naming where in the spec it is. */
export interface SpecIssue {
  /** Dotted path into the spec, e.g. `phases[1].tasks[0].dependsOn[0]`; `` for the root. */
  path: string;
  /** Human sentence: what was expected and what arrived. */
  message: string;
}

/** Thrown (or returned) when a spec is invalid. */
export class SpecError extends Error {
  readonly issues: SpecIssue[];
  constructor(issues: SpecIssue[]) {
    super(
      'spec: ' +
        issues
          .map((i) => (i.path ? `${i.path}: ${i.message}` : i.message))
          .join('\n  '),
    );
    this.name = 'SpecError';
    this.issues = issues;
  }
}
