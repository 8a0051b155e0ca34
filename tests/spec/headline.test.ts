/**
 * The plan's headline (issue 12, item 6): `N agents (up to M) · ~T tokens · ~$X · ~Y min` at the
 * top of the rendered plan, "unknown" where there is no per-agent basis, and the large-workflow
 * warning above 25 agents or 1.5 M expected tokens.
 */
import { describe, expect, it } from 'vitest';
import { buildPlan, fmtTokens, planCost, renderPlan, renderPlanHeadline } from '../../src/spec/index.js';

/** A spec with `n` tasks of one agent of `runner`, optional budget and limits. */
function spec(n: number, runner: 'claude' | 'codex' | 'pi' | 'command', o: { budget?: Record<string, number>; limits?: Record<string, unknown>; extra?: Record<string, unknown>[]; summarize?: boolean } = {}) {
  return {
    version: 1,
    name: 'h',
    limits: { maxConcurrent: 4, maxAgents: 200, agentTimeout: '5m', runTimeout: '60m', retries: 0, ...(o.budget ? { budget: o.budget } : {}), ...o.limits },
    agents: { a: runner === 'command' ? { runner, command: ['true'] } : { runner }, sum: { runner: 'claude' } },
    phases: [
      { id: 'p', agent: 'a', tasks: Array.from({ length: n }, (_, i) => ({ id: `t${i}`, prompt: `x ${i}` })), ...(o.summarize ? { summarize: { agent: 'sum' } } : {}) },
      ...(o.extra ?? []),
    ],
  };
}

const headline = (s: Record<string, unknown>) => renderPlan(buildPlan(s)).split('\n')[0]!;

describe('plan headline', () => {
  it('Claude agents with per-agent figures: tokens, dollars and the minutes the caps allow', () => {
    // 8 agents over 4 slots: 2 turns × 5 min.
    expect(headline(spec(8, 'claude', { budget: { perAgentTokens: 30_000, perAgentUsd: 0.25 } }))).toBe('8 agents (up to 8) · ~240k tokens · ~$2.00 · ~10 min');
  });

  it('says unknown where there is no basis: no per-agent figure, and dollars for Codex and Pi at all', () => {
    expect(headline(spec(3, 'claude'))).toBe('3 agents (up to 3) · unknown tokens · $unknown · ~5 min');
    expect(headline(spec(3, 'codex', { budget: { perAgentTokens: 10_000, perAgentUsd: 1 } }))).toBe('3 agents (up to 3) · ~30k tokens · $unknown · ~5 min');
    expect(headline(spec(3, 'pi', { budget: { perAgentUsd: 1 } }))).toBe('3 agents (up to 3) · unknown tokens · $unknown · ~5 min');
  });

  it('command agents use no model: 0 tokens and $0 without any figure', () => {
    expect(headline(spec(2, 'command'))).toBe('2 agents (up to 2) · ~0 tokens · ~$0.00 · ~5 min');
  });

  it('counts phase summarizers as agents (and a turn after the phase)', () => {
    const c = planCost(buildPlan(spec(4, 'command', { summarize: true, budget: { perAgentTokens: 1000, perAgentUsd: 0.5 } })));
    expect(c).toMatchObject({ agents: 5, agentsMax: 5, tokens: 1000, usd: 0.5 });
    expect(c.minutesMax).toBe(10);
  });

  it('a dynamic plan shows the most it may start and cost; retries and runTimeout bound the minutes', () => {
    const s = spec(1, 'claude', {
      budget: { perAgentTokens: 20_000, perAgentUsd: 0.1 },
      limits: { retries: 1, runTimeout: '45m' },
      extra: [{ id: 'each', agent: 'a', forEach: { from: 'p', max: 10 }, prompt: 'look at {{item}}' }],
    });
    const c = planCost(buildPlan(s));
    expect(c).toMatchObject({ agents: 1, agentsMax: 11, tokens: 20_000, tokensMax: 220_000, usd: 0.1 });
    expect(c.usdMax).toBeCloseTo(1.1);
    expect(c.minutes).toBe(15); // 3 turns × 5 min, no retry
    expect(c.minutesMax).toBe(30); // 3 turns (11 agents / 4 slots) × 5 min × 2 tries = 30, under 45
    expect(renderPlanHeadline(c)).toBe('1 agent (up to 11) · ~20k tokens · ~$0.10 · ~15 min · at most ~220k tokens, $1.10');
  });

  it('warns "large workflow" above 25 agents or 1.5 M expected tokens, on the line below', () => {
    expect(renderPlan(buildPlan(spec(25, 'command'))).split('\n')[1]).toMatch(/^Workflow: /);
    const many = renderPlan(buildPlan(spec(26, 'command'))).split('\n');
    expect(many[0]).toMatch(/^26 agents \(up to 26\)/);
    expect(many[1]).toBe('Warning: large workflow — 26 agents (over 25)');
    const heavy = renderPlan(buildPlan(spec(4, 'claude', { budget: { perAgentTokens: 400_000 } }))).split('\n');
    expect(heavy[1]).toBe('Warning: large workflow — ~1.6M tokens (over 1.5M)');
    expect(renderPlan(buildPlan(spec(3, 'claude', { budget: { perAgentTokens: 500_000 } }))).split('\n')[1]).toMatch(/^Workflow: /);
  });

  it('formats token counts short', () => {
    expect([950, 1234, 12_345, 999_999, 1_500_000, 12_000_000].map(fmtTokens)).toEqual(['950', '1.2k', '12k', '1M', '1.5M', '12M']);
  });
});
