/**
 * What the three agent-CLI runners (claude, codex, pi) share: finding the executable, building the
 * child's env, running it over the process plumbing with its stdout parsed line by line, a turn
 * cap enforced from the outside where the CLI has none, and turning whatever happened into one
 * RunnerResult (structured output checked, output bounded, every failure typed with a cause a
 * person can act on and whether a retry can help).
 *
 * Each CLI module supplies a `CliDriver`: pure argv building and a line parser. Those are what
 * the unit tests exercise against recorded real outputs; this file is the glue.
 */
import { accessSync, constants, realpathSync, statSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AgentDef } from '../spec/types.js';
import type { FailureInfo, Usage } from '../store/types.js';
import { cutUtf8 } from './buffers.js';
import { formatDuration, lastStderrLine, parseWholeJson, processFailure } from './command.js';
import { runProcess, taskEnv, type ProcessResult } from './process.js';
import { bwrapStatus, confinementOf, installRootOf, wrapForSandbox } from './sandbox.js';
import { checkStructured, type JsonSchema } from './structured.js';
import { isQuotaText, quotaFailure, retryAfterMsIn } from './limits.js';
import { continuationPrompt, moveFile, nonEmpty, sessionUuid, type ContinueFrom, type SavedSession } from './sessions.js';
import { notStarted, type Runner, type RunnerInput, type RunnerResult } from './types.js';

/** The agent CLIs fanfold drives. */
export type AgentCliKind = 'claude' | 'codex' | 'pi';

/** How to find and install each CLI. */
export const AGENT_CLIS: Readonly<Record<AgentCliKind, { bin: string; binEnv: string; pkg: string; title: string }>> = {
  claude: { bin: 'claude', binEnv: 'FANFOLD_CLAUDE_BIN', pkg: '@anthropic-ai/claude-code', title: 'Claude Code' },
  codex: { bin: 'codex', binEnv: 'FANFOLD_CODEX_BIN', pkg: '@openai/codex', title: 'Codex' },
  pi: { bin: 'pi', binEnv: 'FANFOLD_PI_BIN', pkg: '@mariozechner/pi-coding-agent', title: 'Pi' },
};

/** Longest argv element Linux accepts (MAX_ARG_STRLEN, 32 pages). */
export const MAX_ARG_BYTES = 128 * 1024;

/** The executable of `kind`: `$FANFOLD_<KIND>_BIN` when set, else its usual name (on PATH). */
export function resolveBin(kind: AgentCliKind, env: NodeJS.ProcessEnv): { bin: string; fromEnv: boolean } {
  const override = env[AGENT_CLIS[kind].binEnv]?.trim();
  return override ? { bin: override, fromEnv: true } : { bin: AGENT_CLIS[kind].bin, fromEnv: false };
}

/**
 * The full path of `name` if it is an executable file: as given when it contains a `/`, else the
 * first match on `env.PATH`. Used to pick a default runner and to explain a missing CLI.
 */
export function findExecutable(name: string, env: NodeJS.ProcessEnv): string | undefined {
  const isExec = (p: string): boolean => {
    try {
      accessSync(p, constants.X_OK);
      return statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (name.includes('/')) return isExec(name) ? path.resolve(name) : undefined;
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const p = path.join(dir, name);
    if (isExec(p)) return p;
  }
  return undefined;
}

/** Whether the CLI of `kind` can be started with this env (override or PATH). */
export function isCliInstalled(kind: AgentCliKind, env: NodeJS.ProcessEnv): boolean {
  return findExecutable(resolveBin(kind, env).bin, env) !== undefined;
}

/** The sentence that tells a person how to get the CLI of `kind`. */
export function installHint(kind: AgentCliKind): string {
  const c = AGENT_CLIS[kind];
  return `install it: npm i -g ${c.pkg} (or set ${c.binEnv} to the path of its executable)`;
}

/** What a CLI module builds for one attempt. */
export interface Invocation {
  /** argv without the executable. */
  args: string[];
  /** Written to the child's stdin, which is then closed. */
  stdin: string;
}

/** Files an invocation may need (e.g. Codex's `--output-schema FILE`), in a private temp folder. */
export interface InvocationFiles {
  /** Absolute path of the task's schema written as JSON, when the driver asked for one. */
  schemaFile?: string;
}

/** What a parser read from the CLI's stdout, interpreted. */
export interface CliOutcome {
  /** The final answer text (not yet bounded). */
  text: string;
  /** Set when the agent failed although the process may have exited 0. */
  failure?: FailureInfo;
  /** A structured value the CLI itself produced and validated (Claude's `structured_output`). */
  structured?: { value: unknown };
  usage?: Usage;
  costUsd?: number;
  sessionId?: string;
}

/** Parses one CLI's stdout, a line at a time, in bounded memory. */
export interface CliParser {
  /** One stdout line; `truncated` when it was longer than the line cap. */
  line(text: string, truncated: boolean): void;
  /** Set once the CLI went past the agent's turn cap (for CLIs without their own); the run is killed. */
  readonly capExceeded?: string;
  /**
   * Set once the CLI reported a tool call it refused for want of permission. The run is killed at
   * once and fails with this: the attempt cannot succeed without a change to the spec, and a child
   * must never sit waiting for a person to approve anything.
   */
  readonly refused?: FailureInfo;
  /** True once the CLI printed its final event (result, turn end): only its exit is left. */
  readonly done: boolean;
  /** What the agent was doing, for timeout and crash messages (e.g. "3 model turns, last tool: Read"). */
  activity(): string;
  /** The outcome once the process ended normally (not timed out or cancelled). */
  finish(proc: ProcessResult): CliOutcome;
}

/** The per-CLI part of a runner. */
export interface CliDriver {
  readonly kind: AgentCliKind;
  /** Whether this attempt needs `files.schemaFile` (written before `invocation` is called). */
  needsSchemaFile(input: RunnerInput): boolean;
  /** argv and stdin for one attempt (pure). */
  invocation(input: RunnerInput, files: InvocationFiles): Invocation;
  /** A fresh parser for one attempt. */
  parser(input: RunnerInput): CliParser;
  /**
   * Set by CLIs fanfold runs inside bwrap (Pi): the folders the CLI reads and writes besides its
   * install (its config and auth), and whether it keeps the network (for its model API).
   */
  sandbox?(input: RunnerInput, env: NodeJS.ProcessEnv): { read?: string[]; write?: string[]; network?: boolean };
  /** Set by CLIs whose sessions fanfold keeps and continues (see sessions.ts). */
  session?: SessionSupport;
}

/** Where a CLI keeps its sessions, and how it says it cannot resume one. */
export interface SessionSupport {
  /** The CLI's home for a child with `env` (origins are relative to it). */
  home(env: NodeJS.ProcessEnv): string;
  /** Where the CLI keeps session `id` of a child in `cwd`, relative to its home (it may not exist yet). */
  origin(cwd: string, id: string): string;
  /** Finds session `id` in the CLI's home when it is not at `origin` (relative path), or undefined. */
  find(home: string, id: string): Promise<string | undefined>;
  /** True when the attempt failed because the CLI could not resume the session. */
  cannotResume(result: RunnerResult): boolean;
}

/** Options shared by the agent CLI runners. */
export interface AgentCliRunnerOptions {
  /** Environment the child's env is built from, and where FANFOLD_<KIND>_BIN is read (default `process.env`). */
  baseEnv?: NodeJS.ProcessEnv;
  /** Time between SIGTERM and SIGKILL on timeout or cancel (default 2000 ms). */
  killGraceMs?: number;
  /** Bytes of stderr kept for the result (default 4096). */
  stderrTailBytes?: number;
  /** See EXIT_GRACE_AFTER_DONE_MS (default). */
  exitGraceAfterDoneMs?: number;
}

/** Raw stdout kept besides the parsed events, for diagnostics only. */
const RAW_STDOUT_BYTES = 64 * 1024;

/**
 * How long a CLI may take to exit after printing its final event before its process group is
 * killed. Why: a CLI that lingers (an MCP server or a shell it started that does not close) would
 * otherwise hold its slot until the agent timeout, and turn a finished answer into a timeout.
 */
export const EXIT_GRACE_AFTER_DONE_MS = 15_000;

/** The env of an agent CLI child: the same as any runner's (see `taskEnv`). */
export const agentEnv = taskEnv;

/**
 * Runs one attempt of an agent CLI through `driver`; never throws for anything the child does.
 * With `input.sessionDir` and a driver that supports sessions, the CLI's session is kept in the
 * run folder after the attempt, and `input.continueFrom` continues an earlier one (falling back to
 * a fresh start, with the reason in `continueFallback`, when the session cannot be continued).
 */
export async function runAgentCli(driver: CliDriver, input: RunnerInput, options: AgentCliRunnerOptions = {}): Promise<RunnerResult> {
  const s = driver.session;
  const { continueFrom: asked, ...plain } = input;
  if (!s || input.sessionDir === undefined) return runOnce(driver, plain, options);
  const env = agentEnv(options.baseEnv ?? process.env, input);
  const home = s.home(env);
  let fallback: string | undefined;
  let from = asked;
  if (from) {
    fallback = await restoreSession(s, home, input.cwd, from);
    if (fallback !== undefined) from = undefined;
  }
  // `feedback` comes with a continuation only (a fresh prompt from the engine already holds it).
  const fresh = asked ? withoutFeedback(plain) : plain;
  let result = from
    ? await runOnce(driver, { ...fresh, continueFrom: from, ...(from.ref === undefined ? { prompt: continuationPrompt(from, input.feedback) } : {}) }, options)
    : await runOnce(driver, fresh, options);
  if (from && s.cannotResume(result)) {
    fallback = `${driver.kind} could not resume session ${from.sessionId} of attempt ${from.attempt}: ${oneLine(result.error?.message ?? result.output, 200)}`;
    from = undefined;
    result = await runOnce(driver, fresh, options);
  }
  const id = result.sessionId ?? (from ? from.sessionId : freshSessionId(driver, input));
  const session = id ? await saveSession(s, home, input, driver.kind, id).catch(() => undefined) : undefined;
  // The copy put back for a continuation is the run's, not the CLI's: none is left in its home.
  if (asked && (from === undefined || id !== from.sessionId)) {
    await rm(path.join(home, asked.origin ?? s.origin(input.cwd, asked.sessionId)), { force: true }).catch(() => {});
  }
  return {
    ...result,
    ...(session ? { session } : {}),
    ...(from ? { continuedFrom: { attempt: from.attempt, sessionId: from.sessionId, ...(from.ref ? { ref: from.ref } : {}) } } : {}),
    ...(fallback !== undefined ? { continueFallback: fallback } : {}),
  };
}

/** `input` without its feedback (a continuation prompt carries it already). */
function withoutFeedback(input: RunnerInput): RunnerInput {
  const { feedback: _feedback, ...rest } = input;
  return rest;
}

/** The session id a fresh attempt of `driver` was started with, when fanfold chose it. */
function freshSessionId(driver: CliDriver, input: RunnerInput): string | undefined {
  return driver.kind === 'claude' ? sessionUuid(input.runId, `${input.phaseId}/${input.taskId}`, input.attempt) : undefined;
}

/**
 * Puts the session of `from` where the CLI looks for it; returns why it cannot be continued, or
 * undefined when it is in place. The run's copy stays (copied, not moved): an attempt that dies
 * before its session is saved again leaves the earlier one intact.
 */
async function restoreSession(s: SessionSupport, home: string, cwd: string, from: ContinueFrom): Promise<string | undefined> {
  const origin = from.origin ?? s.origin(cwd, from.sessionId);
  const target = path.join(home, origin);
  if (from.file !== undefined) {
    if (!(await nonEmpty(from.file))) return `the session of attempt ${from.attempt} (${path.basename(from.file)}) is missing from the run folder`;
    if (origin !== s.origin(cwd, from.sessionId)) return `the session of attempt ${from.attempt} was made in another folder (${path.dirname(origin)}); this attempt runs in ${cwd}`;
    try {
      await mkdir(path.dirname(target), { recursive: true });
      await copyFile(from.file, target);
    } catch (e) {
      return `cannot put the session of attempt ${from.attempt} back into the CLI's home: ${(e as Error).message}`;
    }
    return undefined;
  }
  // A cut-off attempt's session never reached the run folder: it is still in the CLI's home.
  if (await nonEmpty(target)) return undefined;
  const found = await s.find(home, from.sessionId);
  if (found === undefined) return `the session of attempt ${from.attempt} (${from.sessionId}) was not found in the CLI's home`;
  return found === s.origin(cwd, from.sessionId) ? undefined : `the session of attempt ${from.attempt} was made in another folder; this attempt runs in ${cwd}`;
}

/** Moves session `id` from the CLI's home into the run's session folder; undefined when there is none. */
async function saveSession(s: SessionSupport, home: string, input: RunnerInput, kind: AgentCliKind, id: string): Promise<SavedSession | undefined> {
  let origin = s.origin(input.cwd, id);
  if (!(await nonEmpty(path.join(home, origin)))) {
    const found = await s.find(home, id);
    if (found === undefined) return undefined;
    origin = found;
  }
  input.fence?.();
  const file = path.join(input.sessionDir!, `${input.phaseId}.${input.taskId}.${input.attempt}.${kind}.jsonl`);
  await moveFile(path.join(home, origin), file);
  return { file, origin };
}

/** One run of the CLI (a fresh start, or the continuation `input.continueFrom`). */
async function runOnce(driver: CliDriver, input: RunnerInput, options: AgentCliRunnerOptions): Promise<RunnerResult> {
  const baseEnv = options.baseEnv ?? process.env;
  const { bin, fromEnv } = resolveBin(driver.kind, baseEnv);
  let tmp: string | undefined;
  try {
    const files: InvocationFiles = {};
    if (input.schema && driver.needsSchemaFile(input)) {
      tmp = await mkdtemp(path.join(tmpdir(), `fanfold-${driver.kind}-`));
      files.schemaFile = path.join(tmp, 'schema.json');
      await writeFile(files.schemaFile, JSON.stringify(input.schema), { mode: 0o600 });
    }
    // A continuation's conversation already holds the pointer to the context file.
    const note = input.continueFrom && input.continueFrom.ref === undefined ? '' : await contextNote(input.contextFile);
    const inv = driver.invocation(note ? { ...input, prompt: `${input.prompt}${note}` } : input, files);
    const tooLong = inv.args.find((a) => Buffer.byteLength(a) >= MAX_ARG_BYTES);
    if (tooLong !== undefined) {
      return configFailure(
        `${driver.kind} runner: one command-line argument is ${Buffer.byteLength(tooLong)} bytes, over the ${MAX_ARG_BYTES}-byte limit of the OS ` +
          `(it starts '${tooLong.slice(0, 60)}…'); shorten agent '${input.agent.name}'s systemPrompt or the task's schema`,
      );
    }

    const parser = driver.parser(input);
    const cap = new AbortController();
    const linger = new AbortController();
    const signal = AbortSignal.any([input.signal, cap.signal, linger.signal]);
    let lingerTimer: NodeJS.Timeout | undefined;
    // The files fanfold writes for an argv (Codex's --output-schema) are inputs too: readable inside.
    const child = confineCli(driver, input, bin, agentEnv(baseEnv, input), baseEnv, files.schemaFile ? [files.schemaFile] : []);
    if ('error' in child) return configFailure(child.error.message, child.error.type);
    const proc = await runProcess({
      argv: [...child.argv, ...inv.args],
      cwd: input.cwd,
      env: child.env,
      stdin: inv.stdin,
      timeoutMs: input.timeoutMs,
      ...(input.idleTimeoutMs ? { idleTimeoutMs: input.idleTimeoutMs } : {}),
      maxOutputBytes: RAW_STDOUT_BYTES,
      // A final answer (or Pi's whole message list) arrives on one line: room for it, bounded.
      maxLineBytes: Math.max(8 * 1024 * 1024, 4 * input.maxOutputBytes),
      signal,
      ...(input.onSpawn ? { onSpawn: input.onSpawn } : {}),
      onStdoutLine: (line, info) => {
        parser.line(line, info.truncated);
        if ((parser.capExceeded !== undefined || parser.refused !== undefined) && !cap.signal.aborted) cap.abort();
        if (parser.done && lingerTimer === undefined) {
          lingerTimer = setTimeout(() => linger.abort(), options.exitGraceAfterDoneMs ?? EXIT_GRACE_AFTER_DONE_MS);
        } else if (!parser.done && lingerTimer !== undefined) {
          clearTimeout(lingerTimer);
          lingerTimer = undefined;
        }
      },
      ...(options.killGraceMs !== undefined ? { killGraceMs: options.killGraceMs } : {}),
      ...(options.stderrTailBytes !== undefined ? { stderrTailBytes: options.stderrTailBytes } : {}),
    }).finally(() => clearTimeout(lingerTimer));
    const outer = input.signal.aborted;
    return toResult(driver.kind, input, proc, parser, {
      bin,
      fromEnv,
      capped: cap.signal.aborted && !outer,
      lingered: linger.signal.aborted && !cap.signal.aborted && !outer && !proc.timedOut && proc.stalledAfterMs === undefined,
    });
  } finally {
    if (tmp) await rm(tmp, { recursive: true, force: true }).catch(() => {});
  }
}

/**
 * A line pointing the agent at the context file when it holds outputs of tasks this one depends
 * on. Why: a prompt carries at most digests; an agent CLI can read the file for the full outputs,
 * but only if it is told where it is (it does not see FANFOLD_CONTEXT_FILE without a shell).
 */
export async function contextNote(contextFile: string): Promise<string> {
  let what: string;
  try {
    // A huge file is not parsed just to count its entries.
    if ((await stat(contextFile)).size > 4 * 1024 * 1024) what = 'the tasks';
    else {
      const deps = (JSON.parse(await readFile(contextFile, 'utf8')) as { deps?: unknown }).deps;
      if (!Array.isArray(deps) || deps.length === 0) return '';
      what = `the ${deps.length} task${deps.length === 1 ? '' : 's'}`;
    }
  } catch {
    return '';
  }
  return `\n\n(The outputs of ${what} this task depends on are in ${contextFile}, JSON: deps[].ref/status/output/structured. Read it when the text above is not enough.)`;
}

/**
 * The CLI's argv prefix and env, inside bwrap when the driver asks for it (see sandbox.ts); the
 * CLI's own install and state folders stay visible to it there.
 */
function confineCli(
  driver: CliDriver,
  input: RunnerInput,
  bin: string,
  env: NodeJS.ProcessEnv,
  ownEnv: NodeJS.ProcessEnv,
  extraInputs: string[] = [],
): { argv: string[]; env: NodeJS.ProcessEnv } | { error: FailureInfo } {
  if (!driver.sandbox) return { argv: [bin], env };
  // An absolute, symlink-free path: the sandbox shows the install folder, not the PATH entry.
  const found = findExecutable(bin, env);
  let exe = bin;
  if (found) {
    try {
      exe = realpathSync(found);
    } catch {
      exe = found;
    }
  }
  // A CLI that is not there is not started at all: the usual "install it" failure says why,
  // unless it could not run here anyway (Pi without bubblewrap): then that is said first.
  if (!found) {
    const how = confinementOf(input.agent, bwrapStatus(ownEnv));
    return how.mode === 'refused' ? { error: how.error } : { argv: [bin], env };
  }
  const needs = driver.sandbox(input, env);
  return wrapForSandbox({
    agent: input.agent,
    argv: [exe],
    env,
    cwd: input.cwd,
    inputs: [input.promptFile, input.contextFile, ...extraInputs],
    cliRead: [installRootOf(found), ...(needs.read ?? [])],
    cliWrite: needs.write ?? [],
    cliNetwork: needs.network ?? false,
    ownEnv,
  });
}

function configFailure(message: string, type = 'config'): RunnerResult {
  return notStarted({ type, message, retryable: false });
}

function toResult(
  kind: AgentCliKind,
  input: RunnerInput,
  proc: ProcessResult,
  parser: CliParser,
  how: { bin: string; fromEnv: boolean; capped: boolean; lingered: boolean },
): RunnerResult {
  const base = {
    exitCode: proc.exitCode,
    signal: proc.signal,
    stderrTail: proc.stderrTail,
  };
  if (proc.spawnError?.type === 'spawn_enoent' || proc.spawnError?.type === 'spawn_eacces') {
    const c = AGENT_CLIS[kind];
    const where = how.fromEnv
      ? `${c.binEnv}='${how.bin}' is not an executable file`
      : `'${how.bin}' was not found on PATH`;
    return {
      ...base,
      ...bounded('', input.maxOutputBytes),
      status: 'failed',
      error: { type: 'agent_cli_missing', message: `${c.title} CLI not available: ${where}; ${installHint(kind)}`, retryable: false },
    };
  }
  if (how.capped && parser.refused !== undefined && parser.capExceeded === undefined) {
    const outcome = safeFinish(parser, proc);
    return { ...base, ...bounded(outcome.text, input.maxOutputBytes), ...extras(outcome), status: 'failed', error: parser.refused };
  }
  if (how.capped) {
    const outcome = safeFinish(parser, proc);
    return {
      ...base,
      ...bounded(outcome.text, input.maxOutputBytes),
      ...extras(outcome),
      status: 'failed',
      error: {
        type: 'max_turns',
        message: `${kind} stopped by fanfold: ${parser.capExceeded}; raise maxTurns of agent '${input.agent.name}' or narrow the task`,
        retryable: false,
      },
    };
  }
  // The CLI printed its final event but did not exit: it was stopped; its answer stands.
  const failure = how.lingered ? undefined : processFailure(proc, input.timeoutMs);
  if (failure && (failure.status !== 'failed' || proc.spawnError || proc.stalledAfterMs !== undefined)) {
    // Timed out, stalled, cancelled, or never started: say what the agent was doing when it was stopped.
    const activity = parser.activity();
    const outcome = proc.spawnError ? undefined : safeFinish(parser, proc);
    return {
      ...base,
      ...bounded(outcome?.text ?? '', input.maxOutputBytes),
      ...(outcome ? extras(outcome) : {}),
      status: failure.status,
      error: activity ? { ...failure.error, message: `${failure.error.message} (${kind}: ${activity})` } : failure.error,
    };
  }

  const outcome = safeFinish(parser, proc);
  const out = { ...base, ...bounded(outcome.text, input.maxOutputBytes), ...extras(outcome) };
  if (outcome.failure) return { ...out, status: 'failed', error: outcome.failure };
  if (failure) {
    // The CLI exited non-zero without saying why in its output.
    const stdoutHint = lastStderrLine(proc.stdout.replace(/^\s*\{.*$/gm, ''));
    const message = stdoutHint && !lastStderrLine(proc.stderrTail) ? `${failure.error.message}; stdout: ${stdoutHint}` : failure.error.message;
    return { ...out, status: 'failed', error: { ...failure.error, message: `${kind} ${message}` } };
  }

  if (input.schema) {
    const check = checkStructured(input.schema as JsonSchema, outcome.text, outcome.structured);
    if (!check.ok) return { ...out, status: 'failed', error: check.error };
    return { ...out, status: 'succeeded', structured: check.value };
  }
  const loose = outcome.structured?.value ?? (out.truncated ? undefined : parseWholeJson(outcome.text));
  return { ...out, status: 'succeeded', ...(loose !== undefined ? { structured: loose } : {}) };
}

function safeFinish(parser: CliParser, proc: ProcessResult): CliOutcome {
  try {
    return parser.finish(proc);
  } catch (err) {
    return { text: '', failure: { type: 'protocol', message: `cannot read the CLI's output: ${(err as Error).message}`, retryable: true } };
  }
}

function extras(o: CliOutcome): Pick<RunnerResult, 'usage' | 'costUsd' | 'sessionId'> {
  return {
    ...(o.usage ? { usage: o.usage } : {}),
    ...(o.costUsd !== undefined ? { costUsd: o.costUsd } : {}),
    ...(o.sessionId ? { sessionId: o.sessionId } : {}),
  };
}

/** `text` cut to `max` bytes on a character boundary, with its full size and whether it was cut. */
export function bounded(text: string, max: number): { output: string; outputBytes: number; truncated: boolean } {
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= max) return { output: text, outputBytes: buf.length, truncated: false };
  return { output: cutUtf8(buf, max).toString('utf8'), outputBytes: buf.length, truncated: true };
}

/** How a model-API failure reads, and whether a retry can help. */
export interface ApiFailureHints {
  /** What to do when the credentials are missing or rejected. */
  auth: string;
}

/**
 * Classifies an error an agent CLI reported about its model API, from the HTTP status when known
 * and the message otherwise. Auth problems (`auth`) and usage limits (`quota`, whatever the
 * status: providers send them as 429, 402 or 400) are not retryable and pause the run (see
 * engine/breaker.ts); bad requests are not retryable; rate limits (with their retry-after when the
 * text gives one), overload, server errors and network trouble are.
 */
export function apiFailure(kind: AgentCliKind, status: number | undefined, message: string, hints: ApiFailureHints): FailureInfo {
  const text = oneLine(readableApiError(message)).replace(/[.;:,\s]+$/, '');
  const code = status ?? statusIn(text);
  const authText = /not logged in|\/login|log ?in to|invalid (x-)?api[- ]key|incorrect api key|no api key|unauthori[sz]ed|authentication|api key (is )?(missing|not set|required)/i;
  if (code === 401 || code === 403 || (code === undefined && authText.test(text))) {
    return { type: 'auth', message: `${kind} cannot use its model: ${text}; ${hints.auth}`, retryable: false };
  }
  if (isQuotaText(text)) return quotaFailure(kind, text);
  const retryAfterMs = retryAfterMsIn(text);
  const wait = retryAfterMs !== undefined ? { retryAfterMs } : {};
  if (code === 408 || code === 409 || code === 429 || (code !== undefined && code >= 500)) {
    return { type: 'model_api', message: `${kind}: the model API failed (${code}): ${text}`, retryable: true, ...wait };
  }
  if (code !== undefined && code >= 400) {
    return {
      type: 'model_api',
      message: `${kind}: the model API refused the request (${code}): ${text}; check agent's model name and the provider's settings`,
      retryable: false,
    };
  }
  const transient = /overload|rate.?limit|too many requests|timed? ?out|timeout|temporar|high demand|disconnect|connection|network|econn|socket|unavailable|try again/i;
  const retryable = transient.test(text);
  return { type: 'model_api', message: `${kind}: ${text}`, retryable, ...(retryable ? wait : {}) };
}

/**
 * An error message with an API's JSON error body made readable: `500 {"type":"error","error":
 * {"type":"api_error","message":"boom"}}` → `500 api_error: boom`. Other text is returned as is.
 */
export function readableApiError(message: string): string {
  const start = message.indexOf('{');
  const end = message.lastIndexOf('}');
  if (start === -1 || end <= start) return message;
  let body: unknown;
  try {
    body = JSON.parse(message.slice(start, end + 1));
  } catch {
    return message;
  }
  const err = (body as { error?: unknown })?.error;
  const e = (typeof err === 'object' && err !== null ? err : body) as { type?: unknown; code?: unknown; message?: unknown };
  if (typeof e.message !== 'string') return message;
  const kind = typeof e.type === 'string' ? e.type : typeof e.code === 'string' ? e.code : undefined;
  const rest = `${message.slice(0, start)}${kind ? `${kind}: ` : ''}${e.message}${message.slice(end + 1)}`;
  return rest.trim();
}

function statusIn(text: string): number | undefined {
  const m = /(?:^|\b(?:status|error|API Error:?)\s*)([45]\d\d)\b/i.exec(text) ?? /^([45]\d\d)\b/.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** `text` on one line, cut to a readable length. */
export function oneLine(text: string, max = 600): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

/** Adds a tool name to a short list of the last ones seen (for activity messages). */
export function describeActivity(turns: number, tools: number, lastTool: string | undefined, unit = 'model turn'): string {
  if (turns === 0 && tools === 0) return 'no model reply yet';
  const parts = [`${turns} ${unit}${turns === 1 ? '' : 's'}`, `${tools} tool call${tools === 1 ? '' : 's'}`];
  if (lastTool) parts.push(`last tool: ${lastTool}`);
  return parts.join(', ');
}

/** `n` milliseconds for messages. */
export { formatDuration };

/** The agent's permission tier, for messages. */
export function tierOf(agent: AgentDef): string {
  return agent.tier === 'edit' ? 'edit' : 'read_only';
}

/**
 * A runner for one agent CLI: the shared plumbing of `runAgentCli` with that CLI's driver. The
 * claude, codex and pi runners are this class with their drivers.
 */
export class AgentCliRunner implements Runner {
  readonly kind: string;
  readonly #driver: CliDriver;
  readonly #options: AgentCliRunnerOptions;

  /** Creates a runner; the executable is `$FANFOLD_<KIND>_BIN` or the CLI on PATH. */
  constructor(driver: CliDriver, options: AgentCliRunnerOptions = {}) {
    this.kind = driver.kind;
    this.#driver = driver;
    this.#options = options;
  }

  /** Runs one attempt; never throws for anything the child does. */
  run(input: RunnerInput): Promise<RunnerResult> {
    return runAgentCli(this.#driver, input, this.#options);
  }
}
