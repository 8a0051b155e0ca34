/**
 * Failures through the built CLI with real children: exit codes and stderr tails, retries with
 * back-off, skipped dependents with their cause, `onFailure: stop` against `continue`, a missing
 * executable, agent timeouts that take the whole process group down, output caps, the run timeout
 * — and a run with any failure never reported `completed`.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { alive, until } from '../helpers/cli.js';
import { AGENT_FIELDS, killPids, latest, makeProject, pidsOf, quick, sh, sleeper, type Project } from '../cli/project.js';

describe('failures with onFailure: continue, retries and timeouts', () => {
  let p: Project;
  let res: ReturnType<Project['cli']>;
  let status: any;
  let files: Map<string, any>;
  let journal: any[];

  beforeAll(() => {
    p = makeProject({
      version: 1,
      name: 'failures',
      limits: { maxConcurrent: 4, retries: 1, retryBackoff: '100ms', agentTimeout: '1s', maxOutputBytes: 1024 },
      agents: {
        bad: sh('echo "about to fail" >&2; echo "last words: disk on fire" >&2; exit 3'),
        flaky: sh('if [ -f flaky.seen ]; then echo recovered; else touch flaky.seen; echo transient >&2; exit 1; fi'),
        ok: quick(),
        missing: { runner: 'command', command: ['fanfold-no-such-binary-xyz', '--flag'] },
        // A child that leaves a grandchild behind and waits for it: the timeout must take both.
        hang: sh('sleep 30 & echo $! > "hang.$FANFOLD_ATTEMPT.gc.pid"; echo $$ > "hang.$FANFOLD_ATTEMPT.pid"; wait'),
        big: sh('head -c 5000 /dev/zero | tr "\\0" x'),
      },
      phases: [
        {
          id: 'p',
          onFailure: 'continue',
          tasks: [
            { id: 'bad', agent: 'bad', prompt: 'fail' },
            { id: 'flaky', agent: 'flaky', prompt: 'fail once' },
            { id: 'ok', agent: 'ok', prompt: 'fine' },
            { id: 'missing', agent: 'missing', prompt: 'no binary' },
            { id: 'hang', agent: 'hang', prompt: 'hang' },
            { id: 'big', agent: 'big', prompt: 'big output' },
          ],
        },
        {
          id: 'down',
          onFailure: 'continue',
          agent: 'ok',
          tasks: [
            { id: 'd1', prompt: 'after bad', dependsOn: ['p/bad'] },
            { id: 'd2', prompt: 'after ok', dependsOn: ['p/ok'] },
            { id: 'd3', prompt: 'after d1', dependsOn: ['d1'] },
            { id: 'd4', prompt: 'after hang', dependsOn: ['p/hang'] },
          ],
        },
      ],
    });
    res = p.cli(['run', p.spec, '--json']);
    status = JSON.parse(res.stdout);
    files = p.agents(status.runId);
    journal = p.journal(status.runId);
  });

  it('ends failed, exit 1, never completed, with counts and a reason', () => {
    expect(res.status, res.stderr).toBe(1);
    expect(status.status).toBe('failed');
    expect(status.reason).toMatch(/3 task\(s\) failed, 3 skipped/);
    expect(status.agents).toEqual({ total: 10, succeeded: 4, checkFailed: 0, failed: 3, cancelled: 0, skipped: 3, running: 0, pending: 0 });
    expect(status.phases.map((x: any) => [x.id, x.status])).toEqual([['p', 'failed'], ['down', 'failed']]);
    expect(p.journal(status.runId).at(-1)).toMatchObject({ type: 'run.finished', status: 'failed' });
    expect(p.runJson(status.runId).status).toBe('failed');
  });

  it('records a non-zero exit with its code and the stderr tail, and retries it once after the back-off', () => {
    for (const f of ['p.bad.1.json', 'p.bad.2.json']) {
      const r = files.get(f);
      expect(r, f).toBeDefined();
      for (const k of AGENT_FIELDS) expect(r, `${f}: ${k}`).toHaveProperty(k);
      expect(r.status).toBe('failed');
      expect(r.exitCode).toBe(3);
      expect(r.signal).toBeNull();
      expect(r.stderrTail).toContain('about to fail');
      expect(r.stderrTail).toContain('last words: disk on fire');
      expect(r.error.message).toContain('exited with code 3');
      expect(r.error.message).toContain('disk on fire');
    }
    expect(files.has('p.bad.3.json')).toBe(false);
    const retry = journal.filter((e) => e.type === 'agent.retry_scheduled' && e.ref === 'p/bad');
    expect(retry).toHaveLength(1);
    expect(retry[0]).toMatchObject({ attempt: 2, delayMs: 100 });
    expect(retry[0].cause).toContain('exited with code 3');
    const end1 = Date.parse(journal.find((e) => e.type === 'agent.finished' && e.ref === 'p/bad' && e.attempt === 1).t);
    const start2 = Date.parse(journal.find((e) => e.type === 'agent.started' && e.ref === 'p/bad' && e.attempt === 2).t);
    expect(start2 - end1).toBeGreaterThanOrEqual(100);
    // The retry event comes between the two attempts.
    const iRetry = journal.indexOf(retry[0]);
    expect(journal.findIndex((e) => e.type === 'agent.finished' && e.ref === 'p/bad' && e.attempt === 1)).toBeLessThan(iRetry);
    expect(journal.findIndex((e) => e.type === 'agent.started' && e.ref === 'p/bad' && e.attempt === 2)).toBeGreaterThan(iRetry);
  });

  it('a transient failure that succeeds on retry counts as succeeded', () => {
    expect(files.get('p.flaky.1.json')).toMatchObject({ status: 'failed', exitCode: 1 });
    expect(files.get('p.flaky.1.json').stderrTail).toContain('transient');
    expect(files.get('p.flaky.2.json')).toMatchObject({ status: 'succeeded', exitCode: 0, output: 'recovered\n' });
    expect(status.phases[0].succeeded).toBe(3); // flaky, ok, big
  });

  it('a missing executable fails once with a clear cause: no retry storm', () => {
    const recs = [...files.values()].filter((r) => r.taskId === 'missing');
    expect(recs).toHaveLength(1);
    const r = recs[0];
    expect(r.status).toBe('failed');
    expect(r.error.retryable).toBe(false);
    expect(r.error.message).toContain('fanfold-no-such-binary-xyz');
    expect(r.error.message).toMatch(/not found|ENOENT|no such file/i);
    expect(journal.filter((e) => e.ref === 'p/missing' && e.type === 'agent.retry_scheduled')).toHaveLength(0);
  });

  it('agentTimeout kills a hung agent and its grandchild: timed_out, no orphan', async () => {
    const recs = [...files.values()].filter((r) => r.taskId === 'hang').sort((a, b) => a.attempt - b.attempt);
    expect(recs.map((r) => r.status)).toEqual(['timed_out', 'timed_out']); // a timeout is retried once
    for (const r of recs) {
      expect(r.error.type).toBe('timeout');
      expect(r.error.message).toMatch(/timed out after 1s/);
      expect(r.durationMs).toBeGreaterThanOrEqual(1000);
      expect(r.durationMs).toBeLessThan(5000);
    }
    const pids = await pidsOf(p, ['hang.1.pid', 'hang.1.gc.pid', 'hang.2.pid', 'hang.2.gc.pid'], 1000);
    try {
      await until(() => pids.every((pid) => !alive(pid)), 3000, 'the hung agents and their grandchildren to be gone');
    } finally {
      killPids(pids);
    }
  });

  it('an output over maxOutputBytes is cut at the cap, marked truncated, every byte counted', () => {
    const r = latest(files, 'p/big');
    expect(r.status).toBe('succeeded');
    expect(r.truncated).toBe(true);
    expect(r.outputBytes).toBe(5000);
    expect(Buffer.byteLength(r.output)).toBe(1024);
    expect(r.output).toBe('x'.repeat(1024));
  });

  it('dependents of a failed task are skipped with the cause, transitively; the rest goes on (continue)', () => {
    const d1 = latest(files, 'down/d1');
    expect(d1.status).toBe('skipped');
    expect(d1.error.type).toBe('dependency_failed');
    expect(d1.error.message).toContain('p/bad');
    expect(d1.error.message).toContain('exited with code 3');
    const d3 = latest(files, 'down/d3');
    expect(d3.status).toBe('skipped');
    expect(d3.error.message).toContain('p/bad');
    // d4 waited for a task that timed out — the timed-out task counts as failed, so d4 is skipped.
    expect(latest(files, 'down/d4')).toMatchObject({ status: 'skipped' });
    expect(latest(files, 'down/d4').error.message).toMatch(/p\/hang.*timed out/);
    expect(latest(files, 'down/d2')).toMatchObject({ status: 'succeeded', output: 'done d2\n' });
    // Skipped tasks never started a process.
    expect(journal.filter((e) => e.type === 'agent.started' && ['down/d1', 'down/d3', 'down/d4'].includes(e.ref))).toHaveLength(0);
    expect(journal.filter((e) => e.type === 'agent.skipped').map((e) => e.ref).sort()).toEqual(['down/d1', 'down/d3', 'down/d4']);
  });
});

describe('onFailure: stop', () => {
  it('dispatches nothing new after a failure, lets the running agent finish, ends failed with exit 1', () => {
    const p = makeProject({
      version: 1,
      name: 'halt',
      limits: { maxConcurrent: 2, retries: 0 },
      agents: { bad: sh('sleep 0.1; echo broken >&2; exit 1'), slow: sh('sleep 0.8; echo slow done'), ok: quick() },
      phases: [
        {
          id: 'a',
          tasks: [
            { id: 'bad', agent: 'bad', prompt: 'x' },
            { id: 'slow', agent: 'slow', prompt: 'x' },
            ...[1, 2, 3, 4].map((i) => ({ id: `q${i}`, agent: 'ok', prompt: `q${i}` })),
          ],
        },
        { id: 'b', dependsOn: ['a'], agent: 'ok', tasks: [{ id: 'b1', prompt: 'after a' }] },
      ],
    });
    const r = p.cli(['run', p.spec, '--json']);
    expect(r.status, r.stderr).toBe(1);
    const s = r.json();
    expect(s.status).toBe('failed');
    expect(s.reason).toContain('stopped dispatching after a/bad failed');
    const j = p.journal(s.runId);
    expect(j.filter((e) => e.type === 'agent.started').map((e) => e.ref).sort()).toEqual(['a/bad', 'a/slow']);
    const files = p.agents(s.runId);
    expect(latest(files, 'a/slow')).toMatchObject({ status: 'succeeded', output: 'slow done\n' });
    expect(latest(files, 'a/bad')).toMatchObject({ status: 'failed', exitCode: 1 });
    for (const q of ['a/q1', 'a/q2', 'a/q3', 'a/q4']) expect(latest(files, q), q).toBeUndefined();
    expect(p.read('ran.log')).toBeUndefined(); // no `ok` agent ever ran
    expect(s.phases[0]).toMatchObject({ id: 'a', status: 'failed', succeeded: 1, failed: 1, pending: 4, running: 0 });
    expect(s.agents).toMatchObject({ total: 7, succeeded: 1, failed: 1 });
    expect(s.agents.succeeded).toBeLessThan(s.agents.total);
  });
});

describe('the run timeout', () => {
  it('ends a run of slow agents `failed` with the reason, and kills them — SIGKILL for one that ignores SIGTERM', async () => {
    const p = makeProject({
      version: 1,
      name: 'run-timeout',
      limits: { maxConcurrent: 2, retries: 0, runTimeout: '2s' },
      agents: {
        slow: sleeper(30),
        // Ignores SIGTERM (and so does the sleep it leaves behind): only the SIGKILL after the
        // grace period takes the group down.
        stubborn: sh('trap "" TERM; echo $$ > "$FANFOLD_TASK_ID.$FANFOLD_ATTEMPT.pid"; sleep 30 & echo $! > "$FANFOLD_TASK_ID.gc.pid"; wait; wait'),
      },
      phases: [{ id: 'a', tasks: [{ id: 's1', agent: 'stubborn', prompt: '1' }, { id: 's2', agent: 'slow', prompt: '2' }, { id: 's3', agent: 'slow', prompt: '3' }] }],
    });
    const t0 = Date.now();
    const r = p.cli(['run', p.spec, '--json']);
    const took = Date.now() - t0;
    const pids = await pidsOf(p, ['s1.1.pid', 's1.gc.pid', 's2.1.pid'], 1000);
    try {
      expect(r.status, r.stderr).toBe(1);
      const s = r.json();
      expect(s.status).toBe('failed');
      expect(s.reason).toMatch(/run timeout/);
      expect(s.reason).toContain('2s');
      expect(took).toBeGreaterThanOrEqual(2000);
      expect(took).toBeLessThan(15_000);
      const files = p.agents(s.runId);
      expect(latest(files, 'a/s1')).toMatchObject({ status: 'cancelled', signal: 'SIGKILL' });
      expect(latest(files, 'a/s2')).toMatchObject({ status: 'cancelled', signal: 'SIGTERM' });
      // The stubborn one was waited for: its record ends after the 2 s grace between TERM and KILL.
      expect(latest(files, 'a/s1').durationMs).toBeGreaterThanOrEqual(2000 + 1500);
      expect(latest(files, 'a/s3')).toBeUndefined();
      expect(s.agents).toMatchObject({ total: 3, succeeded: 0, running: 0 });
      expect(pids.filter(alive)).toEqual([]);
    } finally {
      killPids(pids);
    }
  });
});
