/**
 * The cause shown for a failed child is its most telling stderr line (issue 10 item 8): a real
 * `node -e "require('nope')"` command agent through the built CLI. The record's error, the report,
 * the phase digest and the MCP status cause quote `Error: Cannot find module 'nope'`, not the
 * trailing `Node.js v…` banner; `fanfold show` keeps the whole stderr tail.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failureCause } from '../../src/digest/records.js';
import { makeProject, type Project } from './project.js';

let p: Project;
let runId: string;
beforeAll(() => {
  p = makeProject({
    version: 1,
    name: 'nope',
    limits: { retries: 0 },
    agents: {
      n: { runner: 'command', command: [process.execPath, '-e', "require('nope')"], sandbox: 'off' },
      ok: { runner: 'command', command: ['sh', '-c', 'echo fine'], sandbox: 'off' },
    },
    phases: [{ id: 'p', agent: 'n', onFailure: 'continue', tasks: [{ id: 'a', prompt: 'x' }, { id: 'b', agent: 'ok', prompt: 'y' }] }],
  });
  const r = p.cli(['run', p.spec, '--json'], { timeoutMs: 60_000 });
  expect(r.status, r.stderr).toBe(1);
  runId = r.json().runId;
});
afterAll(() => {
  if (p) fs.rmSync(p.dir, { recursive: true, force: true });
});

const TELLING = "Error: Cannot find module 'nope'";

describe('a failed node child', () => {
  it("the record's error quotes the module error, not the version banner", () => {
    const rec = [...p.agents(runId).values()].find((a) => a.taskId === 'a');
    expect(rec.stderrTail).toMatch(/Node\.js v\d+\.\d+\.\d+\s*$/); // the banner is the last line
    expect(rec.error).toMatchObject({ type: 'exit_code', message: `exited with code 1: ${TELLING}` });
    // The cause the MCP status answer and the digests show.
    expect(failureCause(rec)).toBe(`exited with code 1: ${TELLING}`);
  });

  it('report.md and the phase digest name it, and never the banner', () => {
    const md = fs.readFileSync(path.join(p.runDir(runId), 'report.md'), 'utf8');
    expect(md).toContain(TELLING);
    expect(md).not.toMatch(/Node\.js v\d/);
    const digest: string = p.runJson(runId).phases.find((x: { id: string }) => x.id === 'p').digest;
    expect(digest).toContain(`exited with code 1: ${TELLING}`);
    expect(digest).not.toMatch(/Node\.js v\d/);
  });

  it('`fanfold show` keeps the whole stderr tail', () => {
    const r = p.cli(['show', runId, 'p/a']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`cause: exited with code 1: ${TELLING}`);
    const tail = r.stdout.slice(r.stdout.indexOf('stderr (tail):'));
    expect(tail).toContain('Require stack:');
    expect(tail).toContain("code: 'MODULE_NOT_FOUND'");
    expect(tail).toMatch(/Node\.js v\d/);
  });
});
