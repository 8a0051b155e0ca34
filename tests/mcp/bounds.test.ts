/**
 * Answer bounds on a run with 1,000 agents: every tool answer's text and structured content, and
 * every resource read, stays within 40 KB, however long the ids, titles, digests, outputs and
 * report. The run is built directly through the store (nothing is executed).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_ANSWER_BYTES } from '../../src/mcp/answer.js';
import { bytes, call, connect, dataOf, fixtureRun, textOf, type Connected } from './helpers.js';

const LIMIT = 40 * 1024;
const PHASES = 200;
const PER_PHASE = 5;

function hugeSpec(): Record<string, unknown> {
  const pad = (s: string, n: number) => (s + '-' + 'x'.repeat(n)).slice(0, n);
  return {
    version: 1,
    name: pad('a-very-long-workflow-name', 100),
    goal: 'g'.repeat(5000),
    limits: { maxAgents: 1000, maxConcurrent: 16 },
    agents: { echo: { runner: 'command', command: ['sh', '-c', 'echo hi'] } },
    phases: Array.from({ length: PHASES }, (_, p) => ({
      id: pad(`phase${p}`, 64),
      title: pad(`Phase number ${p} with a long title`, 200),
      agent: 'echo',
      ...(p > 0 ? { dependsOn: [pad(`phase${p - 1}`, 64)] } : {}),
      tasks: Array.from({ length: PER_PHASE }, (_, t) => ({ id: pad(`task${t}`, 64), prompt: `prompt ${p}.${t} ${'p'.repeat(1000)}` })),
    })),
  };
}

describe('answer bounds with 1,000 agents', () => {
  let c: Connected;
  let runId: string;
  let planId: string;
  const sizes: { what: string; text: number; structured: number }[] = [];

  function check(what: string, r: unknown) {
    const text = bytes(textOf(r));
    const structured = bytes(JSON.stringify(dataOf(r) ?? null));
    sizes.push({ what, text, structured });
    expect(text, `${what}: text bytes`).toBeLessThanOrEqual(LIMIT);
    expect(structured, `${what}: structured bytes`).toBeLessThanOrEqual(LIMIT);
    // The per-part budgets hold on their own: the last-resort cuts never had to act, so the
    // ids and the next step at the end of each answer are intact.
    expect(textOf(r), what).not.toContain('[answer clipped at 40 KB');
    expect(JSON.stringify(dataOf(r) ?? null), what).not.toContain('[clipped to fit the answer]');
  }

  beforeAll(async () => {
    c = await connect();
    const spec = hugeSpec();
    const plan = await call(c.client, 'plan_workflow', { spec });
    expect(plan.isError, textOf(plan)).toBeFalsy();
    planId = dataOf(plan).planId;
    check('plan_workflow', plan);
    runId = await fixtureRun(c.root, spec, {
      status: 'completed',
      output: (p, t, i) => `needle haystack ${i} ${p} ${t}\n` + `word${i % 97} `.repeat(400),
      digest: (p) => `digest of ${p}: ` + 'd'.repeat(5000),
      report: '# Report\n\n' + 'A long report line with needle.\n'.repeat(8000),
    });
  }, 120_000);

  afterAll(async () => {
    await c?.close();
    const max = sizes.reduce((m, s) => Math.max(m, s.text, s.structured), 0);
    process.stderr.write(`largest answer part seen: ${max} bytes (cap ${LIMIT})\n${sizes.map((s) => `  ${s.what}: text ${s.text}, structured ${s.structured}`).join("\n")}\n`);
  });

  it('plan_workflow lists a bounded number of phases and says how many were left out', async () => {
    const d = dataOf(await call(c.client, 'plan_workflow', { spec: hugeSpec() }));
    expect(d.agentCount).toBe(1000);
    expect(d.phases.length).toBe(50);
    expect(d.phasesOmitted).toBe(150);
  });

  it('run_workflow without approval answers with the plan, bounded', async () => {
    const r = await call(c.client, 'run_workflow', { planId });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/1000 agents, more than the 25/);
    check('run_workflow needs approval', r);
  });

  it('workflow_status in every detail, every agent page and the run list', async () => {
    for (const detail of ['summary', 'phases', 'agents'] as const) {
      const r = await call(c.client, 'workflow_status', { runId, detail });
      expect(r.isError, textOf(r)).toBeFalsy();
      check(`workflow_status ${detail}`, r);
    }
    const summary = dataOf(await call(c.client, 'workflow_status', { runId }));
    expect(summary.phases).toHaveLength(50);
    expect(summary.phasesOmitted).toBe(150);
    expect(summary.report).toMatch(/report clipped: \d+ bytes in all/);
    expect(summary.digest).toMatch(/more phase digests? left out|digest clipped/);
    let offset: number | null = 0;
    let rows = 0;
    while (offset !== null) {
      const r = await call(c.client, 'workflow_status', { runId, detail: 'agents', offset });
      check(`workflow_status agents @${offset}`, r);
      const page: { rows: unknown[]; nextOffset: number | null } = dataOf(r).agentRows;
      rows += page.rows.length;
      offset = page.nextOffset;
    }
    expect(rows).toBe(1000);
    check('workflow_status list', await call(c.client, 'workflow_status', {}));
  }, 60_000);

  it('query_workflow hits and ref pages', async () => {
    const r = await call(c.client, 'query_workflow', { query: 'needle haystack word5', limit: 20 });
    expect(dataOf(r).hits).toHaveLength(20);
    expect(dataOf(r).total).toBe(1000);
    check('query_workflow hits', r);
    const ref = dataOf(r).hits[0].ref;
    const page = await call(c.client, 'query_workflow', { ref });
    check('query_workflow ref', page);
  }, 60_000);

  it('resources', async () => {
    for (const uri of ['fanfold://runs', `fanfold://runs/${runId}`]) {
      const res = await c.client.readResource({ uri });
      expect(bytes((res.contents[0] as { text: string }).text), uri).toBeLessThanOrEqual(MAX_ANSWER_BYTES);
    }
    const list = await c.client.listResources();
    expect(list.resources.length).toBeLessThanOrEqual(51);
  });
});
