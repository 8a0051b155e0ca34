/**
 * `fanfold install claude|codex`: one command to use fanfold from a host — the MCP server entry,
 * the skill and the `/workflow` slash command. Idempotent (a second run changes nothing and says
 * so), never touches other entries, and `--dry-run` shows the changes without writing.
 */
import type { Command } from 'commander';
import {
  CLAUDE_SCOPES,
  LAUNCHERS,
  applyChanges,
  hasWrites,
  packageRoot,
  planClaudeInstall,
  planCodexInstall,
  planClaudeUninstall,
  planCodexUninstall,
  renderChanges,
  serverCommand,
  tildify,
  type ClaudeScope,
  type InstallPlan,
  type Launcher,
} from '../install/index.js';
import { UsageError } from './errors.js';
import { printJson } from './shared.js';

interface CommonOptions {
  dryRun?: boolean;
  launcher?: string;
  json?: boolean;
}

function launcherOf(v: string | undefined): Launcher {
  const l = v ?? 'absolute';
  if (!(LAUNCHERS as readonly string[]).includes(l)) throw new UsageError(`--launcher: expected one of ${LAUNCHERS.join(', ')}, got '${l}'`);
  return l as Launcher;
}

const HOST_NAMES = { claude: 'Claude Code', codex: 'Codex' } as const;

/**
 * Shows an install or uninstall plan, applies it unless dry-run, and says what changed: one
 * function for both, since uninstall is the exact inverse of install.
 */
async function finish(plan: InstallPlan, o: { dryRun?: boolean; json?: boolean }, kind: 'install' | 'uninstall' = 'install'): Promise<void> {
  const writes = hasWrites(plan.changes);
  const install = kind === 'install';
  if (writes && !o.dryRun) await applyChanges(plan.changes);
  if (o.json) {
    printJson({
      host: plan.host,
      scope: plan.scope,
      dryRun: o.dryRun === true,
      changed: writes && !o.dryRun,
      ...(install ? { server: plan.server } : {}),
      changes: plan.changes.map((c) => ({ path: c.path, ...(c.target !== c.path ? { target: c.target } : {}), action: c.action, what: c.what, ...(c.note ? { note: c.note } : {}) })),
      notes: plan.notes,
      nextSteps: install || writes ? plan.nextSteps : [],
    });
    return;
  }
  const where = `${HOST_NAMES[plan.host]}${plan.host === 'claude' ? ` (${plan.scope} scope)` : ''}`;
  const out: string[] = [];
  if (!writes) out.push(install ? `fanfold is already installed for ${where}: nothing to change.` : `fanfold is not installed for ${where}: nothing to remove.`);
  else if (o.dryRun) out.push(`fanfold ${kind} ${plan.host} — dry run, nothing written. These changes would be made:`);
  else out.push(install ? `Installed fanfold for ${where}:` : `Removed fanfold from ${where}:`);
  out.push(...renderChanges(install ? plan.changes : plan.changes.filter((c) => writes || c.action !== 'unchanged'), plan.home));
  if (install) out.push(`  server: ${[plan.server.command, ...plan.server.args].map((a) => tildify(a, plan.home)).join(' ')}`);
  for (const n of plan.notes) out.push(`note: ${n}`);
  if (o.dryRun && writes) out.push('Run again without --dry-run to apply.');
  else if (writes && install) out.push('Next:', ...plan.nextSteps.map((s) => `  - ${s}`));
  else if (writes) out.push(...plan.nextSteps.map((s) => `Next: ${s}`));
  process.stdout.write(out.join('\n') + '\n');
}

/** The hosts, said when a command names one fanfold does not know. */
function unknownHost(verb: string, host: string | undefined): never {
  const hosts = Object.keys(HOST_NAMES).map((h) => `'${h}' (${HOST_NAMES[h as keyof typeof HOST_NAMES]})`).join(' or ');
  if (!host) throw new UsageError(`${verb}: name the host: ${hosts}`);
  throw new UsageError(`${verb}: unknown host '${host}'; expected ${hosts}`);
}

/** Registers `uninstall claude` and `uninstall codex`: the exact inverse of the installs. */
function registerUninstallCommand(program: Command): void {
  const uninstall = program
    .command('uninstall')
    .description('remove what install added: the MCP server entry, the skill and /workflow (nothing else)')
    .argument('[host]', 'claude or codex')
    .option('--json', 'print errors as JSON')
    .action((host: string | undefined) => unknownHost('uninstall', host));

  uninstall
    .command('claude')
    .description('remove fanfold from Claude Code (user or project scope)')
    .option('--scope <scope>', `where: ${CLAUDE_SCOPES.join(' or ')}`, 'user')
    .option('--dry-run', 'show the changes, write nothing')
    .option('--json', 'print what was done as JSON')
    .action(async (_o: { scope: string; dryRun?: boolean; json?: boolean }, cmd: Command) => {
      // optsWithGlobals: the parent command's --json (for its own errors) would otherwise take the flag.
      const o = cmd.optsWithGlobals<{ scope: string; dryRun?: boolean; json?: boolean }>();
      if (!(CLAUDE_SCOPES as readonly string[]).includes(o.scope)) throw new UsageError(`--scope: expected one of ${CLAUDE_SCOPES.join(', ')}, got '${o.scope}'`);
      const plan = await planClaudeUninstall({ scope: o.scope as ClaudeScope, cwd: process.cwd(), env: process.env, packageRoot: packageRoot() });
      await finish(plan, o, 'uninstall');
    });

  uninstall
    .command('codex')
    .description('remove fanfold from Codex (config.toml table, the skill in ~/.agents/skills and $CODEX_HOME/skills)')
    .option('--dry-run', 'show the changes, write nothing')
    .option('--json', 'print what was done as JSON')
    .action(async (_o: { dryRun?: boolean; json?: boolean }, cmd: Command) => {
      // optsWithGlobals: the parent command's --json (for its own errors) would otherwise take the flag.
      const o = cmd.optsWithGlobals<{ dryRun?: boolean; json?: boolean }>();
      const plan = await planCodexUninstall({ env: process.env, packageRoot: packageRoot() });
      await finish(plan, o, 'uninstall');
    });
  for (const cmd of uninstall.commands) cmd.exitOverride();
  uninstall.exitOverride();
}

/** Registers `install claude` and `install codex`, and their inverse `uninstall`. */
export function registerInstallCommand(program: Command): void {
  const install = program
    .command('install')
    .description('use fanfold from Claude Code or Codex: register the MCP server, install the skill and /workflow')
    .argument('[host]', 'claude or codex')
    .option('--json', 'print errors as JSON')
    .action((host: string | undefined) => unknownHost('install', host));
  registerUninstallCommand(program);

  install
    .command('claude')
    .description('register fanfold with Claude Code (user or project scope), with the skill and the /workflow command')
    .option('--scope <scope>', `where: ${CLAUDE_SCOPES.join(' or ')} (user: every project; project: .mcp.json and .claude/ here)`, 'user')
    .option('--dry-run', 'show the changes, write nothing')
    .option('--launcher <how>', "how the host starts the server: 'absolute' (this node + this package's path) or 'path' (fanfold on PATH)", 'absolute')
    .option('--json', 'print what was done as JSON')
    .action(async (_o: CommonOptions & { scope: string }, cmd: Command) => {
      // optsWithGlobals: the parent command's --json (for its own errors) would otherwise take the flag.
      const o = cmd.optsWithGlobals<CommonOptions & { scope: string }>();
      if (!(CLAUDE_SCOPES as readonly string[]).includes(o.scope)) throw new UsageError(`--scope: expected one of ${CLAUDE_SCOPES.join(', ')}, got '${o.scope}'`);
      const root = packageRoot();
      const plan = await planClaudeInstall({
        scope: o.scope as ClaudeScope,
        cwd: process.cwd(),
        env: process.env,
        packageRoot: root,
        server: serverCommand({ launcher: launcherOf(o.launcher), packageRoot: root }),
      });
      await finish(plan, o);
    });

  install
    .command('codex')
    .description('register fanfold in Codex (~/.codex/config.toml, or $CODEX_HOME) and install the skill (~/.agents/skills)')
    .option('--dry-run', 'show the changes, write nothing')
    .option('--launcher <how>', "how the host starts the server: 'absolute' (this node + this package's path) or 'path' (fanfold on PATH)", 'absolute')
    .option('--legacy-skills', 'also copy the skill to $CODEX_HOME/skills, for Codex builds that do not read ~/.agents/skills')
    .option('--headless', "for codex exec (no person to answer forms): set FANFOLD_APPROVAL_MODE=flag in the server's env, so the model's approve: true counts when the form is declined at once")
    .option('--json', 'print what was done as JSON')
    .action(async (_o: CommonOptions & { legacySkills?: boolean; headless?: boolean }, cmd: Command) => {
      // optsWithGlobals: the parent command's --json (for its own errors) would otherwise take the flag.
      const o = cmd.optsWithGlobals<CommonOptions & { legacySkills?: boolean; headless?: boolean }>();
      const root = packageRoot();
      const plan = await planCodexInstall({
        env: process.env,
        packageRoot: root,
        server: serverCommand({ launcher: launcherOf(o.launcher), packageRoot: root }),
        legacySkills: o.legacySkills === true,
        headless: o.headless === true,
      });
      await finish(plan, o);
    });
  for (const cmd of install.commands) cmd.exitOverride();
  install.exitOverride();
}
