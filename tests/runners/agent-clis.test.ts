/**
 * The claude, codex and pi runners end to end over the process plumbing, with a stand-in CLI that
 * replays what the real pinned CLIs printed (tests/runners/fixtures/cli/, recorded by
 * tests/e2e/capture-fixtures.test.ts) and records how it was started (argv, stdin, env).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClaudeRunner } from '../../src/runners/claude.js';
import { CodexRunner } from '../../src/runners/codex.js';
import { PiRunner } from '../../src/runners/pi.js';
import type { Runner, RunnerInput, RunnerResult } from '../../src/runners/types.js';
import type { AgentDef } from '../../src/spec/types.js';
import { fixture, waitDead } from './helpers.js';

type Kind = 'claude' | 'codex' | 'pi';
const REPLAY = fixture('replay-cli.mjs');
const SCHEMA = {
  type: 'object',
  properties: { word: { type: 'string' }, lines: { type: 'integer' } },
  required: ['word', 'lines'],
  additionalProperties: false,
};
const GOOD = { word: 'PELICAN-7f3a91', lines: 3 };

let dir: string;
let n = 0;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fanfold-agent-clis-'));
  writeFileSync(join(dir, 'prompt.txt'), 'p');
  writeFileSync(join(dir, 'context.json'), '{"schemaVersion":1,"digests":{},"deps":[]}');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function input(kind: Kind, agent: Partial<AgentDef> = {}, more: Partial<RunnerInput> = {}): RunnerInput {
  return {
    runId: 'run-1',
    phaseId: 'scan',
    taskId: 'a',
    attempt: 1,
    prompt: 'Read notes.txt and report the secret word.',
    // sandbox: off — the fake CLIs and their fixtures live outside the project folder; the real
    // CLIs' sandbox is covered by tests/e2e/sandbox.test.ts.
    agent: { name: 'scout', runner: kind, tier: 'read_only', sandbox: 'off', ...agent },
    cwd: dir,
    promptFile: join(dir, 'prompt.txt'),
    contextFile: join(dir, 'context.json'),
    timeoutMs: 20_000,
    maxOutputBytes: 64 * 1024,
    signal: new AbortController().signal,
    ...more,
  };
}

/** Runner options of the tests: short kill grace, and an exit grace after the final event of 600 ms. */
const RUNNERS: Record<Kind, (env: NodeJS.ProcessEnv) => Runner> = {
  claude: (baseEnv) => new ClaudeRunner({ baseEnv, killGraceMs: 200, exitGraceAfterDoneMs: 600 }),
  codex: (baseEnv) => new CodexRunner({ baseEnv, killGraceMs: 200, exitGraceAfterDoneMs: 600 }),
  pi: (baseEnv) => new PiRunner({ baseEnv, killGraceMs: 200, exitGraceAfterDoneMs: 600 }),
};

interface Started {
  argv: string[];
  stdin: string;
  env: Record<string, string>;
  pid: number;
}

/** Runs `kind` against the recording `name`; returns the result and how the stand-in was started. */
async function replay(
  kind: Kind,
  name: string | undefined,
  inp: RunnerInput,
  extraEnv: Record<string, string> = {},
): Promise<{ result: RunnerResult; started: Started }> {
  const record = join(dir, `started-${n++}.json`);
  const base = join(fixture('cli'), kind, name ?? 'none');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    [`FANFOLD_${kind.toUpperCase()}_BIN`]: REPLAY,
    REPLAY_RECORD: record,
    ...(name ? { REPLAY_STDOUT: `${base}.stdout.jsonl`, REPLAY_META: `${base}.meta.json` } : {}),
    CLAUDECODE: '1',
    CLAUDE_CODE_ENTRYPOINT: 'cli',
    FANFOLD_OUTER_RUN: 'x',
    FANFOLD_REDIS_URL: 'redis://:hunter2hunter2@127.0.0.1:6379',
    GITHUB_TOKEN: 'ghp_notreallyatokenbutlongenough000000000',
    AWS_SECRET_ACCESS_KEY: 'not-a-real-aws-secret-key-0000000000000',
    ...extraEnv,
  };
  // The stand-in reads its REPLAY_* settings from the env: declared through passEnv, as a spec would.
  const passEnv = [...(inp.agent.passEnv ?? []), ...Object.keys(env).filter((k) => k.startsWith('REPLAY_'))];
  const result = await RUNNERS[kind](env).run({ ...inp, agent: { ...inp.agent, passEnv } });
  let started: Started;
  try {
    started = JSON.parse(readFileSync(record, 'utf8')) as Started;
  } catch {
    started = { argv: [], stdin: '', env: {}, pid: 0 };
  }
  return { result, started };
}

describe('every agent runner', () => {
  for (const kind of ['claude', 'codex', 'pi'] as const) {
    it(`${kind}: prompt on stdin (closed), env scrubbed, task ids exported, agent env applied`, async () => {
      const name = kind === 'claude' ? 'read-text' : kind === 'codex' ? 'write-refused' : 'three-turns';
      const { result, started } = await replay(kind, name, input(kind, { env: { AGENT_VAR: 'yes' } }, { env: { TASK_VAR: 'also' } }));
      expect(result.status, JSON.stringify(result.error)).toBe('succeeded');
      expect(started.stdin).toBe('Read notes.txt and report the secret word.');
      expect(started.env.CLAUDECODE).toBeUndefined();
      expect(started.env.CLAUDE_CODE_ENTRYPOINT).toBeUndefined();
      expect(started.env.FANFOLD_OUTER_RUN).toBeUndefined();
      expect(started.env[`FANFOLD_${kind.toUpperCase()}_BIN`]).toBeUndefined();
      // The environment is an allowlist: the owner's other secrets and fanfold settings stay behind.
      expect(started.env.FANFOLD_REDIS_URL).toBeUndefined();
      expect(started.env.GITHUB_TOKEN).toBeUndefined();
      expect(started.env.AWS_SECRET_ACCESS_KEY).toBeUndefined();
      expect(started.env.PATH).toBe(process.env.PATH);
      expect(started.env.REPLAY_RECORD).toBeDefined(); // declared through passEnv
      expect(started.env.CLAUDE_CODE_SUBPROCESS_ENV_SCRUB).toBe(kind === 'claude' ? '0' : undefined);
      expect(started.env).toMatchObject({
        FANFOLD_RUN_ID: 'run-1',
        FANFOLD_PHASE_ID: 'scan',
        FANFOLD_TASK_ID: 'a',
        FANFOLD_ATTEMPT: '1',
        AGENT_VAR: 'yes',
        TASK_VAR: 'also',
      });
    });

    it(`${kind}: a missing executable says how to install it`, async () => {
      const result = await RUNNERS[kind]({ ...process.env, [`FANFOLD_${kind.toUpperCase()}_BIN`]: join(dir, 'no-such-cli') }).run(input(kind));
      expect(result.status).toBe('failed');
      expect(result.error).toMatchObject({ type: 'agent_cli_missing', retryable: false });
      expect(result.error!.message).toContain('npm i -g');
      expect(result.error!.message).toContain(`FANFOLD_${kind.toUpperCase()}_BIN`);

      const onPath = await RUNNERS[kind]({ PATH: dir }).run(input(kind));
      expect(onPath.error).toMatchObject({ type: 'agent_cli_missing', retryable: false });
      expect(onPath.error!.message).toMatch(/was not found on PATH; install it: npm i -g @/);
    });

    it(`${kind}: a CLI that printed its final event but does not exit is stopped; its answer stands`, async () => {
      const name = kind === 'claude' ? 'read-text' : kind === 'codex' ? 'write-refused' : 'three-turns';
      const t0 = Date.now();
      const { result, started } = await replay(kind, name, input(kind, {}, { timeoutMs: 20_000 }), { REPLAY_HANG: '1' });
      expect(result.status, JSON.stringify(result.error)).toBe('succeeded');
      expect(result.output.length).toBeGreaterThan(0);
      expect(Date.now() - t0).toBeLessThan(5_000);
      expect(await waitDead(started.pid)).toBe(true);
    });

    it(`${kind}: a hung CLI is timed out, its process group killed, with what it was doing`, async () => {
      // The recording cut before its final event: the CLI is still at work when it hangs.
      const name = kind === 'claude' ? 'max-turns' : kind === 'codex' ? 'write-refused' : 'three-turns';
      const full = readFileSync(join(fixture('cli'), kind, `${name}.stdout.jsonl`), 'utf8').split('\n').filter((l) => l !== '');
      const cut = join(dir, `cut-${kind}.jsonl`);
      writeFileSync(cut, full.slice(0, -2).join('\n') + '\n');
      const t0 = Date.now();
      const { result, started } = await replay(kind, name, input(kind, {}, { timeoutMs: 1500 }), { REPLAY_HANG: '1', REPLAY_STDOUT: cut });
      expect(result.status).toBe('timed_out');
      expect(result.error).toMatchObject({ type: 'timeout', retryable: true });
      expect(result.error!.message).toMatch(/timed out after 1.5s; process group killed \(\w+: .*tool call/);
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(await waitDead(started.pid)).toBe(true);
    });

    it(`${kind}: an aborted run cancels the attempt`, async () => {
      const ctl = new AbortController();
      setTimeout(() => ctl.abort(), 500);
      const { result } = await replay(kind, undefined, input(kind, {}, { signal: ctl.signal }), { REPLAY_HANG: '1' });
      expect(result.status).toBe('cancelled');
    });
  }

  it('an argument over the OS limit is a config error before anything starts', async () => {
    const { result, started } = await replay('claude', 'read-text', input('claude', { systemPrompt: 'x'.repeat(200 * 1024) }));
    expect(result.error).toMatchObject({ type: 'config', retryable: false });
    expect(result.error!.message).toContain("shorten agent 'scout's systemPrompt");
    expect(started.pid).toBe(0);
  });

  it('points the agent at the context file when the task has dependencies', async () => {
    const ctx = join(dir, 'ctx-deps.json');
    writeFileSync(ctx, JSON.stringify({ schemaVersion: 1, digests: {}, deps: [{ ref: 'a/b', status: 'succeeded', output: 'x', truncated: false }] }));
    const { started } = await replay('pi', 'three-turns', input('pi', {}, { contextFile: ctx }));
    expect(started.stdin).toContain(`The outputs of the 1 task this task depends on are in ${ctx}`);
  });
});

describe('claude, on recorded output of Claude Code 2.1.330', () => {
  it('a Read, then --json-schema structured output: structured, usage, cost, session', async () => {
    const { result, started } = await replay('claude', 'read-structured', input('claude', {}, { schema: SCHEMA }));
    expect(result).toMatchObject({ status: 'succeeded', structured: GOOD, exitCode: 0 });
    expect(JSON.parse(result.output)).toEqual(GOOD);
    expect(result.costUsd).toBeGreaterThan(0);
    expect(result.usage!.inputTokens).toBeGreaterThan(0);
    expect(result.usage!.outputTokens).toBeGreaterThan(0);
    expect(result.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(started.argv).toContain(`--json-schema=${JSON.stringify(SCHEMA)}`);
  });

  it('a plain answer: the text, no structured value', async () => {
    const { result } = await replay('claude', 'read-text', input('claude'));
    expect(result).toMatchObject({ status: 'succeeded', output: 'The secret word is PELICAN-7f3a91 and the file has 3 lines.' });
    expect(result.structured).toBeUndefined();
  });

  it.each([
    ['api-error-529', { type: 'model_api', retryable: true }, /529/],
    ['auth-401', { type: 'auth', retryable: false }, /Invalid API key.*\/login.*ANTHROPIC_API_KEY/],
    ['not-logged-in', { type: 'auth', retryable: false }, /Not logged in/],
    ['max-turns', { type: 'max_turns', retryable: false }, /stopped after 2 turns: Reached maximum number of turns \(1\); raise maxTurns of agent 'scout' \(now 1\)/],
    ['budget', { type: 'budget', retryable: false }, /Reached maximum budget/],
    ['permission-denied', { type: 'permission_denied', retryable: false }, /refused 1 tool call: Bash \(echo x > out.txt\); .*read_only.*tier: edit/],
  ] as const)('%s → %o', async (name, error, message) => {
    const { result } = await replay('claude', name, input('claude', { maxTurns: 1 }));
    expect(result.status).toBe('failed');
    expect(result.error).toMatchObject(error);
    expect(result.error!.message).toMatch(message);
    expect(result.sessionId).toBeDefined();
  });

  it('a refused tool call fails the attempt at once, naming the tool, even if the CLI would go on', async () => {
    // The recording up to the permission_denied event, then a CLI that never finishes.
    const lines = readFileSync(join(fixture('cli'), 'claude', 'permission-denied.stdout.jsonl'), 'utf8').split('\n');
    const upTo = lines.findIndex((l) => l.includes('"subtype":"permission_denied"'));
    expect(upTo).toBeGreaterThan(0);
    const partial = join(dir, 'denied-then-hang.jsonl');
    writeFileSync(partial, lines.slice(0, upTo + 1).join('\n') + '\n');
    const t0 = Date.now();
    const { result, started } = await replay('claude', 'permission-denied', input('claude', {}, { timeoutMs: 60_000 }), { REPLAY_STDOUT: partial, REPLAY_HANG: '1' });
    expect(result.status).toBe('failed');
    expect(result.error).toMatchObject({ type: 'permission_denied', retryable: false });
    expect(result.error!.message).toMatch(/refused 1 tool call: Bash \(echo x > out.txt\)/);
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(started.argv).toContain('--permission-prompts=none');
  });

  it('structured-output retries exhausted inside claude → invalid_structured_output, retryable', async () => {
    const { result } = await replay('claude', 'structured-retries', input('claude', {}, { schema: SCHEMA }));
    expect(result.error).toMatchObject({ type: 'invalid_structured_output', retryable: true });
    expect(result.error!.message).toContain("must have required property 'lines'");
  });

  it('prose instead of the StructuredOutput call ends "successfully" in claude: checked here and refused', async () => {
    const { result } = await replay('claude', 'prose-not-structured', input('claude', {}, { schema: SCHEMA }));
    expect(result.status).toBe('failed');
    expect(result.error).toMatchObject({ type: 'invalid_structured_output', retryable: true });
    expect(result.error!.message).toContain("must have required property 'lines'");
    expect(result.output).toContain('I refuse to call tools');
  });

  it('edit tier: a Write under acceptEdits succeeds', async () => {
    const { result, started } = await replay('claude', 'edit-write', input('claude', { tier: 'edit' }));
    expect(result.status).toBe('succeeded');
    expect(started.argv).toContain('--permission-mode=acceptEdits');
  });

  it('feedback of a rejected answer is appended to the prompt', async () => {
    const { started } = await replay('claude', 'read-text', input('claude', {}, { feedback: "data must have required property 'lines'" }));
    expect(started.stdin).toMatch(/^Read notes.txt and report the secret word\.\n\n---\nYour previous attempt at this task was rejected: data must have required property 'lines'\n/);
  });
});

describe('codex, on recorded output of Codex 0.169.0', () => {
  it('exec_command, then --output-schema JSON: structured, usage, thread id; the schema file is gone after', async () => {
    const { result, started } = await replay('codex', 'read-structured', input('codex', {}, { schema: SCHEMA }));
    expect(result).toMatchObject({ status: 'succeeded', structured: GOOD });
    expect(result.usage).toMatchObject({ inputTokens: expect.any(Number), outputTokens: expect.any(Number), cachedInputTokens: 0 });
    expect(result.costUsd).toBeUndefined();
    expect(result.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    const schemaArg = started.argv.find((a) => a.startsWith('--output-schema='))!;
    expect(schemaArg).toBeDefined();
    expect(() => readFileSync(schemaArg.slice('--output-schema='.length))).toThrow(/ENOENT/);
    expect(started.argv.at(-1)).toBe('-');
  });

  it('an answer that does not match the schema → invalid_structured_output with the errors', async () => {
    const { result } = await replay('codex', 'read-invalid-structured', input('codex', {}, { schema: SCHEMA }));
    expect(result.error).toMatchObject({ type: 'invalid_structured_output', retryable: true });
    expect(result.error!.message).toMatch(/required property 'lines'.*word must be string|word must be string.*required property 'lines'/);
  });

  it.each([
    ['http-500', { type: 'model_api', retryable: true }, /high demand/],
    ['auth-401', { type: 'auth', retryable: false }, /401 Unauthorized.*codex login/],
  ] as const)('%s → %o', async (name, error, message) => {
    const { result } = await replay('codex', name, input('codex'));
    expect(result.status).toBe('failed');
    expect(result.exitCode).toBe(1);
    expect(result.error).toMatchObject(error);
    expect(result.error!.message).toMatch(message);
  });

  it('a write refused by the read-only sandbox is the model\'s business: the answer stands', async () => {
    const { result } = await replay('codex', 'write-refused', input('codex'));
    expect(result).toMatchObject({ status: 'succeeded', output: 'the sandbox refused the write' });
  });

  it('maxTurns: stopped by fanfold once the tool rounds reach it', async () => {
    const { result } = await replay('codex', 'read-structured', input('codex', { maxTurns: 1 }), { REPLAY_LINE_DELAY_MS: '150' });
    expect(result.status).toBe('failed');
    expect(result.error).toMatchObject({ type: 'max_turns', retryable: false });
    expect(result.error!.message).toContain('1 tool call reached maxTurns 1');
  });
});

describe('pi, on recorded output of Pi 0.73.1', () => {
  it('read, then a fenced JSON answer: structured, usage summed over turns, session', async () => {
    const { result, started } = await replay('pi', 'read-structured', input('pi', {}, { schema: SCHEMA }));
    expect(result).toMatchObject({ status: 'succeeded', structured: GOOD });
    expect(result.usage!.inputTokens).toBeGreaterThanOrEqual(120);
    expect(result.usage!.outputTokens).toBeGreaterThanOrEqual(30);
    expect(result.sessionId).toBeDefined();
    expect(started.stdin).toContain('```json\n{\n  "type": "object"');
  });

  it('the model call failed but pi exited 0: failed, retryable', async () => {
    const { result } = await replay('pi', 'error-500', input('pi'));
    expect(result.exitCode).toBe(0);
    expect(result.status).toBe('failed');
    expect(result.error).toMatchObject({ type: 'model_api', retryable: true });
    expect(result.error!.message).toContain('scripted internal failure');
  });

  it.each([
    ['auth-401', /invalid x-api-key.*\/login/],
    ['no-api-key', /No API key found for anthropic.*\/login/],
  ] as const)('%s → auth, not retryable', async (name, message) => {
    const { result } = await replay('pi', name, input('pi'));
    expect(result.error).toMatchObject({ type: 'auth', retryable: false });
    expect(result.error!.message).toMatch(message);
  });

  it('maxTurns: stopped by fanfold when turn maxTurns+1 starts', async () => {
    const { result } = await replay('pi', 'three-turns', input('pi', { maxTurns: 1 }), { REPLAY_LINE_DELAY_MS: '20' });
    expect(result.error).toMatchObject({ type: 'max_turns', retryable: false });
    expect(result.error!.message).toContain('turn 2 started, over maxTurns 1');
    const free = await replay('pi', 'three-turns', input('pi'));
    expect(free.result).toMatchObject({ status: 'succeeded', output: 'done after two reads' });
  });

  it('output over maxOutputBytes is cut on a character boundary and marked', async () => {
    const { result } = await replay('pi', 'three-turns', input('pi', {}, { maxOutputBytes: 5 }));
    expect(result).toMatchObject({ status: 'succeeded', output: 'done ', truncated: true, outputBytes: 20 });
  });
});
