/**
 * Big outputs through the engine (issue 10 items 2 and 3), for real: child processes printing tens
 * of MiB, the CLI, a resume, and a reader in another process watching the owner's liveness.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { buildPlan } from '../../src/spec/index.js';
import { createRun } from '../../src/engine/lifecycle.js';
import { ownRun } from '../../src/engine/owner.js';
import { OUTPUT_INLINE_MAX_BYTES } from '../../src/store/index.js';
import { REPO, fanfold, readAgentFiles, tempDir } from '../helpers/cli.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function newDir(): string {
  const d = tempDir('fanfold-big-');
  dirs.push(d);
  return d;
}

/** A node one-liner printing `{"items":[…]}` of about `mb` MB. */
function jsonPrinter(mb: number): string[] {
  const n = Math.ceil((mb * 1e6) / 190);
  return [process.execPath, '-e', `process.stdout.write(JSON.stringify({ items: Array.from({ length: ${n} }, (_, i) => ({ id: i, title: 'finding ' + i, detail: 'x'.repeat(150) })) }))`];
}

/** A node one-liner printing `mib` MiB of varied words, honouring back-pressure. */
function textPrinter(mib: number): string[] {
  return [process.execPath, '-e', `const w='cache lease journal heartbeat index shard token parser queue retry'.split(' ');let s=7,left=${mib};
const b=()=>{let o='';while(o.length<1048576){s=(Math.imul(s,1664525)+1013904223)>>>0;o+=w[s%w.length]+(s%997)+((s>>>9)%11===0?'.\\n':' ');}return o.slice(0,1048576);};
(function p(){while(left>0){left--;if(!process.stdout.write(b()))return process.stdout.once('drain',p);}})();`];
}

describe('big outputs through the engine', () => {
  it('23 MB of JSON output, then a dependent: the run completes, the record stays small, and a resume reads it again', () => {
    const dir = newDir();
    // The dependent fails until the file `go` exists, so the resume has to build its context again.
    const reader = ['sh', '-c', 'test -f go || { echo "not yet" >&2; exit 3; }; wc -c < "$FANFOLD_CONTEXT_FILE"; grep -c \'"truncated":true\' "$FANFOLD_CONTEXT_FILE"'];
    const spec = {
      version: 1,
      name: 'big-json',
      limits: { retries: 0, maxOutputBytes: 64 * 1024 * 1024, maxContextBytes: 65536, agentTimeout: '5m' },
      agents: { big: { runner: 'command', command: jsonPrinter(23) }, reader: { runner: 'command', command: reader } },
      phases: [
        { id: 'p', agent: 'big', tasks: [{ id: 'big', prompt: 'print JSON' }] },
        { id: 'q', agent: 'reader', dependsOn: ['p'], tasks: [{ id: 'dep', prompt: 'read it' }] },
      ],
    };
    fs.writeFileSync(path.join(dir, 'spec.json'), JSON.stringify(spec));
    const first = fanfold(['run', 'spec.json', '--json', '--store', 'store'], { cwd: dir, timeoutMs: 240_000 });
    const runId = first.json().runId as string;
    const runDir = path.join(dir, 'store', runId);
    // The dependent's input step ran (it failed on purpose, not because its context could not be built).
    let files = readAgentFiles(runDir);
    expect(files.get('p.big.1.json').status, first.stderr).toBe('succeeded');
    expect(files.get('q.dep.1.json').status).toBe('failed');
    expect(files.get('q.dep.1.json').stderrTail).toContain('not yet');
    const size = fs.statSync(path.join(runDir, 'agents', 'p.big.1.json')).size;
    expect(size).toBeLessThan(OUTPUT_INLINE_MAX_BYTES);
    expect(fs.statSync(path.join(runDir, 'agents', 'p.big.1.out')).size).toBeGreaterThan(22_000_000);
    expect(files.get('p.big.1.json').structuredIn).toBe('output');

    fs.writeFileSync(path.join(dir, 'go'), '');
    const resumed = fanfold(['resume', runId, '--json', '--store', 'store'], { cwd: dir, timeoutMs: 240_000 });
    expect(resumed.status, resumed.stderr + resumed.stdout).toBe(0);
    expect(resumed.json().status).toBe('completed');
    files = readAgentFiles(runDir);
    expect(files.has('p.big.2.json')).toBe(false); // the big task was reused, not run again
    const [bytes, truncatedDeps] = files.get('q.dep.2.json').output.trim().split(/\s+/).map(Number);
    // The context was cut to maxContextBytes and says so.
    expect(bytes).toBeLessThanOrEqual(65536);
    expect(bytes).toBeGreaterThan(30_000);
    expect(truncatedDeps).toBe(1);
  }, 300_000);

  it("a live owner indexing 24 MiB is never judged dead: status never reads 'interrupted'", async () => {
    const root = newDir();
    const plan = buildPlan({
      version: 1,
      name: 'big-text',
      limits: { retries: 0, maxOutputBytes: 64 * 1024 * 1024, agentTimeout: '5m' },
      agents: { big: { runner: 'command', command: textPrinter(24) }, reader: { runner: 'command', command: ['cat'] } },
      phases: [
        { id: 'p', agent: 'big', tasks: [{ id: 'big', prompt: 'print' }] },
        { id: 'q', agent: 'reader', dependsOn: ['p'], tasks: [{ id: 'dep', prompt: 'read' }] },
      ],
    } as never);
    const runId = await createRun({ root, plan, cwd: root });
    // The reader runs in its own process, as `fanfold status` would: the owner's stalls cannot delay it.
    const status = pathToFileURL(path.join(REPO, 'dist/engine/status.js')).href;
    const src = `const { readStatus } = await import(${JSON.stringify(status)}); const seen = new Set();
      for (;;) { const s = await readStatus(${JSON.stringify(root)}, ${JSON.stringify(runId)}); seen.add(s.status);
        if (s.status !== 'running') break; await new Promise((r) => setTimeout(r, 50)); }
      process.stdout.write(JSON.stringify([...seen]));`;
    const poller = spawn(process.execPath, ['--input-type=module', '-e', src], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    poller.stdout.on('data', (c) => (out += c));
    const polled = new Promise((r) => poller.on('close', r));
    try {
      // A short ttl (heartbeat every 1.5 s): on a loop blocked for many seconds by indexing the
      // whole output — as it was — readers saw a stale lease and said `interrupted`. Not shorter:
      // redacting the output (engine/secrets.ts) is still one step proportional to its size
      // (~2 s for 24 MiB on a loaded 2-core machine).
      const rec = await ownRun({ root, runId, leaseTtlMs: 6000 });
      expect(rec.status).toBe('completed');
      await polled;
    } finally {
      poller.kill();
    }
    const seen = JSON.parse(out) as string[];
    expect(seen).not.toContain('interrupted');
    expect(seen).toContain('completed');
  }, 300_000);
});
