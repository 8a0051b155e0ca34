/**
 * Dynamic phases through a real SDK Client: plan_workflow says what they do and how many agents
 * they may add; approval counts the agents they run at run time (templates, skeptics, the gate's
 * command and fix agent) exactly like written ones; workflow_status answers with one bounded line
 * per dynamic phase, and with capped verdicts in detail 'phases'.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { DynamicState, Verdict } from '../../src/store/types.js';
import { AGENT_SH, SKEPTIC_SH, smokeSpec } from '../helpers/dynamic-smoke.js';
import { bytes, call, connect, dataOf, fixtureRun, runDirs, textOf, type Connected } from './helpers.js';

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


/** A small plan: a read-only lister, then a forEach phase run by `agent`, plus optional extras. */
function forEachSpec(o: { tier?: 'read_only' | 'edit'; max?: number; runner?: 'command' | 'claude'; phase?: Record<string, unknown>; extraPhases?: Record<string, unknown>[] } = {}): Record<string, unknown> {
  const runner = o.runner ?? 'claude';
  const agent = (tier: string) => (runner === 'command' ? { runner, command: ['true'], tier } : { runner, tier });
  return {
    version: 1,
    name: 'foreach',
    agents: { lister: agent('read_only'), worker: agent(o.tier ?? 'read_only'), skeptic: agent('read_only') },
    phases: [
      { id: 'list', agent: 'lister', prompt: 'LIST' },
      { id: 'review', dependsOn: ['list'], agent: 'worker', forEach: { from: 'list', max: o.max ?? 3 }, prompt: 'REVIEW {{item}}', ...o.phase },
      ...(o.extraPhases ?? []),
    ],
  };
}

describe('plan_workflow: dynamic phases', () => {
  it('says what each dynamic phase does and gives the agent count as a lower bound with the known upper bounds', async () => {
    const { client } = await conn({ approvalAgentThreshold: 100 });
    const r = await call(client, 'plan_workflow', { spec: smokeSpec() });
    expect(r.isError, textOf(r)).toBeFalsy();
    const d = dataOf(r);
    const phase = (id: string) => d.phases.find((p: { id: string }) => p.id === id);
    expect(phase('list')).toEqual({ id: 'list', title: 'list', tasks: 1, dependsOn: [] });
    expect(phase('review')).toMatchObject({ tasks: 0, dynamic: 'forEach over list.files (max 3) × 1 template; verify: 3 skeptics per finding, majority (agent skeptic)' });
    expect(phase('polish').dynamic).toBe('pipeline after review (each item moves on alone) × 1 template');
    expect(phase('hunt').dynamic).toBe('converge: until 1 dry round, at most 4 rounds × 1 template');
    expect(phase('fixup').dynamic).toBe('gate: `test -f fixed-2`, up to 3 runs (fixes by sh)');
    expect(d.agentCount).toBe(3);
    expect(d.estimate).toMatchObject({ agents: 3, agentsLowerBound: true, agentsMax: null, agentsCap: 64 });
    expect(d.estimate.dynamicPhases).toEqual([
      { phaseId: 'review', max: null, note: 'forEach max 3 × 1 template; verify: 3 skeptics per finding, and how many findings agents report is unknown (set verify.max to bound it)' },
      { phaseId: 'polish', max: 3, note: 'pipeline: 3 items of review × 1 template' },
      { phaseId: 'hunt', max: 4, note: 'converge: at most 4 rounds × 1 template' },
      { phaseId: 'fixup', max: 5, note: 'gate: at most 3 checks and 2 fixes' },
    ]);
    expect(d.estimate.note).toMatch(/^Agents: 3 agents at least; no upper bound from the spec \(review depends on what agents answer\); limits\.maxAgents 64 caps the run\./);
    expect(d.rendered).toContain('2. review: tasks made at run time; agents sh, skeptic; after list; forEach over list.files (max 3)');
    expect(textOf(r)).toContain('forEach over list.files (max 3) × 1 template');
  });

  it('a static plan keeps its answer as before', async () => {
    const { client } = await conn();
    const d = dataOf(await call(client, 'plan_workflow', { spec: forEachSpec({ phase: { forEach: undefined, prompt: 'x' } }) }));
    expect(d.phases.every((p: Record<string, unknown>) => !('dynamic' in p))).toBe(true);
    expect(d.estimate).toMatchObject({ agents: 2, agentsLowerBound: false, agentsMax: 2, dynamicPhases: [] });
    expect(d.estimate.note).not.toMatch(/^Agents:/);
  });
});

describe('approval counts what dynamic phases run at run time', () => {
  it('an edit-tier forEach template needs approval like a written edit task, and nothing starts without it', async () => {
    const { client, root } = await conn({ approvalAgentThreshold: 100, approveCommands: true });
    const safe = dataOf(await call(client, 'plan_workflow', { spec: forEachSpec() }));
    expect(safe.requiresApproval).toBe(false);
    expect(safe.approvalReasons).toEqual([]);
    const plan = dataOf(await call(client, 'plan_workflow', { spec: forEachSpec({ tier: 'edit' }) }));
    expect(plan.requiresApproval).toBe(true);
    expect(plan.approvalReasons).toEqual(["tasks made at run time (review: forEach template) may edit files (agent worker of tier 'edit')"]);
    const refused = await call(client, 'run_workflow', { planId: plan.planId });
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toMatch(/Approval needed: nothing was started\. .*may edit files/);
    expect(runDirs(root)).toEqual([]);
  });

  it('an edit-tier skeptic or gate fix agent needs approval too', async () => {
    const { client } = await conn({ approvalAgentThreshold: 100 });
    const editorSkeptic = forEachSpec({ phase: { verify: { skeptics: 2, agent: 'fixer' } } });
    (editorSkeptic.agents as Record<string, unknown>).fixer = { runner: 'claude', tier: 'edit' };
    const a = dataOf(await call(client, 'plan_workflow', { spec: editorSkeptic }));
    expect(a.approvalReasons).toEqual(["tasks made at run time (review: skeptics) may edit files (agent fixer of tier 'edit')"]);
    const gated = forEachSpec({ extraPhases: [{ id: 'fixup', dependsOn: ['review'], agent: 'lister', prompt: 'FIX', gate: { critic: { agent: 'lister' }, fix: { agent: 'fixer' } } }] });
    (gated.agents as Record<string, unknown>).fixer = { runner: 'claude', tier: 'edit' };
    const b = dataOf(await call(client, 'plan_workflow', { spec: gated }));
    expect(b.approvalReasons).toEqual(["tasks made at run time (fixup: gate fixes) may edit files (agent fixer of tier 'edit')"]);
  });

  it("a gate's shell command needs command-runner approval, and is named", async () => {
    const spec = forEachSpec({ extraPhases: [{ id: 'fixup', dependsOn: ['review'], agent: 'lister', prompt: 'FIX', gate: { command: 'npm test -- --run', maxIterations: 2 } }] });
    const { client, root } = await conn({ approvalAgentThreshold: 100, approveCommands: true });
    const control = dataOf(await call(client, 'plan_workflow', { spec: forEachSpec() }));
    expect(control.requiresApproval).toBe(false);
    const plan = dataOf(await call(client, 'plan_workflow', { spec }));
    expect(plan.requiresApproval).toBe(true);
    expect(plan.approvalReasons).toEqual([
      "tasks made at run time (fixup: gate command `npm test -- --run`) run shell commands outside the host's sandbox (agent fixup-gate of runner 'command')",
    ]);
    const refused = await call(client, 'run_workflow', { planId: plan.planId });
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toContain('gate command `npm test -- --run`');
    expect(runDirs(root)).toEqual([]);
    // With command approval off (as for written command agents), the gate needs none either.
    const { client: lax } = await conn({ approvalAgentThreshold: 100, approveCommands: false });
    expect(dataOf(await call(lax, 'plan_workflow', { spec })).requiresApproval).toBe(false);
  });

  it('written command tasks and a gate command are named together', async () => {
    const spec = forEachSpec({ runner: 'command', extraPhases: [{ id: 'fixup', dependsOn: ['review'], agent: 'lister', prompt: 'FIX', gate: { command: 'make check' } }] });
    const { client } = await conn({ approvalAgentThreshold: 100, approveCommands: true });
    const d = dataOf(await call(client, 'plan_workflow', { spec }));
    expect(d.approvalReasons).toEqual([
      "2 tasks and tasks made at run time (review: forEach template; fixup: gate command `make check`; fixup: gate fixes) run shell commands outside the host's sandbox (agents fixup-gate, lister, worker of runner 'command')",
    ]);
  });

  it('counts the agents a forEach may add against the agent threshold', async () => {
    const { client } = await conn({ approvalAgentThreshold: 25 });
    const small = dataOf(await call(client, 'plan_workflow', { spec: forEachSpec({ max: 20 }) }));
    expect(small.requiresApproval).toBe(false);
    const big = dataOf(await call(client, 'plan_workflow', { spec: forEachSpec({ max: 40 }) }));
    expect(big.agentCount).toBe(1);
    expect(big.estimate.agentsMax).toBe(41);
    expect(big.approvalReasons).toEqual(['it may start up to 41 agents with the tasks made at run time (as the spec allows), more than the 25 that run without approval']);
    const costly = forEachSpec({ max: 20 });
    costly.limits = { budget: { perAgentUsd: 0.5 } };
    expect(dataOf(await call(client, 'plan_workflow', { spec: costly })).approvalReasons).toEqual([
      'it may spend up to $10.50 with the tasks made at run time, over the $5.00 that runs without approval',
    ]);
    const unbounded = dataOf(await call(client, 'plan_workflow', { spec: forEachSpec({ phase: { verify: { skeptics: 2 } } }) }));
    expect(unbounded.approvalReasons).toEqual([
      'it may start up to 64 agents with the tasks made at run time (limits.maxAgents 64; how many depends on what agents answer), more than the 25 that run without approval',
    ]);
  });
});

describe('workflow_status: dynamic phases', () => {
  it('answers one line per dynamic phase of a real run, and capped verdicts with detail phases', async () => {
    const c = await conn({ approvalAgentThreshold: 100 });
    fs.writeFileSync(path.join(c.cwd, 'agent.sh'), AGENT_SH);
    fs.writeFileSync(path.join(c.cwd, 'skeptic.sh'), SKEPTIC_SH);
    // approve: the smoke's work agent has tier edit (it leaves marker files in the project).
    const r = await call(c.client, 'run_workflow', { spec: smokeSpec(), wait: 45, approve: true });
    expect(r.isError, textOf(r)).toBeFalsy();
    const runId = dataOf(r).runId;
    expect(dataOf(r).status).toBe('completed');
    const s = await call(c.client, 'workflow_status', { runId });
    const d = dataOf(s);
    expect(d.dynamic).toEqual([
      { phaseId: 'review', summary: '3/5 items (2 dropped: forEach.max 3); verified 6 findings: 3 confirmed, 3 refuted' },
      { phaseId: 'polish', summary: '3 items from review' },
      { phaseId: 'hunt', summary: '3 rounds, dry 1, 2 findings' },
      { phaseId: 'fixup', summary: 'gate passed on run 3 of 3' },
    ]);
    const text = textOf(s);
    expect(text).toContain(
      'Dynamic phases:\n- review: 3/5 items (2 dropped: forEach.max 3); verified 6 findings: 3 confirmed, 3 refuted\n- polish: 3 items from review\n- hunt: 3 rounds, dry 1, 2 findings\n- fixup: gate passed on run 3 of 3',
    );
    expect(d.report).toContain('## Dynamic phases');
    expect(d.report).toContain('**Refuted findings (3)**');

    const detailed = dataOf(await call(c.client, 'workflow_status', { runId, detail: 'phases' }));
    const review = detailed.dynamic.find((x: { phaseId: string }) => x.phaseId === 'review');
    expect(review.verdicts).toHaveLength(5);
    expect(review.verdictsOmitted).toBe(1);
    expect(review.verdicts.slice(0, 2)).toEqual([
      { id: 'f1', verdict: 'confirmed', finding: 'bug in a.ts', refute: 0, of: 3, reason: 'holds' },
      { id: 'f2', verdict: 'refuted', finding: 'style in a.ts', refute: 3, of: 3, reason: 'style is not a bug' },
    ]);
    const detailedText = textOf(await call(c.client, 'workflow_status', { runId, detail: 'phases' }));
    expect(detailedText).toContain('  REFUTED f2 (3/3 refute): style in a.ts — style is not a bug');
    expect(detailedText).toContain('  … and 1 more verdict (report.md lists them)');
  }, 90_000);

  it('stays bounded with many dynamic phases, long texts and 100 verdicts each', async () => {
    const c = await conn();
    const PHASES = 60;
    const spec = {
      version: 1,
      name: 'many dynamic phases',
      limits: { maxAgents: 1000 },
      agents: { echo: { runner: 'command', command: ['sh', '-c', 'echo hi'] } },
      phases: Array.from({ length: PHASES }, (_, p) => ({ id: `phase${p}`, agent: 'echo', tasks: [{ id: 't', prompt: 'x' }] })),
    };
    const runId = await fixtureRun(c.root, spec, { status: 'failed', digest: (p) => `digest of ${p} ` + 'd'.repeat(3000), report: '# Report\n' + 'line\n'.repeat(20_000) });
    const long = (s: string, n: number) => (s + ' ' + 'x'.repeat(n)).slice(0, n);
    const { RunStore } = await import('../../src/store/index.js');
    const store = await RunStore.open(c.root, runId);
    await store.updateRun((run) => {
      run.phases.forEach((p, i) => {
        const verdicts: Verdict[] = Array.from({ length: 100 }, (_, k) => ({
          id: `f${k + 1}`, from: `${p.id}/t`, finding: long(`finding ${k}`, 300), verdict: k % 3 === 0 ? 'refuted' : 'confirmed',
          refute: 2, of: 3, reasons: [long('refutes: nope', 300), long('upholds: yes', 300), long('refutes: no', 300)],
        }));
        const state: DynamicState = {
          items: { found: 900, made: 10, dropped: 890, duplicates: 0, droppedItems: Array.from({ length: 20 }, (_, k) => long(`item ${k}`, 200)), dropReason: long('limits.maxAgents 1000', 200) },
          verify: { skeptics: 3, refuteBy: 'majority', findings: 300, confirmed: 200, refuted: 100, unverified: 0, verdicts },
          gate: { kind: 'command', maxIterations: 3, iterations: 3, passed: false, last: long('boom', 500) },
          merge: { applied: [], conflicts: Array.from({ length: 20 }, (_, k) => ({ ref: `${p.id}/e${k}`, files: ['a'], message: long('conflict', 500) })), empty: 0 },
          converge: { untilDry: 1, maxRounds: 50, rounds: 50, dryRounds: 0, findings: 400, newPerRound: Array(50).fill(8), stopped: long('converge.maxRounds 50 reached', 200) },
        };
        if (i % 7 !== 3) p.dynamic = state;
      });
    });
    await store.close();
    for (const detail of ['summary', 'phases', 'agents'] as const) {
      const r = await call(c.client, 'workflow_status', { runId, detail });
      expect(r.isError, textOf(r)).toBeFalsy();
      const text = textOf(r);
      const structured = JSON.stringify(dataOf(r));
      expect(bytes(text), detail).toBeLessThanOrEqual(40 * 1024);
      expect(bytes(structured), detail).toBeLessThanOrEqual(40 * 1024);
      expect(text).not.toContain('[answer clipped at 40 KB');
      expect(structured).not.toContain('[clipped to fit the answer]');
      const d = dataOf(r);
      expect(bytes(JSON.stringify(d.dynamic))).toBeLessThanOrEqual(detail === 'phases' ? 12 * 1024 : 6 * 1024);
      expect(d.dynamic.length).toBeGreaterThan(5);
      expect(d.dynamicOmitted).toBeGreaterThan(0);
      expect(d.dynamic.length + d.dynamicOmitted).toBe(PHASES - Math.ceil((PHASES - 3) / 7));
      for (const row of d.dynamic) expect(row.summary.length).toBeLessThanOrEqual(240);
      const verdicts = d.dynamic.reduce((n: number, row: { verdicts?: unknown[] }) => n + (row.verdicts?.length ?? 0), 0);
      expect(verdicts).toBe(detail === 'phases' ? 20 : 0);
      expect(text).toMatch(/… and \d+ more dynamic phases: `fanfold status` or run\.json phases\[\]\.dynamic/);
    }
  }, 60_000);
});
