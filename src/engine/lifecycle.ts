/**
 * Run lifecycle from the outside: create a run, start a detached owner for it, ask it to stop.
 * Any session (CLI or MCP) uses these; only the owner (see owner.ts) writes the run afterwards.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plan } from '../spec/types.js';
import { RunStore, newRunId, readLease, leaseState } from '../store/index.js';
import { SCHEMA_VERSION, type RunRecord } from '../store/types.js';
import { emptyCounts } from './phases.js';
import { TERMINAL, readStatus, type RunStatusView } from './status.js';
import { planForDisk, writeSecretEnv } from './secret-env.js';

/** Creates a new run directory with its run.json; nothing runs yet. Returns the run id. */
export async function createRun(opts: { root: string; plan: Plan; cwd: string; specPath?: string; runId?: string }): Promise<string> {
  const runId = opts.runId ?? newRunId();
  const t = new Date().toISOString();
  const { plan } = opts;
  const run: RunRecord = {
    schemaVersion: SCHEMA_VERSION,
    runId,
    name: plan.name,
    status: 'running',
    cwd: opts.cwd,
    ...(opts.specPath ? { specPath: opts.specPath } : {}),
    createdAt: t,
    startedAt: t,
    elapsedMs: 0,
    resumes: 0,
    // Secret-looking values of the agents' env: `[REDACTED]` in run.json, the real ones beside it.
    plan: planForDisk(plan),
    phases: plan.phases.map((p) => ({ id: p.id, status: 'pending', counts: emptyCounts(p.taskRefs.length) })),
    totals: emptyCounts(plan.tasks.length),
    updatedAt: t,
  };
  const store = await RunStore.create(opts.root, run);
  await store.close();
  // After the exclusive create: the run id is ours, so this file cannot belong to another run.
  await writeSecretEnv(path.resolve(opts.root), runId, plan);
  return runId;
}

/**
 * Path of the owner entry point: next to this module in dist/, or — when this module runs from
 * the TypeScript sources (tests) — the built one in dist/, since a detached owner runs plain node.
 */
export function ownerMainPath(): string {
  const here = fileURLToPath(new URL('./owner-main.js', import.meta.url));
  if (fs.existsSync(here)) return here;
  return fileURLToPath(new URL('../../dist/engine/owner-main.js', import.meta.url));
}

/**
 * Starts a detached owner process for an existing run and resolves once it holds the lease and
 * run.json says it runs, so a status read right after never sees a run without an owner. Its stdout and stderr go to
 * `<run dir>/owner.log`. `specPath` (resume with a new spec) is handed to the owner to load.
 */
export async function launchOwner(opts: { root: string; runId: string; specPath?: string; timeoutMs?: number; rerun?: string[] }): Promise<{ pid: number }> {
  const store = await RunStore.open(opts.root, opts.runId);
  const logPath = path.join(store.dir, 'owner.log');
  await store.close();
  const log = fs.openSync(logPath, 'a');
  const args = [ownerMainPath(), '--store', opts.root, '--run', opts.runId];
  if (opts.specPath) args.push('--spec', path.resolve(opts.specPath));
  for (const ref of opts.rerun ?? []) args.push('--rerun', ref);
  // detached: its own session and process group, so it outlives the terminal or MCP host that
  // started it, and a Ctrl-C meant for the caller never reaches it.
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', log, log], env: process.env });
  fs.closeSync(log);
  let exited: { code: number | null; signal: string | null } | undefined;
  child.once('exit', (code, signal) => (exited = { code, signal }));
  child.unref();
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  for (;;) {
    const lease = await readLease(path.join(opts.root, opts.runId)).catch(() => undefined);
    // Why also the status: a resumed run's run.json still says how it last ended until the new
    // owner writes `running`; an answer read right after this must not say `completed`.
    if (lease && lease.pid === child.pid && leaseState(lease) === 'live') {
      const s = await readStatus(opts.root, opts.runId).catch(() => undefined);
      if (!s || !TERMINAL.has(s.status)) return { pid: child.pid! };
    }
    if (exited) {
      // It may have run to the end already (a tiny run): that is success too.
      const s = await readStatus(opts.root, opts.runId).catch(() => undefined);
      if (s && TERMINAL.has(s.status) && s.status !== 'interrupted') return { pid: child.pid! };
      throw new Error(`engine: the run owner exited at once (${exited.signal ?? `code ${exited.code}`}); its log: ${tail(logPath)}`);
    }
    if (Date.now() > deadline) throw new Error(`engine: the run owner did not take the lease within ${opts.timeoutMs ?? 15_000} ms; see ${logPath}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Asks a run to stop, from any process: writes control.json (the owner polls it) and, when the
 * owner lives on this host, also sends it SIGTERM so it reacts at once. Waits up to `waitMs` for
 * the run to end and returns its status.
 */
export async function requestStop(root: string, runId: string, waitMs = 30_000): Promise<RunStatusView> {
  const store = await RunStore.open(root, runId);
  try {
    const before = await readStatus(root, runId);
    if (TERMINAL.has(before.status)) return before;
    await store.requestStop({ pid: process.pid, host: os.hostname() });
    const lease = await readLease(store.dir);
    if (lease && lease.host === os.hostname() && leaseState(lease) === 'live') {
      try {
        process.kill(lease.pid, 'SIGTERM');
      } catch {
        /* gone already: control.json is enough for a later owner */
      }
    }
  } finally {
    await store.close();
  }
  const deadline = Date.now() + waitMs;
  for (;;) {
    const s = await readStatus(root, runId);
    if (TERMINAL.has(s.status) || Date.now() > deadline) return s;
    await new Promise((r) => setTimeout(r, 100));
  }
}

function tail(file: string): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.slice(-1500).trim() || '(empty)';
  } catch {
    return '(no log)';
  }
}
