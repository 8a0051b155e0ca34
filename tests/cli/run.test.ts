/**
 * One foreground `fanfold run` of a small two-phase workflow, through the built CLI, and what it
 * leaves behind: the status JSON, what each child was given (env, prompt on stdin and as a file,
 * context file, cwd), the agent files, the journal order (watched live while the run goes on),
 * digests templated into a later phase's prompt, reports, the search index and `query`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { AGENT_FIELDS, latest, makeProject, sh, type Project } from './project.js';
import { AGENT_RECORD_VERSION } from '../../src/store/types.js';

const PROBE = `import fs from 'node:fs';
const stdin = fs.readFileSync(0, 'utf8');
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('FANFOLD_')));
const ctx = fs.readFileSync(process.env.FANFOLD_CONTEXT_FILE, 'utf8');
process.stdout.write(JSON.stringify({
  env, cwd: process.cwd(), stdin,
  promptFile: fs.readFileSync(process.env.FANFOLD_PROMPT_FILE, 'utf8'),
  contextBytes: Buffer.byteLength(ctx), context: JSON.parse(ctx),
}));
`;
const LONG_LINES = 1500;
const MAX_CONTEXT = 2048;

const spec = {
  version: 1,
  name: 'run-test',
  goal: 'check one foreground run end to end',
  limits: { maxConcurrent: 3, retries: 0, maxContextBytes: MAX_CONTEXT },
  agents: {
    words: sh('sleep 0.2; echo "finding: $(cat)"'),
    long: { runner: 'command', command: ['node', '-e', `for (let i = 0; i < ${LONG_LINES}; i++) console.log('line ' + i + ' of the long output, padded to be long')`] },
    probe: { runner: 'command', command: ['node', 'probe.mjs'] },
  },
  phases: [
    {
      id: 'gather',
      title: 'Gather findings',
      agent: 'words',
      tasks: [
        { id: 'g1', prompt: 'the zanzibarword lives here' },
        { id: 'g2', prompt: 'nothing special in this one' },
        { id: 'long', agent: 'long', prompt: 'print a long output' },
      ],
    },
    {
      id: 'use',
      dependsOn: ['gather'],
      agent: 'probe',
      tasks: [{ id: 'u1', prompt: 'A[{{digest.gather}}] B[{{digest}}] end' }],
    },
  ],
};

const FILE_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.\d+\.json$/;

describe('fanfold run (foreground)', () => {
  let p: Project;
  let res: { code: number | null; stdout: string; stderr: string };
  let runId: string;
  let runDir: string;
  let status: any;
  let files: Map<string, any>;
  let journal: any[];
  const orderViolations: string[] = [];
  let livePolls = 0;

  beforeAll(async () => {
    p = makeProject(spec, { 'probe.mjs': PROBE });
    // The CLI's own FANFOLD_* (an outer run's ids, the store) must not reach the children.
    const { done } = p.cliAsync(['run', p.spec, '--json'], { env: { FANFOLD_STORE: p.store, FANFOLD_TASK_ID: 'outer-task', FANFOLD_RUN_ID: 'outer-run' } });
    // Watch the run while it goes: journal, then the agent files, then the journal again. A file
    // may exist only after its agent.started; an agent.finished only after its file exists.
    let ended = false;
    const watching = (async () => {
      while (!ended) {
        const runs = fs.existsSync(p.store) ? fs.readdirSync(p.store) : [];
        if (runs.length === 1) {
          const dir = path.join(p.store, runs[0]!);
          const j1 = p.journal(runs[0]!);
          const listed = fs.existsSync(path.join(dir, 'agents')) ? fs.readdirSync(path.join(dir, 'agents')).filter((f) => FILE_RE.test(f)) : [];
          const j2 = p.journal(runs[0]!);
          const have = new Set(listed);
          for (const e of j1) if (e.type === 'agent.finished' && !have.has(e.file)) orderViolations.push(`agent.finished for ${e.file} before the file existed`);
          const startedFiles = new Set(j2.filter((e) => e.type === 'agent.started').map((e) => `${e.ref.replace('/', '.')}.${e.attempt}.json`));
          for (const f of listed) if (!startedFiles.has(f)) orderViolations.push(`${f} exists before its agent.started`);
          livePolls++;
        }
        await new Promise((r) => setTimeout(r, 15));
      }
    })();
    res = await done;
    ended = true;
    await watching;
    status = JSON.parse(res.stdout);
    runId = status.runId;
    runDir = p.runDir(runId);
    files = p.agents(runId);
    journal = p.journal(runId);
  });

  it('exits 0 with status completed and the status JSON shape of issue 2', () => {
    expect(res.code, res.stderr).toBe(0);
    expect(status.status).toBe('completed');
    expect(status.runId).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(status.name).toBe('run-test');
    // Issue 2's fields, each with its type (additions such as `dir` and `title` are allowed).
    const required = ['runId', 'name', 'status', 'phases', 'agents', 'startedAt', 'endedAt', 'elapsedMs'];
    for (const k of required) expect(status, k).toHaveProperty(k);
    expect(typeof status.elapsedMs).toBe('number');
    expect(status.reason).toBeUndefined(); // a completed run has nothing to explain
    const counts = ['total', 'succeeded', 'failed', 'skipped', 'running', 'pending'];
    expect(status.phases.map((x: any) => x.id)).toEqual(['gather', 'use']);
    for (const ph of status.phases) {
      for (const k of ['id', 'status', ...counts]) expect(ph, `phase.${k}`).toHaveProperty(k);
      expect(ph.status).toBe('completed');
    }
    expect(status.phases[0]).toMatchObject({ total: 3, succeeded: 3, failed: 0, skipped: 0, running: 0, pending: 0 });
    expect(status.phases[1]).toMatchObject({ total: 1, succeeded: 1, failed: 0, skipped: 0, running: 0, pending: 0 });
    expect(status.agents).toEqual({ total: 4, succeeded: 4, checkFailed: 0, failed: 0, cancelled: 0, skipped: 0, running: 0, pending: 0 });
    expect(Date.parse(status.startedAt)).not.toBeNaN();
    expect(Date.parse(status.endedAt)).toBeGreaterThanOrEqual(Date.parse(status.startedAt));
    expect(status.elapsedMs).toBeGreaterThan(200); // the gather agents sleep 200 ms
    expect(status.elapsedMs).toBeLessThan(60_000);
    expect(status.dir).toBe(runDir);
    // The progress view went to stderr, never into the JSON on stdout.
    expect(res.stderr).toContain(runId);
  });

  it('a later `status --json` of the run says the same', () => {
    const r = p.cli(['status', runId, '--json']);
    expect(r.status).toBe(0);
    const s = r.json();
    expect({ ...s, elapsedMs: 0 }).toEqual({ ...status, elapsedMs: 0 });
  });

  it('each child got its ids, the prompt on stdin and as a file, the context file, and the project as cwd', () => {
    const rec = latest(files, 'use/u1');
    expect(rec.status).toBe('succeeded');
    const got = rec.structured ?? JSON.parse(rec.output);
    expect(got.env.FANFOLD_RUN_ID).toBe(runId);
    expect(got.env.FANFOLD_PHASE_ID).toBe('use');
    expect(got.env.FANFOLD_TASK_ID).toBe('u1');
    expect(got.env.FANFOLD_ATTEMPT).toBe('1');
    expect(got.env.FANFOLD_STORE).toBeUndefined(); // the parent's own FANFOLD_* never leak in
    expect(Object.keys(got.env).sort()).toEqual([
      'FANFOLD_ATTEMPT', 'FANFOLD_CONTEXT_FILE', 'FANFOLD_PHASE_ID', 'FANFOLD_PROMPT_FILE', 'FANFOLD_RUN_ID', 'FANFOLD_TASK_ID',
    ]);
    expect(got.cwd).toBe(p.dir);
    expect(got.stdin).toBe(rec.prompt);
    expect(got.promptFile).toBe(rec.prompt);
    // Inputs live in the run directory, named after the attempt.
    expect(got.env.FANFOLD_PROMPT_FILE).toBe(path.join(runDir, 'inputs', 'use.u1.1.prompt.txt'));
    expect(got.env.FANFOLD_CONTEXT_FILE.startsWith(runDir + path.sep)).toBe(true);
    // The context file: the deps' outputs, bounded by maxContextBytes even though `long` alone is ~70 KB.
    expect(got.contextBytes).toBeLessThanOrEqual(MAX_CONTEXT);
    const ctx = got.context;
    const listed = ctx.deps.map((d: any) => d.ref);
    const omitted = ctx.omittedDeps ?? 0;
    expect(listed.length + omitted).toBe(3);
    expect(listed.every((r: string) => ['gather/g1', 'gather/g2', 'gather/long'].includes(r))).toBe(true);
    const g1 = ctx.deps.find((d: any) => d.ref === 'gather/g1');
    if (g1) expect('finding: the zanzibarword lives here\n').toContain(g1.output);
    const long = ctx.deps.find((d: any) => d.ref === 'gather/long');
    if (long) {
      expect(long.output.length).toBeLessThan(MAX_CONTEXT);
      expect(latest(files, 'gather/long').output.startsWith(long.output.replace(/…$/, '').slice(0, 100))).toBe(true);
    }
    // A small context budget is no excuse to drop a small dep: g1 and g2 fit.
    expect(listed).toContain('gather/g1');
    expect(listed).toContain('gather/g2');
  });

  it('every agent file has every field issue 2 lists, with the right types', () => {
    expect([...files.keys()].sort()).toEqual(['gather.g1.1.json', 'gather.g2.1.json', 'gather.long.1.json', 'use.u1.1.json']);
    for (const [f, rec] of files) {
      for (const k of AGENT_FIELDS) expect(rec, `${f}: ${k}`).toHaveProperty(k);
      expect(rec.schemaVersion).toBe(AGENT_RECORD_VERSION);
      expect(rec.runId).toBe(runId);
      expect(`${rec.phaseId}.${rec.taskId}.${rec.attempt}.json`).toBe(f);
      expect(rec.key).toMatch(/^[0-9a-f]{8,}$/);
      expect(rec.status).toBe('succeeded');
      expect(rec.exitCode).toBe(0);
      expect(rec.signal).toBeNull();
      expect(typeof rec.stderrTail).toBe('string');
      expect(rec.truncated).toBe(false);
      expect(rec.outputBytes).toBe(Buffer.byteLength(rec.output));
      expect(rec.durationMs).toBe(Date.parse(rec.endedAt) - Date.parse(rec.startedAt));
      expect(rec.durationMs).toBeGreaterThanOrEqual(0);
    }
    expect(latest(files, 'gather/g1').output).toBe('finding: the zanzibarword lives here\n');
    expect(latest(files, 'gather/g1').durationMs).toBeGreaterThanOrEqual(200);
    // Keys are those of the plan.
    const plan = p.runJson(runId).plan;
    for (const t of plan.tasks) expect(latest(files, t.ref).key).toBe(t.key);
  });

  it('journal: per agent started → (file exists) → finished, watched live; then phases and run.finished', () => {
    expect(livePolls).toBeGreaterThan(3);
    expect(orderViolations).toEqual([]);
    const types = journal.map((e) => e.type);
    expect(types[0]).toBe('run.started');
    expect(types.at(-1)).toBe('run.finished');
    expect(journal.at(-1).status).toBe('completed');
    for (const ref of ['gather/g1', 'gather/g2', 'gather/long', 'use/u1']) {
      const s = journal.findIndex((e) => e.type === 'agent.started' && e.ref === ref);
      const f = journal.findIndex((e) => e.type === 'agent.finished' && e.ref === ref);
      expect(s, ref).toBeGreaterThan(0);
      expect(f, ref).toBeGreaterThan(s);
      expect(journal.filter((e) => e.type === 'agent.started' && e.ref === ref)).toHaveLength(1);
      expect(journal[f].file).toBe(`${ref.replace('/', '.')}.1.json`);
      expect(journal[f].key).toBe(journal[s].key);
    }
    // `use` starts only after every `gather` agent finished.
    const useStart = journal.findIndex((e) => e.type === 'agent.started' && e.ref === 'use/u1');
    const lastGather = Math.max(...journal.map((e, i) => (e.type === 'agent.finished' && e.ref.startsWith('gather/') ? i : -1)));
    expect(useStart).toBeGreaterThan(lastGather);
    expect(journal.filter((e) => e.type === 'phase.finished').map((e) => [e.phaseId, e.status])).toEqual([
      ['gather', 'completed'],
      ['use', 'completed'],
    ]);
    // Each phase's end is journaled when it ends, not when the run does.
    expect(journal.findIndex((e) => e.type === 'phase.finished' && e.phaseId === 'gather')).toBeLessThan(useStart);
  });

  it('{{digest.gather}} and {{digest}} in the later phase became the digest of gather', () => {
    const run = p.runJson(runId);
    const digest = run.phases.find((x: any) => x.id === 'gather').digest;
    expect(typeof digest).toBe('string');
    expect(digest.length).toBeGreaterThan(0);
    expect(digest.length).toBeLessThanOrEqual(1500);
    expect(digest).toContain('zanzibarword');
    const prompt = latest(files, 'use/u1').prompt;
    expect(prompt).not.toContain('{{');
    const m = /^A\[([\s\S]*)\] B\[([\s\S]*)\] end$/.exec(prompt);
    expect(m, prompt).not.toBeNull();
    expect(m![1]).toBe(digest);
    expect(m![2]).toContain(digest);
    expect(m![2]).toContain('gather');
    // The digest also went into the context file.
    const got = latest(files, 'use/u1').structured;
    expect(got.context.digests.gather).toBeDefined();
    expect(digest.startsWith(got.context.digests.gather.replace(/…$/, ''))).toBe(true);
  });

  it('wrote report.md and report.html', () => {
    const md = fs.readFileSync(path.join(runDir, 'report.md'), 'utf8');
    expect(md).toContain('run-test');
    expect(md).toContain('completed');
    expect(md).toContain('gather');
    const html = fs.readFileSync(path.join(runDir, 'report.html'), 'utf8');
    expect(html).toMatch(/^<!doctype html>/i);
    expect(html).toContain('run-test');
    const r = p.cli(['report', runId]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(md);
  });

  it('index.json exists; query finds the planted word, and --ref pages through a long output', () => {
    expect(fs.existsSync(path.join(runDir, 'index.json'))).toBe(true);
    const q = p.cli(['query', 'zanzibarword', '--json']);
    expect(q.status, q.stderr).toBe(0);
    const hits = q.json();
    // g1 wrote it; use/u1 echoed it back through the digest in its prompt. Nothing else has it.
    expect(hits.hits.map((h: any) => h.ref).sort()).toEqual([`${runId}/gather/g1`, `${runId}/use/u1`]);
    expect(hits.total).toBe(2);
    for (const h of hits.hits) expect(h.snippet).toContain('zanzibarword');
    const gatherRun = p.cli(['query', 'zanzibarword', '--phase', 'gather', '--json']);
    expect(gatherRun.status, `${gatherRun.stderr} ${gatherRun.error ?? ''}`).toBe(0);
    expect(gatherRun.json().hits.map((h: any) => h.ref)).toEqual([`${runId}/gather/g1`]);
    const noneRun = p.cli(['query', 'qwertyuiopnotthere', '--json']);
    expect(noneRun.status, `${noneRun.stderr} ${noneRun.error ?? ''}`).toBe(0);
    expect(noneRun.json().total).toBe(0);

    // Page through gather/long 40,000 characters at a time (it is ~70,000).
    const whole = latest(files, 'gather/long').output;
    expect(whole.length).toBeGreaterThan(60_000);
    let text = '';
    let offset: number | null = 0;
    let pages = 0;
    while (offset !== null && pages < 10) {
      const r = p.cli(['query', '--ref', `${runId}/gather/long`, '--offset', String(offset), '--limit', '40000', '--json']);
      expect(r.status, r.stderr).toBe(0);
      const page = r.json();
      expect(page.offset).toBe(offset);
      expect(page.text.length).toBeLessThanOrEqual(40_000);
      text += page.text;
      offset = page.nextOffset;
      pages++;
    }
    expect(pages).toBe(Math.ceil(whole.length / 40_000));
    expect(text).toBe(whole);
  });
});
