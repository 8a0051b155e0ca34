/**
 * The packed form of a run index: what index.json holds and what a reader searches without ever
 * building minisearch's structures.
 *
 * Why: minisearch's own JSON spells every posting as an object key (`{"123": 2}`), and loading it
 * builds a Map per term and field — 10,000 outputs meant a 27 MB file, seconds of CPU and
 * hundreds of MB per reader, most of it for terms no query ever asks for. Packed, the terms are
 * one sorted list and the postings one varint-encoded byte string; a reader decodes only the
 * postings of the terms a query touches. The run's owner, which adds documents, turns a packed
 * index back into a minisearch (`toPlain`) in slices.
 *
 * Postings of term i are bytes [offsets[i], offsets[i+1]) of `postings`: for each field that has
 * the term, varint(field id), varint(n), then n × (varint(doc id − previous doc id), varint(freq)),
 * doc ids ascending. Doc ids are dense, 0…docCount−1, in the order of `refs`.
 */
import type MiniSearch from 'minisearch';
import type { AsPlainObject } from 'minisearch';
import type { AgentStatus } from '../store/types.js';
import type { IndexedTask } from './documents.js';
import { packSource, type Postings, type ScoringView } from './internals.js';

/** A run index in packed form (see the module comment). */
export interface PackedData {
  /** Field names by field id. */
  fields: string[];
  avgFieldLength: number[];
  /** Document (task) refs, `<phaseId>/<taskId>`, by doc id. */
  refs: string[];
  attempts: number[];
  statuses: AgentStatus[];
  /** `indexedBytes` of each document, 0 when its whole output was indexed. */
  indexedBytes: number[];
  /** Length of each field of each document: `fieldLength[doc * fields.length + field]`. */
  fieldLength: Uint32Array;
  /** Indexed terms, sorted by UTF-16 code unit (what `<` compares). */
  terms: string[];
  /** Start of each term's postings in `postings`, and their end (length terms.length + 1). */
  offsets: Uint32Array;
  postings: Uint8Array;
}

/** Decoded postings kept per packed index: repeated queries reuse them. */
const POSTINGS_CACHE = 256;

/** A growable byte buffer of varints. */
class VarintWriter {
  bytes = new Uint8Array(1 << 16);
  length = 0;

  uint(value: number): void {
    if (this.length + 5 > this.bytes.length) {
      const bigger = new Uint8Array(this.bytes.length * 2);
      bigger.set(this.bytes.subarray(0, this.length));
      this.bytes = bigger;
    }
    let v = value >>> 0;
    while (v >= 0x80) {
      this.bytes[this.length++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.bytes[this.length++] = v;
  }
}

function splitRefOf(ref: string): [string, string] {
  const slash = ref.indexOf('/');
  return [ref.slice(0, slash), ref.slice(slash + 1)];
}

/**
 * Packs a minisearch index (live documents only: postings of discarded ones are dropped, doc ids
 * renumbered densely), pausing between slices. The caller must keep the index unchanged until
 * the promise settles. Returns undefined when minisearch's internals are not at hand.
 */
export async function packMiniSearch(ms: MiniSearch<any>, pause: () => Promise<void>, sliceMs: number): Promise<PackedData | undefined> {
  const src = packSource(ms);
  if (src === undefined) return undefined;
  const fields = Object.entries(src.fieldIds).sort(([, a], [, b]) => a - b).map(([name]) => name);
  const fieldCount = fields.length;
  const dense = new Int32Array(src.nextId).fill(-1);
  const refs: string[] = [];
  const attempts: number[] = [];
  const statuses: AgentStatus[] = [];
  const indexedBytes: number[] = [];
  const fieldLength = new Uint32Array(src.documentIds.size * fieldCount);
  let sliceStart = performance.now();
  for (const [shortId, id] of src.documentIds) {
    if ((refs.length & 255) === 255 && performance.now() - sliceStart >= sliceMs) {
      await pause();
      sliceStart = performance.now();
    }
    const doc = refs.length;
    dense[shortId] = doc;
    refs.push(String(id));
    const stored = (src.storedFields.get(shortId) ?? {}) as Partial<IndexedTask>;
    attempts.push(typeof stored.attempt === 'number' ? stored.attempt : 0);
    statuses.push((stored.status ?? 'failed') as AgentStatus);
    indexedBytes.push(typeof stored.indexedBytes === 'number' ? stored.indexedBytes : 0);
    const lengths = src.fieldLength.get(shortId) ?? [];
    for (let f = 0; f < fieldCount; f++) fieldLength[doc * fieldCount + f] = lengths[f] ?? 0;
  }
  const terms: string[] = [];
  const offsets: number[] = [];
  const out = new VarintWriter();
  const ids: number[] = [];
  const freqs: number[] = [];
  for await (const [term, postings] of src.sortedTerms(pause, sliceMs)) {
    if (term.includes('\n')) continue; // index.json joins terms with newlines; the analyzer never makes one
    const start = out.length;
    // Fields in id order (toJSON's order too: the file does not depend on which path packed it).
    const byField = postings.size > 1 ? [...postings].sort(([a], [b]) => a - b) : postings;
    for (const [fieldId, docs] of byField) {
      ids.length = 0;
      freqs.length = 0;
      let sorted = true;
      for (const [shortId, freq] of docs) {
        const doc = dense[shortId] ?? -1;
        if (doc < 0) continue; // a discarded document's posting, awaiting a vacuum
        if (ids.length > 0 && doc < ids[ids.length - 1]!) sorted = false;
        ids.push(doc);
        freqs.push(freq);
      }
      if (ids.length === 0) continue;
      if (!sorted) {
        const order = ids.map((_, i) => i).sort((a, b) => ids[a]! - ids[b]!);
        const [i2, f2] = [order.map((i) => ids[i]!), order.map((i) => freqs[i]!)];
        ids.splice(0, ids.length, ...i2);
        freqs.splice(0, freqs.length, ...f2);
      }
      out.uint(fieldId);
      out.uint(ids.length);
      let prev = 0;
      for (let i = 0; i < ids.length; i++) {
        out.uint(ids[i]! - prev);
        out.uint(freqs[i]!);
        prev = ids[i]!;
      }
    }
    if (out.length === start) continue; // only discarded documents had it
    terms.push(term);
    offsets.push(start);
  }
  offsets.push(out.length);
  return {
    fields,
    avgFieldLength: [...src.avgFieldLength],
    refs,
    attempts,
    statuses,
    indexedBytes,
    fieldLength,
    terms,
    offsets: Uint32Array.from(offsets),
    postings: out.bytes.slice(0, out.length),
  };
}

/**
 * Packs minisearch's JSON (`MiniSearch#toJSON()`): the slow path of a save when minisearch's
 * internals are not at hand (one synchronous step).
 */
export function packPlain(plain: AsPlainObject): PackedData {
  const fields = Object.entries(plain.fieldIds).sort(([, a], [, b]) => a - b).map(([name]) => name);
  const fieldCount = fields.length;
  const dense = new Map<number, number>();
  const refs: string[] = [];
  const attempts: number[] = [];
  const statuses: AgentStatus[] = [];
  const indexedBytes: number[] = [];
  const shortIds = Object.keys(plain.documentIds).map(Number).sort((a, b) => a - b);
  const fieldLength = new Uint32Array(shortIds.length * fieldCount);
  for (const shortId of shortIds) {
    const doc = refs.length;
    dense.set(shortId, doc);
    refs.push(String(plain.documentIds[shortId]));
    const stored = (plain.storedFields[shortId] ?? {}) as Partial<IndexedTask>;
    attempts.push(typeof stored.attempt === 'number' ? stored.attempt : 0);
    statuses.push((stored.status ?? 'failed') as AgentStatus);
    indexedBytes.push(typeof stored.indexedBytes === 'number' ? stored.indexedBytes : 0);
    const lengths = plain.fieldLength[shortId] ?? [];
    for (let f = 0; f < fieldCount; f++) fieldLength[doc * fieldCount + f] = lengths[f] ?? 0;
  }
  const entries = [...plain.index].filter(([term]) => !term.includes('\n')).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const terms: string[] = [];
  const offsets: number[] = [];
  const out = new VarintWriter();
  for (const [term, byField] of entries) {
    const start = out.length;
    for (const [fieldKey, docs] of Object.entries(byField as Record<string, Record<string, number>>)) {
      const list = Object.entries(docs)
        .map(([shortId, freq]) => [dense.get(Number(shortId)) ?? -1, freq] as const)
        .filter(([doc]) => doc >= 0)
        .sort((x, y) => x[0] - y[0]);
      if (list.length === 0) continue;
      out.uint(Number(fieldKey));
      out.uint(list.length);
      let prev = 0;
      for (const [doc, freq] of list) {
        out.uint(doc - prev);
        out.uint(freq);
        prev = doc;
      }
    }
    if (out.length === start) continue;
    terms.push(term);
    offsets.push(start);
  }
  offsets.push(out.length);
  return {
    fields,
    avgFieldLength: [...plain.averageFieldLength],
    refs,
    attempts,
    statuses,
    indexedBytes,
    fieldLength,
    terms,
    offsets: Uint32Array.from(offsets),
    postings: out.bytes.slice(0, out.length),
  };
}

/** Index of the first term ≥ `key` in sorted `terms`. */
function lowerBound(terms: readonly string[], key: string, from = 0): number {
  let lo = from;
  let hi = terms.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (terms[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first term at or after `from` that does not start with `prefix` (terms sorted). */
function endOfPrefix(terms: readonly string[], prefix: string, from: number): number {
  let lo = from;
  let hi = terms.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (terms[mid]!.startsWith(prefix)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * A packed index, searchable as it is: postings are decoded per term when a query asks for them
 * (and the last few hundred kept), prefix and fuzzy matching walk the sorted term list.
 */
export class PackedIndex {
  readonly data: PackedData;
  readonly #byRef = new Map<string, number>();
  readonly #cache = new Map<string, Postings>();
  #view: ScoringView | undefined;

  constructor(data: PackedData) {
    this.data = data;
    data.refs.forEach((ref, doc) => this.#byRef.set(ref, doc));
  }

  get documentCount(): number {
    return this.data.refs.length;
  }

  get termCount(): number {
    return this.data.terms.length;
  }

  #approxBytes: number | undefined;

  /** Rough bytes held in memory (terms at ~24 bytes of overhead each, refs at ~80). */
  get approxBytes(): number {
    if (this.#approxBytes === undefined) {
      const d = this.data;
      const termChars = d.offsets.length * 24 + (d.terms.length > 0 ? d.terms.length * 8 : 0);
      this.#approxBytes = d.postings.byteLength + d.offsets.byteLength + d.fieldLength.byteLength + termChars + d.refs.length * 100;
    }
    return this.#approxBytes;
  }

  /** The stored fields of one task (by ref), or undefined. */
  stored(ref: string): IndexedTask | undefined {
    const doc = this.#byRef.get(ref);
    return doc === undefined ? undefined : this.#storedOf(doc);
  }

  #storedOf(doc: number): IndexedTask {
    const d = this.data;
    const [phaseId, taskId] = splitRefOf(d.refs[doc]!);
    const bytes = d.indexedBytes[doc] ?? 0;
    return { phaseId, taskId, attempt: d.attempts[doc]!, status: d.statuses[doc]!, ...(bytes > 0 ? { indexedBytes: bytes } : {}) };
  }

  /** Task ref → indexed attempt, of every document. */
  attempts(): Map<string, number> {
    const out = new Map<string, number>();
    this.data.refs.forEach((ref, doc) => out.set(ref, this.data.attempts[doc]!));
    return out;
  }

  #decode(i: number): Postings {
    const term = this.data.terms[i]!;
    const hit = this.#cache.get(term);
    if (hit !== undefined) return hit;
    const bytes = this.data.postings;
    let at = this.data.offsets[i]!;
    const end = this.data.offsets[i + 1]!;
    const uint = (): number => {
      let value = 0;
      let shift = 0;
      for (;;) {
        const b = bytes[at++]!;
        value += (b & 0x7f) * 2 ** shift;
        if (b < 0x80) return value;
        shift += 7;
      }
    };
    const postings: Postings = new Map();
    while (at < end) {
      const fieldId = uint();
      const n = uint();
      const docs = new Map<number, number>();
      let doc = 0;
      for (let k = 0; k < n; k++) {
        doc += uint();
        docs.set(doc, uint());
      }
      postings.set(fieldId, docs);
    }
    if (this.#cache.size >= POSTINGS_CACHE) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(term, postings);
    return postings;
  }

  #find(term: string): number {
    const i = lowerBound(this.data.terms, term);
    return this.data.terms[i] === term ? i : -1;
  }

  /** lcp[i]: length of the prefix terms[i] shares with terms[i − 1] (capped at 255); made on first use. */
  #lcp: Uint8Array | undefined;

  #commonPrefixes(): Uint8Array {
    if (this.#lcp !== undefined) return this.#lcp;
    const terms = this.data.terms;
    const lcp = new Uint8Array(terms.length);
    for (let i = 1; i < terms.length; i++) {
      const a = terms[i - 1]!;
      const b = terms[i]!;
      const n = Math.min(a.length, b.length, 255);
      let k = 0;
      while (k < n && a.charCodeAt(k) === b.charCodeAt(k)) k++;
      lcp[i] = k;
    }
    return (this.#lcp = lcp);
  }

  /**
   * Terms within `maxDistance` edits (Levenshtein: insert, delete, substitute) of `term`. The
   * sorted list is walked like a trie: the rows of the edit-distance table are kept per depth, a
   * term reuses the rows of the prefix it shares with the previous one (`lcp`), and every term
   * under a prefix whose row is already over the distance is skipped at once.
   */
  #fuzzy(term: string, maxDistance: number): Map<string, [Postings, number]> {
    const terms = this.data.terms;
    const lcp = this.#commonPrefixes();
    const m = term.length;
    const q = Uint16Array.from({ length: m }, (_, j) => term.charCodeAt(j));
    const out = new Map<string, [Postings, number]>();
    const rows: Int32Array[] = [Int32Array.from({ length: m + 1 }, (_, j) => j)];
    let valid = 0; // rows[0..valid] hold the table of the previous term's first `valid` characters
    let i = 0;
    const n = terms.length;
    while (i < n) {
      const w = terms[i]!;
      const depth = Math.min(valid, lcp[i]!);
      let pruned = -1;
      for (let k = depth + 1; k <= w.length; k++) {
        const above = rows[k - 1]!;
        const row = (rows[k] ??= new Int32Array(m + 1));
        row[0] = k;
        let best = k;
        const c = w.charCodeAt(k - 1);
        for (let j = 1; j <= m; j++) {
          let v = above[j - 1]! + (q[j - 1] === c ? 0 : 1);
          const del = above[j]! + 1;
          if (del < v) v = del;
          const ins = row[j - 1]! + 1;
          if (ins < v) v = ins;
          row[j] = v;
          if (v < best) best = v;
        }
        if (best > maxDistance) {
          pruned = k;
          break;
        }
      }
      if (pruned > 0) {
        // No term starting with w[0..pruned) can come within the distance: skip them all (they
        // follow w, each sharing at least `pruned` characters with the one before).
        valid = pruned - 1;
        i++;
        while (i < n && lcp[i]! >= pruned) i++;
        continue;
      }
      valid = w.length;
      const distance = rows[w.length]![m]!;
      if (distance <= maxDistance) out.set(w, [this.#decode(i), distance]);
      i++;
    }
    return out;
  }

  /** The read-only view scorer.ts scores over. */
  view(): ScoringView {
    if (this.#view !== undefined) return this.#view;
    const d = this.data;
    const n = d.refs.length;
    const fieldCount = d.fields.length;
    const fieldIds = Object.fromEntries(d.fields.map((name, id) => [name, id]));
    let documentIds: Map<number, unknown> | undefined;
    let storedFields: Map<number, unknown> | undefined;
    let fieldLength: Map<number, number[]> | undefined;
    let lengths: Float64Array[] | undefined;
    const self = this;
    this.#view = {
      documentCount: n,
      nextId: n,
      dirtCount: 0,
      fieldIds,
      avgFieldLength: d.avgFieldLength,
      get documentIds() {
        return (documentIds ??= new Map(d.refs.map((ref, doc) => [doc, ref])));
      },
      get storedFields() {
        // Built per document on demand: a query reads the stored fields of its hits only.
        return (storedFields ??= lazyStored(n, (doc) => self.#storedOf(doc)));
      },
      get fieldLength() {
        return (fieldLength ??= new Map(
          Array.from({ length: n }, (_, doc) => [doc, Array.from(d.fieldLength.subarray(doc * fieldCount, (doc + 1) * fieldCount))]),
        ));
      },
      lengthsByField: () => {
        if (lengths === undefined) {
          lengths = Array.from({ length: fieldCount }, () => new Float64Array(n));
          for (let doc = 0; doc < n; doc++) for (let f = 0; f < fieldCount; f++) lengths[f]![doc] = d.fieldLength[doc * fieldCount + f]!;
        }
        return lengths;
      },
      postings: (term) => {
        const i = this.#find(term);
        return i < 0 ? undefined : this.#decode(i);
      },
      prefixTerms: (prefix) => {
        const from = lowerBound(d.terms, prefix);
        return d.terms.slice(from, endOfPrefix(d.terms, prefix, from));
      },
      withPrefix: function* (prefix) {
        const from = lowerBound(d.terms, prefix);
        const to = endOfPrefix(d.terms, prefix, from);
        for (let i = from; i < to; i++) yield [d.terms[i]!, self.#decode(i)] as [string, Postings];
      },
      fuzzy: (term, maxDistance) => this.#fuzzy(term, maxDistance),
    };
    return this.#view;
  }

  /**
   * minisearch's JSON of this index (`MiniSearch.loadJSAsync` takes it), built with `pause()`
   * between slices: how an owner that resumes a run gets an index it can add to.
   */
  /** `toPlain` in one go (a stall proportional to the index). */
  toPlainSync(): AsPlainObject {
    const steps = this.#plainSteps();
    for (;;) {
      const step = steps.next();
      if (step.done === true) return step.value;
    }
  }

  /**
   * minisearch's JSON of this index (`MiniSearch.loadJSAsync` takes it), built with `pause()`
   * between slices of `sliceMs`: how an owner that resumes a run gets an index it can add to.
   */
  async toPlain(pause: () => Promise<void>, sliceMs: number): Promise<AsPlainObject> {
    const steps = this.#plainSteps();
    let sliceStart = performance.now();
    for (;;) {
      const step = steps.next();
      if (step.done === true) return step.value;
      if (performance.now() - sliceStart >= sliceMs) {
        await pause();
        sliceStart = performance.now();
      }
    }
  }

  /** Builds minisearch's JSON, yielding every 256 terms. */
  *#plainSteps(): Generator<void, AsPlainObject> {
    const d = this.data;
    const fieldCount = d.fields.length;
    const documentIds: Record<string, string> = {};
    const fieldLength: Record<string, number[]> = {};
    const storedFields: Record<string, Record<string, unknown>> = {};
    for (let doc = 0; doc < d.refs.length; doc++) {
      documentIds[doc] = d.refs[doc]!;
      fieldLength[doc] = Array.from(d.fieldLength.subarray(doc * fieldCount, (doc + 1) * fieldCount));
      storedFields[doc] = { ...this.#storedOf(doc) };
      if ((doc & 1023) === 1023) yield;
    }
    const index: [string, Record<string, Record<string, number>>][] = [];
    for (let i = 0; i < d.terms.length; i++) {
      const postings = this.#decodeFresh(i);
      const plain: Record<string, Record<string, number>> = {};
      for (const [fieldId, docs] of postings) plain[fieldId] = Object.fromEntries(docs);
      index.push([d.terms[i]!, plain]);
      if ((i & 255) === 255) yield;
    }
    return {
      documentCount: d.refs.length,
      nextId: d.refs.length,
      documentIds,
      fieldIds: Object.fromEntries(d.fields.map((name, id) => [name, id])),
      fieldLength,
      averageFieldLength: d.avgFieldLength,
      storedFields,
      dirtCount: 0,
      index,
      serializationVersion: 2,
    };
  }

  #decodeFresh(i: number): Postings {
    const cached = this.#cache.get(this.data.terms[i]!);
    if (cached !== undefined) return cached;
    const p = this.#decode(i);
    this.#cache.delete(this.data.terms[i]!); // a walk over every term must not churn the cache
    return p;
  }
}

/** A read-only Map of doc id → stored fields whose values are made when asked for. */
function lazyStored(n: number, make: (doc: number) => IndexedTask): Map<number, unknown> {
  const made = new Map<number, unknown>();
  return new (class extends Map<number, unknown> {
    override get(doc: number): unknown {
      if (!Number.isInteger(doc) || doc < 0 || doc >= n) return undefined;
      let v = made.get(doc);
      if (v === undefined) {
        v = make(doc);
        made.set(doc, v);
      }
      return v;
    }
    override has(doc: number): boolean {
      return Number.isInteger(doc) && doc >= 0 && doc < n;
    }
    override get size(): number {
      return n;
    }
  })();
}
