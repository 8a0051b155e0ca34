/**
 * `run_workflow`: start a stored plan (or a spec given inline), or resume a run, in a detached run
 * owner — after approval when the plan needs it. Answers at once with the runId, or after
 * waiting up to `wait` seconds.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import * as z from 'zod';
import { createRun } from '../../engine/lifecycle.js';
import { readStatus, type RunStatusView } from '../../engine/status.js';
import type { Plan } from '../../spec/types.js';
import { assertId, leaseState, readLease, describeLease } from '../../store/index.js';
import { loadPlan, savePlan } from '../../store/plan-store.js';
import { callText, okResult, errorResult, plural } from '../answer.js';
import { obtainApproval } from '../approval.js';
import type { ToolContext } from '../context.js';
import { ToolInputError, toolError } from '../errors.js';
import { summarizePlan } from '../plan-view.js';
import { countsLine, nextStepFor, readRunSnapshot } from '../run-views.js';
import { MAX_WAIT_SECONDS, waitWithProgress, type HandlerExtra } from '../waiting.js';
import { SpecInputSchema, planFromSpecInput } from './plan-workflow.js';

/** Tool name. */
export const RUN_WORKFLOW = 'run_workflow';

const InputSchema = z.strictObject({
  planId: z.string().optional().describe('a plan from plan_workflow'),
  spec: SpecInputSchema.optional(),
  approve: z
    .boolean()
    .optional()
    .describe(
      'true once the user said yes in the chat. It counts only where no person could answer an approval form (the client shows none, ' +
        'or cancels it at once); a person\'s answer on the form is final and approve: true never overrides a decline.',
    ),
  resumeRunId: z.string().optional().describe('resume this stopped, failed or interrupted run; finished agents are reused'),
  wait: z.number().min(0).max(MAX_WAIT_SECONDS).optional().describe(`seconds to wait for the run to finish before answering (0–${MAX_WAIT_SECONDS}; default 0)`),
});

const CountsSchema = z.object({
  total: z.number().int(),
  succeeded: z.number().int(),
  checkFailed: z.number().int().optional().describe('gate checks that ran and did not pass (not agent failures)'),
  failed: z.number().int(),
  cancelled: z.number().int().optional().describe('running when the run was stopped; they run again on resume'),
  skipped: z.number().int(),
  running: z.number().int(),
  pending: z.number().int(),
});

/** Per-status agent counts (shared with workflow_status). */
export { CountsSchema };

const OutputSchema = z.object({
  runId: z.string(),
  planId: z.string().optional(),
  status: z.string(),
  reason: z.string().optional(),
  name: z.string(),
  agentCount: z.number().int(),
  agents: CountsSchema,
  resumed: z.boolean(),
  dir: z.string().describe('the run directory, where every output is kept'),
  nextStep: z.string(),
});

/** Registers run_workflow. */
export function registerRunWorkflowTool(server: McpServer, ctx: ToolContext): void {
  server.registerTool(
    RUN_WORKFLOW,
    {
      title: 'Run a fanfold workflow',
      description:
        'Start a planned workflow (planId from plan_workflow, or an inline spec) as many parallel sub-agents in the background, or resume a ' +
        'run (resumeRunId). Big or edit-capable plans (and their resumes) need the user\'s approval: the user is asked with a form when the client ' +
        'supports it, and their answer is final (approve: true never overrides a decline); where no form can be answered, show the plan and ' +
        'pass approve: true once the user agreed. Returns the runId at once (or after `wait` seconds); follow with workflow_status.',
      inputSchema: InputSchema,
      outputSchema: OutputSchema,
      // Why destructive: a spec may give agents the edit tier or run `command` agents, and either can
      // change or delete files of the project (approval gates them, but the tool itself can do it).
      // Not idempotent: each call starts a new run. Open world: agents call model APIs, and a spec may
      // grant network.
      annotations: { title: 'Run a workflow', readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
    },
    async (args, extra) => {
      try {
        return await runWorkflow(server, ctx, args, extra);
      } catch (err) {
        return toolError(RUN_WORKFLOW, err);
      }
    },
  );
}

async function runWorkflow(server: McpServer, ctx: ToolContext, args: z.infer<typeof InputSchema>, extra: HandlerExtra) {
  const given = (['planId', 'spec', 'resumeRunId'] as const).filter((k) => args[k] !== undefined);
  if (given.length !== 1) {
    throw new ToolInputError(
      given.length === 0
        ? 'say what to run: pass exactly one of planId (from plan_workflow), spec (a workflow spec) or resumeRunId (a run to resume).'
        : `pass exactly one of planId, spec or resumeRunId, got ${given.join(' and ')}.`,
    );
  }

  let plan: Plan;
  let planId: string | undefined;
  let resumeId: string | undefined;
  if (args.resumeRunId !== undefined) {
    resumeId = assertId('run', args.resumeRunId);
    const snap = await readRunSnapshot(ctx.root, resumeId);
    const lease = await readLease(snap.view.dir);
    if (lease && leaseState(lease) === 'live') {
      throw new ToolInputError(
        `run ${resumeId} is still running (owner ${describeLease(lease)}); nothing to resume. Follow it with ${callText('workflow_status', { runId: resumeId, wait: MAX_WAIT_SECONDS })}.`,
      );
    }
    if (snap.view.status === 'completed') {
      throw new ToolInputError(`run ${resumeId} already completed; nothing to resume. Read its report with ${callText('workflow_status', { runId: resumeId })}.`);
    }
    plan = snap.run.plan;
  } else if (args.planId !== undefined) {
    planId = assertId('plan', args.planId);
    plan = (await loadPlan(ctx.root, planId)).plan;
  } else {
    const built = planFromSpecInput(args.spec, ctx.cwd);
    plan = built.plan;
    // Stored, so the approval answer can name a planId to run once the user agrees.
    planId = (await savePlan(ctx.root, { plan, spec: built.parsed })).planId;
  }

  const summary = summarizePlan(plan, { agents: ctx.approvalAgentThreshold, usd: ctx.approvalUsdThreshold, commands: ctx.approveCommands });
  const approval = await obtainApproval({
    server,
    plan,
    reasons: summary.approvalReasons,
    rendered: summary.rendered,
    approve: args.approve,
    extra,
    what: resumeId ? `resume run ${resumeId} of` : 'start',
    log: ctx.log,
    headlessAnswerMs: ctx.headlessAnswerMs,
    mode: ctx.approvalMode,
  });
  if (!approval.approved) {
    const again = resumeId ? { resumeRunId: resumeId, approve: true } : { planId, approve: true };
    const text =
      approval.kind === 'needs_flag'
        ? `${approval.message}\n\nThe call to make after the user agreed: ${callText(RUN_WORKFLOW, again)}`
        : `${approval.message}${planId ? ` (planId: ${planId})` : ''}`;
    return errorResult(`${RUN_WORKFLOW}: ${text}`);
  }

  let runId: string;
  if (resumeId) {
    runId = resumeId;
  } else {
    runId = await createRun({ root: ctx.root, plan, cwd: ctx.cwd });
  }
  try {
    await ctx.launch({ root: ctx.root, runId });
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    return errorResult(
      `${RUN_WORKFLOW}: the run owner for run ${runId} did not start: ${msg}\n` +
        `The run directory exists but nothing is running. After fixing the cause, call ${callText(RUN_WORKFLOW, { resumeRunId: runId })}.`,
    );
  }
  ctx.log(`run ${runId} ${resumeId ? 'resumed' : 'started'} (${plural(plan.agentCount, 'agent')}, approval: ${approval.by})`);

  let view: RunStatusView;
  if (args.wait !== undefined && args.wait > 0) {
    view = (await waitWithProgress(ctx.root, runId, args.wait, extra, ctx.log)).view;
  } else {
    view = await readStatus(ctx.root, runId);
  }
  const nextStep = nextStepFor(view);
  const structured = {
    runId,
    ...(planId ? { planId } : {}),
    status: view.status,
    ...(view.reason ? { reason: view.reason } : {}),
    name: view.name,
    agentCount: plan.agentCount,
    agents: view.agents,
    resumed: resumeId !== undefined,
    dir: view.dir,
    nextStep,
  };
  const text = [
    `runId: ${runId} — "${view.name}" ${resumeId ? 'resumed' : 'started'} in the background${planId ? ` (planId ${planId})` : ''}`,
    `status: ${view.status}${view.reason ? ` — ${view.reason}` : ''}`,
    countsLine(view.agents),
    `outputs: ${view.dir}`,
    `Next: ${nextStep}`,
  ].join('\n');
  return okResult(structured, text);
}
