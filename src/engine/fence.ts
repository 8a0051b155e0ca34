/**
 * The run's lease, from the owner's side: taken when the owner starts and attached to the store,
 * so every owner-only write (agent file, journal line, run.json, index, reports, inputs) checks
 * lease.json right before it lands (see Lease.assertOnDisk). An owner that finds the lease lost
 * stops its agents, writes nothing more, and ends with `LeaseLostError`.
 */
import { DEFAULT_LEASE_TTL_MS, isStoreError, readLease, type Lease, type RunStore } from '../store/index.js';

/** Environment variable that sets the lease ttl of owners started without an explicit one (ms). */
export const LEASE_TTL_ENV = 'FANFOLD_LEASE_TTL_MS';

/** An owner found that another process took its run over; it wrote nothing after finding out. */
export class LeaseLostError extends Error {
  /** Pid of the owner that has the run now, when known. */
  readonly otherPid: number | undefined;
  constructor(runId: string, otherPid: number | undefined) {
    super(`lost the lease of run ${runId} to another owner (pid ${otherPid ?? 'unknown'})`);
    this.name = 'LeaseLostError';
    this.otherPid = otherPid;
  }
}

/** The lease ttl for an owner: the option, else FANFOLD_LEASE_TTL_MS, else the default (10 s). */
export function leaseTtl(option: number | undefined, env: NodeJS.ProcessEnv = process.env): number {
  if (option !== undefined) return option;
  const raw = env[LEASE_TTL_ENV];
  if (raw === undefined || raw === '') return DEFAULT_LEASE_TTL_MS;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 100) throw new Error(`${LEASE_TTL_ENV}: expected a whole number of milliseconds ≥ 100, got '${raw}'`);
  return n;
}

/** Takes the run's lease and fences the store with it (released when the store closes). */
export async function takeLease(store: RunStore, ttlMs: number, onLost: () => void): Promise<Lease> {
  return store.acquireLease({ ttlMs, onLost });
}

/** Whether `e` (or the store's lease) says this owner lost the run to another one. */
export function leaseLost(store: RunStore, e?: unknown): boolean {
  return (e !== undefined && isStoreError(e, 'lease_lost')) || store.lease?.lost === true;
}

/**
 * The error an owner ends with once its lease is lost, naming the owner that has the run now: the
 * record that replaced ours, else lease.json as it is now, else the latest owner the journal names
 * (the new owner may have finished and released the lease already).
 */
export async function leaseLostError(store: RunStore, myPid: number = process.pid): Promise<LeaseLostError> {
  let pid = store.lease?.lostTo?.pid;
  if (pid === undefined) pid = await readLease(store.dir).then((r) => (r && r.ownerId !== store.lease?.ownerId ? r.pid : undefined), () => undefined);
  if (pid === undefined) {
    const { events } = await store.readJournal().catch(() => ({ events: [] as const }));
    for (let i = events.length - 1; i >= 0 && pid === undefined; i--) {
      const e = events[i]!;
      if ((e.type === 'run.started' || e.type === 'run.resumed') && e.owner && e.owner.pid !== myPid) pid = e.owner.pid;
    }
  }
  return new LeaseLostError(store.runId, pid);
}
