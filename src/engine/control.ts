/**
 * Requests from other sessions to a live run's owner besides a whole-run stop (requests/, see
 * RunStore.addRequest): checkpoint answers, and stopping or restarting one agent.
 *
 * - `stop_agent`: a running attempt is cancelled (its process group killed) and recorded
 *   `cancelled` with who stopped it; a task that has not started is recorded cancelled when its
 *   turn comes. Either way its dependents are skipped, everything else goes on, and the run ends
 *   `stopped` naming the agent (a stop is a person's decision, not a failure).
 * - `restart_agent`: a running attempt is cancelled and the task runs again at once as its next
 *   attempt, without using up a retry. Tasks that are not running are left alone here: on an ended
 *   run a restart is a resume (`OwnerOptions.rerun`).
 */
import type { RequestRecord, RunEvent } from '../store/types.js';
import type { RunStore } from '../store/index.js';
import type { Checkpoints } from './checkpoints.js';
import { now, warn, errText } from './say.js';

/** Who made a request, for reasons and the journal. */
export function requester(r: Pick<RequestRecord, 'by'>): string {
  return `${r.by.via} (pid ${r.by.pid} on ${r.by.host})`;
}

/** Per-agent stops and restarts of one owner. */
export class AgentControl {
  /** Running attempts that can be cancelled, and what was asked of them. */
  readonly #running = new Map<string, { ctl: AbortController; action?: 'stop' | 'restart'; by?: string }>();
  /** Tasks to cancel when their turn comes. */
  readonly #stopBefore = new Map<string, string>();
  /** Agents a person stopped, with who did. */
  readonly stopped = new Map<string, string>();

  /** A signal for the attempt of `ref` about to start (stop/restart abort it). */
  begin(ref: string): AbortSignal {
    const ctl = new AbortController();
    this.#running.set(ref, { ctl });
    return ctl.signal;
  }

  /** The attempt of `ref` ended: what was asked of it, if anything. */
  end(ref: string): { action: 'stop' | 'restart'; by: string } | undefined {
    const e = this.#running.get(ref);
    this.#running.delete(ref);
    return e?.action && e.by ? { action: e.action, by: e.by } : undefined;
  }

  /** The note for the record of a cancelled attempt of `ref`, when a person asked. */
  note(ref: string): string | undefined {
    const e = this.#running.get(ref);
    if (!e?.action) return undefined;
    return e.action === 'stop' ? `stopped by ${e.by}: this agent alone; its dependents are skipped` : `restarted by ${e.by}: this attempt was cut off and the task runs again`;
  }

  /** Whether `ref` must be cancelled before it starts; the stopper, if so (taken once). */
  takeStopBefore(ref: string): string | undefined {
    const by = this.#stopBefore.get(ref);
    this.#stopBefore.delete(ref);
    return by;
  }

  /**
   * Acts on a stop or restart of `ref`. Returns what happened, for the journal: `stopping` /
   * `restarting` a running attempt, `will_not_start`, or `not_running` (a restart of an idle task).
   */
  request(action: 'stop' | 'restart', ref: string, by: string, isFinal: boolean): string {
    const e = this.#running.get(ref);
    if (e) {
      if (!e.action) {
        e.action = action;
        e.by = by;
        e.ctl.abort(action);
      }
      return action === 'stop' ? 'stopping' : 'restarting';
    }
    if (isFinal) return 'already_ended';
    if (action === 'stop') {
      this.#stopBefore.set(ref, by);
      return 'will_not_start';
    }
    return 'not_running';
  }
}

/** What the request poller acts on. */
export interface RequestTargets {
  store: RunStore;
  checkpoints: Checkpoints;
  agents: AgentControl;
  /** Whether `ref` is a task of the run, and whether it has reached its final state. */
  task: (ref: string) => { final: boolean } | undefined;
  journal: (e: RunEvent) => Promise<void>;
}

/**
 * Reads requests/ once and acts on each: answers go to waiting checkpoints (an answer for a
 * checkpoint still to come is kept until it asks), agent actions to AgentControl. Acted-on and
 * pointless requests are removed.
 */
export async function pollRequests(t: RequestTargets): Promise<void> {
  let reqs: RequestRecord[];
  try {
    reqs = await t.store.readRequests();
  } catch (e) {
    warn(`cannot read requests of run ${t.store.runId}: ${errText(e)}`);
    return;
  }
  for (const r of reqs) {
    let done = true;
    if (r.request === 'answer') {
      const took = t.checkpoints.answer(r.phaseId, r.approve === true, requester(r));
      // An answer to a checkpoint that has not asked yet waits for it; one to nothing is dropped.
      if (!took && r.phaseId !== undefined && t.checkpoints.open(r.phaseId)) done = false;
    } else if (r.ref !== undefined) {
      const task = t.task(r.ref);
      const action = r.request === 'stop_agent' ? 'stop' : 'restart';
      const effect = task ? t.agents.request(action, r.ref, requester(r), task.final) : 'unknown_task';
      await t.journal({ type: action === 'stop' ? 'agent.stop_requested' : 'agent.restart_requested', t: now(), ref: r.ref, by: requester(r), effect });
    }
    if (done) await t.store.removeRequest(r.id).catch(() => {});
  }
}

/** Removes agent requests an earlier owner left (they were meant for attempts that are gone). */
export async function clearAgentRequests(store: RunStore): Promise<void> {
  for (const r of await store.readRequests().catch(() => [])) {
    if (r.request !== 'answer') await store.removeRequest(r.id).catch(() => {});
  }
}
