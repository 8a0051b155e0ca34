/**
 * The `pi` runner: `pi -p --mode json`, prompt on stdin, events as JSONL, the last assistant
 * message as the answer, usage (and cost, when the provider prices it) summed over assistant
 * messages.
 *
 * Facts this relies on (Pi 0.73.1, checked against the real CLI, see tests/e2e/README.md):
 * - Piped stdin is read as the prompt. `-p` swallows a following argument that does not start
 *   with `-`, so `-p` is always followed by a flag here.
 * - **It exits 0 when the model call fails**: the last assistant message has `stopReason:
 *   "error"` and `errorMessage` ("401 {…}", "500 Internal server error"). Never trust the exit code.
 * - Missing credentials: exit 1, "No API key found for the selected model." on stderr.
 * - `--tools a,b` is an allow-list of the tools offered; there is no MCP support and no turn cap
 *   flag (fanfold counts `turn_start` events and stops the process past `maxTurns`).
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
} from './agent-cli.js';
import type { ProcessResult } from './process.js';
import { schemaInstructions, withFeedback, type JsonSchema } from './structured.js';
import type { RunnerInput } from './types.js';

/** Pi's read-only tools: what a read_only agent gets. */
export const PI_READ_ONLY_TOOLS: readonly string[] = ['read', 'grep', 'find', 'ls'];

/** What an edit agent that names no tools gets. */
export const PI_EDIT_TOOLS: readonly string[] = ['read', 'bash', 'edit', 'write', 'grep', 'find', 'ls'];

/** Claude Code tool names (as a user's `.claude/agents` profile lists them) → Pi's. */
const FROM_CLAUDE: Readonly<Record<string, string>> = {
  read: 'read',
  grep: 'grep',
  glob: 'find',
  ls: 'ls',
  bash: 'bash',
  edit: 'edit',
  multiedit: 'edit',
  write: 'write',
  find: 'find',
};

/**
 * The `--tools` list of an agent: its tools mapped to Pi's names (`Glob` → `find`, `Bash(git
 * log:*)` → `bash`), or the tier's default; a read_only agent keeps only read/grep/find/ls.
 * Names Pi does not know are dropped (Pi would refuse to start on them). Empty means `--no-tools`.
 */
export function piTools(agent: AgentDef): string[] {
  const edit = agent.tier === 'edit';
  if (!agent.tools) return [...(edit ? PI_EDIT_TOOLS : PI_READ_ONLY_TOOLS)];
  const mapped = agent.tools
    .map((t) => t.split('(')[0]!.trim().toLowerCase())
    .map((t) => FROM_CLAUDE[t])
    .filter((t): t is string => t !== undefined)
    .filter((t) => edit || PI_READ_ONLY_TOOLS.includes(t));
  return [...new Set(mapped)];
}

/** argv (without the executable) and stdin of one attempt. */
export function piInvocation(input: RunnerInput): Invocation {
  const { agent } = input;
  const args = ['-p', '--mode', 'json', '--no-session'];
  if (agent.model) args.push('--model', agent.model);
  const tools = piTools(agent);
  if (tools.length > 0) args.push('--tools', tools.join(','));
  else args.push('--no-tools');
  if (agent.systemPrompt) args.push('--append-system-prompt', agent.systemPrompt);
  let prompt = withFeedback(input.prompt, input.feedback);
  // Pi has no structured-output mode: ask for the JSON in the answer and parse it from there.
  if (input.schema) prompt += schemaInstructions(input.schema as JsonSchema);
  return { args, stdin: prompt };
}

/** What to do when Pi has no usable credentials. */
export const PI_AUTH_HINT =
  "log Pi in (run 'pi' and use /login) or set the provider's API key (e.g. ANTHROPIC_API_KEY, OPENAI_API_KEY) in the environment fanfold runs in";

interface PiMessage {
  role?: string;
  content?: Array<{ type?: string; text?: string }>;
  stopReason?: string;
  errorMessage?: string;
  usage?: { input?: number; output?: number; cacheRead?: number; cost?: { total?: number } };
}

/** Reads `pi --mode json` output. */
export class PiParser implements CliParser {
  readonly #maxTurns: number | undefined;
  #sessionId: string | undefined;
  #turns = 0;
  #tools = 0;
  #lastTool: string | undefined;
  #last: PiMessage | undefined;
  #usage: Required<Usage> | undefined;
  #cost = 0;
  #cap: string | undefined;
  #nonJson: string | undefined;
  #ended = false;

  constructor(agent: AgentDef) {
    this.#maxTurns = agent.maxTurns;
  }

  /** True once `agent_end` arrived. */
  get done(): boolean {
    return this.#ended;
  }

  /** Set once Pi started a turn past `maxTurns`. */
  get capExceeded(): string | undefined {
    return this.#cap;
  }

  /** Feeds one stdout line. */
  line(text: string, truncated: boolean): void {
    // Streaming deltas repeat the whole partial message each time: skip them unparsed.
    if (text.startsWith('{"type":"message_update"') || text.trim() === '') return;
    // agent_end repeats every message of the session (tool results too): never worth parsing.
    if (text.startsWith('{"type":"agent_end"')) {
      this.#ended = true;
      return;
    }
    let ev: Record<string, unknown>;
    try {
      ev = JSON.parse(text) as Record<string, unknown>;
    } catch {
      if (!truncated) this.#nonJson = text;
      return;
    }
    if (!ev || typeof ev !== 'object') return;
    switch (ev.type) {
      case 'session':
        if (typeof ev.id === 'string') this.#sessionId = ev.id;
        break;
      case 'auto_retry_start':
        // Pi's own retry (when a user's settings enable it): the session goes on after agent_end.
        this.#ended = false;
        break;
      case 'turn_start':
        this.#turns++;
        if (this.#maxTurns !== undefined && this.#turns > this.#maxTurns && this.#cap === undefined) {
          this.#cap = `turn ${this.#turns} started, over maxTurns ${this.#maxTurns}`;
        }
        break;
      case 'tool_execution_start':
        this.#tools++;
        if (typeof ev.toolName === 'string') this.#lastTool = ev.toolName;
        break;
      case 'message_end': {
        const m = ev.message as PiMessage | undefined;
        if (m?.role !== 'assistant') break;
        this.#last = m;
        const u = m.usage;
        if (u) {
          const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
          this.#usage ??= { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0 };
          this.#usage.inputTokens += num(u.input);
          this.#usage.outputTokens += num(u.output);
          this.#usage.cachedInputTokens += num(u.cacheRead);
          this.#cost += num(u.cost?.total);
        }
        break;
      }
      default:
        break;
    }
  }

  /** "2 model turns, 1 tool call, last tool: read". */
  activity(): string {
    return describeActivity(this.#turns, this.#tools, this.#lastTool);
  }

  /** The outcome from the last assistant message (never from the exit code alone). */
  finish(proc: ProcessResult): CliOutcome {
    const m = this.#last;
    const text = (m?.content ?? [])
      .filter((c) => c?.type === 'text' && typeof c.text === 'string')
      .map((c) => c.text)
      .join('');
    const out: CliOutcome = { text };
    if (this.#sessionId) out.sessionId = this.#sessionId;
    if (this.#usage) out.usage = this.#usage;
    if (this.#cost > 0) out.costUsd = this.#cost;
    if (!m) {
      const said = meaningfulLine(proc.stderrTail) ?? this.#nonJson;
      if (said !== undefined) {
        out.failure = apiFailure('pi', undefined, said, { auth: PI_AUTH_HINT });
        if (out.failure.type === 'model_api' && !out.failure.retryable) {
          out.failure = { type: 'agent_error', message: `pi failed before any model reply: ${oneLine(said, 400)}`, retryable: false };
        }
      } else if (proc.exitCode === 0) {
        out.failure = { type: 'protocol', message: 'pi exited 0 without any assistant message', retryable: true };
      }
      return out;
    }
    switch (m.stopReason) {
      case 'error':
        out.failure = apiFailure('pi', undefined, m.errorMessage ?? 'model call failed (no message)', { auth: PI_AUTH_HINT });
        break;
      case 'aborted':
        out.failure = { type: 'agent_error', message: `pi aborted the model call${m.errorMessage ? `: ${oneLine(m.errorMessage)}` : ''}`, retryable: true };
        break;
      case 'length':
        out.failure = {
          type: 'max_tokens',
          message: "pi's model stopped at its output token limit; the answer is incomplete (ask for a shorter answer or use a model with a larger limit)",
          retryable: true,
        };
        break;
      default:
        break;
    }
    return out;
  }
}

/**
 * The line of a stderr tail that says what went wrong: the first that reads like an error (Pi
 * prints "No API key found…" and then help lines), else the last non-empty one.
 */
function meaningfulLine(stderr: string): string | undefined {
  const lines = stderr.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  if (lines.length === 0) return undefined;
  return lines.find((l) => /error|no api key|not found|invalid|unknown|denied|failed|cannot/i.test(l)) ?? lines[lines.length - 1];
}

/** The pi driver for `runAgentCli`. */
export const piDriver: CliDriver = {
  kind: 'pi',
  needsSchemaFile: () => false,
  invocation: (input) => piInvocation(input),
  parser: (input) => new PiParser(input.agent),
  // Pi has no sandbox of its own: it runs inside bwrap, seeing its agent dir (models, settings,
  // auth) and keeping the network its model needs.
  sandbox: (_input, env) => ({
    write: [env.PI_CODING_AGENT_DIR ?? path.join(env.HOME ?? os.homedir(), '.pi', 'agent')],
    network: true,
  }),
};

/** Runs agents with Pi (`pi -p --mode json`). */
export class PiRunner extends AgentCliRunner {
  constructor(options: AgentCliRunnerOptions = {}) {
    super(piDriver, options);
  }
}
