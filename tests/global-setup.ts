/**
 * Temp folders of the test run: every test's `os.tmpdir()` is one fresh folder for this run
 * (TMPDIR, inherited by the vitest workers and every child they start with the parent's env),
 * removed when the run ends — also when tests failed or forgot their own cleanup.
 *
 * Then a check: folders with fanfold's test prefixes that appeared in the real temp folder during
 * the run (a child started with a scrubbed env that wrote there, say) are listed, and with
 * FANFOLD_TMP_CHECK=1 (CI) they fail the run. Why not always: on a shared machine other test
 * runs create such folders at the same time.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const PREFIXES = /^fanfold-/;

function listed(dir: string): Set<string> {
  try {
    return new Set(fs.readdirSync(dir).filter((n) => PREFIXES.test(n)));
  } catch {
    return new Set();
  }
}

export default function setup(): () => void {
  const realTmp = os.tmpdir();
  const before = listed(realTmp);
  const runTmp = fs.mkdtempSync(path.join(realTmp, 'fanfold-vitest-'));
  process.env.TMPDIR = runTmp;
  return () => {
    process.env.TMPDIR = realTmp;
    fs.rmSync(runTmp, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
    const leaked = [...listed(realTmp)].filter((n) => !before.has(n));
    if (leaked.length === 0) return;
    const message = `tests left ${leaked.length} folder(s) in ${realTmp}: ${leaked.slice(0, 20).join(', ')}${leaked.length > 20 ? ', …' : ''}`;
    if (process.env.FANFOLD_TMP_CHECK === '1') throw new Error(message);
    process.stderr.write(`warning: ${message}\n`);
  };
}
