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
import { StringDecoder } from 'node:string_decoder';
import { phaseDigest, type Pause, type PhaseDigestInput } from '../digest/index.js';
import { Redactor, type SecretValue } from '../redact/index.js';
import type { AgentRecord, RunRecord } from '../store/types.js';
import { renderReports, reportHint } from './reports.js';

/** The jobs a worker runs, by kind: input and output. */
export interface OffloadJobs {
  digest: { input: PhaseDigestInput; output: string };
  reports: { input: { run: RunRecord; records: AgentRecord[]; storeDir?: string; pauses?: Pause[] }; output: { markdown: string; html: string } };
  /**
   * A big text redacted by `new Redactor(values)`; the text travels as UTF-8 chunks (moved, not
   * copied). No chunks come back when nothing was replaced: the text is the one sent.
   */
  redact: { input: { values: SecretValue[]; chunks: Uint8Array[] }; output: { chunks: Uint8Array[]; counts: [string, number][] } };
}

/** Characters encoded or decoded per step when a text crosses to the worker (~1 MiB: ~1 ms). */
const TEXT_SLICE_CHARS = 1024 * 1024;

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** `text` as UTF-8 chunks of about TEXT_SLICE_CHARS characters, never splitting a surrogate pair. */
function* utf8Chunks(text: string): Generator<Uint8Array> {
  for (let i = 0; i < text.length; ) {
    let end = Math.min(text.length, i + TEXT_SLICE_CHARS);
    if (end < text.length && end > i + 1) {
      const c = text.charCodeAt(end - 1);
      if (c >= 0xd800 && c <= 0xdbff) end--;
    }
    // A fresh ArrayBuffer per chunk (never the shared pool's), so that it can be transferred.
    const bytes = Buffer.from(text.slice(i, end), 'utf8');
    const own = new Uint8Array(bytes.length);
    own.set(bytes);
    yield own;
    i = end;
  }
}

/** `text` as transferable UTF-8 chunks, with `pause()` between them. */
export async function textToChunks(text: string, pause: () => Promise<void>): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  for (const c of utf8Chunks(text)) {
    if (chunks.length > 0) await pause();
    chunks.push(c);
  }
  return chunks;
}

/** The text of UTF-8 `chunks`, with `pause()` between them when given. */
export async function chunksToText(chunks: readonly Uint8Array[], pause: () => Promise<void>): Promise<string> {
  const decoder = new StringDecoder('utf8');
  let out = '';
  for (let i = 0; i < chunks.length; i++) {
    if (i > 0) await pause();
    const c = chunks[i]!;
    out += decoder.write(Buffer.from(c.buffer, c.byteOffset, c.byteLength));
  }
  return out + decoder.end();
}

function chunksToTextSync(chunks: readonly Uint8Array[]): string {
  const decoder = new StringDecoder('utf8');
  let out = '';
  for (const c of chunks) out += decoder.write(Buffer.from(c.buffer, c.byteOffset, c.byteLength));
  return out + decoder.end();
}

/** Buffers a job's output moves (transfers) back to the owner's thread. */
export function transferablesOf(kind: keyof OffloadJobs, out: unknown): ArrayBuffer[] {
  if (kind !== 'redact') return [];
  return (out as OffloadJobs['redact']['output']).chunks.map((c) => c.buffer as ArrayBuffer);
}

/** Runs one job of `kind` on `input` in this thread (the worker calls this too). */
export function runJob<K extends keyof OffloadJobs>(kind: K, input: OffloadJobs[K]['input']): OffloadJobs[K]['output'] {
  if (kind === 'digest') return phaseDigest(input as PhaseDigestInput) as OffloadJobs[K]['output'];
  if (kind === 'redact') {
    const { values, chunks } = input as OffloadJobs['redact']['input'];
    const { text, counts } = new Redactor(values).redact(chunksToTextSync(chunks));
    // Every replacement is counted: no count, no change.
    return { chunks: counts.size === 0 ? [] : [...utf8Chunks(text)], counts: [...counts] } as OffloadJobs[K]['output'];
  }
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

  /**
   * Runs a job in the worker (inline when there is none); rejects with the job's error.
   * `transfer`: buffers of `input` moved to the worker rather than copied (unusable here after).
   */
  run<K extends keyof OffloadJobs>(kind: K, input: OffloadJobs[K]['input'], transfer: ArrayBuffer[] = []): Promise<OffloadJobs[K]['output']> {
    const w = this.#ensure();
    if (!w) return Promise.resolve().then(() => runJob(kind, input));
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      w.postMessage({ id, kind, input }, transfer);
    });
  }

  /**
   * `redactor.redact(text)` in the worker, for big texts: the text crosses as UTF-8 chunks,
   * encoded and decoded here in ~1 ms slices, so this thread never spends more than a slice on
   * it (a 60 MiB output took ~2.5 s of redaction, and copying it whole to a worker ~0.1 s).
   * Inline when the redactor's rules are not the default table.
   */
  async redact(redactor: Redactor, text: string, counts: Map<string, number>): Promise<string> {
    const values = redactor.portable();
    if (values === undefined) return redactor.redact(text, counts).text;
    const chunks = await textToChunks(text, yieldToLoop);
    const out = await this.run('redact', { values, chunks }, chunks.map((c) => c.buffer as ArrayBuffer));
    if (out.counts.length === 0) return text; // unchanged: no second 60 MiB string to build
    for (const [rule, n] of out.counts) counts.set(rule, (counts.get(rule) ?? 0) + n);
    return chunksToText(out.chunks, yieldToLoop);
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
