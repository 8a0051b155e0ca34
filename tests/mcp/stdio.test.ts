/**
 * `fanfold serve` as a separate process over stdio: the built CLI, spoken to by the SDK's
 * StdioClientTransport and by a line-recording transport that checks every line the server wrote
 * to stdout is a JSON-RPC message — also when dependencies print.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { describe, expect, it } from 'vitest';
import { commandSpec, dataOf, tempDir, textOf } from './helpers.js';
import { LineTransport } from './line-transport.js';

const REPO = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(REPO, 'dist/cli/main.js');
/** What the server process needs from the environment (StdioClientTransport passes only an allow-list). */
const ENV = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' };

/** plan → run (approve) → status with wait and progress → query → ref, through any client. */
async function flow(client: Client, store: string) {
  const { tools } = await client.listTools();
  expect(tools.map((t) => t.name)).toEqual(['plan_workflow', 'run_workflow', 'workflow_status', 'query_workflow', 'control_workflow']);
  const spec = commandSpec(6, { maxConcurrent: 3, join: true, command: ['sh', '-c', 'sleep 0.3; echo stdio-$FANFOLD_TASK_ID findme'] });
  const plan = await client.callTool({ name: 'plan_workflow', arguments: { spec } });
  expect(plan.isError, textOf(plan)).toBeFalsy();
  const { planId } = dataOf(plan);
  expect(textOf(plan)).toContain(`planId: ${planId}`);

  const run = await client.callTool({ name: 'run_workflow', arguments: { planId, approve: true } });
  expect(run.isError, textOf(run)).toBeFalsy();
  const { runId } = dataOf(run);
  expect(textOf(run)).toContain(`runId: ${runId}`);
  expect(fs.existsSync(path.join(store, runId, 'run.json'))).toBe(true);

  const progress: string[] = [];
  const status = await client.callTool({ name: 'workflow_status', arguments: { runId, wait: 40 } }, undefined, {
    onprogress: (p) => progress.push(p.message ?? ''),
  });
  expect(dataOf(status).status).toBe('completed');
  expect(progress.length).toBeGreaterThan(0);
  expect(progress.at(-1)).toMatch(/\/7 agents done/);

  const q = await client.callTool({ name: 'query_workflow', arguments: { query: 'findme', runId } });
  expect(dataOf(q).total).toBe(7);
  const ref = dataOf(q).hits[0].ref as string;
  expect(textOf(q)).toContain(`ref ${ref}`);
  const page = await client.callTool({ name: 'query_workflow', arguments: { ref } });
  expect(dataOf(page).text).toMatch(/^stdio-\S+ findme/);
  return runId as string;
}

describe('fanfold serve over stdio', () => {
  it('serves the whole flow to the SDK StdioClientTransport', async () => {
    const dir = tempDir();
    const store = path.join(dir, 'store');
    const transport = new StdioClientTransport({ command: process.execPath, args: [CLI, 'serve', '--store', store], cwd: dir, env: ENV, stderr: 'pipe' });
    let stderr = '';
    transport.stderr?.on('data', (d) => (stderr += d));
    const client = new Client({ name: 'stdio-test', version: '0' });
    await client.connect(transport);
    try {
      expect(client.getServerVersion()?.name).toBe('fanfold');
      expect(client.getInstructions()).toMatch(/plan_workflow/);
      await flow(client, store);
    } finally {
      await client.close();
    }
    expect(stderr).toMatch(/serving tools over stdio/);
  }, 60_000);

  it('writes nothing but JSON-RPC lines to stdout', async () => {
    const dir = tempDir();
    const store = path.join(dir, 'store');
    const transport = new LineTransport(process.execPath, [CLI, 'serve', '--store', store], { cwd: dir, env: ENV });
    const client = new Client({ name: 'stdio-lines', version: '0' });
    await client.connect(transport);
    await flow(client, store);
    await client.close();
    expect(await transport.exited()).toBe(0); // stdin closed: the server exits on its own
    expect(transport.strayLines).toEqual([]);
    expect(transport.stdoutLines.length).toBeGreaterThan(8);
    for (const line of transport.stdoutLines) expect(JSON.parse(line).jsonrpc).toBe('2.0');
  }, 60_000);

  it('keeps stdout clean when dependencies print', async () => {
    const dir = tempDir();
    const store = path.join(dir, 'store');
    const transport = new LineTransport(process.execPath, [path.join(REPO, 'tests/mcp/fixtures/noisy-server.mjs'), store], { cwd: dir, env: ENV });
    const client = new Client({ name: 'stdio-noise', version: '0' });
    await client.connect(transport);
    await flow(client, store);
    await client.close();
    expect(transport.strayLines).toEqual([]);
    for (const line of transport.stdoutLines) expect(JSON.parse(line).jsonrpc).toBe('2.0');
    // The noise went to stderr instead.
    expect(transport.stderr).toMatch(/noise: console\.log from a dependency/);
    expect(transport.stderr).toMatch(/noise: a raw write to process\.stdout/);
    expect(transport.stderr).toMatch(/noise: periodic raw write/);
  }, 60_000);

  it('serves child mode with only the read-only tools', async () => {
    const dir = tempDir();
    const transport = new StdioClientTransport({ command: process.execPath, args: [CLI, 'serve', '--child', '--store', path.join(dir, 'store')], cwd: dir, env: ENV, stderr: 'pipe' });
    const client = new Client({ name: 'stdio-child', version: '0' });
    await client.connect(transport);
    try {
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name)).toEqual(['workflow_status', 'query_workflow']);
    } finally {
      await client.close();
    }
  }, 120_000);
});
