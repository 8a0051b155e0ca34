/**
 * run.json while a run goes on: the live picture (Snapshot) for progress views, the RunRecord made
 * from it, and its persistence. run.json is rewritten whole on each write, so writes are coalesced
 * (at most one per interval); once the run's end is decided, run.json is written once, last: it is
 * the commit point readers watch (see `ownRun`).
 */
import type { Plan } from '../spec/types.js';
import type { Counts, DynamicState, PhaseState, RunRecord, RunStatus, SummarizerRun } from '../store/types.js';
import { SCHEMA_VERSION } from '../store/types.js';
import { isStoreError, type RunStore } from '../store/index.js';
import { countStates, phaseStates, type TaskState } from './phases.js';
import type { Spend } from './spend.js';
import { planForDisk } from './secret-env.js';
import { errText, now, warn } from './say.js';

/** A live picture of the run for progress views. */
export interface Snapshot {
  runId: string;
  name: string;
  status: RunStatus;
  phases: PhaseState[];
  totals: Counts;
  running: { ref: string; attempt: number; startedAt: number }[];
  elapsedMs: number;
  reason?: string;
}

/** The owner's state that run.json is made from (live maps, read at each write). */
export interface RunView {
  store: RunStore;
  /** run.json as this owner found it. */
  before: RunRecord;
  plan: Plan;
  /** Whether this owner resumes an earlier one. */
  resuming: boolean;
  state: ReadonlyMap<string, TaskState>;
  running: ReadonlyMap<string, { ref: string; attempt: number; startedAt: number }>;
  virtualFinal: ReadonlyMap<string, string>;
  dynamicStates: () => ReadonlyMap<string, DynamicState>;
  digestText: ReadonlyMap<string, string>;
  spend: Spend;
  /** Secrets redacted from the run's records so far (all owners): run.json's `totals.redactions`. */
  redactions?: () => number;
  /** Phase summarizers of every segment so far (live list). */
  summarizers?: readonly SummarizerRun[];
  /** Called whenever something changes. */
  onProgress?: (s: Snapshot) => void;
  /** Minimum interval between run.json rewrites (ms). */
  persistEveryMs?: number;
  /** Checkpoints waiting, runners paused by a limit, and when the run may resume (fresh at each write). */
  extra?: () => Pick<RunRecord, 'checkpoints' | 'pausedRunners' | 'resumeAfter'>;
}

/** Whether `status` is one of a live run (its owner goes on): `running` or `awaiting_approval`. */
export function isLiveStatus(status: RunStatus): boolean {
  return status === 'running' || status === 'awaiting_approval';
}

/** Status, snapshot and coalesced persistence of run.json for one owner. */
export class RunPersist {
  /** The run's status as this owner sees it. */
  status: RunStatus = 'running';
  /** Why the run ended as it did (set with the final status). */
  reason: string | undefined;
  readonly #v: RunView;
  readonly #segmentStart = Date.now();
  readonly #startedAt: string;
  readonly #priorElapsed: number;
  #timer: NodeJS.Timeout | undefined;
  #persisting: Promise<void> = Promise.resolve();
  // Set once the run's end is decided: from then on run.json is written once, last.
  #ending = false;

  constructor(v: RunView) {
    this.#v = v;
    this.#startedAt = v.resuming ? v.before.startedAt : new Date(this.#segmentStart).toISOString();
    this.#priorElapsed = v.resuming ? v.before.elapsedMs : 0;
  }

  /** The live picture. */
  snapshot(): Snapshot {
    const v = this.#v;
    const dynStates = v.dynamicStates();
    const phases = phaseStates(v.plan, v.state as Map<string, TaskState>, !isLiveStatus(this.status), v.virtualFinal, dynStates).map((p) => {
      const d = v.digestText.get(p.id);
      const ds = dynStates.get(p.id);
      return { ...p, ...(d === undefined ? {} : { digest: d }), ...(ds && Object.keys(ds).length > 0 ? { dynamic: ds } : {}) };
    });
    return {
      runId: v.store.runId,
      name: v.plan.name,
      status: this.status,
      phases,
      totals: countStates(v.state.values()),
      running: [...v.running.values()],
      elapsedMs: this.#priorElapsed + (Date.now() - this.#segmentStart),
      ...(this.reason ? { reason: this.reason } : {}),
    };
  }

  /** run.json as it stands now. */
  record(): RunRecord {
    const v = this.#v;
    const s = this.snapshot();
    const extra = v.extra?.() ?? {};
    return {
      ...v.before,
      // What an earlier segment waited for or paused on is not this one's: only fresh values count.
      checkpoints: extra.checkpoints?.length ? extra.checkpoints : undefined,
      pausedRunners: extra.pausedRunners?.length ? extra.pausedRunners : undefined,
      resumeAfter: extra.resumeAfter,
      schemaVersion: SCHEMA_VERSION,
      // Secret-looking values of the agents' env never reach run.json (see secret-env.ts).
      plan: planForDisk(v.plan),
      status: this.status,
      ...(this.reason ? { reason: this.reason } : { reason: undefined }),
      startedAt: this.#startedAt,
      ...(!isLiveStatus(this.status) ? { endedAt: now() } : { endedAt: undefined }),
      elapsedMs: s.elapsedMs,
      resumes: v.before.resumes + (v.resuming ? 1 : 0),
      phases: s.phases,
      totals: { ...s.totals, redactions: v.redactions?.() ?? 0 },
      spend: v.spend.total(),
      ...(v.summarizers && v.summarizers.length > 0 ? { summarizers: [...v.summarizers] } : {}),
      updatedAt: now(),
    };
  }

  /** Writes run.json now (after any write in flight); nothing once the end is decided. */
  persistNow(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#ending) return this.#persisting;
    const rec = this.record();
    this.#persisting = this.#persisting.then(() => this.#v.store.writeRun(rec)).catch((e) => {
      // A lost lease is not this write's failure to tell: the owner stops and says so once.
      if (!isStoreError(e, 'lease_lost')) warn(`cannot write run.json: ${errText(e)}`);
    });
    return this.#persisting;
  }

  /** Something changed: tell the progress view, and write run.json within the interval. */
  changed(): void {
    this.#v.onProgress?.(this.snapshot());
    if (!this.#timer) this.#timer = setTimeout(() => void this.persistNow(), this.#v.persistEveryMs ?? 250);
  }

  /** The run's end is decided: no more interim writes of run.json. */
  end(status: RunStatus, reason: string | undefined): void {
    this.#ending = true;
    this.status = status;
    this.reason = reason;
  }

  /** The final record, once every interim write has settled. */
  async final(): Promise<RunRecord> {
    const rec = this.record();
    await this.#persisting;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    return rec;
  }

  /** Cancels a pending interim write (the owner is leaving). */
  dispose(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Writes the final record: the commit point. */
  async commit(rec: RunRecord): Promise<void> {
    await this.#v.store.writeRun(rec);
    this.#v.onProgress?.(this.snapshot());
  }
}
