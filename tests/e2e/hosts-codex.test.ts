/**
 * Codex as a real MCP host of `fanfold serve`: the pinned `codex exec --json` loads fanfold from
 * `[mcp_servers.fanfold]` in its config.toml, and a scripted model (Responses API server on
 * 127.0.0.1) finds the tools with Codex's client-side `tool_search`, then drives plan_workflow →
 * run_workflow (approve) → workflow_status (wait) → query_workflow → a final answer quoting the
 * hit's ref, calling each tool as `function_call` with `namespace: "mcp__fanfold"`. Every tool
 * result Codex passed back to the model is checked in the next request, the run is checked on
 * disk, and the last agent message must carry the ref. On by default like the other
 * real-CLI tests; FANFOLD_E2E=0 turns them off (loudly).
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureCli, type InstalledCli } from './support/clis.js';
import { codexSandbox, type CodexSandbox } from './support/env.js';
import {
  CODEX_DISCOVERY,
  FANFOLD_CLI,
  FANFOLD_TOOLS,
  SERVER_TOOLS,
  PLANTED,
  PROJECT_FILES,
  SCAN_TASKS,
  checkFlow,
  checkRunOnDisk,
  codexSearchPause,
  exchangesFromResponses,
  finalAnswer,
  nextApprovalProbeStep,
  nextHostStep,
  readResult,
  runDirs,
  responsesReply,
} from './support/host-scripts.js';
import { startResponsesServer, type ResponsesRequestBody, type ResponsesScript } from './support/responses-server.js';
import { describeRun, parseJsonl, runCli } from './support/run.js';

const ENABLED = process.env.FANFOLD_E2E !== '0';
if (!ENABLED) {
  // Never skip silently.
  console.warn(
    '[fanfold e2e] SKIPPED tests/e2e/hosts-codex.test.ts: real agent CLI tests are turned off here (FANFOLD_E2E=0) ' +
      '(they install claude/codex/pi on demand, ~350 MB, into the CLI cache).',
  );
}

const PROMPT = `Plan and run a fanfold workflow that reads every project file, then tell me which agent saw the word ${PLANTED}.`;

/** TOML basic string (JSON escapes are valid TOML escapes for what is written here). */
const tq = (s: string): string => JSON.stringify(s);

/** The `[mcp_servers.fanfold]` table, as `fanfold install codex` writes it (plus the store and env). */
function mcpToml(store: string, env: Record<string, string>): string {
  return [
    '[mcp_servers.fanfold]',
    `command = ${tq(process.execPath)}`,
    `args = [${[FANFOLD_CLI, 'serve', '--store', store].map(tq).join(', ')}]`,
    'startup_timeout_sec = 30',
    // workflow_status waits up to 30 s here (≤ 50 s in general): leave room above Codex's 60 s default.
    'tool_timeout_sec = 120',
    // Without it, `approval_policy = "never"` refuses every MCP call.
    'default_tools_approval_mode = "approve"',
    ...(Object.keys(env).length ? [`env = { ${Object.entries(env).map(([k, v]) => `${k} = ${tq(v)}`).join(', ')} }`] : []),
    '',
  ].join('\n');
}

type Item = Record<string, any>;

interface Outcome {
  run: Awaited<ReturnType<typeof runCli>>;
  requests: ResponsesRequestBody[];
  store: string;
  lastMessage: string;
  /** `item.completed` items from the JSONL stream. */
  items: Item[];
  events: Item[];
}

describe.skipIf(!ENABLED)('Codex hosts fanfold serve (real CLIs)', () => {
  let cli: InstalledCli;
  const sandboxes: CodexSandbox[] = [];
  beforeAll(async () => {
    cli = await ensureCli('codex');
  }, 15 * 60_000);
  afterAll(async () => {
    for (const sb of sandboxes) await sb.cleanup();
  });

  async function hostRun(opts: { serverEnv?: Record<string, string>; script?: ResponsesScript }): Promise<Outcome> {
    const script: ResponsesScript =
      opts.script ??
      (async (body) => {
        const history = exchangesFromResponses(body);
        await codexSearchPause(history);
        return responsesReply(nextHostStep(history, { discovery: CODEX_DISCOVERY }));
      });
    const server = await startResponsesServer(script);
    let sb: CodexSandbox | undefined;
    try {
      sb = await codexSandbox({ baseUrl: server.baseUrl });
      sandboxes.push(sb);
      // The store lives in the sandbox, so the server table is appended once the sandbox exists.
      const store = join(sb.root, 'store');
      await writeFile(join(sb.codexHome, 'config.toml'), `${sb.configToml}\n${mcpToml(store, opts.serverEnv ?? {})}`);
      for (const [rel, text] of Object.entries(PROJECT_FILES)) await sb.writeProjectFile(rel, text);
      const lastFile = join(sb.root, 'last-message.txt');
      const run = await runCli(
        cli.bin,
        ['exec', '--json', '--skip-git-repo-check', '--ephemeral', '--sandbox', 'read-only', '-C', sb.project, '-o', lastFile, PROMPT],
        { cwd: sb.project, env: sb.env, timeoutMs: 50_000 },
      );
      await writeFile(join(sb.root, 'codex-output.txt'), describeRun(run)); // post-mortem, with FANFOLD_E2E_KEEP=1
      server.assertNoScriptErrors();
      const { events } = parseJsonl(run.stdout);
      return {
        run,
        requests: server.responseRequests.map((r) => r.body as ResponsesRequestBody),
        store,
        lastMessage: existsSync(lastFile) ? await readFile(lastFile, 'utf8') : '',
        items: events.filter((e) => e.type === 'item.completed').map((e) => e.item as Item),
        events,
      };
    } finally {
      // For a failure's post-mortem (kept with FANFOLD_E2E_KEEP=1): every request the model server got.
      if (sb) await writeFile(join(sb.root, 'model-requests.json'), JSON.stringify(server.responseRequests.map((r) => r.body), null, 1)).catch(() => {});
      await server.close();
    }
  }

  // Codex declares elicitation, so fanfold asks its approval with a form — and `codex exec`
  // declines every form at once (see the last test). The flow test turns command approval off in
  // the server's env, as a user running headless would.
  it('finds the tools with tool_search, then plan → run → status → query → answer (namespaced calls)', async () => {
    const o = await hostRun({ serverEnv: { FANFOLD_APPROVAL_COMMANDS: '0' } });
    expect(o.run.code, describeRun(o.run)).toBe(0);
    expect(o.events.at(-1), describeRun(o.run)).toMatchObject({ type: 'turn.completed' });

    // Discovery: the first request offers the client-side tool_search (the fanfold tools are
    // deferred); codex answered the search with a `mcp__fanfold` namespace of the four tools.
    const first = o.requests[0]!;
    expect(first.tools?.some((t) => t.type === 'tool_search')).toBe(true);
    const history = exchangesFromResponses(o.requests.at(-1)!);
    const searches = history.filter((e) => e.tool === 'tool_search');
    expect(history.slice(0, searches.length)).toEqual(searches); // searches first, then fanfold
    expect(searches.slice(0, -1).every((e) => !CODEX_DISCOVERY.found(e))).toBe(true);
    const found = JSON.parse(searches.at(-1)!.result!) as Array<{ type: string; name: string; tools: Array<{ name: string }> }>;
    const ns = found.find((t) => t.type === 'namespace' && t.name === 'mcp__fanfold');
    expect(ns, searches.at(-1)!.result).toBeDefined();
    expect(ns!.tools.map((t) => t.name).sort()).toEqual([...SERVER_TOOLS].sort());
    console.log(`[fanfold e2e] codex: fanfold tools found by tool_search #${searches.length} (${searches.length - 1} searched before fanfold serve was up)`);

    // Every fanfold call went out namespaced, and each result came back to the model.
    const facts = checkFlow(history);
    for (const e of history.slice(searches.length)) expect(e.namespace).toBe('mcp__fanfold');
    // Quirk of codex 0.169.0: the model gets `Wall time: …\nOutput:\n` and then the JSON of the
    // result's structuredContent, NOT its text rendering.
    expect(facts.form).toBe('json');
    expect(facts.results.plan_workflow[0]).toMatch(/^Wall time: [^\n]*\nOutput:\n\{"planId":/);
    expect(readResult('plan_workflow', facts.results.plan_workflow[0]!).requiresApproval).toBe(false);
    for (const e of history.filter((x) => (FANFOLD_TOOLS as readonly string[]).includes(x.tool))) {
      const i = o.requests.findIndex((body) => exchangesFromResponses(body).some((x) => x.rawName === e.rawName && x.result === e.result));
      expect(i, `a request carries the result of ${e.rawName}`).toBeGreaterThan(0);
    }

    // What codex reported of each call in its JSONL: server, tool, arguments, a completed result.
    const mcpItems = o.items.filter((i) => i.type === 'mcp_tool_call');
    expect(mcpItems.map((i) => i.tool)).toEqual(history.filter((e) => e.namespace === 'mcp__fanfold').map((e) => e.tool));
    for (const i of mcpItems) {
      expect(i, JSON.stringify(i)).toMatchObject({ server: 'fanfold', status: 'completed' });
      expect(i.error ?? null).toBeNull();
    }
    const runItem = mcpItems.find((i) => i.tool === 'run_workflow')!;
    expect(runItem.arguments).toMatchObject({ planId: facts.planId, approve: true });
    expect(runItem.result.structured_content).toMatchObject({ runId: facts.runId, planId: facts.planId });
    const queryItem = mcpItems.find((i) => i.tool === 'query_workflow')!;
    expect(queryItem.result.structured_content.hits[0].ref).toBe(facts.ref);

    // The run really happened in the store the server was given, in the project directory.
    const disk = checkRunOnDisk(o.store, facts.runId);
    expect(disk.status).toBe('completed');
    expect(disk.agentFiles).toEqual(['list.all.1.json', ...Object.keys(SCAN_TASKS).sort().map((t) => `scan.${t}.1.json`)]);
    expect(disk.outputs['scan/notes']).toContain(PLANTED);
    expect(disk.outputs['scan/alpha']).toMatch(/^== src\/alpha\.ts \(4 lines\)/);
    expect(existsSync(join(o.store, facts.runId, 'report.md'))).toBe(true);

    // The final agent message (JSONL and -o file) is the model's answer with the ref.
    const msg = o.items.filter((i) => i.type === 'agent_message').at(-1);
    expect(msg?.text).toBe(finalAnswer(facts.ref));
    expect(o.lastMessage.trim()).toBe(finalAnswer(facts.ref));
  }, 60_000);

  const approvalProbe: ResponsesScript = async (body) => {
    const history = exchangesFromResponses(body);
    await codexSearchPause(history);
    return responsesReply(nextApprovalProbeStep(history, { discovery: CODEX_DISCOVERY }));
  };

  it('headless approval, default mode: codex exec declines the form at once, which stands as a no against approve: true', async () => {
    const o = await hostRun({ script: approvalProbe });
    expect(o.run.code, describeRun(o.run)).toBe(0);
    const history = exchangesFromResponses(o.requests.at(-1)!).filter((e) => e.tool !== 'tool_search');
    expect(history.map((e) => e.tool)).toEqual(['plan_workflow', 'run_workflow']);
    expect(history[1]!.args).toMatchObject({ approve: true });
    expect(history[1]!.result).toMatch(/declined to start/);
    expect(history[1]!.result).toMatch(/FANFOLD_APPROVAL_MODE=flag/);
    expect(o.lastMessage.trim()).toBe('Not started');
    expect(runDirs(o.store)).toEqual([]);
  }, 60_000);

  it('headless approval with FANFOLD_APPROVAL_MODE=flag (install codex --headless): the decline at once lets the approve flag decide and the run starts', async () => {
    const o = await hostRun({ script: approvalProbe, serverEnv: { FANFOLD_APPROVAL_MODE: 'flag' } });
    expect(o.run.code, describeRun(o.run)).toBe(0);
    const history = exchangesFromResponses(o.requests.at(-1)!).filter((e) => e.tool !== 'tool_search');
    expect(history.map((e) => e.tool)).toEqual(['plan_workflow', 'run_workflow']);
    expect(readResult('plan_workflow', history[0]!.result!).requiresApproval).toBe(true);
    expect(history[1]!.args).toMatchObject({ approve: true });
    // `codex exec` declines every form at once; in flag mode that lets the approve flag decide.
    const runId = readResult('run_workflow', history[1]!.result!).runId;
    expect(runId).toMatch(/^[a-z0-9]{12}$/);
    const runItem = o.items.find((i) => i.type === 'mcp_tool_call' && i.tool === 'run_workflow');
    expect(runItem, JSON.stringify(o.items)).toBeDefined();
    expect(o.lastMessage.trim()).toBe(`Started: ${runId}`);
    expect(runDirs(o.store)).toEqual([runId]);
  }, 60_000);
});
