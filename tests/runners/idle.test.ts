/**
 * The idle watchdog with real child processes: a silent sleeper is stalled and its whole group
 * killed; a silent child burning CPU (a long test run inside a tool call) and a child that keeps
 * printing are alive. Real timers: idle timeouts of 0.6–0.8 s, deadlines several times longer.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildChildEnv, runProcess, type ProcessOptions } from '../../src/runners/process.js';
import { CommandRunner } from '../../src/runners/command.js';
import { DEFAULT_AGENT_IDLE_TIMEOUT_MS, groupCpuMs, idleTimeoutFor } from '../../src/runners/idle.js';
import { isAlive, waitDead } from './helpers.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fanfold-idle-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function opts(argv: string[], more: Partial<ProcessOptions> = {}): ProcessOptions {
  return { argv, cwd: dir, env: buildChildEnv(process.env), timeoutMs: 20_000, maxOutputBytes: 64 * 1024, ...more };
}

describe('idle watchdog (runProcess)', () => {
  it('kills a silent, idle group (grandchild included) and says stalled', async () => {
    const started = Date.now();
    // The grandchild prints its pid, then the group sleeps without output or CPU.
    const r = await runProcess(opts(['sh', '-c', 'sleep 60 & echo $!; wait'], { idleTimeoutMs: 700, killGraceMs: 300 }));
    const took = Date.now() - started;
    expect(r.stalledAfterMs).toBe(700);
    expect(r.timedOut).toBe(false);
    expect(r.exitCode).toBeNull();
    expect(took).toBeGreaterThanOrEqual(650);
    expect(took).toBeLessThan(10_000);
    const grandchild = Number(r.stdout.trim());
    expect(await waitDead(grandchild, 3000)).toBe(true);
  });

  it('counts CPU time of the group as life: a silent busy child runs to its timeout', async () => {
    const r = await runProcess(
      opts([process.execPath, '-e', 'const end = Date.now() + 60000; while (Date.now() < end) {}'], { idleTimeoutMs: 600, timeoutMs: 2500, killGraceMs: 300 }),
    );
    expect(r.stalledAfterMs).toBeUndefined();
    expect(r.timedOut).toBe(true);
  });

  it('counts output as life: a child printing every 150 ms finishes normally', async () => {
    const r = await runProcess(opts(['sh', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10; do echo $i; sleep 0.15; done'], { idleTimeoutMs: 800 }));
    expect(r.stalledAfterMs).toBeUndefined();
    expect(r.exitCode).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(10);
  });

  it('stays off without idleTimeoutMs', async () => {
    const r = await runProcess(opts(['sleep', '1']));
    expect(r.stalledAfterMs).toBeUndefined();
    expect(r.exitCode).toBe(0);
  });

  it('measures the CPU time of a process group', async () => {
    let pid = 0;
    const p = runProcess(opts([process.execPath, '-e', 'const end = Date.now() + 1500; while (Date.now() < end) {}'], { onSpawn: (x) => { pid = x; } }));
    await new Promise((r) => setTimeout(r, 1000));
    const mid = groupCpuMs(pid);
    await p;
    // On a busy shared machine the loop may get a small share of a core: any measured time will do.
    expect(mid).toBeGreaterThan(0);
    expect(isAlive(pid)).toBe(false);
  });
});

describe('idle watchdog (runners, spec defaults)', () => {
  it('a stalled command fails with error type stalled, retryable', async () => {
    const runner = new CommandRunner({ killGraceMs: 300 });
    const ctl = new AbortController();
    const res = await runner.run({
      runId: 'r', phaseId: 'p', taskId: 't', attempt: 1, prompt: '', cwd: dir,
      agent: { name: 'sleeper', runner: 'command', tier: 'read_only', command: ['sleep', '30'] },
      promptFile: join(dir, 'prompt'), contextFile: join(dir, 'ctx'),
      timeoutMs: 20_000, idleTimeoutMs: 600, maxOutputBytes: 1024, signal: ctl.signal,
    });
    expect(res.status).toBe('failed');
    expect(res.error?.type).toBe('stalled');
    expect(res.error?.retryable).toBe(true);
    expect(res.error?.message).toMatch(/no output and no CPU time for 600ms/);
  });

  it('defaults to 15 minutes for agent CLIs and off for command; explicit values win', () => {
    expect(idleTimeoutFor({ runner: 'claude' }, {})).toBe(DEFAULT_AGENT_IDLE_TIMEOUT_MS);
    expect(idleTimeoutFor({ runner: 'pi' }, {})).toBe(15 * 60_000);
    expect(idleTimeoutFor({ runner: 'command' }, {})).toBe(0);
    expect(idleTimeoutFor({ runner: 'command' }, { agentIdleTimeoutMs: 5000 })).toBe(5000);
    expect(idleTimeoutFor({ runner: 'codex', idleTimeoutMs: 0 }, { agentIdleTimeoutMs: 5000 })).toBe(0);
    expect(idleTimeoutFor({ runner: 'codex', idleTimeoutMs: 9000 }, {})).toBe(9000);
  });
});
