/**
 * Controlling runs from outside, through the built CLI: detached runs, `status --wait`, `stop`
 * from another process, Ctrl-C to a foreground run, `resume` (refused while the owner lives;
 * after a stop it runs only what had not succeeded), `interrupted` after the owner is SIGKILLed,
 * `list`, `show`, bad run ids, and where the store is (`--store`, `FANFOLD_STORE`, the default).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { alive, fanfoldAsync, readAgentFiles, readJournal, until } from '../helpers/cli.js';
import { killPids, latest, makeProject, pidsOf, quick, ranCounts, sh, sleeper } from './project.js';

/** Two quick tasks first, then three that sleep 30 s unless fast.flag exists. */
const stoppable = (name: string) => ({
  version: 1,
  name,
  limits: { maxConcurrent: 2, retries: 0 },
  agents: { quick: quick(), slow: sleeper(30) },
  phases: [
    {
      id: 'a',
      tasks: [
        { id: 'q1', agent: 'quick', prompt: 'q1' },
        { id: 'q2', agent: 'quick', prompt: 'q2' },
        { id: 's1', agent: 'slow', prompt: 's1' },
        { id: 's2', agent: 'slow', prompt: 's2' },
        { id: 's3', agent: 'slow', prompt: 's3' },
      ],
    },
  ],
});

const noStoreEnv = { FANFOLD_STORE: undefined };

describe('detached runs, status --wait, list, show, and the store location', () => {
  it('run --detach returns {runId, status} at once; status --wait ends with the run; list and show read it', () => {
    const p = makeProject({
      version: 1,
      name: 'detached',
      limits: { maxConcurrent: 2, retries: 1, retryBackoff: '100ms' },
      agents: {
        slowish: sh('sleep 1; echo "slowish $FANFOLD_TASK_ID"'),
        flaky: sh('if [ -f flaky.seen ]; then echo "second time lucky"; else touch flaky.seen; echo "first try fails" >&2; exit 7; fi'),
        ok: quick(),
      },
      phases: [
        { id: 'a', tasks: [{ id: 'a1', agent: 'slowish', prompt: 'a1' }, { id: 'a2', agent: 'flaky', prompt: 'a2' }] },
        { id: 'b', dependsOn: ['a'], agent: 'ok', tasks: [{ id: 'b1', prompt: 'b1' }] },
      ],
    });
    // The store comes from FANFOLD_STORE here (no --store).
    const env = { FANFOLD_STORE: p.store };
    const started = p.cli(['run', p.spec, '--detach', '--json'], { env, noStore: true });
    expect(started.status, started.stderr).toBe(0);
    const d = started.json();
    expect(d).toMatchObject({ runId: expect.stringMatching(/^[A-Za-z0-9_-]+$/), status: 'running' });
    // The run goes on without the command that started it.
    expect(readJournal(p.runDir(d.runId)).some((e) => e.type === 'run.finished')).toBe(false);
    const lease = JSON.parse(fs.readFileSync(path.join(p.runDir(d.runId), 'lease.json'), 'utf8'));
    expect(lease.pid).not.toBe(started.pid);

    const waited = p.cli(['status', d.runId, '--wait', '30', '--json'], { env, noStore: true });
    expect(waited.status, waited.stderr).toBe(0);
    const s = waited.json();
    expect(s.status).toBe('completed');
    expect(s.agents).toEqual({ total: 3, succeeded: 3, checkFailed: 0, failed: 0, cancelled: 0, skipped: 0, running: 0, pending: 0 });
    expect(readJournal(p.runDir(d.runId)).at(-1)).toMatchObject({ type: 'run.finished', status: 'completed' });
    expect(alive(lease.pid)).toBe(false);

    // list: FANFOLD_STORE is honoured, and --store wins over it.
    const listed = p.cli(['list', '--json'], { env, noStore: true });
    expect(listed.status).toBe(0);
    expect(listed.json().runs.map((r: any) => [r.runId, r.status])).toEqual([[d.runId, 'completed']]);
    const elsewhere = p.cli(['list', '--json', '--store', path.join(p.dir, 'other')], { env, noStore: true });
    expect(elsewhere.status).toBe(0);
    expect(elsewhere.json().runs).toEqual([]);

    // show: the latest attempt by default, an older one on request, in text and JSON.
    const shown = p.cli(['show', d.runId, 'a/a2', '--json'], { env, noStore: true });
    expect(shown.status, shown.stderr).toBe(0);
    expect(shown.json()).toMatchObject({ phaseId: 'a', taskId: 'a2', attempt: 2, status: 'succeeded', output: 'second time lucky\n' });
    const first = p.cli(['show', d.runId, 'a/a2', '--attempt', '1'], { env, noStore: true });
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/a\/a2 attempt 1: failed/);
    expect(first.stdout).toContain('exit: 7');
    expect(first.stdout).toContain('first try fails');
    const missing = p.cli(['show', d.runId, 'a/nope'], { env, noStore: true });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain(`run '${d.runId}' has no task 'a/nope'; its tasks: a/a1, a/a2, b/b1`);
    expect(missing.stdout).toBe('');
  });

  it('unknown and malformed run ids are exit 2 with a clear message, for every command', () => {
    const p = makeProject({});
    fs.mkdirSync(p.store);
    const unknown = p.cli(['status', 'nosuchrun42']);
    expect(unknown.status, unknown.stderr).toBe(2);
    expect(unknown.stderr).toMatch(/unknown run 'nosuchrun42'/);
    const stop = p.cli(['stop', 'nosuchrun42']);
    expect(stop.status, stop.stderr).toBe(2);
    expect(stop.stderr).toMatch(/unknown run 'nosuchrun42'/);
    const show = p.cli(['show', '../x', 'a/b']);
    expect(show.status).toBe(2);
    expect(show.stderr).toMatch(/invalid run id '\.\.\/x'/);
    const resume = p.cli(['resume', '../x']);
    expect(resume.status).toBe(2);
    expect(resume.stderr).toMatch(/invalid run id '\.\.\/x'/);
    for (const r of [unknown, stop, show, resume]) expect(r.stderr).not.toMatch(/\n\s+at /);
    // Nothing was created outside the store (no `x` next to it).
    expect(fs.readdirSync(p.dir).sort()).toEqual(['spec.json', 'store']);
  });
});

describe('stop, resume', () => {
  it('stop from another process stops a detached run; resume refuses while it lives and finishes it after', async () => {
    const p = makeProject(stoppable('stop-me'));
    const started = p.cli(['run', p.spec, '--detach', '--json']);
    expect(started.status, started.stderr).toBe(0);
    const { runId } = started.json();
    const pids = await pidsOf(p, ['s1.1.pid', 's2.1.pid']);
    try {
      // --wait gives up after its time while the run goes on: status running, exit 0.
      const t1 = Date.now();
      const still = p.cli(['status', runId, '--wait', '0.5', '--json']);
      expect(still.status, still.stderr).toBe(0);
      expect(still.json()).toMatchObject({ status: 'running', agents: { running: 2 } });
      expect(still.json().owner.pid).toBeGreaterThan(0);
      expect(Date.now() - t1).toBeGreaterThanOrEqual(500);

      const refused = p.cli(['resume', runId]);
      expect(refused.status).toBe(2);
      expect(refused.stderr).toContain(`run '${runId}' is running`);
      expect(refused.stderr).toMatch(new RegExp(`stop it first with: (npx fanfold|fanfold|node \\S+main\\.js) stop ${runId}( |$)`, "m"));

      const t0 = Date.now();
      const stopped = p.cli(['stop', runId, '--json']);
      expect(stopped.status, stopped.stderr).toBe(0);
      expect(Date.now() - t0).toBeLessThan(15_000);
      const s = stopped.json();
      expect(s.status).toBe('stopped');
      // The reason names who asked (the stop command's pid), not the signal that woke the owner.
      expect(s.reason).toMatch(/^stopped by fanfold stop \(pid \d+ on /);
      // The two running when stopped are cancelled (they run again on resume); s3 never started.
      expect(s.agents).toMatchObject({ total: 5, succeeded: 2, cancelled: 2, running: 0, pending: 1 });
      await until(() => pids.every((pid) => !alive(pid)), 3000, 'the stopped agents to be gone');
      const files = p.agents(runId);
      expect(latest(files, 'a/s1').status).toBe('cancelled');
      expect(latest(files, 'a/s2').status).toBe('cancelled');
      expect(latest(files, 'a/s1').error.type).toBe('cancelled');
      expect(latest(files, 'a/s3')).toBeUndefined();
      const j = p.journal(runId);
      expect(j.some((e) => e.type === 'run.stop_requested')).toBe(true);
      expect(j.at(-1)).toMatchObject({ type: 'run.finished', status: 'stopped' });
      const later = p.cli(['status', runId, '--json']);
      expect(later.status).toBe(1);
      expect(later.json().status).toBe('stopped');
      // Every front shows the same cancelled bucket (issue 13 item 3).
      const words = '2 succeeded, 2 cancelled, 1 pending of 5';
      expect(p.cli(['status', runId]).stdout).toContain(`agents: ${words}`);
      expect(fs.readFileSync(path.join(p.runDir(runId), 'report.md'), 'utf8')).toContain('| 5 | 2 succeeded, 2 cancelled, 1 pending |');
      // A task of the plan that never ran has no record yet: show says so.
      const notRun = p.cli(['show', runId, 'a/s3']);
      expect(notRun.status).toBe(2);
      expect(notRun.stderr).toContain(`run '${runId}' has no record for a/s3 yet`);
    } finally {
      killPids(pids);
    }

    // Resume after the stop: only what had not succeeded runs again.
    fs.writeFileSync(p.file('fast.flag'), '');
    const resumed = p.cli(['resume', runId, '--json']);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.json().status).toBe('completed');
    expect(ranCounts(p)).toEqual({ q1: 1, q2: 1, s1: 2, s2: 2, s3: 1 });
    const j = p.journal(runId);
    const at = j.findIndex((e) => e.type === 'run.resumed');
    expect(j[at]).toMatchObject({ reused: 2, toRun: 3 });
    const after = j.slice(at);
    expect(after.filter((e) => e.type === 'agent.reused').flatMap((e) => e.tasks).map((e: { ref: string }) => e.ref).sort()).toEqual(['a/q1', 'a/q2']);
    expect(after.filter((e) => e.type === 'agent.started').map((e) => e.ref).sort()).toEqual(['a/s1', 'a/s2', 'a/s3']);
    const files = p.agents(runId);
    expect(latest(files, 'a/s1')).toMatchObject({ attempt: 2, status: 'succeeded', output: 'fast s1\n' });
    expect(latest(files, 'a/q1')).toMatchObject({ attempt: 1, status: 'succeeded' });
    expect(p.runJson(runId).resumes).toBe(1);
  });

  it('Ctrl-C (SIGINT) to a foreground run stops it the same way; the default store is ./.agent_workflows', async () => {
    const p = makeProject(stoppable('ctrl-c'));
    const { child, done } = fanfoldAsync(['run', 'spec.json'], { cwd: p.dir, env: noStoreEnv });
    const pids = await pidsOf(p, ['s1.1.pid', 's2.1.pid']);
    let res: Awaited<typeof done>;
    try {
      child.kill('SIGINT');
      res = await done;
      await until(() => pids.every((pid) => !alive(pid)), 3000, 'the interrupted agents to be gone');
    } finally {
      killPids(pids);
    }
    expect(res.code, res.stderr).toBe(1);
    expect(res.stderr).toMatch(/stopping run/);
    const store = path.join(p.dir, '.agent_workflows');
    const [runId] = fs.readdirSync(store);
    const files = readAgentFiles(path.join(store, runId!));
    expect(latest(files, 'a/s1').status).toBe('cancelled');
    expect(latest(files, 'a/s2').status).toBe('cancelled');
    expect(latest(files, 'a/q1').status).toBe('succeeded');
    // `status` with no id reads the newest run of the default store.
    const st = p.cli(['status', '--json'], { noStore: true, env: noStoreEnv });
    expect(st.status).toBe(1);
    expect(st.json()).toMatchObject({ runId, status: 'stopped' });
    expect(st.json().reason).toMatch(/stopped by/);
  });

  it('a detached run whose owner is SIGKILLed is `interrupted`; of three racing resumes one finishes it', async () => {
    const p = makeProject(stoppable('killed'));
    const started = p.cli(['run', p.spec, '--detach', '--json']);
    expect(started.status, started.stderr).toBe(0);
    const { runId } = started.json();
    const pids = await pidsOf(p, ['s1.1.pid', 's2.1.pid']);
    try {
      const lease = JSON.parse(fs.readFileSync(path.join(p.runDir(runId), 'lease.json'), 'utf8'));
      process.kill(lease.pid, 'SIGKILL');
      await until(() => !alive(lease.pid), 5000, 'owner death');
      const st = p.cli(['status', runId, '--json']);
      expect(st.status, st.stdout + st.stderr).toBe(1);
      const s = st.json();
      expect(s.status).toBe('interrupted');
      expect(s.reason).toContain(`fanfold resume ${runId}`);
      // What was running counts as pending again: it runs again on resume.
      expect(s.agents.running).toBe(0);
      expect(s.agents.succeeded + s.agents.pending).toBe(5);
      expect(s.owner).toBeUndefined();
    } finally {
      killPids(pids); // a SIGKILLed owner cannot take its agents down with it
    }
    // Three sessions resume it at once: exactly one becomes the owner, the others are refused,
    // and every unfinished task runs exactly once more.
    fs.writeFileSync(p.file('fast.flag'), '');
    const before = ranCounts(p);
    const racers = [1, 2, 3].map(() => p.cliAsync(['resume', runId, '--json']).done);
    const results = await Promise.all(racers);
    const winners = results.filter((r) => r.code === 0);
    expect(winners, results.map((r) => `${r.code}: ${r.stderr.slice(-300)}`).join('\n')).toHaveLength(1);
    expect(JSON.parse(winners[0]!.stdout).status).toBe('completed');
    for (const r of results.filter((x) => x.code !== 0)) {
      expect(r.code).toBe(2);
      // Refused by resume's own check, or — when two pass it together — by the lease itself.
      // Refused by resume's own check, by the lease itself, or — a racer that started late — because it is done.
      // With --json the refusal is the JSON error on stdout, its code the exit code.
      const error = JSON.parse(r.stdout).error;
      expect(error.code).toBe(2);
      expect(error.message).toMatch(new RegExp(`run '${runId}' is running \\(owner pid \\d+|run \\S+${runId} is owned by pid \\d+|run '${runId}' already completed`));
    }
    const after = ranCounts(p);
    const ranAgain = Object.fromEntries(Object.keys(after).map((k) => [k, after[k]! - (before[k] ?? 0)]));
    expect(ranAgain).toEqual({ q1: 0, q2: 0, s1: 1, s2: 1, s3: 1 });
    expect(p.journal(runId).filter((e) => e.type === 'run.resumed')).toHaveLength(1);
  });
});
