/**
 * Regression tests for the bugs a review found in the dynamic engine (one `describe` per fix),
 * through the built CLI with scripted `command`-runner agents in fresh temp projects: growth onto
 * a phase that already ended, engine-like template ids, forEach over verified or gated sources,
 * pipeline stages under `resume --spec`, each phase's share of limits.maxAgents across a resume,
 * converge and gates under a tight maxAgents, what checks and fixes see, unreadable findings, and
 * replayed gate decisions journaled once.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  STORE,
  cli,
  events,
  fanfold,
  latestRecords,
  phaseState,
  project,
  readRun,
  runSpec,
  script,
  startsByRef,
  writeSpec,
} from './dynamic-helpers.js';

/** A script body that works in its project directory (agents' cwd is not assumed). */
const inDir = (body: string) => `cd "$(dirname "$0")"\n${body}\n`;

/** A script that drains its prompt and prints a fixed JSON answer. */
const answer = (json: unknown) => inDir(`cat >/dev/null\necho '${JSON.stringify(json)}'`);

/** A skeptic that refutes a finding whose prompt contains `word`, and confirms the others. */
const refuting = (word: string) =>
  inDir(`if grep -q '${word}'; then echo '{"refuted":true,"reasons":"not real"}'; else echo '{"refuted":false,"reasons":"real"}'; fi`);

const CONFIRMING = answer({ refuted: false, reasons: 'ok' });

/** `fanfold resume <runId> --spec <file>` in `dir`. */
function resumeWithSpec(dir: string, runId: string, spec: string) {
  return fanfold(['resume', runId, '--spec', spec, '--json', '--store', STORE], { cwd: dir, timeoutMs: 30_000 });
}

/** The refs of run.json's plan tasks. */
const planRefs = (run: any): string[] => run.plan.tasks.map((t: any) => t.ref);

// The agents below leave marker files and read scripts from the test's folder: they run with
// `sandbox: off` (these tests are about the engine; tests/runners/sandbox.test.ts covers the sandbox).

// ---- 1. growth onto a phase that has already ended -----------------------------------------------

describe('converge + verify under onFailure: continue, with a failing skeptic', () => {
  /**
   * Round 1 finds two things; their skeptic fails, which ends the phase. Round 2 waits until the
   * skeptic has failed, then reports a new finding: its growth lands on the ended phase.
   */
  function growOntoEnded() {
    const dir = project({
      'scout.sh': inDir(`cat >/dev/null
if [ "$FANFOLD_TASK_ID" = find-r1 ]; then echo '{"items":["a","b"]}'; exit 0; fi
for i in $(seq 1 100); do [ -f skeptic-failed ] && break; sleep 0.05; done
sleep 0.4
echo '{"items":["c"]}'`),
      'skeptic.sh': inDir('cat >/dev/null\ntouch skeptic-failed\necho "skeptic broke" >&2\nexit 1'),
    });
    writeSpec(dir, `version: 1
name: grow-onto-ended
limits: { maxConcurrent: 4, maxAgents: 50, retries: 0 }
agents:
  scout: { runner: command, command: ${script(dir, 'scout.sh')}, sandbox: off }
  skeptic: { runner: command, command: ${script(dir, 'skeptic.sh')}, sandbox: off }
phases:
  - id: hunt
    agent: scout
    onFailure: continue
    converge: { untilDry: 1, maxRounds: 3 }
    verify: { skeptics: 1 }
    tasks: [{ id: find, prompt: "Round {{round}} seen {{seen}}" }]
`);
    return { dir, run: runSpec(dir, 'spec.yaml', 20_000) };
  }

  it('ends the run failed naming the skeptic (no owner crash), and a resume of it ends too', () => {
    const { dir, run } = growOntoEnded();
    expect(run.stderr).not.toMatch(/cannot extend|is closed/);
    expect(run.status).toBe('failed');
    expect(run.code).not.toBe(0);
    const state = readRun(run.runDir);
    expect(state.status).toBe('failed');
    expect(state.reason).toMatch(/hunt\/skeptic-\d+-1/);
    expect(latestRecords(run.runDir).get('hunt/find-r2')?.status).toBe('succeeded');

    const again = cli(dir, 'resume', run.runId, 20_000);
    expect(again.error, 'resume must end on its own').toBeUndefined();
    expect(again.signal).toBeNull();
    expect(again.stderr).not.toMatch(/cannot extend|is closed/);
    expect(again.json().status).toBe('failed');
    const after = readRun(run.runDir);
    expect(after.status).toBe('failed');
    expect(after.reason).toMatch(/skeptic/);
  });

  it('leaves no task pending in the ended run: the dropped growth is not counted as waiting', () => {
    const { run } = growOntoEnded();
    expect(run.status).toBe('failed');
    const counts = phaseState(readRun(run.runDir), 'hunt').counts;
    expect(counts.running).toBe(0);
    expect(counts.pending).toBe(0);
  });
});

// ---- 2. engine-like template ids; forEach over fix-named and gated sources -------------------------

describe('template ids that look like the engine’s tasks', () => {
  const cases: { id: string; extra: string }[] = [
    { id: 'check', extra: 'gate: { command: "true" }' },
    { id: 'fix', extra: 'gate: { command: "true" }' },
    { id: 'skeptic', extra: 'verify: { skeptics: 1 }' },
  ];
  it.each(cases)('refuses template $id in a forEach phase with $extra at plan time, naming the field', ({ id, extra }) => {
    const dir = project({ 'src.sh': answer(['x', 'y']), 'echo.sh': inDir('cat') });
    writeSpec(dir, `version: 1
name: reserved
limits: { retries: 0 }
agents:
  src: { runner: command, command: ${script(dir, 'src.sh')}, sandbox: off }
  echo: { runner: command, command: ${script(dir, 'echo.sh')}, tier: edit, sandbox: off }
  skeptic: { runner: command, command: ${script(dir, 'echo.sh')}, sandbox: off }
phases:
  - id: src
    agent: src
    prompt: list
  - id: each
    dependsOn: [src]
    agent: echo
    forEach: { from: src }
    ${extra}
    tasks: [{ id: ${id}, prompt: "do {{item}}" }]
`);
    const r = fanfold(['plan', 'spec.yaml'], { cwd: dir });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('phases[1].tasks[0].id');
    expect(r.stderr).toContain(`'${id}'`);
  });

  it("reads items from every task of an ungated source phase whose template is named 'fix'", () => {
    const dir = project({ 'src.sh': answer(['x', 'y']), 'lister.sh': inDir('cat >/dev/null\necho "[\\"$FANFOLD_TASK_ID-item\\"]"'), 'echo.sh': inDir('cat') });
    writeSpec(dir, `version: 1
name: fix-template
limits: { retries: 0 }
agents:
  src: { runner: command, command: ${script(dir, 'src.sh')}, sandbox: off }
  lister: { runner: command, command: ${script(dir, 'lister.sh')}, sandbox: off }
  echo: { runner: command, command: ${script(dir, 'echo.sh')}, sandbox: off }
phases:
  - id: src
    agent: src
    prompt: list
  - id: a
    dependsOn: [src]
    agent: lister
    forEach: { from: src }
    tasks: [{ id: fix, prompt: "fix {{item}}" }]
  - id: b
    dependsOn: [a]
    agent: echo
    forEach: { from: a }
    tasks: [{ id: u, prompt: "B {{item}}" }]
`);
    const run = runSpec(dir);
    expect(run.code, run.stderr).toBe(0);
    const state = readRun(run.runDir);
    expect(phaseState(state, 'b').dynamic.items).toMatchObject({ found: 2, made: 2, dropped: 0 });
    const recs = latestRecords(run.runDir);
    expect(recs.get('b/u-1')?.prompt).toBe('B fix-1-item');
    expect(recs.get('b/u-2')?.prompt).toBe('B fix-2-item');
  });

  it('takes the items of a gated source from its work, never from its fix tasks', () => {
    // The source's gate fails once, so fix-1 runs and prints something that looks like a list.
    const dir = project({
      'work.sh': answer(['w1', 'w2']),
      'fixer.sh': inDir('cat >/dev/null\ntouch gate-ok\necho \'["FIX-A","FIX-B"]\''),
      'echo.sh': inDir('cat'),
    });
    writeSpec(dir, `version: 1
name: gated-source
limits: { retries: 0 }
agents:
  work: { runner: command, command: ${script(dir, 'work.sh')}, tier: edit, sandbox: off }
  fixer: { runner: command, command: ${script(dir, 'fixer.sh')}, tier: edit, sandbox: off }
  echo: { runner: command, command: ${script(dir, 'echo.sh')}, sandbox: off }
phases:
  - id: src
    agent: work
    gate: { command: "test -f gate-ok", maxIterations: 2, fix: { agent: fixer } }
    prompt: list
  - id: each
    dependsOn: [src]
    agent: echo
    forEach: { from: src }
    tasks: [{ id: t, prompt: "E {{item}}" }]
`);
    const run = runSpec(dir);
    expect(run.code, run.stderr).toBe(0);
    const recs = latestRecords(run.runDir);
    expect(recs.get('src/fix-1')?.status).toBe('succeeded');
    const state = readRun(run.runDir);
    expect(phaseState(state, 'each').dynamic.items).toMatchObject({ found: 2, made: 2 });
    const prompts = [...recs.values()].filter((r) => r.phaseId === 'each').map((r) => r.prompt).sort();
    expect(prompts).toEqual(['E w1', 'E w2']);
  });
});

// ---- 3. forEach over a verified phase --------------------------------------------------------------

describe('forEach from a verified phase', () => {
  it('makes tasks for confirmed findings only; items.found counts the confirmed ones', () => {
    const dir = project({
      'finder.sh': answer({ bugs: ['real-bug', 'fake-bug'] }),
      'skeptic.sh': refuting('fake-bug'),
      'echo.sh': inDir('cat'),
    });
    writeSpec(dir, `version: 1
name: verified-source
limits: { retries: 0 }
agents:
  finder: { runner: command, command: ${script(dir, 'finder.sh')}, sandbox: off }
  skeptic: { runner: command, command: ${script(dir, 'skeptic.sh')}, sandbox: off }
  fixer: { runner: command, command: ${script(dir, 'echo.sh')}, sandbox: off }
phases:
  - id: find
    agent: finder
    verify: { skeptics: 1 }
    prompt: "find bugs"
  - id: fix
    dependsOn: [find]
    agent: fixer
    forEach: { from: find }
    tasks: [{ id: fixit, prompt: "Fix {{item}}" }]
`);
    const run = runSpec(dir);
    expect(run.code, run.stderr).toBe(0);
    const state = readRun(run.runDir);
    expect(phaseState(state, 'find').dynamic.verify).toMatchObject({ confirmed: 1, refuted: 1 });
    expect(phaseState(state, 'fix').dynamic.items).toMatchObject({ found: 1, made: 1, dropped: 0 });
    expect(planRefs(state).filter((r) => r.startsWith('fix/'))).toEqual(['fix/fixit-1']);
    expect(latestRecords(run.runDir).get('fix/fixit-1')?.prompt).toBe('Fix real-bug');
  });
});

// ---- 4. resume --spec and a pipeline stage after a changed forEach ---------------------------------

describe('resume --spec with a changed forEach template that a pipeline stage follows', () => {
  it('runs the phase after the pipeline stage again, with the new text', () => {
    const dir = project({
      'src.sh': answer(['x', 'y']),
      'echo.sh': inDir('cat'),
      'last.sh': inDir('cat >/dev/null\ncat "$FANFOLD_CONTEXT_FILE"'),
      'gate.sh': inDir('cat >/dev/null\ntest -f flag'),
    });
    const spec = (version: string) => `version: 1
name: pipeline-resume
limits: { maxConcurrent: 4, retries: 0 }
agents:
  src: { runner: command, command: ${script(dir, 'src.sh')}, sandbox: off }
  echo: { runner: command, command: ${script(dir, 'echo.sh')}, sandbox: off }
  last: { runner: command, command: ${script(dir, 'last.sh')}, sandbox: off }
  gate2: { runner: command, command: ${script(dir, 'gate.sh')}, sandbox: off }
phases:
  - id: src
    agent: src
    prompt: list
  - id: a
    dependsOn: [src]
    agent: echo
    forEach: { from: src }
    tasks: [{ id: t, prompt: "A-${version} {{item}}" }]
  - id: b
    dependsOn: [a]
    mode: pipeline
    agent: echo
    tasks: [{ id: u, prompt: "B {{item}} prev={{prev}}" }]
  - id: d
    dependsOn: [b]
    agent: last
    prompt: final
  - id: e
    dependsOn: [d]
    agent: gate2
    prompt: e
`;
    writeSpec(dir, spec('v1'));
    writeSpec(dir, spec('v2'), 'spec2.yaml');
    const run = runSpec(dir);
    expect(run.status).toBe('failed');
    const first = latestRecords(run.runDir).get('d/d');
    expect(first.attempt).toBe(1);
    expect(first.output).toContain('A-v1');

    fs.writeFileSync(path.join(dir, 'flag'), '');
    const r = resumeWithSpec(dir, run.runId, 'spec2.yaml');
    expect(r.status, r.stderr).toBe(0);
    expect(r.json().status).toBe('completed');
    const recs = latestRecords(run.runDir);
    expect(recs.get('b/u-1').output).toContain('A-v2');
    const d = recs.get('d/d');
    expect(d.attempt).toBe(2);
    expect(d.output).toContain('A-v2');
    expect(d.output).not.toContain('A-v1');
  });
});

// ---- 5. two forEach phases sharing limits.maxAgents across a resume --------------------------------

describe('two forEach phases sharing limits.maxAgents', () => {
  it('keeps the same item tasks after a resume: none made anew, none that ran dropped, the total within maxAgents', () => {
    // s1 lists fast, so phase a takes its four items first; s2 is slow, and b gets the one place
    // left. On resume both lists are reused at once: each phase must keep its share.
    const dir = project({
      'fast.sh': answer(['a1', 'a2', 'a3', 'a4']),
      'slow.sh': inDir(`cat >/dev/null\nsleep 0.6\necho '["b1","b2","b3","b4"]'`),
      'echo.sh': inDir('cat >/dev/null\necho "$FANFOLD_TASK_ID"'),
      'last.sh': inDir('cat >/dev/null\ntest -f flag'),
    });
    writeSpec(dir, `version: 1
name: shared-room
limits: { maxConcurrent: 2, maxAgents: 8, retries: 0 }
agents:
  fast: { runner: command, command: ${script(dir, 'fast.sh')}, sandbox: off }
  slow: { runner: command, command: ${script(dir, 'slow.sh')}, sandbox: off }
  echo: { runner: command, command: ${script(dir, 'echo.sh')}, sandbox: off }
  last: { runner: command, command: ${script(dir, 'last.sh')}, sandbox: off }
phases:
  - id: s2
    agent: slow
    prompt: list
  - id: s1
    agent: fast
    prompt: list
  - id: b
    dependsOn: [s2]
    agent: echo
    forEach: { from: s2 }
    tasks: [{ id: t, prompt: "B {{item}}" }]
  - id: a
    dependsOn: [s1]
    agent: echo
    forEach: { from: s1 }
    tasks: [{ id: t, prompt: "A {{item}}" }]
  - id: z
    dependsOn: [a, b]
    agent: last
    prompt: z
`);
    const run = runSpec(dir);
    expect(run.status).toBe('failed');
    const before = readRun(run.runDir);
    const refsBefore = planRefs(before).sort();
    expect(refsBefore.length).toBeLessThanOrEqual(8);
    const ranBefore = new Set(startsByRef(run.runDir).keys());

    fs.writeFileSync(path.join(dir, 'flag'), '');
    const r = cli(dir, 'resume', run.runId);
    expect(r.status, r.stderr).toBe(0);
    expect(r.json().status).toBe('completed');
    const after = readRun(run.runDir);
    expect(planRefs(after).sort()).toEqual(refsBefore);
    expect(planRefs(after).length).toBeLessThanOrEqual(8);
    for (const ref of ranBefore) expect(planRefs(after)).toContain(ref);
    // Only the failed last phase ran again.
    const starts = startsByRef(run.runDir);
    expect([...starts].filter(([, n]) => n > 1).map(([ref]) => ref)).toEqual(['z/z']);
    expect([...starts.keys()].filter((ref) => !ranBefore.has(ref))).toEqual([]);
    for (const id of ['a', 'b']) expect(phaseState(after, id).dynamic.items).toEqual(phaseState(before, id).dynamic.items);
  });

  it('keeps no room for the tasks of a phase that resume --spec removed', () => {
    // Run 1: b makes four item tasks, z fails. The changed spec replaces b by c over the same
    // list: b's tasks will never be made again, so c has the room they had (as in a fresh run).
    const dir = project({
      'src.sh': answer(['i1', 'i2', 'i3', 'i4']),
      'echo.sh': inDir('cat'),
      'last.sh': inDir('cat >/dev/null\ntest -f flag'),
    });
    const spec = (id: string) => `version: 1
name: stale-room
limits: { maxConcurrent: 2, maxAgents: 6, retries: 0 }
agents:
  src: { runner: command, command: ${script(dir, 'src.sh')}, sandbox: off }
  echo: { runner: command, command: ${script(dir, 'echo.sh')}, sandbox: off }
  last: { runner: command, command: ${script(dir, 'last.sh')}, sandbox: off }
phases:
  - id: s1
    agent: src
    prompt: list
  - id: ${id}
    dependsOn: [s1]
    agent: echo
    forEach: { from: s1 }
    tasks: [{ id: t, prompt: "${id} {{item}}" }]
  - id: z
    dependsOn: [${id}]
    agent: last
    prompt: z
`;
    writeSpec(dir, spec('b'));
    writeSpec(dir, spec('c'), 'spec2.yaml');
    const run = runSpec(dir);
    expect(run.status).toBe('failed');
    expect(phaseState(readRun(run.runDir), 'b').dynamic.items).toMatchObject({ found: 4, made: 4 });

    fs.writeFileSync(path.join(dir, 'flag'), '');
    const r = resumeWithSpec(dir, run.runId, 'spec2.yaml');
    expect(r.status, r.stderr).toBe(0);
    const after = readRun(run.runDir);
    expect(phaseState(after, 'c').dynamic.items).toMatchObject({ found: 4, made: 4, dropped: 0 });
    expect(after.plan.tasks.length).toBeLessThanOrEqual(6);
  });
});

// ---- 6. converge + verify within limits.maxAgents --------------------------------------------------

describe('converge + verify under a tight limits.maxAgents', () => {
  it('never makes more tasks than maxAgents, counting the skeptics', () => {
    // Every round finds two new things (named after the round), so only the limit stops it.
    const dir = project({
      'scout.sh': inDir('cat >/dev/null\necho "{\\"items\\":[\\"$FANFOLD_TASK_ID-x\\",\\"$FANFOLD_TASK_ID-y\\"]}"'),
      'skeptic.sh': CONFIRMING,
    });
    writeSpec(dir, `version: 1
name: converge-room
limits: { maxConcurrent: 4, maxAgents: 6, retries: 0 }
agents:
  scout: { runner: command, command: ${script(dir, 'scout.sh')}, sandbox: off }
  skeptic: { runner: command, command: ${script(dir, 'skeptic.sh')}, sandbox: off }
phases:
  - id: hunt
    agent: scout
    converge: { untilDry: 1, maxRounds: 5 }
    verify: { skeptics: 1 }
    tasks: [{ id: find, prompt: "Round {{round}} seen {{seen}}" }]
`);
    const run = runSpec(dir);
    expect(run.code, run.stderr).toBe(0);
    const state = readRun(run.runDir);
    expect(state.plan.tasks.length).toBeLessThanOrEqual(6);
    expect(startsByRef(run.runDir).size).toBeLessThanOrEqual(6);
    expect(phaseState(state, 'hunt').dynamic.converge.stopped).toMatch(/limits\.maxAgents 6/);
  });
});

// ---- 7. the gate keeps room for its check ----------------------------------------------------------

describe('forEach + verify + gate under a tight limits.maxAgents', () => {
  it('keeps room for the gate: it runs and passes, and the dropped items are reported', () => {
    const dir = project({
      'src.sh': answer(['a', 'b', 'c', 'd', 'e']),
      'echo.sh': inDir('cat'),
      'skeptic.sh': CONFIRMING,
    });
    writeSpec(dir, `version: 1
name: gate-room
limits: { maxConcurrent: 4, maxAgents: 4, retries: 0 }
agents:
  src: { runner: command, command: ${script(dir, 'src.sh')}, sandbox: off }
  echo: { runner: command, command: ${script(dir, 'echo.sh')}, tier: edit, sandbox: off }
  skeptic: { runner: command, command: ${script(dir, 'skeptic.sh')}, sandbox: off }
phases:
  - id: src
    agent: src
    prompt: list
  - id: each
    dependsOn: [src]
    agent: echo
    forEach: { from: src }
    verify: { skeptics: 1 }
    gate: { command: "true" }
    tasks: [{ id: t, prompt: "E {{item}}" }]
`);
    const run = runSpec(dir);
    expect(run.stdout).not.toMatch(/no room for the gate/);
    expect(run.code, run.stderr).toBe(0);
    expect(run.status).toBe('completed');
    const state = readRun(run.runDir);
    expect(state.plan.tasks.length).toBeLessThanOrEqual(4);
    expect(events(run.runDir, 'gate.checked').map((e) => [e.phaseId, e.iteration, e.passed])).toEqual([['each', 1, true]]);
    const each = phaseState(state, 'each').dynamic;
    expect(each.gate).toMatchObject({ passed: true, iterations: 1 });
    expect(each.items.dropped).toBeGreaterThan(0);
    expect(each.items.made + each.items.dropped).toBe(5);
    expect(each.items.dropReason).toMatch(/limits\.maxAgents 4/);
  });
});

// ---- 8. checks and fixes see the phase's work ------------------------------------------------------

describe('a critic gate that fails once', () => {
  it("gives check-2 and fix-1 the phase's work outputs in their context", () => {
    const dir = project({
      'writer.sh': inDir('cat >/dev/null\necho "REPORT BODY by $FANFOLD_TASK_ID"'),
      'critic.sh': inDir(`cat >/dev/null
cp "$FANFOLD_CONTEXT_FILE" "seen-$FANFOLD_TASK_ID.json"
if [ "$FANFOLD_TASK_ID" = check-1 ]; then echo '{"pass":false,"reasons":["missing totals"]}'; else echo '{"pass":true,"reasons":[]}'; fi`),
    });
    writeSpec(dir, `version: 1
name: critic-context
limits: { retries: 0 }
agents:
  writer: { runner: command, command: ${script(dir, 'writer.sh')}, tier: edit, sandbox: off }
  critic: { runner: command, command: ${script(dir, 'critic.sh')}, sandbox: off }
phases:
  - id: draft
    agent: writer
    gate: { critic: { agent: critic }, maxIterations: 3 }
    prompt: write
`);
    const run = runSpec(dir);
    expect(run.code, run.stderr).toBe(0);
    expect(events(run.runDir, 'gate.checked').map((e) => [e.iteration, e.passed])).toEqual([[1, false], [2, true]]);

    const outputsOf = (ctx: any) => Object.fromEntries(ctx.deps.map((d: any) => [d.ref, d.output]));
    const check2 = JSON.parse(fs.readFileSync(path.join(dir, 'seen-check-2.json'), 'utf8'));
    expect(outputsOf(check2)).toMatchObject({ 'draft/draft': 'REPORT BODY by draft\n', 'draft/fix-1': 'REPORT BODY by fix-1\n' });
    // The same file as the run keeps it for audit.
    const stored = JSON.parse(fs.readFileSync(path.join(run.runDir, 'inputs', 'draft.check-2.1.context.json'), 'utf8'));
    expect(outputsOf(stored)['draft/draft']).toBe('REPORT BODY by draft\n');

    const fix1 = JSON.parse(fs.readFileSync(path.join(run.runDir, 'inputs', 'draft.fix-1.1.context.json'), 'utf8'));
    expect(outputsOf(fix1)['draft/draft']).toBe('REPORT BODY by draft\n');
  });
});

// ---- 9. unreadable findings fail the step ----------------------------------------------------------

describe('a wrong items path for verify or converge', () => {
  const cases = [
    { what: 'verify', phase: 'verify: { skeptics: 1, items: bugs }\n    prompt: find' },
    { what: 'converge', phase: 'converge: { items: bugs, maxRounds: 3 }\n    tasks: [{ id: h, prompt: "r{{round}}" }]' },
  ];
  it.each(cases)('fails the run saying $what cannot read its findings', ({ what, phase }) => {
    const dir = project({ 'f.sh': answer({ issues: ['i1', 'i2'] }), 'skeptic.sh': CONFIRMING });
    writeSpec(dir, `version: 1
name: wrong-path
limits: { retries: 0 }
agents:
  f: { runner: command, command: ${script(dir, 'f.sh')}, sandbox: off }
  skeptic: { runner: command, command: ${script(dir, 'skeptic.sh')}, sandbox: off }
phases:
  - id: find
    agent: f
    ${phase}
`);
    const run = runSpec(dir);
    expect(run.code).not.toBe(0);
    expect(run.status).toBe('failed');
    const state = readRun(run.runDir);
    expect(state.reason).toMatch(new RegExp(`^${what} of phase find cannot read its findings: .*bugs`));
    expect(phaseState(state, 'find').status).toBe('failed');
    // Nothing was verified or counted as a dry round on the strength of an empty read.
    expect(events(run.runDir, 'verify.verdict')).toEqual([]);
    expect(events(run.runDir, 'converge.round')).toEqual([]);
  });
});

// ---- 10. replayed gate decisions are journaled once ------------------------------------------------

describe('a resume that replays a gate loop', () => {
  /** A gate that fails until the fixer has run; a last phase that fails until `flag` exists. */
  function gatedProject(maxIterations: number): string {
    const dir = project({
      'work.sh': inDir('cat >/dev/null\necho work'),
      'fixer.sh': inDir('cat >/dev/null\ntouch ok\necho fixed'),
      'last.sh': inDir('cat >/dev/null\ntest -f flag'),
    });
    const spec = (n: number) => `version: 1
name: gate-replay
limits: { retries: 0 }
agents:
  w: { runner: command, command: ${script(dir, 'work.sh')}, tier: edit, sandbox: off }
  fixer: { runner: command, command: ${script(dir, 'fixer.sh')}, tier: edit, sandbox: off }
  last: { runner: command, command: ${script(dir, 'last.sh')}, sandbox: off }
phases:
  - id: build
    agent: w
    gate: { command: "test -f ok", maxIterations: ${n}, fix: { agent: fixer } }
    prompt: build
  - id: ship
    dependsOn: [build]
    agent: last
    prompt: ship
`;
    writeSpec(dir, spec(maxIterations));
    writeSpec(dir, spec(3), 'spec3.yaml');
    return dir;
  }

  const checked = (runDir: string) => events(runDir, 'gate.checked').map((e) => [e.iteration, e.passed]);

  it('journals gate.checked once per iteration when a later phase failed and the run is resumed', () => {
    const dir = gatedProject(3);
    const run = runSpec(dir);
    expect(run.status).toBe('failed');
    expect(checked(run.runDir)).toEqual([[1, false], [2, true]]);

    fs.writeFileSync(path.join(dir, 'flag'), '');
    const r = cli(dir, 'resume', run.runId);
    expect(r.status, r.stderr).toBe(0);
    expect(r.json().status).toBe('completed');
    expect(checked(run.runDir)).toEqual([[1, false], [2, true]]);
    expect(startsByRef(run.runDir).get('build/check-1')).toBe(1);
  });

  it('journals the replayed iteration once and the new ones after it on resume --spec with more iterations', () => {
    const dir = gatedProject(1);
    const run = runSpec(dir);
    expect(run.status).toBe('failed');
    expect(readRun(run.runDir).reason).toMatch(/gate of phase build still failing after 1 run/);
    expect(checked(run.runDir)).toEqual([[1, false]]);

    fs.writeFileSync(path.join(dir, 'flag'), '');
    const r = resumeWithSpec(dir, run.runId, 'spec3.yaml');
    expect(r.status, r.stderr).toBe(0);
    expect(r.json().status).toBe('completed');
    expect(checked(run.runDir)).toEqual([[1, false], [2, true]]);
    expect(startsByRef(run.runDir).get('build/check-1')).toBe(1);
  });
});
