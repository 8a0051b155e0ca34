/**
 * The run timeline: one component — {@link renderTimeline} (markup), {@link TIMELINE_CSS} and
 * {@link TIMELINE_SCRIPT} — that report.html embeds and a dashboard can embed the same way.
 *
 * What it draws: one row per phase (label ellipsized, never cut mid-word), one bar per attempt at
 * its real time from the run's start, coloured by outcome (a gate check that did not pass is a
 * failed check, not a green task), shaped by kind (task, skeptic, check, fix) and labelled with its
 * task id where it has room; a bar is never narrower than a few pixels, so a fast failure stays
 * visible. Stretches when no owner ran the run (stopped or crashed, then resumed) are shaded and
 * labelled, so the axis has no unexplained gap.
 *
 * Safety: every piece of text is HTML-escaped; the script reads only the page's own attributes.
 */
import type { PlanTask } from '../spec/types.js';
import type { AgentRecord, AgentStatus, RunEvent, RunRecord } from '../store/types.js';
import { isFailedCheck } from '../store/counts.js';
import { escapeHtml } from './markdown-html.js';
import { dynamicSummary } from './report-dynamic.js';
import { failureCause, refOf, STATUS_LABELS } from './records.js';
import { cleanLine, clip, formatDuration, parseTime } from './text.js';

/**
 * What a bar shows: an attempt's status, `check_failed` for a gate check that did not pass, or
 * `running` for an attempt still going (the dashboard draws those, growing until they end).
 */
export type BarStatus = AgentStatus | 'check_failed' | 'running';

/** What a bar's task is, by where it came from. */
export type BarKind = 'task' | 'skeptic' | 'check' | 'fix';

/** Bar colours by status; the legend shows them in this order. */
export const STATUS_COLOURS: Readonly<Record<BarStatus, string>> = {
  succeeded: '#2f9e5b',
  check_failed: '#9a6700',
  failed: '#d9453b',
  timed_out: '#e8912d',
  cancelled: '#7d8590',
  skipped: '#b9c0cb',
  running: '#2f6fd6',
};

const KIND_LABELS: ReadonlyArray<[BarKind, string]> = [
  ['task', 'task'],
  ['skeptic', 'skeptic'],
  ['check', 'gate check'],
  ['fix', 'fix'],
];

/** A stretch of wall time when no owner ran the run: from its stop (or crash) to its resume. */
export interface Pause {
  /** Epoch ms when the earlier segment ended. */
  from: number;
  /** Epoch ms when the run was resumed. */
  to: number;
  /** How the earlier segment ended: `stopped`, `failed`, … or `interrupted` (the owner died). */
  ended: string;
}

/** An attempt that has started and not ended (from the journal's `agent.started` lines). */
export interface RunningAttempt {
  /** `phase/task`. */
  ref: string;
  attempt: number;
  /** ISO time it started. */
  startedAt: string;
}

/** Input of {@link renderTimeline}. */
export interface TimelineInput {
  run: Pick<RunRecord, 'startedAt' | 'endedAt' | 'elapsedMs' | 'plan' | 'phases'>;
  /** Every agent attempt (retries included): one bar each. */
  records: readonly AgentRecord[];
  /** Stop-and-resume gaps (see {@link pausesOf}). */
  pauses?: readonly Pause[];
  /** Attempts still running (a live run): drawn as `running` bars from their start up to `now`. */
  running?: readonly RunningAttempt[];
  /** Epoch ms the running bars end at (default `Date.now()`). */
  now?: number;
  /**
   * Attribute that carries each bar's `phase/task` (default `data-ref`). The dashboard renames
   * it: there `data-ref` marks the one element of each task (its latest attempt), and a task may
   * have several bars.
   */
  refAttribute?: string;
}

/**
 * The gaps between a run's segments, from its journal: each `run.resumed` after the first segment
 * ends a pause that began when the segment before it finished (`run.finished`), or — when its owner
 * died without finishing — at the last event that owner wrote.
 */
export function pausesOf(events: readonly RunEvent[]): Pause[] {
  const out: Pause[] = [];
  let lastAt = Number.NaN;
  let ended: { at: number; status: string } | undefined;
  for (const e of events) {
    const t = parseTime(e.t);
    if (e.type === 'run.resumed') {
      const from = ended?.at ?? lastAt;
      if (Number.isFinite(from) && Number.isFinite(t) && t > from) out.push({ from, to: t, ended: ended?.status ?? 'interrupted' });
      ended = undefined;
    } else if (e.type === 'run.finished') {
      ended = { at: t, status: e.status };
    }
    if (Number.isFinite(t)) lastAt = t;
  }
  return out;
}

const LANE_PX = 18;
const BAR_PX = 14;
/** Narrowest bar on screen, so a 20 ms failure is a visible mark, not a 1-pixel sliver. */
const MIN_BAR_PX = 6;

/** Hover details and legend toggles; reads only the page's own attributes. */
export const TIMELINE_SCRIPT = `(function () {
  function init() {
  var tip = document.getElementById('tip');
  var box = document.getElementById('timeline');
  if (!tip || !box) return;
  box.setAttribute('data-js', 'ready');
  function show(el, x, y) {
    if (el.title) { el.setAttribute('data-tip', el.title); el.removeAttribute('title'); }
    tip.textContent = el.getAttribute('data-tip') || '';
    tip.hidden = false;
    var w = tip.offsetWidth, h = tip.offsetHeight;
    var left = Math.min(x + 14, window.innerWidth - w - 8);
    var top = y + 16 + h > window.innerHeight ? y - h - 10 : y + 16;
    tip.style.left = Math.max(4, left) + 'px';
    tip.style.top = Math.max(4, top) + 'px';
  }
  box.addEventListener('mousemove', function (e) {
    var t = e.target && e.target.closest ? e.target.closest('.bar, .pause') : null;
    if (t) show(t, e.clientX, e.clientY);
    else tip.hidden = true;
  });
  box.addEventListener('mouseleave', function () { tip.hidden = true; });
  var legend = document.getElementById('legend');
  if (legend) legend.addEventListener('click', function (e) {
    var item = e.target && e.target.closest ? e.target.closest('[data-toggle]') : null;
    if (!item) return;
    box.classList.toggle('hide-' + item.getAttribute('data-toggle'));
    item.classList.toggle('off');
  });
  }
  // A page that redraws the timeline (the dashboard) calls this again after each redraw.
  window.fanfoldTimeline = init;
  init();
})();`;

/** The timeline's styles (they expect the page's `--fg`, `--muted`, `--line` and `--soft`). */
export const TIMELINE_CSS = `
section.timeline { --label: clamp(120px, 20vw, 220px); padding: 14px 28px 18px; border-bottom: 1px solid var(--line); background: var(--soft); }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; margin-bottom: 10px; font-size: 13px; user-select: none; }
.legend span[data-toggle] { cursor: pointer; }
.legend .off { opacity: .35; text-decoration: line-through; }
.legend .kinds { flex-basis: 100%; display: flex; flex-wrap: wrap; gap: 4px 14px; color: var(--muted); }
.sw { display: inline-block; width: 12px; height: 12px; border-radius: 2px; vertical-align: -1px; margin-right: 5px; }
.kw { display: inline-block; position: relative; width: 22px; height: 12px; vertical-align: -1px; margin-right: 5px; background: #8c959f; border-radius: 2px; }
.rows { position: relative; }
.row { display: flex; align-items: stretch; border-top: 1px solid var(--line); }
.row:last-child { border-bottom: 1px solid var(--line); }
.plabel { width: var(--label); flex: none; padding: 3px 8px 3px 0; font-size: 12px; min-width: 0; }
.plabel b, .plabel small { display: block; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.plabel b { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-weight: 600; }
.plabel small { color: var(--muted); }
.track { position: relative; flex: 1; min-width: 0; min-height: 26px; }
.axis .track { height: 34px; min-height: 34px; }
.tick { position: absolute; top: 0; font-size: 11px; color: var(--muted); transform: translateX(-50%); white-space: nowrap; }
.tick:first-child { transform: none; }
.grid { position: absolute; top: 0; bottom: 0; left: var(--label); right: 0; pointer-events: none; }
.grid i { position: absolute; top: 0; bottom: 0; border-left: 1px dashed #c9d1d9; }
.grid .pause { border-left: 2px solid #d9453b; border-right: 2px solid #2f9e5b; pointer-events: auto; cursor: default;
  background: repeating-linear-gradient(135deg, rgba(101,109,118,.14) 0 6px, rgba(101,109,118,.04) 6px 12px); }
.pause-label { position: absolute; top: 16px; font-size: 11px; color: var(--fg); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; padding: 0 3px; }
.bar { position: absolute; height: ${BAR_PX}px; min-width: ${MIN_BAR_PX}px; border-radius: 2px; cursor: default; overflow: hidden;
  font: 10px/${BAR_PX}px ui-monospace, SFMono-Regular, Menlo, monospace; color: #fff; white-space: nowrap; text-overflow: clip; }
.bar .bl { padding: 0 3px; pointer-events: none; }
.bar:hover { outline: 2px solid #1f2328; z-index: 2; }
${(Object.keys(STATUS_COLOURS) as BarStatus[]).map((s) => `.s-${s} { background-color: ${STATUS_COLOURS[s]}; }`).join('\n')}
.s-skipped { background-image: repeating-linear-gradient(45deg, #9aa3ae 0 2px, #e3e7ec 2px 4px); box-shadow: inset 0 0 0 1px #9aa3ae; color: #1f2328; }
.k-skeptic, .kw.k-skeptic { height: ${BAR_PX - 4}px; margin-top: 2px; background-image: repeating-linear-gradient(90deg, rgba(255,255,255,.38) 0 2px, transparent 2px 6px); font-size: 0; }
.k-check, .kw.k-check { border-radius: ${BAR_PX / 2}px; box-shadow: inset 0 0 0 2px rgba(31,35,40,.55); }
.k-fix, .kw.k-fix { background-image: repeating-linear-gradient(45deg, rgba(255,255,255,.35) 0 3px, transparent 3px 7px); }
${(Object.keys(STATUS_COLOURS) as BarStatus[]).map((s) => `.hide-${s} .s-${s} { visibility: hidden; }`).join('\n')}
${KIND_LABELS.map(([k]) => `.hide-k-${k} .k-${k} { visibility: hidden; }`).join('\n')}
.s-running { background-image: repeating-linear-gradient(135deg, rgba(255,255,255,.28) 0 6px, transparent 6px 12px); background-size: 17px 17px; animation: ff-run 1s linear infinite; }
@keyframes ff-run { to { background-position: 17px 0; } }
@media (prefers-reduced-motion: reduce) { .s-running { animation: none; } }
.retry { box-shadow: inset 3px 0 0 rgba(0,0,0,.35); }
.tip { position: fixed; z-index: 10; max-width: 460px; padding: 6px 9px; border-radius: 6px; background: #1f2328; color: #fff; font-size: 12px; white-space: pre-wrap; pointer-events: none; box-shadow: 0 4px 14px rgba(0,0,0,.25); }
.empty { color: var(--muted); font-style: italic; padding: 8px 0; }
`;

/** One attempt placed on the timeline. */
interface Placed {
  record: AgentRecord;
  status: BarStatus;
  kind: BarKind;
  start: number;
  end: number;
  lane: number;
  known: boolean;
}

/** Whole-number steps for the time axis. */
const STEPS = [
  100, 200, 500, 1e3, 2e3, 5e3, 10e3, 15e3, 30e3, 60e3, 120e3, 300e3, 600e3, 900e3, 1800e3, 3600e3, 7200e3,
  4 * 3600e3, 6 * 3600e3, 12 * 3600e3, 24 * 3600e3,
];

function tickLabel(ms: number): string {
  if (ms === 0) return '0';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${ms / 1000} s`;
  if (ms < 3_600_000) return ms % 60_000 === 0 ? `${ms / 60_000} min` : formatDuration(ms);
  return ms % 3_600_000 === 0 ? `${ms / 3_600_000} h` : formatDuration(ms);
}

function pct(value: number): string {
  return `${(Math.round(value * 1000) / 1000).toString()}%`;
}

/** A bar's status: a gate check that ran and did not pass is a failed check, not a green task. */
export function barStatus(r: AgentRecord): BarStatus {
  return isFailedCheck(r) ? 'check_failed' : r.status;
}

function kindOf(task: PlanTask | undefined): BarKind {
  const k = task?.origin?.kind;
  return k === 'skeptic' || k === 'check' || k === 'fix' ? k : 'task';
}

/**
 * Assigns lanes within a phase so overlapping attempts never share one (greedy interval packing).
 * `minSpan` is the shortest width a bar is drawn with, so short bars do not collide either.
 */
function packLanes(items: Placed[], minSpan: number): number {
  items.sort((a, b) => a.start - b.start || a.end - b.end || refOf(a.record).localeCompare(refOf(b.record)) || a.record.attempt - b.record.attempt);
  const laneEnds: number[] = [];
  for (const item of items) {
    const end = Math.max(item.end, item.start + minSpan);
    let lane = laneEnds.findIndex((e) => e <= item.start);
    if (lane === -1) {
      lane = laneEnds.length;
      laneEnds.push(end);
    } else {
      laneEnds[lane] = end;
    }
    item.lane = lane;
  }
  return Math.max(1, laneEnds.length);
}

const KIND_WORDS: Record<BarKind, string> = { task: 'task', skeptic: 'skeptic', check: 'gate check', fix: 'fix' };

/** The hover text of one bar. */
function barTitle(p: Placed, t0: number): string {
  const r = p.record;
  const what = p.status === 'check_failed' ? 'check failed (the gate check ran and did not pass)' : p.status === 'running' ? 'running now' : p.status.replace('_', ' ');
  const lines = [`${refOf(r)} · ${KIND_WORDS[p.kind]} · attempt ${r.attempt} · ${what}`];
  lines.push(
    p.known
      ? `${formatDuration(r.durationMs)} (from +${formatDuration(p.start - t0)} to +${formatDuration(p.end - t0)})`
      : `${formatDuration(r.durationMs)} (start time unknown)`,
  );
  const exit = r.signal ? `signal ${cleanLine(r.signal)}` : r.exitCode !== null ? `exit code ${r.exitCode}` : '';
  if (exit) lines.push(exit);
  if (p.status !== 'succeeded' && p.status !== 'running') {
    const cause = failureCause(r, 300);
    if (cause) lines.push(`cause: ${cause}`);
  }
  if (r.agent) lines.push(`agent ${clip(cleanLine(r.agent), 60)}${r.runner ? ` (${cleanLine(r.runner)})` : ''}`);
  return lines.join('\n');
}

/**
 * A running attempt as the record-shaped bar input the timeline draws: status `running`, ending
 * `now`. Internal: never stored, never shown outside the timeline.
 */
function runningRecord(a: RunningAttempt, tasks: readonly PlanTask[], now: number): AgentRecord {
  const slash = a.ref.indexOf('/');
  const task = tasks.find((t) => t.ref === a.ref);
  const start = parseTime(a.startedAt);
  return {
    schemaVersion: 2, runId: '', phaseId: a.ref.slice(0, slash), taskId: a.ref.slice(slash + 1), key: '', attempt: a.attempt,
    status: 'running' as AgentStatus, agent: task?.agent ?? '', runner: '', prompt: '', output: '', outputBytes: 0, truncated: false,
    exitCode: null, signal: null, stderrTail: '', startedAt: a.startedAt, endedAt: new Date(now).toISOString(),
    durationMs: Number.isFinite(start) ? Math.max(0, now - start) : 0,
  };
}

/** Renders the timeline section: legend (status and kind), time axis, pauses, one row per phase. */
export function renderTimeline(input: TimelineInput): string {
  const { run, records } = input;
  const pauses = input.pauses ?? [];
  const runStart = parseTime(run.startedAt);
  const runEnd = parseTime(run.endedAt);
  let t0 = Number.isFinite(runStart) ? runStart : Infinity;
  let t1 = Number.isFinite(runEnd) ? runEnd : Number.isFinite(runStart) ? runStart + run.elapsedMs : -Infinity;
  for (const r of records) {
    const s = parseTime(r.startedAt);
    const e = parseTime(r.endedAt);
    if (Number.isFinite(s) && s < t0) t0 = s;
    if (Number.isFinite(e) && e > t1) t1 = e;
  }
  for (const p of pauses) if (p.to > t1) t1 = p.to;
  const now = input.now ?? Date.now();
  const running = (input.running ?? []).map((a) => runningRecord(a, run.plan.tasks, now));
  for (const r of running) {
    const s = parseTime(r.startedAt);
    if (Number.isFinite(s) && s < t0) t0 = s;
    if (now > t1) t1 = now;
  }
  if (!Number.isFinite(t0)) t0 = 0;
  if (!Number.isFinite(t1) || t1 <= t0) t1 = t0 + 1;
  const span = t1 - t0;

  const taskByRef = new Map(run.plan.tasks.map((t) => [t.ref, t]));
  // Phases in plan order, then any phase only the records know.
  const byPhase = new Map<string, Placed[]>(run.plan.phases.map((p) => [p.id, []]));
  for (const record of [...records, ...running]) {
    const s = parseTime(record.startedAt);
    let e = parseTime(record.endedAt);
    const known = Number.isFinite(s);
    if (!Number.isFinite(e) || e < s) e = known ? s + Math.max(0, record.durationMs || 0) : t0;
    const list = byPhase.get(record.phaseId) ?? [];
    list.push({ record, status: barStatus(record), kind: kindOf(taskByRef.get(refOf(record))), start: known ? s : t0, end: known ? e : t0, lane: 0, known });
    byPhase.set(record.phaseId, list);
  }
  const all = [...byPhase.values()].flat();

  const counts = new Map<string, number>();
  for (const p of all) {
    counts.set(p.status, (counts.get(p.status) ?? 0) + 1);
    counts.set(`k-${p.kind}`, (counts.get(`k-${p.kind}`) ?? 0) + 1);
  }
  const statusLabels: [BarStatus, string][] = [STATUS_LABELS[0]!, ['check_failed', 'check failed'], ...STATUS_LABELS.slice(1)];
  // Only a live run has running bars; a finished report does not list the state.
  if (running.length > 0) statusLabels.push(['running', 'running']);
  const refAttr = /^data-[a-z-]+$/.test(input.refAttribute ?? '') ? input.refAttribute! : 'data-ref';
  const legend =
    statusLabels
      .map(([s, label]) => `<span data-toggle="${s}" title="show or hide ${label}"><i class="sw s-${s}"></i>${label} (${counts.get(s) ?? 0})</span>`)
      .join('') +
    `<span class="kinds">${KIND_LABELS.filter(([k]) => k === 'task' || counts.has(`k-${k}`))
      .map(([k, label]) => `<span data-toggle="k-${k}" title="show or hide ${label}s"><i class="kw k-${k}"></i>${label} (${counts.get(`k-${k}`) ?? 0})</span>`)
      .join('')}</span>`;

  const step = STEPS.find((s) => span / s <= 8) ?? Math.ceil(span / 8);
  const ticks: string[] = [];
  const grid: string[] = [];
  for (let t = 0; t <= span; t += step) {
    ticks.push(`<span class="tick" style="left:${pct((t / span) * 100)}">${escapeHtml(tickLabel(t))}</span>`);
    if (t > 0) grid.push(`<i style="left:${pct((t / span) * 100)}"></i>`);
  }
  for (const p of pauses) {
    const left = ((Math.max(p.from, t0) - t0) / span) * 100;
    const width = ((Math.min(p.to, t1) - Math.max(p.from, t0)) / span) * 100;
    const why = p.ended === 'interrupted' ? 'the owner died' : p.ended;
    const text = `${why}, resumed ${formatDuration(p.to - p.from)} later`;
    const title = `Not running: the run ended ${why} at +${formatDuration(p.from - t0)} and was resumed at +${formatDuration(p.to - t0)}.`;
    grid.push(`<i class="pause" style="left:${pct(left)};width:${pct(width)}" title="${escapeHtml(title)}"></i>`);
    ticks.push(`<span class="pause-label" style="left:${pct(left)};max-width:${pct(Math.max(width, 12))}">${escapeHtml(text)}</span>`);
  }

  const rows: string[] = [];
  for (const [phaseId, items] of byPhase) {
    const lanes = packLanes(items, span * 0.008);
    const planPhase = run.plan.phases.find((p) => p.id === phaseId);
    const title = planPhase?.title ?? '';
    // A dynamic phase's row says what it did on hover (items, verdicts, gate, rounds, merge).
    const dyn = dynamicSummary(run.phases.find((p) => p.id === phaseId)?.dynamic, planPhase);
    const bars = items.map((p) => {
      const left = ((p.start - t0) / span) * 100;
      const width = ((p.end - p.start) / span) * 100;
      const r = p.record;
      return (
        `<div class="bar s-${p.status} k-${p.kind}${r.attempt > 1 ? ' retry' : ''}" ${refAttr}="${escapeHtml(refOf(r))}" data-status="${p.status}" data-kind="${p.kind}" data-attempt="${r.attempt}"` +
        ` style="left:${pct(left)};width:${pct(width)};top:${p.lane * LANE_PX + 6}px" title="${escapeHtml(barTitle(p, t0))}"><span class="bl">${escapeHtml(clip(cleanLine(r.taskId), 60))}</span></div>`
      );
    });
    const label = `<b>${escapeHtml(clip(cleanLine(phaseId), 120))}</b><small>${escapeHtml(clip(cleanLine(title), 120))}${title ? ' · ' : ''}${items.length} attempt${items.length === 1 ? '' : 's'}</small>`;
    rows.push(
      `<div class="row"><div class="plabel" title="${escapeHtml(`${phaseId} — ${title}${dyn ? `\n${dyn}` : ''}`)}">${label}</div><div class="track" style="height:${lanes * LANE_PX + 12}px">${bars.join('')}</div></div>`,
    );
  }

  const body =
    records.length === 0
      ? '<div class="empty">No agent has run yet.</div>'
      : `<div class="rows"><div class="grid">${grid.join('')}</div><div class="row axis"><div class="plabel"><small>time from run start</small></div><div class="track">${ticks.join('')}</div></div>${rows.join('')}</div>`;
  return `<section class="timeline" id="timeline"><div class="legend" id="legend">${legend}</div>${body}<div class="tip" id="tip" hidden></div></section>`;
}
