/**
 * What one indexed document is: the latest attempt of one task, its indexed fields and boosts,
 * the fields stored with it, and the minisearch options that go with them. Changing fields or
 * boosts changes what a persisted index means: bump ANALYZER_VERSION (analyze.ts) with them.
 */
import type { Options } from 'minisearch';
import type { AgentRecord, AgentStatus } from '../store/types.js';
import { OUTPUT_HEAD_BYTES, utf8Head } from '../store/agent-output.js';
import { processIndexTerm, queryTerm, tokenize } from './analyze.js';

/** Fields kept with each document, enough to filter and to build hits. */
export interface IndexedTask {
  phaseId: string;
  taskId: string;
  /** Attempt whose output is indexed (the latest one added). */
  attempt: number;
  status: AgentStatus;
  /** Set when the output was longer: only its first `indexedBytes` UTF-8 bytes are indexed. */
  indexedBytes?: number;
}

/** One indexed document: the latest attempt of one task. */
export interface IndexDoc extends IndexedTask {
  /** `<phaseId>/<taskId>`, unique within a run. */
  id: string;
  /** The indexed text of the attempt's output: at most its first OUTPUT_HEAD_BYTES (see indexedText). */
  output: string;
  prompt: string;
  phaseTitle: string;
}

/** Indexed fields, in minisearch's field-id order. */
export const FIELDS = ['output', 'prompt', 'phaseTitle', 'taskId', 'phaseId'] as const;

/** How much a match in each field counts relative to one in the output. */
export const BOOST: Record<(typeof FIELDS)[number], number> = {
  output: 1,
  // The prompt says what the agent was asked; a match there is weaker evidence than in the answer.
  prompt: 0.6,
  phaseTitle: 0.5,
  // Task ids are chosen names (`cache-lru`, `db-query`): a match is a strong signal.
  taskId: 1.5,
  phaseId: 0.5,
};

/**
 * Fields stored with each document (returned with results, kept in index.json). Not the output:
 * a snippet reads it from the agent record of the hits shown (see store-search.ts), so neither
 * index.json nor a reader's memory grows with the text of every output.
 */
const STORE_FIELDS: (keyof IndexedTask)[] = ['phaseId', 'taskId', 'attempt', 'status', 'indexedBytes'];

/** The minisearch options of every run index (loading an index needs the same ones). */
export const MINISEARCH_OPTIONS: Options<IndexDoc> = {
  idField: 'id',
  fields: [...FIELDS],
  storeFields: STORE_FIELDS,
  tokenize,
  processTerm: processIndexTerm,
  searchOptions: { tokenize, processTerm: queryTerm, boost: BOOST },
  // Vacuuming (cleaning the postings of replaced attempts) runs when RunIndex saves, never on its
  // own: a save walks the term tree in slices and nothing may change it meanwhile.
  autoVacuum: false,
  // minisearch's default logger is console, whose info/debug go to stdout: the JSON-RPC channel
  // of `fanfold serve`. Warnings go to stderr; nothing else is worth printing.
  logger: (level, message) => {
    if (level === 'warn' || level === 'error') process.stderr.write(`fanfold search: ${message}\n`);
  },
};

/** Ref of a task within its run: `<phaseId>/<taskId>`. */
export function taskRef(phaseId: string, taskId: string): string {
  return `${phaseId}/${taskId}`;
}

/** Latest attempt of each task among `records`, by task ref. */
export function latestAttempts(records: readonly AgentRecord[]): Map<string, AgentRecord> {
  const latest = new Map<string, AgentRecord>();
  for (const r of records) {
    const ref = taskRef(r.phaseId, r.taskId);
    const seen = latest.get(ref);
    if (seen === undefined || r.attempt >= seen.attempt) latest.set(ref, r);
  }
  return latest;
}

/**
 * The document of one agent attempt. Only the first OUTPUT_HEAD_BYTES of the output are indexed
 * (the head a record keeps when its output lives beside it): why a bound — one `add` is one
 * synchronous step of the owner's event loop, and every open index holds its documents' text in
 * memory; both must not grow with the largest output an agent may print (64 MiB).
 */
export function toDoc(record: AgentRecord, phaseTitle: string | undefined): IndexDoc {
  const { output, cut } = indexedText(record);
  return {
    id: taskRef(record.phaseId, record.taskId),
    phaseId: record.phaseId,
    taskId: record.taskId,
    attempt: record.attempt,
    status: record.status,
    output,
    ...(cut ? { indexedBytes: Buffer.byteLength(output, 'utf8') } : {}),
    prompt: typeof record.prompt === 'string' ? record.prompt : '',
    phaseTitle: phaseTitle ?? '',
  };
}

/**
 * The part of a record's output that search indexes (and builds snippets from): its first
 * OUTPUT_HEAD_BYTES UTF-8 bytes; `cut` when the output is longer (or lives beside the record).
 */
export function indexedText(record: AgentRecord): { output: string; cut: boolean } {
  const full = typeof record.output === 'string' ? record.output : '';
  const output = full.length > OUTPUT_HEAD_BYTES / 4 ? utf8Head(full, OUTPUT_HEAD_BYTES) : full;
  return { output, cut: output.length < full.length || record.outputFile !== undefined };
}

/** Splits a task ref into phase id and task id. */
export function splitRef(ref: string): [string, string] {
  const slash = ref.indexOf('/');
  return [ref.slice(0, slash), ref.slice(slash + 1)];
}
