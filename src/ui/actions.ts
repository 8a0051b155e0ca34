/**
 * The dashboard's buttons: stop the run, resume it, answer a checkpoint, stop or restart one agent.
 * Each calls the engine function the CLI and `control_workflow` call (requestStop, launchOwner,
 * engine/requests.ts); the rules that decide what is possible are theirs.
 *
 * Why no approval step: the dashboard is the person. Whoever holds its token is the user who
 * started `fanfold ui` (the token is printed to them and stored only where they alone can read),
 * so a click is that person's answer — what `control_workflow` asks a form for.
 */
import { launchOwner, requestStop } from '../engine/lifecycle.js';
import { answerCheckpoint, requestAgentAction, requestedBy } from '../engine/requests.js';
import { readStatus, TERMINAL } from '../engine/status.js';
import { RunStore, assertId, leaseState, readLease } from '../store/index.js';

/** The actions the dashboard offers. */
export const ACTIONS = ['stop', 'resume', 'approve', 'reject', 'stop_agent', 'restart_agent'] as const;
/** One of {@link ACTIONS}. */
export type Action = (typeof ACTIONS)[number];

/** A refused action: HTTP status and a sentence for the person. */
export class ActionError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** Options of {@link runAction}. */
export interface ActionOptions {
  /** `stop_agent` / `restart_agent`: the task as phase/task. */
  ref?: string;
  /** `approve` / `reject`: the phase whose checkpoint to answer (needed only when several wait). */
  phaseId?: string;
  /** How long to wait for the owner to confirm (ms). */
  waitMs?: number;
  /** Starts a detached owner (default the engine's). */
  launch?: typeof launchOwner;
}

const BY = 'fanfold ui (the dashboard)';

/** Does `action` on run `runId`; resolves with a sentence saying what happened. */
export async function runAction(root: string, runId: string, action: Action, o: ActionOptions = {}): Promise<{ message: string; effect?: string }> {
  assertId('run', runId);
  const waitMs = o.waitMs ?? 15_000;
  const launch = o.launch ?? launchOwner;
  const view = await readStatus(root, runId);
  const live = leaseState(await readLease(view.dir).catch(() => undefined)) === 'live';
  switch (action) {
    case 'stop': {
      if (!live) throw new ActionError(409, `run ${runId} is not running (${view.status}); there is nothing to stop`);
      const after = await requestStop(root, runId, waitMs);
      return { message: TERMINAL.has(after.status) ? `run ${runId} stopped: ${after.status}` : `asked run ${runId} to stop; it is still ${after.status}` };
    }
    case 'resume': {
      if (live) throw new ActionError(409, `run ${runId} is running; there is nothing to resume`);
      if (view.status === 'completed') throw new ActionError(409, `run ${runId} already completed; there is nothing to resume`);
      const { pid } = await launch({ root, runId });
      return { message: `resumed run ${runId} (owner pid ${pid}); finished agents are reused` };
    }
    case 'approve':
    case 'reject': {
      const waiting = view.status === 'awaiting_approval' || view.status === 'interrupted' ? (view.checkpoints ?? []) : [];
      if (waiting.length === 0) throw new ActionError(409, `run ${runId} has no checkpoint waiting for an answer (status ${view.status})`);
      const cp = o.phaseId !== undefined ? waiting.find((c) => c.phaseId === o.phaseId) : waiting.length === 1 ? waiting[0] : undefined;
      if (!cp) throw new ActionError(400, `run ${runId} waits at ${waiting.map((c) => c.phaseId).join(', ')}: name the phase whose checkpoint to answer`);
      const approve = action === 'approve';
      const ev = await answerCheckpoint(root, runId, cp.phaseId, approve, requestedBy(BY), live ? waitMs : 0);
      if (ev) return { message: `${approve ? 'approved' : 'rejected'} the checkpoint before phase ${cp.phaseId}${approve ? '' : ': the run ends stopped'}` };
      return { message: `answer left for the checkpoint before phase ${cp.phaseId}; ${live ? 'the run owner has not taken it yet' : 'no owner runs it now: Resume takes it'}` };
    }
    case 'stop_agent':
    case 'restart_agent': {
      const ref = await checkRef(root, runId, o.ref);
      if (!live) {
        if (action === 'stop_agent') throw new ActionError(409, `run ${runId} is not running (${view.status}): there is no agent to stop`);
        // On an ended run a restart is a resume that runs this agent and what ran downstream of it again.
        const { pid } = await launch({ root, runId, rerun: [ref] });
        return { message: `resumed run ${runId} (owner pid ${pid}): ${ref} and what ran downstream of it run again` };
      }
      const ev = await requestAgentAction(root, runId, action, ref, requestedBy(BY), waitMs);
      if (action === 'restart_agent' && ev?.effect === 'already_ended') {
        // As `fanfold restart` does: the live owner has recorded this agent's end, so rerunning it (and
        // what ran downstream) is a stop and a resume with a rerun; agents the stop cuts off run again.
        const stopped = await requestStop(root, runId, Math.max(waitMs, 60_000));
        if (!TERMINAL.has(stopped.status)) throw new ActionError(409, `run ${runId} did not stop in time (status ${stopped.status}); try again once it has`);
        const { pid } = await launch({ root, runId, rerun: [ref] });
        return { message: `${ref} had already ended: stopped run ${runId} and resumed it (owner pid ${pid}) with ${ref} and what ran downstream of it run again`, effect: 'rerun' };
      }
      if (!ev) return { message: `asked the run owner to ${action === 'stop_agent' ? 'stop' : 'restart'} ${ref}; it has not confirmed yet` };
      return { message: `${action === 'stop_agent' ? 'stop' : 'restart'} ${ref}: ${EFFECTS[ev.effect] ?? ev.effect}`, effect: ev.effect };
    }
  }
}

const EFFECTS: Record<string, string> = {
  stopping: 'its process group is being killed; its dependents are skipped',
  will_not_start: 'it had not started: it is recorded cancelled and its dependents skipped',
  restarting: 'its attempt is cut off and it runs again at once',
  not_running: 'it is not running now; nothing was done',
  already_ended: 'it has already ended; nothing was done',
  unknown_task: 'the run owner does not know this task',
};

async function checkRef(root: string, runId: string, ref: string | undefined): Promise<string> {
  if (ref === undefined) throw new ActionError(400, "this action needs the agent's ref, as phase/task");
  const parts = ref.split('/');
  if (parts.length !== 2) throw new ActionError(400, `expected phase/task, got '${ref}'`);
  assertId('phase', parts[0]);
  assertId('task', parts[1]);
  const store = await RunStore.open(root, runId);
  try {
    if (!(await store.readRun()).plan.tasks.some((t) => t.ref === ref)) throw new ActionError(404, `run ${runId} has no task '${ref}'`);
  } finally {
    await store.close();
  }
  return ref;
}
