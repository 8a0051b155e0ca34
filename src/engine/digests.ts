/**
 * Phase digests during a run: computed once per phase, when the phase has ended or a later task
 * needs it. Extractive by default (deterministic, no model); with `summarize: {agent}` on the
 * phase an agent writes it, and the extractive digest is its fallback when that agent fails.
 *
 * A summarizer is an agent like any other, so it is held to the same rules (through
 * {@link SummarizerHooks}): it does not start once `limits.budget` is spent or could be crossed
 * (the extractive digest stands in, and says why), it gets the dollars left as its own ceiling,
 * what it costs is counted, and its pid is journaled so that a resume can kill it if its owner dies.
 */
import type { Plan, PlanPhase, RunnerKind } from '../spec/types.js';
import type { AgentRecord, SummarizerRun } from '../store/types.js';
import type { RunStore } from '../store/index.js';
import type { Runner } from '../runners/types.js';
import { DEFAULT_DIGEST_CHARS, buildContextFile, phaseDigest, type PhaseDigestInput } from '../digest/index.js';

/** Options of PhaseDigests. */
export interface PhaseDigestsOptions {
  store: RunStore;
  plan: Plan;
  cwd: string;
  /** Latest agent file of each task ref that has one. */
  latestFile: ReadonlyMap<string, string>;
  runners: (kind: RunnerKind) => Runner;
  /** Ends a summarizer agent when the run stops. */
  signal: AbortSignal;
  /** Called once per phase when its digest is known. */
  onReady?: (phaseId: string, digest: string) => void;
  maxChars?: number;
  /** Which task outputs make the digest (default: all); skeptics and gate checks are evidence, not results. */
  include?: (ref: string) => boolean;
  /** A line or two put before the digest: what the phase's dynamic parts decided (verdicts, gate, rounds). */
  note?: (phaseId: string) => string | undefined;
  /** What a record shows in the digest (refuted findings dropped). */
  view?: (rec: AgentRecord) => { output: string; structured?: unknown };
  /**
   * Computes an extractive digest somewhere else (the owner's rendering worker, see offload.ts);
   * default: phaseDigest in this thread. A failure falls back to this thread.
   */
  render?: (input: PhaseDigestInput) => Promise<string>;
  /** The owner's rules for summarizer agents (budget, journal, spend); none: they run unchecked (tests). */
  summarizers?: SummarizerHooks;
}

/** What the owner does around a summarizer agent. */
export interface SummarizerHooks {
  /** Why no agent may start now (the budget), or undefined when one may. */
  refuse(): string | undefined;
  /** Dollars left under `limits.budget.usd`, when there is such a ceiling. */
  remainingUsd(): number | undefined;
  /** The attempt number of this phase's next summarizer (above every one journaled). */
  nextAttempt(phaseId: string): number;
  /** The child started: journal its pid before anything else happens to it (it gets its prompt after). */
  spawned(ref: string, attempt: number, pid: number): Promise<void>;
  /** It ended, failed or was not started: count it, journal it, show it. */
  finished(run: SummarizerRun): Promise<void>;
  /** Secrets out of what it wrote (its digest and its failure cause go to disk and to agents). */
  redact?(text: string): string;
}

/** Memoized digests of the phases of one run. */
export class PhaseDigests {
  readonly #o: PhaseDigestsOptions;
  readonly #memo = new Map<string, Promise<string>>();
  readonly #done = new Map<string, string>();

  constructor(opts: PhaseDigestsOptions) {
    this.#o = opts;
  }

  /** Digests known so far, by phase id. */
  known(): Record<string, string> {
    return Object.fromEntries(this.#done);
  }

  /** The digest of a phase, computed at most once. */
  get(phaseId: string): Promise<string> {
    let p = this.#memo.get(phaseId);
    if (!p) {
      p = this.#compute(phaseId).then((d) => {
        this.#done.set(phaseId, d);
        this.#o.onReady?.(phaseId, d);
        return d;
      });
      this.#memo.set(phaseId, p);
    }
    return p;
  }

  /** Whether a phase's digest is being or has been computed. */
  started(phaseId: string): boolean {
    return this.#memo.has(phaseId);
  }

  async #records(phase: PlanPhase): Promise<AgentRecord[]> {
    const out: AgentRecord[] = [];
    for (const ref of phase.taskRefs) {
      if (this.#o.include && !this.#o.include(ref)) continue;
      const file = this.#o.latestFile.get(ref);
      if (!file) continue;
      const rec = await this.#o.store.readAgentRecord(file);
      if (!this.#o.view) {
        out.push(rec);
        continue;
      }
      const { structured: _raw, ...rest } = rec;
      const seen = this.#o.view(rec);
      out.push({ ...rest, output: seen.output, ...(seen.structured !== undefined ? { structured: seen.structured } : {}) });
    }
    return out;
  }

  async #compute(phaseId: string): Promise<string> {
    const { plan } = this.#o;
    const phase = plan.phases.find((p) => p.id === phaseId);
    if (!phase) return '';
    const maxChars = this.#o.maxChars ?? DEFAULT_DIGEST_CHARS;
    const records = await this.#records(phase);
    const note = this.#o.note?.(phaseId);
    const room = note ? Math.max(200, maxChars - Math.min(note.length, Math.floor(maxChars / 2)) - 1) : maxChars;
    const shown = this.#o.include ? { ...phase, taskRefs: phase.taskRefs.filter(this.#o.include) } : phase;
    const input: PhaseDigestInput = { phase: shown, ...(plan.goal ? { goal: plan.goal } : {}), records, maxChars: room };
    const render = this.#o.render;
    const extractive = render ? await render(input).catch(() => phaseDigest(input)) : phaseDigest(input);
    const body = !phase.summarize || records.length === 0 ? extractive : await this.#summarize(phase, records, extractive, room);
    return note ? clipWithNote(body, note, maxChars) : body;
  }

  /** Runs the phase's summarizer agent; any failure falls back to the extractive digest, said out loud. */
  async #summarize(phase: PlanPhase, records: AgentRecord[], extractive: string, maxChars: number): Promise<string> {
    const { store, plan } = this.#o;
    const name = phase.summarize!.agent;
    const agent = plan.agents[name];
    if (!agent) return `${extractive}\n(summarizer '${name}' is not defined; extractive digest)`.slice(0, maxChars);
    const hooks = this.#o.summarizers;
    const ref = `${phase.id}/_digest`;
    const attempt = hooks?.nextAttempt(phase.id) ?? 1;
    const startedAt = new Date();
    const base = { phaseId: phase.id, ref, agent: name, runner: agent.runner, attempt, startedAt: startedAt.toISOString() };
    // Why check here, at the last moment: the budget may have been spent while the phase ran, and
    // a run that ended budget_exhausted must start nothing more.
    const refused = hooks?.refuse();
    if (refused !== undefined) {
      await hooks!.finished({ ...base, status: 'not_started', cause: refused, durationMs: 0 });
      return clipWithNote(extractive, `(summarizer '${name}' not started: ${refused}; extractive digest)`, maxChars);
    }
    const prompt =
      `Write a digest of phase '${phase.id}' (${phase.title}) of the workflow '${plan.name}'` +
      (plan.goal ? ` whose goal is: ${plan.goal}` : '') +
      `.\nAt most ${maxChars} characters. Keep numbers, names, findings, and failures with their causes. ` +
      `The outputs of its ${records.length} tasks are in the JSON file named by FANFOLD_CONTEXT_FILE; an extractive digest follows.\n\n${extractive}\n`;
    const promptFile = await store.writeInput(`${phase.id}.digest.prompt.txt`, prompt);
    const contextFile = await store.writeInput(
      `${phase.id}.digest.context.json`,
      buildContextFile({
        deps: records.map((r) => ({ ref: `${r.phaseId}/${r.taskId}`, status: r.status, output: r.output, truncated: r.truncated, ...(r.structured !== undefined ? { structured: r.structured } : {}) })),
        digests: {},
        maxBytes: plan.limits.maxContextBytes,
      }),
    );
    let pid: number | undefined;
    const remainingUsd = hooks?.remainingUsd();
    let outcome: { text?: string; cause?: string; costUsd?: number; usage?: SummarizerRun['usage'] };
    try {
      const res = await this.#o.runners(agent.runner).run({
        runId: store.runId, phaseId: phase.id, taskId: 'digest', attempt, prompt, agent, cwd: this.#o.cwd,
        promptFile, contextFile, timeoutMs: plan.limits.agentTimeoutMs, maxOutputBytes: 64 * 1024, signal: this.#o.signal,
        onSpawn: (p) => {
          pid = p;
          return hooks?.spawned(ref, attempt, p);
        },
        // Why: a summarizer spends from the same budget as the run's other agents.
        ...(remainingUsd !== undefined ? { maxBudgetUsd: remainingUsd } : {}),
      });
      const clean = (t: string) => hooks?.redact?.(t) ?? t;
      const text = clean(res.output.trim());
      const ok = res.status === 'succeeded' && text.length > 0;
      outcome = {
        ...(ok ? { text } : { cause: clean(res.error?.message ?? (text ? res.status : 'empty output')) }),
        ...(res.costUsd !== undefined ? { costUsd: res.costUsd } : {}),
        ...(res.usage ? { usage: res.usage } : {}),
      };
    } catch (e) {
      outcome = { cause: e instanceof Error ? e.message : String(e) };
    }
    await hooks?.finished({
      ...base,
      status: outcome.text !== undefined ? 'succeeded' : 'failed',
      durationMs: Date.now() - startedAt.getTime(),
      ...(pid !== undefined ? { pid } : {}),
      ...(outcome.cause !== undefined ? { cause: outcome.cause } : {}),
      ...(outcome.costUsd !== undefined ? { costUsd: outcome.costUsd } : {}),
      ...(outcome.usage ? { usage: outcome.usage } : {}),
    });
    if (outcome.text !== undefined) return outcome.text.length > maxChars ? outcome.text.slice(0, maxChars - 1) + '…' : outcome.text;
    return clipWithNote(extractive, `(summarizer '${name}' failed: ${outcome.cause}; extractive digest)`, maxChars);
  }
}

function clipWithNote(text: string, note: string, maxChars: number): string {
  const half = Math.floor(maxChars / 2);
  let n = note;
  if (n.length > half) {
    // Whole lines only, and say that some were left out (a verdict cut mid-line reads as a claim).
    const lines = note.split('\n');
    const kept: string[] = [];
    let used = 0;
    for (const line of lines) {
      if (used + line.length + 1 > half - 40) break;
      kept.push(line);
      used += line.length + 1;
    }
    const left = lines.length - kept.length;
    n = kept.length > 0 ? `${kept.join('\n')}\n… ${left} more line(s) in the report` : `${note.slice(0, half - 1)}…`;
  }
  const room = maxChars - n.length - 1;
  return (text.length > room ? text.slice(0, Math.max(0, room - 1)) + '…' : text) + '\n' + n;
}
