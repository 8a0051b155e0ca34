/**
 * What a plan is expected to take: agents, slots, and spend when the spec says what one agent
 * costs. Shown by `fanfold plan` and `plan_workflow`, so a person approves with the numbers.
 *
 * A dynamic plan (forEach, pipeline, verify, gate, converge) makes tasks at run time: its
 * `agents` is then a lower bound, and `agentsMax` an upper bound when the spec fixes one (a
 * forEach with `max`, converge rounds, gate runs); when it depends on what agents answer (items
 * without `max`, findings to verify) it is null and the notes say why. The engine never starts
 * more than `limits.maxAgents` in any case.
 */
import type { Plan, PlanPhase } from './types.js';

/** What one dynamic phase may add to a plan's agents at run time. */
export interface DynamicBound {
  phaseId: string;
  /** Most agents the phase makes at run time, or null when the spec does not fix it. */
  max: number | null;
  /** How `max` was computed, or why it is unknown. */
  note: string;
}

/** A plan's estimate. Spend is null when the spec gives no per-agent figure. */
export interface PlanEstimate {
  /**
   * Agents known at plan time — one per written task plus one per phase summarizer: the exact
   * count, or a lower bound when `lowerBound`.
   */
  agents: number;
  /** Phase summarizer agents (one per phase with `summarize`), included in `agents`. */
  summarizers: number;
  /** True when some phase makes tasks at run time (`plan.dynamic`): `agents` is a lower bound. */
  lowerBound: boolean;
  /**
   * Most agents the plan may start (never above limits.maxAgents), when every dynamic phase has a
   * computable bound; null when one depends on what agents answer. Equals `agents` for a static plan.
   */
  agentsMax: number | null;
  /** limits.maxAgents: the engine makes no task past it (the rest is reported as dropped). */
  agentsCap: number;
  /** Per dynamic phase: what it may add (empty for a static plan). */
  dynamic: DynamicBound[];
  slots: number;
  /** Tasks on the longest dependency chain: the least number of agent turns in sequence. */
  criticalPath: number;
  /** agents × limits.budget.perAgentUsd, or null. */
  usd: number | null;
  /** agents × limits.budget.perAgentTokens, or null. */
  tokens: number | null;
  /** agentsMax × perAgentUsd for a dynamic plan with a computable bound (else null; = usd when static). */
  usdMax: number | null;
  /** agentsMax × perAgentTokens, likewise. */
  tokensMax: number | null;
  /** The ceilings, when set. */
  budget: { usd: number | null; tokens: number | null };
  /** True when the expected spend is over a ceiling: the run would end budget_exhausted. */
  overBudget: boolean;
}

/** How many items a phase hands to a pipeline stage after it, when the spec fixes that. */
function itemCount(plan: Plan, phaseId: string, depth = 0): number | null {
  const phase = plan.phases.find((p) => p.id === phaseId);
  if (!phase || depth > plan.phases.length) return null;
  const d = phase.dynamic;
  // A phase whose tasks are written: each task is one item (fix tasks of a gate are not items).
  if (!d?.templates) return phase.taskRefs.length;
  if (d.forEach) return d.forEach.max ?? null;
  if (d.pipeline) return itemCount(plan, d.pipeline.from, depth + 1);
  return null;
}

function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}

/** What one dynamic phase may add at run time. */
export function dynamicBound(plan: Plan, phase: PlanPhase): DynamicBound | undefined {
  const d = phase.dynamic;
  if (!d) return undefined;
  const templates = d.templates?.length ?? 0;
  let work: number | null = 0;
  const notes: string[] = [];
  if (d.forEach) {
    const max = d.forEach.max;
    work = max === undefined ? null : max * templates;
    notes.push(max === undefined ? `forEach without max: one task per item ${phase.id} finds in ${d.forEach.from} (unknown until it answers)` : `forEach max ${max} × ${plural(templates, 'template')}`);
  } else if (d.pipeline) {
    const items = itemCount(plan, d.pipeline.from);
    work = items === null ? null : items * templates;
    notes.push(items === null ? `pipeline: one task per item of ${d.pipeline.from} (unknown until it answers)` : `pipeline: ${plural(items, 'item')} of ${d.pipeline.from} × ${plural(templates, 'template')}`);
  } else if (d.converge) {
    work = d.converge.maxRounds * templates;
    notes.push(`converge: at most ${plural(d.converge.maxRounds, 'round')} × ${plural(templates, 'template')}`);
  }
  let extra: number | null = work;
  if (d.verify) {
    const v = d.verify;
    if (v.max !== undefined) {
      extra = extra === null ? null : extra + v.max * v.skeptics;
      notes.push(`verify: at most ${plural(v.max, 'finding')} × ${plural(v.skeptics, 'skeptic')}`);
    } else {
      extra = null;
      notes.push(`verify: ${plural(v.skeptics, 'skeptic')} per finding, and how many findings agents report is unknown (set verify.max to bound it)`);
    }
  }
  if (d.gate) {
    const runs = d.gate.maxIterations;
    extra = extra === null ? null : extra + runs + (runs - 1);
    notes.push(`gate: at most ${plural(runs, 'check')} and ${plural(runs - 1, 'fix', 'fixes')}`);
  }
  if (d.merge) notes.push('worktree patches merged after the phase (no agent)');
  return { phaseId: phase.id, max: extra, note: notes.join('; ') };
}

/** Estimates a plan. */
export function estimatePlan(plan: Plan): PlanEstimate {
  const b = plan.limits.budget ?? {};
  const dynamic = plan.phases.map((p) => dynamicBound(plan, p)).filter((x): x is DynamicBound => x !== undefined);
  const lowerBound = plan.dynamic === true || dynamic.length > 0;
  const cap = plan.limits.maxAgents;
  // Why summarizers count: the engine starts them like any agent, and they spend like one.
  const summarizers = summarizerCount(plan);
  const known = plan.agentCount + summarizers;
  let agentsMax: number | null = known;
  for (const x of dynamic) agentsMax = agentsMax === null || x.max === null ? null : agentsMax + x.max;
  if (agentsMax !== null) agentsMax = Math.min(agentsMax, Math.max(cap, known));
  const usd = b.perAgentUsd !== undefined ? round(known * b.perAgentUsd, 4) : null;
  const tokens = b.perAgentTokens !== undefined ? known * b.perAgentTokens : null;
  const usdMax = b.perAgentUsd !== undefined && agentsMax !== null ? round(agentsMax * b.perAgentUsd, 4) : null;
  const tokensMax = b.perAgentTokens !== undefined && agentsMax !== null ? agentsMax * b.perAgentTokens : null;
  const overBudget = (usd !== null && b.usd !== undefined && usd > b.usd) || (tokens !== null && b.tokens !== undefined && tokens > b.tokens);
  return {
    agents: known,
    summarizers,
    lowerBound,
    agentsMax,
    agentsCap: cap,
    dynamic,
    slots: plan.limits.maxConcurrent,
    criticalPath: plan.criticalPath.length,
    usd,
    tokens,
    usdMax,
    tokensMax,
    budget: { usd: b.usd ?? null, tokens: b.tokens ?? null },
    overBudget,
  };
}

/**
 * The agent count in words: `13 agents` for a static plan; for a dynamic one `3 agents at least,
 * at most 40` or `3 agents at least; no upper bound from the spec (review depends on what agents
 * answer); limits.maxAgents 64 caps the run`.
 */
export function renderAgentBounds(e: PlanEstimate): string {
  if (!e.lowerBound) return plural(e.agents, 'agent');
  if (e.agentsMax !== null) return `${e.agents} agents at least, at most ${e.agentsMax}`;
  const unknown = e.dynamic.filter((x) => x.max === null).map((x) => x.phaseId);
  return (
    `${e.agents} agents at least; no upper bound from the spec ` +
    `(${unknown.slice(0, 3).join(', ')}${unknown.length > 3 ? ', …' : ''} depend${unknown.length === 1 ? 's' : ''} on what agents answer); ` +
    `limits.maxAgents ${e.agentsCap} caps the run`
  );
}

/** One line for people: "13 agents, 4 at a time; expected $0.65 of a $5.00 budget". */
export function renderEstimate(e: PlanEstimate): string {
  const agents = !e.lowerBound
    ? `${e.agents} agents`
    : `${e.agents} agents at least${e.agentsMax !== null ? `, at most ${e.agentsMax}` : ` (no upper bound from the spec; limits.maxAgents ${e.agentsCap} caps the run)`}`;
  const parts = [`${agents}, ${e.slots} at a time, critical path ${e.criticalPath}`];
  const upTo = (n: number | null, show: (x: number) => string) => (e.lowerBound && n !== null && n !== undefined ? ` (up to ${show(n)})` : '');
  const atLeast = e.lowerBound ? 'at least ' : '';
  const dollars = (n: number) => `$${n.toFixed(2)}`;
  if (e.usd !== null) parts.push(`expected ${atLeast}${dollars(e.usd)}${upTo(e.usdMax, dollars)}${e.budget.usd !== null ? ` of a ${dollars(e.budget.usd)} budget` : ''}`);
  else if (e.budget.usd !== null) parts.push(`budget ${dollars(e.budget.usd)} (no per-agent figure: set limits.budget.perAgentUsd for an estimate)`);
  if (e.tokens !== null) parts.push(`expected ${atLeast}${e.tokens} tokens${upTo(e.tokensMax, String)}${e.budget.tokens !== null ? ` of ${e.budget.tokens}` : ''}`);
  else if (e.budget.tokens !== null) parts.push(`token budget ${e.budget.tokens}`);
  if (e.overBudget) parts.push('OVER BUDGET: the run would stop early with budget_exhausted');
  else if (e.lowerBound && mayExceed(e)) parts.push('the tasks made at run time may cross the budget: the run would then stop early with budget_exhausted');
  return parts.join('; ');
}

/** Whether a dynamic plan's upper bound (or, without one, its cap) could cross a ceiling. */
function mayExceed(e: PlanEstimate): boolean {
  if (e.usdMax !== null && e.budget.usd !== null && e.usdMax > e.budget.usd) return true;
  if (e.tokensMax !== null && e.budget.tokens !== null && e.tokensMax > e.budget.tokens) return true;
  return false;
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/**
 * Agents above which a plan is called a large workflow. Why 25: the approval threshold's default,
 * so the warning and the question come together.
 */
export const LARGE_WORKFLOW_AGENTS = 25;
/** Expected tokens above which a plan is called a large workflow. */
export const LARGE_WORKFLOW_TOKENS = 1_500_000;

/** Phases whose digest an agent writes (`summarize`): one summarizer agent each. */
export function summarizerCount(plan: Plan): number {
  return plan.phases.filter((p) => p.summarize !== undefined).length;
}

/** What a plan may cost, for its headline: every figure null where there is no basis. */
export interface PlanCost {
  /** Agents it starts at least: written tasks plus phase summarizers. */
  agents: number;
  /** Most agents it may start (static: = agents; dynamic without a bound: limits.maxAgents plus summarizers). */
  agentsMax: number;
  /** Expected tokens of `agents`, and of `agentsMax`; null without a basis. */
  tokens: number | null;
  tokensMax: number | null;
  /** Expected US dollars of `agents`, and of `agentsMax`; null without a basis. */
  usd: number | null;
  usdMax: number | null;
  /**
   * Minutes the headline shows (`~Y min`): agent turns in sequence × agentTimeout, within
   * runTimeout — the time the timeouts give a run where nothing is retried. Never null: the
   * timeouts always have a value (their defaults), so there is always a basis.
   */
  minutes: number;
  /** The most minutes the caps allow (agent turns in sequence × agentTimeout × tries, within runTimeout). */
  minutesMax: number;
  /** Why it is a large workflow (empty: it is not). */
  large: string[];
}

/**
 * Per-agent basis of one agent: a `command` agent uses no model (0 tokens, $0); a model agent
 * costs `limits.budget.perAgentTokens` / `perAgentUsd` when the spec says so — and dollars only
 * for Claude Code, since Codex and Pi report none (the run could never count them).
 */
function perAgent(plan: Plan, agent: string): { tokens: number | null; usd: number | null } {
  const runner = plan.agents[agent]?.runner;
  if (runner === 'command') return { tokens: 0, usd: 0 };
  const b = plan.limits.budget ?? {};
  return { tokens: b.perAgentTokens ?? null, usd: runner === 'claude' ? (b.perAgentUsd ?? null) : null };
}

function sumOrNull(values: Array<number | null>): number | null {
  let s = 0;
  for (const v of values) {
    if (v === null) return null;
    s += v;
  }
  return s;
}

/** The agents dynamic phases run at run time (templates, skeptics, gate check and fix). */
function runTimeAgents(plan: Plan): string[] {
  const out: string[] = [];
  for (const p of plan.phases) {
    const d = p.dynamic;
    if (!d) continue;
    for (const t of d.templates ?? []) out.push(t.agent);
    if (d.verify) out.push(d.verify.agent);
    if (d.gate) out.push(d.gate.agent, d.gate.fixAgent);
  }
  return out;
}

/** What a plan may cost: agents, tokens, dollars and minutes, from per-agent figures and caps. */
export function planCost(plan: Plan): PlanCost {
  const e = estimatePlan(plan);
  const summarizers = plan.phases.filter((p) => p.summarize !== undefined).map((p) => p.summarize!.agent);
  const written = [...plan.tasks.map((t) => t.agent), ...summarizers];
  const agents = written.length;
  const extra = Math.max(0, (e.lowerBound ? (e.agentsMax ?? e.agentsCap) : e.agents) - e.agents);
  const agentsMax = agents + extra;
  const base = written.map((a) => perAgent(plan, a));
  // An agent made at run time costs what the dearest of the agents dynamic phases use costs.
  const dyn = runTimeAgents(plan).map((a) => perAgent(plan, a));
  const dearest = (k: 'tokens' | 'usd'): number | null => (dyn.length === 0 ? 0 : dyn.some((d) => d[k] === null) ? null : Math.max(...dyn.map((d) => d[k] as number)));
  const tokens = sumOrNull(base.map((b) => b.tokens));
  const usd = sumOrNull(base.map((b) => b.usd));
  const plus = (n: number | null, per: number | null) => (n === null ? null : extra === 0 ? n : per === null ? null : n + extra * per);
  const l = plan.limits;
  const turns = Math.max(plan.criticalPath.length + (summarizers.length > 0 ? 1 : 0), Math.ceil(agentsMax / l.maxConcurrent));
  const minutes = Math.ceil(Math.min(l.runTimeoutMs, turns * l.agentTimeoutMs) / 60_000);
  const minutesMax = Math.ceil(Math.min(l.runTimeoutMs, turns * l.agentTimeoutMs * (l.retries + 1)) / 60_000);
  const tokensMax = plus(tokens, dearest('tokens'));
  const large: string[] = [];
  if (agentsMax > LARGE_WORKFLOW_AGENTS) large.push(`${e.lowerBound && agentsMax > agents ? 'up to ' : ''}${agentsMax} agents (over ${LARGE_WORKFLOW_AGENTS})`);
  const tokenFigure = tokensMax ?? tokens;
  if (tokenFigure !== null && tokenFigure > LARGE_WORKFLOW_TOKENS) large.push(`${e.lowerBound && tokensMax !== tokens ? 'up to ' : ''}~${fmtTokens(tokenFigure)} tokens (over ${fmtTokens(LARGE_WORKFLOW_TOKENS)})`);
  return { agents, agentsMax, tokens, tokensMax, usd, usdMax: plus(usd, dearest('usd')), minutes, minutesMax, large };
}

/** `950`, `12k`, `1.5M` tokens. */
export function fmtTokens(n: number): string {
  if (n < 1000) return String(Math.round(n));
  if (n < 999_500) return `${+(n / 1000).toFixed(n < 10_000 ? 1 : 0)}k`;
  return `${+(n / 1_000_000).toFixed(n < 10_000_000 ? 1 : 0)}M`;
}

/**
 * The plan's headline, the first line of the rendered plan:
 * `12 agents (up to 40) · ~360k tokens · ~$1.20 · ~30 min`, then, when the plan may grow (dynamic
 * phases), what it may reach: ` · at most ~1.2M tokens, $4.00`. `unknown` where there is no
 * per-agent basis; a second line `Warning: large workflow — …` above 25 agents or 1.5 M expected
 * tokens.
 */
export function renderPlanHeadline(c: PlanCost): string {
  const usd = (n: number) => `$${n.toFixed(2)}`;
  const tokens = c.tokens === null ? 'unknown tokens' : `~${fmtTokens(c.tokens)} tokens`;
  const dollars = c.usd === null ? '$unknown' : `~${usd(c.usd)}`;
  const more = [
    c.tokens !== null && c.tokensMax !== null && c.tokensMax !== c.tokens ? `~${fmtTokens(c.tokensMax)} tokens` : '',
    c.usd !== null && c.usdMax !== null && c.usdMax !== c.usd ? usd(c.usdMax) : '',
  ].filter(Boolean);
  const line = `${plural(c.agents, 'agent')} (up to ${c.agentsMax}) · ${tokens} · ${dollars} · ~${c.minutes} min${more.length ? ` · at most ${more.join(', ')}` : ''}`;
  return c.large.length > 0 ? `${line}\nWarning: large workflow — ${c.large.join(' and ')}` : line;
}
