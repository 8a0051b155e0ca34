/**
 * The final report in Markdown (`report.md`): what the host reads when a run ends. It is bounded
 * (≤ {@link REPORT_MAX_BYTES}) however many agents ran, it never calls a cut-short run completed,
 * and it says out loud everything it capped, truncated or skipped.
 *
 * Untrusted text (agent outputs, causes, digests) goes into fenced blocks whose fence is longer than
 * any backtick run inside, or is backslash-escaped inline, so it cannot restructure the document.
 */
import { describeDynamics } from '../spec/render.js';
import type { PlanPhase, PlanTask, TaskOrigin } from '../spec/types.js';
import type { AgentRecord, DynamicState, PhaseState, RunRecord, Verdict } from '../store/types.js';
import { countStatuses, failureCause, refOf, STATUS_LABELS, type StatusCounts } from './records.js';
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
}

const MAX_PHASE_ROWS = 40;
const MAX_FAILURES = 20;
const MAX_SKIPPED = 10;
const FINAL_MAX_BYTES = 7 * 1024;
const DIGESTS_MAX_BYTES = 10 * 1024;
const CAUSE_MAX = 220;

/** Run statuses that mean the run did not run to its end. */
const CUT_SHORT = new Set(['stopped', 'failed', 'interrupted', 'budget_exhausted']);

/** Escapes Markdown syntax in untrusted inline text (one line, no HTML, no emphasis, no tables). */
export function escapeMarkdownInline(text: string): string {
  // `_` inside a word never starts emphasis, so only word-edge underscores are escaped.
  return cleanLine(text)
    .replace(/([\\`*[\]<>|])/g, '\\$1')
    .replace(/_/g, (_m, at: number, all: string) => (isWordChar(all[at - 1]) && isWordChar(all[at + 1]) ? '_' : '\\_'));
}

function isWordChar(c: string | undefined): boolean {
  return c !== undefined && /[\p{L}\p{N}]/u.test(c);
}

/** A fenced code block whose fence is longer than any backtick run in `text`. */
export function fence(text: string, lang = 'text'): string {
  let longest = 0;
  for (const m of text.matchAll(/`+/g)) longest = Math.max(longest, m[0].length);
  const bar = '`'.repeat(Math.max(3, longest + 1));
  return `${bar}${lang}\n${text}\n${bar}`;
}

/** `code` span for an identifier we print (ids are allow-listed, but be safe anyway). */
function code(text: string): string {
  const clean = cleanLine(text).replace(/`/g, "'");
  return `\`${clean}\``;
}

/** Plural helper: `1 task`, `2 tasks`. */
function n(count: number, word: string, plural = `${word}s`): string {
  return `${count} ${count === 1 ? word : plural}`;
}
const plural = n;

/** The status paragraph: plain about cut-short runs and never "completed" for them. */
function statusLines(run: RunRecord, latest: readonly AgentRecord[], planned: number): string[] {
  const counts = countStatuses(latest);
  const unfinished = Math.max(0, planned - counts.succeeded);
  const reason = run.reason ? escapeMarkdownInline(clip(run.reason, 400)) : 'no reason was recorded';
  switch (run.status) {
    case 'completed':
      if (unfinished > 0) {
        return [`**Status: recorded as finished, but ${n(unfinished, 'task')} of ${planned} did not succeed** — treat the results as partial.`];
      }
      return [`**Status: completed** — all ${n(planned, 'task')} succeeded.`];
    case 'running':
      return [`**Status: still running** — this is a snapshot; ${counts.succeeded} of ${planned} tasks have succeeded so far.`];
    case 'stopped':
    case 'failed':
    case 'budget_exhausted':
    case 'interrupted': {
      const what =
        run.status === 'interrupted' ? 'interrupted (the run owner ended without recording an end)'
        : run.status === 'budget_exhausted' ? 'budget exhausted (no agent was started that could cross limits.budget)'
        : run.status;
      return [
        `**Status: ${what} — the run was cut short.** Reason: ${reason}.`,
        `${counts.succeeded} of ${planned} tasks succeeded; ${n(unfinished, 'task')} did not (results below are partial).`,
      ];
    }
    default:
      return [`**Status: ${escapeMarkdownInline(String(run.status))}** — ${reason}.`];
  }
}

/** Phase status word; a phase that finished is "done" (the word "completed" is kept for runs). */
function phaseStatusWord(state: PhaseState | undefined, counts: StatusCounts, total: number, seen: number): string {
  const status = state?.status;
  if (status === 'completed') return 'done';
  if (status) return status;
  if (seen === 0) return 'pending';
  if (seen < total) return 'running';
  return counts.succeeded === total ? 'done' : 'failed';
}

function tableCell(text: string): string {
  return escapeMarkdownInline(text).replace(/\n/g, ' ');
}

/** Per-phase table of counts. */
function phaseTable(run: RunRecord, byPhase: Map<string, AgentRecord[]>, notes: string[]): string[] {
  const phases = run.plan.phases;
  const lines = [
    '| Phase | Title | Status | Tasks | Succeeded | Failed | Timed out | Cancelled | Skipped | Not finished |',
    '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const phase of phases.slice(0, MAX_PHASE_ROWS)) {
    const records = byPhase.get(phase.id) ?? [];
    const counts = countStatuses(records);
    const total = Math.max(phase.taskRefs.length, records.length);
    const state = run.phases.find((p) => p.id === phase.id);
    const title = clip(cleanLine(phase.title ?? ''), 60);
    lines.push(
      `| ${code(phase.id)}${phase.final ? ' (final)' : ''} | ${tableCell(title)} | ${phaseStatusWord(state, counts, total, records.length)} | ${total} | ${counts.succeeded} | ${counts.failed} | ${counts.timed_out} | ${counts.cancelled} | ${counts.skipped} | ${Math.max(0, total - records.length)} |`,
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
function pointer(run: RunRecord, r: AgentRecord): string {
  return `\`fanfold show ${run.runId} ${refOf(r)}\` (file ${code(`agents/${r.phaseId}.${r.taskId}.${r.attempt}.json`)} in the run directory)`;
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
      const where = piece.record ? `Full output: ${pointer(input.run, piece.record)}.` : 'Full output: see the final phase in the run directory.';
      out.push(`_Shown: ${formatBytes(utf8Bytes(text))} of ${formatBytes(utf8Bytes(piece.text))}${stored}. ${where}_`, '');
      notes.push(`The final output of ${label} is shown in part.`);
    }
  });
  return out;
}

/** Each phase's digest, sharing `budget` fairly. */
function digestSection(run: RunRecord, digests: Record<string, string>, budget: number, notes: string[]): string[] {
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
      out.push('_Digest cut to fit the report; `query_workflow` searches the full outputs._', '');
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
function failureSection(run: RunRecord, latest: readonly AgentRecord[], notes: string[]): string[] {
  const failures = latest.filter((r) => r.status === 'failed' || r.status === 'timed_out' || r.status === 'cancelled');
  if (failures.length === 0) return [];
  const out = [`## Failures (${failures.length})`, ''];
  for (const r of failures.slice(0, MAX_FAILURES)) {
    const exit = r.signal ? `, signal ${escapeMarkdownInline(r.signal)}` : r.exitCode !== null ? `, exit code ${r.exitCode}` : '';
    out.push(`- ${code(refOf(r))} ${r.status.replace('_', ' ')} (attempt ${r.attempt}${exit}): ${escapeMarkdownInline(failureCause(r, CAUSE_MAX))}`);
  }
  if (failures.length > MAX_FAILURES) {
    const more = failures.length - MAX_FAILURES;
    out.push(`- … and ${n(more, 'more failure')} not listed; \`fanfold status ${run.runId}\` or \`query_workflow\` finds them.`);
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
  let input = 0;
  let output = 0;
  let cached = 0;
  let withUsage = 0;
  let cost = 0;
  let withCost = 0;
  for (const r of all) {
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
  lines.push(
    withUsage > 0
      ? `- Tokens: ${input.toLocaleString('en-US')} in, ${output.toLocaleString('en-US')} out${cached ? `, ${cached.toLocaleString('en-US')} cached in` : ''} (reported by ${withUsage} of ${all.length} agents).`
      : '- Tokens: unknown (no agent reported usage).',
  );
  lines.push(
    withCost > 0
      ? `- Cost: $${cost.toFixed(cost < 1 ? 4 : 2)} (reported by ${withCost} of ${all.length} agents${withCost < all.length ? '; the true total is higher' : ''}).`
      : '- Cost: unknown (no agent reported cost).',
  );
  lines.push('');
  return lines;
}

function latestRan(latest: readonly AgentRecord[]): number {
  return latest.filter((r) => r.status !== 'skipped').length;
}

// ---- dynamic phases -----------------------------------------------------------------------------

/** Most dynamic phases given a section; the rest are counted. */
const MAX_DYNAMIC_PHASES = 20;
/** Bytes all dynamic-phase sections share (fairly, see fairShares). */
const DYNAMIC_MAX_BYTES = 7 * 1024;
/** Most confirmed and refuted findings listed per phase; the rest are counted. */
const MAX_CONFIRMED = 15;
const MAX_REFUTED = 15;
/** Most dropped items and merge entries listed per phase. */
const MAX_DROPPED = 10;
const MAX_MERGE_REFS = 10;
const FINDING_MAX = 200;
const REASON_MAX = 160;
const FAILURE_EXCERPT_BYTES = 600;
/** Longest one-line dynamic summary (status answers list one per phase). */
export const DYNAMIC_SUMMARY_MAX = 240;

/** What kind of task a ref is in its phase: work, or a skeptic / gate check / fix helper. */
type TaskKind = 'work' | 'skeptic' | 'check' | 'fix';

function kindOf(origin: TaskOrigin | undefined): TaskKind {
  const k = origin?.kind;
  return k === 'skeptic' || k === 'check' || k === 'fix' ? k : 'work';
}

/** Refs of helper tasks (skeptics, gate checks, fixes): evidence, not the phase's results. */
function helperRefs(tasks: readonly PlanTask[]): Set<string> {
  return new Set(tasks.filter((t) => kindOf(t.origin) !== 'work').map((t) => t.ref));
}

/** `3/5 items (2 dropped: forEach.max 3)`, `verified 6 findings: 3 confirmed, 3 refuted`, … */
function summaryParts(state: DynamicState, phase: PlanPhase | undefined): string[] {
  const d = phase?.dynamic;
  const parts: string[] = [];
  const it = state.items;
  if (it) {
    const kept = Math.max(0, it.found - it.dropped);
    let text = d?.pipeline && !d.forEach ? `${plural(kept, 'item')} from ${d.pipeline.from}` : `${kept}/${plural(it.found, 'item')}`;
    const extra: string[] = [];
    if (it.dropped > 0) extra.push(`${it.dropped} dropped${it.dropReason ? `: ${it.dropReason}` : ''}`);
    if (it.duplicates > 0) extra.push(`${plural(it.duplicates, 'duplicate')} removed`);
    if (it.problems?.length) extra.push(plural(it.problems.length, 'problem'));
    if (extra.length) text += ` (${extra.join('; ')})`;
    parts.push(text);
  }
  const v = state.verify;
  if (v) {
    parts.push(
      `verified ${plural(v.findings - v.unverified, 'finding')}: ${v.confirmed} confirmed, ${v.refuted} refuted` +
        (v.unverified > 0 ? ` (${v.unverified} unverified)` : ''),
    );
  } else if (d?.verify) parts.push('verification pending');
  const g = state.gate;
  if (g) {
    if (g.passed === true) parts.push(`gate passed on run ${g.iterations} of ${g.maxIterations}`);
    else if (g.passed === false) parts.push(`gate failed on run ${g.iterations} of ${g.maxIterations}${g.last ? `: ${clip(cleanLine(g.last), 80)}` : ''}`);
    else parts.push(`gate pending (run ${g.iterations} of at most ${g.maxIterations})`);
  } else if (d?.gate) parts.push('gate not run yet');
  const c = state.converge;
  if (c) {
    let text = `${plural(c.rounds, 'round')}, dry ${c.dryRounds}, ${plural(c.findings, 'finding')}`;
    if (c.stopped && !c.stopped.startsWith('dry')) text += ` (stopped: ${clip(cleanLine(c.stopped), 60)})`;
    else if (!c.stopped) text += ' (still going)';
    parts.push(text);
  }
  const m = state.merge;
  if (m) {
    let text = `merged ${plural(m.applied.length, 'patch', 'patches')}`;
    if (m.conflicts.length > 0) text += `, ${plural(m.conflicts.length, 'conflict')} (${m.conflicts.slice(0, 3).map((x) => x.ref).join(', ')}${m.conflicts.length > 3 ? ', …' : ''})`;
    parts.push(text);
  }
  return parts;
}

/**
 * One bounded line (≤ {@link DYNAMIC_SUMMARY_MAX} characters) saying what a dynamic phase did:
 * `3/5 items (2 dropped: forEach.max 3); verified 6 findings: 3 confirmed, 3 refuted`,
 * `gate passed on run 3 of 3`, `3 rounds, dry 1, 2 findings`, `merged 2 patches, 1 conflict (…)`.
 * Empty when the state holds nothing yet.
 */
export function dynamicSummary(state: DynamicState | undefined, phase?: PlanPhase): string {
  if (!state) return '';
  return clip(cleanLine(summaryParts(state, phase).join('; ')), DYNAMIC_SUMMARY_MAX);
}

/** The one-line summary of every phase of `run` that has dynamic state, in plan order. */
export function dynamicSummaries(run: Pick<RunRecord, 'plan' | 'phases'>): { phaseId: string; summary: string }[] {
  const plan = new Map(run.plan.phases.map((p) => [p.id, p]));
  const out: { phaseId: string; summary: string }[] = [];
  for (const p of run.phases) {
    const summary = dynamicSummary(p.dynamic, plan.get(p.id));
    if (summary) out.push({ phaseId: p.id, summary });
  }
  return out;
}

/** Text with `code` spans kept as code spans and everything else escaped. */
function inlineWithCode(text: string): string {
  return text
    .split(/(`[^`]*`)/)
    .map((part) => {
      if (/^`[^`]*`$/.test(part)) return code(part.slice(1, -1));
      // escapeMarkdownInline trims; the spaces around a code span are part of the sentence.
      return (/^\s/.test(part) ? ' ' : '') + escapeMarkdownInline(part) + (/\s$/.test(part) && part.trim() ? ' ' : '');
    })
    .join('');
}

/** `a.ts`, `b.ts` and 3 more — as code spans, at most `max`. */
function codeList(items: readonly string[], max: number, itemMax = 80, total = items.length): string {
  const shown = items.slice(0, max).map((x) => code(clip(cleanLine(x), itemMax)));
  const more = total - shown.length;
  return shown.join(', ') + (more > 0 ? ` and ${more} more` : '');
}

/** Skeptics' reasons of one verdict, those on the verdict's side first, repeats counted. */
function verdictReasons(v: Verdict): string {
  const mine = v.verdict === 'refuted' ? 'refutes: ' : 'upholds: ';
  const picked = v.reasons.filter((r) => r.startsWith(mine));
  const list = (picked.length > 0 ? picked.map((r) => r.slice(mine.length)) : v.reasons).map((r) => clip(cleanLine(r), REASON_MAX)).filter(Boolean);
  const counts = new Map<string, number>();
  for (const r of list) counts.set(r, (counts.get(r) ?? 0) + 1);
  const parts = [...counts].map(([r, k]) => `${escapeMarkdownInline(r)}${k > 1 ? ` (×${k})` : ''}`);
  return parts.slice(0, 3).join('; ') + (parts.length > 3 ? `; and ${parts.length - 3} more` : '');
}

function verdictLine(v: Verdict): string {
  const votes = `${v.refute} of ${v.of} skeptic${v.of === 1 ? '' : 's'} refuted it`;
  const reasons = verdictReasons(v);
  return `- ${code(v.id)} ${escapeMarkdownInline(clip(cleanLine(v.finding), FINDING_MAX))} — from ${code(v.from)}; ${votes}${reasons ? `: ${reasons}` : ''}`;
}

/** A bounded excerpt of a gate check's failure from its record (output and stderr, the end). */
function checkExcerpt(record: AgentRecord | undefined): string | undefined {
  if (!record) return undefined;
  const text = cleanBlock(`${record.output ?? ''}\n${record.stderrTail ?? ''}`).trim();
  const exit = record.signal ? `signal ${cleanLine(record.signal)}` : record.exitCode !== null ? `exit code ${record.exitCode}` : '';
  const bytes = utf8Bytes(text);
  const tailText = bytes > FAILURE_EXCERPT_BYTES ? `…${text.slice(-FAILURE_EXCERPT_BYTES)}` : text;
  return [exit, tailText].filter(Boolean).join('\n');
}

/** The Markdown pieces of one dynamic phase (each piece a line or a fenced block). */
function dynamicPhasePieces(run: RunRecord, phase: PlanPhase, state: DynamicState | undefined, records: Map<string, AgentRecord>): string[] {
  const d = phase.dynamic!;
  const out: string[] = [];
  const title = cleanLine(phase.title ?? '');
  out.push(`### ${code(phase.id)}${title && title !== phase.id ? ` — ${escapeMarkdownInline(clip(title, 80))}` : ''}`, '');
  const what = describeDynamics(phase);
  if (what.length > 0) out.push(`What it does: ${inlineWithCode(clip(what.join('; '), 400))}.`, '');

  // Tasks by kind, so helpers are counted, not listed one by one.
  const tasks = run.plan.tasks.filter((t) => t.phaseId === phase.id);
  const byKind = new Map<TaskKind, { n: number; ok: number }>();
  for (const t of tasks) {
    const k = kindOf(t.origin);
    const c = byKind.get(k) ?? { n: 0, ok: 0 };
    c.n++;
    if (records.get(t.ref)?.status === 'succeeded') c.ok++;
    byKind.set(k, c);
  }
  const labels: [TaskKind, string, string][] = [['work', 'work task', 'work tasks'], ['skeptic', 'skeptic', 'skeptics'], ['check', 'gate check', 'gate checks'], ['fix', 'fix', 'fixes']];
  const taskParts = labels.filter(([k]) => byKind.has(k)).map(([k, one, many]) => {
    const c = byKind.get(k)!;
    // A gate check that ran succeeds as a task whether the gate passed or not: say which.
    if (k === 'check' && state?.gate) {
      const g = state.gate;
      const failed = g.passed === true ? g.iterations - 1 : g.passed === false ? g.iterations : Math.max(0, g.iterations - 1);
      return `${plural(c.n, one, many)} (${failed} failed${g.passed === true ? ', 1 passed' : ''})`;
    }
    return `${plural(c.n, one, many)} (${c.ok === c.n ? (c.n === 1 ? 'succeeded' : 'all succeeded') : `${c.ok} succeeded`})`;
  });
  if (taskParts.length > 0) out.push(`Tasks: ${taskParts.join(', ')}. Each one: \`fanfold show ${run.runId} <phase/task>\`.`, '');
  if (!state || Object.keys(state).length === 0) {
    out.push('_Nothing recorded yet: the phase has not started its dynamic work._', '');
    return out;
  }

  const it = state.items;
  if (it || d.forEach || d.pipeline) {
    out.push('#### Items', '');
    if (!it) out.push('_Not expanded yet._', '');
    else {
      const source = d.forEach ? d.forEach.from : d.pipeline?.from;
      const kept = Math.max(0, it.found - it.dropped);
      out.push(`- ${plural(it.found, 'item')} found${source ? ` in ${code(source)}` : ''}: ${kept} kept, ${plural(it.made, 'task')} made${it.duplicates > 0 ? `, ${plural(it.duplicates, 'duplicate')} removed` : ''}.`);
      if (it.dropped > 0) {
        const listed = it.droppedItems.length;
        out.push(
          `- **${plural(it.dropped, 'item')} dropped** (${escapeMarkdownInline(it.dropReason ?? 'over a cap')}): ${codeList(it.droppedItems, MAX_DROPPED, 80, it.dropped)}` +
            (listed < it.dropped && listed <= MAX_DROPPED ? ` (run.json lists the first ${listed})` : '') + '.',
        );
      } else out.push('- No item was dropped.');
      for (const p of (it.problems ?? []).slice(0, 3)) out.push(`- Problem: ${escapeMarkdownInline(clip(p, 200))}`);
      if ((it.problems?.length ?? 0) > 3) out.push(`- … and ${plural(it.problems!.length - 3, 'more problem')}.`);
      out.push('');
    }
  }

  const v = state.verify;
  if (v || d.verify) {
    out.push('#### Verification', '');
    if (!v) out.push('_No verdicts yet: the skeptics have not all answered._', '');
    else {
      const by = v.refuteBy === 'majority' ? 'refuted by a majority' : v.refuteBy === 'any' ? 'refuted by any one' : 'refuted only when all agree';
      out.push(`${plural(v.skeptics, 'skeptic')} per finding, ${by}: ${plural(v.findings, 'finding')} — ${v.confirmed} confirmed, ${v.refuted} refuted, ${v.unverified} unverified.`, '');
      if (v.unverified > 0) out.push(`${plural(v.unverified, 'finding was', 'findings were')} not verified (over verify.max or the room left under limits.maxAgents): neither confirmed nor refuted.`, '');
      const confirmed = v.verdicts.filter((x) => x.verdict === 'confirmed');
      const refuted = v.verdicts.filter((x) => x.verdict === 'refuted');
      out.push(`**Confirmed findings (${v.confirmed})**`, '');
      if (v.confirmed === 0) out.push('_None._');
      for (const x of confirmed.slice(0, MAX_CONFIRMED)) out.push(verdictLine(x));
      if (v.confirmed > Math.min(confirmed.length, MAX_CONFIRMED)) out.push(`- … and ${plural(v.confirmed - Math.min(confirmed.length, MAX_CONFIRMED), 'more confirmed finding')} (run.json has the verdicts).`);
      out.push('', `**Refuted findings (${v.refuted})**`, '');
      if (v.refuted === 0) out.push('_None._');
      for (const x of refuted.slice(0, MAX_REFUTED)) out.push(verdictLine(x));
      if (v.refuted > Math.min(refuted.length, MAX_REFUTED)) out.push(`- … and ${plural(v.refuted - Math.min(refuted.length, MAX_REFUTED), 'more refuted finding')} (run.json has the verdicts).`);
      out.push('');
    }
  }

  const g = state.gate;
  if (g || d.gate) {
    out.push('#### Gate', '');
    const what = d.gate?.kind === 'command' && d.gate.command !== undefined ? `Command ${code(clip(d.gate.command, 120))}` : `Critic ${code(d.gate?.agent ?? 'critic')}`;
    if (!g) out.push(`${what}: not run yet (at most ${plural(d.gate?.maxIterations ?? 0, 'run')}).`, '');
    else {
      const failed = g.passed === true ? g.iterations - 1 : g.iterations;
      const verdict =
        g.passed === true ? `passed on run ${g.iterations} of at most ${g.maxIterations}`
        : g.passed === false ? `**failed** on run ${g.iterations} of at most ${g.maxIterations}${g.iterations >= g.maxIterations ? ' — no runs left, so the run ended failed' : ''}`
        : `pending: run ${g.iterations} of at most ${g.maxIterations}`;
      const fixes = failed === 0 ? '' : g.passed === true ? (failed === 1 ? ', followed by a fix' : ', each followed by a fix') : failed === 1 ? '' : ', each but the last followed by a fix';
      out.push(`${what}: ${verdict} (${plural(Math.max(0, failed), 'failed run')}${fixes}).`, '');
      let last: string | undefined;
      let lastRun = g.iterations;
      if (g.last) last = cleanBlock(g.last);
      else if (g.passed === true && g.iterations > 1) {
        lastRun = g.iterations - 1;
        last = checkExcerpt(records.get(`${phase.id}/check-${lastRun}`));
      }
      if (last) out.push(`Last failure (run ${lastRun}):`, '', fence(clipBlockBytes(last, FAILURE_EXCERPT_BYTES + 100).text), '');
    }
  }

  const c = state.converge;
  if (c || d.converge) {
    out.push('#### Rounds', '');
    if (!c) out.push('_No round has ended yet._', '');
    else {
      const per = c.newPerRound.length > 20 ? `${c.newPerRound.slice(0, 20).join(', ')}, …` : c.newPerRound.join(', ');
      out.push(
        `${plural(c.rounds, 'round')} (at most ${c.maxRounds}; stops after ${plural(c.untilDry, 'dry round')}): new findings per round ${per || 'none'} — ${plural(c.findings, 'distinct finding')}.`,
        '',
        c.stopped ? `Stopped: ${escapeMarkdownInline(clip(c.stopped, 200))}.` : '_Still going: the last round has not ended._',
        '',
      );
    }
  }

  const m = state.merge;
  if (m || d.merge) {
    out.push('#### Merge', '');
    if (!m) out.push('_Not merged yet: patches are applied after the phase\'s work._', '');
    else {
      out.push(`${plural(m.applied.length, 'patch', 'patches')} applied to the working tree${m.applied.length ? `: ${codeList(m.applied, MAX_MERGE_REFS)}` : ''}${m.empty ? `; ${m.empty} with no change` : ''}.`, '');
      if (m.conflicts.length > 0) {
        out.push(`**Conflicts (${m.conflicts.length})** — not applied; the run ended failed and the patches stay in the agent records:`, '');
        for (const x of m.conflicts.slice(0, MAX_MERGE_REFS)) {
          out.push(`- ${code(x.ref)} on ${x.files.length ? codeList(x.files, 5, 80) : 'unknown files'}: ${escapeMarkdownInline(clip(cleanLine(x.message), 300))}`);
        }
        if (m.conflicts.length > MAX_MERGE_REFS) out.push(`- … and ${plural(m.conflicts.length - MAX_MERGE_REFS, 'more conflict')}.`);
        out.push('');
      }
    }
  }
  return out;
}

/**
 * One section per dynamic phase — items (found, made, dropped with the items and the reason),
 * verification (confirmed and refuted findings with the skeptics' reasons, unverified counted),
 * gate (runs, result, last failure), rounds (new findings per round, why it stopped) and merge
 * (applied patches, conflicts) — sharing `budget` bytes fairly; a section cut short says so.
 */
function dynamicSection(run: RunRecord, latest: readonly AgentRecord[], budget: number, notes: string[]): string[] {
  const phases = run.plan.phases.filter((p) => p.dynamic);
  if (phases.length === 0) return [];
  const records = new Map(latest.map((r) => [refOf(r), r]));
  const states = new Map(run.phases.map((p) => [p.id, p.dynamic]));
  const shown = phases.slice(0, MAX_DYNAMIC_PHASES);
  const blocks = shown.map((p) => dynamicPhasePieces(run, p, states.get(p.id), records));
  const head = ['## Dynamic phases', ''];
  const tailNote = phases.length > shown.length ? [`_${n(phases.length - shown.length, 'more dynamic phase')} not shown; run.json \`phases[].dynamic\` has them._`, ''] : [];
  if (tailNote.length) notes.push(`The dynamic-phase sections cover the first ${MAX_DYNAMIC_PHASES} of ${phases.length} dynamic phases.`);
  const room = Math.max(0, budget - utf8Bytes(head.join('\n')) - utf8Bytes(tailNote.join('\n')) - 4);
  const shares = fairShares(blocks.map((b) => utf8Bytes(b.join('\n')) + 1), room);
  const out = [...head];
  let cut = 0;
  blocks.forEach((pieces, i) => {
    const share = shares[i]!;
    const total = pieces.reduce((sum, x) => sum + utf8Bytes(x) + 1, 0);
    if (total <= share) {
      out.push(...pieces);
      return;
    }
    // Cut on a piece boundary (never inside a fence), keeping the heading and, in place of what is
    // cut, the one-line summary, so a dropped item or a refuted finding is never silently lost.
    cut++;
    const phase = shown[i]!;
    const summary = dynamicSummary(states.get(phase.id), phase);
    const cutNote =
      `_Cut to fit the report.${summary ? ` In short: ${escapeMarkdownInline(summary)}.` : ''} ` +
      `\`fanfold status ${run.runId}\` and run.json \`phases[].dynamic\` have the rest._`;
    const reserve = utf8Bytes(cutNote) + 4;
    let used = 0;
    let k = 0;
    for (; k < pieces.length; k++) {
      const size = utf8Bytes(pieces[k]!) + 1;
      if (k >= 2 && used + size + reserve > share) break;
      used += size;
    }
    out.push(...pieces.slice(0, k));
    if (out[out.length - 1] !== '') out.push('');
    out.push(cutNote, '');
  });
  if (cut > 0) notes.push(`${n(cut, 'dynamic-phase section')} cut to fit the report.`);
  out.push(...tailNote);
  return out;
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

  const head: string[] = [`# ${escapeMarkdownInline(clip(run.name || run.runId, 120))} — fanfold report`, ''];
  head.push(...statusLines(run, latest, planned), '');
  if (run.plan.goal) head.push(`**Goal:** ${escapeMarkdownInline(clip(run.plan.goal, 600))}`, '');
  const when = [`Run ${code(run.runId)}`, `started ${escapeMarkdownInline(run.startedAt)}`];
  if (run.endedAt) when.push(`ended ${escapeMarkdownInline(run.endedAt)}`);
  when.push(`wall time ${formatDuration(run.elapsedMs)}`);
  head.push(when.join(' · '), '');

  const table = ['## Phases', '', ...phaseTable(run, byPhase, notes), ''];
  const failures = failureSection(run, latest, notes);
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

  const dynamic = dynamicSection(run, latest, DYNAMIC_MAX_BYTES, notes);
  const fixed = [head, table, dynamic, failures, skipped, totals].reduce((sum, s) => sum + utf8Bytes(s.join('\n')) + 1, 0);
  const room = REPORT_MAX_BYTES - fixed - 2048; // 2 KiB for the notes section and joins
  const finalBudget = Math.max(0, Math.min(FINAL_MAX_BYTES, Math.floor(room * 0.45)));
  const final = finalSection(input, byPhase, finalBudget, notes);
  const digestBudget = Math.max(0, Math.min(DIGESTS_MAX_BYTES, room - utf8Bytes(final.join('\n'))));
  const digests = digestSection(run, input.digests, digestBudget, notes);

  const leftOut = notes.length > 0 ? ['## What this report leaves out', '', ...notes.map((x) => `- ${x}`), ''] : [];
  const text = [...head, ...table, ...final, ...dynamic, ...digests, ...failures, ...skipped, ...leftOut, ...totals].join('\n');
  return capMarkdown(text, REPORT_MAX_BYTES);
}

/**
 * Hard cap for Markdown: cuts on a line boundary, closes a fenced block left open, and says the
 * report was cut. Only reached when the section budgets above were not enough.
 */
function capMarkdown(text: string, maxBytes: number): string {
  const trimmed = text.replace(/\n+$/, '\n');
  if (utf8Bytes(trimmed) <= maxBytes) return trimmed;
  const tail = '\n\n_Report cut at its size cap; `fanfold status` and `query_workflow` show the rest._\n';
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
