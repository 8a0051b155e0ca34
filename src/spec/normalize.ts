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
import { AgentBook, type HostRunner, type ResolveAgent } from './agents.js';
import { parseDuration } from './duration.js';
import { criticalPath, findCycles, formatCycle, topologicalOrder, type DepGraph } from './graph.js';
import { splitTaskDep, taskRef } from './ids.js';
import { capIssues, dedupeIssues, toSpecIssues, zodErrorMap } from './issues.js';
import { nodeKey, taskKey } from './key.js';
import { WorkflowSpecSchema, type WorkflowSpec } from './schema.js';
import { didYouMean, nameList } from './suggest.js';
import { SpecError, type AgentDef, type Isolation, type Limits, type PhaseDynamics, type Plan, type PlanPhase, type PlanTask, type SpecIssue, type TaskTemplate } from './types.js';
import type { PhaseSpec, TaskSpec } from './schema.js';

/** Options of buildPlan and validateSpec. */
export interface BuildOptions {
  /** Finds agents the spec names but does not define (e.g. agent profiles); may return undefined. */
  resolveAgent?: ResolveAgent;
  /** The runner of a defined agent that names none, when the spec sets no defaults.runner. */
  hostRunner?: HostRunner;
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
    ...(l.agentIdleTimeout !== undefined ? { agentIdleTimeoutMs: msOf(l.agentIdleTimeout) } : {}),
    ...(l.continueSessions !== undefined ? { continueSessions: l.continueSessions } : {}),
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
  isolation: Isolation | undefined;
}

/**
 * The names the engine gives the tasks it makes: `skeptic-<f>-<k>` in a verified phase,
 * `check-<i>` and `fix-<i>` in a gated one. A written task may not take them, nor a template
 * whose instances (`<id>-<n>`) could.
 */
function reservedPrefixes(phase: PhaseSpec): string[] {
  return [...(phase.verify ? ['skeptic'] : []), ...(phase.gate ? ['check', 'fix'] : [])];
}
function clashesAsTask(id: string, phase: PhaseSpec): string | undefined {
  return reservedPrefixes(phase).find((p) => new RegExp(`^${p}-\\d`).test(id));
}
function clashesAsTemplate(id: string, phase: PhaseSpec): string | undefined {
  return reservedPrefixes(phase).find((p) => id === p || id.startsWith(`${p}-`));
}
const ENGINE_NAMES = { skeptic: 'skeptic-<f>-<k> (verify)', check: 'check-<i> (gate)', fix: 'fix-<i> (gate)' } as const;

/** Longest template id in a phase whose tasks are made at run time (suffixes like `-123-r12` follow). */
const MAX_TEMPLATE_ID = 40;

/** Virtual node refs of a dynamic phase. Why `_`: task ids cannot start with it, so these never clash. */
export const startRef = (phaseId: string) => `${phaseId}/_start`;
export const doneRef = (phaseId: string) => `${phaseId}/_done`;

/** True for a ref of a virtual node (`<phase>/_…`). */
export function isVirtualRef(ref: string): boolean {
  return ref.charCodeAt(ref.indexOf('/') + 1) === 95; // '_'
}

/** The tasks a phase lists: `tasks`, or the `prompt` shorthand. */
function phaseTasks(phase: PhaseSpec): TaskSpec[] {
  return phase.tasks ?? (phase.prompt !== undefined ? [{ id: phase.id, prompt: phase.prompt }] : []);
}

/** Whether a phase's tasks are made at run time from its templates. */
function madeAtRunTime(phase: PhaseSpec): boolean {
  return phase.forEach !== undefined || phase.converge !== undefined || (phase.mode === 'pipeline' && phase.forEach === undefined);
}

/** Isolation of a task: the task's, else its phase's, else its agent's. */
function isolationOf(task: TaskSpec, phase: PhaseSpec, agent: AgentDef | undefined): Isolation | undefined {
  const iso = task.isolation ?? phase.isolation ?? agent?.isolation;
  return iso === 'worktree' && agent?.tier === 'edit' ? 'worktree' : undefined;
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
  const agents = new AgentBook(spec, opts.resolveAgent, issues, warnings, opts.hostRunner);
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
    phaseTasks(phase).forEach((task, k) => {
      const firstTask = folded.get(task.id.toLowerCase());
      if (firstTask !== undefined) {
        duplicateTasks = true;
        const other = phaseTasks(phase)[firstTask]!.id;
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

  // References: phase dependsOn, agents, task dependsOn, and the dynamic parts.
  const drafts: Draft[] = [];
  const phaseDeps = new Map<string, string[]>();
  const runTime = new Set(spec.phases.filter(madeAtRunTime).map((p) => p.id));
  /** Per dynamic phase: templates and dynamics without the refs and keys computed below. */
  const dyn = new Map<string, Omit<PhaseDynamics, 'start' | 'startDeps' | 'done' | 'doneDeps' | 'doneKey' | 'upstream'>>();
  const taskAgent = (phase: PhaseSpec, phaseAgent: AgentDef | undefined, i: number, task: TaskSpec, k: number, agentless: string[]): AgentDef | undefined => {
    if (task.agent !== undefined) return agents.lookup(task.agent, `phases[${i}].tasks[${k}].agent`);
    if (phase.agent !== undefined) return phaseAgent;
    if (spec.defaults?.agent !== undefined) return agents.lookup(spec.defaults.agent, 'defaults.agent');
    const fb = fallback();
    if (fb === undefined) agentless.push(task.id);
    return fb;
  };
  spec.phases.forEach((phase, i) => {
    const own = phaseAt.get(phase.id) === i;
    const deps: string[] = [];
    const tasks = phaseTasks(phase);
    if (phase.tasks !== undefined && phase.prompt !== undefined) {
      issues.push({ path: `phases[${i}].prompt`, message: 'expected either tasks or prompt, got both: prompt is a shorthand for tasks: [{id: <phase id>, prompt}]' });
    } else if (tasks.length === 0) {
      issues.push({ path: `phases[${i}].tasks`, message: 'required: expected a list of tasks (or a prompt, for a phase of one task)' });
    }
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
    // forEach.from is a dependency whether or not dependsOn names it.
    if (phase.forEach) {
      const from = phase.forEach.from;
      if (from === phase.id) issues.push({ path: `phases[${i}].forEach.from`, message: `a phase cannot take its items from itself ('${from}')` });
      else if (!phaseAt.has(from)) {
        issues.push({ path: `phases[${i}].forEach.from`, message: `unknown phase '${from}'${didYouMean(from, phaseAt.keys())}; phases: ${nameList([...phaseAt.keys()])}` });
      } else if (!deps.includes(from)) deps.push(from);
    }
    let pipelineFrom: string | undefined;
    if (phase.mode === 'pipeline' && phase.forEach === undefined) {
      if (deps.length !== 1) {
        issues.push({
          path: `phases[${i}].dependsOn`,
          message: `a pipeline stage depends on exactly one phase (its previous stage), got ${deps.length === 0 ? 'none' : nameList(deps)}`,
        });
      } else {
        pipelineFrom = deps[0];
        const prevStage = spec.phases.find((p) => p.id === pipelineFrom);
        if (prevStage?.converge) {
          issues.push({
            path: `phases[${i}].dependsOn`,
            message: `a pipeline stage follows the items of its previous stage, and '${pipelineFrom}' has none (it converges in rounds): use forEach: {from: ${pipelineFrom}} instead`,
          });
        }
      }
      if (phase.converge) issues.push({ path: `phases[${i}].converge`, message: 'a pipeline stage cannot converge: its tasks follow the items of its previous stage' });
    }
    if (phase.mode === 'pipeline' && phase.forEach) {
      warnings.push(`phases[${i}] has forEach and mode: pipeline: a forEach phase is the first stage of a pipeline, so mode: pipeline does nothing here (put it on the stages after it)`);
    }
    if (phase.converge && phase.verify?.items !== undefined) {
      warnings.push(`phases[${i}].verify.items is not used on a converge phase: skeptics verify the findings converge reads (converge.items)`);
    }
    if (phase.converge && phase.forEach) {
      issues.push({ path: `phases[${i}].converge`, message: 'expected forEach or converge on a phase, got both: converge repeats a fixed set of tasks' });
    }
    const maxIterations = phase.gate?.maxIterations ?? phase.maxIterations;
    if (phase.maxIterations !== undefined && phase.gate === undefined) {
      issues.push({ path: `phases[${i}].maxIterations`, message: 'maxIterations counts gate runs: add a gate (gate: {command: "npm test"} or gate: {critic: {agent: NAME}})' });
    } else if (phase.maxIterations !== undefined && phase.gate?.maxIterations !== undefined && phase.maxIterations !== phase.gate.maxIterations) {
      issues.push({ path: `phases[${i}].maxIterations`, message: `differs from gate.maxIterations (${phase.maxIterations} vs ${phase.gate.maxIterations}): give it once` });
    }
    if (phase.gate && (phase.gate.command === undefined) === (phase.gate.critic === undefined)) {
      issues.push({ path: `phases[${i}].gate`, message: `expected exactly one of command or critic, got ${phase.gate.command === undefined ? 'neither' : 'both'}` });
    }
    if (own) phaseDeps.set(phase.id, deps);
    const phaseAgent = phase.agent !== undefined ? agents.lookup(phase.agent, `phases[${i}].agent`) : undefined;
    if (phase.summarize) agents.lookup(phase.summarize.agent, `phases[${i}].summarize.agent`);
    const agentless: string[] = [];
    const templated = runTime.has(phase.id);
    const templates: TaskTemplate[] = [];
    let isolated = false;
    tasks.forEach((task, k) => {
      const agentDef = taskAgent(phase, phaseAgent, i, task, k, agentless);
      const isolation = isolationOf(task, phase, agentDef);
      if (isolation === 'worktree') isolated = true;
      else if ((task.isolation ?? phase.isolation ?? agentDef?.isolation) === 'worktree') {
        warnings.push(`phases[${i}].tasks[${k}] asks for isolation: worktree, but its agent '${agentDef?.name}' has tier read_only: it runs in the project directory`);
      }
      const schema = task.schema ?? phase.schema;
      if (templated) {
        if (task.id.length > MAX_TEMPLATE_ID) {
          issues.push({ path: `phases[${i}].tasks[${k}].id`, message: `expected at most ${MAX_TEMPLATE_ID} characters in a template id (the engine appends an item number), got ${task.id.length}` });
        }
        if (task.dependsOn !== undefined && task.dependsOn.length > 0) {
          issues.push({ path: `phases[${i}].tasks[${k}].dependsOn`, message: 'tasks of a forEach, pipeline or converge phase are made at run time: put dependencies on the phase (dependsOn)' });
        }
        const clash = clashesAsTemplate(task.id, phase);
        if (clash) {
          issues.push({ path: `phases[${i}].tasks[${k}].id`, message: `template '${task.id}' would make tasks named like the engine's ${ENGINE_NAMES[clash as keyof typeof ENGINE_NAMES]}: rename it` });
        }
        if (agentDef) templates.push({ id: task.id, prompt: task.prompt, agent: agentDef.name, ...(schema ? { schema } : {}), ...(isolation ? { isolation } : {}) });
        return;
      }
      const clash = clashesAsTask(task.id, phase);
      if (clash) {
        issues.push({ path: `phases[${i}].tasks[${k}].id`, message: `'${task.id}' is reserved: the engine names its ${ENGINE_NAMES[clash as keyof typeof ENGINE_NAMES]} tasks so; rename it` });
      }
      const taskDeps: string[] = [];
      (task.dependsOn ?? []).forEach((dep, m) => {
        const { phaseId, taskId } = splitTaskDep(dep, phase.id);
        const ref = taskRef(phaseId, taskId);
        if (runTime.has(phaseId)) {
          issues.push({ path: `phases[${i}].tasks[${k}].dependsOn[${m}]`, message: `the tasks of phase '${phaseId}' are made at run time: depend on the phase instead (dependsOn: [${phaseId}] on this phase)` });
        } else if (tasksOf.get(phaseId)?.has(taskId)) {
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
        taskId: task.id, prompt: task.prompt, agent: agentDef?.name, taskDeps, schema, isolation });
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
    if (!(templated || phase.verify || phase.gate || isolated)) return;
    const d: Omit<PhaseDynamics, 'start' | 'startDeps' | 'done' | 'doneDeps' | 'doneKey' | 'upstream'> = {};
    if (templated) d.templates = templates;
    if (phase.forEach) {
      d.forEach = { from: phase.forEach.from, ...(phase.forEach.items !== undefined ? { items: phase.forEach.items } : {}), ...(phase.forEach.max !== undefined ? { max: phase.forEach.max } : {}) };
    }
    if (pipelineFrom !== undefined) d.pipeline = { from: pipelineFrom };
    if (phase.converge) d.converge = { ...phase.converge };
    if (phase.verify) {
      const v = phase.verify;
      agents.lookup(v.agent, `phases[${i}].verify.agent`);
      d.verify = { skeptics: v.skeptics, agent: v.agent, refuteBy: v.refuteBy, ...(v.items !== undefined ? { items: v.items } : {}), ...(v.prompt !== undefined ? { prompt: v.prompt } : {}), ...(v.max !== undefined ? { max: v.max } : {}) };
    }
    if (phase.gate && (phase.gate.command === undefined) !== (phase.gate.critic === undefined)) {
      const g = phase.gate;
      let checkAgent: string | undefined;
      if (g.command !== undefined) {
        checkAgent = `${phase.id}-gate`.slice(0, 64);
        if (agents.definedNames.includes(checkAgent)) {
          issues.push({ path: `phases[${i}].gate`, message: `the gate's command runs as agent '${checkAgent}', a name the spec already uses for another agent: rename that agent` });
        } else {
          // Why tier edit: a gate builds and tests, which writes build output into the project; it
          // gets no network unless the phase says so (a test suite has no business calling out).
          agents.addSynthetic({ name: checkAgent, runner: 'command', command: ['sh', '-c', g.command], tier: 'edit', ...(phase.network ? { network: true } : {}) });
        }
      } else {
        checkAgent = agents.lookup(g.critic!.agent, `phases[${i}].gate.critic.agent`)?.name;
      }
      const fixName = g.fix?.agent ?? phase.agent ?? spec.defaults?.agent ?? (templates[0]?.agent ?? drafts.find((x) => x.phaseId === phase.id)?.agent);
      const fixDef = fixName !== undefined ? agents.lookup(fixName, g.fix?.agent !== undefined ? `phases[${i}].gate.fix.agent` : `phases[${i}]`) : undefined;
      if (fixName === undefined) issues.push({ path: `phases[${i}].gate.fix.agent`, message: 'required: no agent to fix what the gate finds (set gate.fix.agent or the phase agent)' });
      if (fixDef && fixDef.tier !== 'edit' && g.command !== undefined) {
        warnings.push(`phases[${i}].gate: fix agent '${fixDef.name}' has tier read_only, so it cannot change files to make '${g.command}' pass`);
      }
      if (checkAgent !== undefined && fixDef) {
        d.gate = {
          agent: checkAgent,
          kind: g.command !== undefined ? 'command' : 'critic',
          ...(g.command !== undefined ? { command: g.command } : {}),
          ...(g.critic?.prompt !== undefined ? { prompt: g.critic.prompt } : {}),
          maxIterations: maxIterations ?? 3,
          fixAgent: fixDef.name,
          ...(g.fix?.prompt !== undefined ? { fixPrompt: g.fix.prompt } : {}),
          maxFailureChars: g.maxFailureChars,
        };
      }
    }
    if (isolated) d.merge = true;
    if (own) dyn.set(phase.id, d);
  });

  // The cap on agents: refused with the count, never truncated. Tasks made at run time are capped
  // as they are made (the rest reported), so only the written ones count here — and the phase
  // summarizers, one agent per phase with `summarize`, since the engine starts them too.
  const summarizers = spec.phases.filter((p) => p.summarize !== undefined).length;
  const total = drafts.length;
  if (total + summarizers > limits.maxAgents) {
    const what = summarizers > 0 ? `${total} tasks and ${summarizers} phase summarizer${summarizers === 1 ? '' : 's'} planned (${total + summarizers} agents)` : `${total} tasks planned`;
    issues.push({
      path: '',
      message:
        `${what}, over limits.maxAgents ${limits.maxAgents}: ` +
        (total + summarizers <= 1000 ? 'raise limits.maxAgents (at most 1000) or split the workflow' : 'split the workflow (limits.maxAgents is at most 1000)'),
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
  // Graph nodes: written tasks, and each dynamic phase's virtual start and end nodes.
  const nodes: string[] = [];
  for (const p of spec.phases) {
    if (phaseAt.get(p.id) === undefined || spec.phases[phaseAt.get(p.id)!] !== p) continue;
    if (dyn.has(p.id)) nodes.push(startRef(p.id));
    for (const d of drafts) if (d.phaseId === p.id) nodes.push(d.ref);
    if (dyn.has(p.id)) nodes.push(doneRef(p.id));
  }
  const declared = new Map(nodes.map((r, n) => [r, n]));
  const staticRefs = (phaseId: string) => [...(tasksOf.get(phaseId)?.keys() ?? [])].filter(() => !runTime.has(phaseId)).map((t) => taskRef(phaseId, t));
  /** What a later phase waits for: a dynamic phase's end node, else its tasks. */
  const exitOf = (phaseId: string) => (dyn.has(phaseId) ? [doneRef(phaseId)] : staticRefs(phaseId));
  const upstreamOf = new Map<string, string[]>();
  // Why the guards: expanding phase edges costs up to tasks² entries, so it runs only once the
  // task count is within limits.maxAgents (at most 1000), and only on unambiguous ids.
  const graphOk = !duplicatePhases && !duplicateTasks && total <= limits.maxAgents && phaseCycles === 0;
  if (graphOk) {
    const byDeclared = (a: string, b: string) => declared.get(a)! - declared.get(b)!;
    for (const d of drafts) {
      const all = new Set<string>();
      for (const p of phaseDeps.get(d.phaseId) ?? []) for (const r of exitOf(p)) all.add(r);
      for (const r of d.taskDeps) all.add(r);
      depsOf.set(d.ref, [...all].sort(byDeclared));
    }
    for (const [id, d] of dyn) {
      const upstream = new Set<string>();
      let startDeps: string[];
      if (d.pipeline) {
        // A pipeline stage starts with its previous stage: each of its tasks waits for one item only.
        const from = d.pipeline.from;
        startDeps = dyn.get(from)?.templates ? [startRef(from)] : [];
      } else {
        for (const p of phaseDeps.get(id) ?? []) for (const r of exitOf(p)) upstream.add(r);
        startDeps = d.templates ? [...upstream] : staticRefs(id);
      }
      if (!d.templates) for (const r of staticRefs(id)) upstream.add(r);
      upstreamOf.set(id, [...upstream].sort(byDeclared));
      depsOf.set(startRef(id), [...startDeps].sort(byDeclared));
      // A pipeline stage ends once its previous stage has ended too (its skeptics, merge, gate): what
      // waits for this stage may read both, and the end node's key then covers the previous stage.
      const prevExit = d.pipeline ? exitOf(d.pipeline.from) : [];
      depsOf.set(doneRef(id), [startRef(id), ...prevExit]);
    }
    const graph: DepGraph = { nodes, deps: depsOf };
    for (const cycle of findCycles(graph)) {
      const first = byRef.get(cycle.find((r) => byRef.has(r)) ?? '');
      const viaTask = first !== undefined && cycle.length > 1 && first.taskDeps.includes(cycle[(cycle.indexOf(first.ref) + 1) % cycle.length]!);
      issues.push({
        path: first === undefined ? `phases[${phaseAt.get(cycle[0]!.slice(0, cycle[0]!.indexOf('/')))}].dependsOn`
          : viaTask ? `phases[${first.phaseIndex}].tasks[${first.taskIndex}].dependsOn` : `phases[${first.phaseIndex}].dependsOn`,
        message: `dependency cycle between tasks: ${formatCycle(cycle.filter((r) => !isVirtualRef(r) || r.endsWith('/_done')).map((r) => (r.endsWith('/_done') ? r.slice(0, -6) : r)))}`,
      });
    }
  }

  if (issues.length > 0) return { ok: false, issues: capIssues(dedupeIssues(issues)) };
  const sorted = topologicalOrder({ nodes, deps: depsOf });
  if (!sorted.ok) {
    // Unreachable: cycles were reported above. Kept as an issue rather than a crash.
    return { ok: false, issues: [{ path: '', message: `dependency cycle: ${formatCycle(sorted.cycle)}` }] };
  }

  const planAgents = agents.planAgents();
  const keys = new Map<string, string>();
  const tasks: PlanTask[] = [];
  const dynamics = new Map<string, PhaseDynamics>();
  for (const ref of sorted.order) {
    const deps = depsOf.get(ref) ?? [];
    const depKeys = (refs: string[]) => refs.filter((r) => keys.has(r)).map((r) => ({ ref: r, key: keys.get(r)! }));
    if (isVirtualRef(ref)) {
      const phaseId = ref.slice(0, ref.indexOf('/'));
      const d = dyn.get(phaseId)!;
      if (ref === startRef(phaseId)) {
        keys.set(ref, nodeKey(ref, null, depKeys(deps)));
        continue;
      }
      // The end node's key: the phase's configuration, its written tasks and its upstream.
      const upstream = upstreamOf.get(phaseId) ?? [];
      const config = { ...d, templates: d.templates?.map((t) => ({ ...t, agent: planAgents[t.agent] })) };
      const doneKey = nodeKey(ref, config, depKeys([...new Set([...depsOf.get(startRef(phaseId))!, ...upstream, ...deps])]));
      keys.set(ref, doneKey);
      dynamics.set(phaseId, { start: startRef(phaseId), startDeps: [...depsOf.get(startRef(phaseId))!], done: ref, doneDeps: [...deps], doneKey, upstream, ...d });
      continue;
    }
    const d = byRef.get(ref)!;
    const agent = planAgents[d.agent!]!;
    const key = taskKey({
      phaseId: d.phaseId,
      taskId: d.taskId,
      prompt: d.prompt,
      agent,
      deps: depKeys(deps),
      ...(d.schema !== undefined ? { schema: d.schema } : {}),
      ...(d.isolation !== undefined ? { isolation: d.isolation } : {}),
    });
    keys.set(ref, key);
    const task: PlanTask = { ref, phaseId: d.phaseId, taskId: d.taskId, prompt: d.prompt, agent: agent.name, deps: [...deps], key };
    if (d.schema !== undefined) task.schema = d.schema;
    if (d.isolation !== undefined) task.isolation = d.isolation;
    tasks.push(task);
  }

  const phases: PlanPhase[] = spec.phases.map((p) => {
    const out: PlanPhase = {
      id: p.id,
      title: p.title ?? p.id,
      dependsOn: [...(phaseDeps.get(p.id) ?? [])],
      onFailure: p.onFailure,
      taskRefs: runTime.has(p.id) ? [] : phaseTasks(p).map((t) => taskRef(p.id, t.id)),
    };
    if (p.final === true) out.final = true;
    if (p.summarize) out.summarize = { agent: p.summarize.agent };
    if (p.checkpoint) {
      const ms = p.checkpoint.timeout === undefined ? undefined : parseDuration(p.checkpoint.timeout);
      out.checkpoint = { message: p.checkpoint.message, onTimeout: p.checkpoint.onTimeout, ...(typeof ms === 'number' ? { timeoutMs: ms } : {}) };
    }
    const d = dynamics.get(p.id);
    if (d) out.dynamic = d;
    return out;
  });

  collectWarnings(spec, phases, drafts, limits, warnings);
  agents.warnAboutUse();
  const cp = criticalPath({ nodes: sorted.order, deps: depsOf }, sorted.order);
  const cpRefs = cp.refs.filter((r) => !isVirtualRef(r));
  const plan: Plan = {
    schemaVersion: 1,
    name: spec.name,
    limits,
    agents: planAgents,
    phases,
    tasks,
    criticalPath: { length: cpRefs.length, refs: cpRefs },
    agentCount: tasks.length,
    warnings: capWarnings(warnings),
  };
  if (dynamics.size > 0) plan.dynamic = true;
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
