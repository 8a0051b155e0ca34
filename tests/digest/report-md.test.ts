import { describe, expect, it } from 'vitest';
import { phaseDigests, REPORT_MAX_BYTES, renderReportMarkdown, type ReportInput } from '../../src/digest/index.js';
import { HOSTILE, makePhase, makePlan, makeRecord, makeRun, scenario, type Scenario } from './fixtures.js';

function report(s: Scenario, extra: Partial<ReportInput> = {}): string {
  const digests = phaseDigests({ phases: s.run.plan.phases, goal: s.run.plan.goal, records: s.latest });
  return renderReportMarkdown({ run: s.run, latest: s.latest, digests, attempts: s.attempts, ...extra });
}

describe('renderReportMarkdown', () => {
  it('reports a completed run as completed, with the final output', () => {
    const s = scenario(10, 'completed');
    const md = report(s);
    expect(md).toMatch(/^# repo audit — fanfold report\n/);
    expect(md).toContain('**Goal:** Find bugs and risky code across the repository');
    expect(md).toContain('## Final output — phase `synth`');
    expect(md).toContain('The repository has 10 modules; the riskiest are listed below.');
    expect(md).toContain('## Phase digests');
    expect(md).toContain('| `map` | Map every module |');
  });

  it('never calls a completed-status run with failures "completed" without saying it is partial', () => {
    const s = scenario(30, 'completed');
    const md = report(s);
    expect(md).toMatch(/\*\*Status: recorded as finished, but 2 tasks of 35 did not succeed\*\* — treat the results as partial/);
  });

  for (const status of ['stopped', 'interrupted', 'failed'] as const) {
    it(`says plainly that a ${status} run was cut short, with the reason, and never "completed"`, () => {
      const reason = status === 'stopped' ? 'stop requested by pid 4242' : status === 'failed' ? 'budget of $5 exhausted' : 'run owner died (lease expired)';
      const s = scenario(60, status, { reason });
      const md = report(s);
      expect(md).toContain(`**Status: ${status}`);
      expect(md).toContain('the run was cut short');
      expect(md).toContain(`Reason: ${reason}`);
      expect(md).toMatch(/\d+ of \d+ tasks succeeded; (\d+ [a-z ]+, )*\d+ [a-z ]+ \(results below are partial\)/);
      expect(md).not.toMatch(/complete/i);
    });
  }

  it('says when no reason was recorded', () => {
    const md = report(scenario(5, 'interrupted'));
    expect(md).toContain('Reason: no reason was recorded.');
  });

  it('calls a running run a snapshot', () => {
    const md = report(scenario(5, 'running'));
    expect(md).toContain('**Status: still running** — this is a snapshot');
    expect(md).not.toMatch(/complete/i);
  });

  it('lists failures and skipped tasks with causes, and says what it capped', () => {
    const md = report(scenario(300, 'failed', { reason: 'too many failures' }));
    expect(md).toContain('## Failures (12)');
    expect(md).toMatch(/- `map\/t0025` failed \(attempt 1, exit code 1\): exited with code 1 — stderr: Error: cannot parse src\/mod24\.ts/);
    expect(md).toContain('## Skipped (1)');
    expect(md).toContain('- `reduce/t0004`: depends on map/t0025 which failed');
    expect(md).toContain('## What this report leaves out');
    expect(md).toMatch(/- 8 agent outputs hit the stored-output cap \(kept [\d.]+ KiB of [\d.]+ MiB produced\)/);
  });

  it('stays within its size cap for 1000 agents with many failures and long outputs', () => {
    const s = scenario(1000, 'failed', { reason: 'too many failures', outputLines: 200 });
    // Make the final output huge too.
    const finalOutput = 'final line of synthesis with details\n'.repeat(20_000);
    const md = report(s, { finalOutput });
    expect(Buffer.byteLength(md)).toBeLessThanOrEqual(REPORT_MAX_BYTES);
    expect(md).toContain('## Failures (40)');
    expect(md).toContain('- … and 20 more failures not listed');
    expect(md).toContain('The failure list shows 20 of 40 failures.');
    expect(md).toMatch(/_Shown: [\d.]+ KiB of [\d.]+ KiB\. Full output: `fanfold show r-test synth\/t0001`/);
    expect(md).toContain('## Totals');
    expect(md).toMatch(/- Agents: 1115 agent attempts for 1005 tasks with a result; 111 retries\./);
    expect(md).not.toMatch(/complete/i);
  });

  it('stays within its size cap with many phases and huge digests', () => {
    const phases = Array.from({ length: 120 }, (_, i) => makePhase(`p${i}`, 3, { title: `Phase number ${i}` }));
    const plan = makePlan(phases, 'goal');
    const run = makeRun(plan, 'completed');
    const latest = phases.flatMap((p) => p.taskRefs.map((ref) => makeRecord({ phaseId: p.id, taskId: ref.split('/')[1]!, output: 'x' })));
    const digests = Object.fromEntries(phases.map((p) => [p.id, `${p.id} digest\n`.repeat(500)]));
    const md = renderReportMarkdown({ run, latest, digests });
    expect(Buffer.byteLength(md)).toBeLessThanOrEqual(REPORT_MAX_BYTES);
    expect(md).toContain('_80 more phases not shown in this table._');
    expect(md).toMatch(/phase digests? left out for room/);
    expect(md).toContain('**Status: completed** — all 360 tasks succeeded.');
  });

  it('keeps fences intact around outputs that contain fences, and escapes hostile inline text', () => {
    const s = scenario(30, 'completed', { hostile: true });
    const md = report(s);
    // The synthesis output holds ``` and its quote is fenced with a longer run.
    expect(md).toMatch(/\n````text\n# Synthesis/);
    // Inline causes are escaped: no raw tag or table pipe from an agent.
    const failureLines = md.split('\n').filter((l) => l.startsWith('- `map/'));
    expect(failureLines.length).toBeGreaterThan(0);
    for (const line of failureLines) {
      expect(line).not.toMatch(/(^|[^\\])<script/);
      expect(line).toContain('\\<script\\>');
    }
    expect(md.split('\n')[0]).toContain('\\<script\\>');
    expect(md).toContain(HOSTILE.split('\n')[0]!.slice(0, 10)); // quoted verbatim inside fences
  });

  it('reports totals with unknown cost and tokens plainly', () => {
    const plan = makePlan([makePhase('a', 1)]);
    const run = makeRun(plan, 'completed');
    const latest = [makeRecord({ phaseId: 'a', taskId: 't0001' })];
    const md = renderReportMarkdown({ run, latest, digests: {} });
    expect(md).toContain('- Tokens: unknown (no agent reported usage).');
    expect(md).toContain('- Cost: unknown (no agent reported cost).');
    expect(md).toContain('_No digest (the phase has not finished)._');
  });

  it('is deterministic', () => {
    const s = scenario(50, 'stopped', { reason: 'x' });
    expect(report(s)).toBe(report(structuredClone(s)));
  });
});
