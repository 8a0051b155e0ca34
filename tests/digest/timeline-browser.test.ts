/**
 * The timeline component (issue 13 item 10) in real headless Chromium at 1400 and 800 px: phase
 * labels end in an ellipsis instead of being cut mid-word; bars carry their task id and tell task,
 * skeptic, gate check and fix apart; a failed check is its own colour; the stop-and-resume gap is
 * shaded and explained; a 20 ms failure is still a visible mark; the phases table never scrolls
 * sideways and the page never scrolls sideways at 800 px. Measured in the rendered page (a copy
 * with a measuring script), and screenshots are taken that must not be blank.
 * Skipped (loudly) when /usr/bin/chromium is absent; CI installs it.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { pausesOf, renderReportHtml, renderReportMarkdown } from '../../src/digest/index.js';
import type { RunEvent } from '../../src/store/types.js';
import { at, makePhase, makePlan, makeRecord, makeRun } from './fixtures.js';
import { decodePng } from './png.js';

const CHROMIUM = '/usr/bin/chromium';
const exec = promisify(execFile);
const present = existsSync(CHROMIUM);
if (!present) console.warn(`\n!!! timeline browser test SKIPPED: ${CHROMIUM} is missing (apt-get install -y chromium) !!!\n`);

const work = mkdtempSync(join(tmpdir(), 'fanfold-timeline-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function chromium(args: string[]): Promise<string> {
  const { stdout } = await exec(
    CHROMIUM,
    ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--hide-scrollbars', `--user-data-dir=${mkdtempSync(join(work, 'profile-'))}`, ...args],
    { timeout: 90_000, maxBuffer: 64 * 1024 * 1024 },
  );
  return stdout;
}

/** A run with a long phase name, a 20 ms failure, skeptics, a gate with a failed check and a fix, stopped and resumed. */
function showcase() {
  const survey = makePhase('survey-every-module-of-the-repository-in-depth', 3, { title: 'Survey every module of the repository and note the riskiest code paths' });
  const lint = makePhase('lint', 1, { title: 'Lint' });
  const review = makePhase('review', 0);
  review.taskRefs = ['review/r1', 'review/r1~s1', 'review/r1~s2'];
  const fixup = makePhase('fixup', 0);
  fixup.taskRefs = ['fixup/fixup', 'fixup/check-1', 'fixup/fix-1', 'fixup/check-2'];
  const plan = makePlan([survey, lint, review, fixup]);
  const kinds: Record<string, 'skeptic' | 'check' | 'fix'> = { 'review/r1~s1': 'skeptic', 'review/r1~s2': 'skeptic', 'fixup/check-1': 'check', 'fixup/fix-1': 'fix', 'fixup/check-2': 'check' };
  for (const t of plan.tasks) if (kinds[t.ref]) t.origin = { kind: kinds[t.ref]!, iteration: 1 };
  const rec = (phaseId: string, taskId: string, from: number, ms: number, extra: Record<string, unknown> = {}) =>
    makeRecord({ phaseId, taskId, startedAt: at(from), endedAt: at(from + ms), durationMs: ms, ...extra });
  const records = [
    rec(survey.id, 't0001', 0, 2500),
    rec(survey.id, 't0002', 0, 1200),
    rec(survey.id, 't0003', 0, 3000, { status: 'cancelled', exitCode: null, signal: 'SIGTERM' }),
    rec(survey.id, 't0003', 13_000, 1500, { attempt: 2 }),
    rec('lint', 't0001', 1000, 20, { status: 'failed', exitCode: 1, error: { type: 'exit_code', message: 'exited with code 1', retryable: false } }),
    rec('review', 'r1', 15_000, 2000),
    rec('review', 'r1~s1', 17_000, 1500),
    rec('review', 'r1~s2', 17_000, 1700),
    rec('fixup', 'fixup', 19_000, 1000),
    rec('fixup', 'check-1', 20_000, 400, { exitCode: 1, check: { passed: false } }),
    rec('fixup', 'fix-1', 20_500, 1500),
    rec('fixup', 'check-2', 22_100, 400, { check: { passed: true } }),
  ];
  const run = makeRun(plan, 'failed', { reason: '1 task(s) failed', elapsedMs: 13_000, endedAt: at(22_600) });
  run.phases = [
    { id: survey.id, status: 'completed', counts: { total: 3, succeeded: 3, failed: 0, skipped: 0, running: 0, pending: 0 } },
    { id: 'lint', status: 'failed', counts: { total: 1, succeeded: 0, failed: 1, skipped: 0, running: 0, pending: 0 } },
    { id: 'review', status: 'completed', counts: { total: 3, succeeded: 3, failed: 0, skipped: 0, running: 0, pending: 0 } },
    { id: 'fixup', status: 'completed', counts: { total: 4, succeeded: 3, checkFailed: 1, failed: 0, skipped: 0, running: 0, pending: 0 } },
  ];
  const events = [
    { type: 'run.started', t: at(0) },
    { type: 'run.finished', t: at(3000), status: 'stopped', elapsedMs: 3000 },
    { type: 'run.resumed', t: at(13_000) },
    { type: 'run.finished', t: at(22_600), status: 'failed', elapsedMs: 13_000 },
  ] as unknown as RunEvent[];
  const markdown = renderReportMarkdown({ run, latest: records.filter((r) => !(r.taskId === 't0003' && r.attempt === 1)), digests: {}, attempts: records });
  return { html: renderReportHtml({ run, records, markdown, pauses: pausesOf(events) }), records };
}

/** Measures the rendered page; runs in the page (a copy without the CSP, which forbids other scripts). */
const MEASURE = `<script>
(function () {
  var q = function (s) { return Array.prototype.slice.call(document.querySelectorAll(s)); };
  var m = {
    vw: window.innerWidth,
    page: document.documentElement.scrollWidth,
    tables: q('main.report .table').map(function (t) { return { sw: t.scrollWidth, cw: t.clientWidth }; }),
    labels: q('.plabel b, .plabel small').map(function (e) { var s = getComputedStyle(e); return { text: e.textContent, cut: e.scrollWidth > e.clientWidth, ellipsis: s.textOverflow, overflow: s.overflowX }; }),
    bars: q('.bar').map(function (b) { var r = b.getBoundingClientRect(); return { ref: b.getAttribute('data-ref'), kind: b.getAttribute('data-kind'), status: b.getAttribute('data-status'), w: r.width, h: r.height, label: b.textContent, bg: getComputedStyle(b).backgroundColor }; }),
    pauses: q('.grid .pause').map(function (p) { return { w: p.getBoundingClientRect().width, title: p.getAttribute('title') }; }),
    pauseLabels: q('.pause-label').map(function (p) { return p.textContent; })
  };
  document.body.setAttribute('data-metrics', JSON.stringify(m));
})();
</script>`;

async function measure(html: string, width: number): Promise<any> {
  const file = join(work, `measure-${width}.html`);
  writeFileSync(file, html.replace(/<meta http-equiv="Content-Security-Policy"[^>]*>/, '').replace('</body>', `${MEASURE}</body>`));
  const dom = await chromium(['--dump-dom', `--window-size=${width},1000`, '--virtual-time-budget=3000', pathToFileURL(file).href]);
  const m = /data-metrics="([^"]*)"/.exec(dom);
  expect(m, dom.slice(0, 500)).not.toBeNull();
  return JSON.parse(m![1]!.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&'));
}

describe.skipIf(!present)('the timeline in headless Chromium (issue 13 item 10)', () => {
  const { html, records } = showcase();

  for (const width of [1400, 800]) {
    it(`at ${width} px: labels ellipsized, bars labelled by kind, pause explained, no sideways scroll`, async () => {
      const m = await measure(html, width);
      expect(m.vw).toBe(width);
      // Nothing scrolls sideways: not the page, not the phases table.
      expect(m.page).toBeLessThanOrEqual(width);
      expect(m.tables.length).toBeGreaterThan(0);
      for (const t of m.tables) expect(t.sw, JSON.stringify(t)).toBeLessThanOrEqual(t.cw);
      // Every label that does not fit ends in an ellipsis (the long phase name does not fit).
      const survey = m.labels.find((l: any) => l.text.startsWith('survey-every-module'));
      expect(survey.cut).toBe(true);
      for (const l of m.labels) expect(l, l.text).toMatchObject({ ellipsis: 'ellipsis', overflow: 'hidden' });
      // One bar per attempt, each at least 6 px wide (the 20 ms failure too), labelled by its task id.
      expect(m.bars).toHaveLength(records.length);
      for (const b of m.bars) expect(b.w, b.ref).toBeGreaterThanOrEqual(6);
      const bar = (ref: string) => m.bars.find((b: any) => b.ref === ref);
      expect(bar('lint/t0001')).toMatchObject({ status: 'failed', kind: 'task' });
      expect(bar('fixup/fixup')).toMatchObject({ kind: 'task', label: 'fixup' });
      expect(bar('fixup/check-1')).toMatchObject({ kind: 'check', status: 'check_failed', label: 'check-1' });
      expect(bar('fixup/check-2')).toMatchObject({ kind: 'check', status: 'succeeded' });
      expect(bar('fixup/fix-1')).toMatchObject({ kind: 'fix', label: 'fix-1' });
      expect(bar('review/r1~s1')).toMatchObject({ kind: 'skeptic' });
      // A failed check looks like neither a success nor a crash.
      const colours = new Set([bar('fixup/check-1').bg, bar('fixup/check-2').bg, bar('lint/t0001').bg]);
      expect(colours.size).toBe(3);
      // Kinds differ in shape: skeptics are thinner than tasks.
      expect(bar('review/r1~s1').h).toBeLessThan(bar('review/r1').h);
      // The stop-and-resume gap is shaded and says what happened.
      expect(m.pauses).toHaveLength(1);
      expect(m.pauses[0].w).toBeGreaterThan(width / 10);
      expect(m.pauses[0].title).toBe('Not running: the run ended stopped at +3.0 s and was resumed at +13.0 s.');
      expect(m.pauseLabels).toEqual(['stopped, resumed 10.0 s later']);
    }, 120_000);

    it(`at ${width} px: a screenshot that is not blank`, async () => {
      const file = join(work, 'report.html');
      writeFileSync(file, html);
      const png = join(work, `timeline-${width}.png`);
      await chromium([`--screenshot=${png}`, `--window-size=${width},900`, pathToFileURL(file).href]);
      const image = decodePng(readFileSync(png));
      expect([image.width, image.height]).toEqual([width, 900]);
      let amber = 0;
      for (let i = 0; i < image.data.length; i += 4) {
        const [r, g, b] = [image.data[i]!, image.data[i + 1]!, image.data[i + 2]!];
        if (Math.abs(r - 0x9a) < 14 && Math.abs(g - 0x67) < 14 && b < 30) amber++;
      }
      // The failed check's colour is on screen (legend swatch and bar).
      expect(amber).toBeGreaterThan(100);
    }, 120_000);
  }
});
