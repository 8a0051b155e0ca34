/**
 * The worker thread of Offloader (offload.ts): runs rendering jobs posted by the run owner and
 * posts back their results or errors. It writes nothing and holds no state between jobs.
 */
import { parentPort } from 'node:worker_threads';
import { runJob, transferablesOf, type OffloadJobs } from './offload.js';

parentPort?.on('message', (m: { id: number; kind: keyof OffloadJobs; input: never }) => {
  try {
    const out = runJob(m.kind, m.input);
    parentPort!.postMessage({ id: m.id, ok: true, out }, transferablesOf(m.kind, out));
  } catch (err) {
    parentPort!.postMessage({ id: m.id, ok: false, error: err instanceof Error ? err.message : String(err) });
  }
});
