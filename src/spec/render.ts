/**
 * A plan as text for a person: what will run, in what order, within which limits. Bounded:
 * long lists are elided with a count, long strings clipped, so a 1000-task plan still renders
 * in a few dozen lines.
 */
import { formatDuration } from './duration.js';
import { clip } from './suggest.js';
import { estimatePlan, planCost, renderAgentBounds, renderEstimate, renderPlanHeadline } from './estimate.js';
import type { Plan, PlanPhase } from './types.js';

/** Most phases listed; the rest are counted. */
const MAX_PHASES = 40;
/** Most warnings listed; the rest are counted. */
const MAX_WARNINGS = 15;
/** Most per-phase agent bounds listed for a dynamic plan. */
const MAX_DYNAMIC_NOTES = 10;
/** Most critical-path refs shown before the middle is elided. */
const MAX_PATH = 8;

function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}

function bytes(n: number): string {
  if (n % (1024 * 1024) === 0) return `${n / 1024 / 1024} MiB`;
  if (n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} B`;
}

/** `a, b, c and 4 more` from at most `max` items. */
function shortList(items: readonly string[], max: number): string {
  const shown = items.slice(0, max).map((s) => clip(s, 64));
  return items.length > max ? `${shown.join(', ')} and ${items.length - max} more` : shown.join(', ');
}

/** The critical path as `a → b → … 5 more → y → z`. */
function pathText(refs: readonly string[]): string {
  if (refs.length <= MAX_PATH) return refs.join(' → ');
  const head = refs.slice(0, MAX_PATH - 3);
  const tail = refs.slice(-2);
  return [...head, `… ${refs.length - head.length - tail.length} more`, ...tail].join(' → ');
}

/** A command or prompt quoted in one line, clipped. */
function quoted(text: string, max = 60): string {
  return `\`${clip(text.replace(/\s+/g, ' ').trim(), max).replace(/`/g, "'")}\``;
}

/**
 * What a dynamic phase does, in short clauses for people: `forEach over list.files (max 3) × 1
 * template`, `pipeline after review`, `verify: 3 skeptics, majority`, `gate: \`npm test\`, up to 3
 * runs`, `converge: until 1 dry round, at most 4 rounds`, `isolated in git worktrees`. Empty for a
 * static phase.
 */
export function describeDynamics(phase: PlanPhase): string[] {
  const d = phase.dynamic;
  if (!d) return [];
  const out: string[] = [];
  const templates = d.templates?.length ?? 0;
  const times = templates > 0 ? ` × ${plural(templates, 'template')}` : '';
  if (d.forEach) {
    const source = d.forEach.items ? `${d.forEach.from}.${d.forEach.items}` : `the items of ${d.forEach.from}`;
    out.push(`forEach over ${source}${d.forEach.max !== undefined ? ` (max ${d.forEach.max})` : ' (no max)'}${times}`);
  }
  if (d.pipeline) out.push(`pipeline after ${d.pipeline.from} (each item moves on alone)${times}`);
  if (d.converge) {
    const c = d.converge;
    out.push(`converge: until ${plural(c.untilDry, 'dry round')}, at most ${plural(c.maxRounds, 'round')}${c.key ? `, findings keyed by ${c.key}` : ''}${times}`);
  }
  if (d.verify) {
    const v = d.verify;
    const by = v.refuteBy === 'majority' ? 'majority' : v.refuteBy === 'any' ? 'refuted by any' : 'refuted only by all';
    out.push(`verify: ${plural(v.skeptics, 'skeptic')} per finding, ${by} (agent ${v.agent}${v.max !== undefined ? `, at most ${plural(v.max, 'finding')}` : ''})`);
  }
  if (d.gate) {
    const g = d.gate;
    const what = g.kind === 'command' && g.command !== undefined ? quoted(g.command) : `critic ${g.agent}`;
    out.push(`gate: ${what}, up to ${plural(g.maxIterations, 'run')} (fixes by ${g.fixAgent})`);
  }
  if (d.merge) out.push('isolated in git worktrees (patches merged after the phase)');
  return out;
}

/** Agents a phase may run: its tasks', its templates', and its skeptic, gate and fix agents. */
export function phaseAgents(plan: Plan, phase: PlanPhase): string[] {
  const agentOf = new Map(plan.tasks.map((t) => [t.ref, t.agent]));
  const names = phase.taskRefs.map((r) => agentOf.get(r)).filter((a): a is string => a !== undefined);
  const d = phase.dynamic;
  if (d) {
    for (const t of d.templates ?? []) names.push(t.agent);
    if (d.verify) names.push(d.verify.agent);
    if (d.gate) names.push(d.gate.agent, d.gate.fixAgent);
  }
  return [...new Set(names)];
}

/**
 * Renders a plan as human-readable text: name and goal, limits, phases in order (id, title, task
 * count, agents, dependsOn, what a dynamic phase does), total tasks (for a dynamic plan: a lower
 * bound, and an upper bound where the spec fixes one), the critical path and warnings.
 */
export function renderPlan(plan: Plan): string {
  const lines: string[] = [];
  // The cost at a glance comes first: it is what a person approves.
  lines.push(renderPlanHeadline(planCost(plan)));
  lines.push(`Workflow: ${clip(plan.name, 100)}`);
  if (plan.goal) lines.push(`Goal: ${clip(plan.goal.replace(/\s+/g, ' ').trim(), 300)}`);
  const l = plan.limits;
  lines.push(
    `Limits: ${l.maxConcurrent} at a time, at most ${plural(l.maxAgents, 'agent')}; ` +
      `agent timeout ${formatDuration(l.agentTimeoutMs)}, run timeout ${formatDuration(l.runTimeoutMs)}; ` +
      `${plural(l.retries, 'retry', 'retries')} (back-off ${formatDuration(l.retryBackoffMs)}); ` +
      `output cap ${bytes(l.maxOutputBytes)}, context cap ${bytes(l.maxContextBytes)}`,
  );
  lines.push(`Phases (${plan.phases.length}):`);
  plan.phases.slice(0, MAX_PHASES).forEach((p, i) => {
    const agents = phaseAgents(plan, p);
    const title = p.title && p.title !== p.id ? ` — ${clip(p.title, 80)}` : '';
    const made = p.dynamic?.templates !== undefined;
    const tasks = made ? (p.taskRefs.length > 0 ? `${plural(p.taskRefs.length, 'task')} so far, made at run time` : 'tasks made at run time') : plural(p.taskRefs.length, 'task');
    const parts = [tasks, `${agents.length === 1 ? 'agent' : 'agents'} ${shortList(agents, 4)}`];
    if (p.dependsOn.length > 0) parts.push(`after ${shortList(p.dependsOn, 5)}`);
    parts.push(...describeDynamics(p));
    if (p.onFailure === 'continue') parts.push('continues on failure');
    if (p.final) parts.push('final');
    if (p.summarize) parts.push(`summarized by ${p.summarize.agent}`);
    if (p.checkpoint) {
      const wait = p.checkpoint.timeoutMs === undefined ? 'until answered' : `up to ${formatDuration(p.checkpoint.timeoutMs)}, then ${p.checkpoint.onTimeout}`;
      parts.push(`waits for a person's approval first (${wait}): "${clip(p.checkpoint.message, 80)}"`);
    }
    lines.push(`  ${i + 1}. ${p.id}${title}: ${parts.join('; ')}`);
  });
  if (plan.phases.length > MAX_PHASES) lines.push(`  … and ${plan.phases.length - MAX_PHASES} more phases`);
  const estimate = estimatePlan(plan);
  if (estimate.lowerBound) {
    const summ = estimate.summarizers > 0 ? ` and ${plural(estimate.summarizers, 'phase summarizer')}` : '';
    lines.push(`Total: ${plural(plan.tasks.length, 'task')} written${summ}, more made at run time: ${renderAgentBounds(estimate)}`);
    for (const x of estimate.dynamic.slice(0, MAX_DYNAMIC_NOTES)) {
      lines.push(`  ${x.phaseId}: ${x.max === null ? 'unknown number of agents' : x.max === 0 ? 'no more agents' : `up to ${plural(x.max, 'more agent')}`} — ${clip(x.note, 300)}`);
    }
    if (estimate.dynamic.length > MAX_DYNAMIC_NOTES) lines.push(`  … and ${estimate.dynamic.length - MAX_DYNAMIC_NOTES} more dynamic phases`);
  } else {
    const summ = estimate.summarizers > 0 ? ` and ${plural(estimate.summarizers, 'phase summarizer')}` : '';
    lines.push(`Total: ${plural(plan.tasks.length, 'task')}${summ} (${plural(estimate.agents, 'agent')} at least)`);
  }
  const cp = plan.criticalPath;
  lines.push(`Critical path: ${plural(cp.length, 'task')}${cp.refs.length > 0 ? `: ${pathText(cp.refs)}` : ''}`);
  if (plan.limits.budget) lines.push(`Estimate: ${renderEstimate(estimate)}`);
  for (const s of plan.security ?? []) lines.push(`Sandbox: ${clip(s, 400)}`);
  if (plan.warnings.length > 0) {
    lines.push(`Warnings (${plan.warnings.length}):`);
    for (const w of plan.warnings.slice(0, MAX_WARNINGS)) lines.push(`  - ${clip(w, 300)}`);
    if (plan.warnings.length > MAX_WARNINGS) lines.push(`  … and ${plan.warnings.length - MAX_WARNINGS} more warnings`);
  }
  return lines.join('\n');
}
