/**
 * Phase bookkeeping: counts of task states, and each phase's status from them (a dynamic phase
 * also from its control steps). Pure functions over the owner's state maps.
 */
import type { Plan } from '../spec/types.js';
import type { Counts, DynamicState, PhaseState, PhaseStatus } from '../store/types.js';
import { countTasks, type TaskState } from '../store/counts.js';

/** Where one task stands (see store/counts.ts, which counts them for every front). */
export type { TaskState } from '../store/counts.js';
export { emptyCounts } from '../store/counts.js';

/** Counts of a set of task states: {@link countTasks}, the one counting function. */
export const countStates = countTasks;

/** Phase status from its counts; `runEnded` turns unfinished phases into `stopped`. */
export function phaseStatus(c: Counts, runEnded: boolean): PhaseStatus {
  // A check that did not pass is done (its gate decides the phase); a cancelled task is not.
  if (c.total > 0 && c.succeeded + (c.checkFailed ?? 0) === c.total) return 'completed';
  const unfinished = c.pending + c.running + (c.cancelled ?? 0);
  if (unfinished === 0 && c.failed + c.skipped > 0) return 'failed';
  if (runEnded) return c.failed + c.skipped > 0 ? 'failed' : 'stopped';
  return c.pending < c.total ? 'running' : 'pending';
}

/** Per-phase states from task states. */
export function phaseStates(plan: Plan, state: Map<string, TaskState>, runEnded: boolean, virtualFinal?: ReadonlyMap<string, string>,
  dynamic?: ReadonlyMap<string, DynamicState>): PhaseState[] {
  return plan.phases.map((p) => {
    const counts = countStates(p.taskRefs.map((r) => state.get(r) ?? 'pending'));
    let status = phaseStatus(counts, runEnded);
    const d = p.dynamic;
    if (d && virtualFinal) {
      // A dynamic phase is done when its end node is: its tasks may all have succeeded while a
      // gate still fails, or it may have made no task at all (no items).
      const f = virtualFinal.get(d.done);
      const failedStep = [...virtualFinal].some(([ref, v]) => ref.startsWith(`${p.id}/_`) && v !== 'succeeded');
      if (f === 'succeeded') status = 'completed';
      else if (failedStep || f !== undefined) status = 'failed';
      else if (status === 'completed') status = runEnded ? 'stopped' : 'running';
      else if (status === 'pending' && counts.total === 0 && runEnded) status = 'stopped';
      // Patches that did not apply: the phase's work has not landed.
      if ((dynamic?.get(p.id)?.merge?.conflicts.length ?? 0) > 0) status = 'failed';
    }
    return { id: p.id, status, counts };
  });
}
