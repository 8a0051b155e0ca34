/**
 * The installers' small parts: the JSON server entry editor, host locations, the server command,
 * the diff listing.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InstallError } from '../../src/install/errors.js';
import { lineDiff, renderChanges, tildify, type FileChange } from '../../src/install/changes.js';
import { upsertMcpServerJson, type StdioServerEntry } from '../../src/install/json-config.js';
import { agentsSkillsDir, claudeUserConfigFile, claudeUserDir, codexHome } from '../../src/install/locations.js';
import { serverCommand } from '../../src/install/server-command.js';
import { CODEX_TOOL_TIMEOUT_SEC, codexServerEntries } from '../../src/install/codex.js';
import { MAX_WAIT_SECONDS } from '../../src/mcp/waiting.js';
import { REPO } from '../helpers/cli.js';

const ENTRY: StdioServerEntry = { type: 'stdio', command: '/usr/bin/node', args: ['/opt/fanfold/dist/cli/main.js', 'serve'] };

describe('upsertMcpServerJson', () => {
  it('creates a file holding only the entry, as claude mcp add writes it', () => {
    const r = upsertMcpServerJson(undefined, '.mcp.json', 'fanfold', ENTRY);
    expect(r.action).toBe('added');
    expect(JSON.parse(r.text)).toEqual({ mcpServers: { fanfold: { ...ENTRY, env: {} } } });
    expect(r.text.endsWith('}\n')).toBe(true);
  });

  it('keeps other servers, other keys, key order, indentation and the missing final newline', () => {
    const before = JSON.stringify({ numStartups: 7, projects: { '/x': { allowedTools: ['Bash'] } }, mcpServers: { a: { command: 'a' } }, zz: true }, null, 4);
    const r = upsertMcpServerJson(before, '~/.claude.json', 'fanfold', ENTRY);
    expect(r.action).toBe('added');
    const doc = JSON.parse(r.text);
    expect(Object.keys(doc)).toEqual(['numStartups', 'projects', 'mcpServers', 'zz']);
    expect(Object.keys(doc.mcpServers)).toEqual(['a', 'fanfold']);
    expect(doc.projects).toEqual({ '/x': { allowedTools: ['Bash'] } });
    expect(r.text).toContain('\n    "numStartups": 7');
    expect(r.text.endsWith('}')).toBe(true);
  });

  it('adds mcpServers when the file has none, keeps tabs and CRLF', () => {
    const before = '{\r\n\t"theme": "dark"\r\n}\r\n';
    const r = upsertMcpServerJson(before, 'f', 'fanfold', ENTRY);
    expect(r.text).toMatch(/^\{\r\n\t"theme": "dark",\r\n\t"mcpServers": \{\r\n\t\t"fanfold"/);
    expect(r.text.endsWith('}\r\n')).toBe(true);
    expect(r.text.replace(/\r\n/g, '')).not.toContain('\n');
  });

  it('is unchanged when the entry is already there, even with keys the user added', () => {
    const once = upsertMcpServerJson(undefined, 'f', 'fanfold', ENTRY).text;
    expect(upsertMcpServerJson(once, 'f', 'fanfold', ENTRY)).toEqual({ text: once, changed: false, action: 'unchanged' });
    const custom = JSON.stringify({ mcpServers: { fanfold: { ...ENTRY, env: { FANFOLD_APPROVAL_AGENTS: '40' }, timeout: 5 } } });
    expect(upsertMcpServerJson(custom, 'f', 'fanfold', ENTRY).changed).toBe(false);
  });

  it('updates a moved command, keeping the user\'s env and extra keys', () => {
    const before = JSON.stringify({ mcpServers: { fanfold: { type: 'stdio', command: 'node', args: ['/old/main.js', 'serve'], env: { A: '1' } } } }, null, 2);
    const r = upsertMcpServerJson(before, 'f', 'fanfold', ENTRY);
    expect(r.action).toBe('updated');
    expect(JSON.parse(r.text).mcpServers.fanfold).toEqual({ ...ENTRY, env: { A: '1' } });
  });

  it('refuses malformed files, naming the file and where, and a wrong mcpServers', () => {
    const bad = (text: string, pattern: RegExp) => {
      expect(() => upsertMcpServerJson(text, '/p/.mcp.json', 'fanfold', ENTRY)).toThrow(InstallError);
      expect(() => upsertMcpServerJson(text, '/p/.mcp.json', 'fanfold', ENTRY)).toThrow(pattern);
    };
    bad('{\n  "mcpServers": {\n    "a": {},\n  }\n}', /\/p\/\.mcp\.json is not valid JSON \(line 4, column 3\).*nothing was written/);
    bad('{"mcpServers": ', /\/p\/\.mcp\.json is not valid JSON/);
    bad('[1, 2]', /holds an array, expected a JSON object/);
    bad('"text"', /expected a JSON object/);
    bad('{"mcpServers": []}', /"mcpServers" is an array/);
    bad('{"mcpServers": {"fanfold": "x"}}', /"mcpServers.fanfold" is not an object/);
  });

  it('treats a server named __proto__ as data, not as the prototype', () => {
    const r = upsertMcpServerJson('{"mcpServers": {"__proto__": {"command": "x"}}}', 'f', '__proto__', ENTRY);
    expect(JSON.parse(r.text).mcpServers.__proto__).toEqual({ ...ENTRY, env: {} });
    expect(({} as Record<string, unknown>).command).toBeUndefined();
  });

  it('reads a file that starts with a byte order mark', () => {
    expect(upsertMcpServerJson('\ufeff{"mcpServers": {}}', 'f', 'fanfold', ENTRY).action).toBe('added');
  });
});

describe('host locations', () => {
  const home = '/home/u';
  it('follow HOME, CLAUDE_CONFIG_DIR and CODEX_HOME the way the pinned CLIs do', () => {
    expect(claudeUserConfigFile({ env: { HOME: home } })).toBe('/home/u/.claude.json');
    expect(claudeUserDir({ env: { HOME: home } })).toBe('/home/u/.claude');
    expect(claudeUserConfigFile({ env: { HOME: home, CLAUDE_CONFIG_DIR: '/cfg' } })).toBe('/cfg/.claude.json');
    expect(claudeUserDir({ env: { HOME: home, CLAUDE_CONFIG_DIR: '/cfg' } })).toBe('/cfg');
    expect(codexHome({ env: { HOME: home } })).toBe('/home/u/.codex');
    expect(codexHome({ env: { HOME: home, CODEX_HOME: '/ch' } })).toBe('/ch');
    expect(agentsSkillsDir({ env: { HOME: home, CODEX_HOME: '/ch' } })).toBe('/home/u/.agents/skills');
    expect(claudeUserDir({ env: { HOME: home, CLAUDE_CONFIG_DIR: '  ' } })).toBe('/home/u/.claude');
    expect(codexHome({ env: {}, homedir: () => '/os/home' })).toBe('/os/home/.codex');
  });
});

describe('serverCommand', () => {
  it('runs this node with this package\'s built CLI by absolute path', () => {
    const s = serverCommand({ launcher: 'absolute', packageRoot: REPO, execPath: '/usr/bin/node', env: {} });
    expect(s).toEqual({ command: '/usr/bin/node', args: [path.join(REPO, 'dist', 'cli', 'main.js'), 'serve'], notes: [] });
  });

  it('warns about npx caches, version-managed node and a missing build', () => {
    const npx = serverCommand({ launcher: 'absolute', packageRoot: '/home/u/.npm/_npx/abc/node_modules/fanfold', execPath: '/home/u/.nvm/versions/node/v20.17.0/bin/node', env: {} });
    expect(npx.notes.join('\n')).toMatch(/does not exist yet: run 'npm run build'/);
    expect(npx.notes.join('\n')).toMatch(/npx's cache/);
    expect(npx.notes.join('\n')).toMatch(/if that Node version is removed, run this install again/);
  });

  it('uses fanfold from PATH with --launcher path, and says when it is not there', () => {
    expect(serverCommand({ launcher: 'path', packageRoot: REPO, env: { PATH: '' } })).toMatchObject({ command: 'fanfold', args: ['serve'] });
    expect(serverCommand({ launcher: 'path', packageRoot: REPO, env: { PATH: '' } }).notes.join()).toMatch(/not on PATH/);
    expect(serverCommand({ launcher: 'path', packageRoot: REPO, env: { PATH: path.join(REPO, 'node_modules', '.bin') } }).notes).toEqual(
      // The package itself is not installed as a dependency of itself; a bin folder without it still warns.
      expect.any(Array),
    );
  });
});

describe('Codex entry', () => {
  it('gives tool calls more time than the longest wait the tools take', () => {
    expect(CODEX_TOOL_TIMEOUT_SEC).toBeGreaterThanOrEqual(120);
    expect(CODEX_TOOL_TIMEOUT_SEC).toBeGreaterThan(MAX_WAIT_SECONDS + 30);
    const entries = Object.fromEntries(codexServerEntries({ command: 'n', args: ['m', 'serve'], notes: [] }));
    expect(entries).toEqual({ command: 'n', args: ['m', 'serve'], startup_timeout_sec: 30, tool_timeout_sec: CODEX_TOOL_TIMEOUT_SEC, default_tools_approval_mode: 'approve' });
  });
});

describe('change listing', () => {
  it('shows only the changed region of a big file, with context', () => {
    const before = Array.from({ length: 1000 }, (_, i) => `line ${i}`).join('\n');
    const after = before.replace('line 500', 'line 500\nnew line');
    expect(lineDiff(before, after)).toEqual(['@@ line 500 @@', '  line 499', '  line 500', '+ new line', '  line 501', '  line 502']);
    const many = lineDiff('', Array.from({ length: 100 }, (_, i) => `x${i}`).join('\n'));
    expect(many.length).toBe(41);
    expect(many[40]).toMatch(/more lines/);
  });

  it('lists every file with its action, ~ for home, and where a symlink points', () => {
    const changes: FileChange[] = [
      { path: '/h/.claude.json', target: '/h/dots/claude.json', action: 'update', what: 'MCP server', before: '{\n}\n', after: '{\n  "a": 1\n}\n', diff: true },
      { path: '/h/.claude/skills/fanfold/SKILL.md', target: '/h/.claude/skills/fanfold/SKILL.md', action: 'create', what: 'skill', after: 'a\nb\n', diff: false },
      { path: '/h/.claude/commands/workflow.md', target: '/h/.claude/commands/workflow.md', action: 'skip', what: 'slash command /workflow', note: 'not ours', diff: false },
      { path: '/elsewhere/x', target: '/elsewhere/x', action: 'unchanged', what: 'x', diff: true },
    ];
    expect(renderChanges(changes, '/h')).toEqual([
      '  update  ~/.claude.json → ~/dots/claude.json (MCP server)',
      '              {',
      '            +   "a": 1',
      '              }',
      '  create  ~/.claude/skills/fanfold/SKILL.md (skill, 2 lines)',
      '  skip    ~/.claude/commands/workflow.md (slash command /workflow; not ours)',
      '  ok      /elsewhere/x (x, unchanged)',
    ]);
    expect(tildify('/h', '/h')).toBe('~');
    expect(tildify('/hx/a', '/h')).toBe('/hx/a');
  });
});
