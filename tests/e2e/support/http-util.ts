/**
 * Shared plumbing of the scripted model servers: a node:http server on 127.0.0.1 (port 0) that
 * records every request, tracks its sockets so close() never hangs on keep-alive connections,
 * and keeps the errors thrown by test scripts so a test can fail loudly on them.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface RecordedRequest {
  /** Order of arrival over all requests to this server, from 0. */
  seq: number;
  method: string;
  /** Path without the query string, e.g. `/v1/messages`. */
  path: string;
  query: Record<string, string>;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON body, or the raw text when it is not JSON, or undefined when empty. */
  body: unknown;
  rawBody: string;
  /** Date.now() when the request had been read completely. */
  receivedAt: number;
  /** Date.now() when the answer had been handed to the OS completely (unset while it is pending). */
  respondedAt?: number;
}

export type RouteHandler = (req: RecordedRequest, res: ServerResponse) => void | Promise<void>;

export interface BaseServer {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  port: number;
  /** Every request, in order of arrival. */
  requests: RecordedRequest[];
  /** Errors thrown by the test's script (assertions inside it); answered as HTTP 500. */
  scriptErrors: unknown[];
  /** Throw the first script error, if any (call at the end of a test). */
  assertNoScriptErrors(): void;
  close(): Promise<void>;
}

export function sendJson(res: ServerResponse, status: number, value: unknown, extraHeaders: Record<string, string> = {}): void {
  const text = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text).toString(),
    ...extraHeaders,
  });
  res.end(text);
}

/** Open an SSE response; returns a writer for `event:` + `data:` frames. */
export function startSse(res: ServerResponse, extraHeaders: Record<string, string> = {}): {
  event: (name: string | null, data: unknown) => void;
  end: () => void;
} {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    ...extraHeaders,
  });
  return {
    event(name, data) {
      const payload = typeof data === 'string' ? data : JSON.stringify(data);
      res.write(`${name ? `event: ${name}\n` : ''}data: ${payload}\n\n`);
    },
    end() {
      res.end();
    },
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export async function startBaseServer(
  handler: RouteHandler,
  opts: { name: string; log?: boolean },
): Promise<BaseServer> {
  const requests: RecordedRequest[] = [];
  const scriptErrors: unknown[] = [];
  const sockets = new Set<Socket>();
  let seq = 0;
  const debug = opts.log ?? process.env.FANFOLD_E2E_DEBUG === '1';

  const server: Server = createServer((req, res) => {
    void (async () => {
      const raw = await readBody(req);
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      let body: unknown = undefined;
      if (raw !== '') {
        try {
          body = JSON.parse(raw);
        } catch {
          body = raw;
        }
      }
      const rec: RecordedRequest = {
        seq: seq++,
        method: req.method ?? 'GET',
        path: url.pathname,
        query: Object.fromEntries(url.searchParams.entries()),
        headers: { ...req.headers },
        body,
        rawBody: raw,
        receivedAt: Date.now(),
      };
      requests.push(rec);
      res.once('finish', () => {
        rec.respondedAt = Date.now();
      });
      if (debug) process.stderr.write(`[${opts.name}] ${rec.method} ${req.url} (${raw.length} bytes)\n`);
      try {
        await handler(rec, res);
      } catch (err) {
        scriptErrors.push(err);
        if (debug) process.stderr.write(`[${opts.name}] script error: ${String(err)}\n`);
        if (!res.headersSent) {
          sendJson(res, 500, {
            type: 'error',
            error: { type: 'api_error', message: `scripted server error: ${String(err)}` },
          });
        } else {
          res.destroy();
        }
      }
    })().catch((err) => {
      scriptErrors.push(err);
      res.destroy();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  let closed: Promise<void> | undefined;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    requests,
    scriptErrors,
    assertNoScriptErrors() {
      if (scriptErrors.length > 0) {
        const first = scriptErrors[0];
        throw first instanceof Error ? first : new Error(String(first));
      }
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      return closed;
    },
  };
}

let idCounter = 0;
export function fakeId(prefix: string): string {
  idCounter += 1;
  return `${prefix}${Date.now().toString(36)}${idCounter.toString(36).padStart(4, '0')}`;
}
