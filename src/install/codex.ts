/**
 * `fanfold install codex`: registers the MCP server in Codex's `config.toml` and installs the
 * skill.
 *
 * The table written (checked against codex 0.169.0 with `--strict-config`):
 *
 *   [mcp_servers.fanfold]
 *   command = "<node>"
 *   args = ["<…>/dist/cli/main.js", "serve"]
 *   startup_timeout_sec = 30
 *   tool_timeout_sec = 660
 *   default_tools_approval_mode = "approve"
 *
 * `default_tools_approval_mode` takes `auto | prompt | writes | approve`; without `approve`, a
 * Codex running with `approval_policy = "never"` refuses every call to the server. Approval of
 * what a workflow does is fanfold's own: run_workflow asks the user (form or `approve: true`)
 * before a big or edit-capable plan starts.
 *
 * With `--headless` it also writes
 *
 *   [mcp_servers.fanfold.env]
 *   FANFOLD_APPROVAL_MODE = "flag"
 *
 * because `codex exec` declines every approval form at once, which under the default rule stands
 * as a person's no (see mcp/approval.ts); in `flag` mode the model's `approve: true` decides then.
 */
import path from 'node:path';
import { readSkillFiles } from './assets.js';
import { readExisting, type FileChange } from './changes.js';
import { skillChanges } from './copies.js';
import { InstallError } from './errors.js';
import { agentsSkillsDir, codexHome, homeDir, type LocationEnv } from './locations.js';
import { SERVER_NAME, type InstallPlan } from './plan.js';
import type { ServerCommand } from './server-command.js';
import { TomlEditError, upsertTomlTable, type TomlValue } from './toml-table.js';

/**
 * Codex's per-call limit for fanfold's tools, in seconds. Why 660: workflow_status and
 * run_workflow wait up to 50 s (MAX_WAIT_SECONDS in mcp/waiting.ts; a test holds the two together), and run_workflow may hold a call while the user
 * reads the approval form fanfold shows (up to 10 minutes); Codex's default of 60 s would cut a
 * 50 s wait on a busy machine.
 */
export const CODEX_TOOL_TIMEOUT_SEC = 600 + 60;

/** Seconds Codex gives the server to start (default 10; a cold Node start on a loaded machine takes a few). */
export const CODEX_STARTUP_TIMEOUT_SEC = 30;

/** Inputs of {@link planCodexInstall}. */
export interface CodexInstallOptions extends LocationEnv {
  server: ServerCommand;
  packageRoot: string;
  /** Also copy the skill to $CODEX_HOME/skills (older Codex builds read only that). */
  legacySkills?: boolean;
  /**
   * For `codex exec` and other runs without a person: set FANFOLD_APPROVAL_MODE=flag in the
   * server's env, so an approval form declined at once lets the model's `approve: true` decide.
   */
  headless?: boolean;
}

/** The env fanfold sets in `[mcp_servers.fanfold.env]` for `--headless`. */
export const CODEX_HEADLESS_ENV: ReadonlyArray<[string, TomlValue]> = [['FANFOLD_APPROVAL_MODE', 'flag']];

/** The keys fanfold sets in `[mcp_servers.fanfold]`, in the order they are written. */
export function codexServerEntries(server: ServerCommand): Array<[string, TomlValue]> {
  return [
    ['command', server.command],
    ['args', server.args],
    ['startup_timeout_sec', CODEX_STARTUP_TIMEOUT_SEC],
    ['tool_timeout_sec', CODEX_TOOL_TIMEOUT_SEC],
    ['default_tools_approval_mode', 'approve'],
  ];
}

/** Computes the Codex install; writes nothing. Throws InstallError on a file it must not touch. */
export async function planCodexInstall(o: CodexInstallOptions): Promise<InstallPlan> {
  const home = codexHome(o);
  const configFile = path.join(home, 'config.toml');
  const notes = [...o.server.notes];

  const { existing, target } = await readExisting(configFile);
  let edit;
  try {
    edit = upsertTomlTable(existing?.text ?? '', ['mcp_servers', SERVER_NAME], codexServerEntries(o.server));
    if (o.headless) {
      const env = upsertTomlTable(edit.text, ['mcp_servers', SERVER_NAME, 'env'], CODEX_HEADLESS_ENV);
      edit = {
        ...edit,
        text: env.text,
        changed: edit.changed || env.changed,
        updated: [...edit.updated, ...env.updated.map((k) => `env.${k}`)],
        added: [...edit.added, ...env.added.map((k) => `env.${k}`)],
        warnings: [...edit.warnings, ...env.warnings],
      };
    }
  } catch (err) {
    if (err instanceof TomlEditError) {
      throw new InstallError(`${configFile}:${err.line}: ${err.message}; nothing was written.`, { cause: err });
    }
    throw err;
  }
  notes.push(...edit.warnings);
  if (o.headless) {
    notes.push('headless: the server runs with FANFOLD_APPROVAL_MODE=flag, so when Codex declines an approval form at once (codex exec), the model\'s approve: true decides; a form a person answers still decides');
  }
  const what = `MCP server '${SERVER_NAME}'`;
  const config: FileChange = edit.changed
    ? {
        path: configFile, target, action: existing ? 'update' : 'create', what, before: existing?.text, after: edit.text, diff: true,
        ...(existing ? { mode: existing.mode } : {}),
        ...(edit.updated.length ? { note: `sets ${edit.updated.join(', ')}` } : {}),
      }
    : { path: configFile, target, action: 'unchanged', what, before: existing?.text, diff: true };

  const files = await readSkillFiles(o.packageRoot);
  const changes: FileChange[] = [config, ...(await skillChanges(agentsSkillsDir(o), files))];
  const legacyDir = path.join(home, 'skills');
  const legacyPresent = (await readExisting(path.join(legacyDir, 'fanfold', 'SKILL.md'))).existing !== undefined;
  if (o.legacySkills || legacyPresent) {
    // An earlier copy is kept in step rather than left stale.
    changes.push(...(await skillChanges(legacyDir, files)));
    if (!o.legacySkills) {
      notes.push(`a copy of the skill is also in ${path.join(legacyDir, 'fanfold')} (updated); Codex 0.169 reads both folders and lists the skill twice — remove that copy unless an older Codex needs it`);
    }
  }
  const nextSteps = [
    'Start a new Codex session (codex mcp list shows the entry; it does not start the server).',
    'Ask for a workflow ("audit every package for …"), or name the skill: $fanfold.',
  ];
  return { host: 'codex', scope: 'user', server: { command: o.server.command, args: o.server.args }, changes, notes, nextSteps, home: homeDir(o) };
}
