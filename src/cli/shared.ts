/**
 * Small helpers shared by the CLI commands: the store root, JSON printing, status text.
 */
import type { Command } from 'commander';
import { resolveStoreRoot } from '../store/index.js';
import type { RunStatusView } from '../engine/status.js';
import { fmtClock } from './progress.js';

/** The store root from `--store`, `$FANFOLD_STORE` or `./.agent_workflows`. */
export function storeRoot(program: Command): string {
  const store = program.opts<{ store?: string }>().store;
  return resolveStoreRoot({ ...(store ? { store } : {}), env: process.env, cwd: process.cwd() });
}

/** Prints one JSON document on stdout. */
export function printJson(v: unknown): void {
  process.stdout.write(JSON.stringify(v, null, 2) + '\n');
}

/** A few lines saying where a run stands and where its files are. */
export function summaryText(s: RunStatusView): string {
  const a = s.agents;
  const lines = [
    `run ${s.runId} (${s.name}): ${s.status}${s.reason ? ` — ${s.reason}` : ''}`,
    `  agents: ${a.succeeded} succeeded, ${a.failed} failed, ${a.skipped} skipped, ${a.running} running, ${a.pending} pending of ${a.total}`,
  ];
  for (const p of s.phases) {
    lines.push(`  phase ${p.id}: ${p.status} (${p.succeeded}/${p.total} ok${p.failed ? `, ${p.failed} failed` : ''}${p.skipped ? `, ${p.skipped} skipped` : ''})`);
  }
  lines.push(`  elapsed: ${fmtClock(s.elapsedMs)}`);
  lines.push(`  files: ${s.dir}`);
  if (s.status !== 'running') {
    lines.push(`  report: ${s.dir}/report.md (timeline: report.html)`);
    lines.push(`  next:   fanfold report ${s.runId}  ·  fanfold query <words> --run ${s.runId}${s.status === 'completed' ? '' : `  ·  fanfold resume ${s.runId}`}`);
  }
  return lines.join('\n');
}
