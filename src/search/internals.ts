/**
 * The one module that reaches into minisearch's protected members (pinned to minisearch 7.x,
 * whose serialization format the index envelope names). Three things need it, each measured:
 *
 * - `cacheTermLookups`: indexing spent ~60% of its time walking the radix tree per token;
 * - `packSource` (for packed.ts): `toJSON()` of a 10,000-output index blocked the event loop for
 *   seconds per save; walking the structures directly packs them in slices between event-loop
 *   turns (RunIndex holds changes back meanwhile);
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
  /** The radix tree itself: nested maps keyed by key fragments, the value under the key ''. */
  _tree: RadixNode<T>;
  /** Key prefix of this (sub)tree: '' for the whole tree. */
  _prefix: string;
}

/** A node of minisearch's radix tree (7.x): fragment → child node, and '' → the value. */
type RadixNode<T> = Map<string, RadixNode<T> | T>;

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
    !(tree._tree instanceof Map) ||
    tree._prefix !== '' ||
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
  /**
   * Field lengths by field id, then short id (what ScoreScratch would build from `fieldLength`),
   * when the index has them at hand.
   */
  lengthsByField?(): Float64Array[];
  /** Postings of one term. */
  postings(term: string): Postings | undefined;
  /** Terms starting with `prefix` (including `prefix` itself when indexed), without postings, when cheaper than `withPrefix`. */
  prefixTerms?(prefix: string): string[];
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

/** What packing an index (packed.ts) reads from minisearch's state. */
export interface PackSource {
  documentCount: number;
  nextId: number;
  fieldIds: Readonly<Record<string, number>>;
  avgFieldLength: readonly number[];
  /** Short id → document id, live documents only, in short-id order. */
  documentIds: ReadonlyMap<number, unknown>;
  fieldLength: ReadonlyMap<number, number[]>;
  storedFields: ReadonlyMap<number, unknown>;
  /**
   * Every term with its postings, in code-unit order (what `<` and `Array#sort` compare), walked
   * with `pause()` between slices of `sliceMs`.
   */
  sortedTerms(pause: () => Promise<void>, sliceMs: number): AsyncIterable<[string, Postings]>;
}

/**
 * minisearch's state for packing, or undefined without internals. Terms come out sorted without
 * a sort of the whole vocabulary (one sort of 100,000 strings is a stall of its own): a radix
 * tree's children start with distinct characters, so visiting a node's own value first and then
 * its children in order of their fragments walks the terms in order.
 */
export function packSource(ms: MiniSearch<any>): PackSource | undefined {
  const x = internalsOf(ms);
  if (x === undefined) return undefined;
  return {
    documentCount: x._documentCount,
    nextId: x._nextId,
    fieldIds: x._fieldIds,
    avgFieldLength: x._avgFieldLength,
    documentIds: x._documentIds,
    fieldLength: x._fieldLength,
    storedFields: x._storedFields,
    async *sortedTerms(pause, sliceMs) {
      const childrenOf = (node: RadixNode<Postings>): [string, RadixNode<Postings> | Postings][] =>
        [...node.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      const stack: [[string, RadixNode<Postings> | Postings][], number, string][] = [[childrenOf(x._index._tree), 0, '']];
      let sliceStart = performance.now();
      while (stack.length > 0) {
        const top = stack[stack.length - 1]!;
        const [entries, at, prefix] = top;
        if (at >= entries.length) {
          stack.pop();
          continue;
        }
        top[1] = at + 1;
        const [fragment, child] = entries[at]!;
        if (fragment !== '') {
          stack.push([childrenOf(child as RadixNode<Postings>), 0, prefix + fragment]);
          continue;
        }
        yield [prefix, child as Postings];
        // The clock is read after every term: a common word has thousands of postings.
        if (performance.now() - sliceStart >= sliceMs) {
          await pause();
          sliceStart = performance.now();
        }
      }
    },
  };
}
