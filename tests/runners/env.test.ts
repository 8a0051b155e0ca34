import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandRunner } from '../../src/runners/command.js';
import { childEnv, childEnvNames, codexProviderEnvKey, missingPassEnv, piProviderKeys } from '../../src/runners/env.js';
import type { AgentDef, RunnerKind } from '../../src/spec/types.js';


let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fanfold-env-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An owner environment with a bit of everything a person keeps there. */
const OWNER: NodeJS.ProcessEnv = {
  PATH: '/usr/bin:/bin',
  HOME: '/home/me',
  LANG: 'C.UTF-8',
  LC_ALL: 'C.UTF-8',
  TZ: 'UTC',
  TERM: 'xterm',
  TMPDIR: '/tmp',
  HTTPS_PROXY: 'http://proxy:3128',
  no_proxy: 'localhost',
  NODE_EXTRA_CA_CERTS: '/etc/ca.pem',
  ANTHROPIC_API_KEY: 'sk-ant-owner',
  ANTHROPIC_BASE_URL: 'http://127.0.0.1:9',
  CLAUDE_CONFIG_DIR: '/home/me/.claude',
  CLAUDE_CODE_OAUTH_TOKEN: 'oauth',
  CLAUDE_CODE_MAX_RETRIES: '0',
  DISABLE_TELEMETRY: '1',
  ENABLE_TOOL_SEARCH: 'false',
  OPENAI_API_KEY: 'sk-openai-owner',
  CODEX_HOME: '/nonexistent/codex',
  PI_CODING_AGENT_DIR: '/nonexistent/pi',
  PI_OFFLINE: '1',
  AWS_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE',
  AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  GITHUB_TOKEN: 'ghp_owner',
  FANFOLD_REDIS_URL: 'redis://:pw@localhost',
  FANFOLD_STORE: '/somewhere',
  CLAUDECODE: '1',
  CLAUDE_CODE_ENTRYPOINT: 'cli',
  SSH_AUTH_SOCK: '/run/agent.sock',
  MY_DB_PASSWORD: 'hunter2hunter2',
};

const BASE = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TERM', 'TMPDIR', 'HTTPS_PROXY', 'no_proxy', 'NODE_EXTRA_CA_CERTS'];

function agent(runner: RunnerKind, more: Partial<AgentDef> = {}): AgentDef {
  return { name: 'a', runner, tier: 'read_only', ...(runner === 'command' ? { command: ['true'] } : {}), ...more };
}

describe('childEnv: an allowlist per runner', () => {
  it('command: only the base, network and task variables', () => {
    const env = childEnv({ agent: agent('command'), base: OWNER, task: { FANFOLD_RUN_ID: 'r' } });
    expect(Object.keys(env).sort()).toEqual([...BASE, 'FANFOLD_RUN_ID'].sort());
  });

  it('claude: its model settings and switches, scrub off (it widens Bash writes); never the markers, AWS, GitHub or FANFOLD_*', () => {
    const env = childEnv({ agent: agent('claude'), base: OWNER });
    expect(env).toMatchObject({
      ANTHROPIC_API_KEY: 'sk-ant-owner',
      ANTHROPIC_BASE_URL: 'http://127.0.0.1:9',
      CLAUDE_CONFIG_DIR: '/home/me/.claude',
      CLAUDE_CODE_OAUTH_TOKEN: 'oauth',
      CLAUDE_CODE_MAX_RETRIES: '0',
      DISABLE_TELEMETRY: '1',
      ENABLE_TOOL_SEARCH: 'false',
      CLAUDE_CODE_SUBPROCESS_ENV_SCRUB: '0',
    });
    for (const n of ['CLAUDECODE', 'CLAUDE_CODE_ENTRYPOINT', 'AWS_ACCESS_KEY_ID', 'GITHUB_TOKEN', 'OPENAI_API_KEY', 'FANFOLD_STORE', 'MY_DB_PASSWORD', 'SSH_AUTH_SOCK']) {
      expect(env[n], n).toBeUndefined();
    }
  });

  it("claude: CLAUDE_CODE_SUBPROCESS_ENV_SCRUB is 0 even when the owner or the agent's env says 1 (it opens Bash writes)", () => {
    const base = { ...OWNER, CLAUDE_CODE_SUBPROCESS_ENV_SCRUB: '1' };
    expect(childEnv({ agent: agent('claude'), base }).CLAUDE_CODE_SUBPROCESS_ENV_SCRUB).toBe('0');
    expect(childEnv({ agent: agent('claude', { env: { CLAUDE_CODE_SUBPROCESS_ENV_SCRUB: '1' } }), base: OWNER }).CLAUDE_CODE_SUBPROCESS_ENV_SCRUB).toBe('0');
  });

  it('claude in Bedrock mode gets the AWS credentials', () => {
    const env = childEnv({ agent: agent('claude'), base: { ...OWNER, CLAUDE_CODE_USE_BEDROCK: '1' } });
    expect(env.AWS_ACCESS_KEY_ID).toBe('AKIAIOSFODNN7EXAMPLE');
    expect(env.AWS_SECRET_ACCESS_KEY).toBeDefined();
    expect(childEnv({ agent: agent('claude'), base: { ...OWNER, CLAUDE_CODE_USE_BEDROCK: '0' } }).AWS_ACCESS_KEY_ID).toBeUndefined();
  });

  it('codex: OpenAI settings, CODEX_HOME and the env_key of the provider config.toml selects', () => {
    const home = join(dir, 'codex-home');
    mkdirSync(home, { recursive: true });
    writeFileSync(
      join(home, 'config.toml'),
      ['model = "gpt-5.5"', 'model_provider = "mine"', '', '[model_providers.other]', 'env_key = "OTHER_KEY"', '', '[model_providers.mine]', 'name = "x"', 'env_key = "MINE_KEY"'].join('\n'),
    );
    const base = { ...OWNER, CODEX_HOME: home, MINE_KEY: 'm', OTHER_KEY: 'o' };
    expect(codexProviderEnvKey(base)).toBe('MINE_KEY');
    const env = childEnv({ agent: agent('codex'), base });
    expect(env).toMatchObject({ OPENAI_API_KEY: 'sk-openai-owner', CODEX_HOME: home, MINE_KEY: 'm' });
    expect(env.OTHER_KEY).toBeUndefined();
    expect(env.ANTHROPIC_API_KEY).toBeUndefined();
    expect(env.CLAUDE_CODE_SUBPROCESS_ENV_SCRUB).toBeUndefined();
  });

  it("pi: PI_* and the key of the model's provider only", () => {
    const env = childEnv({ agent: agent('pi', { model: 'openai/gpt-5' }), base: OWNER });
    expect(env).toMatchObject({ PI_CODING_AGENT_DIR: '/nonexistent/pi', PI_OFFLINE: '1', OPENAI_API_KEY: 'sk-openai-owner' });
    expect(env.ANTHROPIC_API_KEY).toBeUndefined();
    expect(env.GITHUB_TOKEN).toBeUndefined();
  });

  it('pi: a custom provider of models.json whose apiKey names a variable; settings.json defaultProvider', () => {
    const pidir = join(dir, 'pi-agent');
    mkdirSync(pidir, { recursive: true });
    writeFileSync(join(pidir, 'models.json'), JSON.stringify({ providers: { scripted: { apiKey: 'SCRIPTED_KEY', models: [] } } }));
    writeFileSync(join(pidir, 'settings.json'), JSON.stringify({ defaultProvider: 'scripted' }));
    const base = { ...OWNER, PI_CODING_AGENT_DIR: pidir };
    expect(piProviderKeys({ model: 'scripted/m' }, base)).toEqual(['SCRIPTED_KEY']);
    expect(piProviderKeys({}, base)).toEqual(['SCRIPTED_KEY']);
    expect(piProviderKeys({ model: 'anthropic/claude' }, base)).toEqual(['ANTHROPIC_OAUTH_TOKEN', 'ANTHROPIC_API_KEY']);
  });

  it('spec env and passEnv are added; passEnv reads the owner env; fanfold ids win over a spoof', () => {
    const env = childEnv({
      agent: agent('command', { env: { MODE: 'fast', FANFOLD_TASK_ID: 'spoof' }, passEnv: ['GITHUB_TOKEN', 'NOT_SET'] }),
      base: OWNER,
      task: { FANFOLD_TASK_ID: 't' },
      extra: { X: 'y' },
    });
    expect(env).toMatchObject({ MODE: 'fast', GITHUB_TOKEN: 'ghp_owner', FANFOLD_TASK_ID: 't', X: 'y' });
    expect('NOT_SET' in env).toBe(false);
    expect(missingPassEnv({ passEnv: ['GITHUB_TOKEN', 'NOT_SET'] }, OWNER)).toEqual(['NOT_SET']);
  });

  it('the owner FANFOLD_* never pass, even through passEnv', () => {
    const env = childEnv({ agent: agent('command', { passEnv: ['FANFOLD_REDIS_URL'] }), base: OWNER });
    expect(env.FANFOLD_REDIS_URL).toBeUndefined();
  });

  it('childEnvNames: the names with their source, never a value', () => {
    const names = childEnvNames(agent('command', { env: { MODE: 'x' }, passEnv: ['GITHUB_TOKEN'] }), OWNER);
    const bySource = Object.fromEntries(names.map((n) => [n.name, n.source]));
    expect(bySource).toMatchObject({ PATH: 'base', HTTPS_PROXY: 'network', MODE: 'env', GITHUB_TOKEN: 'passEnv', FANFOLD_RUN_ID: 'fanfold' });
    expect(bySource.ANTHROPIC_API_KEY).toBeUndefined();
    expect(JSON.stringify(names)).not.toContain('ghp_owner');
  });
});

describe('a real command child sees only what it was given', () => {
  it('prints its whole env: no owner secret in it', async () => {
    const runner = new CommandRunner({ baseEnv: { ...process.env, ...OWNER, PATH: process.env.PATH } });
    const script = join(dir, 'dump-env.mjs');
    writeFileSync(script, 'process.stdout.write(JSON.stringify(Object.keys(process.env).sort()))');
    const promptFile = join(dir, 'p.txt');
    writeFileSync(promptFile, 'x');
    const r = await runner.run({
      runId: 'r', phaseId: 'p', taskId: 't', attempt: 1, prompt: 'x',
      agent: agent('command', { command: [process.execPath, script], passEnv: ['MY_DB_PASSWORD'] }),
      cwd: dir, promptFile, contextFile: join(dir, 'c.json'), timeoutMs: 10_000, maxOutputBytes: 64 * 1024,
      signal: new AbortController().signal,
    });
    expect(r.status, JSON.stringify(r.error)).toBe('succeeded');
    const keys = JSON.parse(r.output) as string[];
    for (const n of ['ANTHROPIC_API_KEY', 'AWS_ACCESS_KEY_ID', 'GITHUB_TOKEN', 'FANFOLD_REDIS_URL', 'OPENAI_API_KEY', 'CLAUDECODE']) {
      expect(keys, n).not.toContain(n);
    }
    expect(keys).toContain('MY_DB_PASSWORD');
    expect(keys).toContain('FANFOLD_PROMPT_FILE');
  });
});
