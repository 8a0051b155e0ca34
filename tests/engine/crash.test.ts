/**
 * Crash and resume, for real: a detached owner process is SIGKILLed after a random number of
 * completions, then `fanfold resume` finishes the run. Twenty-two times. Checks the durability
 * contract: no succeeded task runs again, no output is lost, every file stays readable.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { alive, fanfold, readAgentFiles, readJournal, tempDir, until } from '../helpers/cli.js';

function writeSpec(dir: string) {
  const tasks = Array.from({ length: 12 }, (_, i) => `      - { id: t${i}, prompt: "item ${i}" }`).join('\n');
  const spec = `version: 1
name: crash-test
limits: { maxConcurrent: 4, retries: 0 }
agents:
  sleepy: { runner: command, command: ["sh", "-c", "sleep 0.05; cat; echo; echo done-$FANFOLD_TASK_ID"], sandbox: off }
  join: { runner: command, command: ["sh", "-c", "cat \\"$FANFOLD_CONTEXT_FILE\\" | wc -c"], sandbox: off }
phases:
  - id: work
    agent: sleepy
    tasks:
${tasks}
  - id: join
    dependsOn: [work]
    agent: join
    tasks:
      - { id: a, prompt: "join a" }
      - { id: b, prompt: "join b" }
`;
  fs.writeFileSync(path.join(dir, 'spec.yaml'), spec);
}

describe('crash and resume', () => {
  it('survives 22 SIGKILLs at random moments: 0 re-runs of finished tasks, 0 lost outputs, 0 unreadable files', async () => {
    const dir = tempDir();
    writeSpec(dir);
    const store = path.join(dir, 'store');
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 48271) % 2147483647), seed % n);
    let reruns = 0;
    let lost = 0;
    let kills = 0;
    for (let i = 0; i < 22; i++) {
      const started = fanfold(['run', 'spec.yaml', '--detach', '--json', '--store', store], { cwd: dir });
      expect(started.status, started.stderr).toBe(0);
      const { runId, pid } = started.json();
      const runDir = path.join(store, runId);
      const lease = { pid: pid as number };
      const killAfter = rnd(14); // 0..13 completions, sometimes before the first one
      await until(() => readJournal(runDir).filter((e) => e.type === 'agent.finished').length >= killAfter || !alive(lease.pid), 20_000, 'completions');
      try {
        process.kill(lease.pid, 'SIGKILL');
        kills++;
      } catch {
        /* it finished first: a resume of a finished run must still rerun nothing */
      }
      await until(() => !alive(lease.pid), 5000, 'owner death');
      const before = readAgentFiles(runDir);
      const succeededBefore = [...before].filter(([, r]) => r.status === 'succeeded');

      const st = fanfold(['status', runId, '--json', '--store', store], { cwd: dir });
      expect(['interrupted', 'completed']).toContain(st.json().status);
      if (st.json().status === 'completed') {
        // It finished before the kill landed: there is nothing to resume, and resume says so.
        const again = fanfold(['resume', runId, '--json', '--store', store], { cwd: dir });
        expect(again.status).toBe(2);
        expect(again.stderr).toContain('already completed');
        continue;
      }

      const resumed = fanfold(['resume', runId, '--json', '--store', store], { cwd: dir });
      expect(resumed.status, resumed.stderr + resumed.stdout).toBe(0);
      expect(resumed.json().status).toBe('completed');

      const after = readAgentFiles(runDir); // throws if any file is unreadable
      for (const [file, rec] of succeededBefore) {
        if (JSON.stringify(after.get(file)) !== JSON.stringify(rec)) lost++;
      }
      const journal = readJournal(runDir);
      // A kill before the first owner journaled anything leaves nothing to resume: the resumed
      // owner then journals run.started. Either way, count starts after the last one.
      const resumedAt = journal.findLastIndex((e) => e.type === 'run.resumed' || e.type === 'run.started');
      expect(resumedAt).toBeGreaterThan(-1);
      const doneRefs = new Set(succeededBefore.map(([, r]) => `${r.phaseId}/${r.taskId}`));
      reruns += journal.slice(resumedAt).filter((e) => e.type === 'agent.started' && doneRefs.has(e.ref)).length;
      // Every task ends with a succeeded record.
      const okRefs = new Set([...after.values()].filter((r) => r.status === 'succeeded').map((r) => `${r.phaseId}/${r.taskId}`));
      expect(okRefs.size).toBe(14);
    }
    expect({ reruns, lost }).toEqual({ reruns: 0, lost: 0 });
    expect(kills).toBeGreaterThanOrEqual(20);
  }, 600_000);

  /**
   * A detached run of one agent that reads its prompt, leaves a marker and hangs (the attempt after
   * a resume finds the marker and ends), SIGKILLed once the agent is at work. `env` goes to the owner.
   */
  async function orphanAgent(env: Record<string, string>): Promise<{ dir: string; store: string; runId: string; runDir: string }> {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'spec.yaml'), `version: 1
name: leftover
agents:
  hang: { runner: command, command: ["sh", "-c", "if [ -f marker ]; then echo second; else cat > /dev/null; touch marker; sleep 60; fi"], sandbox: off }
phases:
  - id: p
    agent: hang
    tasks: [{ id: t, prompt: x }]
`);
    const store = path.join(dir, 'store');
    const started = fanfold(['run', 'spec.yaml', '--detach', '--json', '--store', store], { cwd: dir, env });
    expect(started.status, started.stderr).toBe(0);
    const { runId, pid } = started.json();
    // The marker: the agent has its prompt, which it gets only once agent.spawned is journaled.
    await until(() => fs.existsSync(path.join(dir, 'marker')), 60_000, 'the agent at work');
    process.kill(pid, 'SIGKILL');
    await until(() => !alive(pid), 30_000, 'owner death');
    return { dir, store, runId, runDir: path.join(store, runId) };
  }

  /** Resumes with `env`: the leftover is killed (`how` its log line), the task runs once more. */
  function resumeKills(o: { dir: string; store: string; runId: string }, agentPid: number, env: Record<string, string>, how: string): void {
    expect(alive(agentPid)).toBe(true); // the orphan goes on without its owner
    const resumed = fanfold(['resume', o.runId, '--json', '--store', o.store], { cwd: o.dir, env });
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`killed agent p/t (attempt 1, process group ${agentPid}${how}`);
    expect(alive(agentPid)).toBe(false);
    expect(fanfold(['show', o.runId, 'p/t', '--json', '--store', o.store], { cwd: o.dir }).json().output).toBe('second\n');
    fs.rmSync(o.dir, { recursive: true, force: true });
  }

  // The ps path is what macOS takes (no /proc); FANFOLD_NO_PROC=1 makes owner and resume take it here.
  it.each([
    ['from /proc', {}],
    ['from ps, without /proc (FANFOLD_NO_PROC=1)', { FANFOLD_NO_PROC: '1' }],
  ] as const)('kills the agents a SIGKILLed owner left running before it resumes, so nothing runs twice (start times %s)', async (_how, env) => {
    const o = await orphanAgent(env);
    const spawned = readJournal(o.runDir).find((e) => e.type === 'agent.spawned');
    if ('FANFOLD_NO_PROC' in env) expect(spawned).toMatchObject({ psStart: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/) });
    else expect(spawned).toMatchObject({ startTicks: expect.any(Number) });
    resumeKills(o, spawned.pid as number, env, ')');
  }, 120_000);

  it('an owner killed before it journaled agent.spawned: the resume finds the agent by its FANFOLD_* environment (Linux)', async () => {
    const o = await orphanAgent({});
    const agentPid = readJournal(o.runDir).find((e) => e.type === 'agent.spawned').pid as number;
    // The crash window: the owner died after the spawn, before its agent.spawned line landed.
    const events = path.join(o.runDir, 'events.jsonl');
    const lines = fs.readFileSync(events, 'utf8').split('\n').filter((l) => l && JSON.parse(l).type !== 'agent.spawned');
    fs.writeFileSync(events, `${lines.join('\n')}\n`);
    resumeKills(o, agentPid, {}, ', found by its environment');
  }, 120_000);
});
