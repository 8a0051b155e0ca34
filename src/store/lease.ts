/**
 * Ownership of a run: `lease.json` names the one process allowed to write the run directory.
 * The owner renews a heartbeat; a lease whose heartbeat is older than its ttl (or whose owner
 * process is gone, on this host) is stale and may be taken over.
 *
 * How exclusivity is kept without a lock server:
 * - First acquisition: the record is written to a unique temp file, fsynced, then hard-linked to
 *   `lease.json`. `link` fails with EEXIST when the name exists, so exactly one racer wins.
 * - Takeover of a stale lease X: a racer must first win the *claim* `lease.takeover.<X>.json`
 *   (again by `link`, so one winner per stale owner), re-check that lease.json still holds X and is
 *   still stale, then `rename` its record over lease.json. Rename replaces atomically, so
 *   lease.json is never missing during a takeover and a fresh acquirer cannot slip in.
 * - A claimer that died mid-takeover leaves a stale claim; it is cleared the same way, by winning
 *   the claim on the claimer (`lease.takeover.<claimer>.json`).
 * Heartbeats and release check the owner id first (a fencing token): an owner whose record was
 * replaced learns it has lost the lease at its next heartbeat and stops. Every owner-only write
 * also checks it first (`assertOnDisk`, called by the store right before its rename or append), so
 * an owner that was paused past its ttl writes nothing once it wakes, whatever its timers say.
 * Each record carries an epoch, one more than the record it replaced, so the order of owners can
 * be read from lease.json and from the journal.
 *
 * Limits (documented, not hidden; see docs/durability.md): the check before a write and the write
 * itself are two system calls, so an owner paused (SIGSTOP, a VM freeze) exactly between them for
 * longer than the ttl still lands that one write after a new owner took over; heartbeat and
 * release are check-then-act the same way. Pid liveness is only consulted when the host name
 * matches ours.
 */
import fs from 'node:fs/promises';
import { closeSync, constants as C, openSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { SCHEMA_VERSION, type LeaseRecord } from './types.js';
import { StoreError, errnoCode, ioError, isStoreError } from './errors.js';
import { assertId, isId, newToken } from './ids.js';
import { readJsonFile, writeJsonAtomic } from './atomic.js';
import { safeJoinReal } from './paths.js';

/** Name of the lease file in a run directory. */
export const LEASE_FILE = 'lease.json';

/** Default ttl: a lease without a heartbeat for this long is stale. */
export const DEFAULT_LEASE_TTL_MS = 10_000;

/** Deepest chain of dead claimers a takeover will clear before giving up. */
const MAX_CLAIM_DEPTH = 3;

/** Rounds of link/inspect/take over before acquireLease gives up on a lease that keeps changing. */
const MAX_ROUNDS = 8;

/** Options of acquireLease. */
export interface LeaseOptions {
  /** Heartbeat age after which the lease is stale (default 10 s). */
  ttlMs?: number;
  /** Interval of the automatic heartbeat (default ttl/4); must be below ttlMs. 0 disables the timer. */
  heartbeatMs?: number;
  /**
   * Called once when the lease is found lost (another owner's record in lease.json, the file gone,
   * or heartbeats failing for longer than the ttl). The owner must stop writing. Errors it throws
   * are ignored.
   */
  onLost?: (reason: StoreError) => void;
  /** Pid recorded as owner (default `process.pid`). */
  pid?: number;
  /** Host recorded as owner (default `os.hostname()`). */
  host?: string;
}

/** Liveness of a lease record: none, live (owner presumably working) or stale (may be taken over). */
export type LeaseState = 'none' | 'live' | 'stale';

/**
 * Whether `pid` is a running process on this host. EPERM means it exists but belongs to someone
 * else — alive.
 */
export function processAlive(pid: number): boolean {
  // Why: process.kill(0 or negative) signals process groups; never probe those.
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return errnoCode(err) !== 'ESRCH';
  }
  return !isZombie(pid);
}

/**
 * Whether a pid is a zombie: dead, but not yet reaped by its parent. Why it matters: a run owner
 * SIGKILLed after its parent exited is reparented to pid 1, and where pid 1 does not reap (some
 * containers), `kill(pid, 0)` keeps succeeding for the corpse. Linux only; elsewhere false.
 */
function isZombie(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return false;
  }
  // Format: "pid (comm) S …" — comm may itself contain ')' so read after the last one.
  const close = stat.lastIndexOf(')');
  return close >= 0 && stat.charAt(close + 2) === 'Z';
}

/**
 * Classifies a lease record at time `now` (ms since epoch): 'none' without a record; 'stale' when
 * its heartbeat is older than its ttl, or — when it was written on this host — its pid is not a
 * running process; 'live' otherwise (a heartbeat from the future counts as live).
 */
export function leaseState(rec: LeaseRecord | undefined, now: number = Date.now()): LeaseState {
  if (!rec) return 'none';
  const beat = Date.parse(rec.heartbeatAt);
  if (!Number.isFinite(beat) || now - beat > rec.ttlMs) return 'stale';
  // Why only on our host: a pid means nothing on another machine sharing the filesystem.
  if (rec.host === os.hostname() && !processAlive(rec.pid)) return 'stale';
  return 'live';
}

/** "pid 123 on host 'h', heartbeat 2.1 s ago (ttl 10 s)". */
export function describeLease(rec: LeaseRecord, now: number = Date.now()): string {
  const age = (now - Date.parse(rec.heartbeatAt)) / 1000;
  const ageText = Number.isFinite(age) ? `${age.toFixed(1)} s ago` : `at an unreadable time '${rec.heartbeatAt}'`;
  return `pid ${rec.pid} on host '${rec.host}', heartbeat ${ageText} (ttl ${rec.ttlMs / 1000} s)`;
}

/** Checks the shape of a lease record read from disk; throws StoreError 'corrupt'. */
function validateLease(v: unknown, file: string): LeaseRecord {
  const r = v as Partial<LeaseRecord>;
  const ok =
    isId(r.ownerId) &&
    Number.isInteger(r.pid) &&
    (r.pid as number) > 0 &&
    typeof r.host === 'string' &&
    typeof r.acquiredAt === 'string' &&
    typeof r.heartbeatAt === 'string' &&
    typeof r.ttlMs === 'number' &&
    r.ttlMs > 0;
  if (!ok) throw new StoreError('corrupt', `lease ${file} does not have the shape of a lease record`);
  return v as LeaseRecord;
}

async function readLeaseAt(file: string): Promise<LeaseRecord | undefined> {
  try {
    const v = await readJsonFile<unknown>(file, { kind: 'lease', expectVersion: SCHEMA_VERSION, maxBytes: 64 * 1024 });
    return validateLease(v, file);
  } catch (err) {
    if (isStoreError(err, 'not_found')) return undefined;
    throw err;
  }
}

/**
 * Reads `<runDir>/lease.json`; undefined when there is none. Throws StoreError 'corrupt' or
 * 'bad_version' for a file that is not a lease this code understands.
 */
export async function readLease(runDir: string): Promise<LeaseRecord | undefined> {
  return readLeaseAt(await safeJoinReal(runDir, LEASE_FILE));
}

function heldError(runDir: string, rec: LeaseRecord, extra = ''): StoreError {
  return new StoreError(
    'lease_held',
    `run ${runDir} is owned by ${describeLease(rec)}${extra}; wait for it to finish, stop it, or retry once its heartbeat is older than the ttl`,
  );
}

/** One ownership of a run directory. Obtain with acquireLease. */
export class Lease {
  /** Random id of this ownership, the fencing token written into lease.json. */
  readonly ownerId: string;
  /** The run directory this lease covers. */
  readonly runDir: string;
  /** Absolute path of lease.json. */
  readonly file: string;
  #record: LeaseRecord;
  #onLost: ((reason: StoreError) => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #chain: Promise<unknown> = Promise.resolve();
  #beating = false;
  #lost: StoreError | undefined;
  #lostTo: LeaseRecord | undefined;
  #released = false;
  #lastOkAt: number;

  /** @internal Use acquireLease. */
  constructor(runDir: string, file: string, record: LeaseRecord, opts: { heartbeatMs: number; onLost?: (reason: StoreError) => void }) {
    this.runDir = runDir;
    this.file = file;
    this.ownerId = record.ownerId;
    this.#record = record;
    this.#onLost = opts.onLost;
    this.#lastOkAt = Date.now();
    if (opts.heartbeatMs > 0) {
      this.#timer = setInterval(() => {
        // Why skip instead of queue: a slow disk must not pile up heartbeats behind each other.
        if (this.#beating) return;
        this.heartbeat().catch(() => {});
      }, opts.heartbeatMs);
      // Why unref: a forgotten lease must not keep the process alive; release() is the real end.
      this.#timer.unref();
    }
  }

  /** The record as last written by this owner. */
  get record(): LeaseRecord {
    return { ...this.#record };
  }

  /** True once the lease was found lost; no further heartbeats happen. */
  get lost(): boolean {
    return this.#lost !== undefined;
  }

  /** True after release(). */
  get released(): boolean {
    return this.#released;
  }

  /** Throws StoreError 'lease_lost' unless this lease is still held (not lost, not released). */
  assertHeld(): void {
    if (this.#lost) throw this.#lost;
    if (this.#released) throw new StoreError('lease_lost', `lease on ${this.runDir} was released`);
  }

  /** The record that replaced ours, when the lease was lost to another owner and it could be read. */
  get lostTo(): LeaseRecord | undefined {
    return this.#lostTo;
  }

  /**
   * The fence of every owner-only write: throws StoreError 'lease_lost' unless lease.json on disk
   * still carries this owner id (and the lease was neither lost nor released). Finding another
   * owner's record (or none) marks the lease lost, with onLost, like a heartbeat would.
   *
   * Why synchronous: the caller runs it immediately before its rename or append, with no event-loop
   * turn in between, so nothing of this process can run between the check and the write. Only a
   * pause of the whole process between the two system calls is left (see the module comment).
   */
  assertOnDisk(): void {
    this.assertHeld();
    let text: string;
    try {
      // Why O_NOFOLLOW: the lease is read from a folder others may write; never follow a link.
      const fd = openSync(this.file, C.O_RDONLY | C.O_NOFOLLOW);
      try {
        text = readFileSync(fd, 'utf8');
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') this.#markLost('lease.json was removed');
      else throw ioError('reading lease', this.file, err);
      throw this.#lost!;
    }
    let cur: LeaseRecord;
    try {
      cur = validateLease(JSON.parse(text), this.file);
    } catch (err) {
      // Only whole records are ever renamed into place, so an unreadable one was put there by someone else.
      this.#markLost(`lease.json was replaced by something unreadable (${(err as Error).message})`);
      throw this.#lost!;
    }
    if (cur.ownerId !== this.ownerId) {
      this.#lostTo = cur;
      this.#markLost(`lease.json now belongs to ${describeLease(cur)}`);
      throw this.#lost!;
    }
  }

  /**
   * Renews the heartbeat: checks that lease.json still carries this owner id, then rewrites it
   * atomically with a new `heartbeatAt`. Resolves true when renewed, false when the lease is lost
   * (onLost is called, the timer stops) or released. Throws StoreError 'io' when the file cannot be
   * read or written; if that goes on for longer than the ttl the lease is declared lost.
   */
  heartbeat(): Promise<boolean> {
    const p = this.#chain.then(() => this.#beat());
    this.#chain = p.catch(() => {});
    return p;
  }

  async #beat(): Promise<boolean> {
    if (this.#lost || this.#released) return false;
    this.#beating = true;
    try {
      let cur: LeaseRecord | undefined;
      try {
        cur = await readLeaseAt(this.file);
      } catch (err) {
        // Why corrupt/bad_version count as lost: we only ever write whole records of our version,
        // so such a file was put there by someone else.
        if (isStoreError(err, 'corrupt') || isStoreError(err, 'bad_version')) {
          this.#markLost(`lease.json was replaced by something unreadable (${(err as Error).message})`);
          return false;
        }
        this.#checkExpired(err);
        throw err;
      }
      if (!cur) {
        this.#markLost('lease.json was removed');
        return false;
      }
      if (cur.ownerId !== this.ownerId) {
        this.#lostTo = cur;
        this.#markLost(`lease.json now belongs to ${describeLease(cur)}`);
        return false;
      }
      const next: LeaseRecord = { ...this.#record, heartbeatAt: new Date().toISOString() };
      try {
        // Why fence the heartbeat's own rename: writing the temp file (and its fsync) takes time,
        // and an owner paused in between must not put its record back over a new owner's — or
        // recreate lease.json after the new owner finished and removed it.
        await writeJsonAtomic(this.file, next, { fence: () => this.assertOnDisk() });
      } catch (err) {
        if (isStoreError(err, 'lease_lost')) return false;
        this.#checkExpired(err);
        throw err;
      }
      this.#record = next;
      this.#lastOkAt = Date.now();
      return true;
    } finally {
      this.#beating = false;
    }
  }

  #checkExpired(err: unknown): void {
    if (Date.now() - this.#lastOkAt > this.#record.ttlMs) {
      this.#markLost(`heartbeats failed for longer than the ttl (${(err as Error).message})`, err);
    }
  }

  #markLost(why: string, cause?: unknown): void {
    if (this.#lost) return;
    this.#lost = new StoreError('lease_lost', `lost the lease on ${this.runDir}: ${why}`, { cause });
    this.#stopTimer();
    try {
      this.#onLost?.(this.#lost);
    } catch {
      // Documented: errors from onLost are ignored so the heartbeat machinery stays sane.
    }
  }

  #stopTimer(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Stops the heartbeat and removes lease.json if it still carries this owner id (never someone
   * else's). Idempotent.
   */
  async release(): Promise<void> {
    this.#stopTimer();
    await this.#chain;
    if (this.#released) return;
    this.#released = true;
    if (this.#lost) return;
    let cur: LeaseRecord | undefined;
    try {
      cur = await readLeaseAt(this.file);
    } catch {
      return; // unreadable: not provably ours, leave it
    }
    if (cur?.ownerId !== this.ownerId) return;
    try {
      await fs.unlink(this.file);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw ioError('removing lease', this.file, err);
    }
  }
}

/**
 * Takes ownership of `runDir`. Resolves with a Lease whose heartbeat runs on an unref'ed timer.
 * Throws StoreError 'lease_held' (retryable) when a live owner holds it, naming its pid, host and
 * heartbeat age — also when another process wins a race for a stale lease; 'corrupt' or
 * 'bad_version' when lease.json is not a lease this code understands; 'invalid_argument' for bad
 * options.
 */
export async function acquireLease(runDir: string, opts: LeaseOptions = {}): Promise<Lease> {
  const ttlMs = opts.ttlMs ?? DEFAULT_LEASE_TTL_MS;
  if (!Number.isInteger(ttlMs) || ttlMs < 1) {
    throw new StoreError('invalid_argument', `expected ttlMs to be a positive integer, got ${ttlMs}`);
  }
  const heartbeatMs = opts.heartbeatMs ?? Math.max(1, Math.floor(ttlMs / 4));
  if (!Number.isFinite(heartbeatMs) || heartbeatMs < 0 || heartbeatMs >= ttlMs) {
    throw new StoreError('invalid_argument', `expected heartbeatMs to be 0 (off) or 1–${ttlMs - 1} (below ttlMs), got ${heartbeatMs}`);
  }
  const leasePath = await safeJoinReal(runDir, LEASE_FILE);
  const now = new Date().toISOString();
  const record: LeaseRecord = {
    schemaVersion: SCHEMA_VERSION,
    ownerId: newToken(),
    pid: opts.pid ?? process.pid,
    host: opts.host ?? os.hostname(),
    acquiredAt: now,
    heartbeatAt: now,
    ttlMs,
    epoch: 1,
  };
  const tmp = await safeJoinReal(runDir, `${LEASE_FILE}.${record.ownerId}.tmp`);
  await writeNewFile(tmp, `${JSON.stringify(record, null, 2)}\n`);
  // What the temp file holds now: the record that becomes lease.json if this process wins.
  let mine = record;
  const make = (): Lease => new Lease(runDir, leasePath, mine, { heartbeatMs, onLost: opts.onLost });
  try {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      try {
        // Why link: it creates the name only if it does not exist, atomically, and the file it
        // points to is already complete and fsynced — no reader ever sees a half-written lease.
        await fs.link(tmp, leasePath);
        return make();
      } catch (err) {
        if (errnoCode(err) !== 'EEXIST') throw ioError('creating lease', leasePath, err);
      }
      const cur = await readLeaseAt(leasePath);
      if (!cur) continue; // released between our link and our read: try again
      if (leaseState(cur) === 'live') throw heldError(runDir, cur);
      // The record that replaces a stale one carries the next epoch.
      if (mine.epoch !== (cur.epoch ?? 0) + 1) {
        mine = { ...record, epoch: (cur.epoch ?? 0) + 1 };
        await fs.unlink(tmp).catch(() => {});
        await writeNewFile(tmp, `${JSON.stringify(mine, null, 2)}\n`);
      }
      const outcome = await takeOver(runDir, leasePath, tmp, cur);
      if (outcome === 'won') return make();
      if (outcome === 'lost') {
        const winner = await readLeaseAt(leasePath).catch(() => undefined);
        throw heldError(runDir, winner ?? cur, ' (another process is taking over the stale lease)');
      }
    }
    throw new StoreError('lease_held', `lease on ${runDir} kept changing during ${MAX_ROUNDS} attempts to acquire it`, {
      retryable: true,
    });
  } finally {
    await fs.unlink(tmp).catch(() => {});
  }
}

/** Writes a complete file under a name that must not exist yet, fsyncs and closes it. */
async function writeNewFile(file: string, text: string): Promise<void> {
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(file, 'wx', 0o644);
    await fh.writeFile(text);
    await fh.sync();
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') {
      throw new StoreError('not_found', `cannot create ${file}: its directory does not exist`, { cause: err });
    }
    throw ioError('writing', file, err);
  } finally {
    await fh?.close().catch(() => {});
  }
}

async function claimPath(runDir: string, victimOwnerId: string): Promise<string> {
  // Why assertId: the owner id comes from a file on disk; it becomes part of a path only once it
  // passes the allow-list.
  return safeJoinReal(runDir, `lease.takeover.${assertId('lease owner', victimOwnerId)}.json`);
}

/** Replaces the stale lease `stale` with the record in `tmp`, if this process wins the claim. */
async function takeOver(runDir: string, leasePath: string, tmp: string, stale: LeaseRecord): Promise<'won' | 'lost' | 'retry'> {
  const claim = await claimExclusive(runDir, tmp, stale.ownerId, 0);
  if (claim === 'lost' || claim === 'retry') return claim;
  try {
    const cur = await readLeaseAt(leasePath);
    // Why re-check under the claim: another taker may have finished, or the old owner may have
    // woken up and renewed its heartbeat, between our first look and winning the claim.
    if (!cur || cur.ownerId !== stale.ownerId || leaseState(cur) !== 'stale') return 'retry';
    await fs.rename(tmp, leasePath);
    return 'won';
  } finally {
    await fs.unlink(claim).catch(() => {});
  }
}

/**
 * Wins the exclusive right to supersede the record of `victimId`: returns the claim's path when
 * this process holds it, 'lost' when a live process holds it, 'retry' when things changed.
 */
async function claimExclusive(runDir: string, tmp: string, victimId: string, depth: number): Promise<string | 'lost' | 'retry'> {
  const p = await claimPath(runDir, victimId);
  try {
    await fs.link(tmp, p);
    return p;
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') throw ioError('claiming lease takeover', p, err);
  }
  const holder = await readLeaseAt(p);
  if (!holder) return 'retry'; // the previous claimer finished
  if (leaseState(holder) === 'live' || depth >= MAX_CLAIM_DEPTH) return 'lost';
  // The claimer died mid-takeover. Clear its claim — but only as the single winner of the claim on
  // that claimer, so two processes cannot both clear it and both proceed.
  const sub = await claimExclusive(runDir, tmp, holder.ownerId, depth + 1);
  if (sub === 'lost' || sub === 'retry') return sub;
  try {
    const again = await readLeaseAt(p);
    if (again?.ownerId === holder.ownerId) await fs.unlink(p).catch(() => {});
  } finally {
    await fs.unlink(sub).catch(() => {});
  }
  return 'retry';
}
