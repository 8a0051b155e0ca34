/**
 * The one module that reaches into minisearch's protected members (pinned to minisearch 7.x,
 * whose serialization format the index envelope names). Three things need it, each measured:
 *
 * - `cacheTermLookups`: indexing spent ~60% of its time walking the radix tree per token;
 * - `snapshotIndex` + `serializeSnapshot`: `toJSON()` + `JSON.stringify` of a 10,000-output index
 *   blocked the event loop for seconds per save; a copy of the postings takes a fraction of
 *   that and the JSON text is then produced in slices between event-loop turns;
 * - `scoringView` (for scorer.ts): minisearch's `search()` builds a result object for every
 *   matching document and sorts them all; a query matching most of 10,000 outputs spent ~40 ms
 *   there, mostly in the garbage collector. The scorer reads the same postings, computes the
 *   same BM25+ scores and keeps only the top hits.
 *
 * Every function checks that the members it needs exist and have the expected types; when they
 * do not (a minisearch that changed its internals), callers fall back to the public API and
 * lose only speed. tests/search/internals.test.ts pins the behaviour against the public API.
 */
import type MiniSearch from 'minisearch';

/** minisearch's term tree (`SearchableMap`), the parts used here. */
interface TermTree<T> extends Iterable<[string, T]> {
  get(key: string): T | undefined;
  fuzzyGet(key: string, maxDistance: number): Map<string, [T, number]>;
  fetch(key: string, initial: () => T): T;
  set(key: string, value: T): unknown;
  delete(key: string): void;
  clear(): void;
  atPrefix(prefix: string): TermTree<T>;
  keys(): Iterable<string>;
}

/** Postings of one term: field id → (short document id → term frequency). */
export type Postings = Map<number, Map<number, number>>;

/** minisearch's protected state, as of 7.x. */
interface Internals {
  _index: TermTree<Postings>;
  _documentCount: number;
  _nextId: number;
  _documentIds: Map<number, unknown>;
  _fieldIds: Record<string, number>;
  _fieldLength: Map<number, number[]>;
  _avgFieldLength: number[];
  _storedFields: Map<number, unknown>;
  _dirtCount: number;
}

function internalsOf(ms: MiniSearch<never> | MiniSearch<any>): Internals | undefined {
  const x = ms as unknown as Partial<Internals>;
  const tree = x._index as Partial<TermTree<Postings>> | undefined;
  if (
    tree === undefined ||
    typeof tree.fetch !== 'function' ||
    typeof tree.set !== 'function' ||
    typeof tree.delete !== 'function' ||
    typeof tree.clear !== 'function' ||
    typeof tree.atPrefix !== 'function' ||
    typeof tree.get !== 'function' ||
    typeof tree.fuzzyGet !== 'function' ||
    typeof (tree as Iterable<unknown>)[Symbol.iterator] !== 'function' ||
    typeof x._documentCount !== 'number' ||
    typeof x._nextId !== 'number' ||
    !(x._documentIds instanceof Map) ||
    !(x._fieldLength instanceof Map) ||
    !(x._storedFields instanceof Map) ||
    typeof x._fieldIds !== 'object' ||
    !Array.isArray(x._avgFieldLength)
  ) {
    return undefined;
  }
  return x as Internals;
}

/** True when this minisearch exposes the internals the fast paths need. */
export function hasInternals(ms: MiniSearch<any>): boolean {
  return internalsOf(ms) !== undefined;
}

/**
 * Puts a hash map in front of the term tree's `fetch` (used once per token while indexing).
 *
 * Coherence: the cached value is the very postings object stored in the tree's leaf (the tree
 * restructures nodes, never leaf values), and a term leaves the cache whenever minisearch
 * deletes or replaces it (removeTerm, vacuum, loadJS) or clears the tree.
 */
export function cacheTermLookups<T extends MiniSearch<any>>(ms: T): T {
  const internals = internalsOf(ms);
  if (internals === undefined) return ms;
  const tree = internals._index;
  const cache = new Map<string, Postings>();
  const fetch = tree.fetch.bind(tree);
  const set = tree.set.bind(tree);
  const del = tree.delete.bind(tree);
  const clear = tree.clear.bind(tree);
  tree.fetch = (key, initial) => {
    let value = cache.get(key);
    if (value === undefined) {
      value = fetch(key, initial);
      cache.set(key, value);
    }
    return value;
  };
  tree.set = (key, value) => {
    cache.delete(key);
    return set(key, value);
  };
  tree.delete = (key) => {
    cache.delete(key);
    del(key);
  };
  tree.clear = () => {
    cache.clear();
    clear();
  };
  return ms;
}

/** Read access to what scoring needs, live (counts and averages change as documents are added). */
export interface ScoringView {
  /** Live documents. */
  readonly documentCount: number;
  /** One more than the largest short document id ever given out. */
  readonly nextId: number;
  /** Discarded documents whose postings are still in the term tree (awaiting vacuum). */
  readonly dirtCount: number;
  readonly fieldIds: Readonly<Record<string, number>>;
  /** Average length of each field, by field id. */
  readonly avgFieldLength: readonly number[];
  /** Short id → length of each field (by field id); absent for discarded documents. */
  readonly fieldLength: ReadonlyMap<number, number[]>;
  /** Short id → document id; absent for discarded documents (their postings linger until vacuum). */
  readonly documentIds: ReadonlyMap<number, unknown>;
  /** Short id → stored fields. */
  readonly storedFields: ReadonlyMap<number, unknown>;
  /** Postings of one term. */
  postings(term: string): Postings | undefined;
  /** Terms starting with `prefix` (including `prefix` itself when indexed) and their postings. */
  withPrefix(prefix: string): Iterable<[string, Postings]>;
  /** Terms within `maxDistance` edits of `term`, with their postings and distance. */
  fuzzy(term: string, maxDistance: number): Map<string, [Postings, number]>;
}

/** A live read-only view of the index for scorer.ts, or undefined without internals. */
export function scoringView(ms: MiniSearch<any>): ScoringView | undefined {
  const x = internalsOf(ms);
  if (x === undefined) return undefined;
  return {
    get documentCount() {
      return x._documentCount;
    },
    get nextId() {
      return x._nextId;
    },
    get dirtCount() {
      return x._dirtCount ?? 0;
    },
    get fieldIds() {
      return x._fieldIds;
    },
    get avgFieldLength() {
      return x._avgFieldLength;
    },
    get fieldLength() {
      return x._fieldLength;
    },
    get documentIds() {
      return x._documentIds;
    },
    get storedFields() {
      return x._storedFields;
    },
    postings: (term) => x._index.get(term),
    withPrefix: (prefix) => x._index.atPrefix(prefix),
    fuzzy: (term, maxDistance) => x._index.fuzzyGet(term, maxDistance),
  };
}

/** A point-in-time copy of an index, cheap to take, that later changes to the index do not touch. */
export interface IndexSnapshot {
  documentCount: number;
  nextId: number;
  dirtCount: number;
  fieldIds: Record<string, number>;
  averageFieldLength: number[];
  documentIds: [number, unknown][];
  /** Per-document field lengths (arrays minisearch never changes after adding the document). */
  fieldLength: [number, number[]][];
  /** Stored fields (objects minisearch never changes after adding the document). */
  storedFields: [number, unknown][];
  terms: string[];
  /** Per term, in order: field count, then per field: field id, doc count, then (doc id, frequency) pairs. */
  postings: Int32Array;
  postingsLength: number;
}

/**
 * Copies the index's state synchronously: the document tables by reference (their values are
 * immutable once added) and the postings into one flat Int32Array. Undefined without internals.
 */
export function snapshotIndex(ms: MiniSearch<any>): IndexSnapshot | undefined {
  const x = internalsOf(ms);
  if (x === undefined) return undefined;
  const terms: string[] = [];
  let buf = new Int32Array(1 << 16);
  let n = 0;
  const push = (v: number): void => {
    if (n === buf.length) {
      const bigger = new Int32Array(buf.length * 2);
      bigger.set(buf);
      buf = bigger;
    }
    buf[n++] = v;
  };
  for (const [term, fields] of x._index) {
    terms.push(term);
    push(fields.size);
    for (const [fieldId, docs] of fields) {
      push(fieldId);
      push(docs.size);
      for (const [docId, freq] of docs) {
        push(docId);
        push(freq);
      }
    }
  }
  return {
    documentCount: x._documentCount,
    nextId: x._nextId,
    dirtCount: x._dirtCount ?? 0,
    fieldIds: { ...x._fieldIds },
    averageFieldLength: x._avgFieldLength.slice(),
    documentIds: Array.from(x._documentIds),
    fieldLength: Array.from(x._fieldLength),
    storedFields: Array.from(x._storedFields),
    terms,
    postings: buf,
    postingsLength: n,
  };
}

/**
 * Writes a snapshot as minisearch 7's JSON (what `JSON.stringify(ms)` would produce, up to key
 * order, which JSON objects do not have), calling `pause()` whenever a slice of `sliceMs` has
 * been spent, so a large index never blocks the event loop for long. Returns the text pieces.
 */
export async function serializeSnapshot(snap: IndexSnapshot, pause: () => Promise<void>, sliceMs: number): Promise<string[]> {
  const out: string[] = [];
  let sliceStart = performance.now();
  let count = 0;
  const maybePause = async (): Promise<void> => {
    if ((++count & 255) === 0 && performance.now() - sliceStart >= sliceMs) {
      await pause();
      sliceStart = performance.now();
    }
  };
  const objectOf = async (entries: readonly [number, unknown][]): Promise<void> => {
    out.push('{');
    let first = true;
    for (const [key, value] of entries) {
      out.push(`${first ? '' : ','}"${key}":${JSON.stringify(value)}`);
      first = false;
      await maybePause();
    }
    out.push('}');
  };

  out.push(
    `{"documentCount":${snap.documentCount},"nextId":${snap.nextId},"fieldIds":${JSON.stringify(snap.fieldIds)},` +
      `"averageFieldLength":${JSON.stringify(snap.averageFieldLength)},"dirtCount":${snap.dirtCount},"serializationVersion":2,"documentIds":`,
  );
  await objectOf(snap.documentIds);
  out.push(',"fieldLength":');
  await objectOf(snap.fieldLength);
  out.push(',"storedFields":');
  await objectOf(snap.storedFields);
  out.push(',"index":[');
  const p = snap.postings;
  let at = 0;
  for (let t = 0; t < snap.terms.length; t++) {
    let piece = `${t === 0 ? '' : ','}[${JSON.stringify(snap.terms[t])},{`;
    const fields = p[at++]!;
    for (let f = 0; f < fields; f++) {
      const fieldId = p[at++]!;
      const docs = p[at++]!;
      piece += `${f === 0 ? '' : ','}"${fieldId}":{`;
      for (let d = 0; d < docs; d++) {
        piece += `${d === 0 ? '' : ','}"${p[at]!}":${p[at + 1]!}`;
        at += 2;
      }
      piece += '}';
    }
    out.push(`${piece}}]`);
    await maybePause();
  }
  out.push(']}');
  return out;
}
