/**
 * Agent profiles: parsing, lookup order (project, user, bundled), the default runner, the bundled
 * profiles themselves, and plan building through engine/plan-file.ts.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { planFromInput } from '../../src/engine/plan-file.js';
import { bundledProfilesDir, defaultRunner, loadProfiles, parseProfile, splitToolList, toAgentDef } from '../../src/runners/profiles.js';
import { SpecError } from '../../src/spec/types.js';

const root = mkdtempSync(join(tmpdir(), 'fanfold-profiles-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let k = 0;

/** A fresh project with `.claude/agents/` files, a user folder and a PATH folder. */
function project(files: Record<string, string> = {}, user: Record<string, string> = {}) {
  const base = join(root, `p${k++}`);
  const cwd = join(base, 'project');
  const userDir = join(base, 'user-agents');
  const bin = join(base, 'bin');
  mkdirSync(join(cwd, '.claude', 'agents'), { recursive: true });
  mkdirSync(userDir, { recursive: true });
  mkdirSync(bin);
  for (const [n, t] of Object.entries(files)) writeFileSync(join(cwd, '.claude', 'agents', n), t);
  for (const [n, t] of Object.entries(user)) writeFileSync(join(userDir, n), t);
  const install = (name: string) => {
    writeFileSync(join(bin, name), '#!/bin/sh\n');
    chmodSync(join(bin, name), 0o755);
  };
  return { cwd, userDir, bin, install, env: { PATH: bin } as NodeJS.ProcessEnv };
}

const CLAUDE_SUBAGENT = `---
name: code-reviewer
description: Expert code review specialist. Use after writing code.
tools: Read, Grep, Glob, Bash(git diff:*)
model: sonnet
color: red
---
You are a senior code reviewer.
Review the diff.
`;

describe('parseProfile', () => {
  it("reads a Claude Code subagent as it is (comma tools, unknown keys ignored, body = system prompt)", () => {
    const p = parseProfile(CLAUDE_SUBAGENT, '/x/code-reviewer.md', 'project');
    expect(p).toEqual({
      name: 'code-reviewer',
      description: 'Expert code review specialist. Use after writing code.',
      tools: ['Read', 'Grep', 'Glob', 'Bash(git diff:*)'],
      model: 'sonnet',
      tier: 'read_only',
      systemPrompt: 'You are a senior code reviewer.\nReview the diff.',
      file: '/x/code-reviewer.md',
      source: 'project',
    });
  });

  it('reads every fanfold field; YAML list tools; model inherit means the default', () => {
    const p = parseProfile(
      '---\nrunner: codex\nmodel: inherit\ntools: [read, bash]\ntier: edit\nmaxTurns: 12\nenv: {A: "1"}\n---\n',
      '/x/fixer.md',
      'user',
      'fixer',
    );
    expect(p).toEqual({ name: 'fixer', runner: 'codex', tools: ['read', 'bash'], tier: 'edit', maxTurns: 12, env: { A: '1' }, file: '/x/fixer.md', source: 'user' });
  });

  it.each([
    ['no front matter', 'just text', 'expected YAML front matter'],
    ['bad yaml', '---\nname: [\n---\n', 'front matter is not valid YAML'],
    ['list front matter', '---\n- a\n---\n', 'front matter must be a mapping'],
    ['bad runner', '---\nname: a\nrunner: gpt\n---\n', 'runner: expected one of command, claude, codex, pi, got "gpt"'],
    ['bad tier', '---\nname: a\ntier: write\n---\n', 'tier: expected read_only or edit, got "write"'],
    ['bad maxTurns', '---\nname: a\nmaxTurns: 0\n---\n', 'maxTurns: expected an integer from 1 to 10000, got number 0'],
    ['bad tools', '---\nname: a\ntools: 3\n---\n', 'tools: expected a comma-separated list'],
    ['bad env', '---\nname: a\nenv: {A: 1}\n---\n', 'env.A: expected a string, got number 1 (quote it)'],
    ['command runner without argv', '---\nname: a\nrunner: command\n---\n', "command: required for runner 'command'"],
    ['no name', '---\ntier: edit\n---\n', 'name: required'],
  ])('%s → a message naming the file and the field', (_label, text, message) => {
    expect(() => parseProfile(text, '/x/a.md', 'project')).toThrow(`agent profile /x/a.md: ${message}`);
  });

  it('splitToolList keeps commas inside permission patterns', () => {
    expect(splitToolList('Read, Bash(npm run test:*, npm run lint), ,Grep')).toEqual(['Read', 'Bash(npm run test:*, npm run lint)', 'Grep']);
  });
});

describe('loadProfiles', () => {
  it('project before user before bundled; by front-matter name or by file name', () => {
    const p = project(
      { 'review.md': CLAUDE_SUBAGENT, 'reviewer.md': '---\nname: reviewer\nrunner: pi\n---\nmine' },
      { 'reviewer.md': '---\nname: reviewer\nrunner: codex\n---\nuser', 'helper.md': '---\nname: helper\nrunner: codex\n---\nuser helper' },
    );
    const set = loadProfiles({ cwd: p.cwd, env: p.env, userDir: p.userDir });
    expect(set.dirs.map((d) => d.source)).toEqual(['project', 'user', 'bundled']);
    expect(set.find('reviewer')).toMatchObject({ runner: 'pi', systemPrompt: 'mine', source: 'project' });
    expect(set.find('helper')).toMatchObject({ runner: 'codex', source: 'user' });
    expect(set.find('code-reviewer')).toMatchObject({ source: 'project' });
    expect(set.find('review')).toMatchObject({ name: 'code-reviewer' }); // by file name too
    expect(set.find('skeptic')).toMatchObject({ source: 'bundled', tier: 'read_only' });
    expect(set.find('nobody')).toBeUndefined();
    expect(set.list().map((x) => x.name)).toEqual(
      expect.arrayContaining(['code-reviewer', 'reviewer', 'helper', 'researcher', 'implementer', 'skeptic', 'tester', 'summarizer']),
    );
  });

  it('a broken profile of the requested name is an error; other broken files are not', () => {
    const p = project({ 'broken.md': '---\ntier: sometimes\n---\n', 'fine.md': '---\nname: fine\nrunner: pi\n---\n' });
    const set = loadProfiles({ cwd: p.cwd, env: p.env, userDir: false });
    expect(set.find('fine')).toMatchObject({ runner: 'pi' });
    expect(() => set.find('broken')).toThrow(/broken\.md: tier: expected read_only or edit/);
  });

  it('resolve: a runner-less profile takes the default runner; Claude model names stay with claude only', () => {
    const p = project({ 'code-reviewer.md': CLAUDE_SUBAGENT });
    p.install('codex');
    const viaCodex = loadProfiles({ cwd: p.cwd, env: p.env, userDir: false }).resolve('code-reviewer')!;
    expect(viaCodex).toMatchObject({ name: 'code-reviewer', runner: 'codex', tier: 'read_only', tools: ['Read', 'Grep', 'Glob', 'Bash(git diff:*)'] });
    expect(viaCodex.model).toBeUndefined();
    p.install('claude');
    const viaClaude = loadProfiles({ cwd: p.cwd, env: p.env, userDir: false }).resolve('code-reviewer')!;
    expect(viaClaude).toMatchObject({ runner: 'claude', model: 'sonnet', systemPrompt: 'You are a senior code reviewer.\nReview the diff.' });
    const bySpec = loadProfiles({ cwd: p.cwd, env: p.env, userDir: false, specRunner: 'pi' }).resolve('researcher')!;
    expect(bySpec.runner).toBe('pi');
    expect(loadProfiles({ cwd: p.cwd, env: p.env, userDir: false }).resolve('../etc/passwd')).toBeUndefined();
  });

  it('the user folder defaults to $CLAUDE_CONFIG_DIR/agents', () => {
    const p = project({}, { 'mine.md': '---\nname: mine\nrunner: pi\n---\n' });
    const set = loadProfiles({ cwd: p.cwd, env: { ...p.env, CLAUDE_CONFIG_DIR: join(p.userDir, '..', 'cfg') } });
    expect(set.dirs[1]!.dir).toBe(join(p.userDir, '..', 'cfg', 'agents'));
    const set2 = loadProfiles({ cwd: p.cwd, env: { HOME: '/home/someone' } });
    expect(set2.dirs[1]!.dir).toBe('/home/someone/.claude/agents');
  });
});

describe('defaultRunner', () => {
  let p: ReturnType<typeof project>;
  beforeEach(() => {
    p = project();
  });

  it('spec defaults.runner, then FANFOLD_RUNNER, then claude on PATH, then codex', () => {
    p.install('claude');
    p.install('codex');
    expect(defaultRunner({ specRunner: 'pi', env: { ...p.env, FANFOLD_RUNNER: 'codex' } })).toBe('pi');
    expect(defaultRunner({ specRunner: 'command', env: { ...p.env, FANFOLD_RUNNER: 'codex' } })).toBe('codex');
    expect(defaultRunner({ env: p.env })).toBe('claude');
    rmSync(join(p.bin, 'claude'));
    expect(defaultRunner({ env: p.env })).toBe('codex');
    expect(defaultRunner({ env: { PATH: '', FANFOLD_CLAUDE_BIN: join(p.bin, 'codex') } })).toBe('claude');
  });

  it('says what to install when there is nothing', () => {
    expect(() => defaultRunner({ env: { PATH: p.bin } })).toThrow(
      /neither 'claude' nor 'codex' is on PATH\. Install one \(npm i -g @anthropic-ai\/claude-code, or npm i -g @openai\/codex\), or name a runner/,
    );
    expect(() => defaultRunner({ env: { PATH: p.bin, FANFOLD_RUNNER: 'gemini' } })).toThrow('FANFOLD_RUNNER="gemini" is not an agent runner: expected claude, codex or pi');
  });
});

describe('bundled profiles', () => {
  const names = ['researcher', 'implementer', 'reviewer', 'skeptic', 'tester', 'summarizer', 'critic'];
  const set = loadProfiles({ cwd: root, env: { PATH: '' }, userDir: false });

  it('are all there, parse, name no runner or model, and carry a real system prompt', () => {
    expect(bundledProfilesDir()).toMatch(/\/agents\/$/);
    for (const n of names) {
      const p = set.find(n)!;
      expect(p, n).toMatchObject({ name: n, source: 'bundled' });
      expect(p.runner, n).toBeUndefined();
      expect(p.model, n).toBeUndefined();
      expect(p.description!.length, n).toBeGreaterThan(30);
      expect(p.systemPrompt!.length, n).toBeGreaterThan(600);
      expect(p.maxTurns, n).toBeGreaterThan(0);
    }
    expect(set.find('implementer')!.tier).toBe('edit');
    expect(set.find('tester')!.tier).toBe('edit');
    for (const n of ['researcher', 'reviewer', 'skeptic', 'summarizer', 'critic']) expect(set.find(n)!.tier).toBe('read_only');
    // The answers verify and gate enforce: reasons as a string for skeptics, a list for critics.
    expect(set.find('skeptic')!.systemPrompt).toContain('{"refuted": true, "reasons": "');
    expect(set.find('critic')!.systemPrompt).toMatch(/"pass"/);
  });

  it('toAgentDef copies what a runner needs', () => {
    expect(toAgentDef(set.find('skeptic')!, 'pi')).toMatchObject({ name: 'skeptic', runner: 'pi', tier: 'read_only', maxTurns: 25 });
  });
});

describe('planFromInput (engine/plan-file.ts)', () => {
  const spec = (extra: Record<string, unknown> = {}) => ({
    version: 1,
    name: 'profiles',
    ...extra,
    phases: [
      {
        id: 'look',
        schema: { type: 'object', properties: { refuted: { type: 'boolean' } }, required: ['refuted'] },
        tasks: [
          { id: 'a', agent: 'skeptic', prompt: 'Refute: the cache never grows.' },
          { id: 'b', agent: 'code-reviewer', prompt: 'Review.', schema: { type: 'array' } },
        ],
      },
    ],
  });

  it('resolves project and bundled profiles, defaults.runner applies, schemas land on tasks and keys', () => {
    const p = project({ 'code-reviewer.md': CLAUDE_SUBAGENT });
    const plan = planFromInput(spec({ defaults: { runner: 'codex' } }), { cwd: p.cwd, env: { PATH: '' } });
    expect(plan.agents.skeptic).toMatchObject({ runner: 'codex', tier: 'read_only' });
    expect(plan.agents['code-reviewer']).toMatchObject({ runner: 'codex', tools: ['Read', 'Grep', 'Glob', 'Bash(git diff:*)'] });
    expect(plan.tasks[0]!.schema).toEqual({ type: 'object', properties: { refuted: { type: 'boolean' } }, required: ['refuted'] });
    expect(plan.tasks[1]!.schema).toEqual({ type: 'array' });
    const other = planFromInput({ ...spec({ defaults: { runner: 'codex' } }), phases: [{ ...spec().phases[0], schema: { type: 'object' } }] }, { cwd: p.cwd, env: { PATH: '' } });
    expect(other.tasks[0]!.key).not.toBe(plan.tasks[0]!.key);
    expect(other.tasks[1]!.key).toBe(plan.tasks[1]!.key);
  });

  it('no agent CLI anywhere: the plan still succeeds, on claude, with a warning that says what to install', () => {
    const p = project({ 'code-reviewer.md': CLAUDE_SUBAGENT });
    const plan = planFromInput(spec(), { cwd: p.cwd, env: { PATH: '' } });
    expect(plan.agents.skeptic).toMatchObject({ runner: 'claude' });
    expect(plan.warnings.join('\n')).toMatch(/Claude Code \('claude'\) is not installed here; agents 'skeptic', 'code-reviewer' run on it\. To run this workflow, install it: npm i -g @anthropic-ai\/claude-code/);
  });

  it('an unknown agent still gets the spec layer\'s message', () => {
    const p = project();
    expect(() => planFromInput(spec({ defaults: { runner: 'pi' } }), { cwd: p.cwd, env: { PATH: '' } })).toThrow(/unknown agent 'code-reviewer'.*no agent profile has that name either/);
  });

  it('a schema that does not compile is refused at plan time', () => {
    const p = project({ 'code-reviewer.md': CLAUDE_SUBAGENT });
    const bad = spec({ defaults: { runner: 'pi' } });
    (bad.phases[0] as { schema: unknown }).schema = { type: 'objekt' };
    let err: unknown;
    try {
      planFromInput(bad, { cwd: p.cwd, env: { PATH: '' } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SpecError);
    expect((err as SpecError).issues).toEqual([{ path: 'task look/a', message: expect.stringContaining('schema is not a valid JSON Schema') }]);
    expect(() => planFromInput({ ...bad, phases: [{ ...bad.phases[0], schema: 'nope' }] }, { cwd: p.cwd })).toThrow(/schema: expected a JSON Schema object/);
  });
});
