/**
 * The spec side of the sandbox: `network`, `sandbox`, `readDirs` on agents and in `defaults`,
 * WebFetch implying network, a gate's command as tier edit, the approval they need over MCP, and
 * a Codex attempt whose every command failed in its own sandbox never counted as a success.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { approvalReasons } from '../../src/mcp/approval.js';
import { CodexParser } from '../../src/runners/codex.js';
import type { ProcessResult } from '../../src/runners/process.js';
import { buildPlan } from '../../src/spec/index.js';

const spec = (agents: Record<string, unknown>, more: Record<string, unknown> = {}) => ({
  version: 1,
  name: 'sandboxed',
  agents,
  phases: [{ id: 'p', tasks: Object.keys(agents).map((a) => ({ id: a, agent: a, prompt: 'x' })) }],
  ...more,
});
const MAIN = join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');
const THRESHOLDS = { agents: 25, usd: 5, commands: false };

describe('spec and approval', () => {
  it('carries network, sandbox and readDirs; defaults.sandbox applies to agents that set none; WebFetch implies network', () => {
    const plan = buildPlan(
      spec(
        {
          net: { runner: 'claude', network: true, readDirs: ['~/docs'] },
          web: { runner: 'claude', tools: ['Read', 'WebFetch'] },
          strict: { runner: 'command', command: ['true'] },
          loose: { runner: 'command', command: ['true'], sandbox: 'off' },
        },
        { defaults: { sandbox: 'required' } },
      ),
    );
    expect(plan.agents.net).toMatchObject({ network: true, readDirs: ['~/docs'], sandbox: 'required' });
    expect(plan.agents.web!.network).toBe(true);
    expect(plan.agents.strict!.sandbox).toBe('required');
    expect(plan.agents.loose!.sandbox).toBe('off');
  });

  it('refuses a sandbox value it does not know, naming the field', () => {
    expect(() => buildPlan(spec({ a: { runner: 'command', command: ['true'], sandbox: 'maybe' } }))).toThrow(/agents\.a\.sandbox/);
  });

  it("a gate's command runs as tier edit, offline unless the phase says network: true", () => {
    const gated = (network?: boolean) =>
      buildPlan({
        version: 1,
        name: 'g',
        agents: { w: { runner: 'command', command: ['true'], tier: 'edit' } },
        phases: [{ id: 'build', agent: 'w', prompt: 'x', gate: { command: 'npm test' }, ...(network ? { network } : {}) }],
      });
    expect(gated().agents['build-gate']).toMatchObject({ tier: 'edit', runner: 'command' });
    expect(gated().agents['build-gate']!.network).toBeUndefined();
    expect(gated(true).agents['build-gate']!.network).toBe(true);
  });

  it('network: true and sandbox: off need approval over MCP, each named', () => {
    const plan = buildPlan(spec({ net: { runner: 'claude', network: true }, off: { runner: 'claude', sandbox: 'off' }, plain: { runner: 'claude' } }));
    expect(approvalReasons(plan, THRESHOLDS)).toEqual([
      'agent net may use the network (network: true)',
      'agent off runs unconfined (sandbox: off): it may read any file the owner can',
    ]);
    expect(approvalReasons(buildPlan(spec({ plain: { runner: 'claude' } })), THRESHOLDS)).toEqual([]);
  });
});

describe('codex: every command failed in its own sandbox', () => {
  const proc = { exitCode: 0, signal: null, stdout: '', stdoutBytes: 0, truncated: false, stderrTail: '', stderrBytes: 0, timedOut: false, cancelled: false, durationMs: 1, pid: 1 } as ProcessResult;
  const lines = (outputs: string[]) => [
    '{"type":"thread.started","thread_id":"t1"}',
    ...outputs.map((o, i) => JSON.stringify({ type: 'item.completed', item: { id: `c${i}`, type: 'command_execution', command: 'cat x', aggregated_output: o, exit_code: 1, status: 'failed' } })),
    '{"type":"item.completed","item":{"id":"m","type":"agent_message","text":"The file says nothing."}}',
    '{"type":"turn.completed","usage":{"input_tokens":1,"output_tokens":1}}',
  ];
  const finish = (outputs: string[]) => {
    const p = new CodexParser({ name: 'cx', runner: 'codex', tier: 'read_only' });
    for (const l of lines(outputs)) p.line(l);
    return p.finish(proc);
  };
  it('is sandbox_unavailable, not a success, and says where CODEX_HOME must not be', () => {
    const out = finish(['bwrap: execvp codex-linux-sandbox: No such file or directory\n', 'bwrap: execvp codex-linux-sandbox: No such file or directory\n']);
    expect(out.failure).toMatchObject({ type: 'sandbox_unavailable', retryable: false });
    expect(out.failure!.message).toMatch(/2 shell commands.*codex-linux-sandbox.*CODEX_HOME must not lie under \/tmp/);
  });
  it('one command that ran is enough for the answer to stand', () => {
    expect(finish(['bwrap: execvp codex-linux-sandbox: No such file or directory\n', 'cat: x: No such file or directory\n']).failure).toBeUndefined();
  });
});

describe('without bubblewrap, the plan, the status and the report say so in one line', () => {
  it('fanfold plan / run / status / report (FANFOLD_BWRAP=none), and the run still completes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fanfold-nobwrap-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'spec.json'), JSON.stringify(spec({ hello: { runner: 'command', command: ['sh', '-c', 'echo hello'] } })));
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, [MAIN, '--store', join(dir, 'store'), ...args], { cwd: dir, env: { ...process.env, FANFOLD_BWRAP: 'none' }, encoding: 'utf8', timeout: 60_000 });
    const line = /unconfined: command agent 'hello' will run with the owner's full rights: bubblewrap is turned off \(FANFOLD_BWRAP=none\); install bubblewrap \(Debian\/Ubuntu: sudo apt-get install bubblewrap/;
    const plan = cli('plan', 'spec.json');
    expect(plan.stdout).toMatch(new RegExp(`Sandbox: ${line.source}`));
    const run = cli('run', 'spec.json', '--json');
    const view = JSON.parse(run.stdout) as { runId: string; status: string; dir: string; security?: string[] };
    expect(view.status).toBe('completed');
    expect(view.security?.[0]).toMatch(line);
    expect(cli('status', view.runId).stdout).toMatch(new RegExp(`sandbox: ${line.source}`));
    expect(readFileSync(join(view.dir, 'report.md'), 'utf8')).toMatch(/\*\*Sandbox:\*\* unconfined: command agent 'hello'/);
  });
});
