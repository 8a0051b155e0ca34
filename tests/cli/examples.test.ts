/**
 * The templates in examples/: every one plans through the built CLI with the bundled agent
 * profiles, uses the mechanisms its header promises, and says how to run it, what it costs and what
 * to adapt. The offline demo (examples/dynamic-demo.yaml) runs to `completed` and leaves the
 * dynamic state the README describes: converge rounds, forEach items with the drop reported, a
 * pipeline stage, skeptics' verdicts that match a recount done here, a gate that failed once and
 * then passed; and a resume of the finished run reuses every task.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it, onTestFinished } from 'vitest';
import { PhaseSpecSchema } from '../../src/spec/schema.js';
import { REPO, fanfold, readAgentFiles, readJournal, tempDir } from '../helpers/cli.js';

const EXAMPLES = path.join(REPO, 'examples');
const yamlFiles = fs.readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml')).sort();
const BUNDLED = ['researcher', 'reviewer', 'skeptic', 'critic', 'implementer', 'tester', 'summarizer'];

/**
 * Env in which agent names resolve to the bundled profiles only: no user profile folder, a fixed
 * default runner (no agent CLI needs to be installed), and the repository as the project (it has no
 * .claude/agents/).
 */
function profileEnv(): NodeJS.ProcessEnv {
  const home = tempDir('fanfold-examples-home-');
  return { FANFOLD_RUNNER: 'claude', HOME: home, CLAUDE_CONFIG_DIR: path.join(home, '.claude') };
}

/** `fanfold plan examples/<file> --json`, parsed. */
function planOf(file: string): any {
  const r = fanfold(['plan', `examples/${file}`, '--json'], { env: profileEnv() });
  expect(r.status, `${file}: ${r.stderr}`).toBe(0);
  return r.json();
}

/** The profile body of agents/<name>.md (the system prompt a plan carries). */
function profileBody(name: string): string {
  const text = fs.readFileSync(path.join(REPO, 'agents', `${name}.md`), 'utf8');
  return text.replace(/^---\n[\s\S]*?\n---\n/, '').trim();
}

const phase = (plan: any, id: string) => plan.phases.find((p: any) => p.id === id);

describe('examples/*.yaml', () => {
  it('include the four templates, the demo and the census', () => {
    expect(yamlFiles).toEqual(expect.arrayContaining(['census.yaml', 'dynamic-demo.yaml', 'migration.yaml', 'parallel-build.yaml', 'research.yaml', 'security-audit.yaml']));
  });

  it.each(yamlFiles)('%s plans with `fanfold plan --json`', (file) => {
    const plan = planOf(file);
    expect(plan.schemaVersion).toBe(1);
    expect(plan.phases.length).toBeGreaterThan(1);
    expect(plan.phases.filter((p: any) => p.final)).toHaveLength(1);
    // Agents that the spec does not define are the bundled profiles, resolved as such.
    const spec = fs.readFileSync(path.join(EXAMPLES, file), 'utf8');
    for (const [name, agent] of Object.entries<any>(plan.agents)) {
      if (BUNDLED.includes(name) && !new RegExp(`^  ${name}:`, 'm').test(spec)) {
        expect(agent.systemPrompt, name).toBe(profileBody(name));
        expect(agent.runner, name).toBe('claude');
      }
    }
  });

  it.each(yamlFiles.filter((f) => f !== 'census.yaml'))('%s has a header: what it does, how to run it, cost, what to adapt', (file) => {
    const text = fs.readFileSync(path.join(EXAMPLES, file), 'utf8');
    const header = text.slice(0, text.indexOf('\nversion: 1'));
    expect(header.split('\n').every((l) => l.startsWith('#'))).toBe(true);
    expect(header).toContain(`plan examples/${file}`);
    expect(header).toContain(`run examples/${file}`);
    expect(header).toMatch(/Cost, roughly:|\$0/);
    expect(header).toMatch(/Adapt|What to adapt/);
  });

  it('security-audit: a mapper with a list, forEach auditors, 2 skeptics by majority, a final synthesis', () => {
    const plan = planOf('security-audit.yaml');
    expect(plan.tasks.map((t: any) => t.ref)).toEqual(['map/map', 'report/report']);
    expect(plan.tasks[0].schema.properties.modules.type).toBe('array');
    const d = phase(plan, 'audit').dynamic;
    expect(d.forEach).toMatchObject({ from: 'map', items: 'modules' });
    expect(d.verify).toMatchObject({ skeptics: 2, refuteBy: 'majority', agent: 'skeptic', items: 'findings' });
    expect(d.templates[0].agent).toBe('reviewer');
    expect(phase(plan, 'report')).toMatchObject({ final: true, dependsOn: ['audit'] });
    expect(plan.agents.skeptic.tier).toBe('read_only');
  });

  it('migration: a planner with a list, forEach implementers in worktrees, merge, an npm test gate with a fix agent', () => {
    const plan = planOf('migration.yaml');
    const d = phase(plan, 'migrate').dynamic;
    expect(d.forEach).toMatchObject({ from: 'plan', items: 'files' });
    expect(d.templates[0]).toMatchObject({ agent: 'implementer', isolation: 'worktree' });
    expect(d.merge).toBe(true);
    expect(d.gate).toMatchObject({ kind: 'command', command: 'npm test', maxIterations: 3, fixAgent: 'implementer' });
    expect(plan.agents.implementer.tier).toBe('edit');
  });

  it('research: converge discovery, decompose, forEach researchers, a critic gate, a final synthesis', () => {
    const plan = planOf('research.yaml');
    expect(phase(plan, 'scout').dynamic.converge).toMatchObject({ untilDry: 1, items: 'places', key: 'path' });
    expect(phase(plan, 'research').dynamic.forEach).toMatchObject({ from: 'decompose', items: 'questions' });
    expect(phase(plan, 'research').dynamic.gate).toMatchObject({ kind: 'critic', agent: 'critic', fixAgent: 'researcher' });
    expect(phase(plan, 'synthesis')).toMatchObject({ final: true });
    expect(plan.agents.critic).toMatchObject({ tier: 'read_only', systemPrompt: profileBody('critic') });
  });

  it('parallel-build: a component list, forEach builders in worktrees, merge, a test gate', () => {
    const plan = planOf('parallel-build.yaml');
    const list = JSON.parse(plan.tasks.find((t: any) => t.ref === 'components/components').prompt);
    expect(list.components.length).toBeGreaterThanOrEqual(2);
    // The components live in disjoint folders, so their patches cannot conflict with each other.
    const dirs: string[] = list.components.map((c: any) => c.dir);
    expect(new Set(dirs).size).toBe(dirs.length);
    for (const a of dirs) for (const b of dirs) if (a !== b) expect(b.startsWith(`${a}/`)).toBe(false);
    const d = phase(plan, 'build').dynamic;
    expect(d.forEach).toMatchObject({ from: 'components', items: 'components' });
    expect(d.templates[0]).toMatchObject({ agent: 'implementer', isolation: 'worktree' });
    expect(d).toMatchObject({ merge: true, gate: { kind: 'command', command: 'npm test' } });
  });
});

describe('bundled gate and skeptic profiles', () => {
  it('skeptic answers {"refuted": bool, "reasons": "..."} (a string, as verify enforces)', () => {
    const body = profileBody('skeptic');
    expect(body).toContain('{"refuted": true, "reasons": "');
    expect(body).not.toContain('"reasons": [');
  });

  it('critic answers {"pass": bool, "reasons": [...]}', () => {
    const text = fs.readFileSync(path.join(REPO, 'agents/critic.md'), 'utf8');
    expect(text).toMatch(/^---\nname: critic\n/);
    expect(text).toMatch(/\ntier: read_only\n/);
    expect(profileBody('critic')).toContain('{"pass": false, "reasons": [');
  });
});

describe('docs/dynamic.md: Dynamic workflows', () => {
  const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
  // The README links the reference, which lives in docs/dynamic.md.
  const section = fs.readFileSync(path.join(REPO, 'docs', 'dynamic.md'), 'utf8');
  const start = readme.indexOf('docs/dynamic.md');

  it('keeps the quick start commands and names the demo and every template', () => {
    expect(readme).toContain('npm install && npm run demo');
    expect(readme).toMatch(/^npm test\s/m);
    expect(start).toBeGreaterThan(0);
    expect(section).toContain('npm run demo:dynamic');
    expect(JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')).scripts['demo:dynamic']).toContain('examples/dynamic-demo.yaml');
    for (const f of yamlFiles.filter((x) => x !== 'census.yaml')) expect(section, f).toContain(`examples/${f}`);
    for (const w of ['forEach', 'mode: pipeline', 'verify', 'gate', 'converge', 'isolation: worktree', 'maxAgents', 'droppedItems', 'fanfold resume', '.agent_workflows/<runId>/worktrees/']) {
      expect(section, w).toContain(w);
    }
  });

  it('has YAML snippets whose phase fields are real (strict phase schema)', () => {
    const blocks = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks.length).toBeGreaterThanOrEqual(6);
    for (const b of blocks) {
      const indent = Math.min(...b.split('\n').filter((l) => l.trim()).map((l) => l.length - l.trimStart().length));
      const value = parseYaml(b.split('\n').map((l) => l.slice(indent)).join('\n'));
      const phases = Array.isArray(value) ? value : [value];
      for (const ph of phases) {
        const r = (Array.isArray(value) ? PhaseSpecSchema : PhaseSpecSchema.partial()).safeParse(ph);
        expect(r.success, `${b}\n${r.error?.message}`).toBe(true);
      }
    }
  });
});

// ---- the offline demo ------------------------------------------------------------------------

/** What the demo's scripts compute, done again here: folders, the measured ones, long modules. */
function groundTruth() {
  const folders = fs.readdirSync(path.join(REPO, 'src'), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => `src/${e.name}`).sort();
  const measured = folders.slice(0, 8);
  const files = (dir: string): string[] =>
    fs.readdirSync(path.join(REPO, dir), { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? files(`${dir}/${e.name}`) : /\.(ts|mjs|js)$/.test(e.name) ? [`${dir}/${e.name}`] : []);
  const long = new Map<string, boolean>(); // module → still over 450 without blanks and comments
  for (const f of measured.flatMap(files)) {
    const lines = fs.readFileSync(path.join(REPO, f), 'utf8').split('\n');
    if (lines.length - 1 > 450) long.set(f, lines.filter((l) => !/^\s*($|\/\/|\/\*|\*)/.test(l)).length > 450);
  }
  return { folders, measured, long };
}

describe('examples/dynamic-demo.yaml runs offline', () => {
  const store = tempDir('fanfold-demo-store-');

  it('completes with converge rounds, forEach items and drops, pipeline, verdicts and a gate that passed on its second run; resume reuses everything', () => {
    const truth = groundTruth();
    const r = fanfold(['run', 'examples/dynamic-demo.yaml', '--json', '--store', store], { timeoutMs: 150_000 });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    const out = r.json();
    expect(out.status).toBe('completed');
    const runDir = path.join(store, out.runId);
    const run = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8'));
    const dyn = (id: string) => run.phases.find((p: any) => p.id === id).dynamic;

    // converge: 4 folders a round until a round finds nothing new.
    const c = dyn('discover').converge;
    const rounds = Math.ceil(truth.folders.length / 4) + 1; // the last one finds nothing
    expect(c).toMatchObject({ untilDry: 1, maxRounds: 6, rounds, dryRounds: 1, findings: truth.folders.length });
    expect(c.newPerRound.reduce((a: number, b: number) => a + b, 0)).toBe(truth.folders.length);
    expect(c.newPerRound.at(-1)).toBe(0);
    expect(c.stopped).toMatch(/^dry: 1 round/);

    // forEach: one measure task per folder up to max 8; the rest dropped and reported.
    const items = dyn('measure').items;
    expect(items).toMatchObject({ found: truth.folders.length, made: truth.measured.length, duplicates: 0 });
    expect(items.dropped).toBe(truth.folders.length - truth.measured.length);
    if (items.dropped > 0) {
      expect(items.droppedItems).toEqual(truth.folders.slice(8));
      expect(items.dropReason).toBe('forEach.max 8');
    }

    // pipeline: claims/claim-N waits only for measure/measure-N.
    const tasks = new Map<string, any>(run.plan.tasks.map((t: any) => [t.ref, t]));
    truth.measured.forEach((folder, i) => {
      expect(tasks.get(`measure/measure-${i + 1}`).origin).toMatchObject({ kind: 'item', item: folder });
      expect(tasks.get(`claims/claim-${i + 1}`).deps).toEqual([`measure/measure-${i + 1}`]);
    });
    expect(dyn('claims').items).toMatchObject({ found: truth.measured.length, made: truth.measured.length, dropped: 0 });

    // verify: every long module claimed once, 2 skeptics each, verdicts as a recount says.
    const v = dyn('claims').verify;
    expect(v).toMatchObject({ skeptics: 2, refuteBy: 'majority', findings: truth.long.size, unverified: 0 });
    expect(v.confirmed + v.refuted).toBe(truth.long.size);
    expect(v.verdicts).toHaveLength(truth.long.size);
    for (const verdict of v.verdicts) {
      const file = /^(\S+) has/.exec(verdict.finding)![1]!;
      expect(truth.long.has(file), file).toBe(true);
      expect(verdict.verdict, file).toBe(truth.long.get(file) ? 'confirmed' : 'refuted');
      expect(verdict).toMatchObject({ of: 2, refute: truth.long.get(file) ? 0 : 2 });
      expect(verdict.reasons).toHaveLength(2);
    }
    const skeptics = run.plan.tasks.filter((t: any) => t.origin?.kind === 'skeptic');
    expect(skeptics).toHaveLength(2 * truth.long.size);

    // gate: the first draft has no totals row; the check fails, fix-1 adds it, check-2 passes.
    expect(dyn('draft').gate).toEqual({ kind: 'command', maxIterations: 3, iterations: 2, passed: true });
    expect(['draft/check-1', 'draft/fix-1', 'draft/check-2'].map((ref) => tasks.get(ref)?.origin?.kind)).toEqual(['check', 'fix', 'check']);
    const files = readAgentFiles(runDir);
    expect(files.get('draft.check-1.1.json')).toMatchObject({ status: 'succeeded', exitCode: 1 });
    expect(files.get('draft.check-1.1.json').output).toContain('no totals row');
    expect(files.get('draft.check-2.1.json')).toMatchObject({ status: 'succeeded', exitCode: 0 });

    // The journal tells the same story.
    const journal = readJournal(runDir);
    const of = (type: string) => journal.filter((e) => e.type === type);
    expect(of('converge.round').map((e) => e.round)).toEqual([...Array(rounds).keys()].map((k) => k + 1));
    expect(of('verify.verdict')).toHaveLength(truth.long.size);
    expect(of('gate.checked').map((e) => e.passed)).toEqual([false, true]);
    if (items.dropped > 0) expect(of('phase.expanded').some((e) => e.phaseId === 'measure' && e.dropped === items.dropped)).toBe(true);

    // The demo wrote its summary into .fanfold-demo/<run id>/ of the project (its edit agents may
    // write only the project: they run sandboxed); the report quotes it.
    const scratch = path.join(REPO, '.fanfold-demo', out.runId);
    onTestFinished(() => fs.rmSync(scratch, { recursive: true, force: true }));
    const summary = fs.readFileSync(path.join(scratch, 'summary.md'), 'utf8');
    expect(summary).toMatch(/^\| \*\*total\*\* \| \d+ \| \d+ \|$/m);
    const report = fs.readFileSync(path.join(runDir, 'report.md'), 'utf8');
    expect(report).toContain('| **total** |');
    for (const verdict of v.verdicts) expect(report).toContain(verdict.finding);
    for (const dropped of items.droppedItems) expect(report).toContain(dropped);
    // The final output quotes the confirmed findings only.
    const final = /## Final output[^\n]*\n\n(`{3,})text\n([\s\S]*?)\n\1\n/.exec(report)?.[2] ?? '';
    expect(final).toContain('| **total** |');
    const cut = /… and \d+ more/.test(final); // a long list of verdicts is cut in the digest
    for (const verdict of v.verdicts) {
      if (verdict.verdict === 'refuted') expect(final, verdict.finding).not.toContain(verdict.finding);
      else if (!cut) expect(final, verdict.finding).toContain(verdict.finding);
    }

    // Resume of the finished run (with its spec) replays every step from stored answers.
    const before = journal.length;
    const again = fanfold(['resume', out.runId, '--spec', 'examples/dynamic-demo.yaml', '--json', '--store', store], { timeoutMs: 150_000 });
    expect(again.status, `${again.stdout}\n${again.stderr}`).toBe(0);
    const after = readJournal(runDir).slice(before);
    expect(after.filter((e) => e.type === 'agent.started')).toEqual([]);
    const reused = after.filter((e) => e.type === 'agent.reused').flatMap((e) => e.tasks.map((t: any) => t.ref));
    expect(reused.sort()).toEqual(run.plan.tasks.map((t: any) => t.ref).sort());
    expect(JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8')).status).toBe('completed');
  }, 320_000);
});
