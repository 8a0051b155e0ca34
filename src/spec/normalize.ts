/**
 * From a raw spec (any value) to a validated, normalized Plan, or to every issue found.
 *
 * Two stages: first the shape (zod), whose issues are all reported at once; then, once the shape
 * is sound, the references and the graph (duplicate ids, unknown phases, tasks and agents, cycles,
 * the limits.maxAgents cap), whose issues are again all reported at once. The second stage needs
 * a sound shape to say anything reliable, so it does not run on a malformed spec.
 *
 * Pure: no I/O, no clock, no randomness; the only outside call is `opts.resolveAgent`.
 */
import { AgentBook, type ResolveAgent } from './agents.js';
import { parseDuration } from './duration.js';
import { criticalPath, findCycles, formatCycle, topologicalOrder, type DepGraph } from './graph.js';
import { splitTaskDep, taskRef } from './ids.js';
import { capIssues, dedupeIssues, toSpecIssues, zodErrorMap } from './issues.js';
import { taskKey } from './key.js';
import { WorkflowSpecSchema, type WorkflowSpec } from './schema.js';
import { didYouMean, nameList } from './suggest.js';
import { SpecError, type Limits, type Plan, type PlanPhase, type PlanTask, type SpecIssue } from './types.js';

/** Options of buildPlan and validateSpec. */
export interface BuildOptions {
  /** Finds agents the spec names but does not define (e.g. agent profiles); may return undefined. */
  resolveAgent?: ResolveAgent;
}

/** Result of validateSpec: the plan, or every issue found. */
export type ValidationResult = { ok: true; plan: Plan } | { ok: false; issues: SpecIssue[] };

/** Most warnings a plan carries; the rest are counted in a last one. */
const MAX_WARNINGS = 30;

/**
 * Validates a raw spec (as parsed from YAML/JSON, or an object a host sent) and builds its Plan.
 * Never throws for a bad spec: every issue comes back in `{ok: false, issues}`.
 */
export function validateSpec(input: unknown, opts: BuildOptions = {}): ValidationResult {
  const parsed = WorkflowSpecSchema.safeParse(input, { error: zodErrorMap(WorkflowSpecSchema) });
  if (!parsed.success) {
    return { ok: false, issues: toSpecIssues(WorkflowSpecSchema, parsed.error.issues) };
  }
  return checkAndBuild(parsed.data, opts);
}

/**
 * Like validateSpec, but returns the Plan and throws a SpecError carrying all issues when the spec
 * is invalid.
 */
export function buildPlan(input: unknown, opts: BuildOptions = {}): Plan {
  const result = validateSpec(input, opts);
  if (!result.ok) throw new SpecError(result.issues);
  return result.plan;
}

/** Limits of a validated spec in milliseconds (durations were checked by the schema). */
function toLimits(l: WorkflowSpec['limits']): Limits {
  const msOf = (v: string | number) => {
    const r = parseDuration(v);
    if (typeof r === 'string') throw new Error(`spec: unchecked duration: ${r}`); // schema guarantees
    return r;
  };
  return {
    maxConcurrent: l.maxConcurrent,
    maxAgents: l.maxAgents,
    agentTimeoutMs: msOf(l.agentTimeout),
    runTimeoutMs: msOf(l.runTimeout),
    retries: l.retries,
    retryBackoffMs: msOf(l.retryBackoff),
    maxOutputBytes: l.maxOutputBytes,
    maxContextBytes: l.maxContextBytes,
    ...(l.budget ? { budget: { ...l.budget } } : {}),
  };
}

/** One task as collected while checking, before keys. */
interface Draft {
  ref: string;
  phaseIndex: number;
  taskIndex: number;
  phaseId: string;
  taskId: string;
  prompt: string;
  agent: string | undefined;
  /** Refs named by the task's own dependsOn (resolved, known, deduplicated). */
  taskDeps: string[];
  /** The task's schema, else its phase's. */
  schema: Record<string, unknown> | undefined;
}

/** Explains why a task dependency names nothing, with a suggestion when one is close. */
function unknownDepMessage(dep: string, phaseId: string, taskId: string, ownPhase: string,
  phases: ReadonlyMap<string, ReadonlyMap<string, number>>): string {
  const tasks = phases.get(phaseId);
  const bare = !dep.includes('/');
  if (!tasks) {
    return `unknown phase '${phaseId}' in task ref '${dep}'${didYouMean(phaseId, phases.keys())}; phases: ${nameList([...phases.keys()])}`;
  }
  const known = [...tasks.keys()];
  if (bare && phaseId === ownPhase && phases.has(dep)) {
    return `no task '${dep}' in this phase; '${dep}' is a phase: add it to the phase's dependsOn, or name one of its tasks as '${dep}/<task>'`;
  }
  return `${bare ? 'no task' : `phase '${phaseId}' has no task`} '${taskId}'${bare ? ' in this phase' : ''}` +
    `${didYouMean(taskId, known)}; its tasks: ${nameList(known)}`;
}

function checkAndBuild(spec: WorkflowSpec, opts: BuildOptions): ValidationResult {
  const issues: SpecIssue[] = [];
  const warnings: string[] = [];
  const limits = toLimits(spec.limits);
  const agents = new AgentBook(spec, opts.resolveAgent, issues, warnings);
  if (spec.defaults?.agent !== undefined) agents.lookup(spec.defaults.agent, 'defaults.agent');
  const fallback = (() => {
    let cached: ReturnType<AgentBook['fallback']> | null = null;
    return () => (cached === null ? (cached = agents.fallback(spec)) : cached);
  })();

  // Ids: phase → (task → index); first occurrence wins, later ones are reported. Why compare
  // lower-cased too: ids become file names, and on a case-insensitive file system (the default on
  // macOS and Windows) 'Map' and 'map' would be one file.
  const phaseAt = new Map<string, number>();
  const phaseFolded = new Map<string, number>();
  const tasksOf = new Map<string, Map<string, number>>();
  let duplicatePhases = false;
  let duplicateTasks = false;
  spec.phases.forEach((phase, i) => {
    const first = phaseFolded.get(phase.id.toLowerCase());
    if (first !== undefined) {
      duplicatePhases = true;
      const other = spec.phases[first]!.id;
      issues.push({
        path: `phases[${i}].id`,
        message: other === phase.id
          ? `duplicate phase id '${phase.id}' (first used by phases[${first}])`
          : `phase id '${phase.id}' differs from '${other}' (phases[${first}]) only by case; ids become file names, which some file systems do not tell apart`,
      });
      return;
    }
    phaseAt.set(phase.id, i);
    phaseFolded.set(phase.id.toLowerCase(), i);
    const tasks = new Map<string, number>();
    const folded = new Map<string, number>();
    phase.tasks.forEach((task, k) => {
      const firstTask = folded.get(task.id.toLowerCase());
      if (firstTask !== undefined) {
        duplicateTasks = true;
        const other = phase.tasks[firstTask]!.id;
        issues.push({
          path: `phases[${i}].tasks[${k}].id`,
          message: other === task.id
            ? `duplicate task id '${task.id}' in phase '${phase.id}' (first used by phases[${i}].tasks[${firstTask}])`
            : `task id '${task.id}' differs from '${other}' (phases[${i}].tasks[${firstTask}]) only by case; ids become file names, which some file systems do not tell apart`,
        });
      } else {
        tasks.set(task.id, k);
        folded.set(task.id.toLowerCase(), k);
      }
    });
    tasksOf.set(phase.id, tasks);
  });

  // References: phase dependsOn, agents, task dependsOn.
  const drafts: Draft[] = [];
  const phaseDeps = new Map<string, string[]>();
  spec.phases.forEach((phase, i) => {
    const own = phaseAt.get(phase.id) === i;
    const deps: string[] = [];
    (phase.dependsOn ?? []).forEach((dep, j) => {
      if (deps.includes(dep)) {
        warnings.push(`phases[${i}].dependsOn names '${dep}' more than once`);
      } else if (!phaseAt.has(dep)) {
        issues.push({
          path: `phases[${i}].dependsOn[${j}]`,
          message: `unknown phase '${dep}'${didYouMean(dep, phaseAt.keys())}; phases: ${nameList([...phaseAt.keys()])}`,
        });
      } else {
        deps.push(dep);
      }
    });
    if (own) phaseDeps.set(phase.id, deps);
    const phaseAgent = phase.agent !== undefined ? agents.lookup(phase.agent, `phases[${i}].agent`) : undefined;
    if (phase.summarize) agents.lookup(phase.summarize.agent, `phases[${i}].summarize.agent`);
    const agentless: string[] = [];
    phase.tasks.forEach((task, k) => {
      let agent: string | undefined;
      if (task.agent !== undefined) agent = agents.lookup(task.agent, `phases[${i}].tasks[${k}].agent`)?.name;
      else if (phase.agent !== undefined) agent = phaseAgent?.name;
      else if (spec.defaults?.agent !== undefined) agent = agents.lookup(spec.defaults.agent, 'defaults.agent')?.name;
      else {
        agent = fallback()?.name;
        if (agent === undefined) agentless.push(task.id);
      }
      const taskDeps: string[] = [];
      (task.dependsOn ?? []).forEach((dep, m) => {
        const { phaseId, taskId } = splitTaskDep(dep, phase.id);
        const ref = taskRef(phaseId, taskId);
        if (tasksOf.get(phaseId)?.has(taskId)) {
          if (taskDeps.includes(ref)) warnings.push(`phases[${i}].tasks[${k}].dependsOn names '${ref}' more than once`);
          else taskDeps.push(ref);
        } else {
          issues.push({
            path: `phases[${i}].tasks[${k}].dependsOn[${m}]`,
            message: unknownDepMessage(dep, phaseId, taskId, phase.id, tasksOf),
          });
        }
      });
      drafts.push({ ref: taskRef(phase.id, task.id), phaseIndex: i, taskIndex: k, phaseId: phase.id,
        taskId: task.id, prompt: task.prompt, agent, taskDeps, schema: task.schema ?? phase.schema });
    });
    if (agentless.length > 0) {
      const defined = agents.definedNames;
      issues.push({
        path: `phases[${i}]`,
        message:
          `no agent for ${agentless.length === 1 ? 'task' : 'tasks'} ${nameList(agentless)}: ` +
          (defined.length === 0
            ? 'define one under agents (e.g. shell: { runner: command, command: ["bash", "run.sh"] }) or set defaults.runner'
            : `set agent on the phase or the task, or defaults.agent (agents defined: ${nameList(defined)})`),
      });
    }
  });

  // The cap on agents: refused with the count, never truncated.
  const total = drafts.length;
  if (total > limits.maxAgents) {
    issues.push({
      path: '',
      message:
        `${total} tasks planned, over limits.maxAgents ${limits.maxAgents}: ` +
        (total <= 1000 ? 'raise limits.maxAgents (at most 1000) or split the workflow' : 'split the workflow (limits.maxAgents is at most 1000)'),
    });
  }

  // Cycles between phases; then (on a clean, bounded graph) between tasks.
  let phaseCycles = 0;
  if (!duplicatePhases) {
    const graph: DepGraph = { nodes: spec.phases.map((p) => p.id), deps: phaseDeps };
    for (const cycle of findCycles(graph)) {
      phaseCycles++;
      issues.push({ path: `phases[${phaseAt.get(cycle[0]!)}].dependsOn`, message: `dependency cycle between phases: ${formatCycle(cycle)}` });
    }
  }
  const byRef = new Map(drafts.map((d) => [d.ref, d]));
  const depsOf = new Map<string, string[]>();
  const declared = new Map(drafts.map((d, n) => [d.ref, n]));
  // Why the guards: expanding phase edges costs up to tasks² entries, so it runs only once the
  // task count is within limits.maxAgents (at most 1000), and only on unambiguous ids.
  const graphOk = !duplicatePhases && !duplicateTasks && total <= limits.maxAgents && phaseCycles === 0;
  if (graphOk) {
    for (const d of drafts) {
      const all = new Set<string>();
      for (const p of phaseDeps.get(d.phaseId) ?? []) {
        for (const t of tasksOf.get(p)?.keys() ?? []) all.add(taskRef(p, t));
      }
      for (const r of d.taskDeps) all.add(r);
      depsOf.set(d.ref, [...all].sort((a, b) => declared.get(a)! - declared.get(b)!));
    }
    const graph: DepGraph = { nodes: drafts.map((d) => d.ref), deps: depsOf };
    for (const cycle of findCycles(graph)) {
      const first = byRef.get(cycle[0]!)!;
      const viaTask = cycle.length > 1 && first.taskDeps.includes(cycle[1]!);
      issues.push({
        path: viaTask ? `phases[${first.phaseIndex}].tasks[${first.taskIndex}].dependsOn` : `phases[${first.phaseIndex}].dependsOn`,
        message: `dependency cycle between tasks: ${formatCycle(cycle)}`,
      });
    }
  }

  if (issues.length > 0) return { ok: false, issues: capIssues(dedupeIssues(issues)) };
  const sorted = topologicalOrder({ nodes: drafts.map((d) => d.ref), deps: depsOf });
  if (!sorted.ok) {
    // Unreachable: cycles were reported above. Kept as an issue rather than a crash.
    return { ok: false, issues: [{ path: '', message: `dependency cycle: ${formatCycle(sorted.cycle)}` }] };
  }

  const planAgents = agents.planAgents();
  const keys = new Map<string, string>();
  const tasks: PlanTask[] = sorted.order.map((ref) => {
    const d = byRef.get(ref)!;
    const deps = depsOf.get(ref) ?? [];
    const agent = planAgents[d.agent!]!;
    const key = taskKey({
      phaseId: d.phaseId,
      taskId: d.taskId,
      prompt: d.prompt,
      agent,
      deps: deps.map((r) => ({ ref: r, key: keys.get(r)! })),
      ...(d.schema !== undefined ? { schema: d.schema } : {}),
    });
    keys.set(ref, key);
    const task: PlanTask = { ref, phaseId: d.phaseId, taskId: d.taskId, prompt: d.prompt, agent: agent.name, deps: [...deps], key };
    if (d.schema !== undefined) task.schema = d.schema;
    return task;
  });

  const phases: PlanPhase[] = spec.phases.map((p) => {
    const out: PlanPhase = {
      id: p.id,
      title: p.title ?? p.id,
      dependsOn: [...(phaseDeps.get(p.id) ?? [])],
      onFailure: p.onFailure,
      taskRefs: p.tasks.map((t) => taskRef(p.id, t.id)),
    };
    if (p.final === true) out.final = true;
    if (p.summarize) out.summarize = { agent: p.summarize.agent };
    return out;
  });

  collectWarnings(spec, phases, drafts, limits, warnings);
  agents.warnAboutUse();
  const plan: Plan = {
    schemaVersion: 1,
    name: spec.name,
    limits,
    agents: planAgents,
    phases,
    tasks,
    criticalPath: criticalPath({ nodes: sorted.order, deps: depsOf }, sorted.order),
    agentCount: tasks.length,
    warnings: capWarnings(warnings),
  };
  if (spec.goal !== undefined) plan.goal = spec.goal;
  return { ok: true, plan };
}

/** Warnings that need the whole plan: phases that start at once, timeouts, several finals. */
function collectWarnings(spec: WorkflowSpec, phases: PlanPhase[], drafts: Draft[], limits: Limits, warnings: string[]): void {
  phases.forEach((p, i) => {
    if (i === 0 || p.dependsOn.length > 0) return;
    const crossPhase = drafts.some((d) => d.phaseIndex === i && d.taskDeps.some((r) => !r.startsWith(`${p.id}/`)));
    if (!crossPhase) {
      warnings.push(`phase '${p.id}' has no dependsOn: its tasks start at once, in parallel with earlier phases`);
    }
  });
  if (limits.agentTimeoutMs > limits.runTimeoutMs) {
    warnings.push('limits.agentTimeout is longer than limits.runTimeout: the run timeout will cut agents short first');
  }
  const finals = spec.phases.filter((p) => p.final === true).map((p) => p.id);
  if (finals.length > 1) warnings.push(`${finals.length} phases are marked final (${nameList(finals)}): the report quotes each`);
}

function capWarnings(warnings: string[]): string[] {
  const unique = [...new Set(warnings)];
  if (unique.length <= MAX_WARNINGS) return unique;
  return [...unique.slice(0, MAX_WARNINGS), `… and ${unique.length - MAX_WARNINGS} more warnings`];
}
