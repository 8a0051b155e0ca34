/**
 * The installers against the real, pinned host CLIs (offline, scripted model servers on
 * 127.0.0.1). On by default; FANFOLD_E2E=0 turns them off (loudly) (the CLIs are installed on demand into the CLI cache).
 *
 * - `fanfold install claude --scope user` in a fresh HOME → `claude mcp list` shows
 *   `fanfold: … ✔ Connected` (it exits 0 either way, so the text is what counts), and a
 *   `claude -p` session sees the skill and the /workflow command where they were installed.
 *   Once with the default locations (~/.claude.json, ~/.claude/) and once with CLAUDE_CONFIG_DIR.
 * - The plugin: `claude plugin validate`, `claude plugin marketplace add <folder>`,
 *   `claude plugin install fanfold@fanfold` → `plugin:fanfold:fanfold … ✔ Connected`.
 * - `fanfold install codex` into a CODEX_HOME full of other settings → `codex exec --strict-config`
 *   accepts the file, and a scripted model's call to fanfold's workflow_status goes through (so
 *   `default_tools_approval_mode = "approve"` is what lets calls pass under approval `never`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureCli } from '../e2e/support/clis.js';
import { claudeSandbox, codexSandbox, type ClaudeSandbox } from '../e2e/support/env.js';
import { startAnthropicServer, type AnthropicServer } from '../e2e/support/anthropic-server.js';
import { functionOutputs, startResponsesServer, type ResponsesServer } from '../e2e/support/responses-server.js';
import { describeRun, runCli } from '../e2e/support/run.js';
import { CLI, REPO, fanfold } from '../helpers/cli.js';

const ENABLED = process.env.FANFOLD_E2E !== '0';
if (!ENABLED) {
  // Never skip silently.
  console.warn(
    '[fanfold e2e] SKIPPED tests/install/e2e.test.ts: installs checked against the real claude and codex CLIs are turned off here (FANFOLD_E2E=0) ' +
      '(they install the pinned CLIs on demand into the CLI cache).',
  );
}

/** The sandbox env as a plain record, for `fanfold install` (the built CLI, with this node). */
function installEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  return { ...env, CLAUDE_CONFIG_DIR: env.CLAUDE_CONFIG_DIR ?? undefined, CODEX_HOME: env.CODEX_HOME ?? undefined };
}

describe.skipIf(!ENABLED)('installs checked with the real Claude Code (2.1.330)', () => {
  let claude: string;
  let server: AnthropicServer;
  const sandboxes: ClaudeSandbox[] = [];

  beforeAll(async () => {
    claude = (await ensureCli('claude')).bin;
    // `claude mcp list` and `plugin` commands retry the API for ~18 s without a reachable base URL.
    server = await startAnthropicServer(() => 'ok');
  }, 20 * 60_000);

  afterAll(async () => {
    await server?.close();
    for (const sb of sandboxes) await sb.cleanup();
  });

  async function sandbox(opts: { configDir: boolean }): Promise<ClaudeSandbox> {
    const sb = await claudeSandbox({ baseUrl: server.baseUrl });
    sandboxes.push(sb);
    // The sandbox sets CLAUDE_CONFIG_DIR=$HOME/.claude; a user usually has it unset.
    if (!opts.configDir) delete sb.env.CLAUDE_CONFIG_DIR;
    return sb;
  }

  for (const configDir of [false, true]) {
    it(`install claude --scope user → claude mcp list shows ✔ Connected (CLAUDE_CONFIG_DIR ${configDir ? 'set' : 'unset'})`, async () => {
      expect(fs.existsSync(CLI)).toBe(true);
      const sb = await sandbox({ configDir });
      const inst = fanfold(['install', 'claude', '--scope', 'user'], { cwd: sb.project, env: installEnv(sb.env) });
      expect(inst.status, inst.stderr).toBe(0);
      const userFile = configDir ? path.join(sb.env.CLAUDE_CONFIG_DIR!, '.claude.json') : path.join(sb.home, '.claude.json');
      expect(JSON.parse(fs.readFileSync(userFile, 'utf8')).mcpServers.fanfold).toBeDefined();

      const list = await runCli(claude, ['mcp', 'list'], { cwd: sb.project, env: sb.env, timeoutMs: 55_000 });
      expect(list.code, describeRun(list)).toBe(0);
      // The server is fanfold serve, started by claude from a folder that is not this repo.
      expect(list.stdout, describeRun(list)).toMatch(/^fanfold: .*dist\/cli\/main\.js serve - ✔ Connected$/m);

      // A session sees the skill and the command where the installer put them.
      const before = server.requests.length;
      const run = await runCli(claude, ['-p', 'hello', '--output-format', 'json', '--max-turns', '1', '--no-session-persistence'], { cwd: sb.project, env: sb.env, timeoutMs: 55_000 });
      expect(run.code, describeRun(run)).toBe(0);
      const sent = server.requests.slice(before).map((r) => r.rawBody).join('\n');
      expect(sent).toContain('Run big, parallel agent work through fanfold');
      expect(sent).toContain('Plan a fanfold workflow (many sub-agents in parallel)');

      // A second install changes nothing, and claude still lists the server.
      const again = fanfold(['install', 'claude'], { cwd: sb.project, env: installEnv(sb.env) });
      expect(again.stdout).toMatch(/nothing to change/);
    }, 240_000);
  }

  it('the plugin: validate, marketplace add, install → plugin:fanfold:fanfold ✔ Connected, with its skill and command', async () => {
    const sb = await sandbox({ configDir: false });
    // The plugin folder as a clone that was built: the repository's shipped files plus dist/ and
    // node_modules/ (linked: the plugin runs from the marketplace folder in place).
    const folder = path.join(sb.root, 'fanfold');
    fs.mkdirSync(folder);
    for (const rel of ['.claude-plugin', 'skill', 'agents', 'dist', 'package.json', 'package-lock.json', 'README.md']) {
      if (fs.existsSync(path.join(REPO, rel))) fs.cpSync(path.join(REPO, rel), path.join(folder, rel), { recursive: true });
    }
    fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(folder, 'node_modules'));

    // Generous limits: on a loaded two-core machine each of these claude starts can take a while.
    const opts = { cwd: sb.project, env: sb.env, timeoutMs: 55_000 };
    const validate = await runCli(claude, ['plugin', 'validate', path.join(folder, '.claude-plugin', 'plugin.json')], opts);
    expect(validate.code, describeRun(validate)).toBe(0);
    expect(validate.stdout).toMatch(/mcpServers: fanfold stdio node/);
    expect(validate.stdout).toMatch(/skills: fanfold:fanfold/);
    expect(validate.stdout).toMatch(/commands: fanfold:workflow/);
    const market = await runCli(claude, ['plugin', 'validate', path.join(folder, '.claude-plugin', 'marketplace.json')], opts);
    expect(market.code, describeRun(market)).toBe(0);

    const add = await runCli(claude, ['plugin', 'marketplace', 'add', folder], opts);
    expect(add.code, describeRun(add)).toBe(0);
    const install = await runCli(claude, ['plugin', 'install', 'fanfold@fanfold'], opts);
    expect(install.code, describeRun(install)).toBe(0);
    expect(install.stdout).toMatch(/Successfully installed plugin: fanfold@fanfold/);

    const list = await runCli(claude, ['mcp', 'list'], opts);
    expect(list.stdout, describeRun(list)).toMatch(/^plugin:fanfold:fanfold: node .*\.claude-plugin\/launch\.mjs serve - ✔ Connected$/m);

    const before = server.requests.length;
    const run = await runCli(claude, ['-p', 'hello', '--output-format', 'json', '--max-turns', '1', '--no-session-persistence'], opts);
    expect(run.code, describeRun(run)).toBe(0);
    const sent = server.requests.slice(before).map((r) => r.rawBody).join('\n');
    expect(sent).toContain('fanfold:fanfold');
    expect(sent).toContain('fanfold:workflow');
  }, 400_000);
});

const BUSY_TOML = `# my settings
[mcp_servers.other]
command = "other-server"   # keep this comment
args = ["--flag"]

[mcp_servers.other.env]
TOKEN = "abc"
`;

describe.skipIf(!ENABLED)('installs checked with the real Codex (0.169.0)', () => {
  let codex: string;
  let server: ResponsesServer;

  beforeAll(async () => {
    codex = (await ensureCli('codex')).bin;
  }, 20 * 60_000);

  afterAll(async () => {
    await server?.close();
  });

  it('install codex → --strict-config accepts the file, and a model\'s call to fanfold goes through', async () => {
    // The model: find fanfold's tools (Codex hides MCP tools behind tool_search, and connects
    // its servers in the background: search again until they are there), call workflow_status
    // (namespaced), then answer.
    let searches = 0;
    server = await startResponsesServer(async (body) => {
      const outputs = functionOutputs(body);
      const found = body.input.some((i) => i.type === 'tool_search_output' && JSON.stringify(i).includes('"name":"mcp__fanfold"'));
      if (!found) {
        if (searches > 0) await new Promise((r) => setTimeout(r, 500));
        if (++searches > 40) return 'gave up: fanfold never showed up in tool_search';
        return { items: [{ type: 'tool_search_call', call_id: `ts_${searches}`, status: 'completed', execution: 'client', arguments: { query: 'fanfold workflow_status' } }] };
      }
      if (outputs.length === 0) return { tool: 'workflow_status', namespace: 'mcp__fanfold', input: {} };
      return `tool said: ${outputs[0]!.output.slice(0, 400)}`;
    });
    const sb = await codexSandbox({ baseUrl: server.baseUrl, extraToml: BUSY_TOML });
    try {
      const inst = fanfold(['install', 'codex'], { cwd: sb.project, env: installEnv(sb.env) });
      expect(inst.status, inst.stderr).toBe(0);
      const config = fs.readFileSync(path.join(sb.codexHome, 'config.toml'), 'utf8');
      expect(config.startsWith(sb.configToml)).toBe(true);
      expect(config).toContain('command = "other-server"   # keep this comment');
      expect(config).toContain('default_tools_approval_mode = "approve"');
      expect(fs.existsSync(path.join(sb.home, '.agents/skills/fanfold/SKILL.md'))).toBe(true);

      const get = await runCli(codex, ['mcp', 'get', 'fanfold'], { cwd: sb.project, env: sb.env });
      expect(get.code, describeRun(get)).toBe(0);
      expect(get.stdout).toMatch(/args: .*dist\/cli\/main\.js serve/);

      const run = await runCli(
        codex,
        ['exec', '--strict-config', '--json', '--skip-git-repo-check', '--ephemeral', '--sandbox', 'read-only', '-C', sb.project, 'What workflows ran here?'],
        { cwd: sb.project, env: sb.env, timeoutMs: 55_000 },
      );
      expect(run.code, describeRun(run)).toBe(0);
      expect(run.stderr).not.toMatch(/unknown configuration field/);
      // The call reached fanfold serve and its answer came back to the model.
      const last = server.responseRequests.at(-1)!;
      const out = functionOutputs(last.body as Parameters<typeof functionOutputs>[0]).map((o) => o.output).join('\n');
      expect(out, describeRun(run)).toMatch(/No runs yet|runs/i);
      expect(run.stdout).toMatch(/"type":"mcp_tool_call"/);
      // The skill was listed to the model (from ~/.agents/skills), once.
      const first = server.responseRequests[0]!.rawBody;
      expect(first.split('Run big, parallel agent work through fanfold').length - 1).toBe(1);
    } finally {
      await sb.cleanup();
    }
  }, 240_000);
});
