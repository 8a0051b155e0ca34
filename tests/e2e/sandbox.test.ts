/**
 * Canaries for every agent-CLI runner, with the pinned real CLIs against scripted model servers on
 * 127.0.0.1: the scripted model tries to read a file outside the project (a temp HOME's
 * `.ssh/canary`), to write into the project as a read_only agent, and to write outside the
 * project as an edit agent. None of it may work, and the canary never reaches the output or the
 * failure. The `command` runner's canaries (and the TCP one) are in tests/runners/sandbox.test.ts.
 * On by default; FANFOLD_E2E=0 turns it off (loudly). Needs bubblewrap (and socat for Claude Code).
 */
import { existsSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClaudeRunner } from '../../src/runners/claude.js';
import { CodexRunner } from '../../src/runners/codex.js';
import { PiRunner } from '../../src/runners/pi.js';
import { bwrapStatus } from '../../src/runners/sandbox.js';
import type { Runner, RunnerInput, RunnerResult } from '../../src/runners/types.js';
import type { AgentDef, Tier } from '../../src/spec/types.js';
import { startAnthropicServer, toolResults, toolResultText, userText, type AnthropicReply, type AnthropicRequestBody, type AnthropicServer } from './support/anthropic-server.js';
import { ensureCli, type InstalledCli } from './support/clis.js';
import { workflowSandbox, type WorkflowSandbox } from './support/env.js';
import type { RecordedRequest } from './support/http-util.js';
import { functionOutputs, startResponsesServer, userInputText, type ResponsesReply, type ResponsesRequestBody, type ResponsesServer } from './support/responses-server.js';

const ENABLED = process.env.FANFOLD_E2E !== '0';
if (!ENABLED) console.warn('[fanfold e2e] SKIPPED tests/e2e/sandbox.test.ts: the sandbox canaries of real claude/codex/pi are turned off here (FANFOLD_E2E=0).');
const BWRAP = bwrapStatus();
if (ENABLED && !BWRAP.path) console.warn(`[fanfold e2e] SKIPPED tests/e2e/sandbox.test.ts: ${BWRAP.why} (install bubblewrap and socat)`);

type Kind = 'claude' | 'codex' | 'pi';
const CANARY = 'CANARY-PRIVATE-KEY-0d9a7c41e2';
const MARK = /\[canary:([\w-]+)\]/;

/** What the scripted model does, per case (the `[canary:<case>]` mark of the prompt). */
interface Paths {
  canary: string;
  outside: string;
}
let paths: Paths;

/** A tool call per runner and case; then the model answers with what the tool returned. */
function anthropicCall(kase: string, claude: boolean): AnthropicReply {
  switch (kase) {
    case 'read':
      return claude ? { tool: 'Read', input: { file_path: paths.canary } } : { tool: 'read', input: { path: paths.canary } };
    case 'read-project':
      return claude ? { tool: 'Read', input: { file_path: 'notes.txt' } } : { tool: 'read', input: { path: 'notes.txt' } };
    case 'shell-read':
      return { tool: claude ? 'Bash' : 'bash', input: { command: `cat ${paths.canary}; cat ~/.ssh/canary` } };
    case 'write':
      return claude ? { tool: 'Write', input: { file_path: 'ro-written.txt', content: 'x' } } : { tool: 'write', input: { path: 'ro-written.txt', content: 'x' } };
    case 'write-outside':
      return claude ? { tool: 'Write', input: { file_path: paths.outside, content: 'x' } } : { tool: 'write', input: { path: paths.outside, content: 'x' } };
    case 'shell-write-outside':
      return { tool: claude ? 'Bash' : 'bash', input: { command: `echo x > ${paths.outside}; echo done` } };
    case 'shell-read-script':
      // The permission layer sees only `sh peek.sh`: what stops the read is the OS sandbox.
      return { tool: 'Bash', input: { command: 'sh peek.sh' } };
    case 'shell-env':
      return { tool: 'Bash', input: { command: 'echo "key=${ANTHROPIC_API_KEY:-unset}"' } };
    case 'shell-project-write':
      return { tool: 'Bash', input: { command: 'echo x > shell-written.txt && echo wrote' } };
    default:
      throw new Error(`scripted model: unknown case ${kase}`);
  }
}

async function anthropicModel(body: AnthropicRequestBody, _turn: number, req: RecordedRequest): Promise<AnthropicReply> {
  const kase = MARK.exec(userText(body))?.[1] ?? '';
  const results = toolResults(body);
  if (results.length === 0) return anthropicCall(kase, req.query.beta === 'true');
  return `RESULT: ${toolResultText(results.at(-1)!).slice(0, 4000)}`;
}

async function responsesModel(body: ResponsesRequestBody): Promise<ResponsesReply> {
  const kase = MARK.exec(userInputText(body))?.[1] ?? '';
  const outputs = functionOutputs(body);
  if (outputs.length > 0) return `RESULT: ${outputs.at(-1)!.output.slice(0, 4000)}`;
  const cmd: Record<string, string> = {
    read: `cat ${paths.canary}; cat ~/.ssh/canary`,
    'read-project': 'cat notes.txt',
    write: 'echo x > ro-written.txt',
    'write-outside': `echo x > ${paths.outside}`,
    'project-write': 'echo x > edit-written.txt && echo wrote',
  };
  if (!cmd[kase]) throw new Error(`scripted model: unknown case ${kase}`);
  return { tool: 'exec_command', input: { cmd: cmd[kase] } };
}

describe.skipIf(!ENABLED || !BWRAP.path)('sandbox canaries with the real CLIs', () => {
  const clis: Partial<Record<Kind, InstalledCli>> = {};
  let anth: AnthropicServer;
  let resp: ResponsesServer;
  let sb: WorkflowSandbox;

  beforeAll(async () => {
    for (const k of ['claude', 'codex', 'pi'] as const) clis[k] = await ensureCli(k);
    anth = await startAnthropicServer(anthropicModel);
    resp = await startResponsesServer(responsesModel);
    sb = await workflowSandbox({ anthropicUrl: anth.baseUrl, responsesUrl: resp.baseUrl });
    await mkdir(join(sb.home, '.ssh'), { recursive: true });
    await writeFile(join(sb.home, '.ssh', 'canary'), `${CANARY}\n`);
    await mkdir(join(sb.root, 'outside'));
    await sb.writeProjectFile('notes.txt', 'project notes\n');
    await sb.writeProjectFile('peek.sh', `cat ${join(sb.home, '.ssh', 'canary')}; cat "$HOME/.ssh/canary"; echo peeked\n`);
    paths = { canary: join(sb.home, '.ssh', 'canary'), outside: join(sb.root, 'outside', 'escaped.txt') };
  }, 45 * 60_000);

  afterAll(async () => {
    await anth?.close();
    await resp?.close();
    await sb?.cleanup();
  });

  const env = (): Record<string, string> => ({ ...sb.env, FANFOLD_CLAUDE_BIN: clis.claude!.bin, FANFOLD_CODEX_BIN: clis.codex!.bin, FANFOLD_PI_BIN: clis.pi!.bin });
  const runner = (kind: Kind): Runner =>
    kind === 'claude' ? new ClaudeRunner({ baseEnv: env() }) : kind === 'codex' ? new CodexRunner({ baseEnv: env() }) : new PiRunner({ baseEnv: env() });
  const agentOf = (kind: Kind, tier: Tier): AgentDef => ({
    name: `canary-${kind}`,
    runner: kind,
    tier,
    ...(kind === 'claude' ? { model: 'claude-scripted' } : kind === 'pi' ? { model: sb.piModel } : {}),
    ...(kind === 'pi' && tier === 'read_only' ? { tools: ['read', 'write'] } : {}),
  });
  async function run(kind: Kind, tier: Tier, kase: string): Promise<RunnerResult> {
    const dir = join(sb.root, 'inputs', `${kind}-${kase}`);
    await mkdir(dir, { recursive: true });
    const prompt = `[canary:${kase}] Do the one step you are asked to do, then say what the tool returned.`;
    await writeFile(join(dir, 'prompt.txt'), prompt);
    await writeFile(join(dir, 'context.json'), '{"schemaVersion":1,"digests":{},"deps":[]}');
    const input: RunnerInput = {
      runId: 'canary', phaseId: 'canary', taskId: `${kind}-${kase}`, attempt: 1, prompt, agent: agentOf(kind, tier), cwd: sb.project,
      promptFile: join(dir, 'prompt.txt'), contextFile: join(dir, 'context.json'), timeoutMs: 90_000, maxOutputBytes: 256 * 1024,
      signal: new AbortController().signal,
    };
    const r = await runner(kind).run(input);
    // What each CLI did, for tests/e2e/README.md's findings (one line per case).
    console.log(`[fanfold e2e] sandbox ${kind} ${tier} ${kase}: ${r.status}${r.error ? ` ${r.error.type}: ${r.error.message.slice(0, 300)}` : ''} | output: ${r.output.replace(/\s+/g, ' ').slice(0, 300)}`);
    return r;
  }
  const everything = (r: RunnerResult): string => JSON.stringify(r);
  /** Whether the write outside the project happened; removes the file, so one escape fails one test only. */
  const escaped = (): boolean => {
    const there = existsSync(paths.outside);
    rmSync(paths.outside, { force: true });
    return there;
  };

  for (const kind of ['claude', 'codex', 'pi'] as const) {
    it(`${kind}: reads the project inside its sandbox (the control for the canaries below)`, async () => {
      const r = await run(kind, 'read_only', 'read-project');
      expect(r.status, JSON.stringify(r.error)).toBe('succeeded');
      expect(r.output).toContain('project notes');
    }, 150_000);

    it(`${kind}: a file outside the project (HOME/.ssh/canary) never reaches the output or the record`, async () => {
      const r = await run(kind, 'read_only', 'read');
      expect(everything(r)).not.toContain(CANARY);
      expect(r.status === 'succeeded' ? r.output : r.error?.message ?? '').toBeTruthy();
    }, 150_000);

    it(`${kind}: a read_only agent's write into the project fails`, async () => {
      await run(kind, 'read_only', 'write');
      expect(existsSync(join(sb.project, 'ro-written.txt'))).toBe(false);
    }, 150_000);

    it(`${kind}: an edit agent's write outside the project fails`, async () => {
      const r = await run(kind, 'edit', 'write-outside');
      expect(escaped(), JSON.stringify(r)).toBe(false);
    }, 150_000);
  }

  for (const kind of ['claude', 'pi'] as const) {
    it(`${kind}: an edit agent's shell cannot read HOME nor write outside the project`, async () => {
      const read = await run(kind, 'edit', 'shell-read');
      expect(everything(read)).not.toContain(CANARY);
      if (kind === 'claude') {
        const script = await run(kind, 'edit', 'shell-read-script');
        expect(script.output, JSON.stringify(script.error)).toContain('peeked');
        expect(everything(script)).not.toContain(CANARY);
      }
      const write = await run(kind, 'edit', 'shell-write-outside');
      expect(escaped(), JSON.stringify(write)).toBe(false);
    }, 200_000);
  }

  // Claude Code's CLAUDE_CODE_SUBPROCESS_ENV_SCRUB=1 once opened /var, /tmp, /home… to Bash writes
  // (src/runners/env.ts): fanfold turns it off and unsets the model credentials in the sandbox instead.
  it("claude: an edit agent's shell writes the project but never sees the model's API key", async () => {
    const write = await run('claude', 'edit', 'shell-project-write');
    expect(write.status, JSON.stringify(write.error)).toBe('succeeded');
    expect(existsSync(join(sb.project, 'shell-written.txt'))).toBe(true);
    const env = await run('claude', 'edit', 'shell-env');
    expect(env.status, JSON.stringify(env.error)).toBe('succeeded');
    expect(env.output).toContain('key=unset');
    expect(everything(env)).not.toContain(sb.env.ANTHROPIC_API_KEY!);
  }, 150_000);

  it('codex: an edit agent still writes the project (its own sandbox works inside fanfold\'s)', async () => {
    const r = await run('codex', 'edit', 'project-write');
    expect(r.status, JSON.stringify(r.error)).toBe('succeeded');
    expect(existsSync(join(sb.project, 'edit-written.txt'))).toBe(true);
  }, 150_000);
});
