/**
 * Opens a generated report.html in real headless Chromium: counts the `.bar` elements in the
 * rendered DOM, checks hostile outputs did not become live markup, and takes a screenshot that must
 * not be blank. Skipped (loudly) when /usr/bin/chromium is absent; CI installs it.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { phaseDigests, renderReportHtml, renderReportMarkdown } from '../../src/digest/index.js';
import { scenario } from './fixtures.js';
import { decodePng } from './png.js';

const CHROMIUM = '/usr/bin/chromium';
const run = promisify(execFile);
const present = existsSync(CHROMIUM);
if (!present) {
  console.warn(`\n!!! browser test SKIPPED: ${CHROMIUM} is missing (apt-get install -y chromium) !!!\n`);
}

const work = mkdtempSync(join(tmpdir(), 'fanfold-browser-'));
afterAll(() => {
  // The screenshot stays for a person to look at; the profiles go.
  for (const name of ['profile-dom', 'profile-shot']) rmSync(join(work, name), { recursive: true, force: true });
});

/** Runs headless Chromium with a fresh profile and the flags that keep it offline and quiet. */
async function chromium(profile: string, args: string[]): Promise<string> {
  const { stdout } = await run(
    CHROMIUM,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${join(work, profile)}`,
      ...args,
    ],
    { timeout: 90_000, maxBuffer: 64 * 1024 * 1024 },
  );
  return stdout;
}

describe.skipIf(!present)('report.html in headless Chromium', () => {
  const s = scenario(240, 'stopped', { hostile: true, reason: 'stop requested by pid 4242' });
  const digests = phaseDigests({ phases: s.run.plan.phases, goal: s.run.plan.goal, records: s.latest });
  const markdown = renderReportMarkdown({ run: s.run, latest: s.latest, digests, attempts: s.attempts });
  const file = join(work, 'report.html');
  writeFileSync(file, renderReportHtml({ run: s.run, records: s.attempts, markdown }));
  const url = pathToFileURL(file).href;

  it('renders one .bar per attempt and no hostile markup', async () => {
    const dom = await chromium('profile-dom', ['--dump-dom', url]);
    const rendered = [...dom.matchAll(/<div class="bar\b[^>]*>/g)];
    expect(rendered.length).toBe(s.attempts.length);
    expect(new Set(rendered.map((m) => /data-ref="([^"]+)"/.exec(m[0])![1])).size).toBe(s.latest.length);
    // The hostile outputs neither ran (title unchanged, no marker) nor became elements.
    expect(dom).not.toMatch(/<body[^>]*data-pwned/);
    expect(dom).not.toContain('<title>PWNED');
    expect(dom.match(/<script\b/g)?.length).toBe(1);
    expect(dom).not.toMatch(/<img\b/);
    expect(dom).toContain('&lt;script&gt;document.title=');
    // The page's own script did run: the CSP hash matches it.
    expect(dom).toMatch(/<section class="timeline" id="timeline" data-js="ready">/);
  });

  it('renders 1000+ bars', async () => {
    const big = scenario(1000, 'completed');
    const md = renderReportMarkdown({ run: big.run, latest: big.latest, digests: {}, attempts: big.attempts });
    const bigFile = join(work, 'report-1000.html');
    writeFileSync(bigFile, renderReportHtml({ run: big.run, records: big.attempts, markdown: md }));
    const dom = await chromium('profile-dom', ['--dump-dom', pathToFileURL(bigFile).href]);
    expect([...dom.matchAll(/<div class="bar\b/g)].length).toBe(big.attempts.length);
  });

  it('takes a screenshot that is not blank', async () => {
    const png = join(work, 'report.png');
    await chromium('profile-shot', [`--screenshot=${png}`, '--window-size=1400,900', '--hide-scrollbars', url]);
    const bytes = readFileSync(png);
    console.log(`\nreport screenshot: ${png} (${bytes.length} bytes); page: ${file}\n`);
    const image = decodePng(bytes);
    expect([image.width, image.height]).toEqual([1400, 900]);
    let nonWhite = 0;
    let green = 0;
    let red = 0;
    const colours = new Set<number>();
    for (let i = 0; i < image.data.length; i += 4) {
      const [r, g, b] = [image.data[i]!, image.data[i + 1]!, image.data[i + 2]!];
      if (r < 245 || g < 245 || b < 245) nonWhite++;
      if (Math.abs(r - 0x2f) < 12 && Math.abs(g - 0x9e) < 12 && Math.abs(b - 0x5b) < 12) green++;
      if (Math.abs(r - 0xd9) < 12 && Math.abs(g - 0x45) < 12 && Math.abs(b - 0x3b) < 12) red++;
      colours.add((r << 16) | (g << 8) | b);
    }
    const pixels = image.width * image.height;
    expect(bytes.length).toBeGreaterThan(20_000); // a blank 1400×900 page compresses to a few KB
    expect(nonWhite / pixels).toBeGreaterThan(0.1);
    expect(colours.size).toBeGreaterThan(50);
    // The timeline's bars are on screen: plenty of succeeded green and some failed red.
    expect(green).toBeGreaterThan(5000);
    expect(red).toBeGreaterThan(200);
  });
});
