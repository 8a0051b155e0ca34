/**
 * One truth for counts (issue 13 items 3 and 11), through the built CLI and a real MCP client:
 * after a failing run, `status` (text and JSON), `list`, MCP `workflow_status`, report.md and
 * report.html show the same buckets; the live view on a real pseudo-terminal fits 80 columns (also
 * when the terminal does not say its width) and never shows a finished task as pending again.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI } from '../helpers/cli.js';
import { makeProject, type Project } from './project.js';
import { call, connect, dataOf, textOf } from '../mcp/helpers.js';

const made: Project[] = [];
afterAll(() => {
  for (const p of made) fs.rmSync(p.dir, { recursive: true, force: true });
});

/** 12 tasks, 4 at a time, every one fails: the first failure stops dispatching, 8 never start. */
function failingSpec(command: string[] = ['sh', '-c', 'sleep 0.3; exit 2']) {
  return {
    version: 1,
    name: 'failing',
    goal: 'see the counts agree',
    limits: { maxConcurrent: 4, retries: 0 },
    agents: { sh: { runner: 'command', command } },
    phases: [{ id: 'work', agent: 'sh', tasks: Array.from({ length: 12 }, (_, i) => ({ id: `t${i}`, prompt: `item ${i}` })) }],
  };
}

describe('every front shows the same counts (issue 13 item 3)', () => {
  it('after a failing run: status, list, workflow_status, report.md and report.html agree', async () => {
    const p = makeProject(failingSpec());
    made.push(p);
    const r = p.cli(['run', p.spec, '--json']);
    expect(r.status, r.stderr).toBe(1);
    const runId = r.json().runId as string;
    const status = p.cli(['status', runId, '--json']).json();
    expect(status.agents).toEqual({ total: 12, succeeded: 0, checkFailed: 0, failed: 4, cancelled: 0, skipped: 0, running: 0, pending: 8 });
    const words = '0 succeeded, 4 failed, 8 pending';

    const text = p.cli(['status', runId]).stdout;
    expect(text).toContain(`agents: ${words} of 12`);
    expect(text).toContain(`phase work: failed (${words} of 12)`);

    const list = p.cli(['list', '--json']).json();
    expect(list.runs[0].agents).toEqual(status.agents);

    const md = fs.readFileSync(path.join(p.runDir(runId), 'report.md'), 'utf8');
    expect(md).toContain(`| \`work\` | work | failed | 12 | ${words} |`);
    expect(md).toContain('0 of 12 tasks succeeded; 4 failed, 8 pending (results below are partial).');
    expect(md).not.toMatch(/12 failed/);
    const html = fs.readFileSync(path.join(p.runDir(runId), 'report.html'), 'utf8');
    expect(html).toContain(`<td>${words}</td>`);
    expect(html).not.toMatch(/12 failed/);

    const c = await connect({ root: p.store, cwd: p.dir });
    try {
      const mcp = await call(c.client, 'workflow_status', { runId });
      expect(dataOf(mcp).agents).toEqual(status.agents);
      expect(textOf(mcp)).toContain('4/12 agents done (0 succeeded, 4 failed), 0 running, 8 pending');
      expect(textOf(mcp)).toContain(`- work: failed, ${words} of 12`);
      const runs = dataOf(await call(c.client, 'workflow_status', {}));
      expect(runs.runs[0]).toMatchObject({ runId, done: 4, total: 12, failed: 4 });
    } finally {
      await c.close();
    }
  }, 90_000);
});

/** Strips terminal control sequences; returns every line ever drawn. */
function drawnLines(raw: string): string[] {
  const plain = raw.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\x1b\][^\x07]*\x07/g, '');
  return plain.split(/\r?\n|\r/).filter((l) => l.length > 0);
}

/** Runs the built CLI under a real pseudo-terminal (util-linux `script`) of `cols` columns. */
function ttyRun(p: Project, args: string[], cols: number): string {
  const cmd = `stty cols ${cols} rows 50; exec ${[process.execPath, CLI, '--store', p.store, ...args].map((a) => `'${a}'`).join(' ')}`;
  const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { cwd: p.dir, encoding: 'utf8', timeout: 90_000, env: { ...process.env, TERM: 'xterm' } });
  expect(r.error).toBeUndefined();
  return r.stdout;
}

const hasScript = spawnSync('script', ['--version']).status === 0;

describe.skipIf(!hasScript)('the live view on a terminal (issue 13 item 11)', () => {
  const longSpec = {
    version: 1,
    name: 'a workflow whose name is long enough to need cutting on a narrow terminal, surely',
    limits: { maxConcurrent: 3, retries: 0 },
    agents: { sh: { runner: 'command', command: ['sh', '-c', 'sleep 0.2; case "$FANFOLD_TASK_ID" in *3) exit 1;; esac; echo ok'] } },
    phases: [
      { id: 'review-every-module-of-the-repository', onFailure: 'continue', agent: 'sh', tasks: Array.from({ length: 9 }, (_, i) => ({ id: `module-with-a-long-name-${i}`, prompt: `m ${i}` })) },
      { id: 'sum', agent: 'sh', dependsOn: ['review-every-module-of-the-repository'], tasks: [{ id: 'all', prompt: 'sum' }] },
    ],
  };

  for (const cols of [80, 0]) {
    it(`fits ${cols || 'an unknown width (80)'} columns and never shows a finished task as pending again`, () => {
      const p = makeProject(longSpec);
      made.push(p);
      const out = ttyRun(p, ['run', p.spec], cols);
      // The live view's frames: everything before the summary `fanfold run` prints at the end.
      const all = drawnLines(out);
      const summaryAt = all.findIndex((l) => /^run [a-z0-9]+ \(/.test(l));
      expect(summaryAt, out.slice(-2000)).toBeGreaterThan(0);
      const lines = all.slice(0, summaryAt);
      const agents = lines.filter((l) => /^ {2}agents \d+\/\d+ done: /.test(l));
      expect(agents.length, out.slice(0, 2000)).toBeGreaterThan(5);
      for (const l of lines) expect([...l].length, l).toBeLessThanOrEqual(80);
      // Frame by frame: ended tasks never go down, pending tasks never go up (no retries here).
      let ended = 0;
      let pending = Infinity;
      for (const l of agents) {
        const e = Number(/agents (\d+)\//.exec(l)![1]);
        const m = /(\d+) pending/.exec(l);
        const pd = m ? Number(m[1]) : 0;
        expect(e, l).toBeGreaterThanOrEqual(ended);
        expect(pd, l).toBeLessThanOrEqual(pending);
        ended = e;
        pending = pd;
      }
      expect(ended).toBe(10);
    }, 120_000);
  }
});
