/**
 * The environment of a child, by allowlist.
 *
 * Why an allowlist and not a blocklist: the owner's environment holds whatever its person keeps
 * there (cloud keys, a GITHUB_TOKEN, a Redis URL with a password in FANFOLD_REDIS_URL), and a
 * child may be an agent reading code that strangers wrote. A blocklist misses the next secret
 * nobody thought of; an allowlist gives a child only what it needs to run and reach its model:
 *
 * - every child: PATH, HOME, LANG, LC_*, TZ, TERM, TMPDIR, NO_COLOR;
 * - every child: proxy and CA settings (HTTPS_PROXY, HTTP_PROXY, NO_PROXY, ALL_PROXY in either
 *   case, NODE_EXTRA_CA_CERTS, SSL_CERT_FILE, SSL_CERT_DIR);
 * - what its runner's CLI needs to reach its model (RUNNER_NEEDS below; claude also gets the
 *   cloud credentials of Bedrock or Vertex mode when the owner's env turns that mode on; codex the
 *   `env_key` of the provider its config.toml selects; pi its provider's key);
 * - the FANFOLD_* variables fanfold sets for the task — never the owner's own FANFOLD_* settings;
 * - what the spec declares: the agent's `env` (values) and `passEnv` (names whose values come
 *   from the owner's environment).
 * No module outside this one decides what a child sees.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { AgentDef, RunnerKind } from '../spec/types.js';
import { isSecretName } from '../redact/index.js';

/** Variables every child gets from the owner's env when set. */
export const BASE_ENV_NAMES: readonly string[] = ['PATH', 'HOME', 'LANG', 'TZ', 'TERM', 'TMPDIR', 'NO_COLOR'];

/** Prefixes every child gets (locale). */
export const BASE_ENV_PREFIXES: readonly string[] = ['LC_'];

/** Proxy and CA settings every child gets, so a CLI behind a corporate proxy still reaches its model. */
export const NETWORK_ENV_NAMES: readonly string[] = [
  'HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY', 'ALL_PROXY', 'https_proxy', 'http_proxy', 'no_proxy', 'all_proxy',
  'NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'SSL_CERT_DIR',
];

/** What each runner's CLI needs to reach its model and run offline-quiet: exact names and prefixes. */
export const RUNNER_NEEDS: Readonly<Record<RunnerKind, { names: readonly string[]; prefixes: readonly string[] }>> = {
  claude: {
    names: [
      'ANTHROPIC_API_KEY', 'ANTHROPIC_AUTH_TOKEN', 'ANTHROPIC_BASE_URL', 'CLAUDE_CONFIG_DIR',
      'DISABLE_TELEMETRY', 'DISABLE_AUTOUPDATER', 'DISABLE_ERROR_REPORTING', 'DISABLE_NON_ESSENTIAL_MODEL_CALLS',
      'DISABLE_COST_WARNINGS', 'DISABLE_PROMPT_CACHING', 'ENABLE_TOOL_SEARCH', 'MAX_MCP_OUTPUT_TOKENS', 'MCP_TIMEOUT',
      'MCP_TOOL_TIMEOUT', 'MAX_THINKING_TOKENS', 'BASH_DEFAULT_TIMEOUT_MS', 'BASH_MAX_TIMEOUT_MS', 'BASH_MAX_OUTPUT_LENGTH',
    ],
    // ANTHROPIC_* carries the model settings (ANTHROPIC_MODEL, ANTHROPIC_CUSTOM_HEADERS, Vertex
    // project); CLAUDE_CODE_* holds CLAUDE_CODE_OAUTH_TOKEN and the CLI's own switches.
    prefixes: ['ANTHROPIC_', 'CLAUDE_CODE_'],
  },
  codex: { names: ['OPENAI_API_KEY', 'OPENAI_BASE_URL', 'OPENAI_ORG_ID', 'OPENAI_PROJECT_ID', 'CODEX_HOME', 'CODEX_API_KEY'], prefixes: [] },
  pi: { names: ['PI_CODING_AGENT_DIR'], prefixes: ['PI_'] },
  command: { names: [], prefixes: [] },
};

/**
 * The CLAUDE_CODE_SUBPROCESS_ENV_SCRUB every Claude child gets: off. Why (checked with 2.1.330,
 * tests/e2e/README.md): that mode is Claude Code's GitHub Actions hardening. Besides stripping
 * credentials from the shells it starts, it adds `/home`, `/root`, `/tmp`, `/var`, `/opt`, `/run` and
 * `/mnt` to the Bash sandbox's writable paths (`--bind /var /var` after `--ro-bind / /`), so an
 * edit agent's `echo x > /var/tmp/elsewhere` succeeded, and it forces the permission mode to
 * `default`, overriding the tier's. Set explicitly, so an owner's `=1` cannot turn it on either.
 */
export const CLAUDE_SCRUB_VALUE = '0';

/** Variables never passed whatever allows them: Claude Code's markers make a nested `claude` refuse to start. */
export const NEVER_PASSED: readonly string[] = ['CLAUDECODE', 'CLAUDE_CODE_ENTRYPOINT'];

/** Claude Code in Bedrock mode (CLAUDE_CODE_USE_BEDROCK) needs the AWS credentials. */
const BEDROCK_NAMES = [
  'AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_PROFILE', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN',
  'AWS_BEARER_TOKEN_BEDROCK', 'AWS_CONFIG_FILE', 'AWS_SHARED_CREDENTIALS_FILE', 'AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_ROLE_ARN',
];

/** Claude Code in Vertex mode (CLAUDE_CODE_USE_VERTEX) needs Google's credentials. */
const VERTEX_NAMES = ['GOOGLE_APPLICATION_CREDENTIALS', 'GOOGLE_CLOUD_PROJECT', 'GCLOUD_PROJECT', 'CLOUD_ML_REGION'];

/** Pi's built-in providers and the variables their keys come from (pi-ai 0.73's env-api-keys). */
export const PI_PROVIDER_KEYS: Readonly<Record<string, readonly string[]>> = {
  anthropic: ['ANTHROPIC_OAUTH_TOKEN', 'ANTHROPIC_API_KEY'],
  openai: ['OPENAI_API_KEY'],
  'azure-openai-responses': ['AZURE_OPENAI_API_KEY'],
  deepseek: ['DEEPSEEK_API_KEY'],
  google: ['GEMINI_API_KEY'],
  'google-vertex': ['GOOGLE_CLOUD_API_KEY'],
  groq: ['GROQ_API_KEY'],
  cerebras: ['CEREBRAS_API_KEY'],
  xai: ['XAI_API_KEY'],
  openrouter: ['OPENROUTER_API_KEY'],
  'vercel-ai-gateway': ['AI_GATEWAY_API_KEY'],
  zai: ['ZAI_API_KEY'],
  mistral: ['MISTRAL_API_KEY'],
  minimax: ['MINIMAX_API_KEY'],
  moonshotai: ['MOONSHOT_API_KEY'],
  huggingface: ['HF_TOKEN'],
  fireworks: ['FIREWORKS_API_KEY'],
  'github-copilot': ['COPILOT_GITHUB_TOKEN', 'GH_TOKEN', 'GITHUB_TOKEN'],
  'amazon-bedrock': BEDROCK_NAMES,
};

/** Where a name a child receives comes from (for `fanfold plan`). */
export type EnvSource = 'base' | 'network' | 'runner' | 'fanfold' | 'env' | 'passEnv' | 'task';

/** The FANFOLD_* names fanfold sets for every task's child. */
export const TASK_ENV_NAMES: readonly string[] = [
  'FANFOLD_RUN_ID', 'FANFOLD_PHASE_ID', 'FANFOLD_TASK_ID', 'FANFOLD_ATTEMPT', 'FANFOLD_PROMPT_FILE', 'FANFOLD_CONTEXT_FILE',
];

const truthy = (v: string | undefined): boolean => v !== undefined && v !== '' && !/^(0|false|no|off)$/i.test(v.trim());

const hasPrefix = (name: string, prefixes: readonly string[]): boolean => prefixes.some((p) => name.startsWith(p));

/**
 * The codex provider's `env_key` from `$CODEX_HOME/config.toml` (default `~/.codex`): the key of
 * the `[model_providers.<id>]` that the top-level `model_provider` names. A minimal line reader,
 * enough for the keys written as `key = "value"`; an unreadable file gives none.
 */
export function codexProviderEnvKey(base: NodeJS.ProcessEnv): string | undefined {
  const home = base.CODEX_HOME || (base.HOME ? path.join(base.HOME, '.codex') : undefined);
  if (!home) return undefined;
  let text: string;
  try {
    text = readFileSync(path.join(home, 'config.toml'), 'utf8');
  } catch {
    return undefined;
  }
  let section = '';
  let provider: string | undefined;
  const keys = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/^\s+|\s+$/g, '');
    const header = /^\[([^\]]+)\]/.exec(line);
    if (header) {
      section = header[1]!.trim();
      continue;
    }
    const kv = /^([A-Za-z0-9_.-]+)\s*=\s*["']([^"']*)["']/.exec(line);
    if (!kv) continue;
    if (section === '' && kv[1] === 'model_provider') provider = kv[2];
    const m = /^model_providers\.["']?([^"'\]]+)["']?$/.exec(section);
    if (m && kv[1] === 'env_key') keys.set(m[1]!, kv[2]!);
  }
  return provider !== undefined ? keys.get(provider) : undefined;
}

/**
 * The names of the key(s) pi reads for this agent: its provider is the part of `model` before the
 * `/`, else the `defaultProvider` of pi's settings.json. A custom provider of models.json whose
 * `apiKey` names a variable gives that name. Unknown: the model-API keys of the built-in providers
 * (pi picks the first it finds), without GITHUB_TOKEN and AWS_*.
 */
export function piProviderKeys(agent: Pick<AgentDef, 'model'>, base: NodeJS.ProcessEnv): string[] {
  const dir = base.PI_CODING_AGENT_DIR || (base.HOME ? path.join(base.HOME, '.pi', 'agent') : undefined);
  const readJson = (file: string): Record<string, unknown> | undefined => {
    if (!dir) return undefined;
    try {
      const v = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as unknown;
      return v && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  };
  let provider = agent.model?.includes('/') ? agent.model.slice(0, agent.model.indexOf('/')) : undefined;
  if (provider === undefined) {
    const p = readJson('settings.json')?.defaultProvider;
    if (typeof p === 'string') provider = p;
  }
  if (provider !== undefined) {
    const builtin = PI_PROVIDER_KEYS[provider];
    if (builtin) return [...builtin];
    const custom = (readJson('models.json')?.providers as Record<string, { apiKey?: unknown }> | undefined)?.[provider];
    const key = custom?.apiKey;
    return typeof key === 'string' && /^[A-Z_][A-Z0-9_]*$/.test(key) ? [key] : [];
  }
  // Unknown provider: the model-API keys pi may pick from, but not the general-purpose credentials
  // that two providers borrow (GITHUB_TOKEN, AWS_*): those pass only when the agent names that provider.
  const borrowed = new Set([...PI_PROVIDER_KEYS['github-copilot']!, ...PI_PROVIDER_KEYS['amazon-bedrock']!]);
  return [...new Set(Object.values(PI_PROVIDER_KEYS).flat())].filter((n) => !borrowed.has(n));
}

/** The names a child of `agent` may take from the owner's env, besides `passEnv`. */
function runnerAllows(agent: Pick<AgentDef, 'runner' | 'model'>, base: NodeJS.ProcessEnv): (name: string) => boolean {
  const needs = RUNNER_NEEDS[agent.runner] ?? RUNNER_NEEDS.command;
  const extra = new Set<string>(needs.names);
  if (agent.runner === 'claude') {
    if (truthy(base.CLAUDE_CODE_USE_BEDROCK)) BEDROCK_NAMES.forEach((n) => extra.add(n));
    if (truthy(base.CLAUDE_CODE_USE_VERTEX)) VERTEX_NAMES.forEach((n) => extra.add(n));
  } else if (agent.runner === 'codex') {
    const key = codexProviderEnvKey(base);
    if (key) extra.add(key);
  } else if (agent.runner === 'pi') {
    piProviderKeys(agent, base).forEach((n) => extra.add(n));
  }
  return (name) => extra.has(name) || hasPrefix(name, needs.prefixes);
}

/** Where a name of the owner's env would come from for this agent, or undefined when it is not passed. */
function sourceOf(name: string, allowRunner: (n: string) => boolean, passEnv: ReadonlySet<string>): EnvSource | undefined {
  if (NEVER_PASSED.includes(name)) return undefined;
  // Why the owner's FANFOLD_* never pass: they configure fanfold itself (a store path, a Redis URL
  // with its password, the ids of an outer run); the child's own are set below.
  if (name.startsWith('FANFOLD_')) return undefined;
  if (BASE_ENV_NAMES.includes(name) || hasPrefix(name, BASE_ENV_PREFIXES)) return 'base';
  if (NETWORK_ENV_NAMES.includes(name)) return 'network';
  if (allowRunner(name)) return 'runner';
  if (passEnv.has(name)) return 'passEnv';
  return undefined;
}

/** What `childEnv` builds from. */
export interface ChildEnvInput {
  /** The agent: its runner, model, declared `env` and `passEnv`. */
  agent: Pick<AgentDef, 'runner' | 'model' | 'env' | 'passEnv'>;
  /** The owner's environment. */
  base: NodeJS.ProcessEnv;
  /** The FANFOLD_* variables fanfold sets for this task (run, phase, task, attempt, files). */
  task?: Record<string, string>;
  /** Extra variables the caller adds last (RunnerInput.env). */
  extra?: Record<string, string>;
}

/**
 * The whole environment of one child: allowlisted names of the owner's env, the agent's `env`,
 * its `passEnv` (from the owner's env), fanfold's FANFOLD_* for the task, then `extra`. Claude
 * children always get CLAUDE_CODE_SUBPROCESS_ENV_SCRUB=0 (CLAUDE_SCRUB_VALUE says why); their
 * shells lose the provider credentials through the sandbox settings instead (claudeSettings).
 */
export function childEnv(input: ChildEnvInput): NodeJS.ProcessEnv {
  const { agent, base } = input;
  const allowRunner = runnerAllows(agent, base);
  const passEnv = new Set(agent.passEnv ?? []);
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(base)) {
    if (value === undefined) continue;
    if (sourceOf(name, allowRunner, passEnv) !== undefined) env[name] = value;
  }
  for (const [name, value] of Object.entries(agent.env ?? {})) env[name] = value;
  // After the owner's env and the agent's `env`: a 1 from either would undo the edit tier.
  if (agent.runner === 'claude') env.CLAUDE_CODE_SUBPROCESS_ENV_SCRUB = CLAUDE_SCRUB_VALUE;
  for (const [name, value] of Object.entries(input.task ?? {})) env[name] = value;
  for (const [name, value] of Object.entries(input.extra ?? {})) {
    if (value !== undefined) env[name] = value;
  }
  for (const name of NEVER_PASSED) delete env[name];
  return env;
}

/** One name a child will receive, and why. */
export interface EnvNameView {
  name: string;
  source: EnvSource;
}

/**
 * The names (never the values) a child of `agent` will receive, with where each comes from: for
 * `fanfold plan`. Names of the owner's env are the ones set now; `passEnv` names that are not set
 * are listed by `missingPassEnv`.
 */
export function childEnvNames(agent: Pick<AgentDef, 'runner' | 'model' | 'env' | 'passEnv'>, base: NodeJS.ProcessEnv): EnvNameView[] {
  const allowRunner = runnerAllows(agent, base);
  const passEnv = new Set(agent.passEnv ?? []);
  const out = new Map<string, EnvSource>();
  for (const [name, value] of Object.entries(base)) {
    if (value === undefined) continue;
    const source = sourceOf(name, allowRunner, passEnv);
    if (source) out.set(name, source);
  }
  for (const name of Object.keys(agent.env ?? {})) out.set(name, 'env');
  if (agent.runner === 'claude') out.set('CLAUDE_CODE_SUBPROCESS_ENV_SCRUB', 'runner');
  for (const name of TASK_ENV_NAMES) out.set(name, 'fanfold');
  for (const name of NEVER_PASSED) out.delete(name);
  return [...out].map(([name, source]) => ({ name, source })).sort((a, b) => a.name.localeCompare(b.name));
}

/** `passEnv` names of `agent` that the owner's env does not set (the child will not get them). */
export function missingPassEnv(agent: Pick<AgentDef, 'passEnv'>, base: NodeJS.ProcessEnv): string[] {
  return (agent.passEnv ?? []).filter((n) => base[n] === undefined);
}

/** What `fanfold plan` shows of one agent's environment: the names it gets, and passEnv names that are not set. */
export interface AgentEnvView {
  agent: string;
  runner: RunnerKind;
  names: string[];
  missingPassEnv: string[];
  /** Names of the agent's own `env` that look secret: stored as `[REDACTED]` in run.json. */
  secretEnv: string[];
}

/** The environment views of a plan's agents (names only, never values), in the plan's order. */
export function planEnvViews(agents: Record<string, AgentDef>, base: NodeJS.ProcessEnv): AgentEnvView[] {
  return Object.values(agents).map((a) => ({
    agent: a.name,
    runner: a.runner,
    names: childEnvNames(a, base).map((n) => n.name),
    missingPassEnv: missingPassEnv(a, base),
    secretEnv: Object.keys(a.env ?? {}).filter(isSecretName),
  }));
}

/** Text lines for `fanfold plan`: per agent, the names its child will receive. */
export function renderEnvViews(views: AgentEnvView[]): string[] {
  if (views.length === 0) return [];
  const lines = ['Environment (names each agent receives; the rest of yours is withheld):'];
  for (const v of views) {
    lines.push(`  ${v.agent} (${v.runner}): ${v.names.join(', ')}`);
    if (v.missingPassEnv.length > 0) lines.push(`    passEnv not set here, so not passed: ${v.missingPassEnv.join(', ')}`);
    if (v.secretEnv.length > 0) {
      lines.push(`    env ${v.secretEnv.join(', ')} look${v.secretEnv.length === 1 ? 's' : ''} secret: stored as [REDACTED] in run.json; better set ${v.secretEnv.length === 1 ? 'it' : 'them'} in your environment and list ${v.secretEnv.length === 1 ? 'it' : 'them'} in passEnv`);
    }
  }
  return lines;
}
