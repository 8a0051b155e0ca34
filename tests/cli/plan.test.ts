/**
 * `fanfold plan` (and `run` with a bad spec) through the built CLI: the normalized plan in text
 * and JSON, and every kind of bad spec refused with exit code 2, the path in the spec, what was
 * expected and what arrived — with nothing written to the store.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeProject, sh, type Spec } from './project.js';

const good: Spec = {
  version: 1,
  name: 'plan-test',
  goal: 'check the plan view',
  limits: { maxConcurrent: 3 },
  agents: { a: sh('cat') },
  phases: [
    { id: 'map', agent: 'a', tasks: [{ id: 'm1', prompt: 'one' }, { id: 'm2', prompt: 'two' }, { id: 'm3', prompt: 'three' }] },
    { id: 'reduce', agent: 'a', dependsOn: ['map'], tasks: [{ id: 'r1', prompt: 'reduce' }, { id: 'r2', prompt: 'r2', dependsOn: ['r1'] }] },
    { id: 'report', agent: 'a', dependsOn: ['reduce'], tasks: [{ id: 'final', prompt: 'report' }] },
    { id: 'side', agent: 'a', tasks: [{ id: 's1', prompt: 'side', dependsOn: ['map/m2'] }] },
  ],
};

/** The same workflow as `good`, as a person would write it in YAML. */
const GOOD_YAML = [
  'version: 1',
  'name: plan-test',
  'goal: check the plan view',
  'limits: { maxConcurrent: 3 }',
  'agents:',
  '  a: { runner: command, command: ["sh", "-c", "cat"] }',
  'phases:',
  '  - { id: map, agent: a, tasks: [{ id: m1, prompt: one }, { id: m2, prompt: two }, { id: m3, prompt: three }] }',
  '  - { id: reduce, agent: a, dependsOn: [map], tasks: [{ id: r1, prompt: reduce }, { id: r2, prompt: r2, dependsOn: [r1] }] }',
  '  - { id: report, agent: a, dependsOn: [reduce], tasks: [{ id: final, prompt: report }] }',
  '  - { id: side, agent: a, tasks: [{ id: s1, prompt: side, dependsOn: [map/m2] }] }',
].join('\n');

describe('fanfold plan', () => {
  it('prints phases in order, the task count and the critical path (from YAML), and writes nothing', () => {
    const p = makeProject(good);
    fs.writeFileSync(p.file('spec.yaml'), GOOD_YAML);
    const r = p.cli(['plan', 'spec.yaml']);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    const phaseLines = lines.filter((l) => /^\s+\d+\. /.test(l));
    expect(phaseLines.map((l) => l.trim().split(':')[0])).toEqual(['1. map', '2. reduce', '3. report', '4. side']);
    expect(r.stdout).toMatch(/Total: 7 tasks/);
    // map/* → reduce/r1 → reduce/r2 → report/final
    expect(r.stdout).toMatch(/Critical path: 4 tasks/);
    expect(r.stdout).toContain('3 at a time');
    expect(fs.existsSync(p.store)).toBe(false);
    expect(fs.existsSync(path.join(p.dir, '.agent_workflows'))).toBe(false);
  });

  it('lists per agent the names (never the values) of the env its child will receive', () => {
    const spec: Spec = {
      ...good,
      agents: { a: { ...sh('cat'), env: { MODE: 'fast', API_KEY: 'written-in-the-spec' }, passEnv: ['MY_TOKEN', 'NOT_SET_ANYWHERE'] } },
    };
    const p = makeProject(spec);
    const env = { MY_TOKEN: 'tok-value-123456', GITHUB_TOKEN: 'ghp-owner-value', NOT_SET_ANYWHERE: undefined };
    const r = p.cli(['plan', p.spec], { env });
    expect(r.status, r.stderr).toBe(0);
    const line = r.stdout.split('\n').find((l) => l.startsWith('  a (command): '))!;
    expect(line).toBeDefined();
    const names = line.slice('  a (command): '.length).split(', ');
    expect(names).toEqual(expect.arrayContaining(['PATH', 'MODE', 'MY_TOKEN', 'FANFOLD_PROMPT_FILE']));
    expect(names).not.toContain('GITHUB_TOKEN');
    expect(r.stdout).toContain('passEnv not set here, so not passed: NOT_SET_ANYWHERE');
    expect(r.stdout).not.toContain('tok-value-123456');
    expect(r.stdout).toContain('env API_KEY looks secret: stored as [REDACTED] in run.json');
    const j = p.cli(['plan', p.spec, '--json'], { env }).json();
    expect(j.env[0]).toMatchObject({ agent: 'a', runner: 'command', missingPassEnv: ['NOT_SET_ANYWHERE'], secretEnv: ['API_KEY'] });
    expect(j.env[0].names).toContain('MY_TOKEN');
  });

  it('--json gives phases in order, taskCount and criticalPath', () => {
    const p = makeProject(good);
    const r = p.cli(['plan', p.spec, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const plan = r.json();
    expect(plan.phases.map((x: any) => x.id)).toEqual(['map', 'reduce', 'report', 'side']);
    expect(plan.taskCount).toBe(7);
    expect(plan.tasks).toHaveLength(7);
    expect(plan.criticalPath.length).toBe(4);
    expect(plan.criticalPath.refs).toHaveLength(4);
    expect(plan.criticalPath.refs.slice(1)).toEqual(['reduce/r1', 'reduce/r2', 'report/final']);
    // Tasks come in a topological order: each after all of its deps.
    const seen = new Set<string>();
    for (const t of plan.tasks) {
      for (const d of t.deps) expect(seen.has(d), `${t.ref} listed before its dep ${d}`).toBe(true);
      seen.add(t.ref);
    }
    expect(plan.tasks.find((t: any) => t.ref === 'side/s1').deps).toEqual(['map/m2']);
    expect(plan.limits.maxConcurrent).toBe(3);
    expect(fs.existsSync(p.store)).toBe(false);
  });

  const agents = { a: sh('cat') };

  /**
   * Each case is one spec; a spec with several problems must name every one of them (one line per
   * problem: path, what was expected, what arrived). CLI starts are slow on a loaded machine, so
   * problems are grouped instead of one spec each.
   */
  const cases: { name: string; spec: Spec | string; lines: (string | RegExp)[][]; alsoRun?: boolean }[] = [
    {
      name: 'shape errors (ranges, types, version, durations, a typo)',
      alsoRun: true,
      spec: {
        version: 2,
        name: 'bad',
        limits: { maxConcurrent: 40, maxAgents: 'lots', agentTimeout: 'soon' },
        agents: { a: { runner: 'command', command: 'cat' } },
        phases: [{ id: 'p', agent: 'a', dependOn: ['q'], tasks: 'all of them' }],
      },
      lines: [
        ['version', 'expected 1', '2'],
        ['limits.maxConcurrent', '1 to 16', '40'],
        ['limits.maxAgents', '1 to 1000', '"lots"'],
        ['limits.agentTimeout', 'duration', '"soon"'],
        ['agents.a.command', 'array', 'string'],
        ['phases[0].tasks', 'array', 'all of them'],
        ['phases[0].dependOn', 'dependsOn'],
      ],
    },
    {
      name: 'reference errors (unknown phase, task and agent; a duplicate id)',
      spec: {
        version: 1,
        name: 'bad',
        agents,
        phases: [{ id: 'p', agent: 'nobody', dependsOn: ['nowhere'], tasks: [{ id: 't', prompt: 'x', dependsOn: ['p/ghost'] }, { id: 't', prompt: 'y' }] }],
      },
      lines: [
        ['phases[0].tasks[1].id', "'t'"],
        ['phases[0].dependsOn[0]', "'nowhere'"],
        ['phases[0].agent', "'nobody'", "'a'"],
        ['phases[0].tasks[0].dependsOn[0]', "'ghost'"],
      ],
    },
    {
      name: 'a phase cycle',
      alsoRun: true,
      spec: {
        version: 1,
        name: 'bad',
        agents,
        phases: [
          { id: 'a', agent: 'a', dependsOn: ['b'], tasks: [{ id: 't', prompt: 'x' }] },
          { id: 'b', agent: 'a', dependsOn: ['a'], tasks: [{ id: 'u', prompt: 'y' }] },
        ],
      },
      lines: [[/phases\[\d\]\.dependsOn/, 'cycle', /(a → b → a|b → a → b)/]],
    },
    {
      name: 'a task cycle across three tasks',
      spec: {
        version: 1,
        name: 'bad',
        agents,
        phases: [{
          id: 'p', agent: 'a', tasks: [
            { id: 'x', prompt: '1', dependsOn: ['z'] },
            { id: 'y', prompt: '2', dependsOn: ['x'] },
            { id: 'z', prompt: '3', dependsOn: ['y'] },
          ],
        }],
      },
      lines: [['cycle', /p\/(\w) → p\/\w → p\/\w → p\/\1/]],
    },
    {
      name: 'more tasks than maxAgents',
      alsoRun: true,
      spec: {
        version: 1,
        name: 'bad',
        limits: { maxAgents: 5 },
        agents,
        phases: [{ id: 'p', agent: 'a', tasks: Array.from({ length: 7 }, (_, i) => ({ id: `t${i}`, prompt: `${i}` })) }],
      },
      lines: [['7 tasks', 'maxAgents', '5']],
    },
    { name: 'YAML that does not parse', spec: 'version: 1\nname: [unclosed\nphases: {', lines: [['bad.yaml', /line 3/]] },
  ];

  for (const c of cases) {
    it(`refuses ${c.name}: exit 2, one line per problem, nothing written`, () => {
      const p = makeProject({});
      const file = typeof c.spec === 'string' ? (fs.writeFileSync(p.file('bad.yaml'), c.spec), p.file('bad.yaml')) : p.writeSpec(c.spec, 'bad.json');
      for (const cmd of c.alsoRun ? ['plan', 'run'] : ['plan']) {
        const r = p.cli([cmd, file]);
        expect(r.status, `${cmd}: ${r.stderr}`).toBe(2);
        expect(r.stdout).toBe('');
        const lines = r.stderr.trim().split('\n');
        for (const want of c.lines) {
          const hit = lines.find((l) => want.every((w) => (typeof w === 'string' ? l.includes(w) : w.test(l))));
          expect(hit, `${cmd}: no line of stderr has all of ${want.join(' | ')}:\n${r.stderr}`).toBeDefined();
        }
        expect(r.stderr).not.toMatch(/\n\s+at .*\.js:\d+/); // a message, not a stack trace
      }
      expect(fs.existsSync(p.store), 'store created').toBe(false);
      expect(fs.existsSync(path.join(p.dir, '.agent_workflows'))).toBe(false);
    });
  }

  it('a missing spec file is exit 2 naming the file', () => {
    const p = makeProject({});
    const r = p.cli(['plan', 'nope.yaml']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('nope.yaml');
    expect(fs.existsSync(p.store)).toBe(false);
  });
});
