// B7: how much of a 1,000-agent run reaches the host. Runs 1,000 real command agents (each prints
// a few hundred bytes of finding-like lines) through the run owner, then asks the MCP server —
// over a real SDK client — for what a host reads: run_workflow's answer and workflow_status at
// the end (digests + report). Prints folded tokens ÷ raw output tokens (tokens ≈ chars ÷ 4 for
// both, so the ratio does not depend on the tokenizer).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { buildPlan } from '../dist/spec/index.js';
import { createRun } from '../dist/engine/lifecycle.js';
import { ownRun } from '../dist/engine/owner.js';
import { createServer } from '../dist/mcp/server.js';

const N = 1000;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanfold-b7-'));
const root = path.join(dir, 'store');
const script = [
  'i=0; while [ $i -lt 6 ]; do i=$((i+1));',
  'echo "finding $i in module $FANFOLD_TASK_ID: handler $(($i * 7)) returns early when the cache is cold; severity medium; file src/mod$i.ts line $(($i * 13))";',
  'done',
].join(' ');
const plan = buildPlan({
  version: 1,
  name: 'b7-fold',
  goal: 'find cache handling problems in every module',
  limits: { maxConcurrent: 16, maxAgents: N, retries: 0 },
  agents: { scan: { runner: 'command', command: ['sh', '-c', script] } },
  phases: [
    { id: 'scan', title: 'Scan each module for cache problems', agent: 'scan', tasks: Array.from({ length: N - 1 }, (_, i) => ({ id: `m${i}`, prompt: `module ${i}` })) },
    { id: 'sum', dependsOn: ['scan'], agent: 'scan', final: true, tasks: [{ id: 'all', prompt: 'sum up' }] },
  ],
});
const t0 = performance.now();
const runId = await createRun({ root, plan, cwd: dir });
const run = await ownRun({ root, runId });
const runMs = performance.now() - t0;

let rawChars = 0;
for (const f of fs.readdirSync(path.join(root, runId, 'agents'))) {
  rawChars += JSON.parse(fs.readFileSync(path.join(root, runId, 'agents', f), 'utf8')).output.length;
}

const server = createServer({ root, cwd: dir, log: () => {} });
const client = new Client({ name: 'b7', version: '0' });
const [a, b] = InMemoryTransport.createLinkedPair();
await Promise.all([server.connect(b), client.connect(a)]);
const textOf = (r) => r.content.filter((c) => c.type === 'text').map((c) => c.text).join('');
const answers = [await client.callTool({ name: 'workflow_status', arguments: { runId } })];
const foldedChars = answers.reduce((n, r) => n + textOf(r).length, 0);
await client.close();

const tok = (c) => Math.round(c / 4);
console.log(`B7 run of ${N} agents: ${run.status} in ${(runMs / 1000).toFixed(1)} s`);
console.log(`B7 raw output: ${tok(rawChars)} tokens (${rawChars} chars); folded back (final workflow_status with digests and report): ${tok(foldedChars)} tokens`);
console.log(`B7 folded/raw = ${(foldedChars / rawChars).toFixed(4)} (${(rawChars / foldedChars).toFixed(0)}x smaller); goal: folded ≤ 8k tokens → ${tok(foldedChars) <= 8000 ? 'met' : 'MISSED'}`);
fs.rmSync(dir, { recursive: true, force: true });
