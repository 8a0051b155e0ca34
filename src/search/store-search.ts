/**
 * Search over a whole store: every run's index (or one run's), opened through RunStore and kept
 * in an in-process cache, plus `readRef` to page through the full output behind a hit.
 *
 * Read-only by design: the search path never writes index.json (only a run's owner writes in
 * its run directory). A run whose index.json is missing or stale is rebuilt in memory and
 * cached; the owner's next save makes the rebuild unnecessary for later processes.
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
  safeJoin,
  safeJoinReal,
  type AgentRecord,
  type AgentStatus,
  type RunRecord,
} from '../store/index.js';
import { SearchError } from './errors.js';
import { prepareQuery, runPrepared, type QueryOptions, type SearchPage } from './query.js';
import { formatRef, parseRef } from './ref.js';
import { RunIndex } from './run-index.js';

/** File name of a run's persisted index, in its run directory (the store's INDEX_FILE). */
export const INDEX_FILE_NAME = INDEX_FILE;

/** Runs whose index is kept open in the cache; the least recently used beyond this are dropped. */
export const MAX_CACHED_RUNS = 256;

/** Runs opened at the same time when a search spans many runs. */
const OPEN_CONCURRENCY = 8;

/** Default and largest page of `readRef`, in characters. */
export const READ_REF_DEFAULT_LIMIT = 8_000;
/** Largest `limit` of `readRef`. */
export const READ_REF_MAX_LIMIT = 40_000;


interface CacheEntry {
  /** `<index.json mtime>:<agents dir mtime>`: changes when the owner saves or an agent file lands. */
  key: string;
  index: RunIndex;
}

/** Open indexes by index file path, in least-recently-used order (Map keeps insertion order). */
const cache = new Map<string, CacheEntry>();
/** Opens in progress, so concurrent searches of the same run share one load. */
const opening = new Map<string, Promise<RunIndex>>();
let cacheHits = 0;
let cacheLoads = 0;

/** Counters of the in-process index cache (for tests and diagnostics). */
export interface SearchCacheStats {
  /** Indexes currently cached. */
  runs: number;
  /** Searches of a run served from the cache. */
  hits: number;
  /** Indexes opened (loaded from disk or rebuilt). */
  loads: number;
}

/** Counters of the in-process index cache. */
export function searchCacheStats(): SearchCacheStats {
  return { runs: cache.size, hits: cacheHits, loads: cacheLoads };
}

/** Drops every cached index and resets the counters. */
export function clearSearchCache(): void {
  cache.clear();
  runLists.clear();
  cacheHits = 0;
  cacheLoads = 0;
}

async function mtimeKey(file: string): Promise<string> {
  try {
    return String((await stat(file)).mtimeMs);
  } catch {
    return 'none';
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
  /** Persist a rebuilt index (for the run's owner only; readers must leave it false). */
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
  const store = await RunStore.open(root, runId);
  const indexFile = await safeJoinReal(store.dir, INDEX_FILE);
  const agentsDir = await safeJoinReal(store.dir, AGENTS_DIR);
  return RunIndex.open({
    indexFile,
    runId,
    // Unreadable agent files are left out: the rest of the run stays searchable.
    loadRecords: async (): Promise<AgentRecord[]> => (await store.listAgentRecords()).records,
    listAttempts: () => listAttempts(agentsDir),
    phaseTitles: await readTitles(store),
    ...(opts.saveRebuilt !== undefined ? { saveRebuilt: opts.saveRebuilt } : {}),
    ...(opts.saveDebounceMs !== undefined ? { saveDebounceMs: opts.saveDebounceMs } : {}),
    ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
  });
}

/** The cached index of a run, reopened when its index file or agents folder changed. */
async function cachedIndex(root: string, runId: string, signal: AbortSignal | undefined): Promise<RunIndex> {
  const indexFile = safeJoin(root, runId, INDEX_FILE);
  const [indexKey, agentsKey] = await Promise.all([mtimeKey(indexFile), mtimeKey(safeJoin(root, runId, AGENTS_DIR))]);
  const key = `${indexKey}:${agentsKey}`;
  const hit = cache.get(indexFile);
  if (hit !== undefined && hit.key === key) {
    cacheHits++;
    cache.delete(indexFile);
    cache.set(indexFile, hit); // most recently used last
    return hit.index;
  }
  const pendingKey = `${indexFile}\0${key}`;
  let pending = opening.get(pendingKey);
  if (pending === undefined) {
    pending = (async () => {
      try {
        const index = await openStoreRunIndex(root, runId, signal !== undefined ? { signal } : {});
        cacheLoads++;
        cache.delete(indexFile);
        cache.set(indexFile, { key, index });
        while (cache.size > MAX_CACHED_RUNS) cache.delete(cache.keys().next().value!);
        return index;
      } finally {
        opening.delete(pendingKey);
      }
    })();
    opening.set(pendingKey, pending);
  }
  return pending;
}

/** Run ids of a store root, cached until the root folder changes (a run is added or removed). */
const runLists = new Map<string, { key: string; runIds: string[] }>();

async function listRunIds(root: string): Promise<string[]> {
  const absRoot = path.resolve(root);
  const key = await mtimeKey(absRoot);
  const hit = runLists.get(absRoot);
  if (hit !== undefined && hit.key === key) return hit.runIds;
  // Runs whose run.json is unreadable are still listed: their outputs may be searchable.
  const runIds = (await RunStore.listRuns(absRoot)).map((r) => r.runId);
  runLists.set(absRoot, { key, runIds });
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

  const indexes: RunIndex[] = [];
  const skipped: { runId: string; error: string }[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < runIds.length) {
      const runId = runIds[next++]!;
      opts.signal?.throwIfAborted();
      try {
        indexes.push(await cachedIndex(root, runId, opts.signal));
      } catch (err) {
        if (prepared.runId !== undefined) {
          if (err instanceof StoreError && err.code === 'unknown_run') {
            throw new SearchError('not_found', `no run '${runId}' in the store at ${path.resolve(root)}`, { cause: err });
          }
          throw err;
        }
        if (opts.signal?.aborted) throw err;
        skipped.push({ runId, error: err instanceof Error ? err.message : String(err) });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(OPEN_CONCURRENCY, runIds.length) }, worker));
  const page = runPrepared(indexes, prepared);
  return { ...page, runsSearched: indexes.length, skipped };
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
  const text = record.output;
  const totalChars = text.length;
  if (offset > totalChars) {
    throw new SearchError('bad_option', `expected \`offset\` to be 0–${totalChars} (the output's length), got \`${offset}\``);
  }
  let end = Math.min(totalChars, offset + limit);
  // Never split a surrogate pair (an emoji, a rare CJK character) between two pages.
  if (end < totalChars && end > offset + 1) {
    const c = text.charCodeAt(end - 1);
    if (c >= 0xd800 && c <= 0xdbff) end--;
  }
  return {
    ref: formatRef(parts),
    runId,
    phaseId,
    taskId,
    attempt: record.attempt,
    status: record.status,
    text: text.slice(offset, end),
    offset,
    nextOffset: end < totalChars ? end : null,
    totalChars,
    truncated: record.truncated === true,
  };
}
