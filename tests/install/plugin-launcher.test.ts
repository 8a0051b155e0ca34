/**
 * The Claude Code plugin's launcher (.claude-plugin/launch.mjs): runs the built CLI when the
 * plugin copy has one, builds it once (detached, locked, logged) when it does not, falls back to a
 * `fanfold` on PATH, and otherwise fails with a message that says what to do. Exercised on fake
 * plugin folders with a fake `npm` and a fake CLI; once for real against this repository, where it
 * must speak MCP on stdout.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO, tempDir } from '../helpers/cli.js';

const LAUNCHER = path.join(REPO, '.claude-plugin', 'launch.mjs');

/** A plugin folder holding the launcher, optionally a (fake) built CLI. */
function pluginRoot(opts: { built?: boolean; lock?: boolean } = {}): string {
  const root = tempDir('fanfold-plugin-');
  fs.mkdirSync(path.join(root, '.claude-plugin'));
  fs.copyFileSync(LAUNCHER, path.join(root, '.claude-plugin', 'launch.mjs'));
  fs.writeFileSync(path.join(root, 'package.json'), '{"name":"fanfold","version":"0.0.0"}\n');
  if (opts.built) fakeBuild(root);
  return root;
}

/** What `npm run build` would leave: node_modules with the SDK and a CLI that reports its argv. */
function fakeBuild(root: string): void {
  fs.mkdirSync(path.join(root, 'node_modules', '@modelcontextprotocol', 'sdk'), { recursive: true });
  fs.mkdirSync(path.join(root, 'dist', 'cli'), { recursive: true });
  fs.writeFileSync(
    path.join(root, 'dist', 'cli', 'main.js'),
    "process.stdout.write(JSON.stringify({ ran: 'dist', argv: process.argv.slice(2) }) + '\\n');\n",
  );
}

/** A folder with a fake executable `name` running `body` (a node script). */
function fakeBin(name: string, body: string): string {
  const dir = tempDir('fanfold-bin-');
  const file = path.join(dir, name);
  fs.writeFileSync(file, `#!${process.execPath}\n${body}\n`);
  fs.chmodSync(file, 0o755);
  return dir;
}

function launch(root: string, pathDirs: string[], args = ['serve']) {
  return spawnSync(process.execPath, [path.join(root, '.claude-plugin', 'launch.mjs'), ...args], {
    cwd: tempDir(),
    // Only the given folders: the real npm (next to node) must not be found.
    env: { PATH: pathDirs.join(path.delimiter), HOME: tempDir() },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

/** An `npm` that writes the fake build into its cwd (as `npm ci` + `prepare` would), recording its argv. */
const FAKE_NPM_OK = `
const fs = require('node:fs'), path = require('node:path');
fs.appendFileSync(path.join(process.cwd(), 'npm-calls.txt'), JSON.stringify(process.argv.slice(2)) + '\\n');
console.log('added 120 packages');
fs.mkdirSync('node_modules/@modelcontextprotocol/sdk', { recursive: true });
fs.mkdirSync('dist/cli', { recursive: true });
fs.writeFileSync('dist/cli/main.js', "process.stdout.write(JSON.stringify({ ran: 'built', argv: process.argv.slice(2) }) + '\\\\n');\\n");
`;

describe('plugin launcher', () => {
  it('runs the built CLI of the plugin folder, in process, with the arguments', () => {
    const root = pluginRoot({ built: true });
    const r = launch(root, []);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ ran: 'dist', argv: ['serve'] });
    expect(r.stderr).toBe('');
  });

  it('builds a plugin folder without dist/ once (npm ci when there is a lock file), then runs it', () => {
    const root = pluginRoot();
    fs.writeFileSync(path.join(root, 'package-lock.json'), '{}');
    const npm = fakeBin('npm', FAKE_NPM_OK);
    const r = launch(root, [npm]);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ ran: 'built', argv: ['serve'] });
    expect(r.stderr).toMatch(/dist\/ is missing .*building it once \(npm ci; log: /);
    expect(fs.readFileSync(path.join(root, 'npm-calls.txt'), 'utf8').trim()).toBe('["ci","--no-audit","--no-fund"]');
    // npm's output goes to the log, never to stdout (the MCP channel).
    expect(fs.readFileSync(path.join(root, '.fanfold-build.log'), 'utf8')).toContain('added 120 packages');
    expect(fs.existsSync(path.join(root, '.fanfold-build.lock'))).toBe(false);

    const again = launch(root, [npm]);
    expect(JSON.parse(again.stdout).ran).toBe('built');
    expect(fs.readFileSync(path.join(root, 'npm-calls.txt'), 'utf8').trim().split('\n')).toHaveLength(1);
  });

  it('uses npm install when there is no lock file', () => {
    const root = pluginRoot();
    const r = launch(root, [fakeBin('npm', FAKE_NPM_OK)]);
    expect(r.status, r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(root, 'npm-calls.txt'), 'utf8').trim()).toBe('["install","--no-audit","--no-fund"]');
  });

  it('says why a build failed (with the log tail) and falls back to fanfold on PATH', () => {
    const root = pluginRoot();
    const npm = fakeBin('npm', "console.error('npm ERR! network unreachable'); process.exit(1);");
    const fanfoldBin = fakeBin('fanfold', "process.stdout.write(JSON.stringify({ ran: 'path', argv: process.argv.slice(2) }) + '\\n');");
    const r = launch(root, [npm, fanfoldBin]);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ ran: 'path', argv: ['serve'] });
    expect(r.stderr).toMatch(/the build failed \(exit code 1\)/);
    expect(r.stderr).toMatch(/npm ERR! network unreachable/);
    expect(r.stderr).toMatch(/using .*fanfold instead/);
    expect(fs.existsSync(path.join(root, '.fanfold-build.lock'))).toBe(false);
  });

  it('never runs a half-built dist/: a failed build is built again on the next start', () => {
    const root = pluginRoot();
    // Leaves dist/ and node_modules/ behind (tsc emits despite type errors), then fails.
    const half = fakeBin('npm', FAKE_NPM_OK.replace("console.log('added 120 packages');", '') + '\nprocess.exit(2);');
    const r = launch(root, [half]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/the build failed/);
    expect(fs.existsSync(path.join(root, 'dist/cli/main.js'))).toBe(true);
    expect(fs.existsSync(path.join(root, '.fanfold-build.pending'))).toBe(true);
    const good = launch(root, [fakeBin('npm', FAKE_NPM_OK)]);
    expect(good.status, good.stderr).toBe(0);
    expect(JSON.parse(good.stdout).ran).toBe('built');
    expect(fs.existsSync(path.join(root, '.fanfold-build.pending'))).toBe(false);
  });

  it('fails with a message saying what to do when it can neither build nor find fanfold', () => {
    const root = pluginRoot();
    const r = launch(root, [tempDir()]); // no npm, no fanfold
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/cannot (start|run) npm/);
    expect(r.stderr).toContain(`Run 'npm install' in ${root}`);
    expect(r.stderr).toMatch(/fanfold install claude/);
  });

  it('waits for a build another start is running instead of starting a second one', async () => {
    const root = pluginRoot();
    // A live lock holder (this test's child) that "builds" for a moment, then releases.
    fs.mkdirSync(path.join(root, '.fanfold-build.lock'));
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      fs.writeFileSync(path.join(root, '.fanfold-build.lock', 'owner.json'), JSON.stringify({ pid: holder.pid, since: Date.now() }));
      const npm = fakeBin('npm', FAKE_NPM_OK);
      const child = spawn(process.execPath, [path.join(root, '.claude-plugin', 'launch.mjs'), 'serve'], {
        env: { PATH: npm },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      await new Promise((r) => setTimeout(r, 1500));
      expect(err).toMatch(/another start is building fanfold; waiting/);
      fakeBuild(root);
      fs.rmSync(path.join(root, '.fanfold-build.lock'), { recursive: true });
      const code = await new Promise((r) => child.on('close', r));
      expect(code, err).toBe(0);
      expect(JSON.parse(out).ran).toBe('dist');
      expect(fs.existsSync(path.join(root, 'npm-calls.txt'))).toBe(false);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('breaks a stale lock left by a start that died', () => {
    const root = pluginRoot();
    fs.mkdirSync(path.join(root, '.fanfold-build.lock'));
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    fs.writeFileSync(path.join(root, '.fanfold-build.lock', 'owner.json'), JSON.stringify({ pid: dead, buildPid: dead, since: Date.now() }));
    const r = launch(root, [fakeBin('npm', FAKE_NPM_OK)]);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).ran).toBe('built');
  });

  it('starts the real fanfold MCP server from this repository (JSON-RPC on stdout)', async () => {
    expect(fs.existsSync(path.join(REPO, 'dist', 'cli', 'main.js')), 'npm run build first').toBe(true);
    const child = spawn(process.execPath, [LAUNCHER, 'serve'], { cwd: tempDir(), stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stdin.write(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '0' } } }) + '\n');
    const deadline = Date.now() + 30_000;
    while (!out.includes('\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    child.stdin.end();
    child.kill();
    const first = JSON.parse(out.split('\n')[0]!);
    expect(first).toMatchObject({ jsonrpc: '2.0', id: 1, result: { serverInfo: { name: 'fanfold' } } });
  });
});
