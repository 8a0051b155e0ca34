/**
 * The `codex` runner: `codex exec --json`, prompt on stdin (`-`), events as JSONL, the last
 * `agent_message` as the answer and `turn.completed` usage as tokens (Codex reports no cost).
 *
 * Facts this relies on (Codex 0.169.0, checked against the real CLI, see tests/e2e/README.md):
 * - It reads stdin when it is not a terminal; with `-` as the prompt, stdin *is* the prompt.
 * - `-c developer_instructions="…"` adds a developer message after Codex's own instructions.
 * - `--output-schema FILE` becomes `text.format` (strict JSON schema) of the request; the answer
 *   comes back as JSON text in the last agent message.
 * - Failures: `turn.failed {error.message}` (exit 1). `error` events are not all fatal (they carry
 *   "Reconnecting… 2/5" notes), nor are `item` entries of type `error` (model metadata warnings).
 * - MCP servers: `-c mcp_servers.<name>.command/args`, and `default_tools_approval_mode =
 *   "approve"` or every call is refused under `approval_policy = "never"`; `required = true` or the
 *   first model request goes out before the server is ready (its tools then cannot be called).
 * - There is no turn cap flag: fanfold counts tool rounds and stops the process past `maxTurns`.
 */
import os from 'node:os';
import path from 'node:path';
import type { AgentDef } from '../spec/types.js';
import type { Usage } from '../store/types.js';
import {
  apiFailure,
  describeActivity,
  oneLine,
  AgentCliRunner,
  type AgentCliRunnerOptions,
  type CliDriver,
  type CliOutcome,
  type CliParser,
  type Invocation,
  type InvocationFiles,
} from './agent-cli.js';
import type { ProcessResult } from './process.js';
import { mcpReadPaths } from './sandbox.js';
import { isObjectSchema, schemaInstructions, withFeedback, type JsonSchema } from './structured.js';
import type { RunnerInput } from './types.js';

/**
 * A TOML basic string. JSON's escapes are TOML's, except that TOML also forbids a raw DEL
 * (U+007F), which JSON.stringify leaves alone.
 */
export function tomlString(s: string): string {
  return JSON.stringify(s).replace(/\u007f/g, '\\u007F');
}

/** A TOML array of basic strings. */
export function tomlStringArray(xs: readonly string[]): string {
  return `[${xs.map(tomlString).join(', ')}]`;
}

/** Codex's sandbox for a tier: read_only → `read-only`, edit → `workspace-write`. */
export function codexSandbox(agent: AgentDef): 'read-only' | 'workspace-write' {
  return agent.tier === 'edit' ? 'workspace-write' : 'read-only';
}

/** `-c` overrides giving Codex fanfold's child MCP server, its tools pre-approved. */
export function codexMcpOverrides(mcp: { command: string; args: string[] }): string[] {
  return [
    '-c', `mcp_servers.fanfold.command=${tomlString(mcp.command)}`,
    '-c', `mcp_servers.fanfold.args=${tomlStringArray(mcp.args)}`,
    '-c', 'mcp_servers.fanfold.default_tools_approval_mode="approve"',
    // Without it Codex asks the model before the server is up: the first tool_search finds nothing
    // and calls fail with "unsupported call". Required = wait for it (and fail loudly if it cannot start).
    '-c', 'mcp_servers.fanfold.required=true',
  ];
}

/**
 * argv (without the executable) and stdin of one attempt. `files.schemaFile` holds the schema
 * when the task has an object schema (see `needsSchemaFile`).
 */
export function codexInvocation(input: RunnerInput, files: InvocationFiles = {}): Invocation {
  const { agent } = input;
  const args = [
    'exec',
    '--json',
    '--skip-git-repo-check',
    '--ephemeral',
    `--sandbox=${codexSandbox(agent)}`,
    `--cd=${input.cwd}`,
    // Nobody can answer an approval prompt: refuse instead of waiting.
    '-c', 'approval_policy="never"',
  ];
  if (agent.model) args.push(`--model=${agent.model}`);
  if (agent.systemPrompt) args.push('-c', `developer_instructions=${tomlString(agent.systemPrompt)}`);
  if (input.mcp) args.push(...codexMcpOverrides(input.mcp));
  let prompt = withFeedback(input.prompt, input.feedback);
  if (input.schema) {
    if (files.schemaFile && isObjectSchema(input.schema)) args.push(`--output-schema=${files.schemaFile}`);
    else prompt += schemaInstructions(input.schema as JsonSchema);
  }
  args.push('-');
  return { args, stdin: prompt };
}

/** Item types that are tool calls (each one is followed by another model request). */
const TOOL_ITEMS = new Set(['command_execution', 'mcp_tool_call', 'file_change', 'web_search', 'collab_tool_call']);

/** What to do when Codex has no usable credentials. */
export const CODEX_AUTH_HINT = "log Codex in ('codex login') or set OPENAI_API_KEY (or your model provider's env_key) in the environment fanfold runs in";

/** Reads `codex exec --json` output. */
export class CodexParser implements CliParser {
  readonly #maxTurns: number | undefined;
  #threadId: string | undefined;
  #answer: string | undefined;
  #toolsDone = 0;
  #toolsStarted = 0;
  #lastTool: string | undefined;
  #usage: Usage | undefined;
  #turnFailed: string | undefined;
  #lastError: string | undefined;
  #completed = false;
  #cap: string | undefined;
  #commands = 0;
  #sandboxFailures = 0;
  #sandboxSaid: string | undefined;

  constructor(agent: AgentDef) {
    this.#maxTurns = agent.maxTurns;
  }

  /** True once the turn completed or failed. */
  get done(): boolean {
    return this.#completed || this.#turnFailed !== undefined;
  }

  /** Set once the tool rounds reached `maxTurns` (Codex would ask the model again). */
  get capExceeded(): string | undefined {
    return this.#cap;
  }

  /** Feeds one stdout line. */
  line(text: string): void {
    if (text.trim() === '') return;
    let ev: Record<string, unknown>;
    try {
      ev = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    if (!ev || typeof ev !== 'object') return;
    switch (ev.type) {
      case 'thread.started':
        if (typeof ev.thread_id === 'string') this.#threadId = ev.thread_id;
        break;
      case 'item.started':
      case 'item.completed': {
        const item = ev.item as Record<string, unknown> | undefined;
        if (!item || typeof item.type !== 'string') break;
        if (TOOL_ITEMS.has(item.type)) {
          const name = item.type === 'mcp_tool_call' ? `${String(item.server)}.${String(item.tool)}` : item.type === 'command_execution' ? `shell: ${oneLine(String(item.command ?? ''), 60)}` : item.type;
          this.#lastTool = name;
          if (ev.type === 'item.completed' && item.type === 'command_execution') this.#noteCommand(item);
          if (ev.type === 'item.started') this.#toolsStarted++;
          else {
            this.#toolsDone++;
            // A turn = one model reply; every finished tool round means one more reply to come.
            if (this.#maxTurns !== undefined && this.#toolsDone >= this.#maxTurns && this.#cap === undefined) {
              this.#cap = `${this.#toolsDone} tool call${this.#toolsDone === 1 ? '' : 's'} reached maxTurns ${this.#maxTurns}`;
            }
          }
        } else if (item.type === 'agent_message' && ev.type === 'item.completed' && typeof item.text === 'string') {
          this.#answer = item.text;
        }
        break;
      }
      case 'turn.completed': {
        this.#completed = true;
        const u = ev.usage as Record<string, unknown> | undefined;
        if (u && typeof u === 'object') {
          const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
          const prev = this.#usage ?? { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0 };
          this.#usage = {
            inputTokens: (prev.inputTokens ?? 0) + num(u.input_tokens),
            outputTokens: (prev.outputTokens ?? 0) + num(u.output_tokens),
            cachedInputTokens: (prev.cachedInputTokens ?? 0) + num(u.cached_input_tokens),
          };
        }
        break;
      }
      case 'turn.failed': {
        const err = ev.error as { message?: unknown } | undefined;
        this.#turnFailed = typeof err?.message === 'string' ? err.message : 'turn failed (no message)';
        break;
      }
      case 'error':
        if (typeof ev.message === 'string') this.#lastError = ev.message;
        break;
      default:
        break;
    }
  }

  /**
   * Counts shell commands and those Codex's own sandbox could not start ("bwrap: execvp
   * codex-linux-sandbox: No such file or directory" when CODEX_HOME lies under /tmp, HOSTS.md).
   */
  #noteCommand(item: Record<string, unknown>): void {
    this.#commands++;
    const out = typeof item.aggregated_output === 'string' ? item.aggregated_output : '';
    const m = /^bwrap: .*$/m.exec(out);
    if (m && item.exit_code !== 0) {
      this.#sandboxFailures++;
      this.#sandboxSaid ??= m[0];
    }
  }

  /** "2 tool calls, last tool: shell: cat notes.txt" and Codex's last error note. */
  activity(): string {
    const a = describeActivity(this.#toolsStarted + (this.#answer !== undefined ? 1 : 0), this.#toolsStarted, this.#lastTool, 'step');
    return this.#lastError ? `${a}; last error: ${oneLine(this.#lastError, 200)}` : a;
  }

  /** The outcome from the events seen. */
  finish(proc: ProcessResult): CliOutcome {
    const out: CliOutcome = { text: this.#answer ?? '' };
    if (this.#threadId) out.sessionId = this.#threadId;
    if (this.#usage) out.usage = this.#usage;
    if (this.#commands > 0 && this.#sandboxFailures === this.#commands) {
      // Why a failure although the turn may have completed: an answer written after every command
      // failed is made up, not the work the task asked for.
      out.failure = {
        type: 'sandbox_unavailable',
        message:
          `codex could not run any of its ${this.#commands} shell command${this.#commands === 1 ? '' : 's'}: its sandbox failed to start (${oneLine(this.#sandboxSaid ?? '', 200)}); ` +
          'with bubblewrap installed, CODEX_HOME must not lie under /tmp (move it, e.g. to ~/.codex or /var/tmp)',
        retryable: false,
      };
    } else if (this.#turnFailed !== undefined) {
      out.failure = apiFailure('codex', undefined, this.#turnFailed, { auth: CODEX_AUTH_HINT });
    } else if (proc.exitCode === 0 && this.#answer === undefined) {
      out.failure = {
        type: 'protocol',
        message: `codex finished without a final message (${this.#completed ? 'turn completed' : 'no turn.completed event'}${this.#lastError ? `; last error: ${oneLine(this.#lastError, 200)}` : ''})`,
        retryable: true,
      };
    } else if (proc.exitCode !== 0 && this.#lastError !== undefined) {
      out.failure = apiFailure('codex', undefined, this.#lastError, { auth: CODEX_AUTH_HINT });
    }
    return out;
  }
}

/** The codex driver for `runAgentCli`. */
export const codexDriver: CliDriver = {
  kind: 'codex',
  needsSchemaFile: (input) => input.schema !== undefined && isObjectSchema(input.schema),
  invocation: (input, files) => codexInvocation(input, files),
  parser: (input) => new CodexParser(input.agent),
  // Codex's own sandbox limits writes and network but reads anywhere: fanfold's bwrap hides HOME
  // (keys) from it; CODEX_HOME stays writable (state, its sandbox helper) and the model reachable.
  sandbox: (input, env) => ({
    // fanfold's child MCP server runs inside the sandbox too: its package and store stay readable.
    read: input.mcp ? mcpReadPaths(input.mcp) : [],
    write: [env.CODEX_HOME ?? path.join(env.HOME ?? os.homedir(), '.codex')],
    network: true,
  }),
};

/** Runs agents with Codex (`codex exec`). */
export class CodexRunner extends AgentCliRunner {
  constructor(options: AgentCliRunnerOptions = {}) {
    super(codexDriver, options);
  }
}
