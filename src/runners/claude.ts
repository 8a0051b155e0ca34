/**
 * The `claude` runner: Claude Code in print mode (`claude -p`), prompt on stdin, events as
 * stream-json, the final `result` event turned into a RunnerResult.
 *
 * Facts this relies on (Claude Code 2.1.330, checked against the real CLI, see tests/e2e/README.md):
 * - `--output-format stream-json` needs `--verbose` with `-p`; the last line is the `result` event.
 * - `--tools=A,B` limits the built-in tools the model is offered; `--allowedTools=…` only
 *   pre-approves. `--permission-mode dontAsk` refuses everything not pre-approved without waiting
 *   for a person (refusals land in `permission_denials`); MCP tools stay offered under `--tools`.
 * - An API error exits 1 with `is_error: true` but `subtype: "success"`: `is_error`,
 *   `terminal_reason` and `api_error_status` tell the truth, not `subtype`.
 * - With `--json-schema`, a valid answer is `structured_output` (and `result` is the same JSON as
 *   text); a model that keeps answering in prose ends with `is_error: false` and no
 *   `structured_output` — so the answer is checked here, not trusted.
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AgentDef } from '../spec/types.js';
import type { FailureInfo, Usage } from '../store/types.js';
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
  type SessionSupport,
} from './agent-cli.js';
import type { ProcessResult } from './process.js';
import { claudeSettings, resolveReadDirs } from './sandbox.js';
import { sessionUuid } from './sessions.js';
import { isObjectSchema, schemaInstructions, withFeedback, type JsonSchema } from './structured.js';
import type { RunnerInput, RunnerResult } from './types.js';

/** Built-in tools of a read_only agent that names none. */
export const CLAUDE_READ_ONLY_TOOLS: readonly string[] = ['Read', 'Grep', 'Glob'];

/** Built-in tools of an edit agent that names none. */
export const CLAUDE_EDIT_TOOLS: readonly string[] = ['Read', 'Grep', 'Glob', 'Edit', 'Write', 'Bash'];

/** Tools a read_only agent may have pre-approved: none of them changes a file or runs a program. */
export const CLAUDE_READ_ONLY_SAFE: ReadonlySet<string> = new Set([
  'Read', 'Grep', 'Glob', 'LS', 'NotebookRead', 'WebFetch', 'WebSearch', 'TodoWrite',
]);

/** fanfold's read-only MCP tools, as Claude names them. */
export const CLAUDE_FANFOLD_MCP_TOOLS: readonly string[] = ['mcp__fanfold__query_workflow', 'mcp__fanfold__workflow_status'];

/** `Bash(git diff:*)` → `Bash`. */
function baseName(tool: string): string {
  const i = tool.indexOf('(');
  return (i === -1 ? tool : tool.slice(0, i)).trim();
}

/** The tool flags of an agent: offered built-ins, pre-approved entries, permission mode. */
export interface ClaudePermissions {
  /** `--tools`: built-in tools the model is offered. */
  tools: string[];
  /** `--allowedTools`: entries run without asking (patterns like `Bash(git log:*)` kept). */
  allowed: string[];
  /** `--permission-mode`. */
  mode: 'dontAsk' | 'acceptEdits';
}

/**
 * What an agent may do under Claude Code. read_only: the agent's tools (default Read, Grep, Glob)
 * are offered, only the read-only ones are pre-approved, and `dontAsk` refuses the rest — so a
 * read_only agent can never write, whatever its profile lists. edit: `acceptEdits`, the agent's
 * tools (default Read, Grep, Glob, Edit, Write, Bash) all pre-approved. fanfold's MCP tools are
 * pre-approved in both when the run gives the agent the MCP server.
 */
export function claudePermissions(agent: AgentDef, withMcp: boolean): ClaudePermissions {
  const edit = agent.tier === 'edit';
  const listed = (agent.tools ?? (edit ? CLAUDE_EDIT_TOOLS : CLAUDE_READ_ONLY_TOOLS))
    .map((t) => t.trim())
    .filter((t) => t !== '');
  // MCP tools are not built-ins (`--tools` does not take them), and only fanfold's server is
  // loaded (`--strict-mcp-config`), so other servers' tools cannot be called anyway.
  const builtins = listed.filter((t) => !t.startsWith('mcp__'));
  const tools = unique(builtins.map(baseName));
  const allowed = unique(edit ? builtins : builtins.filter((t) => CLAUDE_READ_ONLY_SAFE.has(baseName(t)) && !t.includes('(')));
  if (withMcp) allowed.push(...CLAUDE_FANFOLD_MCP_TOOLS);
  return { tools, allowed, mode: edit ? 'acceptEdits' : 'dontAsk' };
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}

/** The `--mcp-config` JSON giving Claude fanfold's child MCP server. */
export function claudeMcpConfig(mcp: { command: string; args: string[] }): string {
  return JSON.stringify({ mcpServers: { fanfold: { type: 'stdio', command: mcp.command, args: mcp.args } } });
}

/**
 * argv (without the executable) and stdin of one attempt. Every value rides in `--flag=value`
 * form: the tool flags are variadic and would swallow a following argument, and a value starting
 * with `-` (a system prompt that opens with a bullet) must never read as a flag.
 */
export function claudeInvocation(input: RunnerInput): Invocation {
  const { agent } = input;
  const args = ['-p', '--output-format=stream-json', '--verbose'];
  // Sessions: continued (`--resume`), kept under an id fanfold can name again later (a crash
  // leaves it in the CLI's home: see sessions.ts), or — without a run folder for them — not saved.
  if (input.continueFrom) args.push(`--resume=${input.continueFrom.sessionId}`);
  else if (input.sessionDir !== undefined) args.push(`--session-id=${sessionUuid(input.runId, `${input.phaseId}/${input.taskId}`, input.attempt)}`);
  else args.push('--no-session-persistence');
  if (agent.model) args.push(`--model=${agent.model}`);
  if (agent.maxTurns !== undefined) args.push(`--max-turns=${agent.maxTurns}`);
  if (input.maxBudgetUsd !== undefined && Number.isFinite(input.maxBudgetUsd) && input.maxBudgetUsd > 0) {
    args.push(`--max-budget-usd=${input.maxBudgetUsd}`);
  }
  if (agent.systemPrompt) args.push(`--append-system-prompt=${agent.systemPrompt}`);
  const perms = claudePermissions(agent, input.mcp !== undefined);
  args.push(`--tools=${perms.tools.join(',')}`);
  if (perms.allowed.length > 0) args.push(`--allowedTools=${perms.allowed.join(',')}`);
  args.push(`--permission-mode=${perms.mode}`);
  // Why: nobody is there to answer a prompt. With `none` anything that would ask is refused at
  // once (and the parser then fails the attempt naming the tool) instead of waiting for a person.
  args.push('--permission-prompts=none');
  // The run's inputs (context file) may live outside the project when the store does.
  args.push(`--add-dir=${path.dirname(input.contextFile)}`);
  const readDirs = resolveReadDirs(agent.readDirs, input.cwd, undefined);
  for (const dir of readDirs) args.push(`--add-dir=${dir}`);
  const settings = claudeSettings(agent, { cwd: input.cwd, readable: [path.dirname(input.contextFile), ...readDirs] });
  if (Object.keys(settings).length > 0) args.push(`--settings=${JSON.stringify(settings)}`);
  // Only the servers fanfold gives: a project's .mcp.json would otherwise load unasked in every
  // sub-agent (slow starts, side effects, and tool calls that dontAsk would refuse).
  args.push('--strict-mcp-config');
  if (input.mcp) args.push(`--mcp-config=${claudeMcpConfig(input.mcp)}`);
  let prompt = withFeedback(input.prompt, input.feedback);
  if (input.schema) {
    if (isObjectSchema(input.schema)) args.push(`--json-schema=${JSON.stringify(input.schema)}`);
    else prompt += schemaInstructions(input.schema as JsonSchema);
  }
  return { args, stdin: prompt };
}

/** The `result` event of stream-json (only the fields read here). */
interface ClaudeResultEvent {
  type: 'result';
  subtype?: string;
  is_error?: boolean;
  result?: unknown;
  errors?: unknown;
  session_id?: string;
  num_turns?: number;
  total_cost_usd?: number;
  usage?: Record<string, unknown>;
  modelUsage?: Record<string, Record<string, unknown>>;
  permission_denials?: Array<{ tool_name?: string; tool_input?: Record<string, unknown> }>;
  structured_output?: unknown;
  terminal_reason?: string;
  api_error_status?: number | null;
}

/** Reads Claude Code's stream-json output. */
export class ClaudeParser implements CliParser {
  readonly #agent: AgentDef;
  #sessionId: string | undefined;
  #result: ClaudeResultEvent | undefined;
  readonly #messageIds = new Set<string>();
  #tools = 0;
  #lastTool: string | undefined;
  #mcpStatus: string | undefined;
  #lastText = '';
  #nonJson: string | undefined;
  /** Inputs of the last tool calls by id, to name what a refusal was about (bounded). */
  readonly #toolInputs = new Map<string, Record<string, unknown>>();
  #refused: FailureInfo | undefined;

  constructor(agent: AgentDef) {
    this.#agent = agent;
  }

  /** The refusal of a tool call (a `permission_denied` event), once one happened. */
  get refused(): FailureInfo | undefined {
    return this.#refused;
  }

  /** True once the `result` event arrived. */
  get done(): boolean {
    return this.#result !== undefined;
  }

  /** Feeds one stdout line. */
  line(text: string, truncated: boolean): void {
    if (text.trim() === '') return;
    let ev: Record<string, unknown>;
    try {
      ev = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // A cut line is a huge tool result or answer; anything else is something the CLI said.
      if (!truncated) this.#nonJson = text;
      return;
    }
    if (!ev || typeof ev !== 'object') return;
    if (typeof ev.session_id === 'string') this.#sessionId = ev.session_id;
    switch (ev.type) {
      case 'system':
        if (ev.subtype === 'init' && Array.isArray(ev.mcp_servers)) {
          const ours = (ev.mcp_servers as Array<{ name?: string; status?: string }>).find((s) => s?.name === 'fanfold');
          if (ours?.status) this.#mcpStatus = ours.status;
        } else if (ev.subtype === 'permission_denied' && this.#refused === undefined) {
          const id = typeof ev.tool_use_id === 'string' ? ev.tool_use_id : '';
          const denial = { tool_name: typeof ev.tool_name === 'string' ? ev.tool_name : '?', tool_input: this.#toolInputs.get(id) ?? {} };
          this.#refused = deniedFailure([denial], this.#agent);
        }
        break;
      case 'assistant': {
        const msg = ev.message as { id?: string; content?: Array<{ type?: string; id?: string; name?: string; text?: string; input?: unknown }> } | undefined;
        if (msg?.id) this.#messageIds.add(msg.id);
        for (const block of msg?.content ?? []) {
          if (block?.type === 'tool_use') {
            this.#tools++;
            if (typeof block.name === 'string') this.#lastTool = block.name;
            if (typeof block.id === 'string' && block.input && typeof block.input === 'object') {
              if (this.#toolInputs.size >= 16) this.#toolInputs.delete(this.#toolInputs.keys().next().value!);
              this.#toolInputs.set(block.id, block.input as Record<string, unknown>);
            }
          } else if (block?.type === 'text' && typeof block.text === 'string') {
            this.#lastText = block.text;
          }
        }
        break;
      }
      case 'result':
        this.#result = ev as unknown as ClaudeResultEvent;
        break;
      default:
        break;
    }
  }

  /** "2 model turns, 1 tool call, last tool: Read" (and the MCP server's state when it failed). */
  activity(): string {
    const a = describeActivity(this.#messageIds.size, this.#tools, this.#lastTool);
    return this.#mcpStatus && this.#mcpStatus !== 'connected' ? `${a}; fanfold MCP server ${this.#mcpStatus}` : a;
  }

  /** The outcome from the `result` event. */
  finish(proc: ProcessResult): CliOutcome {
    const r = this.#result;
    if (!r) {
      const partial = this.#lastText;
      if (proc.exitCode === 0) {
        return {
          text: partial,
          ...(this.#sessionId ? { sessionId: this.#sessionId } : {}),
          failure: {
            type: 'protocol',
            message: `claude exited 0 without a result event${this.#nonJson ? `; it printed: ${oneLine(this.#nonJson, 300)}` : ''} (${this.activity()})`,
            retryable: true,
          },
        };
      }
      // No result: the process-level failure (exit code, stderr) explains it; see agent-cli.ts.
      const said = this.#nonJson ?? '';
      return {
        text: partial,
        ...(this.#sessionId ? { sessionId: this.#sessionId } : {}),
        ...(/not logged in|\/login|api key/i.test(said)
          ? { failure: apiFailure('claude', undefined, said, { auth: CLAUDE_AUTH_HINT }) }
          : {}),
      };
    }
    const text = typeof r.result === 'string' ? r.result : '';
    const out: CliOutcome = { text };
    const sessionId = r.session_id ?? this.#sessionId;
    if (sessionId) out.sessionId = sessionId;
    const usage = claudeUsage(r);
    if (usage) out.usage = usage;
    if (typeof r.total_cost_usd === 'number' && Number.isFinite(r.total_cost_usd)) out.costUsd = r.total_cost_usd;
    if (r.structured_output !== undefined && r.structured_output !== null) out.structured = { value: r.structured_output };
    const failure = claudeFailure(r, this.#agent);
    if (failure) out.failure = failure;
    return out;
  }
}

/** What to do when Claude Code has no usable credentials. */
export const CLAUDE_AUTH_HINT =
  "log Claude Code in (run 'claude' once and use /login) or set ANTHROPIC_API_KEY in the environment fanfold runs in";

/** Token usage of a result: summed over `modelUsage` (every model the run used), else `usage`. */
export function claudeUsage(r: Pick<ClaudeResultEvent, 'usage' | 'modelUsage'>): Usage | undefined {
  const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  const models = r.modelUsage && typeof r.modelUsage === 'object' ? Object.values(r.modelUsage) : [];
  if (models.length > 0) {
    const u = { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0 };
    for (const m of models) {
      u.inputTokens += num(m?.inputTokens);
      u.outputTokens += num(m?.outputTokens);
      u.cachedInputTokens += num(m?.cacheReadInputTokens);
    }
    return u;
  }
  if (r.usage && typeof r.usage === 'object') {
    return {
      inputTokens: num(r.usage.input_tokens),
      outputTokens: num(r.usage.output_tokens),
      cachedInputTokens: num(r.usage.cache_read_input_tokens),
    };
  }
  return undefined;
}

function errorsText(r: ClaudeResultEvent): string {
  const errs = Array.isArray(r.errors) ? r.errors.filter((e): e is string => typeof e === 'string') : [];
  const text = errs.join('; ') || (typeof r.result === 'string' ? r.result : '') || r.subtype || 'no details';
  return oneLine(text);
}

/** Why a result is a failure, or undefined when it is a success. */
export function claudeFailure(r: ClaudeResultEvent, agent: AgentDef): FailureInfo | undefined {
  const isError = r.is_error === true || (typeof r.subtype === 'string' && r.subtype.startsWith('error'));
  if (isError) {
    switch (r.subtype) {
      case 'error_max_turns':
        return {
          type: 'max_turns',
          message: `claude stopped after ${r.num_turns ?? '?'} turns: ${errorsText(r)}; raise maxTurns of agent '${agent.name}' (now ${agent.maxTurns ?? 'unset'}) or narrow the task`,
          retryable: false,
        };
      case 'error_max_budget_usd':
        return { type: 'budget', message: `claude stopped at its budget: ${errorsText(r)}`, retryable: false };
      case 'error_max_structured_output_retries':
        return {
          type: 'invalid_structured_output',
          message: `claude could not produce an answer matching the task's schema: ${errorsText(r)}`,
          retryable: true,
        };
      default:
        break;
    }
    const status = typeof r.api_error_status === 'number' ? r.api_error_status : undefined;
    const text = errorsText(r);
    if (r.terminal_reason === 'api_error' || status !== undefined || /not logged in|\/login|api key|authentication/i.test(text)) {
      return apiFailure('claude', status, text, { auth: CLAUDE_AUTH_HINT });
    }
    return { type: 'agent_error', message: `claude failed (${r.subtype ?? 'error'}): ${text}`, retryable: true };
  }
  const denials = Array.isArray(r.permission_denials) ? r.permission_denials : [];
  if (denials.length > 0) return deniedFailure(denials, agent);
  return undefined;
}

function deniedFailure(denials: NonNullable<ClaudeResultEvent['permission_denials']>, agent: AgentDef): FailureInfo {
  const shown = denials.slice(0, 5).map((d) => {
    const input = d.tool_input ?? {};
    const detail = ['command', 'file_path', 'path', 'pattern', 'url'].map((k) => input[k]).find((v) => typeof v === 'string') as string | undefined;
    return detail ? `${d.tool_name ?? '?'} (${oneLine(detail, 80)})` : d.tool_name ?? '?';
  });
  const more = denials.length > shown.length ? ` and ${denials.length - shown.length} more` : '';
  const names = [...new Set(denials.map((d) => d.tool_name ?? '?'))];
  const it = denials.length === 1 ? 'it' : 'them';
  const how =
    agent.tier === 'edit'
      ? `to allow ${it}, add ${names.map((n) => `'${n}'`).join(', ')} to the tools of agent '${agent.name}'`
      : `agent '${agent.name}' has tier read_only, which pre-approves only read-only tools (${[...CLAUDE_READ_ONLY_SAFE].slice(0, 3).join(', ')}…): ` +
        `to allow ${it}, give the agent tier: edit, which lets it run commands and change files (edit-tier plans need approval)`;
  return {
    type: 'permission_denied',
    message: `claude was refused ${denials.length} tool call${denials.length === 1 ? '' : 's'}: ${shown.join(', ')}${more}; ${how}`,
    retryable: false,
  };
}

/** Claude Code's config dir: where its sessions live (`projects/<cwd slug>/<id>.jsonl`). */
export function claudeConfigDir(env: NodeJS.ProcessEnv): string {
  return env.CLAUDE_CONFIG_DIR || path.join(env.HOME || os.homedir(), '.claude');
}

/** Claude Code 2.1.330's folder name for a working directory: every character but [A-Za-z0-9] becomes `-`. */
export function claudeProjectSlug(cwd: string): string {
  return cwd.replace(/[^A-Za-z0-9]/g, '-');
}

/** Where Claude Code keeps its sessions, and what it says when it cannot resume one. */
export const claudeSessions: SessionSupport = {
  home: claudeConfigDir,
  origin: (cwd, id) => path.join('projects', claudeProjectSlug(cwd), `${id}.jsonl`),
  async find(home, id) {
    const projects = path.join(home, 'projects');
    for (const dir of await readdir(projects).catch(() => [] as string[])) {
      const rel = path.join('projects', dir, `${id}.jsonl`);
      if (existsSync(path.join(home, rel))) return rel;
    }
    return undefined;
  },
  cannotResume: (r) => r.status === 'failed' && /no conversation found/i.test(`${r.error?.message ?? ''} ${r.output} ${r.stderrTail}`),
};

/** The claude driver for `runAgentCli`. */
export const claudeDriver: CliDriver = {
  kind: 'claude',
  needsSchemaFile: () => false,
  invocation: (input) => claudeInvocation(input),
  parser: (input) => new ClaudeParser(input.agent),
  session: claudeSessions,
};

/** Runs agents with Claude Code (`claude -p`). */
export class ClaudeRunner extends AgentCliRunner {
  constructor(options: AgentCliRunnerOptions = {}) {
    super(claudeDriver, options);
  }
}
