/**
 * `control_workflow` (issue 12 item 5) through the real MCP SDK client: `Client` +
 * `StdioClientTransport` against the built `fanfold serve`, with a client that answers approval
 * forms (elicitation) the way a person would. Command agents play the part of agents: they record
 * their pid and sleep, or finish at once once `fast.flag` exists.
 *
 * - stop_agent on a running agent: cancelled, its dependent skipped, the rest goes on, the run
 *   ends stopped naming it; restart_agent on a running agent: it runs again as its next attempt.
 * - stop on the whole run, then resume (approved on the form) finishes it.
 * - a checkpoint answered approve (the phase starts) and reject (the run ends stopped); a form
 *   the person declines leaves it waiting.
 * - `serve --child` does not list control_workflow and refuses a call to it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ElicitRequestSchema, type CallToolResult, type ElicitRequest, type ElicitResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, describe, expect, it } from 'vitest';
import { until } from '../helpers/cli.js';
import { dataOf, tempDir, textOf } from './helpers.js';

const REPO = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(REPO, 'dist/cli/main.js');
/** What the server process needs from the environment (StdioClientTransport passes only an allow-list). */
const ENV = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' };

const made: string[] = [];
const pids: number[] = [];
afterAll(() => {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

const sh = (script: string) => ({ runner: 'command', command: ['sh', '-c', script], sandbox: 'off' });
/** Appends its task id to ran.log; unless fast.flag exists, writes `<task>.<attempt>.pid` and sleeps. */
const sleeper = sh(
  'echo "$FANFOLD_TASK_ID" >> ran.log; if [ -f fast.flag ]; then echo "fast $FANFOLD_TASK_ID"; exit 0; fi; ' +
    'echo $$ > "$FANFOLD_TASK_ID.$FANFOLD_ATTEMPT.pid"; exec sleep 60',
);
const quick = sh('echo "$FANFOLD_TASK_ID" >> ran.log; echo "done $FANFOLD_TASK_ID"');

interface Served {
  client: Client;
  dir: string;
  store: string;
  forms: ElicitRequest[];
  /** What the person answers on the next forms (default: yes). */
  answers: ElicitResult[];
  call(name: string, args: Record<string, unknown>): Promise<CallToolResult>;
  pidOf(file: string): Promise<number>;
  ran(): Record<string, number>;
  agents(runId: string): Array<{ taskId: string; attempt: number; status: string; error?: { type: string; message: string } }>;
  close(): Promise<void>;
}

/** Starts the built `fanfold serve` (or `serve --child`) in a fresh project, with a form-answering client. */
async function serve(child = false): Promise<Served> {
  const dir = tempDir('fanfold-ctl-');
  made.push(dir);
  const store = path.join(dir, 'store');
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [CLI, 'serve', '--store', store, ...(child ? ['--child'] : [])],
    cwd: dir,
    env: ENV,
    stderr: 'pipe',
  });
  const client = new Client({ name: 'control-stdio-test', version: '0' }, { capabilities: { elicitation: {} } });
  const forms: ElicitRequest[] = [];
  const answers: ElicitResult[] = [];
  client.setRequestHandler(ElicitRequestSchema, async (req) => {
    forms.push(req);
    return answers.shift() ?? { action: 'accept', content: { approve: true } };
  });
  await client.connect(transport);
  const read = (f: string) => {
    try {
      return fs.readFileSync(path.join(dir, f), 'utf8');
    } catch {
      return undefined;
    }
  };
  return {
    client, dir, store, forms, answers,
    call: async (name, args) => (await client.callTool({ name, arguments: args }, undefined, { timeout: 90_000 })) as CallToolResult,
    async pidOf(file) {
      await until(() => /^\d+\s*$/.test(read(file) ?? ''), 30_000, `pid file ${file}`);
      const pid = Number(read(file)!.trim());
      pids.push(pid);
      return pid;
    },
    ran() {
      const out: Record<string, number> = {};
      for (const l of (read('ran.log') ?? '').split('\n').filter(Boolean)) out[l] = (out[l] ?? 0) + 1;
      return out;
    },
    agents(runId) {
      const d = path.join(store, runId, 'agents');
      return fs.readdirSync(d).map((f) => JSON.parse(fs.readFileSync(path.join(d, f), 'utf8')));
    },
    close: () => client.close(),
  };
}

/** Starts `spec` with run_workflow (the form says yes) and returns its runId. */
async function start(s: Served, spec: Record<string, unknown>): Promise<string> {
  const r = await s.call('run_workflow', { spec });
  expect(r.isError, textOf(r)).toBeFalsy();
  return dataOf(r).runId as string;
}

/**
 * workflow_status with wait until `until(status)` holds (several calls). A wait returns at once
 * for an ended run — also the old status of a run whose resumed owner has not written yet — so
 * a call that came back early is followed by a short pause.
 */
async function settle(s: Served, runId: string, until: (status: string) => boolean): Promise<any> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const r = await s.call('workflow_status', { runId, wait: 20 });
    expect(r.isError, textOf(r)).toBeFalsy();
    if (until(dataOf(r).status) || Date.now() > deadline) return dataOf(r);
    await new Promise((res) => setTimeout(res, 200));
  }
}
const ended = (st: string) => !['running', 'pending', 'starting'].includes(st);

describe('control_workflow over stdio (the real SDK client against the built fanfold serve)', () => {
  it('stop_agent stops one agent (dependents skipped, the rest goes on); restart_agent runs one again at once', async () => {
    const s = await serve();
    try {
      const { tools } = await s.client.listTools();
      expect(tools.map((t) => t.name)).toContain('control_workflow');
      const runId = await start(s, {
        version: 1, name: 'ctl-agents', limits: { maxConcurrent: 3, retries: 0 },
        agents: { slow: sleeper, q: quick },
        phases: [
          { id: 'a', tasks: [{ id: 's1', agent: 'slow', prompt: 's1' }, { id: 's2', agent: 'slow', prompt: 's2' }, { id: 'q1', agent: 'q', prompt: 'q1' }] },
          // Task-level dependencies only: a phase-level dependsOn would make every task of b a dependent of s1.
          { id: 'b', agent: 'q', tasks: [{ id: 'after', prompt: 'after', dependsOn: ['a/s1'] }, { id: 'other', prompt: 'other', dependsOn: ['a/s2'] }] },
        ],
      });
      await s.pidOf('s1.1.pid');
      await s.pidOf('s2.1.pid');
      const formsBefore = s.forms.length;

      const stop = await s.call('control_workflow', { runId, action: 'stop_agent', ref: 'a/s1' });
      expect(stop.isError, textOf(stop)).toBeFalsy();
      expect(dataOf(stop)).toMatchObject({ runId, action: 'stop_agent', done: true, effect: 'stopping' });
      expect(textOf(stop)).toContain(`runId: ${runId}`);
      expect(s.forms.length).toBe(formsBefore); // stopping needs no approval

      fs.writeFileSync(path.join(s.dir, 'fast.flag'), '');
      const restart = await s.call('control_workflow', { runId, action: 'restart_agent', ref: 'a/s2' });
      expect(restart.isError, textOf(restart)).toBeFalsy();
      expect(dataOf(restart)).toMatchObject({ action: 'restart_agent', done: true, effect: 'restarting' });

      const end = await settle(s, runId, ended);
      expect(end.status).toBe('stopped');
      expect(end.reason).toMatch(/agent stopped: a\/s1/);
      const recs = s.agents(runId);
      const of = (id: string) => recs.filter((r) => r.taskId === id).sort((x, y) => x.attempt - y.attempt);
      expect(of('s1').map((r) => r.status)).toEqual(['cancelled']);
      expect(of('s2').map((r) => r.status)).toEqual(['cancelled', 'succeeded']);
      expect(of('s2')[0]!.error!.message).toMatch(/^restarted by/);
      expect(of('after').map((r) => r.status)).toEqual(['skipped']);
      expect(of('other').map((r) => r.status)).toEqual(['succeeded']);
      expect(s.ran().q1).toBe(1);

      // Refusals name what is wrong.
      const bad = await s.call('control_workflow', { runId, action: 'stop_agent' });
      expect(bad.isError).toBe(true);
      expect(textOf(bad)).toMatch(/needs ref/);
    } finally {
      await s.close();
    }
  }, 150_000);

  it('stop ends the whole run; resume (approved on the form) finishes it without rerunning what finished', async () => {
    const s = await serve();
    try {
      const runId = await start(s, {
        version: 1, name: 'ctl-stop', limits: { maxConcurrent: 2, retries: 0 },
        agents: { slow: sleeper, q: quick },
        phases: [{ id: 'a', tasks: [{ id: 's1', agent: 'slow', prompt: 's1' }, { id: 'q1', agent: 'q', prompt: 'q1' }] }],
      });
      await s.pidOf('s1.1.pid');
      await until(() => s.ran().q1 === 1, 30_000, 'q1 ran');
      const stop = await s.call('control_workflow', { runId, action: 'stop' });
      expect(stop.isError, textOf(stop)).toBeFalsy();
      expect(dataOf(stop)).toMatchObject({ action: 'stop', done: true });
      const stopped = await settle(s, runId, ended);
      expect(stopped.status).toBe('stopped');

      // Stopping a run that is not running does nothing, and says so.
      const again = await s.call('control_workflow', { runId, action: 'stop' });
      expect(dataOf(again)).toMatchObject({ done: false });
      expect(textOf(again)).toMatch(/not running/);

      fs.writeFileSync(path.join(s.dir, 'fast.flag'), '');
      const formsBefore = s.forms.length;
      const resume = await s.call('control_workflow', { runId, action: 'resume' });
      expect(resume.isError, textOf(resume)).toBeFalsy();
      expect(dataOf(resume)).toMatchObject({ action: 'resume', done: true });
      expect(s.forms.length).toBe(formsBefore + 1); // the resume asked the person, as run_workflow does
      // Until it completes (the first answers may still show the stopped run the resume took up).
      const end = await settle(s, runId, (st) => st === 'completed' || st === 'failed');
      expect(end.status).toBe('completed');
      expect(s.ran()).toEqual({ s1: 2, q1: 1 });
    } finally {
      await s.close();
    }
  }, 150_000);

  it('approve and reject answer a checkpoint on a form; a declined form leaves it waiting', async () => {
    const s = await serve();
    const gated = (name: string) => ({
      version: 1, name, limits: { retries: 0 },
      agents: { q: quick },
      phases: [
        { id: 'a', agent: 'q', tasks: [{ id: 'a1', prompt: 'a1' }] },
        { id: 'b', agent: 'q', dependsOn: ['a'], checkpoint: { message: 'Ship it to the team?' }, tasks: [{ id: 'b1', prompt: 'b1' }] },
      ],
    });
    try {
      const runId = await start(s, gated('ctl-approve'));
      const waiting = await settle(s, runId, (st) => st === 'awaiting_approval' || ended(st));
      expect(waiting.status).toBe('awaiting_approval');
      expect(JSON.stringify(waiting)).toContain('Ship it to the team?');
      expect(waiting.checkpoints).toEqual([expect.objectContaining({ phaseId: 'b', message: 'Ship it to the team?', onTimeout: 'stop' })]);

      // The person says no on the form: nothing is answered, the checkpoint still waits.
      s.answers.push({ action: 'decline' });
      const declined = await s.call('control_workflow', { runId, action: 'approve', phaseId: 'b' });
      expect(dataOf(declined)).toMatchObject({ done: false, status: 'awaiting_approval' });
      // The model's approve: true does not overrule a person's answer on the form.
      s.answers.push({ action: 'decline' });
      const overruled = await s.call('control_workflow', { runId, action: 'approve', approve: true });
      expect(dataOf(overruled)).toMatchObject({ done: false });
      expect(s.ran().b1).toBeUndefined();

      const formsBefore = s.forms.length;
      const ok = await s.call('control_workflow', { runId, action: 'approve', phaseId: 'b' });
      expect(ok.isError, textOf(ok)).toBeFalsy();
      expect(dataOf(ok)).toMatchObject({ action: 'approve', done: true });
      expect((s.forms[formsBefore]!.params as { message: string }).message).toContain('Ship it to the team?');
      const end = await settle(s, runId, ended);
      expect(end.status).toBe('completed');
      expect(s.ran()).toEqual({ a1: 1, b1: 1 });

      const run2 = await start(s, gated('ctl-reject'));
      expect((await settle(s, run2, (st) => st === 'awaiting_approval' || ended(st))).status).toBe('awaiting_approval');
      const no = await s.call('control_workflow', { runId: run2, action: 'reject' });
      expect(no.isError, textOf(no)).toBeFalsy();
      expect(dataOf(no)).toMatchObject({ action: 'reject', done: true });
      const end2 = await settle(s, run2, ended);
      expect(end2.status).toBe('stopped');
      expect(end2.reason).toMatch(/checkpoint before phase b was rejected/);
      expect(s.ran().b1).toBe(1); // only the first run's
    } finally {
      await s.close();
    }
  }, 150_000);

  it('serve --child does not list control_workflow and refuses a call to it', async () => {
    const s = await serve(true);
    try {
      const { tools } = await s.client.listTools();
      expect(tools.map((t) => t.name)).toEqual(['workflow_status', 'query_workflow']);
      const r = await s.call('control_workflow', { runId: 'r-x', action: 'stop' });
      expect(r.isError).toBe(true);
      expect(textOf(r)).toMatch(/not found/i);
    } finally {
      await s.close();
    }
  }, 60_000);
});
