/**
 * BM25+ scoring over a minisearch index's postings with minisearch's own formula, parameters,
 * prefix/fuzzy weights, field boosts and combination rules (OR sums, AND intersects, the score
 * is multiplied by the number of query terms a document matched), but with per-document state in
 * reusable typed arrays and only the best `want` documents kept: no result object per match, no
 * sort of every match. tests/search/scorer.test.ts checks it against `MiniSearch#search`.
 * One deliberate difference: postings of discarded documents never count (see below).
 */
import type { Postings, ScoringView } from './internals.js';

/** minisearch's default BM25+ parameters (term saturation k, length normalization b, floor d). */
const BM25 = { k: 1.2, b: 0.7, d: 0.5 } as const;
/** minisearch's default weights of a prefix and a fuzzy match relative to an exact one. */
const PREFIX_WEIGHT = 0.375;
const FUZZY_WEIGHT = 0.45;
/** Query terms per query at most (one bit each in the per-document match mask). */
const MAX_TERMS = 32;

/** What to score. */
export interface ScoreQuery {
  /** Normalized query terms, at most 32, no duplicates. */
  terms: readonly string[];
  /** Every term must match (else any). */
  and: boolean;
  /** Also match indexed words that extend a term. */
  prefix: boolean;
  /** Fuzziness: fraction of the term's length (< 1) or edit distance (≥ 1); false for none. */
  fuzzy: number | false;
  /** Cap of a fractional fuzziness, in edits. */
  maxFuzzy: number;
  /** Terms shorter than this are matched exactly even with prefix or fuzzy. */
  minExpanded: number;
  /** Most extensions of one term used with prefix (the shortest ones). */
  maxPrefixExpansions: number;
  /** Field name → boost, for the fields searched. */
  boosts: Readonly<Record<string, number>>;
  /** Keeps a document or not, from its stored fields. */
  keep?: (stored: Record<string, unknown>) => boolean;
  /** How many of the best documents to return. */
  want: number;
}

/** One of the best documents. */
export interface ScoredDoc {
  /** minisearch's short document id. */
  shortId: number;
  score: number;
  /** Indexed words of the document that matched (exact, prefix or fuzzy), in match order. */
  terms: string[];
  /** The document's stored fields. */
  stored: Record<string, unknown>;
}

/** Per-index buffers reused across queries (one query at a time: scoring is synchronous). */
export class ScoreScratch {
  #acc = new Float64Array(0);
  #mask = new Uint32Array(0);
  #touched = new Int32Array(0);

  #lengths: Float64Array[] = [];
  #lengthsKey = '';

  /**
   * Field lengths by field id then short id, rebuilt when documents were added or discarded
   * since the last query: an array read per posting instead of a Map lookup.
   */
  fieldLengths(view: ScoringView): Float64Array[] {
    if (view.lengthsByField !== undefined) return view.lengthsByField();
    const key = `${view.nextId}:${view.documentCount}`;
    if (key !== this.#lengthsKey) {
      const fieldCount = Object.keys(view.fieldIds).length;
      const lengths = Array.from({ length: fieldCount }, () => new Float64Array(view.nextId));
      view.fieldLength.forEach((perField, doc) => {
        for (let f = 0; f < fieldCount; f++) lengths[f]![doc] = perField[f] ?? 0;
      });
      this.#lengths = lengths;
      this.#lengthsKey = key;
    }
    return this.#lengths;
  }

  /** Buffers for short ids below `size`, zeroed. */
  take(size: number): { acc: Float64Array; mask: Uint32Array; touched: Int32Array } {
    if (this.#acc.length < size) {
      const n = Math.max(size, this.#acc.length * 2, 64);
      this.#acc = new Float64Array(n);
      this.#mask = new Uint32Array(n);
      this.#touched = new Int32Array(n);
    }
    return { acc: this.#acc, mask: this.#mask, touched: this.#touched };
  }
}

/** One indexed word a query term stands for, and how much a match on it counts. */
interface Derived {
  term: string;
  weight: number;
  postings: Postings;
  /** Index of the query term it derives from. */
  source: number;
}

/** BM25+ inverse document frequency of a term found in `matching` of `total` documents. */
function idf(matching: number, total: number): number {
  return Math.log(1 + (total - matching + 0.5) / (matching + 0.5));
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/** The indexed words each query term stands for: itself, its extensions (prefix), its neighbours (fuzzy). */
function derive(view: ScoringView, q: ScoreQuery): Derived[] {
  const out: Derived[] = [];
  q.terms.forEach((term, source) => {
    const exact = view.postings(term);
    if (exact !== undefined) out.push({ term, weight: 1, postings: exact, source });
    if (term.length < q.minExpanded) return;
    let extended: Set<string> | undefined;
    if (q.prefix) {
      let found: [string, Postings][] = [];
      if (view.prefixTerms !== undefined) {
        // Words first, postings only for the ones kept (a packed index decodes postings on demand).
        let words = view.prefixTerms(term).filter((w) => w.length > term.length);
        if (words.length > q.maxPrefixExpansions) {
          words.sort((a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
          words = words.slice(0, q.maxPrefixExpansions);
        }
        for (const w of words) found.push([w, view.postings(w)!]);
      } else {
        for (const [word, postings] of view.withPrefix(term)) if (word.length > term.length) found.push([word, postings]);
      }
      if (found.length > q.maxPrefixExpansions) {
        found.sort(([a], [b]) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
        found = found.slice(0, q.maxPrefixExpansions);
      }
      extended = new Set();
      for (const [word, postings] of found) {
        const distance = word.length - term.length;
        // minisearch's weighting: approaches 0 as the extension grows, slower than fuzzy's.
        out.push({ term: word, weight: (PREFIX_WEIGHT * word.length) / (word.length + 0.3 * distance), postings, source });
        extended.add(word);
      }
    }
    if (q.fuzzy !== false) {
      const maxDistance = q.fuzzy < 1 ? Math.min(q.maxFuzzy, Math.round(term.length * q.fuzzy)) : q.fuzzy;
      if (maxDistance > 0) {
        for (const [word, [postings, distance]] of view.fuzzy(term, maxDistance)) {
          // The exact word was scored above; a prefix extension counts as a prefix match only.
          if (distance === 0 || extended?.has(word)) continue;
          out.push({ term: word, weight: (FUZZY_WEIGHT * word.length) / (word.length + distance), postings, source });
        }
      }
    }
  });
  return out;
}

/** `a` ranks before `b`: higher score, then lower short id (earlier indexed). */
function before(scoreA: number, idA: number, scoreB: number, idB: number): boolean {
  return scoreA > scoreB || (scoreA === scoreB && idA < idB);
}

/**
 * Scores every document matching `q` and returns how many there are and the best `q.want`,
 * best first. Scores equal `MiniSearch#search`'s for the same query and options.
 */
export function scoreQuery(view: ScoringView, q: ScoreQuery, scratch: ScoreScratch): { total: number; top: ScoredDoc[] } {
  if (q.terms.length === 0) return { total: 0, top: [] };
  if (q.terms.length > MAX_TERMS) throw new RangeError(`at most ${MAX_TERMS} query terms, got ${q.terms.length}`);
  const derived = derive(view, q);
  const { acc, mask, touched } = scratch.take(view.nextId);
  const documentIds = view.documentIds;
  const fieldLengths = scratch.fieldLengths(view);
  const total = view.documentCount;
  const dirty = view.dirtCount > 0;
  const fields = Object.entries(q.boosts).map(([name, boost]) => ({ id: view.fieldIds[name], boost }));
  let touchedCount = 0;

  for (const d of derived) {
    const bit = 1 << d.source;
    for (const { id: fieldId, boost } of fields) {
      if (fieldId === undefined) continue;
      const freqs = d.postings.get(fieldId);
      if (freqs === undefined) continue;
      // Postings of discarded documents (awaiting vacuum) are skipped and not counted: scores
      // are those of the vacuumed index. (minisearch's own search counts them until it meets
      // and deletes them, so its scores depend on the order documents are visited in.)
      let matching = freqs.size;
      if (dirty) for (const doc of freqs.keys()) if (!documentIds.has(doc)) matching--;
      // BM25+ as minisearch computes it, with the per-term factors hoisted out of the loop:
      // idf · (d + tf·(k+1) / (tf + k·(1 − b + b·len/avg))).
      const scale = d.weight * boost * idf(matching, total);
      const lengthFactor = (BM25.k * BM25.b) / view.avgFieldLength[fieldId]!;
      const lengthBase = BM25.k * (1 - BM25.b);
      const lengths = fieldLengths[fieldId]!;
      for (const [doc, termFreq] of freqs) {
        if (dirty && !documentIds.has(doc)) continue;
        const fieldLength = lengths[doc]!;
        if (mask[doc] === 0) touched[touchedCount++] = doc;
        acc[doc] = acc[doc]! + scale * (BM25.d + (termFreq * (BM25.k + 1)) / (termFreq + lengthBase + lengthFactor * fieldLength));
        mask[doc] = mask[doc]! | bit;
      }
    }
  }

  // Best `want` in a min-heap (root = the worst kept), parallel arrays; never more slots than
  // matching documents, however deep a page was asked for.
  const want = Math.max(0, Math.min(q.want, touchedCount));
  const heapIds = new Int32Array(want);
  const heapScores = new Float64Array(want);
  let heapSize = 0;
  const full = q.terms.length === 32 ? 0xffffffff : (1 << q.terms.length) - 1;
  let matched = 0;
  for (let i = 0; i < touchedCount; i++) {
    const doc = touched[i]!;
    const m = mask[doc]!;
    const raw = acc[doc]!;
    acc[doc] = 0;
    mask[doc] = 0;
    if (q.and && m >>> 0 !== full >>> 0) continue;
    if (q.keep !== undefined && !q.keep((view.storedFields.get(doc) ?? {}) as Record<string, unknown>)) continue;
    matched++;
    if (want === 0) continue;
    const score = raw * popcount(m);
    if (heapSize < want) {
      let at = heapSize++;
      while (at > 0) {
        const parent = (at - 1) >> 1;
        if (!before(heapScores[parent]!, heapIds[parent]!, score, doc)) break;
        heapScores[at] = heapScores[parent]!;
        heapIds[at] = heapIds[parent]!;
        at = parent;
      }
      heapScores[at] = score;
      heapIds[at] = doc;
    } else if (before(score, doc, heapScores[0]!, heapIds[0]!)) {
      let at = 0;
      for (;;) {
        const l = 2 * at + 1;
        if (l >= heapSize) break;
        const r = l + 1;
        const worse = r < heapSize && before(heapScores[l]!, heapIds[l]!, heapScores[r]!, heapIds[r]!) ? r : l;
        if (!before(score, doc, heapScores[worse]!, heapIds[worse]!)) break;
        heapScores[at] = heapScores[worse]!;
        heapIds[at] = heapIds[worse]!;
        at = worse;
      }
      heapScores[at] = score;
      heapIds[at] = doc;
    }
  }

  const order = Array.from({ length: heapSize }, (_, i) => i).sort((a, b) =>
    before(heapScores[a]!, heapIds[a]!, heapScores[b]!, heapIds[b]!) ? -1 : 1,
  );
  const top = order.map((i): ScoredDoc => {
    const shortId = heapIds[i]!;
    const terms: string[] = [];
    for (const d of derived) {
      if (terms.includes(d.term)) continue;
      for (const { id: fieldId } of fields) {
        if (fieldId !== undefined && d.postings.get(fieldId)?.has(shortId)) {
          terms.push(d.term);
          break;
        }
      }
    }
    return { shortId, score: heapScores[i]!, terms, stored: (view.storedFields.get(shortId) ?? {}) as Record<string, unknown> };
  });
  return { total: matched, top };
}
