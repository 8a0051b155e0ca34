import { describe, expect, test, vi } from 'vitest';
import {
  MAX_ISSUES,
  SpecError,
  buildPlan,
  parseSpecText,
  validateSpec,
  type AgentDef,
  type Plan,
} from '../../src/spec/index.js';
import { EXAMPLE_YAML, example, issueAt, issuesOf, withPhases } from './fixtures.js';

const keyOf = (plan: Plan, ref: string) => plan.tasks.find((t) => t.ref === ref)!.key;

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

describe('the example spec', () => {
  const plan = buildPlan(parseSpecText(EXAMPLE_YAML));

  test('normalizes to the expected plan', () => {
    expect(plan.schemaVersion).toBe(1);
    expect(plan.name).toBe('todo-census');
    expect(plan.goal).toBe('Count and classify TODO comments per package');
    expect(plan.limits).toEqual({
      maxConcurrent: 4,
      maxAgents: 64,
      agentTimeoutMs: 600_000,
      runTimeoutMs: 1_800_000,
      retries: 1,
      retryBackoffMs: 1000,
      maxOutputBytes: 262_144,
      maxContextBytes: 65_536,
    });
    expect(plan.agents).toEqual({
      shell: { name: 'shell', runner: 'command', command: ['bash', 'scripts/census.sh'], tier: 'read_only' },
    });
    expect(plan.phases).toEqual([
      { id: 'map', title: 'Census per package', dependsOn: [], onFailure: 'stop', taskRefs: ['map/core', 'map/cli'] },
      { id: 'rank', title: 'rank', dependsOn: ['map'], onFailure: 'stop', taskRefs: ['rank/ranking'] },
    ]);
    expect(plan.tasks.map(({ key: _key, ...t }) => t)).toEqual([
      { ref: 'map/core', phaseId: 'map', taskId: 'core', prompt: 'packages/core', agent: 'shell', deps: [] },
      { ref: 'map/cli', phaseId: 'map', taskId: 'cli', prompt: 'packages/cli', agent: 'shell', deps: [] },
      // Phase-level dependsOn expanded to every task of `map`; the task-level edge map/core merged in once.
      { ref: 'rank/ranking', phaseId: 'rank', taskId: 'ranking', prompt: 'rank the census', agent: 'shell', deps: ['map/core', 'map/cli'] },
    ]);
    expect(plan.agentCount).toBe(3);
    expect(plan.criticalPath).toEqual({ length: 2, refs: ['map/core', 'rank/ranking'] });
    expect(plan.warnings).toEqual([]);
  });

  test('keys are 24 hex chars, distinct, and stable across builds', () => {
    for (const t of plan.tasks) expect(t.key).toMatch(/^[0-9a-f]{24}$/);
    expect(new Set(plan.tasks.map((t) => t.key)).size).toBe(3);
    const again = buildPlan(parseSpecText(EXAMPLE_YAML));
    expect(again).toEqual(plan);
    // Key order of the input objects does not matter either.
    const shuffled = example();
    shuffled.agents = { shell: { command: ['bash', 'scripts/census.sh'], runner: 'command' } };
    expect(buildPlan(shuffled).tasks.map((t) => t.key)).toEqual(plan.tasks.map((t) => t.key));
  });

  test('changing an upstream prompt changes every key downstream, and only those', () => {
    const spec = example();
    spec.phases[0].tasks[0].prompt = 'packages/core2';
    const changed = buildPlan(spec);
    expect(keyOf(changed, 'map/core')).not.toBe(keyOf(plan, 'map/core'));
    expect(keyOf(changed, 'rank/ranking')).not.toBe(keyOf(plan, 'rank/ranking'));
    expect(keyOf(changed, 'map/cli')).toBe(keyOf(plan, 'map/cli'));
  });

  test('an edge through phase-level dependsOn carries key changes too', () => {
    const spec = example();
    spec.phases[0].tasks[1].prompt = 'packages/cli2'; // map/cli: only a phase-level edge to rank/ranking
    const changed = buildPlan(spec);
    expect(keyOf(changed, 'rank/ranking')).not.toBe(keyOf(plan, 'rank/ranking'));
    expect(keyOf(changed, 'map/core')).toBe(keyOf(plan, 'map/core'));
  });

  test('a downstream change leaves upstream keys alone', () => {
    const spec = example();
    spec.phases[1].tasks[0].prompt = 'rank it differently';
    const changed = buildPlan(spec);
    expect(keyOf(changed, 'map/core')).toBe(keyOf(plan, 'map/core'));
    expect(keyOf(changed, 'map/cli')).toBe(keyOf(plan, 'map/cli'));
    expect(keyOf(changed, 'rank/ranking')).not.toBe(keyOf(plan, 'rank/ranking'));
  });

  test('the agent definition is part of the key; limits, titles and goal are not', () => {
    const agentChanged = example();
    agentChanged.agents.shell.command = ['bash', 'scripts/other.sh'];
    const a = buildPlan(agentChanged);
    for (const t of plan.tasks) expect(keyOf(a, t.ref)).not.toBe(t.key);

    const cosmetic = example();
    cosmetic.limits.maxConcurrent = 8;
    cosmetic.phases[0].title = 'Another title';
    cosmetic.goal = 'Another goal';
    const b = buildPlan(cosmetic);
    for (const t of plan.tasks) expect(keyOf(b, t.ref)).toBe(t.key);
  });

  test('keys do not depend on the clock', () => {
    vi.useFakeTimers();
    try {
      vi.setSystemTime(new Date('2001-01-01T00:00:00Z'));
      const early = buildPlan(example());
      vi.setSystemTime(new Date('2099-01-01T00:00:00Z'));
      expect(buildPlan(example())).toEqual(early);
    } finally {
      vi.useRealTimers();
    }
  });

  test('buildPlan does not modify its input and shares no arrays with it', () => {
    const input = deepFreeze(example());
    const built = buildPlan(input);
    built.agents.shell!.command!.push('--mutated');
    built.phases[1]!.dependsOn.push('x');
    expect(input.agents.shell.command).toEqual(['bash', 'scripts/census.sh']);
    expect(input.phases[1].dependsOn).toEqual(['map']);
  });
});

describe('order and dependencies', () => {
  test('tasks are listed in topological order; declaration order breaks ties', () => {
    const plan = buildPlan(
      withPhases([
        { id: 'late', dependsOn: ['early'], agent: 'sh', tasks: [{ id: 'x', prompt: 'p' }] },
        {
          id: 'early',
          agent: 'sh',
          tasks: [
            { id: 'b', prompt: 'p', dependsOn: ['a'] }, // bare ref: a task of this phase
            { id: 'a', prompt: 'p' },
            { id: 'c', prompt: 'p' },
          ],
        },
      ]),
    );
    expect(plan.tasks.map((t) => t.ref)).toEqual(['early/a', 'early/b', 'early/c', 'late/x']);
    expect(plan.tasks.find((t) => t.ref === 'early/b')!.deps).toEqual(['early/a']);
    expect(plan.tasks.find((t) => t.ref === 'late/x')!.deps).toEqual(['early/b', 'early/a', 'early/c']);
    expect(plan.criticalPath).toEqual({ length: 3, refs: ['early/a', 'early/b', 'late/x'] });
    // Phases stay in declaration order; their taskRefs too.
    expect(plan.phases.map((p) => p.id)).toEqual(['late', 'early']);
    expect(plan.phases[1]!.taskRefs).toEqual(['early/b', 'early/a', 'early/c']);
  });

  test('phase-level dependsOn over several phases expands to all their tasks', () => {
    const plan = buildPlan(
      withPhases([
        { id: 'a', tasks: [{ id: '1', prompt: 'p' }, { id: '2', prompt: 'p' }] },
        { id: 'b', dependsOn: ['a'], tasks: [{ id: '1', prompt: 'p' }] },
        { id: 'c', dependsOn: ['a', 'b'], tasks: [{ id: '1', prompt: 'p', dependsOn: ['b/1', 'a/2'] }] },
      ]),
    );
    expect(plan.tasks.at(-1)!.deps).toEqual(['a/1', 'a/2', 'b/1']);
    expect(plan.criticalPath).toEqual({ length: 3, refs: ['a/1', 'b/1', 'c/1'] });
    expect(plan.agentCount).toBe(4);
  });

  test('duplicate entries in dependsOn are merged, with a warning', () => {
    const plan = buildPlan(
      withPhases([
        { id: 'a', tasks: [{ id: 't', prompt: 'p' }] },
        { id: 'b', dependsOn: ['a', 'a'], tasks: [{ id: 't', prompt: 'p', dependsOn: ['a/t', 'a/t'] }] },
      ]),
    );
    expect(plan.phases[1]!.dependsOn).toEqual(['a']);
    expect(plan.tasks[1]!.deps).toEqual(['a/t']);
    expect(plan.warnings).toEqual([
      "phases[1].dependsOn names 'a' more than once",
      "phases[1].tasks[0].dependsOn names 'a/t' more than once",
    ]);
  });

  test('phase options carry over: final, summarize, onFailure, title', () => {
    const plan = buildPlan(
      withPhases([
        { id: 'a', title: 'First', onFailure: 'continue', tasks: [{ id: 't', prompt: 'p' }] },
        { id: 'b', dependsOn: ['a'], final: true, summarize: { agent: 'sh' }, tasks: [{ id: 't', prompt: 'p' }] },
        { id: 'c', dependsOn: ['b'], final: false, tasks: [{ id: 't', prompt: 'p' }] },
      ]),
    );
    expect(plan.phases).toEqual([
      { id: 'a', title: 'First', dependsOn: [], onFailure: 'continue', taskRefs: ['a/t'] },
      { id: 'b', title: 'b', dependsOn: ['a'], onFailure: 'stop', taskRefs: ['b/t'], final: true, summarize: { agent: 'sh' } },
      { id: 'c', title: 'c', dependsOn: ['b'], onFailure: 'stop', taskRefs: ['c/t'] },
    ]);
  });
});

describe('reference errors', () => {
  test('duplicate phase ids', () => {
    const spec = withPhases([
      { id: 'a', tasks: [{ id: 't', prompt: 'p' }] },
      { id: 'a', tasks: [{ id: 'u', prompt: 'p' }] },
    ]);
    expect(issueAt(spec, 'phases[1].id')).toBe("duplicate phase id 'a' (first used by phases[0])");
  });

  test('duplicate task ids within a phase (the same id in two phases is fine)', () => {
    const spec = withPhases([
      { id: 'a', tasks: [{ id: 't', prompt: 'p' }, { id: 'u', prompt: 'p' }, { id: 't', prompt: 'q' }] },
      { id: 'b', dependsOn: ['a'], tasks: [{ id: 't', prompt: 'p' }] },
    ]);
    expect(issuesOf(spec)).toEqual([
      { path: 'phases[0].tasks[2].id', message: "duplicate task id 't' in phase 'a' (first used by phases[0].tasks[0])" },
    ]);
  });

  test('ids that differ only by case are refused (they become file names)', () => {
    const spec = withPhases([
      { id: 'map', tasks: [{ id: 'core', prompt: 'p' }, { id: 'Core', prompt: 'p' }] },
      { id: 'Map', tasks: [{ id: 't', prompt: 'p' }] },
    ]);
    expect(issuesOf(spec)).toEqual([
      {
        path: 'phases[0].tasks[1].id',
        message: "task id 'Core' differs from 'core' (phases[0].tasks[0]) only by case; ids become file names, which some file systems do not tell apart",
      },
      {
        path: 'phases[1].id',
        message: "phase id 'Map' differs from 'map' (phases[0]) only by case; ids become file names, which some file systems do not tell apart",
      },
    ]);
  });

  test('a phase dependsOn an unknown phase, with a suggestion and the known phases', () => {
    const spec = withPhases([
      { id: 'map', tasks: [{ id: 't', prompt: 'p' }] },
      { id: 'rank', dependsOn: ['mapp'], tasks: [{ id: 't', prompt: 'p' }] },
    ]);
    expect(issueAt(spec, 'phases[1].dependsOn[0]')).toBe("unknown phase 'mapp' (did you mean 'map'?); phases: 'map', 'rank'");
  });

  test('unknown task refs: unknown phase, unknown task, bare task, bare phase name', () => {
    const spec = withPhases([
      { id: 'map', tasks: [{ id: 'core', prompt: 'p' }, { id: 'cli', prompt: 'p' }] },
      {
        id: 'rank',
        tasks: [{ id: 'r', prompt: 'p', dependsOn: ['mop/core', 'map/cor', 'x', 'map', 'r2'] }, { id: 'r2', prompt: 'p' }],
      },
    ]);
    const at = (j: number) => issueAt(spec, `phases[1].tasks[0].dependsOn[${j}]`);
    expect(at(0)).toBe("unknown phase 'mop' in task ref 'mop/core' (did you mean 'map'?); phases: 'map', 'rank'");
    expect(at(1)).toBe("phase 'map' has no task 'cor' (did you mean 'core'?); its tasks: 'core', 'cli'");
    expect(at(2)).toBe("no task 'x' in this phase; its tasks: 'r', 'r2'");
    expect(at(3)).toBe(
      "no task 'map' in this phase; 'map' is a phase: add it to the phase's dependsOn, or name one of its tasks as 'map/<task>'",
    );
    expect(issuesOf(spec)).toHaveLength(4); // 'r2' is a valid bare ref
  });

  test('an unknown agent lists the known names', () => {
    const spec = {
      ...withPhases([{ id: 'a', agent: 'shel', tasks: [{ id: 't', prompt: 'p' }, { id: 'u', prompt: 'p', agent: 'ghost' }] }]),
      agents: { shell: { runner: 'command', command: ['true'] }, claude1: { runner: 'claude' } },
    };
    expect(issueAt(spec, 'phases[0].agent')).toBe("unknown agent 'shel' (did you mean 'shell'?): agents defined in the spec: 'shell', 'claude1'");
    expect(issueAt(spec, 'phases[0].tasks[1].agent')).toBe("unknown agent 'ghost': agents defined in the spec: 'shell', 'claude1'");
    // The phase-level name is reported once, not once per task.
    expect(issuesOf(spec)).toHaveLength(2);
  });

  test('defaults.agent and summarize.agent are checked too', () => {
    const spec = {
      ...withPhases([{ id: 'a', summarize: { agent: 'writer' }, tasks: [{ id: 't', prompt: 'p', agent: 'sh' }] }]),
      defaults: { agent: 'nobody' },
    };
    expect(issueAt(spec, 'defaults.agent')).toMatch(/^unknown agent 'nobody'/);
    expect(issueAt(spec, 'phases[0].summarize.agent')).toMatch(/^unknown agent 'writer'/);
  });

  test('an agent without a runner (and no defaults.runner), a command agent without argv', () => {
    const spec = {
      ...withPhases([{ id: 'a', agent: 'x', tasks: [{ id: 't', prompt: 'p' }] }]),
      agents: { x: { model: 'm' }, y: { runner: 'command' } },
    };
    expect(issueAt(spec, 'agents.x.runner')).toBe("required: expected one of 'command', 'claude', 'codex', 'pi' (or set defaults.runner)");
    expect(issueAt(spec, 'agents.y.command')).toBe('required for runner \'command\': the argv to run, e.g. ["bash", "scripts/census.sh"]');
  });

  test('tasks with no agent at all are reported once per phase', () => {
    const spec = {
      version: 1,
      name: 'n',
      agents: { a: { runner: 'claude' }, b: { runner: 'codex' } },
      phases: [{ id: 'p', tasks: [{ id: 't1', prompt: 'x' }, { id: 't2', prompt: 'x' }, { id: 't3', prompt: 'x', agent: 'a' }] }],
    };
    expect(issuesOf(spec)).toEqual([
      { path: 'phases[0]', message: "no agent for tasks 't1', 't2': set agent on the phase or the task, or defaults.agent (agents defined: 'a', 'b')" },
    ]);
    const none = { version: 1, name: 'n', phases: [{ id: 'p', tasks: [{ id: 't', prompt: 'x' }] }] };
    expect(issueAt(none, 'phases[0]')).toMatch(/^no agent for task 't': define one under agents .* or set defaults\.runner$/);
  });
});

describe('agent resolution', () => {
  const agents = {
    one: { runner: 'claude', model: 'opus' },
    two: { runner: 'codex', tier: 'edit' },
    three: { runner: 'pi' },
  };

  test('task.agent, then phase.agent, then defaults.agent', () => {
    const plan = buildPlan({
      version: 1,
      name: 'n',
      agents,
      defaults: { agent: 'three' },
      phases: [
        { id: 'a', agent: 'two', tasks: [{ id: 't', prompt: 'x', agent: 'one' }, { id: 'u', prompt: 'x' }] },
        { id: 'b', dependsOn: ['a'], tasks: [{ id: 'v', prompt: 'x' }] },
      ],
    });
    expect(plan.tasks.map((t) => [t.ref, t.agent])).toEqual([
      ['a/t', 'one'],
      ['a/u', 'two'],
      ['b/v', 'three'],
    ]);
    expect(plan.agents.one).toEqual({ name: 'one', runner: 'claude', model: 'opus', tier: 'read_only' });
    expect(plan.agents.two!.tier).toBe('edit');
    expect(plan.warnings).toContain("agent 'two' has tier 'edit': its tasks may change files and need approval to run");
  });

  test('the only agent defined is the default', () => {
    const plan = buildPlan({ version: 1, name: 'n', agents: { solo: { runner: 'claude' } }, phases: [{ id: 'p', tasks: [{ id: 't', prompt: 'x' }] }] });
    expect(plan.tasks[0]!.agent).toBe('solo');
  });

  test('defaults.runner fills in an agent runner, and gives agent-less specs an implicit agent', () => {
    const plan = buildPlan({
      version: 1,
      name: 'n',
      defaults: { runner: 'claude' },
      phases: [{ id: 'p', tasks: [{ id: 't', prompt: 'x' }] }],
    });
    expect(plan.tasks[0]!.agent).toBe('claude');
    expect(plan.agents).toEqual({ claude: { name: 'claude', runner: 'claude', tier: 'read_only' } });

    const filled = buildPlan({
      version: 1,
      name: 'n',
      defaults: { runner: 'codex' },
      agents: { r: { model: 'gpt' } },
      phases: [{ id: 'p', tasks: [{ id: 't', prompt: 'x' }] }],
    });
    expect(filled.agents.r).toEqual({ name: 'r', runner: 'codex', model: 'gpt', tier: 'read_only' });
  });

  test('resolveAgent supplies profiles the spec does not define, asked once per name', () => {
    const reviewer: AgentDef = { name: 'reviewer', runner: 'claude', tier: 'read_only', tools: ['Read', 'Grep'] };
    const resolveAgent = vi.fn((name: string) => (name === 'reviewer' ? reviewer : undefined));
    const plan = buildPlan(
      withPhases([
        { id: 'a', agent: 'reviewer', tasks: [{ id: 't', prompt: 'x' }, { id: 'u', prompt: 'x', agent: 'reviewer' }] },
        { id: 'b', dependsOn: ['a'], agent: 'sh', tasks: [{ id: 'v', prompt: 'x' }] },
      ]),
      { resolveAgent },
    );
    expect(resolveAgent).toHaveBeenCalledTimes(1);
    expect(plan.agents.reviewer).toEqual(reviewer);
    expect(Object.keys(plan.agents)).toEqual(['sh', 'reviewer']);
    expect(plan.tasks.map((t) => t.agent)).toEqual(['reviewer', 'reviewer', 'sh']);
  });

  test('an agent unknown to both the spec and resolveAgent says so', () => {
    const spec = withPhases([{ id: 'a', agent: 'ghost', tasks: [{ id: 't', prompt: 'x' }] }]);
    expect(issueAt(spec, 'phases[0].agent', { resolveAgent: () => undefined })).toBe(
      "unknown agent 'ghost': agents defined in the spec: 'sh'; no agent profile has that name either",
    );
  });

  test('a resolveAgent that throws becomes an issue, not a crash', () => {
    const spec = withPhases([{ id: 'a', agent: 'ghost', tasks: [{ id: 't', prompt: 'x' }] }]);
    const resolveAgent = () => {
      throw new Error('profile file unreadable');
    };
    expect(issueAt(spec, 'phases[0].agent', { resolveAgent })).toBe("cannot resolve agent 'ghost': profile file unreadable");
  });

  test('a resolved profile keeps the name the spec used', () => {
    const plan = buildPlan(withPhases([{ id: 'a', agent: 'alias', tasks: [{ id: 't', prompt: 'x' }] }]), {
      resolveAgent: () => ({ name: 'real-name', runner: 'pi', tier: 'read_only' }),
    });
    expect(plan.agents.alias).toEqual({ name: 'alias', runner: 'pi', tier: 'read_only' });
  });

  test('names like constructor or toString are agents like any other', () => {
    const spec = {
      version: 1,
      name: 'n',
      agents: { constructor: { runner: 'claude' }, toString: { runner: 'codex' } },
      phases: [{ id: 'hasOwnProperty', agent: 'constructor', tasks: [{ id: 'valueOf', prompt: 'x', agent: 'toString' }, { id: 't', prompt: 'x' }] }],
    };
    const plan = buildPlan(spec);
    expect(plan.tasks.map((t) => t.agent)).toEqual(['toString', 'constructor']);
    const missing = withPhases([{ id: 'a', agent: 'constructor', tasks: [{ id: 't', prompt: 'x' }] }]);
    expect(issueAt(missing, 'phases[0].agent')).toMatch(/^unknown agent 'constructor'/);
  });
});

describe('cycles', () => {
  test('a 3-cycle of phases is reported as its path', () => {
    const spec = withPhases([
      { id: 'a', dependsOn: ['c'], tasks: [{ id: 't', prompt: 'p' }] },
      { id: 'b', dependsOn: ['a'], tasks: [{ id: 't', prompt: 'p' }] },
      { id: 'c', dependsOn: ['b'], tasks: [{ id: 't', prompt: 'p' }] },
    ]);
    expect(issuesOf(spec)).toEqual([{ path: 'phases[0].dependsOn', message: 'dependency cycle between phases: a → c → b → a' }]);
  });

  test('a phase depending on itself', () => {
    const spec = withPhases([{ id: 'a', dependsOn: ['a'], tasks: [{ id: 't', prompt: 'p' }] }]);
    expect(issueAt(spec, 'phases[0].dependsOn')).toBe('dependency cycle between phases: a → a');
  });

  test('a 3-cycle of task-level edges', () => {
    const spec = withPhases([
      {
        id: 'p',
        tasks: [
          { id: 'x', prompt: 'p', dependsOn: ['y'] },
          { id: 'y', prompt: 'p', dependsOn: ['z'] },
          { id: 'z', prompt: 'p', dependsOn: ['x'] },
        ],
      },
    ]);
    expect(issuesOf(spec)).toEqual([{ path: 'phases[0].tasks[0].dependsOn', message: 'dependency cycle between tasks: p/x → p/y → p/z → p/x' }]);
  });

  test('a cycle through a phase-level edge and a task-level edge', () => {
    const spec = example();
    spec.phases[0].tasks[0].dependsOn = ['rank/ranking'];
    expect(issuesOf(spec)).toEqual([
      { path: 'phases[0].tasks[0].dependsOn', message: 'dependency cycle between tasks: map/core → rank/ranking → map/core' },
    ]);
  });

  test('independent cycles are each reported', () => {
    const spec = withPhases([
      { id: 'a', dependsOn: ['b'], tasks: [{ id: 't', prompt: 'p' }] },
      { id: 'b', dependsOn: ['a'], tasks: [{ id: 't', prompt: 'p' }] },
      { id: 'c', dependsOn: ['d'], tasks: [{ id: 't', prompt: 'p' }] },
      { id: 'd', dependsOn: ['c'], tasks: [{ id: 't', prompt: 'p' }] },
    ]);
    expect(issuesOf(spec).map((i) => i.message)).toEqual([
      'dependency cycle between phases: a → b → a',
      'dependency cycle between phases: c → d → c',
    ]);
  });
});

describe('limits.maxAgents', () => {
  const tasks = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `t${i}`, prompt: 'p' }));

  test('more tasks than maxAgents is refused with the count, never truncated', () => {
    const spec = withPhases([{ id: 'a', tasks: tasks(7) }, { id: 'b', dependsOn: ['a'], tasks: tasks(5) }], { limits: { maxAgents: 10 } });
    const r = validateSpec(spec);
    expect(r).toEqual({
      ok: false,
      issues: [{ path: '', message: '12 tasks planned, over limits.maxAgents 10: raise limits.maxAgents (at most 1000) or split the workflow' }],
    });
  });

  test('the default cap is 64', () => {
    const spec = withPhases([{ id: 'a', tasks: tasks(65) }]);
    expect(issueAt(spec, '')).toBe('65 tasks planned, over limits.maxAgents 64: raise limits.maxAgents (at most 1000) or split the workflow');
    expect(buildPlan(withPhases([{ id: 'a', tasks: tasks(64) }])).agentCount).toBe(64);
  });

  test('past 1000 tasks the advice is to split', () => {
    const spec = withPhases([{ id: 'a', tasks: tasks(1200) }], { limits: { maxAgents: 1000 } });
    expect(issueAt(spec, '')).toBe('1200 tasks planned, over limits.maxAgents 1000: split the workflow (limits.maxAgents is at most 1000)');
  });

  test('1000 tasks in two fully connected phases builds quickly', () => {
    const spec = withPhases([{ id: 'a', tasks: tasks(500) }, { id: 'b', dependsOn: ['a'], tasks: tasks(500) }], { limits: { maxAgents: 1000 } });
    const started = Date.now();
    const plan = buildPlan(spec);
    expect(plan.agentCount).toBe(1000);
    expect(plan.tasks[999]!.deps).toHaveLength(500);
    expect(Date.now() - started).toBeLessThan(30_000);
  });
});

describe('warnings', () => {
  test('a later phase without dependsOn starts at once', () => {
    const plan = buildPlan(withPhases([{ id: 'map', tasks: [{ id: 't', prompt: 'p' }] }, { id: 'rank', tasks: [{ id: 't', prompt: 'p' }] }]));
    expect(plan.warnings).toEqual(["phase 'rank' has no dependsOn: its tasks start at once, in parallel with earlier phases"]);
  });

  test('…but not when a task-level edge reaches another phase', () => {
    const plan = buildPlan(
      withPhases([{ id: 'map', tasks: [{ id: 't', prompt: 'p' }] }, { id: 'rank', tasks: [{ id: 't', prompt: 'p', dependsOn: ['map/t'] }] }]),
    );
    expect(plan.warnings).toEqual([]);
  });

  test('unused agents, command on a non-command runner, timeouts, several finals', () => {
    const plan = buildPlan({
      version: 1,
      name: 'n',
      limits: { agentTimeout: '2h', runTimeout: '1h' },
      agents: { used: { runner: 'claude', command: ['x'] }, idle: { runner: 'pi' } },
      phases: [
        { id: 'a', agent: 'used', final: true, tasks: [{ id: 't', prompt: 'p' }] },
        { id: 'b', agent: 'used', final: true, dependsOn: ['a'], tasks: [{ id: 't', prompt: 'p' }] },
      ],
    });
    expect(plan.warnings).toEqual([
      "agents.used.command is only used by runner 'command'; runner 'claude' ignores it",
      'limits.agentTimeout is longer than limits.runTimeout: the run timeout will cut agents short first',
      "2 phases are marked final ('a', 'b'): the report quotes each",
      "agent 'idle' is defined but no task uses it",
    ]);
  });
});

describe('all issues together', () => {
  test('every reference problem in one SpecError', () => {
    const spec = {
      version: 1,
      name: 'n',
      limits: { maxAgents: 3 },
      agents: { sh: { runner: 'command', command: ['true'] }, cl: { runner: 'claude' } },
      phases: [
        { id: 'a', agent: 'sh', tasks: [{ id: 't', prompt: 'p' }, { id: 't', prompt: 'p' }] },
        { id: 'a', agent: 'sh', tasks: [{ id: 'u', prompt: 'p' }] },
        { id: 'b', dependsOn: ['zz'], agent: 'nope', tasks: [{ id: 'v', prompt: 'p', dependsOn: ['a/q'] }] },
      ],
    };
    let error: unknown;
    try {
      buildPlan(spec);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(SpecError);
    const issues = (error as SpecError).issues;
    expect(issues.map((i) => i.path)).toEqual([
      'phases[0].tasks[1].id',
      'phases[1].id',
      'phases[2].dependsOn[0]',
      'phases[2].agent',
      'phases[2].tasks[0].dependsOn[0]',
      '',
    ]);
    expect(issues.at(-1)!.message).toMatch(/^4 tasks planned, over limits.maxAgents 3/);
    // The error message lists them all, one per line.
    expect((error as SpecError).message.split('\n')).toHaveLength(issues.length);
    expect((error as SpecError).message).toMatch(/^spec: phases\[0\]\.tasks\[1\]\.id: duplicate task id 't'/);
  });

  test('issues are capped, with a count of the rest', () => {
    const deps = Array.from({ length: 80 }, (_, i) => `missing${i}`);
    const issues = issuesOf(withPhases([{ id: 'a', tasks: [{ id: 't', prompt: 'p', dependsOn: deps }] }]));
    expect(issues).toHaveLength(MAX_ISSUES + 1);
    expect(issues.at(-1)).toEqual({ path: '', message: '… and 30 more issues' });
  });
});

describe('agents defined without a runner', () => {
  const spec = { version: 1, name: 't', agents: { auditor: { systemPrompt: 'audit' } }, phases: [{ id: 'p', agent: 'auditor', prompt: 'x' }] };

  test('run on the host runner when the spec sets no defaults.runner', () => {
    const r = validateSpec(spec, { hostRunner: () => 'codex' });
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.plan.agents['auditor']!.runner).toBe('codex');
  });

  test('say why when there is no host runner either', () => {
    const r = validateSpec(spec, { hostRunner: () => { throw new Error('no agent CLI found to run it'); } });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues).toEqual([{ path: 'agents.auditor.runner', message: expect.stringMatching(/required: .*; no agent CLI found to run it/) }]);
  });

  test('a command agent never takes the host runner', () => {
    const r = validateSpec({ ...spec, agents: { auditor: { command: ['true'] } } }, { hostRunner: () => 'claude' });
    expect(r.ok).toBe(false);
  });

  test('planFromInput uses FANFOLD_RUNNER for them', async () => {
    const { planFromInput } = await import('../../src/engine/plan-file.js');
    const plan = planFromInput(spec, { env: { PATH: '', FANFOLD_RUNNER: 'pi' } });
    expect(plan.agents['auditor']!.runner).toBe('pi');
  });
});
