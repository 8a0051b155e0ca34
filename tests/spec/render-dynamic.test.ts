/**
 * `fanfold plan` text and the estimate for dynamic phases: what each phase does, which agents it
 * may run, and agent counts as a lower bound with an upper bound where the spec fixes one.
 */
import { describe, expect, test } from 'vitest';
import { buildPlan, estimatePlan, renderEstimate, renderPlan } from '../../src/spec/index.js';
import { describeDynamics, phaseAgents } from '../../src/spec/render.js';

const AGENTS = {
  sh: { runner: 'command', command: ['true'] },
  skeptic: { runner: 'command', command: ['true'] },
  editor: { runner: 'command', command: ['true'], tier: 'edit' },
  critic: { runner: 'command', command: ['true'] },
};

function dynSpec(extra: { verifyMax?: number; forEachMax?: number; budget?: Record<string, number>; maxAgents?: number } = {}) {
  return {
    version: 1,
    name: 'dyn',
    limits: { maxConcurrent: 3, maxAgents: extra.maxAgents ?? 64, ...(extra.budget ? { budget: extra.budget } : {}) },
    agents: AGENTS,
    defaults: { agent: 'sh' },
    phases: [
      { id: 'list', prompt: 'LIST' },
      {
        id: 'review',
        dependsOn: ['list'],
        forEach: { from: 'list', items: 'files', ...(extra.forEachMax === undefined ? { max: 3 } : extra.forEachMax > 0 ? { max: extra.forEachMax } : {}) },
        tasks: [{ id: 'bugs', prompt: 'BUGS {{item}}' }, { id: 'style', prompt: 'STYLE {{item}}' }],
        verify: { skeptics: 3, ...(extra.verifyMax !== undefined ? { max: extra.verifyMax } : {}) },
      },
      { id: 'polish', mode: 'pipeline', dependsOn: ['review'], prompt: 'POLISH {{item}} after {{prev}}' },
      { id: 'hunt', dependsOn: ['polish'], converge: { untilDry: 1, maxRounds: 4 }, prompt: 'HUNT {{seen}}' },
      { id: 'fixup', dependsOn: ['hunt'], agent: 'editor', prompt: 'FIXUP', gate: { command: 'npm test', maxIterations: 3 } },
      { id: 'judge', dependsOn: ['fixup'], prompt: 'JUDGE', gate: { critic: { agent: 'critic' }, maxIterations: 2 } },
      { id: 'edit', dependsOn: ['judge'], agent: 'editor', isolation: 'worktree', tasks: [{ id: 'e1', prompt: 'e' }] },
      { id: 'report', dependsOn: ['edit'], prompt: 'REPORT', final: true },
    ],
  };
}

describe('renderPlan: dynamic phases', () => {
  test('each dynamic phase says what it does and which agents it may run', () => {
    const text = renderPlan(buildPlan(dynSpec()));
    const lines = text.split('\n');
    const line = (id: string) => lines.find((l) => new RegExp(`^  \\d+\\. ${id}[: ]`).test(l)) ?? '';
    expect(line('list')).toBe('  1. list: 1 task; agent sh');
    expect(line('review')).toBe(
      '  2. review: tasks made at run time; agents sh, skeptic; after list; forEach over list.files (max 3) × 2 templates; verify: 3 skeptics per finding, majority (agent skeptic)',
    );
    expect(line('polish')).toBe('  3. polish: tasks made at run time; agent sh; after review; pipeline after review (each item moves on alone) × 1 template');
    expect(line('hunt')).toBe('  4. hunt: tasks made at run time; agent sh; after polish; converge: until 1 dry round, at most 4 rounds × 1 template');
    expect(line('fixup')).toBe('  5. fixup: 1 task; agents editor, fixup-gate; after hunt; gate: `npm test`, up to 3 runs (fixes by editor)');
    expect(line('judge')).toBe('  6. judge: 1 task; agents sh, critic; after fixup; gate: critic critic, up to 2 runs (fixes by sh)');
    expect(line('edit')).toBe('  7. edit: 1 task; agent editor; after judge; isolated in git worktrees (patches merged after the phase)');
    expect(line('report')).toBe('  8. report: 1 task; agent sh; after edit; final');
  });

  test('the total is a lower bound, with per-phase bounds and the unknown ones said so', () => {
    const text = renderPlan(buildPlan(dynSpec()));
    expect(text).toContain(
      'Total: 5 tasks written, more made at run time: 5 agents at least; no upper bound from the spec (review depends on what agents answer); limits.maxAgents 64 caps the run',
    );
    expect(text).toContain('  review: unknown number of agents — forEach max 3 × 2 templates; verify: 3 skeptics per finding, and how many findings agents report is unknown (set verify.max to bound it)');
    expect(text).toContain('  polish: up to 3 more agents — pipeline: 3 items of review × 1 template');
    expect(text).toContain('  hunt: up to 4 more agents — converge: at most 4 rounds × 1 template');
    expect(text).toContain('  fixup: up to 5 more agents — gate: at most 3 checks and 2 fixes');
    expect(text).toContain('  judge: up to 3 more agents — gate: at most 2 checks and 1 fix');
    expect(text).toContain('  edit: no more agents — worktree patches merged after the phase (no agent)');
  });

  test('with verify.max every bound is known and the total says at most', () => {
    const text = renderPlan(buildPlan(dynSpec({ verifyMax: 4 })));
    // 5 written + review 3×2 + 4×3 skeptics + polish 3 + hunt 4 + fixup 5 + judge 3 = 38
    expect(text).toContain('Total: 5 tasks written, more made at run time: 5 agents at least, at most 38');
    expect(text).toContain('  review: up to 18 more agents — forEach max 3 × 2 templates; verify: at most 4 findings × 3 skeptics');
  });

  test('a forEach without max, and pipelines after it, are unknown', () => {
    const plan = buildPlan(dynSpec({ forEachMax: 0, verifyMax: 2 }));
    expect(describeDynamics(plan.phases[1]!)).toEqual(['forEach over list.files (no max) × 2 templates', 'verify: 3 skeptics per finding, majority (agent skeptic, at most 2 findings)']);
    const e = estimatePlan(plan);
    expect(e.agentsMax).toBeNull();
    expect(e.dynamic.find((x) => x.phaseId === 'review')).toMatchObject({ max: null, note: expect.stringMatching(/^forEach without max: one task per item review finds in list/) });
    expect(e.dynamic.find((x) => x.phaseId === 'polish')).toMatchObject({ max: null, note: 'pipeline: one task per item of review (unknown until it answers)' });
  });

  test('the upper bound never exceeds limits.maxAgents', () => {
    const e = estimatePlan(buildPlan(dynSpec({ verifyMax: 100, maxAgents: 30 })));
    expect(e).toMatchObject({ agents: 5, lowerBound: true, agentsMax: 30, agentsCap: 30 });
  });

  test('phaseAgents lists template, skeptic, gate and fix agents', () => {
    const plan = buildPlan(dynSpec());
    const byId = (id: string) => plan.phases.find((p) => p.id === id)!;
    expect(phaseAgents(plan, byId('review'))).toEqual(['sh', 'skeptic']);
    expect(phaseAgents(plan, byId('fixup'))).toEqual(['editor', 'fixup-gate']);
    expect(phaseAgents(plan, byId('judge'))).toEqual(['sh', 'critic']);
    expect(describeDynamics(byId('list'))).toEqual([]);
  });
});

describe('estimatePlan: dynamic plans', () => {
  test('a static plan keeps its exact count', () => {
    const plan = buildPlan({ version: 1, name: 's', agents: AGENTS, defaults: { agent: 'sh' }, phases: [{ id: 'a', tasks: [{ id: 'x', prompt: 'x' }, { id: 'y', prompt: 'y' }] }] });
    const e = estimatePlan(plan);
    expect(e).toMatchObject({ agents: 2, lowerBound: false, agentsMax: 2, dynamic: [] });
    expect(renderEstimate(e)).toBe('2 agents, 4 at a time, critical path 1');
    expect(renderPlan(plan)).toContain('Total: 2 tasks (2 agents at least)');
  });

  test('spend is a lower bound, with an upper bound when the agents are bounded', () => {
    const bounded = estimatePlan(buildPlan(dynSpec({ verifyMax: 4, budget: { usd: 5, perAgentUsd: 0.1, perAgentTokens: 1000 } })));
    expect(bounded).toMatchObject({ usd: 0.5, usdMax: 3.8, tokens: 5000, tokensMax: 38000 });
    expect(renderEstimate(bounded)).toBe(
      '5 agents at least, at most 38, 3 at a time, critical path 5; expected at least $0.50 (up to $3.80) of a $5.00 budget; expected at least 5000 tokens (up to 38000)',
    );
    const tight = estimatePlan(buildPlan(dynSpec({ verifyMax: 4, budget: { usd: 2, perAgentUsd: 0.1 } })));
    expect(renderEstimate(tight)).toContain('the tasks made at run time may cross the budget: the run would then stop early with budget_exhausted');
    const unknown = estimatePlan(buildPlan(dynSpec({ budget: { usd: 5, perAgentUsd: 0.1 } })));
    expect(unknown.usdMax).toBeNull();
    expect(renderEstimate(unknown)).toBe(
      '5 agents at least (no upper bound from the spec; limits.maxAgents 64 caps the run), 3 at a time, critical path 5; expected at least $0.50 of a $5.00 budget',
    );
    expect(renderPlan(buildPlan(dynSpec({ budget: { usd: 5, perAgentUsd: 0.1 } })))).toContain('Estimate: 5 agents at least (no upper bound');
  });
});
