/**
 * The one place that says where a task stands and counts tasks. Every front — `fanfold status`,
 * `list`, the live view, MCP `workflow_status`, report.md, report.html, the phase digests — shows
 * counts made here and words from {@link describeCounts}, so no two of them can disagree.
 *
 * Two states need a word of explanation:
 * - `check_failed`: a gate's check ran and said "not yet" (its command exited non-zero, or its
 *   critic answered `pass: false`). The scheduler treats it as done — the gate reads its verdict and
 *   orders a fix — but it is not work that succeeded, so it is counted apart from both `succeeded`
 *   and `failed` (an agent that could not do its job: crash, timeout, bad output).
 * - `cancelled`: the run was stopped while the task ran; it runs again on resume.
 */
import type { AgentRecord, Counts } from './types.js';

/** Where one task stands. */
export type TaskState = 'pending' | 'running' | 'succeeded' | 'check_failed' | 'failed' | 'cancelled' | 'skipped';

/** Counts for `total` tasks, none started. */
export function emptyCounts(total = 0): Counts {
  return { total, succeeded: 0, checkFailed: 0, failed: 0, cancelled: 0, skipped: 0, running: 0, pending: total };
}

const BUCKET: Record<TaskState, keyof Omit<Counts, 'total'>> = {
  pending: 'pending',
  running: 'running',
  succeeded: 'succeeded',
  check_failed: 'checkFailed',
  failed: 'failed',
  cancelled: 'cancelled',
  skipped: 'skipped',
};

/** Counts of a set of task states: the one counting function. */
export function countTasks(states: Iterable<TaskState>): Counts {
  const c = emptyCounts();
  for (const s of states) {
    c.total++;
    c[BUCKET[s]] = (c[BUCKET[s]] ?? 0) + 1;
  }
  return c;
}

/** Counts with every bucket present. */
export type FullCounts = Counts & { checkFailed: number; cancelled: number };

/** Every bucket present: counts written before `checkFailed` and `cancelled` existed read as 0. */
export function fullCounts(c: Counts): FullCounts {
  return { ...c, checkFailed: c.checkFailed ?? 0, cancelled: c.cancelled ?? 0 };
}

/** Tasks that have ended, however they ended. */
export function endedCount(c: Counts): number {
  return c.succeeded + (c.checkFailed ?? 0) + c.failed + (c.cancelled ?? 0) + c.skipped;
}

/**
 * Whether a recorded attempt is a gate check that did not pass. Records written before the
 * `check` field existed say so by a non-zero exit code on a succeeded attempt (only a check's
 * verdict is recorded that way).
 */
export function isFailedCheck(rec: Pick<AgentRecord, 'status' | 'exitCode' | 'check'>): boolean {
  if (rec.status !== 'succeeded') return false;
  if (rec.check) return !rec.check.passed;
  return rec.exitCode !== null && rec.exitCode !== 0;
}

/** Where the task of a recorded attempt stands after that attempt. */
export function taskStateOf(rec: Pick<AgentRecord, 'status' | 'exitCode' | 'check'>): TaskState {
  switch (rec.status) {
    case 'succeeded':
      return isFailedCheck(rec) ? 'check_failed' : 'succeeded';
    case 'failed':
    case 'timed_out':
      return 'failed';
    case 'cancelled':
      return 'cancelled';
    case 'skipped':
      return 'skipped';
  }
}

/** Words for each bucket, in the order every front lists them. */
export const COUNT_WORDS: ReadonlyArray<[keyof Omit<Counts, 'total'>, string]> = [
  ['succeeded', 'succeeded'],
  ['checkFailed', 'check failed'],
  ['failed', 'failed'],
  ['cancelled', 'cancelled'],
  ['skipped', 'skipped'],
  ['running', 'running'],
  ['pending', 'pending'],
];

/**
 * Counts in words, e.g. `0 succeeded, 4 failed, 8 pending of 12`. `succeeded` is always there;
 * other buckets only when not empty. `short` uses `ok` for succeeded (the live view).
 */
export function describeCounts(c: Counts, opts: { short?: boolean; of?: boolean } = {}): string {
  const parts: string[] = [];
  for (const [key, word] of COUNT_WORDS) {
    const v = c[key] ?? 0;
    if (key !== 'succeeded' && v === 0) continue;
    const w = key === 'checkFailed' && v !== 1 ? 'checks failed' : opts.short && key === 'succeeded' ? 'ok' : word;
    parts.push(`${v} ${w}`);
  }
  return parts.join(', ') + (opts.of === false ? '' : ` of ${c.total}`);
}
