/**
 * Claude Code as a real MCP host of `fanfold serve`: the pinned `claude -p` loads fanfold from
 * `--mcp-config … --strict-mcp-config`, and a scripted model (Anthropic Messages server on
 * 127.0.0.1) drives plan_workflow → run_workflow (approve) → workflow_status (wait) →
 * query_workflow → a final answer quoting the hit's ref. Every tool result Claude Code passed back
 * to the model is checked in the next request, the run is checked on disk, and the final JSON
 * result must carry the ref. On by default like the other real-CLI tests; FANFOLD_E2E=0 turns them off.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAnthropicServer, toolNames, type AnthropicRequestBody, type AnthropicScript } from './support/anthropic-server.js';
import { ensureCli, type InstalledCli } from './support/clis.js';
import { claudeSandbox, type ClaudeSandbox } from './support/env.js';
import {
  CLAUDE_DISCOVERY,
  FANFOLD_CLI,
  FANFOLD_TOOLS,
  PLANTED,
  PROJECT_FILES,
  SCAN_TASKS,
  anthropicReply,
  checkFlow,
  checkRunOnDisk,
  claudeToolName,
  exchangesFromAnthropic,
  finalAnswer,
  nextApprovalProbeStep,
  nextHostStep,
  readResult,
  runDirs,
} from './support/host-scripts.js';
import { describeRun, runCli } from './support/run.js';

const ENABLED = process.env.FANFOLD_E2E !== '0';
if (!ENABLED) {
  // Never skip silently.
  console.warn(
    '[fanfold e2e] SKIPPED tests/e2e/hosts-claude.test.ts: real agent CLI tests are turned off here (FANFOLD_E2E=0) ' +
      '(they install claude/codex/pi on demand, ~350 MB, into the CLI cache).',
  );
}

const PROMPT = `Plan and run a fanfold workflow that reads every project file, then tell me which agent saw the word ${PLANTED}.`;

interface Outcome {
  run: Awaited<ReturnType<typeof runCli>>;
  requests: AnthropicRequestBody[];
  store: string;
  sb: ClaudeSandbox;
}

describe.skipIf(!ENABLED)('Claude Code hosts fanfold serve (real CLIs)', () => {
  let cli: InstalledCli;
  const sandboxes: ClaudeSandbox[] = [];
  beforeAll(async () => {
    cli = await ensureCli('claude');
  }, 15 * 60_000);
  afterAll(async () => {
    for (const sb of sandboxes) await sb.cleanup();
  });

  /** Runs `claude -p` with fanfold as its only MCP server and the scripted host model. */
  async function hostRun(opts: { toolSearch: boolean; serverEnv?: Record<string, string>; script?: AnthropicScript }): Promise<Outcome> {
    const script: AnthropicScript =
      opts.script ??
      ((body) => {
        const history = exchangesFromAnthropic(body);
        const step = nextHostStep(history, opts.toolSearch ? { discovery: CLAUDE_DISCOVERY } : {});
        return anthropicReply(step);
      });
    const server = await startAnthropicServer(script);
    // For a failure's post-mortem (kept with FANFOLD_E2E_KEEP=1): every request the model server got.
    const dump = async (): Promise<void> => {
      await writeFile(join(sb.root, 'model-requests.json'), JSON.stringify(server.messageRequests.map((r) => r.body), null, 1));
    };
    const sb = await claudeSandbox({ baseUrl: server.baseUrl, env: opts.toolSearch ? {} : { ENABLE_TOOL_SEARCH: 'false' } });
    sandboxes.push(sb);
    try {
      for (const [rel, text] of Object.entries(PROJECT_FILES)) await sb.writeProjectFile(rel, text);
      const store = join(sb.root, 'store');
      const mcpConfig = {
        mcpServers: {
          fanfold: {
            type: 'stdio',
            command: process.execPath,
            args: [FANFOLD_CLI, 'serve', '--store', store],
            env: opts.serverEnv ?? {},
          },
        },
      };
      const run = await runCli(
        cli.bin,
        [
          '-p',
          PROMPT,
          '--output-format',
          'json',
          '--model',
          'claude-scripted-model',
          '--mcp-config',
          JSON.stringify(mcpConfig),
          '--strict-mcp-config',
          `--allowedTools=${FANFOLD_TOOLS.map(claudeToolName).join(',')}`,
          '--max-turns',
          '12',
          '--no-session-persistence',
        ],
        { cwd: sb.project, env: sb.env, timeoutMs: 50_000 },
      );
      server.assertNoScriptErrors();
      return { run, requests: server.messageRequests.map((r) => r.body as AnthropicRequestBody), store, sb };
    } finally {
      await dump().catch(() => {});
      await server.close();
    }
  }

  /** The checks both discovery paths share. */
  function checkOutcome(o: Outcome): void {
    const { run, requests, store } = o;
    expect(run.code, describeRun(run)).toBe(0);
    const result = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(result, describeRun(run)).toMatchObject({ type: 'result', subtype: 'success', is_error: false, permission_denials: [] });

    // The last request holds the whole conversation: every tool result Claude Code passed back.
    const history = exchangesFromAnthropic(requests.at(-1)!);
    const facts = checkFlow(history);
    expect(facts.ref).toBe(`${facts.runId}/scan/notes`);
    // Each request after a fanfold call carries that call's result (nothing lost on the way).
    const fanfoldCalls = history.filter((e) => (FANFOLD_TOOLS as readonly string[]).includes(e.tool));
    for (const call of fanfoldCalls) {
      const i = requests.findIndex((body) => exchangesFromAnthropic(body).some((e) => e.rawName === call.rawName && e.result === call.result));
      expect(i, `a request carries the result of ${call.rawName}`).toBeGreaterThan(0);
    }
    // Quirk of Claude Code 2.1.330: when a result has structuredContent, the model gets its JSON
    // and NOT the text rendering — so the ids, the status and the next step must be in the JSON.
    expect(facts.form).toBe('json');
    for (const tool of ['run_workflow', 'workflow_status', 'query_workflow'] as const) {
      for (const text of facts.results[tool]) expect(JSON.parse(text).nextStep, `${tool} JSON has a nextStep`).toEqual(expect.any(String));
    }
    expect(JSON.parse(facts.results.plan_workflow[0]!)).toMatchObject({ requiresApproval: false, rendered: expect.stringContaining('host-e2e-scan') });

    // The run really happened in the store the server was given, in the project directory.
    const disk = checkRunOnDisk(store, facts.runId);
    expect(disk.status).toBe('completed');
    expect(disk.agentFiles).toEqual(['list.all.1.json', ...Object.keys(SCAN_TASKS).sort().map((t) => `scan.${t}.1.json`)]);
    expect(disk.outputs['scan/notes']).toContain(PLANTED);
    expect(disk.outputs['scan/alpha']).toMatch(/^== src\/alpha\.ts \(4 lines\)/);
    expect(disk.outputs['list/all']).toMatch(/alpha\.ts/);
    expect(existsSync(join(store, facts.runId, 'report.md'))).toBe(true);

    // Claude's final answer is the model's text, with the ref.
    expect(result.result).toBe(finalAnswer(facts.ref));
    expect(String(result.result)).toContain(facts.ref);
  }

  // Claude Code declares elicitation, so fanfold asks its approval with a form — and `claude -p`
  // cancels every form at once (see the last test). The flow tests turn command approval off in
  // the server's env, as a user running headless would.
  const NO_COMMAND_APPROVAL = { FANFOLD_APPROVAL_COMMANDS: '0' };

  it('discovers the tools with ToolSearch (the default), then plan → run → status → query → answer', async () => {
    const o = await hostRun({ toolSearch: true, serverEnv: NO_COMMAND_APPROVAL });
    checkOutcome(o);
    // MCP tools are deferred: the first request offers ToolSearch, not the fanfold tools; after
    // the select the four tools are in the list.
    const first = o.requests[0]!;
    expect(toolNames(first)).toContain('ToolSearch');
    expect(toolNames(first).filter((n) => n.startsWith('mcp__fanfold__'))).toEqual([]);
    const later = toolNames(o.requests[1]!);
    for (const t of FANFOLD_TOOLS) expect(later).toContain(claudeToolName(t));
    const history = exchangesFromAnthropic(o.requests.at(-1)!);
    expect(history[0]).toMatchObject({ tool: 'ToolSearch' });
  }, 60_000);

  it('with ENABLE_TOOL_SEARCH=false the tools are listed directly; same flow', async () => {
    const o = await hostRun({ toolSearch: false, serverEnv: NO_COMMAND_APPROVAL });
    checkOutcome(o);
    const first = toolNames(o.requests[0]!);
    for (const t of FANFOLD_TOOLS) expect(first).toContain(claudeToolName(t));
    expect(exchangesFromAnthropic(o.requests.at(-1)!).some((e) => e.tool === 'ToolSearch')).toBe(false);
  }, 60_000);

  it('headless approval: claude -p cancels the elicitation form at once, so the approve flag decides and the run starts', async () => {
    const script: AnthropicScript = (body) => anthropicReply(nextApprovalProbeStep(exchangesFromAnthropic(body), {}));
    const o = await hostRun({ toolSearch: false, script });
    expect(o.run.code, describeRun(o.run)).toBe(0);
    const history = exchangesFromAnthropic(o.requests.at(-1)!);
    expect(history.map((e) => e.tool)).toEqual(['plan_workflow', 'run_workflow']);
    expect(JSON.parse(history[0]!.result!)).toMatchObject({ requiresApproval: true });
    // fanfold asked with a form (Claude Code declares elicitation); `claude -p` has nobody to show
    // it to and answers `cancel` at once. No person answers that fast, so the form counts as not
    // shown and the approve flag the host passed decides.
    expect(history[1]).toMatchObject({ args: { approve: true } });
    expect(history[1]!.isError).toBeFalsy();
    const runId = readResult('run_workflow', history[1]!.result!).runId;
    expect(runId).toMatch(/^[a-z0-9]{12}$/);
    expect(JSON.parse(o.run.stdout)).toMatchObject({ is_error: false, result: `Started: ${runId}` });
    expect(runDirs(o.store)).toEqual([runId]);
  }, 60_000);
});
