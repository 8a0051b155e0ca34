/**
 * The `command` runner: runs an arbitrary argv (a script, a test tool, a home-made agent) with the
 * prompt on stdin and fanfold's context in FANFOLD_* variables. Its stdout is the agent's output.
 */
import type { FailureInfo } from '../store/types.js';
import { runProcess, taskEnv, type ProcessResult } from './process.js';
import { wrapForSandbox } from './sandbox.js';
import { checkStructured, invalid } from './structured.js';
import { isQuotaText, quotaFailure } from './limits.js';
import { notStarted, type Runner, type RunnerInput, type RunnerResult } from './types.js';
import { MAX_QUOTED_LINE, tellingLine } from './stderr.js';

/** Construction options of `CommandRunner`; defaults come from `process`. */
export interface CommandRunnerOptions {
  /** Environment the child's env is built from, before scrubbing (default `process.env`). */
  baseEnv?: NodeJS.ProcessEnv;
  /** Time between SIGTERM and SIGKILL on timeout or cancel (default 2000 ms). */
  killGraceMs?: number;
  /** Bytes of stderr kept for the result (default 4096). */
  stderrTailBytes?: number;
}

/** Longest stderr line quoted in a failure message. */
const MAX_QUOTED_STDERR = MAX_QUOTED_LINE;

/** Runs `agent.command` as a child process; the prompt goes to stdin, stdout is the output. */
export class CommandRunner implements Runner {
  /** Always `command`. */
  readonly kind = 'command';
  readonly #baseEnv: NodeJS.ProcessEnv;
  readonly #killGraceMs: number | undefined;
  readonly #stderrTailBytes: number | undefined;

  /** Creates a runner; see `CommandRunnerOptions` for the defaults. */
  constructor(options: CommandRunnerOptions = {}) {
    this.#baseEnv = options.baseEnv ?? process.env;
    this.#killGraceMs = options.killGraceMs;
    this.#stderrTailBytes = options.stderrTailBytes;
  }

  /** Runs one attempt; never throws for anything the child does. */
  async run(input: RunnerInput): Promise<RunnerResult> {
    const argv = input.agent.command;
    if (!argv || argv.length === 0 || !argv[0]) {
      return notStarted({
        type: 'config',
        message: `command runner: agent '${input.agent.name}' has no command (expected a non-empty argv array, got ${JSON.stringify(argv ?? null)})`,
        retryable: false,
      });
    }

    const child = wrapForSandbox({
      agent: input.agent,
      argv,
      env: taskEnv(this.#baseEnv, input),
      cwd: input.cwd,
      inputs: [input.promptFile, input.contextFile],
      ownEnv: this.#baseEnv,
    });
    if ('error' in child) return notStarted(child.error);

    const result = await runProcess({
      argv: child.argv,
      cwd: input.cwd,
      env: child.env,
      stdin: input.prompt,
      timeoutMs: input.timeoutMs,
      ...(input.idleTimeoutMs ? { idleTimeoutMs: input.idleTimeoutMs } : {}),
      maxOutputBytes: input.maxOutputBytes,
      signal: input.signal,
      ...(input.onSpawn ? { onSpawn: input.onSpawn } : {}),
      ...(this.#killGraceMs !== undefined ? { killGraceMs: this.#killGraceMs } : {}),
      ...(this.#stderrTailBytes !== undefined ? { stderrTailBytes: this.#stderrTailBytes } : {}),
    });
    const out = toRunnerResult(result, input.timeoutMs);
    if (!input.schema || out.status !== 'succeeded') return out;
    // A task schema: the output (whole, or its ```json block) must be JSON matching it.
    const { structured: _loose, ...rest } = out;
    if (out.truncated) {
      return { ...rest, status: 'failed', error: invalid(`the output was cut at ${input.maxOutputBytes} bytes (limits.maxOutputBytes), so its JSON cannot be checked`) };
    }
    const check = checkStructured(input.schema, out.output);
    return check.ok ? { ...rest, structured: check.value } : { ...rest, status: 'failed', error: check.error };
  }
}

/**
 * Maps a finished process to a runner result: exit 0 → succeeded, timeout → timed_out, abort →
 * cancelled, anything else → failed with a typed FailureInfo. Exported for the other runners, which
 * share the process-level part of the mapping.
 */
export function toRunnerResult(result: ProcessResult, timeoutMs: number): RunnerResult {
  const base: RunnerResult = {
    status: 'failed',
    output: result.stdout,
    outputBytes: result.stdoutBytes,
    truncated: result.truncated,
    exitCode: result.exitCode,
    signal: result.signal,
    stderrTail: result.stderrTail,
  };
  const failure = processFailure(result, timeoutMs);
  if (failure) return { ...base, status: failure.status, error: failure.error };

  const structured = parseWholeJson(result.stdout, result.truncated);
  return {
    ...base,
    status: 'succeeded',
    ...(structured !== undefined ? { structured } : {}),
  };
}

/**
 * Why a process did not succeed, or undefined when it exited with code 0. The order matters: a
 * cancel or timeout explains the signal that follows it, so they are checked before the exit status.
 */
export function processFailure(
  result: ProcessResult,
  timeoutMs: number,
): { status: 'failed' | 'timed_out' | 'cancelled'; error: FailureInfo } | undefined {
  if (result.spawnError) return { status: 'failed', error: result.spawnError };
  if (result.cancelled) {
    return {
      status: 'cancelled',
      error: { type: 'cancelled', message: 'cancelled: the run was stopped; process group killed', retryable: false },
    };
  }
  if (result.stalledAfterMs !== undefined) {
    return {
      status: 'failed',
      error: {
        type: 'stalled',
        message: `stalled: no output and no CPU time for ${formatDuration(result.stalledAfterMs)} (idle timeout); process group killed`,
        // Why retryable: a hang (a lost connection, a prompt nobody answers) is rarely the task's fault.
        retryable: true,
      },
    };
  }
  if (result.timedOut) {
    return {
      status: 'timed_out',
      error: {
        type: 'timeout',
        message: `timed out after ${formatDuration(timeoutMs)}; process group killed`,
        retryable: true,
      },
    };
  }
  // The error the child printed, not its runtime's version banner or last stack frame.
  const said = tellingLine(result.stderrTail);
  const suffix = said ? `: ${said}` : ' (stderr was empty)';
  if (result.signal !== null) {
    return {
      status: 'failed',
      // Retryable: a signal from outside (OOM killer, a person) says nothing about the next attempt.
      error: { type: 'signal', message: `killed by signal ${result.signal}${suffix}`, retryable: true },
    };
  }
  if (result.exitCode !== 0) {
    // A command that wraps a model CLI may say it hit a usage limit: pause like an agent CLI would.
    // Only the last few lines: a limit is what made it exit, not something a test printed earlier.
    const limit = result.stderrTail.split(/\r?\n/).map((l) => l.trim()).filter(Boolean).slice(-5).reverse().find(isQuotaText);
    if (limit !== undefined) return { status: 'failed', error: quotaFailure('command', limit.slice(0, MAX_QUOTED_STDERR)) };
    return {
      status: 'failed',
      error: { type: 'exit_code', message: `exited with code ${result.exitCode}${suffix}`, retryable: true },
    };
  }
  return undefined;
}

/**
 * A duration for people, exact rather than rounded: 300 → "300ms", 1500 → "1.5s", 90000 → "1m30s",
 * 600000 → "10m", 5400000 → "1h30m".
 */
export function formatDuration(durationMs: number): string {
  if (!Number.isFinite(durationMs) || durationMs < 0) return `${durationMs}ms`;
  if (durationMs < 1000) return `${Math.round(durationMs)}ms`;
  if (durationMs < 60_000) return `${Math.round(durationMs / 100) / 10}s`;
  const totalSeconds = Math.round(durationMs / 1000);
  const h = Math.floor(totalSeconds / 3600);
  const m = Math.floor((totalSeconds % 3600) / 60);
  const sec = totalSeconds % 60;
  return [h ? `${h}h` : '', m ? `${m}m` : '', sec ? `${sec}s` : ''].join('') || '0s';
}

/** The last non-empty line of a stderr tail, trimmed and cut to a readable length. */
export function lastStderrLine(stderrTail: string): string {
  const lines = stderrTail.split(/\r?\n/);
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]?.trim();
    if (line) return line.length > MAX_QUOTED_STDERR ? `${line.slice(0, MAX_QUOTED_STDERR)}…` : line;
  }
  return '';
}

/** The value of `text` when it is, trimmed and whole, a JSON object or array; else undefined. */
export function parseWholeJson(text: string, truncated = false): unknown {
  // A truncated output can only be a prefix of the JSON the child wrote: do not pretend.
  if (truncated) return undefined;
  const trimmed = text.trim();
  const first = trimmed[0];
  const last = trimmed[trimmed.length - 1];
  const looksLikeJson = (first === '{' && last === '}') || (first === '[' && last === ']');
  if (!looksLikeJson) return undefined;
  try {
    return JSON.parse(trimmed) as unknown;
  } catch {
    return undefined;
  }
}
