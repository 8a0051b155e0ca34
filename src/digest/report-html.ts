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
import type { AgentRecord, RunRecord } from '../store/types.js';
import { escapeHtml, renderMarkdownHtml } from './markdown-html.js';
import { renderTimeline, TIMELINE_CSS, TIMELINE_SCRIPT, type Pause } from './timeline.js';
import { cleanLine, clip, formatDuration } from './text.js';
export { STATUS_COLOURS, type BarStatus } from './timeline.js';

/** Input of {@link renderReportHtml}. */
export interface ReportHtmlInput {
  run: RunRecord;
  /** Every agent attempt (retries included): one bar each. */
  records: AgentRecord[];
  /** The Markdown report (from `renderReportMarkdown`), shown below the timeline. */
  markdown: string;
  /** Stop-and-resume gaps, from the journal (see `pausesOf`): shaded and explained on the axis. */
  pauses?: Pause[];
}

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

const STYLE = `
:root { --fg: #1f2328; --muted: #656d76; --line: #d8dee4; --bg: #ffffff; --soft: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--fg); background: var(--bg); }
header.top { padding: 18px 28px 10px; border-bottom: 1px solid var(--line); }
header.top h1 { margin: 0 0 4px; font-size: 22px; }
.meta { color: var(--muted); font-size: 13px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-weight: 600; font-size: 12px; margin-right: 8px; }
.reason { color: var(--fg); }
main.report { padding: 8px 28px 40px; max-width: 1180px; }
main.report h1 { font-size: 20px; } main.report h2 { font-size: 17px; margin-top: 26px; border-bottom: 1px solid var(--line); padding-bottom: 4px; } main.report h3 { font-size: 15px; }
main.report pre { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; overflow: auto; max-height: 480px; font-size: 12.5px; line-height: 1.45; white-space: pre-wrap; word-break: break-word; }
main.report code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12.5px; }
main.report :not(pre) > code { background: var(--soft); padding: 0 4px; border-radius: 4px; }
.table { overflow-x: auto; }
main.report table { border-collapse: collapse; font-size: 13px; max-width: 100%; }
main.report th, main.report td { border: 1px solid var(--line); padding: 4px 9px; text-align: left; overflow-wrap: break-word; }
main.report th { white-space: nowrap; }
main.report td code { overflow-wrap: anywhere; }
main.report th { background: var(--soft); }
main.report .right { text-align: right; } main.report .center { text-align: center; }
`;

/** Narrow windows: less padding, so the timeline and the tables keep their room. */
const NARROW = `
@media (max-width: 900px) { header.top, main.report, section.timeline { padding-left: 14px; padding-right: 14px; } }
`;

/**
 * Renders the timeline report: one self-contained HTML page (inline CSS and JS only) with a
 * timeline of every attempt — rows grouped by phase, x = time from run start, colour = status (with
 * a legend), hover details (ref, attempt, status, duration, exit code, cause) — each bar an element
 * with `class="bar"`, `data-ref` and `data-status`; below it, `markdown` rendered as simple HTML.
 * All untrusted text is escaped; a Content-Security-Policy allows only the page's own script.
 */
export function renderReportHtml(input: ReportHtmlInput): string {
  const { run, records } = input;
  const hash = createHash('sha256').update(TIMELINE_SCRIPT, 'utf8').digest('base64');
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
    `<style>${STYLE}${TIMELINE_CSS}${NARROW}</style>`,
    '</head>',
    '<body>',
    `<header class="top"><h1>${escapeHtml(clip(name, 120))}</h1><div class="meta"><span class="badge" style="background:${colour}">${escapeHtml(run.status)}</span>${reason}</div><div class="meta">${meta}</div></header>`,
    renderTimeline({ run, records, ...(input.pauses ? { pauses: input.pauses } : {}) }),
    `<main class="report">${renderMarkdownHtml(input.markdown)}</main>`,
    `<script>${TIMELINE_SCRIPT}</script>`,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
