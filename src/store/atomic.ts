/**
 * Whole-file JSON writes that are atomic (a reader sees the old file or the new one, never a mix)
 * and JSON reads that refuse unknown schema versions loudly.
 */
import fs from 'node:fs/promises';
import { constants as C, renameSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { StoreError, errnoCode, ioError } from './errors.js';

/** Default cap on a JSON file read into memory: 64 MiB. */
export const DEFAULT_MAX_JSON_BYTES = 64 * 1024 * 1024;

/** Options of writeJsonAtomic. */
export interface WriteJsonOptions extends WriteTextOptions {
  /** Indentation passed to JSON.stringify (default 2; 0 for compact). */
  indent?: number;
}

/**
 * Serializes `value` as JSON (plus a final newline) and replaces `file` atomically with
 * writeTextAtomic. Throws StoreError 'invalid_argument' for values JSON cannot hold (cycles,
 * BigInt, undefined). Callers build `file` with safeJoin/safeJoinReal first.
 */
export async function writeJsonAtomic(file: string, value: unknown, opts: WriteJsonOptions = {}): Promise<void> {
  let text: string | undefined;
  try {
    text = JSON.stringify(value, null, opts.indent ?? 2);
  } catch (err) {
    throw new StoreError('invalid_argument', `cannot serialize JSON for ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (text === undefined) {
    throw new StoreError('invalid_argument', `cannot serialize JSON for ${file}: value is ${typeof value}`);
  }
  await writeTextAtomic(file, `${text}\n`, opts);
}

/** Options of writeTextAtomic. */
export interface WriteTextOptions {
  /** fsync the temp file before the rename (default true). */
  fsync?: boolean;
  /** Mode of a newly written file before the umask (default 0o666, like fs.writeFile). */
  mode?: number;
  /**
   * Called right before the rename that publishes the file; throwing cancels the write (the temp
   * file is removed). The run owner's lease check (see Lease.assertOnDisk).
   */
  fence?: () => void;
}

/** In-process queue per file, so concurrent writes to one file land in call order (the last call wins). */
const queues = new Map<string, Promise<void>>();

/**
 * Replaces `file` with `text` atomically: writes a temp file with a unique name in the same folder
 * (`<file>.<pid>-<random>.tmp`, created exclusively), fsyncs it, closes it, and renames it over
 * `file`; on failure the temp file is removed. A reader sees the old content or the new, never a
 * mix. A symlink at `file` is replaced, never written through. Writes to the same file from this
 * process are applied in call order. Throws StoreError 'not_found' when the folder is missing,
 * 'io' otherwise. When the rename creates `file` (there was none), the folder is fsynced too
 * (see syncDir), so a power loss cannot lose the new name; a rename that replaces a file does not
 * sync the folder: until the filesystem commits its journal, a power loss leaves the old file whole.
 *
 * Why not write-file-atomic (which the project installs): per write it makes about eleven
 * thread-pool round trips (realpath, stat, open, write, fsync, close, chown, chmod, rename, unlink)
 * plus a signal-exit registration — measured at ~1.1 ms per write more than this function, over
 * half the budget for recording 1000 agents — and it resolves symlinks at the target and writes to
 * wherever they point. This function makes five round trips and never follows a link.
 */
export function writeTextAtomic(file: string, text: string | Buffer, opts: WriteTextOptions = {}): Promise<void> {
  return queued(file, (key) => replaceFile(key, text, opts));
}

/**
 * Like writeTextAtomic, with the content given as chunks written one after another (each awaited),
 * so a caller can produce a large file piece by piece without holding or encoding it at once.
 */
export function writeChunksAtomic(file: string, chunks: AsyncIterable<Buffer> | Iterable<Buffer>, opts: WriteTextOptions = {}): Promise<void> {
  return queued(file, (key) => replaceFile(key, chunks, opts));
}

function queued(file: string, job: (key: string) => Promise<void>): Promise<void> {
  const key = path.resolve(file);
  const prev = queues.get(key) ?? Promise.resolve();
  const run = prev.then(() => job(key));
  const tail = run.then(
    () => {},
    () => {},
  );
  queues.set(key, tail);
  void tail.then(() => {
    if (queues.get(key) === tail) queues.delete(key);
  });
  return run;
}

async function replaceFile(file: string, data: string | Buffer | AsyncIterable<Buffer> | Iterable<Buffer>, opts: WriteTextOptions): Promise<void> {
  // Why a random suffix and O_EXCL: a fixed temp name would be shared by two writers (or clobbered
  // by a crashed one); the same folder keeps the rename on one filesystem, hence atomic.
  const tmp = `${file}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`;
  const durable = opts.fsync ?? true;
  // Whether the rename will create the name, asked while the temp file is written (no added wait).
  const creates = durable ? fs.lstat(file).then(() => false, () => true) : Promise.resolve(false);
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, opts.mode ?? 0o666);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') {
      throw new StoreError('not_found', `cannot write ${file}: its directory does not exist`, { cause: err });
    }
    throw ioError('writing', file, err);
  }
  try {
    if (typeof data === 'string' || Buffer.isBuffer(data)) await fh.writeFile(data);
    else {
      for await (const chunk of data) {
        for (let off = 0; off < chunk.length; ) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
      }
    }
    // Why fsync before rename: otherwise a power loss can leave the new name pointing at an empty
    // or partial file — the rename reaches the disk before the data does.
    if (durable) await fh.sync();
    await fh.close();
    fh = undefined;
    if (opts.fence) {
      // Why synchronous: the fence and the rename run back to back on this thread. An async rename
      // would wait in libuv's thread pool (behind other fsyncs, possibly for long) after the check.
      opts.fence();
      renameSync(tmp, file);
    } else {
      await fs.rename(tmp, file);
    }
  } catch (err) {
    await fh?.close().catch(() => {});
    await fs.unlink(tmp).catch(() => {});
    throw ioError('writing', file, err);
  }
  if (await creates) await syncDir(path.dirname(file));
}

/** Per folder: the sync in flight (`tail`) and the one waiting to start after it (`waiting`). */
const dirSyncs = new Map<string, { tail: Promise<void>; waiting: Promise<void> | undefined }>();

/**
 * fsyncs the folder `dir`, so that the names created in it by renames that finished before this
 * call survive a power loss (a file's own fsync does not cover its directory entry). Calls for
 * one folder share work: a sync that has not started yet covers every caller that asks meanwhile,
 * so a burst of N new files costs about two folder syncs, not N. Filesystems that cannot sync a
 * folder (EINVAL, ENOTSUP) or folders this process may not open (EACCES, EPERM) are passed over:
 * the file itself is in place and synced. Throws StoreError 'io' on a real I/O error (EIO).
 */
export function syncDir(dir: string): Promise<void> {
  const key = path.resolve(dir);
  const s = dirSyncs.get(key);
  // Why share only a sync that has not started: one already running may have read the folder
  // before this caller's rename, so it cannot vouch for it.
  if (s?.waiting) return s.waiting;
  const entry = s ?? { tail: Promise.resolve(), waiting: undefined };
  const p: Promise<void> = entry.tail.then(() => {
    entry.waiting = undefined;
    return fsyncFolder(key);
  });
  entry.waiting = p;
  const tail = p.then(
    () => {},
    () => {},
  );
  entry.tail = tail;
  dirSyncs.set(key, entry);
  void tail.then(() => {
    if (entry.tail === tail && entry.waiting === undefined) dirSyncs.delete(key);
  });
  return p;
}

async function fsyncFolder(dir: string): Promise<void> {
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(dir, C.O_RDONLY | C.O_DIRECTORY);
    await fh.sync();
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'EINVAL' || code === 'ENOTSUP' || code === 'EACCES' || code === 'EPERM' || code === 'EISDIR' || code === 'EBADF') return;
    throw ioError('syncing folder', dir, err);
  } finally {
    await fh?.close().catch(() => {});
  }
}

/** Options of readJsonFile. */
export interface ReadJsonOptions {
  /** What the file is, for messages (`run record`, `lease`, `agent record`). */
  kind: string;
  /** When set, the file must be a JSON object whose `schemaVersion` equals this (or is one of these). */
  expectVersion?: number | readonly number[];
  /** Refuse files larger than this many bytes (default DEFAULT_MAX_JSON_BYTES). */
  maxBytes?: number;
}

/**
 * Reads and parses a JSON file. Throws StoreError:
 * - 'not_found' when the file does not exist;
 * - 'corrupt' when it is not valid JSON (or, with `expectVersion`, not a JSON object);
 * - 'bad_version' when `expectVersion` is set and `schemaVersion` differs, naming file, found and
 *   expected — a newer fanfold's file is refused, never half-understood;
 * - 'too_large' above `maxBytes`; 'path_escape' when `file` is a symlink; 'io' otherwise.
 * The result is not validated beyond that; `T` is the caller's claim.
 */
export async function readJsonFile<T>(file: string, opts: ReadJsonOptions): Promise<T> {
  const text = await readTextFile(file, opts.kind, opts.maxBytes ?? DEFAULT_MAX_JSON_BYTES);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new StoreError('corrupt', `${opts.kind} ${file} is not valid JSON (${(err as Error).message})`, { cause: err });
  }
  if (opts.expectVersion !== undefined) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new StoreError('corrupt', `${opts.kind} ${file} is not a JSON object`);
    }
    const found = (value as { schemaVersion?: unknown }).schemaVersion;
    const accepted: readonly number[] = typeof opts.expectVersion === 'number' ? [opts.expectVersion] : opts.expectVersion;
    if (!accepted.includes(found as number)) {
      const shown = found === undefined ? 'none' : JSON.stringify(found);
      const newest = Math.max(...accepted);
      throw new StoreError(
        'bad_version',
        `${opts.kind} ${file} has schemaVersion ${shown}, expected ${accepted.join(' or ')}` +
          (typeof found === 'number' && found > newest ? ' (written by a newer fanfold?)' : ''),
      );
    }
  }
  return value as T;
}

/**
 * Reads a whole UTF-8 file, refusing symlinks (O_NOFOLLOW) and files over `maxBytes`.
 * Throws StoreError 'not_found', 'path_escape', 'too_large' or 'io'.
 */
export async function readTextFile(file: string, kind: string, maxBytes: number): Promise<string> {
  return (await readBytesFile(file, kind, maxBytes)).toString('utf8');
}

/**
 * Reads a whole file as bytes, refusing symlinks (O_NOFOLLOW) and files over `maxBytes`: for a
 * reader that decodes a large file in parts rather than in one step. Errors as readTextFile.
 */
export async function readBytesFile(file: string, kind: string, maxBytes: number): Promise<Buffer> {
  let fh: fs.FileHandle;
  try {
    // Why O_NOFOLLOW: the path was checked, but the last component could be swapped for a symlink
    // afterwards; refusing to follow it keeps reads inside the store.
    fh = await fs.open(file, C.O_RDONLY | C.O_NOFOLLOW);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT') throw new StoreError('not_found', `${kind} ${file} does not exist`, { cause: err });
    if (code === 'ELOOP') throw new StoreError('path_escape', `refusing to read ${kind} ${file}: it is a symlink`, { cause: err });
    throw ioError(`reading ${kind}`, file, err);
  }
  try {
    const st = await fh.stat();
    if (st.size > maxBytes) {
      throw new StoreError('too_large', `${kind} ${file} is ${st.size} bytes, more than the ${maxBytes}-byte limit`);
    }
    const buf = await fh.readFile();
    // Why check again: the file may have grown between stat and read.
    if (buf.length > maxBytes) {
      throw new StoreError('too_large', `${kind} ${file} is ${buf.length} bytes, more than the ${maxBytes}-byte limit`);
    }
    return buf;
  } catch (err) {
    throw ioError(`reading ${kind}`, file, err);
  } finally {
    await fh.close().catch(() => {});
  }
}
