/**
 * search/: BM25+ (minisearch) over every agent output of a store — one index per run, incremental
 * as agents finish, persisted as `<run dir>/index.json`, queryable across runs. See DESIGN.md here.
 */
export { ANALYZER_VERSION, MAX_TERM_LENGTH, indexTerms, queryTerms, tokenize } from './analyze.js';
export { SearchError, type SearchErrorCode } from './errors.js';
export {
  DEFAULT_LIMIT,
  MAX_FUZZY_DISTANCE,
  MAX_LIMIT,
  MAX_QUERY_CHARS,
  MAX_QUERY_TERMS,
  prepareQuery,
  runPrepared,
  queryRun,
  mergeMatches,
  pickPage,
  toHit,
  type PickedTask,
  search,
  type Hit,
  type PreparedQuery,
  type QueryOptions,
  type RunMatches,
  type SearchPage,
} from './query.js';
export { REF_URI_PREFIX, formatRef, parseRef, refToUri, type RefParts } from './ref.js';
export { BOOST, FIELDS, type IndexedTask } from './documents.js';
export { INDEX_FORMAT, INDEX_SCHEMA_VERSION, SEARCH_INDEX_KIND, type SearchIndexEnvelope } from './index-file.js';
export {
  DEFAULT_SAVE_DEBOUNCE_MS,
  MAX_PREFIX_EXPANSIONS,
  MIN_EXPANDED_TERM,
  RunIndex,
  type RankedTask,
  type RunIndexOpenInfo,
  type RunIndexOpenOptions,
  type TermQuery,
} from './run-index.js';
export { SNIPPET_CHARS, buildSnippet, type SnippetOptions } from './snippet.js';
export {
  INDEX_FILE_NAME,
  MAX_CACHED_RUNS,
  MAX_CACHED_BYTES,
  READ_REF_DEFAULT_LIMIT,
  READ_REF_MAX_LIMIT,
  clearSearchCache,
  openStoreRunIndex,
  readRef,
  searchCacheStats,
  searchStore,
  type OpenStoreRunIndexOptions,
  type ReadRefOptions,
  type RefPage,
  type SearchCacheStats,
  type StoreSearchOptions,
  type StoreSearchPage,
} from './store-search.js';
