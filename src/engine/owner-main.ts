/**
 * Entry point of a detached run owner: `node owner-main.js --store DIR --run ID [--spec FILE]`.
 * Started by `launchOwner`; not meant to be run by hand. SIGTERM/SIGINT stop the run gracefully;
 * SIGHUP is ignored (the owner outlives the terminal that started it).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ownRun } from './owner.js';
import { LeaseLostError } from './fence.js';
import { loadPlanFile } from './plan-file.js';

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { store: { type: 'string' }, run: { type: 'string' }, spec: { type: 'string' }, rerun: { type: 'string', multiple: true } } });
  if (!values.store || !values.run) {
    process.stderr.write('usage: owner-main --store DIR --run ID [--spec FILE]\n');
    return 2;
  }
  const ctl = new AbortController();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => ctl.abort(stopRequester(values.store!, values.run!) ?? `${sig} to the owner (pid ${process.pid})`));
  }
  // Why ignore SIGHUP: a detached owner outlives the terminal that started it; a hangup of that
  // session is not a request to stop the run (`fanfold stop` or SIGTERM is).
  process.on('SIGHUP', () => {});
  // Its stderr is owner.log, but a broken one must not crash the run either.
  process.stderr.on('error', () => {});
  process.stdout.on('error', () => {});
  const plan = values.spec ? await loadPlanFile(values.spec) : undefined;
  const run = await ownRun({ root: values.store, runId: values.run, signal: ctl.signal, ...(plan ? { plan } : {}), ...(values.rerun?.length ? { rerun: values.rerun } : {}) });
  process.stderr.write(`fanfold owner: run ${run.runId} ended ${run.status}${run.reason ? `: ${run.reason}` : ''}\n`);
  return run.status === 'completed' ? 0 : 1;
}

/**
 * Who asked for the stop, when a `fanfold stop` wrote control.json before signalling us: named in
 * the run's reason rather than the signal it used to wake us.
 */
function stopRequester(root: string, runId: string): string | undefined {
  try {
    const c = JSON.parse(readFileSync(path.join(root, runId, 'control.json'), 'utf8')) as { request?: string; by?: { pid?: number; host?: string } };
    return c.request === 'stop' && c.by ? `fanfold stop (pid ${c.by.pid} on ${c.by.host})` : undefined;
  } catch {
    return undefined;
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    // A lost lease is an expected ending, told in one line; anything else with its stack.
    const text = e instanceof LeaseLostError ? e.message : e instanceof Error ? e.stack ?? e.message : String(e);
    process.stderr.write(`fanfold owner: ${text}\n`);
    process.exit(1);
  },
);
