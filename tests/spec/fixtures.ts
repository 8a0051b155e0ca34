/** Shared fixtures for the spec tests. */
import { validateSpec, type BuildOptions, type SpecIssue } from '../../src/spec/index.js';

/** The example spec of the brief, verbatim. */
export const EXAMPLE_YAML = `version: 1
name: todo-census
goal: Count and classify TODO comments per package
limits: { maxConcurrent: 4, maxAgents: 64, agentTimeout: 10m, runTimeout: 30m, retries: 1 }
agents:
  shell: { runner: command, command: ["bash", "scripts/census.sh"] }
phases:
  - id: map
    title: Census per package
    agent: shell
    tasks:
      - { id: core, prompt: "packages/core" }
      - { id: cli,  prompt: "packages/cli" }
  - id: rank
    dependsOn: [map]
    agent: shell
    tasks:
      - { id: ranking, prompt: "rank the census", dependsOn: [map/core] }   # task-level edge, optional
`;

/** The example spec as a plain object (what parsing EXAMPLE_YAML gives). */
export function example(): Record<string, any> {
  return {
    version: 1,
    name: 'todo-census',
    goal: 'Count and classify TODO comments per package',
    limits: { maxConcurrent: 4, maxAgents: 64, agentTimeout: '10m', runTimeout: '30m', retries: 1 },
    agents: { shell: { runner: 'command', command: ['bash', 'scripts/census.sh'] } },
    phases: [
      {
        id: 'map',
        title: 'Census per package',
        agent: 'shell',
        tasks: [
          { id: 'core', prompt: 'packages/core' },
          { id: 'cli', prompt: 'packages/cli' },
        ],
      },
      {
        id: 'rank',
        dependsOn: ['map'],
        agent: 'shell',
        tasks: [{ id: 'ranking', prompt: 'rank the census', dependsOn: ['map/core'] }],
      },
    ],
  };
}

/** A minimal valid spec with one command agent and the given phases. */
export function withPhases(phases: unknown[], extra: Record<string, unknown> = {}): Record<string, any> {
  return {
    version: 1,
    name: 'test',
    agents: { sh: { runner: 'command', command: ['true'] } },
    phases,
    ...extra,
  };
}

/** Issues of an invalid spec; fails the test when the spec is valid. */
export function issuesOf(input: unknown, opts?: BuildOptions): SpecIssue[] {
  const r = validateSpec(input, opts);
  if (r.ok) throw new Error('expected the spec to be invalid, but it is valid');
  return r.issues;
}

/** The single issue at `path` (fails when there is none or more than one). */
export function issueAt(input: unknown, path: string, opts?: BuildOptions): string {
  const found = issuesOf(input, opts).filter((i) => i.path === path);
  if (found.length !== 1) {
    throw new Error(`expected one issue at '${path}', got ${JSON.stringify(issuesOf(input, opts))}`);
  }
  return found[0]!.message;
}
