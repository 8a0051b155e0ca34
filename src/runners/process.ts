/**
 * Shared child-process plumbing for every runner (command, claude, codex, pi).
 *
 * Goals: a child (and everything it spawns) never outlives its attempt; our memory stays bounded
 * whatever the child prints; every way a child can fail comes back as data, never as a throw.
 * Non-goals: a child that calls setsid() itself leaves our process group and cannot be tracked here
 * (we still stop waiting for it, see `exitGraceMs`); Windows process groups.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { stat } from 'node:fs/promises';
import type { FailureInfo } from '../store/types.js';
import type { RunnerInput } from './types.js';
import { HeadBuffer, LineSplitter, TailRing } from './buffers.js';
import { IDLE_CPU_FLOOR_MS, IDLE_CPU_SHARE, groupCpuMs } from './idle.js';
import { childEnv } from './env.js';

export { cutUtf8 } from './buffers.js';

/** Environment keys removed from every child's env (see `buildChildEnv`). */
export const SCRUBBED_ENV_KEYS: readonly string[] = ['CLAUDECODE', 'CLAUDE_CODE_ENTRYPOINT'];

/** Prefix of fanfold's own variables: the parent's values never leak into a child. */
export const FANFOLD_ENV_PREFIX = 'FANFOLD_';

/** Options of `runProcess`. */
export interface ProcessOptions {
  /** argv[0] is the executable (looked up on `env.PATH`); never run through a shell. */
  argv: string[];
  /** Working directory of the child; must exist. */
  cwd: string;
  /** The child's whole environment (build it with `buildChildEnv`). */
  env: NodeJS.ProcessEnv;
  /** Written to the child's stdin, which is then closed; with none, stdin is closed at once. */
  stdin?: string;
  /** Wall-clock limit; then the process group gets SIGTERM, and SIGKILL after `killGraceMs`. */
  timeoutMs: number;
  /** Time between SIGTERM and SIGKILL (default 2000). */
  killGraceMs?: number;
  /**
   * Idle watchdog (0 or absent: off): when the child wrote nothing to stdout or stderr and its
   * process group used no noticeable CPU time (see idle.ts) for this long, the group is killed like
   * on a timeout and the result says `stalled`.
   */
  idleTimeoutMs?: number;
  /**
   * After the main child exits, how long to wait for its stdout/stderr to close before killing the
   * group (a grandchild may still hold them open). Default 1000.
   */
  exitGraceMs?: number;
  /** Stdout kept in memory, in bytes; the rest is counted, not kept. */
  maxOutputBytes: number;
  /** Size of the ring that keeps the end of stderr (default 4096). */
  stderrTailBytes?: number;
  /** Longest line handed to `onStdoutLine`, in bytes; longer lines are cut (default 1 MiB). */
  maxLineBytes?: number;
  /** Aborting kills the process group like a timeout does; the result is `cancelled`. */
  signal?: AbortSignal;
  /** Every stdout chunk as it arrives, whether or not it fits the cap. */
  onStdout?: (chunk: Buffer) => void;
  /**
   * Every stdout line as it completes (without `\n` / `\r\n`), the last one even without a newline.
   * For runners that parse JSONL. `truncated` when the line was longer than `maxLineBytes`.
   */
  onStdoutLine?: (line: string, info: { truncated: boolean }) => void;
  /**
   * Called once the child has started, with its pid (= its process group id). The engine journals
   * it, so an owner that takes over a crashed run can kill agents the dead owner left running.
   * When it returns a promise, `stdin` is written only once that settles: the child gets its
   * prompt only after its pid is on record (a rejection is ignored; the prompt still goes).
   */
  onSpawn?: (pid: number) => void | Promise<void>;
}

/** What `runProcess` returns. It never throws for anything the child does. */
export interface ProcessResult {
  /** Exit code, or null when killed by a signal or never started. */
  exitCode: number | null;
  /** Signal that ended the main child, or null. */
  signal: NodeJS.Signals | null;
  /** Stdout, at most `maxOutputBytes` bytes, cut on a UTF-8 character boundary. */
  stdout: string;
  /** Every stdout byte the child produced, kept or not. */
  stdoutBytes: number;
  /** True when `stdout` holds less than `stdoutBytes`. */
  truncated: boolean;
  /** The last `stderrTailBytes` bytes of stderr (starting on a character boundary). */
  stderrTail: string;
  /** Every stderr byte the child produced. */
  stderrBytes: number;
  /** The timeout fired and the process group was killed. */
  timedOut: boolean;
  /** The abort signal fired and the process group was killed. */
  cancelled: boolean;
  /** Set when the idle watchdog killed the group: the idle timeout that ran out (ms). */
  stalledAfterMs?: number;
  /** Set when the child could not be started at all. */
  spawnError?: FailureInfo;
  /** First error thrown by `onStdout` / `onStdoutLine` (later chunks still reach the hooks). */
  hookError?: unknown;
  /** From start to the last pipe closing. */
  durationMs: number;
  /** Pid of the main child (also its process group id), null when it never started. */
  pid: number | null;
}

/**
 * A copy of `base` without `CLAUDECODE`, `CLAUDE_CODE_ENTRYPOINT` and any `FANFOLD_*`, then `extra`
 * on top. Why: an MCP server launched by Claude Code inherits Claude's markers and a nested `claude`
 * refuses to start with them; and the parent's own FANFOLD_* (run id, task id of an outer run) would
 * mislead a child about which task it is.
 */
export function buildChildEnv(
  base: NodeJS.ProcessEnv,
  extra?: Record<string, string>,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(base)) {
    if (value === undefined) continue;
    if (SCRUBBED_ENV_KEYS.includes(key) || key.startsWith(FANFOLD_ENV_PREFIX)) continue;
    env[key] = value;
  }
  if (extra) {
    for (const [key, value] of Object.entries(extra)) {
      if (value !== undefined) env[key] = value;
    }
  }
  return env;
}

/** Process groups of children still running, so that a dying parent can take them down. */
const liveGroups = new Set<number>();
let exitHookInstalled = false;

/** Number of child process groups started by `runProcess` that have not finished yet. */
export function activeProcessGroups(): number {
  return liveGroups.size;
}

/**
 * Sends `signal` to every live child process group. For the CLI's / engine's SIGINT and SIGTERM
 * handlers: children lead their own groups, so a Ctrl-C in the terminal does not reach them.
 */
export function killActiveProcessGroups(signal: NodeJS.Signals = 'SIGTERM'): void {
  for (const pgid of liveGroups) killGroup(pgid, signal);
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Why: detached children survive our exit. On a normal (or process.exit) exit of the parent,
  // nothing it started for an attempt should keep running unsupervised. Only synchronous work is
  // possible here, hence SIGKILL: there is no one left to wait out a grace period.
  process.on('exit', () => killActiveProcessGroups('SIGKILL'));
}

/**
 * Signals a whole process group. Returns false when the group no longer exists.
 * Why the group and not the pid: agents start shells, tools and servers; killing only the leader
 * would orphan them (and they could keep our pipes open).
 */
function killGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // ESRCH: the group is empty (everyone exited). EPERM can show up for a group whose only member
    // is a zombie on some kernels; either way there is nothing left we may signal.
    if (code === 'ESRCH' || code === 'EPERM') return false;
    throw err;
  }
}

/** Shortens a PATH for an error message: the first entries and how many there are. */
function abbreviatePath(path: string | undefined): string {
  if (path === undefined || path === '') return '(unset)';
  if (path.length <= 120) return path;
  const entries = path.split(':');
  return `${entries.slice(0, 4).join(':')}:…(${entries.length} entries)`;
}

function spawnFailure(
  argv0: string,
  err: NodeJS.ErrnoException,
  env: NodeJS.ProcessEnv,
  cwd: string,
): FailureInfo {
  const name = `'${argv0}'`;
  const viaPath = !argv0.includes('/');
  switch (err.code) {
    case 'ENOENT':
      return {
        type: 'spawn_enoent',
        message: viaPath
          ? `cannot start ${name}: executable not found on PATH (PATH=${abbreviatePath(env.PATH)})`
          : `cannot start ${name}: no such file (or the interpreter named on its #! line is missing)`,
        retryable: false,
      };
    case 'EACCES':
      return {
        type: 'spawn_eacces',
        message: `cannot start ${name}: permission denied (not executable, or a directory)`,
        retryable: false,
      };
    case 'ENOTDIR':
      return {
        type: 'spawn_cwd',
        message: `cannot start ${name}: a part of the path or of the cwd '${cwd}' is not a directory`,
        retryable: false,
      };
    case 'EAGAIN':
    case 'EMFILE':
    case 'ENFILE':
    case 'ENOMEM':
      // Resource exhaustion on our side: another attempt later may well succeed.
      return {
        type: 'spawn_resources',
        message: `cannot start ${name}: ${err.code} (out of processes, file descriptors or memory)`,
        retryable: true,
      };
    default:
      return {
        type: 'spawn_error',
        message: `cannot start ${name}: ${err.code ?? ''} ${err.message}`.replace(/\s+/g, ' ').trim(),
        retryable: false,
      };
  }
}

async function checkCwd(cwd: string): Promise<string | null> {
  try {
    const s = await stat(cwd);
    return s.isDirectory() ? null : `cwd '${cwd}' is not a directory`;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? `cwd '${cwd}' does not exist` : `cwd '${cwd}' is not usable (${code})`;
  }
}

/** setTimeout fires at once for delays above 2^31-1 ms (about 24.8 days): clamp to that. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A caller's bug, not the child's: throw, with what was expected and what arrived. */
function checkDuration(name: string, value: number): number {
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw new RangeError(`runProcess: expected \`${name}\` to be a number of milliseconds ≥ 0, got \`${String(value)}\``);
  }
  return Math.min(value, MAX_TIMER_MS);
}

function checkByteCount(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`runProcess: expected \`${name}\` to be an integer ≥ 0, got \`${String(value)}\``);
  }
}

function emptyResult(started: number, spawnError?: FailureInfo, cancelled = false): ProcessResult {
  return {
    exitCode: null,
    signal: null,
    stdout: '',
    stdoutBytes: 0,
    truncated: false,
    stderrTail: '',
    stderrBytes: 0,
    timedOut: false,
    cancelled,
    ...(spawnError ? { spawnError } : {}),
    durationMs: Date.now() - started,
    pid: null,
  };
}

/**
 * Runs one child process to the end: its own process group, prompt on stdin, bounded stdout and
 * stderr, timeout and abort that kill the whole group (SIGTERM, then SIGKILL after a grace), and
 * no member of the group left alive afterwards. Resolves after the child's pipes closed; never
 * rejects for anything the child does (a failure to start is `spawnError`); rejects with a RangeError
 * for invalid options (a negative timeout, a fractional byte cap).
 */
export async function runProcess(opts: ProcessOptions): Promise<ProcessResult> {
  const started = Date.now();
  const timeoutMs = checkDuration('timeoutMs', opts.timeoutMs);
  const killGraceMs = checkDuration('killGraceMs', opts.killGraceMs ?? 2000);
  const exitGraceMs = checkDuration('exitGraceMs', opts.exitGraceMs ?? 1000);
  const idleMs = checkDuration('idleTimeoutMs', opts.idleTimeoutMs ?? 0);
  checkByteCount('maxOutputBytes', opts.maxOutputBytes);
  if (opts.stderrTailBytes !== undefined) checkByteCount('stderrTailBytes', opts.stderrTailBytes);
  if (opts.maxLineBytes !== undefined) checkByteCount('maxLineBytes', opts.maxLineBytes);
  const argv0 = opts.argv[0];

  if (opts.signal?.aborted) return emptyResult(started, undefined, true);
  if (argv0 === undefined || argv0 === '') {
    return emptyResult(started, {
      type: 'spawn_error',
      message: 'cannot start a process: argv is empty',
      retryable: false,
    });
  }
  // Node reports a missing cwd as ENOENT of the executable, which would send the user looking for
  // the wrong thing; check the cwd first.
  const cwdProblem = await checkCwd(opts.cwd);
  if (cwdProblem !== null) {
    return emptyResult(started, {
      type: 'spawn_cwd',
      message: `cannot start '${argv0}': ${cwdProblem}`,
      retryable: false,
    });
  }
  if (opts.signal?.aborted) return emptyResult(started, undefined, true);

  const stdout = new HeadBuffer(opts.maxOutputBytes);
  const stderr = new TailRing(opts.stderrTailBytes ?? 4096);
  let hookError: unknown;
  const callHook = (fn: () => void): void => {
    try {
      fn();
    } catch (err) {
      hookError ??= err;
    }
  };
  const lines = opts.onStdoutLine
    ? new LineSplitter(opts.maxLineBytes ?? 1024 * 1024, (line, info) =>
        callHook(() => opts.onStdoutLine?.(line, info)),
      )
    : undefined;

  let child: ChildProcess;
  try {
    child = spawn(argv0, opts.argv.slice(1), {
      cwd: opts.cwd,
      env: opts.env,
      // Why detached: the child becomes the leader of a new process group (setsid), so one
      // kill(-pid) reaches it and everything it started, and a terminal's Ctrl-C aimed at us does
      // not hit agents half-way through writing their output.
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
      shell: false,
      windowsHide: true,
    });
  } catch (err) {
    // Synchronous throws: invalid arguments (e.g. a NUL byte in argv or env).
    return emptyResult(started, spawnFailure(argv0, err as NodeJS.ErrnoException, opts.env, opts.cwd));
  }

  let timedOut = false;
  let cancelled = false;
  let stalled = false;
  let exited = false;
  let exitCode: number | null = null;
  let exitSignal: NodeJS.Signals | null = null;
  let spawnErr: NodeJS.ErrnoException | undefined;
  let timeoutTimer: NodeJS.Timeout | undefined;
  const timers = new Set<NodeJS.Timeout>();
  const later = (ms: number, fn: () => void): NodeJS.Timeout => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
    return t;
  };

  const pid = child.pid;
  let recorded: Promise<void> = Promise.resolve();
  if (pid !== undefined) {
    liveGroups.add(pid);
    installExitHook();
    try {
      // A hook must not break the run of the child: a throw or rejection only lets stdin go.
      recorded = Promise.resolve(opts.onSpawn?.(pid)).catch(() => {});
    } catch {
      /* as above */
    }
  }

  let terminating = false;
  /** SIGTERM to the group now, SIGKILL after the grace, then stop waiting for the pipes. */
  const terminate = (): void => {
    if (terminating || pid === undefined) return;
    terminating = true;
    // Why SIGTERM first: agent CLIs flush session files and stop their own tools on TERM.
    killGroup(pid, 'SIGTERM');
    later(killGraceMs, () => {
      // Why SIGKILL to the group even when the leader is gone: a TERM-ignoring grandchild keeps
      // the group (and maybe our pipes) alive.
      killGroup(pid, 'SIGKILL');
      // Last resort: a process that left our group (setsid) may still hold the pipes. Closing our
      // ends makes 'close' fire: we never wait forever on something we cannot kill.
      later(killGraceMs, () => {
        child.stdout?.destroy();
        child.stderr?.destroy();
      });
    });
  };

  const onAbort = (): void => {
    // Once the main child has exited the attempt is over; the exit grace cleans up the rest.
    if (exited || timedOut || stalled) return;
    cancelled = true;
    terminate();
  };
  const onTimeout = (): void => {
    timeoutTimer = undefined;
    if (exited || cancelled || stalled) return;
    timedOut = true;
    terminate();
  };

  // The idle watchdog: a sign of life is output or CPU time of the group; see idle.ts for why CPU.
  let lastSign = Date.now();
  let lastCheck = lastSign;
  let cpuMark = 0; // a group just created has used no CPU time yet
  const checkEveryMs = Math.min(30_000, Math.max(50, Math.floor(idleMs / 4)));
  const onIdleCheck = (): void => {
    if (exited || terminating || pid === undefined) return;
    const at = Date.now();
    const cpu = groupCpuMs(pid);
    if (cpu !== undefined) {
      if (cpu - cpuMark >= Math.max(IDLE_CPU_FLOOR_MS, (at - lastCheck) * IDLE_CPU_SHARE)) lastSign = at;
      cpuMark = cpu;
    }
    lastCheck = at;
    if (at - lastSign >= idleMs) {
      stalled = true;
      terminate();
      return;
    }
    later(checkEveryMs, onIdleCheck);
  };

  const onStdoutData = (chunk: Buffer): void => {
    lastSign = Date.now();
    stdout.push(chunk);
    if (opts.onStdout) callHook(() => opts.onStdout?.(chunk));
    lines?.push(chunk);
  };
  const onStderrData = (chunk: Buffer): void => {
    lastSign = Date.now();
    stderr.push(chunk);
  };

  try {
    await new Promise<void>((resolve) => {
      child.on('error', (err: NodeJS.ErrnoException) => {
        if (pid === undefined) {
          // The process never started: no 'close' is guaranteed to follow, so finish here.
          spawnErr = err;
          resolve();
        }
        // After a successful start 'error' would only report a failed child.kill(), which we do
        // not use; 'close' still comes.
      });
      child.once('exit', (code, sig) => {
        exited = true;
        exitCode = code;
        exitSignal = sig;
        if (timeoutTimer !== undefined) {
          clearTimeout(timeoutTimer);
          timers.delete(timeoutTimer);
          timeoutTimer = undefined;
        }
        // The attempt is over once the main child exits; a grandchild holding stdout open must
        // not keep us waiting. Give the pipes a moment to drain, then take the group down.
        later(exitGraceMs, terminate);
      });
      child.once('close', () => resolve());

      child.stdout?.on('data', onStdoutData);
      child.stderr?.on('data', onStderrData);

      // A child that exits without reading stdin makes our write fail with EPIPE (or ECONNRESET);
      // that is its right, not our failure, and an unhandled 'error' would crash the parent.
      child.stdin?.on('error', () => {});
      // Why after the hook: until the engine has journaled this pid, a crash of the owner would
      // leave a child no resume can identify; without its prompt (stdin ends at EOF when the owner
      // dies) an agent CLI has nothing to work on. Events above are already attached, so waiting
      // here misses no output or exit.
      void recorded.then(() => {
        if (opts.stdin !== undefined && opts.stdin !== '') child.stdin?.end(opts.stdin);
        else child.stdin?.end();
      });

      if (pid !== undefined) {
        timeoutTimer = later(timeoutMs, onTimeout);
        if (idleMs > 0) later(checkEveryMs, onIdleCheck);
        opts.signal?.addEventListener('abort', onAbort, { once: true });
      }
    });
  } finally {
    for (const t of timers) clearTimeout(t);
    timers.clear();
    opts.signal?.removeEventListener('abort', onAbort);
    child.stdout?.off('data', onStdoutData);
    child.stderr?.off('data', onStderrData);
    if (pid !== undefined) {
      // Why a final sweep: a member of the group that closed its stdio (`cmd >/dev/null &`) does
      // not hold up 'close' and would outlive the attempt. The leader has been reaped, but its pid
      // stays reserved as a group id while any member lives, so -pid cannot reach a stranger's
      // group unless the group emptied and the pid was reused in this very instant.
      killGroup(pid, 'SIGKILL');
      liveGroups.delete(pid);
    } else {
      child.stdin?.destroy();
      child.stdout?.destroy();
      child.stderr?.destroy();
    }
  }

  if (pid === undefined) {
    const err = spawnErr ?? Object.assign(new Error('spawn failed without a pid'), { code: 'UNKNOWN' });
    let failure = spawnFailure(argv0, err, opts.env, opts.cwd);
    if (err.code === 'ENOENT') {
      // The cwd was fine a moment ago; if it vanished since, say so instead of blaming the binary.
      const problem = await checkCwd(opts.cwd);
      if (problem !== null) {
        failure = { type: 'spawn_cwd', message: `cannot start '${argv0}': ${problem}`, retryable: false };
      }
    }
    return emptyResult(started, failure);
  }

  lines?.end();
  return {
    exitCode,
    signal: exitSignal,
    stdout: await stdout.text(),
    stdoutBytes: stdout.total,
    truncated: stdout.truncated,
    stderrTail: stderr.toString(),
    stderrBytes: stderr.total,
    timedOut,
    cancelled,
    ...(stalled ? { stalledAfterMs: idleMs } : {}),
    ...(hookError !== undefined ? { hookError } : {}),
    durationMs: Date.now() - started,
    pid,
  };
}

/**
 * The env of a task's child, for every runner: the allowlist of `env.ts` (the owner's env reduced
 * to what the runner needs, the agent's `env` and `passEnv`), the task's ids and files
 * (FANFOLD_RUN_ID, _PHASE_ID, _TASK_ID, _ATTEMPT, _PROMPT_FILE, _CONTEXT_FILE), then the input's
 * own extra env.
 */
export function taskEnv(base: NodeJS.ProcessEnv, input: RunnerInput): NodeJS.ProcessEnv {
  return childEnv({
    agent: input.agent,
    base,
    task: {
      FANFOLD_RUN_ID: input.runId,
      FANFOLD_PHASE_ID: input.phaseId,
      FANFOLD_TASK_ID: input.taskId,
      FANFOLD_ATTEMPT: String(input.attempt),
      FANFOLD_PROMPT_FILE: input.promptFile,
      FANFOLD_CONTEXT_FILE: input.contextFile,
    },
    ...(input.env ? { extra: input.env } : {}),
  });
}
