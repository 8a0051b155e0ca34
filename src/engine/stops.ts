/**
 * Why a run stops early, gathered in one place: the caller's signal (Ctrl-C, a signal to the
 * process), a `fanfold stop` from any session (control.json, polled), the run timeout, and the
 * loss of the lease. Every running attempt, back-off sleep and summarizer listens on `signal`.
 */
import { setMaxListeners } from 'node:events';
import os from 'node:os';
import type { ControlRecord } from '../store/types.js';

/** Why a run was cut short from outside the scheduler. */
export type StopReason =
  | { kind: 'stop'; by: string }
  | { kind: 'timeout'; afterMs: number }
  | { kind: 'lease_lost'; by?: string }
  /** A checkpoint was rejected, or ran out of time with `onTimeout: stop`. */
  | { kind: 'checkpoint'; phaseId: string; by: string; answer: 'reject' | 'timeout_stop' };

/** What `Stops.watch` listens to. */
export interface StopSources {
  /** The caller's signal: aborting it stops the run gracefully. */
  outer?: AbortSignal;
  /** Reads control.json (a stop asked from another session). */
  readControl: () => Promise<ControlRecord | undefined>;
  /** How often control.json is polled (ms). */
  pollMs: number;
  /** limits.runTimeout (ms). */
  runTimeoutMs: number;
  /** Called once when the first stop is a request by someone (not a timeout or a lost lease). */
  onStopRequested: (by: string) => void;
}

/** The one stop switch of a run owner; the first reason wins. */
export class Stops {
  readonly #ctl = new AbortController();
  readonly #timers: NodeJS.Timeout[] = [];
  #outer: AbortSignal | undefined;
  /** The run timeout: what is left of it, since when its timer runs, and how many waits hold it. */
  #timeoutLeft = 0;
  #timeoutSince = 0;
  #timeoutTimer: NodeJS.Timeout | undefined;
  #holds = 0;
  #runTimeoutMs = 0;
  readonly #onOuter = () => this.stop({ kind: 'stop', by: describeReason(this.#outer?.reason) });

  constructor() {
    // Every running attempt, back-off sleep and summarizer listens on this signal; the pool cap
    // (≤ 16) bounds them, but Node's default warning threshold is 10.
    setMaxListeners(256, this.#ctl.signal);
  }

  /** Aborted with a StopReason once the run must stop. */
  get signal(): AbortSignal {
    return this.#ctl.signal;
  }

  /** The reason of the stop, once there is one. */
  get reason(): StopReason | undefined {
    return this.#ctl.signal.aborted ? (this.#ctl.signal.reason as StopReason) : undefined;
  }

  /** Stops the run (no-op once stopped). */
  stop(r: StopReason): void {
    if (!this.#ctl.signal.aborted) this.#ctl.abort(r);
  }

  /** Starts listening to the outer signal, control.json and the run timeout. */
  watch(s: StopSources): void {
    this.#outer = s.outer;
    if (s.outer?.aborted) this.#onOuter();
    else s.outer?.addEventListener('abort', this.#onOuter, { once: true });
    this.#timers.push(setInterval(() => {
      s.readControl().then((c) => {
        if (c?.request === 'stop') this.stop({ kind: 'stop', by: `fanfold stop (pid ${c.by.pid} on ${c.by.host})` });
      }, () => {});
    }, s.pollMs));
    this.#runTimeoutMs = s.runTimeoutMs;
    this.#timeoutLeft = s.runTimeoutMs;
    this.#startClock();
    this.#ctl.signal.addEventListener('abort', () => {
      const r = this.#ctl.signal.reason as StopReason;
      if (r.kind === 'stop') s.onStopRequested(r.by);
    }, { once: true });
  }

  #startClock(): void {
    this.#timeoutSince = Date.now();
    this.#timeoutTimer = setTimeout(() => this.stop({ kind: 'timeout', afterMs: this.#runTimeoutMs }), Math.max(0, this.#timeoutLeft));
  }

  /**
   * A checkpoint starts waiting for a person: the run timeout's clock stops until every such wait
   * has ended (waiting for a person is not the run taking long).
   */
  holdClock(): void {
    if (this.#holds++ > 0 || this.#timeoutTimer === undefined) return;
    clearTimeout(this.#timeoutTimer);
    this.#timeoutTimer = undefined;
    this.#timeoutLeft -= Date.now() - this.#timeoutSince;
  }

  /** A wait held by `holdClock` ended. */
  releaseClock(): void {
    if (this.#holds === 0 || --this.#holds > 0 || this.#ctl.signal.aborted || this.#timeoutTimer !== undefined) return;
    this.#startClock();
  }

  /** Stops listening (timers cleared, the outer listener removed). */
  dispose(): void {
    clearTimeout(this.#timeoutTimer);
    for (const t of this.#timers) clearTimeout(t);
    this.#outer?.removeEventListener('abort', this.#onOuter);
  }
}

function describeReason(r: unknown): string {
  if (typeof r === 'string') return r;
  if (r && typeof r === 'object' && 'by' in r) return String((r as { by: unknown }).by);
  return `a signal to pid ${process.pid} on ${os.hostname()}`;
}
