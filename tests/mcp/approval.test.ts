/**
 * The approval rule (issue 10, item 6): a person's answer on a form is final; only a form nobody
 * could have answered lets the model's `approve: true` decide. The rule itself as a table, then
 * through a real SDK Client whose elicitation handler declines, cancels or accepts — at once, as
 * headless hosts do, or after a person's pause — in both FANFOLD_APPROVAL_MODE modes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ElicitRequestSchema, type ElicitResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { approvalModeFrom, decideApproval, HEADLESS_ANSWER_MS, type FormAnswer } from '../../src/mcp/approval.js';
import { createServer } from '../../src/mcp/server.js';
import { call, commandSpec, connect, dataOf, fixtureRun, runDirs, stopQuietly, tempDir, textOf, type Connected } from './helpers.js';

describe('decideApproval (the rule)', () => {
  const at = (action: 'accept' | 'decline' | 'cancel', afterMs: number, yes = action === 'accept'): FormAnswer => ({ shown: true, action, yes, afterMs });
  const cases: Array<[string, FormAnswer, boolean | undefined, 'form' | 'flag', string]> = [
    ['no form shown, approve: true', { shown: false, why: 'no elicitation' }, true, 'form', 'approve_flag'],
    ['no form shown, no flag', { shown: false, why: 'no elicitation' }, undefined, 'form', 'needs_flag'],
    ['accepted', at('accept', 20), undefined, 'form', 'elicitation'],
    ['accepted with the box unticked, approve: true', at('accept', 5_000, false), true, 'flag', 'declined'],
    ['declined at once, approve: true, form mode', at('decline', 3), true, 'form', 'declined'],
    ['declined slowly, approve: true, form mode', at('decline', 9_000), true, 'form', 'declined'],
    ['declined at once, approve: true, flag mode', at('decline', 3), true, 'flag', 'approve_flag'],
    ['declined at once, no flag, flag mode', at('decline', 3), undefined, 'flag', 'needs_flag'],
    ['declined slowly, approve: true, flag mode', at('decline', 9_000), true, 'flag', 'declined'],
    ['cancelled at once, approve: true', at('cancel', 3), true, 'form', 'approve_flag'],
    ['cancelled at once, no flag', at('cancel', 3), false, 'form', 'needs_flag'],
    ['cancelled slowly, approve: true', at('cancel', 9_000), true, 'form', 'cancelled'],
    ['cancelled slowly, approve: true, flag mode', at('cancel', 9_000), true, 'flag', 'cancelled'],
  ];
  for (const [name, answer, approve, mode, expected] of cases) {
    it(name, () => {
      const d = decideApproval(answer, { approve, mode });
      expect(d.approved ? d.by : d.kind).toBe(expected);
    });
  }

  it('"at once" means faster than HEADLESS_ANSWER_MS unless told otherwise', () => {
    expect(decideApproval(at('cancel', HEADLESS_ANSWER_MS - 1), { approve: true, mode: 'form' }).approved).toBe(true);
    expect(decideApproval(at('cancel', HEADLESS_ANSWER_MS), { approve: true, mode: 'form' }).approved).toBe(false);
    expect(decideApproval(at('cancel', 50), { approve: true, mode: 'form', headlessAnswerMs: 10 }).approved).toBe(false);
  });

  it('reads FANFOLD_APPROVAL_MODE, default form, and refuses anything else naming the variable', () => {
    expect(approvalModeFrom({})).toBe('form');
    expect(approvalModeFrom({ FANFOLD_APPROVAL_MODE: '' })).toBe('form');
    expect(approvalModeFrom({ FANFOLD_APPROVAL_MODE: 'flag' })).toBe('flag');
    expect(approvalModeFrom({ FANFOLD_APPROVAL_MODE: ' FORM ' })).toBe('form');
    expect(() => approvalModeFrom({ FANFOLD_APPROVAL_MODE: 'yes' })).toThrow(/FANFOLD_APPROVAL_MODE must be 'form' or 'flag', got 'yes'/);
    expect(() => createServer({ root: '/tmp/x', cwd: '/tmp', env: { FANFOLD_APPROVAL_MODE: 'always' } })).toThrow(/FANFOLD_APPROVAL_MODE/);
  });
});

describe('the rule through a real MCP client', () => {
  let open: Connected[] = [];
  let dirs: string[] = [];
  afterEach(async () => {
    for (const c of open) {
      for (const id of runDirs(c.root)) await stopQuietly(c.root, id);
      await c.close().catch(() => {});
    }
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    open = [];
    dirs = [];
  });

  /**
   * A server (approval above 2 agents) and a client whose form handler answers `answers` in turn,
   * after `delayMs`. `headlessAnswerMs` is the real 1.5 s unless given.
   */
  async function setup(answers: ElicitResult[], o: { delayMs?: number; env?: NodeJS.ProcessEnv; headlessAnswerMs?: number } = {}) {
    const dir = tempDir('fanfold-approval-');
    dirs.push(dir);
    const asked: number[] = [];
    const c = await connect({
      root: path.join(dir, 'store'),
      cwd: dir,
      approvalAgentThreshold: 2,
      headlessAnswerMs: o.headlessAnswerMs ?? HEADLESS_ANSWER_MS,
      env: o.env ?? {},
      capabilities: { elicitation: {} },
      setup: (client) =>
        client.setRequestHandler(ElicitRequestSchema, async () => {
          asked.push(Date.now());
          if (o.delayMs) await new Promise((r) => setTimeout(r, o.delayMs));
          const a = answers.shift();
          if (!a) throw new Error('test: no answer left for this form');
          return a;
        }),
    });
    open.push(c);
    const { planId } = dataOf(await call(c.client, 'plan_workflow', { spec: commandSpec(3) }));
    return { ...c, planId: planId as string, asked };
  }

  it('a decline at once stands against approve: true (form mode, the default) and says how headless hosts opt in', async () => {
    const s = await setup([{ action: 'decline' }]);
    const r = await call(s.client, 'run_workflow', { planId: s.planId, approve: true });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/The user declined to start "mcp-test"; nothing was started/);
    expect(textOf(r)).toMatch(/approve: true does not override it/);
    expect(textOf(r)).toMatch(/FANFOLD_APPROVAL_MODE=flag/);
    expect(s.asked).toHaveLength(1);
    expect(runDirs(s.root)).toEqual([]);
    expect(s.logs.join('\n')).toMatch(/answered 'decline' after \d+ ms \(mode form\): the person's answer stands/);
  });

  it('a cancel at once (claude -p) lets approve: true start the run; without it the answer asks for the flag', async () => {
    const s = await setup([{ action: 'cancel' }, { action: 'cancel' }]);
    const without = await call(s.client, 'run_workflow', { planId: s.planId });
    expect(without.isError).toBe(true);
    expect(textOf(without)).toMatch(/cancelled the approval form at once \(\d+ ms\), so no person saw it/);
    expect(textOf(without)).toMatch(/run_workflow \{"planId":"p[a-z0-9]+","approve":true\}/);
    expect(runDirs(s.root)).toEqual([]);
    const started = await call(s.client, 'run_workflow', { planId: s.planId, approve: true, wait: 30 });
    expect(started.isError, textOf(started)).toBeFalsy();
    expect(dataOf(started).status).toBe('completed');
    expect(s.asked).toHaveLength(2);
  });

  it('with FANFOLD_APPROVAL_MODE=flag a decline at once lets approve: true start the run (codex exec)', async () => {
    const s = await setup([{ action: 'decline' }, { action: 'decline' }], { env: { FANFOLD_APPROVAL_MODE: 'flag' } });
    const without = await call(s.client, 'run_workflow', { planId: s.planId });
    expect(without.isError).toBe(true);
    expect(textOf(without)).toMatch(/declined the approval form at once \(\d+ ms\), so no person saw it/);
    expect(runDirs(s.root)).toEqual([]);
    const started = await call(s.client, 'run_workflow', { planId: s.planId, approve: true, wait: 30 });
    expect(started.isError, textOf(started)).toBeFalsy();
    expect(dataOf(started).status).toBe('completed');
  });

  it("a person's slow decline or dismissal stands against approve: true, also in flag mode", async () => {
    // 400 ms against a 100 ms threshold: a person's pace, with a wide margin on a busy machine.
    const s = await setup([{ action: 'decline' }, { action: 'cancel' }], { env: { FANFOLD_APPROVAL_MODE: 'flag' }, delayMs: 400, headlessAnswerMs: 100 });
    const declined = await call(s.client, 'run_workflow', { planId: s.planId, approve: true });
    expect(declined.isError).toBe(true);
    expect(textOf(declined)).toMatch(/The user declined to start/);
    expect(textOf(declined)).not.toMatch(/FANFOLD_APPROVAL_MODE/);
    const dismissed = await call(s.client, 'run_workflow', { planId: s.planId, approve: true });
    expect(dismissed.isError).toBe(true);
    expect(textOf(dismissed)).toMatch(/The user dismissed the approval form to start "mcp-test"; nothing was started/);
    expect(runDirs(s.root)).toEqual([]);
  });

  it('accept starts the run without any flag; an unticked box is a no even with approve: true', async () => {
    const s = await setup([{ action: 'accept', content: { approve: false } }, { action: 'accept', content: { approve: true } }]);
    const unticked = await call(s.client, 'run_workflow', { planId: s.planId, approve: true });
    expect(unticked.isError).toBe(true);
    expect(textOf(unticked)).toMatch(/declined/);
    expect(runDirs(s.root)).toEqual([]);
    const started = await call(s.client, 'run_workflow', { planId: s.planId, wait: 30 });
    expect(dataOf(started).status).toBe('completed');
  });

  it('a resume is asked under the same rule: a decline stands, a cancel at once lets approve: true resume', async () => {
    const s = await setup([{ action: 'decline' }, { action: 'cancel' }]);
    const runId = await fixtureRun(s.root, commandSpec(3), { status: 'failed', output: (_p, _t, i) => (i === 0 ? undefined : 'done') });
    const declined = await call(s.client, 'run_workflow', { resumeRunId: runId, approve: true });
    expect(declined.isError).toBe(true);
    expect(textOf(declined)).toMatch(new RegExp(`The user declined to resume run ${runId} of "mcp-test"`));
    const resumed = await call(s.client, 'run_workflow', { resumeRunId: runId, approve: true });
    expect(resumed.isError, textOf(resumed)).toBeFalsy();
    expect(dataOf(resumed)).toMatchObject({ runId, resumed: true });
    // Why poll rather than `wait`: right after the owner takes the lease, run.json may still say
    // `failed` from the last run, which a wait would take for the end.
    const deadline = Date.now() + 30_000;
    let status = '';
    while (Date.now() < deadline && status !== 'completed') {
      status = dataOf(await call(s.client, 'workflow_status', { runId })).status;
      if (status !== 'completed') await new Promise((r) => setTimeout(r, 200));
    }
    expect(status).toBe('completed');
  });

  it('the tool descriptions state the rule', async () => {
    const s = await setup([]);
    const { tools } = await s.client.listTools();
    const run = tools.find((t) => t.name === 'run_workflow')!;
    expect(run.description).toMatch(/answer is final \(approve: true never overrides a decline\)/);
    expect((run.inputSchema as any).properties.approve.description).toMatch(/never overrides a decline/);
  });
});
