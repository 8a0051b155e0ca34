/**
 * Which attempt continues which session (issue 12 item 3): the engine's half of "continue, don't
 * restart" — the runners' half (keeping and resuming a CLI's session) is runners/sessions.ts.
 *
 * An attempt continues the session of the task's previous attempt when that one was cut off
 * rather than wrong: a transient failure (a retryable model or protocol error), a timeout, a
 * stall, a usage limit, a stop of the run, an answer refused by the schema (then with the
 * validation errors), or an owner that died mid-attempt. A restart a person asked for, and a
 * failure a retry cannot fix, start fresh. `continueSessions: false` (limits or agent) turns it off,
 * and so does an isolated (worktree) task: each attempt runs in a new folder, elsewhere than the
 * session.
 */
import path from 'node:path';
import type { AgentDef, Limits, PlanTask } from '../spec/types.js';
import type { AgentRecord } from '../store/types.js';
import type { ContinueFrom } from '../runners/sessions.js';
import { sessionUuid } from '../runners/sessions.js';

/** Runners whose sessions fanfold keeps and continues. */
const CONTINUABLE_RUNNERS: ReadonlySet<string> = new Set(['claude']);

/** Whether `agent`'s attempts continue sessions (agent over limits, default on). */
export function continuesSessions(agent: Pick<AgentDef, 'runner' | 'continueSessions'>, limits: Pick<Limits, 'continueSessions'>): boolean {
  return CONTINUABLE_RUNNERS.has(agent.runner) && (agent.continueSessions ?? limits.continueSessions ?? true);
}

/** Why an attempt that ended as `rec` is worth continuing, or undefined when the next should start fresh. */
export function cutOffBecause(rec: Pick<AgentRecord, 'status' | 'error'>): string | undefined {
  const e = rec.error;
  if (rec.status === 'timed_out') return `it timed out${e ? `: ${clip(e.message)}` : ''}`;
  if (!e) return undefined;
  if (rec.status === 'cancelled') return /^restarted by/.test(e.message) ? undefined : `it was stopped: ${clip(e.message)}`;
  if (rec.status !== 'failed') return undefined;
  switch (e.type) {
    case 'stalled':
      return `it showed no sign of life and was stopped: ${clip(e.message)}`;
    case 'invalid_structured_output':
      return 'its answer did not match the required schema';
    case 'quota':
      return `the model's usage limit was reached: ${clip(e.message)}`;
    case 'model_api':
    case 'protocol':
    case 'agent_error':
      return e.retryable ? `the model API failed: ${clip(e.message)}` : undefined;
    default:
      return undefined;
  }
}

function clip(s: string, max = 160): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

/** The sessions the next attempts of a run's tasks continue, by ref. */
export class SessionChain {
  readonly #next = new Map<string, ContinueFrom>();
  /** The last saved session of every task (a gate's next fix continues the previous fix's). */
  readonly #kept = new Map<string, ContinueFrom>();
  readonly #sessionDir: string;

  /** `sessionDir`: the run's `sessions/` folder. */
  constructor(sessionDir: string) {
    this.#sessionDir = sessionDir;
  }

  /** Notes how attempt `rec` of `ref` ended: its session is continued next, or forgotten. */
  ended(ref: string, rec: Pick<AgentRecord, 'attempt' | 'status' | 'error' | 'sessionId' | 'session'>): void {
    if (rec.session && rec.sessionId !== undefined) {
      this.#kept.set(ref, { attempt: rec.attempt, sessionId: rec.sessionId, file: path.join(this.#sessionDir, rec.session.file), origin: rec.session.origin, why: '', ref });
    }
    const why = cutOffBecause(rec);
    if (why === undefined || rec.sessionId === undefined) {
      this.#next.delete(ref);
      return;
    }
    this.#next.set(ref, {
      attempt: rec.attempt,
      sessionId: rec.sessionId,
      ...(rec.session ? { file: path.join(this.#sessionDir, rec.session.file), origin: rec.session.origin } : {}),
      why,
    });
  }

  /**
   * Attempt `attempt` of `ref` was started by an owner that died before writing its record: its
   * session, named by the id fanfold gave it, is still in the CLI's home.
   */
  cutOff(runId: string, ref: string, attempt: number): void {
    this.#next.set(ref, { attempt, sessionId: sessionUuid(runId, ref, attempt), why: 'the run stopped before it finished' });
  }

  /**
   * The session attempt `attempt` of `t` continues, if any (and if its agent continues sessions):
   * its own previous attempt's when that was cut off; for the first attempt of a gate's
   * `fix-(n+1)`, `fix-n`'s (the fixer keeps what it learnt; the new prompt brings the new failure).
   */
  forAttempt(t: Pick<PlanTask, 'ref' | 'isolation' | 'origin'>, attempt: number, agent: AgentDef, limits: Limits): ContinueFrom | undefined {
    // An isolated task runs each attempt in a fresh worktree: elsewhere than the session.
    if (!continuesSessions(agent, limits) || t.isolation === 'worktree') return undefined;
    const from = this.#next.get(t.ref);
    if (from && from.attempt < attempt) return from;
    const n = t.origin?.kind === 'fix' ? t.origin.iteration ?? 1 : 1;
    if (from === undefined && n > 1) {
      const prev = this.#kept.get(`${t.ref.slice(0, t.ref.indexOf('/'))}/fix-${n - 1}`);
      if (prev) return { ...prev, why: `fix ${n - 1} did not satisfy the gate` };
    }
    return undefined;
  }

  /** Whether the session of `ref` is known (see `keep`). */
  knows(ref: string): boolean {
    return this.#kept.has(ref);
  }

  /** Notes the saved session of an earlier owner's attempt of `ref` (a later fix may continue it). */
  keep(ref: string, rec: Pick<AgentRecord, 'attempt' | 'sessionId' | 'session'>): void {
    if (rec.session && rec.sessionId !== undefined) {
      this.#kept.set(ref, { attempt: rec.attempt, sessionId: rec.sessionId, file: path.join(this.#sessionDir, rec.session.file), origin: rec.session.origin, why: '', ref });
    }
  }
}
