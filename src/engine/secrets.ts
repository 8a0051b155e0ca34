/**
 * Secrets in a run, seen from the engine: the run's Redactor (built once per owner from the
 * owner's environment and the plan), the redaction of one attempt's result before its record is
 * built, and the running count that run.json's totals carry.
 *
 * Why here, at the one place records are made: everything downstream — the record file, the
 * journal's causes, the search index, digests, context files of later tasks, the report and every
 * MCP answer — is derived from records, so one redaction before the record is written keeps the
 * original out of all of them.
 */
import type { Plan } from '../spec/types.js';
import type { AgentRecord, FailureInfo } from '../store/types.js';
import type { RunnerResult } from '../runners/types.js';
import { Redactor, countsToList, isSecretName, secretValuesOf, type RedactionCount, type SecretValue } from '../redact/index.js';

/**
 * The redactor of a run: exact values of the owner's secret-looking env variables, of every
 * agent's passEnv names, and of secret-looking names in the agents' own `env`; then the format
 * table.
 */
export function runRedactor(plan: Pick<Plan, 'agents'>, env: NodeJS.ProcessEnv = process.env): Redactor {
  const agents = Object.values(plan.agents);
  const passed = agents.flatMap((a) => a.passEnv ?? []);
  const values: SecretValue[] = secretValuesOf(env, passed);
  for (const a of agents) {
    for (const [name, value] of Object.entries(a.env ?? {})) {
      if (isSecretName(name) && value.length >= 8 && value !== SPEC_SECRET_PLACEHOLDER) values.push({ rule: `env:${name}`, value });
    }
  }
  return new Redactor(values);
}

/** What replaces the value of a secret-looking name of an agent's `env` in run.json. */
export const SPEC_SECRET_PLACEHOLDER = '[REDACTED]';

/** One attempt's result and patch, with every secret replaced, and what was replaced. */
export interface CleanAttempt {
  result: RunnerResult;
  patch?: AgentRecord['patch'];
  redactions: RedactionCount[];
}

/**
 * Redacts what an attempt's record keeps of the child: output, stderr tail, structured answer,
 * error message and the patch's diff. A patch that changed is marked `redacted` (the merge uses
 * the original, which only the owner's memory holds).
 */
export function redactAttempt(redactor: Redactor, result: RunnerResult, patch?: AgentRecord['patch'], output?: { text: string; counts: Map<string, number> }): CleanAttempt {
  const counts = output?.counts ?? new Map<string, number>();
  const clean: RunnerResult = {
    ...result,
    output: output?.text ?? redactor.redact(result.output, counts).text,
    stderrTail: redactor.redact(result.stderrTail, counts).text,
  };
  if (result.structured !== undefined) clean.structured = redactor.redactValue(result.structured, counts);
  if (result.error) {
    const error: FailureInfo = { ...result.error, message: redactor.redact(result.error.message, counts).text };
    clean.error = error;
  }
  let cleanPatch = patch;
  if (patch) {
    const before = total(counts);
    const diff = redactor.redact(patch.diff, counts).text;
    if (total(counts) > before) cleanPatch = { ...patch, diff, redacted: true };
  }
  return { result: clean, ...(cleanPatch ? { patch: cleanPatch } : {}), redactions: countsToList(counts) };
}

/** Outputs of at least this many characters are redacted by `redactBig` when one is given. */
export const BIG_OUTPUT_CHARS = 1024 * 1024;

/**
 * `redactAttempt`, with a big output (BIG_OUTPUT_CHARS or more) redacted by `redactBig` — the
 * owner's worker thread (Offloader.redact): redacting 60 MiB took ~2.5 s, a stall that starved
 * the owner's heartbeat. The rest (stderr tail, error, structured answer, patch) is small.
 */
export async function redactAttemptAsync(
  redactor: Redactor,
  result: RunnerResult,
  patch: AgentRecord['patch'] | undefined,
  redactBig: ((text: string, counts: Map<string, number>) => Promise<string>) | undefined,
): Promise<CleanAttempt> {
  if (redactBig === undefined || result.output.length < BIG_OUTPUT_CHARS) return redactAttempt(redactor, result, patch);
  const counts = new Map<string, number>();
  const text = await redactBig(result.output, counts);
  return redactAttempt(redactor, result, patch, { text, counts });
}

function total(counts: Map<string, number>): number {
  let n = 0;
  for (const v of counts.values()) n += v;
  return n;
}

/** A merge item as the merge step gives it (see worktree.ts MergeItem). */
interface PatchItem {
  ref: string;
  patch: NonNullable<AgentRecord['patch']>;
}

/**
 * The originals of patches whose stored copy was redacted, kept in the owner's memory only: the
 * merge must apply what the agent wrote, not `[REDACTED:…]`, and the original must never reach
 * the run folder. A resumed owner has lost them: such a patch is reported as a conflict instead of
 * writing markers into the project.
 */
export class PatchOriginals {
  readonly #byRef = new Map<string, { stored: string; original: NonNullable<AgentRecord['patch']> }>();

  /** The latest attempt of `ref` stored `stored` (redacted) for the agent's `original` patch. */
  remember(ref: string, stored: NonNullable<AgentRecord['patch']>, original: NonNullable<AgentRecord['patch']>): void {
    this.#byRef.set(ref, { stored: stored.diff, original });
  }

  /** The items to apply, with originals in place of redacted copies, and the ones that cannot be applied. */
  resolve<T extends PatchItem>(items: T[]): { items: T[]; lost: { ref: string; files: string[]; message: string }[] } {
    const out: T[] = [];
    const lost: { ref: string; files: string[]; message: string }[] = [];
    for (const item of items) {
      if (!item.patch.redacted) {
        out.push(item);
        continue;
      }
      const kept = this.#byRef.get(item.ref);
      if (kept && kept.stored === item.patch.diff) out.push({ ...item, patch: kept.original });
      else {
        lost.push({
          ref: item.ref,
          files: item.patch.files,
          message:
            'the stored patch had secrets redacted and its original left with the owner that ran the task (a resume cannot merge it); ' +
            'run the task again, or apply the change by hand',
        });
      }
    }
    return { items: out, lost };
  }
}
