/**
 * Querying one or many run indexes: validation of the query and its options, filters, merging
 * of per-run results by score, paging, and hits with snippets and refs.
 */
import { AGENT_STATUSES, type AgentStatus } from '../store/types.js';
import { MAX_TERM_LENGTH, queryTerms } from './analyze.js';
import { SearchError } from './errors.js';
import type { RankedTask, RunIndex, TermQuery } from './run-index.js';
import { buildSnippet } from './snippet.js';

/** Hits per page when `limit` is not given. */
export const DEFAULT_LIMIT = 10;
/** Largest `limit`. */
export const MAX_LIMIT = 50;
/** Longest query string, in characters. */
export const MAX_QUERY_CHARS = 1_000;
/** Most searchable terms in one query (each term is one walk of the term tree, more with fuzzy). */
export const MAX_QUERY_TERMS = 32;
/** Largest integer edit distance for `fuzzy` (and the cap of a fractional one). */
export const MAX_FUZZY_DISTANCE = 3;

const STATUSES: readonly AgentStatus[] = AGENT_STATUSES;

/** Options of `search` (and `searchStore`). */
export interface QueryOptions {
  /** Only this run. */
  runId?: string;
  /** Only tasks of this phase. */
  phaseId?: string;
  /** Only tasks whose indexed (latest) attempt has this status, or one of these. */
  status?: AgentStatus | AgentStatus[];
  /**
   * Let each query term (3+ chars) also match words it begins: `inj` → `injection` (at most the
   * 500 shortest such words of each run, weighted below an exact match, less the longer they are).
   */
  prefix?: boolean;
  /**
   * Let query terms (3+ chars) match words within an edit distance: `true` (20% of the term's
   * length), a fraction in (0, 1), or an integer distance 1–3.
   */
  fuzzy?: boolean | number;
  /** `or` (default): any term may match, more matches rank higher. `and`: every term must match. */
  combineWith?: 'or' | 'and';
  /** Hits per page, 1–50 (default 10). */
  limit?: number;
  /** Hits to skip (default 0). */
  offset?: number;
}

/** One search hit: which agent output matched, how well, and a snippet of it. */
export interface Hit {
  runId: string;
  phaseId: string;
  taskId: string;
  /** Attempt whose output is indexed (the task's latest). */
  attempt: number;
  status: AgentStatus;
  /** BM25+ score; comparable within a run, approximate across runs (see `search`). */
  score: number;
  /** ≤ 300 characters around the densest cluster of matches, matches marked `**like this**`. */
  snippet: string;
  /** `<runId>/<phaseId>/<taskId>`: pass to `readRef` for the whole output. */
  ref: string;
  /** Set when the output is longer than what search covers: only its first `indexedBytes` bytes were searched. */
  indexedBytes?: number;
}

/** One page of hits. */
export interface SearchPage {
  hits: Hit[];
  /** Number of matching tasks across all searched runs (all pages). */
  total: number;
}

/** A validated query, ready to run on any number of indexes. */
export interface PreparedQuery {
  /** The query text as given. */
  text: string;
  /** Its searchable terms. */
  terms: string[];
  limit: number;
  offset: number;
  runId: string | undefined;
  /** What each run index is asked. */
  termQuery: TermQuery;
}

function expected(name: string, what: string, got: unknown): SearchError {
  return new SearchError('bad_option', `expected \`${name}\` to be ${what}, got \`${JSON.stringify(got) ?? String(got)}\``);
}

function checkInt(name: string, value: unknown, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw expected(name, max === Number.MAX_SAFE_INTEGER ? `an integer ≥ ${min}` : `an integer ${min}–${max}`, value);
  }
  return value;
}

function checkFuzzy(value: unknown): number | false {
  if (value === undefined || value === false || value === 0) return false;
  if (value === true) return 0.2;
  if (typeof value === 'number' && ((value > 0 && value < 1) || (Number.isInteger(value) && value >= 1 && value <= MAX_FUZZY_DISTANCE))) {
    return value;
  }
  throw expected('fuzzy', `a boolean, a fraction in (0, 1) or an edit distance 1–${MAX_FUZZY_DISTANCE}`, value);
}

function checkStatus(value: unknown): Set<AgentStatus> | undefined {
  if (value === undefined) return undefined;
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0 || !list.every((s) => STATUSES.includes(s as AgentStatus))) {
    throw expected('status', `one of ${STATUSES.join(', ')} (or a non-empty list of them)`, value);
  }
  return new Set(list as AgentStatus[]);
}

function checkOptionalString(name: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0) throw expected(name, 'a non-empty string', value);
  return value;
}

/**
 * Validates a query and its options and turns them into minisearch options. Throws a
 * SearchError (`bad_query` / `bad_option`) that says what was expected and what arrived.
 */
export function prepareQuery(query: string, opts: QueryOptions = {}): PreparedQuery {
  if (typeof query !== 'string' || query.trim().length === 0) {
    throw new SearchError('bad_query', `expected a non-empty query, got ${JSON.stringify(query) ?? String(query)}`);
  }
  if (query.length > MAX_QUERY_CHARS) {
    throw new SearchError('bad_query', `expected a query of at most ${MAX_QUERY_CHARS} characters, got ${query.length}`);
  }
  const terms = queryTerms(query);
  if (terms.length === 0) {
    throw new SearchError(
      'bad_query',
      `query ${JSON.stringify(query)} has no searchable terms (punctuation, common words like "the" and words over ${MAX_TERM_LENGTH} characters are ignored)`,
    );
  }
  if (terms.length > MAX_QUERY_TERMS) {
    throw new SearchError('bad_query', `expected at most ${MAX_QUERY_TERMS} distinct terms in a query, got ${terms.length}`);
  }
  const limit = checkInt('limit', opts.limit, 1, MAX_LIMIT, DEFAULT_LIMIT);
  const offset = checkInt('offset', opts.offset, 0, Number.MAX_SAFE_INTEGER, 0);
  const fuzzy = checkFuzzy(opts.fuzzy);
  const statuses = checkStatus(opts.status);
  const phaseId = checkOptionalString('phaseId', opts.phaseId);
  const runId = checkOptionalString('runId', opts.runId);
  if (opts.prefix !== undefined && typeof opts.prefix !== 'boolean') throw expected('prefix', 'a boolean', opts.prefix);
  const combineWith = opts.combineWith ?? 'or';
  if (combineWith !== 'or' && combineWith !== 'and') throw expected('combineWith', '"or" or "and"', opts.combineWith);

  // Expanding 1–2 letter terms (prefix or fuzzy) matches a large part of the vocabulary: slow
  // and useless; RunIndex.query leaves terms shorter than 3 characters exact.
  const termQuery: TermQuery = {
    terms,
    combineWith: combineWith === 'and' ? 'AND' : 'OR',
    prefix: opts.prefix === true,
    fuzzy,
    maxFuzzy: MAX_FUZZY_DISTANCE,
  };
  if (statuses !== undefined || phaseId !== undefined) {
    termQuery.filter = (task) => (phaseId === undefined || task.phaseId === phaseId) && (statuses === undefined || statuses.has(task.status));
  }
  return { text: query, terms, limit, offset, runId, termQuery };
}

/**
 * Searches the given run indexes (BM25+ over each task's latest output, prompt, phase title and
 * ids) and returns one page of hits, best first, with `total` over all pages.
 *
 * Results of different runs are merged by score. Each run has its own index and so its own
 * document frequencies (IDF) and average lengths: a term rare in one run and common in another
 * scores differently in each, so cross-run order is approximate — good for "where was this
 * discussed", not a calibrated ranking. Ties break by run id, then by index order, so paging is stable.
 */
export function search(indexes: readonly RunIndex[], query: string, opts: QueryOptions = {}): SearchPage {
  return runPrepared(indexes, prepareQuery(query, opts));
}

/** One run's best matches for a query (see `queryRun`), ready to merge with other runs'. */
export interface RunMatches {
  runId: string;
  /** Matching tasks in the run (all pages). */
  total: number;
  /** The run's best `offset + limit` tasks, best first. */
  results: RankedTask[];
}

/**
 * Runs a validated query on one run's index and keeps only what a page can need from it, so a
 * caller searching many runs can let go of each index as soon as it was queried (memory bounded
 * by the index cache, not by the number of runs).
 */
export function queryRun(index: RunIndex, prepared: PreparedQuery): RunMatches {
  const { total, top } = index.query(prepared.termQuery, prepared.offset + prepared.limit);
  return { runId: index.runId, total, results: top };
}

/** Runs an already validated query (see `prepareQuery`) on the given indexes. */
export function runPrepared(indexes: readonly RunIndex[], prepared: PreparedQuery): SearchPage {
  const seen = new Set<string>();
  const matches: RunMatches[] = [];
  for (const index of indexes) {
    if (prepared.runId !== undefined && index.runId !== prepared.runId) continue;
    if (seen.has(index.runId)) continue; // the same run passed twice counts once
    seen.add(index.runId);
    // Each run ranks its own best `offset + limit`: the page cannot need more from any one run.
    matches.push(queryRun(index, prepared));
  }
  return mergeMatches(matches, prepared);
}

/** A task picked for a page (see `pickPage`), before its snippet is made. */
export interface PickedTask {
  runId: string;
  task: RankedTask;
}

/** Merges per-run matches (see `queryRun`) into the tasks of one page, best first. */
export function pickPage(matches: readonly RunMatches[], prepared: PreparedQuery): { picked: PickedTask[]; total: number } {
  const lists: { runId: string; results: RankedTask[]; at: number }[] = [];
  const want = prepared.offset + prepared.limit;
  let total = 0;
  for (const m of matches) {
    total += m.total;
    if (m.results.length > 0) lists.push({ runId: m.runId, results: m.results, at: 0 });
  }
  lists.sort((a, b) => (a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0));

  // k-way merge of the per-run lists (each sorted best first), only as far as the page needs.
  const end = Math.min(total, want);
  const picked: PickedTask[] = [];
  for (let rank = 0; rank < end; rank++) {
    let best: (typeof lists)[number] | undefined;
    for (const list of lists) {
      const head = list.results[list.at];
      if (head !== undefined && (best === undefined || head.score > best.results[best.at]!.score)) best = list;
    }
    if (best === undefined) break;
    const r = best.results[best.at++]!;
    if (rank < prepared.offset) continue;
    picked.push({ runId: best.runId, task: r });
  }
  return { picked, total };
}

/** The hit of a picked task, its snippet made from `text` (the task's indexed output text). */
export function toHit({ runId, task: r }: PickedTask, text: string): Hit {
  return {
    runId,
    phaseId: r.phaseId,
    taskId: r.taskId,
    attempt: r.attempt,
    status: r.status,
    score: Math.round(r.score * 1000) / 1000,
    snippet: buildSnippet(text, r.terms),
    ref: `${runId}/${r.phaseId}/${r.taskId}`,
    ...(typeof r.indexedBytes === 'number' ? { indexedBytes: r.indexedBytes } : {}),
  };
}

/**
 * Merges per-run matches (see `queryRun`) into one page, best first. Snippets are made from the
 * texts the indexes keep in memory (`keepTexts`); a hit whose text is not at hand has an empty
 * snippet (`searchStore` reads those from the agent records).
 */
export function mergeMatches(matches: readonly RunMatches[], prepared: PreparedQuery): SearchPage {
  const { picked, total } = pickPage(matches, prepared);
  return { hits: picked.map((p) => toHit(p, p.task.text ?? '')), total };
}
