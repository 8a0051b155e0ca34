/**
 * The dashboard's HTTP server (node:http): the page, its assets, a JSON API over the store, Server-
 * Sent Events from the run journals, and the control actions. Every request must carry the access
 * token (auth.ts); nothing is served without it.
 *
 * Routes (all need the token):
 * - `GET /` the page; `GET /assets/<file>` its script and styles (the timeline's come from
 *   digest/timeline.ts, the component report.html embeds);
 * - `GET /api/runs` recent runs; `GET /api/runs/<id>` one run; `…/tasks` every task's row;
 *   `…/timeline` the timeline fragment; `…/agents/<phase>/<task>?attempt=&offset=` one agent;
 * - `GET /api/runs/<id>/events` the run's journal as an event stream (`id` = byte offset, so a
 *   reconnect resumes where it broke off); `GET /api/events` says when any run's journal grew;
 * - `GET /api/search?q=&run=&limit=&offset=` the search engine of `query_workflow`;
 * - `POST /api/runs/<id>/<stop|resume|approve|reject>` and
 *   `POST /api/runs/<id>/agents/<phase>/<task>/<stop|restart>`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import fs from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { EVENTS_FILE, RunStore, isStoreError, isId, safeJoin } from '../store/index.js';
import { SearchError, searchStore } from '../search/index.js';
import { recentRuns } from '../mcp/run-views.js';
import { TIMELINE_CSS, TIMELINE_SCRIPT } from '../digest/index.js';
import type { launchOwner } from '../engine/lifecycle.js';
import { authCookie, authenticate, newAccessToken } from './auth.js';
import { ActionError, runAction, type Action } from './actions.js';
import { RunWatch, agentView, runView, taskRows, timelineHtml } from './views.js';

/** Options of {@link startDashboard}. */
export interface DashboardOptions {
  /** Store root to serve. */
  root: string;
  /** Interface to bind (default 127.0.0.1). */
  host?: string;
  /** Port (default 0: a free one). */
  port?: number;
  /** Access token (default: a new random one). */
  token?: string;
  /** Starts detached run owners for resume and restart (default the engine's). */
  launch?: typeof launchOwner;
  /** How long a control action waits for the run owner to confirm (ms, default 15 s). */
  actionWaitMs?: number;
}

/** A running dashboard. */
export interface Dashboard {
  /** The URL to open, with the token. */
  url: string;
  port: number;
  host: string;
  token: string;
  /** Stops serving: closes the event streams and the listening socket. */
  close(): Promise<void>;
}

const ASSETS = new Map<string, string>([
  ['app.js', 'text/javascript; charset=utf-8'],
  ['app.css', 'text/css; charset=utf-8'],
  ['index.html', 'text/html; charset=utf-8'],
]);
const ASSETS_DIR = fileURLToPath(new URL('./assets/', import.meta.url));
/** Most run watches kept (journal followers and record caches); the least recently used go. */
const MAX_WATCHES = 64;
/** How often the runs-list stream checks the journals' sizes while someone listens (ms). */
const STORE_CHECK_MS = 1500;
/** A comment line on every event stream this often, so proxies and browsers keep it open (ms). */
const HEARTBEAT_MS = 15_000;
/** Largest request body accepted (bytes). */
const MAX_BODY = 16 * 1024;

/**
 * Why this policy: the page runs only its own scripts (no inline script), talks only to this
 * server, and cannot be framed. Inline style attributes are allowed: the timeline places bars with them.
 */
const CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/** Whether `host` is a loopback address. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Starts the dashboard server and resolves once it listens. */
export async function startDashboard(opts: DashboardOptions): Promise<Dashboard> {
  const root = opts.root;
  const host = opts.host ?? '127.0.0.1';
  const token = opts.token ?? newAccessToken();
  const watches = new Map<string, RunWatch>();
  const streams = new Set<ServerResponse>();
  let port = 0;

  const watchOf = (runId: string): RunWatch => {
    let w = watches.get(runId);
    if (w) {
      watches.delete(runId);
      watches.set(runId, w);
      return w;
    }
    w = new RunWatch(root, runId);
    watches.set(runId, w);
    for (const [id, old] of watches) {
      if (watches.size <= MAX_WATCHES) break;
      if (old.follower.listenerCount > 0) continue;
      old.follower.close();
      watches.delete(id);
    }
    return w;
  };

  const store = storeStream(root);

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => sendError(res, err));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://dashboard.invalid');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    // Why no referrer: the first page URL carries the token.
    res.setHeader('Referrer-Policy', 'no-referrer');
    const how = authenticate(req, url, token, port);
    if (!how) {
      res.writeHead(401, { 'Content-Type': 'text/plain; charset=utf-8', 'WWW-Authenticate': 'Bearer realm="fanfold ui"' });
      res.end('401: this fanfold dashboard needs its access token: open the URL that `fanfold ui` printed.\n');
      return;
    }
    if (how === 'query') res.setHeader('Set-Cookie', authCookie(port, token));
    const parts = url.pathname.split('/').filter(Boolean).map((p) => decodeURIComponent(p));
    if (req.method === 'POST') {
      // Why check Origin too: SameSite=Strict already keeps other sites' posts cookieless; a
      // mismatched Origin is refused as a second wall.
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== `http://${req.headers.host}`) return sendJson(res, 403, { error: `requests from ${origin} are not accepted` });
      return post(req, res, parts);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: `method ${req.method} is not allowed` });
    if (parts.length === 0 || (parts.length === 1 && parts[0] === 'index.html')) return sendAsset(res, 'index.html');
    if (parts.length === 1 && parts[0] === 'favicon.ico') return void res.writeHead(204).end();
    if (parts[0] === 'assets' && parts.length === 2) {
      if (parts[1] === 'timeline.js') return sendText(res, 200, 'text/javascript; charset=utf-8', TIMELINE_SCRIPT);
      if (parts[1] === 'timeline.css') return sendText(res, 200, 'text/css; charset=utf-8', TIMELINE_CSS);
      if (ASSETS.has(parts[1]!)) return sendAsset(res, parts[1]!);
    }
    if (parts[0] !== 'api') return sendJson(res, 404, { error: `no such page: ${url.pathname}` });
    const [, what, runId, sub, ...rest] = parts;
    if (what === 'info' && parts.length === 2) return sendJson(res, 200, { root, schemaVersion: 1 });
    if (what === 'events' && parts.length === 2) return store.attach(req, res, streams);
    if (what === 'search' && parts.length === 2) return search(res, url);
    if (what !== 'runs') return sendJson(res, 404, { error: `no such API: ${url.pathname}` });
    if (runId === undefined) return sendJson(res, 200, await recentRuns(root, 500));
    if (!isId(runId)) return sendJson(res, 400, { error: `run id '${runId}' is not a valid id` });
    const w = watchOf(runId);
    if (sub === undefined) return sendJson(res, 200, await runView(w));
    if (sub === 'tasks' && rest.length === 0) return sendJson(res, 200, await taskRows(w));
    if (sub === 'timeline' && rest.length === 0) return sendText(res, 200, 'text/html; charset=utf-8', await timelineHtml(w));
    if (sub === 'events' && rest.length === 0) return runStream(req, res, w, url);
    if (sub === 'agents' && rest.length === 2) {
      const attempt = url.searchParams.get('attempt');
      const offset = url.searchParams.get('offset');
      const v = await agentView(w, `${rest[0]}/${rest[1]}`, {
        ...(attempt ? { attempt: Number(attempt) } : {}),
        ...(offset ? { offset: Math.max(0, Number(offset) || 0) } : {}),
      });
      if (!v) return sendJson(res, 404, { error: `run ${runId} has no task '${rest[0]}/${rest[1]}'` });
      return sendJson(res, 200, v);
    }
    return sendJson(res, 404, { error: `no such API: ${url.pathname}` });
  }

  async function post(req: IncomingMessage, res: ServerResponse, parts: string[]): Promise<void> {
    const body = await readBody(req);
    const [api, runs, runId, a, b, c, d] = parts;
    if (api !== 'api' || runs !== 'runs' || runId === undefined) return sendJson(res, 404, { error: 'no such action' });
    let action: Action | undefined;
    let ref: string | undefined;
    if (parts.length === 4 && (a === 'stop' || a === 'resume' || a === 'approve' || a === 'reject')) action = a;
    else if (parts.length === 7 && a === 'agents' && (d === 'stop' || d === 'restart')) {
      action = d === 'stop' ? 'stop_agent' : 'restart_agent';
      ref = `${b}/${c}`;
    }
    if (!action) return sendJson(res, 404, { error: `no such action: ${parts.slice(3).join('/')}` });
    const phaseId = typeof body.phaseId === 'string' ? body.phaseId : undefined;
    const done = await runAction(root, runId, action, {
      ...(ref ? { ref } : {}),
      ...(phaseId ? { phaseId } : {}),
      ...(opts.launch ? { launch: opts.launch } : {}),
      ...(opts.actionWaitMs !== undefined ? { waitMs: opts.actionWaitMs } : {}),
    });
    return sendJson(res, 200, { runId, action, ...done });
  }

  async function search(res: ServerResponse, url: URL): Promise<void> {
    const q = (url.searchParams.get('q') ?? '').trim();
    if (!q) return sendJson(res, 400, { error: 'search: give the text to look for (q)' });
    const run = url.searchParams.get('run');
    const num = (k: string) => (url.searchParams.get(k) !== null ? Number(url.searchParams.get(k)) : undefined);
    const limit = num('limit');
    const offset = num('offset');
    const page = await searchStore(root, q, {
      ...(run ? { runId: run } : {}),
      ...(limit !== undefined ? { limit } : {}),
      ...(offset !== undefined ? { offset } : {}),
      ...(url.searchParams.get('prefix') === '1' ? { prefix: true } : {}),
    });
    return sendJson(res, 200, page);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  const urlHost = shown.includes(':') ? `[${shown}]` : shown;
  return {
    url: `http://${urlHost}:${port}/?token=${token}`,
    port,
    host,
    token,
    async close() {
      store.close();
      for (const w of watches.values()) w.follower.close();
      for (const s of streams) s.end();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };

  /** The journal of one run as an event stream, from `Last-Event-ID` (or `?from=`) on. */
  async function runStream(req: IncomingMessage, res: ServerResponse, w: RunWatch, url: URL): Promise<void> {
    // Fail with a 404 before the stream starts when the run does not exist.
    await (await RunStore.open(root, w.runId)).close();
    const fromHeader = Number(req.headers['last-event-id']);
    const fromQuery = Number(url.searchParams.get('from'));
    const from = Number.isFinite(fromHeader) && req.headers['last-event-id'] !== undefined ? fromHeader : Number.isFinite(fromQuery) ? fromQuery : 0;
    openStream(req, res, streams);
    const send = (e: { event: unknown; end: number }) => res.write(`id: ${e.end}\nevent: journal\ndata: ${JSON.stringify(e.event)}\n\n`);
    await w.follower.poll();
    for (const e of w.follower.events) if (e.end > from) send(e);
    const off = w.follower.subscribe(send);
    res.on('close', off);
  }
}

/** Starts an event stream on `res`, with a heartbeat, tracked in `streams` until it closes. */
function openStream(req: IncomingMessage, res: ServerResponse, streams: Set<ServerResponse>): void {
  res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
  res.write('retry: 2000\n\n');
  streams.add(res);
  const beat = setInterval(() => res.write(': ping\n\n'), HEARTBEAT_MS);
  beat.unref();
  req.socket.setTimeout(0);
  res.on('close', () => {
    clearInterval(beat);
    streams.delete(res);
  });
}

/**
 * The runs-list stream: says `runs` whenever a run appears or any run's journal grows. It reads
 * only directory entries and journal sizes, never run.json, and only while someone listens.
 */
function storeStream(root: string) {
  const listeners = new Set<ServerResponse>();
  let timer: NodeJS.Timeout | undefined;
  let last = '';
  const check = async () => {
    let names: string[] = [];
    try {
      names = (await fs.readdir(root)).filter(isId).sort();
    } catch {
      names = [];
    }
    const sizes = await Promise.all(names.map((n) => fs.stat(safeJoin(root, n, EVENTS_FILE)).then((s) => s.size, () => -1)));
    const sig = names.map((n, i) => `${n}:${sizes[i]}`).join(',');
    if (sig !== last) {
      last = sig;
      for (const res of listeners) res.write(`event: runs\ndata: ${JSON.stringify({ runs: names.length })}\n\n`);
    }
  };
  return {
    async attach(req: IncomingMessage, res: ServerResponse, streams: Set<ServerResponse>) {
      openStream(req, res, streams);
      listeners.add(res);
      if (!timer) {
        await check().catch(() => {});
        timer = setInterval(() => void check().catch(() => {}), STORE_CHECK_MS);
        timer.unref();
      }
      res.on('close', () => {
        listeners.delete(res);
        if (listeners.size === 0 && timer) {
          clearInterval(timer);
          timer = undefined;
        }
      });
    },
    close() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}

async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new ActionError(413, `request body over ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (!text) return {};
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    throw new ActionError(400, 'request body: expected a JSON object');
  }
}

async function sendAsset(res: ServerResponse, name: string): Promise<void> {
  const text = await fs.readFile(ASSETS_DIR + name);
  res.setHeader('Content-Security-Policy', CSP);
  sendText(res, 200, ASSETS.get(name)!, text);
}

function sendText(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, v: unknown): void {
  sendText(res, status, 'application/json; charset=utf-8', JSON.stringify(v));
}

function sendError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const message = err instanceof Error ? err.message : String(err);
  let status = 500;
  if (err instanceof ActionError) status = err.status;
  else if (err instanceof SearchError) status = 400;
  else if (isStoreError(err)) status = err.code === 'unknown_run' ? 404 : err.code === 'invalid_id' || err.code === 'invalid_argument' ? 400 : 500;
  sendJson(res, status, { error: message });
}
