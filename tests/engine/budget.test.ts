import { describe, expect, it } from 'vitest';
import { Spend } from '../../src/engine/owner.js';
import { runDag, type AttemptOutcome, type SchedTask } from '../../src/engine/scheduler.js';

describe('Spend', () => {
  it('admits everything without a budget', () => {
    expect(new Spend(undefined).admit(10)).toBe(true);
  });

  it('reserves the per-agent estimate for running agents', () => {
    const s = new Spend({ usd: 1, perAgentUsd: 0.3 });
    expect(s.admit(0)).toBe(true); // 0.3
    expect(s.admit(2)).toBe(true); // 3 × 0.3 = 0.9
    expect(s.admit(3)).toBe(false); // 4 × 0.3 > 1, but running agents may cost less: wait
    s.account({ costUsd: 0.5 });
    s.account({ costUsd: 0.4 });
    const why = s.admit(0);
    expect(typeof why).toBe('string');
    expect(why).toContain('could cross limits.budget.usd $1.00');
  });

  it('probes one agent at a time until a cost is known, then uses the most seen', () => {
    const s = new Spend({ usd: 1 });
    expect(s.admit(0)).toBe(true);
    expect(s.admit(1)).toBe(false);
    s.account({ costUsd: 0.25 });
    expect(s.admit(2)).toBe(true); // 0.25 + 3 × 0.25 = 1.0
    expect(s.admit(3)).toBe(false);
  });

  it('stops once a ceiling is spent, for tokens too', () => {
    const s = new Spend({ tokens: 1000 });
    s.account({ usage: { inputTokens: 700, outputTokens: 400 } });
    expect(s.admit(0)).toMatch(/^budget spent: 1100 tokens of limits.budget.tokens 1000 tokens/);
    expect(s.total()).toEqual({ usd: 0, tokens: 1100 });
  });
});

describe('runDag admit', () => {
  const tasks: SchedTask[] = Array.from({ length: 10 }, (_, i) => ({ ref: `p/t${i}`, phaseId: 'p', deps: [] }));

  it('dispatches nothing that could cross the ceiling and halts as refused', async () => {
    const spend = new Spend({ usd: 1, perAgentUsd: 0.2 });
    let running = 0;
    let started = 0;
    const res = await runDag({
      tasks, maxConcurrent: 3, retries: 0, backoffMs: 1, onFailure: () => 'stop',
      admit: () => spend.admit(running),
      execute: async () => {
        running++;
        started++;
        await new Promise((r) => setTimeout(r, 5));
        running--;
        spend.account({ costUsd: 0.2 });
        return { status: 'succeeded', retryable: false } satisfies AttemptOutcome;
      },
    });
    expect(res.halted?.by).toBe('refused');
    expect(started).toBe(5); // 5 × 0.2 = 1.0 exactly; a sixth could cross
    expect(spend.total().usd).toBeLessThanOrEqual(1);
    expect([...res.final.values()].filter((f) => f === 'not_run')).toHaveLength(5);
  });
});
