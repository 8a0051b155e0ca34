/**
 * What earlier owners of a run left: the attempts on disk (from the journal's census), read once
 * when an owner starts, and turned into the maps the owner works from — which tasks are done and
 * where their records are, the highest attempt per task, and what a task made at run time may reuse.
 */
import type { Plan, PlanTask } from '../spec/types.js';
import type { AttemptSummary, RunEvent } from '../store/types.js';

/** The earlier attempts of a run, indexed for the owner. */
export interface Prior {
  /** Every attempt on disk. */
  records: AttemptSummary[];
  /** Highest attempt number per ref, on disk or in the journal (started or spawned). */
  maxAttempt: Map<string, number>;
  /** Latest attempt per ref among records whose key matches the task as planned now. */
  latestCurrent: Map<string, AttemptSummary>;
  /** Latest succeeded record per ref and key (`ref\0key`): what a task made at run time may reuse. */
  succeededByKey: Map<string, AttemptSummary>;
  /** Refs reused as they are: a succeeded record carries their current key. */
  done: Set<string>;
  /** Record file of each done ref. */
  succeededFile: Map<string, string>;
  /** For digests: the succeeded attempt's file when there is one, else the latest. */
  latestFile: Map<string, string>;
  /** Tasks made at run time that an earlier owner recorded, by phase (they keep their room). */
  recorded: Map<string, Set<string>>;
}

/** Indexes the attempts earlier owners left (`records`, and `events` of the journal), against the plan as it stands now. */
export function readPrior(records: AttemptSummary[], plan: Plan, taskByRef: ReadonlyMap<string, PlanTask>, events: readonly RunEvent[] = []): Prior {
  const maxAttempt = new Map<string, number>();
  // Why the journal too: an owner that lost its lease (paused, then woken) may still be about to
  // write the attempt it started; numbering above every attempt ever started or spawned keeps
  // two owners from ever sharing an agent file name.
  for (const e of events) {
    if (e.type === 'agent.started' || e.type === 'agent.spawned') maxAttempt.set(e.ref, Math.max(maxAttempt.get(e.ref) ?? 0, e.attempt));
  }
  const latestCurrent = new Map<string, AttemptSummary>();
  const latestSucceeded = new Map<string, AttemptSummary>();
  const newer = (m: Map<string, AttemptSummary>, ref: string, r: AttemptSummary) => {
    const prev = m.get(ref);
    if (!prev || prev.attempt < r.attempt) m.set(ref, r);
  };
  const succeededByKey = new Map<string, AttemptSummary>();
  for (const r of records) {
    const ref = `${r.phaseId}/${r.taskId}`;
    maxAttempt.set(ref, Math.max(maxAttempt.get(ref) ?? 0, r.attempt));
    if (r.status === 'succeeded') newer(succeededByKey, `${ref}\0${r.key}`, r);
    if (taskByRef.get(ref)?.key !== r.key) continue;
    newer(latestCurrent, ref, r);
    if (r.status === 'succeeded') newer(latestSucceeded, ref, r);
  }
  // Reuse a task only when a succeeded record carries its current key.
  const done = new Set(latestSucceeded.keys());
  const succeededFile = new Map([...latestSucceeded].map(([ref, r]) => [ref, r.file]));
  const latestFile = new Map([...latestCurrent].map(([ref, r]) => [ref, r.file]));
  for (const [ref, f] of succeededFile) latestFile.set(ref, f);

  const dynamicPhases = new Set(plan.phases.filter((p) => p.dynamic).map((p) => p.id));
  const recorded = new Map<string, Set<string>>();
  for (const r of records) {
    const ref = `${r.phaseId}/${r.taskId}`;
    if (taskByRef.has(ref) || !dynamicPhases.has(r.phaseId)) continue;
    (recorded.get(r.phaseId) ?? recorded.set(r.phaseId, new Set()).get(r.phaseId)!).add(ref);
  }
  return { records, maxAttempt, latestCurrent, succeededByKey, done, succeededFile, latestFile, recorded };
}
