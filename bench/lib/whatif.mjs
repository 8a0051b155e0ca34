/**
 * What-ifs: bench-only stand-ins for changes proposed to src/, patched into this process's copy
 * of dist/ so a benchmark can measure the gain of a change before anyone makes it. Each `patch…`
 * returns an `undo` function. Nothing here is how the store should be written: these keep just
 * enough of the real checks to be a fair comparison (allow-listed names, O_NOFOLLOW, containment
 * by construction under a directory whose realpath the store checked when it was opened).
 */
import fsp from 'node:fs/promises';
import { constants as C } from 'node:fs';
import path from 'node:path';
import { RunStore, SCHEMA_VERSION, agentFileName, assertFileName, parseAgentFileName, writeJsonAtomic } from '../../dist/store/index.js';
import { RunIndex } from '../../dist/search/index.js';

/** The store's own census, whatever is patched later. */
const realListAgentRecords = RunStore.prototype.listAgentRecords;

function swap(obj, key, value) {
  const orig = obj[key];
  obj[key] = value;
  return () => {
    obj[key] = orig;
  };
}

/**
 * Input files (prompt, context) written in place: one open(O_CREAT|O_TRUNC|O_NOFOLLOW) + write +
 * close, no temp file, no fsync, no realpath walk; and a context file whose content was already
 * written for another attempt (the empty context of every task without dependencies) is shared
 * instead of written again. Why that is enough: they are derived data, rebuilt for every attempt,
 * read only by the child started after the write resolves; a crash before the agent record
 * exists re-runs the attempt anyway.
 */
export function patchPlainInputs() {
  const shared = new Map(); // context text → file already holding it
  return swap(RunStore.prototype, 'writeInput', async function (name, content) {
    assertFileName('input', name);
    const isContext = name.endsWith('.context.json');
    const known = isContext ? shared.get(`${this.dir}\0${content}`) : undefined;
    if (known) return known;
    const file = path.join(this.dir, 'inputs', name);
    await fsp.writeFile(file, content, { flag: C.O_WRONLY | C.O_CREAT | C.O_TRUNC | C.O_NOFOLLOW });
    if (isContext) shared.set(`${this.dir}\0${content}`, file);
    return file;
  });
}

/**
 * Agent records written exactly as now (temp file, fsync, rename) but without the per-write
 * realpath walk of SafeRoot.join (3 round trips): the name is allow-listed and joined under
 * agents/, whose realpath would be checked once when the store opens.
 */
export function patchCachedAgentPath() {
  return swap(RunStore.prototype, 'writeAgentRecord', async function (rec) {
    if (rec.runId !== this.runId || rec.schemaVersion !== SCHEMA_VERSION) throw new Error('whatif: bad record');
    const name = agentFileName(rec.phaseId, rec.taskId, rec.attempt);
    await writeJsonAtomic(path.join(this.dir, 'agents', name), rec);
    return name;
  });
}

/**
 * `agent.reused` events buffered and written in one append just before the next other event
 * (stands in for a Journal.appendMany / one `run.resumed` event listing the reused tasks).
 */
export function patchBatchReused() {
  const buffers = new WeakMap();
  const orig = RunStore.prototype.appendEvent;
  return swap(RunStore.prototype, 'appendEvent', function (event) {
    const buf = buffers.get(this) ?? buffers.set(this, []).get(this);
    if (event.type === 'agent.reused') {
      buf.push(`${JSON.stringify({ ...event, t: event.t ?? new Date().toISOString() })}\n`);
      return Promise.resolve();
    }
    if (buf.length === 0) return orig.call(this, event);
    const lines = buf.splice(0).join('');
    // The batch in one write, then the event through the store's journal (O_APPEND keeps the order).
    return fsp.appendFile(path.join(this.dir, 'events.jsonl'), lines).then(() => orig.call(this, event));
  });
}

/**
 * Resume's census from the journal instead of reading every agent record: `agent.finished`
 * lines (appended only after their record was fsynced and renamed into place) give key, status
 * and attempt of each file readdir lists; only files without such a line are read whole. The
 * records returned carry no output; the search index (see patchDeferIndex) loads the real ones.
 */
export function patchJournalCensus() {
  return swap(RunStore.prototype, 'listAgentRecords', async function () {
    const names = await fsp.readdir(path.join(this.dir, 'agents'));
    const finished = new Map();
    for (const e of await this.readEvents()) if (e.type === 'agent.finished') finished.set(e.file, e);
    const records = [];
    const unreadable = [];
    for (const n of names) {
      const parts = parseAgentFileName(n);
      if (!parts) continue;
      const e = finished.get(n);
      if (e) records.push({ ...parts, runId: this.runId, key: e.key, status: e.status, schemaVersion: SCHEMA_VERSION });
      else {
        try {
          records.push(await this.readAgentRecord(n));
        } catch (err) {
          unreadable.push({ file: n, error: err.message });
        }
      }
    }
    return { records, unreadable };
  });
}

/**
 * The search index opened only once `gate` resolves (the first dispatch), loading full records
 * itself. Stands in for: start RunIndex.open after the pool's first dispatch.
 */
export function patchDeferIndex(gate) {
  const orig = RunIndex.open;
  return swap(RunIndex, 'open', async function (options) {
    await gate;
    const runDir = path.dirname(options.indexFile);
    const loadRecords = async () => {
      const store = await RunStore.open(path.dirname(runDir), options.runId);
      try {
        return (await realListAgentRecords.call(store)).records;
      } finally {
        await store.close();
      }
    };
    return orig.call(RunIndex, { ...options, loadRecords });
  });
}
