/**
 * RunStore: the one writer of a run directory `<root>/<runId>/` and the reader everyone else uses.
 *
 *   run.json       the run record (lowdb over an atomic adapter; only the owner writes)
 *   events.jsonl   the journal (append-only)
 *   agents/        one `<phaseId>.<taskId>.<attempt>.json` per agent attempt (atomic)
 *   inputs/        prompt and context files handed to children
 *   lease.json     the owner (see lease.ts)
 *   control.json   stop requests; the only file a non-owner writes
 *
 * Every path is built with safeJoinReal/SafeRoot from checked ids and names.
 */
import fs from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import os from 'node:os';
import { Readable } from 'node:stream';
import path from 'node:path';
import { Low, type Adapter } from 'lowdb';
import { AGENT_RECORD_VERSION, AGENT_RECORD_VERSIONS, SCHEMA_VERSION, type AgentRecord, type AttemptSummary, type ControlRecord, type RequestRecord, type RunEvent, type RunRecord } from './types.js';
import { StoreError, errnoCode, ioError, isStoreError, quote } from './errors.js';
import { ID_PATTERN, assertFileName, assertId, isId } from './ids.js';
import { SafeRoot, safeJoinReal } from './paths.js';
import { readJsonFile, syncDir, writeJsonAtomic, writeTextAtomic } from './atomic.js';
import { Journal, readEvents, readJournal, type JournalContents, type JournalOptions, type NewRunEvent } from './journal.js';
import { AtomicJsonFile } from './lowdb-adapter.js';
import { acquireLease, type Lease, type LeaseOptions } from './lease.js';
import {
  OUTPUT_HEAD_BYTES,
  OUTPUT_INLINE_MAX_BYTES,
  outputFileName,
  readOutputHead,
  readOutputPage,
  readOutputTail,
  utf8Head,
  utf8Length,
  writeOutputFile,
} from './agent-output.js';
import { isFailedCheck } from './counts.js';

/** File and folder names inside a run directory. */
export const RUN_FILE = 'run.json';
/** The journal. */
export const EVENTS_FILE = 'events.jsonl';
/** Folder of agent records. */
export const AGENTS_DIR = 'agents';
/** Folder of files handed to children. */
export const INPUTS_DIR = 'inputs';
/** Stop requests from any session. */
export const CONTROL_FILE = 'control.json';
/** Requests to the owner besides a stop (checkpoint answers, per-agent actions), one file each. */
export const REQUESTS_DIR = 'requests';
/** The persisted search index (written by search/). */
export const INDEX_FILE = 'index.json';

/** Largest attempt number a file name may carry. */
export const MAX_ATTEMPT = 999_999;

/** `<phaseId>.<taskId>.<attempt>.json`, attempt 1-based without leading zeros. */
export const AGENT_FILE_PATTERN = new RegExp(
  `^(${ID_PATTERN.source.slice(1, -1)})\\.(${ID_PATTERN.source.slice(1, -1)})\\.([1-9][0-9]{0,5})\\.json$`,
);

/** The parts of an agent record file name. */
export interface AgentFileParts {
  phaseId: string;
  taskId: string;
  attempt: number;
}

/** Splits an agent record file name into its parts; undefined when it is not one. */
export function parseAgentFileName(name: string): AgentFileParts | undefined {
  const m = AGENT_FILE_PATTERN.exec(name);
  if (!m) return undefined;
  return { phaseId: m[1]!, taskId: m[2]!, attempt: Number(m[3]) };
}

/** The agent record file name for one attempt; ids and attempt are checked. */
export function agentFileName(phaseId: string, taskId: string, attempt: number): string {
  assertId('phase', phaseId);
  assertId('task', taskId);
  if (!Number.isInteger(attempt) || attempt < 1 || attempt > MAX_ATTEMPT) {
    throw new StoreError('invalid_argument', `expected attempt to be an integer 1–${MAX_ATTEMPT}, got ${quote(attempt)}`);
  }
  return `${phaseId}.${taskId}.${attempt}.json`;
}

/** Orders agent records by phase id, task id, then attempt. */
export function compareAgentRecords(a: AgentFileParts, b: AgentFileParts): number {
  if (a.phaseId !== b.phaseId) return a.phaseId < b.phaseId ? -1 : 1;
  if (a.taskId !== b.taskId) return a.taskId < b.taskId ? -1 : 1;
  return a.attempt - b.attempt;
}

/** Options of RunStore.create/open. */
export interface RunStoreOptions {
  /** Journal options (sync policy, line cap). */
  journal?: JournalOptions;
  /**
   * fsync every whole-file write (run.json, agent records, inputs) before its rename (default
   * true). Off, writes are still atomic and survive a process crash, but a power loss may leave a
   * recently renamed file empty — about a third of the cost of recording an agent on a slow disk.
   */
  fsync?: boolean;
  /**
   * Adapter for run.json. Default: AtomicJsonFile on `<dir>/run.json`. Pass lowdb's `Memory` for an
   * in-memory twin — a choice of the caller, never of NODE_ENV.
   */
  runAdapter?: Adapter<RunRecord>;
}

/** An agent record file that could not be read. */
export interface UnreadableAgentFile {
  /** File name under agents/. */
  file: string;
  /** Why (a StoreError message). */
  error: string;
}

/** One entry of RunStore.listRuns. */
export interface RunListEntry {
  runId: string;
  /** The run record, when readable. */
  run?: RunRecord;
  /** Why the run record could not be read. */
  error?: string;
}

/** How many files are read at once when listing. */
const READ_CONCURRENCY = 16;

/** Runs `fn` over `items` with at most `limit` in flight; results in input order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

function checkRecordVersion(kind: string, v: { schemaVersion?: unknown }): void {
  if (v.schemaVersion !== SCHEMA_VERSION) {
    throw new StoreError('bad_version', `${kind} to write has schemaVersion ${JSON.stringify(v.schemaVersion)}, expected ${SCHEMA_VERSION}`);
  }
}

/** The store of one run. Create with RunStore.create (new run) or RunStore.open (existing run). */
export class RunStore {
  /** The run id (also the directory name). */
  readonly runId: string;
  /** Absolute path of the run directory. */
  readonly dir: string;
  readonly #adapter: Adapter<RunRecord>;
  readonly #journalOpts: JournalOptions;
  readonly #paths: SafeRoot;
  readonly #fsync: boolean;
  readonly #inFlight = new Set<Promise<unknown>>();
  #db: Low<RunRecord> | undefined;
  #runChain: Promise<unknown> = Promise.resolve();
  #journal: Promise<Journal> | undefined;
  #lease: Lease | undefined;
  readonly #fenceOf: Fence;
  #ownsLease = false;
  #closed = false;
  #closing: Promise<void> | undefined;

  private constructor(runId: string, paths: SafeRoot, adapter: Adapter<RunRecord>, opts: RunStoreOptions, fence: Fence) {
    this.runId = runId;
    this.dir = paths.root;
    this.#paths = paths;
    this.#adapter = adapter;
    this.#fenceOf = fence;
    this.#journalOpts = { ...opts.journal, fence: fence.check };
    this.#fsync = opts.fsync ?? true;
  }

  /**
   * Creates the run directory `<root>/<run.runId>/` with agents/ and inputs/, and writes run.json.
   * `root` is created if missing. Throws StoreError 'exists' when the run id is taken (the run
   * directory is made with a non-recursive mkdir, so two creators cannot both succeed),
   * 'invalid_id' for a bad run id, 'bad_version' for a record of another schema version.
   */
  static async create(root: string, run: RunRecord, opts: RunStoreOptions = {}): Promise<RunStore> {
    const runId = assertId('run', run.runId);
    checkRecordVersion('run record', run);
    const absRoot = path.resolve(root);
    try {
      await fs.mkdir(absRoot, { recursive: true });
    } catch (err) {
      throw ioError('creating store root', absRoot, err);
    }
    const dir = await safeJoinReal(absRoot, runId);
    try {
      // Why non-recursive: mkdir of an existing directory fails with EEXIST, which makes "this run
      // id is mine" an atomic decision even with two creators racing.
      await fs.mkdir(dir);
    } catch (err) {
      if (errnoCode(err) === 'EEXIST') throw new StoreError('exists', `run ${quote(runId)} already exists in ${absRoot}`, { cause: err });
      throw ioError('creating run directory', dir, err);
    }
    try {
      await fs.mkdir(path.join(dir, AGENTS_DIR));
      await fs.mkdir(path.join(dir, INPUTS_DIR));
      const paths = await SafeRoot.open(dir);
      const fence = new Fence();
      const adapter = opts.runAdapter ?? new AtomicJsonFile<RunRecord>(await paths.join(RUN_FILE), { ...runFileOpts, fsync: opts.fsync ?? true, fence: fence.check });
      const store = new RunStore(runId, paths, adapter, opts, fence);
      await store.writeRun(run);
      // The run folder is a new name in the store root: sync the root once, as a rename that
      // creates a file syncs its folder (run.json's creation synced the run folder itself).
      if (opts.fsync ?? true) await syncDir(absRoot);
      return store;
    } catch (err) {
      // Why remove: the exclusive mkdir made this directory ours alone; left half-built it would
      // block the run id forever and show up as a broken run.
      await fs.rm(dir, { recursive: true, force: true }).catch(() => {});
      throw ioError('creating run in', dir, err);
    }
  }

  /**
   * Opens an existing run. Throws StoreError 'invalid_id' for a bad id, 'unknown_run' when
   * `<root>/<runId>/` does not exist, 'path_escape' when it is a symlink out of the root. Does not
   * read run.json (readRun does) and takes no lease (acquireLease does).
   */
  static async open(root: string, runId: string, opts: RunStoreOptions = {}): Promise<RunStore> {
    assertId('run', runId);
    const absRoot = path.resolve(root);
    const dir = await safeJoinReal(absRoot, runId);
    try {
      const st = await fs.stat(dir);
      if (!st.isDirectory()) throw new StoreError('unknown_run', `unknown run ${quote(runId)} in ${absRoot}: ${dir} is not a directory`);
    } catch (err) {
      if (err instanceof StoreError) throw err;
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') {
        throw new StoreError('unknown_run', `unknown run ${quote(runId)} in ${absRoot}`, { cause: err });
      }
      throw ioError('opening run', dir, err);
    }
    const paths = await SafeRoot.open(dir);
    const fence = new Fence();
    const adapter = opts.runAdapter ?? new AtomicJsonFile<RunRecord>(await paths.join(RUN_FILE), { ...runFileOpts, fsync: opts.fsync ?? true, fence: fence.check });
    return new RunStore(runId, paths, adapter, opts, fence);
  }

  /**
   * Runs under `root`, newest first by `createdAt` (unreadable ones last, by id). Entries whose
   * names are not run ids (`.plans`, temp files) and non-directories are skipped. A missing root
   * yields [].
   */
  static async listRuns(root: string): Promise<RunListEntry[]> {
    const absRoot = path.resolve(root);
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fs.readdir(absRoot, { withFileTypes: true });
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw ioError('listing runs in', absRoot, err);
    }
    const ids = entries.filter((e) => e.isDirectory() && isId(e.name)).map((e) => e.name);
    const list = await mapLimit(ids, READ_CONCURRENCY, async (runId): Promise<RunListEntry> => {
      try {
        const store = await RunStore.open(absRoot, runId);
        return { runId, run: await store.readRun() };
      } catch (err) {
        return { runId, error: (err as Error).message };
      }
    });
    return list.sort((a, b) => {
      if (a.run && b.run) {
        if (a.run.createdAt !== b.run.createdAt) return a.run.createdAt < b.run.createdAt ? 1 : -1;
      } else if (a.run || b.run) {
        return a.run ? -1 : 1;
      }
      return a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0;
    });
  }

  // ---- ownership ---------------------------------------------------------------------------

  /**
   * Acquires the run's lease (see acquireLease) and fences this store with it: once the lease is
   * lost or released, owner-only writes throw StoreError 'lease_lost'. close() releases it.
   */
  async acquireLease(opts: LeaseOptions = {}): Promise<Lease> {
    this.#assertOpen();
    if (this.#lease && !this.#lease.lost && !this.#lease.released) return this.#lease;
    this.#lease = await acquireLease(this.dir, opts);
    this.#ownsLease = true;
    this.#fenceOf.lease = this.#lease;
    return this.#lease;
  }

  /**
   * Fences owner-only writes with a lease acquired elsewhere (acquireLease on this.dir). The store
   * does not release it on close.
   */
  attachLease(lease: Lease): void {
    if (path.resolve(lease.runDir) !== this.dir) {
      throw new StoreError('invalid_argument', `lease for ${lease.runDir} cannot fence the store of ${this.dir}`);
    }
    this.#lease = lease;
    this.#ownsLease = false;
    this.#fenceOf.lease = lease;
  }

  /**
   * Throws StoreError 'lease_lost' unless this store's lease (if any) is still held on disk. Writers
   * of files in the run folder outside this class (reports, the search index) pass it as the
   * `fence` of their atomic writes; a store without a lease has no fence.
   */
  readonly fence = (): void => this.#fenceOf.check();

  /** The lease fencing this store, if any. */
  get lease(): Lease | undefined {
    return this.#lease;
  }

  // ---- run.json ------------------------------------------------------------------------------

  /**
   * Reads run.json from disk (fresh on every call). Throws StoreError 'corrupt' when it is missing,
   * unparseable or names another run; 'bad_version' for another schema version.
   */
  async readRun(): Promise<RunRecord> {
    const run = await this.#adapter.read();
    if (!run) throw new StoreError('corrupt', `run ${quote(this.runId)} in ${this.dir} has no ${RUN_FILE} (was its creation interrupted?)`);
    if (typeof run !== 'object' || run.runId !== this.runId) {
      throw new StoreError('corrupt', `${RUN_FILE} in ${this.dir} names run ${quote(run?.runId)}, expected ${quote(this.runId)}`);
    }
    return run;
  }

  /** Replaces run.json atomically with `run` (owner only). Serialized with updateRun. */
  writeRun(run: RunRecord): Promise<void> {
    return this.#serialRun(async () => {
      this.#assertLease();
      if (run.runId !== this.runId) {
        throw new StoreError('invalid_argument', `run record for ${quote(run.runId)} cannot be written to run ${quote(this.runId)}`);
      }
      checkRecordVersion('run record', run);
      const copy = structuredClone(run);
      if (this.#db) this.#db.data = copy;
      else this.#db = new Low<RunRecord>(this.#adapter, copy);
      await this.#db.write();
    });
  }

  /**
   * Applies `fn` to the run record and writes it atomically (owner only); returns a copy of the
   * result. `updatedAt` is set to now unless `fn` changed it. The first call reads run.json from
   * disk; later calls work on the in-memory copy, since the owner is the only writer. Calls are
   * serialized, so concurrent updates never lose each other's changes. If the write fails the
   * in-memory copy is reloaded from disk on the next call.
   */
  updateRun(fn: (run: RunRecord) => void): Promise<RunRecord> {
    return this.#serialRun(async () => {
      this.#assertLease();
      if (!this.#db) this.#db = new Low<RunRecord>(this.#adapter, await this.readRun());
      const db = this.#db;
      const before = db.data.updatedAt;
      try {
        fn(db.data);
        if (db.data.updatedAt === before) db.data.updatedAt = new Date().toISOString();
        if (db.data.runId !== this.runId) {
          throw new StoreError('invalid_argument', `updateRun must not change runId (${quote(this.runId)} → ${quote(db.data.runId)})`);
        }
        await db.write();
      } catch (err) {
        // Why drop the cache: fn may have half-mutated it, or the write failed; the disk is the truth.
        this.#db = undefined;
        throw err;
      }
      return structuredClone(db.data);
    });
  }

  #serialRun<R>(job: () => Promise<R>): Promise<R> {
    // Why check here and not only in the job: a write requested before close() must complete, one
    // requested after must fail — whatever the queue looks like.
    try {
      this.#assertWritable();
    } catch (err) {
      return Promise.reject(err);
    }
    const p = this.#runChain.then(job);
    this.#runChain = p.catch(() => {});
    return p;
  }

  // ---- journal -------------------------------------------------------------------------------

  /** Appends one event to events.jsonl (owner only); `t` is filled in when missing. See Journal. */
  appendEvent(event: NewRunEvent | RunEvent): Promise<void> {
    try {
      this.#assertWritable();
    } catch (err) {
      return Promise.reject(err);
    }
    // Queued on the journal before any await, so a close() that follows waits for it.
    return this.#journalOpen().then((journal) => journal.append(event));
  }

  /** fdatasyncs the journal (owner only; a no-op before the first append). */
  async syncEvents(): Promise<void> {
    if (this.#journal) await (await this.#journal).sync();
  }

  /**
   * The journal's events in order, skipping a torn final line; [] before the first append. Throws
   * StoreError 'corrupt' when a line in the middle is damaged (see readJournal for a tolerant read).
   */
  async readEvents(): Promise<RunEvent[]> {
    try {
      return await readEvents(await this.#paths.join(EVENTS_FILE));
    } catch (err) {
      if (isStoreError(err, 'not_found')) return [];
      throw err;
    }
  }

  /** Tolerant journal read: events, corrupt middle lines, torn tail size (see journal.ts). */
  async readJournal(): Promise<JournalContents> {
    try {
      return await readJournal(await this.#paths.join(EVENTS_FILE));
    } catch (err) {
      if (isStoreError(err, 'not_found')) return { events: [], corrupt: [], tornTailBytes: 0 };
      throw err;
    }
  }

  #journalOpen(): Promise<Journal> {
    if (!this.#journal) {
      const p = this.#paths.join(EVENTS_FILE).then((file) => Journal.open(file, this.#journalOpts));
      // Why forget a failed open: the next append should try again rather than replay the failure.
      p.catch(() => {
        if (this.#journal === p) this.#journal = undefined;
      });
      this.#journal = p;
    }
    return this.#journal;
  }

  // ---- agent records -------------------------------------------------------------------------

  /** The agent record file name for one attempt (`map.core.3.json`); ids checked. */
  agentFileName(phaseId: string, taskId: string, attempt: number): string {
    return agentFileName(phaseId, taskId, attempt);
  }

  /** Absolute path of an agent record file (name checked), for handles and messages. */
  async agentPath(file: string): Promise<string> {
    return this.#paths.join(AGENTS_DIR, checkAgentFile(file));
  }

  /**
   * Writes one agent attempt atomically to `agents/<phaseId>.<taskId>.<attempt>.json` (owner only)
   * and returns the file name. Rewriting the same attempt replaces it. The record is written at
   * AGENT_RECORD_VERSION whatever version it arrives with. An output over 1 MiB goes first to
   * `<phaseId>.<taskId>.<attempt>.out` (atomically, encoded in slices) and the record keeps its
   * first 256 KiB (see agent-output.ts); its structured answer, the output's own JSON, is then not
   * copied into the record. Throws StoreError 'invalid_argument' for a record of another run,
   * 'invalid_id' for bad ids.
   */
  writeAgentRecord(rec: AgentRecord): Promise<string> {
    return this.#track(async () => {
      if (rec.runId !== this.runId) {
        throw new StoreError('invalid_argument', `agent record of run ${quote(rec.runId)} cannot be written to run ${quote(this.runId)}`);
      }
      if (!AGENT_RECORD_VERSIONS.includes(rec.schemaVersion)) {
        throw new StoreError('bad_version', `agent record to write has schemaVersion ${JSON.stringify(rec.schemaVersion)}, expected ${AGENT_RECORD_VERSION}`);
      }
      const name = agentFileName(rec.phaseId, rec.taskId, rec.attempt);
      const { outputFile: _f, storedBytes: _b, structuredIn: _s, indexedBytes: _i, ...rest } = rec;
      const output = typeof rec.output === 'string' ? rec.output : '';
      let toWrite: AgentRecord = { ...rest, schemaVersion: AGENT_RECORD_VERSION };
      const bytes = await utf8Length(output, OUTPUT_INLINE_MAX_BYTES);
      if (bytes > OUTPUT_HEAD_BYTES) toWrite.indexedBytes = OUTPUT_HEAD_BYTES;
      if (bytes > OUTPUT_INLINE_MAX_BYTES) {
        this.#assertLease();
        const outName = outputFileName(name);
        await writeOutputFile(await this.#paths.join(AGENTS_DIR, outName), output, { fsync: this.#fsync, fence: this.fence });
        const { structured, ...noStructured } = toWrite;
        toWrite = {
          ...noStructured,
          output: utf8Head(output, OUTPUT_HEAD_BYTES),
          outputFile: outName,
          storedBytes: await utf8Length(output),
          ...(structured !== undefined ? { structuredIn: 'output' as const } : {}),
        };
      }
      // Why check again: encoding a big output yields to the event loop many times, and the lease
      // may have been lost meanwhile; the record is what makes the attempt count.
      this.#assertLease();
      await writeJsonAtomic(await this.#paths.join(AGENTS_DIR, name), toWrite, { fsync: this.#fsync, fence: this.fence });
      return name;
    });
  }

  /**
   * Up to `maxBytes` UTF-8 bytes of an agent's stored output (never a split character), from the
   * record or from its `.out` file, and whether there was more. Bounded memory whatever the size.
   */
  async readAgentOutput(rec: AgentRecord, maxBytes: number): Promise<{ text: string; complete: boolean; storedBytes: number }> {
    if (rec.outputFile === undefined) {
      const output = typeof rec.output === 'string' ? rec.output : '';
      const storedBytes = await utf8Length(output);
      if (storedBytes <= maxBytes) return { text: output, complete: true, storedBytes };
      return { text: utf8Head(output, maxBytes), complete: false, storedBytes };
    }
    const head = await readOutputHead(await this.#outputPath(rec), maxBytes);
    return { text: head.text, complete: !head.more, storedBytes: head.fileBytes };
  }

  /** The last at most `maxBytes` UTF-8 bytes of an agent's stored output (never a split character). */
  async readAgentOutputTail(rec: AgentRecord, maxBytes: number): Promise<string> {
    if (rec.outputFile === undefined) {
      const output = typeof rec.output === 'string' ? rec.output : '';
      const buf = Buffer.from(output.slice(-maxBytes), 'utf8');
      if (buf.length <= maxBytes) return buf.toString('utf8');
      let start = buf.length - maxBytes;
      while (start < buf.length && (buf[start]! & 0xc0) === 0x80) start++;
      return buf.subarray(start).toString('utf8');
    }
    return (await readOutputTail(await this.#outputPath(rec), maxBytes)).text;
  }

  /**
   * Characters [offset, offset + limit) of an agent's stored output (UTF-16 offsets, as
   * String#slice counts them) and the whole output's length in characters; reads an `.out` file
   * as a stream, holding only the page.
   */
  async readAgentOutputPage(rec: AgentRecord, offset: number, limit: number): Promise<{ text: string; totalChars: number }> {
    if (rec.outputFile === undefined) {
      const output = typeof rec.output === 'string' ? rec.output : '';
      return { text: output.slice(offset, offset + limit), totalChars: output.length };
    }
    return readOutputPage(await this.#outputPath(rec), offset, limit);
  }

  /**
   * The whole stored output as a stream of UTF-8 bytes (the record's `output`, or its `.out` file
   * read in chunks), for a front that prints or copies all of it without holding it.
   */
  async agentOutputStream(rec: AgentRecord): Promise<Readable> {
    if (rec.outputFile === undefined) return Readable.from([Buffer.from(typeof rec.output === 'string' ? rec.output : '', 'utf8')]);
    const file = await this.#outputPath(rec);
    // O_NOFOLLOW, as every read in the store: a symlink swapped in for the file is not followed.
    const fh = await fs.open(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW).catch((err: unknown) => {
      throw ioError('reading agent output', file, err);
    });
    return fh.createReadStream();
  }

  /** Absolute path of the `.out` file a record names; its name must be the record's own. */
  async #outputPath(rec: AgentRecord): Promise<string> {
    const own = outputFileName(agentFileName(rec.phaseId, rec.taskId, rec.attempt));
    // Why insist on the name: it comes from a file on disk; only the record's own sidecar may be read.
    if (rec.outputFile !== own) {
      throw new StoreError('corrupt', `agent record ${quote(own.replace(/\.out$/, '.json'))} names output file ${quote(rec.outputFile)}, expected ${quote(own)}`);
    }
    return this.#paths.join(AGENTS_DIR, own);
  }

  /**
   * Reads one agent record by file name. Throws StoreError 'invalid_name' for a name that is not
   * an agent record name, 'not_found', 'corrupt' (unparseable, or its phase/task/attempt disagree
   * with its name), 'bad_version'.
   */
  async readAgentRecord(file: string): Promise<AgentRecord> {
    const parts = parseAgentFileName(checkAgentFile(file))!;
    const full = await this.#paths.join(AGENTS_DIR, file);
    const rec = await readJsonFile<AgentRecord>(full, { kind: 'agent record', expectVersion: AGENT_RECORD_VERSIONS });
    // Why cross-check: the file name is what resume and search trust; a record that disagrees with
    // it was copied or edited by hand and would silently stand in for another attempt.
    if (rec.phaseId !== parts.phaseId || rec.taskId !== parts.taskId || rec.attempt !== parts.attempt) {
      throw new StoreError(
        'corrupt',
        `agent record ${full} holds ${quote(rec.phaseId)}/${quote(rec.taskId)} attempt ${quote(rec.attempt)}, which does not match its file name`,
      );
    }
    return rec;
  }

  /**
   * Every agent record, sorted by phase id, task id, attempt, plus the files that could not be read
   * (with why). Temp files of interrupted writes and files that do not end in `.json` are skipped;
   * `.json` files with other names are reported as unreadable.
   */
  async listAgentRecords(): Promise<{ records: AgentRecord[]; unreadable: UnreadableAgentFile[] }> {
    const names = await this.#agentFileNames();
    const unreadable: UnreadableAgentFile[] = [];
    const good: string[] = [];
    for (const n of names) {
      if (parseAgentFileName(n)) good.push(n);
      else if (n.endsWith('.json')) unreadable.push({ file: n, error: `store: ${quote(n)} is not an agent record file name (<phase>.<task>.<attempt>.json)` });
    }
    const results = await mapLimit(good, READ_CONCURRENCY, async (file) => {
      try {
        return { file, rec: await this.readAgentRecord(file) };
      } catch (err) {
        return { file, error: (err as Error).message };
      }
    });
    const records: AgentRecord[] = [];
    for (const r of results) {
      if (r.rec) records.push(r.rec);
      else unreadable.push({ file: r.file, error: r.error ?? 'unknown error' });
    }
    records.sort(compareAgentRecords);
    unreadable.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
    return { records, unreadable };
  }

  /**
   * A summary of every agent attempt on disk, for resume: taken from the journal's
   * `agent.finished` line when it has one (the durability order — agent file, then that line —
   * makes the line as good as the file), else read from the file. On a run of 1000 agents this
   * reads a handful of files instead of all of them.
   */
  async census(events: readonly RunEvent[]): Promise<{ attempts: AttemptSummary[]; unreadable: UnreadableAgentFile[] }> {
    const fromJournal = new Map<string, Extract<RunEvent, { type: 'agent.finished' }>>();
    for (const e of events) if (e.type === 'agent.finished' && e.census) fromJournal.set(e.file, e);
    const unreadable: UnreadableAgentFile[] = [];
    const toRead: string[] = [];
    const attempts: AttemptSummary[] = [];
    for (const n of await this.#agentFileNames()) {
      const parts = parseAgentFileName(n);
      if (!parts) {
        if (n.endsWith('.json')) unreadable.push({ file: n, error: `store: ${quote(n)} is not an agent record file name (<phase>.<task>.<attempt>.json)` });
        continue;
      }
      const e = fromJournal.get(n);
      if (!e) {
        toRead.push(n);
        continue;
      }
      const c = e.census!;
      attempts.push({ ...parts, key: e.key, status: e.status, file: n,
        ...(c.costUsd !== undefined ? { costUsd: c.costUsd } : {}), ...(c.usage ? { usage: c.usage } : {}), ...(c.errorType ? { errorType: c.errorType } : {}),
        ...(c.redactions ? { redactions: c.redactions } : {}),
        ...(c.checkFailed ? { checkFailed: true } : {}) });
    }
    const read = await mapLimit(toRead, READ_CONCURRENCY, async (file) => {
      try {
        return { file, rec: await this.readAgentRecord(file) };
      } catch (err) {
        return { file, error: (err as Error).message };
      }
    });
    for (const r of read) {
      if (!r.rec) {
        unreadable.push({ file: r.file, error: r.error ?? 'unknown error' });
        continue;
      }
      const rec = r.rec;
      attempts.push({ phaseId: rec.phaseId, taskId: rec.taskId, attempt: rec.attempt, key: rec.key, status: rec.status, file: r.file,
        ...(rec.costUsd !== undefined ? { costUsd: rec.costUsd } : {}), ...(rec.usage ? { usage: rec.usage } : {}), ...(rec.error ? { errorType: rec.error.type } : {}),
        ...(rec.redactions?.length ? { redactions: rec.redactions.reduce((n, r) => n + r.count, 0) } : {}),
        ...(isFailedCheck(rec) ? { checkFailed: true } : {}) });
    }
    attempts.sort(compareAgentRecords);
    return { attempts, unreadable };
  }

  /**
   * The agent record files present, parsed from their names only (no file is read), sorted by
   * phase, task, attempt. Cheap enough to call often, e.g. to see which attempts exist.
   */
  async listAgentFiles(): Promise<Array<AgentFileParts & { file: string }>> {
    const out: Array<AgentFileParts & { file: string }> = [];
    for (const file of await this.#agentFileNames()) {
      const parts = parseAgentFileName(file);
      if (parts) out.push({ ...parts, file });
    }
    return out.sort(compareAgentRecords);
  }

  /** The next attempt number for a task: 1 + the highest attempt file present (1 when none). */
  async nextAttempt(phaseId: string, taskId: string): Promise<number> {
    assertId('phase', phaseId);
    assertId('task', taskId);
    let max = 0;
    for (const n of await this.#agentFileNames()) {
      const p = parseAgentFileName(n);
      if (p && p.phaseId === phaseId && p.taskId === taskId && p.attempt > max) max = p.attempt;
    }
    return max + 1;
  }

  async #agentFileNames(): Promise<string[]> {
    const dir = await this.#paths.join(AGENTS_DIR);
    try {
      return await fs.readdir(dir);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw ioError('listing agent records in', dir, err);
    }
  }

  // ---- inputs --------------------------------------------------------------------------------

  /**
   * Writes a file for a child under inputs/ atomically (owner only) and returns its absolute path.
   * `name` must be a plain file name (`map.core.1.prompt.txt`).
   */
  writeInput(name: string, content: string): Promise<string> {
    return this.#track(async () => {
      assertFileName('input', name);
      const file = await this.#paths.join(INPUTS_DIR, name);
      // No fsync: inputs are rebuilt for every attempt, and an attempt cut short by a crash runs
      // again; flushing them would only add a disk round trip to every dispatch.
      await writeTextAtomic(file, content, { fsync: false, fence: this.fence });
      return file;
    });
  }

  // ---- control -------------------------------------------------------------------------------

  /**
   * Asks the owner to stop by writing control.json atomically. Any process may call this (it is
   * the only file a non-owner writes); the owner polls readControl. Returns the record written.
   */
  requestStop(by: { pid: number; host: string } = { pid: process.pid, host: os.hostname() }): Promise<ControlRecord> {
    return this.#track(async () => {
      const rec: ControlRecord = { schemaVersion: SCHEMA_VERSION, request: 'stop', requestedAt: new Date().toISOString(), by };
      await writeJsonAtomic(await this.#paths.join(CONTROL_FILE), rec);
      return rec;
    }, false);
  }

  /** The pending control request, or undefined. Throws StoreError 'corrupt'/'bad_version'. */
  async readControl(): Promise<ControlRecord | undefined> {
    const file = await this.#paths.join(CONTROL_FILE);
    let rec: ControlRecord;
    try {
      rec = await readJsonFile<ControlRecord>(file, { kind: 'control request', expectVersion: SCHEMA_VERSION, maxBytes: 64 * 1024 });
    } catch (err) {
      if (isStoreError(err, 'not_found')) return undefined;
      throw err;
    }
    if (rec.request !== 'stop') throw new StoreError('corrupt', `control request ${file} asks for ${quote(rec.request)}, expected 'stop'`);
    return rec;
  }

  /**
   * Leaves a request for the owner in requests/ (any process may; one file per request, written
   * atomically, so concurrent sessions never lose each other's). Returns the record written.
   */
  addRequest(req: Omit<RequestRecord, 'schemaVersion' | 'id' | 'requestedAt'>): Promise<RequestRecord> {
    return this.#track(async () => {
      const at = new Date();
      const id = `${at.getTime().toString(36).padStart(9, '0')}-${Math.random().toString(36).slice(2, 8)}`;
      const rec: RequestRecord = { schemaVersion: SCHEMA_VERSION, id, requestedAt: at.toISOString(), ...req };
      await fs.mkdir(path.join(this.dir, REQUESTS_DIR), { recursive: true });
      await writeJsonAtomic(await this.#paths.join(REQUESTS_DIR, `${id}.json`), rec);
      return rec;
    }, false);
  }

  /** Pending requests, oldest first; unreadable files are skipped (a half-written temp file is not named *.json). */
  async readRequests(): Promise<RequestRecord[]> {
    let names: string[];
    try {
      names = await fs.readdir(path.join(this.dir, REQUESTS_DIR));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw ioError('listing', path.join(this.dir, REQUESTS_DIR), err);
    }
    const out: RequestRecord[] = [];
    for (const name of names.filter((n) => /^[0-9a-z]+-[0-9a-z]+\.json$/.test(n)).sort()) {
      try {
        const rec = await readJsonFile<RequestRecord>(await this.#paths.join(REQUESTS_DIR, name), { kind: 'request', expectVersion: SCHEMA_VERSION, maxBytes: 64 * 1024 });
        if (rec.id === name.slice(0, -5)) out.push(rec);
      } catch {
        /* damaged or vanished: nothing to act on */
      }
    }
    return out;
  }

  /** Removes a request once acted on (owner only). */
  removeRequest(id: string): Promise<void> {
    return this.#track(async () => {
      if (!/^[0-9a-z]+-[0-9a-z]+$/.test(id)) throw new StoreError('invalid_id', `request id ${quote(id)} is not one fanfold writes`);
      const file = await this.#paths.join(REQUESTS_DIR, `${id}.json`);
      try {
        await fs.unlink(file);
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw ioError('removing', file, err);
      }
    });
  }

  /**
   * Removes the temp files of atomic writes that other processes left in the run folder, agents/
   * and inputs/ (owner only; call it right after taking the lease). They are what a crashed owner,
   * or one paused mid-write and taken over, leaves behind; none of them is ever renamed into place
   * once this owner holds the lease (every rename is fenced). Returns the names removed.
   */
  async removeStaleTemps(): Promise<string[]> {
    this.#assertWritable();
    const removed: string[] = [];
    for (const sub of ['.', AGENTS_DIR, INPUTS_DIR]) {
      const dir = sub === '.' ? this.dir : await this.#paths.join(sub);
      let names: string[];
      try {
        names = await fs.readdir(dir);
      } catch {
        continue;
      }
      for (const n of names) {
        const m = TEMP_FILE.exec(n);
        // Why not our own pid: a write of this process may be in flight. Why not control.json's:
        // any process may be writing a stop request right now.
        if (!m || Number(m[1]) === process.pid || n.startsWith(`${CONTROL_FILE}.`)) continue;
        this.fence();
        await fs.unlink(path.join(dir, n)).then(() => removed.push(sub === '.' ? n : `${sub}/${n}`), () => {});
      }
    }
    return removed;
  }

  /** Removes control.json (owner only, after acting on it). */
  clearControl(): Promise<void> {
    return this.#track(async () => {
      const file = await this.#paths.join(CONTROL_FILE);
      try {
        this.fence();
        await fs.unlink(file);
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw ioError('removing', file, err);
      }
    });
  }

  // ---- lifecycle -----------------------------------------------------------------------------

  /**
   * Waits for pending writes, closes the journal (syncing it) and releases a lease taken with
   * this.acquireLease. Idempotent; afterwards writes throw StoreError 'closed' (reads still work).
   */
  close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= (async () => {
      await this.#runChain;
      await Promise.allSettled([...this.#inFlight]);
      const journal = this.#journal;
      this.#journal = undefined;
      try {
        if (journal) await (await journal.catch(() => undefined))?.close();
      } finally {
        if (this.#lease && this.#ownsLease) await this.#lease.release();
      }
    })();
    return this.#closing;
  }

  /**
   * Runs one write: refuses at call time when closed (or, for owner-only writes, when the lease is
   * lost), and lets close() wait for it.
   */
  #track<R>(job: () => Promise<R>, ownerOnly = true): Promise<R> {
    try {
      if (ownerOnly) this.#assertWritable();
      else this.#assertOpen();
    } catch (err) {
      return Promise.reject(err);
    }
    const p = job();
    this.#inFlight.add(p);
    void p.then(
      () => this.#inFlight.delete(p),
      () => this.#inFlight.delete(p),
    );
    return p;
  }

  #assertOpen(): void {
    if (this.#closed) throw new StoreError('closed', `store of run ${quote(this.runId)} is closed`);
  }

  #assertWritable(): void {
    this.#assertOpen();
    this.#assertLease();
  }

  #assertLease(): void {
    // Why fence, and on disk already here: an owner that lost its lease must not write over the
    // new owner's run, nor even leave a temp file there; the write re-checks right before its rename.
    if (this.#lease) this.#lease.assertOnDisk();
  }
}

const runFileOpts = { kind: 'run record', expectVersion: SCHEMA_VERSION };

/** Name of an atomic write's temp file (see atomic.ts): `<file>.<pid>-<12 hex>.tmp`. */
const TEMP_FILE = /\.(\d+)-[0-9a-f]{12}\.tmp$/;

/**
 * The lease check shared by a store and the writers it hands it to (run.json's adapter, the
 * journal): set once a lease is attached, a no-op before.
 */
class Fence {
  lease: Lease | undefined;
  readonly check = (): void => this.lease?.assertOnDisk();
}

function checkAgentFile(file: string): string {
  if (typeof file !== 'string' || !parseAgentFileName(file)) {
    throw new StoreError('invalid_name', `invalid agent record file name ${quote(file)}: expected <phase>.<task>.<attempt>.json`);
  }
  return file;
}
