/**
 * `fanfold ui` as a real process: the `--json` first line, the token (401 without it, the cookie
 * after it), the URL file (mode 0600, outside the project, gone after Ctrl-C), the JSON API and the
 * journal's event stream over a finished run, and `workflow_status` offering the dashboard through
 * the real MCP SDK client (never in child mode). The page itself is tested in a real browser
 * (browser.test.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeProject, quick, sh, type Project } from '../cli/project.js';
import { tempDir, until } from '../helpers/cli.js';
import { call, connect, dataOf, textOf } from '../mcp/helpers.js';
import { dashboardFile } from '../../src/ui/dashboard-file.js';
import { JournalFollower } from '../../src/ui/journal-follow.js';
import { startUi, type UiProcess } from './helpers.js';

let p: Project;
let uiDir: string;
let ui: UiProcess;
let runId: string;
const savedUiDir = process.env.FANFOLD_UI_DIR;

beforeAll(async () => {
  p = makeProject({
    version: 1,
    name: 'ui-server',
    agents: { w: quick('echo "needle-$FANFOLD_TASK_ID";') },
    phases: [{ id: 'p', agent: 'w', tasks: [{ id: 't1', prompt: 'one' }, { id: 't2', prompt: 'two' }, { id: 't3', prompt: 'three' }] }],
  });
  const r = p.cli(['run', p.spec, '--json'], { timeoutMs: 90_000 });
  expect(r.status, r.stderr).toBe(0);
  runId = JSON.parse(r.stdout).runId;
  uiDir = tempDir('fanfold-uidir-');
  process.env.FANFOLD_UI_DIR = uiDir;
  ui = await startUi(p.dir, p.store, { FANFOLD_UI_DIR: uiDir });
});

afterAll(async () => {
  await ui?.stop();
  if (savedUiDir === undefined) delete process.env.FANFOLD_UI_DIR;
  else process.env.FANFOLD_UI_DIR = savedUiDir;
  fs.rmSync(p.dir, { recursive: true, force: true });
  fs.rmSync(uiDir, { recursive: true, force: true });
});

/** A response body as loosely typed JSON, for assertions. */
const json = async (r: Response): Promise<any> => r.json();
const auth = () => ({ Authorization: `Bearer ${ui.token}` });

describe('fanfold ui', () => {
  it('prints {url, port, pid} as its first line and serves on 127.0.0.1 with a token in the URL', () => {
    expect(Object.keys(ui.first).sort()).toEqual(['pid', 'port', 'url']);
    expect(ui.first.pid).toBe(ui.child.pid);
    const u = new URL(ui.first.url);
    expect(u.hostname).toBe('127.0.0.1');
    expect(Number(u.port)).toBe(ui.first.port);
    expect(ui.token).toMatch(/^[A-Za-z0-9_-]{40,}$/);
  });

  it('answers 401 to every request without the token, or with a wrong one', async () => {
    for (const route of ['/', '/index.html', '/assets/app.js', '/assets/timeline.css', '/api/runs', `/api/runs/${runId}`, `/api/runs/${runId}/events`, '/api/search?q=needle']) {
      const res = await fetch(ui.base + route);
      expect(res.status, route).toBe(401);
      await res.body?.cancel();
      const wrong = await fetch(`${ui.base}${route}${route.includes('?') ? '&' : '?'}token=${ui.token.slice(0, -2)}xx`);
      expect(wrong.status, `${route} with a wrong token`).toBe(401);
      await wrong.body?.cancel();
    }
    const post = await fetch(`${ui.base}/api/runs/${runId}/stop`, { method: 'POST' });
    expect(post.status).toBe(401);
  });

  it('lets the URL in, sets an HttpOnly SameSite=Strict cookie, and the cookie or a bearer header works after it', async () => {
    const page = await fetch(ui.first.url);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('/assets/app.js');
    const cookie = page.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(new RegExp(`^fanfold_ui_${ui.first.port}=${ui.token};`));
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
    const withCookie = await fetch(`${ui.base}/api/runs`, { headers: { Cookie: cookie.split(';')[0]! } });
    expect(withCookie.status).toBe(200);
    expect((await json(withCookie)).runs.map((r: { runId: string }) => r.runId)).toContain(runId);
    const bearer = await fetch(`${ui.base}/assets/app.js`, { headers: auth() });
    expect(bearer.status).toBe(200);
    expect(bearer.headers.get('content-type')).toMatch(/javascript/);
  });

  it('records its URL in a file only the user can read, outside the project and the store', () => {
    const file = dashboardFile(p.store, { FANFOLD_UI_DIR: uiDir });
    const st = fs.statSync(file);
    expect(st.mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toMatchObject({ schemaVersion: 1, url: ui.first.url, port: ui.first.port, pid: ui.first.pid });
    expect(path.relative(p.dir, file).startsWith('..')).toBe(true);
    // Nothing in the project (where sub-agents read) holds the token.
    const walk = (d: string): string[] => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
    for (const f of walk(p.dir)) expect(fs.readFileSync(f, 'utf8').includes(ui.token), f).toBe(false);
  });

  it('answers the run, its tasks, an agent with its output, the timeline and a search through the JSON API', async () => {
    const run = await json(await fetch(`${ui.base}/api/runs/${runId}`, { headers: auth() }));
    expect(run).toMatchObject({ runId, status: 'completed', live: false, taskCount: 3 });
    expect(run.countsText).toBe('3 succeeded of 3');
    expect(run.journalBytes).toBeGreaterThan(0);
    const tasks = await json(await fetch(`${ui.base}/api/runs/${runId}/tasks`, { headers: auth() }));
    expect(tasks.rows.map((r: { ref: string; status: string }) => `${r.ref}:${r.status}`)).toEqual(['p/t1:succeeded', 'p/t2:succeeded', 'p/t3:succeeded']);
    const agent = await json(await fetch(`${ui.base}/api/runs/${runId}/agents/p/t2`, { headers: auth() }));
    expect(agent.output.text).toContain('needle-t2');
    expect(agent.prompt).toContain('two');
    expect(agent.attempts).toHaveLength(1);
    const missing = await fetch(`${ui.base}/api/runs/${runId}/agents/p/nope`, { headers: auth() });
    expect(missing.status).toBe(404);
    const tl = await (await fetch(`${ui.base}/api/runs/${runId}/timeline`, { headers: auth() })).text();
    expect(tl.match(/class="bar /g)).toHaveLength(3);
    // On the dashboard data-ref marks only the task rows; bars carry data-bar-ref.
    expect(tl).toContain('data-bar-ref="p/t1"');
    expect(tl).not.toContain('data-ref=');
    const hits = await json(await fetch(`${ui.base}/api/search?q=${encodeURIComponent('needle-t3')}`, { headers: auth() }));
    expect(hits.hits[0]).toMatchObject({ runId, phaseId: 'p', taskId: 't3' });
    const unknown = await fetch(`${ui.base}/api/runs/nosuchrun`, { headers: auth() });
    expect(unknown.status).toBe(404);
  });

  it('refuses to stop a run that is not running, and a cross-site post', async () => {
    const stop = await fetch(`${ui.base}/api/runs/${runId}/stop`, { method: 'POST', headers: auth() });
    expect(stop.status).toBe(409);
    expect((await json(stop)).error).toMatch(/not running/);
    const cross = await fetch(`${ui.base}/api/runs/${runId}/stop`, { method: 'POST', headers: { ...auth(), Origin: 'http://evil.example' } });
    expect(cross.status).toBe(403);
  });

  it('streams the journal as server-sent events, each with its byte offset as id, and resumes from an offset', async () => {
    const ctl = new AbortController();
    const res = await fetch(`${ui.base}/api/runs/${runId}/events?from=0`, { headers: auth(), signal: ctl.signal });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    const deadline = Date.now() + 30_000;
    while (!text.includes('"run.finished"') && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString('utf8');
    }
    ctl.abort();
    expect(text).toContain('event: journal');
    expect(text).toContain('"type":"run.started"');
    expect(text).toContain('"type":"run.finished"');
    const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
    expect(ids.length).toBeGreaterThan(5);
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
    expect(ids[ids.length - 1]).toBe(fs.statSync(path.join(p.runDir(runId), 'events.jsonl')).size);
  });

  it('shows the dashboard in workflow_status through the real MCP client, never in child mode', async () => {
    const c = await connect({ root: p.store, cwd: p.dir });
    try {
      const r = await call(c.client, 'workflow_status', { runId });
      expect(dataOf(r).dashboard).toBe(ui.first.url);
      expect(textOf(r)).toContain(`dashboard: ${ui.first.url}`);
      const list = await call(c.client, 'workflow_status', {});
      expect(dataOf(list).dashboard).toBe(ui.first.url);
    } finally {
      await c.close();
    }
    const child = await connect({ root: p.store, cwd: p.dir, child: true });
    try {
      const r = await call(child.client, 'workflow_status', { runId });
      expect(dataOf(r).dashboard).toBeUndefined();
      expect(textOf(r)).not.toContain(ui.token);
    } finally {
      await child.close();
    }
  });
});

describe('fanfold ui, stopped', () => {
  it('exits 0 on Ctrl-C, removes its URL file, and workflow_status stops offering it', async () => {
    const second = await startUi(p.dir, p.store, { FANFOLD_UI_DIR: uiDir });
    // The newest dashboard on a store owns its file.
    const file = dashboardFile(p.store, { FANFOLD_UI_DIR: uiDir });
    expect(JSON.parse(fs.readFileSync(file, 'utf8')).pid).toBe(second.first.pid);
    const code = await second.stop();
    expect(code, second.stderr()).toBe(0);
    expect(fs.existsSync(file)).toBe(false);
    const c = await connect({ root: p.store, cwd: p.dir });
    try {
      expect(dataOf(await call(c.client, 'workflow_status', { runId })).dashboard).toBeUndefined();
    } finally {
      await c.close();
    }
  });

  it('refuses a port in use with exit code 2 and a clear message', async () => {
    const blocker = await startUi(p.dir, p.store, { FANFOLD_UI_DIR: tempDir('fanfold-uidir2-') });
    try {
      const { fanfold } = await import('../helpers/cli.js');
      const r = fanfold(['ui', '--port', String(blocker.first.port), '--store', p.store], { cwd: p.dir, env: { FANFOLD_UI_DIR: uiDir } });
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/port .* is in use/);
    } finally {
      await blocker.stop();
    }
  });
});

describe('the dashboard\'s controls on a live run', () => {
  it('restarts an agent that already ended as fanfold restart does: stop, then resume with it rerun', { timeout: 300_000 }, async () => {
    const live = makeProject({
      version: 1,
      name: 'ui-restart',
      agents: { quick: quick(), slow: sh('exec sleep 60') },
      phases: [{ id: 'p', tasks: [{ id: 'a', agent: 'quick', prompt: 'a' }, { id: 'b', agent: 'slow', prompt: 'b' }] }],
    });
    const dir = tempDir('fanfold-uidir3-');
    const dash = await startUi(live.dir, live.store, { FANFOLD_UI_DIR: dir });
    let id = '';
    try {
      const r = live.cli(['run', live.spec, '--detach', '--json'], { timeoutMs: 90_000 });
      expect(r.status, r.stderr).toBe(0);
      id = JSON.parse(r.stdout).runId;
      await until(() => live.journal(id).some((e) => e.type === 'agent.finished' && e.ref === 'p/a'), 90_000, 'p/a to finish');
      const res = await fetch(`${dash.base}/api/runs/${id}/agents/p/a/restart`, { method: 'POST', headers: { Authorization: `Bearer ${dash.token}` } });
      const body = await json(res);
      expect(res.status, JSON.stringify(body)).toBe(200);
      expect(body.effect).toBe('rerun');
      await until(() => live.journal(id).some((e) => e.type === 'agent.started' && e.ref === 'p/a' && e.attempt === 2), 90_000, 'p/a attempt 2');
    } finally {
      if (id) live.cli(['stop', id, '--wait', '30'], { timeoutMs: 60_000 });
      await dash.stop();
      fs.rmSync(live.dir, { recursive: true, force: true });
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('JournalFollower', () => {
  it('reads complete lines only, with their end offsets, and tells listeners of new ones', async () => {
    const dir = tempDir('fanfold-follow-');
    try {
      const file = path.join(dir, 'events.jsonl');
      const a = JSON.stringify({ type: 'run.started', t: '2026-01-01T00:00:00.000Z' }) + '\n';
      const b = JSON.stringify({ type: 'phase.started', t: '2026-01-01T00:00:01.000Z', phaseId: 'p' }) + '\n';
      fs.writeFileSync(file, a + b.slice(0, 10));
      const f = new JournalFollower(file);
      const seen: number[] = [];
      const off = f.subscribe((e) => seen.push(e.end));
      await f.poll();
      expect(f.events.map((e) => e.event.type)).toEqual(['run.started']);
      expect(f.offset).toBe(Buffer.byteLength(a));
      fs.appendFileSync(file, b.slice(10) + 'not json\n');
      await f.poll();
      expect(f.events.map((e) => e.event.type)).toEqual(['run.started', 'phase.started']);
      expect(seen).toEqual([Buffer.byteLength(a), Buffer.byteLength(a + b)]);
      expect(f.offset).toBe(Buffer.byteLength(a + b + 'not json\n'));
      off();
      f.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the dashboard URL file', () => {
  it('refuses a folder inside the project or the store, where sub-agents read', async () => {
    const { writeDashboardFile } = await import('../../src/ui/dashboard-file.js');
    const proj = tempDir('fanfold-uiproj-');
    try {
      const info = { url: 'http://127.0.0.1:1/?token=x', port: 1, pid: process.pid, root: path.join(proj, '.agent_workflows'), startedAt: new Date().toISOString() };
      await expect(writeDashboardFile(info, proj, { FANFOLD_UI_DIR: path.join(proj, 'ui') })).rejects.toThrow(/inside .* where sub-agents can read it/);
      await expect(writeDashboardFile(info, path.join(proj, 'elsewhere'), { FANFOLD_UI_DIR: path.join(proj, '.agent_workflows', 'ui') })).rejects.toThrow(/inside .*agent_workflows/);
      expect(fs.existsSync(path.join(proj, 'ui'))).toBe(false);
    } finally {
      fs.rmSync(proj, { recursive: true, force: true });
    }
  });
});
