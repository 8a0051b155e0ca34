/**
 * Helpers over agent records shared by digests and reports: picking the latest attempt per task,
 * counting statuses, and stating why an attempt did not succeed.
 */
import type { AgentRecord, AgentStatus } from '../store/types.js';
import { isFailedCheck } from '../store/counts.js';
import { cleanLine, clip } from './text.js';
import { tellingLine } from '../runners/stderr.js';

/** `phaseId/taskId` of a record, the same form as `PlanTask.ref`. */
export function refOf(record: Pick<AgentRecord, 'phaseId' | 'taskId'>): string {
  return `${record.phaseId}/${record.taskId}`;
}

/**
 * The latest attempt of every task (by `phaseId/taskId`): the highest `attempt`, and on a tie the
 * one that ended last. Tasks keep the order in which they first appear in `records`.
 */
export function latestAttempts(records: readonly AgentRecord[]): AgentRecord[] {
  const best = new Map<string, AgentRecord>();
  for (const record of records) {
    const ref = refOf(record);
    const seen = best.get(ref);
    if (
      !seen ||
      record.attempt > seen.attempt ||
      (record.attempt === seen.attempt && record.endedAt > seen.endedAt)
    ) {
      best.set(ref, record);
    }
  }
  return [...best.values()];
}

/** Status words for people, in the order reports list them. */
export const STATUS_LABELS: ReadonlyArray<[AgentStatus, string]> = [
  ['succeeded', 'succeeded'],
  ['failed', 'failed'],
  ['timed_out', 'timed out'],
  ['cancelled', 'cancelled'],
  ['skipped', 'skipped'],
];

/** Error types whose message (with the status beside it) already says what happened. */
const SELF_EXPLAINED = new Set(['exit_code', 'timeout', 'dependency_failed', 'cancelled', 'signal', 'spawn_enoent', 'spawn_eacces']);

/**
 * An error type in words for prose ('permission denied', 'stalled'), or '' when the message says it
 * all already ("exited with code 1", "depends on f/a which failed").
 */
function errorKind(type: string | undefined): string {
  if (!type || SELF_EXPLAINED.has(type)) return '';
  return cleanLine(type).replace(/_/g, ' ');
}

/**
 * One line saying why an attempt did not succeed: the failure's type and message, else what the
 * exit code or signal says, plus the most telling line of stderr (runners/stderr.ts) when it adds something. Clipped to `max`.
 */
export function failureCause(record: AgentRecord, max = 240): string {
  const parts: string[] = [];
  if (isFailedCheck(record)) {
    parts.push(`check did not pass${record.exitCode !== null && record.exitCode !== 0 ? ` (exit code ${record.exitCode})` : ''}`);
  } else if (record.error) {
    const message = cleanLine(record.error.message);
    parts.push(errorKind(record.error.type) ? `${errorKind(record.error.type)}: ${message}` : message);
  } else if (record.status === 'timed_out') {
    parts.push('timed out');
  } else if (record.signal) {
    parts.push(`killed by ${cleanLine(record.signal)}`);
  } else if (record.exitCode !== null && record.exitCode !== 0) {
    parts.push(`exit code ${record.exitCode}`);
  } else if (record.status !== 'succeeded') {
    parts.push(record.status.replace('_', ' '));
  }
  // The error the child printed, not a trailing version banner or stack frame.
  const stderr = cleanLine(tellingLine(record.stderrTail ?? ''));
  if (stderr && !parts.some((p) => p.includes(stderr))) {
    parts.push(`stderr: ${clip(stderr, 160)}`);
  }
  return clip(parts.join(' — '), max);
}
