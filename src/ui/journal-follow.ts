/**
 * Follows one run's journal (`events.jsonl`) as it grows: the dashboard's live updates come from
 * here, never from re-reading run.json. It keeps every complete line read so far (parsed, with the
 * byte offset where it ends, which the event stream uses as its event id) and tells listeners of
 * each new one.
 *
 * How it notices growth: `fs.watch` on the file wakes it at once; a slow timer re-checks the size
 * too, because watch events can be missed or merged (network and overlay filesystems). Only
 * complete lines are consumed: a line the owner is still writing is read again next time.
 */
import { watch, type FSWatcher, constants as C } from 'node:fs';
import fs from 'node:fs/promises';
import { parseEventLine } from '../store/index.js';
import type { RunEvent } from '../store/types.js';

/** A journal event with the byte offset just past its line. */
export interface FollowedEvent {
  event: RunEvent;
  end: number;
}

/** How often the size is re-checked while someone listens, in case a watch event was missed (ms). */
const RECHECK_MS = 1000;
/** Most bytes read in one go. */
const CHUNK = 1024 * 1024;

/** A follower of one journal file; see the module comment. */
export class JournalFollower {
  /** Absolute path of the journal. */
  readonly file: string;
  /** Every complete event read so far, in file order. */
  readonly events: FollowedEvent[] = [];
  #offset = 0;
  #listeners = new Set<(e: FollowedEvent) => void>();
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #reading: Promise<void> | undefined;
  #again = false;

  constructor(file: string) {
    this.file = file;
  }

  /** Bytes of the journal consumed (the end of the last complete line read). */
  get offset(): number {
    return this.#offset;
  }

  /** Listeners now attached. */
  get listenerCount(): number {
    return this.#listeners.size;
  }

  /**
   * Reads whatever complete lines were added since the last read. Concurrent calls share one
   * read (and a call during a read makes it look once more).
   */
  poll(): Promise<void> {
    if (this.#reading) {
      this.#again = true;
      return this.#reading;
    }
    this.#reading = (async () => {
      try {
        do {
          this.#again = false;
          await this.#readNew();
        } while (this.#again);
      } finally {
        this.#reading = undefined;
      }
    })();
    return this.#reading;
  }

  /** Calls `fn` for every event read from now on; returns the function that detaches it. */
  subscribe(fn: (e: FollowedEvent) => void): () => void {
    this.#listeners.add(fn);
    this.#start();
    return () => {
      this.#listeners.delete(fn);
      if (this.#listeners.size === 0) this.#stop();
    };
  }

  /** Stops watching and drops every listener. */
  close(): void {
    this.#listeners.clear();
    this.#stop();
  }

  #start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.poll().catch(() => {}), RECHECK_MS);
    this.#timer.unref();
    try {
      this.#watcher = watch(this.file, { persistent: false }, () => void this.poll().catch(() => {}));
      this.#watcher.on('error', () => this.#watcher?.close());
    } catch {
      // No watch (the file is missing or the filesystem cannot): the timer alone keeps up.
    }
  }

  #stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#watcher?.close();
    this.#watcher = undefined;
  }

  async #readNew(): Promise<void> {
    let fh: fs.FileHandle;
    try {
      // O_NOFOLLOW as everywhere in the store: a symlink at the journal's name is not followed.
      fh = await fs.open(this.file, C.O_RDONLY | C.O_NOFOLLOW);
    } catch {
      return; // not there yet
    }
    try {
      const size = (await fh.stat()).size;
      if (size < this.#offset) {
        // The file was replaced by a shorter one (not something an owner does): start over.
        this.#offset = 0;
        this.events.length = 0;
      }
      while (this.#offset < size) {
        const len = Math.min(CHUNK, size - this.#offset);
        const buf = Buffer.alloc(len);
        const { bytesRead } = await fh.read(buf, 0, len, this.#offset);
        const data = buf.subarray(0, bytesRead);
        const lastNl = data.lastIndexOf(0x0a);
        if (lastNl < 0) {
          // A line longer than a chunk, or one still being written: read it whole next time.
          if (len === CHUNK) this.#skipLongLine(data);
          return;
        }
        let start = 0;
        for (let nl = data.indexOf(0x0a); nl >= 0 && nl <= lastNl; nl = data.indexOf(0x0a, start)) {
          const line = data.subarray(start, nl).toString('utf8');
          const end = this.#offset + nl + 1;
          start = nl + 1;
          const event = line.trim() ? parseEventLine(line) : undefined;
          if (!event) continue;
          const followed = { event, end };
          this.events.push(followed);
          for (const fn of this.#listeners) fn(followed);
        }
        this.#offset += lastNl + 1;
      }
    } finally {
      await fh.close();
    }
  }

  /** A line over a whole chunk is not a journal event the owner writes (they are ≤ 1 MiB): step past it. */
  #skipLongLine(data: Buffer): void {
    this.#offset += data.length;
  }
}
