/**
 * On-demand installs of the pinned agent CLIs for the end-to-end tests.
 *
 * Each CLI goes into its own prefix under the cache folder:
 *   ${XDG_CACHE_HOME:-~/.cache}/fanfold/agent-clis/<pkg>@<version>/node_modules/.bin/<bin>
 * (override the cache root with FANFOLD_CLI_CACHE). The install runs into a temporary sibling
 * folder and is renamed into place only after the binary answered `--version`, so a crashed or
 * interrupted install never leaves a half-installed prefix behind. A lock directory next to the
 * target makes concurrent callers (vitest workers, several test files) wait for one download
 * instead of fetching ~170 MB twice.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { homedir } from 'node:os';

export type CliName = 'claude' | 'codex' | 'pi';

export interface CliPin {
  pkg: string;
  version: string;
  bin: string;
  /** Rough download size, for the progress line. */
  approxMb: number;
}

export const PINNED: Readonly<Record<CliName, CliPin>> = {
  claude: { pkg: '@anthropic-ai/claude-code', version: '2.1.330', bin: 'claude', approxMb: 175 },
  codex: { pkg: '@openai/codex', version: '0.169.0', bin: 'codex', approxMb: 167 },
  pi: { pkg: '@mariozechner/pi-coding-agent', version: '0.73.1', bin: 'pi', approxMb: 30 },
};

export interface InstalledCli {
  bin: string;
  version: string;
}

const MARKER = '.fanfold-install.json';
const LOCK_STALE_MS = 15 * 60_000;
const INSTALL_TIMEOUT_MS = 20 * 60_000;

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export function cliCacheRoot(): string {
  const fromEnv = process.env.FANFOLD_CLI_CACHE;
  if (fromEnv && fromEnv.trim() !== '') return resolve(fromEnv);
  // Outside the repo: ~1 GB of CLIs must not ride along when Claude Code copies the repo as a plugin.
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg && xdg.trim() !== '' ? xdg : join(homedir(), '.cache'), 'fanfold', 'agent-clis');
}

/** Folder of one pinned install (may not exist yet). */
export function cliPrefix(name: CliName): string {
  const pin = PINNED[name];
  return join(cliCacheRoot(), `${pin.pkg}@${pin.version}`);
}

function binPath(prefix: string, name: CliName): string {
  return join(prefix, 'node_modules', '.bin', PINNED[name].bin);
}

function log(msg: string): void {
  process.stderr.write(`[fanfold e2e] ${msg}\n`);
}

const inProcess = new Map<CliName, Promise<InstalledCli>>();

/** Install (once) and return the pinned CLI. Safe to call from many tests and processes at once. */
export function ensureCli(name: CliName): Promise<InstalledCli> {
  let p = inProcess.get(name);
  if (!p) {
    p = ensureCliUncached(name);
    inProcess.set(name, p);
    p.catch(() => inProcess.delete(name));
  }
  return p;
}

async function isInstalled(prefix: string, name: CliName): Promise<boolean> {
  try {
    const marker = JSON.parse(await readFile(join(prefix, MARKER), 'utf8')) as { version?: string };
    return marker.version === PINNED[name].version && existsSync(binPath(prefix, name));
  } catch {
    return false;
  }
}

async function ensureCliUncached(name: CliName): Promise<InstalledCli> {
  const pin = PINNED[name];
  const prefix = cliPrefix(name);
  if (await isInstalled(prefix, name)) return { bin: binPath(prefix, name), version: pin.version };

  await mkdir(dirname(prefix), { recursive: true });
  const release = await acquireLock(`${prefix}.lock`, name);
  try {
    // Someone else may have finished while we waited for the lock.
    if (await isInstalled(prefix, name)) return { bin: binPath(prefix, name), version: pin.version };
    await removeLeftovers(prefix);
    await install(name, prefix, `${prefix}.lock`);
    return { bin: binPath(prefix, name), version: pin.version };
  } finally {
    await release();
  }
}

/** Temp folders of installs that crashed earlier (only the lock holder installs, so all are stale). */
async function removeLeftovers(prefix: string): Promise<void> {
  const dir = dirname(prefix);
  const stem = `${basename(prefix)}.tmp-`;
  for (const entry of await readdir(dir)) {
    if (entry.startsWith(stem)) {
      log(`removing leftover of an interrupted install: ${join(dir, entry)}`);
      await rm(join(dir, entry), { recursive: true, force: true });
    }
  }
}

async function install(name: CliName, prefix: string, lockDir: string): Promise<void> {
  const pin = PINNED[name];
  const spec = `${pin.pkg}@${pin.version}`;
  const tmp = `${prefix}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  await mkdir(tmp, { recursive: true });
  log(`installing ${spec} (~${pin.approxMb} MB download) into ${prefix}`);
  const started = Date.now();
  try {
    await runNpmInstall(tmp, spec, lockDir);
    const tmpBin = binPath(tmp, name);
    if (!existsSync(tmpBin)) throw new Error(`npm install of ${spec} produced no ${tmpBin}`);
    // A half-broken leftover (no marker) is replaced.
    await rm(prefix, { recursive: true, force: true });
    await rename(tmp, prefix);
    const finalBin = binPath(prefix, name);
    const reported = await readVersion(finalBin);
    if (!reported.includes(pin.version)) {
      throw new Error(`${finalBin} --version printed ${JSON.stringify(reported)}, expected ${pin.version}`);
    }
    await writeFile(
      join(prefix, MARKER),
      JSON.stringify({ pkg: pin.pkg, version: pin.version, installedAt: new Date().toISOString() }) + '\n',
    );
    log(`installed ${spec} in ${((Date.now() - started) / 1000).toFixed(1)} s (${reported.trim()})`);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    throw err;
  }
}

/** Env for npm: keep the user's registry/cache settings, drop anything that would skip optional
 *  dependencies or install scripts (the native binaries of claude and codex come that way). */
function npmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) {
    const k = key.toLowerCase();
    if (
      k === 'npm_config_omit' ||
      k === 'npm_config_ignore_scripts' ||
      k === 'npm_config_production' ||
      k === 'npm_config_only' ||
      k === 'npm_config_global' ||
      k === 'npm_config_prefix' ||
      k === 'npm_config_dry_run'
    ) {
      delete env[key];
    }
  }
  delete env.NODE_ENV; // NODE_ENV=production would make npm omit things
  return env;
}

function runNpmInstall(prefix: string, spec: string, lockDir: string): Promise<void> {
  const args = ['install', '--prefix', prefix, '--no-save', '--no-audit', '--no-fund', spec];
  return new Promise((resolvePromise, reject) => {
    // Own process group, so an interrupted install can be reaped as a whole (npm runs postinstall
    // scripts as grandchildren); its pid goes into the lock so a later run can kill an orphan.
    const child = spawn('npm', args, { cwd: prefix, env: npmEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const npmPid = child.pid;
    const killGroup = (): void => {
      if (npmPid === undefined) return;
      try {
        process.kill(-npmPid, 'SIGKILL');
      } catch {
        /* gone */
      }
    };
    process.once('exit', killGroup);
    if (npmPid !== undefined) {
      void writeFile(join(lockDir, 'owner.json'), JSON.stringify({ pid: process.pid, npmPid, since: Date.now() })).catch(() => {});
    }
    const tail: string[] = [];
    const forward = (chunk: Buffer): void => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        tail.push(line);
        if (tail.length > 40) tail.shift();
        log(`npm: ${line}`);
      }
    };
    child.stdout.on('data', forward);
    child.stderr.on('data', forward);
    const started = Date.now();
    const ticker = setInterval(() => {
      log(`still installing ${spec}… ${Math.round((Date.now() - started) / 1000)} s`);
    }, 15_000);
    const killer = setTimeout(killGroup, INSTALL_TIMEOUT_MS);
    const done = (): void => {
      clearInterval(ticker);
      clearTimeout(killer);
      process.removeListener('exit', killGroup);
    };
    child.on('error', (err) => {
      done();
      reject(err);
    });
    child.on('close', (code, signal) => {
      done();
      if (code === 0) resolvePromise();
      else reject(new Error(`npm ${args.join(' ')} failed (code ${code}, signal ${signal}):\n${tail.join('\n')}`));
    });
  });
}

export function readVersion(bin: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(bin, ['--version'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DISABLE_AUTOUPDATER: '1', CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1' },
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
    const t = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    child.on('close', () => {
      clearTimeout(t);
      resolvePromise(out);
    });
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Kill the process group of an npm install whose parent died (it would keep writing into a temp
 *  folder). Only if the pid still looks like npm, in case it was reused. */
async function killOrphanNpm(npmPid: number): Promise<void> {
  if (!pidAlive(npmPid)) return;
  try {
    const cmdline = (await readFile(`/proc/${npmPid}/cmdline`, 'utf8')).replace(/\0/g, ' ');
    if (!/\bnpm\b|npm-cli/.test(cmdline)) return;
  } catch {
    return; // no /proc (not Linux) or already gone
  }
  log(`killing orphaned npm install (pid ${npmPid})`);
  try {
    process.kill(-npmPid, 'SIGKILL');
  } catch {
    /* gone */
  }
  await new Promise((r) => setTimeout(r, 200));
}

/** mkdir-based lock; the holder's pid is written inside so a dead holder's lock can be broken. */
async function acquireLock(lockDir: string, name: CliName): Promise<() => Promise<void>> {
  const owner = join(lockDir, 'owner.json');
  let announced = false;
  for (;;) {
    try {
      await mkdir(lockDir);
      await writeFile(owner, JSON.stringify({ pid: process.pid, since: Date.now() }));
      return async () => {
        await rm(lockDir, { recursive: true, force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let stale = false;
    try {
      const info = JSON.parse(await readFile(owner, 'utf8')) as { pid: number; npmPid?: number; since: number };
      stale = !pidAlive(info.pid) || Date.now() - info.since > LOCK_STALE_MS;
      if (stale && info.npmPid !== undefined) await killOrphanNpm(info.npmPid);
    } catch {
      // Owner file not written yet (holder is between mkdir and writeFile) or unreadable: judge by age.
      try {
        stale = Date.now() - (await stat(lockDir)).mtimeMs > 30_000;
      } catch {
        stale = false; // lock vanished: retry at once
      }
    }
    if (stale) {
      log(`breaking stale install lock ${lockDir}`);
      await rm(lockDir, { recursive: true, force: true });
      continue;
    }
    if (!announced) {
      log(`waiting for another process installing ${PINNED[name].pkg}@${PINNED[name].version}…`);
      announced = true;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}
