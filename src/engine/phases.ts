/**
 * Phase bookkeeping: counts of task states, and each phase's status from them (a dynamic phase
 * also from its control steps). Pure functions over the owner's state maps.
 */
import type { Plan } from '../spec/types.js';
import type { Counts, DynamicState, PhaseState, PhaseStatus } from '../store/types.js';

/** Where one task stands, as the progress view and status see it. */
export type TaskState = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped';

/** Empty counts for `total` tasks. */
export function emptyCounts(total = 0): Counts {
  return { total, succeeded: 0, failed: 0, skipped: 0, running: 0, pending: total };
}

/** Counts of a set of task states. */
export function countStates(states: Iterable<TaskState>): Counts {
  const c = emptyCounts();
  for (const s of states) {
    c.total++;
    c[s]++;
  }
  return c;
}

/** Phase status from its counts; `runEnded` turns unfinished phases into `stopped`. */
export function phaseStatus(c: Counts, runEnded: boolean): PhaseStatus {
  if (c.total > 0 && c.succeeded === c.total) return 'completed';
  const unfinished = c.pending + c.running;
  if (unfinished === 0 && c.failed + c.skipped > 0) return 'failed';
  if (runEnded) return c.failed + c.skipped > 0 ? 'failed' : 'stopped';
  return c.succeeded + c.running + c.failed + c.skipped > 0 ? 'running' : 'pending';
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
