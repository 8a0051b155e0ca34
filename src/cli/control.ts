/**
 * Commands that act on a live run from any terminal besides a whole stop: `approve` (answer a
 * checkpoint), `stop <runId> <phase/task>` (one agent; see run.ts), `restart <runId> <phase/task>`.
 * They leave a request in the run's requests/ folder for its owner and wait for the owner's
 * journal line that says what it did.
 */
import type { Command } from 'commander';
import { RunStore, assertId, leaseState, readLease } from '../store/index.js';
import { answerCheckpoint, requestAgentAction, requestedBy, waitForEvent, type AgentActionEvent } from '../engine/requests.js';
import { TERMINAL, readStatus } from '../engine/status.js';
import { launchOwner, requestStop } from '../engine/lifecycle.js';
import { UsageError } from './errors.js';
import { commandHint, printJson, storeRoot } from './shared.js';
import { detached, foreground, seconds } from './run.js';

/** Registers approve and restart. */
export function registerControlCommands(program: Command): void {
  program
    .command('approve')
    .description('answer a checkpoint a run waits at: approve it (the phase starts) or --reject it (the run ends stopped)')
    .argument('<runId>', 'run id')
    .argument('[phaseId]', 'the phase whose checkpoint to answer (needed only when several wait)')
    .option('--reject', 'reject instead of approving')
    .option('--wait <seconds>', 'how long to wait for the run owner to take the answer', '15')
    .option('--json', 'print JSON')
    .action(async (runId: string, phaseArg: string | undefined, o: { reject?: boolean; wait: string; json?: boolean }) => {
      const root = storeRoot(program);
      const s = await readStatus(root, runId);
      const waiting = s.checkpoints ?? [];
      if (phaseArg !== undefined) assertId('phase id', phaseArg);
      const phases = s.status === 'awaiting_approval' || s.status === 'interrupted' ? waiting.map((c) => c.phaseId) : [];
      if (phases.length === 0) throw new UsageError(`run '${runId}' has no checkpoint waiting for an answer (status ${s.status})`);
      let phaseId = phaseArg;
      if (phaseId === undefined) {
        if (phases.length > 1) throw new UsageError(`run '${runId}' waits at ${phases.length} checkpoints (${phases.join(', ')}): name one, e.g. '${commandHint(program)(['approve', runId, phases[0]!])}'`);
        phaseId = phases[0]!;
      } else if (!phases.includes(phaseId)) {
        throw new UsageError(`run '${runId}' has no checkpoint waiting before phase '${phaseId}'; waiting: ${phases.join(', ')}`);
      }
      const approve = !o.reject;
      const ev = await answerCheckpoint(root, runId, phaseId, approve, requestedBy('fanfold approve'), seconds(o.wait, '--wait') * 1000);
      const live = leaseState(await readLease(`${root}/${runId}`).catch(() => undefined)) === 'live';
      const taken = ev !== undefined;
      if (o.json) printJson({ runId, phaseId, answer: approve ? 'approve' : 'reject', taken, ...(ev ? { event: ev } : {}) });
      else if (taken) process.stdout.write(`${approve ? 'approved' : 'rejected'} the checkpoint before phase ${phaseId} of run ${runId}${approve ? '' : ': the run ends stopped'}\n`);
      else process.stdout.write(`answer left for run ${runId} (phase ${phaseId}); ${live ? 'its owner has not taken it yet' : `no owner is running it: '${commandHint(program)(['resume', runId])}' takes it`}\n`);
      process.exitCode = taken || !live ? 0 : 1;
    });

  program
    .command('restart')
    .description('run one agent again now (next attempt); on an ended run, resume it running that agent and what ran downstream of it again')
    .argument('<runId>', 'run id')
    .argument('<phase/task>', 'the task, as phase/task')
    .option('--detach', 'when the run has ended: resume in a detached run owner')
    .option('--wait <seconds>', 'on a live run: how long to wait for the owner to act', '15')
    .option('--json', 'print JSON')
    .action(async (runId: string, ref: string, o: { detach?: boolean; wait: string; json?: boolean }) => {
      const root = storeRoot(program);
      await checkRef(root, runId, ref);
      const lease = await readLease(`${root}/${runId}`).catch(() => undefined);
      if (leaseState(lease) === 'live') {
        const ev = await agentAction(root, runId, 'restart_agent', ref, seconds(o.wait, '--wait') * 1000);
        if (ev?.effect !== 'already_ended') {
          report(ev, runId, ref, 'restart', o.json);
          return;
        }
        // Why stop and resume: the live owner has already recorded this agent's end, and rerunning a
        // finished task plus what ran downstream of it is what a resume with a rerun does. Agents the
        // stop cuts off are recorded cancelled and run again on the resume; nothing finished is lost.
        process.stderr.write(`fanfold: ${ref} has already ended in live run ${runId}: stopping the run, then resuming it with ${ref} and what ran downstream of it run again\n`);
        const stopped = await requestStop(root, runId, 60_000);
        if (!TERMINAL.has(stopped.status)) throw new Error(`run '${runId}' did not stop within 60 s (status ${stopped.status}); try again once it has`);
      }
      if (o.detach) {
        const { pid } = await launchOwner({ root, runId, rerun: [ref] });
        return detached(root, runId, pid, o.json, commandHint(program));
      }
      await foreground(root, runId, { json: o.json, hint: commandHint(program), rerun: [ref] });
    });
}

/** `fanfold stop <runId> <phase/task>`: stops one agent of a live run. */
export async function stopAgent(root: string, runId: string, ref: string, waitMs: number, json?: boolean): Promise<void> {
  await checkRef(root, runId, ref);
  const lease = await readLease(`${root}/${runId}`).catch(() => undefined);
  if (leaseState(lease) !== 'live') throw new UsageError(`run '${runId}' is not running (status ${(await readStatus(root, runId)).status}): there is no agent to stop`);
  const ev = await agentAction(root, runId, 'stop_agent', ref, waitMs);
  report(ev, runId, ref, 'stop', json);
  if (ev?.effect === 'already_ended') process.exitCode = 1;
}

async function checkRef(root: string, runId: string, ref: string): Promise<void> {
  const parts = ref.split('/');
  if (parts.length !== 2) throw new UsageError(`expected <phaseId>/<taskId>, got '${ref}'`);
  assertId('phase id', parts[0]);
  assertId('task id', parts[1]);
  const store = await RunStore.open(root, runId);
  try {
    const refs = (await store.readRun()).plan.tasks.map((t) => t.ref);
    if (!refs.includes(ref)) {
      throw new UsageError(`run '${runId}' has no task '${ref}'; its tasks: ${refs.slice(0, 20).join(', ')}${refs.length > 20 ? `, … (${refs.length - 20} more)` : ''}`);
    }
  } finally {
    await store.close();
  }
}

type AgentEvent = AgentActionEvent;

async function agentAction(root: string, runId: string, request: 'stop_agent' | 'restart_agent', ref: string, waitMs: number): Promise<AgentEvent | undefined> {
  return requestAgentAction(root, runId, request, ref, requestedBy(request === 'stop_agent' ? 'fanfold stop' : 'fanfold restart'), waitMs);
}

const EFFECTS: Record<string, string> = {
  stopping: 'its process group is being killed; it is recorded cancelled and its dependents are skipped',
  will_not_start: 'it had not started: it will be recorded cancelled instead of running, and its dependents skipped',
  restarting: 'its attempt is cut off and it runs again at once as its next attempt',
  not_running: 'it has not started yet: it runs when its dependencies have finished; nothing to restart',
  already_ended: 'it has already ended; nothing was done',
  unknown_task: 'the owner does not know this task',
};

function report(ev: AgentEvent | undefined, runId: string, ref: string, what: string, json?: boolean): void {
  if (json) return printJson({ runId, ref, action: what, taken: ev !== undefined, ...(ev ? { effect: ev.effect } : {}) });
  if (!ev) {
    process.stdout.write(`asked run ${runId} to ${what} ${ref}; its owner has not confirmed yet\n`);
    process.exitCode = 1;
    return;
  }
  process.stdout.write(`${what} ${ref} of run ${runId}: ${EFFECTS[ev.effect] ?? ev.effect}\n`);
}

/** Polls the journal until an event after `since` matches, or `waitMs` passes (see engine/requests.ts). */
export { waitForEvent };
