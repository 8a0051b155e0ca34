/**
 * RunIndex: the BM25+ (minisearch) index of one run's agent outputs, one document per task (its
 * latest attempt), kept up to date as agents finish and persisted in `<run dir>/index.json`.
 *
 * Memory vs speed: each document stores the agent's output text (besides the ids, attempt and
 * status), in memory and in index.json. That roughly doubles index.json compared to the term index
 * alone and keeps every output of an open run in memory (bounded by the store's per-agent output
 * cap), but it lets a search build its snippets synchronously without touching one agent file, so
 * query latency does not depend on the disk, and loading a run costs one file read instead of one
 * per agent. `readRef` (store-search.ts) still reads the agent file for the full, paged output.
 */
import { performance } from 'node:perf_hooks';
import MiniSearch, { type AsPlainObject, type Options, type SearchOptions, type SearchResult } from 'minisearch';
import { StoreError, readJsonFile, writeJsonAtomic } from '../store/index.js';
import { SCHEMA_VERSION, type AgentRecord, type AgentStatus } from '../store/types.js';
import { ANALYZER_VERSION, indexTerms, queryTerm, tokenize } from './analyze.js';
import { SearchError } from './errors.js';

/** `kind` of a persisted search index envelope. */
export const SEARCH_INDEX_KIND = 'fanfold.search-index';

/** Major version of minisearch whose JSON the envelope holds. */
export const MINISEARCH_FORMAT = '7';

/** Default pause between debounced saves, in ms. */
export const DEFAULT_SAVE_DEBOUNCE_MS = 1_000;

/**
 * A debounced save waits at least this many times as long as the previous save took. A save
 * serializes the whole index, so its cost grows with the run; this keeps the share of the
 * owner's time spent saving under ~1/(1+4) however large the index gets, instead of letting a
 * fixed interval turn into back-to-back saves.
 */
const SAVE_COST_FACTOR = 4;

/**
 * Longest stretch of synchronous indexing during a rebuild before yielding to the event loop.
 * Time-based rather than a fixed chunk of documents because outputs range from a line to
 * hundreds of KiB; one 256 KiB document indexes in well under this budget's margin to 50 ms.
 */
const SLICE_MS = 8;

/**
 * Largest index.json read back (the store's default JSON cap is 64 MiB). An index holds the
 * outputs it covers, so a run of 1,000 agents at the 256 KiB output cap needs ~300 MiB; beyond
 * this the file is treated as unusable and the index rebuilt in memory.
 */
const MAX_INDEX_BYTES = 1024 * 1024 * 1024;

/** The persisted `index.json`: a versioned envelope around minisearch's own JSON. */
export interface SearchIndexEnvelope {
  /** fanfold's schema version (store/types.ts). */
  schemaVersion: typeof SCHEMA_VERSION;
  kind: typeof SEARCH_INDEX_KIND;
  /** Major version of minisearch's serialization. */
  minisearch: typeof MINISEARCH_FORMAT;
  /** Tokenizer/fields version (analyze.ts); another value means the terms mean something else. */
  analyzer: string;
  /** Run the index belongs to; an index copied from another run is rebuilt. */
  runId: string;
  /** Number of documents (tasks) in `index`. */
  docCount: number;
  /** `MiniSearch#toJSON()`. */
  index: AsPlainObject;
}

/** Fields kept with each document, enough to filter and to build hits. */
export interface IndexedTask {
  phaseId: string;
  taskId: string;
  /** Attempt whose output is indexed (the latest one added). */
  attempt: number;
  status: AgentStatus;
  /** The stored output text of that attempt (for snippets). */
  output: string;
}

/** One indexed document: the latest attempt of one task. */
interface IndexDoc extends IndexedTask {
  /** `<phaseId>/<taskId>`, unique within a run. */
  id: string;
  prompt: string;
  phaseTitle: string;
}

/** Indexed fields and how much a match in each counts relative to the output. */
const FIELDS = ['output', 'prompt', 'phaseTitle', 'taskId', 'phaseId'] as const;
const BOOST: Record<(typeof FIELDS)[number], number> = {
  output: 1,
  // The prompt says what the agent was asked; a match there is weaker evidence than in the answer.
  prompt: 0.6,
  phaseTitle: 0.5,
  // Task ids are chosen names (`cache-lru`, `db-query`): a match is a strong signal.
  taskId: 1.5,
  phaseId: 0.5,
};
const STORE_FIELDS: (keyof IndexedTask)[] = ['phaseId', 'taskId', 'attempt', 'status', 'output'];

const MINISEARCH_OPTIONS: Options<IndexDoc> = {
  idField: 'id',
  fields: [...FIELDS],
  storeFields: STORE_FIELDS,
  tokenize,
  processTerm: indexTerms,
  searchOptions: { tokenize, processTerm: queryTerm, boost: BOOST },
  // minisearch's default logger is console, whose info/debug go to stdout: the JSON-RPC channel
  // of `fanfold serve`. Warnings go to stderr; nothing else is worth printing.
  logger: (level, message) => {
    if (level === 'warn' || level === 'error') process.stderr.write(`fanfold search: ${message}\n`);
  },
};

/** How `RunIndex.open` got its index. */
export interface RunIndexOpenInfo {
  /** `disk`: index.json loaded and up to date; `rebuilt`: built from the agent records. */
  source: 'disk' | 'rebuilt';
  /** Why it was rebuilt (`missing`, `corrupt: …`, `schemaVersion 0 ≠ 1`, `stale: …`). */
  reason?: string;
  /** Wall time of open, in ms. */
  ms: number;
}

/** Options of `RunIndex.open`. */
export interface RunIndexOpenOptions {
  /** Path of the persisted index (`<run dir>/index.json`). */
  indexFile: string;
  runId: string;
  /** Every agent record of the run (all attempts); called only when a check or rebuild needs it. */
  loadRecords: () => Promise<AgentRecord[]>;
  /** Phase id → title, indexed with each task of the phase. */
  phaseTitles?: Record<string, string>;
  /**
   * Cheap census of the run: latest attempt per task ref (`<phaseId>/<taskId>`), e.g. from the
   * agent file names. When given, the freshness check of a loaded index uses it instead of
   * `loadRecords()`, which then runs only for a rebuild.
   */
  listAttempts?: () => Promise<ReadonlyMap<string, number>>;
  /** Persist the index right away when it had to be rebuilt (only the run's writer should). */
  saveRebuilt?: boolean;
  /** Default delay of `saveDebounced()` (ms, default 1000). */
  saveDebounceMs?: number;
  /** Aborts a rebuild between slices. */
  signal?: AbortSignal;
}

/** Ref of a task within its run. */
function taskRef(phaseId: string, taskId: string): string {
  return `${phaseId}/${taskId}`;
}

/** Latest attempt of each task among `records`. */
function latestAttempts(records: readonly AgentRecord[]): Map<string, AgentRecord> {
  const latest = new Map<string, AgentRecord>();
  for (const r of records) {
    const ref = taskRef(r.phaseId, r.taskId);
    const seen = latest.get(ref);
    if (seen === undefined || r.attempt >= seen.attempt) latest.set(ref, r);
  }
  return latest;
}

function toDoc(record: AgentRecord, phaseTitle: string | undefined): IndexDoc {
  return {
    id: taskRef(record.phaseId, record.taskId),
    phaseId: record.phaseId,
    taskId: record.taskId,
    attempt: record.attempt,
    status: record.status,
    output: typeof record.output === 'string' ? record.output : '',
    prompt: typeof record.prompt === 'string' ? record.prompt : '',
    phaseTitle: phaseTitle ?? '',
  };
}

/** The part of minisearch's (protected) term tree that `cacheTermLookups` wraps. */
interface TermTree {
  fetch(key: string, initial: () => unknown): unknown;
  set(key: string, value: unknown): unknown;
  delete(key: string): void;
  clear(): void;
}

/**
 * Puts a hash map in front of minisearch's term tree lookups during indexing.
 *
 * Why: profiling showed ~60% of indexing time in the radix tree's `createPath`, which scans a
 * node's children linearly for every token of every document — though almost every token is a
 * term the tree already holds. A Map from term to its postings object answers those in O(1).
 * Coherence: the cached value is the very object stored in the tree's leaf (restructuring the
 * tree moves nodes, never leaf values); a term leaves the cache whenever minisearch deletes or
 * replaces it (removeTerm, vacuum, loadJS) and the whole cache goes with `clear`. minisearch
 * 7.x keeps the tree in `_index`; if a later version does not, this does nothing and indexing
 * is merely slower (tests pin the behaviour).
 */
function cacheTermLookups(ms: MiniSearch<IndexDoc>): MiniSearch<IndexDoc> {
  const tree = (ms as unknown as { _index?: Partial<TermTree> })._index;
  if (tree === undefined || typeof tree.fetch !== 'function' || typeof tree.set !== 'function' || typeof tree.delete !== 'function' || typeof tree.clear !== 'function') {
    return ms;
  }
  const t = tree as TermTree;
  const cache = new Map<string, unknown>();
  const fetch = t.fetch.bind(t);
  const set = t.set.bind(t);
  const del = t.delete.bind(t);
  const clear = t.clear.bind(t);
  t.fetch = (key, initial) => {
    let value = cache.get(key);
    if (value === undefined) {
      value = fetch(key, initial);
      cache.set(key, value);
    }
    return value;
  };
  t.set = (key, value) => {
    cache.delete(key);
    return set(key, value);
  };
  t.delete = (key) => {
    cache.delete(key);
    del(key);
  };
  t.clear = () => {
    cache.clear();
    clear();
  };
  return ms;
}

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Checks a parsed index.json; returns the loaded index or why it cannot be used. */
async function loadEnvelope(value: unknown, runId: string): Promise<{ ms: MiniSearch<IndexDoc> } | { reason: string }> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { reason: 'corrupt: not a JSON object' };
  const env = value as Partial<SearchIndexEnvelope>;
  if (env.kind !== SEARCH_INDEX_KIND) return { reason: `corrupt: kind ${JSON.stringify(env.kind)}` };
  if (env.schemaVersion !== SCHEMA_VERSION) return { reason: `schemaVersion ${String(env.schemaVersion)} ≠ ${SCHEMA_VERSION}` };
  if (env.minisearch !== MINISEARCH_FORMAT) return { reason: `minisearch format ${String(env.minisearch)} ≠ ${MINISEARCH_FORMAT}` };
  if (env.analyzer !== ANALYZER_VERSION) return { reason: `analyzer ${String(env.analyzer)} ≠ ${ANALYZER_VERSION}` };
  if (env.runId !== runId) return { reason: `belongs to run ${JSON.stringify(env.runId)}` };
  if (typeof env.docCount !== 'number' || env.index === null || typeof env.index !== 'object') {
    return { reason: 'corrupt: docCount or index missing' };
  }
  let ms: MiniSearch<IndexDoc>;
  try {
    // The async loader builds the term tree in batches between event-loop turns (the JSON.parse
    // before it is one synchronous step, proportional to the file's size).
    ms = cacheTermLookups(await MiniSearch.loadJSAsync<IndexDoc>(env.index, MINISEARCH_OPTIONS));
  } catch (err) {
    return { reason: `corrupt: ${describe(err)}` };
  }
  if (ms.documentCount !== env.docCount) {
    return { reason: `corrupt: docCount ${env.docCount} but index holds ${ms.documentCount}` };
  }
  return { ms };
}

/** Compares a loaded index with the run's latest attempts; returns why it is stale, or null. */
function staleness(ms: MiniSearch<IndexDoc>, latest: ReadonlyMap<string, number>): string | null {
  if (ms.documentCount !== latest.size) return `stale: ${ms.documentCount} indexed tasks, ${latest.size} in the run`;
  for (const [ref, attempt] of latest) {
    const stored = ms.getStoredFields(ref);
    if (stored === undefined) return `stale: ${ref} not indexed`;
    if (stored['attempt'] !== attempt) return `stale: ${ref} attempt ${String(stored['attempt'])} indexed, ${attempt} on disk`;
  }
  return null;
}

/**
 * The search index of one run. Create it with `RunIndex.open`; the run owner calls `add` as each
 * agent finishes, `saveDebounced()` after it, and `flush()` at the end. Readers only search.
 */
export class RunIndex {
  /** Run whose agents this index holds. */
  readonly runId: string;
  /** Where `save()` writes. */
  readonly indexFile: string;
  /** How `open` got this index. */
  readonly openInfo: RunIndexOpenInfo;

  #ms: MiniSearch<IndexDoc>;
  #phaseTitles: Record<string, string>;
  #debounceMs: number;
  #dirty: boolean;
  #timer: NodeJS.Timeout | null = null;
  /** Tail of the save queue: saves never overlap, each writes the state at its own start. */
  #chain: Promise<unknown> = Promise.resolve();
  /** Failure of a debounced (background) save, reported by the next `flush()`. */
  #backgroundError: unknown = undefined;
  #saveCount = 0;
  #lastSaveMs = 0;

  private constructor(
    runId: string,
    indexFile: string,
    ms: MiniSearch<IndexDoc>,
    phaseTitles: Record<string, string>,
    debounceMs: number,
    openInfo: RunIndexOpenInfo,
  ) {
    this.runId = runId;
    this.indexFile = indexFile;
    this.#ms = ms;
    this.#phaseTitles = phaseTitles;
    this.#debounceMs = debounceMs;
    this.openInfo = openInfo;
    this.#dirty = openInfo.source === 'rebuilt';
  }

  /**
   * Loads `indexFile`, or rebuilds from `loadRecords()` when it is missing, unreadable, corrupt,
   * of another schema/minisearch/analyzer version, of another run, or stale (its tasks or their
   * attempts disagree with the run's records). A rebuild yields to the event loop every few ms.
   * A rebuilt index is not written unless `saveRebuilt` is set: only the run's owner writes.
   */
  static async open(options: RunIndexOpenOptions): Promise<RunIndex> {
    const started = performance.now();
    const { indexFile, runId, loadRecords, phaseTitles = {}, signal } = options;
    const debounceMs = options.saveDebounceMs ?? DEFAULT_SAVE_DEBOUNCE_MS;
    let records: AgentRecord[] | undefined;
    let reason = '';

    let envelope: unknown;
    try {
      envelope = await readJsonFile<unknown>(indexFile, { kind: 'search index', maxBytes: MAX_INDEX_BYTES });
    } catch (err) {
      if (!(err instanceof StoreError)) throw err;
      reason = err.code === 'not_found' ? 'missing' : `${err.code === 'corrupt' ? 'corrupt' : 'unreadable'}: ${err.message}`;
    }
    if (envelope !== undefined) {
      const loaded = await loadEnvelope(envelope, runId);
      envelope = undefined; // let the parsed JSON go before building anything else
      if ('ms' in loaded) {
        let latest: ReadonlyMap<string, number>;
        if (options.listAttempts) {
          latest = await options.listAttempts();
        } else {
          records = await loadRecords();
          latest = new Map([...latestAttempts(records)].map(([ref, r]) => [ref, r.attempt]));
        }
        const stale = staleness(loaded.ms, latest);
        if (stale === null) {
          const info: RunIndexOpenInfo = { source: 'disk', ms: performance.now() - started };
          return new RunIndex(runId, indexFile, loaded.ms, phaseTitles, debounceMs, info);
        }
        reason = stale;
      } else {
        reason = loaded.reason;
      }
    }

    records ??= await loadRecords();
    signal?.throwIfAborted();
    const ms = cacheTermLookups(new MiniSearch<IndexDoc>(MINISEARCH_OPTIONS));
    let sliceStart = performance.now();
    for (const record of latestAttempts(records).values()) {
      ms.add(toDoc(record, phaseTitles[record.phaseId]));
      if (performance.now() - sliceStart >= SLICE_MS) {
        await yieldToLoop();
        signal?.throwIfAborted();
        sliceStart = performance.now();
      }
    }
    const info: RunIndexOpenInfo = { source: 'rebuilt', reason, ms: performance.now() - started };
    const index = new RunIndex(runId, indexFile, ms, phaseTitles, debounceMs, info);
    if (options.saveRebuilt) await index.save();
    return index;
  }

  /** Number of documents (tasks) indexed. */
  get docCount(): number {
    return this.#ms.documentCount;
  }

  /** Number of distinct terms in the index. */
  get termCount(): number {
    return this.#ms.termCount;
  }

  /** True when the index changed since it was last saved (or was rebuilt and not saved). */
  get dirty(): boolean {
    return this.#dirty;
  }

  /** Number of completed saves of this instance. */
  get saveCount(): number {
    return this.#saveCount;
  }

  /** Wall time of the last completed save, in ms (0 before the first). */
  get lastSaveMs(): number {
    return this.#lastSaveMs;
  }

  /**
   * Indexes one agent attempt. It replaces the task's document when its attempt is the same or
   * newer than the indexed one, and is ignored (returns false) when older: the latest attempt
   * wins whatever order records arrive in. Synchronous; call `saveDebounced()` after it.
   */
  add(record: AgentRecord, phaseTitle?: string): boolean {
    if (record.runId !== this.runId) {
      throw new SearchError('wrong_run', `expected a record of run '${this.runId}', got one of run '${record.runId}'`);
    }
    const ref = taskRef(record.phaseId, record.taskId);
    const stored = this.#ms.getStoredFields(ref);
    if (stored !== undefined && (stored['attempt'] as number) > record.attempt) return false;
    if (phaseTitle !== undefined) this.#phaseTitles[record.phaseId] = phaseTitle;
    // discard (not remove): remove needs the exact old document, which we do not keep; the
    // discarded postings are cleaned by minisearch's automatic, batched vacuum.
    if (stored !== undefined) this.#ms.discard(ref);
    this.#ms.add(toDoc(record, this.#phaseTitles[record.phaseId]));
    this.#dirty = true;
    return true;
  }

  /** The indexed fields of one task, or undefined when it is not indexed. */
  get(phaseId: string, taskId: string): IndexedTask | undefined {
    return this.#ms.getStoredFields(taskRef(phaseId, taskId)) as IndexedTask | undefined;
  }

  /**
   * Runs a minisearch query on this run (the building block of `search()` in query.ts, which
   * validates the query and options first). Results carry the stored IndexedTask fields.
   */
  query(query: string, options: SearchOptions = {}): (SearchResult & IndexedTask)[] {
    return this.#ms.search(query, options) as (SearchResult & IndexedTask)[];
  }

  /**
   * Writes index.json atomically now. Saves queue behind each other, never overlap, and each
   * writes the index as it is when that save starts.
   */
  save(): Promise<void> {
    const write = async (): Promise<void> => {
      const envelope = {
        schemaVersion: SCHEMA_VERSION,
        kind: SEARCH_INDEX_KIND,
        minisearch: MINISEARCH_FORMAT,
        analyzer: ANALYZER_VERSION,
        runId: this.runId,
        docCount: this.#ms.documentCount,
        // Serialized by JSON.stringify through MiniSearch#toJSON: no intermediate copy here.
        index: this.#ms,
      };
      this.#dirty = false;
      const started = performance.now();
      try {
        // Compact: indentation would inflate a large index by a third for no reader's benefit.
        await writeJsonAtomic(this.indexFile, envelope, { indent: 0 });
        this.#saveCount++;
        this.#lastSaveMs = performance.now() - started;
      } catch (err) {
        this.#dirty = true;
        throw err;
      }
    };
    const done = this.#chain.then(write);
    this.#chain = done.catch(() => undefined);
    return done;
  }

  /**
   * Schedules a save in `delayMs` (default: the open option, 1 s) — or in 4× the last save's
   * duration when that is longer — unless one is already scheduled. Called after every `add`, it
   * saves at most once per delay however fast agents finish: each save serializes the whole
   * index, so saving per add would cost O(n²) over a run. A background failure is kept and
   * thrown by the next `flush()`.
   */
  saveDebounced(delayMs: number = this.#debounceMs): void {
    if (this.#timer !== null) return;
    const delay = Math.max(delayMs, SAVE_COST_FACTOR * this.#lastSaveMs);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (!this.#dirty) return;
      this.save().catch((err: unknown) => {
        this.#backgroundError = err;
      });
    }, delay);
  }

  /**
   * Cancels a scheduled save, waits for saves in flight, and saves if anything is unsaved.
   * Throws when that final save fails, or when a background save failed and nothing was left
   * to retry. Call it when the run ends.
   */
  async flush(): Promise<void> {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    await this.#chain;
    const background = this.#backgroundError;
    this.#backgroundError = undefined;
    if (this.#dirty) await this.save();
    else if (background !== undefined) throw background;
  }
}
