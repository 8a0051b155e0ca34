#!/usr/bin/env node
/**
 * Starts `fanfold serve` for the Claude Code plugin (plugin.json runs
 * `node ${CLAUDE_PLUGIN_ROOT}/.claude-plugin/launch.mjs serve`).
 *
 * The plugin folder is a copy of the fanfold repository that Claude Code made: of a local clone
 * (with whatever dist/ and node_modules/ it had) or of a fresh git clone (without them: dist/ is
 * built, never committed). So:
 *
 * 1. dist/cli/main.js and node_modules/ present → run it, in this process.
 * 2. Otherwise build it once, in the plugin folder: `npm ci` (or `npm install` without a lock
 *    file), whose `prepare` script runs the TypeScript build. The build runs detached (this file
 *    in builder mode) with its log in `.fanfold-build.log`, so it finishes even if Claude Code
 *    gives up waiting on this first start (it allows 30 s; a cold build takes about a minute),
 *    and the next start finds it built. A lock folder keeps two starts from building at once; a
 *    marker (`.fanfold-build.pending`) until success keeps a half-built dist/ from being run.
 * 3. If it cannot be built (no npm, no registry), a `fanfold` on PATH is used instead.
 *
 * stdout is the MCP channel: this file writes only to stderr. No dependencies (it runs before
 * anything is installed).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, rmSync, statSync, writeFileSync, accessSync, constants } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = path.join(ROOT, 'dist', 'cli', 'main.js');
const LOCK = path.join(ROOT, '.fanfold-build.lock');
const LOG = path.join(ROOT, '.fanfold-build.log');
/** Present from the start of a build until it succeeded: a half-built dist/ is never run. */
const PENDING = path.join(ROOT, '.fanfold-build.pending');
/** The argument that runs this file as the detached builder. */
const BUILD_FLAG = '--fanfold-build';
/** Longest a build may take before a waiting start gives up (a cold npm install is ~1 min). */
const BUILD_TIMEOUT_MS = 10 * 60_000;
/** A lock older than this, or whose owner is gone, is stale. */
const LOCK_STALE_MS = 15 * 60_000;

function log(msg) {
  process.stderr.write(`fanfold plugin: ${msg}\n`);
}

function built() {
  return !existsSync(PENDING) && existsSync(MAIN) && existsSync(path.join(ROOT, 'node_modules', '@modelcontextprotocol', 'sdk'));
}

/**
 * The detached builder (this file run with BUILD_FLAG): runs npm with its output in the log, and
 * only on success removes the pending marker. Then it drops the lock, whether or not the start
 * that launched it is still there to do so.
 */
function builderMain() {
  const args = existsSync(path.join(ROOT, 'package-lock.json')) ? ['ci', '--no-audit', '--no-fund'] : ['install', '--no-audit', '--no-fund'];
  const env = { ...process.env };
  delete env.NODE_ENV; // production would skip the dev dependencies the build needs
  const r = spawnSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'], env });
  let code = 1;
  if (r.error) process.stderr.write(`cannot run npm: ${r.error.message}\n`);
  else if (r.status === 0 && existsSync(MAIN)) {
    rmSync(PENDING, { force: true });
    code = 0;
  } else process.stderr.write(`npm ${args.join(' ')} ended with ${r.signal ? `signal ${r.signal}` : `exit code ${r.status}`}\n`);
  rmSync(LOCK, { recursive: true, force: true });
  process.exit(code);
}

function onPath(name) {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      if (statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

/** The lock's owner record, or undefined when there is none (or it is unreadable). */
function lockOwner() {
  try {
    return JSON.parse(readFileSync(path.join(LOCK, 'owner.json'), 'utf8'));
  } catch {
    return undefined;
  }
}

/** Whether the lock is held by a live start or a live build (npm outlives a start that was killed). */
function lockLive() {
  if (!existsSync(LOCK)) return false;
  const owner = lockOwner();
  if (!owner) {
    try {
      return Date.now() - statSync(LOCK).mtimeMs < 30_000; // just made, owner not written yet
    } catch {
      return false;
    }
  }
  if (Date.now() - owner.since > LOCK_STALE_MS) return false;
  return pidAlive(owner.pid) || (owner.buildPid !== undefined && pidAlive(owner.buildPid));
}

/** Takes the build lock; false when another live start or build holds it. */
function tryLock() {
  for (let tries = 0; tries < 3; tries++) {
    try {
      mkdirSync(LOCK);
      writeFileSync(path.join(LOCK, 'owner.json'), JSON.stringify({ pid: process.pid, since: Date.now() }));
      return true;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
    }
    if (lockLive()) return false;
    rmSync(LOCK, { recursive: true, force: true });
  }
  return false;
}

function logTail() {
  try {
    return readFileSync(LOG, 'utf8').split('\n').filter(Boolean).slice(-15).join('\n');
  } catch {
    return '(no build log)';
  }
}

/** Builds dist/ (detached, logged). Resolves `{ok, running}`: running when it was left going. */
function build() {
  const how = existsSync(path.join(ROOT, 'package-lock.json')) ? 'npm ci' : 'npm install';
  log(`dist/ is missing in ${ROOT}: building it once (${how}; log: ${LOG})…`);
  writeFileSync(PENDING, `${new Date().toISOString()}\n`);
  const fd = openSync(LOG, 'w');
  return new Promise((resolve) => {
    // Why detached with the log as a file: Claude Code gives a server 30 s to connect and may kill
    // this process; the build must not die with it (a pipe to us would break) but finish.
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), BUILD_FLAG], { cwd: ROOT, stdio: ['ignore', fd, fd], detached: true });
    closeSync(fd);
    try {
      writeFileSync(path.join(LOCK, 'owner.json'), JSON.stringify({ pid: process.pid, buildPid: child.pid, since: Date.now() }));
    } catch {
      /* the lock still stands */
    }
    const timer = setTimeout(() => {
      log(`the build is taking more than ${BUILD_TIMEOUT_MS / 60_000} minutes; not waiting for it any longer (see ${LOG})`);
      resolve({ ok: false, running: true });
    }, BUILD_TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      log(`cannot start the build: ${e.message}`);
      resolve({ ok: false, running: false });
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0 && built()) resolve({ ok: true, running: false });
      else {
        log(`the build failed (${signal ? `signal ${signal}` : `exit code ${code}`}); last lines of ${LOG}:\n${logTail()}`);
        resolve({ ok: false, running: false });
      }
    });
    child.unref();
  });
}

/** Waits while another start (or a build it left running) holds the lock; true once built. */
async function waitForOtherBuild() {
  log('another start is building fanfold; waiting for it…');
  const deadline = Date.now() + BUILD_TIMEOUT_MS;
  while (Date.now() < deadline && lockLive()) await new Promise((r) => setTimeout(r, 500));
  return built();
}

async function ensureBuilt() {
  if (built()) return true;
  if (!tryLock()) return waitForOtherBuild();
  let result = { ok: built(), running: false };
  try {
    if (!result.ok) result = await build();
    return result.ok;
  } finally {
    // A build still running keeps the lock (its pid is in it), so no second build starts.
    if (!result.running) rmSync(LOCK, { recursive: true, force: true });
  }
}

async function main() {
  const args = process.argv.slice(2);
  if (args[0] === BUILD_FLAG) return builderMain();
  if (await ensureBuilt()) {
    // Run the CLI in this process: its entry point parses process.argv when imported.
    process.argv = [process.execPath, MAIN, ...args];
    try {
      await import(pathToFileURL(MAIN).href);
    } catch (e) {
      log(`${MAIN} does not start (${e?.message ?? e}). Rebuild it: npm install && npm run build in ${ROOT}`);
      process.exit(1);
    }
    return;
  }
  const bin = onPath('fanfold');
  if (bin) {
    log(`using ${bin} instead`);
    const child = spawn(bin, args, { stdio: 'inherit' });
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
    child.on('exit', (code, signal) => {
      if (signal) process.kill(process.pid, signal);
      else process.exit(code ?? 1);
    });
    child.on('error', (e) => {
      log(`cannot start ${bin}: ${e.message}`);
      process.exit(1);
    });
    return;
  }
  log(
    `cannot start: ${MAIN} does not exist and could not be built. ` +
      `Run 'npm install' in ${ROOT}, or install fanfold (npm i -g fanfold) and run 'fanfold install claude' instead of the plugin.`,
  );
  process.exit(1);
}

main().catch((e) => {
  log(`failed: ${e?.stack ?? e}`);
  process.exit(1);
});
