#!/usr/bin/env node
// Regenerates docs/report.png, the README's picture of report.html: runs the offline dynamic demo
// into a temporary store with the built CLI, then has headless Chromium (Debian's `chromium`)
// screenshot its report.html at 1400×900. Usage: npm run build && node scripts/screenshot.mjs
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const chromium = process.env.CHROMIUM ?? '/usr/bin/chromium';
if (!fs.existsSync(chromium)) {
  console.error(`screenshot: ${chromium} is missing (apt-get install -y chromium, or set CHROMIUM)`);
  process.exit(2);
}
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fanfold-screenshot-'));
try {
  const store = path.join(work, 'store');
  const run = spawnSync(process.execPath, [path.join(root, 'dist/cli/main.js'), 'run', 'examples/dynamic-demo.yaml', '--store', store, '--json'], { cwd: root, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`the demo run failed (exit ${run.status}): ${run.stderr.slice(-2000)}`);
  const { runId } = JSON.parse(run.stdout);
  const html = path.join(store, runId, 'report.html');
  const out = path.join(root, 'docs', 'report.png');
  const shot = spawnSync(chromium, ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    `--user-data-dir=${path.join(work, 'profile')}`, `--screenshot=${out}`, '--window-size=1400,900', '--hide-scrollbars', pathToFileURL(html).href], { encoding: 'utf8' });
  if (shot.status !== 0) throw new Error(`chromium failed (exit ${shot.status}): ${shot.stderr.slice(-2000)}`);
  console.log(`wrote ${path.relative(root, out)} (${fs.statSync(out).size} bytes) from run ${runId}`);
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
