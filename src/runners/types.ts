/**
 * The one interface every runner (command, claude, codex, pi) implements. Shared process plumbing
 * (process groups, timeouts, output caps, env scrubbing) lives in `process.ts`.
 */
import type { AgentDef } from '../spec/types.js';
import type { FailureInfo, Usage } from '../store/types.js';
import type { ContinueFrom, SavedSession } from './sessions.js';

/** Everything a runner needs to start one agent attempt. */
export interface RunnerInput {
  runId: string;
  phaseId: string;
  taskId: string;
  attempt: number;
  /** The prompt after templating; written to the child's stdin (then stdin is closed). */
  prompt: string;
  agent: AgentDef;
  /** Project directory: the child's cwd. */
  cwd: string;
  /** File holding the prompt (exported as FANFOLD_PROMPT_FILE). */
  promptFile: string;
  /** JSON file with dependency outputs (exported as FANFOLD_CONTEXT_FILE). */
  contextFile: string;
  timeoutMs: number;
  /**
   * Idle watchdog in ms (0 or absent: off): no output and no CPU time of the process group for
   * this long kills the group; the attempt fails with `error.type = 'stalled'` (retryable).
   */
  idleTimeoutMs?: number;
  maxOutputBytes: number;
  /** Aborted when the run stops: the child's process group is killed, status `cancelled`. */
  signal: AbortSignal;
  /**
   * Called with the child's pid (its process group id) once it has started; the prompt goes to its
   * stdin only after a returned promise settles (the engine journals the pid first).
   */
  onSpawn?: (pid: number) => void | Promise<void>;
  /** Extra environment for the child, over the parent's (after scrubbing). */
  env?: Record<string, string>;
  /**
   * JSON Schema the answer must match (the task's `schema`). Claude gets it as `--json-schema`,
   * Codex as `--output-schema`; Pi and `command` answers are parsed from their final text. An
   * answer that does not parse or match fails with `error.type = 'invalid_structured_output'`.
   */
  schema?: Record<string, unknown>;
  /**
   * Why the previous attempt's answer was rejected (e.g. the validation errors of an
   * `invalid_structured_output` failure). Agent runners append it to the prompt so the model can
   * correct itself; the `command` runner ignores it.
   */
  feedback?: string;
  /**
   * An MCP server the agent may call (fanfold's read-only `serve --child`): Claude gets it through
   * `--mcp-config`, Codex through `-c mcp_servers.fanfold.*`; Pi has no MCP support and ignores it.
   * Its tools are pre-approved so calls are never refused.
   */
  mcp?: { command: string; args: string[] };
  /**
   * Most this attempt may spend, in USD (e.g. what is left of `limits.budget.usd`). Claude stops
   * itself at it (`--max-budget-usd`; the attempt fails with `error.type = 'budget'`); Codex and Pi
   * have no such control and ignore it (the engine must keep them from starting instead).
   */
  maxBudgetUsd?: number;
  /**
   * The run's folder for agent sessions (see sessions.ts). Set: agent CLIs that can continue a
   * session keep theirs (moved here after the attempt); absent: session persistence stays off.
   */
  sessionDir?: string;
  /** Continue this session instead of starting fresh (needs `sessionDir`); the runner may fall back. */
  continueFrom?: ContinueFrom;
  /** Called before the runner writes into `sessionDir`; throws when the owner lost the run. */
  fence?: () => void;
}

/** What a runner returns; never throws for a child's failure. */
export interface RunnerResult {
  status: 'succeeded' | 'failed' | 'timed_out' | 'cancelled';
  output: string;
  outputBytes: number;
  truncated: boolean;
  exitCode: number | null;
  signal: string | null;
  stderrTail: string;
  error?: FailureInfo;
  structured?: unknown;
  usage?: Usage;
  costUsd?: number;
  sessionId?: string;
  /** The session saved into `sessionDir` after this attempt. */
  session?: SavedSession;
  /** Set when this attempt continued an earlier attempt's session. */
  continuedFrom?: { attempt: number; sessionId: string; ref?: string };
  /** Why a continuation was asked for but the attempt started fresh. */
  continueFallback?: string;
}

/** A runner kind. */
export interface Runner {
  readonly kind: string;
  run(input: RunnerInput): Promise<RunnerResult>;
}

/** What a result or record holds of a child that never ran: no output, no exit, no stderr. */
export const NO_CHILD = { output: '', outputBytes: 0, truncated: false, exitCode: null, signal: null, stderrTail: '' } as const;

/** The failed result of an attempt whose child never started; `error` says why. */
export function notStarted(error: FailureInfo): RunnerResult {
  return { status: 'failed', ...NO_CHILD, error };
}
