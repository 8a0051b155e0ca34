/**
 * Helpers for the MCP tests: a real SDK Client connected to createServer over an in-memory
 * transport pair, temp stores, small specs for the `command` runner, and result accessors.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { CallToolResult, ClientCapabilities } from '@modelcontextprotocol/sdk/types.js';
// The owner entry point is a .js file next to the engine module, so runs started from the
// TypeScript sources launch the built owner (npm test builds first).
import { launchOwner } from '../../dist/engine/lifecycle.js';
import { createServer, type ServerDeps } from '../../src/mcp/server.js';

/** A fresh temp directory. */
export function tempDir(prefix = 'fanfold-mcp-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A connected client/server pair; `logs` collects the server's log lines. */
export interface Connected {
  client: Client;
  root: string;
  cwd: string;
  logs: string[];
  close: () => Promise<void>;
}

/** Connects a real Client to a fresh server over InMemoryTransport. */
export async function connect(
  opts: Partial<ServerDeps> & { capabilities?: ClientCapabilities; setup?: (client: Client) => void } = {},
): Promise<Connected> {
  const dir = opts.root ? undefined : tempDir();
  const root = opts.root ?? path.join(dir!, 'store');
  const cwd = opts.cwd ?? dir ?? tempDir();
  const logs: string[] = [];
  const { capabilities, setup, ...deps } = opts;
  // Tests run command-runner specs everywhere; the approval they need is tested on its own
  // (approveCommands: true), so it is off by default here.
  // Test clients answer forms at once, as headless hosts do; headlessAnswerMs 0 makes their
  // answers count as a person's (the headless rule is tested on its own).
  const server = createServer({ launch: launchOwner, log: (l) => logs.push(l), approveCommands: false, headlessAnswerMs: 0, ...deps, root, cwd });
  const client = new Client({ name: 'fanfold-test', version: '0.0.0' }, { capabilities: capabilities ?? {} });
  setup?.(client);
  const [a, b] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(b), client.connect(a)]);
  return {
    client,
    root,
    cwd,
    logs,
    close: async () => {
      await client.close();
      await server.close();
    },
  };
}

/** The text content of a tool result (all text parts joined). */
export function textOf(r: unknown): string {
  const res = r as CallToolResult;
  return (res.content ?? []).map((c) => (c.type === 'text' ? c.text : '')).join('\n');
}

/** The structured content of a tool result, typed loosely for assertions. */
export function dataOf(r: unknown): any {
  return (r as CallToolResult).structuredContent;
}

/** Calls a tool and returns its result (the SDK validates structuredContent on the way). */
export async function call(client: Client, name: string, args: Record<string, unknown>, options?: Parameters<Client['callTool']>[2]) {
  return (await client.callTool({ name, arguments: args }, undefined, options)) as CallToolResult;
}

/** A spec with `n` tasks in one phase (plus an optional join phase) run by the `command` runner. */
export function commandSpec(
  n: number,
  opts: { name?: string; command?: string[]; maxConcurrent?: number; maxAgents?: number; tier?: 'read_only' | 'edit'; join?: boolean; retries?: number } = {},
): Record<string, unknown> {
  return {
    version: 1,
    name: opts.name ?? 'mcp-test',
    goal: 'exercise the MCP server',
    limits: { maxConcurrent: opts.maxConcurrent ?? 4, maxAgents: opts.maxAgents ?? Math.max(64, n + 1), retries: opts.retries ?? 0, agentTimeout: '60s' },
    agents: {
      echo: {
        runner: 'command',
        command: opts.command ?? ['sh', '-c', 'echo hi $FANFOLD_TASK_ID; echo marker-$FANFOLD_TASK_ID-word'],
        ...(opts.tier ? { tier: opts.tier } : {}),
      },
    },
    phases: [
      { id: 'work', title: 'Work items', agent: 'echo', tasks: Array.from({ length: n }, (_, i) => ({ id: `t${i}`, prompt: `item ${i}` })) },
      ...(opts.join ? [{ id: 'join', dependsOn: ['work'], agent: 'echo', final: true, tasks: [{ id: 'all', prompt: 'join' }] }] : []),
    ],
  };
}

/** Run directories in a store (names that look like run ids). */
export function runDirs(root: string): string[] {
  if (!fs.existsSync(root)) return [];
  return fs.readdirSync(root).filter((n) => !n.startsWith('.') && fs.statSync(path.join(root, n)).isDirectory());
}

/** UTF-8 bytes of a string. */
export function bytes(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** Stops a run if it is still going (cleanup). */
export async function stopQuietly(root: string, runId: string): Promise<void> {
  const { requestStop } = await import('../../dist/engine/lifecycle.js');
  await requestStop(root, runId, 10_000).catch(() => {});
}

/** Options of fixtureRun. */
export interface FixtureRunOptions {
  /** Output of each task (default `output of <ref>`); return undefined for a task with no record yet. */
  output?: (phaseId: string, taskId: string, index: number) => string | undefined;
  /** Final run status to record (default: leave it `running`, which without an owner reads `interrupted`). */
  status?: 'completed' | 'failed' | 'stopped';
  /** Digest per phase id. */
  digest?: (phaseId: string) => string | undefined;
  /** report.md content. */
  report?: string;
  /** Spend to record in run.json. */
  spend?: { usd: number; tokens: number };
}

/**
 * Builds a run directory directly through the store, without executing anything: the plan of
 * `spec`, one succeeded agent record per task, optional digests, status and report.
 */
export async function fixtureRun(root: string, spec: Record<string, unknown>, o: FixtureRunOptions = {}): Promise<string> {
  const { buildPlan } = await import('../../src/spec/index.js');
  const { createRun } = await import('../../src/engine/lifecycle.js');
  const { RunStore, SCHEMA_VERSION } = await import('../../src/store/index.js');
  const plan = buildPlan(spec);
  const runId = await createRun({ root, plan, cwd: root });
  const store = await RunStore.open(root, runId);
  const t = new Date().toISOString();
  let i = 0;
  let written = 0;
  for (const task of plan.tasks) {
    const output = o.output ? o.output(task.phaseId, task.taskId, i) : `output of ${task.ref}`;
    i++;
    if (output === undefined) continue;
    written++;
    await store.writeAgentRecord({
      schemaVersion: SCHEMA_VERSION,
      runId,
      phaseId: task.phaseId,
      taskId: task.taskId,
      key: task.key,
      attempt: 1,
      status: 'succeeded',
      agent: task.agent,
      runner: 'command',
      prompt: task.prompt,
      output,
      outputBytes: Buffer.byteLength(output),
      truncated: false,
      exitCode: 0,
      signal: null,
      stderrTail: '',
      startedAt: t,
      endedAt: t,
      durationMs: 5,
    });
  }
  if (o.status || o.digest || o.spend) {
    await store.updateRun((run) => {
      if (o.spend) run.spend = o.spend;
      if (o.status) {
        run.status = o.status;
        run.endedAt = t;
        run.totals = { ...run.totals, succeeded: written, pending: run.totals.total - written };
        for (const p of run.phases) {
          p.status = o.status === 'completed' ? 'completed' : 'failed';
          p.counts = { ...p.counts, succeeded: p.counts.total, pending: 0 };
        }
      }
      if (o.digest) for (const p of run.phases) {
        const d = o.digest(p.id);
        if (d !== undefined) p.digest = d;
      }
    });
  }
  await store.close();
  if (o.report !== undefined) fs.writeFileSync(path.join(root, runId, 'report.md'), o.report);
  return runId;
}
