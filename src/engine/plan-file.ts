/**
 * Turning a spec file into a plan, the one way every entry point (CLI, owner, MCP) does it, so
 * agent resolution and validation never differ between them.
 */
import path from 'node:path';
import { buildPlan, loadSpecFile, RUNNER_KINDS } from '../spec/index.js';
import { SpecError, type Plan, type RunnerKind, type SpecIssue } from '../spec/types.js';
import { defaultRunner, loadProfiles } from '../runners/profiles.js';
import { securityNotes } from '../runners/sandbox.js';
import { compileSchema } from '../runners/structured.js';

/** Options shared by `loadPlanFile` and `planFromInput`. */
export interface PlanOptions {
  /** The project directory, whose `.claude/agents/` profiles come first (default `process.cwd()`). */
  cwd?: string;
  /** Env for FANFOLD_RUNNER, PATH and the user's profile folder (default `process.env`). */
  env?: NodeJS.ProcessEnv;
}

/** Loads, validates and normalizes a spec file; throws SpecError naming every problem. */
export async function loadPlanFile(file: string, opts: PlanOptions = {}): Promise<Plan> {
  const { spec } = await loadSpecFile(path.resolve(file));
  return planFromInput(spec, opts);
}

/**
 * Validates and normalizes a spec given as an object or as YAML/JSON text. Agents the spec names
 * but does not define are agent profiles: the project's `.claude/agents/`, the user's, then the
 * bundled ones. Every task schema must compile.
 */
export function planFromInput(input: unknown, opts: PlanOptions = {}): Plan {
  const profiles = loadProfiles({
    cwd: opts.cwd ?? process.cwd(),
    ...(opts.env ? { env: opts.env } : {}),
    ...specRunnerOf(input),
  });
  const plan = buildPlan(input, {
    resolveAgent: (name) => profiles.resolve(name),
    // An agent defined without a runner runs on the host's agent CLI, as a profile would.
    hostRunner: () => defaultRunner({ ...(opts.env ? { env: opts.env } : {}) }),
  });
  checkSchemas(plan);
  // Machine facts (is bubblewrap here?) join the plan here, not in spec/: building a plan stays pure.
  const notes = securityNotes(plan, opts.env ?? process.env);
  if (notes.length > 0) plan.security = notes;
  return plan;
}

/** The spec's `defaults.runner` when it is a known kind (the schema reports anything else). */
function specRunnerOf(input: unknown): { specRunner?: RunnerKind } {
  const r = (input as { defaults?: { runner?: unknown } } | null)?.defaults?.runner;
  return typeof r === 'string' && (RUNNER_KINDS as readonly string[]).includes(r) ? { specRunner: r as RunnerKind } : {};
}

/** Throws a SpecError naming every task whose schema is not a JSON Schema a validator accepts. */
function checkSchemas(plan: Plan): void {
  const issues: SpecIssue[] = [];
  const seen = new Map<string, string | undefined>();
  for (const t of plan.tasks) {
    if (!t.schema) continue;
    const key = JSON.stringify(t.schema);
    if (!seen.has(key)) {
      let problem: string | undefined;
      try {
        compileSchema(t.schema);
      } catch (e) {
        problem = (e as Error).message;
      }
      seen.set(key, problem);
    }
    const problem = seen.get(key);
    if (problem !== undefined) issues.push({ path: `task ${t.ref}`, message: `schema is ${problem}` });
  }
  if (issues.length > 0) throw new SpecError(issues);
}
