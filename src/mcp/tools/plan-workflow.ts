/**
 * `plan_workflow`: validate and normalize a spec, store it as a plan, and answer with its summary.
 * Nothing runs. Refining (`planId`) overwrites that plan with a new revision.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import * as z from 'zod';
import { planFromInput } from '../../engine/plan-file.js';
import { parseSpecText } from '../../spec/index.js';
import type { Plan } from '../../spec/types.js';
import { assertId } from '../../store/index.js';
import { savePlan } from '../../store/plan-store.js';
import { callText, okResult, plural } from '../answer.js';
import type { ToolContext } from '../context.js';
import { toolError } from '../errors.js';
import { PlanSummarySchema, summarizePlan, type PlanSummary } from '../plan-view.js';

/** Tool name. */
export const PLAN_WORKFLOW = 'plan_workflow';

/** A spec as a host sends it: YAML/JSON text or an already-parsed object. */
export const SpecInputSchema = z
  .union([z.string(), z.record(z.string(), z.unknown())])
  .describe(
    'the workflow spec: an object, or YAML/JSON text (version: 1, name, goal, limits, agents, phases[].tasks[] or phases[].prompt; ' +
      'dynamic phases: forEach {from, items, max}, mode: pipeline, verify {skeptics, agent, refuteBy}, gate {command | critic, maxIterations}, ' +
      'converge {untilDry, maxRounds}, isolation: worktree)',
  );

const InputSchema = z.strictObject({
  spec: SpecInputSchema,
  planId: z.string().optional().describe('refine this earlier plan instead of making a new one (the id plan_workflow returned)'),
});

const OutputSchema = z.object({
  planId: z.string(),
  revision: z.number().int(),
  ...PlanSummarySchema,
  nextStep: z.string().describe('what the host should do next'),
});

/** Parses a spec input (text or object) into a validated plan; throws SpecError. */
export function planFromSpecInput(spec: unknown, cwd?: string): { plan: Plan; parsed: unknown } {
  const parsed = typeof spec === 'string' ? parseSpecText(spec, 'spec') : spec;
  // The project's own agent profiles (.claude/agents/) resolve against the project runs execute in.
  return { plan: planFromInput(parsed, cwd ? { cwd } : {}), parsed };
}

/** The text rendering of a stored plan's summary: ids, size, approval, the plan, what to do next. */
export function planText(planId: string, revision: number, s: PlanSummary): string {
  const lines = [
    `planId: ${planId} (revision ${revision}) — "${s.name}"`,
    `${plural(s.agentCount, 'agent')} in ${plural(s.phases.length + s.phasesOmitted, 'phase')}, ${plural(s.estimate.slots, 'slot')}.`,
    `Estimate: ${s.estimate.note}`,
    s.requiresApproval ? `Requires approval: yes — ${s.approvalReasons.join('; ')}` : 'Requires approval: no',
    '',
    s.rendered,
    '',
    `Next: ${planNextStep(planId, s)}`,
  ];
  return lines.join('\n');
}

/**
 * What the host should do with a plan. It goes in the structured answer too: Claude Code and
 * Codex hand the model the JSON of structuredContent, not the text rendering.
 */
export function planNextStep(planId: string, s: PlanSummary): string {
  return s.requiresApproval
    ? `show this plan (the 'rendered' text) to the user; once they agree, call ${callText('run_workflow', { planId, approve: true })} (if fanfold shows them an approval form, their answer there is final).`
    : `call ${callText('run_workflow', { planId })} to start it (show the plan to the user first if they asked to review it).`;
}

/** Registers plan_workflow. */
export function registerPlanWorkflowTool(server: McpServer, ctx: ToolContext): void {
  server.registerTool(
    PLAN_WORKFLOW,
    {
      title: 'Plan a fanfold workflow',
      description:
        'Validate a multi-phase workflow spec (YAML or JSON) and store it as a plan; nothing runs. Returns the planId, the phases, ' +
        'agent count, critical path, a rough estimate, whether the user must approve, and the plan rendered as text to show the user. ' +
        'Phases may be dynamic: forEach fans out over the items an earlier phase answered, pipeline stages let each item move on alone, ' +
        'verify sends skeptics to refute every finding, a gate (a command or a critic) iterates fixes, converge repeats until dry, ' +
        'isolation: worktree gives edit tasks their own git worktree. Pass planId to refine an earlier plan. Then start it with run_workflow.',
      inputSchema: InputSchema,
      outputSchema: OutputSchema,
      // Read-only toward the user's project: it only records the plan in fanfold's own store (nothing
      // runs); not idempotent, since each call without planId stores a new plan.
      annotations: { title: 'Plan a workflow', readOnlyHint: true, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    },
    async (args) => {
      try {
        if (args.planId !== undefined) assertId('plan', args.planId);
        const { plan, parsed } = planFromSpecInput(args.spec, ctx.cwd);
        const stored = await savePlan(ctx.root, { plan, spec: parsed, ...(args.planId !== undefined ? { planId: args.planId } : {}) });
        const summary = summarizePlan(plan, { agents: ctx.approvalAgentThreshold, usd: ctx.approvalUsdThreshold, commands: ctx.approveCommands });
        return okResult(
          { planId: stored.planId, revision: stored.revision, ...summary, nextStep: planNextStep(stored.planId, summary) },
          planText(stored.planId, stored.revision, summary),
        );
      } catch (err) {
        return toolError(PLAN_WORKFLOW, err, args.planId !== undefined ? 'Pass a planId that plan_workflow returned, or leave it out to make a new plan.' : undefined);
      }
    },
  );
}
