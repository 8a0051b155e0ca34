/**
 * When real agents misbehave (issue 12), through `fanfold run` / `fanfold resume` with the pinned
 * CLIs against scripted model servers that play the misbehaving model:
 *
 * 1. A quota storm: the Responses server answers codex's usage-limit error (`usage_limit_reached`
 *    with a `resets_at`, which codex words "Try again at 11:42 PM.") once it has served 6 answers.
 *    40 tasks, maxConcurrent 4, onFailure continue: at most 4 agents fail with the limit, nothing
 *    further is started, the run is `paused` with the reason and `resumeAfter`; once the server
 *    recovers, `fanfold resume` completes it and nothing that had finished runs again.
 * 2. The idle watchdog: a model that never answers (the HTTP response is held open) leaves claude
 *    waiting in silence; the agent is killed as `stalled` and retried per `retries`.
 *
 * Quick on purpose (a few seconds of CLI time each); on by default, FANFOLD_E2E=0 turns them off.
 * Needs `npm run build`.
 */
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startAnthropicServer,
  toolResults,
  toolResultText,
  userText,
  type AnthropicReply,
  type AnthropicRequestBody,
  type AnthropicServer,
} from './support/anthropic-server.js';
import { ensureCli, REPO_ROOT, type InstalledCli } from './support/clis.js';
import { workflowSandbox, type WorkflowSandbox } from './support/env.js';
import { describeRun, runCli, runJournal, runRecords, type CliRun } from './support/run.js';
import { startResponsesServer, userInputText, type ResponsesReply, type ResponsesServer } from './support/responses-server.js';

const ENABLED = process.env.FANFOLD_E2E !== '0';
if (!ENABLED) console.warn('[fanfold e2e] SKIPPED tests/e2e/misbehave.test.ts: real CLIs are turned off here (FANFOLD_E2E=0).');

const MAIN = join(REPO_ROOT, 'dist', 'cli', 'main.js');
const MARK = /\[e2e:([\w-]+\/[\w-]+)\]/;
const hangForever = <T>(): Promise<T> => new Promise<T>(() => {});

interface Status {
  runId: string;
  status: string;
  dir: string;
  reason?: string;
  resumeAfter?: string;
  pausedRunners?: Array<{ runner: string; kind: string }>;
  agents?: Record<string, number>;
}

describe.skipIf(!ENABLED)('misbehaving agents through fanfold (real CLIs)', () => {
  const clis: Partial<Record<'claude' | 'codex', InstalledCli>> = {};
  let anth: AnthropicServer;
  let resp: ResponsesServer;
  let sb: WorkflowSandbox;
  let store: string;
  /** The Responses model's behaviour (the storm test sets it). */
  const storm = { limitAfter: Infinity, served: 0, answered: new Map<string, number>(), limited: [] as string[] };
  /** The Anthropic model's behaviour: refs whose first request it never answers. */
  const stall = { hangFirst: new Set<string>(), seen: new Map<string, number>() };
  /** Refs the Anthropic model reads a file for, then fails once with an overload (see the continuation test). */
  const readThenFail = new Set<string>();

  beforeAll(async () => {
    clis.claude = await ensureCli('claude');
    clis.codex = await ensureCli('codex');
    resp = await startResponsesServer((body): ResponsesReply => {
      const ref = MARK.exec(userInputText(body))?.[1] ?? '?';
      if (storm.served >= storm.limitAfter) {
        storm.limited.push(ref);
        // What the Codex backend sends when a plan's usage limit is reached; codex words it itself.
        return { error: { status: 429, type: 'usage_limit_reached', message: 'The usage limit has been reached', fields: { resets_at: Math.floor(Date.now() / 1000) + 3 } } };
      }
      storm.served++;
      storm.answered.set(ref, (storm.answered.get(ref) ?? 0) + 1);
      return `done ${ref}`;
    });
    anth = await startAnthropicServer((body): Promise<AnthropicReply> | AnthropicReply => {
      const ref = MARK.exec(userText(body))?.[1] ?? '?';
      const n = (stall.seen.get(ref) ?? 0) + 1;
      stall.seen.set(ref, n);
      if (stall.hangFirst.has(ref) && n === 1) return hangForever();
      if (readThenFail.has(ref)) {
        const results = toolResults(body);
        // No tool result in the conversation yet: read the file (the earlier conversation of a
        // continued attempt holds the result already, so it is read only once then).
        if (results.length === 0) return { tool: 'Read', input: { file_path: 'notes.txt' } };
        if (n === 2) return { error: { status: 529, type: 'overloaded_error', message: 'Overloaded (scripted, once)' } };
        return `the secret is ${/secret: (\S+)/.exec(toolResultText(results.at(-1)!))?.[1] ?? 'unknown'}`;
      }
      return `done ${ref}`;
    });
    sb = await workflowSandbox({ anthropicUrl: anth.baseUrl, responsesUrl: resp.baseUrl });
    store = join(sb.project, '.agent_workflows');
  }, 30 * 60_000);

  afterAll(async () => {
    await anth?.close();
    await resp?.close();
    await sb?.cleanup();
  });

  const env = (): Record<string, string> => ({ ...sb.env, FANFOLD_CLAUDE_BIN: clis.claude!.bin, FANFOLD_CODEX_BIN: clis.codex!.bin });

  async function fanfold(args: string[], timeoutMs = 170_000): Promise<{ run: CliRun; view: Status }> {
    const run = await runCli(process.execPath, [MAIN, '--store', store, ...args, '--json'], { cwd: sb.project, env: env(), timeoutMs });
    try {
      return { run, view: JSON.parse(run.stdout) as Status };
    } catch {
      throw new Error(`fanfold ${args[0]} printed no status JSON:\n${describeRun(run)}`);
    }
  }

  async function runSpec(name: string, spec: unknown) {
    const file = join(sb.root, `${name}.json`);
    await writeFile(file, JSON.stringify(spec, null, 2));
    return fanfold(['run', file]);
  }

  it('a quota storm: at most maxConcurrent codex agents fail with the usage limit, the run pauses; resume completes without rerunning', async () => {
    storm.limitAfter = 6;
    const tasks = Array.from({ length: 40 }, (_, i) => ({ id: `t${i + 1}`, prompt: `[e2e:map/t${i + 1}] Say done.` }));
    const { run, view } = await runSpec('storm', {
      version: 1,
      name: 'e2e-quota-storm',
      limits: { maxConcurrent: 4, retries: 2, retryBackoff: '100ms', agentTimeout: '90s' },
      agents: { cx: { runner: 'codex' } },
      phases: [{ id: 'map', agent: 'cx', onFailure: 'continue', tasks }],
    });
    resp.assertNoScriptErrors();
    expect(view.status, describeRun(run)).toBe('paused');
    expect(run.code).toBe(1);
    expect(view.reason).toMatch(/codex hit a usage limit/);
    expect(view.reason).toMatch(/Try again at/);
    // codex said when (to the minute): the reset lies within the next two minutes.
    expect(Date.parse(view.resumeAfter!)).toBeGreaterThan(Date.now() - 60_000);
    expect(Date.parse(view.resumeAfter!)).toBeLessThan(Date.now() + 2 * 60_000);
    expect(view.pausedRunners).toEqual([expect.objectContaining({ runner: 'codex', kind: 'quota' })]);

    const recs = await runRecords(view.dir);
    const quota = [...recs.values()].filter((r) => r.error?.type === 'quota');
    // No storm: only the agents already running when the limit hit met it.
    expect(quota.length).toBeGreaterThanOrEqual(1);
    expect(quota.length).toBeLessThanOrEqual(4);
    expect(storm.limited.length).toBe(quota.length);
    expect(resp.responseRequests.length).toBeLessThanOrEqual(6 + 4);
    // A usage limit is neither retried nor a work failure.
    const journal = await runJournal<{ type: string }>(view.dir);
    expect(journal.filter((e) => e.type === 'agent.retry_scheduled')).toHaveLength(0);
    expect(view.agents?.failed ?? 0).toBe(0);
    const finished = [...recs.values()].filter((r) => r.status === 'succeeded').map((r) => `${r.phaseId}/${r.taskId}`);
    expect(finished).toHaveLength(6);

    // The server recovers; resume finishes the rest and reuses what had finished.
    storm.limitAfter = Infinity;
    const again = await fanfold(['resume', view.runId]);
    expect(again.view.status, describeRun(again.run)).toBe('completed');
    expect(again.run.code).toBe(0);
    expect(storm.answered.size).toBe(40);
    expect([...storm.answered.values()].every((n) => n === 1), JSON.stringify(Object.fromEntries(storm.answered))).toBe(true);
    const after = await runRecords(view.dir);
    for (const ref of finished) expect([...after.keys()].filter((k) => k.startsWith(`${ref}#`)), ref).toEqual([`${ref}#1`]);
    console.log(`[fanfold e2e] quota storm: ${quota.length} agents met the limit, ${resp.responseRequests.length} requests in all, resumed to completed`);
  }, 300_000);

  it('a retry after a transient failure continues the claude session: the model gets the earlier conversation, not a new one', async () => {
    await sb.writeProjectFile('notes.txt', 'Notes\nsecret: OSPREY-41c9\n');
    readThenFail.add('cont/on').add('cont/off');
    const { run, view } = await runSpec('continue', {
      version: 1,
      name: 'e2e-continue',
      limits: { retries: 1, retryBackoff: '100ms', agentTimeout: '120s', maxConcurrent: 2 },
      agents: {
        cl: { runner: 'claude', model: 'claude-scripted', maxTurns: 6 },
        fresh: { runner: 'claude', model: 'claude-scripted', maxTurns: 6, continueSessions: false },
      },
      phases: [{ id: 'cont', tasks: [
        { id: 'on', agent: 'cl', prompt: '[e2e:cont/on] Read notes.txt and tell me its secret.' },
        { id: 'off', agent: 'fresh', prompt: '[e2e:cont/off] Read notes.txt and tell me its secret.' },
      ] }],
    });
    anth.assertNoScriptErrors();
    expect(view.status, describeRun(run)).toBe('completed');
    const recs = await runRecords(view.dir);
    const requestsOf = (ref: string) => anth.messageRequests.map((q) => q.body as AnthropicRequestBody).filter((b) => userText(b).includes(`[e2e:${ref}]`));

    // The attempt that met the overload kept its session in the run folder.
    const first = recs.get('cont/on#1')!;
    expect(first).toMatchObject({ status: 'failed', error: { type: 'model_api', retryable: true } });
    expect(first.session?.file).toBe('cont.on.1.claude.jsonl');
    const second = recs.get('cont/on#2')!;
    expect(second.status, JSON.stringify(second.error)).toBe('succeeded');
    expect(second.continuedFrom).toEqual({ attempt: 1, sessionId: first.sessionId });
    expect(second.output).toContain('OSPREY-41c9');
    // Through the model server: attempt 2's only request carried attempt 1's conversation — the
    // original prompt, the Read call and its result — plus the short continuation prompt.
    const on = requestsOf('cont/on');
    expect(on).toHaveLength(3); // read, fail; then one request for the whole second attempt
    const cont = on[2]!;
    expect(userText(cont)).toContain('[fanfold] Your previous attempt at this task was interrupted');
    expect(toolResults(cont).map(toolResultText).join('\n')).toContain('OSPREY-41c9');
    expect(toolResults(cont)).toHaveLength(1);

    // continueSessions: false starts over: attempt 2 asks to read the file again.
    const off2 = recs.get('cont/off#2')!;
    expect(off2.status).toBe('succeeded');
    expect(off2.continuedFrom).toBeUndefined();
    const off = requestsOf('cont/off');
    expect(off).toHaveLength(4);
    expect(userText(off[2]!)).not.toContain('[fanfold] Your previous attempt');
    expect(toolResults(off[2]!)).toHaveLength(0);
    // Nothing of the sub-agents' sessions is left in the CLI's own home: the run folder has them.
    const left = await readdir(join(sb.home, '.claude', 'projects'), { recursive: true }).catch(() => [] as string[]);
    expect(left.filter((f) => String(f).endsWith('.jsonl'))).toEqual([]);

    // Input tokens as the scripted server estimates them (4 bytes a token) over what each request
    // sends as input: system prompt, tool definitions and messages.
    const tokens = (bodies: AnthropicRequestBody[]) =>
      bodies.reduce((n, b) => n + Math.ceil(JSON.stringify([b.system ?? '', b.tools ?? [], b.messages]).length / 4), 0);
    const saved = tokens(off.slice(2)) - tokens(on.slice(2));
    expect(saved).toBeGreaterThan(0);
    console.log(
      `[fanfold e2e] continue: the continued retry sent ${on.length - 2} request (~${tokens(on.slice(2))} input tokens); ` +
        `the fresh retry sent ${off.length - 2} (~${tokens(off.slice(2))} input tokens) and read the file again: ~${saved} input tokens saved`,
    );
  }, 200_000);

  it("a gate's fix-2 continues fix-1's claude session: the fixer sees its earlier fix and the new failure", async () => {
    const { run, view } = await runSpec('gate', {
      version: 1,
      name: 'e2e-gate-continue',
      limits: { retries: 0, agentTimeout: '120s' },
      agents: { cl: { runner: 'claude', model: 'claude-scripted', maxTurns: 4 } },
      phases: [{
        id: 'g', agent: 'cl',
        tasks: [{ id: 'w', prompt: '[e2e:g/w] Say done.' }],
        // Fails twice (check-1, check-2), passes the third time.
        gate: { command: 'echo "check $FANFOLD_TASK_ID"; [ "$FANFOLD_TASK_ID" = check-3 ]', maxIterations: 3, fix: { agent: 'cl', prompt: '[e2e:g/fix] The check failed (run {{iteration}}):\n{{failure}}\nFix it.' } },
      }],
    });
    anth.assertNoScriptErrors();
    expect(view.status, describeRun(run)).toBe('completed');
    const recs = await runRecords(view.dir);
    const fix1 = recs.get('g/fix-1#1')!;
    const fix2 = recs.get('g/fix-2#1')!;
    expect(fix1.status).toBe('succeeded');
    expect(fix1.continuedFrom).toBeUndefined();
    expect(fix2.status).toBe('succeeded');
    expect(fix2.continuedFrom).toEqual({ attempt: 1, sessionId: fix1.sessionId, ref: 'g/fix-1' });
    // fix-2's request held fix-1's prompt and answer, then its own prompt with the new failure.
    const fixes = anth.messageRequests.map((q) => q.body as AnthropicRequestBody).filter((b) => userText(b).includes('[e2e:g/fix]'));
    expect(fixes).toHaveLength(2);
    const second = fixes[1]!;
    expect(userText(second)).toContain('(run 1)');
    expect(userText(second)).toContain('(run 2)');
    expect(JSON.stringify(second.messages)).toContain('done g/fix');
    expect(userText(fixes[0]!)).not.toContain('(run 2)');
  }, 200_000);

  it('a resume continues the session of a claude agent the run stop cut off', async () => {
    stall.hangFirst.add('cut/x');
    const file = join(sb.root, 'cut.json');
    await writeFile(file, JSON.stringify({
      version: 1, name: 'e2e-cut', limits: { retries: 0, agentTimeout: '120s' },
      agents: { cl: { runner: 'claude', model: 'claude-scripted', maxTurns: 2, idleTimeout: 0 } },
      phases: [{ id: 'cut', agent: 'cl', tasks: [{ id: 'x', prompt: '[e2e:cut/x] Say done.' }] }],
    }));
    const started = await fanfold(['run', file, '--detach']);
    const runId = started.view.runId;
    // The model has the request (claude wrote the prompt into its session): stop the run now.
    const deadline = Date.now() + 90_000;
    while ((stall.seen.get('cut/x') ?? 0) < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(stall.seen.get('cut/x')).toBe(1);
    const stopped = await fanfold(['stop', runId]);
    expect(stopped.view.status, describeRun(stopped.run)).toBe('stopped');
    const again = await fanfold(['resume', runId]);
    expect(again.view.status, describeRun(again.run)).toBe('completed');
    const recs = await runRecords(again.view.dir);
    const first = recs.get('cut/x#1')!;
    expect(first.status).toBe('cancelled');
    expect(first.session?.file).toBe('cut.x.1.claude.jsonl');
    expect(recs.get('cut/x#2')!.continuedFrom).toEqual({ attempt: 1, sessionId: first.sessionId });
    const reqs = anth.messageRequests.map((q) => q.body as AnthropicRequestBody).filter((b) => userText(b).includes('[e2e:cut/x]'));
    expect(reqs).toHaveLength(2);
    expect(userText(reqs[1]!)).toContain('[fanfold] Your previous attempt at this task was interrupted (it was stopped');
  }, 200_000);

  it('a model that never answers: the silent claude agent is killed as stalled and retried per retries', async () => {
    stall.hangFirst.add('idle/x');
    const t0 = Date.now();
    const { run, view } = await runSpec('stall', {
      version: 1,
      name: 'e2e-stall',
      limits: { retries: 1, retryBackoff: '100ms', agentTimeout: '120s' },
      agents: { cl: { runner: 'claude', model: 'claude-scripted', maxTurns: 2, idleTimeout: '4s' } },
      phases: [{ id: 'idle', agent: 'cl', tasks: [{ id: 'x', prompt: '[e2e:idle/x] Say done.' }] }],
    });
    anth.assertNoScriptErrors();
    expect(view.status, describeRun(run)).toBe('completed');
    // Far below agentTimeout: the watchdog, not the timeout, ended the first attempt.
    expect(Date.now() - t0).toBeLessThan(90_000);
    const recs = await runRecords(view.dir);
    const first = recs.get('idle/x#1')!;
    expect(first).toMatchObject({ status: 'failed', error: { type: 'stalled', retryable: true } });
    expect(first.error!.message).toMatch(/no output and no CPU time for 4s/);
    expect(recs.get('idle/x#2')).toMatchObject({ status: 'succeeded' });
    expect(stall.seen.get('idle/x')).toBe(2);
    // The stalled attempt's session (its prompt, sent before the model went silent) was continued.
    expect(recs.get('idle/x#2')!.continuedFrom).toEqual({ attempt: 1, sessionId: first.sessionId });
  }, 200_000);
});
