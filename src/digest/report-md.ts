/**
 * The final report in Markdown (`report.md`): what the host reads when a run ends. It is bounded
 * (≤ {@link REPORT_MAX_BYTES}) however many agents ran, it never calls a cut-short run completed,
 * and it says out loud everything it capped, truncated or skipped.
 *
 * Untrusted text (agent outputs, causes, digests) goes into fenced blocks whose fence is longer than
 * any backtick run inside, or is backslash-escaped inline, so it cannot restructure the document.
 */
import type { PlanPhase } from '../spec/types.js';
import type { AgentRecord, Counts, PhaseState, RunRecord } from '../store/types.js';
import { describeCounts, emptyCounts, fullCounts, type FullCounts } from '../store/counts.js';
import { code, escapeMarkdownInline, fence, n } from './markdown-text.js';
import { DYNAMIC_MAX_BYTES, dynamicSection, helperRefs } from './report-dynamic.js';
export { escapeMarkdownInline, fence } from './markdown-text.js';
export { dynamicSummaries, dynamicSummary } from './report-dynamic.js';
import { failureCause, refOf } from './records.js';
import { cleanBlock, cleanLine, clip, clipBlockBytes, fairShares, formatBytes, formatDuration, utf8Bytes } from './text.js';

/** Hard cap of the whole report in UTF-8 bytes. */
export const REPORT_MAX_BYTES = 24 * 1024;

/** Input of {@link renderReportMarkdown}. */
export interface ReportInput {
  run: RunRecord;
  /** Latest attempt per task (see `latestAttempts`). */
  latest: AgentRecord[];
  /** Phase digests by phase id. */
  digests: Record<string, string>;
  /** Output of the phase marked `final: true`, when the caller has it (otherwise taken from `latest`). */
  finalOutput?: string;
  /** Every attempt, retries included; makes the totals exact (otherwise they come from `latest`). */
  attempts?: AgentRecord[];
  /**
   * Turns CLI words into the command line the report prints (`npx fanfold …` in a clone,
   * `fanfold …` when installed; see install/invocation.ts). Default: `fanfold …`.
   */
  hint?: ReportHint;
}

/** Builds a printable command line from CLI words. */
export type ReportHint = (args: readonly string[]) => string;

/** The hint when the caller gives none. */
export const plainHint: ReportHint = (args) => ['fanfold', ...args].join(' ');

const MAX_PHASE_ROWS = 40;
const MAX_FAILURES = 20;
const MAX_SKIPPED = 10;
const FINAL_MAX_BYTES = 7 * 1024;
const DIGESTS_MAX_BYTES = 10 * 1024;
const CAUSE_MAX = 220;

/** Run statuses that mean the run did not run to its end. */
const CUT_SHORT = new Set(['stopped', 'failed', 'interrupted', 'budget_exhausted', 'paused']);


/**
 * The run's task counts as the engine recorded them (run.json): the same numbers `fanfold status`,
 * `workflow_status` and the live view show, summed over the phases.
 */
export function runCounts(run: Pick<RunRecord, 'phases'>): FullCounts {
  const sum = fullCounts(emptyCounts());
  sum.pending = 0;
  const keys = ['total', 'succeeded', 'checkFailed', 'failed', 'cancelled', 'skipped', 'running', 'pending'] as const;
  for (const p of run.phases) {
    const c = fullCounts(p.counts);
    for (const k of keys) sum[k] += c[k];
  }
  return sum;
}

/**
 * The status paragraph: plain about cut-short runs and never "completed" for them, and never "all
 * tasks succeeded" when a gate check failed on the way.
 */
function statusLines(run: RunRecord, hint: ReportHint): string[] {
  const c = runCounts(run);
  const planned = c.total;
  const unfinished = Math.max(0, planned - c.succeeded - c.checkFailed);
  const reason = run.reason ? escapeMarkdownInline(clip(run.reason, 400)) : 'no reason was recorded';
  const checks = c.checkFailed > 0 ? ` ${n(c.checkFailed, 'gate check')} did not pass on the way (each answered by a fix).` : '';
  switch (run.status) {
    case 'completed':
      if (unfinished > 0) {
        return [`**Status: recorded as finished, but ${n(unfinished, 'task')} of ${planned} did not succeed** — treat the results as partial (${describeCounts(c)}).`];
      }
      if (c.checkFailed > 0) return [`**Status: completed** — ${c.succeeded} of ${planned} tasks succeeded;${checks}`];
      return [`**Status: completed** — all ${n(planned, 'task')} succeeded.`];
    case 'running':
      return [`**Status: still running** — this is a snapshot; ${c.succeeded} of ${planned} tasks have succeeded so far (${describeCounts(c)}).`];
    case 'awaiting_approval':
      return [
        `**Status: awaiting approval** — the run waits for a person; ${c.succeeded} of ${planned} tasks have succeeded so far.`,
        ...(run.checkpoints ?? []).map((c) => `- Checkpoint before phase \`${c.phaseId}\`: ${escapeMarkdownInline(clip(c.message, 400))} — answer with \`${hint(['approve', run.runId, ...((run.checkpoints?.length ?? 0) > 1 ? [c.phaseId] : [])])}\` (or add \`--reject\`).`),
      ];
    case 'paused':
      return [
        `**Status: paused — a usage or auth limit stopped new agents.** Reason: ${reason}.`,
        `${c.succeeded} of ${planned} tasks succeeded; ${n(unfinished, 'task')} did not run to the end and run on resume` +
          (run.resumeAfter ? ` (the limit resets ${run.resumeAfter}: \`${hint(['resume', run.runId, '--wait-until-reset'])}\`).` : ` (\`${hint(['resume', run.runId])}\` once the limit has reset).`),
      ];
    case 'stopped':
    case 'failed':
    case 'budget_exhausted':
    case 'interrupted': {
      const what =
        run.status === 'interrupted' ? 'interrupted (the run owner ended without recording an end)'
        : run.status === 'budget_exhausted' ? 'budget exhausted (no agent was started that could cross limits.budget)'
        : run.status;
      const rest = describeCounts({ ...c, succeeded: 0 }, { of: false }).replace(/^0 succeeded(, )?/, '');
      return [
        `**Status: ${what} — the run was cut short.** Reason: ${reason}.`,
        `${c.succeeded} of ${planned} tasks succeeded; ${rest || `${n(unfinished, 'task')} did not`} (results below are partial).`,
      ];
    }
    default:
      return [`**Status: ${escapeMarkdownInline(String(run.status))}** — ${reason}.`];
  }
}

/** Phase status word; a phase that finished is "done" (the word "completed" is kept for runs). */
function phaseStatusWord(state: PhaseState | undefined): string {
  const status = state?.status ?? 'pending';
  return status === 'completed' ? 'done' : status;
}

function tableCell(text: string): string {
  return escapeMarkdownInline(text).replace(/\n/g, ' ');
}

/** Per-phase table of counts (the engine's, as status shows them), narrow enough for a small window. */
function phaseTable(run: RunRecord, notes: string[]): string[] {
  const phases = run.plan.phases;
  const lines = ['| Phase | Title | Status | Tasks | Outcome |', '| --- | --- | --- | ---: | --- |'];
  for (const phase of phases.slice(0, MAX_PHASE_ROWS)) {
    const state = run.phases.find((p) => p.id === phase.id);
    const counts = state ? fullCounts(state.counts) : fullCounts(emptyCounts(phase.taskRefs.length));
    const title = clip(cleanLine(phase.title ?? ''), 60);
    lines.push(
      `| ${code(phase.id)}${phase.final ? ' (final)' : ''} | ${tableCell(title)} | ${phaseStatusWord(state)} | ${counts.total} | ${describeCounts(counts, { of: false })} |`,
    );
  }
  if (phases.length > MAX_PHASE_ROWS) {
    const more = phases.length - MAX_PHASE_ROWS;
    lines.push('', `_${n(more, 'more phase')} not shown in this table._`);
    notes.push(`The phase table lists the first ${MAX_PHASE_ROWS} of ${phases.length} phases.`);
  }
  return lines;
}

/** Where the full output of a record lives. */
function pointer(run: RunRecord, r: AgentRecord, hint: ReportHint): string {
  return `\`${hint(['show', run.runId, refOf(r)])}\` (file ${code(`agents/${r.phaseId}.${r.taskId}.${r.attempt}.json`)} in the run directory)`;
}

/** The quoted output of the phases marked final, sharing {@link FINAL_MAX_BYTES}. */
function finalSection(input: ReportInput, byPhase: Map<string, AgentRecord[]>, budget: number, notes: string[]): string[] {
  const finals = input.run.plan.phases.filter((p) => p.final);
  if (finals.length === 0) return [];
  const out: string[] = [];
  type Piece = { phase: PlanPhase; record?: AgentRecord; text: string };
  const pieces: Piece[] = [];
  const missing: string[] = [];
  // Skeptics, gate checks and fixes are evidence about the final phase's answer, not the answer.
  const helpers = helperRefs(input.run.plan.tasks);
  finals.forEach((phase, i) => {
    const records = (byPhase.get(phase.id) ?? []).filter((r) => !helpers.has(refOf(r)));
    if (i === 0 && input.finalOutput !== undefined) {
      const record = records.length === 1 ? records[0] : undefined;
      pieces.push({ phase, record, text: cleanBlock(input.finalOutput) });
      return;
    }
    const ok = records.filter((r) => r.status === 'succeeded');
    for (const record of ok) pieces.push({ phase, record, text: cleanBlock(record.output ?? '') });
    if (ok.length === 0) {
      const why = records.length === 0 ? 'it did not run' : records.map((r) => `${code(refOf(r))} ${r.status}: ${escapeMarkdownInline(failureCause(r, CAUSE_MAX))}`).slice(0, 3).join('; ');
      missing.push(`The final phase ${code(phase.id)} produced no output: ${why}.`);
    }
  });
  const heading = finals.length === 1 ? `## Final output — phase ${code(finals[0]!.id)}` : '## Final output';
  out.push(heading, '');
  out.push(...missing.flatMap((m) => [m, '']));
  const shares = fairShares(pieces.map((p) => utf8Bytes(p.text)), Math.max(0, budget - 400 * pieces.length));
  pieces.forEach((piece, i) => {
    const label = piece.record ? code(refOf(piece.record)) : `phase ${code(piece.phase.id)}`;
    if (pieces.length > 1) out.push(`### ${label}`, '');
    const { text, cut } = clipBlockBytes(piece.text, shares[i]!);
    if (piece.text.trim() === '') {
      out.push('_(empty output)_', '');
      return;
    }
    out.push(fence(text), '');
    if (cut || piece.record?.truncated) {
      const stored = piece.record?.truncated ? ` (the stored output was itself capped at ${formatBytes(utf8Bytes(piece.record.output))} of ${formatBytes(piece.record.outputBytes)})` : '';
      const where = piece.record ? `Full output: ${pointer(input.run, piece.record, input.hint ?? plainHint)}.` : 'Full output: see the final phase in the run directory.';
      out.push(`_Shown: ${formatBytes(utf8Bytes(text))} of ${formatBytes(utf8Bytes(piece.text))}${stored}. ${where}_`, '');
      notes.push(`The final output of ${label} is shown in part.`);
    }
  });
  return out;
}

/** Each phase's digest, sharing `budget` fairly. */
function digestSection(run: RunRecord, digests: Record<string, string>, budget: number, notes: string[], hint: ReportHint): string[] {
  const phases = run.plan.phases;
  const out = ['## Phase digests', ''];
  const texts = phases.map((p) => (Object.prototype.hasOwnProperty.call(digests, p.id) ? cleanBlock(digests[p.id]!) : undefined));
  const overhead = 120;
  const shares = fairShares(texts.map((t) => (t === undefined ? 0 : utf8Bytes(t))), Math.max(0, budget - overhead * phases.length));
  let cutCount = 0;
  let hidden = 0;
  phases.forEach((phase, i) => {
    const text = texts[i];
    if (text !== undefined && shares[i]! < Math.min(80, utf8Bytes(text))) {
      hidden++;
      return;
    }
    const title = cleanLine(phase.title ?? '');
    out.push(`### ${code(phase.id)}${title && title !== phase.id ? ` — ${escapeMarkdownInline(clip(title, 80))}` : ''}`, '');
    if (text === undefined) {
      out.push('_No digest (the phase has not finished)._', '');
      return;
    }
    const { text: shown, cut } = clipBlockBytes(text, shares[i]!);
    out.push(fence(shown), '');
    if (cut) {
      cutCount++;
      out.push(`_Digest cut to fit the report; \`${hint(['query', '--run', run.runId, '--phase', phase.id, 'WORDS'])}\` (or \`query_workflow\`) searches the full outputs._`, '');
    }
  });
  if (cutCount > 0) notes.push(`${n(cutCount, 'phase digest')} cut to fit the report.`);
  if (hidden > 0) {
    out.push(`_${n(hidden, 'more phase digest')} left out to keep the report short._`, '');
    notes.push(`${n(hidden, 'phase digest')} left out for room.`);
  }
  return out;
}

/** Capped list of failed, timed-out and cancelled tasks with causes. */
function failureSection(run: RunRecord, latest: readonly AgentRecord[], notes: string[], hint: ReportHint): string[] {
  const failures = latest.filter((r) => r.status === 'failed' || r.status === 'timed_out' || r.status === 'cancelled');
  if (failures.length === 0) return [];
  const out = [`## Failures (${failures.length})`, ''];
  for (const r of failures.slice(0, MAX_FAILURES)) {
    const exit = r.signal ? `, signal ${escapeMarkdownInline(r.signal)}` : r.exitCode !== null ? `, exit code ${r.exitCode}` : '';
    out.push(`- ${code(refOf(r))} ${r.status.replace('_', ' ')} (attempt ${r.attempt}${exit}): ${escapeMarkdownInline(failureCause(r, CAUSE_MAX))}`);
  }
  if (failures.length > MAX_FAILURES) {
    const more = failures.length - MAX_FAILURES;
    out.push(`- … and ${n(more, 'more failure')} not listed; \`${hint(['query', '--run', run.runId, '--status', 'failed', 'error'])}\` (or \`query_workflow\`) finds them.`);
    notes.push(`The failure list shows ${MAX_FAILURES} of ${failures.length} failures.`);
  }
  out.push('');
  return out;
}

/** Capped list of skipped tasks with causes. */
function skippedSection(latest: readonly AgentRecord[], notes: string[]): string[] {
  const skipped = latest.filter((r) => r.status === 'skipped');
  if (skipped.length === 0) return [];
  const out = [`## Skipped (${skipped.length})`, ''];
  for (const r of skipped.slice(0, MAX_SKIPPED)) {
    out.push(`- ${code(refOf(r))}: ${escapeMarkdownInline(failureCause(r, CAUSE_MAX) || 'no cause recorded')}`);
  }
  if (skipped.length > MAX_SKIPPED) {
    out.push(`- … and ${n(skipped.length - MAX_SKIPPED, 'more skipped task')} not listed.`);
    notes.push(`The skipped list shows ${MAX_SKIPPED} of ${skipped.length} skipped tasks.`);
  }
  out.push('');
  return out;
}

/** Totals: agents, times, tokens and cost (when known). */
function totalsSection(run: RunRecord, latest: readonly AgentRecord[], attempts: readonly AgentRecord[] | undefined): string[] {
  const all = (attempts ?? latest).filter((r) => r.status !== 'skipped');
  const retries = attempts
    ? all.length - latestRan(latest)
    : latest.reduce((sum, r) => sum + Math.max(0, r.attempt - 1), 0);
  const agentMs = all.reduce((sum, r) => sum + (Number.isFinite(r.durationMs) ? r.durationMs : 0), 0);
  const parallel = run.elapsedMs > 0 ? ` (≈ ${(agentMs / run.elapsedMs).toFixed(1)}× parallel)` : '';
  const lines = ['## Totals', ''];
  const agents = attempts ? `${n(all.length, 'agent attempt')}` : `${n(latestRan(latest), 'agent')} (latest attempts)`;
  lines.push(`- Agents: ${agents} for ${n(latest.length, 'task')} with a result; ${n(Math.max(0, retries), 'retry', 'retries')}.`);
  lines.push(`- Wall time: ${formatDuration(run.elapsedMs)}${run.resumes > 0 ? ` over ${run.resumes + 1} segments (resumed ${run.resumes}×)` : ''}; summed agent time: ${formatDuration(agentMs)}${attempts ? '' : ' (latest attempts)'}${parallel}.`);
  // Phase summarizers are agents too: listed, and counted in tokens and cost.
  const summ = run.summarizers ?? [];
  if (summ.length > 0) {
    const started = summ.filter((x) => x.status !== 'not_started');
    const notStarted = summ.filter((x) => x.status === 'not_started');
    const failed = started.filter((x) => x.status === 'failed');
    lines.push(
      `- Phase summarizers: ${n(started.length, 'agent')} started (${summ.map((x) => x.phaseId).filter((v, i, a) => a.indexOf(v) === i).slice(0, 10).join(', ')})` +
        (failed.length > 0 ? `, ${failed.length} failed` : '') +
        (notStarted.length > 0 ? `; ${notStarted.length} not started (${escapeMarkdownInline(clip(cleanLine(notStarted[0]!.cause ?? 'budget'), 200))}): the extractive digest stands in` : '') +
        '; counted below.',
    );
  }
  let input = 0;
  let output = 0;
  let cached = 0;
  let withUsage = 0;
  let cost = 0;
  let withCost = 0;
  for (const r of [...all, ...summ.filter((x) => x.status !== 'not_started')]) {
    if (r.usage) {
      withUsage++;
      input += r.usage.inputTokens ?? 0;
      output += r.usage.outputTokens ?? 0;
      cached += r.usage.cachedInputTokens ?? 0;
    }
    if (typeof r.costUsd === 'number' && Number.isFinite(r.costUsd)) {
      withCost++;
      cost += r.costUsd;
    }
  }
  const counted = all.length + summ.filter((x) => x.status !== 'not_started').length;
  lines.push(
    withUsage > 0
      ? `- Tokens: ${input.toLocaleString('en-US')} in, ${output.toLocaleString('en-US')} out${cached ? `, ${cached.toLocaleString('en-US')} cached in` : ''} (reported by ${withUsage} of ${counted} agents).`
      : '- Tokens: unknown (no agent reported usage).',
  );
  lines.push(
    withCost > 0
      ? `- Cost: $${cost.toFixed(cost < 1 ? 4 : 2)} (reported by ${withCost} of ${counted} agents${withCost < counted ? '; the true total is higher' : ''}).`
      : '- Cost: unknown (no agent reported cost).',
  );
  const redacted = run.totals.redactions ?? 0;
  lines.push(
    redacted > 0
      ? `- Secrets redacted: ${redacted} (replaced by [REDACTED:<rule>] before anything was stored; each agent record lists its own).`
      : '- Secrets redacted: 0.',
  );
  lines.push('');
  return lines;
}

function latestRan(latest: readonly AgentRecord[]): number {
  return latest.filter((r) => r.status !== 'skipped').length;
}

/**
 * Renders the run's final report as Markdown: title, goal, status (cut-short runs say so, with the
 * reason, and are never called completed), a per-phase table of counts, the output of the phase(s)
 * marked `final` (bounded, with a pointer to the full output; its skeptics, gate checks and fixes
 * left out), a section per dynamic phase (items and what was dropped, confirmed and refuted
 * findings, gate runs, rounds, merged patches), each phase's digest, failures and
 * skipped tasks with causes (capped, with counts of the rest), a list of everything capped or
 * truncated, and totals (agents, wall time, summed agent time, tokens and cost when known).
 * Never longer than {@link REPORT_MAX_BYTES} UTF-8 bytes.
 */
export function renderReportMarkdown(input: ReportInput): string {
  const { run, latest } = input;
  const notes: string[] = [];
  const byPhase = new Map<string, AgentRecord[]>();
  for (const r of latest) {
    const list = byPhase.get(r.phaseId) ?? [];
    list.push(r);
    byPhase.set(r.phaseId, list);
  }
  const planned = Math.max(
    run.plan.phases.reduce((sum, p) => sum + Math.max(p.taskRefs.length, byPhase.get(p.id)?.length ?? 0), 0),
    latest.length,
  );

  const hint = input.hint ?? plainHint;
  const head: string[] = [`# ${escapeMarkdownInline(clip(run.name || run.runId, 120))} — fanfold report`, ''];
  head.push(...statusLines(run, hint), '');
  if (run.plan.goal) head.push(`**Goal:** ${escapeMarkdownInline(clip(run.plan.goal, 600))}`, '');
  for (const s of run.plan.security ?? []) head.push(`**Sandbox:** ${escapeMarkdownInline(clip(s, 600))}`, '');
  const when = [`Run ${code(run.runId)}`, `started ${escapeMarkdownInline(run.startedAt)}`];
  if (run.endedAt) when.push(`ended ${escapeMarkdownInline(run.endedAt)}`);
  when.push(`wall time ${formatDuration(run.elapsedMs)}`);
  head.push(when.join(' · '), '');

  const table = ['## Phases', '', ...phaseTable(run, notes), ''];
  const failures = failureSection(run, latest, notes, hint);
  const skipped = skippedSection(latest, notes);
  const totals = totalsSection(run, latest, input.attempts);

  const truncated = latest.filter((r) => r.truncated);
  if (truncated.length > 0) {
    const kept = truncated.reduce((s, r) => s + utf8Bytes(r.output ?? ''), 0);
    const produced = truncated.reduce((s, r) => s + (r.outputBytes || 0), 0);
    notes.push(
      `${n(truncated.length, 'agent output')} hit the stored-output cap (kept ${formatBytes(kept)} of ${formatBytes(produced)} produced); the rest was counted, not kept.`,
    );
  }
  const notFinished = planned - latest.length;
  if (notFinished > 0) notes.push(`${n(notFinished, 'task')} never produced a record (not started or still running).`);

  const dynamic = dynamicSection(run, latest, DYNAMIC_MAX_BYTES, notes, hint);
  const fixed = [head, table, dynamic, failures, skipped, totals].reduce((sum, s) => sum + utf8Bytes(s.join('\n')) + 1, 0);
  const room = REPORT_MAX_BYTES - fixed - 2048; // 2 KiB for the notes section and joins
  const finalBudget = Math.max(0, Math.min(FINAL_MAX_BYTES, Math.floor(room * 0.45)));
  const final = finalSection(input, byPhase, finalBudget, notes);
  const digestBudget = Math.max(0, Math.min(DIGESTS_MAX_BYTES, room - utf8Bytes(final.join('\n'))));
  const digests = digestSection(run, input.digests, digestBudget, notes, hint);

  const leftOut = notes.length > 0 ? ['## What this report leaves out', '', ...notes.map((x) => `- ${x}`), ''] : [];
  const text = [...head, ...table, ...final, ...dynamic, ...digests, ...failures, ...skipped, ...leftOut, ...totals].join('\n');
  return capMarkdown(text, REPORT_MAX_BYTES, hint(['status', run.runId]));
}

/**
 * Hard cap for Markdown: cuts on a line boundary, closes a fenced block left open, and says the
 * report was cut. Only reached when the section budgets above were not enough.
 */
function capMarkdown(text: string, maxBytes: number, statusCommand: string): string {
  const trimmed = text.replace(/\n+$/, '\n');
  if (utf8Bytes(trimmed) <= maxBytes) return trimmed;
  const tail = `\n\n_Report cut at its size cap; \`${statusCommand}\` (or \`workflow_status\`) shows the rest._\n`;
  const lines = clipBlockBytes(trimmed, maxBytes - utf8Bytes(tail) - 64).text.split('\n');
  let open: string | undefined;
  for (const line of lines) {
    const m = /^(`{3,})/.exec(line);
    if (!m) continue;
    if (open === undefined) open = m[1];
    else if (m[1]!.length >= open.length && line.trim() === m[1]) open = undefined;
  }
  if (open !== undefined) lines.push(open);
  return lines.join('\n') + tail;
}
