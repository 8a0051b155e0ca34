/**
 * `fanfold serve` over stdio. stdout is the JSON-RPC channel and nothing else may write to it:
 * before anything else runs, console output and direct writes to process.stdout are sent to
 * stderr, and only the transport keeps a handle on the real stdout.
 */
import type { Readable, Writable } from 'node:stream';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { createServer, type ServerDeps } from './server.js';

/** Options of serveStdio: the server's dependencies plus the streams (defaults: process). */
export interface StdioOptions extends ServerDeps {
  /** Where requests come from (default process.stdin). */
  stdin?: Readable;
}

let guarded: Writable | undefined;

/**
 * Redirects `console.log/info/debug/warn` and every other `process.stdout.write` to stderr and
 * returns a stream that still writes to the real stdout, for the transport alone. Idempotent.
 *
 * Why: any stray line on stdout — a dependency's console.log, a warning — is read by the host as
 * a malformed JSON-RPC message, and some hosts drop the connection on the first one.
 */
export function guardStdout(): Writable {
  if (guarded) return guarded;
  const out = process.stdout;
  const realWrite = out.write.bind(out) as (chunk: unknown, ...rest: unknown[]) => boolean;
  const toStderr = (...args: unknown[]) => {
    process.stderr.write(args.map((a) => (typeof a === 'string' ? a : safeInspect(a))).join(' ') + '\n');
  };
  console.log = toStderr;
  console.info = toStderr;
  console.debug = toStderr;
  console.warn = toStderr;
  console.dir = (obj: unknown) => toStderr(obj);
  console.table = (obj: unknown) => toStderr(obj);
  // Everyone else's writes to stdout go to stderr from now on.
  out.write = ((chunk: unknown, ...rest: unknown[]) => (process.stderr.write as (c: unknown, ...r: unknown[]) => boolean)(chunk, ...rest)) as typeof out.write;
  // The transport's stream: the real stdout's write, and its 'drain' for back-pressure.
  guarded = {
    write: (chunk: unknown, ...rest: unknown[]) => realWrite(chunk, ...rest),
    once: (event: string, fn: (...a: unknown[]) => void) => {
      out.once(event, fn);
      return guarded;
    },
    on: (event: string, fn: (...a: unknown[]) => void) => {
      out.on(event, fn);
      return guarded;
    },
  } as unknown as Writable;
  return guarded;
}

function safeInspect(v: unknown): string {
  try {
    return typeof v === 'object' ? JSON.stringify(v) : String(v);
  } catch {
    return String(v);
  }
}

/**
 * Serves fanfold over stdio until stdin ends (the host went away). Resolves then, after closing
 * the server; runs keep going in their detached owners.
 */
export async function serveStdio(opts: StdioOptions): Promise<void> {
  const stdout = guardStdout();
  const log = opts.log ?? ((line: string) => void process.stderr.write(`fanfold mcp: ${line}\n`));
  const stdin: Readable = opts.stdin ?? process.stdin;
  const server = createServer({ ...opts, log });
  const transport = new StdioServerTransport(stdin, stdout);
  const closed = new Promise<void>((resolve) => {
    transport.onclose = () => resolve();
    const end = () => {
      void server.close().finally(resolve);
    };
    stdin.on('end', end);
    stdin.on('close', end);
  });
  await server.connect(transport);
  log(`serving ${opts.child ? 'child (read-only) ' : ''}tools over stdio; store ${opts.root}; pid ${process.pid}`);
  await closed;
}
