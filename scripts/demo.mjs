#!/usr/bin/env node
// `npm run demo` / `npm run demo:dynamic`: runs a workflow with the built CLI. It builds first only
// when dist/ is missing or older than a source file (npm install has just built it), so the demo
// starts at once; then `fanfold run <spec>` prints the live view, the final output and where the
// files are. Usage: node scripts/demo.mjs examples/census.yaml
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const main = path.join(root, 'dist', 'cli', 'main.js');
const spec = process.argv[2];
if (!spec) {
  console.error('usage: node scripts/demo.mjs SPEC');
  process.exit(2);
}

/** The newest modification time of the files that make dist/ (src/ and tsconfig.json). */
function newestSource() {
  let newest = fs.statSync(path.join(root, 'tsconfig.json')).mtimeMs;
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && e.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(p).mtimeMs);
    }
  };
  walk(path.join(root, 'src'));
  return newest;
}

const built = fs.existsSync(main) ? fs.statSync(main).mtimeMs : 0;
if (built < newestSource()) {
  process.stderr.write(built === 0 ? 'fanfold: building dist/ (first run)…\n' : 'fanfold: rebuilding dist/ (sources changed since the last build)…\n');
  const b = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
  if (b.status !== 0) process.exit(b.status ?? 1);
}
const r = spawnSync(process.execPath, [main, 'run', spec], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
