/**
 * What it costs, across runs (issue 12, item 6): `fanfold list` (text and --json) and
 * workflow_status without runId show each run's spend and the total over the listed runs; `fanfold
 * plan` and plan_workflow open the rendered plan with the cost headline and warn of a large workflow.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fanfold, tempDir } from '../helpers/cli.js';
import { call, commandSpec, connect, dataOf, fixtureRun, textOf, type Connected } from '../mcp/helpers.js';

let dirs: string[] = [];
let open: Connected[] = [];
afterEach(async () => {
  for (const c of open) await c.close().catch(() => {});
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  dirs = [];
  open = [];
});

/** A store with three runs: two that spent (Claude dollars and tokens; Codex tokens only) and one with nothing recorded. */
async function storeWithSpend(): Promise<{ dir: string; root: string; ids: string[] }> {
  const dir = tempDir('fanfold-spend-');
  dirs.push(dir);
  const root = path.join(dir, 'store');
  const a = await fixtureRun(root, commandSpec(2, { name: 'claude-run' }), { status: 'completed', spend: { usd: 1.25, tokens: 120_000 } });
  await new Promise((r) => setTimeout(r, 5));
  const b = await fixtureRun(root, commandSpec(1, { name: 'codex-run' }), { status: 'failed', spend: { usd: 0, tokens: 40_500 } });
  await new Promise((r) => setTimeout(r, 5));
  const c = await fixtureRun(root, commandSpec(1, { name: 'nothing-yet' }), { status: 'stopped' });
  return { dir, root, ids: [c, b, a] };
}

describe('fanfold list shows spend', () => {
  it('--json: each run its spend (zero when none recorded) and the total', async () => {
    const s = await storeWithSpend();
    const r = fanfold(['list', '--json', '--store', s.root], { cwd: s.dir });
    expect(r.status, r.stderr).toBe(0);
    const j = r.json();
    expect(j.runs.map((x: any) => x.runId)).toEqual(s.ids);
    expect(j.runs.map((x: any) => x.spend)).toEqual([
      { usd: 0, tokens: 0 },
      { usd: 0, tokens: 40_500 },
      { usd: 1.25, tokens: 120_000 },
    ]);
    expect(j.spend).toEqual({ usd: 1.25, tokens: 160_500 });
  });

  it('text: a spend column and a total line', async () => {
    const s = await storeWithSpend();
    const r = fanfold(['list', '--store', s.root], { cwd: s.dir });
    expect(r.status, r.stderr).toBe(0);
    const [header, ...lines] = r.stdout.trimEnd().split('\n');
    expect(header).toMatch(/^RUN +STATUS +OK\/TOTAL +ELAPSED +SPENT +STARTED +NAME$/);
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(new RegExp(`^${s.ids[0]} .*\\$0\\.00 · 0 tokens .*nothing-yet$`));
    expect(lines[1]).toMatch(/\$0\.00 · 41k tokens .*codex-run$/);
    expect(lines[2]).toMatch(/\$1\.25 · 120k tokens .*claude-run$/);
    expect(lines[3]).toMatch(/^total: \$1\.25 · 161k tokens over 3 runs/);
  });
});

describe('workflow_status without runId shows spend', () => {
  it('per run and the total of the runs listed, in structured content and text', async () => {
    const s = await storeWithSpend();
    const c = await connect({ root: s.root, cwd: s.dir });
    open.push(c);
    const r = await call(c.client, 'workflow_status', {});
    expect(r.isError, textOf(r)).toBeFalsy();
    const d = dataOf(r);
    expect(d.runs.map((x: any) => [x.name, x.spend])).toEqual([
      ['nothing-yet', { usd: 0, tokens: 0 }],
      ['codex-run', { usd: 0, tokens: 40_500 }],
      ['claude-run', { usd: 1.25, tokens: 120_000 }],
    ]);
    expect(d.spend).toEqual({ usd: 1.25, tokens: 160_500 });
    expect(textOf(r)).toMatch(/"claude-run": completed, .* spent \$1\.25 · 120k tokens/);
    expect(textOf(r)).toMatch(/Spend of the 3 runs listed: \$1\.25 · 161k tokens/);
  });
});

describe('the plan headline in front of people', () => {
  const big = {
    version: 1,
    name: 'big',
    limits: { maxAgents: 100, budget: { perAgentTokens: 50_000 } },
    agents: { w: { runner: 'codex' } },
    phases: [{ id: 'p', agent: 'w', tasks: Array.from({ length: 30 }, (_, i) => ({ id: `t${i}`, prompt: `x ${i}` })) }],
  };

  it('fanfold plan prints it first, with the large-workflow warning', () => {
    const dir = tempDir('fanfold-spend-');
    dirs.push(dir);
    fs.writeFileSync(path.join(dir, 'spec.json'), JSON.stringify(big));
    const r = fanfold(['plan', 'spec.json'], { cwd: dir });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^30 agents \(up to 30\) · ~1\.5M tokens · \$unknown · ~\d+ min$/);
    expect(lines[1]).toBe('Warning: large workflow — 30 agents (over 25)');
    expect(lines[2]).toBe('Workflow: big');
    const j = fanfold(['plan', 'spec.json', '--json'], { cwd: dir }).json();
    expect(j.cost).toMatchObject({ agents: 30, agentsMax: 30, tokens: 1_500_000, usd: null });
  });

  it('plan_workflow puts it at the top of the rendered plan and in the estimate', async () => {
    const dir = tempDir('fanfold-spend-');
    dirs.push(dir);
    const c = await connect({ root: path.join(dir, 'store'), cwd: dir });
    open.push(c);
    const r = await call(c.client, 'plan_workflow', { spec: big });
    expect(r.isError, textOf(r)).toBeFalsy();
    const d = dataOf(r);
    expect(d.rendered.split('\n').slice(0, 2)).toEqual([d.estimate.headline, 'Warning: large workflow — 30 agents (over 25)']);
    expect(d.estimate.headline).toMatch(/^30 agents \(up to 30\) · ~1\.5M tokens · \$unknown · ~\d+ min$/);
    expect(d.estimate.largeWorkflow).toEqual(['30 agents (over 25)']);
    expect(textOf(r)).toContain(d.estimate.headline);
  });
});
