/**
 * The bounded, host-facing summary of a plan: what plan_workflow answers and what approval shows.
 */
import * as z from 'zod';
import { estimatePlan, planCost, renderEstimate, renderPlan, renderPlanHeadline } from '../spec/index.js';
import { renderAgentBounds } from '../spec/estimate.js';
import { describeDynamics } from '../spec/render.js';
import type { Plan } from '../spec/types.js';
import { clipBytes, plural } from './answer.js';
import { approvalReasons, type ApprovalThresholds } from './approval.js';

/** Most phases listed in a plan summary; the rest are counted. */
export const MAX_PLAN_PHASES = 50;
/** Most characters of a phase title listed. */
const MAX_TITLE_CHARS = 100;
/** Most critical-path refs listed. */
const MAX_PATH_REFS = 30;
/** Most warnings listed. */
const MAX_WARNINGS = 30;
/** Most dynamic phases whose agent bounds are listed in the estimate. */
const MAX_DYNAMIC_BOUNDS = 20;
/** Most characters of a dynamic phase's description or bound note. */
const MAX_DYNAMIC_CHARS = 300;
/** Most bytes of the rendered plan. Why: renderPlan is already bounded; this is the second lock. */
const MAX_RENDERED_BYTES = 16 * 1024;

/** Zod shape of the estimate. */
export const EstimateSchema = z.object({
  agents: z.number().int().describe('agents the plan starts at least (one per task written, plus one per phase summarizer; a lower bound when agentsLowerBound)'),
  summarizers: z.number().int().describe('phase summarizer agents (phases with summarize), included in agents'),
  agentsLowerBound: z.boolean().describe('true when phases make tasks at run time (forEach, pipeline, verify, gate, converge): agents is then a lower bound'),
  agentsMax: z.number().int().nullable().describe('most agents the plan may start, when the spec fixes it; null when it depends on what agents answer'),
  agentsCap: z.number().int().describe('limits.maxAgents: no task is made past it (the rest is reported as dropped)'),
  dynamicPhases: z
    .array(z.object({ phaseId: z.string(), max: z.number().int().nullable(), note: z.string() }))
    .describe(`per dynamic phase (at most ${MAX_DYNAMIC_BOUNDS}): the agents it may make at run time, or null when unknown, and why`),
  slots: z.number().int().describe('agents running at the same time (limits.maxConcurrent)'),
  rounds: z.number().int().describe('lower bound of the wall-clock time, in agent durations back to back'),
  maxWallClockMs: z.number().int().describe('hard cap: limits.runTimeout'),
  tokens: z.number().nullable().describe('expected tokens (agents × limits.budget.perAgentTokens), or null when the spec gives no per-agent figure'),
  costUsd: z.number().nullable().describe('expected cost in US dollars (agents × limits.budget.perAgentUsd), or null'),
  budget: z.object({ usd: z.number().nullable(), tokens: z.number().nullable() }).describe('the ceilings of limits.budget, when set'),
  overBudget: z.boolean().describe('the expected spend is over a ceiling: the run would end budget_exhausted'),
  note: z.string(),
  headline: z.string().describe("the rendered plan's first line: `N agents (up to M) · ~T tokens · ~$X · ~Y min`, 'unknown' where there is no per-agent basis"),
  largeWorkflow: z.array(z.string()).describe('why this is a large workflow (over 25 agents or 1.5 M expected tokens); empty when it is not'),
});

/** Zod shape of a plan summary (plan_workflow's output without planId/revision). */
export const PlanSummarySchema = {
  name: z.string(),
  goal: z.string().optional(),
  phases: z
    .array(
      z.object({
        id: z.string(),
        title: z.string(),
        tasks: z.number().int().describe('number of tasks written (a dynamic phase makes more at run time)'),
        dependsOn: z.array(z.string()),
        dynamic: z.string().optional().describe('what a dynamic phase does: forEach, pipeline, verify, gate, converge, worktrees'),
      }),
    )
    .describe(`the phases in order (at most ${MAX_PLAN_PHASES}; see phasesOmitted)`),
  phasesOmitted: z.number().int(),
  agentCount: z.number().int(),
  criticalPath: z.object({ length: z.number().int(), refs: z.array(z.string()) }),
  estimate: EstimateSchema,
  requiresApproval: z.boolean(),
  approvalReasons: z.array(z.string()),
  warnings: z.array(z.string()),
  security: z.array(z.string()).optional().describe('how the agents are confined here: network, sandbox: off, agents unconfined or refused without bubblewrap'),
  rendered: z.string().describe('the plan as text, to show the user'),
};

/** A plan summary value. */
export type PlanSummary = z.infer<z.ZodObject<typeof PlanSummarySchema>>;

/** Builds the summary of `plan` under approval thresholds. */
export function summarizePlan(plan: Plan, thresholds: ApprovalThresholds): PlanSummary {
  const slots = plan.limits.maxConcurrent;
  const rounds = Math.max(plan.criticalPath.length, Math.ceil(plan.agentCount / slots));
  const reasons = approvalReasons(plan, thresholds);
  const e = estimatePlan(plan);
  const cost = planCost(plan);
  const refs = plan.criticalPath.refs;
  const warnings = plan.warnings.slice(0, MAX_WARNINGS);
  if (plan.warnings.length > MAX_WARNINGS) warnings.push(`… and ${plan.warnings.length - MAX_WARNINGS} more warnings`);
  return {
    name: plan.name,
    ...(plan.goal ? { goal: clipBytes(plan.goal, 2000) } : {}),
    phases: plan.phases.slice(0, MAX_PLAN_PHASES).map((p) => ({
      id: p.id,
      title: p.title.length > MAX_TITLE_CHARS ? `${p.title.slice(0, MAX_TITLE_CHARS - 1)}…` : p.title,
      tasks: p.taskRefs.length,
      dependsOn: p.dependsOn.slice(0, 20),
      ...(p.dynamic ? { dynamic: clipChars(describeDynamics(p).join('; '), MAX_DYNAMIC_CHARS) } : {}),
    })),
    phasesOmitted: Math.max(0, plan.phases.length - MAX_PLAN_PHASES),
    agentCount: plan.agentCount,
    criticalPath: {
      length: plan.criticalPath.length,
      refs: refs.length <= MAX_PATH_REFS ? refs : [...refs.slice(0, MAX_PATH_REFS - 1), `… ${refs.length - MAX_PATH_REFS + 1} more`],
    },
    estimate: {
      agents: e.agents,
      summarizers: e.summarizers,
      agentsLowerBound: e.lowerBound,
      agentsMax: e.agentsMax,
      agentsCap: e.agentsCap,
      dynamicPhases: e.dynamic.slice(0, MAX_DYNAMIC_BOUNDS).map((x) => ({ phaseId: x.phaseId, max: x.max, note: clipChars(x.note, MAX_DYNAMIC_CHARS) })),
      slots,
      rounds,
      maxWallClockMs: plan.limits.runTimeoutMs,
      tokens: e.tokens,
      costUsd: e.usd,
      budget: e.budget,
      overBudget: e.overBudget,
      note:
        (e.lowerBound ? `Agents: ${renderAgentBounds(e)}. ` : '') +
        `At least ${plural(rounds, 'agent duration')} back to back (${plural(plan.agentCount, 'agent')} over ${plural(slots, 'slot')}, ` +
        `critical path ${plural(plan.criticalPath.length, 'task')}); at most the run timeout. ` +
        (e.usd !== null || e.tokens !== null || e.budget.usd !== null || e.budget.tokens !== null
          ? `Spend: ${renderEstimate(e)}.`
          : 'Tokens and cost are not estimated: set limits.budget.perAgentUsd / perAgentTokens for an estimate, and limits.budget.usd / tokens for ceilings.'),
      headline: renderPlanHeadline({ ...cost, large: [] }),
      largeWorkflow: cost.large,
    },
    requiresApproval: reasons.length > 0,
    approvalReasons: reasons,
    warnings,
    ...(plan.security ? { security: plan.security.slice(0, 10).map((s) => clipChars(s, 600)) } : {}),
    rendered: clipBytes(renderPlan(plan), MAX_RENDERED_BYTES),
  };
}

function clipChars(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}
