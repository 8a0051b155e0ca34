/**
 * `fanfold resume <runId> --spec NEW`: after one upstream task's prompt changes, exactly that task
 * and everything downstream of it run again; the rest is reused (journal `agent.reused`) with its
 * content key unchanged. Through the built CLI, with real children that log each start.
 */
import { describe, expect, it } from 'vitest';
import { latest, makeProject, ranCounts, sh, type Spec } from '../cli/project.js';

const specWith = (a1Prompt: string): Spec => ({
  version: 1,
  name: 'resume-spec',
  limits: { maxConcurrent: 3, retries: 0 },
  agents: { w: sh('echo "$FANFOLD_TASK_ID" >> ran.log; echo "out $FANFOLD_TASK_ID: $(cat)"') },
  phases: [
    { id: 'a', agent: 'w', tasks: [{ id: 'a1', prompt: a1Prompt }, { id: 'a2', prompt: 'beta' }] },
    { id: 'b', agent: 'w', tasks: [{ id: 'b1', prompt: 'after a1', dependsOn: ['a/a1'] }, { id: 'b2', prompt: 'after a2', dependsOn: ['a/a2'] }] },
    { id: 'c', agent: 'w', dependsOn: ['b'], tasks: [{ id: 'c1', prompt: 'after all of b' }] },
    { id: 'd', agent: 'w', tasks: [{ id: 'd1', prompt: 'after a2 only', dependsOn: ['a/a2'] }] },
  ],
});

const CHANGED = ['a/a1', 'b/b1', 'c/c1'];
const SAME = ['a/a2', 'b/b2', 'd/d1'];

describe('resume --spec NEW', () => {
  it('reruns the changed task and everything downstream, reuses the rest with unchanged keys', () => {
    const p = makeProject(specWith('alpha v1'));
    const first = p.cli(['run', p.spec, '--json']);
    expect(first.status, first.stderr).toBe(0);
    const runId = first.json().runId;
    const before = p.agents(runId);
    const oldKey = (ref: string) => latest(before, ref).key;

    const v2 = p.writeSpec(specWith('alpha v2'), 'v2.json');
    // A bad new spec is refused before anything starts, and changes nothing.
    const badSpec = specWith('alpha v3');
    (badSpec.phases as any[])[0].tasks[0].dependsOn = ['a/nowhere'];
    const bad = p.cli(['resume', runId, '--spec', p.writeSpec(badSpec, 'bad.json')]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('nowhere');
    expect(p.journal(runId).some((e) => e.type === 'run.resumed')).toBe(false);

    // Keys as the new plan computes them: changed exactly along the edges from a/a1.
    const plan2 = p.cli(['plan', v2, '--json']).json();
    const newKey = new Map<string, string>(plan2.tasks.map((t: any) => [t.ref, t.key]));
    for (const ref of SAME) expect(newKey.get(ref), ref).toBe(oldKey(ref));
    for (const ref of CHANGED) expect(newKey.get(ref), ref).not.toBe(oldKey(ref));

    const resumed = p.cli(['resume', runId, '--spec', v2, '--json']);
    expect(resumed.status, resumed.stderr).toBe(0);
    const s = resumed.json();
    expect(s.status).toBe('completed');
    expect(s.agents).toMatchObject({ total: 6, succeeded: 6 });

    expect(ranCounts(p)).toEqual({ a1: 2, a2: 1, b1: 2, b2: 1, c1: 2, d1: 1 });
    const j = p.journal(runId);
    const at = j.findIndex((e) => e.type === 'run.resumed');
    expect(j[at]).toMatchObject({ reused: 3, toRun: 3 });
    const after = j.slice(at);
    const reused = after.filter((e) => e.type === 'agent.reused').flatMap((e) => e.tasks);
    expect(reused.map((e) => e.ref).sort()).toEqual(SAME);
    for (const e of reused) {
      expect(e.key, e.ref).toBe(oldKey(e.ref));
      expect(e.file).toBe(`${e.ref.replace('/', '.')}.1.json`);
    }
    expect(after.filter((e) => e.type === 'agent.started').map((e) => e.ref).sort()).toEqual(CHANGED);

    const files = p.agents(runId);
    // The reused records are untouched; the rerun tasks have a second attempt with the new key.
    for (const ref of SAME) expect(latest(files, ref)).toEqual(latest(before, ref));
    for (const ref of CHANGED) {
      const r = latest(files, ref);
      expect(r.attempt, ref).toBe(2);
      expect(r.key, ref).toBe(newKey.get(ref));
      expect(r.status).toBe('succeeded');
    }
    expect(latest(files, 'a/a1').output).toBe('out a1: alpha v2\n');
    // b1 saw the new output of a1 in its context file.
    const ctx = JSON.parse(p.read(`store/${runId}/inputs/b.b1.2.context.json`)!);
    expect(ctx.deps.find((d: any) => d.ref === 'a/a1').output).toBe('out a1: alpha v2\n');
    const run = p.runJson(runId);
    expect(run.plan.tasks.find((t: any) => t.ref === 'a/a1').prompt).toBe('alpha v2');
    expect(run.resumes).toBe(1);
  });
});
