import { describe, expect, it } from 'vitest';
import { countStatuses, failureCause, latestAttempts } from '../../src/digest/index.js';
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

describe('countStatuses and failureCause', () => {
  it('counts every status', () => {
    const c = countStatuses([makeRecord({ phaseId: 'a', taskId: 'x' }), makeRecord({ phaseId: 'a', taskId: 'y', status: 'skipped' })]);
    expect(c).toEqual({ succeeded: 1, failed: 0, timed_out: 0, cancelled: 0, skipped: 1 });
  });

  it('states causes from the error, exit code, signal and stderr', () => {
    expect(failureCause(makeRecord({ phaseId: 'a', taskId: 'x', status: 'failed', exitCode: 3, stderrTail: 'a\nlast words\n\n' }))).toBe('exit code 3 — stderr: last words');
    expect(failureCause(makeRecord({ phaseId: 'a', taskId: 'x', status: 'cancelled', exitCode: null, signal: 'SIGTERM' }))).toBe('killed by SIGTERM');
    expect(failureCause(makeRecord({ phaseId: 'a', taskId: 'x', status: 'timed_out', exitCode: null }))).toBe('timed out');
    const withError = makeRecord({ phaseId: 'a', taskId: 'x', status: 'failed', stderrTail: 'ENOENT\r\n', error: { type: 'spawn_enoent', message: 'claude not found: ENOENT', retryable: false } });
    expect(failureCause(withError)).toBe('spawn_enoent: claude not found: ENOENT');
    expect(failureCause(makeRecord({ phaseId: 'a', taskId: 'x', status: 'failed', stderrTail: 'x'.repeat(1000) }), 100).length).toBeLessThanOrEqual(100);
  });
});
