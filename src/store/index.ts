/**
 * The store layer's public API: the run directory layout and every write to it.
 * See run-store.ts for the layout, lease.ts for ownership, journal.ts for events.jsonl.
 */
export * from './types.js';
export { StoreError, isStoreError, errnoCode, quote, isRetryableCode, type StoreErrorCode, type StoreErrorOptions } from './errors.js';
export {
  ID_PATTERN,
  FILE_NAME_PATTERN,
  MAX_FILE_NAME_LENGTH,
  isId,
  isFileName,
  assertId,
  assertFileName,
  newRunId,
  newToken,
} from './ids.js';
export { DEFAULT_STORE_DIR, STORE_ENV, resolveStoreRoot, safeJoin, safeJoinReal, SafeRoot, isInside, type StoreRootOptions } from './paths.js';
export {
  DEFAULT_MAX_JSON_BYTES,
  writeJsonAtomic,
  writeTextAtomic,
  writeChunksAtomic,
  syncDir,
  readJsonFile,
  readTextFile,
  readBytesFile,
  type WriteJsonOptions,
  type WriteTextOptions,
  type ReadJsonOptions,
} from './atomic.js';
export {
  Journal,
  readEvents,
  readJournal,
  parseEventLine,
  DEFAULT_MAX_LINE_BYTES,
  type NewRunEvent,
  type JournalSync,
  type JournalOptions,
  type JournalContents,
  type CorruptLine,
  type ReadJournalOptions,
} from './journal.js';
export {
  LEASE_FILE,
  DEFAULT_LEASE_TTL_MS,
  Lease,
  acquireLease,
  readLease,
  leaseState,
  describeLease,
  processAlive,
  type LeaseOptions,
  type LeaseState,
} from './lease.js';
export { AtomicJsonFile, type AtomicJsonFileOptions } from './lowdb-adapter.js';
export {
  RunStore,
  RUN_FILE,
  EVENTS_FILE,
  AGENTS_DIR,
  INPUTS_DIR,
  CONTROL_FILE,
  INDEX_FILE,
  MAX_ATTEMPT,
  AGENT_FILE_PATTERN,
  agentFileName,
  parseAgentFileName,
  compareAgentRecords,
  type AgentFileParts,
  type RunStoreOptions,
  type RunListEntry,
  type UnreadableAgentFile,
} from './run-store.js';
export {
  OUTPUT_INLINE_MAX_BYTES,
  OUTPUT_HEAD_BYTES,
  OUTPUT_FILE_EXT,
  outputFileName,
  utf8Head,
  utf8Length,
} from './agent-output.js';
export {
  emptyCounts,
  countTasks,
  fullCounts,
  endedCount,
  isFailedCheck,
  taskStateOf,
  describeCounts,
  COUNT_WORDS,
  type TaskState,
} from './counts.js';
