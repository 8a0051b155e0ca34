/**
 * `control_workflow`: act on a run from a host without a shell (Claude Desktop can then stop
 * what it started) — stop it, resume it, answer a checkpoint, stop or restart one agent. Not
 * offered in child mode: a sub-agent never steers runs.
 *
 * Approvals follow `decideApproval` (approval.ts): `resume` and `restart_agent` ask as
 * `run_workflow` does for the plan; `approve` and `reject` answer a checkpoint, which is a
 * person's question — they always go through the form, and the model's `approve: true` counts
 * only where no person could answer it.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import * as z from 'zod';
import { requestStop } from '../../engine/lifecycle.js';
import { requestedBy, sendRequest, type NewRequest } from '../../engine/requests.js';
import { TERMINAL, readStatus, type RunStatusView } from '../../engine/status.js';
import { RunStore, assertId, leaseState, readLease } from '../../store/index.js';
import type { RequestRecord, RunEvent } from '../../store/types.js';
import { callText, errorResult, okResult } from '../answer.js';
import { askWithForm, decideApproval, obtainApproval } from '../approval.js';
import type { ToolContext } from '../context.js';
import { ToolInputError, toolError } from '../errors.js';
import { summarizePlan } from '../plan-view.js';
import { nextStepFor, readRunSnapshot } from '../run-views.js';
import type { HandlerExtra } from '../waiting.js';

/** Tool name. */
export const CONTROL_WORKFLOW = 'control_workflow';

const ACTIONS = ['stop', 'resume', 'approve', 'reject', 'stop_agent', 'restart_agent'] as const;

const InputSchema = z.strictObject({
  runId: z.string().describe('the run to act on'),
  action: z
    .enum(ACTIONS)
    .describe(
      'stop: stop the whole run (agents killed, outputs kept); resume: continue a stopped, paused, failed or interrupted run; ' +
        "approve / reject: answer a checkpoint with the user's answer (never your own); stop_agent: stop one agent (ref), its dependents are skipped; " +
        'restart_agent: run one agent (ref) again now — on an ended run this resumes it, rerunning that agent and what ran downstream of it',
    ),
  ref: z.string().optional().describe('the agent, as phase/task (stop_agent, restart_agent)'),
  phaseId: z.string().optional().describe('the phase whose checkpoint to answer (approve, reject), needed only when several wait'),
  approve: z
    .boolean()
    .optional()
    .describe("true once the user said yes in the chat; counts only where no person could answer the approval form (a person's answer is final)"),
});

const OutputSchema = z.object({
  runId: z.string(),
  action: z.enum(ACTIONS),
  /** Whether the action took effect (or was handed to the run owner, who confirmed it). */
  done: z.boolean(),
  status: z.string(),
  reason: z.string().optional(),
  effect: z.string().optional().describe('what the run owner did for an agent action'),
  message: z.string(),
  nextStep: z.string(),
});

/** How long to wait for a run owner to confirm a request (ms). */
const CONFIRM_MS = 10_000;

/** Registers control_workflow (never in child mode: see tools/index.ts). */
export function registerControlWorkflowTool(server: McpServer, ctx: ToolContext): void {
  server.registerTool(
    CONTROL_WORKFLOW,
    {
      title: 'Control a fanfold run',
      description:
        'Stop, resume or steer a run: action stop | resume | approve | reject | stop_agent | restart_agent. Use stop when the user wants a run ended; ' +
        'resume for a stopped, paused (usage limit reset) or interrupted run; approve/reject only with the user\'s own answer to a checkpoint ' +
        "(workflow_status shows the question; never answer it yourself); stop_agent / restart_agent with ref 'phase/task' for one agent. " +
        'resume and restart_agent need the user\'s approval like run_workflow; approve asks the user with a form (reject, like stop, needs none).',
      inputSchema: InputSchema,
      outputSchema: OutputSchema,
      // Why destructive: it kills running agents (stop, stop_agent), and resume/restart start agents
      // that may change files. Not idempotent: a restart runs the agent again each time. Open world:
      // resumed agents call model APIs.
      annotations: { title: 'Control a run', readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
    },
    async (args, extra) => {
      try {
        return await control(server, ctx, args, extra);
      } catch (err) {
        return toolError(CONTROL_WORKFLOW, err, 'Call workflow_status without a runId to list the runs.');
      }
    },
  );
}

type Args = z.infer<typeof InputSchema>;

async function control(server: McpServer, ctx: ToolContext, args: Args, extra: HandlerExtra) {
  const runId = assertId('run', args.runId);
  const view = await readStatus(ctx.root, runId);
  const live = leaseState(await readLease(view.dir).catch(() => undefined)) === 'live';
  switch (args.action) {
    case 'stop': {
      if (!live) return answer(args, view, false, `run ${runId} is not running (${view.status}); nothing to stop.`);
      const after = await requestStop(ctx.root, runId, CONFIRM_MS);
      return answer(args, after, true, `asked run ${runId} to stop: its agents are killed and recorded; every output is kept.`);
    }
    case 'resume':
      return resume(server, ctx, args, extra, view, live, undefined);
    case 'approve':
    case 'reject':
      return answerCheckpoint(server, ctx, args, extra, view, live);
    case 'stop_agent':
    case 'restart_agent': {
      const ref = checkRef(args.ref, view, runId);
      if (args.action === 'restart_agent' && !live) return resume(server, ctx, args, extra, view, live, ref);
      if (!live) throw new ToolInputError(`run ${runId} is not running (${view.status}): there is no agent to stop.`);
      if (args.action === 'restart_agent') {
        const ok = await approveRestart(server, ctx, args, extra, runId, `restart agent ${ref} of run`);
        if (ok) return ok;
      }
      const request = args.action;
      const ev = await ask(ctx.root, runId, { request, ref, by: who() }, (e) =>
        e.type === (request === 'stop_agent' ? 'agent.stop_requested' : 'agent.restart_requested') && e.ref === ref);
      const effect = ev && 'effect' in ev ? (ev.effect as string) : undefined;
      if (request === 'restart_agent' && effect === 'already_ended') {
        // Why stop and resume: the live owner has already recorded this agent's end; rerunning it and
        // what ran downstream of it is a resume with a rerun (approved above). Agents the stop cuts
        // off are recorded cancelled and run again on the resume.
        const stopped = await requestStop(ctx.root, runId, 60_000);
        if (!TERMINAL.has(stopped.status)) throw new ToolInputError(`run ${runId} did not stop within 60 s (status ${stopped.status}); call again once it has.`);
        await ctx.launch({ root: ctx.root, runId, rerun: [ref] });
        const resumed = await readStatus(ctx.root, runId);
        return answer(args, resumed, true, `${ref} had already ended: the run was stopped and resumed with ${ref} and what ran downstream of it running again; finished agents elsewhere are reused.`, 'restarted_by_resume');
      }
      const after = await readStatus(ctx.root, runId);
      const done = effect === 'stopping' || effect === 'will_not_start' || effect === 'restarting';
      return answer(args, after, done,
        effect ? `${request === 'stop_agent' ? 'stop' : 'restart'} ${ref}: ${EFFECTS[effect] ?? effect}` : `asked the run owner to ${request === 'stop_agent' ? 'stop' : 'restart'} ${ref}; it has not confirmed yet.`,
        effect);
    }
  }
}

const EFFECTS: Record<string, string> = {
  stopping: 'its process group is being killed; it is recorded cancelled, its dependents are skipped, the rest goes on and the run ends stopped',
  will_not_start: 'it had not started: it is recorded cancelled instead of running, and its dependents are skipped',
  restarting: 'its attempt is cut off and it runs again at once as its next attempt',
  not_running: 'it has not started yet: it runs when its dependencies have finished; nothing to restart',
  already_ended: 'it has already ended; nothing was done',
  unknown_task: 'the run owner does not know this task',
};

function checkRef(ref: string | undefined, view: RunStatusView, runId: string): string {
  if (ref === undefined) throw new ToolInputError(`action needs ref: the agent as 'phase/task' (see ${callText('workflow_status', { runId, detail: 'agents' })}).`);
  const parts = ref.split('/');
  if (parts.length !== 2) throw new ToolInputError(`ref: expected 'phase/task', got '${ref}'.`);
  assertId('phase', parts[0]);
  assertId('task', parts[1]);
  void view;
  return ref;
}

/** Asks for the restart's approval when the plan needs one; returns a refusal answer, or undefined to go on. */
async function approveRestart(server: McpServer, ctx: ToolContext, args: Args, extra: HandlerExtra, runId: string, what: string) {
  const snap = await readRunSnapshot(ctx.root, runId);
  const summary = summarizePlan(snap.run.plan, { agents: ctx.approvalAgentThreshold, usd: ctx.approvalUsdThreshold, commands: ctx.approveCommands });
  const approval = await obtainApproval({
    server, plan: snap.run.plan, reasons: summary.approvalReasons, rendered: summary.rendered, approve: args.approve, extra,
    what, log: ctx.log, headlessAnswerMs: ctx.headlessAnswerMs, mode: ctx.approvalMode,
  });
  if (approval.approved) return undefined;
  const again = { ...args, approve: true };
  return errorResult(`${CONTROL_WORKFLOW}: ${approval.message.replace(/call run_workflow again with the same arguments/, `call ${CONTROL_WORKFLOW} again with the same arguments`)}` +
    (approval.kind === 'needs_flag' ? `\n\nThe call to make after the user agreed: ${callText(CONTROL_WORKFLOW, again)}` : ''));
}

async function resume(server: McpServer, ctx: ToolContext, args: Args, extra: HandlerExtra, view: RunStatusView, live: boolean, ref: string | undefined) {
  const runId = view.runId;
  if (live) throw new ToolInputError(`run ${runId} is still running; nothing to resume. Follow it with ${callText('workflow_status', { runId, wait: 50 })}.`);
  if (view.status === 'completed' && ref === undefined) throw new ToolInputError(`run ${runId} already completed; nothing to resume.`);
  if (ref !== undefined) {
    const store = await RunStore.open(ctx.root, runId);
    try {
      if (!(await store.readRun()).plan.tasks.some((t) => t.ref === ref)) throw new ToolInputError(`run ${runId} has no task '${ref}'.`);
    } finally {
      await store.close();
    }
  }
  const refused = await approveRestart(server, ctx, args, extra, runId, ref ? `rerun agent ${ref} (and what ran after it) of run ${runId} of` : `resume run ${runId} of`);
  if (refused) return refused;
  await ctx.launch({ root: ctx.root, runId, ...(ref ? { rerun: [ref] } : {}) });
  const after = await readStatus(ctx.root, runId);
  return answer(args, after, true, ref ? `resumed run ${runId}: ${ref} and what ran downstream of it run again; finished agents elsewhere are reused.` : `resumed run ${runId}: finished agents are reused.`);
}

async function answerCheckpoint(server: McpServer, ctx: ToolContext, args: Args, extra: HandlerExtra, view: RunStatusView, live: boolean) {
  const runId = view.runId;
  const waiting = view.checkpoints ?? [];
  if (waiting.length === 0) throw new ToolInputError(`run ${runId} has no checkpoint waiting for an answer (status ${view.status}).`);
  let cp = waiting[0]!;
  if (args.phaseId !== undefined) {
    const found = waiting.find((c) => c.phaseId === args.phaseId);
    if (!found) throw new ToolInputError(`run ${runId} has no checkpoint waiting before phase '${args.phaseId}'; waiting: ${waiting.map((c) => c.phaseId).join(', ')}.`);
    cp = found;
  } else if (waiting.length > 1) {
    throw new ToolInputError(`run ${runId} waits at ${waiting.length} checkpoints (${waiting.map((c) => c.phaseId).join(', ')}): pass phaseId.`);
  }
  const approve = args.action === 'approve';
  // Why a rejection needs no form: it only ends the run stopped (outputs kept), which `stop` may
  // do without one too; letting a phase start is what a person must decide.
  if (!approve) {
    const ev = await ask(ctx.root, runId, { request: 'answer', phaseId: cp.phaseId, approve: false, by: who() },
      (e) => e.type === 'checkpoint.answered' && e.phaseId === cp.phaseId, live ? CONFIRM_MS : 0);
    const after = await readStatus(ctx.root, runId);
    return answer(args, after, ev !== undefined || !live,
      ev ? `rejected the checkpoint before phase ${cp.phaseId}; the run ends stopped.`
        : `rejection left for the checkpoint before phase ${cp.phaseId}; ${live ? 'the run owner has not taken it yet' : 'no owner runs it now: resume takes it'}.`);
  }
  // A checkpoint is for a person: the form decides; approve: true only where no one could answer it.
  const form = await askWithForm({
    server,
    message: `Run ${runId} ("${view.name}") waits before phase ${cp.phaseId}:\n\n${cp.message}\n\n` +
      (approve ? 'Approve it? The phase starts.' : 'Reject it? The run ends stopped (outputs kept).'),
    title: approve ? 'Approve this checkpoint?' : 'Reject this checkpoint?',
    description: approve ? 'Check to let the phase start.' : 'Check to end the run here.',
    extra,
    log: ctx.log,
  });
  const d = decideApproval(form, { approve: args.approve, mode: ctx.approvalMode, headlessAnswerMs: ctx.headlessAnswerMs });
  if (!d.approved) {
    if (d.kind === 'needs_flag') {
      return errorResult(`${CONTROL_WORKFLOW}: nothing was answered. Ask the user the checkpoint's question ("${cp.message}") and wait for their own answer; ` +
        `if they say ${approve ? 'yes' : 'no'}, call ${callText(CONTROL_WORKFLOW, { runId, action: args.action, phaseId: cp.phaseId, approve: true })}.`);
    }
    return answer(args, view, false, `the user did not confirm on the form; the checkpoint before phase ${cp.phaseId} still waits. A person's answer on the form is final.`);
  }
  const ev = await ask(ctx.root, runId, { request: 'answer', phaseId: cp.phaseId, approve, by: who(d.by === 'elicitation' ? 'MCP control_workflow (the user on a form)' : 'MCP control_workflow (approve flag)') },
    (e) => e.type === 'checkpoint.answered' && e.phaseId === cp.phaseId, live ? CONFIRM_MS : 0);
  const after = await readStatus(ctx.root, runId);
  return answer(args, after, ev !== undefined || !live,
    ev ? `${approve ? 'approved' : 'rejected'} the checkpoint before phase ${cp.phaseId}${approve ? '; the phase starts' : '; the run ends stopped'}.`
      : `answer left for the checkpoint before phase ${cp.phaseId}; ${live ? 'the run owner has not taken it yet' : 'no owner runs it now: resume takes it'}.`);
}

function who(via = 'MCP control_workflow'): RequestRecord['by'] {
  return requestedBy(via);
}

/** Leaves a request and waits (up to waitMs) for the owner's journal line that answers it. */
function ask(root: string, runId: string, req: NewRequest, match: (e: RunEvent) => boolean, waitMs = CONFIRM_MS): Promise<RunEvent | undefined> {
  return sendRequest(root, runId, req, match, waitMs);
}

function answer(args: Args, view: RunStatusView, done: boolean, message: string, effect?: string) {
  const nextStep = nextStepFor(view);
  const structured = {
    runId: view.runId, action: args.action, done, status: view.status, ...(view.reason ? { reason: view.reason } : {}),
    ...(effect ? { effect } : {}), message, nextStep,
  };
  const text = [`runId: ${view.runId} — ${args.action}: ${message}`, `status: ${view.status}${view.reason ? ` — ${view.reason}` : ''}`, `Next: ${nextStep}`].join('\n');
  return okResult(structured, text);
}

