/**
 * Dynamic phases that loop or isolate, through the built CLI with scripted `command` agents:
 * gates that check, fix and check again (a shell command or a critic agent), converge rounds that
 * stop when they run dry, edits in git worktrees merged back in task order — and SIGKILLed owners
 * in the middle of each, resumed without running anything that had finished or applying a patch
 * twice. Every project is a fresh temp directory; the git ones configure their own identity.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { alive, until } from '../helpers/cli.js';
import { killPids, latest, makeProject, pidsOf, sh, type Project, type Spec } from '../cli/project.js';

// ---- shared helpers ------------------------------------------------------------------------------

/** A foreground `fanfold run --json` of the project's spec, parsed. */
function runSpec(p: Project) {
  const res = p.cli(['run', p.spec, '--json']);
  let status: any;
  try {
    status = JSON.parse(res.stdout);
  } catch {
    throw new Error(`fanfold run printed no JSON (exit ${res.status}): ${res.stderr.slice(-2000)}`);
  }
  return { res, status, runId: status.runId as string };
}

/** Starts a detached owner; returns the run id and the owner's pid. */
function runDetached(p: Project): { runId: string; pid: number } {
  const started = p.cli(['run', p.spec, '--detach', '--json']);
  expect(started.status, started.stderr).toBe(0);
  const { runId, pid } = started.json();
  return { runId, pid };
}

/** A run made once and shared by the tests that read it (each test still asserts on its own). */
function shared<T>(make: () => T): () => T {
  let value: { v: T } | undefined;
  return () => (value ??= { v: make() }).v;
}

/** SIGKILLs an owner and waits until it is gone. */
async function killOwner(pid: number): Promise<void> {
  process.kill(pid, 'SIGKILL');
  await until(() => !alive(pid), 30_000, 'owner death');
}

const ofType = (journal: any[], type: string) => journal.filter((e) => e.type === type);

/** `agent.started` per ref. */
function startedCounts(journal: any[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of ofType(journal, 'agent.started')) out[e.ref] = (out[e.ref] ?? 0) + 1;
  return out;
}

/** Journal events after the last `run.resumed`. */
function afterResume(journal: any[]): any[] {
  const at = journal.findLastIndex((e) => e.type === 'run.resumed');
  expect(at, 'run.resumed in the journal').toBeGreaterThan(-1);
  return journal.slice(at);
}

/** run.json `phases[].dynamic` of one phase. */
function dynamicOf(p: Project, runId: string, phaseId: string): any {
  return p.runJson(runId).phases.find((x: any) => x.id === phaseId)?.dynamic;
}

/** A shell agent with tier edit (it may change files). */
const editor = (script: string) => ({ ...sh(script), tier: 'edit' });

/** `ls <glob> | wc -l`, without the padding some `wc`s add. */
const count = (glob: string) => `$(ls ${glob} 2>/dev/null | wc -l | tr -d ' ')`;

// ---- gate ----------------------------------------------------------------------------------------

/**
 * The check prints 3000 lines of noise, then a marker naming how many fixes have landed, and
 * passes once `fixed-2` exists. The fixer echoes what it was told (stdin) and adds the next marker.
 */
const CHECK = `seq 1 3000; echo "CHECK-MARKER-${count('fixed-*')}"; test -f fixed-2`;
const FIXER = editor(`cat; echo; n=${count('fixed-*')}; touch "fixed-$((n + 1))"; echo "fixed $((n + 1))"`);

function gateSpec(gate: Record<string, unknown>, phase: Record<string, unknown> = {}): Spec {
  return {
    version: 1,
    name: 'gate',
    limits: { retries: 0 },
    agents: { worker: editor('echo "work done"'), fixer: FIXER },
    phases: [
      {
        id: 'build',
        agent: 'worker',
        prompt: 'build it',
        gate: { command: CHECK, maxFailureChars: 300, fix: { agent: 'fixer', prompt: 'FIX run {{iteration}}:\n{{failure}}' }, ...gate },
        ...phase,
      },
      { id: 'ship', dependsOn: ['build'], agent: 'worker', prompt: 'ship it' },
    ],
  };
}

/** A gate that is still failing after its second and last run. */
const outOfRuns = shared(() => {
  const p = makeProject(gateSpec({ maxIterations: 2 }));
  return { p, ...runSpec(p) };
});

describe('gate with a command', () => {
  it('fails twice, hands each fix the bounded failure output, passes on run 3 and completes', () => {
    const p = makeProject(gateSpec({ maxIterations: 3 }));
    const { res, status, runId } = runSpec(p);
    expect(res.status, res.stderr).toBe(0);
    expect(status.status).toBe('completed');

    const j = p.journal(runId);
    expect(ofType(j, 'gate.checked').map((e) => [e.phaseId, e.iteration, e.passed])).toEqual([
      ['build', 1, false],
      ['build', 2, false],
      ['build', 3, true],
    ]);
    expect(ofType(j, 'agent.started').map((e) => e.ref)).toEqual([
      'build/build', 'build/check-1', 'build/fix-1', 'build/check-2', 'build/fix-2', 'build/check-3', 'ship/ship',
    ]);
    // ship waits for the whole gate: it starts only after check-3 passed.
    const shipAt = j.findIndex((e) => e.type === 'agent.started' && e.ref === 'ship/ship');
    const passAt = j.findIndex((e) => e.type === 'gate.checked' && e.passed === true);
    expect(shipAt).toBeGreaterThan(passAt);

    const gate = dynamicOf(p, runId, 'build').gate;
    expect(gate).toMatchObject({ kind: 'command', maxIterations: 3, iterations: 3, passed: true });
    expect(gate.last).toBeUndefined();

    const files = p.agents(runId);
    for (const [iteration, marker] of [[1, 'CHECK-MARKER-0'], [2, 'CHECK-MARKER-1']] as const) {
      const fix = latest(files, `build/fix-${iteration}`);
      expect(fix.status).toBe('succeeded');
      expect(fix.prompt.startsWith(`FIX run ${iteration}:\n`)).toBe(true);
      expect(fix.prompt).toContain('exited with 1');
      // The end of the check's output, where the marker is; the head was cut at maxFailureChars.
      expect(fix.prompt).toContain(marker);
      expect(fix.prompt).not.toMatch(/^1\n2\n3\n/m);
      expect(fix.prompt.length).toBeLessThan(300 + CHECK.length + 100);
      // …and the agent read that prompt on stdin.
      expect(fix.output).toContain(marker);
    }
    // A passing check leaves no further fix behind.
    expect(p.read('fixed-1')).toBe('');
    expect(p.read('fixed-2')).toBe('');
    expect(p.read('fixed-3')).toBeUndefined();

    // The made tasks are in the plan with their origin.
    const made = p.runJson(runId).plan.tasks.filter((t: any) => t.origin).map((t: any) => [t.taskId, t.origin.kind, t.origin.iteration]);
    expect(made).toEqual(expect.arrayContaining([
      ['check-1', 'check', 1], ['fix-1', 'fix', 1], ['check-2', 'check', 2], ['fix-2', 'fix', 2], ['check-3', 'check', 3],
    ]));
    expect(made).toHaveLength(5);
  });

  it('ends the run failed after maxIterations failing runs, naming the phase and the count', () => {
    const { p, res, status, runId } = outOfRuns();
    expect(res.status).toBe(1);
    expect(status.status).toBe('failed');
    expect(status.reason).toContain('gate of phase build still failing after 2 run(s) (maxIterations 2)');
    expect(status.reason).toContain('exited with 1');

    const j = p.journal(runId);
    expect(ofType(j, 'gate.checked').map((e) => [e.iteration, e.passed])).toEqual([[1, false], [2, false]]);
    const started = startedCounts(j);
    expect(started).toEqual({ 'build/build': 1, 'build/check-1': 1, 'build/fix-1': 1, 'build/check-2': 1 });
    expect(p.read('fixed-1')).toBe('');
    expect(p.read('fixed-2')).toBeUndefined();

    const gate = dynamicOf(p, runId, 'build').gate;
    expect(gate).toMatchObject({ kind: 'command', maxIterations: 2, iterations: 2, passed: false });
    expect(gate.last).toContain('exited with 1');

    // status --json, read by another process, says the same.
    const st = p.cli(['status', runId, '--json']).json();
    expect(st.status).toBe('failed');
    expect(st.reason).toContain('still failing after 2');
  });

  it('takes maxIterations from the phase as well, and defaults to 3 runs', () => {
    const alias = makeProject(gateSpec({}, { maxIterations: 2 }));
    const a = runSpec(alias);
    expect(a.status.status).toBe('failed');
    expect(a.status.reason).toContain('still failing after 2 run(s) (maxIterations 2)');
    expect(dynamicOf(alias, a.runId, 'build').gate).toMatchObject({ maxIterations: 2, iterations: 2, passed: false });

    // No maxIterations anywhere: 3 runs, and a check that never passes fails the run after the third.
    const never = makeProject(gateSpec({ command: `echo "NEVER ${count('fixed-*')}"; exit 4` }));
    const n = runSpec(never);
    expect(n.status.status).toBe('failed');
    expect(n.status.reason).toContain('still failing after 3 run(s) (maxIterations 3)');
    expect(n.status.reason).toContain('exited with 4');
    expect(ofType(never.journal(n.runId), 'gate.checked').map((e) => e.passed)).toEqual([false, false, false]);
    expect(startedCounts(never.journal(n.runId))['ship/ship']).toBeUndefined();
    expect(never.read('fixed-2')).toBe('');
    expect(never.read('fixed-3')).toBeUndefined();
  });
});

/** A critic gate on phase `write`; `ship` runs only once the gate passed. */
const criticSpec = (critic: string): Spec => ({
  version: 1,
  name: 'critic',
  limits: { retries: 1, retryBackoff: '10ms' },
  agents: { worker: editor('echo "draft"'), fixer: FIXER, critic: sh(critic) },
  phases: [
    { id: 'write', agent: 'worker', prompt: 'write it', gate: { critic: { agent: 'critic' }, fix: { agent: 'fixer', prompt: 'REVIEW {{iteration}}:\n{{failure}}' } } },
    { id: 'ship', dependsOn: ['write'], agent: 'worker', prompt: 'ship it' },
  ],
});

/** Critic answers that have no boolean `pass`, each run once. */
const JUNK = [
  ['prose', 'echo "looks good to me"'],
  ['JSON without a boolean pass', 'echo \'{"pass": "yes", "reasons": []}\''],
  ['JSON with no pass at all', 'echo \'{"verdict": "fine"}\''],
] as const;
const junkRuns = JUNK.map(([, answer]) => shared(() => {
  const p = makeProject(criticSpec(`cat > /dev/null; ${answer}`));
  return { p, ...runSpec(p) };
}));

describe('gate with a critic', () => {
  it('fails on pass: false, hands the fix its reasons, then passes', () => {
    const p = makeProject(criticSpec(
      'cat > /dev/null; case "$FANFOLD_TASK_ID" in ' +
        'check-1) echo \'{"pass": false, "reasons": ["x is missing", "CRITIC-REASON-2"]}\';; ' +
        '*) echo \'{"pass": true, "reasons": []}\';; esac',
    ));
    const { res, status, runId } = runSpec(p);
    expect(res.status, res.stderr).toBe(0);
    expect(status.status).toBe('completed');
    const j = p.journal(runId);
    expect(ofType(j, 'gate.checked').map((e) => [e.iteration, e.passed])).toEqual([[1, false], [2, true]]);
    expect(dynamicOf(p, runId, 'write').gate).toMatchObject({ kind: 'critic', maxIterations: 3, iterations: 2, passed: true });

    const files = p.agents(runId);
    expect(latest(files, 'write/check-1').structured).toEqual({ pass: false, reasons: ['x is missing', 'CRITIC-REASON-2'] });
    const fix = latest(files, 'write/fix-1');
    expect(fix.prompt).toContain('REVIEW 1:');
    expect(fix.prompt).toContain('x is missing');
    expect(fix.prompt).toContain('CRITIC-REASON-2');
    expect(latest(files, 'write/fix-2')).toBeUndefined();
    expect(startedCounts(j)['ship/ship']).toBe(1);
  });

  JUNK.forEach(([what], i) => {
    it(`never passes on a critic answering ${what}`, () => {
      const { p, res, status, runId } = junkRuns[i]!();
      expect(res.status).toBe(1);
      expect(status.status).toBe('failed');
      const j = p.journal(runId);
      expect(ofType(j, 'gate.checked').filter((e) => e.passed !== false)).toEqual([]);
      expect(dynamicOf(p, runId, 'write')?.gate?.passed).not.toBe(true);
      // What the gate guards never starts.
      expect(startedCounts(j)['ship/ship']).toBeUndefined();
      expect(status.phases.find((x: any) => x.id === 'ship').status).not.toBe('completed');
      // The failure names the critic's check (as a failed task or as a gate still failing).
      expect(status.reason).toMatch(/write\/check-1|gate of phase write/);
    });
  });
});

describe('run totals after a failed dynamic step', () => {
  /** Sums of the phases' counts must equal the run's agent counts. */
  const phaseSum = (status: any, k: string) => status.phases.reduce((n: number, x: any) => n + x[k], 0);

  it('counts agents only, never the virtual steps of a gate out of runs, in the totals and the reason', () => {
    const { status } = outOfRuns();
    expect(status.status).toBe('failed');
    // build, check-1, fix-1 and check-2 ran; ship was skipped. The gate's steps (_gate-2, _done) are not agents.
    // The two checks ran and did not pass: failed checks, neither succeeded work nor crashed agents.
    expect.soft(status.agents).toEqual({ total: 5, succeeded: 2, checkFailed: 2, failed: 0, cancelled: 0, skipped: 1, running: 0, pending: 0 });
    expect.soft(status.agents.total).toBe(phaseSum(status, 'total'));
    expect.soft(status.agents.checkFailed).toBe(phaseSum(status, 'checkFailed'));
    expect.soft(status.reason).toMatch(/; 2\/5 tasks succeeded, 2 gate checks did not pass$/);
  });

  it('counts agents only when a critic check failed and the gate steps after it were skipped', () => {
    const { status } = junkRuns[0]!();
    expect(status.status).toBe('failed');
    // write succeeded, check-1 failed (twice: one retry), ship skipped.
    expect.soft(status.agents).toEqual({ total: 3, succeeded: 1, checkFailed: 0, failed: 1, cancelled: 0, skipped: 1, running: 0, pending: 0 });
    expect.soft(status.agents.skipped).toBe(phaseSum(status, 'skipped'));
    expect.soft(status.reason).toMatch(/^1 task\(s\) failed, 1 skipped/);
  });
});

// ---- converge ------------------------------------------------------------------------------------

/** Findings per round, by the task id's `-r<round>` suffix: fresh 2, 1, 0, 0, then 1. */
const ROUNDS = sh(
  'cat > /dev/null; case "$FANFOLD_TASK_ID" in ' +
    '*-r1) echo \'["a", "b"]\';; *-r2) echo \'["b", "c"]\';; *-r3) echo \'["c"]\';; *-r4) echo \'["a"]\';; *) echo \'["d"]\';; esac',
);

function convergeSpec(converge: Record<string, unknown>, agent: Record<string, unknown> = ROUNDS): Spec {
  return {
    version: 1,
    name: 'converge',
    limits: { retries: 0 },
    agents: { finder: agent, reader: sh('cat') },
    phases: [
      { id: 'find', agent: 'finder', converge, tasks: [{ id: 'find', prompt: 'Round {{round}}. Already found:\n{{seen}}' }] },
      { id: 'use', dependsOn: ['find'], agent: 'reader', prompt: 'use {{digest}}' },
    ],
  };
}

/** run.json converge state of the rounds above with untilDry 2, maxRounds 6. */
const DRY_AFTER_4 = { untilDry: 2, maxRounds: 6, rounds: 4, dryRounds: 2, findings: 3, newPerRound: [2, 1, 0, 0] };

describe('converge', () => {
  it('runs rounds until two in a row find nothing new, handing each round what was seen', () => {
    const p = makeProject(convergeSpec({ untilDry: 2, maxRounds: 6 }));
    const { res, status, runId } = runSpec(p);
    expect(res.status, res.stderr).toBe(0);
    expect(status.status).toBe('completed');

    const j = p.journal(runId);
    expect(ofType(j, 'converge.round').map((e) => [e.round, e.fresh, e.dryRounds])).toEqual([
      [1, 2, 0], [2, 1, 0], [3, 0, 1], [4, 0, 2],
    ]);
    expect(startedCounts(j)).toEqual({ 'find/find-r1': 1, 'find/find-r2': 1, 'find/find-r3': 1, 'find/find-r4': 1, 'use/use': 1 });
    const conv = dynamicOf(p, runId, 'find').converge;
    expect(conv).toMatchObject(DRY_AFTER_4);
    expect(conv.stopped).toMatch(/dry/);

    const files = p.agents(runId);
    expect(latest(files, 'find/find-r1').prompt).toContain('Round 1. Already found:\n(nothing yet)');
    const r2 = latest(files, 'find/find-r2').prompt;
    expect(r2).toContain('Round 2.');
    expect(r2).toMatch(/^- a$/m);
    expect(r2).toMatch(/^- b$/m);
    expect(r2).not.toMatch(/^- c$/m);
    const r3 = latest(files, 'find/find-r3').prompt;
    expect(r3).toContain('Round 3.');
    for (const f of ['a', 'b', 'c']) expect(r3).toMatch(new RegExp(`^- ${f}$`, 'm'));
    // Seen once, listed once: b came back in round 2.
    expect(r3.match(/^- b$/gm)).toHaveLength(1);

    const rounds = p.runJson(runId).plan.tasks.filter((t: any) => t.origin?.kind === 'round').map((t: any) => [t.taskId, t.origin.round]);
    expect(rounds).toEqual([['find-r1', 1], ['find-r2', 2], ['find-r3', 3], ['find-r4', 4]]);
  });

  it('stops at maxRounds even while rounds still find something new', () => {
    const p = makeProject(convergeSpec({ untilDry: 2, maxRounds: 2 }));
    const { status, runId } = runSpec(p);
    expect(status.status).toBe('completed');
    const j = p.journal(runId);
    expect(ofType(j, 'converge.round').map((e) => [e.round, e.fresh, e.dryRounds])).toEqual([[1, 2, 0], [2, 1, 0]]);
    expect(startedCounts(j)['find/find-r3']).toBeUndefined();
    const conv = dynamicOf(p, runId, 'find').converge;
    expect(conv).toMatchObject({ rounds: 2, dryRounds: 0, findings: 3, newPerRound: [2, 1] });
    expect(conv.stopped).toContain('maxRounds');
  });

  it('deduplicates findings by a key path inside each finding, reading them at an items path', () => {
    // Round 2 words both findings differently but names the same files: nothing new by key.
    const agent = sh(
      'cat > /dev/null; case "$FANFOLD_TASK_ID" in ' +
        '*-r1) echo \'{"findings": [{"loc": {"file": "x.ts"}, "msg": "first words"}, {"loc": {"file": "y.ts"}, "msg": "one"}], "notes": []}\';; ' +
        '*-r2) echo \'{"findings": [{"loc": {"file": "y.ts"}, "msg": "other words"}, {"loc": {"file": "x.ts"}, "msg": "again"}], "notes": []}\';; ' +
        '*) echo \'{"findings": [{"loc": {"file": "z.ts"}, "msg": "late"}], "notes": []}\';; esac',
    );
    const keyed = makeProject(convergeSpec({ untilDry: 1, maxRounds: 4, items: 'findings', key: 'loc.file' }, agent));
    const k = runSpec(keyed);
    expect(k.status.status).toBe('completed');
    expect(ofType(keyed.journal(k.runId), 'converge.round').map((e) => [e.round, e.fresh, e.dryRounds])).toEqual([[1, 2, 0], [2, 0, 1]]);
    expect(dynamicOf(keyed, k.runId, 'find').converge).toMatchObject({ rounds: 2, findings: 2, newPerRound: [2, 0] });
    const seen = latest(keyed.agents(k.runId), 'find/find-r2').prompt;
    expect(seen).toContain('first words');
    expect(seen).toContain('x.ts');

    // Without the key the reworded findings count as new, so the loop goes on.
    const whole = makeProject(convergeSpec({ untilDry: 1, maxRounds: 4, items: 'findings' }, agent));
    const w = runSpec(whole);
    expect(w.status.status).toBe('completed');
    expect(ofType(whole.journal(w.runId), 'converge.round').map((e) => e.fresh)).toEqual([2, 2, 1, 0]);
  });
});

// ---- isolation: git worktrees and the merge ------------------------------------------------------

/** The text of `lines.txt`: 30 numbered lines, with the given lines replaced. */
function lines(changed: Record<number, string> = {}): string {
  return Array.from({ length: 30 }, (_, i) => changed[i + 1] ?? `line ${i + 1}`).join('\n') + '\n';
}

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } });
}

/**
 * A project that is a git repository with one commit (lines.txt, a.txt and a .gitignore keeping
 * the store and the test's own logs out of every patch); the spec is made from the directory.
 */
function gitProject(specOf: (dir: string) => Spec): Project {
  const p = makeProject({ version: 1, name: 'placeholder', phases: [{ id: 'x', prompt: 'x' }] });
  fs.writeFileSync(p.file('.gitignore'), 'store/\nspec.json\n*.log\n*.pid\n*.flag\nbin/\n');
  fs.writeFileSync(p.file('lines.txt'), lines());
  fs.writeFileSync(p.file('a.txt'), 'one\ntwo\nthree\n');
  git(p.dir, 'init', '-q');
  git(p.dir, 'config', 'user.name', 'Fanfold Test');
  git(p.dir, 'config', 'user.email', 'test@fanfold.invalid');
  git(p.dir, 'config', 'commit.gpgsign', 'false');
  git(p.dir, 'config', 'core.autocrlf', 'false');
  git(p.dir, 'add', '-A');
  git(p.dir, 'commit', '-q', '-m', 'initial');
  p.writeSpec(specOf(p.dir));
  return p;
}

function worktreeList(dir: string): string[] {
  return git(dir, 'worktree', 'list', '--porcelain').split('\n').filter((l) => l.startsWith('worktree ')).map((l) => l.slice(9));
}

/** Nothing left of any worktree: git knows only the main one, and the run's folder is empty. */
function expectNoWorktrees(p: Project, runId: string): void {
  expect(worktreeList(p.dir)).toEqual([p.dir]);
  const wts = path.join(p.runDir(runId), 'worktrees');
  expect(fs.existsSync(wts) ? fs.readdirSync(wts) : []).toEqual([]);
}

/** An isolated phase `p` of tasks t1..t3 (agent `ed`), and nothing after it. */
function isolatedSpec(script: string, ids = ['t1', 't2', 't3'], where: 'phase' | 'agent' = 'phase'): Spec {
  return {
    version: 1,
    name: 'isolated',
    limits: { retries: 0, maxConcurrent: 4 },
    agents: { ed: { ...editor(script), ...(where === 'agent' ? { isolation: 'worktree' } : {}) } },
    phases: [{ id: 'p', agent: 'ed', ...(where === 'phase' ? { isolation: 'worktree' } : {}), tasks: ids.map((id) => ({ id, prompt: `edit as ${id}` })) }],
  };
}

describe('isolation: worktree', () => {
  it('runs each task in its own worktree and applies the patches to the main tree in task order', () => {
    const p = gitProject((dir) => isolatedSpec(
      // t1 finishes last and t3 first: the merge order is still t1, t2, t3.
      `pwd > "${dir}/cwd-$FANFOLD_TASK_ID.log"; ` +
        'case "$FANFOLD_TASK_ID" in t1) sleep 1;; t2) sleep 0.5;; esac; ' +
        'echo "made by $FANFOLD_TASK_ID" > "out-$FANFOLD_TASK_ID.txt"; echo "wrote out-$FANFOLD_TASK_ID.txt"',
    ));
    const head = git(p.dir, 'rev-parse', 'HEAD').trim();
    const { res, status, runId } = runSpec(p);
    expect(res.status, res.stderr).toBe(0);
    expect(status.status).toBe('completed');

    const runDir = p.runDir(runId);
    const files = p.agents(runId);
    for (const id of ['t1', 't2', 't3']) {
      // The agent ran in its worktree, not in the project.
      expect(p.read(`cwd-${id}.log`)?.trim()).toBe(path.join(runDir, 'worktrees', `p.${id}.1`));
      const rec = latest(files, `p/${id}`);
      expect(rec.status).toBe('succeeded');
      expect(rec.patch).toMatchObject({ base: head, files: [`out-${id}.txt`], truncated: false });
      expect(rec.patch.diff).toContain(`+made by ${id}`);
      expect(p.read(`out-${id}.txt`)).toBe(`made by ${id}\n`);
    }
    const j = p.journal(runId);
    // t1 slept longest and finished after t3: the merge below follows task order, not finish order.
    const finished = ofType(j, 'agent.finished').map((e) => e.ref);
    expect(finished.indexOf('p/t1')).toBeGreaterThan(finished.indexOf('p/t3'));
    expect(ofType(j, 'merge.applied').map((e) => [e.ref, e.files])).toEqual([
      ['p/t1', ['out-t1.txt']], ['p/t2', ['out-t2.txt']], ['p/t3', ['out-t3.txt']],
    ]);
    expect(ofType(j, 'merge.conflict')).toEqual([]);
    expect(dynamicOf(p, runId, 'p').merge).toEqual({ applied: ['p/t1', 'p/t2', 'p/t3'], conflicts: [], empty: 0 });
    expectNoWorktrees(p, runId);
    // Applied to the working tree, never committed.
    expect(git(p.dir, 'rev-parse', 'HEAD').trim()).toBe(head);
    expect(git(p.dir, 'status', '--porcelain').split('\n').filter(Boolean).sort()).toEqual(['?? out-t1.txt', '?? out-t2.txt', '?? out-t3.txt']);
  });

  it('isolates the tasks a forEach makes at run time, and merges them in item order', () => {
    const p = gitProject((dir) => ({
      version: 1,
      name: 'isolated-foreach',
      limits: { retries: 0 },
      agents: {
        lister: sh('echo \'{"files": ["x", "y", "z"]}\''),
        ed: editor(`pwd > "${dir}/cwd-$FANFOLD_TASK_ID.log"; item=$(cat); echo "for $item" > "f-$item.txt"; echo "wrote f-$item.txt"`),
      },
      phases: [
        { id: 'list', agent: 'lister', prompt: 'list files' },
        { id: 'edit', agent: 'ed', isolation: 'worktree', forEach: { from: 'list', items: 'files' }, tasks: [{ id: 'edit', prompt: '{{item}}' }] },
      ],
    }));
    const { res, status, runId } = runSpec(p);
    expect(res.status, res.stderr).toBe(0);
    expect(status.status).toBe('completed');
    const files = p.agents(runId);
    [['edit-1', 'x'], ['edit-2', 'y'], ['edit-3', 'z']].forEach(([id, item]) => {
      expect(p.read(`cwd-${id}.log`)?.trim()).toBe(path.join(p.runDir(runId), 'worktrees', `edit.${id}.1`));
      expect(latest(files, `edit/${id}`).patch.files).toEqual([`f-${item}.txt`]);
      expect(p.read(`f-${item}.txt`)).toBe(`for ${item}\n`);
    });
    expect(ofType(p.journal(runId), 'merge.applied').map((e) => e.ref)).toEqual(['edit/edit-1', 'edit/edit-2', 'edit/edit-3']);
    expect(dynamicOf(p, runId, 'edit')).toMatchObject({ items: { found: 3, made: 3, dropped: 0 }, merge: { applied: ['edit/edit-1', 'edit/edit-2', 'edit/edit-3'], conflicts: [] } });
    expectNoWorktrees(p, runId);
  });

  it('applies the first of two edits to the same line and ends the run failed, naming the conflicting patch', () => {
    const p = gitProject(() => isolatedSpec('sed "s/^two$/TWO by $FANFOLD_TASK_ID/" a.txt > a.new && mv a.new a.txt; echo edited', ['t1', 't2'], 'agent'));
    const { res, status, runId } = runSpec(p);
    expect(res.status).toBe(1);
    expect(status.status).toBe('failed');
    expect(status.reason).toContain('merge conflicts');
    expect(status.reason).toContain('p/t2');
    expect(status.reason).not.toContain('p/t1');

    expect(p.read('a.txt')).toBe('one\nTWO by t1\nthree\n');
    const j = p.journal(runId);
    expect(ofType(j, 'merge.applied').map((e) => e.ref)).toEqual(['p/t1']);
    expect(ofType(j, 'merge.conflict').map((e) => [e.ref, e.files])).toEqual([['p/t2', ['a.txt']]]);
    const merge = dynamicOf(p, runId, 'p').merge;
    expect(merge.applied).toEqual(['p/t1']);
    expect(merge.conflicts).toHaveLength(1);
    expect(merge.conflicts[0]).toMatchObject({ ref: 'p/t2', files: ['a.txt'] });
    expect(merge.conflicts[0].message).toMatch(/\S/);
    // The losing patch is kept whole in its record.
    expect(latest(p.agents(runId), 'p/t2').patch.diff).toContain('+TWO by t2');
    expectNoWorktrees(p, runId);
  });
});

// ---- kill and resume -----------------------------------------------------------------------------

describe('SIGKILL in the middle, then resume', () => {
  it('of a gate loop: nothing that finished runs again, and the loop goes on where it was', async () => {
    // check-2 hangs the first time it runs (after check-1 and fix-1 finished).
    const check = `echo "CHECK-MARKER-${count('fixed-*')}"; ` +
      'if [ -f fixed-1 ] && [ ! -f slept.flag ]; then touch slept.flag; echo $$ > check.pid; exec sleep 30; fi; test -f fixed-2';
    const p = makeProject(gateSpec({ command: check, maxIterations: 3 }));
    const { runId, pid } = runDetached(p);
    try {
      await pidsOf(p, ['check.pid'], 90_000, pid);
      expect(ofType(p.journal(runId), 'agent.finished').map((e) => e.ref)).toEqual(['build/build', 'build/check-1', 'build/fix-1']);
      await killOwner(pid);
      expect(p.cli(['status', runId, '--json']).json().status).toBe('interrupted');

      const resumed = p.cli(['resume', runId, '--json']);
      expect(resumed.status, resumed.stderr).toBe(0);
      expect(resumed.json().status).toBe('completed');
      const j = p.journal(runId);
      expect(startedCounts(j)).toEqual({
        'build/build': 1, 'build/check-1': 1, 'build/fix-1': 1, 'build/check-2': 2, 'build/fix-2': 1, 'build/check-3': 1, 'ship/ship': 1,
      });
      const after = afterResume(j);
      const reused = ofType(after, 'agent.reused').flatMap((e) => e.tasks.map((t: any) => t.ref));
      expect(reused).toEqual(expect.arrayContaining(['build/build', 'build/check-1', 'build/fix-1']));
      // Replayed or new, every verdict agrees with the first run's: runs 1 and 2 failed, run 3 passed.
      const checked = ofType(j, 'gate.checked');
      for (const e of checked) expect(e.passed, `gate run ${e.iteration}`).toBe(e.iteration === 3);
      expect(checked.at(-1)).toMatchObject({ iteration: 3, passed: true });
      expect(ofType(after, 'gate.checked').map((e) => e.iteration)).toEqual(expect.arrayContaining([2, 3]));
      expect(dynamicOf(p, runId, 'build').gate).toMatchObject({ iterations: 3, passed: true });
      expect([p.read('fixed-1'), p.read('fixed-2'), p.read('fixed-3')]).toEqual(['', '', undefined]);
      expect(latest(p.agents(runId), 'build/fix-2').prompt).toContain('CHECK-MARKER-1');
    } finally {
      killPids([pid, ...(/^\d+/.test(p.read('check.pid') ?? '') ? [Number(p.read('check.pid'))] : [])]);
    }
  }, 240_000);

  it('of converge rounds: the resumed run ends with the rounds and dry count of an uninterrupted one', async () => {
    const hang = sh(
      'if [ "$FANFOLD_TASK_ID" = find-r2 ] && [ ! -f slept.flag ]; then touch slept.flag; echo $$ > r2.pid; exec sleep 30; fi; ' +
        (ROUNDS.command[2] as string),
    );
    const p = makeProject(convergeSpec({ untilDry: 2, maxRounds: 6 }, hang));
    const { runId, pid } = runDetached(p);
    try {
      await pidsOf(p, ['r2.pid'], 90_000, pid);
      expect(ofType(p.journal(runId), 'converge.round').map((e) => e.round)).toEqual([1]);
      await killOwner(pid);

      const resumed = p.cli(['resume', runId, '--json']);
      expect(resumed.status, resumed.stderr).toBe(0);
      expect(resumed.json().status).toBe('completed');
      const j = p.journal(runId);
      expect(startedCounts(j)).toEqual({ 'find/find-r1': 1, 'find/find-r2': 2, 'find/find-r3': 1, 'find/find-r4': 1, 'use/use': 1 });
      // Each round counted the same whether it was counted before the kill, replayed, or new.
      const counted = new Map<number, string>();
      for (const e of ofType(j, 'converge.round')) {
        const c = `${e.fresh}/${e.dryRounds}`;
        expect(counted.get(e.round) ?? c, `round ${e.round}`).toBe(c);
        counted.set(e.round, c);
      }
      expect(Object.fromEntries(counted)).toEqual({ 1: '2/0', 2: '1/0', 3: '0/1', 4: '0/2' });
      expect(ofType(j, 'converge.round').at(-1)).toMatchObject({ round: 4, dryRounds: 2 });
      expect(dynamicOf(p, runId, 'find').converge).toMatchObject(DRY_AFTER_4);
      // Round 3 was made from the stored answers of rounds 1 and 2, as it would have been.
      const r3 = latest(p.agents(runId), 'find/find-r3').prompt;
      for (const f of ['a', 'b', 'c']) expect(r3).toMatch(new RegExp(`^- ${f}$`, 'm'));
    } finally {
      killPids([pid, ...(/^\d+/.test(p.read('r2.pid') ?? '') ? [Number(p.read('r2.pid'))] : [])]);
    }
  }, 240_000);

  /** Each task changes one line of lines.txt, far enough apart that the patches apply in any order. */
  const EDIT_LINE = 'case "$FANFOLD_TASK_ID" in t1) n=2;; t2) n=15;; *) n=28;; esac; ' +
    'sed "${n}s/.*/line $n by $FANFOLD_TASK_ID/" lines.txt > lines.new && mv lines.new lines.txt; echo "edited line $n"';
  const EDITED = lines({ 2: 'line 2 by t1', 15: 'line 15 by t2', 28: 'line 28 by t3' });

  it('of an isolated phase while one task still runs: finished patches are kept, each applied once', async () => {
    const p = gitProject((dir) => isolatedSpec(
      `if [ "$FANFOLD_TASK_ID" = t3 ] && [ ! -f "${dir}/slept.flag" ]; then touch "${dir}/slept.flag"; echo $$ > "${dir}/t3.pid"; exec sleep 30; fi; ` +
        EDIT_LINE,
    ));
    const { runId, pid } = runDetached(p);
    try {
      // Generous waits: each attempt creates a git worktree, slow on a loaded 2-core machine.
      await pidsOf(p, ['t3.pid'], 90_000, pid);
      await until(() => ofType(p.journal(runId), 'agent.finished').length === 2, 90_000, 't1 and t2 finished');
      const before = p.agents(runId);
      expect(latest(before, 'p/t1').patch.files).toEqual(['lines.txt']);
      expect(latest(before, 'p/t2').patch.files).toEqual(['lines.txt']);
      await killOwner(pid);
      expect(p.read('lines.txt')).toBe(lines()); // nothing merged yet
      expect(worktreeList(p.dir)).toContain(path.join(p.runDir(runId), 'worktrees', 'p.t3.1'));

      const resumed = p.cli(['resume', runId, '--json']);
      expect(resumed.status, resumed.stderr).toBe(0);
      expect(resumed.json().status).toBe('completed');
      expect(resumed.stderr).toContain(`removed worktree ${path.join(p.runDir(runId), 'worktrees', 'p.t3.1')}`);
      expect(p.read('lines.txt')).toBe(EDITED);
      const j = p.journal(runId);
      expect(startedCounts(j)).toEqual({ 'p/t1': 1, 'p/t2': 1, 'p/t3': 2 });
      expect(ofType(j, 'merge.applied').map((e) => e.ref)).toEqual(['p/t1', 'p/t2', 'p/t3']);
      expect(ofType(j, 'merge.conflict')).toEqual([]);
      expect(dynamicOf(p, runId, 'p').merge).toEqual({ applied: ['p/t1', 'p/t2', 'p/t3'], conflicts: [], empty: 0 });
      expectNoWorktrees(p, runId);
    } finally {
      killPids([pid, ...(/^\d+/.test(p.read('t3.pid') ?? '') ? [Number(p.read('t3.pid'))] : [])]);
    }
  }, 240_000);

  it('of the merge itself, after a patch was applied but before it was journaled: resume applies nothing twice', async () => {
    const realGit = execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim();
    const p = gitProject(() => isolatedSpec(EDIT_LINE));
    // A git on PATH for the first owner only: the second `git apply` that writes (the patch of
    // p/t2) goes through, then hangs before the owner can journal it.
    fs.mkdirSync(p.file('bin'));
    fs.writeFileSync(p.file('bin/git'), `#!/bin/sh
if [ "$1" = apply ]; then
  case " $* " in
    *" --check "*) ;;
    *) echo "$*" >> "${p.dir}/applies.log"
       if [ "$(wc -l < "${p.dir}/applies.log" | tr -d ' ')" = 2 ]; then
         "${realGit}" "$@" || exit $?
         echo $$ > "${p.dir}/git.pid"
         exec sleep 30
       fi;;
  esac
fi
exec "${realGit}" "$@"
`, { mode: 0o755 });
    const started = p.cli(['run', p.spec, '--detach', '--json'], { env: { PATH: `${p.file('bin')}${path.delimiter}${process.env.PATH}` } });
    expect(started.status, started.stderr).toBe(0);
    const { runId, pid } = started.json();
    try {
      // Generous: three worktrees, three agents and two merges come first; on a loaded 2-core
      // machine that took longer than 20 s once. A dead owner fails the wait at once.
      await pidsOf(p, ['git.pid'], 150_000, pid);
      expect(ofType(p.journal(runId), 'merge.applied').map((e) => e.ref)).toEqual(['p/t1']);
      expect(p.read('lines.txt')).toBe(lines({ 2: 'line 2 by t1', 15: 'line 15 by t2' }));
      await killOwner(pid);
      killPids([Number(p.read('git.pid'))]);

      const resumed = p.cli(['resume', runId, '--json']);
      expect(resumed.status, resumed.stderr).toBe(0);
      expect(resumed.json().status).toBe('completed');
      expect(p.read('lines.txt')).toBe(EDITED);
      const j = p.journal(runId);
      expect(startedCounts(j)).toEqual({ 'p/t1': 1, 'p/t2': 1, 'p/t3': 1 });
      expect(ofType(j, 'merge.conflict')).toEqual([]);
      // t1 journaled before the kill, t3 after the resume; t2 was found already in the tree.
      expect(ofType(j, 'merge.applied').map((e) => e.ref)).toEqual(['p/t1', 'p/t3']);
      const merge = dynamicOf(p, runId, 'p').merge;
      expect([...merge.applied].sort()).toEqual(['p/t1', 'p/t2', 'p/t3']);
      expect(merge.conflicts).toEqual([]);
      expect(p.read('applies.log')?.split('\n').filter(Boolean)).toHaveLength(2); // the resumed owner used the real git
      expectNoWorktrees(p, runId);
    } finally {
      killPids([pid, ...(/^\d+/.test(p.read('git.pid') ?? '') ? [Number(p.read('git.pid'))] : [])]);
    }
  }, 300_000);
});
