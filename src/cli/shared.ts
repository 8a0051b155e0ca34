/**
 * Small helpers shared by the CLI commands: the store root, JSON printing, status text.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { describeCounts, resolveStoreRoot } from '../store/index.js';
import type { RunStatusView } from '../engine/status.js';
import { fmtClock } from './progress.js';
import { cliCommand } from '../install/invocation.js';

/** Builds a command line to print for the user: runnable as printed from where they are. */
export type CommandHint = (args: readonly string[]) => string;

/**
 * The hint builder of this invocation: `npx fanfold …`, `fanfold …` or `node …/main.js …` (see
 * install/invocation.ts), with `--store DIR` added when this command was pointed at a store the
 * printed one would not find by itself.
 */
export function commandHint(program: Command): CommandHint {
  const root = storeRoot(program);
  const byDefault = resolveStoreRoot({ env: process.env, cwd: process.cwd() });
  const rel = path.relative(process.cwd(), root);
  const shown = rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : root;
  return (args) => cliCommand(args, { store: shown, defaultStore: byDefault });
}

/** The store root from `--store`, `$FANFOLD_STORE` or `./.agent_workflows`. */
export function storeRoot(program: Command): string {
  const store = program.opts<{ store?: string }>().store;
  return resolveStoreRoot({ ...(store ? { store } : {}), env: process.env, cwd: process.cwd() });
}

/** Prints one JSON document on stdout. */
export function printJson(v: unknown): void {
  process.stdout.write(JSON.stringify(v, null, 2) + '\n');
}

/** A few lines saying where a run stands and where its files are, and what to run next (one command a line). */
export function summaryText(s: RunStatusView, hint: CommandHint = (args) => ['fanfold', ...args].join(' ')): string {
  const a = s.agents;
  const lines = [
    `run ${s.runId} (${s.name}): ${s.status}${s.reason ? ` — ${s.reason}` : ''}`,
    `  agents: ${describeCounts(a)}`,
  ];
  for (const p of s.phases) lines.push(`  phase ${p.id}: ${p.status} (${describeCounts(p)})`);
  for (const note of s.security ?? []) lines.push(`  sandbox: ${note}`);
  for (const c of s.checkpoints ?? []) {
    lines.push(`  CHECKPOINT before phase ${c.phaseId}: ${c.message}`);
    const words = ['approve', s.runId, ...((s.checkpoints?.length ?? 0) > 1 ? [c.phaseId] : [])];
    if (c.timeoutAt) lines.push(`    unanswered by ${c.timeoutAt}, the run will ${c.onTimeout === 'stop' ? 'stop' : 'go on'}`);
    lines.push(`    approve: ${hint(words)}`, `    reject:  ${hint([...words, '--reject'])}`);
  }
  for (const p of s.pausedRunners ?? []) lines.push(`  paused: ${p.runner} (${p.kind}) — ${p.cause}`);
  if (s.status === 'paused') {
    lines.push(s.resumeAfter
      ? `  resume after ${s.resumeAfter}: ${hint(['resume', s.runId, '--wait-until-reset'])}`
      : `  resume once the limit has reset: ${hint(['resume', s.runId])}`);
  }
  lines.push(`  elapsed: ${fmtClock(s.elapsedMs)}`);
  if (s.redactions > 0) lines.push(`  secrets redacted: ${s.redactions} (replaced by [REDACTED:<rule>] before anything was stored)`);
  lines.push(`  files: ${s.dir}`);
  if (s.status !== 'running' && s.status !== 'awaiting_approval') {
    lines.push(`  report: ${s.dir}/report.md (timeline: report.html)`);
    lines.push('  next:');
    lines.push(`    ${hint(['report', s.runId])}`);
    if (s.status !== 'completed') lines.push(`    ${hint(['resume', s.runId])}`);
  } else {
    lines.push(`  watch:  ${hint(['status', s.runId, '--wait', '60'])}`);
  }
  return lines.join('\n');
}
