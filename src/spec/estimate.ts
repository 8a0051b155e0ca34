/**
 * What a plan is expected to take: agents, slots, and spend when the spec says what one agent
 * costs. Shown by `fanfold plan` and `plan_workflow`, so a person approves with the numbers.
 */
import type { Plan } from './types.js';

/** A plan's estimate. Spend is null when the spec gives no per-agent figure. */
export interface PlanEstimate {
  agents: number;
  slots: number;
  /** Tasks on the longest dependency chain: the least number of agent turns in sequence. */
  criticalPath: number;
  /** agents × limits.budget.perAgentUsd, or null. */
  usd: number | null;
  /** agents × limits.budget.perAgentTokens, or null. */
  tokens: number | null;
  /** The ceilings, when set. */
  budget: { usd: number | null; tokens: number | null };
  /** True when the expected spend is over a ceiling: the run would end budget_exhausted. */
  overBudget: boolean;
}

/** Estimates a plan. */
export function estimatePlan(plan: Plan): PlanEstimate {
  const b = plan.limits.budget ?? {};
  const usd = b.perAgentUsd !== undefined ? round(plan.agentCount * b.perAgentUsd, 4) : null;
  const tokens = b.perAgentTokens !== undefined ? plan.agentCount * b.perAgentTokens : null;
  const overBudget = (usd !== null && b.usd !== undefined && usd > b.usd) || (tokens !== null && b.tokens !== undefined && tokens > b.tokens);
  return {
    agents: plan.agentCount,
    slots: plan.limits.maxConcurrent,
    criticalPath: plan.criticalPath.length,
    usd,
    tokens,
    budget: { usd: b.usd ?? null, tokens: b.tokens ?? null },
    overBudget,
  };
}

/** One line for people: "13 agents, 4 at a time; expected $0.65 of a $5.00 budget". */
export function renderEstimate(e: PlanEstimate): string {
  const parts = [`${e.agents} agents, ${e.slots} at a time, critical path ${e.criticalPath}`];
  if (e.usd !== null) parts.push(`expected $${e.usd.toFixed(2)}${e.budget.usd !== null ? ` of a $${e.budget.usd.toFixed(2)} budget` : ''}`);
  else if (e.budget.usd !== null) parts.push(`budget $${e.budget.usd.toFixed(2)} (no per-agent figure: set limits.budget.perAgentUsd for an estimate)`);
  if (e.tokens !== null) parts.push(`expected ${e.tokens} tokens${e.budget.tokens !== null ? ` of ${e.budget.tokens}` : ''}`);
  else if (e.budget.tokens !== null) parts.push(`token budget ${e.budget.tokens}`);
  if (e.overBudget) parts.push('OVER BUDGET: the run would stop early with budget_exhausted');
  return parts.join('; ');
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
