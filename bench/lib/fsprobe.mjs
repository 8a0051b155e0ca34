/**
 * A file-system probe for the benchmarks: wraps `node:fs/promises` and the FileHandle methods that
 * the store uses, and sums count and wall time per (operation, file kind), so a benchmark can say
 * where an agent's time goes (fsync of the agent record, of the input files, journal appends…).
 *
 * It can also skip fsync for chosen files (`skipSync`) to measure what a change would gain before
 * anyone makes it. Both are for benchmarks only: they patch process-wide objects. Sums of wall
 * time are only a breakdown when operations do not overlap (concurrency 1).
 */
import fsp from 'node:fs/promises';
import path from 'node:path';

const FS_OPS = ['open', 'rename', 'realpath', 'lstat', 'stat', 'readdir', 'unlink', 'mkdir', 'link', 'readFile', 'writeFile', 'rm', 'appendFile'];
const FH_OPS = ['sync', 'datasync', 'write', 'writeFile', 'read', 'readFile', 'stat', 'close', 'truncate'];

/** What kind of file a path is, from its place in a run directory. */
export function fileKind(p) {
  if (typeof p !== 'string') return 'other';
  const base = path.basename(p);
  const parent = path.basename(path.dirname(p));
  if (parent === 'agents') return 'agents/';
  if (parent === 'inputs') return 'inputs/';
  if (base === 'agents' || base === 'inputs') return `${base}/ (dir)`;
  if (base.startsWith('events.jsonl')) return 'events.jsonl';
  if (base.startsWith('run.json')) return 'run.json';
  if (base.startsWith('lease')) return 'lease';
  if (base.startsWith('index.json')) return 'index.json';
  if (base.startsWith('control.json')) return 'control.json';
  if (/^report/.test(base)) return 'report';
  return 'other';
}

let installed = false;
/** Every call while recording: { op, kind, t0, ms } (t0 from performance.now()). */
let events = [];
const fdPath = new Map(); // fd → path
let recording = false;
let syncFilter = () => false;

function note(op, kind, t0) {
  if (recording) events.push({ op, kind, t0, ms: performance.now() - t0 });
}

/**
 * Patches fs/promises and FileHandle; returns a function that restores them. Install it only
 * around the runs that need it: the wrappers cost a few microseconds per call.
 */
export async function installProbe() {
  if (installed) throw new Error('fsprobe: already installed');
  installed = true;
  const restore = [];
  const fh = await fsp.open(new URL(import.meta.url).pathname, 'r');
  let proto = Object.getPrototypeOf(fh);
  await fh.close();
  for (const op of FS_OPS) {
    const orig = fsp[op];
    restore.push(() => (fsp[op] = orig));
    fsp[op] = async function (...args) {
      const t0 = performance.now();
      try {
        const r = await orig.apply(this, args);
        if (op === 'open' && r && typeof r.fd === 'number') wrapHandle(r, String(args[0]));
        return r;
      } finally {
        note(op, fileKind(String(args[0])), t0);
      }
    };
  }
  for (const op of FH_OPS) {
    let owner = proto;
    while (owner && !Object.prototype.hasOwnProperty.call(owner, op)) owner = Object.getPrototypeOf(owner);
    if (!owner) continue;
    const orig = owner[op];
    const where = owner;
    restore.push(() => (where[op] = orig));
    owner[op] = async function (...args) {
      const file = fdPath.get(this.fd);
      if ((op === 'sync' || op === 'datasync') && syncFilter(file ?? '')) {
        note(`${op} (skipped)`, fileKind(file), performance.now());
        return;
      }
      const t0 = performance.now();
      try {
        return await orig.apply(this, args);
      } finally {
        note(op === 'datasync' || op === 'sync' ? 'fsync' : `fh.${op}`, fileKind(file), t0);
      }
    };
  }
  return () => {
    for (const r of restore) r();
    fdPath.clear();
    recording = false;
    syncFilter = () => false;
    installed = false;
  };
}

/** Remembers a handle's path (for fsync skipping and kinds); `close` is an own property, so wrap it here. */
function wrapHandle(fh, file) {
  fdPath.set(fh.fd, file);
  const close = fh.close;
  fh.close = async function () {
    const t0 = performance.now();
    try {
      return await close.call(this);
    } finally {
      note('fh.close', fileKind(file), t0);
    }
  };
}

/** Starts recording (dropping earlier records). */
export function startProbe() {
  events = [];
  recording = true;
}

/** Stops recording and returns every call recorded: { op, kind, t0, ms }. */
export function stopProbe() {
  recording = false;
  return events;
}

/**
 * Sums calls that started in [from, to) per (op, kind): rows { op, kind, count, ms }, largest
 * total first.
 */
export function summarize(calls, from = -Infinity, to = Infinity) {
  const rows = new Map();
  for (const c of calls) {
    if (c.t0 < from || c.t0 >= to) continue;
    const k = `${c.op} ${c.kind}`;
    const r = rows.get(k) ?? rows.set(k, { op: c.op, kind: c.kind, count: 0, ms: 0 }).get(k);
    r.count++;
    r.ms += c.ms;
  }
  return [...rows.values()].sort((a, b) => b.ms - a.ms);
}

/** From now on, fsync (sync/datasync) is skipped for files where `pred(path)` holds. */
export function skipSync(pred) {
  syncFilter = pred ?? (() => false);
}
