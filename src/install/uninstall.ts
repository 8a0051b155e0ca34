/**
 * `fanfold uninstall claude|codex`: the exact inverse of the install — it removes the MCP server
 * entry, fanfold's skill files and the `/workflow` command from the same places, and nothing
 * else. Like the install it is planned first (nothing touched), shown, then applied; a second run
 * says there is nothing to remove.
 *
 * What counts as fanfold's is decided the way the install decides what it may overwrite: the
 * server entry named `fanfold`; a skill folder whose SKILL.md is named `fanfold` (and in it only
 * the files the install copies — anything a person added stays, and so does its folder); a
 * `workflow.md` that drives fanfold's tools. A config file the install created, left holding
 * nothing, is removed; one that holds anything else is rewritten without the entry.
 */
import path from 'node:path';
import { SKILL_NAME, frontMatter, readSkillFiles, type SkillFile } from './assets.js';
import { readExisting, type FileChange } from './changes.js';
import { isFanfoldCommand } from './copies.js';
import { InstallError } from './errors.js';
import { removeMcpServerJson } from './json-config.js';
import { agentsSkillsDir, claudeUserConfigFile, claudeUserDir, codexHome, homeDir, type LocationEnv } from './locations.js';
import { SERVER_NAME, type InstallPlan } from './plan.js';
import { removeTomlTable, TomlEditError } from './toml-table.js';
import type { ClaudeScope } from './claude.js';

/** Inputs of the uninstall planners. */
export interface UninstallOptions extends LocationEnv {
  /** The package whose skill files are removed (this one: its file list is what was copied). */
  packageRoot: string;
}

/** The change that removes a config file's server entry, or the file when nothing else is left. */
function configRemoval(file: string, target: string, before: string | undefined, after: { text: string; changed: boolean; empty: boolean }, mode: number | undefined, what: string, pruneUpTo?: string): FileChange {
  if (!after.changed) return { path: file, target, action: 'unchanged', what: `${what}: not there`, diff: false, ...(before !== undefined ? { before } : {}) };
  if (after.empty) return { path: file, target, action: 'delete', what: `${what} (the file held nothing else)`, before, diff: true, ...(pruneUpTo ? { pruneUpTo } : {}) };
  return { path: file, target, action: 'update', what, before, after: after.text, diff: true, ...(mode !== undefined ? { mode } : {}) };
}

/** Deletes of fanfold's skill files in `<skillsDir>/fanfold/`; files a person added are left. */
async function skillRemovals(skillsDir: string, files: readonly SkillFile[], pruneUpTo: string): Promise<FileChange[]> {
  const dir = path.join(skillsDir, SKILL_NAME);
  const skillMd = path.join(dir, 'SKILL.md');
  const { existing } = await readExisting(skillMd);
  if (!existing) return [];
  const name = frontMatter(existing.text)?.name?.replace(/^["']|["']$/g, '');
  if (name !== SKILL_NAME) {
    return [{ path: skillMd, target: skillMd, action: 'skip', what: 'skill', diff: false, note: `a skill named '${name ?? '(no name)'}' is there, not fanfold's; left as is` }];
  }
  const out: FileChange[] = [];
  for (const f of files) {
    const file = path.join(dir, ...f.rel.split('/'));
    const { existing: there, target } = await readExisting(file);
    if (!there) continue;
    const changed = there.text !== f.text;
    out.push({
      path: file, target, action: 'delete', what: f.rel === 'SKILL.md' ? 'skill' : 'skill reference', diff: false, pruneUpTo,
      ...(changed ? { note: 'it differs from this version of fanfold (an older install, or edited)' } : {}),
    });
  }
  return out;
}

/** Delete of the `/workflow` command when it is fanfold's. */
async function commandRemoval(commandsDir: string, pruneUpTo: string): Promise<FileChange[]> {
  const file = path.join(commandsDir, 'workflow.md');
  const { existing, target } = await readExisting(file);
  if (!existing) return [];
  if (!isFanfoldCommand(existing.text)) {
    return [{ path: file, target, action: 'skip', what: 'slash command /workflow', diff: false, note: "not fanfold's; left as is" }];
  }
  return [{ path: file, target, action: 'delete', what: 'slash command /workflow', diff: false, pruneUpTo }];
}

/** Computes the Claude Code uninstall for `scope`; writes nothing. */
export async function planClaudeUninstall(o: UninstallOptions & { scope: ClaudeScope; cwd: string }): Promise<InstallPlan> {
  const project = path.resolve(o.cwd);
  const configFile = o.scope === 'user' ? claudeUserConfigFile(o) : path.join(project, '.mcp.json');
  const base = o.scope === 'user' ? claudeUserDir(o) : path.join(project, '.claude');
  const notes: string[] = [];
  // Folders the install made and this leaves empty go too, up to the home (user scope, or the
  // CLAUDE_CONFIG_DIR) or the project: rmdir takes only empty ones, so nothing of anyone else's.
  const pruneRoot = o.scope === 'user' ? (o.env?.CLAUDE_CONFIG_DIR ? base : homeDir(o)) : project;
  const { existing, target } = await readExisting(configFile);
  const edit = removeMcpServerJson(existing?.text, configFile, SERVER_NAME);
  // A config left holding nothing (`{}`) goes, ~/.claude.json included: on a fresh HOME the install
  // made it, and Claude Code writes its own state there anew when it starts.
  const config = configRemoval(configFile, target, existing?.text, edit, existing?.mode, `MCP server '${SERVER_NAME}', ${o.scope} scope`);
  const changes = [
    config,
    ...(await skillRemovals(path.join(base, 'skills'), await readSkillFiles(o.packageRoot), pruneRoot)),
    ...(await commandRemoval(path.join(base, 'commands'), pruneRoot)),
  ];
  const nextSteps = ['Start a new Claude Code session: running ones keep the server until they end.'];
  return { host: 'claude', scope: o.scope, server: { command: '', args: [] }, changes, notes, nextSteps, home: homeDir(o) };
}

/** Computes the Codex uninstall; writes nothing. Throws InstallError on a config it must not edit. */
export async function planCodexUninstall(o: UninstallOptions): Promise<InstallPlan> {
  const home = codexHome(o);
  const configFile = path.join(home, 'config.toml');
  const notes: string[] = [];
  const { existing, target } = await readExisting(configFile);
  let edit;
  try {
    const r = removeTomlTable(existing?.text ?? '', ['mcp_servers', SERVER_NAME]);
    edit = { text: r.text, changed: r.changed, empty: r.changed && r.text.trim() === '' };
  } catch (err) {
    if (err instanceof TomlEditError) throw new InstallError(`${configFile}:${err.line}: ${err.message}; nothing was written.`, { cause: err });
    throw err;
  }
  // The config folder goes too when that leaves it empty (the install made $CODEX_HOME on a fresh HOME).
  const config = configRemoval(configFile, target, existing?.text, edit, existing?.mode, `MCP server '${SERVER_NAME}'`, path.dirname(home));
  const files = await readSkillFiles(o.packageRoot);
  // The config last: its delete prunes $CODEX_HOME, which is empty only once the skill is gone.
  const changes = [
    ...(await skillRemovals(agentsSkillsDir(o), files, homeDir(o))),
    ...(await skillRemovals(path.join(home, 'skills'), files, home)),
    config,
  ];
  const nextSteps = ['Start a new Codex session: running ones keep the server until they end.'];
  return { host: 'codex', scope: 'user', server: { command: '', args: [] }, changes, notes, nextSteps, home: homeDir(o) };
}
