/**
 * CPU-heavy, pure rendering moved off the run owner's event loop: extractive phase digests and the
 * final reports run in one worker thread per owner.
 *
 * Why: the owner's event loop also renews its lease. A digest scans up to 8 MB of output text and
 * a report renders every record; done inline on a big run they blocked the loop for hundreds of
 * milliseconds, and a loop blocked for longer than the lease's ttl makes every reader judge a
 * live owner dead (`interrupted`) and lets a resume take the run over. In a worker the owner's
 * loop only pays for copying the (bounded) inputs across.
 *
 * When no worker can be started (the built worker file is missing), the same functions run inline.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { phaseDigest, type Pause, type PhaseDigestInput } from '../digest/index.js';
import type { AgentRecord, RunRecord } from '../store/types.js';
import { renderReports, reportHint } from './reports.js';

/** The jobs a worker runs, by kind: input and output. */
export interface OffloadJobs {
  digest: { input: PhaseDigestInput; output: string };
  reports: { input: { run: RunRecord; records: AgentRecord[]; storeDir?: string; pauses?: Pause[] }; output: { markdown: string; html: string } };
}

/** Runs one job of `kind` on `input` in this thread (the worker calls this too). */
export function runJob<K extends keyof OffloadJobs>(kind: K, input: OffloadJobs[K]['input']): OffloadJobs[K]['output'] {
  if (kind === 'digest') return phaseDigest(input as PhaseDigestInput) as OffloadJobs[K]['output'];
  const { run, records, storeDir, pauses } = input as OffloadJobs['reports']['input'];
  return renderReports(run, records, storeDir ? reportHint(run, storeDir) : undefined, pauses) as OffloadJobs[K]['output'];
}

/** Path of the built worker script, or undefined (tests running from src/ before a build). */
function workerPath(): string | undefined {
  const here = fileURLToPath(new URL('./offload-worker.js', import.meta.url));
  if (existsSync(here)) return here;
  const built = fileURLToPath(new URL('../../dist/engine/offload-worker.js', import.meta.url));
  return existsSync(built) ? built : undefined;
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };

/** One worker thread for a run owner's rendering jobs; close() ends it. */
export class Offloader {
  #worker: Worker | undefined;
  #failed = false;
  #next = 0;
  readonly #pending = new Map<number, Pending>();

  /** Runs a job in the worker (inline when there is none); rejects with the job's error. */
  run<K extends keyof OffloadJobs>(kind: K, input: OffloadJobs[K]['input']): Promise<OffloadJobs[K]['output']> {
    const w = this.#ensure();
    if (!w) return Promise.resolve().then(() => runJob(kind, input));
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      w.postMessage({ id, kind, input });
    });
  }

  /** Ends the worker; jobs still pending are rejected. */
  async close(): Promise<void> {
    const w = this.#worker;
    this.#worker = undefined;
    this.#failAll(new Error('engine: the rendering worker was closed'));
    if (w) await w.terminate().catch(() => {});
  }

  #ensure(): Worker | undefined {
    if (this.#worker || this.#failed) return this.#worker;
    const file = workerPath();
    if (!file) {
      this.#failed = true;
      return undefined;
    }
    const w = new Worker(file);
    // Why unref: an idle worker must never keep an owner (or a test) alive; close() is the real end.
    w.unref();
    w.on('message', (m: { id: number; ok: boolean; out?: unknown; error?: string }) => {
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (m.ok) p.resolve(m.out);
      else p.reject(new Error(m.error ?? 'engine: a rendering job failed'));
    });
    w.on('error', (err) => {
      // A crashed worker fails its jobs; later jobs run inline rather than not at all.
      this.#failed = true;
      this.#worker = undefined;
      this.#failAll(err);
    });
    w.on('exit', () => {
      if (this.#worker === w) this.#worker = undefined;
      this.#failed = true;
      this.#failAll(new Error('engine: the rendering worker exited'));
    });
    this.#worker = w;
    return w;
  }

  #failAll(err: Error): void {
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }
}
