/**
 * How dynamic phases show in the CLI, through the built binary on real runs of small scripted
 * specs: `fanfold plan` says what each phase does, `fanfold run` and `fanfold status` print one
 * line per dynamic phase (and `--json` adds them), report.md and report.html carry the sections;
 * a failing gate and a merge conflict show up in all of them. The live view is checked directly.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { renderProgress } from '../../src/cli/progress.js';
import { makeProject, sh, type Project } from './project.js';
import { AGENT_SH, SKEPTIC_SH, smokeSpec } from '../helpers/dynamic-smoke.js';


const LINES = {
  review: '    ↳ 3/5 items (2 dropped: forEach.max 3); verified 6 findings: 3 confirmed, 3 refuted',
  polish: '    ↳ 3 items from review',
  hunt: '    ↳ 3 rounds, dry 1, 2 findings',
  fixup: '    ↳ gate passed on run 3 of 3',
};

function runIdOf(stdout: string): string {
  const m = /^run ([a-z0-9]+) \(/m.exec(stdout);
  expect(m, stdout).not.toBeNull();
  return m![1]!;
}

describe('a dynamic run in the CLI', () => {
  let p: Project;
  let run: ReturnType<Project['cli']>;
  let runId: string;

  beforeAll(() => {
    p = makeProject(smokeSpec(), { 'agent.sh': AGENT_SH, 'skeptic.sh': SKEPTIC_SH });
    run = p.cli(['run', p.spec], { timeoutMs: 90_000 });
    runId = runIdOf(run.stdout);
  }, 120_000);

  it('fanfold plan says what each dynamic phase does and bounds the agents', () => {
    const r = p.cli(['plan', p.spec]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('  2. review: tasks made at run time; agents sh, skeptic; after list; forEach over list.files (max 3) × 1 template; verify: 3 skeptics per finding, majority (agent skeptic)');
    expect(r.stdout).toContain('  3. polish: tasks made at run time; agent sh; after review; pipeline after review (each item moves on alone) × 1 template');
    expect(r.stdout).toContain('  4. hunt: tasks made at run time; agent sh; after polish; converge: until 1 dry round, at most 4 rounds × 1 template');
    expect(r.stdout).toContain('  5. fixup: 1 task; agents sh, fixup-gate; after hunt; gate: `test -f fixed-2`, up to 3 runs (fixes by sh)');
    expect(r.stdout).toContain('Total: 3 tasks written, more made at run time: 3 agents at least; no upper bound from the spec');
  });

  it('fanfold run ends with one line under each dynamic phase', () => {
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain(`phase review: completed (21 succeeded of 21)\n${LINES.review}\n  phase polish`);
    for (const line of Object.values(LINES)) expect(run.stdout).toContain(line);
    expect(run.stdout).toMatch(/phase list: completed \(1 succeeded of 1\)\n  phase review/); // no line for a static phase
  });

  it('fanfold status prints the same lines, and --json adds them with the state', () => {
    const text = p.cli(['status', runId]);
    expect(text.status).toBe(0);
    for (const line of Object.values(LINES)) expect(text.stdout).toContain(line);
    const json = p.cli(['status', runId, '--json']).json();
    expect(json.status).toBe('completed');
    expect(json.dynamic.map((x: { phaseId: string; summary: string }) => [x.phaseId, x.summary])).toEqual(
      Object.entries(LINES).map(([id, line]) => [id, line.replace('    ↳ ', '')]),
    );
    const review = json.dynamic[0].state;
    expect(review.items).toMatchObject({ found: 5, made: 3, dropped: 2, droppedItems: ['d.ts', 'e.ts'], dropReason: 'forEach.max 3' });
    expect(review.verify).toMatchObject({ confirmed: 3, refuted: 3 });
  });

  it('report.md has a section per dynamic phase, and report.html the same facts', () => {
    const md = fs.readFileSync(`${p.runDir(runId)}/report.md`, 'utf8');
    expect(md).toContain('## Dynamic phases');
    expect(md).toContain('- **2 items dropped** (forEach.max 3): `d.ts`, `e.ts`.');
    expect(md).toContain('**Confirmed findings (3)**');
    expect(md).toContain('- `f2` style in a.ts — from `review/review-1`; 3 of 3 skeptics refuted it: style is not a bug (×3)');
    expect(md).toContain('Tasks: 3 work tasks (all succeeded), 18 skeptics (all succeeded).');
    expect(md).toContain('3 rounds (at most 4; stops after 1 dry round): new findings per round 1, 1, 0 — 2 distinct findings.');
    expect(md).toContain('Command `test -f fixed-2`: passed on run 3 of at most 3 (2 failed runs, each followed by a fix).');
    expect(md).toContain('Last failure (run 2):');
    expect(md).not.toMatch(/^### `review\/skeptic/m);
    const html = fs.readFileSync(`${p.runDir(runId)}/report.html`, 'utf8');
    expect(html).toContain('<h2>Dynamic phases</h2>');
    expect(html).toContain('<strong>Refuted findings (3)</strong>');
    expect(html).toContain('<strong>2 items dropped</strong>');
  });

  it('a gate check that did not pass shows as a failed check in status, show, the report and the timeline (issue 13 item 4)', () => {
    // fixup's gate passed on its third check: check-1 and check-2 ran and did not pass.
    const json = p.cli(['status', runId, '--json']).json();
    const fixup = json.phases.find((x: { id: string }) => x.id === 'fixup');
    expect(fixup).toMatchObject({ status: 'completed', checkFailed: 2, failed: 0 });
    expect(json.agents.checkFailed).toBe(2);
    expect(json.agents.succeeded + json.agents.checkFailed).toBe(json.agents.total);
    const text = p.cli(['status', runId]).stdout;
    expect(text).toMatch(/phase fixup: completed \(\d+ succeeded, 2 checks failed of \d+\)/);
    const show = p.cli(['show', runId, 'fixup/check-1']);
    expect(show.stdout).toMatch(/^fixup\/check-1 attempt 1: check failed \(the gate check ran and did not pass\)/);
    expect(p.cli(['show', runId, 'fixup/check-3']).stdout).toMatch(/^fixup\/check-3 attempt 1: succeeded/);
    const md = fs.readFileSync(`${p.runDir(runId)}/report.md`, 'utf8');
    expect(md).not.toMatch(/all \d+ tasks succeeded/);
    expect(md).toMatch(/\*\*Status: completed\*\* — \d+ of \d+ tasks succeeded; 2 gate checks did not pass on the way/);
    const html = fs.readFileSync(`${p.runDir(runId)}/report.html`, 'utf8');
    expect(html).not.toMatch(/all \d+ tasks succeeded/);
    expect(html).toMatch(/<div class="bar [^"]*s-check_failed[^"]*" data-ref="fixup\/check-1" data-status="check_failed"/);
    expect(html).toMatch(/<div class="bar [^"]*s-succeeded[^"]*" data-ref="fixup\/check-3"/);
  });
});

describe('a failing gate and a merge conflict in the CLI', () => {
  it('a gate out of runs shows as failed with its last failure', () => {
    const p = makeProject({
      version: 1,
      name: 'gate fails',
      limits: { retries: 0 },
      agents: { w: sh('echo tried') },
      phases: [{ id: 'build', agent: 'w', prompt: 'BUILD', gate: { command: 'echo "3 tests FAILED"; exit 3', maxIterations: 2 } }],
    });
    const r = p.cli(['run', p.spec], { timeoutMs: 60_000 });
    expect(r.status).toBe(1);
    const runId = runIdOf(r.stdout);
    const status = p.cli(['status', runId]);
    expect(status.status).toBe(1);
    expect(status.stdout).toContain('    ↳ gate failed on run 2 of 2: `echo "3 tests FAILED"; exit 3` exited with 3. 3 tests FAILED');
    const md = fs.readFileSync(`${p.runDir(runId)}/report.md`, 'utf8');
    expect(md).toContain('**failed** on run 2 of at most 2 — no runs left, so the run ended failed (2 failed runs, each but the last followed by a fix).');
    expect(md).toMatch(/Last failure \(run 2\):\n\n```text\n`echo "3 tests FAILED"; exit 3` exited with 3\.\n3 tests FAILED\n```/);
  }, 60_000);

  it('a merge conflict names the patch, its files and git\'s message', () => {
    const edit = (file: string, text: string) => ({ runner: 'command', command: ['sh', '-c', `printf '%s\\n' '${text}' > ${file}; echo edited ${file}`], tier: 'edit', isolation: 'worktree' });
    const p = makeProject({
      version: 1,
      name: 'merge conflict',
      limits: { retries: 0, maxConcurrent: 2 },
      agents: { one: edit('a.txt', 'first'), two: edit('b.txt', 'new'), three: edit('a.txt', 'second') },
      phases: [{ id: 'edit', tasks: [{ id: 'e1', agent: 'one', prompt: 'x' }, { id: 'e2', agent: 'two', prompt: 'y' }, { id: 'e3', agent: 'three', prompt: 'z' }] }],
    });
    const git = (...args: string[]) => {
      const r = spawnSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', '-c', 'commit.gpgsign=false', ...args], { cwd: p.dir, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
    };
    fs.writeFileSync(p.file('a.txt'), 'original\n');
    fs.writeFileSync(p.file('.gitignore'), 'store/\n');
    git('init', '-q');
    git('add', 'a.txt', '.gitignore', 'spec.json');
    git('commit', '-q', '-m', 'base');
    const r = p.cli(['run', p.spec], { timeoutMs: 60_000 });
    expect(r.status, r.stdout + r.stderr).toBe(1);
    const runId = runIdOf(r.stdout);
    expect(r.stdout).toContain('    ↳ merged 2 patches, 1 conflict (edit/e3)');
    const md = fs.readFileSync(`${p.runDir(runId)}/report.md`, 'utf8');
    expect(md).toContain('What it does: isolated in git worktrees (patches merged after the phase).');
    expect(md).toContain('2 patches applied to the working tree: `edit/e1`, `edit/e2`.');
    expect(md).toContain('**Conflicts (1)** — not applied; the run ended failed and the patches stay in the agent records:');
    expect(md).toMatch(/- `edit\/e3` on `a\.txt`: .*a\.txt/);
  }, 60_000);
});

describe('the live view', () => {
  it('draws one line under each dynamic phase', () => {
    const text = renderProgress({
      runId: 'r1',
      name: 'n',
      status: 'running',
      elapsedMs: 5000,
      phases: [
        { id: 'list', status: 'completed', counts: { total: 1, succeeded: 1, failed: 0, skipped: 0, running: 0, pending: 0 } },
        {
          id: 'review',
          status: 'running',
          counts: { total: 9, succeeded: 3, failed: 0, skipped: 0, running: 6, pending: 0 },
          dynamic: { items: { found: 5, made: 3, dropped: 2, duplicates: 0, droppedItems: ['d', 'e'], dropReason: 'forEach.max 3' } },
        },
      ],
    });
    expect(text.split('\n').slice(1, 4)).toEqual([
      '  list   ████████████████████ 1/1  completed  1 ok',
      '  review ███████░░░░░░░░░░░░░ 3/9  running    3 ok, 6 running',
      '         ↳ 3/5 items (2 dropped: forEach.max 3)',
    ]);
  });
});
