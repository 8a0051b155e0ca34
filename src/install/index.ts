/**
 * Installers: put fanfold into Claude Code and Codex — the MCP server entry, the skill and the
 * `/workflow` slash command — idempotently, never touching other entries, with a dry run.
 *
 * Each install is planned (files read, changes computed, nothing written), shown, then applied
 * with atomic writes. See claude.ts and codex.ts for what goes where.
 */
export { InstallError } from './errors.js';
export { applyChanges, hasWrites, lineDiff, renderChanges, tildify, type ChangeAction, type FileChange } from './changes.js';
export { packageRoot, readSkillFiles, readWorkflowCommand, frontMatter, SKILL_NAME, WORKFLOW_COMMAND_SOURCE, type SkillFile } from './assets.js';
export { planClaudeInstall, CLAUDE_SCOPES, type ClaudeScope, type ClaudeInstallOptions } from './claude.js';
export { planCodexInstall, codexServerEntries, CODEX_HEADLESS_ENV, CODEX_TOOL_TIMEOUT_SEC, CODEX_STARTUP_TIMEOUT_SEC, type CodexInstallOptions } from './codex.js';
export { upsertMcpServerJson, parseJsonConfig, type StdioServerEntry, type JsonEditResult } from './json-config.js';
export { upsertTomlTable, readSimpleValue, tomlString, tomlValue, TomlEditError, type TomlValue, type TomlEditResult } from './toml-table.js';
export { serverCommand, findOnPath, LAUNCHERS, type Launcher, type ServerCommand } from './server-command.js';
export { agentsSkillsDir, claudeUserConfigFile, claudeUserDir, codexHome, homeDir, type LocationEnv } from './locations.js';
export { SERVER_NAME, type Host, type InstallPlan } from './plan.js';
export { planClaudeUninstall, planCodexUninstall, type UninstallOptions } from './uninstall.js';
export { removeMcpServerJson } from './json-config.js';
export { removeTomlTable } from './toml-table.js';
export { cliInvocation, cliCommand, shellQuote } from './invocation.js';
