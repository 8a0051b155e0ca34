/**
 * What a task reads: its prompt after templating (`{{digest}}`, `{{digest.<phaseId>}}`) and the
 * bounded context file with the outputs of the tasks it depends on. Both are written under the
 * run's `inputs/` folder so an attempt can be audited (and re-run) exactly as it was given.
 */
import type { Plan, PlanTask } from '../spec/types.js';
import type { RunStore } from '../store/index.js';
import type { AgentRecord } from '../store/types.js';
import { buildContextFile, renderPrompt, type ContextDep } from '../digest/index.js';

/** Files handed to one attempt. */
export interface PreparedInputs {
  prompt: string;
  promptFile: string;
  contextFile: string;
}

/** Gives the digest of a phase a task depends on (undefined when there is none yet). */
export type DigestSource = (phaseId: string) => Promise<string | undefined>;

/** Tracks finished outputs, and prepares each attempt's inputs from them and the phase digests. */
export class TaskInputs {
  readonly #store: RunStore;
  readonly #plan: Plan;
  /** Latest succeeded agent file per ref. */
  readonly #files: Map<string, string>;
  readonly #digestOf: DigestSource;
  readonly #expand: (ref: string) => string[];
  readonly #view: ((rec: AgentRecord) => { output: string; structured?: unknown }) | undefined;

  /**
   * `expand` turns the end node of a dynamic phase (`<phase>/_done`) into the tasks whose outputs
   * later tasks read (its work tasks: no skeptics, no checks).
   */
  constructor(store: RunStore, plan: Plan, files: Map<string, string>, digestOf: DigestSource, expand: (ref: string) => string[] = () => [],
    view?: (rec: AgentRecord) => { output: string; structured?: unknown }) {
    this.#view = view;
    this.#store = store;
    this.#plan = plan;
    this.#files = new Map(files);
    this.#digestOf = digestOf;
    this.#expand = expand;
  }

  /** Remembers the file of a task's succeeded attempt. */
  recordFile(ref: string, file: string): void {
    this.#files.set(ref, file);
  }

  /** The file of a task's latest succeeded attempt, if any. */
  fileOf(ref: string): string | undefined {
    return this.#files.get(ref);
  }

  /**
   * Writes the prompt and context files of one attempt and returns them. `feedback` (why the
   * previous attempt's answer was refused, e.g. schema validation errors) is appended to the prompt.
   */
  async prepare(task: PlanTask, attempt: number, feedback?: string): Promise<PreparedInputs> {
    const deps: ContextDep[] = [];
    const refs = task.deps.flatMap((r) => (r.charCodeAt(r.indexOf('/') + 1) === 95 ? this.#expand(r) : [r]));
    const prev: string[] = [];
    // Why read at most this much of each output: the context file holds at most maxContextBytes,
    // and an output may be 64 MiB; nothing more than the budget is ever read into memory.
    const budget = this.#plan.limits.maxContextBytes + 1;
    for (const ref of refs) {
      const file = this.#files.get(ref);
      if (!file) continue;
      let rec: AgentRecord;
      try {
        rec = await this.#store.readAgentRecord(file);
      } catch (err) {
        // Building a dependent's context never throws: a record that cannot be read (e.g. an
        // older run's record over the read cap) is handed on as empty, and says why.
        deps.push({ ref, status: 'failed', output: `(fanfold could not read this output: ${(err as Error).message})`, truncated: true });
        continue;
      }
      const read = await this.#store.readAgentOutput(rec, budget).catch((err: unknown) => ({
        text: `(fanfold could not read this output: ${(err as Error).message})`, complete: false, storedBytes: 0,
      }));
      const whole = { ...rec, output: read.text };
      // What a dependency on a verified phase hands on has its refuted findings dropped.
      const seen = this.#view && !task.deps.includes(ref) ? this.#view(whole) : { output: read.text, ...(rec.structured !== undefined ? { structured: rec.structured } : {}) };
      deps.push({
        ref, status: rec.status, output: seen.output, truncated: rec.truncated || !read.complete,
        ...(seen.structured !== undefined ? { structured: seen.structured } : rec.structuredIn === 'output' ? { structuredOmitted: true as const } : {}),
      });
      if (task.origin?.kind === 'item' && task.deps.includes(ref)) prev.push(read.text.slice(0, 8000));
    }
    const depPhases = [...new Set(task.deps.map((r) => r.slice(0, r.indexOf('/'))))];
    const digests: Record<string, string> = {};
    for (const p of depPhases) {
      const d = await this.#digestOf(p);
      if (d !== undefined) digests[p] = d;
    }
    const o = task.origin;
    const vars: Record<string, unknown> = {};
    if (o) {
      if (o.item !== undefined) vars.item = o.item;
      if (o.finding !== undefined) vars.finding = o.finding;
      if (o.failure !== undefined) vars.failure = o.failure;
      if (o.kind === 'round') vars.seen = o.seen ?? '(nothing yet)';
      if (o.iteration !== undefined) vars.iteration = o.iteration;
      if (o.round !== undefined) vars.round = o.round;
      if (prev.length > 0) vars.prev = clipText(prev.map((p) => p.trim()).join('\n\n'), 8000);
    }
    let prompt = renderPrompt(task.prompt, { digests, deps: depPhases, vars });
    if (feedback) prompt += `\n\n---\nYour previous answer (attempt ${attempt - 1}) was refused:\n${feedback.slice(0, 4000)}\nAnswer again, fixing exactly that.\n`;
    const base = `${task.phaseId}.${task.taskId}.${attempt}`;
    const promptFile = await this.#store.writeInput(`${base}.prompt.txt`, prompt);
    const contextFile = await this.#store.writeInput(
      `${base}.context.json`,
      buildContextFile({ deps, digests, maxBytes: this.#plan.limits.maxContextBytes }),
    );
    return { prompt, promptFile, contextFile };
  }
}

function clipText(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}
