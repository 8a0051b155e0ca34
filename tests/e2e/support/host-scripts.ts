/**
 * A scripted *host model* for the real-host tests: the model inside Claude Code or Codex that uses
 * fanfold's MCP tools the way the skill teaches — plan_workflow → run_workflow (approve) →
 * workflow_status (wait) until the run is final → query_workflow → an answer quoting the hit's ref.
 *
 * The script is stateless: every model request is answered from the conversation the host sent
 * (its tool calls and the tool results it passed back), so what the model "knows" is exactly what
 * the host delivered. `exchangesFromAnthropic` / `exchangesFromResponses` rebuild that
 * conversation; `nextHostStep` decides the next move; the adapters turn it into a reply.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { AnthropicReply, AnthropicRequestBody } from './anthropic-server.js';
import { REPO_ROOT } from './clis.js';
import type { ResponsesReply, ResponsesRequestBody } from './responses-server.js';

/** The built CLI the hosts launch as `fanfold serve`. */
export const FANFOLD_CLI = resolve(REPO_ROOT, 'dist', 'cli', 'main.js');

export const FANFOLD_TOOLS = ['plan_workflow', 'run_workflow', 'workflow_status', 'query_workflow'] as const;
/** Every tool `fanfold serve` lists (the host scripts use FANFOLD_TOOLS; control_workflow is for stopping and approving). */
export const SERVER_TOOLS = [...FANFOLD_TOOLS, 'control_workflow'] as const;
export type FanfoldTool = (typeof FANFOLD_TOOLS)[number];

/** The word planted in one project file; only the agent that reads that file prints it. */
export const PLANTED = 'QUOKKA-5e2d7b';

/** Project files the workflow's agents read (relative to the project dir). */
export const PROJECT_FILES: Readonly<Record<string, string>> = {
  'src/alpha.ts': 'export const alpha = 1;\nexport function twice(n: number) {\n  return 2 * n;\n}\n',
  'src/beta.ts': 'import { alpha } from "./alpha";\nexport const beta = alpha + 1;\n',
  'docs/notes.md': `# Notes\nSomething odd lives here: ${PLANTED} (remember it).\nThird line.\n`,
};

/** Phase and task ids of the workflow; the planted word is in the output of `scan/notes`. */
export const SCAN_TASKS = { alpha: 'src/alpha.ts', beta: 'src/beta.ts', notes: 'docs/notes.md' } as const;
export const PLANTED_REF_SUFFIX = 'scan/notes';

/**
 * The workflow the host model plans: one `command` agent per project file (prints the file with a
 * line count), then a final phase that lists what the first phase saw. Small on purpose: 4 agents,
 * well under a second of work.
 */
export const WORKFLOW_YAML = `version: 1
name: host-e2e-scan
goal: Print each project file with its line count, then list them
limits: { maxConcurrent: 3, maxAgents: 8, agentTimeout: 30s, retries: 0 }
agents:
  reader:
    runner: command
    command: ["sh", "-c", "f=$(head -n 1); echo \\"== $f ($(wc -l < \\"$f\\") lines)\\"; cat \\"$f\\""]
  lister:
    runner: command
    command: ["sh", "-c", "echo files scanned; ls src docs"]
phases:
  - id: scan
    title: Read each file
    agent: reader
    tasks:
${Object.entries(SCAN_TASKS)
  .map(([id, file]) => `      - { id: ${id}, prompt: "${file}" }`)
  .join('\n')}
  - id: list
    title: List what was scanned
    dependsOn: [scan]
    agent: lister
    final: true
    tasks:
      - { id: all, prompt: "list" }
`;

/** One tool call the model made and the result the host sent back for it. */
export interface ToolExchange {
  /** fanfold tool name without any host prefix (`plan_workflow`), or the host's own tool name. */
  tool: string;
  /** The name exactly as the model called it (`mcp__fanfold__plan_workflow`, or `plan_workflow` + namespace). */
  rawName: string;
  namespace?: string;
  args: Record<string, unknown>;
  /** Text of the result the host passed back (undefined: no result in this request). */
  result?: string;
  isError?: boolean;
}

export type HostStep =
  | { kind: 'discover' }
  | { kind: 'call'; tool: FanfoldTool; args: Record<string, unknown> }
  | { kind: 'answer'; text: string };

export class HostScriptError extends Error {
  constructor(message: string) {
    super(`host script: ${message}`);
    this.name = 'HostScriptError';
  }
}

/** Most workflow_status calls before the script gives up (each waits up to 30 s). */
const MAX_STATUS_CALLS = 3;
/** Seconds each workflow_status call waits. */
export const STATUS_WAIT_S = 30;

const isFanfold = (t: string): t is FanfoldTool => (FANFOLD_TOOLS as readonly string[]).includes(t);

function grab(text: string, re: RegExp, what: string, tool: string): string {
  const m = re.exec(text);
  if (!m) throw new HostScriptError(`no ${what} in the ${tool} result the host sent back: ${JSON.stringify(text.slice(0, 800))}`);
  return m[1]!;
}

/**
 * What the model reads from one fanfold tool result. Hosts differ in what they pass on: the tool's
 * text rendering (`planId: …`, `runId: …`, `1. ref …`), or the JSON of its structuredContent
 * (Claude Code 2.1.330 does that whenever a result has structuredContent). Both are understood.
 */
export interface ReadResult {
  form: 'text' | 'json';
  planId?: string;
  runId?: string;
  status?: string;
  /** Ref of the first query hit. */
  ref?: string;
  snippet?: string;
  total?: number;
  name?: string;
  agentCount?: number;
  phases?: number;
  /** workflow_status: agents done / total. */
  done?: string;
  requiresApproval?: boolean;
  /** run_workflow: the planId it names. */
  runPlanId?: string;
}

/** Reads the ids and states a fanfold tool result carries, in either form. */
export function readResult(tool: FanfoldTool, raw: string): ReadResult {
  // Codex puts its own header before the tool's content.
  const text = raw.replace(/^Wall time: [^\n]*\nOutput:\n/, '');
  let json: Record<string, any> | undefined;
  try {
    const v = JSON.parse(text) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) json = v as Record<string, any>;
  } catch {
    json = undefined;
  }
  if (json) {
    const r: ReadResult = { form: 'json' };
    switch (tool) {
      case 'plan_workflow':
        Object.assign(r, { planId: json.planId, name: json.name, agentCount: json.agentCount, phases: json.phases?.length, requiresApproval: json.requiresApproval });
        break;
      case 'run_workflow':
        Object.assign(r, { runId: json.runId, status: json.status, runPlanId: json.planId });
        break;
      case 'workflow_status':
        Object.assign(r, { runId: json.runId, status: json.status, name: json.name });
        if (json.agents) r.done = `${json.agents.succeeded + json.agents.failed + json.agents.skipped}/${json.agents.total} (${json.agents.succeeded} succeeded)`;
        break;
      case 'query_workflow':
        Object.assign(r, { ref: json.hits?.[0]?.ref, snippet: json.hits?.[0]?.snippet, total: json.total });
        break;
    }
    return r;
  }
  const opt = (re: RegExp): string | undefined => re.exec(text)?.[1];
  const r: ReadResult = { form: 'text' };
  switch (tool) {
    case 'plan_workflow': {
      r.planId = opt(/^planId: (\S+)/m);
      r.name = opt(/^planId: \S+ \(revision \d+\) — "([^"]*)"/m);
      const size = /^(\d+) agents? in (\d+) phases?/m.exec(text);
      if (size) Object.assign(r, { agentCount: Number(size[1]), phases: Number(size[2]) });
      const appr = opt(/^Requires approval: (yes|no)/m);
      if (appr) r.requiresApproval = appr === 'yes';
      break;
    }
    case 'run_workflow':
      r.runId = opt(/^runId: (\S+)/m);
      r.status = opt(/^status: (\w+)/m);
      r.runPlanId = opt(/\(planId (\w+)\)/);
      break;
    case 'workflow_status':
      r.runId = opt(/^runId: (\S+)/m);
      r.name = opt(/^runId: \S+ — "([^"]*)"/m);
      r.status = opt(/^runId: \S+ — "[^"]*": (\w+)/m);
      r.done = opt(/^(\d+\/\d+) agents done/m);
      if (r.done) r.done += ` (${opt(/agents done \((\d+) succeeded/m)} succeeded)`;
      break;
    case 'query_workflow': {
      r.ref = opt(/^1\. ref (\S+)/m);
      r.snippet = opt(/^1\. ref \S+.*\n {3}(.*)$/m);
      const total = opt(/^(\d+) matching outputs/m);
      if (total !== undefined) r.total = Number(total);
      break;
    }
  }
  return r;
}

function need<K extends keyof ReadResult>(r: ReadResult, key: K, tool: string, text: string): NonNullable<ReadResult[K]> {
  const v = r[key];
  if (v === undefined || v === null) throw new HostScriptError(`no ${String(key)} in the ${tool} result the host sent back (${r.form}): ${JSON.stringify(text.slice(0, 800))}`);
  return v as NonNullable<ReadResult[K]>;
}

/** The final answer, given the ref of the top query hit. */
export function finalAnswer(ref: string): string {
  return `The word ${PLANTED} appears in the output of agent ${ref} (found with query_workflow).`;
}

/** How the scripted model finds the fanfold tools when the host hides them behind a search tool. */
export interface HostScriptOptions {
  discovery?: {
    /** The host's search tool (`ToolSearch`, `tool_search`). */
    tool: string;
    /** Whether a search exchange turned up the fanfold tools. */
    found: (e: ToolExchange) => boolean;
    /** Searches before giving up (default 1). */
    maxSearches?: number;
  };
}

/**
 * The next move of the host model, from the exchanges so far. `discover` comes first when the host
 * hides MCP tools behind a search tool, and again while the searches have not found them.
 */
export function nextHostStep(history: ToolExchange[], opts: HostScriptOptions): HostStep {
  const pending = history.find((e) => e.result === undefined);
  if (pending) throw new HostScriptError(`the host sent no result for the call to ${pending.rawName}`);
  if (opts.discovery) {
    const searches = history.filter((e) => e.tool === opts.discovery!.tool);
    if (!searches.some((e) => opts.discovery!.found(e))) {
      const max = opts.discovery.maxSearches ?? 1;
      if (searches.length >= max) {
        throw new HostScriptError(`${searches.length} ${opts.discovery.tool} calls found no fanfold tools; last result: ${(searches.at(-1)?.result ?? '').slice(0, 800)}`);
      }
      return { kind: 'discover' };
    }
  }
  const calls = history.filter((e) => isFanfold(e.tool));
  const last = calls.at(-1);
  if (!last) return { kind: 'call', tool: 'plan_workflow', args: { spec: WORKFLOW_YAML } };
  const tool = last.tool as FanfoldTool;
  const text = last.result ?? '';
  if (last.isError) throw new HostScriptError(`${tool} answered with an error: ${text.slice(0, 1500)}`);
  const r = readResult(tool, text);
  switch (tool) {
    case 'plan_workflow':
      return { kind: 'call', tool: 'run_workflow', args: { planId: need(r, 'planId', tool, text), approve: true } };
    case 'run_workflow':
      return { kind: 'call', tool: 'workflow_status', args: { runId: need(r, 'runId', tool, text), wait: STATUS_WAIT_S } };
    case 'workflow_status': {
      const runId = need(r, 'runId', tool, text);
      const status = need(r, 'status', tool, text);
      if (status === 'completed') return { kind: 'call', tool: 'query_workflow', args: { query: PLANTED, runId } };
      if (status !== 'running') throw new HostScriptError(`run ${runId} ended ${status}: ${text.slice(0, 1500)}`);
      if (calls.filter((e) => e.tool === 'workflow_status').length >= MAX_STATUS_CALLS) {
        throw new HostScriptError(`run ${runId} still running after ${MAX_STATUS_CALLS} workflow_status calls`);
      }
      return { kind: 'call', tool: 'workflow_status', args: { runId, wait: STATUS_WAIT_S } };
    }
    case 'query_workflow':
      return { kind: 'answer', text: finalAnswer(need(r, 'ref', tool, text)) };
  }
}

/**
 * The approval probe: plan_workflow, then run_workflow with `approve: true`, then an answer that
 * says whether the run started (`Started: <runId>`) or was refused (`Not started`).
 */
export function nextApprovalProbeStep(history: ToolExchange[], opts: HostScriptOptions): HostStep {
  const calls = history.filter((e) => isFanfold(e.tool));
  if (calls.length === 0) return nextHostStep(history, opts);
  const last = calls.at(-1)!;
  if (last.tool === 'plan_workflow') return nextHostStep(history, opts);
  const r = readResult('run_workflow', last.result ?? '');
  return { kind: 'answer', text: r.runId ? `Started: ${r.runId}` : 'Not started' };
}

// ---------------------------------------------------------------- Claude Code (Anthropic Messages)

/** Claude Code's name for a fanfold tool. */
export const claudeToolName = (tool: FanfoldTool): string => `mcp__fanfold__${tool}`;

function blockText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((b: unknown) => {
        if (!b || typeof b !== 'object') return '';
        const block = b as { type?: unknown; text?: unknown; tool_name?: unknown };
        // ToolSearch answers with references to the tools it loaded.
        if (block.type === 'tool_reference') return `[tool_reference ${String(block.tool_name)}]`;
        return 'text' in block ? String(block.text) : '';
      })
      .join('');
  }
  return '';
}

/** The tool calls and results in a Messages request, in order (assistant tool_use ↔ user tool_result). */
export function exchangesFromAnthropic(body: AnthropicRequestBody): ToolExchange[] {
  const out: ToolExchange[] = [];
  const byId = new Map<string, ToolExchange>();
  for (const m of body.messages) {
    if (typeof m.content === 'string') continue;
    for (const b of m.content) {
      if (m.role === 'assistant' && b.type === 'tool_use') {
        const name = String(b.name);
        const ex: ToolExchange = {
          tool: name.startsWith('mcp__fanfold__') ? name.slice('mcp__fanfold__'.length) : name,
          rawName: name,
          args: (b.input ?? {}) as Record<string, unknown>,
        };
        out.push(ex);
        byId.set(String(b.id), ex);
      } else if (m.role === 'user' && b.type === 'tool_result') {
        const ex = byId.get(String(b.tool_use_id));
        if (!ex) throw new HostScriptError(`tool_result for an unknown tool_use id ${String(b.tool_use_id)}`);
        ex.result = blockText(b.content);
        ex.isError = b.is_error === true;
      }
    }
  }
  return out;
}

/** Claude Code: one ToolSearch `select:` of the four tools loads them (MCP servers are up before the first request). */
export const CLAUDE_DISCOVERY: NonNullable<HostScriptOptions['discovery']> = {
  tool: 'ToolSearch',
  found: (e) => FANFOLD_TOOLS.every((t) => (e.result ?? '').includes(`[tool_reference ${claudeToolName(t)}]`)),
};

/** The scripted Anthropic reply for a step. Discovery = one ToolSearch call selecting all four tools. */
export function anthropicReply(step: HostStep): AnthropicReply {
  switch (step.kind) {
    case 'discover':
      return { tool: 'ToolSearch', input: { query: `select:${FANFOLD_TOOLS.map(claudeToolName).join(',')}` } };
    case 'call':
      return { tool: claudeToolName(step.tool), input: step.args };
    case 'answer':
      return step.text;
  }
}

// ---------------------------------------------------------------- Codex (Responses API)

/** The tool calls and results in a Responses request: function_call ↔ function_call_output, tool_search_call ↔ tool_search_output. */
export function exchangesFromResponses(body: ResponsesRequestBody): ToolExchange[] {
  const out: ToolExchange[] = [];
  const byId = new Map<string, ToolExchange>();
  for (const item of body.input) {
    const callId = String(item.call_id ?? '');
    if (item.type === 'function_call') {
      let args: Record<string, unknown> = {};
      try {
        args = JSON.parse(String(item.arguments ?? '{}')) as Record<string, unknown>;
      } catch {
        args = { _raw: item.arguments };
      }
      const ns = typeof item.namespace === 'string' ? item.namespace : undefined;
      const ex: ToolExchange = { tool: String(item.name), rawName: ns ? `${ns}.${String(item.name)}` : String(item.name), args, ...(ns ? { namespace: ns } : {}) };
      out.push(ex);
      byId.set(callId, ex);
    } else if (item.type === 'tool_search_call') {
      const ex: ToolExchange = { tool: 'tool_search', rawName: 'tool_search', args: (item.arguments ?? {}) as Record<string, unknown> };
      out.push(ex);
      byId.set(callId, ex);
    } else if (item.type === 'function_call_output') {
      const ex = byId.get(callId);
      if (!ex) throw new HostScriptError(`function_call_output for an unknown call_id ${callId}`);
      const o = item.output;
      ex.result = typeof o === 'string' ? o : blockText(o);
      // Codex marks failed MCP calls only in the text; keep what it says.
      ex.isError = false;
    } else if (item.type === 'tool_search_output') {
      const ex = byId.get(callId);
      if (!ex) throw new HostScriptError(`tool_search_output for an unknown call_id ${callId}`);
      ex.result = JSON.stringify(item.tools ?? null);
      ex.isError = false;
    }
  }
  return out;
}

/**
 * Codex: `tool_search` until its output holds the `mcp__fanfold` namespace. Why more than one:
 * `codex exec` sends the first model request without waiting for MCP servers to finish starting,
 * and a search only sees the servers that were up when the request it answers was built — so a
 * model that searches in its first reply, before `fanfold serve` answered `tools/list` (~1–2 s of
 * Node start on a loaded machine), finds nothing. The test's model searches again (after a pause,
 * see `codexSearchPause`) like a model told the tools exist would.
 */
export const CODEX_DISCOVERY: NonNullable<HostScriptOptions['discovery']> = {
  tool: 'tool_search',
  found: (e) => (e.result ?? '').includes('"name":"mcp__fanfold"'),
  maxSearches: 30,
};

/** Milliseconds to pause before searching again after a tool_search that did not find fanfold. */
export async function codexSearchPause(history: ToolExchange[]): Promise<void> {
  const searches = history.filter((e) => e.tool === 'tool_search');
  if (searches.length > 0 && !searches.some(CODEX_DISCOVERY.found)) await new Promise((r) => setTimeout(r, 500));
}

let codexCallCounter = 0;

/** The scripted Responses reply for a step: discovery is a client-side tool_search_call; calls are namespaced. */
export function responsesReply(step: HostStep): ResponsesReply {
  switch (step.kind) {
    case 'discover':
      codexCallCounter += 1;
      return {
        items: [
          {
            type: 'tool_search_call',
            call_id: `call_search_${codexCallCounter}`,
            status: 'completed',
            execution: 'client',
            arguments: { query: 'fanfold workflow plan run status query', limit: 8 },
          },
        ],
      };
    case 'call':
      return { tool: step.tool, namespace: 'mcp__fanfold', input: step.args };
    case 'answer':
      return step.text;
  }
}

// ---------------------------------------------------------------- checks on the conversation and the store

/** What the host delivered for each fanfold tool, checked for the ids and states the flow needs. */
export interface FlowFacts {
  planId: string;
  runId: string;
  ref: string;
  /** Form the host delivered results in (the same for every call). */
  form: 'text' | 'json';
  /** Raw results by tool, in call order. */
  results: Record<FanfoldTool, string[]>;
}

/**
 * Checks the whole conversation of the last model request: every fanfold tool was called in order,
 * and each result the host passed back carries what the next step needs. Throws with the offending
 * text otherwise.
 */
export function checkFlow(history: ToolExchange[]): FlowFacts {
  const calls = history.filter((e) => isFanfold(e.tool));
  const results = { plan_workflow: [], run_workflow: [], workflow_status: [], query_workflow: [] } as Record<FanfoldTool, string[]>;
  const forms = new Set<string>();
  for (const c of calls) {
    if (c.result === undefined) throw new Error(`no result for ${c.rawName}`);
    if (c.isError) throw new Error(`${c.rawName} failed: ${c.result}`);
    results[c.tool as FanfoldTool].push(c.result);
    forms.add(readResult(c.tool as FanfoldTool, c.result).form);
  }
  if (forms.size !== 1) throw new Error(`the host mixed result forms: ${[...forms].join(', ')}`);
  const order = calls.map((c) => c.tool);
  const expected = ['plan_workflow', 'run_workflow', ...Array<string>(results.workflow_status.length).fill('workflow_status'), 'query_workflow'];
  if (JSON.stringify(order) !== JSON.stringify(expected)) throw new Error(`unexpected call order ${order.join(' → ')}`);

  const fail = (tool: string, what: string, text: string): never => {
    throw new Error(`${tool} result ${what}: ${text.slice(0, 2000)}`);
  };
  const planText = results.plan_workflow[0]!;
  const plan = readResult('plan_workflow', planText);
  if (!plan.planId) fail('plan_workflow', 'has no planId', planText);
  if (plan.name !== 'host-e2e-scan' || plan.agentCount !== 4 || plan.phases !== 2) fail('plan_workflow', 'lacks the name or size (host-e2e-scan, 4 agents, 2 phases)', planText);
  const runText = results.run_workflow[0]!;
  const run = readResult('run_workflow', runText);
  if (!run.runId) fail('run_workflow', 'has no runId', runText);
  if (run.runPlanId !== plan.planId) fail('run_workflow', `does not name the plan ${plan.planId}`, runText);
  if (run.status !== 'running' && run.status !== 'completed') fail('run_workflow', 'has no running/completed status', runText);
  const statusText = results.workflow_status.at(-1)!;
  const status = readResult('workflow_status', statusText);
  if (status.runId !== run.runId || status.status !== 'completed' || status.name !== 'host-e2e-scan') fail('workflow_status', `is not "completed" for run ${run.runId}`, statusText);
  if (status.done !== '4/4 (4 succeeded)') fail('workflow_status', 'lacks the counts 4/4 (4 succeeded)', statusText);
  const qText = results.query_workflow[0]!;
  const q = readResult('query_workflow', qText);
  if (q.ref !== `${run.runId}/${PLANTED_REF_SUFFIX}`) fail('query_workflow', `top hit is not ${run.runId}/${PLANTED_REF_SUFFIX}`, qText);
  // Snippets mark matched terms with **…** (`**QUOKKA**-**5e2d7b**`).
  if (q.total !== 1 || !q.snippet?.replace(/\*\*/g, '').includes(PLANTED)) fail('query_workflow', `has not exactly one hit with a snippet holding ${PLANTED}`, qText);
  return { planId: plan.planId!, runId: run.runId!, ref: q.ref!, form: [...forms][0] as 'text' | 'json', results };
}

/** What the store holds for a finished run: run.json status and the agent records. */
export function checkRunOnDisk(store: string, runId: string): { status: string; agentFiles: string[]; outputs: Record<string, string> } {
  const runJson = join(store, runId, 'run.json');
  if (!existsSync(runJson)) throw new Error(`no ${runJson}`);
  const run = JSON.parse(readFileSync(runJson, 'utf8')) as { status: string };
  const agentsDir = join(store, runId, 'agents');
  const agentFiles = readdirSync(agentsDir).filter((n) => n.endsWith('.json')).sort();
  const outputs: Record<string, string> = {};
  for (const f of agentFiles) {
    const rec = JSON.parse(readFileSync(join(agentsDir, f), 'utf8')) as { phaseId: string; taskId: string; status: string; output: string };
    if (rec.status !== 'succeeded') throw new Error(`agent ${f} ${rec.status}`);
    outputs[`${rec.phaseId}/${rec.taskId}`] = rec.output;
  }
  return { status: run.status, agentFiles, outputs };
}

/** Run directories in a store (everything but the plan store and dot files). */
export function runDirs(store: string): string[] {
  if (!existsSync(store)) return [];
  return readdirSync(store).filter((n) => !n.startsWith('.') && n !== 'plans' && existsSync(join(store, n, 'run.json')));
}
