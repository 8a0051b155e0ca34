/**
 * Every agent the engine starts counts (issue 10, item 5): phase summarizer agents are held to
 * `limits.budget` (none starts once it is spent; the extractive digest stands in and says so), get
 * what is left as their own dollar ceiling, appear in the spend, run.json and the report, are
 * journaled with their pid so that a resume kills one left running by a dead owner, and count at
 * plan time (the maxAgents refusal, the approval threshold, `fanfold plan`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createRun } from '../../src/engine/lifecycle.js';
import { ownRun } from '../../src/engine/owner.js';
import { getRunner } from '../../src/runners/index.js';
import type { Runner, RunnerInput } from '../../src/runners/types.js';
import { approvalReasons } from '../../src/mcp/approval.js';
import { buildPlan, estimatePlan, renderPlan, SpecError } from '../../src/spec/index.js';
import type { RunnerKind } from '../../src/spec/types.js';
import { alive, fanfold, fanfoldAsync, readJournal, tempDir, until } from '../helpers/cli.js';

let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  dirs = [];
});
function dir(): string {
  const d = fs.realpathSync(tempDir('fanfold-summ-'));
  dirs.push(d);
  return d;
}

/**
 * The real `command` runner, with the cost a model CLI would report: a line `COST <usd>` in the
 * output becomes `costUsd` (and 1000 tokens of usage). It also notes each call's maxBudgetUsd.
 */
function costingRunners(seen: Array<{ taskId: string; maxBudgetUsd?: number }>): (kind: RunnerKind) => Runner {
  const real = getRunner('command');
  return () => ({
    kind: 'command',
    async run(o: RunnerInput) {
      seen.push({ taskId: o.taskId, ...(o.maxBudgetUsd !== undefined ? { maxBudgetUsd: o.maxBudgetUsd } : {}) });
      const res = await real.run(o);
      const m = /COST ([0-9.]+)/.exec(res.output);
      return m ? { ...res, costUsd: Number(m[1]), usage: { inputTokens: 800, outputTokens: 200 } } : res;
    },
  }) as Runner;
}

/** Two map tasks costing $0.50 each, the phase summarized by `summ` (which costs $0.25 and leaves a marker). */
function spec(budgetUsd: number, markerDir: string) {
  return {
    version: 1,
    name: 'summ-budget',
    limits: { maxConcurrent: 2, retries: 0, budget: { usd: budgetUsd, perAgentUsd: 0.5 } },
    agents: {
      worker: { runner: 'command', command: ['sh', '-c', 'echo found widgets in $(cat); echo COST 0.5'] },
      // Tier edit: it writes its marker into the project (a read-only agent is kept from that).
      summ: { runner: 'command', tier: 'edit', command: ['sh', '-c', `touch ${JSON.stringify(path.join(markerDir, 'summarizer-ran'))}; echo SUMMARY of the map; echo COST 0.25`] },
    },
    phases: [{ id: 'map', agent: 'worker', summarize: { agent: 'summ' }, tasks: [{ id: 'a', prompt: 'alpha' }, { id: 'b', prompt: 'beta' }] }],
  };
}

describe('summarizers and the budget', () => {
  it('no summarizer starts once the budget is spent: the extractive digest stands in and says so', async () => {
    const d = dir();
    const root = path.join(d, 'store');
    const runId = await createRun({ root, plan: buildPlan(spec(1, d)), cwd: d });
    const seen: Array<{ taskId: string; maxBudgetUsd?: number }> = [];
    const run = await ownRun({ root, runId, runners: costingRunners(seen) });
    expect(run.spend).toEqual({ usd: 1, tokens: 2000 });
    expect(fs.existsSync(path.join(d, 'summarizer-ran'))).toBe(false);
    expect(seen.map((s) => s.taskId).sort()).toEqual(['a', 'b']);
    const digest = run.phases.find((p) => p.id === 'map')!.digest!;
    expect(digest).toMatch(/found widgets in alpha/);
    expect(digest).toMatch(/\(summarizer 'summ' not started: budget spent: \$1\.00 of limits\.budget\.usd \$1\.00; extractive digest\)/);
    expect(run.summarizers).toEqual([expect.objectContaining({ phaseId: 'map', ref: 'map/_digest', agent: 'summ', status: 'not_started', attempt: 1 })]);
    const journal = readJournal(path.join(root, runId));
    expect(journal.filter((e) => e.type === 'summarizer.finished')).toEqual([expect.objectContaining({ status: 'not_started', cause: expect.stringMatching(/budget spent/) })]);
    expect(journal.some((e) => e.type === 'agent.spawned' && e.ref === 'map/_digest')).toBe(false);
    const report = fs.readFileSync(path.join(root, runId, 'report.md'), 'utf8');
    expect(report).toMatch(/Phase summarizers: 0 agents started \(map\); 1 not started \(budget spent/);
  });

  it('a summarizer that runs gets what is left as its ceiling, is counted in spend and report, and is journaled with its pid', async () => {
    const d = dir();
    const root = path.join(d, 'store');
    const runId = await createRun({ root, plan: buildPlan(spec(10, d)), cwd: d });
    const seen: Array<{ taskId: string; maxBudgetUsd?: number }> = [];
    const run = await ownRun({ root, runId, runners: costingRunners(seen) });
    expect(run.status).toBe('completed');
    expect(fs.existsSync(path.join(d, 'summarizer-ran'))).toBe(true);
    expect(run.phases.find((p) => p.id === 'map')!.digest).toBe('SUMMARY of the map\nCOST 0.25');
    // Two tasks at $0.50 and the summarizer at $0.25: the summarizer's cost is in the run's spend.
    expect(run.spend).toEqual({ usd: 1.25, tokens: 3000 });
    expect(seen.find((s) => s.taskId === 'digest')).toEqual({ taskId: 'digest', maxBudgetUsd: 9 });
    const s = run.summarizers!;
    expect(s).toHaveLength(1);
    expect(s[0]).toMatchObject({ phaseId: 'map', ref: 'map/_digest', status: 'succeeded', attempt: 1, costUsd: 0.25, usage: { inputTokens: 800, outputTokens: 200 } });
    expect(s[0]!.pid).toEqual(expect.any(Number));
    const journal = readJournal(path.join(root, runId));
    const spawned = journal.findIndex((e) => e.type === 'agent.spawned' && e.ref === 'map/_digest');
    const finished = journal.findIndex((e) => e.type === 'summarizer.finished');
    expect(spawned).toBeGreaterThan(-1);
    expect(journal[spawned]).toMatchObject({ attempt: 1, pid: s[0]!.pid });
    expect(finished).toBeGreaterThan(spawned);
    const report = fs.readFileSync(path.join(root, runId, 'report.md'), 'utf8');
    expect(report).toMatch(/Phase summarizers: 1 agent started \(map\); counted below/);
    expect(report).toMatch(/Cost: \$1\.25 \(reported by 3 of 3 agents\)/);
    // `fanfold list` reads the same spend.
    const listed = fanfold(['list', '--json', '--store', root], { cwd: d }).json();
    expect(listed.runs[0].spend).toEqual({ usd: 1.25, tokens: 3000 });
  });
});

describe('a summarizer left running by a dead owner', () => {
  it('is killed by the resume (its pid was journaled), and the resume numbers its own summarizer above it', async () => {
    const d = dir();
    const store = path.join(d, 'store');
    // The summarizer writes a file (it has started); its first attempt then never ends on its own.
    // Unsandboxed, like the claude and codex runners' children: bubblewrap would take a command
    // agent down with its owner (--die-with-parent), and there would be no leftover to find.
    const summ = `echo $$ > ${JSON.stringify(path.join(d, 'summ.pid'))}.$FANFOLD_ATTEMPT; if [ "$FANFOLD_ATTEMPT" = 1 ]; then while true; do sleep 0.1; done; fi; echo SUMMARY`;
    fs.writeFileSync(
      path.join(d, 'spec.json'),
      JSON.stringify({
        version: 1,
        name: 'summ-crash',
        limits: { maxConcurrent: 2, retries: 0 },
        agents: { worker: { runner: 'command', command: ['sh', '-c', 'echo done $(cat)'] }, summ: { runner: 'command', sandbox: 'off', command: ['sh', '-c', summ] } },
        phases: [{ id: 'map', agent: 'worker', summarize: { agent: 'summ' }, tasks: [{ id: 'a', prompt: 'alpha' }] }],
      }),
    );
    const started = fanfold(['run', 'spec.json', '--detach', '--json', '--store', store], { cwd: d });
    expect(started.status, started.stderr).toBe(0);
    const { runId, pid: owner } = started.json();
    const runDir = path.join(store, runId);
    const firstPidFile = path.join(d, 'summ.pid.1');
    let summPid = 0;
    try {
      await until(() => fs.existsSync(firstPidFile) && readJournal(runDir).some((e) => e.type === 'agent.spawned' && e.ref === 'map/_digest'), 30_000, 'the summarizer and its agent.spawned line');
      // The journaled pid is the child's pid on this host (inside a sandbox's pid namespace `$$` differs).
      const spawned = readJournal(runDir).find((e) => e.type === 'agent.spawned' && e.ref === 'map/_digest');
      expect(spawned).toMatchObject({ attempt: 1, pid: expect.any(Number), startTicks: expect.any(Number) });
      summPid = spawned.pid;
      process.kill(owner, 'SIGKILL');
      await until(() => !alive(owner), 10_000, 'owner death');
      expect(alive(summPid)).toBe(true); // its own process group: it outlives the owner

      const resumed = fanfold(['resume', runId, '--json', '--store', store], { cwd: d });
      expect(resumed.status, resumed.stderr).toBe(0);
      expect(resumed.stderr).toMatch(new RegExp(`killed agent map/_digest \\(attempt 1, process group ${summPid}\\)`));
      await until(() => !alive(summPid), 10_000, 'the leftover summarizer to die');
      const journal = readJournal(runDir);
      expect(journal.filter((e) => e.type === 'agent.spawned' && e.ref === 'map/_digest').map((e) => e.attempt)).toEqual([1, 2]);
      expect(journal.filter((e) => e.type === 'summarizer.finished')).toEqual([expect.objectContaining({ attempt: 2, status: 'succeeded' })]);
      const run = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8'));
      expect(run.status).toBe('completed');
      expect(run.summarizers).toEqual([expect.objectContaining({ attempt: 2, status: 'succeeded' })]);
    } finally {
      for (const p of [owner, summPid]) {
        try {
          if (p) process.kill(-p, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
  }, 90_000);
});

describe('summarizers count at plan time', () => {
  const withSumm = (tasks: number, maxAgents: number) => ({
    version: 1,
    name: 'plan-summ',
    limits: { maxAgents },
    agents: { w: { runner: 'command', command: ['true'] }, s: { runner: 'command', command: ['true'] } },
    phases: [
      { id: 'a', agent: 'w', summarize: { agent: 's' }, tasks: Array.from({ length: tasks }, (_, i) => ({ id: `t${i}`, prompt: 'x' })) },
      { id: 'b', agent: 'w', dependsOn: ['a'], summarize: { agent: 's' }, tasks: [{ id: 'u', prompt: 'y' }] },
    ],
  });

  it('refuses a plan whose tasks fit but whose summarizers do not, naming both', () => {
    let err: unknown;
    try {
      buildPlan(withSumm(3, 5));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SpecError);
    expect(String((err as Error).message)).toMatch(/4 tasks and 2 phase summarizers planned \(6 agents\), over limits\.maxAgents 5/);
    expect(() => buildPlan(withSumm(3, 6))).not.toThrow();
  });

  it('the estimate, the approval threshold and the rendered plan count them', () => {
    const plan = buildPlan(withSumm(3, 64));
    expect(plan.agentCount).toBe(4);
    expect(estimatePlan(plan)).toMatchObject({ agents: 6, summarizers: 2, agentsMax: 6 });
    expect(approvalReasons(plan, { agents: 5, usd: 100, commands: false })).toEqual([
      'it starts 6 agents (2 phase summarizers included), more than the 5 that run without approval',
    ]);
    expect(approvalReasons(plan, { agents: 6, usd: 100, commands: false })).toEqual([]);
    const text = renderPlan(plan);
    expect(text.split('\n')[0]).toMatch(/^6 agents \(up to 6\)/);
    expect(text).toContain('Total: 4 tasks and 2 phase summarizers (6 agents at least)');
  });
});
