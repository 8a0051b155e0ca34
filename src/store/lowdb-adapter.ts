/**
 * A lowdb adapter over writeJsonAtomic/readJsonFile. Used with lowdb's `Low` class directly —
 * never `JSONFilePreset`, which silently swaps in an in-memory adapter when NODE_ENV=test. The
 * in-memory twin is lowdb's `Memory` adapter, chosen by the caller.
 */
import type { Adapter } from 'lowdb';
import { isStoreError } from './errors.js';
import { readJsonFile, writeJsonAtomic } from './atomic.js';

/** Options of AtomicJsonFile. */
export interface AtomicJsonFileOptions {
  /** What the file is, for messages (`run record`). */
  kind: string;
  /** When set, reads refuse any other `schemaVersion` (StoreError 'bad_version'). */
  expectVersion?: number;
  /** fsync before rename (default true). */
  fsync?: boolean;
  /** Called right before the rename; throwing cancels the write (see WriteTextOptions.fence). */
  fence?: () => void;
}

/**
 * lowdb `Adapter<T>` for one JSON file: `read` returns null for a missing file and validates
 * `schemaVersion`; `write` replaces the file atomically (unique temp name, fsync, rename).
 * `file` must already be checked (safeJoinReal).
 */
export class AtomicJsonFile<T> implements Adapter<T> {
  /** Absolute path of the file. */
  readonly file: string;
  readonly #opts: AtomicJsonFileOptions;

  constructor(file: string, opts: AtomicJsonFileOptions) {
    this.file = file;
    this.#opts = opts;
  }

  /** The parsed file, or null when it does not exist. Throws StoreError 'corrupt'/'bad_version'/'io'. */
  async read(): Promise<T | null> {
    try {
      return await readJsonFile<T>(this.file, this.#opts);
    } catch (err) {
      if (isStoreError(err, 'not_found')) return null;
      throw err;
    }
  }

  /** Replaces the file atomically with `data` as JSON. */
  async write(data: T): Promise<void> {
    await writeJsonAtomic(this.file, data, { fsync: this.#opts.fsync ?? true, ...(this.#opts.fence ? { fence: this.#opts.fence } : {}) });
  }
}
