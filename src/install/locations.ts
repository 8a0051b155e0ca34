/**
 * Where each host keeps what fanfold installs, as the pinned host CLIs do it (checked by running
 * them in a temp HOME; see tests/install/e2e.test.ts):
 *
 * Claude Code 2.1.330
 * - user-scope MCP servers: `mcpServers` in `~/.claude.json` — or `$CLAUDE_CONFIG_DIR/.claude.json`
 *   when CLAUDE_CONFIG_DIR is set (`claude mcp add -s user` writes there);
 * - user skills and slash commands: `~/.claude/skills/`, `~/.claude/commands/` — or under
 *   `$CLAUDE_CONFIG_DIR` when it is set;
 * - project scope: `.mcp.json`, `.claude/skills/`, `.claude/commands/` in the project folder.
 *
 * Codex 0.169.0
 * - config: `$CODEX_HOME/config.toml` (default `~/.codex`);
 * - skills: `~/.agents/skills/` (current) and `$CODEX_HOME/skills/` (older builds). 0.169.0 reads
 *   both and lists a skill found in both twice.
 */
import os from 'node:os';
import path from 'node:path';

/** The environment the locations are read from. */
export interface LocationEnv {
  env: NodeJS.ProcessEnv;
  /** Home folder when HOME is unset (default os.homedir()). */
  homedir?: () => string;
}

function nonEmpty(v: string | undefined): string | undefined {
  return v !== undefined && v.trim() !== '' ? v : undefined;
}

/** The user's home folder: $HOME, else the OS's idea of it. */
export function homeDir(o: LocationEnv): string {
  return path.resolve(nonEmpty(o.env.HOME) ?? (o.homedir ?? os.homedir)());
}

/** Claude Code's user folder: $CLAUDE_CONFIG_DIR or ~/.claude. */
export function claudeUserDir(o: LocationEnv): string {
  const dir = nonEmpty(o.env.CLAUDE_CONFIG_DIR);
  return dir ? path.resolve(dir) : path.join(homeDir(o), '.claude');
}

/** The file holding Claude Code's user-scope MCP servers. */
export function claudeUserConfigFile(o: LocationEnv): string {
  const dir = nonEmpty(o.env.CLAUDE_CONFIG_DIR);
  return dir ? path.join(path.resolve(dir), '.claude.json') : path.join(homeDir(o), '.claude.json');
}

/** Codex's home: $CODEX_HOME or ~/.codex. */
export function codexHome(o: LocationEnv): string {
  const dir = nonEmpty(o.env.CODEX_HOME);
  return dir ? path.resolve(dir) : path.join(homeDir(o), '.codex');
}

/** The user skills folder shared by agents that follow the `.agents` convention (Codex reads it). */
export function agentsSkillsDir(o: LocationEnv): string {
  return path.join(homeDir(o), '.agents', 'skills');
}
