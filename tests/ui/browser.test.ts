/// <reference lib="dom" />
/**
 * The dashboard in a real browser: Debian's Chromium driven by playwright-core (executablePath, no
 * browser download), against live runs of 50 scripted `command` agents served by a real
 * `fanfold ui` process. It checks what a person sees: every task with its final status, bars while
 * the run goes, an agent's output on click, keyboard navigation, a search hit that opens its agent,
 * the stop button stopping a run (status `stopped` on disk), 401 without the token, no sideways
 * scroll at 800 px, and a screenshot that is not blank.
 * Skipped (loudly) when /usr/bin/chromium is absent; .ci/run installs it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeProject, sh, type Project } from '../cli/project.js';
import { tempDir } from '../helpers/cli.js';
import { decodePng } from '../digest/png.js';
import { startUi, type UiProcess } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const present = fs.existsSync(CHROMIUM);
if (!present) console.warn(`\n!!! dashboard browser test SKIPPED: ${CHROMIUM} is missing (apt-get install -y chromium) !!!\n`);

/** Generous: two cores shared by several test files. */
const LONG = 150_000;

let p: Project;
let uiDir: string;
let ui: UiProcess;
let browser: Browser;
const runs: string[] = [];

/** A spec of 50 tasks in one phase; each prints its own tokens, then runs `tail`. */
function spec50(name: string, tail: string, maxConcurrent: number) {
  return {
    version: 1,
    name,
    agents: { w: sh(`echo "out-$FANFOLD_TASK_ID tok$FANFOLD_TASK_ID"; ${tail}`) },
    limits: { maxConcurrent },
    phases: [{ id: 'p', agent: 'w', tasks: Array.from({ length: 50 }, (_, i) => ({ id: `t${String(i + 1).padStart(2, '0')}`, prompt: `task ${i + 1}` })) }],
  };
}

function startRun(spec: Record<string, unknown>, file: string): string {
  const r = p.cli(['run', p.writeSpec(spec, file), '--detach', '--json'], { timeoutMs: 90_000 });
  expect(r.status, r.stderr).toBe(0);
  const runId = JSON.parse(r.stdout).runId as string;
  runs.push(runId);
  return runId;
}

async function openRun(page: Page, runId: string): Promise<void> {
  await page.goto(`${ui.first.url}#/run/${runId}`);
  await page.waitForSelector(`[data-run-id="${runId}"]`, { timeout: LONG });
}

beforeAll(async () => {
  if (!present) return;
  p = makeProject({ version: 1, name: 'unused', agents: {}, phases: [] });
  uiDir = tempDir('fanfold-uidir-');
  ui = await startUi(p.dir, p.store, { FANFOLD_UI_DIR: uiDir });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'], timeout: LONG });
});

afterAll(async () => {
  if (!present) return;
  await browser?.close().catch(() => {});
  for (const id of runs) p.cli(['stop', id, '--wait', '20'], { timeoutMs: 60_000 });
  await ui?.stop();
  fs.rmSync(p.dir, { recursive: true, force: true });
  fs.rmSync(uiDir, { recursive: true, force: true });
});

describe.skipIf(!present)('fanfold ui in Chromium', () => {
  it('follows a live run of 50 agents to the end: bars while it runs, every task with its final status, output on click, keyboard, search', { timeout: 480_000 }, async () => {
    const runId = startRun(spec50('fifty', 'sleep 1', 8), 'fifty.json');
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await openRun(page, runId);

    // Bars appear while the run is going (read in one go, so the two facts hold at one moment).
    await page.waitForFunction(() => {
      const root = document.querySelector('[data-run-id]');
      return root?.getAttribute('data-run-status') === 'running' && document.querySelectorAll('#tl .bar').length > 0;
    }, undefined, { timeout: LONG });
    const runningBars = await page.locator('#tl .bar').count();
    expect(runningBars).toBeGreaterThan(0);

    // The run ends; every one of the 50 tasks shows its final status.
    await page.waitForFunction(() => document.querySelector('[data-run-id]')?.getAttribute('data-run-status') === 'completed', undefined, { timeout: LONG });
    await page.waitForFunction(() => document.querySelectorAll('[data-ref][data-status="succeeded"]').length === 50, undefined, { timeout: LONG });
    expect(await page.locator('[data-ref]').count()).toBe(50);
    expect(await page.locator('#tl .bar').count()).toBe(50);
    expect(await page.locator('#counts').textContent()).toContain('50 succeeded of 50');
    expect(JSON.parse(fs.readFileSync(path.join(p.runDir(runId), 'run.json'), 'utf8')).status).toBe('completed');

    // Clicking an agent shows its output.
    await page.click('[data-ref="p/t07"]');
    await page.waitForFunction(() => document.querySelector('#output')?.textContent?.includes('out-t07'), undefined, { timeout: LONG });
    expect(page.url()).toMatch(/#\/run\/[^/]+\/p\/t07$/);

    // Keyboard: arrow down moves the focus to the next task, Enter opens it, and focus is visible.
    await page.focus('[data-ref="p/t07"]');
    await page.keyboard.press('ArrowDown');
    expect(await page.evaluate(() => document.activeElement?.getAttribute('data-ref'))).toBe('p/t08');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
    expect(outline).not.toBe('none');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelector('#output')?.textContent?.includes('out-t08'), undefined, { timeout: LONG });

    // No sideways scrolling at 800 px.
    await page.setViewportSize({ width: 800, height: 900 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(800);

    // A screenshot of the page is not blank: many pixels, many colours.
    const shot = decodePng(await page.screenshot({ fullPage: false }));
    const colours = new Set<number>();
    let dark = 0;
    for (let i = 0; i < shot.data.length; i += 4) {
      const [r, g, b] = [shot.data[i]!, shot.data[i + 1]!, shot.data[i + 2]!];
      colours.add((r << 16) | (g << 8) | b);
      if (r + g + b < 200) dark++;
    }
    expect(colours.size).toBeGreaterThan(50);
    expect(dark).toBeGreaterThan(1000);

    // Search finds a token only one output holds, and the hit opens its agent.
    await page.fill('#q', 'tokt23');
    await page.press('#q', 'Enter');
    await page.waitForSelector('[data-hit] a', { timeout: LONG });
    const hits = await page.locator('[data-hit]').allTextContents();
    expect(hits).toHaveLength(1);
    expect(hits[0]).toContain(`${runId}/p/t23`);
    expect(await page.locator('[data-hit] mark').first().textContent()).toBe('tokt23');
    await page.click('[data-hit] a');
    await page.waitForFunction(() => document.querySelector('#output')?.textContent?.includes('out-t23'), undefined, { timeout: LONG });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('stops a running run with the stop button (status stopped on disk)', { timeout: 300_000 }, async () => {
    const runId = startRun(spec50('stoppable', 'exec sleep 120', 4), 'stoppable.json');
    const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
    await openRun(page, runId);
    await page.waitForFunction(() => document.querySelectorAll('[data-ref][data-status="running"]').length > 0, undefined, { timeout: LONG });
    expect(await page.locator('[data-ref]').count()).toBe(50);
    await page.click('button[data-action="stop"]');
    await page.waitForFunction(() => document.querySelector('[data-run-id]')?.getAttribute('data-run-status') === 'stopped', undefined, { timeout: LONG });
    expect(JSON.parse(fs.readFileSync(path.join(p.runDir(runId), 'run.json'), 'utf8')).status).toBe('stopped');
    // The agents that were running are recorded cancelled; none is shown running any more.
    await page.waitForFunction(() => document.querySelectorAll('[data-ref][data-status="running"]').length === 0 && document.querySelectorAll('[data-ref][data-status="cancelled"]').length > 0, undefined, { timeout: LONG });
    await page.close();
  });

  it('refuses a browser without the token (401), and lists the runs with it', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const bare = await page.goto(`${ui.base}/`);
    expect(bare?.status()).toBe(401);
    const api = await page.goto(`${ui.base}/api/runs`);
    expect(api?.status()).toBe(401);
    const ok = await page.goto(ui.first.url);
    expect(ok?.status()).toBe(200);
    await page.waitForSelector('[data-run-row]', { timeout: LONG });
    expect(await page.locator('[data-run-row]').count()).toBe(runs.length);
    // The token left the address bar; the cookie carries on.
    expect(page.url()).not.toContain('token=');
    const again = await page.goto(`${ui.base}/api/runs`);
    expect(again?.status()).toBe(200);
    await context.close();
  });
});
