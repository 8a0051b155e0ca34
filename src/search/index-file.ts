/**
 * The persisted index, `<run dir>/index.json`: a versioned envelope around minisearch's JSON,
 * checked field by field when read (anything off is a reason to rebuild, never an error) and
 * produced in slices so a large index does not block the event loop.
 */
import MiniSearch, { type AsPlainObject } from 'minisearch';
import { writeTextAtomic } from '../store/index.js';
import { SCHEMA_VERSION } from '../store/types.js';
import { ANALYZER_VERSION } from './analyze.js';
import { MINISEARCH_OPTIONS, type IndexDoc } from './documents.js';
import { cacheTermLookups, serializeIndex } from './internals.js';

/** `kind` of a persisted search index envelope. */
export const SEARCH_INDEX_KIND = 'fanfold.search-index';

/** Major version of minisearch whose JSON the envelope holds. */
export const MINISEARCH_FORMAT = '7';

/**
 * Largest index.json read back (the store's default JSON cap is 64 MiB). An index holds the
 * outputs it covers, so a run of 1,000 agents at the 256 KiB output cap needs ~300 MiB; beyond
 * this the file is treated as unusable and the index rebuilt in memory.
 */
export const MAX_INDEX_BYTES = 1024 * 1024 * 1024;

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

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Checks a parsed index.json; returns the loaded index or why it cannot be used. */
export async function loadEnvelope(value: unknown, runId: string): Promise<{ ms: MiniSearch<IndexDoc> } | { reason: string }> {
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

/**
 * The text of `<run dir>/index.json` for `ms`: a versioned envelope around minisearch's JSON.
 * With minisearch's internals at hand it is produced in slices (`pause` between them) and the
 * caller must not change the index until the promise settles; without, by `JSON.stringify` in
 * one go. Returns the text in chunks.
 */
export async function indexFileText(runId: string, ms: MiniSearch<IndexDoc>, pause: () => Promise<void>, sliceMs: number): Promise<string[]> {
  const header = {
    schemaVersion: SCHEMA_VERSION,
    kind: SEARCH_INDEX_KIND,
    minisearch: MINISEARCH_FORMAT,
    analyzer: ANALYZER_VERSION,
    runId,
    docCount: ms.documentCount,
  };
  const head = JSON.stringify(header).slice(0, -1);
  const body = await serializeIndex(ms, pause, sliceMs);
  // Compact JSON: indentation would inflate a large index by a third for no reader's benefit.
  if (body !== undefined) return [head, ',"index":', ...body, '}\n'];
  return [`${JSON.stringify({ ...header, index: ms })}\n`];
}

/** Replaces `file` atomically with the text `indexFileText` produced; `fence` runs right before the rename. */
export async function writeIndexFile(file: string, chunks: readonly string[], fence?: () => void): Promise<void> {
  await writeTextAtomic(file, chunks.join(''), fence ? { fence } : {});
}
