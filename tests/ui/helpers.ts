/**
 * Helpers for the dashboard tests: start the built `fanfold ui --json` as a real child process,
 * read its first line, and stop it by its pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { CLI } from '../helpers/cli.js';

/** A running `fanfold ui`. */
export interface UiProcess {
  child: ChildProcess;
  /** The first stdout line, parsed. */
  first: { url: string; port: number; pid: number };
  /** Base URL without the token. */
  base: string;
  token: string;
  stderr: () => string;
  /** Sends SIGINT and resolves with the exit code once it has exited. */
  stop: () => Promise<number | null>;
}

/** Starts `fanfold ui --json --store <store>` in `cwd` and waits (generously) for its first line. */
export async function startUi(cwd: string, store: string, env: NodeJS.ProcessEnv, extra: string[] = []): Promise<UiProcess> {
  const child = spawn(process.execPath, [CLI, 'ui', '--json', '--store', store, ...extra], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => child.once("exit", (code, signal) => { if (signal) err += `\n(killed by ${signal})`; r(code); }));
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`fanfold ui printed no line within 60 s; stderr: ${err}`)), 60_000);
    child.stdout!.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(out.slice(0, nl));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`fanfold ui exited (${code}) before printing; stderr: ${err}`));
    });
  });
  const first = JSON.parse(line) as UiProcess['first'];
  const u = new URL(first.url);
  return {
    child,
    first,
    base: `${u.protocol}//${u.host}`,
    token: u.searchParams.get('token') ?? '',
    stderr: () => err,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
