/**
 * report.md and report.html for dynamic phases, from run.json-like records: items (dropped items
 * listed with the reason), verification (confirmed and refuted findings with the skeptics'
 * reasons), gate, rounds and merge; helper tasks summarized, not quoted; everything bounded and
 * escaped. The one-line summaries status answers use are checked here too.
 */
import { describe, expect, it } from 'vitest';
import { REPORT_MAX_BYTES, renderReportHtml, renderReportMarkdown } from '../../src/digest/index.js';
import { dynamicSummaries, dynamicSummary } from '../../src/digest/report-md.js';
import { buildPlan } from '../../src/spec/index.js';
import type { PlanTask, TaskOrigin } from '../../src/spec/types.js';
import type { AgentRecord, DynamicState, RunRecord, Verdict } from '../../src/store/types.js';
import { HOSTILE, makeRecord, makeRun } from './fixtures.js';

const SPEC = {
  version: 1,
  name: 'dynamic report',
  limits: { maxAgents: 200 },
  agents: {
    worker: { runner: 'command', command: ['true'] },
    skeptic: { runner: 'command', command: ['true'] },
    editor: { runner: 'command', command: ['true'], tier: 'edit', isolation: 'worktree' },
  },
  defaults: { agent: 'worker' },
  phases: [
    { id: 'list', prompt: 'LIST' },
    { id: 'review', dependsOn: ['list'], forEach: { from: 'list', items: 'files', max: 3 }, prompt: 'REVIEW {{item}}', verify: { skeptics: 3 } },
    { id: 'hunt', dependsOn: ['review'], converge: { untilDry: 1, maxRounds: 4 }, prompt: 'HUNT {{seen}}' },
    { id: 'fixup', dependsOn: ['hunt'], prompt: 'FIXUP', gate: { command: 'npm test', maxIterations: 3 } },
    { id: 'edit', dependsOn: ['fixup'], agent: 'editor', tasks: [{ id: 'e1', prompt: 'edit 1' }, { id: 'e2', prompt: 'edit 2' }, { id: 'e3', prompt: 'edit 3' }] },
    { id: 'synth', dependsOn: ['edit'], final: true, prompt: 'SYNTH', gate: { command: 'make check', maxIterations: 2 } },
  ],
};

/** Adds a task made at run time to the plan, as the engine does. */
function made(run: RunRecord, phaseId: string, taskId: string, origin: TaskOrigin, agent = 'worker'): PlanTask {
  const t: PlanTask = { ref: `${phaseId}/${taskId}`, phaseId, taskId, prompt: 'p', agent, deps: [], key: `k-${phaseId}-${taskId}`, origin };
  run.plan.tasks.push(t);
  run.plan.phases.find((p) => p.id === phaseId)!.taskRefs.push(t.ref);
  return t;
}

function verdict(id: string, from: string, finding: string, refuted: boolean, reasons: string[]): Verdict {
  const refute = reasons.filter((r) => r.startsWith('refutes')).length;
  return { id, from, finding, verdict: refuted ? 'refuted' : 'confirmed', refute, of: reasons.length, reasons };
}

/** A finished run of SPEC with every dynamic mechanism recorded. */
function dynamicRun(opts: { status?: RunRecord['status']; reason?: string } = {}): { run: RunRecord; latest: AgentRecord[] } {
  const plan = buildPlan(SPEC);
  const run = makeRun(plan, opts.status ?? 'completed', opts.reason ? { reason: opts.reason } : {});
  const latest: AgentRecord[] = [makeRecord({ phaseId: 'list', taskId: 'list', output: '{"files":["a.ts","b.ts","c.ts","d.ts","e.ts"]}' })];
  ['a.ts', 'b.ts', 'c.ts'].forEach((file, i) => {
    made(run, 'review', `review-${i + 1}`, { kind: 'item', item: file, index: i });
    latest.push(makeRecord({ phaseId: 'review', taskId: `review-${i + 1}`, output: `{"findings":["bug in ${file}","style in ${file}"]}` }));
  });
  for (let f = 1; f <= 6; f++) {
    for (let k = 1; k <= 3; k++) {
      made(run, 'review', `skeptic-${f}-${k}`, { kind: 'skeptic', findingId: `f${f}`, skeptic: k }, 'skeptic');
      latest.push(makeRecord({ phaseId: 'review', taskId: `skeptic-${f}-${k}`, agent: 'skeptic', output: '{"refuted":false,"reasons":"SKEPTIC-OUTPUT"}' }));
    }
  }
  for (let r = 1; r <= 3; r++) {
    made(run, 'hunt', `hunt-r${r}`, { kind: 'round', round: r });
    latest.push(makeRecord({ phaseId: 'hunt', taskId: `hunt-r${r}`, output: `{"findings":["h${r}"]}` }));
  }
  latest.push(makeRecord({ phaseId: 'fixup', taskId: 'fixup', output: 'fixup done' }));
  made(run, 'fixup', 'check-1', { kind: 'check', iteration: 1 }, 'fixup-gate');
  latest.push(makeRecord({ phaseId: 'fixup', taskId: 'check-1', exitCode: 1, output: 'FAIL test/a.test.ts\n  expected 1, got 2', stderrTail: 'npm ERR! Test failed.' }));
  made(run, 'fixup', 'fix-1', { kind: 'fix', iteration: 1 });
  latest.push(makeRecord({ phaseId: 'fixup', taskId: 'fix-1', output: 'fixed a.ts' }));
  made(run, 'fixup', 'check-2', { kind: 'check', iteration: 2 }, 'fixup-gate');
  latest.push(makeRecord({ phaseId: 'fixup', taskId: 'check-2', output: 'all tests pass' }));
  for (const t of ['e1', 'e2', 'e3']) latest.push(makeRecord({ phaseId: 'edit', taskId: t, agent: 'editor', output: `edited by ${t}` }));
  latest.push(makeRecord({ phaseId: 'synth', taskId: 'synth', output: 'THE SYNTHESIS' }));
  made(run, 'synth', 'check-1', { kind: 'check', iteration: 1 }, 'synth-gate');
  latest.push(makeRecord({ phaseId: 'synth', taskId: 'check-1', output: 'CHECK-OUTPUT-NOT-A-RESULT' }));

  const states: Record<string, DynamicState> = {
    review: {
      items: { found: 5, made: 3, dropped: 2, duplicates: 1, droppedItems: ['d.ts', 'e.ts'], dropReason: 'forEach.max 3' },
      verify: {
        skeptics: 3, refuteBy: 'majority', findings: 7, confirmed: 3, refuted: 3, unverified: 1,
        verdicts: [
          verdict('f1', 'review/review-1', 'bug in a.ts', false, ['upholds: holds', 'upholds: holds', 'upholds: real']),
          verdict('f2', 'review/review-1', 'style in a.ts', true, ['refutes: style is not a bug', 'refutes: style is not a bug', 'upholds: maybe']),
          verdict('f3', 'review/review-2', 'bug in b.ts', false, ['upholds: holds', 'upholds: holds', 'upholds: holds']),
          verdict('f4', 'review/review-2', 'style in b.ts', true, ['refutes: a matter of taste', 'refutes: style is not a bug', 'refutes: no impact']),
          verdict('f5', 'review/review-3', 'bug in c.ts', false, ['upholds: holds', 'refutes: cannot happen', 'upholds: holds']),
          verdict('f6', 'review/review-3', 'style in c.ts', true, ['refutes: style is not a bug', 'refutes: style is not a bug', 'refutes: style is not a bug']),
        ],
      },
    },
    hunt: { converge: { untilDry: 1, maxRounds: 4, rounds: 3, dryRounds: 1, findings: 2, newPerRound: [1, 1, 0], stopped: 'dry: 1 round(s) in a row found nothing new' } },
    fixup: { gate: { kind: 'command', maxIterations: 3, iterations: 2, passed: true } },
    edit: {
      merge: {
        applied: ['edit/e1', 'edit/e2'],
        conflicts: [{ ref: 'edit/e3', files: ['src/a.ts', 'src/b.ts'], message: 'error: patch failed: src/a.ts:12' }],
        empty: 0,
      },
    },
    synth: { gate: { kind: 'command', maxIterations: 2, iterations: 1, passed: true } },
  };
  for (const p of run.phases) if (states[p.id]) p.dynamic = states[p.id];
  return { run, latest };
}

function md(run: RunRecord, latest: AgentRecord[]): string {
  return renderReportMarkdown({ run, latest, digests: {}, attempts: latest });
}

/** The part of the report between `## Dynamic phases` and the next `## ` section. */
function dynamicPart(text: string): string {
  const start = text.indexOf('## Dynamic phases');
  expect(start, 'the report has a dynamic phases section').toBeGreaterThan(-1);
  const end = text.indexOf('\n## ', start + 5);
  return text.slice(start, end === -1 ? undefined : end);
}

/** The part for one phase, from its `### ` heading to the next. */
function phasePart(text: string, phaseId: string): string {
  const part = dynamicPart(text);
  const start = part.indexOf(`### \`${phaseId}\``);
  expect(start, `section of ${phaseId}`).toBeGreaterThan(-1);
  const end = part.indexOf('\n### ', start + 4);
  return part.slice(start, end === -1 ? undefined : end);
}

describe('report.md: dynamic phases', () => {
  it('lists items found, made and dropped, with the dropped items and the reason', () => {
    const { run, latest } = dynamicRun();
    const review = phasePart(md(run, latest), 'review');
    expect(review).toContain('What it does: forEach over list.files (max 3) × 1 template; verify: 3 skeptics per finding, majority (agent skeptic).');
    expect(review).toContain('#### Items');
    expect(review).toContain('- 5 items found in `list`: 3 kept, 3 tasks made, 1 duplicate removed.');
    expect(review).toContain('- **2 items dropped** (forEach.max 3): `d.ts`, `e.ts`.');
  });

  it('says how many dropped items run.json did not keep', () => {
    const { run, latest } = dynamicRun();
    const items = run.phases.find((p) => p.id === 'review')!.dynamic!.items!;
    items.dropped = 45;
    items.droppedItems = Array.from({ length: 20 }, (_, i) => `item${i}.ts`);
    const review = phasePart(md(run, latest), 'review');
    expect(review).toMatch(/\*\*45 items dropped\*\* \(forEach\.max 3\): `item0\.ts`, .*`item9\.ts` and 35 more\./);
  });

  it('splits verdicts into confirmed and refuted findings, with the skeptics\' reasons and the unverified count', () => {
    const { run, latest } = dynamicRun();
    const review = phasePart(md(run, latest), 'review');
    expect(review).toContain('#### Verification');
    expect(review).toContain('3 skeptics per finding, refuted by a majority: 7 findings — 3 confirmed, 3 refuted, 1 unverified.');
    expect(review).toMatch(/1 finding was not verified \(over verify\.max or the room left under limits\.maxAgents\)/);
    const confirmed = review.slice(review.indexOf('**Confirmed findings (3)**'), review.indexOf('**Refuted findings (3)**'));
    const refuted = review.slice(review.indexOf('**Refuted findings (3)**'));
    for (const f of ['f1', 'f3', 'f5']) expect(confirmed).toContain(`\`${f}\``);
    for (const f of ['f2', 'f4', 'f6']) expect(confirmed).not.toContain(`\`${f}\``);
    for (const f of ['f2', 'f4', 'f6']) expect(refuted).toContain(`\`${f}\``);
    expect(confirmed).toContain('- `f5` bug in c.ts — from `review/review-3`; 1 of 3 skeptics refuted it: holds (×2)');
    expect(refuted).toContain('- `f2` style in a.ts — from `review/review-1`; 2 of 3 skeptics refuted it: style is not a bug (×2)');
    expect(refuted).toContain('- `f4` style in b.ts — from `review/review-2`; 3 of 3 skeptics refuted it: a matter of taste; style is not a bug; no impact');
    expect(refuted).toContain('- `f6` style in c.ts — from `review/review-3`; 3 of 3 skeptics refuted it: style is not a bug (×3)');
  });

  it('counts helper tasks compactly and never quotes them', () => {
    const { run, latest } = dynamicRun();
    const text = md(run, latest);
    expect(phasePart(text, 'review')).toContain('Tasks: 3 work tasks (all succeeded), 18 skeptics (all succeeded).');
    expect(phasePart(text, 'fixup')).toContain('Tasks: 1 work task (succeeded), 2 gate checks (1 failed, 1 passed), 1 fix (succeeded).');
    expect(text).not.toContain('SKEPTIC-OUTPUT');
    expect(text).not.toMatch(/review\/skeptic-\d+-\d+/);
    // The final phase's gate check is evidence, not the final output.
    expect(text).toContain('## Final output — phase `synth`');
    expect(text).toContain('THE SYNTHESIS');
    expect(text).not.toContain('CHECK-OUTPUT-NOT-A-RESULT');
  });

  it('shows the gate: runs, result and the last failure', () => {
    const { run, latest } = dynamicRun();
    const fixup = phasePart(md(run, latest), 'fixup');
    expect(fixup).toContain('What it does: gate: `npm test`, up to 3 runs (fixes by worker).');
    expect(fixup).toContain('#### Gate');
    expect(fixup).toContain('Command `npm test`: passed on run 2 of at most 3 (1 failed run, followed by a fix).');
    expect(fixup).toContain('Last failure (run 1):');
    expect(fixup).toMatch(/```text\nexit code 1\nFAIL test\/a\.test\.ts\n  expected 1, got 2\nnpm ERR! Test failed\.\n```/);
  });

  it('shows a gate that ran out of runs as failed, with its last failure', () => {
    const { run, latest } = dynamicRun({ status: 'failed', reason: 'gate of phase fixup still failing after 3 run(s) (maxIterations 3): `npm test` exited with 1' });
    run.phases.find((p) => p.id === 'fixup')!.dynamic = {
      gate: { kind: 'command', maxIterations: 3, iterations: 3, passed: false, last: '`npm test` exited with 1.\nFAIL test/b.test.ts ``` <b>boom</b>' },
    };
    const fixup = phasePart(md(run, latest), 'fixup');
    expect(fixup).toContain('Command `npm test`: **failed** on run 3 of at most 3 — no runs left, so the run ended failed (3 failed runs, each but the last followed by a fix).');
    expect(fixup).toContain('Last failure (run 3):');
    // The failure is quoted in a fence longer than any backtick run inside it.
    expect(fixup).toContain('````text\n`npm test` exited with 1.\nFAIL test/b.test.ts ``` <b>boom</b>\n````');
  });

  it('shows rounds: new findings per round and why it stopped', () => {
    const { run, latest } = dynamicRun();
    const hunt = phasePart(md(run, latest), 'hunt');
    expect(hunt).toContain('What it does: converge: until 1 dry round, at most 4 rounds × 1 template.');
    expect(hunt).toContain('#### Rounds');
    expect(hunt).toContain('3 rounds (at most 4; stops after 1 dry round): new findings per round 1, 1, 0 — 2 distinct findings.');
    expect(hunt).toContain('Stopped: dry: 1 round(s) in a row found nothing new.');
  });

  it('shows the merge: applied patches and conflicts with files and message', () => {
    const { run, latest } = dynamicRun();
    const edit = phasePart(md(run, latest), 'edit');
    expect(edit).toContain('What it does: isolated in git worktrees (patches merged after the phase).');
    expect(edit).toContain('#### Merge');
    expect(edit).toContain('2 patches applied to the working tree: `edit/e1`, `edit/e2`.');
    expect(edit).toContain('**Conflicts (1)**');
    expect(edit).toContain('- `edit/e3` on `src/a.ts`, `src/b.ts`: error: patch failed: src/a.ts:12');
  });

  it('says what has not happened yet in a running snapshot', () => {
    const { run, latest } = dynamicRun({ status: 'running' });
    for (const p of run.phases) delete p.dynamic;
    run.phases.find((p) => p.id === 'review')!.dynamic = { items: { found: 5, made: 3, dropped: 2, duplicates: 0, droppedItems: ['d.ts', 'e.ts'], dropReason: 'forEach.max 3' } };
    const text = md(run, latest);
    const review = phasePart(text, 'review');
    expect(review).toContain('**2 items dropped**');
    expect(review).toContain('_No verdicts yet: the skeptics have not all answered._');
    expect(phasePart(text, 'hunt')).toContain('_Nothing recorded yet: the phase has not started its dynamic work._');
  });

  it('has no dynamic section for a static run', () => {
    const plan = buildPlan({ version: 1, name: 's', agents: { w: { runner: 'command', command: ['true'] } }, phases: [{ id: 'a', agent: 'w', prompt: 'x' }] });
    const run = makeRun(plan, 'completed');
    const text = md(run, [makeRecord({ phaseId: 'a', taskId: 'a' })]);
    expect(text).not.toContain('## Dynamic phases');
  });

  it('stays within its cap with many dynamic phases, long hostile findings and 100 verdicts each, and says what it cut', () => {
    const phases = Array.from({ length: 30 }, (_, i) => ({
      id: `p${i}`,
      ...(i > 0 ? { dependsOn: [`p${i - 1}`] } : {}),
      tasks: [{ id: 't', prompt: 'x' }],
      verify: { skeptics: 3 },
      gate: { command: `check ${i} ${HOSTILE}` },
    }));
    const plan = buildPlan({ version: 1, name: 'big', limits: { maxAgents: 1000 }, agents: { w: { runner: 'command', command: ['true'] }, skeptic: { runner: 'command', command: ['true'] } }, defaults: { agent: 'w' }, phases });
    const run = makeRun(plan, 'failed', { reason: `many ${HOSTILE}` });
    const latest: AgentRecord[] = [];
    for (const p of run.phases) {
      latest.push(makeRecord({ phaseId: p.id, taskId: 't', output: `out ${HOSTILE}` }));
      p.dynamic = {
        items: { found: 500, made: 20, dropped: 480, duplicates: 3, droppedItems: Array.from({ length: 20 }, (_, k) => `${HOSTILE} item ${k} ${'x'.repeat(150)}`), dropReason: 'limits.maxAgents 1000 (room for 20 more item(s))' },
        verify: {
          skeptics: 3, refuteBy: 'majority', findings: 300, confirmed: 150, refuted: 140, unverified: 10,
          verdicts: Array.from({ length: 100 }, (_, k) => verdict(`f${k + 1}`, `${p.id}/t`, `${HOSTILE} finding ${k} ${'y'.repeat(280)}`.slice(0, 300), k % 2 === 1, [`refutes: ${HOSTILE} ${'r'.repeat(250)}`.slice(0, 300), 'upholds: fine', 'refutes: nope'])),
        },
        gate: { kind: 'command', maxIterations: 3, iterations: 3, passed: false, last: `${HOSTILE}\n${'z'.repeat(480)}` },
      };
    }
    const text = md(run, latest);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(REPORT_MAX_BYTES);
    const part = dynamicPart(text);
    expect(part).toContain('_10 more dynamic phases not shown; run.json `phases[].dynamic` has them._');
    expect(part).toContain('_Cut to fit the report. In short: 20/500 items (480 dropped: limits.maxAgents 1000');
    expect(text).toMatch(/- \d+ dynamic-phase sections? cut to fit the report\./);
    expect(text).toContain('- The dynamic-phase sections cover the first 20 of 30 dynamic phases.');
    // Hostile text is escaped outside fences: no tag survives without its backslash.
    const outsideFences = text.replace(/(`{3,})text\n[\s\S]*?\n\1/g, '');
    expect(outsideFences).toContain('\\<script\\>');
    expect(outsideFences).not.toMatch(/(?<!\\)<(script|img)/);
    const html = renderReportHtml({ run, records: latest, markdown: text });
    expect(html.match(/<script\b/gi)?.length).toBe(1);
    expect(html).not.toMatch(/<img\b/i);
  });
});

describe('report.html: dynamic phases', () => {
  it('shows the same facts in the page, escaped, and the summary on the timeline row', () => {
    const { run, latest } = dynamicRun();
    run.phases.find((p) => p.id === 'review')!.dynamic!.verify!.verdicts[1]!.reasons[0] = `refutes: ${HOSTILE}`;
    const markdown = md(run, latest);
    const html = renderReportHtml({ run, records: latest, markdown });
    expect(html).toContain('<h2>Dynamic phases</h2>');
    expect(html).toContain('<h4>Items</h4>');
    expect(html).toContain('<strong>2 items dropped</strong> (forEach.max 3): <code>d.ts</code>, <code>e.ts</code>.');
    expect(html).toContain('<strong>Confirmed findings (3)</strong>');
    expect(html).toContain('<strong>Refuted findings (3)</strong>');
    expect(html).toContain('<h4>Gate</h4>');
    expect(html).toContain('<h4>Rounds</h4>');
    expect(html).toContain('<h4>Merge</h4>');
    expect(html).toContain('<code>edit/e3</code> on <code>src/a.ts</code>, <code>src/b.ts</code>: error: patch failed: src/a.ts:12');
    expect(html).toContain('&lt;script&gt;document.title=');
    expect(html.match(/<script\b/gi)?.length).toBe(1);
    expect(html).toMatch(/class="plabel" title="review — review\n3\/5 items \(2 dropped: forEach\.max 3; 1 duplicate removed\); verified 6 findings: 3 confirmed, 3 refuted \(1 unverified\)"/);
  });
});

describe('dynamicSummary', () => {
  it('says in one line what each dynamic phase did', () => {
    const { run } = dynamicRun();
    const lines = Object.fromEntries(dynamicSummaries(run).map((x) => [x.phaseId, x.summary]));
    expect(lines).toEqual({
      review: '3/5 items (2 dropped: forEach.max 3; 1 duplicate removed); verified 6 findings: 3 confirmed, 3 refuted (1 unverified)',
      hunt: '3 rounds, dry 1, 2 findings',
      fixup: 'gate passed on run 2 of 3',
      edit: 'merged 2 patches, 1 conflict (edit/e3)',
      synth: 'gate passed on run 1 of 2',
    });
  });

  it('matches the forms status answers use', () => {
    expect(dynamicSummary({
      items: { found: 5, made: 3, dropped: 2, duplicates: 0, droppedItems: ['d', 'e'], dropReason: 'forEach.max 3' },
      verify: { skeptics: 3, refuteBy: 'majority', findings: 6, confirmed: 3, refuted: 3, unverified: 0, verdicts: [] },
    })).toBe('3/5 items (2 dropped: forEach.max 3); verified 6 findings: 3 confirmed, 3 refuted');
    expect(dynamicSummary({ gate: { kind: 'command', maxIterations: 3, iterations: 3, passed: true } })).toBe('gate passed on run 3 of 3');
    expect(dynamicSummary({ gate: { kind: 'critic', maxIterations: 2, iterations: 2, passed: false, last: 'still\nbroken' } })).toBe('gate failed on run 2 of 2: still broken');
    expect(dynamicSummary({ gate: { kind: 'command', maxIterations: 3, iterations: 1, passed: null } })).toBe('gate pending (run 1 of at most 3)');
    expect(dynamicSummary({ converge: { untilDry: 1, maxRounds: 4, rounds: 3, dryRounds: 1, findings: 2, newPerRound: [1, 1, 0], stopped: 'dry: 1 round(s) in a row found nothing new' } })).toBe('3 rounds, dry 1, 2 findings');
    expect(dynamicSummary({ converge: { untilDry: 2, maxRounds: 4, rounds: 4, dryRounds: 0, findings: 9, newPerRound: [3, 2, 2, 2], stopped: 'converge.maxRounds 4 reached' } })).toBe('4 rounds, dry 0, 9 findings (stopped: converge.maxRounds 4 reached)');
    expect(dynamicSummary({})).toBe('');
    expect(dynamicSummary(undefined)).toBe('');
  });

  it('names the previous stage of a pipeline and stays one bounded line', () => {
    const plan = buildPlan({
      version: 1, name: 'pipe', agents: { w: { runner: 'command', command: ['true'] } }, defaults: { agent: 'w' },
      phases: [{ id: 'a', tasks: [{ id: 'x', prompt: 'x' }, { id: 'y', prompt: 'y' }] }, { id: 'b', dependsOn: ['a'], mode: 'pipeline', prompt: 'B {{item}}' }],
    });
    const b = plan.phases.find((p) => p.id === 'b')!;
    expect(dynamicSummary({ items: { found: 2, made: 2, dropped: 0, duplicates: 0, droppedItems: [] } }, b)).toBe('2 items from a');
    const long = dynamicSummary({ merge: { applied: [], conflicts: Array.from({ length: 50 }, (_, i) => ({ ref: `p/${'t'.repeat(60)}${i}`, files: [], message: 'x\ny' })), empty: 0 } });
    expect(long.length).toBeLessThanOrEqual(240);
    expect(long).not.toContain('\n');
  });
});
