import { describe, expect, it } from 'vitest';
import { failureCause, latestAttempts } from '../../src/digest/index.js';
import { countTasks, describeCounts, taskStateOf } from '../../src/store/counts.js';
import { at, makeRecord } from './fixtures.js';

describe('latestAttempts', () => {
  it('keeps the highest attempt per phase/task, in first-seen order', () => {
    const records = [
      makeRecord({ phaseId: 'a', taskId: 'x', attempt: 1, status: 'failed' }),
      makeRecord({ phaseId: 'b', taskId: 'x', attempt: 1 }),
      makeRecord({ phaseId: 'a', taskId: 'x', attempt: 3 }),
      makeRecord({ phaseId: 'a', taskId: 'x', attempt: 2, status: 'failed' }),
      makeRecord({ phaseId: 'a', taskId: 'y', attempt: 1 }),
    ];
    const latest = latestAttempts(records);
    expect(latest.map((r) => `${r.phaseId}/${r.taskId}#${r.attempt}`)).toEqual(['a/x#3', 'b/x#1', 'a/y#1']);
  });

  it('breaks an attempt tie by the later end', () => {
    const early = makeRecord({ phaseId: 'a', taskId: 'x', attempt: 2, endedAt: at(1000), output: 'early' });
    const late = makeRecord({ phaseId: 'a', taskId: 'x', attempt: 2, endedAt: at(5000), output: 'late' });
    expect(latestAttempts([late, early])[0]!.output).toBe('late');
    expect(latestAttempts([early, late])[0]!.output).toBe('late');
    expect(latestAttempts([])).toEqual([]);
  });
});

describe('task states, counts and failureCause', () => {
  it('counts every state, a failed gate check apart from succeeded and failed', () => {
    const recs = [
      makeRecord({ phaseId: 'a', taskId: 'x' }),
      makeRecord({ phaseId: 'a', taskId: 'y', status: 'skipped' }),
      makeRecord({ phaseId: 'a', taskId: 'c1', exitCode: 1, check: { passed: false } }),
      // Written before the check field: a succeeded attempt with a non-zero exit is a check's verdict.
      makeRecord({ phaseId: 'a', taskId: 'c2', exitCode: 2 }),
      makeRecord({ phaseId: 'a', taskId: 'c3', exitCode: 0, check: { passed: true } }),
      makeRecord({ phaseId: 'a', taskId: 't', status: 'timed_out', exitCode: null }),
      makeRecord({ phaseId: 'a', taskId: 'z', status: 'cancelled', exitCode: null }),
    ];
    const c = countTasks([...recs.map((r) => taskStateOf(r)), 'pending', 'running']);
    expect(c).toEqual({ total: 9, succeeded: 2, checkFailed: 2, failed: 1, cancelled: 1, skipped: 1, running: 1, pending: 1 });
    expect(describeCounts(c)).toBe('2 succeeded, 2 checks failed, 1 failed, 1 cancelled, 1 skipped, 1 running, 1 pending of 9');
    expect(describeCounts({ total: 12, succeeded: 0, failed: 4, skipped: 0, running: 0, pending: 8 })).toBe('0 succeeded, 4 failed, 8 pending of 12');
    expect(failureCause(recs[2]!)).toBe('check did not pass (exit code 1)');
  });

  it('states causes from the error, exit code, signal and stderr', () => {
    expect(failureCause(makeRecord({ phaseId: 'a', taskId: 'x', status: 'failed', exitCode: 3, stderrTail: 'a\nlast words\n\n' }))).toBe('exit code 3 — stderr: last words');
    expect(failureCause(makeRecord({ phaseId: 'a', taskId: 'x', status: 'cancelled', exitCode: null, signal: 'SIGTERM' }))).toBe('killed by SIGTERM');
    expect(failureCause(makeRecord({ phaseId: 'a', taskId: 'x', status: 'timed_out', exitCode: null }))).toBe('timed out');
    const withError = makeRecord({ phaseId: 'a', taskId: 'x', status: 'failed', stderrTail: 'ENOENT\r\n', error: { type: 'spawn_enoent', message: 'claude not found: ENOENT', retryable: false } });
    expect(failureCause(withError)).toBe('claude not found: ENOENT');
    expect(failureCause(makeRecord({ phaseId: 'a', taskId: 'x', status: 'failed', stderrTail: 'x'.repeat(1000) }), 100).length).toBeLessThanOrEqual(100);
  });
});
