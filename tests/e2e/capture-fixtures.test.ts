/**
 * Records what the REAL pinned CLIs print for the exact argv fanfold's runners build, into
 * tests/runners/fixtures/cli/<kind>/<case>.{stdout.jsonl,meta.json}. The unit tests in
 * tests/runners/ parse those recordings, so parsing is tested against real output without the CLIs.
 *
 * Re-record after a CLI upgrade: FANFOLD_CAPTURE=1 npx vitest run tests/e2e/capture-fixtures.test.ts
 * (skipped, loudly, otherwise).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { claudeInvocation } from '../../src/runners/claude.js';
import { codexInvocation } from '../../src/runners/codex.js';
import { piInvocation } from '../../src/runners/pi.js';
import { agentEnv, type Invocation } from '../../src/runners/agent-cli.js';
import { runProcess } from '../../src/runners/process.js';
import type { RunnerInput } from '../../src/runners/types.js';
import type { AgentDef } from '../../src/spec/types.js';
import { startAnthropicServer, toolResults, type AnthropicScript } from './support/anthropic-server.js';
import { ensureCli, REPO_ROOT } from './support/clis.js';
import { claudeSandbox, codexSandbox, piSandbox, type Sandbox } from './support/env.js';
import { functionOutputs, startResponsesServer, type ResponsesScript } from './support/responses-server.js';

const ENABLED = process.env.FANFOLD_E2E !== '0' && process.env.FANFOLD_CAPTURE === '1';
if (!ENABLED) {
  console.warn(
    '[fanfold e2e] SKIPPED tests/e2e/capture-fixtures.test.ts: it re-records tests/runners/fixtures/cli/ from the real CLIs; ' +
      'run with FANFOLD_CAPTURE=1 after a CLI upgrade.',
  );
}

const OUT = join(REPO_ROOT, 'tests', 'runners', 'fixtures', 'cli');
const NOTES = 'Field notes\nthe secret word is PELICAN-7f3a91\nend of notes\n';
const SCHEMA = {
  type: 'object',
  properties: { word: { type: 'string' }, lines: { type: 'integer' } },
  required: ['word', 'lines'],
  additionalProperties: false,
};
const GOOD = { word: 'PELICAN-7f3a91', lines: 3 };

function input(sb: Sandbox, agent: Partial<AgentDef> & Pick<AgentDef, 'runner'>, more: Partial<RunnerInput> = {}): RunnerInput {
  return {
    runId: 'run-capture',
    phaseId: 'p',
    taskId: 't',
    attempt: 1,
    prompt: 'Read notes.txt and report the secret word and the number of lines.',
    agent: { name: 'capture', tier: 'read_only', ...agent },
    cwd: sb.project,
    promptFile: join(sb.root, 'prompt.txt'),
    contextFile: join(sb.root, 'context.json'),
    timeoutMs: 40_000,
    maxOutputBytes: 256 * 1024,
    signal: new AbortController().signal,
    ...more,
  };
}

/** Runs the CLI with the runner's argv and writes the recording. */
async function capture(kind: 'claude' | 'codex' | 'pi', name: string, sb: Sandbox, inv: Invocation, env: Record<string, string> = sb.env): Promise<{ exitCode: number | null; stdout: string }> {
  const cli = await ensureCli(kind);
  const proc = await runProcess({
    argv: [cli.bin, ...inv.args],
    cwd: sb.project,
    env: agentEnv(env, input(sb, { runner: kind })),
    stdin: inv.stdin,
    timeoutMs: 45_000,
    maxOutputBytes: 8 * 1024 * 1024,
  });
  const scrub = (s: string): string => s.split(sb.root).join('<sandbox>');
  await mkdir(join(OUT, kind), { recursive: true });
  await writeFile(join(OUT, kind, `${name}.stdout.jsonl`), scrub(proc.stdout));
  await writeFile(
    join(OUT, kind, `${name}.meta.json`),
    JSON.stringify(
      {
        cli: `${kind} ${cli.version}`,
        args: inv.args.map(scrub),
        exitCode: proc.exitCode,
        signal: proc.signal,
        timedOut: proc.timedOut,
        stderrTail: scrub(proc.stderrTail),
      },
      null,
      2,
    ) + '\n',
  );
  return { exitCode: proc.exitCode, stdout: proc.stdout };
}

const readThenAnswer = (answer: (turn: number) => ReturnType<AnthropicScript>): AnthropicScript => (body, turn) => {
  if (toolResults(body).length === 0) return { tool: 'Read', input: { file_path: 'notes.txt' } };
  return answer(turn);
};

describe.skipIf(!ENABLED)('capture real CLI output for the runner unit tests', () => {
  const claudeCase = (name: string, script: AnthropicScript, agent: Partial<AgentDef>, more: Partial<RunnerInput> = {}, tweak?: (inv: Invocation, env: Record<string, string>) => void) =>
    it(`claude ${name}`, async () => {
      const server = await startAnthropicServer(script);
      const sb = await claudeSandbox({ baseUrl: server.baseUrl });
      try {
        await sb.writeProjectFile('notes.txt', NOTES);
        const inv = claudeInvocation(input(sb, { runner: 'claude', model: 'claude-scripted', ...agent }, more));
        const env = { ...sb.env };
        tweak?.(inv, env);
        const r = await capture('claude', name, sb, inv, env);
        expect(r.stdout.length).toBeGreaterThan(0);
      } finally {
        await server.close();
        await sb.cleanup();
      }
    }, 90_000);

  claudeCase('read-structured', readThenAnswer(() => ({ text: 'Found it.', toolCalls: [{ tool: 'StructuredOutput', input: GOOD }] })), {}, { schema: SCHEMA });
  claudeCase('read-text', readThenAnswer(() => 'The secret word is PELICAN-7f3a91 and the file has 3 lines.'), { systemPrompt: '- starts with a dash' });
  claudeCase('api-error-529', () => ({ error: { status: 529, type: 'overloaded_error', message: 'Overloaded' } }), {});
  claudeCase('auth-401', () => ({ error: { status: 401, type: 'authentication_error', message: 'invalid x-api-key' } }), {});
  claudeCase('not-logged-in', () => 'unused', {}, {}, (_inv, env) => {
    delete env.ANTHROPIC_API_KEY;
  });
  claudeCase('max-turns', () => ({ tool: 'Read', input: { file_path: 'notes.txt' } }), { maxTurns: 1 });
  claudeCase('budget', readThenAnswer(() => 'done'), {}, {}, (inv) => inv.args.push('--max-budget-usd=0.0001'));
  claudeCase('structured-retries', () => ({ tool: 'StructuredOutput', input: { word: 7 } }), {}, { schema: SCHEMA });
  claudeCase('prose-not-structured', () => 'I refuse to call tools. {"word": "x"}', {}, { schema: SCHEMA });
  // A read_only profile that lists Bash: offered, not pre-approved, refused by dontAsk.
  claudeCase('permission-denied', (body) => (toolResults(body).length === 0 ? { tool: 'Bash', input: { command: 'echo x > out.txt' } } : 'could not write it'), { tools: ['Read', 'Bash'] });
  claudeCase('edit-write', (body) => (toolResults(body).length === 0 ? { tool: 'Write', input: { file_path: 'out.txt', content: 'hello\n' } } : 'wrote it'), { tier: 'edit' });

  const codexCase = (name: string, script: ResponsesScript, agent: Partial<AgentDef>, more: Partial<RunnerInput> = {}) =>
    it(`codex ${name}`, async () => {
      const server = await startResponsesServer(script);
      const sb = await codexSandbox({ baseUrl: server.baseUrl });
      const tmp = await mkdtemp(join(tmpdir(), 'fanfold-capture-'));
      try {
        await sb.writeProjectFile('notes.txt', NOTES);
        const schemaFile = join(tmp, 'schema.json');
        await writeFile(schemaFile, JSON.stringify(SCHEMA));
        const inv = codexInvocation(input(sb, { runner: 'codex', ...agent }, more), more.schema ? { schemaFile } : {});
        const r = await capture('codex', name, sb, inv);
        expect(r.stdout.length).toBeGreaterThan(0);
      } finally {
        await server.close();
        await sb.cleanup();
        await rm(tmp, { recursive: true, force: true });
      }
    }, 90_000);
  const codexRead = (answer: () => ReturnType<ResponsesScript>): ResponsesScript => (body) =>
    functionOutputs(body).length === 0 ? { tool: 'exec_command', input: { cmd: 'cat notes.txt' } } : answer();

  codexCase('read-structured', codexRead(() => JSON.stringify(GOOD)), { systemPrompt: 'Be brief.' }, { schema: SCHEMA });
  codexCase('read-invalid-structured', codexRead(() => '{"word": 7}'), {}, { schema: SCHEMA });
  codexCase('http-500', () => ({ error: { status: 500, message: 'scripted internal failure', type: 'server_error' } }), {});
  codexCase('auth-401', () => ({ error: { status: 401, message: 'Incorrect API key provided', type: 'invalid_request_error', code: 'invalid_api_key' } }), {});
  codexCase('write-refused', (body) => (functionOutputs(body).length === 0 ? { tool: 'exec_command', input: { cmd: 'echo x > out.txt' } } : 'the sandbox refused the write'), {}, {});

  const piCase = (name: string, script: AnthropicScript, agent: Partial<AgentDef>, more: Partial<RunnerInput> = {}, env?: (e: Record<string, string>) => void) =>
    it(`pi ${name}`, async () => {
      const server = await startAnthropicServer(script);
      const sb = await piSandbox({ baseUrl: server.baseUrl, api: 'anthropic-messages' });
      try {
        await sb.writeProjectFile('notes.txt', NOTES);
        const inv = piInvocation(input(sb, { runner: 'pi', model: sb.modelArg, ...agent }, more));
        const e = { ...sb.env };
        env?.(e);
        const r = await capture('pi', name, sb, inv, e);
        expect(r.stdout.length + r.exitCode!).toBeGreaterThan(0);
      } finally {
        await server.close();
        await sb.cleanup();
      }
    }, 90_000);
  const piRead = (answer: () => ReturnType<AnthropicScript>): AnthropicScript => (body) =>
    toolResults(body).length === 0 ? { tool: 'read', input: { path: 'notes.txt' } } : answer();

  piCase('read-structured', piRead(() => ({ text: 'Here it is:\n```json\n' + JSON.stringify(GOOD) + '\n```', usage: { input_tokens: 120, output_tokens: 30 } })), {}, { schema: SCHEMA });
  piCase('error-500', () => ({ error: { status: 500, type: 'api_error', message: 'scripted internal failure' } }), {});
  piCase('auth-401', () => ({ error: { status: 401, type: 'authentication_error', message: 'invalid x-api-key' } }), {});
  piCase('no-api-key', () => 'unused', { model: 'anthropic/claude-sonnet-4-5' }, {}, (e) => {
    delete e.ANTHROPIC_API_KEY;
  });
  piCase('three-turns', (body) => (toolResults(body).length < 2 ? { tool: 'read', input: { path: 'notes.txt' } } : 'done after two reads'), {});
});
