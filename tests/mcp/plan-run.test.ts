/**
 * plan_workflow and run_workflow through a real SDK Client: discovery, every error path, approval
 * with the approve flag and with elicitation (accept, decline, cancel), child mode.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ElicitRequestSchema, type ElicitRequest, type ElicitResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { bytes, call, commandSpec, connect, dataOf, runDirs, textOf, type Connected } from './helpers.js';

const REPO = path.resolve(import.meta.dirname, '../..');
const CENSUS = fs.readFileSync(path.join(REPO, 'examples/census.yaml'), 'utf8');

let open: Connected[] = [];
async function conn(...args: Parameters<typeof connect>): Promise<Connected> {
  const c = await connect(...args);
  open.push(c);
  return c;
}
afterEach(async () => {
  for (const c of open) await c.close().catch(() => {});
  open = [];
});

describe('discovery', () => {
  it('lists the five tools with output schemas and annotations, the prompts and the resources', async () => {
    const { client } = await conn();
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(['plan_workflow', 'run_workflow', 'workflow_status', 'query_workflow', 'control_workflow']);
    for (const t of tools) {
      expect(t.outputSchema, t.name).toBeDefined();
      expect(t.description!.length, t.name).toBeGreaterThan(40);
      expect(t.inputSchema.additionalProperties, `${t.name} refuses unknown arguments`).toBe(false);
    }
    const ann = Object.fromEntries(tools.map((t) => [t.name, t.annotations]));
    expect(ann['plan_workflow']).toMatchObject({ readOnlyHint: true, destructiveHint: false, openWorldHint: false });
    // run_workflow can start edit-tier and command agents: it says so (issue 13 item 9).
    expect(ann['run_workflow']).toMatchObject({ readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true });
    expect(ann['workflow_status']).toMatchObject({ readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false });
    expect(ann['query_workflow']).toMatchObject({ readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false });
    // control_workflow kills agents and can resume runs (issue 12 item 5).
    expect(ann['control_workflow']).toMatchObject({ readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true });
    // query_workflow takes the same search options as `fanfold query` (issue 13 item 8).
    const queryInput = tools.find((t) => t.name === 'query_workflow')!.inputSchema as any;
    expect(queryInput.properties.prefix.type).toBe('boolean');
    expect(queryInput.properties.fuzzy.type).toBe('boolean');
    expect(queryInput.properties.status.enum).toEqual(['succeeded', 'failed', 'timed_out', 'cancelled', 'skipped']);
    const runInput = tools.find((t) => t.name === 'run_workflow')!.inputSchema as any;
    expect(runInput.properties.wait.maximum).toBe(50);

    const { prompts } = await client.listPrompts();
    expect(prompts.map((p) => p.name)).toContain('census');
    const { resources } = await client.listResources();
    expect(resources.map((r) => r.uri)).toContain('fanfold://runs');
    const { resourceTemplates } = await client.listResourceTemplates();
    expect(resourceTemplates.map((r) => r.uriTemplate).sort()).toEqual(['fanfold://runs/{runId}', 'fanfold://runs/{runId}/agents/{phaseId}/{taskId}']);
  });

  it('child mode offers only workflow_status and query_workflow, and refuses the others', async () => {
    const { client, root } = await conn({ child: true });
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(['workflow_status', 'query_workflow']);
    const plan = await call(client, 'plan_workflow', { spec: commandSpec(1) });
    expect(plan.isError).toBe(true);
    expect(textOf(plan)).toMatch(/not found/);
    const run = await call(client, 'run_workflow', { spec: commandSpec(1), approve: true });
    expect(run.isError).toBe(true);
    expect(runDirs(root)).toEqual([]);
    expect(client.getServerCapabilities()?.prompts).toBeUndefined();
    const status = await call(client, 'workflow_status', {});
    expect(status.isError).toBeFalsy();
  });

  it('a template prompt asks the host to adapt the template and call plan_workflow', async () => {
    const { client } = await conn();
    const p = await client.getPrompt({ name: 'census', arguments: { request: 'count the files of every package in packages/' } });
    const msg = p.messages[0]!;
    expect(msg.role).toBe('user');
    const text = (msg.content as { text: string }).text;
    expect(text).toContain('count the files of every package in packages/');
    expect(text).toContain('plan_workflow');
    expect(text).toContain('name: source-census');
    const bare = await client.getPrompt({ name: 'census', arguments: {} });
    expect((bare.messages[0]!.content as { text: string }).text).toMatch(/Ask me what the workflow should cover/);
  });

  it('skips templates it cannot parse and serves the rest', async () => {
    const dir = (await import('./helpers.js')).tempDir();
    fs.writeFileSync(path.join(dir, 'good.yaml'), CENSUS);
    fs.writeFileSync(path.join(dir, 'broken.yaml'), 'version: 1\nname: [unclosed\n');
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'not a template');
    const c = await conn({ examplesDir: dir });
    const { prompts } = await c.client.listPrompts();
    expect(prompts.map((p) => p.name)).toEqual(['good']);
    expect(c.logs.join('\n')).toMatch(/skipping template broken\.yaml/);
  });
});

describe('plan_workflow', () => {
  it('plans a YAML spec, stores it versioned, and names the planId in the text', async () => {
    const { client, root } = await conn();
    const r = await call(client, 'plan_workflow', { spec: CENSUS });
    expect(r.isError).toBeFalsy();
    const d = dataOf(r);
    expect(d.planId).toMatch(/^p[a-z0-9]{12}$/);
    expect(d.revision).toBe(1);
    expect(d.name).toBe('source-census');
    expect(d.phases).toEqual([
      { id: 'census', title: 'Census per folder', tasks: 8, dependsOn: [] },
      { id: 'assemble', title: 'Assemble the census into one ranked table', tasks: 1, dependsOn: ['census'] },
    ]);
    expect(d.agentCount).toBe(9);
    expect(d.criticalPath.length).toBe(2);
    expect(d.estimate).toMatchObject({ agents: 9, slots: 4, rounds: 3, tokens: null, costUsd: null, maxWallClockMs: 600_000 });
    expect(d.estimate.note).toMatch(/not estimated: set limits\.budget/);
    expect(d.estimate).toMatchObject({ budget: { usd: null, tokens: null }, overBudget: false });
    expect(d.requiresApproval).toBe(false);
    expect(d.approvalReasons).toEqual([]);
    expect(d.rendered).toMatch(/^\d+ agents \(up to \d+\) · ~0 tokens · ~\$0\.00 · ~\d+ min\nWorkflow: source-census/);
    expect(d.estimate.headline).toBe(d.rendered.split('\n')[0]);
    expect(d.estimate.largeWorkflow).toEqual([]);
    const text = textOf(r);
    expect(text).toContain(`planId: ${d.planId}`);
    expect(text).toContain('Requires approval: no');
    expect(text).toContain(`run_workflow {"planId":"${d.planId}"}`);
    const stored = JSON.parse(fs.readFileSync(path.join(root, '.plans', `${d.planId}.json`), 'utf8'));
    expect(stored).toMatchObject({ schemaVersion: 1, planId: d.planId, revision: 1 });
    expect(stored.plan.tasks).toHaveLength(9);
    expect(runDirs(root)).toEqual([]); // planning starts nothing
  });

  it('accepts a spec object and JSON text', async () => {
    const { client } = await conn();
    const obj = await call(client, 'plan_workflow', { spec: commandSpec(3) });
    expect(dataOf(obj).agentCount).toBe(3);
    const json = await call(client, 'plan_workflow', { spec: JSON.stringify(commandSpec(2)) });
    expect(dataOf(json).agentCount).toBe(2);
  });

  it('refines an earlier plan under the same id with a higher revision', async () => {
    const { client, root } = await conn();
    const first = dataOf(await call(client, 'plan_workflow', { spec: commandSpec(3) }));
    const again = await call(client, 'plan_workflow', { spec: commandSpec(5, { name: 'refined' }), planId: first.planId });
    expect(again.isError).toBeFalsy();
    expect(dataOf(again)).toMatchObject({ planId: first.planId, revision: 2, name: 'refined', agentCount: 5 });
    expect(textOf(again)).toContain(`planId: ${first.planId} (revision 2)`);
    expect(fs.readdirSync(path.join(root, '.plans'))).toEqual([`${first.planId}.json`]);
  });

  it('refuses to refine an unknown plan instead of silently making a new one', async () => {
    const { client, root } = await conn();
    const r = await call(client, 'plan_workflow', { spec: commandSpec(1), planId: 'pnope' });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/unknown plan 'pnope'/);
    expect(textOf(r)).toMatch(/plan_workflow/);
    expect(fs.existsSync(path.join(root, '.plans', 'pnope.json'))).toBe(false);
  });

  it.each(['../x', '..', 'a/b', '', 'x'.repeat(65), 'p\u0000x', '.hidden'])('refuses planId %j before touching a path', async (planId) => {
    const { client, root } = await conn();
    const r = await call(client, 'plan_workflow', { spec: commandSpec(1), planId });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/invalid plan id/);
    expect(fs.existsSync(path.join(root, '.plans'))).toBe(false);
  });

  it('answers a bad spec with every issue and its path', async () => {
    const { client } = await conn();
    const spec = {
      version: 1,
      name: 'bad',
      limits: { maxConcurrent: 40 },
      agents: { a: { runner: 'command', command: ['true'] } },
      phases: [
        { id: 'one', agent: 'a', tasks: [{ id: 't', prompt: 'p', dependOn: ['x'] }] },
        { id: 'two', agent: 'a', dependsOn: ['nope'], tasks: [{ id: 'u', prompt: 'p' }] },
      ],
    };
    const r = await call(client, 'plan_workflow', { spec });
    expect(r.isError).toBe(true);
    const text = textOf(r);
    expect(text).toMatch(/the workflow spec is invalid/);
    expect(text).toContain('limits.maxConcurrent: expected an integer from 1 to 16, got 40');
    expect(text).toMatch(/phases\[0\]\.tasks\[0\]\.dependOn: unknown key 'dependOn' \(did you mean 'dependsOn'\?\)/);
    expect(text).toMatch(/Fix each path/);
    // Once the shape is fixed, graph problems come back with their paths too.
    spec.limits.maxConcurrent = 4;
    delete (spec.phases[0]!.tasks[0] as Record<string, unknown>)['dependOn'];
    const r2 = await call(client, 'plan_workflow', { spec });
    expect(r2.isError).toBe(true);
    expect(textOf(r2)).toMatch(/phases\[1\]\.dependsOn\[0\]: .*nope/);
  });

  it('answers a YAML syntax error with its line and column', async () => {
    const { client } = await conn();
    const r = await call(client, 'plan_workflow', { spec: 'version: 1\nname: x\nphases: [\n  - id: a\n' });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/syntax error at line \d+, column \d+/);
  });

  it('refuses arguments of the wrong shape or unknown names', async () => {
    const { client } = await conn();
    const wrongType = await call(client, 'plan_workflow', { spec: 42 });
    expect(wrongType.isError).toBe(true);
    expect(textOf(wrongType)).toMatch(/Invalid arguments for tool plan_workflow/);
    const typo = await call(client, 'plan_workflow', { spec: commandSpec(1), plan_id: 'x' });
    expect(typo.isError).toBe(true);
    expect(textOf(typo)).toMatch(/plan_id/);
  });

  it('marks big and edit-capable plans as needing approval, with reasons', async () => {
    const { client } = await conn();
    const big = dataOf(await call(client, 'plan_workflow', { spec: commandSpec(30) }));
    expect(big.requiresApproval).toBe(true);
    expect(big.approvalReasons.join(' ')).toMatch(/30 agents, more than the 25/);
    const edit = await call(client, 'plan_workflow', { spec: commandSpec(2, { tier: 'edit' }) });
    expect(dataOf(edit).requiresApproval).toBe(true);
    expect(dataOf(edit).approvalReasons.join(' ')).toMatch(/2 tasks may edit files \(agent echo of tier 'edit'\)/);
    expect(textOf(edit)).toMatch(/Requires approval: yes/);
    expect(textOf(edit)).toContain('"approve":true');
  });

  it('estimates spend from limits.budget and asks approval for budgets or spend over the dollar threshold', async () => {
    const { client } = await conn();
    const withBudget = (n: number, budget: Record<string, number>) => {
      const spec = commandSpec(n) as { limits: Record<string, unknown> };
      spec.limits.budget = budget;
      return spec;
    };
    const small = dataOf(await call(client, 'plan_workflow', { spec: withBudget(3, { usd: 2, perAgentUsd: 0.5, perAgentTokens: 1000 }) }));
    expect(small.estimate).toMatchObject({ costUsd: 1.5, tokens: 3000, budget: { usd: 2, tokens: null }, overBudget: false });
    expect(small.estimate.note).toMatch(/expected \$1\.50 of a \$2\.00 budget/);
    expect(small.requiresApproval).toBe(false);

    const bigBudget = dataOf(await call(client, 'plan_workflow', { spec: withBudget(3, { usd: 20 }) }));
    expect(bigBudget.requiresApproval).toBe(true);
    expect(bigBudget.approvalReasons).toEqual(['its budget of $20.00 is over the $5.00 that runs without approval']);

    const costly = dataOf(await call(client, 'plan_workflow', { spec: withBudget(3, { perAgentUsd: 2 }) }));
    expect(costly.approvalReasons).toEqual(['it is expected to spend $6.00, over the $5.00 that runs without approval']);

    const over = dataOf(await call(client, 'plan_workflow', { spec: withBudget(3, { usd: 1, perAgentUsd: 1 }) }));
    expect(over.estimate.overBudget).toBe(true);
    expect(over.approvalReasons.join(' ')).toMatch(/would stop early \(budget_exhausted\)/);

    const lenient = await conn({ env: { FANFOLD_APPROVAL_USD: '50' } });
    expect(dataOf(await call(lenient.client, 'plan_workflow', { spec: withBudget(3, { usd: 20 }) })).requiresApproval).toBe(false);
    await expect(connect({ env: { FANFOLD_APPROVAL_USD: '-1' } })).rejects.toThrow(/FANFOLD_APPROVAL_USD must be a number ≥ 0/);
  });

  it('reads the approval threshold from FANFOLD_APPROVAL_AGENTS and refuses a malformed one', async () => {
    const { client } = await conn({ env: { FANFOLD_APPROVAL_AGENTS: '2' } });
    expect(dataOf(await call(client, 'plan_workflow', { spec: commandSpec(3) })).requiresApproval).toBe(true);
    await expect(connect({ env: { FANFOLD_APPROVAL_AGENTS: 'many' } })).rejects.toThrow(/FANFOLD_APPROVAL_AGENTS must be an integer/);
  });
});

describe('run_workflow', () => {
  it('needs exactly one of planId, spec or resumeRunId', async () => {
    const { client, root } = await conn();
    const none = await call(client, 'run_workflow', {});
    expect(none.isError).toBe(true);
    expect(textOf(none)).toMatch(/pass exactly one of planId \(from plan_workflow\), spec/);
    const two = await call(client, 'run_workflow', { planId: 'pabc', spec: commandSpec(1) });
    expect(two.isError).toBe(true);
    expect(textOf(two)).toMatch(/got planId and spec/);
    expect(runDirs(root)).toEqual([]);
  });

  it('refuses unknown plans and malformed or unknown run ids', async () => {
    const { client, root } = await conn();
    const unknown = await call(client, 'run_workflow', { planId: 'pmissing' });
    expect(unknown.isError).toBe(true);
    expect(textOf(unknown)).toMatch(/unknown plan 'pmissing'.*plan_workflow/);
    const bad = await call(client, 'run_workflow', { resumeRunId: '../x' });
    expect(bad.isError).toBe(true);
    expect(textOf(bad)).toMatch(/invalid run id '\.\.\/x'/);
    const badPlan = await call(client, 'run_workflow', { planId: '../../etc/passwd' });
    expect(badPlan.isError).toBe(true);
    expect(textOf(badPlan)).toMatch(/invalid plan id/);
    const missing = await call(client, 'run_workflow', { resumeRunId: 'nosuchrun' });
    expect(missing.isError).toBe(true);
    expect(textOf(missing)).toMatch(/unknown run 'nosuchrun'/);
    expect(textOf(missing)).toMatch(/workflow_status without runId/);
    expect(runDirs(root)).toEqual([]);
  });

  it('starts nothing without approval and tells the host to show the plan and pass approve: true', async () => {
    const { client, root } = await conn({ approvalAgentThreshold: 2 });
    const { planId } = dataOf(await call(client, 'plan_workflow', { spec: commandSpec(3) }));
    const r = await call(client, 'run_workflow', { planId });
    expect(r.isError).toBe(true);
    const text = textOf(r);
    expect(text).toMatch(/Approval needed: nothing was started/);
    expect(text).toMatch(/it starts 3 agents, more than the 2/);
    expect(text).toMatch(/Show the plan below to the user/);
    expect(text).toContain('Workflow: mcp-test'); // the rendered plan
    expect(text).toContain(`run_workflow {"planId":"${planId}","approve":true}`);
    const no = await call(client, 'run_workflow', { planId, approve: false });
    expect(no.isError).toBe(true);
    expect(runDirs(root)).toEqual([]);
  });

  it('asks approval for command-runner agents, which can run anything outside the host sandbox', async () => {
    const { client, root } = await conn({ approveCommands: true });
    const { planId, requiresApproval, approvalReasons } = dataOf(await call(client, 'plan_workflow', { spec: commandSpec(1) }));
    expect(requiresApproval).toBe(true);
    expect(approvalReasons.join(' ')).toMatch(/1 task runs shell commands outside the host's sandbox \(agent \S+ of runner 'command'\)/);
    const r = await call(client, 'run_workflow', { planId });
    expect(r.isError).toBe(true);
    expect(runDirs(root)).toEqual([]);
    const ok = await call(client, 'run_workflow', { planId, approve: true });
    expect(ok.isError).toBeFalsy();
  });

  it('runs an approved plan in a detached owner and answers with the runId (and waits when asked)', async () => {
    const { client, root } = await conn({ approvalAgentThreshold: 2 });
    const { planId } = dataOf(await call(client, 'plan_workflow', { spec: commandSpec(3) }));
    const r = await call(client, 'run_workflow', { planId, approve: true, wait: 30 });
    expect(r.isError, textOf(r)).toBeFalsy();
    const d = dataOf(r);
    expect(d).toMatchObject({ planId, status: 'completed', name: 'mcp-test', agentCount: 3, resumed: false });
    expect(d.agents).toMatchObject({ total: 3, succeeded: 3 });
    expect(d.dir).toBe(path.join(root, d.runId));
    expect(runDirs(root)).toEqual([d.runId]);
    const text = textOf(r);
    expect(text).toContain(`runId: ${d.runId}`);
    expect(text).toContain('status: completed');
    expect(text).toContain('query_workflow');
  });

  it('runs an inline spec (stored as a plan too) and returns at once without wait', async () => {
    const { client, root } = await conn();
    const spec = commandSpec(2, { command: ['sh', '-c', 'sleep 1; echo late $FANFOLD_TASK_ID'] });
    const t0 = Date.now();
    const r = await call(client, 'run_workflow', { spec });
    expect(Date.now() - t0).toBeLessThan(5000);
    const d = dataOf(r);
    expect(d.status).toBe('running');
    expect(d.planId).toMatch(/^p/);
    expect(fs.existsSync(path.join(root, '.plans', `${d.planId}.json`))).toBe(true);
    expect(textOf(r)).toMatch(/workflow_status \{"runId":"[a-z0-9]+","wait":50\}/);
    const done = await call(client, 'workflow_status', { runId: d.runId, wait: 30 });
    expect(dataOf(done).status).toBe('completed');
  });

  it('reports an owner that cannot start, with the runId to resume', async () => {
    const { client } = await conn({
      launch: async () => {
        throw new Error('engine: the run owner exited at once (code 1)');
      },
    });
    const r = await call(client, 'run_workflow', { spec: commandSpec(1) });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/the run owner for run ([a-z0-9]+) did not start: engine: the run owner exited at once/);
    expect(textOf(r)).toMatch(/run_workflow \{"resumeRunId":"[a-z0-9]+"\}/);
  });

  it('a spec with edit-capable agents needs approval even when small', async () => {
    const { client, root } = await conn();
    const r = await call(client, 'run_workflow', { spec: commandSpec(1, { tier: 'edit' }) });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/may edit files/);
    expect(textOf(r)).toMatch(/run_workflow \{"planId":"p[a-z0-9]+","approve":true\}/);
    expect(runDirs(root)).toEqual([]);
  });
});

describe('approval by elicitation', () => {
  function elicitingClient(answer: (req: ElicitRequest) => ElicitResult | Promise<ElicitResult>, seen: ElicitRequest[]) {
    return {
      approvalAgentThreshold: 2,
      capabilities: { elicitation: {} },
      setup: (client: import('@modelcontextprotocol/sdk/client/index.js').Client) =>
        client.setRequestHandler(ElicitRequestSchema, async (req) => {
          seen.push(req);
          return answer(req);
        }),
    };
  }

  it('asks the user with a form summarising the plan; accept starts the run', async () => {
    const seen: ElicitRequest[] = [];
    const { client, root } = await conn(elicitingClient(() => ({ action: 'accept', content: { approve: true } }), seen));
    const { planId } = dataOf(await call(client, 'plan_workflow', { spec: commandSpec(3) }));
    const r = await call(client, 'run_workflow', { planId, wait: 30 });
    expect(r.isError, textOf(r)).toBeFalsy();
    expect(dataOf(r).status).toBe('completed');
    expect(seen).toHaveLength(1);
    const params = seen[0]!.params as { message: string; requestedSchema: any };
    expect(params.message).toMatch(/fanfold wants to start "mcp-test" with 3 agents/);
    expect(params.message).toMatch(/more than the 2/);
    expect(params.message).toContain('Workflow: mcp-test');
    expect(params.requestedSchema.properties.approve.type).toBe('boolean');
    expect(runDirs(root)).toHaveLength(1);
  });

  it('decline answers isError saying the user declined, even when the host passed approve: true', async () => {
    const seen: ElicitRequest[] = [];
    const { client, root } = await conn(elicitingClient(() => ({ action: 'decline' }), seen));
    const { planId } = dataOf(await call(client, 'plan_workflow', { spec: commandSpec(3) }));
    const r = await call(client, 'run_workflow', { planId, approve: true });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/The user declined to start "mcp-test"; nothing was started/);
    expect(seen).toHaveLength(1);
    expect(runDirs(root)).toEqual([]);
  });

  it('a form refused at once came from a headless host: the approve flag decides, and the answer says so', async () => {
    const seen: ElicitRequest[] = [];
    const { client, root } = await conn({ ...elicitingClient(() => ({ action: 'cancel' }), seen), headlessAnswerMs: 1500 });
    const { planId } = dataOf(await call(client, 'plan_workflow', { spec: commandSpec(1, { tier: 'edit' }) }));
    const refused = await call(client, 'run_workflow', { planId });
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toMatch(/cancelled the approval form at once \(\d+ ms\), so no person saw it/);
    expect(runDirs(root)).toEqual([]);
    const started = await call(client, 'run_workflow', { planId, approve: true });
    expect(started.isError).toBeFalsy();
    expect(seen.length).toBe(2);
  });

  it('cancel and an unticked box count as no', async () => {
    const answers: ElicitResult[] = [{ action: 'cancel' }, { action: 'accept', content: { approve: false } }];
    const seen: ElicitRequest[] = [];
    const { client, root } = await conn(elicitingClient(() => answers.shift()!, seen));
    const { planId } = dataOf(await call(client, 'plan_workflow', { spec: commandSpec(3) }));
    const cancelled = await call(client, 'run_workflow', { planId });
    expect(cancelled.isError).toBe(true);
    expect(textOf(cancelled)).toMatch(/dismissed the approval form/);
    const unticked = await call(client, 'run_workflow', { planId });
    expect(unticked.isError).toBe(true);
    expect(textOf(unticked)).toMatch(/declined/);
    expect(runDirs(root)).toEqual([]);
  });

  it('does not ask when the plan needs no approval', async () => {
    const seen: ElicitRequest[] = [];
    const { client } = await conn(elicitingClient(() => ({ action: 'decline' }), seen));
    const r = await call(client, 'run_workflow', { spec: commandSpec(1), wait: 30 });
    expect(dataOf(r).status).toBe('completed');
    expect(seen).toHaveLength(0);
  });

  it('falls back to the approve flag when the form fails', async () => {
    const seen: ElicitRequest[] = [];
    const c = await conn(
      elicitingClient(() => {
        throw new Error('no UI available');
      }, seen),
    );
    const { planId } = dataOf(await call(c.client, 'plan_workflow', { spec: commandSpec(3) }));
    const without = await call(c.client, 'run_workflow', { planId });
    expect(without.isError).toBe(true);
    expect(textOf(without)).toMatch(/Approval needed/);
    const withFlag = await call(c.client, 'run_workflow', { planId, approve: true, wait: 30 });
    expect(dataOf(withFlag).status).toBe('completed');
    expect(c.logs.join('\n')).toMatch(/approval form failed/);
  });
});

describe('answers stay small', () => {
  it('every answer in this file is far below 40 KB', async () => {
    const { client } = await conn();
    const r = await call(client, 'plan_workflow', { spec: CENSUS });
    expect(bytes(textOf(r))).toBeLessThan(40 * 1024);
  });
});
