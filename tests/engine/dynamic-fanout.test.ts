/**
 * Dynamic fan-out through the built CLI with scripted `command`-runner agents: forEach over the
 * items of a structured answer (caps and duplicates reported, never silent), pipeline stages that
 * overtake each other, skeptics that vote on findings, and SIGKILL + resume in the middle of a
 * fan-out and of a verification, with no finished task run twice.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  cli,
  events,
  killHard,
  latestRecords,
  phaseState,
  project,
  readJournal,
  readReport,
  readRun,
  runSpec,
  script,
  startDetached,
  startsByRef,
  succeededRefs,
  until,
  writeSpec,
} from './dynamic-helpers.js';

/** A lister that prints a fixed JSON answer (the spec gives it a schema where it matters). */
function lister(json: unknown): string {
  return `cat >/dev/null\necho '${JSON.stringify(json)}'\n`;
}

/** An agent that answers with its prompt (so a record's output shows what it was given). */
const ECHO = `echo "did: $(cat)"\n`;

const FILES_SCHEMA = '{ type: object, properties: { files: { type: array, items: { type: string } } }, required: [files] }';

describe('forEach', () => {
  it('makes one task per item with {{item}} in its prompt; max drops the rest and reports them in run.json, the journal and report.md', () => {
    const dir = project({
      'list.sh': lister({ files: ['a.ts', 'b.ts', 'a.ts', 'c.ts', 'd.ts', 'e.ts'] }),
      'work.sh': ECHO,
    });
    writeSpec(dir, `version: 1
name: foreach-max
limits: { retries: 0 }
agents:
  lister: { runner: command, command: ${script(dir, 'list.sh')} }
  worker: { runner: command, command: ${script(dir, 'work.sh')} }
phases:
  - id: list
    agent: lister
    schema: ${FILES_SCHEMA}
    prompt: "list the files"
  - id: review
    agent: worker
    forEach: { from: list, items: files, max: 2 }
    tasks: [{ id: rev, prompt: "review {{item}} carefully" }]
`);
    const run = runSpec(dir);
    expect(run.code, run.stderr).toBe(0);
    expect(run.status).toBe('completed');

    // Exactly the first two distinct items became tasks, each with its item in the prompt.
    const recs = latestRecords(run.runDir);
    expect([...recs.keys()].filter((r) => r.startsWith('review/')).sort()).toEqual(['review/rev-1', 'review/rev-2']);
    expect(recs.get('review/rev-1').prompt).toBe('review a.ts carefully');
    expect(recs.get('review/rev-2').prompt).toBe('review b.ts carefully');
    expect(recs.get('review/rev-2').output).toContain('did: review b.ts carefully');

    const state = readRun(run.runDir);
    const items = phaseState(state, 'review').dynamic.items;
    expect(items).toMatchObject({ found: 5, made: 2, dropped: 3, duplicates: 1, droppedItems: ['c.ts', 'd.ts', 'e.ts'] });
    expect(items.dropReason).toMatch(/forEach\.max/);
    expect(phaseState(state, 'review').counts.total).toBe(2);
    // Made tasks are in the plan with where they came from.
    const made = state.plan.tasks.find((t: any) => t.ref === 'review/rev-2');
    expect(made.origin).toMatchObject({ kind: 'item', item: 'b.ts', index: 1 });

    const expanded = events(run.runDir, 'phase.expanded').filter((e) => e.phaseId === 'review');
    expect(expanded.reduce((n, e) => n + e.made, 0)).toBe(2);
    expect(expanded.reduce((n, e) => n + e.dropped, 0)).toBe(3);
    expect(expanded.find((e) => e.dropped > 0).step).toMatch(/forEach\.max/);

    // report.md says that items were dropped, why, and which.
    const report = readReport(run.runDir);
    expect(report).toMatch(/3 item\(s\) dropped/);
    expect(report).toMatch(/forEach\.max 2/);
    expect(report.split('\n').some((l) => /dropped/i.test(l) && ['c.ts', 'd.ts', 'e.ts'].every((n) => l.includes(n)))).toBe(true);
  });

  it('caps the items by the room left under limits.maxAgents and says so', () => {
    const files = Array.from({ length: 10 }, (_, i) => `f${i + 1}.ts`);
    const dir = project({ 'list.sh': lister({ files }), 'work.sh': ECHO });
    writeSpec(dir, `version: 1
name: foreach-room
limits: { retries: 0, maxAgents: 4 }
agents:
  lister: { runner: command, command: ${script(dir, 'list.sh')} }
  worker: { runner: command, command: ${script(dir, 'work.sh')} }
phases:
  - id: list
    agent: lister
    schema: ${FILES_SCHEMA}
    prompt: "list the files"
  - id: review
    agent: worker
    forEach: { from: list, items: files }
    tasks: [{ id: rev, prompt: "review {{item}}" }]
`);
    const run = runSpec(dir);
    expect(run.code, run.stderr).toBe(0);
    const recs = latestRecords(run.runDir);
    // 1 static task + 3 items = maxAgents 4.
    expect(recs.size).toBe(4);
    expect(['review/rev-1', 'review/rev-2', 'review/rev-3'].map((r) => recs.get(r)?.prompt)).toEqual(['review f1.ts', 'review f2.ts', 'review f3.ts']);
    const items = phaseState(readRun(run.runDir), 'review').dynamic.items;
    expect(items).toMatchObject({ found: 10, made: 3, dropped: 7, duplicates: 0 });
    expect(items.droppedItems).toEqual(files.slice(3));
    expect(items.dropReason).toMatch(/limits\.maxAgents 4/);
    expect(events(run.runDir, 'phase.expanded').some((e) => e.phaseId === 'review' && e.dropped === 7)).toBe(true);
  });

  it('renders {{item.<path>}} of object items and removes duplicate objects', () => {
    const dir = project({
      'list.sh': lister([{ path: 'x.ts', line: 3 }, { path: 'y.ts', line: 9 }, { line: 3, path: 'x.ts' }]),
      'work.sh': ECHO,
    });
    writeSpec(dir, `version: 1
name: foreach-objects
limits: { retries: 0 }
agents:
  lister: { runner: command, command: ${script(dir, 'list.sh')} }
  worker: { runner: command, command: ${script(dir, 'work.sh')} }
phases:
  - id: list
    agent: lister
    prompt: "list the spots"
  - id: look
    agent: worker
    forEach: { from: list }
    tasks: [{ id: at, prompt: "look at {{item.path}} line {{item.line}}" }]
`);
    const run = runSpec(dir);
    expect(run.code, run.stderr).toBe(0);
    const recs = latestRecords(run.runDir);
    expect(recs.get('look/at-1').prompt).toBe('look at x.ts line 3');
    expect(recs.get('look/at-2').prompt).toBe('look at y.ts line 9');
    expect(recs.has('look/at-3')).toBe(false);
    expect(phaseState(readRun(run.runDir), 'look').dynamic.items).toMatchObject({ found: 2, made: 2, dropped: 0, duplicates: 1 });
  });

  /** One run (shared by the two tests below) whose forEach source answers with no list. */
  let noList: ReturnType<typeof runSpec> | undefined;
  function noListRun() {
    return (noList ??= runSpec(noListProject()));
  }

  /** A source whose answer holds no list: forEach can make nothing. */
  function noListProject() {
    const dir = project({ 'list.sh': lister({ count: 3, note: 'no list here' }), 'work.sh': ECHO });
    writeSpec(dir, `version: 1
name: foreach-nolist
limits: { retries: 0 }
agents:
  lister: { runner: command, command: ${script(dir, 'list.sh')} }
  worker: { runner: command, command: ${script(dir, 'work.sh')} }
phases:
  - id: list
    agent: lister
    prompt: "list the files"
  - id: review
    agent: worker
    forEach: { from: list }
    tasks: [{ id: rev, prompt: "review {{item}}" }]
  - id: after
    dependsOn: [review]
    agent: worker
    prompt: "after the reviews"
`);
    return dir;
  }

  it('an answer with no list: zero tasks, the problem in run.json, and the run fails naming it (never runs on part of its items)', () => {
    const run = noListRun();
    const state = readRun(run.runDir);
    const review = phaseState(state, 'review');
    expect(review.counts.total).toBe(0);
    expect(review.status).toBe('failed');
    expect(review.dynamic.items).toMatchObject({ found: 0, made: 0, dropped: 0 });
    expect(review.dynamic.items.problems).toEqual([expect.stringMatching(/^list\/list: .*not a list/)]);
    expect([...latestRecords(run.runDir).keys()].some((r) => r.startsWith('review/'))).toBe(false);
    expect(events(run.runDir, 'run.finished')).toHaveLength(1);
    expect(run.status).toBe('failed');
    expect(run.code).not.toBe(0);
    expect(state.reason).toMatch(/forEach of phase review cannot read its items: list\/list: .*not a list/);
    // What waits for the phase does not run on nothing.
    expect(latestRecords(run.runDir).get('after/after')?.status).toBe('skipped');
  });

  it('an answer with no list: the problem is named in report.md (findings.ts: "named in status and report")', () => {
    const run = noListRun();
    expect(readReport(run.runDir)).toMatch(/list\/list.*not a list/);
  });
});

describe('pipeline', () => {
  it('lets fast items overtake a slow one: stage 2 of items 2 and 3 starts before stage 1 of item 1 ends; {{prev}} is the item\'s stage-1 output', () => {
    const dir = project({
      'list.sh': lister(['alpha', 'beta', 'gamma']),
      // Item 1 (alpha) is slow in stage 1; the others are fast.
      'stage1.sh': 'p=$(cat)\ncase "$p" in *alpha*) sleep 2;; esac\necho "s1[$p]"\n',
      'stage2.sh': ECHO,
    });
    writeSpec(dir, `version: 1
name: pipeline
limits: { retries: 0, maxConcurrent: 4 }
agents:
  lister: { runner: command, command: ${script(dir, 'list.sh')} }
  s1: { runner: command, command: ${script(dir, 'stage1.sh')} }
  s2: { runner: command, command: ${script(dir, 'stage2.sh')} }
phases:
  - id: list
    agent: lister
    prompt: "list"
  - id: one
    agent: s1
    forEach: { from: list }
    tasks: [{ id: a, prompt: "first {{item}}" }]
  - id: two
    agent: s2
    mode: pipeline
    dependsOn: [one]
    tasks: [{ id: b, prompt: "second {{item}} prev=<{{prev}}>" }]
`);
    const run = runSpec(dir);
    expect(run.code, run.stderr).toBe(0);
    const journal = readJournal(run.runDir);
    const at = (type: string, ref: string) => {
      const i = journal.findIndex((e) => e.type === type && e.ref === ref);
      expect(i, `${type} ${ref}`).toBeGreaterThan(-1);
      return i;
    };
    const slowDone = at('agent.finished', 'one/a-1');
    expect(at('agent.started', 'two/b-2')).toBeLessThan(slowDone);
    expect(at('agent.started', 'two/b-3')).toBeLessThan(slowDone);
    expect(at('agent.finished', 'two/b-3')).toBeLessThan(slowDone);
    // Item 1's stage 2 waits for its own stage 1.
    expect(at('agent.started', 'two/b-1')).toBeGreaterThan(slowDone);

    const recs = latestRecords(run.runDir);
    for (const [n, item] of [[1, 'alpha'], [2, 'beta'], [3, 'gamma']] as const) {
      expect(recs.get(`two/b-${n}`).prompt).toBe(`second ${item} prev=<s1[first ${item}]>`);
    }
  });
});

/** Reviewers with four findings and skeptics that vote by a fixed rule (see below). */
function verifyProject(skepticSleep = '0') {
  return project({
    'review.sh': `cat >/dev/null
case "$FANFOLD_TASK_ID" in
  r1) echo '{"findings": ["style: odd indentation in a.ts", "bug: null deref in b.ts"]}';;
  r2) echo '{"findings": ["bug: race in c.ts (onevote)", "bug: leak in d.ts (twovotes)"]}';;
esac
`,
    // Skeptic k of a finding (FANFOLD_TASK_ID skeptic-<f>-<k>) refutes: every "style" finding;
    // a "onevote" finding only as skeptic 1; a "twovotes" finding as skeptics 1 and 2.
    'skeptic.sh': `finding=$(cat)
sleep ${skepticSleep}
k=\${FANFOLD_TASK_ID##*-}
refute=false
case "$finding" in
  *style*) refute=true;;
  *onevote*) [ "$k" -le 1 ] && refute=true;;
  *twovotes*) [ "$k" -le 2 ] && refute=true;;
esac
if [ "$refute" = true ]; then reasons="skeptic $k: not a real problem"; else reasons="skeptic $k: holds up"; fi
printf '{"refuted": %s, "reasons": "%s"}\\n' "$refute" "$reasons"
`,
    'write.sh': ECHO,
  });
}

const FINDINGS_SCHEMA = '{ type: object, properties: { findings: { type: array, items: { type: string } } }, required: [findings] }';

function verifyPhase(id: string, refuteBy: string) {
  return `  - id: ${id}
    agent: reviewer
    schema: ${FINDINGS_SCHEMA}
    tasks: [{ id: r1, prompt: "review part 1" }, { id: r2, prompt: "review part 2" }]
    verify: { skeptics: 3, items: findings, refuteBy: ${refuteBy}, prompt: "Refute this: {{finding}}" }
`;
}

function verifySpec(dir: string, maxConcurrent: number, phases: string, after: string) {
  return `version: 1
name: verify
limits: { retries: 0, maxConcurrent: ${maxConcurrent} }
agents:
  reviewer: { runner: command, command: ${script(dir, 'review.sh')} }
  skeptic: { runner: command, command: ${script(dir, 'skeptic.sh')} }
  writer: { runner: command, command: ${script(dir, 'write.sh')} }
phases:
${phases}  - id: summary
    dependsOn: [${after}]
    agent: writer
    prompt: "${after.split(', ').map((p) => `== ${p} ==\\n{{digest.${p}}}\\n`).join('')}"
`;
}

/** The verdicts the majority rule must reach on the four findings. */
const MAJORITY = [
  { id: 'f1', from: 'review/r1', finding: 'style: odd indentation in a.ts', verdict: 'refuted', refute: 3, of: 3 },
  { id: 'f2', from: 'review/r1', finding: 'bug: null deref in b.ts', verdict: 'confirmed', refute: 0, of: 3 },
  { id: 'f3', from: 'review/r2', finding: 'bug: race in c.ts (onevote)', verdict: 'confirmed', refute: 1, of: 3 },
  { id: 'f4', from: 'review/r2', finding: 'bug: leak in d.ts (twovotes)', verdict: 'refuted', refute: 2, of: 3 },
];

describe('verify', () => {
  it('3 skeptics per finding, majority and any: verdicts in run.json and the journal, and a later digest lists confirmed findings and marks refuted ones', () => {
    const dir = verifyProject();
    writeSpec(dir, verifySpec(dir, 4, verifyPhase('review', 'majority') + verifyPhase('strict', 'any'), 'review, strict'));
    const run = runSpec(dir);
    expect(run.code, run.stderr).toBe(0);
    const state = readRun(run.runDir);

    const v = phaseState(state, 'review').dynamic.verify;
    expect(v).toMatchObject({ skeptics: 3, refuteBy: 'majority', findings: 4, confirmed: 2, refuted: 2, unverified: 0 });
    expect(v.verdicts.map(({ reasons: _r, ...rest }: any) => rest)).toEqual(MAJORITY);
    // Reasons are kept, refuting and upholding alike, one per skeptic.
    expect(v.verdicts[3].reasons).toEqual(['refutes: skeptic 1: not a real problem', 'refutes: skeptic 2: not a real problem', 'upholds: skeptic 3: holds up']);
    expect(v.verdicts[0].reasons).toHaveLength(3);

    // refuteBy any: one refuting skeptic is enough.
    const any = phaseState(state, 'strict').dynamic.verify;
    expect(any).toMatchObject({ refuteBy: 'any', confirmed: 1, refuted: 3 });
    expect(any.verdicts.map((x: any) => [x.id, x.verdict, x.refute])).toEqual([['f1', 'refuted', 3], ['f2', 'confirmed', 0], ['f3', 'refuted', 1], ['f4', 'refuted', 2]]);

    const lines = events(run.runDir, 'verify.verdict');
    expect(lines.filter((e) => e.phaseId === 'review').map((e) => [e.finding, e.from, e.verdict, e.refute, e.of])).toEqual(
      MAJORITY.map((m) => [m.id, m.from, m.verdict, m.refute, m.of]),
    );
    expect(lines.filter((e) => e.phaseId === 'strict').map((e) => e.verdict)).toEqual(['refuted', 'confirmed', 'refuted', 'refuted']);

    const recs = latestRecords(run.runDir);
    // 3 skeptics for each of 4 findings in each phase; the skeptic got its finding in its prompt.
    expect([...recs.keys()].filter((r) => r.startsWith('review/skeptic-'))).toHaveLength(12);
    expect(recs.get('review/skeptic-3-2').prompt).toBe('Refute this: bug: race in c.ts (onevote)');
    expect(recs.get('review/skeptic-3-2').structured).toEqual({ refuted: false, reasons: 'skeptic 2: holds up' });

    // The summary's {{digest.review}}: confirmed findings listed, refuted ones marked.
    const prompt: string = recs.get('summary/summary').prompt;
    const review = prompt.slice(prompt.indexOf('== review =='), prompt.indexOf('== strict =='));
    const strict = prompt.slice(prompt.indexOf('== strict =='));
    expect(review).toMatch(/confirmed f2: bug: null deref in b\.ts/);
    expect(review).toMatch(/confirmed f3: bug: race in c\.ts/);
    expect(review).toMatch(/REFUTED f1: style: odd indentation/);
    expect(review).toMatch(/REFUTED f4: bug: leak in d\.ts/);
    expect(review).not.toMatch(/confirmed f(1|4)/);
    expect(strict).toMatch(/REFUTED f3: bug: race in c\.ts/);
    expect(strict).not.toMatch(/confirmed f3/);
    // Refuted findings show up only where they are marked, not among the phase's results.
    for (const text of ['odd indentation', 'leak in d.ts']) {
      expect(review.split('\n').filter((l) => l.includes(text)).every((l) => l.startsWith('- REFUTED'))).toBe(true);
    }
    // Skeptics are evidence, not results: they are not in the phase digest's task count.
    expect(review).toMatch(/review — 2 tasks/);
    // What the summary reads from its dependencies (FANFOLD_CONTEXT_FILE) holds confirmed findings only.
    const context = JSON.parse(fs.readFileSync(path.join(run.runDir, 'inputs', 'summary.summary.1.context.json'), 'utf8'));
    expect(Object.fromEntries(context.deps.map((d: any) => [d.ref, d.structured?.findings]))).toEqual({
      'review/r1': ['bug: null deref in b.ts'],
      'review/r2': ['bug: race in c.ts (onevote)'],
      'strict/r1': ['bug: null deref in b.ts'],
      'strict/r2': [],
    });
  });
});

describe('kill and resume in the middle', () => {
  it('a forEach run SIGKILLed after some item tasks finished: resume runs none of them again and completes', async () => {
    const items = ['i1', 'i2', 'i3', 'i4', 'i5', 'i6'];
    const dir = project({ 'list.sh': lister({ files: items }), 'work.sh': `p=$(cat)\nsleep 0.4\necho "did: $p"\n` });
    writeSpec(dir, `version: 1
name: kill-foreach
limits: { retries: 0, maxConcurrent: 2 }
agents:
  lister: { runner: command, command: ${script(dir, 'list.sh')} }
  worker: { runner: command, command: ${script(dir, 'work.sh')} }
phases:
  - id: list
    agent: lister
    schema: ${FILES_SCHEMA}
    prompt: "list"
  - id: review
    agent: worker
    forEach: { from: list, items: files }
    tasks: [{ id: rev, prompt: "review {{item}}" }]
`);
    const { runId, runDir, pid } = startDetached(dir);
    const finishedItems = () => events(runDir, 'agent.finished').filter((e) => e.ref.startsWith('review/')).length;
    await until(() => finishedItems() >= 2, 20_000, 'two finished item tasks');
    await killHard(pid);

    const doneBefore = succeededRefs(runDir);
    const itemsDone = [...doneBefore].filter((r) => r.startsWith('review/'));
    expect(itemsDone.length).toBeGreaterThanOrEqual(2);
    expect(itemsDone.length, 'the kill came too late to test anything').toBeLessThan(items.length);
    expect(cli(dir, 'status', runId).json().status).toBe('interrupted');

    const resumed = cli(dir, 'resume', runId);
    expect(resumed.status, resumed.stderr + resumed.stdout).toBe(0);
    expect(resumed.json().status).toBe('completed');

    const starts = startsByRef(runDir);
    for (const ref of doneBefore) expect(starts.get(ref), `agent.started of ${ref}`).toBe(1);
    const journal = readJournal(runDir);
    const resumedAt = journal.findIndex((e) => e.type === 'run.resumed');
    expect(resumedAt).toBeGreaterThan(-1);
    // The item tasks were made again from the stored answer, with the same keys, and reused.
    const reused = journal.slice(resumedAt).filter((e) => e.type === 'agent.reused').flatMap((e) => e.tasks.map((t: any) => t.ref));
    for (const ref of itemsDone) expect(reused).toContain(ref);
    // The resume did run the items that had not finished.
    expect(journal.slice(resumedAt).filter((e) => e.type === 'agent.started').length).toBe(items.length - itemsDone.length);

    const recs = latestRecords(runDir);
    for (const ref of itemsDone) expect(recs.get(ref).attempt).toBe(1);
    // Every item ends with a succeeded task, each with its own item.
    expect(items.map((_, i) => recs.get(`review/rev-${i + 1}`)?.status)).toEqual(items.map(() => 'succeeded'));
    expect(items.map((_, i) => recs.get(`review/rev-${i + 1}`).prompt)).toEqual(items.map((x) => `review ${x}`));
    expect(phaseState(readRun(runDir), 'review').dynamic.items).toMatchObject({ found: 6, made: 6, dropped: 0 });
  }, 120_000);

  it('a run SIGKILLed while skeptics are voting: resume reruns no finished skeptic and reaches the same verdicts', async () => {
    const dir = verifyProject('0.3');
    writeSpec(dir, verifySpec(dir, 3, verifyPhase('review', 'majority'), 'review'));
    const { runId, runDir, pid } = startDetached(dir);
    const finishedSkeptics = () => events(runDir, 'agent.finished').filter((e) => e.ref.startsWith('review/skeptic-')).length;
    await until(() => finishedSkeptics() >= 3, 20_000, 'three finished skeptics');
    await killHard(pid);

    const doneBefore = succeededRefs(runDir);
    const skepticsDone = [...doneBefore].filter((r) => r.startsWith('review/skeptic-'));
    expect(skepticsDone.length).toBeGreaterThanOrEqual(3);
    expect(skepticsDone.length, 'the kill came too late to test anything').toBeLessThan(12);
    expect(events(runDir, 'verify.verdict')).toHaveLength(0);
    expect(cli(dir, 'status', runId).json().status).toBe('interrupted');

    const resumed = cli(dir, 'resume', runId);
    expect(resumed.status, resumed.stderr + resumed.stdout).toBe(0);
    expect(resumed.json().status).toBe('completed');

    const starts = startsByRef(runDir);
    for (const ref of doneBefore) expect(starts.get(ref), `agent.started of ${ref}`).toBe(1);
    expect(starts.get('review/r1')).toBe(1);
    expect(starts.get('review/r2')).toBe(1);
    const recs = latestRecords(runDir);
    expect([...recs.keys()].filter((r) => r.startsWith('review/skeptic-') && recs.get(r).status === 'succeeded')).toHaveLength(12);

    const v = phaseState(readRun(runDir), 'review').dynamic.verify;
    expect(v.verdicts.map(({ reasons: _r, ...rest }: any) => rest)).toEqual(MAJORITY);
    expect(events(runDir, 'verify.verdict').map((e) => e.finding)).toEqual(['f1', 'f2', 'f3', 'f4']);
    expect(recs.get('summary/summary').prompt).toMatch(/REFUTED f4/);
  }, 120_000);

  it('a pipeline SIGKILLed while items are between stages: resume reruns no finished stage and every item goes through both', async () => {
    const items = ['p1', 'p2', 'p3', 'p4', 'p5'];
    const dir = project({
      'list.sh': lister({ files: items }),
      'one.sh': `p=$(cat)\nsleep 0.3\necho "one[$p]"\n`,
      // Stage 2 of p1 is slow, so the kill finds some items done in both stages and some in one.
      'two.sh': `p=$(cat)\ncase "$p" in *p1*) sleep 3;; *) sleep 0.2;; esac\necho "two[$p]"\n`,
    });
    writeSpec(dir, `version: 1
name: kill-pipeline
limits: { retries: 0, maxConcurrent: 2 }
agents:
  lister: { runner: command, command: ${script(dir, 'list.sh')} }
  one: { runner: command, command: ${script(dir, 'one.sh')} }
  two: { runner: command, command: ${script(dir, 'two.sh')} }
phases:
  - id: list
    agent: lister
    schema: ${FILES_SCHEMA}
    prompt: "list"
  - id: s1
    agent: one
    forEach: { from: list, items: files }
    tasks: [{ id: a, prompt: "first {{item}}" }]
  - id: s2
    agent: two
    mode: pipeline
    dependsOn: [s1]
    tasks: [{ id: b, prompt: "second {{item}} after {{prev}}" }]
`);
    const { runId, runDir, pid } = startDetached(dir);
    const finishedIn = (phase: string) => events(runDir, 'agent.finished').filter((e) => e.ref.startsWith(`${phase}/`)).length;
    await until(() => finishedIn('s2') >= 1 && finishedIn('s1') >= 2, 20_000, 'a stage-2 task and two stage-1 tasks finished');
    await killHard(pid);

    const doneBefore = succeededRefs(runDir);
    expect([...doneBefore].filter((r) => r.startsWith('s2/')).length, 'the kill came too late to test anything').toBeLessThan(items.length);
    const resumed = cli(dir, 'resume', runId);
    expect(resumed.status, resumed.stderr + resumed.stdout).toBe(0);
    expect(resumed.json().status).toBe('completed');

    const starts = startsByRef(runDir);
    for (const ref of doneBefore) expect(starts.get(ref), `agent.started of ${ref}`).toBe(1);
    const recs = latestRecords(runDir);
    items.forEach((item, i) => {
      const one = recs.get(`s1/a-${i + 1}`);
      const two = recs.get(`s2/b-${i + 1}`);
      expect(one?.status).toBe('succeeded');
      expect(two?.status).toBe('succeeded');
      // Each stage-2 task got its own item and that item's stage-1 output, before and after the kill.
      expect(two.prompt).toBe(`second ${item} after ${one.output.trim()}`);
    });
  }, 150_000);
});
