/**
 * One writer per run (issue 10, item 1), through the built CLI: an owner paused past its lease ttl
 * (SIGSTOP) is taken over by `fanfold resume`, which finishes the run; when the old owner wakes
 * (SIGCONT) it must write nothing — every file in the run folder stays exactly as the new owner
 * left it — and exit 1 saying it lost the lease to the new owner's pid.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { alive, until } from '../helpers/cli.js';
import { killPids, makeProject, pidsOf, sleeper } from './project.js';

/** sha256 of every file under `dir`, by relative path. */
function hashTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const f = path.join(d, e.name);
      if (e.isDirectory()) walk(f);
      else out[path.relative(dir, f)] = crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

const TTL_MS = 1500;

describe('one writer per run', () => {
  it('an owner paused past its lease ttl and taken over writes nothing when it wakes, and exits 1 naming the new owner', async () => {
    const p = makeProject({
      version: 1,
      name: 'single-writer',
      limits: { maxConcurrent: 1, retries: 0 },
      // Sleeps 60 s the first time; once fast.flag exists it answers at once.
      agents: { slow: sleeper(60) },
      phases: [{ id: 'p', tasks: [{ id: 't1', agent: 'slow', prompt: 'one slow task' }] }],
    });
    const old = p.cliAsync(['run', p.spec], { env: { FANFOLD_LEASE_TTL_MS: String(TTL_MS) } });
    const ownerPid = old.child.pid!;
    const pids: number[] = [];
    try {
      const [childPid] = await pidsOf(p, ['t1.1.pid'], 60_000);
      pids.push(childPid!);
      const runId = fs.readdirSync(p.store).find((n) => !n.startsWith('.'))!;
      const runDir = p.runDir(runId);
      // The new owner finds (and kills) the old owner's agent through this line.
      await until(() => p.journal(runId).some((e) => e.type === 'agent.spawned'), 60_000, 'agent.spawned in the journal');

      process.kill(ownerPid, 'SIGSTOP');
      // Event-driven: wait until the lease's heartbeat is older than its ttl (then `resume` may take over).
      const leaseFile = path.join(runDir, 'lease.json');
      await until(() => {
        const l = JSON.parse(fs.readFileSync(leaseFile, 'utf8'));
        return Date.now() - Date.parse(l.heartbeatAt) > l.ttlMs + 300;
      }, 60_000, 'the paused owner\'s lease to go stale');

      fs.writeFileSync(p.file('fast.flag'), '');
      const resumed = p.cli(['resume', runId, '--json'], { timeoutMs: 120_000 });
      expect(resumed.status, resumed.stderr).toBe(0);
      expect(resumed.json().status).toBe('completed');
      // Numbered above the attempt the old owner started: the two never share a file name.
      expect(fs.readdirSync(path.join(runDir, 'agents')).sort()).toEqual(['p.t1.2.json']);
      const journalBefore = fs.readFileSync(path.join(runDir, 'events.jsonl'), 'utf8');
      const resumedLine = journalBefore.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((e) => e.type === 'run.resumed');
      expect(resumedLine.owner).toMatchObject({ pid: resumed.pid, epoch: 2 });
      const before = hashTree(runDir);

      process.kill(ownerPid, 'SIGCONT');
      const ended = await old.done;
      expect(ended.code, ended.stderr).toBe(1);
      expect(ended.stderr).toContain(`lost the lease of run ${runId} to another owner (pid ${resumed.pid})`);
      expect(alive(childPid!)).toBe(false);

      // Every file is exactly what the new owner left, and nothing follows run.finished.
      expect(hashTree(runDir)).toEqual(before);
      const journal = p.journal(runId);
      expect(journal.at(-1)).toMatchObject({ type: 'run.finished', status: 'completed' });
      expect(p.agents(runId).get('p.t1.2.json')).toMatchObject({ status: 'succeeded', output: expect.stringContaining('fast t1') });
    } finally {
      try {
        process.kill(ownerPid, 'SIGCONT');
      } catch {
        /* gone */
      }
      killPids([ownerPid, ...pids]);
      fs.rmSync(p.dir, { recursive: true, force: true });
    }
  }, 240_000);
});
