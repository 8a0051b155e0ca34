/**
 * `fanfold install claude|codex` through the built CLI, into temp HOMEs and projects: what it
 * creates, that a second run changes nothing, that other entries and comments survive, that a
 * dry run writes nothing, that malformed files are refused untouched, symlinks and modes kept.
 */
import fs from 'node:fs';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { CLI, REPO, fanfold, tempDir } from '../helpers/cli.js';
import { hasTomlOracle, parseTomlAll } from './toml-oracle.js';

const MAIN = path.join(REPO, 'dist', 'cli', 'main.js');
const SKILL = fs.readFileSync(path.join(REPO, 'skill/SKILL.md'), 'utf8');
const SPEC_REF = fs.readFileSync(path.join(REPO, 'skill/reference/spec.md'), 'utf8');
const COMMAND = fs.readFileSync(path.join(REPO, '.claude-plugin/commands/workflow.md'), 'utf8');

interface Box {
  home: string;
  project: string;
  env: NodeJS.ProcessEnv;
}

/** A fresh HOME and project; the host variables of the machine running the tests are cleared. */
function box(extra: NodeJS.ProcessEnv = {}): Box {
  const root = tempDir('fanfold-install-');
  const home = path.join(root, 'home');
  const project = path.join(root, 'project');
  fs.mkdirSync(home);
  fs.mkdirSync(project);
  return { home, project, env: { HOME: home, CLAUDE_CONFIG_DIR: undefined, CODEX_HOME: undefined, ...extra } };
}

function run(b: Box, args: string[]) {
  return fanfold(['install', ...args], { cwd: b.project, env: b.env });
}

/** Every file under `dir` with its bytes and mtime, to prove that nothing was touched. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else {
        const st = fs.lstatSync(p);
        out[path.relative(dir, p)] = `${st.mtimeMs} ${st.mode} ${e.isSymbolicLink() ? `-> ${fs.readlinkSync(p)}` : fs.readFileSync(p, 'utf8')}`;
      }
    }
  };
  walk(dir);
  return out;
}

const write = (file: string, text: string) => {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
};
const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'));

beforeEach(() => {
  expect(fs.existsSync(CLI), 'the CLI must be built (npm test builds first)').toBe(true);
});

describe('fanfold install claude --scope user', () => {
  it('registers the server, installs the skill and /workflow; a second run changes nothing', () => {
    const b = box();
    const r = run(b, ['claude']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Installed fanfold for Claude Code \(user scope\):/);
    expect(readJson(path.join(b.home, '.claude.json'))).toEqual({
      mcpServers: { fanfold: { type: 'stdio', command: process.execPath, args: [MAIN, 'serve'], env: {} } },
    });
    expect(fs.readFileSync(path.join(b.home, '.claude/skills/fanfold/SKILL.md'), 'utf8')).toBe(SKILL);
    expect(fs.readFileSync(path.join(b.home, '.claude/skills/fanfold/reference/spec.md'), 'utf8')).toBe(SPEC_REF);
    expect(fs.readFileSync(path.join(b.home, '.claude/commands/workflow.md'), 'utf8')).toBe(COMMAND);
    expect(fs.readdirSync(b.project)).toEqual([]);

    const before = snapshot(b.home);
    const again = run(b, ['claude']);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^fanfold is already installed for Claude Code \(user scope\): nothing to change\./);
    expect(again.stdout.match(/^ {2}ok {6}/gm)).toHaveLength(4);
    expect(snapshot(b.home)).toEqual(before);
  });

  it('keeps everything else in ~/.claude.json: other servers, keys, order, indentation, mode', () => {
    const b = box();
    const file = path.join(b.home, '.claude.json');
    const original = {
      numStartups: 12,
      theme: 'dark',
      projects: { '/work/x': { allowedTools: ['Bash(npm test)'], mcpServers: { local: { command: 'l' } } } },
      mcpServers: {
        github: { type: 'stdio', command: 'npx', args: ['-y', '@modelcontextprotocol/server-github'], env: { GITHUB_TOKEN: 'secret' } },
        remote: { type: 'http', url: 'https://example.invalid/mcp' },
      },
      tipsHistory: { a: 1 },
    };
    write(file, JSON.stringify(original, null, 2));
    fs.chmodSync(file, 0o600);
    const r = run(b, ['claude']);
    expect(r.status, r.stderr).toBe(0);
    const after = readJson(file);
    const { fanfold: added, ...others } = after.mcpServers;
    expect(others).toEqual(original.mcpServers);
    expect({ ...after, mcpServers: others }).toEqual(original);
    expect(Object.keys(after)).toEqual(Object.keys(original));
    expect(added).toEqual({ type: 'stdio', command: process.execPath, args: [MAIN, 'serve'], env: {} });
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    // The text around the new entry is the old text: the diff only adds lines.
    expect(r.stdout).toMatch(/update {2}~\/\.claude\.json \(MCP server 'fanfold', user scope\)/);
    expect(r.stdout).toContain('+     "fanfold": {');
    expect(r.stdout.match(/^ {12}- .*$/gm)).toBeNull();
  });

  it('updates an entry that points elsewhere (a moved checkout) and keeps the env the user added', () => {
    const b = box();
    const file = path.join(b.home, '.claude.json');
    write(file, JSON.stringify({ mcpServers: { fanfold: { type: 'stdio', command: 'node', args: ['/old/fanfold/dist/cli/main.js', 'serve'], env: { FANFOLD_APPROVAL_AGENTS: '50' } } } }, null, 2));
    const r = run(b, ['claude']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ {2}update {2}~\/\.claude\.json/m);
    expect(r.stdout).toMatch(/^ +- +"\/old\/fanfold\/dist\/cli\/main\.js",$/m);
    expect(readJson(file).mcpServers.fanfold).toEqual({ type: 'stdio', command: process.execPath, args: [MAIN, 'serve'], env: { FANFOLD_APPROVAL_AGENTS: '50' } });
  });

  it('--dry-run lists the changes as a diff and writes nothing', () => {
    const b = box();
    write(path.join(b.home, '.claude.json'), '{\n  "mcpServers": {\n    "other": { "command": "o" }\n  }\n}\n');
    const before = snapshot(b.home);
    const r = run(b, ['claude', '--dry-run']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/dry run, nothing written/);
    expect(r.stdout).toMatch(/^ {2}update {2}~\/\.claude\.json/m);
    expect(r.stdout).toMatch(/^ {12}\+ {5}"fanfold": \{$/m);
    expect(r.stdout).toMatch(/^ {2}create {2}~\/\.claude\/skills\/fanfold\/SKILL\.md \(skill, \d+ lines\)$/m);
    expect(r.stdout).toMatch(/^ {2}create {2}~\/\.claude\/commands\/workflow\.md/m);
    expect(r.stdout).toMatch(/Run again without --dry-run to apply\./);
    expect(snapshot(b.home)).toEqual(before);
    expect(fs.existsSync(path.join(b.home, '.claude'))).toBe(false);
  });

  it('refuses a malformed ~/.claude.json, names it and the parse error, and writes nothing at all', () => {
    const b = box();
    const file = path.join(b.home, '.claude.json');
    write(file, '{\n  "mcpServers": {\n    "a": { "command": "x" },\n  }\n}\n');
    const before = snapshot(b.home);
    const r = run(b, ['claude']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`fanfold: install: ${file} is not valid JSON (line 4, column 3)`);
    expect(r.stderr).toMatch(/nothing was written/);
    expect(r.stdout).toBe('');
    expect(snapshot(b.home)).toEqual(before);
  });

  it('follows CLAUDE_CONFIG_DIR for the config, the skill and the command', () => {
    const b = box();
    const cfg = path.join(b.home, 'cfg');
    b.env.CLAUDE_CONFIG_DIR = cfg;
    const r = run(b, ['claude']);
    expect(r.status, r.stderr).toBe(0);
    expect(readJson(path.join(cfg, '.claude.json')).mcpServers.fanfold.args).toEqual([MAIN, 'serve']);
    expect(fs.existsSync(path.join(cfg, 'skills/fanfold/SKILL.md'))).toBe(true);
    expect(fs.existsSync(path.join(cfg, 'commands/workflow.md'))).toBe(true);
    expect(fs.readdirSync(b.home)).toEqual(['cfg']);
  });

  it('writes through a symlinked config (dotfiles stay links) ', () => {
    const b = box();
    const real = path.join(b.home, 'dotfiles', 'claude.json');
    write(real, '{"mcpServers": {}}\n');
    fs.symlinkSync(real, path.join(b.home, '.claude.json'));
    const r = run(b, ['claude']);
    expect(r.status, r.stderr).toBe(0);
    expect(fs.lstatSync(path.join(b.home, '.claude.json')).isSymbolicLink()).toBe(true);
    expect(readJson(real).mcpServers.fanfold.command).toBe(process.execPath);
    expect(r.stdout).toContain('~/.claude.json → ~/dotfiles/claude.json');
  });

  it('leaves a /workflow command and a skill folder that are not fanfold\'s alone, and says so', () => {
    const b = box();
    const cmd = path.join(b.home, '.claude/commands/workflow.md');
    write(cmd, '---\ndescription: my own workflow\n---\nDo my thing with $ARGUMENTS\n');
    const skill = path.join(b.home, '.claude/skills/fanfold/SKILL.md');
    write(skill, '---\nname: something-else\ndescription: x\n---\n');
    const r = run(b, ['claude']);
    expect(r.status, r.stderr).toBe(0);
    expect(fs.readFileSync(cmd, 'utf8')).toBe('---\ndescription: my own workflow\n---\nDo my thing with $ARGUMENTS\n');
    expect(fs.readFileSync(skill, 'utf8')).toBe('---\nname: something-else\ndescription: x\n---\n');
    expect(r.stdout).toMatch(/^ {2}skip {4}~\/\.claude\/commands\/workflow\.md .*not fanfold's/m);
    expect(r.stdout).toMatch(/^ {2}skip {4}~\/\.claude\/skills\/fanfold\/SKILL\.md .*'something-else'/m);
    expect(readJson(path.join(b.home, '.claude.json')).mcpServers.fanfold).toBeDefined();
  });

  it('replaces an older fanfold skill and command', () => {
    const b = box();
    write(path.join(b.home, '.claude/skills/fanfold/SKILL.md'), '---\nname: fanfold\ndescription: old\n---\nold\n');
    write(path.join(b.home, '.claude/commands/workflow.md'), 'old text that calls plan_workflow\n');
    const r = run(b, ['claude']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ {2}update {2}~\/\.claude\/skills\/fanfold\/SKILL\.md \(skill, 5 → \d+ lines\)$/m);
    expect(fs.readFileSync(path.join(b.home, '.claude/skills/fanfold/SKILL.md'), 'utf8')).toBe(SKILL);
    expect(fs.readFileSync(path.join(b.home, '.claude/commands/workflow.md'), 'utf8')).toBe(COMMAND);
  });

  it('prints JSON with --json, and refuses bad options with exit code 2', () => {
    const b = box();
    const r = run(b, ['claude', '--json', '--dry-run']);
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ host: 'claude', scope: 'user', dryRun: true, changed: false, server: { command: process.execPath, args: [MAIN, 'serve'] } });
    expect(j.changes.map((c: { action: string }) => c.action)).toEqual(['create', 'create', 'create', 'create']);
    expect(run(b, ['claude', '--scope', 'global']).status).toBe(2);
    expect(run(b, ['claude', '--scope', 'global']).stderr).toMatch(/--scope: expected one of user, project, got 'global'/);
    expect(run(b, ['claude', '--launcher', 'npx']).status).toBe(2);
    expect(run(b, ['vscode']).status).toBe(2);
    expect(fs.readdirSync(b.home)).toEqual([]);
  });

  it('registers `fanfold serve` by name with --launcher path', () => {
    const b = box();
    const r = run(b, ['claude', '--launcher', 'path']);
    expect(r.status, r.stderr).toBe(0);
    expect(readJson(path.join(b.home, '.claude.json')).mcpServers.fanfold).toEqual({ type: 'stdio', command: 'fanfold', args: ['serve'], env: {} });
  });
});

describe('fanfold install claude --scope project', () => {
  it('writes .mcp.json and .claude/ in the current folder, keeping other servers', () => {
    const b = box();
    const mcp = path.join(b.project, '.mcp.json');
    write(mcp, JSON.stringify({ mcpServers: { db: { type: 'stdio', command: 'db-mcp', args: [], env: { URL: 'x' } } } }, null, 2) + '\n');
    const r = run(b, ['claude', '--scope', 'project']);
    expect(r.status, r.stderr).toBe(0);
    expect(readJson(mcp)).toEqual({
      mcpServers: {
        db: { type: 'stdio', command: 'db-mcp', args: [], env: { URL: 'x' } },
        fanfold: { type: 'stdio', command: process.execPath, args: [MAIN, 'serve'], env: {} },
      },
    });
    expect(fs.readFileSync(mcp, 'utf8').endsWith('}\n')).toBe(true);
    expect(fs.readFileSync(path.join(b.project, '.claude/skills/fanfold/SKILL.md'), 'utf8')).toBe(SKILL);
    expect(fs.readFileSync(path.join(b.project, '.claude/commands/workflow.md'), 'utf8')).toBe(COMMAND);
    expect(fs.readdirSync(b.home)).toEqual([]);
    expect(r.stdout).toMatch(/absolute paths of this machine.*--launcher path/);
    expect(r.stdout).toMatch(/approve the servers of/);
    expect(run(b, ['claude', '--scope', 'project']).stdout).toMatch(/nothing to change/);
  });

  it('refuses a malformed .mcp.json, names it, and leaves the project untouched', () => {
    const b = box();
    const mcp = path.join(b.project, '.mcp.json');
    write(mcp, '{"mcpServers": {"a": {"command": "x"}}');
    const before = snapshot(b.project);
    const r = run(b, ['claude', '--scope', 'project']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${mcp} is not valid JSON`);
    expect(snapshot(b.project)).toEqual(before);
    write(mcp, '{"mcpServers": ["a"]}');
    expect(run(b, ['claude', '--scope', 'project']).stderr).toMatch(/"mcpServers" is an array, expected an object of servers/);
    write(mcp, '');
    fs.rmSync(mcp);
    fs.mkdirSync(mcp);
    expect(run(b, ['claude', '--scope', 'project']).stderr).toMatch(/\.mcp\.json is a folder, expected a file/);
  });
});

const BUSY_TOML = `# my Codex setup
model = "gpt-5.5"            # default model
approval_policy = "on-request"

[model_providers.local]
name = "Local"
base_url = "http://127.0.0.1:8080/v1"   # keep this comment

# servers I use every day
[mcp_servers.github]
command = "npx"
args = ["-y", "@modelcontextprotocol/server-github"]

[mcp_servers.github.env]
GITHUB_TOKEN = "secret"

[mcp_servers.docs]
url = "https://example.invalid/mcp"
`;

describe('fanfold install codex', () => {
  it('adds [mcp_servers.fanfold] and the skill to ~/.agents/skills; a second run changes nothing', () => {
    const b = box();
    const r = run(b, ['codex']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Installed fanfold for Codex:/);
    expect(fs.readFileSync(path.join(b.home, '.codex/config.toml'), 'utf8')).toBe(
      `[mcp_servers.fanfold]\ncommand = ${JSON.stringify(process.execPath)}\nargs = [${JSON.stringify(MAIN)}, "serve"]\n` +
        'startup_timeout_sec = 30\ntool_timeout_sec = 660\ndefault_tools_approval_mode = "approve"\n',
    );
    expect(fs.readFileSync(path.join(b.home, '.agents/skills/fanfold/SKILL.md'), 'utf8')).toBe(SKILL);
    expect(fs.readFileSync(path.join(b.home, '.agents/skills/fanfold/reference/spec.md'), 'utf8')).toBe(SPEC_REF);
    // Codex 0.169 lists a skill found in both folders twice: by default only ~/.agents/skills.
    expect(fs.existsSync(path.join(b.home, '.codex/skills'))).toBe(false);
    const before = snapshot(b.home);
    const again = run(b, ['codex']);
    expect(again.stdout).toMatch(/^fanfold is already installed for Codex: nothing to change\./);
    expect(snapshot(b.home)).toEqual(before);
  });

  it('keeps every byte of a config full of other servers and comments', () => {
    const b = box();
    const file = path.join(b.home, '.codex/config.toml');
    write(file, BUSY_TOML);
    const r = run(b, ['codex']);
    expect(r.status, r.stderr).toBe(0);
    const after = fs.readFileSync(file, 'utf8');
    expect(after.startsWith(BUSY_TOML)).toBe(true);
    expect(after.slice(BUSY_TOML.length)).toMatch(/^\n\[mcp_servers\.fanfold\]\ncommand = /);
    if (hasTomlOracle()) {
      const [a, z] = parseTomlAll([BUSY_TOML, after]);
      expect(a!.ok && z!.ok).toBe(true);
      if (a!.ok && z!.ok) {
        const { fanfold, ...rest } = z!.value.mcp_servers;
        expect({ ...z!.value, mcp_servers: rest }).toEqual(a!.value);
        expect(fanfold).toEqual({ command: process.execPath, args: [MAIN, 'serve'], startup_timeout_sec: 30, tool_timeout_sec: 660, default_tools_approval_mode: 'approve' });
      }
    }
    expect(run(b, ['codex']).stdout).toMatch(/nothing to change/);
  });

  it('updates an existing entry in place, keeping its comments and the keys the user added', () => {
    const b = box();
    const file = path.join(b.home, '.codex/config.toml');
    write(file, `${BUSY_TOML}\n[mcp_servers.fanfold]\ncommand = "node"  # mine\nargs = ["/old/main.js", "serve"]\nenabled = true\ntool_timeout_sec = 60\n\n[mcp_servers.fanfold.env]\nFANFOLD_APPROVAL_AGENTS = "40"\n`);
    const r = run(b, ['codex']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/sets command, args, tool_timeout_sec/);
    const after = fs.readFileSync(file, 'utf8');
    expect(after).toBe(
      `${BUSY_TOML}\n[mcp_servers.fanfold]\ncommand = ${JSON.stringify(process.execPath)}  # mine\nargs = [${JSON.stringify(MAIN)}, "serve"]\nenabled = true\ntool_timeout_sec = 660\n` +
        'startup_timeout_sec = 30\ndefault_tools_approval_mode = "approve"\n\n[mcp_servers.fanfold.env]\nFANFOLD_APPROVAL_AGENTS = "40"\n',
    );
  });

  it('--headless sets FANFOLD_APPROVAL_MODE=flag in [mcp_servers.fanfold.env], beside env keys the user set; again changes nothing', () => {
    const b = box();
    const fresh = run(b, ['codex', '--headless']);
    expect(fresh.status, fresh.stderr).toBe(0);
    expect(fresh.stdout).toMatch(/FANFOLD_APPROVAL_MODE=flag/);
    const file = path.join(b.home, '.codex/config.toml');
    expect(fs.readFileSync(file, 'utf8')).toMatch(/default_tools_approval_mode = "approve"\n\n\[mcp_servers\.fanfold\.env\]\nFANFOLD_APPROVAL_MODE = "flag"\n$/);
    expect(run(b, ['codex', '--headless']).stdout).toMatch(/nothing to change/);

    const c = box();
    const other = path.join(c.home, '.codex/config.toml');
    write(other, `${BUSY_TOML}\n[mcp_servers.fanfold]\ncommand = "node"\n\n[mcp_servers.fanfold.env]\nFANFOLD_APPROVAL_AGENTS = "40"\nFANFOLD_APPROVAL_MODE = "form"\n`);
    const r = run(c, ['codex', '--headless']);
    expect(r.status, r.stderr).toBe(0);
    const after = fs.readFileSync(other, 'utf8');
    expect(after).toMatch(/\[mcp_servers\.fanfold\.env\]\nFANFOLD_APPROVAL_AGENTS = "40"\nFANFOLD_APPROVAL_MODE = "flag"\n$/);
    if (hasTomlOracle()) {
      const [z] = parseTomlAll([after]);
      expect(z!.ok).toBe(true);
      if (z!.ok) expect(z!.value.mcp_servers.fanfold.env).toEqual({ FANFOLD_APPROVAL_AGENTS: '40', FANFOLD_APPROVAL_MODE: 'flag' });
    }
    // Without --headless the env the user chose is left alone.
    expect(run(c, ['codex']).stdout).toMatch(/nothing to change/);
  });

  it('--dry-run shows the table and writes nothing', () => {
    const b = box();
    write(path.join(b.home, '.codex/config.toml'), BUSY_TOML);
    const before = snapshot(b.home);
    const r = run(b, ['codex', '--dry-run']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ {12}\+ \[mcp_servers\.fanfold\]$/m);
    expect(r.stdout).toMatch(/^ {12}\+ default_tools_approval_mode = "approve"$/m);
    expect(snapshot(b.home)).toEqual(before);
  });

  it('refuses a config it must not edit, naming file and line, and writes nothing', () => {
    const b = box();
    const file = path.join(b.home, '.codex/config.toml');
    for (const [text, line, pattern] of [
      ['model = "x"\n[mcp_servers]\nfanfold = { command = "x" }\n', 3, /inline table/],
      ['model = "x\n', 1, /unterminated string/],
      ['[mcp_servers.fanfold]\n[mcp_servers.fanfold]\n', 2, /appears twice/],
    ] as const) {
      write(file, text);
      const before = snapshot(b.home);
      const r = run(b, ['codex']);
      expect(r.status, text).toBe(1);
      expect(r.stderr, text).toContain(`${file}:${line}: `);
      expect(r.stderr, text).toMatch(pattern);
      expect(r.stderr, text).toMatch(/nothing was written/);
      expect(snapshot(b.home)).toEqual(before);
    }
  });

  it('follows CODEX_HOME; --legacy-skills also copies the skill there; an old copy there is kept in step', () => {
    const b = box();
    const ch = path.join(b.home, 'ch');
    b.env.CODEX_HOME = ch;
    const r = run(b, ['codex', '--legacy-skills']);
    expect(r.status, r.stderr).toBe(0);
    expect(fs.existsSync(path.join(ch, 'config.toml'))).toBe(true);
    expect(fs.existsSync(path.join(b.home, '.codex'))).toBe(false);
    expect(fs.readFileSync(path.join(ch, 'skills/fanfold/SKILL.md'), 'utf8')).toBe(SKILL);
    expect(fs.readFileSync(path.join(b.home, '.agents/skills/fanfold/SKILL.md'), 'utf8')).toBe(SKILL);

    write(path.join(ch, 'skills/fanfold/SKILL.md'), '---\nname: fanfold\ndescription: old\n---\n');
    const again = run(b, ['codex']);
    expect(again.stdout).toMatch(/update {2}~\/ch\/skills\/fanfold\/SKILL\.md/);
    expect(again.stdout).toMatch(/lists the skill twice/);
    expect(fs.readFileSync(path.join(ch, 'skills/fanfold/SKILL.md'), 'utf8')).toBe(SKILL);
  });
});
