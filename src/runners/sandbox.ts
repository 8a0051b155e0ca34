/**
 * The OS sandbox of `command` and `pi` children: bubblewrap (`bwrap`). A confined child sees the
 * toolchain (`/usr`, the `/etc` pieces programs need, Node's install, its CLI's install), the
 * project (read-only, or read-write for tier `edit`), the run's input files, the agent's
 * `readDirs`, and a private tmpfs as HOME and `/tmp`. `command` children also get an empty network
 * namespace unless the agent says `network: true`; Pi keeps the host's network for its model.
 *
 * Claude Code and Codex confine themselves (their settings and flags are built in their drivers);
 * this module only decides, per attempt, whether a child runs confined, unconfined (and says so),
 * or not at all, and builds the bwrap argv. It never throws for a missing bwrap: that is data.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AgentDef, Plan, RunnerKind } from '../spec/types.js';
import type { FailureInfo } from '../store/types.js';

/** What to tell a person whose machine has no usable bubblewrap. */
export const BWRAP_INSTALL_HINT =
  'install bubblewrap (Debian/Ubuntu: sudo apt-get install bubblewrap; Fedora: sudo dnf install bubblewrap; Arch: sudo pacman -S bubblewrap)';

/**
 * Env variable naming the bwrap executable fanfold uses (read from fanfold's own environment,
 * never a child's). `none` behaves as if bubblewrap were not installed (for tests and for machines
 * where bwrap exists but must not be used).
 */
export const BWRAP_ENV = 'FANFOLD_BWRAP';

/** Whether bubblewrap can confine children here, and why not when it cannot. */
export interface BwrapStatus {
  /** Absolute path of a bwrap that started a confined `true` successfully. */
  path?: string;
  /** Why bwrap is not usable (not installed, or it failed to start a sandbox). */
  why?: string;
}

const statusCache = new Map<string, BwrapStatus>();

/**
 * Runners whose children fanfold itself puts into bubblewrap. Codex is one: its own read-only
 * sandbox reads anywhere (checked with 0.169.0), so fanfold's bwrap hides HOME from it.
 */
export const BWRAP_RUNNERS: ReadonlySet<RunnerKind> = new Set(['command', 'pi', 'codex']);

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function onPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, name);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/**
 * Whether bubblewrap works on this machine: found (`$FANFOLD_BWRAP`, else `bwrap` on PATH) and
 * able to start a sandbox with the namespaces fanfold asks for. Probed once per executable path.
 * Why probe instead of trusting the file: containers without user namespaces have the binary but
 * refuse every sandbox ("No permissions to creating new namespace").
 */
export function bwrapStatus(env: NodeJS.ProcessEnv = process.env): BwrapStatus {
  const where = bwrapPath(env);
  if ('why' in where) return where;
  const found = where.found;
  const cached = statusCache.get(found);
  if (cached) return cached;
  const probe = spawnSync(found, PROBE_ARGS, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
  return remember(found, probe.status, probe.stderr?.toString('utf8') ?? '', probe.error?.message);
}

/** The namespaces fanfold asks bwrap for, around `true`. */
const PROBE_ARGS = ['--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--unshare-pid', '--unshare-net', '--die-with-parent', '--new-session', 'true'];

function bwrapPath(env: NodeJS.ProcessEnv): { found: string } | { why: string } {
  const wanted = env[BWRAP_ENV]?.trim();
  if (wanted === 'none') return { why: `bubblewrap is turned off (${BWRAP_ENV}=none)` };
  const found = wanted ? (existsSync(wanted) ? path.resolve(wanted) : undefined) : onPath('bwrap', env);
  if (!found) return { why: wanted ? `${BWRAP_ENV}='${wanted}' does not exist` : 'bubblewrap (bwrap) is not installed' };
  return { found };
}

function remember(found: string, code: number | null, stderr: string, error: string | undefined): BwrapStatus {
  const said = stderr.trim().split('\n').pop() ?? '';
  const status: BwrapStatus = code === 0 ? { path: found } : { why: `bwrap at ${found} cannot start a sandbox here (${said || error || `exit ${code}`})` };
  statusCache.set(found, status);
  return status;
}

/**
 * `bwrapStatus`, probed without blocking: the run owner calls it before its first dispatch so
 * that the synchronous probe (a sandbox started and waited for, ~80 ms) never stalls its event
 * loop, which also renews its lease.
 */
export async function warmBwrapStatus(env: NodeJS.ProcessEnv = process.env): Promise<BwrapStatus> {
  const where = bwrapPath(env);
  if ('why' in where) return where;
  const cached = statusCache.get(where.found);
  if (cached) return cached;
  return new Promise((resolve) => {
    const child = spawn(where.found, PROBE_ARGS, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('error', (e) => resolve(remember(where.found, null, stderr, e.message)));
    child.on('close', (code) => resolve(statusCache.get(where.found) ?? remember(where.found, code, stderr, undefined)));
  });
}

/** How one attempt's child runs. */
export type Confinement =
  | { mode: 'bwrap'; bwrap: string }
  /** Unconfined: on purpose (`sandbox: off`), or because bwrap is missing (`command` only). */
  | { mode: 'unconfined'; note: string }
  /** The runner confines itself (claude, codex). */
  | { mode: 'cli' }
  | { mode: 'refused'; error: FailureInfo };

/**
 * How `agent`'s child runs given `status`: claude and codex confine themselves; `command` and `pi`
 * run in bwrap when it works; without it `command` runs unconfined (said in the plan and the
 * record) and `pi` refuses. `sandbox: off` runs unconfined on purpose; `sandbox: required` never
 * runs unconfined.
 */
export function confinementOf(agent: AgentDef, status: BwrapStatus): Confinement {
  if (agent.sandbox === 'off') return { mode: 'unconfined', note: `agent '${agent.name}' runs unconfined on purpose (sandbox: off)` };
  if (!BWRAP_RUNNERS.has(agent.runner)) {
    return { mode: 'cli' };
  }
  if (status.path) return { mode: 'bwrap', bwrap: status.path };
  const why = status.why ?? 'bubblewrap is not available';
  if (agent.sandbox === 'required' || agent.runner === 'pi') {
    const because = agent.sandbox === 'required' ? 'it says sandbox: required' : 'Pi has no sandbox of its own and runs only inside bubblewrap';
    return {
      mode: 'refused',
      error: {
        type: 'sandbox_unavailable',
        message: `agent '${agent.name}' (runner ${agent.runner}) was not started: ${because}, and ${why}; ${BWRAP_INSTALL_HINT}${agent.sandbox === 'required' ? '' : `, or give the agent sandbox: off to run it unconfined`}`,
        retryable: false,
      },
    };
  }
  return { mode: 'unconfined', note: `agent '${agent.name}' (runner ${agent.runner}) runs unconfined: ${why}; ${BWRAP_INSTALL_HINT}` };
}

/** What a bwrap sandbox must show, besides the toolchain. */
export interface BwrapLayout {
  /** The child's cwd: the project, or its worktree. */
  cwd: string;
  /** Tier edit: the project (and its git dir) read-write. */
  writable: boolean;
  /** Keep the host's network (no `--unshare-net`). */
  network: boolean;
  /** The child's HOME (hidden under a tmpfs); unset: none. */
  home?: string;
  /** Files and folders the child may read (inputs, readDirs, CLI install, Node). */
  readOnly: string[];
  /** Folders the child may write besides the project (a CLI's own state folder). */
  readWrite?: string[];
  /** The child's PATH: its folders are bound read-only where they exist (the toolchain). */
  pathDirs?: string[];
}

/** System folders the toolchain lives in; bound read-only (or re-created as the host's symlinks). */
const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/opt'];

/**
 * The pieces of `/etc` programs need: users and groups (for `id`, git), name resolution, TLS
 * roots, the dynamic linker's cache, time zone, Debian's alternatives symlinks. Never all of
 * `/etc`: it holds host keys, shadow files and services' credentials.
 */
const ETC_FILES = [
  'passwd', 'group', 'hosts', 'host.conf', 'resolv.conf', 'nsswitch.conf', 'gai.conf', 'services', 'protocols',
  'ssl', 'ca-certificates', 'ca-certificates.conf', 'pki', 'crypto-policies', 'localtime', 'timezone', 'alternatives',
  'ld.so.cache', 'ld.so.conf', 'ld.so.conf.d', 'os-release', 'mime.types', 'gitconfig', 'inputrc', 'terminfo',
];

/** Folders the child's PATH may name that are never bound as "toolchain". */
function isBroad(dir: string, home: string | undefined): boolean {
  const d = path.resolve(dir);
  return d === '/' || d === '/tmp' || d === '/root' || d === '/home' || (home !== undefined && d === path.resolve(home));
}

/**
 * The bwrap arguments (everything before `--`) for `layout`. Pure apart from checking which
 * system paths exist and are symlinks. Mounts are ordered parents first so a folder bound inside
 * another (the project inside a read-only `readDirs` entry, an input file inside a writable
 * project) gets its own mode on top.
 */
export function bwrapArgs(layout: BwrapLayout): string[] {
  const args = ['--die-with-parent', '--unshare-pid', '--new-session'];
  // Why no network for command agents: a prompt-injected script would otherwise post what it read.
  if (!layout.network) args.push('--unshare-net');
  args.push('--proc', '/proc', '--dev', '/dev');
  for (const dir of SYSTEM_DIRS) {
    let st;
    try {
      st = lstatSync(dir);
    } catch {
      continue;
    }
    // Merged-/usr systems: /bin → usr/bin. Re-create the symlink rather than bind its target twice.
    if (st.isSymbolicLink()) args.push('--symlink', readlinkSync(dir), dir);
    else args.push('--ro-bind', dir, dir);
  }
  for (const f of ETC_FILES) args.push('--ro-bind-try', `/etc/${f}`, `/etc/${f}`);
  args.push('--tmpfs', '/tmp');
  if (layout.home && !isBroad(layout.home, undefined) && path.resolve(layout.home) !== '/tmp') args.push('--tmpfs', path.resolve(layout.home));

  // Each path is bound where it really is; a path reached through a symlink is also bound under
  // the name given (an alias), unless that name already lies inside another mount, where the
  // symlink itself is visible. Why: bwrap cannot create a mount point inside a read-only bind, or
  // through a symlink whose target is not in the sandbox (node_modules linked from elsewhere).
  type Mount = { dest: string; src: string; rw: boolean; alias: boolean };
  const mounts: Mount[] = [];
  const add = (p: string, rw: boolean): void => {
    const abs = path.resolve(p);
    let real = abs;
    try {
      real = realpathSync(abs);
    } catch {
      /* bound with -try: a missing path is skipped by bwrap */
    }
    mounts.push({ dest: real, src: real, rw, alias: false });
    if (real !== abs) mounts.push({ dest: abs, src: real, rw, alias: true });
  };
  for (const d of layout.pathDirs ?? []) {
    if (path.isAbsolute(d) && !isBroad(d, layout.home) && !SYSTEM_DIRS.some((s) => d === s || d.startsWith(`${s}/`))) add(d, false);
  }
  for (const p of layout.readOnly) add(p, false);
  for (const p of layout.readWrite ?? []) add(p, true);
  add(layout.cwd, layout.writable);
  for (const g of gitDirsOf(layout.cwd)) add(g, layout.writable);
  const depth = (p: string): number => p.split('/').length;
  const ordered = mounts.map((m, i) => ({ ...m, i })).sort((a, b) => depth(a.dest) - depth(b.dest) || a.i - b.i);
  const inside = (p: string, dir: string): boolean => p === dir || p.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
  const done: Mount[] = [];
  for (const m of ordered) {
    const parent = [...done].reverse().find((d) => inside(m.dest, d.dest));
    // Already visible with the same rights (or, for an alias, through the symlink): nothing to add.
    if (parent && (m.alias || parent.rw === m.rw)) continue;
    done.push(m);
    args.push(m.rw ? '--bind-try' : '--ro-bind-try', m.src, m.dest);
  }
  // Why: bwrap's root is a writable tmpfs; a write anywhere else would "succeed" into it and vanish.
  // Read-only, it fails as it should (the tmpfs /tmp and HOME and the read-write binds stay writable).
  args.push('--remount-ro', '/');
  args.push('--chdir', path.resolve(layout.cwd));
  return args;
}

/**
 * The git folders a project at `cwd` needs besides itself: the `.git` of a repository whose top
 * is above `cwd`, or a worktree's private git dir and the repository's common dir (a worktree's
 * `.git` is a file pointing there). Empty when git data is inside `cwd` already or there is none.
 */
export function gitDirsOf(cwd: string): string[] {
  let dir = path.resolve(cwd);
  for (;;) {
    const dotGit = path.join(dir, '.git');
    let st;
    try {
      st = statSync(dotGit);
    } catch {
      st = undefined;
    }
    if (st?.isDirectory()) return dir === path.resolve(cwd) ? [] : [dotGit];
    if (st?.isFile()) {
      const m = /^gitdir:\s*(.+)$/m.exec(readFileSync(dotGit, 'utf8'));
      if (!m) return [];
      const gitdir = path.resolve(dir, m[1]!.trim());
      const out = [gitdir];
      try {
        out.push(path.resolve(gitdir, readFileSync(path.join(gitdir, 'commondir'), 'utf8').trim()));
      } catch {
        /* not a worktree: a plain gitdir link */
      }
      return out;
    }
    const up = path.dirname(dir);
    if (up === dir) return [];
    dir = up;
  }
}

/**
 * The install folder of an executable: the folder above the outermost `node_modules` its real
 * path lies in (an npm package and its dependencies), else the folder it is in.
 */
export function installRootOf(file: string): string {
  let real: string;
  try {
    real = realpathSync(file);
  } catch {
    return path.dirname(path.resolve(file));
  }
  const parts = real.split(path.sep);
  const i = parts.indexOf('node_modules');
  return i > 0 ? parts.slice(0, i).join(path.sep) || '/' : path.dirname(real);
}

/** The prefix of a Node install (`/opt/node` for `/opt/node/bin/node`). */
export function nodePrefixOf(execPath: string): string {
  let real = execPath;
  try {
    real = realpathSync(execPath);
  } catch {
    /* as given */
  }
  return path.dirname(path.dirname(real));
}

/**
 * Folders of `readDirs` as absolute paths: `~/x` against `home`, relative ones against `cwd`.
 */
export function resolveReadDirs(dirs: readonly string[] | undefined, cwd: string, home: string | undefined): string[] {
  return (dirs ?? []).map((d) => {
    if (d === '~' || d.startsWith('~/')) return path.join(home ?? os.homedir(), d.slice(1));
    return path.resolve(cwd, d);
  });
}

/** What `wrapForSandbox` needs about one attempt. */
export interface SandboxRequest {
  agent: AgentDef;
  /** The child's argv (argv[0] resolved to an absolute path where it could be). */
  argv: string[];
  /** The child's env. */
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Files the run hands the child (prompt, context). */
  inputs: string[];
  /** Folders the CLI itself needs to read (its install) and to write (its state). */
  cliRead?: string[];
  cliWrite?: string[];
  /** Keep the host network even without `network: true` (Pi: its model API). */
  cliNetwork?: boolean;
  /** fanfold's own environment, where FANFOLD_BWRAP is read (default `process.env`). */
  ownEnv?: NodeJS.ProcessEnv;
}

/** The child as it will run: argv and env, a note when it runs unconfined, or why it cannot run. */
export type Sandboxed =
  | { argv: string[]; env: NodeJS.ProcessEnv; confined: boolean; note?: string }
  | { error: FailureInfo };

/** Wraps a `command` or `pi` child into bwrap (or says why it runs unconfined, or not at all). */
export function wrapForSandbox(req: SandboxRequest): Sandboxed {
  const how = confinementOf(req.agent, bwrapStatus(req.ownEnv ?? process.env));
  if (how.mode === 'refused') return { error: how.error };
  if (how.mode === 'unconfined') return { argv: req.argv, env: req.env, confined: false, note: how.note };
  if (how.mode === 'cli') return { argv: req.argv, env: req.env, confined: false };
  // Inside bwrap a missing program is bwrap's "execvp: No such file" (exit 1), which reads as a
  // retryable failure of the child: find it out here, so it fails once with the usual cause.
  const argv0 = req.argv[0] ?? '';
  const exists = argv0.includes('/') ? isFile(path.resolve(req.cwd, argv0)) : onPath(argv0, req.env) !== undefined;
  if (!exists) {
    const where = argv0.includes('/') ? 'no such file' : `executable not found on PATH (PATH=${(req.env.PATH ?? '(unset)').slice(0, 160)})`;
    return { error: { type: 'spawn_enoent', message: `cannot start '${argv0}': ${where}`, retryable: false } };
  }
  const home = req.env.HOME;
  const node = new Set<string>([nodePrefixOf(process.execPath)]);
  const nodeOnPath = onPath('node', req.env);
  if (nodeOnPath) node.add(nodePrefixOf(nodeOnPath));
  const layout: BwrapLayout = {
    cwd: req.cwd,
    writable: req.agent.tier === 'edit',
    network: req.agent.network === true || req.cliNetwork === true,
    ...(home ? { home } : {}),
    readOnly: [...node, ...(req.cliRead ?? []), ...resolveReadDirs(req.agent.readDirs, req.cwd, home), ...req.inputs],
    readWrite: req.cliWrite ?? [],
    pathDirs: (req.env.PATH ?? '').split(path.delimiter).filter((d) => d !== ''),
  };
  // Why TMPDIR=/tmp: the sandbox's /tmp is a private tmpfs; the host's TMPDIR is not visible.
  return { argv: [how.bwrap, ...bwrapArgs(layout), '--', ...req.argv], env: { ...req.env, TMPDIR: '/tmp' }, confined: true };
}

/**
 * One line per thing a person should know about how the plan's agents are confined on this
 * machine: agents with network, agents unconfined on purpose, `command` agents that will run
 * unconfined (bwrap missing, with the install hint), agents that will not start. Shown by the
 * plan, the status and the report.
 */
export function securityNotes(plan: Pick<Plan, 'agents' | 'tasks' | 'phases'>, env: NodeJS.ProcessEnv = process.env): string[] {
  const used = new Set(plan.tasks.map((t) => t.agent));
  for (const p of plan.phases) {
    const d = p.dynamic;
    for (const t of d?.templates ?? []) used.add(t.agent);
    if (d?.verify) used.add(d.verify.agent);
    if (d?.gate) {
      used.add(d.gate.agent);
      used.add(d.gate.fixAgent);
    }
    if (p.summarize) used.add(p.summarize.agent);
  }
  const agents = [...used].map((n) => plan.agents[n]).filter((a): a is AgentDef => a !== undefined).sort((a, b) => a.name.localeCompare(b.name));
  const list = (xs: AgentDef[]): string => xs.map((a) => `'${a.name}'`).join(', ');
  const notes: string[] = [];
  const net = agents.filter((a) => a.network === true);
  if (net.length > 0) notes.push(`network: ${list(net)} may use the network (network: true)`);
  const off = agents.filter((a) => a.sandbox === 'off');
  if (off.length > 0) notes.push(`unconfined on purpose (sandbox: off): ${list(off)} may read and write anything the owner can`);
  const needBwrap = agents.filter((a) => a.sandbox !== 'off' && BWRAP_RUNNERS.has(a.runner));
  if (needBwrap.length > 0) {
    const status = bwrapStatus(env);
    if (!status.path) {
      const refused = needBwrap.filter((a) => a.runner === 'pi' || a.sandbox === 'required');
      const loose = needBwrap.filter((a) => !refused.includes(a));
      if (loose.length > 0) {
        const kinds = [...new Set(loose.map((a) => a.runner))].join(', ');
        const what = kinds === 'command' ? "will run with the owner's full rights" : 'will run without the bubblewrap sandbox (codex: its own sandbox still blocks writes and network, not reads)';
        notes.push(`unconfined: ${kinds} agent${loose.length === 1 ? '' : 's'} ${list(loose)} ${what}: ${status.why}; ${BWRAP_INSTALL_HINT}`);
      }
      if (refused.length > 0) notes.push(`will not start: ${list(refused)} need${refused.length === 1 ? 's' : ''} bubblewrap (pi, or sandbox: required): ${status.why}; ${BWRAP_INSTALL_HINT}`);
    }
  }
  return notes;
}

/**
 * The credentials a Claude Code child holds to reach its model (its runner's allowlist in
 * runners/env.ts: API key, auth and OAuth tokens, Bedrock's AWS and Vertex's Google credentials).
 * Its Bash sandbox unsets them (`sandbox.credentials.envVars`, mode `deny`).
 */
export const CLAUDE_CREDENTIAL_ENV: readonly string[] = [
  'ANTHROPIC_API_KEY', 'ANTHROPIC_AUTH_TOKEN', 'CLAUDE_CODE_OAUTH_TOKEN', 'CLAUDE_CODE_OAUTH_REFRESH_TOKEN',
  'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_BEARER_TOKEN_BEDROCK', 'GOOGLE_APPLICATION_CREDENTIALS',
];

/**
 * The `--settings` JSON of a Claude Code child (checked against 2.1.330, see tests/e2e/README.md):
 * file tools confined to the working directories (the project and the `--add-dir`s: the run's
 * inputs and `readDirs`), Bash inside Claude Code's own OS sandbox (bubblewrap + socat on Linux),
 * which must start or the command fails (`failIfUnavailable`, no unsandboxed retry), with HOME
 * unreadable, the model credentials unset, and, unless `network: true`, a strict and empty
 * network allowlist. The sandbox lets Bash write only the project, the `--add-dir`s and its own
 * temp dir — as long as CLAUDE_CODE_SUBPROCESS_ENV_SCRUB is off (runners/env.ts says why).
 */
export function claudeSettings(agent: AgentDef, opts: { cwd: string; readable: string[] }): Record<string, unknown> {
  if (agent.sandbox === 'off') return {};
  // A credential the spec hands the agent on purpose (`env`, `passEnv`) stays visible to its shell.
  const declared = new Set([...Object.keys(agent.env ?? {}), ...(agent.passEnv ?? [])]);
  return {
    permissions: { blockReadsOutsideWorkingDirectories: true, blockWritesOutsideWorkingDirectories: true },
    sandbox: {
      enabled: true,
      failIfUnavailable: true,
      allowUnsandboxedCommands: false,
      // Why deny HOME: Claude Code's command sandbox reads everywhere by default; keys live there.
      filesystem: { denyRead: ['~'], allowRead: [path.resolve(opts.cwd), ...opts.readable.map((p) => path.resolve(p))] },
      // Why: Claude's shell inherits Claude's own env, model key included; a prompt-injected
      // command would print it or write it into the project. This replaces what
      // CLAUDE_CODE_SUBPROCESS_ENV_SCRUB did, without that mode's wide-open writes.
      credentials: { envVars: CLAUDE_CREDENTIAL_ENV.filter((n) => !declared.has(n)).map((name) => ({ name, mode: 'deny' })) },
      ...(agent.network === true ? {} : { network: { strictAllowlist: true, allowedDomains: [] } }),
    },
  };
}

/**
 * What fanfold's child MCP server needs to read inside a sandboxed CLI: the package its script
 * belongs to (with its `node_modules`, also where a symlink leads) and the store it serves
 * (`--store DIR`). Paths that do not exist are left out.
 */
export function mcpReadPaths(mcp: { command: string; args: string[] }): string[] {
  const out: string[] = [];
  const args = [mcp.command, ...mcp.args];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!path.isAbsolute(a) || !existsSync(a)) continue;
    if (args[i - 1] === '--store') {
      out.push(a);
      continue;
    }
    let dir = statSync(a).isDirectory() ? a : path.dirname(a);
    while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
    if (!existsSync(path.join(dir, 'package.json'))) continue;
    out.push(dir);
    const modules = path.join(dir, 'node_modules');
    try {
      const real = realpathSync(modules);
      if (real !== modules) out.push(real);
    } catch {
      /* no node_modules of its own */
    }
  }
  return out;
}
