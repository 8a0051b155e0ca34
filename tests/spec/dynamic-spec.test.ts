/**
 * Validation and normalization of the dynamic parts of a spec: forEach, pipeline stages, verify,
 * gate, converge and isolation. Every mistake is an issue at its path that says what was expected.
 */
import { describe, expect, it } from 'vitest';
import { buildPlan, validateSpec } from '../../src/spec/index.js';
import { issueAt, issuesOf, withPhases } from './fixtures.js';

const list = { id: 'list', agent: 'sh', prompt: 'list', schema: { type: 'object' } };
const skepticAgents = { sh: { runner: 'command', command: ['true'] }, skeptic: { runner: 'command', command: ['true'] } };

describe('dynamic phases: shape and references', () => {
  it('prompt is a shorthand for one task named after the phase', () => {
    const plan = buildPlan(withPhases([{ id: 'solo', agent: 'sh', prompt: 'do it' }]));
    expect(plan.tasks.map((t) => t.ref)).toEqual(['solo/solo']);
    expect(plan.dynamic).toBeUndefined();
  });

  it('tasks and prompt together, or neither, are refused at the phase', () => {
    expect(issueAt(withPhases([{ id: 'a', agent: 'sh', prompt: 'x', tasks: [{ id: 't', prompt: 'y' }] }]), 'phases[0].prompt')).toMatch(/either tasks or prompt, got both/);
    expect(issueAt(withPhases([{ id: 'a', agent: 'sh' }]), 'phases[0].tasks')).toMatch(/required/);
  });

  it('forEach makes a phase whose tasks come at run time, ending at a virtual node later phases wait for', () => {
    const plan = buildPlan(withPhases([
      list,
      { id: 'each', agent: 'sh', forEach: { from: 'list', items: 'files', max: 5 }, prompt: 'look at {{item}}' },
      { id: 'sum', agent: 'sh', dependsOn: ['each'], prompt: 'sum' },
    ]));
    expect(plan.dynamic).toBe(true);
    const each = plan.phases[1]!;
    expect(each.taskRefs).toEqual([]);
    expect(each.dependsOn).toEqual(['list']); // forEach.from is a dependency
    expect(each.dynamic).toMatchObject({ start: 'each/_start', done: 'each/_done', startDeps: ['list/list'], upstream: ['list/list'], forEach: { from: 'list', items: 'files', max: 5 } });
    expect(each.dynamic!.templates).toEqual([{ id: 'each', prompt: 'look at {{item}}', agent: 'sh' }]);
    expect(plan.tasks.find((t) => t.ref === 'sum/sum')!.deps).toEqual(['each/_done']);
    expect(plan.agentCount).toBe(2);
  });

  it('a change to the forEach template changes the keys downstream', () => {
    const spec = (prompt: string) => withPhases([
      list,
      { id: 'each', agent: 'sh', forEach: { from: 'list' }, prompt },
      { id: 'sum', agent: 'sh', dependsOn: ['each'], prompt: 'sum' },
    ]);
    const a = buildPlan(spec('v1 {{item}}'));
    const b = buildPlan(spec('v2 {{item}}'));
    expect(a.tasks.find((t) => t.ref === 'list/list')!.key).toBe(b.tasks.find((t) => t.ref === 'list/list')!.key);
    expect(a.phases[1]!.dynamic!.doneKey).not.toBe(b.phases[1]!.dynamic!.doneKey);
    expect(a.tasks.find((t) => t.ref === 'sum/sum')!.key).not.toBe(b.tasks.find((t) => t.ref === 'sum/sum')!.key);
  });

  it('forEach from an unknown phase or from itself is refused', () => {
    expect(issueAt(withPhases([list, { id: 'each', agent: 'sh', forEach: { from: 'lst' }, prompt: 'x' }]), 'phases[1].forEach.from')).toMatch(/unknown phase 'lst'.*did you mean 'list'/);
    expect(issueAt(withPhases([{ id: 'each', agent: 'sh', forEach: { from: 'each' }, prompt: 'x' }]), 'phases[0].forEach.from')).toMatch(/from itself/);
  });

  it('forEach items must be a dotted path, max an integer in range', () => {
    expect(issueAt(withPhases([list, { id: 'e', agent: 'sh', forEach: { from: 'list', items: 'a[0]' }, prompt: 'x' }]), 'phases[1].forEach.items')).toMatch(/dotted path/);
    expect(issueAt(withPhases([list, { id: 'e', agent: 'sh', forEach: { from: 'list', max: 0 }, prompt: 'x' }]), 'phases[1].forEach.max')).toMatch(/integer from 1 to 1000, got 0/);
  });

  it('a pipeline stage names exactly one previous stage and starts with it, not after it', () => {
    const plan = buildPlan(withPhases([
      list,
      { id: 'a', agent: 'sh', forEach: { from: 'list' }, prompt: 'a {{item}}' },
      { id: 'b', agent: 'sh', mode: 'pipeline', dependsOn: ['a'], prompt: 'b {{item}} {{prev}}' },
    ]));
    expect(plan.phases[2]!.dynamic).toMatchObject({ pipeline: { from: 'a' }, startDeps: ['a/_start'], upstream: [] });
    expect(issueAt(withPhases([list, { id: 'b', agent: 'sh', mode: 'pipeline', prompt: 'x' }]), 'phases[1].dependsOn')).toMatch(/exactly one phase.*got none/);
    expect(issueAt(withPhases([list, { id: 'l2', agent: 'sh', prompt: 'y' }, { id: 'b', agent: 'sh', mode: 'pipeline', dependsOn: ['list', 'l2'], prompt: 'x' }]), 'phases[2].dependsOn')).toMatch(/exactly one phase.*'list', 'l2'/);
  });

  it('a pipeline stage cannot follow a converge phase (it has rounds, not items)', () => {
    expect(issueAt(withPhases([
      { id: 'hunt', agent: 'sh', converge: {}, prompt: 'find' },
      { id: 'next', agent: 'sh', mode: 'pipeline', dependsOn: ['hunt'], prompt: 'x' },
    ]), 'phases[1].dependsOn')).toMatch(/'hunt' has none.*forEach: \{from: hunt\}/);
  });

  it('a pipeline stage after a written phase has nothing to wait for at its start', () => {
    const plan = buildPlan(withPhases([
      { id: 'a', agent: 'sh', tasks: [{ id: 'x', prompt: '1' }, { id: 'y', prompt: '2' }] },
      { id: 'b', agent: 'sh', mode: 'pipeline', dependsOn: ['a'], prompt: 'b {{item}}' },
    ]));
    expect(plan.phases[1]!.dynamic!.startDeps).toEqual([]);
  });

  it('tasks of a phase made at run time cannot be named in dependsOn', () => {
    const msg = issueAt(withPhases([
      list,
      { id: 'each', agent: 'sh', forEach: { from: 'list' }, prompt: 'x' },
      { id: 'after', agent: 'sh', tasks: [{ id: 't', prompt: 'y', dependsOn: ['each/each'] }] },
    ]), 'phases[2].tasks[0].dependsOn[0]');
    expect(msg).toMatch(/made at run time: depend on the phase/);
  });

  it('templates may not carry dependsOn, and their ids leave room for item numbers', () => {
    expect(issueAt(withPhases([list, { id: 'e', agent: 'sh', forEach: { from: 'list' }, tasks: [{ id: 't', prompt: 'x', dependsOn: ['list/list'] }] }]), 'phases[1].tasks[0].dependsOn')).toMatch(/put dependencies on the phase/);
    expect(issueAt(withPhases([list, { id: 'e', agent: 'sh', forEach: { from: 'list' }, tasks: [{ id: 'x'.repeat(41), prompt: 'x' }] }]), 'phases[1].tasks[0].id')).toMatch(/at most 40 characters/);
  });

  it('converge and forEach together are refused; converge with a pipeline too', () => {
    expect(issueAt(withPhases([list, { id: 'e', agent: 'sh', forEach: { from: 'list' }, converge: {}, prompt: 'x' }]), 'phases[1].converge')).toMatch(/forEach or converge/);
  });

  it('converge gets its defaults', () => {
    const plan = buildPlan(withPhases([{ id: 'hunt', agent: 'sh', converge: {}, prompt: 'find {{seen}}' }]));
    expect(plan.phases[0]!.dynamic!.converge).toEqual({ untilDry: 1, maxRounds: 5 });
  });
});

describe('verify and gate', () => {
  it('verify resolves its agent and gets defaults', () => {
    const plan = buildPlan({ ...withPhases([{ id: 'audit', agent: 'sh', prompt: 'audit', verify: {} }]), agents: skepticAgents });
    expect(plan.phases[0]!.dynamic!.verify).toEqual({ skeptics: 2, agent: 'skeptic', refuteBy: 'majority' });
    expect(plan.tasks.map((t) => t.ref)).toEqual(['audit/audit']);
    expect(plan.phases[0]!.dynamic!.startDeps).toEqual(['audit/audit']);
  });

  it('an unknown skeptic agent is an issue at verify.agent', () => {
    expect(issueAt(withPhases([{ id: 'audit', agent: 'sh', prompt: 'audit', verify: { agent: 'doubter' } }]), 'phases[0].verify.agent')).toMatch(/unknown agent 'doubter'/);
  });

  it('verify.skeptics and refuteBy are checked', () => {
    const issues = issuesOf({ ...withPhases([{ id: 'a', agent: 'sh', prompt: 'x', verify: { skeptics: 0, refuteBy: 'most' } }]), agents: skepticAgents });
    expect(issues.map((i) => i.path).sort()).toEqual(['phases[0].verify.refuteBy', 'phases[0].verify.skeptics']);
  });

  it('a command gate becomes a synthetic command agent (so approval sees a shell command)', () => {
    const plan = buildPlan(withPhases([{ id: 'mig', agent: 'sh', prompt: 'migrate', gate: { command: 'npm test' } }]));
    expect(plan.agents['mig-gate']).toEqual({ name: 'mig-gate', runner: 'command', command: ['sh', '-c', 'npm test'], tier: 'edit' });
    expect(plan.phases[0]!.dynamic!.gate).toMatchObject({ kind: 'command', command: 'npm test', maxIterations: 3, fixAgent: 'sh', agent: 'mig-gate' });
  });

  it('maxIterations may sit on the phase or in the gate, but must agree', () => {
    const onPhase = buildPlan(withPhases([{ id: 'm', agent: 'sh', prompt: 'x', gate: { command: 'true' }, maxIterations: 5 }]));
    expect(onPhase.phases[0]!.dynamic!.gate!.maxIterations).toBe(5);
    expect(issueAt(withPhases([{ id: 'm', agent: 'sh', prompt: 'x', gate: { command: 'true', maxIterations: 2 }, maxIterations: 5 }]), 'phases[0].maxIterations')).toMatch(/differs from gate.maxIterations/);
    expect(issueAt(withPhases([{ id: 'm', agent: 'sh', prompt: 'x', maxIterations: 5 }]), 'phases[0].maxIterations')).toMatch(/add a gate/);
  });

  it('a gate needs exactly one of command and critic', () => {
    expect(issueAt(withPhases([{ id: 'm', agent: 'sh', prompt: 'x', gate: {} }]), 'phases[0].gate')).toMatch(/exactly one of command or critic, got neither/);
    expect(issueAt(withPhases([{ id: 'm', agent: 'sh', prompt: 'x', gate: { command: 'true', critic: { agent: 'sh' } } }]), 'phases[0].gate')).toMatch(/got both/);
  });

  it('a critic gate resolves its agent', () => {
    expect(issueAt(withPhases([{ id: 'm', agent: 'sh', prompt: 'x', gate: { critic: { agent: 'judge' } } }]), 'phases[0].gate.critic.agent')).toMatch(/unknown agent 'judge'/);
  });

  it('a template named like the engine\'s tasks is refused only where they would clash', () => {
    const spec = (extra: Record<string, unknown>, id: string) => ({ ...withPhases([list, { id: 'e', agent: 'sh', forEach: { from: 'list' }, tasks: [{ id, prompt: 'x' }], ...extra }]), agents: skepticAgents });
    expect(issueAt(spec({ gate: { command: 'true' } }, 'check'), 'phases[1].tasks[0].id')).toMatch(/check-<i> \(gate\)/);
    expect(issueAt(spec({ verify: {} }, 'skeptic-a'), 'phases[1].tasks[0].id')).toMatch(/skeptic-<f>-<k> \(verify\)/);
    // A verified phase makes no check-N tasks: a template 'check' is fine there.
    expect(validateSpec(spec({ verify: {} }, 'check')).ok).toBe(true);
    expect(validateSpec(spec({ gate: { command: 'true' } }, 'skeptic')).ok).toBe(true);
  });

  it('ids the engine gives made tasks are reserved in verified and gated phases', () => {
    expect(issueAt(withPhases([{ id: 'm', agent: 'sh', tasks: [{ id: 'check-1', prompt: 'x' }], gate: { command: 'true' } }]), 'phases[0].tasks[0].id')).toMatch(/reserved/);
  });

  it('the gate agent name may not clash with a defined agent', () => {
    const spec = { ...withPhases([{ id: 'm', agent: 'sh', prompt: 'x', gate: { command: 'true' } }]), agents: { sh: { runner: 'command', command: ['true'] }, 'm-gate': { runner: 'command', command: ['true'] } } };
    expect(issueAt(spec, 'phases[0].gate')).toMatch(/already uses/);
  });
});

describe('isolation', () => {
  const agents = { ed: { runner: 'command', command: ['true'], tier: 'edit' }, ro: { runner: 'command', command: ['true'] } };
  it('worktree isolation applies to edit-tier tasks and makes the phase merge', () => {
    const plan = buildPlan({ version: 1, name: 't', agents, phases: [{ id: 'b', agent: 'ed', isolation: 'worktree', tasks: [{ id: 'x', prompt: '1' }, { id: 'y', prompt: '2', isolation: 'none' }] }] });
    expect(plan.tasks.map((t) => [t.ref, t.isolation])).toEqual([['b/x', 'worktree'], ['b/y', undefined]]);
    expect(plan.phases[0]!.dynamic!.merge).toBe(true);
  });

  it('isolation on a read-only agent is a warning, not a worktree', () => {
    const r = validateSpec({ version: 1, name: 't', agents, phases: [{ id: 'b', agent: 'ro', isolation: 'worktree', prompt: 'x' }] });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.plan.tasks[0]!.isolation).toBeUndefined();
    expect(r.plan.warnings.join('\n')).toMatch(/tier read_only: it runs in the project directory/);
  });

  it('isolation changes the key of a task', () => {
    const plain = buildPlan({ version: 1, name: 't', agents, phases: [{ id: 'b', agent: 'ed', prompt: 'x' }] });
    const iso = buildPlan({ version: 1, name: 't', agents, phases: [{ id: 'b', agent: 'ed', isolation: 'worktree', prompt: 'x' }] });
    expect(plain.tasks[0]!.key).not.toBe(iso.tasks[0]!.key);
  });
});

describe('cycles through dynamic phases', () => {
  it('are named by phase', () => {
    const issues = issuesOf(withPhases([
      { id: 'a', agent: 'sh', dependsOn: ['b'], prompt: 'x', gate: { command: 'true' } },
      { id: 'b', agent: 'sh', dependsOn: ['a'], prompt: 'y' },
    ]));
    expect(issues.some((i) => /dependency cycle between phases: a → b → a/.test(i.message))).toBe(true);
  });
});
