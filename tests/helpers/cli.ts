/**
 * Test helpers: run the built `fanfold` CLI as a real child process, make temp projects, and read
 * a run directory back the way an outside observer would.
 */
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(REPO, 'dist/cli/main.js');

/** A fresh temp directory (removed by the OS; tests may remove it themselves). */
export function tempDir(prefix = 'fanfold-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Runs the CLI to completion, synchronously. */
export function fanfold(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): SpawnSyncReturns<string> & { json: () => any } {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: opts.cwd ?? REPO,
    env: { ...process.env, ...opts.env },
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 60_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return Object.assign(r, { json: () => JSON.parse(r.stdout) });
}

/** Runs the CLI asynchronously (for tests that kill or signal it). */
export function fanfoldAsync(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: opts.cwd ?? REPO,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, done };
}

/** Journal lines of a run, skipping a torn last line. */
export function readJournal(runDir: string): any[] {
  const file = path.join(runDir, 'events.jsonl');
  if (!fs.existsSync(file)) return [];
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  const out = [];
  for (let i = 0; i < lines.length; i++) {
    try {
      out.push(JSON.parse(lines[i]!));
    } catch (e) {
      if (i !== lines.length - 1) throw new Error(`journal line ${i + 1} is corrupt: ${lines[i]}`);
    }
  }
  return out;
}

/** Every agent file of a run, parsed (throws on an unreadable one). */
export function readAgentFiles(runDir: string): Map<string, any> {
  const dir = path.join(runDir, 'agents');
  const out = new Map<string, any>();
  if (!fs.existsSync(dir)) return out;
  for (const f of fs.readdirSync(dir)) {
    if (!f.endsWith('.json')) continue;
    const text = fs.readFileSync(path.join(dir, f), 'utf8');
    try {
      out.set(f, JSON.parse(text));
    } catch {
      throw new Error(`agent file ${f} is unreadable: ${JSON.stringify(text.slice(0, 200))}`);
    }
  }
  return out;
}

/** Waits until `pred()` is true, polling. */
export async function until(pred: () => boolean, timeoutMs = 20_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Whether a pid is alive. A zombie counts as dead: on some machines (this one's pid 1 among them)
 * killed orphans are never reaped, and `kill(pid, 0)` still succeeds for them.
 */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}
