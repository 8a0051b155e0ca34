import { describe, expect, test } from 'vitest';
import * as z from 'zod';
import {
  ID_PATTERN,
  MAX_DURATION_MS,
  WorkflowSpecSchema,
  buildPlan,
  formatDuration,
  formatPath,
  parseDuration,
  validateSpec,
} from '../../src/spec/index.js';
import { example, issueAt, issuesOf, withPhases } from './fixtures.js';

describe('ID_PATTERN', () => {
  test.each(['a', 'A1', '0', 'map', 'my-agent', 'x_y', 'a'.repeat(64)])('accepts %s', (id) => {
    expect(ID_PATTERN.test(id)).toBe(true);
  });
  test.each(['', '-a', '_a', '__proto__', 'a/b', 'a.b', '..', 'a b', 'a\u0000', 'é', 'a'.repeat(65), 'a\n'])(
    'refuses %j',
    (id) => {
      expect(ID_PATTERN.test(id)).toBe(false);
    },
  );
});

describe('schema defaults', () => {
  test('limits and tiers get their defaults', () => {
    const plan = buildPlan({ version: 1, name: 'n', agents: { a: { runner: 'claude' } }, phases: [{ id: 'p', tasks: [{ id: 't', prompt: 'x' }] }] });
    expect(plan.limits).toEqual({
      maxConcurrent: 4,
      maxAgents: 64,
      agentTimeoutMs: 600_000,
      runTimeoutMs: 3_600_000,
      retries: 1,
      retryBackoffMs: 1000,
      maxOutputBytes: 262_144,
      maxContextBytes: 65_536,
    });
    expect(plan.agents.a).toEqual({ name: 'a', runner: 'claude', tier: 'read_only' });
    expect(plan.phases[0]).toMatchObject({ title: 'p', onFailure: 'stop', dependsOn: [] });
  });

  test('parsed WorkflowSpec carries defaults, durations as written', () => {
    const spec = WorkflowSpecSchema.parse(example());
    expect(spec.limits.agentTimeout).toBe('10m');
    expect(spec.limits.retryBackoff).toBe('1s');
    expect(spec.phases[0]!.onFailure).toBe('stop');
  });

  test('the schema converts to JSON Schema (for MCP tool inputs)', () => {
    const json = z.toJSONSchema(WorkflowSpecSchema, { io: 'input' }) as Record<string, any>;
    expect(json.type).toBe('object');
    expect(json.additionalProperties).toBe(false);
    expect(json.required).toEqual(expect.arrayContaining(['version', 'name', 'phases']));
  });
});

describe('durations', () => {
  test.each([
    ['500ms', 500],
    ['90s', 90_000],
    ['10m', 600_000],
    ['1h', 3_600_000],
    ['1.5h', 5_400_000],
    ['2 days', 172_800_000],
    [90, 90_000],
    [0.5, 500],
    [0, 0],
  ])('parseDuration(%j) = %d ms', (input, expected) => {
    expect(parseDuration(input)).toBe(expected);
  });

  test.each(['ten minutes', '', '10', '-5m', '1x', 'm', null, true, -1, Number.NaN, Infinity, 'a'.repeat(101)])(
    'parseDuration(%j) explains what it expected',
    (input) => {
      const r = parseDuration(input);
      expect(typeof r).toBe('string');
      expect(r).toMatch(/expected a duration like '500ms', '90s', '10m', '1h' or a number of seconds/);
    },
  );

  test('a unit-less string asks for a unit', () => {
    expect(parseDuration('10')).toMatch(/add a unit, e\.g\. "10s"/);
  });

  test('numbers in limits mean seconds; strings use ms units', () => {
    const plan = buildPlan(
      withPhases([{ id: 'p', tasks: [{ id: 't', prompt: 'x' }] }], {
        limits: { agentTimeout: 90, runTimeout: '2h', retryBackoff: '250ms' },
      }),
    );
    expect(plan.limits.agentTimeoutMs).toBe(90_000);
    expect(plan.limits.runTimeoutMs).toBe(7_200_000);
    expect(plan.limits.retryBackoffMs).toBe(250);
  });

  test('bad durations are reported at their path', () => {
    const spec = withPhases([{ id: 'p', tasks: [{ id: 't', prompt: 'x' }] }], {
      limits: { agentTimeout: 'soon', runTimeout: false, retryBackoff: '-1s' },
    });
    expect(issueAt(spec, 'limits.agentTimeout')).toMatch(/got "soon"$/);
    expect(issueAt(spec, 'limits.runTimeout')).toMatch(/or a number of seconds, got boolean false$/);
    expect(issueAt(spec, 'limits.retryBackoff')).toMatch(/got "-1s"$/);
  });

  test('a zero timeout and one past Node timer range are refused', () => {
    const spec = withPhases([{ id: 'p', tasks: [{ id: 't', prompt: 'x' }] }], {
      limits: { agentTimeout: 0, runTimeout: '30d' },
    });
    expect(issueAt(spec, 'limits.agentTimeout')).toBe('expected a duration from 1ms to 24d, got 0');
    expect(issueAt(spec, 'limits.runTimeout')).toMatch(/from 1ms to 24d, got "30d" \(Node timers overflow/);
    expect(parseDuration('24d')).toBe(MAX_DURATION_MS);
  });

  test('formatDuration never rounds', () => {
    expect(formatDuration(90_000)).toBe('90s');
    expect(formatDuration(600_000)).toBe('10m');
    expect(formatDuration(3_600_000)).toBe('1h');
    expect(formatDuration(500)).toBe('500ms');
    expect(formatDuration(1500)).toBe('1.5s');
    expect(formatDuration(0)).toBe('0ms');
  });
});

describe('shape errors: path and message', () => {
  const one = (tasks: unknown[] = [{ id: 't', prompt: 'x' }]) => withPhases([{ id: 'p', tasks }]);

  test('integer ranges say the range and what arrived', () => {
    const spec = { ...one(), limits: { maxConcurrent: 40, maxAgents: 0, retries: 2.5, maxOutputBytes: 10 } };
    expect(issueAt(spec, 'limits.maxConcurrent')).toBe('expected an integer from 1 to 16, got 40');
    expect(issueAt(spec, 'limits.maxAgents')).toBe('expected an integer from 1 to 1000, got 0');
    expect(issueAt(spec, 'limits.retries')).toBe('expected an integer from 0 to 10, got 2.5');
    expect(issueAt(spec, 'limits.maxOutputBytes')).toBe('expected an integer from 1024 to 67108864, got 10');
  });

  test('wrong types say expected and got', () => {
    const spec = one([{ id: 't', prompt: 3 }]);
    expect(issueAt(spec, 'phases[0].tasks[0].prompt')).toBe('expected a non-empty string, got number 3');
    const spec2 = { ...one(), name: ['x'] };
    expect(issueAt(spec2, 'name')).toBe('expected a non-empty string, got an array');
    const spec3 = withPhases([{ id: 'p', final: 'yes', tasks: [{ id: 't', prompt: 'x' }] }]);
    expect(issueAt(spec3, 'phases[0].final')).toBe('expected true or false, got string "yes"');
  });

  test('missing required fields', () => {
    const spec = withPhases([{ id: 'p', tasks: [{ id: 't' }] }]);
    expect(issueAt(spec, 'phases[0].tasks[0].prompt')).toBe('required: expected a non-empty string');
    const { version: _v, ...noVersion } = one();
    expect(issueAt(noVersion, 'version')).toBe('required: expected 1');
    const { phases: _p, ...noPhases } = one();
    expect(issueAt(noPhases, 'phases')).toBe('required: expected a list (array)');
  });

  test('version must be the literal 1', () => {
    expect(issueAt({ ...one(), version: 2 }, 'version')).toBe('expected 1, got number 2');
    expect(issueAt({ ...one(), version: '1' }, 'version')).toBe("expected 1, got '1'");
  });

  test('name is non-empty and at most 100 characters', () => {
    expect(issueAt({ ...one(), name: '' }, 'name')).toBe('expected a non-empty string, got an empty string');
    expect(issueAt({ ...one(), name: 'x'.repeat(101) }, 'name')).toBe('expected at most 100 characters, got 101');
  });

  test('empty phases and tasks are refused', () => {
    expect(issueAt(withPhases([]), 'phases')).toBe('expected a non-empty list, got an empty list');
    expect(issueAt(one([]), 'phases[0].tasks')).toBe('expected a non-empty list, got an empty list');
  });

  test('ids must match ID_PATTERN', () => {
    const spec = withPhases([{ id: '../etc', tasks: [{ id: 'a b', prompt: 'x', agent: '-x' }] }]);
    expect(issueAt(spec, 'phases[0].id')).toMatch(/^expected an id \(1–64 letters, digits, '_' or '-', starting with a letter or digit\), got "\.\.\/etc"$/);
    expect(issueAt(spec, 'phases[0].tasks[0].id')).toMatch(/got "a b"$/);
    expect(issueAt(spec, 'phases[0].tasks[0].agent')).toMatch(/got "-x"$/);
  });

  test('agent names (record keys) must be ids', () => {
    const spec = { ...one(), agents: { 'my agent': { runner: 'claude' } } };
    expect(issueAt(spec, 'agents["my agent"]')).toMatch(/^invalid key 'my agent': expected an id/);
  });

  test('task dependsOn entries must look like refs', () => {
    const spec = one([{ id: 't', prompt: 'x', dependsOn: ['a/b/c', 3] }]);
    expect(issueAt(spec, 'phases[0].tasks[0].dependsOn[0]')).toBe(
      "expected a task ref 'phase/task' or the id of a task of this phase, got \"a/b/c\"",
    );
    expect(issueAt(spec, 'phases[0].tasks[0].dependsOn[1]')).toBe('expected a string, got number 3');
  });

  test('enums suggest the closest value', () => {
    const spec = { ...one(), agents: { sh: { runner: 'claud' } } };
    expect(issueAt(spec, 'agents.sh.runner')).toBe(
      "expected one of 'command', 'claude', 'codex', 'pi', got 'claud' (did you mean 'claude'?)",
    );
    const spec2 = withPhases([{ id: 'p', onFailure: 'ignore', tasks: [{ id: 't', prompt: 'x' }] }]);
    expect(issueAt(spec2, 'phases[0].onFailure')).toBe("expected one of 'stop', 'continue', got 'ignore'");
  });

  test('a command given as a string explains argv', () => {
    const spec = { ...one(), agents: { sh: { runner: 'command', command: 'bash scripts/census.sh' } } };
    expect(issueAt(spec, 'agents.sh.command')).toBe(
      'expected an array of strings (argv), got a string; write ["bash","-c","..."] to use a shell',
    );
  });

  test('an empty command is refused', () => {
    const spec = { ...one(), agents: { sh: { runner: 'command', command: [] } } };
    expect(issueAt(spec, 'agents.sh.command')).toBe('expected a non-empty array of strings (argv), got an empty array');
  });

  test('env values must be strings, with a hint to quote numbers', () => {
    const spec = { ...one(), agents: { sh: { runner: 'command', command: ['true'], env: { PORT: 8080, 'BAD-NAME': 'x' } } } };
    expect(issueAt(spec, 'agents.sh.env.PORT')).toBe('expected a string, got number 8080 (quote it: "8080")');
    expect(issueAt(spec, 'agents.sh.env.BAD-NAME')).toMatch(/^invalid key 'BAD-NAME': expected an environment variable name/);
  });

  test('passEnv: a list of variable names of your own, with clear errors', () => {
    const bad = { ...one(), agents: { sh: { runner: 'command', command: ['true'], passEnv: 'GITHUB_TOKEN' } } };
    expect(issueAt(bad, 'agents.sh.passEnv')).toBe('expected a list of environment variable names, got a string; write ["GITHUB_TOKEN"]');
    const names = { ...one(), agents: { sh: { runner: 'command', command: ['true'], passEnv: ['OK_NAME', 'BAD-NAME', 'FANFOLD_STORE'] } } };
    expect(issueAt(names, 'agents.sh.passEnv[1]')).toMatch(/^expected an environment variable name .*got "BAD-NAME"/);
    expect(issueAt(names, 'agents.sh.passEnv[2]')).toMatch(/^expected a variable of your own, got "FANFOLD_STORE": fanfold's own FANFOLD_\* settings never pass to a child/);
    const good = { ...one(), agents: { sh: { runner: 'command', command: ['true'], passEnv: ['GITHUB_TOKEN'] } } };
    expect(() => issuesOf(good)).toThrow(/valid/);
  });

  test('maxTurns must be a positive integer', () => {
    const spec = { ...one(), agents: { sh: { runner: 'claude', maxTurns: 0 } } };
    expect(issueAt(spec, 'agents.sh.maxTurns')).toBe('expected a positive integer, got 0');
  });

  test('the root must be a mapping', () => {
    for (const input of [null, undefined, 'spec', 42, [1]]) {
      const issues = issuesOf(input);
      expect(issues).toHaveLength(1);
      expect(issues[0]!.path).toBe('');
      expect(issues[0]!.message).toMatch(/^expected the workflow spec as a mapping with version, name and phases, got /);
    }
  });
});

describe('unknown keys', () => {
  test('a typo of a known key gets "did you mean"', () => {
    const spec = withPhases([{ id: 'p', tasks: [{ id: 't', prompt: 'x', dependOn: ['q'] }] }]);
    expect(issueAt(spec, 'phases[0].tasks[0].dependOn')).toBe("unknown key 'dependOn' (did you mean 'dependsOn'?)");
  });

  test('a far-off key lists the known keys', () => {
    const spec = { ...withPhases([{ id: 'p', tasks: [{ id: 't', prompt: 'x' }] }]), frobnicate: 1 };
    expect(issueAt(spec, 'frobnicate')).toBe(
      "unknown key 'frobnicate'; known keys: version, name, goal, limits, defaults, agents, phases",
    );
  });

  test('every level is strict, each unknown key its own issue', () => {
    const spec = {
      ...withPhases([{ id: 'p', titel: 'T', summarize: { agnt: 'sh' }, tasks: [{ id: 't', prompt: 'x' }] }]),
      limits: { maxConcurent: 2 },
      defaults: { agents: 'sh' },
      agents: { sh: { runner: 'command', command: ['true'], modle: 'x' } },
    };
    const issues = issuesOf(spec);
    expect(issues).toEqual(
      expect.arrayContaining([
        { path: 'limits.maxConcurent', message: "unknown key 'maxConcurent' (did you mean 'maxConcurrent'?)" },
        { path: 'defaults.agents', message: "unknown key 'agents' (did you mean 'agent'?)" },
        { path: 'agents.sh.modle', message: "unknown key 'modle' (did you mean 'model'?)" },
        { path: 'phases[0].titel', message: "unknown key 'titel' (did you mean 'title'?)" },
        { path: 'phases[0].summarize.agnt', message: "unknown key 'agnt' (did you mean 'agent'?)" },
        { path: 'phases[0].summarize.agent', message: 'required: expected a string' },
      ]),
    );
    expect(issues).toHaveLength(6);
  });
});

test('formatPath', () => {
  expect(formatPath(['phases', 1, 'tasks', 0, 'dependsOn', 0])).toBe('phases[1].tasks[0].dependsOn[0]');
  expect(formatPath([])).toBe('');
  expect(formatPath(['agents', 'a b', 'x'])).toBe('agents["a b"].x');
});

test('validateSpec reports all shape issues at once', () => {
  const spec = {
    version: 2,
    name: '',
    limits: { maxConcurrent: 40 },
    agents: { sh: { runner: 'command', command: 'ls' } },
    phases: [{ id: 'p', tasks: [{ id: 't', prompt: 3 }] }],
  };
  const r = validateSpec(spec);
  expect(r.ok).toBe(false);
  if (r.ok) return;
  expect(r.issues.map((i) => i.path)).toEqual(['version', 'name', 'limits.maxConcurrent', 'agents.sh.command', 'phases[0].tasks[0].prompt']);
});
