/**
 * Turning a spec file into a plan, the one way every entry point (CLI, owner, MCP) does it, so
 * agent resolution and validation never differ between them.
 */
import { buildPlan, loadSpecFile, RUNNER_KINDS } from '../spec/index.js';
import { SpecError, type Plan, type RunnerKind, type SpecIssue } from '../spec/types.js';
import { defaultRunner, loadProfiles } from '../runners/profiles.js';
import { securityNotes } from '../runners/sandbox.js';
import { AGENT_CLIS, isCliInstalled, type AgentCliKind } from '../runners/agent-cli.js';
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
  // The path as the user wrote it, so messages name it that way (open() resolves it against cwd).
  const { spec } = await loadSpecFile(file);
  return planFromInput(spec, opts);
}

/**
 * Validates and normalizes a spec given as an object or as YAML/JSON text. Agents the spec names
 * but does not define are agent profiles: the project's `.claude/agents/`, the user's, then the
 * bundled ones. Every task schema must compile.
 */
export function planFromInput(input: unknown, opts: PlanOptions = {}): Plan {
  const env = opts.env ?? process.env;
  // Planning is validation: with no agent CLI installed, agents that name no runner are planned
  // on claude (the default when it is installed) and the plan says what to install; only running
  // refuses (see missingAgentClis).
  const noCli = !env.FANFOLD_RUNNER?.trim() && !isCliInstalled('claude', env) && !isCliInstalled('codex', env);
  const planEnv = noCli ? { ...env, FANFOLD_RUNNER: 'claude' } : env;
  const profiles = loadProfiles({
    cwd: opts.cwd ?? process.cwd(),
    env: planEnv,
    ...specRunnerOf(input),
  });
  const plan = buildPlan(input, {
    resolveAgent: (name) => profiles.resolve(name),
    // An agent defined without a runner runs on the host's agent CLI, as a profile would.
    hostRunner: () => defaultRunner({ env: planEnv }),
  });
  checkSchemas(plan);
  // Machine facts (is bubblewrap here?) join the plan here, not in spec/: building a plan stays pure.
  const notes = securityNotes(plan, opts.env ?? process.env);
  if (notes.length > 0) plan.security = notes;
  for (const m of missingAgentClis(plan, env)) plan.warnings.push(missingCliText(m));
  return plan;
}

/** An agent CLI the plan's agents run on that is not installed here, and those agents. */
export interface MissingCli {
  kind: AgentCliKind;
  agents: string[];
}

/** The agent CLIs a plan needs that cannot be found (on PATH, or at `FANFOLD_<KIND>_BIN`). */
export function missingAgentClis(plan: Plan, env: NodeJS.ProcessEnv = process.env): MissingCli[] {
  const byKind = new Map<AgentCliKind, string[]>();
  for (const [name, agent] of Object.entries(plan.agents)) {
    const kind = agent.runner;
    if (kind !== 'claude' && kind !== 'codex' && kind !== 'pi') continue;
    if (!byKind.has(kind)) byKind.set(kind, []);
    byKind.get(kind)!.push(name);
  }
  return [...byKind].filter(([kind]) => !isCliInstalled(kind, env)).map(([kind, agents]) => ({ kind, agents }));
}

/** "agent CLI 'claude' (Claude Code) is not installed here; agents a, b need it: npm i -g …". */
export function missingCliText(m: MissingCli): string {
  const c = AGENT_CLIS[m.kind];
  const names = m.agents.slice(0, 6).map((a) => `'${a}'`).join(', ') + (m.agents.length > 6 ? `, … (${m.agents.length} in all)` : '');
  return `${c.title} ('${c.bin}') is not installed here; agent${m.agents.length === 1 ? '' : 's'} ${names} run${m.agents.length === 1 ? 's' : ''} on it. ` +
    `To run this workflow, install it: npm i -g ${c.pkg} (or set ${c.binEnv} to its path)`;
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
