/**
 * A tiny client transport for the stdio tests: spawns the server itself and keeps every line it
 * wrote to stdout, so a test can check that each one is a JSON-RPC message (the SDK's
 * StdioClientTransport parses lines internally and would hide a stray one).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { JSONRPCMessageSchema, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

/** Spawns `command args` and speaks newline-delimited JSON-RPC over its stdio. */
export class LineTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  /** Every line the server wrote to stdout, raw. */
  readonly stdoutLines: string[] = [];
  /** Lines that were not JSON-RPC messages. */
  readonly strayLines: string[] = [];
  stderr = '';
  #child: ChildProcessWithoutNullStreams | undefined;
  #buf = '';
  #exited: Promise<number | null> | undefined;

  constructor(
    private readonly command: string,
    private readonly args: string[],
    private readonly opts: { cwd: string; env: NodeJS.ProcessEnv },
  ) {}

  async start(): Promise<void> {
    const child = spawn(this.command, this.args, { cwd: this.opts.cwd, env: this.opts.env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child = child;
    this.#exited = new Promise((resolve) => child.on('close', (code) => resolve(code)));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => (this.stderr += d));
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      this.#buf += d;
      let nl: number;
      while ((nl = this.#buf.indexOf('\n')) >= 0) {
        const line = this.#buf.slice(0, nl).replace(/\r$/, '');
        this.#buf = this.#buf.slice(nl + 1);
        this.stdoutLines.push(line);
        let msg: JSONRPCMessage;
        try {
          msg = JSONRPCMessageSchema.parse(JSON.parse(line));
        } catch {
          this.strayLines.push(line);
          continue;
        }
        this.onmessage?.(msg);
      }
    });
    child.on('error', (e) => this.onerror?.(e));
    child.on('close', () => this.onclose?.());
  }

  async send(message: JSONRPCMessage): Promise<void> {
    this.#child?.stdin.write(JSON.stringify(message) + '\n');
  }

  async close(): Promise<void> {
    this.#child?.stdin.end();
    const timer = setTimeout(() => this.#child?.kill('SIGTERM'), 3000);
    await this.#exited;
    clearTimeout(timer);
    if (this.#buf) {
      this.stdoutLines.push(this.#buf);
      this.strayLines.push(this.#buf);
    }
  }

  /** Exit code after close. */
  exited(): Promise<number | null> {
    return this.#exited ?? Promise.resolve(null);
  }
}
