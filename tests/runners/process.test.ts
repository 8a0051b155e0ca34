/**
 * runProcess with real child processes. Timing assertions use real timers; each states its
 * tolerance. The slowest test (200 MB flood) takes about a second on a two-core machine.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  activeProcessGroups,
  buildChildEnv,
  cutUtf8,
  runProcess,
  type ProcessOptions,
} from '../../src/runners/process.js';
import { pidLine, isAlive, killIfAlive, nodeFixture, waitDead } from './helpers.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fanfold-process-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function opts(argv: string[], more: Partial<ProcessOptions> = {}): ProcessOptions {
  return {
    argv,
    cwd: dir,
    env: buildChildEnv(process.env),
    timeoutMs: 10_000,
    maxOutputBytes: 64 * 1024,
    ...more,
  };
}

describe('buildChildEnv', () => {
  it('scrubs Claude Code markers and the parent FANFOLD_* before adding the child ones', () => {
    const env = buildChildEnv(
      {
        PATH: '/bin',
        HOME: '/home/x',
        CLAUDECODE: '1',
        CLAUDE_CODE_ENTRYPOINT: 'cli',
        FANFOLD_RUN_ID: 'outer-run',
        FANFOLD_ANYTHING: 'x',
        CLAUDE_CONFIG_DIR: '/keep/me',
        EMPTY: undefined,
      },
      { FANFOLD_RUN_ID: 'inner-run', EXTRA: 'y' },
    );
    expect(env).toEqual({
      PATH: '/bin',
      HOME: '/home/x',
      CLAUDE_CONFIG_DIR: '/keep/me',
      FANFOLD_RUN_ID: 'inner-run',
      EXTRA: 'y',
    });
  });

  it('does not modify its input', () => {
    const base = { CLAUDECODE: '1', A: 'a' };
    buildChildEnv(base, { B: 'b' });
    expect(base).toEqual({ CLAUDECODE: '1', A: 'a' });
  });
});

describe('cutUtf8', () => {
  it('never splits a character', () => {
    const buf = Buffer.from('aé€😀', 'utf8'); // 1 + 2 + 3 + 4 bytes
    const cuts = Array.from({ length: buf.length + 2 }, (_, max) => cutUtf8(buf, max).toString('utf8'));
    expect(cuts).toEqual(['', 'a', 'a', 'aé', 'aé', 'aé', 'aé€', 'aé€', 'aé€', 'aé€', 'aé€😀', 'aé€😀']);
  });
});

describe('runProcess: basics', () => {
  it('passes stdin, cwd and env; captures stdout', async () => {
    const r = await runProcess(
      opts(nodeFixture('echo.mjs', 'ONLY_HERE'), {
        stdin: 'héllo prompt',
        env: buildChildEnv(process.env, { ONLY_HERE: 'yes' }),
      }),
    );
    expect(r.exitCode).toBe(0);
    expect(r.signal).toBeNull();
    expect(r.spawnError).toBeUndefined();
    const seen = JSON.parse(r.stdout);
    expect(seen.stdin).toBe('héllo prompt');
    expect(seen.cwd).toBe(dir);
    expect(seen.env.ONLY_HERE).toBe('yes');
    expect(r.stdoutBytes).toBe(Buffer.byteLength(r.stdout));
    expect(r.truncated).toBe(false);
    expect(r.pid).toBeGreaterThan(0);
    expect(activeProcessGroups()).toBe(0);
  });

  it('closes stdin at once when there is no prompt', async () => {
    // `cat` would wait forever on an open stdin.
    const r = await runProcess(opts(['cat'], { timeoutMs: 5000 }));
    expect(r.exitCode).toBe(0);
    expect(r.timedOut).toBe(false);
    expect(r.stdout).toBe('');
  });

  it('reports exit codes and stderr', async () => {
    const r = await runProcess(opts(nodeFixture('exit.mjs', '3', 'first', 'boom: last line')));
    expect(r.exitCode).toBe(3);
    expect(r.signal).toBeNull();
    expect(r.stderrTail).toBe('first\nboom: last line\n');
    expect(r.stderrBytes).toBe(r.stderrTail.length);
  });

  it('reports death by a signal', async () => {
    const r = await runProcess(opts(['sh', '-c', 'kill -SEGV $$']));
    expect(r.exitCode).toBeNull();
    expect(r.signal).toBe('SIGSEGV');
    expect(r.timedOut).toBe(false);
    expect(r.cancelled).toBe(false);
  });

  it('survives a child that never reads a large stdin (EPIPE)', async () => {
    const prompt = 'p'.repeat(8 * 1024 * 1024);
    const r = await runProcess(opts(['sh', '-c', 'echo done; exit 0'], { stdin: prompt }));
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('done\n');
  });
});

describe('runProcess: the prompt waits for the spawn to be recorded', () => {
  it('writes stdin only after the promise onSpawn returned has settled', async () => {
    let recorded = false;
    let outputBeforeRecord = false;
    let hookPid: number | undefined;
    const r = await runProcess(
      opts(['cat'], {
        stdin: 'the prompt',
        onSpawn: async (pid) => {
          hookPid = pid;
          // What the engine does here: journal `agent.spawned` (an fsync may take this long).
          await new Promise((res) => setTimeout(res, 500));
          recorded = true;
        },
        onStdout: () => {
          outputBeforeRecord ||= !recorded;
        },
      }),
    );
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('the prompt');
    expect(hookPid).toBe(r.pid);
    // `cat` can echo nothing before it reads: the prompt was held back until the record landed.
    expect(outputBeforeRecord).toBe(false);
  });

  it('a hook that rejects or throws still lets the prompt go', async () => {
    const rejected = await runProcess(opts(['cat'], { stdin: 'a', onSpawn: () => Promise.reject(new Error('journal refused')) }));
    expect(rejected.stdout).toBe('a');
    const thrown = await runProcess(opts(['cat'], { stdin: 'b', onSpawn: () => { throw new Error('boom'); } }));
    expect(thrown.stdout).toBe('b');
  });
});

describe('runProcess: bounded output', () => {
  it('caps stdout on a UTF-8 boundary and counts every byte', async () => {
    const text = 'é'.repeat(100); // 200 bytes
    const r = await runProcess(opts(nodeFixture('print.mjs', text), { maxOutputBytes: 51 }));
    expect(r.truncated).toBe(true);
    expect(r.stdoutBytes).toBe(200);
    expect(r.stdout).toBe('é'.repeat(25)); // 50 bytes: the 26th character would straddle byte 51
  });

  it('is not truncated at exactly the cap', async () => {
    const r = await runProcess(opts(nodeFixture('print.mjs', 'abcd'), { maxOutputBytes: 4 }));
    expect(r.truncated).toBe(false);
    expect(r.stdout).toBe('abcd');
  });

  it('keeps only the last bytes of stderr, starting on a character boundary', async () => {
    const r = await runProcess(
      opts(
        ['sh', '-c', `${process.execPath} -e "process.stderr.write('€'.repeat(50000))" && echo THE-END >&2`],
        { stderrTailBytes: 100 },
      ),
    );
    expect(r.exitCode).toBe(0);
    expect(r.stderrBytes).toBe(150_000 + 8);
    expect(Buffer.byteLength(r.stderrTail)).toBeLessThanOrEqual(100);
    expect(r.stderrTail.endsWith('€THE-END\n')).toBe(true);
    expect(r.stderrTail).not.toContain('\uFFFD');
    // 100 - 8 = 92 bytes of '€' (3 bytes each): 30 whole ones, the partial one dropped.
    expect(r.stderrTail).toBe('€'.repeat(30) + 'THE-END\n');
  });

  it('stays within a small memory budget while a child floods 200 MB', async () => {
    const total = 200 * 1024 * 1024;
    const before = process.memoryUsage.rss();
    let peak = before;
    const sample = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage.rss());
    }, 5);
    try {
      const r = await runProcess(
        opts(nodeFixture('flood.mjs', 'stdout', String(total), 'END'), {
          maxOutputBytes: 1024 * 1024,
          onStdout: () => {
            peak = Math.max(peak, process.memoryUsage.rss());
          },
        }),
      );
      expect(r.exitCode).toBe(0);
      expect(r.stdoutBytes).toBe(total + 3);
      expect(r.truncated).toBe(true);
      expect(Buffer.byteLength(r.stdout)).toBe(1024 * 1024);
    } finally {
      clearInterval(sample);
    }
    // Tolerance: 100 MB of growth, against 200 MB produced (the output cap is 1 MB).
    expect(peak - before).toBeLessThan(100 * 1024 * 1024);
  });

  it('streams lines (bounded, last line without newline included) to onStdoutLine', async () => {
    const lines: Array<[string, boolean]> = [];
    const r = await runProcess(
      opts(nodeFixture('print.mjs', '{"a":1}\r\n\nxxxxxxxxxxxxxxxxxxxx\n{"b":2}'), {
        maxLineBytes: 10,
        onStdoutLine: (line, info) => lines.push([line, info.truncated]),
      }),
    );
    expect(r.exitCode).toBe(0);
    expect(lines).toEqual([
      ['{"a":1}', false],
      ['', false],
      ['xxxxxxxxxx', true],
      ['{"b":2}', false],
    ]);
  });

  it('records a throwing hook without losing output', async () => {
    const r = await runProcess(
      opts(nodeFixture('print.mjs', 'a\nb\n'), {
        onStdoutLine: () => {
          throw new Error('hook broke');
        },
      }),
    );
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('a\nb\n');
    expect((r.hookError as Error).message).toBe('hook broke');
  });
});

describe('runProcess: timeouts, cancel, process groups', () => {
  it('on timeout kills the whole group, grandchildren included', async () => {
    const r = await runProcess(opts(['sh', '-c', 'sleep 1000 & echo $!; wait'], { timeoutMs: 300 }));
    const grandchild = pidLine(r.stdout);
    try {
      expect(r.timedOut).toBe(true);
      expect(r.cancelled).toBe(false);
      expect(r.signal).toBe('SIGTERM');
      // Tolerance: the timeout plus 1.5 s of scheduling slack; no KILL grace was needed.
      expect(r.durationMs).toBeGreaterThanOrEqual(290);
      expect(r.durationMs).toBeLessThan(1800);
      expect(await waitDead(grandchild)).toBe(true);
    } finally {
      killIfAlive(grandchild);
    }
  });

  it('sends SIGKILL after the grace to a child that ignores SIGTERM', async () => {
    // sh starts in milliseconds, so the trap is in place long before the 300 ms timeout.
    const r = await runProcess(
      opts(['sh', '-c', 'trap "" TERM; echo ready; while :; do sleep 0.05; done'], {
        timeoutMs: 300,
        killGraceMs: 300,
      }),
    );
    expect(r.stdout).toBe('ready\n');
    expect(r.timedOut).toBe(true);
    expect(r.signal).toBe('SIGKILL');
    // Tolerance: timeout + grace (600 ms) up to +1.5 s.
    expect(r.durationMs).toBeGreaterThanOrEqual(590);
    expect(r.durationMs).toBeLessThan(2100);
  });

  it('kills a TERM-ignoring grandchild after the leader died', async () => {
    const r = await runProcess(
      opts(['sh', '-c', '(trap "" TERM; echo gc-ready; while :; do sleep 0.05; done) & echo $!; wait'], {
        timeoutMs: 300,
        killGraceMs: 300,
      }),
    );
    const grandchild = pidLine(r.stdout);
    try {
      expect(r.stdout).toContain('gc-ready');
      expect(r.timedOut).toBe(true);
      // The leader died of the TERM; only the KILL after the grace ended the grandchild.
      expect(r.signal).toBe('SIGTERM');
      expect(await waitDead(grandchild)).toBe(true);
      // Tolerance: timeout + grace (600 ms) up to +1.5 s.
      expect(r.durationMs).toBeGreaterThanOrEqual(590);
      expect(r.durationMs).toBeLessThan(2100);
    } finally {
      killIfAlive(grandchild);
    }
  });

  it('does not hang when a grandchild keeps stdout open after the child exits', async () => {
    const r = await runProcess(
      opts(nodeFixture('grandchild.mjs', 'leave'), { timeoutMs: 10_000, exitGraceMs: 200 }),
    );
    const grandchild = pidLine(r.stdout);
    try {
      expect(r.exitCode).toBe(0);
      expect(r.timedOut).toBe(false);
      // Tolerance: exit grace (200 ms) + node start-up, up to 2 s; far below the 10 s timeout.
      expect(r.durationMs).toBeLessThan(2000);
      expect(await waitDead(grandchild)).toBe(true);
    } finally {
      killIfAlive(grandchild);
    }
  });

  it('sweeps a grandchild that left no pipe open', async () => {
    const r = await runProcess(opts(nodeFixture('grandchild.mjs', 'detach-stdio')));
    const grandchild = pidLine(r.stdout);
    try {
      expect(r.exitCode).toBe(0);
      expect(await waitDead(grandchild)).toBe(true);
    } finally {
      killIfAlive(grandchild);
    }
  });

  it('abort kills the group and reports cancelled', async () => {
    const controller = new AbortController();
    let abortedAt = 0;
    // Abort once the grandchild exists (its pid is the first line), however slow node starts.
    const r = await runProcess(
      opts(nodeFixture('grandchild.mjs', 'stay'), {
        signal: controller.signal,
        timeoutMs: 20_000,
        onStdoutLine: () => {
          abortedAt = Date.now();
          controller.abort();
        },
      }),
    );
    const grandchild = pidLine(r.stdout);
    try {
      expect(r.cancelled).toBe(true);
      expect(r.timedOut).toBe(false);
      // Tolerance: done within 1.5 s of the abort (the fixture exits on TERM, no KILL grace).
      expect(Date.now() - abortedAt).toBeLessThan(1500);
      expect(await waitDead(grandchild)).toBe(true);
      expect(activeProcessGroups()).toBe(0);
    } finally {
      killIfAlive(grandchild);
    }
  });

  it('does not start anything when already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    const r = await runProcess(opts(['sh', '-c', 'echo should-not-run'], { signal: controller.signal }));
    expect(r.cancelled).toBe(true);
    expect(r.pid).toBeNull();
    expect(r.stdout).toBe('');
  });
});

describe('runProcess: spawn errors', () => {
  it('names a missing executable and the PATH', async () => {
    const r = await runProcess(
      opts(['fanfold-no-such-binary'], { env: { PATH: '/nonexistent/bin:/also/not' } }),
    );
    expect(r.pid).toBeNull();
    expect(r.spawnError).toEqual({
      type: 'spawn_enoent',
      message:
        "cannot start 'fanfold-no-such-binary': executable not found on PATH (PATH=/nonexistent/bin:/also/not)",
      retryable: false,
    });
  });

  it('abbreviates a long PATH', async () => {
    const longPath = Array.from({ length: 30 }, (_, i) => `/nowhere/dir-number-${i}/bin`).join(':');
    const r = await runProcess(opts(['fanfold-no-such-binary'], { env: { PATH: longPath } }));
    expect(r.spawnError?.message).toContain('…(30 entries)');
    expect(r.spawnError!.message.length).toBeLessThan(250);
  });

  it('names a missing file given by path', async () => {
    const r = await runProcess(opts([join(dir, 'missing.sh')]));
    expect(r.spawnError?.type).toBe('spawn_enoent');
    expect(r.spawnError?.message).toContain('no such file');
  });

  it('reports a file that is not executable', async () => {
    const script = join(dir, 'not-executable.sh');
    writeFileSync(script, '#!/bin/sh\necho hi\n');
    chmodSync(script, 0o644);
    const r = await runProcess(opts([script]));
    expect(r.spawnError?.type).toBe('spawn_eacces');
    expect(r.spawnError?.message).toMatch(/cannot start '.*not-executable\.sh': permission denied/);
    expect(r.spawnError?.retryable).toBe(false);
  });

  it('blames a missing cwd, not the executable', async () => {
    const r = await runProcess(opts(['sh', '-c', 'true'], { cwd: join(dir, 'no-such-dir') }));
    expect(r.spawnError?.type).toBe('spawn_cwd');
    expect(r.spawnError?.message).toContain('does not exist');
  });

  it('reports an empty argv and a NUL byte without throwing', async () => {
    const empty = await runProcess(opts([]));
    expect(empty.spawnError?.message).toContain('argv is empty');
    const nul = await runProcess(opts(['sh', '-c', 'echo a\0b']));
    expect(nul.spawnError?.type).toBe('spawn_error');
    expect(nul.pid).toBeNull();
  });
});

describe('runProcess: invalid options', () => {
  it('rejects a negative timeout or a fractional cap with what was expected', async () => {
    await expect(runProcess(opts(['true'], { timeoutMs: -1 }))).rejects.toThrow(
      'runProcess: expected `timeoutMs` to be a number of milliseconds ≥ 0, got `-1`',
    );
    await expect(runProcess(opts(['true'], { maxOutputBytes: 1.5 }))).rejects.toThrow(
      'expected `maxOutputBytes` to be an integer ≥ 0, got `1.5`',
    );
  });
});

describe('test helpers', () => {
  it('isAlive sees our own process', () => {
    expect(isAlive(process.pid)).toBe(true);
  });
});
