/**
 * Human checkpoints between phases. A phase with `checkpoint` gets a virtual node
 * `<phase>/_checkpoint` in the scheduler's graph: it waits for what the phase's tasks wait for
 * outside the phase, and every task (or dynamic step) of the phase waits for it. So phases that do
 * not depend on the checkpoint go on while it waits, and nothing of the phase starts before a
 * person answered.
 *
 * Design: the owner stays up while it waits (its lease and heartbeat go on, so the run is not
 * mistaken for a crashed one), run.json says `awaiting_approval` with the question, and answers
 * arrive as files in requests/ (any session: `fanfold approve`, MCP `control_workflow`) or from
 * the foreground terminal. Waiting does not count toward limits.runTimeout (see Stops.holdClock).
 * An approval is journaled, so a resumed run does not ask again; a rejection ends the run
 * `stopped`, and a resume asks again (the person resuming may have changed their mind).
 */
import type { Plan } from '../spec/types.js';
import type { CheckpointWait, RunEvent } from '../store/types.js';
import type { SchedTask } from './scheduler.js';
import { now } from './say.js';

/** Task id of a phase's checkpoint node. */
export const CHECKPOINT_TASK = '_checkpoint';

/** The checkpoint node of `phaseId`. */
export function checkpointRef(phaseId: string): string {
  return `${phaseId}/${CHECKPOINT_TASK}`;
}

/** Whether `ref` is a checkpoint node. */
export function isCheckpointRef(ref: string): boolean {
  return ref.endsWith(`/${CHECKPOINT_TASK}`);
}

/**
 * The scheduler's task list with a checkpoint node before every phase that has one. Tasks are
 * copied where their deps change (plan tasks are persisted in run.json and must stay as planned).
 */
export function withCheckpoints(plan: Plan, tasks: SchedTask[]): SchedTask[] {
  const gated = new Set(plan.phases.filter((p) => p.checkpoint).map((p) => p.id));
  if (gated.size === 0) return tasks;
  const outside = new Map<string, Set<string>>([...gated].map((id) => [id, new Set<string>()]));
  for (const t of tasks) {
    const set = outside.get(t.phaseId);
    if (!set) continue;
    for (const d of t.deps) if (d.slice(0, d.indexOf('/')) !== t.phaseId) set.add(d);
  }
  const out: SchedTask[] = [];
  for (const t of tasks) {
    out.push(gated.has(t.phaseId) ? { ...t, deps: [...t.deps, checkpointRef(t.phaseId)] } : t);
  }
  for (const [phaseId, deps] of outside) out.push({ ref: checkpointRef(phaseId), phaseId, deps: [...deps], virtual: true });
  return out;
}

/** The answer a checkpoint got. */
export type CheckpointAnswer = 'approve' | 'reject' | 'timeout_stop' | 'timeout_continue';

/** What the checkpoints need from the owner. */
export interface CheckpointDeps {
  plan: Plan;
  /** Phases whose checkpoint an earlier owner saw approved (journal). */
  approvedBefore: ReadonlySet<string>;
  journal: (e: RunEvent) => Promise<void>;
  /** The set of waiting checkpoints changed (status and run.json follow). */
  onChange: () => void;
  /** Waiting starts / ends: the run timeout's clock stops meanwhile. */
  holdClock: () => void;
  releaseClock: () => void;
  /** Aborted when the run stops: a waiting checkpoint gives up without an answer. */
  signal: AbortSignal;
  /** Asks on the foreground terminal, when there is one: true/false, or undefined when it cannot. */
  ask?: (wait: CheckpointWait, signal: AbortSignal) => Promise<boolean | undefined>;
}

interface Waiter {
  wait: CheckpointWait;
  settle: (a: { answer: CheckpointAnswer; by: string } | undefined) => void;
}

/** The run's checkpoints: the ones waiting, and how they are answered. */
export class Checkpoints {
  readonly #d: CheckpointDeps;
  readonly #waiting = new Map<string, Waiter>();
  /** Phases whose checkpoint has been answered in this segment. */
  readonly #answered = new Set<string>();

  constructor(deps: CheckpointDeps) {
    this.#d = deps;
  }

  /** Checkpoints waiting for a person now, oldest first. */
  waiting(): CheckpointWait[] {
    return [...this.#waiting.values()].map((w) => w.wait);
  }

  /** Whether `phaseId` has a checkpoint that has not been answered yet (waiting or still to come). */
  open(phaseId: string): boolean {
    const p = this.#d.plan.phases.find((x) => x.id === phaseId);
    return !!p?.checkpoint && !this.#answered.has(phaseId) && !this.#d.approvedBefore.has(phaseId);
  }

  /**
   * Waits for the answer to `phaseId`'s checkpoint (at once `approve` when an earlier owner saw it
   * approved). Resolves undefined when the run stops meanwhile.
   */
  async wait(phaseId: string): Promise<{ answer: CheckpointAnswer; by: string } | undefined> {
    const cp = this.#d.plan.phases.find((p) => p.id === phaseId)?.checkpoint;
    if (!cp || this.#d.approvedBefore.has(phaseId)) return { answer: 'approve', by: 'an earlier answer' };
    if (this.#d.signal.aborted) return undefined;
    const askedAt = now();
    const wait: CheckpointWait = {
      phaseId, message: cp.message, askedAt, onTimeout: cp.onTimeout,
      ...(cp.timeoutMs !== undefined ? { timeoutAt: new Date(Date.parse(askedAt) + cp.timeoutMs).toISOString() } : {}),
    };
    await this.#d.journal({ type: 'checkpoint.asked', t: askedAt, phaseId, message: cp.message, ...(wait.timeoutAt ? { timeoutAt: wait.timeoutAt } : {}) });
    const local = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const result = await new Promise<{ answer: CheckpointAnswer; by: string } | undefined>((resolve) => {
      this.#waiting.set(phaseId, { wait, settle: resolve });
      this.#d.holdClock();
      this.#d.onChange();
      const onStop = () => resolve(undefined);
      this.#d.signal.addEventListener('abort', onStop, { once: true });
      local.signal.addEventListener('abort', () => this.#d.signal.removeEventListener('abort', onStop), { once: true });
      if (cp.timeoutMs !== undefined) {
        timer = setTimeout(() => resolve({ answer: cp.onTimeout === 'continue' ? 'timeout_continue' : 'timeout_stop', by: `timeout after ${Math.round(cp.timeoutMs! / 1000)}s` }), cp.timeoutMs);
      }
      this.#d.ask?.(wait, local.signal).then((yes) => {
        if (yes !== undefined) resolve({ answer: yes ? 'approve' : 'reject', by: 'the terminal of the foreground run' });
      }, () => {});
    });
    clearTimeout(timer);
    local.abort();
    this.#waiting.delete(phaseId);
    this.#d.releaseClock();
    if (result) {
      this.#answered.add(phaseId);
      await this.#d.journal({ type: 'checkpoint.answered', t: now(), phaseId, answer: result.answer, by: result.by });
    }
    this.#d.onChange();
    return result;
  }

  /**
   * Answers a waiting checkpoint: the one of `phaseId`, or the only one waiting. Returns whether
   * a checkpoint took the answer.
   */
  answer(phaseId: string | undefined, approve: boolean, by: string): boolean {
    const w = phaseId !== undefined ? this.#waiting.get(phaseId) : this.#waiting.size === 1 ? [...this.#waiting.values()][0] : undefined;
    if (!w) return false;
    w.settle({ answer: approve ? 'approve' : 'reject', by });
    return true;
  }
}
