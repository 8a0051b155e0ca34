/**
 * The one module that reaches into minisearch's protected members (pinned to minisearch 7.x,
 * whose serialization format the index envelope names). Three things need it, each measured:
 *
 * - `cacheTermLookups`: indexing spent ~60% of its time walking the radix tree per token;
 * - `serializeIndex`: `toJSON()` + `JSON.stringify` of a 10,000-output index blocked the event
 *   loop for seconds per save; walking the structures directly produces the same JSON in slices
 *   between event-loop turns (RunIndex holds changes back meanwhile);
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

/**
 * Writes the index as minisearch 7's JSON (what `JSON.stringify(ms)` produces, up to the order
 * of terms and keys, which loading does not depend on), walking the live structures and calling
 * `pause()` whenever a slice of `sliceMs` has been spent, so a large index never blocks the
 * event loop for long. The caller must keep the index unchanged until the promise settles (no
 * add, discard or vacuum). Returns the text in chunks, or undefined without internals.
 */
export async function serializeIndex(ms: MiniSearch<any>, pause: () => Promise<void>, sliceMs: number): Promise<string[] | undefined> {
  const x = internalsOf(ms);
  if (x === undefined) return undefined;
  // Small pieces are joined into ~64 KiB chunks as they come, so only the chunks outlive a
  // slice: hundreds of thousands of small strings kept to the end made the collector the cost.
  const chunks: string[] = [];
  let parts: string[] = [];
  let size = 0;
  const write = (piece: string): void => {
    parts.push(piece);
    size += piece.length;
    if (size >= 65_536) {
      chunks.push(parts.join(''));
      parts = [];
      size = 0;
    }
  };
  let sliceStart = performance.now();
  let count = 0;
  const maybePause = async (): Promise<void> => {
    if ((++count & 127) === 0 && performance.now() - sliceStart >= sliceMs) {
      await pause();
      sliceStart = performance.now();
    }
  };
  const objectOf = async (map: ReadonlyMap<number, unknown>): Promise<void> => {
    write('{');
    let first = true;
    for (const [key, value] of map) {
      write(`${first ? '' : ','}"${key}":${JSON.stringify(value)}`);
      first = false;
      await maybePause();
    }
    write('}');
  };

  write(
    `{"documentCount":${x._documentCount},"nextId":${x._nextId},"fieldIds":${JSON.stringify(x._fieldIds)},` +
      `"averageFieldLength":${JSON.stringify(x._avgFieldLength)},"dirtCount":${x._dirtCount ?? 0},"serializationVersion":2,"documentIds":`,
  );
  await objectOf(x._documentIds);
  write(',"fieldLength":');
  await objectOf(x._fieldLength);
  write(',"storedFields":');
  await objectOf(x._storedFields);
  write(',"index":[');

  // One term's postings, with forEach: no [key, value] array per posting.
  let firstTerm = true;
  let firstField = true;
  let firstDoc = true;
  const writeDoc = (freq: number, docId: number): void => {
    write(`${firstDoc ? '' : ','}"${docId}":${freq}`);
    firstDoc = false;
  };
  const writeField = (docs: Map<number, number>, fieldId: number): void => {
    write(`${firstField ? '' : ','}"${fieldId}":{`);
    firstField = false;
    firstDoc = true;
    docs.forEach(writeDoc);
    write('}');
  };
  // Depth-first walk of the radix tree's nodes (minisearch's own iterator allocates a path per
  // term), pausable between terms.
  const stack: [Iterator<[string, RadixNode<Postings> | Postings]>, string][] = [[x._index._tree.entries(), '']];
  while (stack.length > 0) {
    const [entries, prefix] = stack[stack.length - 1]!;
    const next = entries.next();
    if (next.done === true) {
      stack.pop();
      continue;
    }
    const [fragment, child] = next.value;
    if (fragment !== '') {
      stack.push([(child as RadixNode<Postings>).entries(), prefix + fragment]);
      continue;
    }
    write(`${firstTerm ? '' : ','}[${JSON.stringify(prefix)},{`);
    firstTerm = false;
    firstField = true;
    (child as Postings).forEach(writeField);
    write('}]');
    await maybePause();
  }
  write(']}');
  chunks.push(parts.join(''));
  return chunks;
}
