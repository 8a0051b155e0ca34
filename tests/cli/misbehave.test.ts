/**
 * When agents misbehave, through the built CLI with command agents playing the part (issue 12):
 * a usage-limit storm trips the circuit breaker (run `paused`, no storm, resume redoes only what
 * did not finish, `--wait-until-reset`), a silent agent is killed as `stalled`, checkpoints wait
 * for a person (`awaiting_approval`, `fanfold approve`, `--reject`, a timeout), and one agent is
 * stopped or restarted on its own (`fanfold stop|restart <runId> <phase/task>`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { until } from '../helpers/cli.js';
import { killPids, makeProject, pidsOf, quick, ranCounts, sh, sleeper, type Project } from './project.js';

const made: Project[] = [];
const project = (...a: Parameters<typeof makeProject>) => {
  const p = makeProject(...a);
  made.push(p);
  return p;
};
afterAll(() => {
  for (const p of made) fs.rmSync(p.dir, { recursive: true, force: true });
});

/**
 * An agent that, past its `after`-th start and until `recovered` exists, fails the way a model
 * CLI does when the account's usage limit is reached.
 */
const limited = (after: number, resets = 'resets in 3 seconds') =>
  sh(
    'echo "$FANFOLD_TASK_ID" >> started.log; n=$(wc -l < started.log); ' +
      `if [ ! -f recovered ] && [ "$n" -gt ${after} ]; then sleep 0.3; echo "Error: You have reached your usage limit; ${resets}." >&2; exit 1; fi; ` +
      'sleep 0.2; echo "$FANFOLD_TASK_ID" >> ran.log; echo "done $FANFOLD_TASK_ID"',
  );

describe('circuit breaker for usage limits', () => {
  it('a quota storm: at most maxConcurrent agents fail with the limit, the run is paused, resume finishes without rerunning', async () => {
    const tasks = Array.from({ length: 40 }, (_, i) => ({ id: `t${i + 1}`, prompt: `task ${i + 1}` }));
    const p = project({
      version: 1, name: 'storm', limits: { maxConcurrent: 4, retries: 2, retryBackoff: '100ms', maxAgents: 64 },
      agents: { w: limited(10) },
      phases: [{ id: 'map', agent: 'w', onFailure: 'continue', tasks }],
    });
    const r = p.cli(['run', p.spec, '--json'], { timeoutMs: 120_000 });
    expect(r.status, r.stderr).toBe(1);
    const s = r.json();
    expect(s.status).toBe('paused');
    expect(s.reason).toMatch(/command hit a usage limit/);
    expect(Date.parse(s.resumeAfter)).toBeGreaterThan(Date.now() - 60_000);
    expect(s.pausedRunners).toEqual([expect.objectContaining({ runner: 'command', kind: 'quota' })]);
    const started = (p.read('started.log') ?? '').split('\n').filter(Boolean);
    const quotaFailures = [...p.agents(s.runId).values()].filter((a) => a.error?.type === 'quota');
    // No storm: the agents already running when the limit hit, and nothing after.
    expect(quotaFailures.length).toBeGreaterThanOrEqual(1);
    expect(quotaFailures.length).toBeLessThanOrEqual(4);
    expect(started.length).toBeLessThanOrEqual(10 + 4);
    // A quota failure is not retried and not a work failure.
    expect(p.journal(s.runId).filter((e) => e.type === 'agent.retry_scheduled')).toHaveLength(0);
    expect(s.agents.failed).toBe(0);
    expect(p.journal(s.runId).filter((e) => e.type === 'runner.paused')).toHaveLength(1);
    const finishedBefore = ranCounts(p);
    // status --wait returns at once for a paused run, exit 1.
    const st = p.cli(['status', s.runId, '--wait', '5']);
    expect(st.status).toBe(1);
    expect(st.stdout).toMatch(/paused/);
    expect(st.stdout).toMatch(/--wait-until-reset/);

    // The limit resets: resume --wait-until-reset sleeps until resumeAfter, then finishes the rest.
    fs.writeFileSync(p.file('recovered'), '');
    const t0 = Date.now();
    const again = p.cli(['resume', s.runId, '--wait-until-reset', '--json'], { timeoutMs: 120_000 });
    expect(again.status, again.stderr).toBe(0);
    expect(again.json().status).toBe('completed');
    expect(Date.now()).toBeGreaterThanOrEqual(Math.min(Date.parse(s.resumeAfter), t0));
    const counts = ranCounts(p);
    expect(Object.keys(counts)).toHaveLength(40);
    // Nothing that had finished ran again.
    for (const id of Object.keys(finishedBefore)) expect(counts[id]).toBe(1);
    expect(Object.values(counts).every((c) => c === 1)).toBe(true);
    expect(p.runJson(s.runId).pausedRunners).toBeUndefined();
  }, 180_000);
});

describe('idle watchdog', () => {
  it('a silent agent is killed as stalled and retried per retries; the run fails', () => {
    const p = project({
      version: 1, name: 'stall', limits: { retries: 1, retryBackoff: '100ms', agentTimeout: '5m' },
      agents: { mute: { ...sh('echo "$FANFOLD_ATTEMPT" >> tries.log; exec sleep 60'), idleTimeout: '1s' } },
      phases: [{ id: 'a', agent: 'mute', tasks: [{ id: 'x', prompt: 'x' }] }],
    });
    const t0 = Date.now();
    const r = p.cli(['run', p.spec, '--json'], { timeoutMs: 60_000 });
    expect(r.status).toBe(1);
    expect(Date.now() - t0).toBeLessThan(30_000);
    const recs = [...p.agents(r.json().runId).values()].sort((a, b) => a.attempt - b.attempt);
    expect(recs.map((x) => [x.status, x.error?.type])).toEqual([['failed', 'stalled'], ['failed', 'stalled']]);
    expect(recs[0].error.message).toMatch(/no output and no CPU time for 1s/);
    expect(p.read('tries.log')?.trim().split('\n')).toEqual(['1', '2']);
  }, 90_000);
});

/** Phase `a` quick; `b` after it behind a checkpoint; `c` independent and slowish. */
const gated = (checkpoint: Record<string, unknown>) => ({
  version: 1, name: 'gated', limits: { retries: 0 },
  agents: { q: quick(), slow: sh('sleep 1; echo "$FANFOLD_TASK_ID" >> ran.log; echo slow') },
  phases: [
    { id: 'a', agent: 'q', tasks: [{ id: 'a1', prompt: 'a1' }] },
    { id: 'b', agent: 'q', dependsOn: ['a'], checkpoint, tasks: [{ id: 'b1', prompt: 'b1' }] },
    { id: 'c', agent: 'slow', tasks: [{ id: 'c1', prompt: 'c1' }] },
  ],
});

describe('human checkpoints', () => {
  it('waits with awaiting_approval (status --wait returns early, exit 1, the question printed, report.md asks it too); fanfold approve lets the phase start', async () => {
    const p = project(gated({ message: 'Ship the review to the team?' }));
    const d = p.cli(['run', p.spec, '--detach', '--json']).json();
    const w = p.cli(['status', d.runId, '--wait', '30']);
    expect(w.status).toBe(1);
    expect(w.stdout).toMatch(/awaiting_approval/);
    expect(w.stdout).toMatch(/Ship the review to the team\?/);
    expect(w.stdout).toMatch(new RegExp(`approve ${d.runId}`));
    const reportMd = path.join(p.runDir(d.runId), 'report.md');
    await until(() => fs.existsSync(reportMd) && fs.readFileSync(reportMd, 'utf8').includes('Ship the review to the team?'), 30_000, 'report.md to ask the question');
    expect(fs.readFileSync(reportMd, 'utf8')).toMatch(/awaiting approval/);
    const js = p.cli(['status', d.runId, '--json']).json();
    expect(js.checkpoints).toEqual([expect.objectContaining({ phaseId: 'b', message: 'Ship the review to the team?' })]);
    // Phases that do not depend on it go on (c), the gated one waits (b).
    expect(ranCounts(p).b1).toBeUndefined();
    const ok = p.cli(['approve', d.runId]);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/approved the checkpoint before phase b/);
    const end = p.cli(['status', d.runId, '--wait', '30', '--json']);
    expect(end.status).toBe(0);
    expect(end.json().status).toBe('completed');
    expect(ranCounts(p)).toEqual({ a1: 1, b1: 1, c1: 1 });
    const j = p.journal(d.runId);
    expect(j.find((e) => e.type === 'checkpoint.asked')).toMatchObject({ phaseId: 'b', message: 'Ship the review to the team?' });
    expect(j.find((e) => e.type === 'checkpoint.answered')).toMatchObject({ phaseId: 'b', answer: 'approve', by: expect.stringMatching(/^fanfold approve/) });
    // Nothing left waiting.
    expect(p.cli(['approve', d.runId]).status).toBe(2);
  }, 90_000);

  it('a rejection ends the run stopped with the reason; an unanswered checkpoint with onTimeout: continue goes on', () => {
    const p = project(gated({ message: 'Go on?' }));
    const d = p.cli(['run', p.spec, '--detach', '--json']).json();
    expect(p.cli(['status', d.runId, '--wait', '30']).status).toBe(1);
    const no = p.cli(['approve', d.runId, 'b', '--reject']);
    expect(no.status, no.stderr).toBe(0);
    const end = p.cli(['status', d.runId, '--wait', '30', '--json']).json();
    expect(end.status).toBe('stopped');
    expect(end.reason).toMatch(/checkpoint before phase b was rejected by fanfold approve/);
    expect(ranCounts(p).b1).toBeUndefined();

    const q = project(gated({ message: 'Go on?', timeout: '1s', onTimeout: 'continue' }));
    const r = q.cli(['run', q.spec, '--json'], { timeoutMs: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(q.journal(r.json().runId).find((e) => e.type === 'checkpoint.answered')).toMatchObject({ answer: 'timeout_continue' });
  }, 90_000);
});

describe('per-agent control', () => {
  it('fanfold stop <runId> <phase/task> stops one agent: cancelled, dependents skipped, the rest goes on, the run ends stopped naming it', async () => {
    const p = project({
      version: 1, name: 'one', limits: { maxConcurrent: 2, retries: 0 },
      agents: { slow: sleeper(60), q: sh('sleep 2; echo "$FANFOLD_TASK_ID" >> ran.log; echo ok') },
      phases: [
        { id: 'a', tasks: [{ id: 's1', agent: 'slow', prompt: 's1' }, { id: 'q1', agent: 'q', prompt: 'q1' }] },
        { id: 'b', dependsOn: ['a'], agent: 'q', tasks: [{ id: 'after', prompt: 'after', dependsOn: ['a/s1'] }] },
      ],
    });
    const d = p.cli(['run', p.spec, '--detach', '--json']).json();
    const [pid] = await pidsOf(p, ['s1.1.pid']);
    try {
      const s = p.cli(['stop', d.runId, 'a/s1']);
      expect(s.status, s.stderr).toBe(0);
      expect(s.stdout).toMatch(/stop a\/s1 .*recorded cancelled/);
      const end = p.cli(['status', d.runId, '--wait', '30', '--json']).json();
      expect(end.status).toBe('stopped');
      expect(end.reason).toMatch(/agent stopped: a\/s1 \(by fanfold stop/);
      const recs = p.agents(d.runId);
      expect([...recs.values()].find((r) => r.taskId === 's1')).toMatchObject({ status: 'cancelled', error: { type: 'cancelled', message: expect.stringMatching(/^stopped by fanfold stop/) } });
      expect([...recs.values()].find((r) => r.taskId === 'after')?.status).toBe('skipped');
      expect(ranCounts(p).q1).toBe(1);
    } finally {
      killPids([pid!]);
    }
  }, 90_000);

  it('fanfold restart: a running agent runs again at once; on an ended run it reruns the agent and what ran downstream of it', async () => {
    const p = project({
      version: 1, name: 'again', limits: { retries: 0 },
      agents: { slow: sleeper(60), q: quick() },
      phases: [
        { id: 'a', tasks: [{ id: 's1', agent: 'slow', prompt: 's1' }, { id: 'q1', agent: 'q', prompt: 'q1' }] },
        { id: 'b', dependsOn: ['a'], agent: 'q', tasks: [{ id: 'after', prompt: 'after', dependsOn: ['a/s1'] }] },
      ],
    });
    const d = p.cli(['run', p.spec, '--detach', '--json']).json();
    const [pid] = await pidsOf(p, ['s1.1.pid']);
    try {
      fs.writeFileSync(p.file('fast.flag'), '');
      const r = p.cli(['restart', d.runId, 'a/s1']);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/runs again at once/);
      const end = p.cli(['status', d.runId, '--wait', '30', '--json']).json();
      expect(end.status).toBe('completed');
      const s1 = [...p.agents(d.runId).values()].filter((x) => x.taskId === 's1').sort((x, y) => x.attempt - y.attempt);
      expect(s1.map((x) => x.status)).toEqual(['cancelled', 'succeeded']);
      expect(s1[0].error.message).toMatch(/^restarted by fanfold restart/);
    } finally {
      killPids([pid!]);
    }
    const before = ranCounts(p);
    const again = p.cli(['restart', d.runId, 'a/s1', '--json'], { timeoutMs: 60_000 });
    expect(again.status, again.stderr).toBe(0);
    expect(again.json().status).toBe('completed');
    const after = ranCounts(p);
    expect(after.s1).toBe(before.s1! + 1);
    expect(after.after).toBe(before.after! + 1);
    expect(after.q1).toBe(before.q1);
    expect(p.journal(d.runId).some((e) => e.type === 'agent.restart_requested' && e.effect === 'rerun')).toBe(true);
  }, 90_000);

  it('fanfold restart of an agent that already ended in a live run: the run is stopped and resumed with it rerun; status --wait without a value waits to the end', async () => {
    const p = project({
      version: 1, name: 'again-live', limits: { retries: 0 },
      agents: { slow: sleeper(60), q: quick() },
      phases: [{ id: 'a', tasks: [{ id: 's1', agent: 'slow', prompt: 's1' }, { id: 'q1', agent: 'q', prompt: 'q1' }] }],
    });
    const d = p.cli(['run', p.spec, '--detach', '--json']).json();
    const [pid] = await pidsOf(p, ['s1.1.pid']);
    try {
      await until(() => p.journal(d.runId).some((e) => e.type === 'agent.finished' && e.ref === 'a/q1'), 60_000, 'a/q1 to finish');
      fs.writeFileSync(p.file('fast.flag'), '');
      const r = p.cli(['restart', d.runId, 'a/q1', '--detach', '--json'], { timeoutMs: 90_000 });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/has already ended in live run/);
      const end = p.cli(['status', d.runId, '--wait', '--json'], { timeoutMs: 90_000 });
      expect(end.status, end.stderr).toBe(0);
      expect(end.json().status).toBe('completed');
      expect(ranCounts(p).q1).toBe(2);
      const s1 = [...p.agents(d.runId).values()].filter((x) => x.taskId === 's1').sort((x, y) => x.attempt - y.attempt);
      expect(s1.map((x) => x.status)).toEqual(['cancelled', 'succeeded']);
    } finally {
      killPids([pid!]);
    }
  }, 120_000);
});
