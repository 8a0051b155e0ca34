/**
 * Fresh, offline environments for the real agent CLIs.
 *
 * Each sandbox is a new temp folder:
 *   <root>/home      HOME (and CLAUDE_CONFIG_DIR=<home>/.claude, CODEX_HOME=<home>/.codex,
 *                    PI_CODING_AGENT_DIR=<home>/.pi/agent)
 *   <root>/project   the working directory the agent sees (not a git repository)
 *   <root>/tmp       TMPDIR of the child (codex refuses to create its helper aliases when CODEX_HOME
 *                    lies under the temp dir, so the child's temp dir is a private sibling)
 *
 * The child env is built from scratch (PATH, locale) plus the CLI's own variables — nothing of the
 * parent's ANTHROPIC_*, OPENAI_*, CLAUDECODE, CLAUDE_CODE_ENTRYPOINT leaks in.
 */
import { accessSync, constants } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Sandbox {
  root: string;
  home: string;
  project: string;
  tmp: string;
  env: Record<string, string>;
  /** Write a file relative to the project dir; returns its absolute path. */
  writeProjectFile(rel: string, text: string): Promise<string>;
  cleanup(): Promise<void>;
}

export interface ClaudeSandbox extends Sandbox {
  configDir: string;
}

export interface CodexSandbox extends Sandbox {
  codexHome: string;
  configToml: string;
  /** Name of the model provider written into config.toml. */
  provider: string;
  model: string;
}

export type PiApi = 'anthropic-messages' | 'openai-responses' | 'openai-completions';

export interface PiSandbox extends Sandbox {
  agentDir: string;
  /** Value for `--model`, `<provider>/<id>`. */
  modelArg: string;
}

/** Variables every child gets: a minimal base, never the parent's whole env. */
function baseEnv(home: string, tmp: string): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: home,
    TMPDIR: tmp,
    LANG: process.env.LANG ?? 'C.UTF-8',
    TERM: 'dumb',
    NO_COLOR: '1',
    CI: '1',
  };
  // The machine's CA bundle setting is harmless and keeps Node children quiet about TLS.
  if (process.env.NODE_EXTRA_CA_CERTS) env.NODE_EXTRA_CA_CERTS = process.env.NODE_EXTRA_CA_CERTS;
  return env;
}

/**
 * Where sandboxes are made: `/var/tmp` (else the OS temp dir). Why not /tmp: once bubblewrap is
 * installed, Codex runs its shell commands through it, and with CODEX_HOME under /tmp every one of
 * them fails with "bwrap: execvp codex-linux-sandbox: No such file or directory" (HOSTS.md).
 */
export function sandboxBase(): string {
  const wanted = process.env.FANFOLD_E2E_TMP ?? '/var/tmp';
  try {
    accessSync(wanted, constants.W_OK);
    return wanted;
  } catch {
    return tmpdir();
  }
}

async function makeSandbox(kind: string, extra: Record<string, string> = {}): Promise<Sandbox> {
  const root = await mkdtemp(join(sandboxBase(), `fanfold-e2e-${kind}-`));
  const home = join(root, 'home');
  const project = join(root, 'project');
  const tmp = join(root, 'tmp');
  await Promise.all([mkdir(home), mkdir(project), mkdir(tmp)]);
  return {
    root,
    home,
    project,
    tmp,
    env: { ...baseEnv(home, tmp), ...extra },
    async writeProjectFile(rel, text) {
      const p = join(project, rel);
      await mkdir(join(p, '..'), { recursive: true });
      await writeFile(p, text);
      return p;
    },
    async cleanup() {
      if (process.env.FANFOLD_E2E_KEEP === '1') {
        process.stderr.write(`[fanfold e2e] kept sandbox ${root}\n`);
        return;
      }
      await rm(root, { recursive: true, force: true, maxRetries: 3 });
    },
  };
}

/** The offline variables Claude Code needs (see tests/e2e/README.md). */
export function claudeOfflineVars(baseUrl: string): Record<string, string> {
  return {
    ANTHROPIC_BASE_URL: baseUrl,
    ANTHROPIC_API_KEY: 'sk-ant-scripted-test-key',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_TELEMETRY: '1',
    DISABLE_AUTOUPDATER: '1',
    DISABLE_ERROR_REPORTING: '1',
    CLAUDE_CODE_MAX_RETRIES: '0',
  };
}

export async function claudeSandbox(opts: { baseUrl: string; env?: Record<string, string> }): Promise<ClaudeSandbox> {
  const sb = await makeSandbox('claude');
  const configDir = join(sb.home, '.claude');
  await mkdir(configDir);
  Object.assign(sb.env, { CLAUDE_CONFIG_DIR: configDir, ...claudeOfflineVars(opts.baseUrl), ...(opts.env ?? {}) });
  return { ...sb, configDir };
}

/** TOML basic string (JSON string escapes are valid TOML escapes for what we write). */
const tomlString = (s: string): string => JSON.stringify(s);

export async function codexSandbox(opts: {
  /** Base URL ending in /v1 (ResponsesServer.baseUrl). */
  baseUrl: string;
  model?: string;
  /** Extra TOML appended to config.toml (e.g. `[mcp_servers.x] …`). */
  extraToml?: string;
  env?: Record<string, string>;
}): Promise<CodexSandbox> {
  const sb = await makeSandbox('codex');
  const codexHome = join(sb.home, '.codex');
  await mkdir(codexHome);
  const provider = 'scripted';
  const model = opts.model ?? 'gpt-5.5';
  const configToml = [
    `model = ${tomlString(model)}`,
    `model_provider = ${tomlString(provider)}`,
    `approval_policy = "never"`,
    `check_for_update_on_startup = false`,
    ``,
    `[analytics]`,
    `enabled = false`,
    ``,
    `[features]`,
    `plugins = false`,
    ``,
    `[model_providers.${provider}]`,
    `name = "Scripted test server"`,
    `base_url = ${tomlString(opts.baseUrl)}`,
    `wire_api = "responses"`,
    `env_key = "SCRIPTED_API_KEY"`,
    `request_max_retries = 0`,
    `stream_max_retries = 0`,
    ``,
    opts.extraToml ?? '',
  ].join('\n');
  await writeFile(join(codexHome, 'config.toml'), configToml);
  Object.assign(sb.env, { CODEX_HOME: codexHome, SCRIPTED_API_KEY: 'sk-scripted-test-key', ...(opts.env ?? {}) });
  return { ...sb, codexHome, configToml, provider, model };
}

export async function piSandbox(opts: {
  /** anthropic-messages: server origin (no /v1); openai-*: base URL ending in /v1. */
  baseUrl: string;
  api: PiApi;
  model?: string;
  env?: Record<string, string>;
  /** Merged over the default settings.json. */
  settings?: Record<string, unknown>;
}): Promise<PiSandbox> {
  const sb = await makeSandbox('pi');
  const agentDir = join(sb.home, '.pi', 'agent');
  await mkdir(agentDir, { recursive: true });
  const provider = 'scripted';
  const model = opts.model ?? 'scripted-model';
  await writeFile(
    join(agentDir, 'models.json'),
    JSON.stringify(
      { providers: { [provider]: { baseUrl: opts.baseUrl, api: opts.api, apiKey: 'sk-scripted-test-key', models: [{ id: model }] } } },
      null,
      2,
    ),
  );
  // Pi retries twice over: the provider SDK (2 retries) and its own agent-level loop (3 attempts,
  // 2 s/4 s/8 s). A failing scripted server would then see 12 requests over ~20 s. Turn both off.
  await writeFile(
    join(agentDir, 'settings.json'),
    JSON.stringify(
      {
        quietStartup: true,
        enableInstallTelemetry: false,
        retry: { enabled: false, provider: { maxRetries: 0 } },
        ...(opts.settings ?? {}),
      },
      null,
      2,
    ),
  );
  Object.assign(sb.env, {
    PI_CODING_AGENT_DIR: agentDir,
    PI_OFFLINE: '1',
    PI_SKIP_VERSION_CHECK: '1',
    PI_TELEMETRY: '0',
    ...(opts.env ?? {}),
  });
  return { ...sb, agentDir, modelArg: `${provider}/${model}` };
}

export interface WorkflowSandbox extends Sandbox {
  /** Pi's `--model` value (`scripted/scripted-model`). */
  piModel: string;
}

/**
 * One sandbox for all three CLIs at once, as fanfold's engine runs them: a single HOME holding
 * Claude's config dir, CODEX_HOME (config.toml pointing at the Responses server) and Pi's agent dir
 * (Anthropic Messages provider `scripted`). `env` is what the fanfold process gets; its agent
 * runners pass it on to every CLI child.
 */
export async function workflowSandbox(opts: { anthropicUrl: string; responsesUrl: string; env?: Record<string, string> }): Promise<WorkflowSandbox> {
  const sb = await makeSandbox('workflow');
  const configDir = join(sb.home, '.claude');
  const codexHome = join(sb.home, '.codex');
  const piDir = join(sb.home, '.pi', 'agent');
  await Promise.all([mkdir(configDir), mkdir(codexHome), mkdir(piDir, { recursive: true })]);
  const codex = await codexSandbox({ baseUrl: opts.responsesUrl });
  await writeFile(join(codexHome, 'config.toml'), codex.configToml);
  await codex.cleanup();
  await writeFile(
    join(piDir, 'models.json'),
    JSON.stringify({ providers: { scripted: { baseUrl: opts.anthropicUrl, api: 'anthropic-messages', apiKey: 'sk-scripted-test-key', models: [{ id: 'scripted-model' }] } } }),
  );
  await writeFile(
    join(piDir, 'settings.json'),
    JSON.stringify({ quietStartup: true, enableInstallTelemetry: false, retry: { enabled: false, provider: { maxRetries: 0 } } }),
  );
  Object.assign(sb.env, {
    CLAUDE_CONFIG_DIR: configDir,
    ...claudeOfflineVars(opts.anthropicUrl),
    CODEX_HOME: codexHome,
    SCRIPTED_API_KEY: 'sk-scripted-test-key',
    PI_CODING_AGENT_DIR: piDir,
    PI_OFFLINE: '1',
    PI_SKIP_VERSION_CHECK: '1',
    PI_TELEMETRY: '0',
    ...(opts.env ?? {}),
  });
  return { ...sb, piModel: 'scripted/scripted-model' };
}
