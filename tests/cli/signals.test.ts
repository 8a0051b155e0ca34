/**
 * Signals to a run owner (issue 10, item 4), through the built CLI. SIGHUP (the terminal closed)
 * and SIGTERM stop a foreground `fanfold run` the way Ctrl-C does: agents' process groups killed,
 * records `cancelled`, status `stopped`, the reason naming the signal. Progress written to a
 * terminal or pipe that is gone (EIO, EPIPE) never crashes the owner. A detached owner ignores
 * SIGHUP and stops gracefully on SIGTERM.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, alive, readAgentFiles, until } from '../helpers/cli.js';
import { killPids, latest, makeProject, pidsOf, sleeper, type Project } from './project.js';

/** Two agents that sleep 60 s each. */
const slowSpec = (name: string) => ({
  version: 1,
  name,
  limits: { maxConcurrent: 2, retries: 0 },
  agents: { slow: sleeper(60) },
  phases: [{ id: 'a', tasks: [{ id: 's1', agent: 'slow', prompt: 's1' }, { id: 's2', agent: 'slow', prompt: 's2' }] }],
});

function onlyRun(p: Project): string {
  return fs.readdirSync(p.store).find((n) => !n.startsWith('.'))!;
}

/** What a stopped foreground run must leave: both agents dead and cancelled, status stopped naming `sig`. */
async function expectStopped(p: Project, pids: number[], sig: RegExp): Promise<void> {
  await until(() => pids.every((pid) => !alive(pid)), 10_000, 'the agents to be killed');
  const runId = onlyRun(p);
  const files = readAgentFiles(p.runDir(runId));
  expect(latest(files, 'a/s1').status).toBe('cancelled');
  expect(latest(files, 'a/s2').status).toBe('cancelled');
  const run = p.runJson(runId);
  expect(run.status).toBe('stopped');
  expect(run.reason).toMatch(sig);
  expect(p.journal(runId).at(-1)).toMatchObject({ type: 'run.finished', status: 'stopped' });
}

const python = spawnSync('python3', ['--version']).status === 0;

describe('signals to a foreground run', () => {
  for (const sig of ['SIGHUP', 'SIGTERM'] as const) {
    it(`${sig} stops it like Ctrl-C: agents killed, records cancelled, status stopped naming ${sig}`, async () => {
      const p = makeProject(slowSpec(sig.toLowerCase()));
      const child = spawn(process.execPath, [CLI, 'run', p.spec, '--store', p.store], { cwd: p.dir, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
      let pids: number[] = [];
      try {
        pids = await pidsOf(p, ['s1.1.pid', 's2.1.pid'], 60_000);
        child.kill(sig);
        expect(await exited, stderr).toBe(1);
        expect(stderr).toContain(`stopping run`);
        await expectStopped(p, pids, new RegExp(sig));
      } finally {
        killPids([child.pid!, ...pids]);
        fs.rmSync(p.dir, { recursive: true, force: true });
      }
    }, 120_000);
  }

  it('writing progress to a closed pipe (EPIPE) does not crash it: a SIGHUP then still stops the run cleanly', async () => {
    const p = makeProject(slowSpec('epipe'));
    const child = spawn(process.execPath, [CLI, 'run', p.spec, '--store', p.store], { cwd: p.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<{ code: number | null; signal: string | null }>((r) => child.on('close', (code, signal) => r({ code, signal })));
    let pids: number[] = [];
    try {
      pids = await pidsOf(p, ['s1.1.pid', 's2.1.pid'], 60_000);
      // The reader goes away: every later write by the owner to stdout or stderr fails with EPIPE.
      child.stdout.destroy();
      child.stderr.destroy();
      child.kill('SIGHUP');
      const { code, signal } = await exited;
      expect(signal).toBeNull();
      expect(code).toBe(1);
      await expectStopped(p, pids, /SIGHUP/);
    } finally {
      killPids([child.pid!, ...pids]);
      fs.rmSync(p.dir, { recursive: true, force: true });
    }
  }, 120_000);

  it.runIf(python)('closing its terminal (a real pty: SIGHUP, then EIO on every write) stops the run cleanly', async () => {
    const p = makeProject(slowSpec('pty'));
    // A pty whose master side is closed once close.flag exists: the kernel hangs the session up.
    const script = [
      'import os, pty, sys, time',
      'pid, fd = pty.fork()',
      'if pid == 0:',
      '    os.execv(sys.argv[1], sys.argv[1:])',
      'while not os.path.exists("close.flag"):',
      '    try:',
      '        os.read(fd, 65536)',
      '    except OSError:',
      '        break',
      'os.close(fd)',
      '_, status = os.waitpid(pid, 0)',
      'print(os.waitstatus_to_exitcode(status))',
    ].join('\n');
    const child = spawn('python3', ['-c', script, process.execPath, CLI, 'run', p.spec, '--store', p.store], { cwd: p.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    let pids: number[] = [];
    try {
      pids = await pidsOf(p, ['s1.1.pid', 's2.1.pid'], 60_000);
      fs.writeFileSync(path.join(p.dir, 'close.flag'), '');
      // The pty's reader loop wakes on the next progress redraw (once a second) and closes it.
      expect(await exited).toBe(0);
      // The CLI's own exit code, as python saw it: 1 (stopped), not a crash by a signal (negative).
      expect(out.trim()).toBe('1');
      await expectStopped(p, pids, /SIGHUP/);
    } finally {
      killPids([child.pid!, ...pids]);
      fs.rmSync(p.dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('signals to a detached owner', () => {
  it('ignores SIGHUP and stops gracefully on SIGTERM', async () => {
    const p = makeProject(slowSpec('detached'));
    const started = p.cli(['run', p.spec, '--detach', '--json']);
    expect(started.status, started.stderr).toBe(0);
    const { runId, pid } = started.json();
    let pids: number[] = [];
    try {
      pids = await pidsOf(p, ['s1.1.pid', 's2.1.pid'], 60_000);
      process.kill(pid, 'SIGHUP');
      // Give a wrongly handled SIGHUP time to act: the run must still be running with its agents.
      await new Promise((r) => setTimeout(r, 1500));
      expect(alive(pid)).toBe(true);
      expect(pids.every(alive)).toBe(true);
      expect(p.journal(runId).some((e) => e.type === 'run.stop_requested' || e.type === 'run.finished')).toBe(false);

      process.kill(pid, 'SIGTERM');
      await until(() => !alive(pid), 60_000, 'the owner to stop');
      await expectStopped(p, pids, /SIGTERM/);
    } finally {
      killPids([pid, ...pids]);
      fs.rmSync(p.dir, { recursive: true, force: true });
    }
  }, 120_000);
});
