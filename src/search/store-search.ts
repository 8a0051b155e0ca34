/**
 * Search over a whole store: every run's index (or one run's), opened through RunStore and kept
 * in an in-process cache, plus `readRef` to page through the full output behind a hit.
 *
 * Read-only by design: the search path never writes index.json (only a run's owner writes in
 * its run directory). A run whose index.json is missing or broken is rebuilt in memory; one that
 * lags behind its agent files (a live run, whose owner saves at most once a second) is caught up
 * by reading just the new records — and a cached index is caught up in place the same way, so
 * searching a live run costs a directory listing per change, not a reload.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  AGENTS_DIR,
  INDEX_FILE,
  RunStore,
  StoreError,
  agentFileName,
  assertId,
  errnoCode,
  parseAgentFileName,
  safeJoinReal,
  type AgentRecord,
  type AgentStatus,
  type RunRecord,
} from '../store/index.js';
import { SearchError } from './errors.js';
import { indexedText } from './documents.js';
import { pickPage, prepareQuery, queryRun, toHit, type Hit, type PickedTask, type QueryOptions, type RunMatches, type SearchPage } from './query.js';
import { formatRef, parseRef } from './ref.js';
import { RunIndex } from './run-index.js';

/** File name of a run's persisted index, in its run directory (the store's INDEX_FILE). */
export const INDEX_FILE_NAME = INDEX_FILE;

/** Runs whose index is kept open in the cache; the least recently used beyond this are dropped. */
export const MAX_CACHED_RUNS = 256;

/**
 * Rough bytes of indexes kept open in the cache (RunIndex.approxBytes); the least recently used
 * beyond this are dropped. Why a byte bound and not only a run count: one run may hold one huge
 * index; a long-lived MCP server must stay small however the store grows.
 */
export const MAX_CACHED_BYTES = 192 * 1024 * 1024;

/** Runs opened at the same time when a search spans many runs. */
const OPEN_CONCURRENCY = 8;

/** Default and largest page of `readRef`, in characters. */
export const READ_REF_DEFAULT_LIMIT = 8_000;
/** Largest `limit` of `readRef`. */
export const READ_REF_MAX_LIMIT = 40_000;


/**
 * A directory whose mtime is this recent (when we look) may still change within the same
 * timestamp tick (coarse filesystem clocks), so a cache entry synced then is re-checked with a
 * listing next time instead of being trusted on its mtime alone.
 */
const MTIME_SETTLE_MS = 2_000;

/** An open run index and how to read the run's agent records. */
type Opened = Pick<CacheEntry, 'index' | 'read'>;

interface CacheEntry {
  /** mtime of the run's agents folder when the index was last synced with it (-1: missing). */
  agentsMtime: number;
  /** Wall-clock time of that sync. */
  syncedAt: number;
  index: RunIndex;
  /** Reads one agent record of the run. */
  read: (phaseId: string, taskId: string, attempt: number) => Promise<AgentRecord>;
}

/** Open indexes by run directory, in least-recently-used order (Map keeps insertion order). */
const cache = new Map<string, CacheEntry>();
/** Opens and syncs in progress, so concurrent searches of the same run share one. */
const pending = new Map<string, Promise<Opened>>();
let cacheHits = 0;
let cacheLoads = 0;
let cacheSyncs = 0;

/** Counters of the in-process index cache (for tests and diagnostics). */
export interface SearchCacheStats {
  /** Indexes currently cached. */
  runs: number;
  /** Searches of a run served from the cache without any check beyond a stat. */
  hits: number;
  /** Indexes opened (loaded from disk, caught up or rebuilt). */
  loads: number;
  /** Cached indexes checked against their agents folder (and caught up when behind). */
  syncs: number;
}

/** Counters of the in-process index cache. */
export function searchCacheStats(): SearchCacheStats {
  return { runs: cache.size, hits: cacheHits, loads: cacheLoads, syncs: cacheSyncs };
}

/** Drops every cached index and resets the counters. */
export function clearSearchCache(): void {
  cache.clear();
  runLists.clear();
  cacheHits = 0;
  cacheLoads = 0;
  cacheSyncs = 0;
}

/** mtime of a path in ms, or -1 when it cannot be stat'ed. */
async function mtimeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).mtimeMs;
  } catch {
    return -1;
  }
}

/** Latest attempt per task ref, from the agent file names alone (no file is read). */
async function listAttempts(agentsDir: string): Promise<Map<string, number>> {
  const latest = new Map<string, number>();
  let names: string[];
  try {
    names = await readdir(agentsDir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return latest;
    throw err;
  }
  for (const name of names) {
    const parts = parseAgentFileName(name);
    if (parts === undefined) continue; // temp files of atomic writes, strays
    const ref = `${parts.phaseId}/${parts.taskId}`;
    if ((latest.get(ref) ?? 0) < parts.attempt) latest.set(ref, parts.attempt);
  }
  return latest;
}

/** Phase id → title from a run record's plan. */
function phaseTitlesOf(run: RunRecord | undefined): Record<string, string> {
  const titles: Record<string, string> = {};
  for (const p of run?.plan?.phases ?? []) {
    if (typeof p.id === 'string' && typeof p.title === 'string') titles[p.id] = p.title;
  }
  return titles;
}

async function readTitles(store: RunStore): Promise<Record<string, string>> {
  try {
    return phaseTitlesOf(await store.readRun());
  } catch {
    // Titles only add recall; a run with an unreadable run.json is still searchable by its outputs.
    return {};
  }
}

/** Options of `openStoreRunIndex`. */
export interface OpenStoreRunIndexOptions {
  /** Persist an index open had to rebuild or catch up (for the run's owner only; readers leave it false). */
  saveRebuilt?: boolean;
  /** Delay of `saveDebounced()` (ms). */
  saveDebounceMs?: number;
  /** Aborts a rebuild. */
  signal?: AbortSignal;
}

/**
 * Opens the index of one run of the store (`<run dir>/index.json`), loading it or rebuilding it
 * from the run's agent records. The run owner uses this at start (with `saveRebuilt: true`),
 * then `add`s each finished agent; searchStore uses it read-only. Not cached.
 */
export async function openStoreRunIndex(root: string, runId: string, opts: OpenStoreRunIndexOptions = {}): Promise<RunIndex> {
  return (await openRun(root, runId, opts)).index;
}

async function openRun(root: string, runId: string, opts: OpenStoreRunIndexOptions): Promise<Omit<CacheEntry, 'agentsMtime' | 'syncedAt'>> {
  const store = await RunStore.open(root, runId);
  const indexFile = await safeJoinReal(store.dir, INDEX_FILE);
  const agentsDir = await safeJoinReal(store.dir, AGENTS_DIR);
  // readAgentRecord checks the file name and that the record matches it.
  const read = (phaseId: string, taskId: string, attempt: number): Promise<AgentRecord> =>
    store.readAgentRecord(agentFileName(phaseId, taskId, attempt));
  const index = await RunIndex.open({
    indexFile,
    runId,
    // Unreadable agent files are left out: the rest of the run stays searchable.
    loadRecords: async (): Promise<AgentRecord[]> => (await store.listAgentRecords()).records,
    listAttempts: () => listAttempts(agentsDir),
    readRecord: read,
    phaseTitles: await readTitles(store),
    // Snippets are read from the records of the hits shown: no output text stays in memory.
    keepTexts: false,
    ...(opts.saveRebuilt !== undefined ? { saveRebuilt: opts.saveRebuilt } : {}),
    ...(opts.saveDebounceMs !== undefined ? { saveDebounceMs: opts.saveDebounceMs } : {}),
    ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
  });
  return { index, read };
}

/**
 * The cached index of a run. A hit costs one stat of the agents folder; when the folder changed
 * (or changed too recently to trust its mtime), the index is compared with a listing of the
 * agent files and caught up in place; it is reopened only when it holds tasks the run no longer
 * has. Concurrent calls for one run share the work.
 */
async function cachedIndex(root: string, runId: string, signal: AbortSignal | undefined): Promise<Opened> {
  // Cache key and stat target only: every read goes through RunStore (allow-list, containment
  // and realpath checks). A plain join of a checked id keeps the per-query path free of the
  // synchronous realpath calls safeJoin makes.
  const runDir = path.join(path.resolve(root), assertId('run', runId));
  const agentsDir = path.join(runDir, AGENTS_DIR);
  const mtime = await mtimeOf(agentsDir);
  const entry = cache.get(runDir);
  if (entry !== undefined && entry.agentsMtime === mtime && entry.syncedAt - mtime > MTIME_SETTLE_MS) {
    cacheHits++;
    cache.delete(runDir);
    cache.set(runDir, entry); // most recently used last
    return entry;
  }
  const inFlight = pending.get(runDir);
  if (inFlight !== undefined) return untilAborted(inFlight, signal);
  // The shared work takes no signal: one caller giving up must not fail the others. It runs to
  // its end (and fills the cache) while an aborted caller returns at once.
  const work = (async (): Promise<Opened> => {
    try {
      const syncedAt = Date.now();
      if (entry !== undefined) {
        cacheSyncs++;
        const latest = await listAttempts(await safeJoinReal(root, runId, AGENTS_DIR));
        if (entry.index.compare(latest).ahead === null) {
          await entry.index.catchUp(latest, entry.read);
          entry.agentsMtime = mtime;
          entry.syncedAt = syncedAt;
          cache.delete(runDir);
          cache.set(runDir, entry);
          return entry;
        }
      }
      const opened = await openRun(root, runId, {});
      cacheLoads++;
      cache.delete(runDir);
      cache.set(runDir, { ...opened, agentsMtime: mtime, syncedAt });
      trimCache(runDir);
      return opened;
    } finally {
      pending.delete(runDir);
    }
  })();
  pending.set(runDir, work);
  return untilAborted(work, signal);
}

/** Drops least recently used indexes beyond MAX_CACHED_RUNS or MAX_CACHED_BYTES, never `keep`. */
function trimCache(keep: string): void {
  let bytes = 0;
  for (const e of cache.values()) bytes += e.index.approxBytes;
  for (const [dir, e] of cache) {
    if (cache.size <= MAX_CACHED_RUNS && bytes <= MAX_CACHED_BYTES) break;
    if (dir === keep) continue;
    cache.delete(dir);
    bytes -= e.index.approxBytes;
  }
}

/** `work`'s outcome, or the signal's reason as soon as it aborts. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return work;
  if (signal.aborted) {
    work.catch(() => undefined); // its failure is someone else's (or no one's) to report
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** Run ids of a store root, cached until the root folder changes (a run is added or removed). */
const runLists = new Map<string, { mtime: number; listedAt: number; runIds: string[] }>();

async function listRunIds(root: string): Promise<string[]> {
  const absRoot = path.resolve(root);
  const mtime = await mtimeOf(absRoot);
  const hit = runLists.get(absRoot);
  if (hit !== undefined && hit.mtime === mtime && hit.listedAt - mtime > MTIME_SETTLE_MS) return hit.runIds;
  const listedAt = Date.now();
  // Runs whose run.json is unreadable are still listed: their outputs may be searchable.
  const runIds = (await RunStore.listRuns(absRoot)).map((r) => r.runId);
  runLists.set(absRoot, { mtime, listedAt, runIds });
  return runIds;
}

/** Options of `searchStore`: the query options plus an abort signal. */
export interface StoreSearchOptions extends QueryOptions {
  /** Aborts opening (rebuilding) indexes. */
  signal?: AbortSignal;
}

/** A page of hits over a store, with the runs that could not be searched. */
export interface StoreSearchPage extends SearchPage {
  /** Runs whose index was searched. */
  runsSearched: number;
  /** Runs left out because their index could not be opened, with why. */
  skipped: { runId: string; error: string }[];
}

/**
 * Searches the outputs of every run in the store at `root` (or only `opts.runId`): see `search`
 * for the query language, options and ranking. Indexes stay cached in this process and are
 * reopened only when a run's index.json or agents folder changes. A run that cannot be opened is
 * listed in `skipped` (unless it is the one `runId` asked for, which throws).
 */
export async function searchStore(root: string, query: string, opts: StoreSearchOptions = {}): Promise<StoreSearchPage> {
  const prepared = prepareQuery(query, opts); // fail on a bad query before touching the disk
  let runIds: string[];
  if (prepared.runId !== undefined) {
    try {
      assertId('run', prepared.runId);
    } catch (err) {
      throw new SearchError('bad_option', `expected \`runId\` to be a run id: ${(err as Error).message.replace(/^store: /, '')}`, { cause: err });
    }
    runIds = [prepared.runId];
  } else {
    runIds = await listRunIds(root);
  }

  const matches: RunMatches[] = [];
  const readers = new Map<string, CacheEntry['read']>();
  const skipped: { runId: string; error: string }[] = [];
  let searched = 0;
  let next = 0;
  const seen = new Set<string>();
  const worker = async (): Promise<void> => {
    while (next < runIds.length) {
      const runId = runIds[next++]!;
      if (seen.has(runId)) continue;
      seen.add(runId);
      opts.signal?.throwIfAborted();
      let index: RunIndex;
      try {
        const opened = await cachedIndex(root, runId, opts.signal);
        index = opened.index;
        readers.set(runId, opened.read);
      } catch (err) {
        if (prepared.runId !== undefined) {
          if (err instanceof StoreError && err.code === 'unknown_run') {
            throw new SearchError('not_found', `no run '${runId}' in the store at ${path.resolve(root)}`, { cause: err });
          }
          throw err;
        }
        if (opts.signal?.aborted) throw err;
        skipped.push({ runId, error: err instanceof Error ? err.message : String(err) });
        continue;
      }
      // Queried at once and let go: only its best few tasks stay, so the memory of a search over
      // many runs is bounded by the index cache, not by the number of runs.
      matches.push(queryRun(index, prepared));
      searched++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(OPEN_CONCURRENCY, runIds.length) }, worker));
  const { picked, total } = pickPage(matches, prepared);
  const hits = await Promise.all(picked.map((p) => hitWithSnippet(p, readers.get(p.runId))));
  return { hits, total, runsSearched: searched, skipped };
}

/**
 * The hit of a picked task with its snippet, made from the indexed text of the very attempt the
 * index holds, read from its agent record (a big output's record keeps the head that was
 * indexed). A record that cannot be read any more gives an empty snippet, not a failed search.
 */
async function hitWithSnippet(p: PickedTask, read: CacheEntry['read'] | undefined): Promise<Hit> {
  if (p.task.text !== undefined || read === undefined) return toHit(p, p.task.text ?? '');
  try {
    const record = await read(p.task.phaseId, p.task.taskId, p.task.attempt);
    return toHit(p, indexedText(record).output);
  } catch {
    return toHit(p, '');
  }
}

/** Options of `readRef`. */
export interface ReadRefOptions {
  /** First character to return (default 0). */
  offset?: number;
  /** Characters to return, 1–40,000 (default 8,000). */
  limit?: number;
}

/** One page of a task's stored output. */
export interface RefPage {
  ref: string;
  runId: string;
  phaseId: string;
  taskId: string;
  /** The latest attempt, whose output this is. */
  attempt: number;
  status: AgentStatus;
  /** `text` = output[offset, nextOffset ?? totalChars). */
  text: string;
  offset: number;
  /** Offset of the next page, or null when this page reaches the end. */
  nextOffset: number | null;
  /** Length of the whole stored output, in characters (UTF-16 units). */
  totalChars: number;
  /** True when the agent produced more than was stored (the store's output cap). */
  truncated: boolean;
}

function pageInt(name: string, value: unknown, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer ≥ ${min}` : `an integer ${min}–${max}`;
    throw new SearchError('bad_option', `expected \`${name}\` to be ${range}, got \`${String(value)}\``);
  }
  return value;
}

/**
 * Reads the whole stored output of the latest attempt of the task a ref names, one page at a
 * time. The ref is parsed strictly (see parseRef) before any path is built. Throws SearchError
 * 'bad_ref' / 'bad_option' for a malformed call and 'not_found' for an unknown run or task;
 * disk failures come through as StoreError.
 */
export async function readRef(root: string, ref: string, opts: ReadRefOptions = {}): Promise<RefPage> {
  const parts = parseRef(ref);
  const offset = pageInt('offset', opts.offset, 0, Number.MAX_SAFE_INTEGER, 0);
  const limit = pageInt('limit', opts.limit, 1, READ_REF_MAX_LIMIT, READ_REF_DEFAULT_LIMIT);
  const { runId, phaseId, taskId } = parts;
  let store: RunStore;
  try {
    store = await RunStore.open(root, runId);
  } catch (err) {
    if (err instanceof StoreError && err.code === 'unknown_run') {
      throw new SearchError('not_found', `no run '${runId}' in the store at ${path.resolve(root)}`, { cause: err });
    }
    throw err;
  }
  const attempt = (await listAttempts(await safeJoinReal(store.dir, AGENTS_DIR))).get(`${phaseId}/${taskId}`);
  if (attempt === undefined) {
    throw new SearchError('not_found', `no agent record for task '${phaseId}/${taskId}' in run '${runId}'`);
  }
  // readAgentRecord cross-checks the record's phase, task and attempt against its file name.
  const record = await store.readAgentRecord(agentFileName(phaseId, taskId, attempt));
  if (typeof record.output !== 'string') {
    throw new StoreError('corrupt', `agent record ${agentFileName(phaseId, taskId, attempt)} of run '${runId}' has no output text`);
  }
  // An output beside its record (over 1 MiB) is streamed: only this page is held in memory.
  const page = await store.readAgentOutputPage(record, offset, limit + 1);
  const totalChars = page.totalChars;
  if (offset > totalChars) {
    throw new SearchError('bad_option', `expected \`offset\` to be 0–${totalChars} (the output's length), got \`${offset}\``);
  }
  let end = Math.min(totalChars, offset + limit);
  // Never split a surrogate pair (an emoji, a rare CJK character) between two pages.
  if (end < totalChars && end > offset + 1) {
    const c = page.text.charCodeAt(end - offset - 1);
    if (c >= 0xd800 && c <= 0xdbff) end--;
  }
  const text = page.text.slice(0, end - offset);
  return {
    ref: formatRef(parts),
    runId,
    phaseId,
    taskId,
    attempt: record.attempt,
    status: record.status,
    text,
    offset,
    nextOffset: end < totalChars ? end : null,
    totalChars,
    truncated: record.truncated === true,
  };
}
