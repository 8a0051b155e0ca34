/**
 * The circuit breaker for usage and auth limits. Once an agent of a runner fails because its
 * account hit a usage limit (or its credentials were refused), every further agent of that runner
 * would fail the same way — after paying for its start-up. So the breaker opens for that runner:
 * agents already running finish, nothing new of that runner starts (the scheduler's `held`), other
 * runners go on, and once nothing else can run the run ends `paused` (see owner.ts). Attempts cut
 * off by the limit are set aside, not failed: a resume runs them again.
 */
import type { FailureInfo, PausedRunner } from '../store/types.js';

/** The runners a run may no longer start, and why. */
export class Breaker {
  readonly #open = new Map<string, PausedRunner>();

  /**
   * Opens the breaker of `runner` for `error` (of type quota or auth) seen on `ref`. Returns the
   * new entry when this opened it, undefined when it was open already.
   */
  trip(runner: string, ref: string, error: FailureInfo): PausedRunner | undefined {
    if (this.#open.has(runner)) return undefined;
    const p: PausedRunner = { runner, kind: error.type, ref, cause: error.message, ...(error.resumeAfter ? { resumeAfter: error.resumeAfter } : {}) };
    this.#open.set(runner, p);
    return p;
  }

  /** Whether agents of `runner` may not start any more. */
  isOpen(runner: string): boolean {
    return this.#open.has(runner);
  }

  /** Every open breaker, in the order they opened. */
  get paused(): PausedRunner[] {
    return [...this.#open.values()];
  }

  /**
   * When the run can resume: the latest reset time any paused runner named (resuming before the
   * last of them resets would pause again). Undefined when none said.
   */
  resumeAfter(): string | undefined {
    const times = this.paused.flatMap((p) => (p.resumeAfter ? [p.resumeAfter] : [])).sort();
    return times[times.length - 1];
  }

  /** One sentence for the run's reason: which runner hit which limit, and when to resume. */
  describe(): string {
    const parts = this.paused.map((p) =>
      p.kind === 'auth' ? `${p.runner} cannot log in (${clip(p.cause)})` : `${p.runner} hit a usage limit (${clip(p.cause)})`,
    );
    const after = this.resumeAfter();
    return `${parts.join('; ')}; no further agent of ${this.paused.map((p) => p.runner).join(', ')} was started` +
      (after ? `; resume after ${after} (resume with --wait-until-reset to wait until then)` : this.paused.some((p) => p.kind === 'auth') ? '; fix the login, then resume' : '; resume once the limit has reset');
  }
}

function clip(s: string, max = 200): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}
