/**
 * argv building of the agent runners (pure functions): prompt passing, tiers, tools, models,
 * system prompts, schemas, MCP; plus executable lookup and failure classification.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { agentEnv, apiFailure, findExecutable, isCliInstalled, readableApiError, resolveBin } from '../../src/runners/agent-cli.js';
import { claudeInvocation, claudeMcpConfig, claudePermissions } from '../../src/runners/claude.js';
import { codexInvocation, codexSandbox, tomlString, tomlStringArray } from '../../src/runners/codex.js';
import { piInvocation, piTools } from '../../src/runners/pi.js';
import { CLAUDE_CREDENTIAL_ENV } from '../../src/runners/sandbox.js';
import type { RunnerInput } from '../../src/runners/types.js';
import type { AgentDef } from '../../src/spec/types.js';

const MCP = { command: '/usr/bin/node', args: ['/opt/fanfold/dist/cli/main.js', 'serve', '--child', '--store', '/p/.agent_workflows'] };

function input(agent: Partial<AgentDef> & Pick<AgentDef, 'runner'>, more: Partial<RunnerInput> = {}): RunnerInput {
  return {
    runId: 'r',
    phaseId: 'p',
    taskId: 't',
    attempt: 1,
    prompt: 'Do the thing.',
    agent: { name: 'a', tier: 'read_only', ...agent },
    cwd: '/work/project',
    promptFile: '/work/project/.agent_workflows/r/inputs/p.t.1.prompt.txt',
    contextFile: '/work/project/.agent_workflows/r/inputs/p.t.1.context.json',
    timeoutMs: 1000,
    maxOutputBytes: 1000,
    signal: new AbortController().signal,
    ...more,
  };
}

describe('claude argv', () => {
  it('read_only default: stream-json, read-only tools offered and pre-approved, dontAsk, prompt on stdin', () => {
    const inv = claudeInvocation(input({ runner: 'claude' }));
    expect(inv.args).toEqual([
      '-p',
      '--output-format=stream-json',
      '--verbose',
      '--no-session-persistence',
      '--tools=Read,Grep,Glob',
      '--allowedTools=Read,Grep,Glob',
      '--permission-mode=dontAsk',
      '--permission-prompts=none',
      '--add-dir=/work/project/.agent_workflows/r/inputs',
      `--settings=${JSON.stringify({
        permissions: { blockReadsOutsideWorkingDirectories: true, blockWritesOutsideWorkingDirectories: true },
        sandbox: {
          enabled: true,
          failIfUnavailable: true,
          allowUnsandboxedCommands: false,
          filesystem: { denyRead: ['~'], allowRead: ['/work/project', '/work/project/.agent_workflows/r/inputs'] },
          credentials: { envVars: CLAUDE_CREDENTIAL_ENV.map((name) => ({ name, mode: 'deny' })) },
          network: { strictAllowlist: true, allowedDomains: [] },
        },
      })}`,
      '--strict-mcp-config',
    ]);
    expect(inv.stdin).toBe('Do the thing.');
    // Never the prompt in argv: a long prompt would hit the OS's per-argument limit.
    expect(inv.args.join(' ')).not.toContain('Do the thing');
  });

  it('sandbox settings: network: true drops the empty allowlist, readDirs become --add-dir, sandbox: off drops the settings', () => {
    const settingsOf = (args: string[]) => JSON.parse(args.find((a) => a.startsWith('--settings='))!.slice('--settings='.length));
    const net = claudeInvocation(input({ runner: 'claude', network: true, readDirs: ['/opt/docs', 'vendor'] }));
    expect(settingsOf(net.args).sandbox.network).toBeUndefined();
    expect(settingsOf(net.args).sandbox.filesystem.allowRead).toEqual(['/work/project', '/work/project/.agent_workflows/r/inputs', '/opt/docs', '/work/project/vendor']);
    expect(net.args).toEqual(expect.arrayContaining(['--add-dir=/opt/docs', '--add-dir=/work/project/vendor']));
    // A credential the spec passes on purpose stays visible to the agent's shell; the others are unset there.
    const passed = claudeInvocation(input({ runner: 'claude', passEnv: ['AWS_ACCESS_KEY_ID'], env: { ANTHROPIC_AUTH_TOKEN: 't' } }));
    const denied = settingsOf(passed.args).sandbox.credentials.envVars.map((v: { name: string; mode: string }) => `${v.name}:${v.mode}`);
    expect(denied).toContain('ANTHROPIC_API_KEY:deny');
    expect(denied).not.toContain('AWS_ACCESS_KEY_ID:deny');
    expect(denied).not.toContain('ANTHROPIC_AUTH_TOKEN:deny');
    const off = claudeInvocation(input({ runner: 'claude', sandbox: 'off' }));
    expect(off.args.some((a) => a.startsWith('--settings='))).toBe(false);
  });

  it('model, maxTurns, system prompt (even one that starts with a dash), schema', () => {
    const schema = { type: 'object', properties: { n: { type: 'integer' } } };
    const inv = claudeInvocation(input({ runner: 'claude', model: 'sonnet', maxTurns: 7, systemPrompt: '- be brief\n- cite files' }, { schema }));
    expect(inv.args).toContain('--model=sonnet');
    expect(inv.args).toContain('--max-turns=7');
    expect(inv.args).toContain('--append-system-prompt=- be brief\n- cite files');
    expect(inv.args).toContain(`--json-schema=${JSON.stringify(schema)}`);
    expect(inv.stdin).toBe('Do the thing.');
  });

  it('a budget for the attempt becomes --max-budget-usd (and none for codex or pi)', () => {
    expect(claudeInvocation(input({ runner: 'claude' }, { maxBudgetUsd: 0.25 })).args).toContain('--max-budget-usd=0.25');
    expect(claudeInvocation(input({ runner: 'claude' }, { maxBudgetUsd: 0 })).args.join(' ')).not.toContain('budget');
    expect(codexInvocation(input({ runner: 'codex' }, { maxBudgetUsd: 1 })).args.join(' ')).not.toContain('budget');
    expect(piInvocation(input({ runner: 'pi' }, { maxBudgetUsd: 1 })).args.join(' ')).not.toContain('budget');
  });

  it('a non-object schema is asked for in the prompt instead of --json-schema', () => {
    const schema = { type: 'array', items: { type: 'string' } };
    const inv = claudeInvocation(input({ runner: 'claude' }, { schema }));
    expect(inv.args.some((a) => a.startsWith('--json-schema'))).toBe(false);
    expect(inv.stdin).toContain('```json\n{\n  "type": "array"');
  });

  it('edit tier: acceptEdits, edit tools pre-approved', () => {
    const inv = claudeInvocation(input({ runner: 'claude', tier: 'edit' }));
    expect(inv.args).toContain('--tools=Read,Grep,Glob,Edit,Write,Bash');
    expect(inv.args).toContain('--allowedTools=Read,Grep,Glob,Edit,Write,Bash');
    expect(inv.args).toContain('--permission-mode=acceptEdits');
    // Nobody answers a prompt: whatever would ask is refused at once.
    expect(inv.args).toContain('--permission-prompts=none');
  });

  it('MCP: the child server in --mcp-config, its two tools pre-approved, strict config', () => {
    const inv = claudeInvocation(input({ runner: 'claude' }, { mcp: MCP }));
    expect(inv.args).toContain(`--mcp-config=${claudeMcpConfig(MCP)}`);
    expect(JSON.parse(claudeMcpConfig(MCP))).toEqual({ mcpServers: { fanfold: { type: 'stdio', ...MCP } } });
    expect(inv.args).toContain('--allowedTools=Read,Grep,Glob,mcp__fanfold__query_workflow,mcp__fanfold__workflow_status');
    expect(inv.args).toContain('--strict-mcp-config');
  });

  it("a profile's tools: offered as listed; read_only pre-approves only the read-only ones", () => {
    const agent: AgentDef = { name: 'x', runner: 'claude', tier: 'read_only', tools: ['Read', 'Grep', 'Bash(git log:*)', 'WebFetch', 'mcp__github__get_issue', 'Edit'] };
    expect(claudePermissions(agent, false)).toEqual({
      tools: ['Read', 'Grep', 'Bash', 'WebFetch', 'Edit'],
      allowed: ['Read', 'Grep', 'WebFetch'],
      mode: 'dontAsk',
    });
    expect(claudePermissions({ ...agent, tier: 'edit' }, true)).toEqual({
      tools: ['Read', 'Grep', 'Bash', 'WebFetch', 'Edit'],
      allowed: ['Read', 'Grep', 'Bash(git log:*)', 'WebFetch', 'Edit', 'mcp__fanfold__query_workflow', 'mcp__fanfold__workflow_status'],
      mode: 'acceptEdits',
    });
    expect(claudePermissions({ ...agent, tools: [] }, false)).toEqual({ tools: [], allowed: [], mode: 'dontAsk' });
  });

  it('feedback on a retry goes after the prompt', () => {
    const inv = claudeInvocation(input({ runner: 'claude' }, { feedback: 'data must have required property n' }));
    expect(inv.stdin).toBe(
      'Do the thing.\n\n---\nYour previous attempt at this task was rejected: data must have required property n\n' +
        'Do the task again and make sure your final answer fixes this.',
    );
  });
});

describe('codex argv', () => {
  it('read_only: read-only sandbox, never asks, prompt on stdin via "-"', () => {
    const inv = codexInvocation(input({ runner: 'codex' }));
    expect(inv.args).toEqual([
      'exec',
      '--json',
      '--skip-git-repo-check',
      '--ephemeral',
      '--sandbox=read-only',
      '--cd=/work/project',
      '-c',
      'approval_policy="never"',
      '-',
    ]);
    expect(inv.stdin).toBe('Do the thing.');
  });

  it('edit: workspace-write; model; system prompt as developer_instructions TOML', () => {
    const inv = codexInvocation(input({ runner: 'codex', tier: 'edit', model: 'gpt-5.5', systemPrompt: 'Say "hi"\nthen \\ stop\u007f' }));
    expect(codexSandbox({ name: 'a', runner: 'codex', tier: 'edit' })).toBe('workspace-write');
    expect(inv.args).toContain('--sandbox=workspace-write');
    expect(inv.args).toContain('--model=gpt-5.5');
    expect(inv.args).toContain('developer_instructions="Say \\"hi\\"\\nthen \\\\ stop\\u007F"');
    expect(inv.args.at(-1)).toBe('-');
  });

  it('schema: --output-schema FILE for an object schema, the prompt otherwise', () => {
    const obj = codexInvocation(input({ runner: 'codex' }, { schema: { type: 'object' } }), { schemaFile: '/tmp/s.json' });
    expect(obj.args).toContain('--output-schema=/tmp/s.json');
    const arr = codexInvocation(input({ runner: 'codex' }, { schema: { type: 'array' } }), {});
    expect(arr.args.some((a) => a.startsWith('--output-schema'))).toBe(false);
    expect(arr.stdin).toContain('"type": "array"');
  });

  it('MCP: -c overrides for the child server, its tools approved', () => {
    const inv = codexInvocation(input({ runner: 'codex' }, { mcp: MCP }));
    expect(inv.args).toEqual(
      expect.arrayContaining([
        'mcp_servers.fanfold.command="/usr/bin/node"',
        'mcp_servers.fanfold.args=["/opt/fanfold/dist/cli/main.js", "serve", "--child", "--store", "/p/.agent_workflows"]',
        'mcp_servers.fanfold.default_tools_approval_mode="approve"',
        'mcp_servers.fanfold.required=true',
      ]),
    );
    expect(tomlStringArray([])).toBe('[]');
    expect(tomlString('a\tb')).toBe('"a\\tb"');
  });
});

describe('pi argv', () => {
  it('read_only: json mode, no session, read-only tools; -p is followed by a flag', () => {
    const inv = piInvocation(input({ runner: 'pi' }));
    expect(inv.args).toEqual(['-p', '--mode', 'json', '--no-session', '--tools', 'read,grep,find,ls']);
    expect(inv.args[1]!.startsWith('-')).toBe(true);
    expect(inv.stdin).toBe('Do the thing.');
  });

  it('edit, model, system prompt, schema asked for in the prompt', () => {
    const inv = piInvocation(input({ runner: 'pi', tier: 'edit', model: 'anthropic/claude-x', systemPrompt: 'Be exact.' }, { schema: { type: 'object' } }));
    expect(inv.args).toEqual(['-p', '--mode', 'json', '--no-session', '--model', 'anthropic/claude-x', '--tools', 'read,bash,edit,write,grep,find,ls', '--append-system-prompt', 'Be exact.']);
    expect(inv.stdin).toMatch(/^Do the thing\.\n\n---\nWhen you are done, end your answer with exactly one JSON value/);
  });

  it('Claude-style tool names map to Pi names; read_only drops the others; none → --no-tools', () => {
    expect(piTools({ name: 'a', runner: 'pi', tier: 'edit', tools: ['Read', 'Glob', 'Bash(git log:*)', 'MultiEdit', 'WebFetch', 'LS'] })).toEqual(['read', 'find', 'bash', 'edit', 'ls']);
    expect(piTools({ name: 'a', runner: 'pi', tier: 'read_only', tools: ['Read', 'Grep', 'Bash', 'Write'] })).toEqual(['read', 'grep']);
    const inv = piInvocation(input({ runner: 'pi', tools: ['WebFetch'] }));
    expect(inv.args).toContain('--no-tools');
    expect(piInvocation(input({ runner: 'pi' }, { mcp: MCP })).args.join(' ')).not.toContain('mcp');
  });
});

describe('executables and env', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fanfold-bin-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('FANFOLD_<KIND>_BIN overrides the name; lookups follow PATH and need the x bit', () => {
    expect(resolveBin('claude', {})).toEqual({ bin: 'claude', fromEnv: false });
    expect(resolveBin('codex', { FANFOLD_CODEX_BIN: ' /x/codex ' })).toEqual({ bin: '/x/codex', fromEnv: true });
    const exe = join(dir, 'claude');
    writeFileSync(exe, '#!/bin/sh\n');
    expect(findExecutable('claude', { PATH: `/nonexistent:${dir}` })).toBeUndefined();
    chmodSync(exe, 0o755);
    expect(findExecutable('claude', { PATH: `/nonexistent:${dir}` })).toBe(exe);
    expect(isCliInstalled('claude', { PATH: dir })).toBe(true);
    expect(isCliInstalled('codex', { PATH: dir })).toBe(false);
    expect(isCliInstalled('codex', { PATH: '', FANFOLD_CODEX_BIN: exe })).toBe(true);
    expect(findExecutable(dir, { PATH: '' })).toBeUndefined(); // a directory is not an executable
  });

  it('the child env: parent scrubbed of CLAUDECODE and FANFOLD_*, then agent env, ids, task env', () => {
    const env = agentEnv(
      { PATH: '/bin', CLAUDECODE: '1', CLAUDE_CODE_ENTRYPOINT: 'x', FANFOLD_CLAUDE_BIN: '/c', ANTHROPIC_API_KEY: 'k', GITHUB_TOKEN: 'g' },
      input({ runner: 'claude', env: { A: '1', FANFOLD_TASK_ID: 'spoofed' } }, { env: { B: '2' } }),
    );
    expect(env).toEqual({
      PATH: '/bin',
      ANTHROPIC_API_KEY: 'k',
      CLAUDE_CODE_SUBPROCESS_ENV_SCRUB: '0',
      A: '1',
      B: '2',
      FANFOLD_RUN_ID: 'r',
      FANFOLD_PHASE_ID: 'p',
      FANFOLD_TASK_ID: 't',
      FANFOLD_ATTEMPT: '1',
      FANFOLD_PROMPT_FILE: '/work/project/.agent_workflows/r/inputs/p.t.1.prompt.txt',
      FANFOLD_CONTEXT_FILE: '/work/project/.agent_workflows/r/inputs/p.t.1.context.json',
    });
  });
});

describe('model API failures', () => {
  const hints = { auth: 'log in' };
  it.each([
    [401, 'bad key', 'auth', false],
    [403, 'forbidden', 'auth', false],
    [undefined, 'Not logged in · Please run /login', 'auth', false],
    [429, 'slow down', 'model_api', true],
    [529, 'Overloaded', 'model_api', true],
    [500, 'boom', 'model_api', true],
    [400, 'bad model', 'model_api', false],
    [404, 'no such model', 'model_api', false],
    [undefined, 'stream disconnected before completion: connection reset', 'model_api', true],
    [undefined, 'unexpected status 503 Service Unavailable: x', 'model_api', true],
    [undefined, 'something odd', 'model_api', false],
  ] as const)('status %s, %j → %s (retryable %s)', (status, text, type, retryable) => {
    expect(apiFailure('claude', status, text, hints)).toMatchObject({ type, retryable });
  });

  it('reads JSON error bodies', () => {
    expect(readableApiError('500 {"type":"error","error":{"type":"api_error","message":"boom"},"request_id":"r"}')).toBe('500 api_error: boom');
    expect(readableApiError('{"error":{"message":"Incorrect API key","type":"invalid_request_error","code":"invalid_api_key"}}')).toBe('invalid_request_error: Incorrect API key');
    expect(readableApiError('no json {here')).toBe('no json {here');
  });
});
