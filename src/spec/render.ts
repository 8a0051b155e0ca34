/**
 * A plan as text for a person: what will run, in what order, within which limits. Bounded:
 * long lists are elided with a count, long strings clipped, so a 1000-task plan still renders
 * in a few dozen lines.
 */
import { formatDuration } from './duration.js';
import { clip } from './suggest.js';
import { estimatePlan, renderEstimate } from './estimate.js';
import type { Plan } from './types.js';

/** Most phases listed; the rest are counted. */
const MAX_PHASES = 40;
/** Most warnings listed; the rest are counted. */
const MAX_WARNINGS = 15;
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

/**
 * Renders a plan as human-readable text: name and goal, limits, phases in order (id, title, task
 * count, agents, dependsOn), total tasks, the critical path and warnings.
 */
export function renderPlan(plan: Plan): string {
  const lines: string[] = [];
  lines.push(`Workflow: ${clip(plan.name, 100)}`);
  if (plan.goal) lines.push(`Goal: ${clip(plan.goal.replace(/\s+/g, ' ').trim(), 300)}`);
  const l = plan.limits;
  lines.push(
    `Limits: ${l.maxConcurrent} at a time, at most ${plural(l.maxAgents, 'agent')}; ` +
      `agent timeout ${formatDuration(l.agentTimeoutMs)}, run timeout ${formatDuration(l.runTimeoutMs)}; ` +
      `${plural(l.retries, 'retry', 'retries')} (back-off ${formatDuration(l.retryBackoffMs)}); ` +
      `output cap ${bytes(l.maxOutputBytes)}, context cap ${bytes(l.maxContextBytes)}`,
  );
  const agentOf = new Map(plan.tasks.map((t) => [t.ref, t.agent]));
  lines.push(`Phases (${plan.phases.length}):`);
  plan.phases.slice(0, MAX_PHASES).forEach((p, i) => {
    const agents = [...new Set(p.taskRefs.map((r) => agentOf.get(r)).filter((a): a is string => a !== undefined))];
    const title = p.title && p.title !== p.id ? ` — ${clip(p.title, 80)}` : '';
    const parts = [plural(p.taskRefs.length, 'task'), `${agents.length === 1 ? 'agent' : 'agents'} ${shortList(agents, 4)}`];
    if (p.dependsOn.length > 0) parts.push(`after ${shortList(p.dependsOn, 5)}`);
    if (p.onFailure === 'continue') parts.push('continues on failure');
    if (p.final) parts.push('final');
    if (p.summarize) parts.push(`summarized by ${p.summarize.agent}`);
    lines.push(`  ${i + 1}. ${p.id}${title}: ${parts.join('; ')}`);
  });
  if (plan.phases.length > MAX_PHASES) lines.push(`  … and ${plan.phases.length - MAX_PHASES} more phases`);
  lines.push(`Total: ${plural(plan.tasks.length, 'task')} (${plural(plan.agentCount, 'agent')} at least)`);
  const cp = plan.criticalPath;
  lines.push(`Critical path: ${plural(cp.length, 'task')}${cp.refs.length > 0 ? `: ${pathText(cp.refs)}` : ''}`);
  if (plan.limits.budget) lines.push(`Estimate: ${renderEstimate(estimatePlan(plan))}`);
  if (plan.warnings.length > 0) {
    lines.push(`Warnings (${plan.warnings.length}):`);
    for (const w of plan.warnings.slice(0, MAX_WARNINGS)) lines.push(`  - ${clip(w, 300)}`);
    if (plan.warnings.length > MAX_WARNINGS) lines.push(`  … and ${plan.warnings.length - MAX_WARNINGS} more warnings`);
  }
  return lines.join('\n');
}
