/**
 * workflow_status, query_workflow and the resources through a real SDK Client: waiting with
 * progress notifications, cancellation, agent rows, digests and report, resume, search hits, ref
 * paging, and the error paths.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Progress } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { bytes, call, commandSpec, connect, dataOf, fixtureRun, stopQuietly, textOf, type Connected } from './helpers.js';

let open: Connected[] = [];
const started: { root: string; runId: string }[] = [];
async function conn(...args: Parameters<typeof connect>): Promise<Connected> {
  const c = await connect(...args);
  open.push(c);
  return c;
}
afterEach(async () => {
  for (const r of started.splice(0)) await stopQuietly(r.root, r.runId);
  for (const c of open) await c.close().catch(() => {});
  open = [];
});

async function start(c: Connected, spec: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await call(c.client, 'run_workflow', { spec, ...extra });
  expect(r.isError, textOf(r)).toBeFalsy();
  const runId = dataOf(r).runId as string;
  started.push({ root: c.root, runId });
  return runId;
}

const sleepy = (secs: number) => ['sh', '-c', `sleep ${secs}; echo done $FANFOLD_TASK_ID`];

describe('workflow_status', () => {
  it('lists no runs in an empty store, then the recent runs newest first', async () => {
    const c = await conn();
    const empty = await call(c.client, 'workflow_status', {});
    expect(dataOf(empty)).toMatchObject({ runs: [], totalRuns: 0 });
    expect(textOf(empty)).toMatch(/No runs yet/);
    const a = await fixtureRun(c.root, commandSpec(2, { name: 'first' }), { status: 'completed' });
    await new Promise((r) => setTimeout(r, 5));
    const b = await fixtureRun(c.root, commandSpec(3, { name: 'second' }));
    const list = await call(c.client, 'workflow_status', {});
    const d = dataOf(list);
    expect(d.totalRuns).toBe(2);
    expect(d.runs.map((r: any) => r.runId)).toEqual([b, a]);
    expect(d.runs[0]).toMatchObject({ name: 'second', status: 'interrupted', total: 3 });
    expect(d.runs[1]).toMatchObject({ name: 'first', status: 'completed', done: 2, total: 2 });
    expect(textOf(list)).toContain(`runId ${a}`);
    expect(textOf(list)).toContain(`runId ${b}`);
  });

  it('refuses malformed and unknown run ids with guidance', async () => {
    const c = await conn();
    for (const runId of ['../x', '/etc', 'a b', '']) {
      const r = await call(c.client, 'workflow_status', { runId });
      expect(r.isError, runId).toBe(true);
      expect(textOf(r)).toMatch(/invalid run id/);
    }
    const r = await call(c.client, 'workflow_status', { runId: 'nosuchrun' });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/unknown run 'nosuchrun'.*\n.*workflow_status without runId/);
    const tooLong = await call(c.client, 'workflow_status', { runId: 'x', wait: 51 });
    expect(tooLong.isError).toBe(true);
    expect(textOf(tooLong)).toMatch(/wait/);
  });

  it('waits with progress notifications until the run ends, then answers with the final status', async () => {
    const c = await conn();
    const runId = await start(c, commandSpec(8, { maxConcurrent: 2, command: sleepy(0.4) }));
    const progress: (Progress & { at: number })[] = [];
    const r = await call(c.client, 'workflow_status', { runId, wait: 40 }, { onprogress: (p) => progress.push({ ...p, at: Date.now() }) });
    const d = dataOf(r);
    expect(d.status).toBe('completed');
    expect(d.agents).toMatchObject({ total: 8, succeeded: 8 });
    expect(d.waitedMs).toBeGreaterThan(500);
    expect(progress.length).toBeGreaterThanOrEqual(2);
    for (const p of progress) {
      expect(p.total).toBe(8);
      expect(p.message).toMatch(/^\d+\/8 agents done .*running/);
    }
    for (let i = 1; i < progress.length; i++) expect(progress[i]!.progress).toBeGreaterThan(progress[i - 1]!.progress);
    expect(progress.some((p) => p.progress >= 1 && p.progress < 8)).toBe(true); // seen mid-run
    expect(textOf(r)).toContain(`runId: ${runId}`);
    expect(textOf(r)).toMatch(/: completed/);
    expect(textOf(r)).toMatch(/Next: The run is complete/);
  });

  it('sends a progress notification at least every few seconds while nothing changes', async () => {
    const c = await conn();
    const runId = await start(c, commandSpec(1, { command: sleepy(7) }));
    const at: number[] = [];
    const t0 = Date.now();
    const r = await call(c.client, 'workflow_status', { runId, wait: 30 }, { onprogress: () => at.push(Date.now()) });
    expect(dataOf(r).status).toBe('completed');
    expect(at.length).toBeGreaterThanOrEqual(3);
    const gaps = [at[0]! - t0, ...at.slice(1).map((t, i) => t - at[i]!)];
    // The heartbeat is 3 s; polling adds up to 0.25 s. The contract is ≤ 10 s.
    expect(Math.max(...gaps)).toBeLessThan(4000);
  });

  it('stops waiting when the client cancels the request', async () => {
    const c = await conn();
    const runId = await start(c, commandSpec(1, { command: sleepy(30) }));
    const ctl = new AbortController();
    const t0 = Date.now();
    const pending = call(c.client, 'workflow_status', { runId, wait: 50 }, { signal: ctl.signal, onprogress: () => {} });
    setTimeout(() => ctl.abort('user pressed Esc'), 700);
    await expect(pending).rejects.toThrow();
    expect(Date.now() - t0).toBeLessThan(3000);
    // The server side noticed too, and stopped polling.
    const deadline = Date.now() + 2000;
    while (!c.logs.some((l) => l.includes(`wait on run ${runId} cancelled`)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(c.logs.join('\n')).toMatch(new RegExp(`wait on run ${runId} cancelled by the client after \\d+ ms`));
    const ms = Number(/after (\d+) ms/.exec(c.logs.find((l) => l.includes('cancelled'))!)![1]);
    expect(ms).toBeLessThan(2000);
    // And the run itself goes on: cancelling a wait is not stopping a run.
    expect(dataOf(await call(c.client, 'workflow_status', { runId })).status).toBe('running');
  });

  it("lists per-agent rows with refs, paged, with detail 'agents'", async () => {
    const c = await conn({ approvalAgentThreshold: 100 });
    const runId = await start(c, commandSpec(60, { maxConcurrent: 16 }), { wait: 40 });
    const p1 = await call(c.client, 'workflow_status', { runId, detail: 'agents' });
    const d1 = dataOf(p1);
    expect(d1.agentRows.rows).toHaveLength(50);
    expect(d1.agentRows).toMatchObject({ total: 60, offset: 0, nextOffset: 50 });
    expect(d1.agentRows.rows[0]).toMatchObject({ ref: `${runId}/work/t0`, phaseId: 'work', taskId: 't0', status: 'succeeded', attempt: 1 });
    expect(textOf(p1)).toContain(`- ${runId}/work/t0: succeeded, attempt 1`);
    expect(textOf(p1)).toMatch(/"detail":"agents","offset":50/);
    const p2 = dataOf(await call(c.client, 'workflow_status', { runId, detail: 'agents', offset: 50 }));
    expect(p2.agentRows.rows).toHaveLength(10);
    expect(p2.agentRows.nextOffset).toBeNull();
    expect(p2.agentRows.rows[9].taskId).toBe('t59');
    const past = await call(c.client, 'workflow_status', { runId, detail: 'agents', offset: 61 });
    expect(past.isError).toBe(true);
    expect(textOf(past)).toMatch(/offset 61 is past the last agent: run \S+ has 60/);
  });

  it("shows running and pending agents of a live run, and failure causes", async () => {
    const c = await conn();
    const runId = await start(c, commandSpec(3, { maxConcurrent: 1, command: sleepy(30) }));
    // The owner holds the lease a moment before it dispatches the first agent: poll until it has.
    let d: any;
    for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
      d = dataOf(await call(c.client, 'workflow_status', { runId, detail: 'agents' }));
      if (d.agentRows.rows[0].status !== 'pending') break;
    }
    expect(d.status).toBe('running');
    expect(d.agentRows.rows.map((r: any) => r.status)).toEqual(['running', 'pending', 'pending']);

    const f = await conn();
    const failing = await start(f, commandSpec(1, { command: ['sh', '-c', 'echo boom >&2; exit 3'] }), { wait: 30 });
    const fd = dataOf(await call(f.client, 'workflow_status', { runId: failing, detail: 'agents' }));
    expect(fd.status).toBe('failed');
    expect(fd.agentRows.rows[0].status).toBe('failed');
    expect(fd.agentRows.rows[0].cause).toMatch(/3/);
    expect(fd.nextStep).toMatch(/resume with run_workflow \{"resumeRunId":"[a-z0-9]+"\}/);
  });

  it('includes the phase digests and, once ended, the report', async () => {
    const c = await conn();
    const runId = await fixtureRun(c.root, commandSpec(2, { join: true }), {
      status: 'completed',
      digest: (p) => (p === 'work' ? 'DIGEST-WORK: both items are fine' : 'DIGEST-JOIN: all joined'),
      report: '# Report\n\nREPORT-BODY: everything is fine.\n',
      spend: { usd: 0.1234, tokens: 4321 },
    });
    const r = await call(c.client, 'workflow_status', { runId });
    const d = dataOf(r);
    expect(d.digest).toMatch(/## work — Work items \(completed\)\nDIGEST-WORK/);
    expect(d.digest).toMatch(/## join \(completed\)\nDIGEST-JOIN/);
    expect(d.report).toContain('REPORT-BODY');
    expect(d.reportPath).toBe(path.join(c.root, runId, 'report.md'));
    expect(d.spend).toEqual({ usd: 0.1234, tokens: 4321 });
    expect(textOf(r)).toContain('spend so far: $0.12, 4321 tokens');
    expect(d.phases[0].digest).toBeUndefined(); // per-phase digests only with detail 'phases'
    expect(textOf(r)).toContain('DIGEST-WORK');
    expect(textOf(r)).toContain('REPORT-BODY');
    const phases = dataOf(await call(c.client, 'workflow_status', { runId, detail: 'phases' }));
    expect(phases.phases[0].digest).toBe('DIGEST-WORK: both items are fine');
  });

  it('reports a run whose owner died as interrupted, and resumes it with run_workflow', async () => {
    const c = await conn();
    const runId = await fixtureRun(c.root, commandSpec(3), { output: (_p, _t, i) => (i === 0 ? 'first done' : undefined) });
    const s = dataOf(await call(c.client, 'workflow_status', { runId }));
    expect(s.status).toBe('interrupted');
    expect(s.nextStep).toContain(`run_workflow {"resumeRunId":"${runId}"}`);
    const r = await call(c.client, 'run_workflow', { resumeRunId: runId, wait: 30 });
    expect(r.isError, textOf(r)).toBeFalsy();
    expect(dataOf(r)).toMatchObject({ runId, status: 'completed', resumed: true });
    expect(textOf(r)).toMatch(/resumed in the background/);
    // The task that had finished was reused, not run again.
    const first = await call(c.client, 'query_workflow', { ref: `${runId}/work/t0` });
    expect(dataOf(first).text).toBe('first done');
    const again = await call(c.client, 'run_workflow', { resumeRunId: runId });
    expect(again.isError).toBe(true);
    expect(textOf(again)).toMatch(/already completed; nothing to resume/);
  });

  it('refuses to resume a run whose owner is live', async () => {
    const c = await conn();
    const runId = await start(c, commandSpec(1, { command: sleepy(30) }));
    const r = await call(c.client, 'run_workflow', { resumeRunId: runId });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(new RegExp(`run ${runId} is still running \\(owner pid \\d+`));
  });

  it('resuming a big plan needs approval again', async () => {
    const c = await conn({ approvalAgentThreshold: 2 });
    const runId = await fixtureRun(c.root, commandSpec(3), { output: () => undefined });
    const r = await call(c.client, 'run_workflow', { resumeRunId: runId });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toContain(`run_workflow {"resumeRunId":"${runId}","approve":true}`);
  });
});

describe('query_workflow', () => {
  it('finds hits with snippets and refs, filters by run and phase, and pages', async () => {
    const c = await conn();
    const runId = await start(c, commandSpec(5, { join: true }), { wait: 30 });
    const other = await start(c, commandSpec(2, { name: 'other' }), { wait: 30 });
    const all = dataOf(await call(c.client, 'query_workflow', { query: 'marker' }));
    expect(all.total).toBe(8);
    const r = await call(c.client, 'query_workflow', { query: 'marker', runId, limit: 2 });
    const d = dataOf(r);
    expect(d.total).toBe(6);
    expect(d.hits).toHaveLength(2);
    expect(d.nextOffset).toBe(2);
    for (const h of d.hits) {
      expect(h.runId).toBe(runId);
      expect(h.ref).toBe(`${runId}/${h.phaseId}/${h.taskId}`);
      expect(h.snippet).toContain('**marker**');
      expect(h.score).toBeGreaterThan(0);
      expect(textOf(r)).toContain(`ref ${h.ref}`);
    }
    expect(textOf(r)).toMatch(/more hits with offset 2/);
    const last = dataOf(await call(c.client, 'query_workflow', { query: 'marker', runId, limit: 20, offset: 4 }));
    expect(last.hits).toHaveLength(2);
    expect(last.nextOffset).toBeNull();
    const phase = dataOf(await call(c.client, 'query_workflow', { query: 'marker', runId, phaseId: 'join' }));
    expect(phase.hits.map((h: any) => h.ref)).toEqual([`${runId}/join/all`]);
    const inOther = dataOf(await call(c.client, 'query_workflow', { query: 'marker', runId: other }));
    expect(inOther.hits.map((h: any) => h.runId)).toEqual([other, other]);
    expect(dataOf(await call(c.client, 'query_workflow', { query: 'nothingmatchesthis' })).hits).toEqual([]);
  });

  it('takes prefix, fuzzy and status like `fanfold query`', async () => {
    const c = await conn();
    // t1 fails (exit 3) after writing; the others succeed. Every output says "injection".
    const command = ['sh', '-c', 'echo "possible injection in $FANFOLD_TASK_ID"; [ "$FANFOLD_TASK_ID" != t1 ] || exit 3'];
    const runId = await start(c, commandSpec(3, { command }), { wait: 30 });
    const exact = dataOf(await call(c.client, 'query_workflow', { query: 'inj', runId }));
    expect(exact.total).toBe(0);
    const prefix = dataOf(await call(c.client, 'query_workflow', { query: 'inj', runId, prefix: true }));
    expect(prefix.total).toBe(3);
    const typo = dataOf(await call(c.client, 'query_workflow', { query: 'injecton', runId }));
    expect(typo.total).toBe(0);
    const fuzzy = dataOf(await call(c.client, 'query_workflow', { query: 'injecton', runId, fuzzy: true }));
    expect(fuzzy.total).toBe(3);
    const failed = await call(c.client, 'query_workflow', { query: 'injection', runId, status: 'failed' });
    expect(dataOf(failed).hits.map((h: any) => h.ref)).toEqual([`${runId}/work/t1`]);
    expect(textOf(failed)).toContain('status failed');
    const ok = dataOf(await call(c.client, 'query_workflow', { query: 'injection', runId, status: 'succeeded' }));
    expect(ok.hits.map((h: any) => h.taskId).sort()).toEqual(['t0', 't2']);
    const bad = await call(c.client, 'query_workflow', { query: 'injection', status: 'broken' });
    expect(bad.isError).toBe(true);
    expect(textOf(bad)).toMatch(/status/);
  });

  it("pages through one agent's whole output by ref, multi-byte text included", async () => {
    const c = await conn();
    const big = Array.from({ length: 3000 }, (_, i) => `line ${i} é漢字😀 ${'x'.repeat(i % 40)}`).join('\n');
    const runId = await fixtureRun(c.root, commandSpec(1), { output: () => big, status: 'completed' });
    let offset: number | null = 0;
    let text = '';
    let pages = 0;
    while (offset !== null) {
      const r = await call(c.client, 'query_workflow', { ref: `${runId}/work/t0`, offset });
      expect(r.isError, textOf(r)).toBeFalsy();
      const d = dataOf(r);
      expect(d.ref).toBe(`${runId}/work/t0`);
      expect(d.offset).toBe(offset);
      expect(bytes(textOf(r))).toBeLessThanOrEqual(40 * 1024);
      expect(bytes(JSON.stringify(d))).toBeLessThanOrEqual(40 * 1024);
      if (d.nextOffset !== null) expect(textOf(r)).toContain(`query_workflow {"ref":"${runId}/work/t0","offset":${d.nextOffset}}`);
      text += d.text;
      offset = d.nextOffset;
      pages++;
    }
    expect(pages).toBeGreaterThan(3);
    expect(text).toBe(big);
    // The URI form of a ref works too.
    const uri = dataOf(await call(c.client, 'query_workflow', { ref: `fanfold://runs/${runId}/agents/work/t0` }));
    expect(uri.text.startsWith('line 0')).toBe(true);
  });

  it('refuses bad refs, unknown runs, missing queries and out-of-range options', async () => {
    const c = await conn();
    const runId = await fixtureRun(c.root, commandSpec(1), { status: 'completed' });
    for (const ref of ['../x/y', `${runId}/../t0`, `${runId}/work`, 'a/b/c/d', `${runId}/work/t0\u0000`]) {
      const r = await call(c.client, 'query_workflow', { ref });
      expect(r.isError, ref).toBe(true);
      expect(textOf(r)).toMatch(/expected a ref/);
    }
    const unknown = await call(c.client, 'query_workflow', { ref: 'nosuchrun/work/t0' });
    expect(unknown.isError).toBe(true);
    expect(textOf(unknown)).toMatch(/no run 'nosuchrun'/);
    const noTask = await call(c.client, 'query_workflow', { ref: `${runId}/work/t9` });
    expect(noTask.isError).toBe(true);
    expect(textOf(noTask)).toMatch(/no agent record for task 'work\/t9'/);
    const past = await call(c.client, 'query_workflow', { ref: `${runId}/work/t0`, offset: 10_000 });
    expect(past.isError).toBe(true);
    expect(textOf(past)).toMatch(/offset/);
    const noQuery = await call(c.client, 'query_workflow', {});
    expect(noQuery.isError).toBe(true);
    expect(textOf(noQuery)).toMatch(/pass query \(words to search for\), or ref/);
    const badRun = await call(c.client, 'query_workflow', { query: 'x', runId: '../etc' });
    expect(badRun.isError).toBe(true);
    expect(textOf(badRun)).toMatch(/invalid run id/);
    const badPhase = await call(c.client, 'query_workflow', { query: 'x', phaseId: 'a/b' });
    expect(badPhase.isError).toBe(true);
    expect(textOf(badPhase)).toMatch(/invalid phase id/);
    const tooMany = await call(c.client, 'query_workflow', { query: 'x', limit: 21 });
    expect(tooMany.isError).toBe(true);
    expect(textOf(tooMany)).toMatch(/limit/);
    const unknownRun = await call(c.client, 'query_workflow', { query: 'x', runId: 'nosuchrun' });
    expect(unknownRun.isError).toBe(true);
    expect(textOf(unknownRun)).toMatch(/no run 'nosuchrun'/);
  });
});

describe('resources', () => {
  it('reads the run list, a run and an agent output', async () => {
    const c = await conn();
    const runId = await fixtureRun(c.root, commandSpec(2), {
      status: 'completed',
      digest: () => 'THE-DIGEST',
      report: '# R\n\nTHE-REPORT\n',
      output: (_p, t) => `hello from ${t}`,
    });
    const list = await c.client.readResource({ uri: 'fanfold://runs' });
    expect((list.contents[0] as { text: string }).text).toContain(`runId ${runId}`);
    const templ = await c.client.listResources();
    expect(templ.resources.map((r) => r.uri)).toContain(`fanfold://runs/${runId}`);
    const run = await c.client.readResource({ uri: `fanfold://runs/${runId}` });
    const text = (run.contents[0] as { text: string }).text;
    expect(text).toMatch(new RegExp(`^# Run ${runId}: mcp-test`));
    expect(text).toContain('status: completed');
    expect(text).toContain('THE-DIGEST');
    expect(text).toContain('THE-REPORT');
    const out = await c.client.readResource({ uri: `fanfold://runs/${runId}/agents/work/t1` });
    expect((out.contents[0] as { text: string }).text).toBe('hello from t1');
  });

  it('bounds a big output and says how to read the rest', async () => {
    const c = await conn();
    const big = 'y'.repeat(100_000);
    const runId = await fixtureRun(c.root, commandSpec(1), { output: () => big });
    const out = await c.client.readResource({ uri: `fanfold://runs/${runId}/agents/work/t0` });
    const text = (out.contents[0] as { text: string }).text;
    expect(bytes(text)).toBeLessThanOrEqual(40 * 1024);
    expect(text).toMatch(/read the rest with query_workflow \{"ref":"[a-z0-9]+\/work\/t0","offset":\d+\}/);
  });

  it('refuses bad and unknown ids in URIs', async () => {
    const c = await conn();
    const runId = await fixtureRun(c.root, commandSpec(1));
    for (const uri of ['fanfold://runs/..%2F..%2Fetc', 'fanfold://runs/nosuchrun', `fanfold://runs/${runId}/agents/..%2Fx/t0`, `fanfold://runs/${runId}/agents/work/nosuch`, 'fanfold://runs/%E0%A4%A']) {
      await expect(c.client.readResource({ uri }), uri).rejects.toThrow(/invalid|unknown|no agent record|percent-encoding|not found/i);
    }
  });
});

describe('store layout', () => {
  it('keeps plans out of the run listing', async () => {
    const c = await conn();
    await call(c.client, 'plan_workflow', { spec: commandSpec(1) });
    expect(fs.existsSync(path.join(c.root, '.plans'))).toBe(true);
    expect(dataOf(await call(c.client, 'workflow_status', {})).totalRuns).toBe(0);
  });
});
