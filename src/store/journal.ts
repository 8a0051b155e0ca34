/**
 * The run journal `events.jsonl`: one JSON event per line, appended in call order by the run
 * owner, read by anyone. A crash mid-append leaves at most one torn final line; readers skip it and
 * the next owner cuts it off before appending.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { constants as C, writeSync } from 'node:fs';
import type { RunEvent } from './types.js';
import { StoreError, errnoCode, ioError } from './errors.js';
import { readTextFile, syncDir } from './atomic.js';

/** A journal event as a caller hands it in: like RunEvent, but `t` may be left to append(). */
export type NewRunEvent = RunEvent extends infer E ? (E extends RunEvent ? Omit<E, 't'> & { t?: string } : never) : never;

/** When the journal calls fdatasync. */
export type JournalSync =
  /** After every line: survives power loss line by line, at about a millisecond per append. */
  | 'always'
  /** After `run.*` and `phase.*` events and on close (default): rare events, cheap. */
  | 'boundaries'
  /** Only on close. */
  | 'never';

/** Options of Journal.open. */
export interface JournalOptions {
  /** fdatasync policy (default 'boundaries'). Every append reaches the OS before it resolves. */
  sync?: JournalSync;
  /** Longest line accepted, in bytes (default 1 MiB). */
  maxLineBytes?: number;
  /**
   * Called right before each line is written (and before a torn tail is repaired); throwing
   * refuses the append. The run owner's lease check (see Lease.assertOnDisk).
   */
  fence?: () => void;
}

/** Default cap on one journal line. */
export const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;

/** How far back open() looks for the last newline when checking for a torn tail. */
const TAIL_SCAN_CHUNK = 64 * 1024;

/**
 * Append-only writer of one `events.jsonl`. Appends are serialized: each line goes out in one
 * complete write, in call order, and a later append never lands before an earlier one. A failed
 * write is cut back off the file (ftruncate to the last good length) so it cannot leave a torn
 * line in the middle; if even that fails the journal refuses further appends.
 */
export class Journal {
  /** Absolute path of the journal file. */
  readonly file: string;
  /** Bytes of a torn final line that open() cut off (0 when the file was clean). */
  readonly repairedBytes: number;
  #fh: fs.FileHandle | undefined;
  #size: number;
  #tail: Promise<void> = Promise.resolve();
  #pending = 0;
  #broken: StoreError | undefined;
  #sync: JournalSync;
  #maxLine: number;
  readonly #fence: (() => void) | undefined;
  #closing: Promise<void> | undefined;

  private constructor(file: string, fh: fs.FileHandle, size: number, repaired: number, opts: JournalOptions) {
    this.file = file;
    this.#fh = fh;
    this.#size = size;
    this.repairedBytes = repaired;
    this.#sync = opts.sync ?? 'boundaries';
    this.#maxLine = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    this.#fence = opts.fence;
  }

  /**
   * Opens (creating if needed) the journal at `file` for appending. If the file ends in a torn line
   * (a crash mid-append), the fragment is cut off — or, when it is a whole event that only lacks
   * its newline, the newline is added — so the next append starts on a line of its own.
   * Only the run owner opens a journal. `file` must already be checked (safeJoinReal).
   */
  static async open(file: string, opts: JournalOptions = {}): Promise<Journal> {
    let fh: fs.FileHandle;
    // The owner's lease check: a journal is opened (and maybe created or repaired) only by the owner.
    opts.fence?.();
    try {
      // Why O_APPEND: every write lands at the current end, whatever the file position says.
      // Why O_NOFOLLOW: a symlink at the journal's name must not redirect appends out of the store.
      fh = await fs.open(file, C.O_RDWR | C.O_APPEND | C.O_CREAT | C.O_NOFOLLOW, 0o644);
    } catch (err) {
      if (errnoCode(err) === 'ELOOP') {
        throw new StoreError('path_escape', `refusing to open journal ${file}: it is a symlink`, { cause: err });
      }
      throw ioError('opening journal', file, err);
    }
    try {
      const { size, repaired } = await repairTail(fh, opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES);
      // A new (empty) journal is a new name in the run folder: sync the folder once, so the lines
      // the sync policy makes durable cannot vanish with the file's name on a power loss.
      if (size === 0 && (opts.sync ?? 'boundaries') !== 'never') await syncDir(path.dirname(file));
      return new Journal(file, fh, size, repaired, opts);
    } catch (err) {
      await fh.close().catch(() => {});
      throw ioError('repairing journal', file, err);
    }
  }

  /** Appends still queued or in flight. */
  get pendingCount(): number {
    return this.#pending;
  }

  /** Current length of the file in bytes, as this writer knows it. */
  get size(): number {
    return this.#size;
  }

  /**
   * Appends one event as one line; fills in `t` (now, ISO) when missing. Resolves once the line
   * has reached the OS (and the disk, per the sync policy). Rejects with StoreError
   * 'invalid_argument' for an event without a string `type`, 'too_large' for an over-long line,
   * 'closed' after close(), 'io' on a write failure.
   */
  append(event: NewRunEvent | RunEvent): Promise<void> {
    let line: string;
    let type: string;
    try {
      ({ line, type } = this.#encode(event));
    } catch (err) {
      return Promise.reject(err);
    }
    // Why check #closing and not only the handle: an append issued while close() waits for the
    // queue would otherwise be queued behind it and write to a closed handle.
    if (!this.#fh || this.#closing) return Promise.reject(this.#closedError());
    this.#pending++;
    const run = this.#tail.then(() => this.#writeLine(line, type));
    // Why keep the chain alive on failure: one failed append must not reject every later one;
    // #writeLine itself decides whether the journal is still usable.
    this.#tail = run.then(
      () => {},
      () => {},
    );
    return run.finally(() => {
      this.#pending--;
    });
  }

  /** fdatasyncs the journal after every queued append has been written. */
  async sync(): Promise<void> {
    await this.#tail;
    if (!this.#fh) throw this.#closedError();
    try {
      await this.#fh.datasync();
    } catch (err) {
      throw ioError('syncing journal', this.file, err);
    }
  }

  /** Waits for queued appends, syncs and closes. Appends after this call reject. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#tail;
      const fh = this.#fh;
      if (!fh) return;
      this.#fh = undefined;
      try {
        if (!this.#broken) await fh.datasync();
      } finally {
        await fh.close();
      }
    })();
    return this.#closing;
  }

  #encode(event: NewRunEvent | RunEvent): { line: string; type: string } {
    if (typeof event !== 'object' || event === null || typeof (event as { type?: unknown }).type !== 'string') {
      throw new StoreError('invalid_argument', `journal event for ${this.file} must be an object with a string 'type'`);
    }
    const t = (event as { t?: unknown }).t;
    const full = typeof t === 'string' ? event : { ...event, t: new Date().toISOString() };
    let line: string;
    try {
      // JSON.stringify escapes every newline inside strings, so one event is always one line.
      line = `${JSON.stringify(full)}\n`;
    } catch (err) {
      throw new StoreError('invalid_argument', `journal event for ${this.file} cannot be serialized: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (Buffer.byteLength(line) > this.#maxLine) {
      throw new StoreError('too_large', `journal event '${event.type}' is ${Buffer.byteLength(line)} bytes, more than ${this.#maxLine}`);
    }
    return { line, type: event.type };
  }

  async #writeLine(line: string, type: string): Promise<void> {
    if (this.#broken) throw this.#broken;
    const fh = this.#fh;
    if (!fh) throw this.#closedError();
    const buf = Buffer.from(line, 'utf8');
    const before = this.#size;
    // Why the fence and a synchronous first write: they run back to back on this thread, with no
    // event-loop turn (or thread-pool queue) between the owner's lease check and the append.
    const fenced = this.#fence !== undefined;
    this.#fence?.();
    try {
      let off = 0;
      if (fenced) off = writeSync(fh.fd, buf, 0, buf.length);
      // A regular-file write is whole unless the disk fills or a signal interrupts; loop for the rest.
      while (off < buf.length) {
        const { bytesWritten } = await fh.write(buf, off, buf.length - off);
        if (bytesWritten <= 0) throw new Error('write returned 0 bytes');
        off += bytesWritten;
      }
      this.#size = before + buf.length;
    } catch (err) {
      // Why truncate: a half-written line followed by later appends would be a corrupt line in the
      // middle of the journal; cutting back to the last good length keeps every line whole.
      try {
        await fh.truncate(before);
      } catch (truncErr) {
        this.#broken = new StoreError(
          'io',
          `journal ${this.file} is unusable: a write failed and could not be undone (${(truncErr as Error).message})`,
          { cause: err, retryable: false },
        );
      }
      throw ioError('appending to journal', this.file, err);
    }
    if (this.#sync === 'always' || (this.#sync === 'boundaries' && (type.startsWith('run.') || type.startsWith('phase.')))) {
      try {
        await fh.datasync();
      } catch (err) {
        throw ioError('syncing journal', this.file, err);
      }
    }
  }

  #closedError(): StoreError {
    return new StoreError('closed', `journal ${this.file} is closed`);
  }
}

/**
 * Finds the end of the last complete line; cuts a torn tail, or completes a whole event that only
 * lacks its newline. Returns the resulting size and how many bytes were cut.
 */
async function repairTail(fh: fs.FileHandle, maxLine: number): Promise<{ size: number; repaired: number }> {
  const size = (await fh.stat()).size;
  if (size === 0) return { size, repaired: 0 };
  const last = Buffer.alloc(1);
  await fh.read(last, 0, 1, size - 1);
  if (last[0] === 0x0a) return { size, repaired: 0 };
  // Scan backwards for the last newline, holding at most one line's worth of the fragment.
  let end = size;
  let cut = 0;
  let chunks: Buffer[] | undefined = [];
  while (end > 0) {
    const start = Math.max(0, end - TAIL_SCAN_CHUNK);
    const buf = Buffer.alloc(end - start);
    await fh.read(buf, 0, buf.length, start);
    const nl = buf.lastIndexOf(0x0a);
    if (nl >= 0) {
      cut = start + nl + 1;
      chunks?.unshift(buf.subarray(nl + 1));
      break;
    }
    chunks?.unshift(buf);
    end = start;
    // Longer than any line append() writes: it cannot be a whole event, stop holding it.
    if (size - end > maxLine) chunks = undefined;
  }
  if (chunks && parseEventLine(Buffer.concat(chunks).toString('utf8')) !== undefined) {
    // The crash lost only the newline: keep the event.
    await fh.write('\n');
    return { size: size + 1, repaired: 0 };
  }
  await fh.truncate(cut);
  return { size: cut, repaired: size - cut };
}

/** Parses one journal line; undefined unless it is a JSON object with string `type` and `t`. */
export function parseEventLine(text: string): RunEvent | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const o = v as { type?: unknown; t?: unknown };
  if (typeof o.type !== 'string' || typeof o.t !== 'string') return undefined;
  return v as RunEvent;
}

/** A journal line that is not a valid event. */
export interface CorruptLine {
  /** 1-based line number. */
  line: number;
  /** The start of the line (at most 200 characters). */
  text: string;
}

/** Everything readJournal found. */
export interface JournalContents {
  /** Valid events in file order. */
  events: RunEvent[];
  /** Newline-terminated lines that are not valid events: real damage, not a crash artefact. */
  corrupt: CorruptLine[];
  /** Bytes of an unterminated, unparseable final line (a crash mid-append), 0 when none. */
  tornTailBytes: number;
}

/** Options of readJournal/readEvents. */
export interface ReadJournalOptions {
  /** Refuse journals larger than this (default 256 MiB). */
  maxBytes?: number;
}

/**
 * Reads a journal tolerantly: every valid event, the corrupt lines in the middle (with numbers),
 * and the size of a torn final line, which is skipped. A final line without its newline that still
 * parses is kept (the crash lost only the newline). Blank lines are ignored.
 * Throws StoreError 'not_found' when the file does not exist.
 */
export async function readJournal(file: string, opts: ReadJournalOptions = {}): Promise<JournalContents> {
  const text = await readTextFile(file, 'journal', opts.maxBytes ?? 256 * 1024 * 1024);
  const lines = text.split('\n');
  const tail = lines.pop() ?? '';
  const events: RunEvent[] = [];
  const corrupt: CorruptLine[] = [];
  lines.forEach((raw, i) => {
    if (raw.trim() === '') return;
    const ev = parseEventLine(raw);
    if (ev) events.push(ev);
    else corrupt.push({ line: i + 1, text: raw.slice(0, 200) });
  });
  let tornTailBytes = 0;
  if (tail !== '') {
    const ev = parseEventLine(tail);
    if (ev) events.push(ev);
    else tornTailBytes = Buffer.byteLength(tail);
  }
  return { events, corrupt, tornTailBytes };
}

/**
 * Reads a journal strictly: the events in order, skipping a torn final line (a crash artefact),
 * but throwing StoreError 'corrupt' naming the line numbers when a line in the middle is damaged —
 * that is not something a crash produces, so it is reported rather than silently dropped. Use
 * readJournal to get what is readable anyway.
 */
export async function readEvents(file: string, opts: ReadJournalOptions = {}): Promise<RunEvent[]> {
  const { events, corrupt } = await readJournal(file, opts);
  if (corrupt.length > 0) {
    const nums = corrupt.slice(0, 10).map((c) => c.line).join(', ');
    const more = corrupt.length > 10 ? ` and ${corrupt.length - 10} more` : '';
    throw new StoreError('corrupt', `journal ${file} has ${corrupt.length} corrupt line(s): line ${nums}${more}`);
  }
  return events;
}
