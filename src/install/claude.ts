/**
 * `fanfold install claude`: registers the MCP server with Claude Code, and installs the skill and
 * the `/workflow` slash command — for the user (every project) or for one project.
 *
 * | scope   | server entry                                   | skill, command                          |
 * |---------|------------------------------------------------|-----------------------------------------|
 * | user    | `mcpServers.fanfold` in ~/.claude.json (or     | ~/.claude/skills/fanfold/,              |
 * |         | $CLAUDE_CONFIG_DIR/.claude.json)               | ~/.claude/commands/workflow.md          |
 * | project | `mcpServers.fanfold` in ./.mcp.json            | ./.claude/skills/fanfold/, ./.claude/commands/workflow.md |
 *
 * That is where `claude mcp add -s user|project` (2.1.330) writes, and where it reads skills and
 * commands from (CLAUDE_CONFIG_DIR moves all of the user ones).
 */
import path from 'node:path';
import { readSkillFiles, readWorkflowCommand } from './assets.js';
import { readExisting, type FileChange } from './changes.js';
import { commandChange, skillChanges } from './copies.js';
import { upsertMcpServerJson } from './json-config.js';
import { claudeUserConfigFile, claudeUserDir, homeDir, type LocationEnv } from './locations.js';
import { SERVER_NAME, type InstallPlan } from './plan.js';
import type { ServerCommand } from './server-command.js';

/** Claude Code install scopes. */
export type ClaudeScope = 'user' | 'project';

/** The scopes, for option parsing. */
export const CLAUDE_SCOPES: readonly ClaudeScope[] = ['user', 'project'];

/** Inputs of {@link planClaudeInstall}. */
export interface ClaudeInstallOptions extends LocationEnv {
  scope: ClaudeScope;
  /** The project folder (project scope). */
  cwd: string;
  server: ServerCommand;
  /** Where the skill and command sources are (this package). */
  packageRoot: string;
}

/** Computes the Claude Code install; writes nothing. Throws InstallError on a file it must not touch. */
export async function planClaudeInstall(o: ClaudeInstallOptions): Promise<InstallPlan> {
  const project = path.resolve(o.cwd);
  const configFile = o.scope === 'user' ? claudeUserConfigFile(o) : path.join(project, '.mcp.json');
  const base = o.scope === 'user' ? claudeUserDir(o) : path.join(project, '.claude');
  const notes = [...o.server.notes];

  const { existing, target } = await readExisting(configFile);
  const edit = upsertMcpServerJson(existing?.text, configFile, SERVER_NAME, { type: 'stdio', command: o.server.command, args: o.server.args });
  const what = `MCP server '${SERVER_NAME}'${o.scope === 'user' ? ', user scope' : ', project scope'}`;
  const config: FileChange = edit.changed
    ? { path: configFile, target, action: existing ? 'update' : 'create', what, before: existing?.text, after: edit.text, diff: true, ...(existing ? { mode: existing.mode } : {}) }
    : { path: configFile, target, action: 'unchanged', what, before: existing?.text, diff: true };

  const changes: FileChange[] = [
    config,
    ...(await skillChanges(path.join(base, 'skills'), await readSkillFiles(o.packageRoot))),
    await commandChange(path.join(base, 'commands'), await readWorkflowCommand(o.packageRoot)),
  ];

  const nextSteps = [
    'Start a new Claude Code session (running ones do not reload their MCP servers).',
    o.scope === 'user'
      ? `Check it: claude mcp list  (expect "${SERVER_NAME}: … ✔ Connected")`
      : `Claude Code asks once to approve the servers of ${path.join(project, '.mcp.json')} (claude mcp list shows it pending until then).`,
    'Ask for a workflow ("audit every package for …", "migrate all … to …"), or type /workflow <what to do>.',
  ];
  if (o.scope === 'project' && o.server.command !== 'fanfold') {
    notes.push(".mcp.json holds absolute paths of this machine; to commit it for a team, install with --launcher path (each machine then needs 'fanfold' on PATH)");
  }
  return { host: 'claude', scope: o.scope, server: { command: o.server.command, args: o.server.args }, changes, notes, nextSteps, home: homeDir(o) };
}
