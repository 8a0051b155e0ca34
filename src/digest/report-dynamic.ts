/**
 * The dynamic phases in the report: what each did (items and what was dropped, confirmed and
 * refuted findings with their reasons, gate runs, converge rounds, merged patches and conflicts),
 * bounded like the rest of report.md, plus the one-line summaries status views print.
 */
import { describeDynamics } from '../spec/render.js';
import type { PlanPhase, PlanTask, TaskOrigin } from '../spec/types.js';
import type { AgentRecord, DynamicState, RunRecord, Verdict } from '../store/types.js';
import { code, escapeMarkdownInline, fence, n, plural } from './markdown-text.js';
import { refOf } from './records.js';
import { cleanBlock, cleanLine, clip, clipBlockBytes, fairShares, utf8Bytes } from './text.js';

// ---- dynamic phases -----------------------------------------------------------------------------

/** Most dynamic phases given a section; the rest are counted. */
const MAX_DYNAMIC_PHASES = 20;
/** Bytes all dynamic-phase sections share (fairly, see fairShares). */
export const DYNAMIC_MAX_BYTES = 7 * 1024;
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
export function helperRefs(tasks: readonly PlanTask[]): Set<string> {
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
function dynamicPhasePieces(run: RunRecord, phase: PlanPhase, state: DynamicState | undefined, records: Map<string, AgentRecord>, hint: (args: readonly string[]) => string): string[] {
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
  if (taskParts.length > 0) out.push(`Tasks: ${taskParts.join(', ')}. Each one, e.g. the first: \`${hint(['show', run.runId, tasks[0]!.ref])}\`.`, '');
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
export function dynamicSection(
  run: RunRecord,
  latest: readonly AgentRecord[],
  budget: number,
  notes: string[],
  hint: (args: readonly string[]) => string = (args) => ['fanfold', ...args].join(' '),
): string[] {
  const phases = run.plan.phases.filter((p) => p.dynamic);
  if (phases.length === 0) return [];
  const records = new Map(latest.map((r) => [refOf(r), r]));
  const states = new Map(run.phases.map((p) => [p.id, p.dynamic]));
  const shown = phases.slice(0, MAX_DYNAMIC_PHASES);
  const blocks = shown.map((p) => dynamicPhasePieces(run, p, states.get(p.id), records, hint));
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
      `\`${hint(['status', run.runId])}\` and run.json \`phases[].dynamic\` have the rest._`;
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

