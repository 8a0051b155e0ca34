/**
 * fanfold with REAL sub-agents: the pinned claude, codex and pi CLIs, run by fanfold's own engine
 * (`node dist/cli/main.js run spec.yaml` in a temp project), against scripted model servers on
 * 127.0.0.1. On by default; FANFOLD_E2E=0 turns them off (loudly) (CLIs installed on demand; `dist/` must be built: npm run build).
 *
 * 1. A 3-phase workflow in which every runner kind reads a file of the project with a real tool
 *    call and answers with structured output; later phases get the digests and the context file;
 *    a project `.claude/agents/` profile and a bundled profile run as agents; a model error on the
 *    first attempt is retried by the engine. The overhead fanfold adds per agent is measured here.
 * 2. Failures through the engine: model errors (pi exits 0!), max turns, hung agents timed out
 *    with their whole process group killed.
 * 3. The runners directly, with the real CLIs: invalid structured output refused and then fixed
 *    on a retry that carries the validation errors; sub-agents querying the finished run over MCP.
 */
import { readFile, stat, writeFile, chmod, mkdir } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClaudeRunner } from '../../src/runners/claude.js';
import { CodexRunner } from '../../src/runners/codex.js';
import { PiRunner } from '../../src/runners/pi.js';
import type { Runner, RunnerInput, RunnerResult } from '../../src/runners/types.js';
import type { AgentDef } from '../../src/spec/types.js';
import type { AgentRecord } from '../../src/store/types.js';
import {
  startAnthropicServer,
  toolNames,
  toolResults,
  toolResultText,
  userText,
  type AnthropicReply,
  type AnthropicRequestBody,
  type AnthropicServer,
} from './support/anthropic-server.js';
import { ensureCli, REPO_ROOT, type InstalledCli } from './support/clis.js';
import { workflowSandbox, type WorkflowSandbox } from './support/env.js';
import type { RecordedRequest } from './support/http-util.js';
import { describeRun, runCli, runJournal, runRecords, type CliRun } from './support/run.js';
import {
  functionOutputs,
  startResponsesServer,
  userInputText,
  type ResponsesReply,
  type ResponsesRequestBody,
  type ResponsesServer,
} from './support/responses-server.js';

const ENABLED = process.env.FANFOLD_E2E !== '0';
if (!ENABLED) {
  console.warn(
    '[fanfold e2e] SKIPPED tests/e2e/workflow.test.ts: workflows of real claude/codex/pi sub-agents are turned off here (FANFOLD_E2E=0) ' +
      '(CLIs installed on demand into the CLI cache; build first: npm run build).',
  );
}

const MAIN = join(REPO_ROOT, 'dist', 'cli', 'main.js');
type Kind = 'claude' | 'codex' | 'pi';

/** Project files the agents read: a secret only the file holds, and its line count. */
const FILES: Record<string, { word: string; lines: number }> = {
  'alpha.txt': { word: 'PELICAN-7f3a91', lines: 4 },
  'beta.txt': { word: 'HERON-0c44d2', lines: 5 },
  'gamma.txt': { word: 'IBIS-9e21aa', lines: 6 },
  'delta.txt': { word: 'EGRET-55b0f3', lines: 4 },
  'epsilon.txt': { word: 'STORK-12ad7c', lines: 5 },
  'zeta.txt': { word: 'CRANE-e8f019', lines: 6 },
  'omega.txt': { word: 'KESTREL-3b7d65', lines: 4 },
};
function fileText(name: string): string {
  const f = FILES[name]!;
  const lines = [`Notes kept in ${name}`, `secret: ${f.word}`, `lines: ${f.lines}`];
  while (lines.length < f.lines) lines.push(`filler line ${lines.length + 1}`);
  return lines.join('\n') + '\n';
}
const answerOf = (name: string) => ({ file: name, word: FILES[name]!.word, lines: FILES[name]!.lines });

const SCHEMA = {
  type: 'object',
  properties: { file: { type: 'string' }, word: { type: 'string' }, lines: { type: 'integer' } },
  required: ['file', 'word', 'lines'],
  additionalProperties: false,
};
const SKEPTIC_SCHEMA = {
  type: 'object',
  properties: { refuted: { type: 'boolean' }, reasons: { type: 'array', items: { type: 'string' }, minItems: 1 } },
  required: ['refuted', 'reasons'],
};

const MARK = /\[e2e:([\w-]+\/[\w-]+)\]/;
const FILE_IN = /Read the file ([\w.-]+)/;
const PI_JSON_ASK = 'end your answer with exactly one JSON value';
const FEEDBACK = 'Your previous attempt at this task was rejected';

/** What the model does for one task (by the `[e2e:phase/task]` mark in its prompt). */
type Behaviour = 'normal' | 'error500' | 'loopTools' | 'hang' | 'invalidThenFixed' | 'error529Once' | 'skeptic' | 'mcpQuery';
const BEHAVIOUR: Record<string, Behaviour> = {
  'gather/claude': 'error529Once',
  'report/skeptic': 'skeptic',
  'boom/claude-error': 'error500',
  'boom/codex-error': 'error500',
  'boom/pi-error': 'error500',
  'boom/claude-turns': 'loopTools',
  'boom/pi-turns': 'loopTools',
  'boom/claude-hung': 'hang',
  'boom/codex-hung': 'hang',
  'direct/invalid': 'invalidThenFixed',
  'direct/mcp': 'mcpQuery',
};
const seen529 = new Set<string>();
const hangForever = <T>(): Promise<T> => new Promise<T>(() => {});

/** Parses "secret: X" and "lines: N" out of whatever a tool returned. */
function readAnswer(name: string, toolText: string): { file: string; word: string; lines: number } {
  const word = /secret: (\S+)/.exec(toolText)?.[1];
  const lines = Number(/lines: (\d+)/.exec(toolText)?.[1]);
  if (!word || !lines) throw new Error(`scripted model: the tool result did not hold ${name}: ${toolText.slice(0, 300)}`);
  return { file: name, word, lines };
}

/** The Anthropic-side model for claude (requests with ?beta=true) and pi. */
async function anthropicModel(body: AnthropicRequestBody, _turn: number, req: RecordedRequest): Promise<AnthropicReply> {
  const text = userText(body);
  const ref = MARK.exec(text)?.[1] ?? '';
  const file = FILE_IN.exec(text)?.[1] ?? 'alpha.txt';
  const claude = req.query.beta === 'true';
  const results = toolResults(body);
  const behaviour = BEHAVIOUR[ref] ?? 'normal';
  const readCall = claude ? { tool: 'Read', input: { file_path: file } } : { tool: 'read', input: { path: file } };
  const answer = (value: unknown): AnthropicReply => {
    if (claude && toolNames(body).includes('StructuredOutput')) return { text: 'Done.', toolCalls: [{ tool: 'StructuredOutput', input: value as Record<string, unknown> }] };
    if (!claude && text.includes(PI_JSON_ASK)) return `Here is the answer.\n\`\`\`json\n${JSON.stringify(value)}\n\`\`\``;
    return JSON.stringify(value);
  };
  switch (behaviour) {
    case 'error500':
      return { error: { status: 500, type: 'api_error', message: `scripted failure for ${ref}` } };
    case 'error529Once':
      if (!seen529.has(ref)) {
        seen529.add(ref);
        return { error: { status: 529, type: 'overloaded_error', message: 'Overloaded (scripted, first attempt only)' } };
      }
      break;
    case 'loopTools':
      return readCall;
    case 'hang':
      return hangForever();
    case 'skeptic':
      if (results.length === 0) return readCall;
      return answer({ refuted: false, reasons: [`${file} says secret: ${readAnswer(file, toolResultText(results.at(-1)!)).word}, as claimed`] });
    case 'invalidThenFixed':
      if (results.length === 0) return readCall;
      if (!text.includes(FEEDBACK)) {
        return claude ? { tool: 'StructuredOutput', input: { file, word: 7 } } : 'The word is probably a bird. No JSON today.';
      }
      break;
    case 'mcpQuery':
      if (results.length === 0) return { tool: 'mcp__fanfold__query_workflow', input: { query: FILES['alpha.txt']!.word } };
      return `The earlier run says: ${toolResultText(results.at(-1)!).slice(0, 2000)}`;
    default:
      break;
  }
  if (results.length === 0) return readCall;
  return answer(readAnswer(file, toolResultText(results.at(-1)!)));
}

/** The Responses-side model for codex. */
async function responsesModel(body: ResponsesRequestBody): Promise<ResponsesReply> {
  const text = userInputText(body);
  const ref = MARK.exec(text)?.[1] ?? '';
  const file = FILE_IN.exec(text)?.[1] ?? 'alpha.txt';
  const outputs = functionOutputs(body);
  switch (BEHAVIOUR[ref] ?? 'normal') {
    case 'error500':
      return { error: { status: 500, message: `scripted failure for ${ref}`, type: 'server_error' } };
    case 'hang':
      return hangForever();
    case 'invalidThenFixed':
      if (outputs.length > 0 && !text.includes(FEEDBACK)) return JSON.stringify({ file, word: 7, lines: 'many' });
      break;
    case 'mcpQuery': {
      const searched = body.input.some((i) => i.type === 'tool_search_output');
      if (!searched) {
        return { items: [{ type: 'tool_search_call', call_id: 'ts_1', status: 'completed', execution: 'client', arguments: { query: 'fanfold query_workflow' } }] };
      }
      if (outputs.length === 0) return { tool: 'query_workflow', namespace: 'mcp__fanfold', input: { query: FILES['alpha.txt']!.word } };
      return `The earlier run says: ${outputs.at(-1)!.output.slice(0, 2000)}`;
    }
    default:
      break;
  }
  if (outputs.length === 0) return { tool: 'exec_command', input: { cmd: `cat ${file}` } };
  return JSON.stringify(readAnswer(file, outputs.at(-1)!.output));
}

/** A wrapper standing in for a CLI: logs its start and end (ms) per attempt, then runs the real one. */
async function wrapper(dir: string, kind: Kind, real: string, log: string): Promise<string> {
  const path = join(dir, `${kind}-wrapper`);
  await writeFile(
    path,
    [
      '#!/bin/sh',
      `echo "start $$ $(date +%s%3N) $FANFOLD_PHASE_ID/$FANFOLD_TASK_ID $FANFOLD_ATTEMPT" >> '${log}'`,
      `'${real}' "$@"`,
      'rc=$?',
      `echo "end $$ $(date +%s%3N) $FANFOLD_PHASE_ID/$FANFOLD_TASK_ID $FANFOLD_ATTEMPT $rc" >> '${log}'`,
      'exit $rc',
      '',
    ].join('\n'),
  );
  await chmod(path, 0o755);
  return path;
}

interface WrapEntry {
  pid: number;
  start: number;
  end?: number;
  rc?: number;
}
async function readWrapLog(log: string): Promise<Map<string, WrapEntry>> {
  const out = new Map<string, WrapEntry>();
  const text = await readFile(log, 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const [what, pid, ms, ref, attempt, rc] = line.split(' ');
    if (!what || !ref) continue;
    const key = `${ref}#${attempt}`;
    if (what === 'start') out.set(key, { pid: Number(pid), start: Number(ms) });
    else if (what === 'end') Object.assign(out.get(key) ?? {}, { end: Number(ms), rc: Number(rc) });
  }
  return out;
}

/** Live (non-zombie) members of a process group. */
function groupMembers(pgid: number): number[] {
  const alive: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid && fields[0] !== 'Z' && fields[0] !== 'X') alive.push(Number(entry));
    } catch {
      /* gone */
    }
  }
  return alive;
}

interface JournalEvent {
  type: string;
  t: string;
  ref?: string;
  attempt?: number;
  file?: string;
  status?: string;
}

describe.skipIf(!ENABLED)('workflows of real sub-agents through fanfold (real CLIs)', () => {
  const clis: Partial<Record<Kind, InstalledCli>> = {};
  let anth: AnthropicServer;
  let resp: ResponsesServer;
  let sb: WorkflowSandbox;
  let bins: Record<Kind, string>;
  let wrapLog: string;
  let store: string;
  let mainRun: { run: CliRun; view: { runId: string; status: string; dir: string } } | undefined;

  beforeAll(async () => {
    await stat(join(REPO_ROOT, 'dist', 'runners', 'claude.js')).catch(() => {
      throw new Error('dist/ has no agent runners: run `npm run build` before the e2e tests');
    });
    for (const k of ['claude', 'codex', 'pi'] as const) clis[k] = await ensureCli(k);
    anth = await startAnthropicServer(anthropicModel);
    resp = await startResponsesServer(responsesModel);
    sb = await workflowSandbox({ anthropicUrl: anth.baseUrl, responsesUrl: resp.baseUrl });
    for (const name of Object.keys(FILES)) await sb.writeProjectFile(name, fileText(name));
    await sb.writeProjectFile(
      '.claude/agents/scout.md',
      '---\nname: scout\ndescription: Finds one fact in a file.\ntools: Read, Grep\nmodel: claude-scripted\ncolor: blue\n---\nYou are SCOUT-PROFILE-7: read exactly the file you are given.\n',
    );
    const binDir = join(sb.root, 'bin');
    await mkdir(binDir);
    wrapLog = join(sb.root, 'wrap.log');
    bins = {
      claude: await wrapper(binDir, 'claude', clis.claude!.bin, wrapLog),
      codex: await wrapper(binDir, 'codex', clis.codex!.bin, wrapLog),
      pi: await wrapper(binDir, 'pi', clis.pi!.bin, wrapLog),
    };
    store = join(sb.project, '.agent_workflows');
  }, 45 * 60_000);

  afterAll(async () => {
    await anth?.close();
    await resp?.close();
    await sb?.cleanup();
  });

  const fanfoldEnv = (): Record<string, string> => ({
    ...sb.env,
    FANFOLD_CLAUDE_BIN: bins.claude,
    FANFOLD_CODEX_BIN: bins.codex,
    FANFOLD_PI_BIN: bins.pi,
  });

  async function runSpec(name: string, spec: unknown): Promise<{ run: CliRun; view: { runId: string; status: string; dir: string } }> {
    const file = join(sb.root, `${name}.json`);
    await writeFile(file, JSON.stringify(spec, null, 2));
    const run = await runCli(process.execPath, [MAIN, '--store', store, 'run', file, '--json'], {
      cwd: sb.project,
      env: fanfoldEnv(),
      timeoutMs: 170_000,
    });
    let view: { runId: string; status: string; dir: string };
    try {
      view = JSON.parse(run.stdout) as typeof view;
    } catch {
      throw new Error(`fanfold run printed no status JSON:\n${describeRun(run)}`);
    }
    return { run, view };
  }

  const records = runRecords;
  const journal = (dir: string) => runJournal<JournalEvent>(dir);

  const task = (phase: string, id: string, agent: string, file: string, extra = ''): Record<string, unknown> => ({
    id,
    agent,
    prompt: `[e2e:${phase}/${id}] Read the file ${file} in the project and report its secret word and its line count (the file says both).${extra}`,
  });

  it('a 3-phase workflow: each runner kind reads a project file with a real tool call and answers with structured output', async () => {
    const spec = {
      version: 1,
      name: 'e2e-three-runners',
      limits: { maxConcurrent: 3, agentTimeout: '90s', retries: 1, retryBackoff: '200ms' },
      defaults: { runner: 'claude' },
      agents: {
        cl: { runner: 'claude', model: 'claude-scripted', maxTurns: 8 },
        // sandbox: off — codex and pi run through wrapper scripts that log outside the project
        // (and exec the CLIs from the cache); tests/e2e/sandbox.test.ts runs them confined.
        cx: { runner: 'codex', sandbox: 'off' },
        pi: { runner: 'pi', model: sb.piModel, sandbox: 'off' },
      },
      phases: [
        {
          id: 'gather',
          schema: SCHEMA,
          tasks: [task('gather', 'claude', 'cl', 'alpha.txt'), task('gather', 'codex', 'cx', 'beta.txt'), task('gather', 'pi', 'pi', 'gamma.txt')],
        },
        {
          id: 'check',
          dependsOn: ['gather'],
          schema: SCHEMA,
          tasks: [
            task('check', 'claude', 'cl', 'delta.txt', '\nWhat the first phase found:\n{{digest}}'),
            task('check', 'codex', 'cx', 'epsilon.txt', '\nWhat the first phase found:\n{{digest}}'),
            task('check', 'pi', 'pi', 'zeta.txt', '\nWhat the first phase found:\n{{digest}}'),
          ],
        },
        {
          id: 'report',
          dependsOn: ['check'],
          final: true,
          tasks: [
            { ...task('report', 'scout', 'scout', 'omega.txt'), schema: SCHEMA },
            { ...task('report', 'skeptic', 'skeptic', 'omega.txt', ' Claim to refute: omega.txt holds a secret word.'), schema: SKEPTIC_SCHEMA },
          ],
        },
      ],
    };
    mainRun = await runSpec('three-runners', spec);
    const { run, view } = mainRun;
    anth.assertNoScriptErrors();
    resp.assertNoScriptErrors();
    expect(view.status, describeRun(run)).toBe('completed');
    expect(run.code).toBe(0);

    const recs = await records(view.dir);
    const ok = (ref: string, attempt = 1): AgentRecord => {
      const r = recs.get(`${ref}#${attempt}`);
      expect(r, `record ${ref}#${attempt}`).toBeDefined();
      expect(r!.status, `${ref}#${attempt}: ${JSON.stringify(r!.error)}`).toBe('succeeded');
      return r!;
    };

    // The claude task of phase 1 met an overloaded model first: retryable, retried by the engine.
    const first = recs.get('gather/claude#1')!;
    expect(first).toMatchObject({ status: 'failed', runner: 'claude', error: { type: 'model_api', retryable: true } });
    expect(first.error!.message).toContain('529');
    const files: Record<string, string> = {
      'gather/claude': 'alpha.txt', 'gather/codex': 'beta.txt', 'gather/pi': 'gamma.txt',
      'check/claude': 'delta.txt', 'check/codex': 'epsilon.txt', 'check/pi': 'zeta.txt',
    };
    for (const [ref, file] of Object.entries(files)) {
      const r = ok(ref, ref === 'gather/claude' ? 2 : 1);
      // The secret exists only in the file: the structured answer proves the tool call read it.
      expect(r.structured, ref).toEqual(answerOf(file));
      expect(r.sessionId, ref).toBeTruthy();
      expect(r.usage?.inputTokens, ref).toBeGreaterThan(0);
      expect(r.usage?.outputTokens, ref).toBeGreaterThan(0);
      if (r.runner === 'claude') expect(r.costUsd, ref).toBeGreaterThan(0);
    }
    expect(new Set(Object.keys(files).map((ref) => recs.get(`${ref}#${ref === 'gather/claude' ? 2 : 1}`)!.runner))).toEqual(new Set(['claude', 'codex', 'pi']));

    // Later phases got the first phase's digest in the prompt and a pointer to the context file.
    const checkClaude = anth.messageRequests.find((q) => q.query.beta === 'true' && userText(q.body as AnthropicRequestBody).includes('[e2e:check/claude]'))!;
    const checkText = userText(checkClaude.body as AnthropicRequestBody);
    expect(checkText).toContain('## gather');
    expect(checkText).toMatch(/The outputs of the 3 tasks this task depends on are in \S+check\.claude\.1\.context\.json/);

    // A user's Claude Code subagent (.claude/agents/scout.md, no runner: defaults.runner) ran as a workflow agent.
    const scout = ok('report/scout');
    expect(scout).toMatchObject({ runner: 'claude', structured: answerOf('omega.txt') });
    const scoutReq = anth.messageRequests.find((q) => userText(q.body as AnthropicRequestBody).includes('[e2e:report/scout]'))!;
    expect(toolNames(scoutReq.body as AnthropicRequestBody).filter((t) => t !== 'DeferredToolPlaceholder' && t !== 'StructuredOutput').sort()).toEqual([
      'Grep',
      'Read',
      // A task that builds on earlier phases also gets fanfold's read-only child server.
      'mcp__fanfold__query_workflow',
      'mcp__fanfold__workflow_status',
    ]);
    expect(JSON.stringify((scoutReq.body as AnthropicRequestBody).system)).toContain('SCOUT-PROFILE-7');
    // A bundled profile (agents/skeptic.md) too.
    const skeptic = ok('report/skeptic');
    expect(skeptic.structured).toMatchObject({ refuted: false, reasons: [expect.stringContaining('KESTREL-3b7d65')] });
    const skepticReq = anth.messageRequests.find((q) => userText(q.body as AnthropicRequestBody).includes('[e2e:report/skeptic]'))!;
    expect(JSON.stringify((skepticReq.body as AnthropicRequestBody).system)).toContain('You are the skeptic of a fanfold workflow');

    // Whether the engine hands each task's schema to the runner (--json-schema for claude).
    const claudeSchemaSeen = toolNames(checkClaude.body as AnthropicRequestBody).includes('StructuredOutput');
    const codexSchemaSeen = resp.responseRequests.some((q) => (q.body as ResponsesRequestBody).text?.format?.type === 'json_schema');
    // The engine hands each task's schema to the CLIs that take one (claude --json-schema, codex --output-schema).
    expect({ claudeSchemaSeen, codexSchemaSeen }).toEqual({ claudeSchemaSeen: true, codexSchemaSeen: true });
    await report(view.dir);
  }, 200_000);

  /** Per-agent overhead: engine start → CLI start → first model request; last reply → CLI exit → record written. */
  async function report(dir: string): Promise<void> {
    const events = await journal(dir);
    const wraps = await readWrapLog(wrapLog);
    const rows: string[] = [];
    const figures: Record<string, number[]> = { prep: [], cold: [], startTotal: [], exitLag: [], record: [], endTotal: [] };
    for (const ev of events.filter((e): e is JournalEvent & { ref: string } => e.type === 'agent.finished' && e.status === 'succeeded' && e.ref !== undefined)) {
      const started = events.find((e) => e.type === 'agent.started' && e.ref === ev.ref && e.attempt === ev.attempt)!;
      const w = wraps.get(`${ev.ref}#${ev.attempt}`);
      if (!w?.end) continue;
      const mark = `[e2e:${ev.ref}]`;
      const mine = [...anth.messageRequests, ...resp.responseRequests].filter((q) => {
        const body = q.body as AnthropicRequestBody & ResponsesRequestBody;
        const text = Array.isArray(body.messages) ? userText(body) : userInputText(body);
        return text.includes(mark) && q.receivedAt >= w.start && q.receivedAt <= w.end!;
      });
      if (mine.length === 0) continue;
      const t0 = Date.parse(started.t);
      const firstReq = Math.min(...mine.map((q) => q.receivedAt));
      const lastReply = Math.max(...mine.map((q) => q.respondedAt ?? q.receivedAt));
      const written = (await stat(join(dir, 'agents', ev.file!))).mtimeMs;
      const row = {
        prep: w.start - t0,
        cold: firstReq - w.start,
        startTotal: firstReq - t0,
        exitLag: w.end - lastReply,
        record: Math.round(written) - w.end,
        endTotal: Math.round(written) - lastReply,
      };
      for (const [k, v] of Object.entries(row)) figures[k]!.push(v);
      rows.push(
        `  ${ev.ref.padEnd(16)} engine→spawn ${String(row.prep).padStart(5)} ms | spawn→1st request ${String(row.cold).padStart(5)} ms | ` +
          `last reply→CLI exit ${String(row.exitLag).padStart(5)} ms | CLI exit→record written ${String(row.record).padStart(4)} ms`,
      );
      expect(row.prep).toBeGreaterThanOrEqual(0);
      expect(row.record).toBeGreaterThanOrEqual(-5); // mtime granularity
    }
    const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
    console.log(
      `[fanfold e2e] overhead per real-CLI agent (${rows.length} agents, maxConcurrent 3):\n${rows.join('\n')}\n` +
        `  median: engine→spawn ${med(figures.prep!)} ms, spawn→first request ${med(figures.cold!)} ms ` +
        `(start→first request ${med(figures.startTotal!)} ms); last reply→CLI exit ${med(figures.exitLag!)} ms, ` +
        `CLI exit→record ${med(figures.record!)} ms (last reply→record ${med(figures.endTotal!)} ms)`,
    );
  }

  it('failures through the engine: model errors, max turns, hung agents killed on timeout', async () => {
    const spec = {
      version: 1,
      name: 'e2e-failures',
      limits: { maxConcurrent: 7, agentTimeout: '45s', retries: 0 },
      agents: {
        cl: { runner: 'claude', model: 'claude-scripted' },
        // sandbox: off — codex and pi run through wrapper scripts that log outside the project
        // (and exec the CLIs from the cache); tests/e2e/sandbox.test.ts runs them confined.
        cx: { runner: 'codex', sandbox: 'off' },
        pi: { runner: 'pi', model: sb.piModel, sandbox: 'off' },
        clt: { runner: 'claude', model: 'claude-scripted', maxTurns: 1 },
        pit: { runner: 'pi', model: sb.piModel, maxTurns: 1, sandbox: 'off' },
      },
      phases: [
        {
          id: 'boom',
          onFailure: 'continue',
          tasks: [
            task('boom', 'claude-error', 'cl', 'alpha.txt'),
            task('boom', 'codex-error', 'cx', 'alpha.txt'),
            task('boom', 'pi-error', 'pi', 'alpha.txt'),
            task('boom', 'claude-turns', 'clt', 'alpha.txt'),
            task('boom', 'pi-turns', 'pit', 'alpha.txt'),
            task('boom', 'claude-hung', 'cl', 'alpha.txt'),
            task('boom', 'codex-hung', 'cx', 'alpha.txt'),
          ],
        },
      ],
    };
    const started = Date.now();
    const { run, view } = await runSpec('failures', spec);
    expect(view.status, describeRun(run)).toBe('failed');
    expect(run.code).toBe(1);
    const recs = await records(view.dir);
    const rec = (id: string): AgentRecord => recs.get(`boom/${id}#1`)!;

    for (const id of ['claude-error', 'codex-error', 'pi-error']) {
      expect(rec(id), id).toMatchObject({ status: 'failed', error: { type: 'model_api', retryable: true } });
    }
    expect(rec('pi-error').exitCode).toBe(0); // pi says nothing through its exit code
    expect(rec('pi-error').error!.message).toContain('scripted failure for boom/pi-error');
    expect(rec('claude-error').error!.message).toContain('500');

    expect(rec('claude-turns')).toMatchObject({ status: 'failed', error: { type: 'max_turns', retryable: false } });
    expect(rec('claude-turns').error!.message).toContain("raise maxTurns of agent 'clt'");
    expect(rec('pi-turns')).toMatchObject({ status: 'failed', error: { type: 'max_turns', retryable: false } });
    expect(rec('pi-turns').error!.message).toContain('turn 2 started, over maxTurns 1');

    const wraps = await readWrapLog(wrapLog);
    for (const id of ['claude-hung', 'codex-hung']) {
      expect(rec(id), id).toMatchObject({ status: 'timed_out', error: { type: 'timeout', retryable: true } });
      expect(rec(id).error!.message).toMatch(/timed out after 45s; process group killed \((claude|codex): /);
      expect(rec(id).durationMs).toBeLessThan(45_000 + 6_000);
      // The whole process group (wrapper, CLI, anything it started) is gone.
      const w = wraps.get(`boom/${id}#1`)!;
      expect(w, id).toBeDefined();
      expect(groupMembers(w.pid), `${id} group ${w.pid}`).toEqual([]);
    }
    expect(Date.now() - started).toBeLessThan(120_000);
  }, 200_000);

  describe('the runners directly, with the real CLIs', () => {
    const runners: Record<Kind, () => Runner> = {
      claude: () => new ClaudeRunner({ baseEnv: fanfoldEnv() }),
      codex: () => new CodexRunner({ baseEnv: fanfoldEnv() }),
      pi: () => new PiRunner({ baseEnv: fanfoldEnv() }),
    };
    const agents: Record<Kind, () => AgentDef> = {
      claude: () => ({ name: 'direct', runner: 'claude', tier: 'read_only', model: 'claude-scripted' }),
      codex: () => ({ name: 'direct', runner: 'codex', tier: 'read_only', sandbox: 'off' }),
      pi: () => ({ name: 'direct', runner: 'pi', tier: 'read_only', model: sb.piModel, sandbox: 'off' }),
    };
    const directInput = async (kind: Kind, id: string, prompt: string, more: Partial<RunnerInput> = {}): Promise<RunnerInput> => {
      const dir = join(sb.root, 'direct');
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'context.json'), '{"schemaVersion":1,"digests":{},"deps":[]}');
      return {
        runId: 'direct', phaseId: 'direct', taskId: id, attempt: 1, prompt, agent: agents[kind](), cwd: sb.project,
        promptFile: join(dir, 'prompt.txt'), contextFile: join(dir, 'context.json'), timeoutMs: 60_000,
        maxOutputBytes: 256 * 1024, signal: new AbortController().signal, ...more,
      };
    };

    for (const kind of ['claude', 'codex', 'pi'] as const) {
      it(`${kind}: invalid structured output is refused with the errors, then fixed on a retry that carries them`, async () => {
        const prompt = '[e2e:direct/invalid] Read the file beta.txt in the project and report its secret word and its line count.';
        const first: RunnerResult = await runners[kind]().run(await directInput(kind, `invalid-${kind}`, prompt, { schema: SCHEMA }));
        expect(first.status, JSON.stringify(first.error)).toBe('failed');
        expect(first.error).toMatchObject({ type: 'invalid_structured_output', retryable: true });
        expect(first.error!.message).toMatch(kind === 'pi' ? /not JSON/ : /word|lines/);
        // What the engine should do on the retry: pass the error back as feedback.
        const second = await runners[kind]().run(await directInput(kind, `invalid-${kind}`, prompt, { schema: SCHEMA, attempt: 2, feedback: first.error!.message }));
        expect(second.status, JSON.stringify(second.error)).toBe('succeeded');
        expect(second.structured).toEqual(answerOf('beta.txt'));
      }, 120_000);
    }

    for (const kind of ['claude', 'codex'] as const) {
      it(`${kind}: a sub-agent queries the finished workflow through fanfold's child MCP server`, async () => {
        expect(mainRun, 'the 3-phase workflow ran first').toBeDefined();
        const mcp = { command: process.execPath, args: [MAIN, 'serve', '--child', '--store', store] };
        const r = await runners[kind]().run(
          await directInput(kind, `mcp-${kind}`, '[e2e:direct/mcp] What did the earlier workflow find about the secret word? Use query_workflow.', { mcp }),
        );
        expect(r.status, JSON.stringify(r.error)).toBe('succeeded');
        // The hit is gather/claude's output of the earlier run, found by BM25 over the stored outputs.
        expect(r.output).toContain('The earlier run says:');
        expect(r.output).toContain(mainRun!.view.runId);
        expect(r.output).toMatch(/gather/);
      }, 120_000);
    }
  });
});
