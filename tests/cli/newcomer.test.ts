/**
 * Issue 13, the first ten minutes, through the built CLI: the commands fanfold prints run as
 * printed (executed here with `sh -c`) from a clone (`npx fanfold`), from a linked install
 * (`fanfold`) and from elsewhere (`node …/main.js`); `npm run demo` ends with the ranked table
 * that the README shows (the README's sample is checked against the real run, so it cannot
 * drift), counted from the fixture folder with true TODO counts; `plan` works without any agent
 * CLI; a closed stdout is quiet; `--json` errors are JSON; uninstall is the inverse of install.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, REPO, fanfold, tempDir } from '../helpers/cli.js';

const made: string[] = [];
function temp(prefix: string): string {
  const d = tempDir(prefix);
  made.push(d);
  return d;
}
afterAll(() => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

/** A PATH with node, npm and npx but no `fanfold`, plus the shell tools the hints need. */
const BASE_PATH = [path.dirname(process.execPath), '/usr/bin', '/bin'].join(path.delimiter);

/** A folder holding `fanfold` → this build's main.js, as `npm link` makes it. */
function linkedBin(): string {
  const bin = temp('fanfold-test-bin-');
  fs.symlinkSync(CLI, path.join(bin, 'fanfold'));
  return bin;
}

function sh(line: string, cwd: string, env: NodeJS.ProcessEnv) {
  return spawnSync('sh', ['-c', line], { cwd, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 });
}

/** The command lines under "next:" in a summary. */
function nextLines(stdout: string): string[] {
  const at = stdout.indexOf('\n  next:\n');
  expect(at, stdout).toBeGreaterThan(0);
  return stdout.slice(at + '\n  next:\n'.length).split('\n').filter((l) => l.startsWith('    ')).map((l) => l.trim());
}

/** The README block between `<!-- sample:NAME -->` and `<!-- /sample:NAME -->`, fences removed. */
function readmeSample(name: string): string {
  const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
  const m = new RegExp(`<!-- sample:${name} -->\\n\`\`\`text\\n([\\s\\S]*?)\`\`\`\\n<!-- /sample:${name} -->`).exec(readme);
  expect(m, `README sample ${name}`).not.toBeNull();
  return m![1]!;
}

describe('npm run demo (items 1, 6, 7, 13)', () => {
  const store = temp('fanfold-test-demo-');
  const env = { PATH: BASE_PATH, FANFOLD_STORE: store };
  const demo = spawnSync('npm', ['run', 'demo', '--silent'], { cwd: REPO, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 180_000 });

  it('runs the built CLI without rebuilding, and ends with the ranked table, then where the files are', () => {
    expect(demo.status, demo.stderr).toBe(0);
    expect(demo.stderr).not.toMatch(/rebuilding|building dist/);
    const table = demo.stdout.indexOf('| rank | folder |');
    const files = demo.stdout.indexOf('\n  files: ');
    expect(table).toBeGreaterThan(-1);
    expect(files).toBeGreaterThan(table);
    expect(demo.stdout.trimEnd().split('\n').at(-1)).toMatch(/^ {4}npx fanfold report \w+$/);
  });

  it("prints exactly the README's sample output (regenerate the README block when this fails)", () => {
    expect(demo.stdout).toContain(readmeSample('demo'));
  });

  it('prints next commands one per line, without placeholders, that run as printed in the clone', () => {
    const lines = nextLines(demo.stdout);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      expect(line).toMatch(/^npx fanfold /);
      expect(line).not.toMatch(/[<>]/);
      const r = sh(line, REPO, env);
      expect(r.status, `${line}\n${r.stderr}`).toBe(0);
      expect(r.stdout).toContain('source-census');
    }
  });

  it('counts every folder of the fixture, and only TODOs that are comments', () => {
    const fixture = path.join(REPO, 'examples', 'census-fixture');
    const folders = fs.readdirSync(fixture, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => `examples/census-fixture/${e.name}`).sort();
    expect(fs.readdirSync(fixture, { withFileTypes: true }).filter((e) => !e.isDirectory())).toEqual([]);
    const spec = fs.readFileSync(path.join(REPO, 'examples', 'census.yaml'), 'utf8');
    const prompts = [...spec.matchAll(/prompt: "(examples\/census-fixture\/[^"]+)"/g)].map((m) => m[1]).sort();
    expect(prompts).toEqual(folders);
    // The real TODO comments of the fixture, found by reading it; the word inside strings and
    // prose (auth.js, cart.ts, migrate.py, view.ts, deploy.sh, architecture.md) is not one.
    const todos = demo.stdout.split('\n').filter((l) => /^- \w+\/[\w.]+:\d+: /.test(l)).map((l) => l.split(': ')[0]!.slice(2)).sort();
    expect(todos).toEqual(['api/auth.js:10', 'api/routes.js:10', 'core/cart.ts:16', 'core/inventory.ts:9', 'db/migrate.py:5', 'scripts/deploy.sh:4', 'web/view.ts:3']);
    expect(demo.stdout).toContain('7 TODO comments');
  });
});

describe('printed commands run where the user is (item 1)', () => {
  it('with fanfold linked on PATH, the hints say `fanfold …` and run as printed', () => {
    const store = temp('fanfold-test-linked-');
    const env = { PATH: `${linkedBin()}${path.delimiter}${BASE_PATH}`, FANFOLD_STORE: '' };
    const r = sh(`fanfold run examples/census.yaml --store ${store}`, REPO, env);
    expect(r.status, r.stderr).toBe(0);
    const lines = nextLines(r.stdout);
    for (const line of lines) {
      expect(line).toMatch(new RegExp(`^fanfold report \\w+ --store ${store}$`));
      const again = sh(line, os.tmpdir(), env); // from any folder
      expect(again.status, again.stderr).toBe(0);
      expect(again.stdout).toContain('# source-census');
    }
  });

  it('outside the clone, without fanfold on PATH, they say `node …/main.js …` (never npx) and run as printed', () => {
    const project = temp('fanfold-test-outside-');
    fs.writeFileSync(
      path.join(project, 'wf.yaml'),
      'version: 1\nname: outside\nagents:\n  echo: { runner: command, command: ["node", "-e", "console.log(1)"] }\nphases:\n  - id: p\n    agent: echo\n    tasks: [{ id: t, prompt: "x" }]\n',
    );
    const env = { PATH: BASE_PATH, FANFOLD_STORE: '' };
    const r = fanfold(['run', 'wf.yaml', '--detach'], { cwd: project, env });
    expect(r.status, r.stderr).toBe(0);
    const watch = /watch: +(.+)/.exec(r.stdout)![1]!;
    expect(watch).toMatch(/^node \S+\/dist\/cli\/main\.js status \w+ --wait 60$/);
    const w = sh(watch, project, env);
    expect(w.status, w.stderr).toBe(0);
    for (const line of nextLines(w.stdout)) {
      expect(line).not.toMatch(/npx/);
      const again = sh(line, project, env);
      expect(again.status, `${line}\n${again.stderr}`).toBe(0);
    }
  });
});

describe('a closed stdout is quiet (item 5)', () => {
  it('`show … | head -1` and `list | head -1` exit 0 with nothing on stderr', () => {
    const project = temp('fanfold-test-pipe-');
    const store = path.join(project, 'store');
    fs.writeFileSync(
      path.join(project, 'wf.yaml'),
      'version: 1\nname: big\nagents:\n  big: { runner: command, command: ["node", "-e", "process.stdout.write(\'a line of output\\\\n\'.repeat(15000))"] }\nphases:\n  - id: p\n    agent: big\n    tasks: [{ id: t, prompt: "x" }]\n',
    );
    const run = fanfold(['run', 'wf.yaml', '--store', store], { cwd: project });
    expect(run.status, run.stderr).toBe(0);
    const id = fs.readdirSync(store).find((n) => !n.startsWith('.'))!;
    for (const cmd of [`show ${id} p/t`, 'list', `query line --run ${id}`, `report ${id}`]) {
      const r = spawnSync('bash', ['-c', `set -o pipefail; node ${CLI} ${cmd} --store ${store} | head -1`], { cwd: project, encoding: 'utf8' });
      expect(r.stderr, cmd).toBe('');
      expect(r.status, cmd).toBe(0);
      expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(1);
    }
  });
});

describe('plan without any agent CLI (item 2)', () => {
  const bin = temp('fanfold-test-nocli-');
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  const home = temp('fanfold-test-home-');
  const env = { PATH: bin, HOME: home, CLAUDE_CONFIG_DIR: '', FANFOLD_RUNNER: '' };
  const examples = fs.readdirSync(path.join(REPO, 'examples')).filter((f) => f.endsWith('.yaml'));

  it.each(examples)('%s plans, warning what to install when it needs an agent CLI', (file) => {
    const r = fanfold(['plan', `examples/${file}`], { env });
    expect(r.status, r.stderr).toBe(0);
    const spec = fs.readFileSync(path.join(REPO, 'examples', file), 'utf8');
    if (!/runner: command/.test(spec) || /agent: (researcher|reviewer|implementer|summarizer)/.test(spec)) {
      expect(r.stdout).toMatch(/Claude Code \('claude'\) is not installed here; .* npm i -g @anthropic-ai\/claude-code/);
    }
  });

  it('run refuses, naming what to install; a profile that cannot be resolved is never called unknown', () => {
    const r = fanfold(['run', 'examples/research.yaml'], { env });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/cannot run examples\/research\.yaml: .*npm i -g @anthropic-ai\/claude-code/);
    const bad = fanfold(['plan', 'examples/research.yaml'], { env: { ...env, FANFOLD_RUNNER: 'bogus' } });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/cannot resolve agent 'researcher'/);
    expect(bad.stderr).not.toMatch(/unknown agent|does not exist/);
  });
});

describe('errors and wording (item 12)', () => {
  const dir = temp('fanfold-test-errors-');

  it('--json errors are {"error": {message, code}} on stdout, code = exit code', () => {
    const cases: [string[], RegExp][] = [
      [['plan', 'nope.yaml', '--json'], /^spec: no spec file 'nope\.yaml'/],
      [['status', '--json', '--store', path.join(dir, 'empty')], /no runs/],
      [['list', '--bogus', '--json'], /unknown option '--bogus'/],
      [['install', 'vscode', '--json'], /unknown host 'vscode'; expected 'claude' \(Claude Code\) or 'codex' \(Codex\)/],
    ];
    for (const [args, message] of cases) {
      const r = fanfold(args, { cwd: dir });
      expect(r.status, args.join(' ')).toBe(2);
      const doc = r.json();
      expect(Object.keys(doc)).toEqual(['error']);
      expect(doc.error.code).toBe(2);
      expect(doc.error.message).toMatch(message);
      expect(doc.error.message).not.toMatch(/ENOENT/);
    }
  });

  it('a YAML error shows a code frame; a missing spec is said in words; install and uninstall name the hosts', () => {
    fs.writeFileSync(path.join(dir, 'bad.yaml'), 'version: 1\nname: x\nphases:\n  - id: a\n    tasks: [ { id: t, prompt: "x" } ]]\n');
    const bad = fanfold(['plan', 'bad.yaml'], { cwd: dir });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('  > 5 |     tasks: [ { id: t, prompt: "x" } ]]\n');
    expect(bad.stderr).toMatch(/\n +\| +\^\n/);
    const missing = fanfold(['plan', 'nope.yaml'], { cwd: dir });
    expect(missing.stderr).toMatch(/^fanfold: spec: no spec file 'nope\.yaml' \(looked for .*nope\.yaml\); spec files there: bad\.yaml\n$/);
    for (const verb of ['install', 'uninstall']) {
      const r = fanfold([verb, 'vscode'], { cwd: dir });
      expect(r.status).toBe(2);
      expect(r.stderr).toBe(`fanfold: ${verb}: unknown host 'vscode'; expected 'claude' (Claude Code) or 'codex' (Codex)\n`);
    }
  });

  it('list has a header', () => {
    const project = temp('fanfold-test-list-');
    fs.writeFileSync(path.join(project, 'wf.yaml'), 'version: 1\nname: l\nagents:\n  e: { runner: command, command: ["true"] }\nphases:\n  - id: p\n    agent: e\n    tasks: [{ id: t, prompt: "x" }]\n');
    expect(fanfold(['run', 'wf.yaml'], { cwd: project }).status).toBe(0);
    const lines = fanfold(['list'], { cwd: project }).stdout.split('\n');
    expect(lines[0]).toMatch(/^RUN +STATUS +OK\/TOTAL +ELAPSED +SPENT +STARTED +NAME$/);
    expect(lines[1]).toMatch(/^\w+ +completed +1\/1 /);
  });
});

describe('uninstall claude|codex, the inverse of install', () => {
  /** Every file under `dir` with its bytes, and every folder. */
  function tree(dir: string): Record<string, string> {
    const out: Record<string, string> = {};
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        const rel = path.relative(dir, p);
        if (e.isDirectory()) {
          out[rel + '/'] = '';
          walk(p);
        } else out[rel] = fs.readFileSync(p, 'utf8');
      }
    };
    walk(dir);
    return out;
  }

  it('puts back every file as it was, in both scopes and Codex; a second uninstall has nothing to remove', () => {
    const home = temp('fanfold-test-uhome-');
    const project = temp('fanfold-test-uproj-');
    const env = { HOME: home, CODEX_HOME: path.join(home, '.codex'), CLAUDE_CONFIG_DIR: '' };
    fs.mkdirSync(path.join(home, '.codex'));
    fs.writeFileSync(path.join(home, '.codex', 'config.toml'), '# mine\nmodel = "o3"\n\n[mcp_servers.other]\ncommand = "other" # keep\n');
    fs.writeFileSync(path.join(home, '.claude.json'), JSON.stringify({ numStartups: 3, mcpServers: { other: { command: 'x' } } }, null, 2) + '\n');
    fs.mkdirSync(path.join(home, '.claude', 'skills', 'mine'), { recursive: true });
    fs.writeFileSync(path.join(home, '.claude', 'skills', 'mine', 'SKILL.md'), '---\nname: mine\n---\n');
    const homeBefore = tree(home);
    const projectBefore = tree(project);

    for (const args of [['install', 'claude'], ['install', 'claude', '--scope', 'project'], ['install', 'codex', '--legacy-skills', '--headless']]) {
      const r = fanfold(args, { cwd: project, env });
      expect(r.status, r.stderr).toBe(0);
    }
    expect(tree(home)).not.toEqual(homeBefore);
    expect(fs.existsSync(path.join(project, '.mcp.json'))).toBe(true);

    // A dry run shows the removals and writes nothing.
    const installed = tree(home);
    const dry = fanfold(['uninstall', 'codex', '--dry-run', '--json'], { cwd: project, env });
    expect(dry.status, dry.stderr).toBe(0);
    expect(dry.json()).toMatchObject({ host: 'codex', dryRun: true, changed: false });
    expect(dry.json().changes.map((c: any) => c.action)).toEqual(expect.arrayContaining(['update', 'delete']));
    expect(tree(home)).toEqual(installed);

    for (const args of [['uninstall', 'claude'], ['uninstall', 'claude', '--scope', 'project'], ['uninstall', 'codex']]) {
      const r = fanfold(args, { cwd: project, env });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^Removed fanfold from /);
    }
    expect(tree(home)).toEqual(homeBefore);
    expect(tree(project)).toEqual(projectBefore);

    const again = fanfold(['uninstall', 'codex', '--json'], { cwd: project, env });
    expect(again.json()).toMatchObject({ changed: false });
    expect(fanfold(['uninstall', 'claude'], { cwd: project, env }).stdout).toBe('fanfold is not installed for Claude Code (user scope): nothing to remove.\n');
  });

  it('on a fresh HOME, install then uninstall leaves HOME exactly as empty as it was', () => {
    const home = temp('fanfold-test-fresh-');
    const project = temp('fanfold-test-freshp-');
    const env = { HOME: home, CODEX_HOME: path.join(home, '.codex'), CLAUDE_CONFIG_DIR: '' };
    for (const host of ['claude', 'codex']) {
      expect(fanfold(['install', host], { cwd: project, env }).status).toBe(0);
      expect(Object.keys(tree(home)).length).toBeGreaterThan(0);
      const r = fanfold(['uninstall', host], { cwd: project, env });
      expect(r.status, r.stderr).toBe(0);
      expect(tree(home), host).toEqual({});
    }
  });
});

describe('temp folders (item 14)', () => {
  it("tests write under this run's own temp folder, which the global teardown removes", () => {
    expect(path.basename(os.tmpdir())).toMatch(/^fanfold-vitest-/);
  });
});
