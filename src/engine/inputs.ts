/**
 * What a task reads: its prompt after templating (`{{digest}}`, `{{digest.<phaseId>}}`) and the
 * bounded context file with the outputs of the tasks it depends on. Both are written under the
 * run's `inputs/` folder so an attempt can be audited (and re-run) exactly as it was given.
 */
import type { Plan, PlanTask } from '../spec/types.js';
import type { RunStore } from '../store/index.js';
import { buildContextFile, renderPrompt } from '../digest/index.js';

/** Files handed to one attempt. */
export interface PreparedInputs {
  prompt: string;
  promptFile: string;
  contextFile: string;
}

/** Tracks finished outputs and phase digests, and prepares each attempt's inputs from them. */
export class TaskInputs {
  readonly #store: RunStore;
  readonly #plan: Plan;
  /** Latest succeeded agent file per ref. */
  readonly #files: Map<string, string>;
  readonly #digests = new Map<string, string>();

  constructor(store: RunStore, plan: Plan, files: Map<string, string>) {
    this.#store = store;
    this.#plan = plan;
    this.#files = new Map(files);
  }

  /** Remembers the file of a task's succeeded attempt. */
  recordFile(ref: string, file: string): void {
    this.#files.set(ref, file);
  }

  /** The file of a task's latest succeeded attempt, if any. */
  fileOf(ref: string): string | undefined {
    return this.#files.get(ref);
  }

  /** Sets the digest of a finished phase, for later phases' prompts and context. */
  setDigest(phaseId: string, digest: string): void {
    this.#digests.set(phaseId, digest);
  }

  /** Digests known so far. */
  digests(): Record<string, string> {
    return Object.fromEntries(this.#digests);
  }

  /** Writes the prompt and context files of one attempt and returns them. */
  async prepare(task: PlanTask, attempt: number): Promise<PreparedInputs> {
    const deps = [];
    for (const ref of task.deps) {
      const file = this.#files.get(ref);
      if (!file) continue;
      const rec = await this.#store.readAgentRecord(file);
      deps.push({ ref, status: rec.status, output: rec.output, ...(rec.structured !== undefined ? { structured: rec.structured } : {}) });
    }
    const depPhases = [...new Set(task.deps.map((r) => r.slice(0, r.indexOf('/'))))];
    const digests: Record<string, string> = {};
    for (const p of depPhases) {
      const d = this.#digests.get(p);
      if (d !== undefined) digests[p] = d;
    }
    const prompt = renderPrompt(task.prompt, { digests, deps: depPhases });
    const base = `${task.phaseId}.${task.taskId}.${attempt}`;
    const promptFile = await this.#store.writeInput(`${base}.prompt.txt`, prompt);
    const contextFile = await this.#store.writeInput(
      `${base}.context.json`,
      buildContextFile({ deps, digests, maxBytes: this.#plan.limits.maxContextBytes }),
    );
    return { prompt, promptFile, contextFile };
  }
}
