/**
 * What a run has spent against `limits.budget`, and whether one more agent may start.
 */
import type { Plan } from '../spec/types.js';
import type { AgentRecord } from '../store/types.js';

/**
 * The run's spend against `limits.budget`. Before each dispatch it answers whether one more agent
 * could cross a ceiling, reserving the expected cost of every agent already running. The expected
 * cost of one agent is the spec's `perAgentUsd`/`perAgentTokens`, else the most any agent of this
 * run has cost so far; before anything is known, agents start one at a time.
 */
export class Spend {
  readonly #budget: Plan['limits']['budget'];
  #usd = 0;
  #tokens = 0;
  #maxUsd: number | undefined;
  #maxTokens: number | undefined;

  constructor(budget: Plan['limits']['budget']) {
    this.#budget = budget;
  }

  /** Adds what one attempt cost. */
  account(r: Pick<AgentRecord, 'costUsd' | 'usage'>): void {
    if (typeof r.costUsd === 'number' && Number.isFinite(r.costUsd)) {
      this.#usd += r.costUsd;
      this.#maxUsd = Math.max(this.#maxUsd ?? 0, r.costUsd);
    }
    if (r.usage) {
      const t = (r.usage.inputTokens ?? 0) + (r.usage.outputTokens ?? 0);
      this.#tokens += t;
      this.#maxTokens = Math.max(this.#maxTokens ?? 0, t);
    }
  }

  /** Dollars left under `limits.budget.usd`, when there is such a ceiling. */
  remainingUsd(): number | undefined {
    return this.#budget?.usd === undefined ? undefined : Math.max(0, this.#budget.usd - this.#usd);
  }

  /** Spend so far. */
  total(): { usd: number; tokens: number } {
    return { usd: Math.round(this.#usd * 1e6) / 1e6, tokens: this.#tokens };
  }

  /** `true`: dispatch; `false`: wait for a running agent; a string: stop, with why. */
  admit(running: number): boolean | string {
    const b = this.#budget;
    if (!b) return true;
    const checks = [
      { ceiling: b.usd, spent: this.#usd, per: b.perAgentUsd ?? this.#maxUsd, fmt: (n: number) => `$${n.toFixed(2)}`, name: 'usd' },
      { ceiling: b.tokens, spent: this.#tokens, per: b.perAgentTokens ?? this.#maxTokens, fmt: (n: number) => `${Math.round(n)} tokens`, name: 'tokens' },
    ];
    for (const c of checks) {
      if (c.ceiling === undefined) continue;
      if (c.spent >= c.ceiling) return `budget spent: ${c.fmt(c.spent)} of limits.budget.${c.name} ${c.fmt(c.ceiling)}`;
      if (c.per === undefined) {
        if (running > 0) return false;
        continue;
      }
      if (c.spent + (running + 1) * c.per > c.ceiling) {
        if (running > 0) return false;
        return `the next agent (≈ ${c.fmt(c.per)}) could cross limits.budget.${c.name} ${c.fmt(c.ceiling)}; spent ${c.fmt(c.spent)}`;
      }
    }
    return true;
  }
}
