import { describe, expect, test } from 'vitest';
import { buildPlan, parseSpecText, renderPlan } from '../../src/spec/index.js';
import { EXAMPLE_YAML, withPhases } from './fixtures.js';

describe('renderPlan', () => {
  test('the example plan', () => {
    expect(renderPlan(buildPlan(parseSpecText(EXAMPLE_YAML)))).toBe(
      [
        '3 agents (up to 3) · ~0 tokens · ~$0.00 · ~20 min',
        'Workflow: todo-census',
        'Goal: Count and classify TODO comments per package',
        'Limits: 4 at a time, at most 64 agents; agent timeout 10m, run timeout 30m; 1 retry (back-off 1s); output cap 256 KiB, context cap 64 KiB',
        'Phases (2):',
        '  1. map — Census per package: 2 tasks; agent shell',
        '  2. rank: 1 task; agent shell; after map',
        'Total: 3 tasks (3 agents at least)',
        'Critical path: 2 tasks: map/core → rank/ranking',
      ].join('\n'),
    );
  });

  test('phase options, several agents and warnings are shown', () => {
    const plan = buildPlan({
      version: 1,
      name: 'n',
      limits: { retries: 0 },
      agents: { a: { runner: 'claude' }, b: { runner: 'codex' } },
      phases: [
        { id: 'p', agent: 'a', onFailure: 'continue', tasks: [{ id: 't', prompt: 'x' }, { id: 'u', prompt: 'x', agent: 'b' }] },
        { id: 'q', agent: 'a', final: true, summarize: { agent: 'b' }, tasks: [{ id: 't', prompt: 'x' }] },
      ],
    });
    const text = renderPlan(plan);
    expect(text).toContain('0 retries');
    expect(text).toContain('  1. p: 2 tasks; agents a, b; continues on failure');
    expect(text).toContain('  2. q: 1 task; agent a; final; summarized by b');
    expect(text).toContain("Warnings (1):\n  - phase 'q' has no dependsOn: its tasks start at once, in parallel with earlier phases");
  });

  test('a big plan renders in bounded text', () => {
    // 100 phases in a chain, 10 tasks each: 1000 tasks, critical path of 100.
    const phases = Array.from({ length: 100 }, (_, i) => ({
      id: `phase${i}`,
      title: 'T'.repeat(200),
      ...(i > 0 ? { dependsOn: [`phase${i - 1}`] } : {}),
      tasks: Array.from({ length: 10 }, (_, k) => ({ id: `t${k}`, prompt: 'p' })),
    }));
    const plan = buildPlan(withPhases(phases, { limits: { maxAgents: 1000 }, goal: 'g'.repeat(5000) }));
    const text = renderPlan(plan);
    const lines = text.split('\n');
    expect(lines.length).toBeLessThan(60);
    expect(text.length).toBeLessThan(8000);
    expect(text).toContain('  … and 60 more phases');
    expect(text).toContain('Total: 1000 tasks');
    expect(text).toMatch(/Critical path: 100 tasks: phase0\/t0 → phase1\/t0 → phase2\/t0 → phase3\/t0 → phase4\/t0 → … 93 more → phase98\/t0 → phase99\/t0/);
    for (const line of lines) expect(line.length).toBeLessThan(400);
  });
});
