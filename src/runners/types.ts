/**
 * The one interface every runner (command, claude, codex, pi) implements. Shared process plumbing
 * (process groups, timeouts, output caps, env scrubbing) lives in `process.ts`.
 */
import type { AgentDef } from '../spec/types.js';
import type { FailureInfo, Usage } from '../store/types.js';

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
  maxOutputBytes: number;
  /** Aborted when the run stops: the child's process group is killed, status `cancelled`. */
  signal: AbortSignal;
  /** Extra environment for the child, over the parent's (after scrubbing). */
  env?: Record<string, string>;
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
}

/** A runner kind. */
export interface Runner {
  readonly kind: string;
  run(input: RunnerInput): Promise<RunnerResult>;
}
