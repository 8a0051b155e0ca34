/**
 * Run one agent CLI as a child: stdin closed (/dev/null), own process group (killed as a whole on
 * timeout), stdout/stderr collected.
 */
import { spawn } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentRecord, RunEvent } from '../../../src/store/types.js';

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Date.now() just before spawn. */
  startedAt: number;
  endedAt: number;
  timedOut: boolean;
}

export function runCli(
  bin: string,
  args: string[],
  opts: { cwd: string; env: Record<string, string>; timeoutMs?: number },
): Promise<CliRun> {
  // Below vitest's 60 s test timeout, so a hung CLI is killed and its output shows in the failure.
  const timeoutMs = opts.timeoutMs ?? 45_000;
  return new Promise((resolve, reject) => {
    const startedAt = Date.now();
    const child = spawn(bin, args, {
      cwd: opts.cwd,
      env: opts.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const killGroup = (sig: NodeJS.Signals): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, sig);
      } catch {
        /* already gone */
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup('SIGTERM');
      setTimeout(() => killGroup('SIGKILL'), 3_000).unref();
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      // Reap anything the CLI left behind in its group (shell snapshots, MCP servers…).
      killGroup('SIGKILL');
      resolve({ code, signal, stdout, stderr, startedAt, endedAt: Date.now(), timedOut });
    });
  });
}

/** Parse JSONL output; lines that are not JSON are returned separately. */
export function parseJsonl(text: string): { events: Array<Record<string, unknown>>; junk: string[] } {
  const events: Array<Record<string, unknown>> = [];
  const junk: string[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t === '') continue;
    try {
      const v = JSON.parse(t) as unknown;
      if (v && typeof v === 'object' && !Array.isArray(v)) events.push(v as Record<string, unknown>);
      else junk.push(line);
    } catch {
      junk.push(line);
    }
  }
  return { events, junk };
}

/** Describe a run for assertion messages. */
export function describeRun(run: CliRun): string {
  return `exit=${run.code} signal=${run.signal} timedOut=${run.timedOut}\n--- stdout ---\n${run.stdout.slice(-4000)}\n--- stderr ---\n${run.stderr.slice(-4000)}`;
}

/** Every agent record of a run directory, by `phase/task#attempt`. */
export async function runRecords(dir: string): Promise<Map<string, AgentRecord>> {
  const out = new Map<string, AgentRecord>();
  for (const f of await readdir(join(dir, 'agents'))) {
    const rec = JSON.parse(await readFile(join(dir, 'agents', f), 'utf8')) as AgentRecord;
    out.set(`${rec.phaseId}/${rec.taskId}#${rec.attempt}`, rec);
  }
  return out;
}

/** The journal of a run directory, one parsed event per line. */
export async function runJournal<E = RunEvent>(dir: string): Promise<E[]> {
  return (await readFile(join(dir, 'events.jsonl'), 'utf8'))
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as E);
}
