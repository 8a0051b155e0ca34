/**
 * CommandRunner and the runner registry, with real child processes.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandRunner, formatDuration, lastStderrLine, parseWholeJson, toRunnerResult } from '../../src/runners/command.js';
import type { ProcessResult } from '../../src/runners/process.js';
import { availableRunnerKinds, getRunner, isRunnerAvailable } from '../../src/runners/index.js';
import type { RunnerInput } from '../../src/runners/types.js';
import type { AgentDef, RunnerKind } from '../../src/spec/types.js';
import { pidLine, killIfAlive, nodeFixture, waitDead } from './helpers.js';

let dir: string;
let promptFile: string;
let contextFile: string;
const PROMPT = 'Summarize the repo.\nÜnïcödé included.';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fanfold-command-'));
  promptFile = join(dir, 'prompt.txt');
  contextFile = join(dir, 'context.json');
  writeFileSync(promptFile, PROMPT);
  writeFileSync(contextFile, '{"deps":[]}');
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

// These tests are about process plumbing (fixtures outside the cwd, pids seen from the host), so
// the agents run unconfined; tests/runners/sandbox.test.ts covers the bwrap sandbox.
function agent(command: string[] | undefined, more: Partial<AgentDef> = {}): AgentDef {
  return { name: 'tester', runner: 'command', tier: 'read_only', sandbox: 'off', ...(command ? { command } : {}), ...more };
}

function input(command: string[] | undefined, more: Partial<RunnerInput> = {}): RunnerInput {
  return {
    runId: 'run-1',
    phaseId: 'scan',
    taskId: 'task-a',
    attempt: 2,
    prompt: PROMPT,
    agent: agent(command),
    cwd: dir,
    promptFile,
    contextFile,
    timeoutMs: 10_000,
    maxOutputBytes: 64 * 1024,
    signal: new AbortController().signal,
    ...more,
  };
}

/** Polls for a file holding a pid (written by a fixture once it is ready). */
async function waitForPidFile(path: string, withinMs = 10_000): Promise<number> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    try {
      return pidLine(readFileSync(path, 'utf8'));
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  throw new Error(`no pid in ${path} after ${withinMs} ms`);
}

const ENV_NAMES = [
  'FANFOLD_RUN_ID',
  'FANFOLD_PHASE_ID',
  'FANFOLD_TASK_ID',
  'FANFOLD_ATTEMPT',
  'FANFOLD_PROMPT_FILE',
  'FANFOLD_CONTEXT_FILE',
  'FANFOLD_OUTER',
  'CLAUDECODE',
  'CLAUDE_CODE_ENTRYPOINT',
  'AGENT_VAR',
  'INPUT_VAR',
  'SHARED',
  'PATH',
];

describe('CommandRunner', () => {
  it('delivers the prompt on stdin and in FANFOLD_PROMPT_FILE, with the FANFOLD_* env and cwd', async () => {
    const runner = new CommandRunner({
      baseEnv: {
        ...process.env,
        CLAUDECODE: '1',
        CLAUDE_CODE_ENTRYPOINT: 'cli',
        FANFOLD_OUTER: 'leak',
        FANFOLD_RUN_ID: 'outer-run',
      },
    });
    const r = await runner.run(
      input(nodeFixture('echo.mjs', ...ENV_NAMES), {
        agent: agent(nodeFixture('echo.mjs', ...ENV_NAMES), { env: { AGENT_VAR: 'a', SHARED: 'from-agent' } }),
        env: { INPUT_VAR: 'i', SHARED: 'from-input' },
      }),
    );
    expect(r.error).toBeUndefined();
    expect(r.status).toBe('succeeded');
    expect(r.exitCode).toBe(0);
    const seen = r.structured as { stdin: string; cwd: string; env: Record<string, string | null>; promptFileContent: string };
    expect(seen.stdin).toBe(PROMPT);
    expect(seen.promptFileContent).toBe(PROMPT);
    expect(seen.cwd).toBe(dir);
    expect(seen.env).toEqual({
      FANFOLD_RUN_ID: 'run-1',
      FANFOLD_PHASE_ID: 'scan',
      FANFOLD_TASK_ID: 'task-a',
      FANFOLD_ATTEMPT: '2',
      FANFOLD_PROMPT_FILE: promptFile,
      FANFOLD_CONTEXT_FILE: contextFile,
      FANFOLD_OUTER: null,
      CLAUDECODE: null,
      CLAUDE_CODE_ENTRYPOINT: null,
      AGENT_VAR: 'a',
      INPUT_VAR: 'i',
      SHARED: 'from-input',
      PATH: process.env.PATH ?? null,
    });
    expect(r.outputBytes).toBe(Buffer.byteLength(r.output));
    expect(r.truncated).toBe(false);
  });

  it('maps a non-zero exit to failed/exit_code with the last stderr line', async () => {
    const r = await new CommandRunner().run(input(nodeFixture('exit.mjs', '3', 'warming up', 'fatal: no model', '')));
    expect(r.status).toBe('failed');
    expect(r.exitCode).toBe(3);
    expect(r.output).toBe('some output\n');
    expect(r.stderrTail).toBe('warming up\nfatal: no model\n\n');
    expect(r.error).toEqual({ type: 'exit_code', message: 'exited with code 3: fatal: no model', retryable: true });
    expect(r.structured).toBeUndefined();
  });

  it('says so when a failing child wrote no stderr', async () => {
    const r = await new CommandRunner().run(input(['sh', '-c', 'exit 7']));
    expect(r.error?.message).toBe('exited with code 7 (stderr was empty)');
  });

  it('maps death by a signal to failed/signal', async () => {
    const r = await new CommandRunner().run(input(['sh', '-c', 'echo dying >&2; kill -KILL $$']));
    expect(r.status).toBe('failed');
    expect(r.signal).toBe('SIGKILL');
    expect(r.exitCode).toBeNull();
    expect(r.error).toEqual({ type: 'signal', message: 'killed by signal SIGKILL: dying', retryable: true });
  });

  it('maps a timeout to timed_out and kills grandchildren', async () => {
    const r = await new CommandRunner({ killGraceMs: 300 }).run(
      input(['sh', '-c', 'sleep 1000 & echo $!; wait'], { timeoutMs: 300 }),
    );
    const grandchild = pidLine(r.output);
    try {
      expect(r.status).toBe('timed_out');
      expect(r.error).toEqual({ type: 'timeout', message: 'timed out after 300ms; process group killed', retryable: true });
      expect(await waitDead(grandchild)).toBe(true);
    } finally {
      killIfAlive(grandchild);
    }
  });

  it('words a long timeout in minutes', () => {
    // The mapping alone: waiting 10 real minutes is not an option.
    const timedOut: ProcessResult = {
      exitCode: null,
      signal: 'SIGTERM',
      stdout: '',
      stdoutBytes: 0,
      truncated: false,
      stderrTail: '',
      stderrBytes: 0,
      timedOut: true,
      cancelled: false,
      durationMs: 600_010,
      pid: 1234,
    };
    expect(toRunnerResult(timedOut, 600_000)).toMatchObject({
      status: 'timed_out',
      error: { type: 'timeout', message: 'timed out after 10m; process group killed', retryable: true },
    });
  });

  it('maps an abort to cancelled, not retryable', async () => {
    const controller = new AbortController();
    const ready = join(dir, 'abort-ready.txt');
    const pending = new CommandRunner().run(
      input(['sh', '-c', 'sleep 1000 & echo $! > "$READY_FILE"; wait'], {
        signal: controller.signal,
        timeoutMs: 20_000,
        env: { READY_FILE: ready },
      }),
    );
    // Abort once the grandchild exists, however slow the machine is.
    const grandchild = await waitForPidFile(ready);
    controller.abort();
    const r = await pending;
    try {
      expect(r.status).toBe('cancelled');
      expect(r.error).toEqual({
        type: 'cancelled',
        message: 'cancelled: the run was stopped; process group killed',
        retryable: false,
      });
      expect(await waitDead(grandchild)).toBe(true);
    } finally {
      killIfAlive(grandchild);
    }
  });

  it('fails cleanly on a missing executable', async () => {
    const r = await new CommandRunner({ baseEnv: { PATH: '/nowhere' } }).run(input(['fanfold-missing-tool', '--x']));
    expect(r.status).toBe('failed');
    expect(r.exitCode).toBeNull();
    expect(r.error).toEqual({
      type: 'spawn_enoent',
      message: "cannot start 'fanfold-missing-tool': executable not found on PATH (PATH=/nowhere)",
      retryable: false,
    });
  });

  it('fails cleanly when the agent has no command', async () => {
    const r = await new CommandRunner().run(input(undefined));
    expect(r.status).toBe('failed');
    expect(r.error?.type).toBe('config');
    expect(r.error?.message).toContain("agent 'tester' has no command");
    expect(r.error?.retryable).toBe(false);
  });

  it('caps the output and reports the bytes produced; no structured value from a cut JSON', async () => {
    const json = JSON.stringify({ items: Array.from({ length: 200 }, (_, i) => `item-${i}`) });
    const r = await new CommandRunner().run(input(nodeFixture('print.mjs', json), { maxOutputBytes: 100 }));
    expect(r.status).toBe('succeeded');
    expect(r.truncated).toBe(true);
    expect(r.outputBytes).toBe(Buffer.byteLength(json));
    expect(Buffer.byteLength(r.output)).toBe(100);
    expect(r.structured).toBeUndefined();
  });

  it('parses a whole JSON array on stdout into structured', async () => {
    const r = await new CommandRunner().run(input(nodeFixture('print.mjs', '  [1, {"a": "b"}]\n')));
    expect(r.structured).toEqual([1, { a: 'b' }]);
  });

  it('leaves plain text unstructured', async () => {
    const r = await new CommandRunner().run(input(nodeFixture('print.mjs', 'just words {"a":1}')));
    expect(r.output).toBe('just words {"a":1}');
    expect(r.structured).toBeUndefined();
  });

  it('handles a large prompt that the child never reads', async () => {
    const r = await new CommandRunner().run(input(['sh', '-c', 'echo fine'], { prompt: 'x'.repeat(4 * 1024 * 1024) }));
    expect(r.status).toBe('succeeded');
    expect(r.output).toBe('fine\n');
  });
});

describe('command helpers', () => {
  it('parseWholeJson accepts only a whole object or array', () => {
    expect(parseWholeJson(' {"a":1} ')).toEqual({ a: 1 });
    expect(parseWholeJson('[]')).toEqual([]);
    expect(parseWholeJson('"str"')).toBeUndefined();
    expect(parseWholeJson('42')).toBeUndefined();
    expect(parseWholeJson('{"a":1} trailing')).toBeUndefined();
    expect(parseWholeJson('{"a":')).toBeUndefined();
    expect(parseWholeJson('{}{}')).toBeUndefined();
    expect(parseWholeJson('{"a":1}', true)).toBeUndefined();
  });

  it('formatDuration is exact, not rounded', () => {
    expect([300, 1000, 1500, 59_999, 60_000, 90_000, 600_000, 3_600_000, 5_400_000, 5_405_000].map(formatDuration)).toEqual([
      '300ms', '1s', '1.5s', '60s', '1m', '1m30s', '10m', '1h', '1h30m', '1h30m5s',
    ]);
  });

  it('lastStderrLine picks the last non-empty line and bounds it', () => {
    expect(lastStderrLine('a\nb\r\n\n  \n')).toBe('b');
    expect(lastStderrLine('')).toBe('');
    expect(lastStderrLine('x'.repeat(1000))).toBe('x'.repeat(300) + '…');
  });
});

describe('runner registry', () => {
  it('returns the command runner', () => {
    const runner = getRunner('command');
    expect(runner.kind).toBe('command');
    expect(runner).toBeInstanceOf(CommandRunner);
    expect(getRunner('command')).toBe(runner);
  });

  it('has a runner for every kind', () => {
    for (const kind of ['claude', 'codex', 'pi'] as const) {
      expect(getRunner(kind).kind).toBe(kind);
      expect(isRunnerAvailable(kind)).toBe(true);
    }
    expect(availableRunnerKinds()).toEqual(['command', 'claude', 'codex', 'pi']);
  });

  it('rejects an unknown kind', () => {
    expect(() => getRunner('bogus' as RunnerKind)).toThrow("unknown runner kind 'bogus'");
    expect(isRunnerAvailable('toString')).toBe(false);
  });
});
