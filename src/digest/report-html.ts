/**
 * The timeline report (`report.html`): one self-contained page — inline CSS and a few lines of
 * inline JS, no external assets — with a Gantt-style timeline of every agent attempt above the
 * Markdown report rendered as HTML.
 *
 * Safety: agent outputs, causes and names are untrusted. Every piece of text is HTML-escaped (in
 * element content and in quoted attributes); no input reaches the script. As a second wall, the page
 * carries a Content-Security-Policy that allows only the one inline script whose hash it lists, so
 * an injected `<script>` would not run even if escaping ever failed.
 */
import { createHash } from 'node:crypto';
import type { AgentRecord, AgentStatus, RunRecord } from '../store/types.js';
import { escapeHtml, renderMarkdownHtml } from './markdown-html.js';
import { dynamicSummary } from './report-md.js';
import { failureCause, refOf, STATUS_LABELS } from './records.js';
import { isFailedCheck } from '../store/counts.js';
import { cleanLine, clip, formatDuration, parseTime } from './text.js';

/** Input of {@link renderReportHtml}. */
export interface ReportHtmlInput {
  run: RunRecord;
  /** Every agent attempt (retries included): one bar each. */
  records: AgentRecord[];
  /** The Markdown report (from `renderReportMarkdown`), shown below the timeline. */
  markdown: string;
}

/** What a bar shows: an attempt's status, or `check_failed` for a gate check that did not pass. */
export type BarStatus = AgentStatus | 'check_failed';

/** Bar colours by status; the legend shows them in this order. */
export const STATUS_COLOURS: Readonly<Record<BarStatus, string>> = {
  succeeded: '#2f9e5b',
  check_failed: '#9a6700',
  failed: '#d9453b',
  timed_out: '#e8912d',
  cancelled: '#7d8590',
  skipped: '#b9c0cb',
};

const RUN_COLOURS: Record<string, string> = {
  completed: '#2f9e5b',
  running: '#2f6fd6',
  failed: '#d9453b',
  stopped: '#e8912d',
  interrupted: '#8e5bd0',
  budget_exhausted: '#b7791f',
  paused: '#6b7a8f',
  awaiting_approval: '#2f6fd6',
};

const LANE_PX = 14;
const BAR_PX = 10;

/** Hover details for the bars: moves the native `title` into a tooltip that follows the pointer. */
const SCRIPT = `(function () {
  var tip = document.getElementById('tip');
  var box = document.getElementById('timeline');
  if (!tip || !box) return;
  box.setAttribute('data-js', 'ready');
  function show(bar, x, y) {
    if (bar.title) { bar.setAttribute('data-tip', bar.title); bar.removeAttribute('title'); }
    tip.textContent = bar.getAttribute('data-tip') || '';
    tip.hidden = false;
    var w = tip.offsetWidth, h = tip.offsetHeight;
    var left = Math.min(x + 14, window.innerWidth - w - 8);
    var top = y + 16 + h > window.innerHeight ? y - h - 10 : y + 16;
    tip.style.left = Math.max(4, left) + 'px';
    tip.style.top = Math.max(4, top) + 'px';
  }
  box.addEventListener('mousemove', function (e) {
    var t = e.target;
    if (t && t.classList && t.classList.contains('bar')) show(t, e.clientX, e.clientY);
    else tip.hidden = true;
  });
  box.addEventListener('mouseleave', function () { tip.hidden = true; });
  var legend = document.getElementById('legend');
  if (legend) legend.addEventListener('click', function (e) {
    var item = e.target && e.target.closest ? e.target.closest('[data-toggle]') : null;
    if (!item) return;
    var cls = 'hide-' + item.getAttribute('data-toggle');
    box.classList.toggle(cls);
    item.classList.toggle('off');
  });
})();`;

const STYLE = `
:root { --fg: #1f2328; --muted: #656d76; --line: #d8dee4; --bg: #ffffff; --soft: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--fg); background: var(--bg); }
header.top { padding: 18px 28px 10px; border-bottom: 1px solid var(--line); }
header.top h1 { margin: 0 0 4px; font-size: 22px; }
.meta { color: var(--muted); font-size: 13px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-weight: 600; font-size: 12px; margin-right: 8px; }
.reason { color: var(--fg); }
section.timeline { padding: 14px 28px 18px; border-bottom: 1px solid var(--line); background: var(--soft); }
.legend { display: flex; flex-wrap: wrap; gap: 14px; margin-bottom: 10px; font-size: 13px; user-select: none; }
.legend span[data-toggle] { cursor: pointer; }
.legend .off { opacity: .35; text-decoration: line-through; }
.sw { display: inline-block; width: 12px; height: 12px; border-radius: 2px; vertical-align: -1px; margin-right: 5px; }
.rows { position: relative; }
.row { display: flex; align-items: stretch; border-top: 1px solid var(--line); }
.row:last-child { border-bottom: 1px solid var(--line); }
.plabel { width: 190px; flex: none; padding: 3px 8px 3px 0; font-size: 12px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.plabel b { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-weight: 600; }
.plabel small { color: var(--muted); display: block; }
.track { position: relative; flex: 1; min-height: 22px; }
.axis .track { height: 20px; min-height: 20px; }
.tick { position: absolute; top: 0; font-size: 11px; color: var(--muted); transform: translateX(-50%); white-space: nowrap; }
.tick:first-child { transform: none; }
.grid { position: absolute; top: 0; bottom: 0; left: 190px; right: 0; pointer-events: none; }
.grid i { position: absolute; top: 0; bottom: 0; border-left: 1px dashed #c9d1d9; }
.bar { position: absolute; height: ${BAR_PX}px; min-width: 2px; border-radius: 2px; cursor: default; }
.bar:hover { outline: 2px solid #1f2328; z-index: 2; }
${(Object.keys(STATUS_COLOURS) as BarStatus[]).map((s) => `.s-${s} { background: ${STATUS_COLOURS[s]}; }`).join('\n')}
.s-skipped { background: repeating-linear-gradient(45deg, #9aa3ae 0 2px, #e3e7ec 2px 4px); min-width: 6px; box-shadow: inset 0 0 0 1px #9aa3ae; }
${(Object.keys(STATUS_COLOURS) as BarStatus[]).map((s) => `.hide-${s} .s-${s} { visibility: hidden; }`).join('\n')}
.retry { box-shadow: inset 3px 0 0 rgba(0,0,0,.35); }
.tip { position: fixed; z-index: 10; max-width: 460px; padding: 6px 9px; border-radius: 6px; background: #1f2328; color: #fff; font-size: 12px; white-space: pre-wrap; pointer-events: none; box-shadow: 0 4px 14px rgba(0,0,0,.25); }
.empty { color: var(--muted); font-style: italic; padding: 8px 0; }
main.report { padding: 8px 28px 40px; max-width: 1180px; }
main.report h1 { font-size: 20px; } main.report h2 { font-size: 17px; margin-top: 26px; border-bottom: 1px solid var(--line); padding-bottom: 4px; } main.report h3 { font-size: 15px; }
main.report pre { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; overflow: auto; max-height: 480px; font-size: 12.5px; line-height: 1.45; white-space: pre-wrap; word-break: break-word; }
main.report code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12.5px; }
main.report :not(pre) > code { background: var(--soft); padding: 0 4px; border-radius: 4px; }
.table { overflow-x: auto; }
main.report table { border-collapse: collapse; font-size: 13px; }
main.report th, main.report td { border: 1px solid var(--line); padding: 4px 9px; text-align: left; }
main.report th { background: var(--soft); }
main.report .right { text-align: right; } main.report .center { text-align: center; }
`;

/** One attempt placed on the timeline. */
interface Placed {
  record: AgentRecord;
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

/**
 * Assigns lanes within a phase so overlapping attempts never share one (greedy interval packing).
 * `minSpan` is the shortest width a bar is drawn with, so zero-length bars do not collide either.
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

/** A bar's status: a gate check that ran and did not pass is a failed check, not a green task. */
function barStatus(r: AgentRecord): BarStatus {
  return isFailedCheck(r) ? 'check_failed' : r.status;
}

/** The hover text of one bar. */
function barTitle(p: Placed, t0: number): string {
  const r = p.record;
  const status = barStatus(r);
  const lines = [`${refOf(r)} · attempt ${r.attempt} · ${status === 'check_failed' ? 'check failed (the gate check ran and did not pass)' : status.replace('_', ' ')}`];
  lines.push(
    p.known
      ? `${formatDuration(r.durationMs)} (from +${formatDuration(p.start - t0)} to +${formatDuration(p.end - t0)})`
      : `${formatDuration(r.durationMs)} (start time unknown)`,
  );
  const exit = r.signal ? `signal ${cleanLine(r.signal)}` : r.exitCode !== null ? `exit code ${r.exitCode}` : '';
  if (exit) lines.push(exit);
  if (status !== 'succeeded') {
    const cause = failureCause(r, 300);
    if (cause) lines.push(`cause: ${cause}`);
  }
  lines.push(`agent ${clip(cleanLine(r.agent), 60)} (${cleanLine(r.runner)})`);
  return lines.join('\n');
}

/** The timeline section: legend, time axis, one row per phase with one bar per attempt. */
function timeline(run: RunRecord, records: readonly AgentRecord[]): string {
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
  if (!Number.isFinite(t0)) t0 = 0;
  if (!Number.isFinite(t1) || t1 <= t0) t1 = t0 + 1;
  const span = t1 - t0;

  // Phases in plan order, then any phase only the records know.
  const order = run.plan.phases.map((p) => p.id);
  const byPhase = new Map<string, Placed[]>(order.map((id) => [id, []]));
  for (const record of records) {
    const s = parseTime(record.startedAt);
    let e = parseTime(record.endedAt);
    const known = Number.isFinite(s);
    if (!Number.isFinite(e) || e < s) e = known ? s + Math.max(0, record.durationMs || 0) : t0;
    const list = byPhase.get(record.phaseId) ?? [];
    list.push({ record, start: known ? s : t0, end: known ? e : t0, lane: 0, known });
    byPhase.set(record.phaseId, list);
  }

  const counts = new Map<BarStatus, number>();
  for (const r of records) counts.set(barStatus(r), (counts.get(barStatus(r)) ?? 0) + 1);
  const labels: [BarStatus, string][] = [STATUS_LABELS[0]!, ['check_failed', 'check failed'], ...STATUS_LABELS.slice(1)];
  const legend = labels.map(
    ([s, label]) =>
      `<span data-toggle="${s}" title="show or hide ${label}"><i class="sw s-${s}"></i>${label} (${counts.get(s) ?? 0})</span>`,
  ).join('');

  const step = STEPS.find((s) => span / s <= 8) ?? Math.ceil(span / 8);
  const ticks: string[] = [];
  const grid: string[] = [];
  for (let t = 0; t <= span; t += step) {
    ticks.push(`<span class="tick" style="left:${pct((t / span) * 100)}">${escapeHtml(tickLabel(t))}</span>`);
    if (t > 0) grid.push(`<i style="left:${pct((t / span) * 100)}"></i>`);
  }

  const rows: string[] = [];
  for (const [phaseId, items] of byPhase) {
    const lanes = packLanes(items, span * 0.005);
    const planPhase = run.plan.phases.find((p) => p.id === phaseId);
    const title = planPhase?.title ?? '';
    // A dynamic phase's row says what it did on hover (items, verdicts, gate, rounds, merge);
    // the report below has the details.
    const dyn = dynamicSummary(run.phases.find((p) => p.id === phaseId)?.dynamic, planPhase);
    const bars = items.map((p) => {
      const left = ((p.start - t0) / span) * 100;
      const width = ((p.end - p.start) / span) * 100;
      const r = p.record;
      return (
        `<div class="bar s-${escapeHtml(barStatus(r))}${r.attempt > 1 ? ' retry' : ''}" data-ref="${escapeHtml(refOf(r))}" data-status="${escapeHtml(barStatus(r))}" data-attempt="${r.attempt}"` +
        ` style="left:${pct(left)};width:${pct(width)};top:${p.lane * LANE_PX + 4}px" title="${escapeHtml(barTitle(p, t0))}"></div>`
      );
    });
    const label = `<b>${escapeHtml(clip(cleanLine(phaseId), 40))}</b><small>${escapeHtml(clip(cleanLine(title), 40))}${title ? ' · ' : ''}${items.length} attempt${items.length === 1 ? '' : 's'}</small>`;
    rows.push(
      `<div class="row"><div class="plabel" title="${escapeHtml(`${phaseId} — ${title}${dyn ? `\n${dyn}` : ''}`)}">${label}</div><div class="track" style="height:${lanes * LANE_PX + 8}px">${bars.join('')}</div></div>`,
    );
  }

  const body =
    records.length === 0
      ? '<div class="empty">No agent has run yet.</div>'
      : `<div class="rows"><div class="grid">${grid.join('')}</div><div class="row axis"><div class="plabel"><small>time from run start</small></div><div class="track">${ticks.join('')}</div></div>${rows.join('')}</div>`;
  return `<section class="timeline" id="timeline"><div class="legend" id="legend">${legend}</div>${body}<div class="tip" id="tip" hidden></div></section>`;
}

/**
 * Renders the timeline report: one self-contained HTML page (inline CSS and JS only) with a
 * timeline of every attempt — rows grouped by phase, x = time from run start, colour = status (with
 * a legend), hover details (ref, attempt, status, duration, exit code, cause) — each bar an element
 * with `class="bar"`, `data-ref` and `data-status`; below it, `markdown` rendered as simple HTML.
 * All untrusted text is escaped; a Content-Security-Policy allows only the page's own script.
 */
export function renderReportHtml(input: ReportHtmlInput): string {
  const { run, records } = input;
  const hash = createHash('sha256').update(SCRIPT, 'utf8').digest('base64');
  const csp = `default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-${hash}'; img-src data:; base-uri 'none'; form-action 'none'`;
  const name = cleanLine(run.name || run.runId);
  const colour = RUN_COLOURS[run.status] ?? '#656d76';
  const reason = run.reason && run.status !== 'completed' ? ` <span class="reason">— ${escapeHtml(clip(cleanLine(run.reason), 300))}</span>` : '';
  const meta = [
    `run ${escapeHtml(cleanLine(run.runId))}`,
    `started ${escapeHtml(cleanLine(run.startedAt))}`,
    `wall time ${escapeHtml(formatDuration(run.elapsedMs))}`,
    `${records.length} agent attempt${records.length === 1 ? '' : 's'}`,
  ].join(' · ');
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="${escapeHtml(csp)}">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(clip(name, 120))} — fanfold report</title>`,
    `<style>${STYLE}</style>`,
    '</head>',
    '<body>',
    `<header class="top"><h1>${escapeHtml(clip(name, 120))}</h1><div class="meta"><span class="badge" style="background:${colour}">${escapeHtml(run.status)}</span>${reason}</div><div class="meta">${meta}</div></header>`,
    timeline(run, records),
    `<main class="report">${renderMarkdownHtml(input.markdown)}</main>`,
    `<script>${SCRIPT}</script>`,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
