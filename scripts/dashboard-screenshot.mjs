#!/usr/bin/env node
// Regenerates docs/dashboard.png, the README's picture of `fanfold ui`: starts a run of scripted
// `command` agents (three phases, one agent that fails) in a temporary store with the built CLI,
// serves it with `fanfold ui`, and has Debian's Chromium (driven by playwright-core) screenshot
// the live run page at 1400×900 while agents are still running, with one agent opened.
// Usage: npm run build && node scripts/dashboard-screenshot.mjs
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'dist/cli/main.js');
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
if (!fs.existsSync(executablePath)) {
  console.error(`dashboard-screenshot: ${executablePath} is missing (apt-get install -y chromium, or set CHROMIUM)`);
  process.exit(2);
}
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fanfold-dashshot-'));
const store = path.join(work, 'store');
// Outside the project folder, as fanfold ui insists (the URL file holds the token).
const uiDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanfold-dashshot-ui-'));
const say = (words) => ({ runner: 'command', sandbox: 'off', command: ['sh', '-c', words] });
const spec = {
  version: 1,
  name: 'audit the payment service',
  agents: {
    scan: say('n=${FANFOLD_TASK_ID#m}; n=${n#0}; sleep $((2 + n % 5)); echo "module $FANFOLD_TASK_ID: 2 findings (unchecked input, missing timeout)"'),
    flaky: say('sleep 1; echo "cannot parse vendor/legacy.c" >&2; exit 3'),
    review: say('sleep 3; echo "confirmed: $FANFOLD_TASK_ID"'),
  },
  limits: { maxConcurrent: 5, retries: 0 },
  phases: [
    { id: 'scan', title: 'Scan every module', agent: 'scan', tasks: Array.from({ length: 24 }, (_, i) => ({ id: `m${String(i + 1).padStart(2, '0')}`, prompt: `Scan module ${i + 1}` })) },
    { id: 'legacy', title: 'Scan the vendored C code', agent: 'flaky', tasks: [{ id: 'vendor', prompt: 'Scan vendor/' }] },
    { id: 'review', title: 'Review the findings', agent: 'review', dependsOn: ['scan'], tasks: Array.from({ length: 6 }, (_, i) => ({ id: `r${i + 1}`, prompt: `Review batch ${i + 1}` })) },
  ],
};
let ui;
try {
  fs.writeFileSync(path.join(work, 'spec.json'), JSON.stringify(spec));
  const run = spawnSync(process.execPath, [cli, 'run', 'spec.json', '--detach', '--json', '--store', store], { cwd: work, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`the run did not start (exit ${run.status}): ${run.stderr.slice(-2000)}`);
  const { runId } = JSON.parse(run.stdout);
  ui = spawn(process.execPath, [cli, 'ui', '--json', '--store', store], { cwd: work, env: { ...process.env, FANFOLD_UI_DIR: uiDir }, stdio: ['ignore', 'pipe', 'inherit'] });
  const first = await new Promise((resolve, reject) => {
    let out = '';
    ui.stdout.on('data', (d) => { out += d; if (out.includes('\n')) resolve(JSON.parse(out.slice(0, out.indexOf('\n')))); });
    ui.once('exit', (c) => reject(new Error(`fanfold ui exited (${c})`)));
  });
  const browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`${first.url}#/run/${runId}`);
    // Mid-run: the failure is in, some scans are done, others still running.
    await page.waitForFunction(() => document.querySelector('[data-ref="legacy/vendor"]')?.getAttribute('data-status') === 'failed' && document.querySelectorAll('[data-status="succeeded"]').length >= 5, undefined, { timeout: 120_000 });
    await page.click('[data-ref="legacy/vendor"]');
    await page.waitForSelector('#agent .cause', { timeout: 60_000 }).catch(async (e) => {
      console.error(await page.locator('#agent').innerText());
      throw e;
    });
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.waitForTimeout(1500);
    const out = path.join(root, 'docs', 'dashboard.png');
    await page.screenshot({ path: out });
    console.log(`wrote ${path.relative(root, out)} (${fs.statSync(out).size} bytes) from run ${runId}`);
  } finally {
    await browser.close();
  }
  spawnSync(process.execPath, [cli, 'stop', runId, '--store', store], { cwd: work });
} finally {
  ui?.kill('SIGINT');
  await new Promise((r) => setTimeout(r, 500));
  fs.rmSync(work, { recursive: true, force: true });
  fs.rmSync(uiDir, { recursive: true, force: true });
}
