/**
 * RunIndex: the BM25+ (minisearch) index of one run's agent outputs, one document per task (its
 * latest attempt), kept up to date as agents finish and persisted in `<run dir>/index.json`.
 *
 * Two forms: a minisearch index (built from records; what the run's owner adds to) and a packed
 * one (packed.ts; what index.json holds and what a reader searches without building minisearch's
 * structures). A packed index is turned into a minisearch one (in slices) only when something must
 * be added to it.
 *
 * Memory: neither form holds the output text. A search builds its snippets from texts kept in
 * memory for documents added in this process (`keepTexts`, default on: tests and small indexes),
 * or reads them from the agent records of the hits shown (`searchStore`), so index.json and a
 * reader's memory grow with the number of distinct words, not with the size of the outputs.
 */
import { performance } from 'node:perf_hooks';
import MiniSearch, { type SearchResult } from 'minisearch';
import type { AgentRecord } from '../store/types.js';
import {
  BOOST,
  MINISEARCH_OPTIONS,
  latestAttempts,
  splitRef,
  taskRef,
  toDoc,
  type IndexDoc,
  type IndexedTask,
} from './documents.js';
import { SearchError } from './errors.js';
import { readIndexFile, writeIndexFile } from './index-file.js';
import { cacheTermLookups, scoringView } from './internals.js';
import { PackedIndex, packMiniSearch, packPlain, type PackedData } from './packed.js';
import { ScoreScratch, scoreQuery } from './scorer.js';

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

/** A save vacuums first when at least this many replaced attempts' postings linger… */
const VACUUM_MIN_DIRT = 20;
/** …and they are at least this share of the documents (minisearch's own defaults). */
const VACUUM_MIN_DIRT_FACTOR = 0.1;

/**
 * Memory per character of indexed text in a minisearch index (postings and term tree), plus the
 * text itself (UTF-16) when kept: rough, measured on bench B5's corpus.
 */
const DOC_BYTES_PER_CHAR = 4;

/** Agent records read at once when catching up. */
const READ_CONCURRENCY = 16;

/** Shortest query term expanded by prefix or fuzzy matching; shorter ones match exactly. */
export const MIN_EXPANDED_TERM = 3;

/**
 * Most indexed words one query term expands to with `prefix` (the shortest ones, which weigh
 * most). A bound on the work of a 3-letter prefix in a large vocabulary.
 */
export const MAX_PREFIX_EXPANSIONS = 500;

/** How `RunIndex.open` got its index. */
export interface RunIndexOpenInfo {
  /** `disk`: index.json loaded (and caught up when it lagged); `rebuilt`: built from the agent records. */
  source: 'disk' | 'rebuilt';
  /**
   * Why it was rebuilt (`missing`, `corrupt: …`, `schemaVersion 0 ≠ 1`, `stale: …`) or caught
   * up (`behind: …`).
   */
  reason?: string;
  /** Tasks added to a loaded index because it lagged behind the run's agent files. */
  caughtUp?: number;
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
  /**
   * Reads one agent record; with `listAttempts`, a loaded index that lags behind the run reads
   * only the records it lacks instead of all of them.
   */
  readRecord?: (phaseId: string, taskId: string, attempt: number) => Promise<AgentRecord>;
  /** Persist the index right away when open had to rebuild or catch it up (only the run's writer should). */
  saveRebuilt?: boolean;
  /** Default delay of `saveDebounced()` (ms, default 1000). */
  saveDebounceMs?: number;
  /** The run owner's lease check, run right before each save's rename (see RunStore.fence). */
  fence?: () => void;
  /** Aborts a rebuild between slices. */
  signal?: AbortSignal;
  /**
   * Keep the indexed text of documents added in this process in memory, so `search()` builds
   * their snippets without reading records (default true). Readers that read snippets from the
   * records (`searchStore`) and the run's owner (which never searches) turn it off.
   */
  keepTexts?: boolean;
}

/** A validated query for `RunIndex.query` (see `prepareQuery` in query.ts). */
export interface TermQuery {
  /** Normalized query terms (see analyze.ts `queryTerms`). */
  terms: string[];
  /** `OR`: any term may match; `AND`: every term must. */
  combineWith: 'OR' | 'AND';
  /** Expand each term (3+ chars) to indexed words it begins. */
  prefix: boolean;
  /** minisearch fuzziness for terms of 3+ chars (fraction of the length, or edit distance), or false. */
  fuzzy: number | false;
  /** Cap of a fractional fuzziness, in edits. */
  maxFuzzy: number;
  /** Keeps a task or not (phase and status filters). */
  filter?: (task: IndexedTask) => boolean;
}

/** A task in a ranking: its indexed fields, score and the indexed words that matched. */
export interface RankedTask extends IndexedTask {
  score: number;
  /** Matched words of the task's document (what the query's terms, prefixes or typos hit). */
  terms: string[];
  /** The indexed output text, when the index keeps it in memory (see `keepTexts`). */
  text?: string;
}

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** How a loaded index compares with the run's latest attempts. */
interface Comparison {
  /** Tasks the index lacks or holds an older attempt of: [ref, latest attempt]. */
  behind: [string, number][];
  /** Why the index cannot be caught up (it holds tasks or attempts the run does not), or null. */
  ahead: string | null;
}

/** The stored fields of the document `ref` of either form of index. */
type StoredOf = (ref: string) => Partial<IndexedTask> | undefined;

function compare(stored: StoredOf, documentCount: number, latest: ReadonlyMap<string, number>): Comparison {
  const behind: [string, number][] = [];
  let held = 0;
  for (const [ref, attempt] of latest) {
    const fields = stored(ref);
    if (fields === undefined) {
      behind.push([ref, attempt]);
      continue;
    }
    held++;
    const indexed = fields.attempt;
    if (typeof indexed !== 'number') return { behind, ahead: `corrupt: ${ref} has no attempt` };
    if (indexed > attempt) return { behind, ahead: `stale: ${ref} attempt ${indexed} indexed, ${attempt} on disk` };
    if (indexed < attempt) behind.push([ref, attempt]);
  }
  if (held !== documentCount) {
    return { behind, ahead: `stale: ${documentCount - held} indexed tasks have no agent file` };
  }
  return { behind, ahead: null };
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

  /** The minisearch form (undefined while the index is packed). */
  #ms: MiniSearch<IndexDoc> | undefined;
  /** The packed form, as loaded from index.json (undefined once turned into minisearch). */
  #packed: PackedIndex | undefined;
  /** A thaw in progress (packed → minisearch). */
  #thawing: Promise<void> | undefined;
  /** Task ref → indexed text, for documents added in this process (when `keepTexts`). */
  #texts: Map<string, string> | undefined;
  #openInfo: RunIndexOpenInfo = { source: 'disk', ms: 0 };
  #phaseTitles: Record<string, string>;
  #debounceMs: number;
  #dirty = false;
  #timer: NodeJS.Timeout | null = null;
  /** Tail of the save queue: saves never overlap, each writes the state at its own start. */
  #chain: Promise<unknown> = Promise.resolve();
  /** Failure of a debounced (background) save, reported by the next `flush()`. */
  #backgroundError: unknown = undefined;
  #saveCount = 0;
  /** Buffers the scorer reuses between queries. */
  #scratch = new ScoreScratch();
  /** Records added while a save walks the index (null when none does), applied after it. */
  #held: [AgentRecord, string | undefined][] | null = null;
  /** Task ref → attempt of the held records. */
  #heldAttempts = new Map<string, number>();
  #lastSaveMs = 0;
  /** Rough bytes this index holds in memory (see approxBytes). */
  #approxBytes = 0;
  #fence: (() => void) | undefined;

  private constructor(
    runId: string,
    indexFile: string,
    form: MiniSearch<IndexDoc> | PackedIndex,
    phaseTitles: Record<string, string>,
    debounceMs: number,
    keepTexts: boolean,
  ) {
    this.runId = runId;
    this.indexFile = indexFile;
    if (form instanceof PackedIndex) this.#packed = form;
    else this.#ms = form;
    this.#phaseTitles = phaseTitles;
    this.#debounceMs = debounceMs;
    this.#texts = keepTexts ? new Map() : undefined;
  }

  /** The stored fields of one document, from whichever form the index is in. */
  #stored(ref: string): Partial<IndexedTask> | undefined {
    if (this.#packed !== undefined) return this.#packed.stored(ref);
    return this.#ms!.getStoredFields(ref) as Partial<IndexedTask> | undefined;
  }

  /**
   * The minisearch form, made from the packed one now if need be: synchronously when `pause` is
   * not given (a stall proportional to the index; `add` on a packed index), else in slices.
   */
  async #thaw(): Promise<MiniSearch<IndexDoc>> {
    if (this.#ms !== undefined) return this.#ms;
    this.#thawing ??= (async () => {
      const packed = this.#packed!;
      const plain = await packed.toPlain(yieldToLoop, SLICE_MS);
      const ms = cacheTermLookups(await MiniSearch.loadJSAsync<IndexDoc>(plain, MINISEARCH_OPTIONS));
      if (this.#ms === undefined) {
        this.#ms = ms;
        this.#packed = undefined;
        this.#approxBytes = packed.approxBytes * 12;
      }
    })().finally(() => {
      this.#thawing = undefined;
    });
    await this.#thawing;
    return this.#ms!;
  }

  #thawNow(): MiniSearch<IndexDoc> {
    if (this.#ms !== undefined) return this.#ms;
    const packed = this.#packed!;
    this.#ms = cacheTermLookups(MiniSearch.loadJS<IndexDoc>(packed.toPlainSync(), MINISEARCH_OPTIONS));
    this.#packed = undefined;
    this.#approxBytes = packed.approxBytes * 12;
    return this.#ms;
  }

  /** How `open` got this index. */
  get openInfo(): RunIndexOpenInfo {
    return this.#openInfo;
  }

  /**
   * Loads `indexFile`, or rebuilds from `loadRecords()` when it is missing, unreadable, corrupt,
   * of another schema/minisearch/analyzer version, of another run, or holds tasks or attempts
   * the run does not have. A loaded index that only lags behind the run (tasks or newer attempts
   * it lacks, so its docCount disagrees) is caught up by adding just those records. Rebuilds and
   * catch-ups yield to the event loop every few ms. Nothing is written unless `saveRebuilt` is
   * set: only the run's owner writes.
   */
  static async open(options: RunIndexOpenOptions): Promise<RunIndex> {
    const started = performance.now();
    const { indexFile, runId, loadRecords, phaseTitles = {}, signal } = options;
    const debounceMs = options.saveDebounceMs ?? DEFAULT_SAVE_DEBOUNCE_MS;
    let records: AgentRecord[] | undefined;
    const keepTexts = options.keepTexts ?? true;

    const loaded = await readIndexFile(indexFile, runId, yieldToLoop);
    let reason: string;
    if ('data' in loaded) {
      const packed = new PackedIndex(loaded.data);
      let latest: ReadonlyMap<string, number>;
      let byRef: Map<string, AgentRecord> | undefined;
      if (options.listAttempts) {
        latest = await options.listAttempts();
      } else {
        records = await loadRecords();
        byRef = latestAttempts(records);
        latest = new Map([...byRef].map(([ref, r]) => [ref, r.attempt]));
      }
      const { behind, ahead } = compare((ref) => packed.stored(ref), packed.documentCount, latest);
      if (ahead === null) {
        const index = new RunIndex(runId, indexFile, packed, phaseTitles, debounceMs, keepTexts);
        index.#approxBytes = packed.approxBytes;
        index.#fence = options.fence;
        // The run's owner adds to its index: it gets the minisearch form now, in slices, rather
        // than at its first add, synchronously.
        if (options.saveRebuilt) await index.#thaw();
        let caughtUp = 0;
        if (behind.length > 0) {
          // The index lags (the owner saves at most once a second, and a crash loses the last
          // save): add just the missing attempts rather than rebuilding everything.
          const readRecord = options.readRecord;
          let read: (phaseId: string, taskId: string, attempt: number) => Promise<AgentRecord | undefined>;
          if (readRecord !== undefined && byRef === undefined) {
            read = readRecord;
          } else {
            byRef ??= latestAttempts((records ??= await loadRecords()));
            const known = byRef;
            read = async (phaseId, taskId) => known.get(taskRef(phaseId, taskId));
          }
          caughtUp = (await index.catchUp(new Map(behind), read, signal)).added;
        }
        index.#openInfo = {
          source: 'disk',
          ...(behind.length > 0 ? { reason: `behind: ${behind.length} task${behind.length === 1 ? '' : 's'}`, caughtUp } : {}),
          ms: performance.now() - started,
        };
        if (caughtUp > 0 && options.saveRebuilt) await index.#saveAfterOpen();
        return index;
      }
      reason = ahead;
    } else {
      reason = loaded.reason;
    }

    records ??= await loadRecords();
    signal?.throwIfAborted();
    const ms = cacheTermLookups(new MiniSearch<IndexDoc>(MINISEARCH_OPTIONS));
    const index = new RunIndex(runId, indexFile, ms, phaseTitles, debounceMs, keepTexts);
    index.#fence = options.fence;
    let sliceStart = performance.now();
    for (const record of latestAttempts(records).values()) {
      index.#addDoc(ms, toDoc(record, phaseTitles[record.phaseId]));
      if (performance.now() - sliceStart >= SLICE_MS) {
        await yieldToLoop();
        signal?.throwIfAborted();
        sliceStart = performance.now();
      }
    }
    index.#dirty = true;
    index.#openInfo = { source: 'rebuilt', reason, ms: performance.now() - started };
    if (options.saveRebuilt) await index.#saveAfterOpen();
    return index;
  }

  /**
   * The save `open` does for the owner. A failure does not fail the open (the index works in
   * memory); it stays dirty and the next `flush()` retries and reports.
   */
  async #saveAfterOpen(): Promise<void> {
    try {
      await this.save();
    } catch (err) {
      this.#backgroundError = err;
    }
  }

  /**
   * Rough bytes this index holds in memory: its documents' text and postings, estimated from
   * what was added (or from the size of the index.json it was loaded from). A cache that must
   * bound memory by bytes rather than by run count weighs indexes with it.
   */
  get approxBytes(): number {
    return this.#approxBytes;
  }

  /** Number of documents (tasks) indexed. */
  get docCount(): number {
    return this.#packed?.documentCount ?? this.#ms!.documentCount;
  }

  /** Number of distinct terms in the index. */
  get termCount(): number {
    return this.#packed?.termCount ?? this.#ms!.termCount;
  }

  /** True while the index is in its packed form (as loaded, nothing added since). */
  get packed(): boolean {
    return this.#packed !== undefined;
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
    const indexed = this.#indexedAttempt(ref);
    if (Math.max(indexed ?? 0, this.#heldAttempts.get(ref) ?? 0) > record.attempt) return false;
    this.#dirty = true;
    if (this.#held !== null) {
      // A save is walking the index: the change waits until it is done (a moment; searches see
      // the record then) so the save writes one consistent state.
      this.#held.push([record, phaseTitle]);
      this.#heldAttempts.set(ref, record.attempt);
      return true;
    }
    this.#apply(record, phaseTitle);
    return true;
  }

  #indexedAttempt(ref: string): number | undefined {
    const attempt = this.#stored(ref)?.attempt;
    return typeof attempt === 'number' ? attempt : undefined;
  }

  /** Puts a record's document in the index, replacing the task's earlier one. */
  #apply(record: AgentRecord, phaseTitle: string | undefined): void {
    const ref = taskRef(record.phaseId, record.taskId);
    if (phaseTitle !== undefined) this.#phaseTitles[record.phaseId] = phaseTitle;
    const ms = this.#thawNow();
    // discard (not remove): remove needs the exact old document, which we do not keep; the
    // discarded postings are cleaned by the vacuum that runs before a save.
    if (ms.has(ref)) ms.discard(ref);
    this.#addDoc(ms, toDoc(record, this.#phaseTitles[record.phaseId]));
  }

  #addDoc(ms: MiniSearch<IndexDoc>, doc: IndexDoc): void {
    ms.add(doc);
    this.#approxBytes += (doc.output.length + doc.prompt.length) * DOC_BYTES_PER_CHAR;
    if (this.#texts !== undefined) {
      this.#texts.set(doc.id, doc.output);
      this.#approxBytes += doc.output.length * 2;
    }
  }

  /**
   * Brings the index up to date with the run's agent files: `latest` maps each task ref
   * (`<phaseId>/<taskId>`) to its latest attempt on disk; tasks the index lacks or holds an
   * older attempt of are read with `read` and added, yielding to the event loop between slices.
   * A record that cannot be read (or `read` returns undefined) is counted and skipped; it is
   * tried again at the next catch-up. Tasks absent from `latest` are left as they are.
   */
  async catchUp(
    latest: ReadonlyMap<string, number>,
    read: (phaseId: string, taskId: string, attempt: number) => Promise<AgentRecord | undefined>,
    signal?: AbortSignal,
  ): Promise<{ added: number; unreadable: number }> {
    const needed: [string, string, number][] = [];
    for (const [ref, attempt] of latest) {
      const indexed = this.#indexedAttempt(ref);
      if (indexed !== undefined && indexed >= attempt) continue;
      const [phaseId, taskId] = splitRef(ref);
      needed.push([phaseId, taskId, attempt]);
    }
    if (needed.length > 0) await this.#thaw();
    let added = 0;
    let unreadable = 0;
    let sliceStart = performance.now();
    for (let i = 0; i < needed.length; i += READ_CONCURRENCY) {
      const batch = await Promise.all(
        needed.slice(i, i + READ_CONCURRENCY).map(async ([phaseId, taskId, attempt]) => {
          try {
            return await read(phaseId, taskId, attempt);
          } catch {
            return undefined; // counted as unreadable; tried again at the next catch-up
          }
        }),
      );
      signal?.throwIfAborted();
      for (const record of batch) {
        if (record === undefined || record.runId !== this.runId) {
          unreadable++;
          continue;
        }
        if (this.add(record)) added++;
        if (performance.now() - sliceStart >= SLICE_MS) {
          await yieldToLoop();
          signal?.throwIfAborted();
          sliceStart = performance.now();
        }
      }
    }
    return { added, unreadable };
  }

  /**
   * Compares the index with the run's latest attempts (task ref → attempt): how many tasks it
   * lacks or holds an older attempt of (`catchUp` adds those), and why it cannot be caught up
   * (`ahead`: it holds tasks or attempts the run does not have), or null.
   */
  compare(latest: ReadonlyMap<string, number>): { behind: number; ahead: string | null } {
    const { behind, ahead } = compare((ref) => this.#stored(ref), this.docCount, latest);
    return { behind: behind.length, ahead };
  }

  /** The indexed fields of one task, or undefined when it is not indexed. */
  get(phaseId: string, taskId: string): IndexedTask | undefined {
    return this.#stored(taskRef(phaseId, taskId)) as IndexedTask | undefined;
  }

  /**
   * Runs a query on this run (the building block of `search()` in query.ts, which validates the
   * query and options first): how many tasks match, and the best `want` of them, best first,
   * with their score, matched words and stored fields.
   */
  query(q: TermQuery, want: number): { total: number; top: RankedTask[] } {
    const texts = this.#texts;
    const withText = (task: RankedTask): RankedTask => {
      const text = texts?.get(taskRef(task.phaseId, task.taskId));
      return text === undefined ? task : { ...task, text };
    };
    const view = this.#packed !== undefined ? this.#packed.view() : scoringView(this.#ms!);
    if (view !== undefined) {
      const keep = q.filter;
      const { total, top } = scoreQuery(
        view,
        {
          terms: q.terms,
          and: q.combineWith === 'AND',
          prefix: q.prefix,
          fuzzy: q.fuzzy,
          maxFuzzy: q.maxFuzzy,
          minExpanded: MIN_EXPANDED_TERM,
          maxPrefixExpansions: MAX_PREFIX_EXPANSIONS,
          boosts: BOOST,
          ...(keep !== undefined ? { keep: (stored: Record<string, unknown>) => keep(stored as unknown as IndexedTask) } : {}),
          want,
        },
        this.#scratch,
      );
      return { total, top: top.map((d) => withText({ ...(d.stored as unknown as IndexedTask), score: d.score, terms: d.terms })) };
    }
    // Without access to minisearch's internals: its public search, which ranks the same but
    // materializes and sorts every match (and expands prefixes without a cap).
    const expand = (term: string): boolean => term.length >= MIN_EXPANDED_TERM;
    const results = this.#ms!.search(q.terms.join(' '), {
      combineWith: q.combineWith,
      prefix: q.prefix ? expand : false,
      fuzzy: q.fuzzy === false ? false : (term: string) => (expand(term) ? q.fuzzy : false),
      maxFuzzy: q.maxFuzzy,
      ...(q.filter !== undefined ? { filter: (r: SearchResult) => q.filter!(r as unknown as IndexedTask) } : {}),
    });
    return {
      total: results.length,
      top: results.slice(0, want).map((r) => withText({ ...(r as unknown as IndexedTask), score: r.score, terms: r.terms })),
    };
  }

  /**
   * Writes index.json atomically now. Saves queue behind each other, never overlap, and each
   * writes the index as it is when that save starts. The save first vacuums the postings of
   * replaced attempts when they add up, then produces the JSON in slices between event-loop
   * turns; records added meanwhile are held and indexed as soon as the text is complete.
   */
  save(): Promise<void> {
    const write = async (): Promise<void> => {
      const started = performance.now();
      let data: PackedData;
      this.#held = [];
      try {
        const ms = this.#ms;
        this.#dirty = false;
        if (ms === undefined) {
          data = this.#packed!.data;
        } else {
          // Packing leaves out the postings of replaced attempts; the vacuum frees them in memory.
          if (ms.dirtCount >= VACUUM_MIN_DIRT && ms.dirtFactor >= VACUUM_MIN_DIRT_FACTOR) await ms.vacuum({ batchWait: 1 });
          data = (await packMiniSearch(ms, yieldToLoop, SLICE_MS)) ?? packPlain(ms.toJSON());
        }
      } catch (err) {
        this.#dirty = true;
        throw err;
      } finally {
        const held = this.#held;
        this.#held = null;
        this.#heldAttempts.clear();
        for (const [record, phaseTitle] of held) {
          const indexed = this.#indexedAttempt(taskRef(record.phaseId, record.taskId));
          if (indexed === undefined || indexed <= record.attempt) this.#apply(record, phaseTitle);
        }
      }
      try {
        await writeIndexFile(this.indexFile, this.runId, data, yieldToLoop, this.#fence);
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
