/**
 * `fanfold ui`: the live dashboard in the browser, served in the foreground until Ctrl-C. Prints
 * the URL (with its access token) — with `--json`, `{url, port, pid}` as the first line — and
 * records it where only the user can read it, outside the project (ui/dashboard-file.ts), so
 * `workflow_status` can offer it while it runs.
 */
import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { startDashboard, isLoopback } from '../ui/server.js';
import { removeDashboardFile, writeDashboardFile } from '../ui/dashboard-file.js';
import { UsageError } from './errors.js';
import { storeRoot } from './shared.js';

/** Registers `ui`. */
export function registerUiCommand(program: Command): void {
  program
    .command('ui')
    .description("serve a live dashboard of the store's runs in the browser (127.0.0.1, a free port, a token in the URL) until Ctrl-C")
    .option('--port <n>', 'port to listen on (default: a free one)')
    .option('--host <addr>', 'interface to bind (default 127.0.0.1; anything else exposes the dashboard beyond this machine)', '127.0.0.1')
    .option('--open', 'open the dashboard in the default browser')
    .option('--json', 'print {url, port, pid} as the first line, then keep serving')
    .action(async (o: { port?: string; host: string; open?: boolean; json?: boolean }) => {
      const port = o.port === undefined ? 0 : Number(o.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port: expected a port number from 0 to 65535, got '${o.port}'`);
      const host = o.host.trim();
      if (!host) throw new UsageError('--host: expected an address to bind, e.g. 127.0.0.1');
      const root = storeRoot(program);
      // Why before anything starts: a Ctrl-C that comes while the server starts (or right after
      // the URL is printed) must still close it and remove the URL file, not kill the process.
      let stopNow: () => void = () => {};
      const stopped = new Promise<void>((resolve) => (stopNow = resolve));
      const onSignal = () => {
        for (const sig of SIGNALS) process.off(sig, onSignal);
        stopNow();
      };
      for (const sig of SIGNALS) process.on(sig, onSignal);
      let dash;
      try {
        dash = await startDashboard({ root, host, port });
      } catch (e) {
        onSignal();
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EADDRINUSE') throw new UsageError(`--port: port ${port} on ${host} is in use; leave --port out to take a free one`);
        if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new UsageError(`--host: cannot bind ${host} (${code})`);
        throw e;
      }
      let file: string | undefined;
      try {
        file = await writeDashboardFile({ url: dash.url, port: dash.port, pid: process.pid, root, startedAt: new Date().toISOString() }, process.cwd());
      } catch (e) {
        process.stderr.write(`fanfold ui: ${(e as Error).message}; workflow_status will not show the dashboard\n`);
      }
      if (o.json) process.stdout.write(JSON.stringify({ url: dash.url, port: dash.port, pid: process.pid }) + '\n');
      else {
        process.stdout.write(`fanfold dashboard: ${dash.url}\n  store: ${root}\n  (Ctrl-C to stop)\n`);
      }
      if (!isLoopback(host)) {
        // Why say so loudly: anyone who can reach this address and learns the URL can stop and resume runs.
        process.stderr.write(`fanfold ui: WARNING: listening on ${host}, not only on this machine; the token in the URL is all that guards the runs\n`);
      }
      if (o.open) openBrowser(dash.url);
      await stopped;
      await Promise.race([dash.close(), new Promise((r) => setTimeout(r, 2000).unref())]);
      if (file) await removeDashboardFile(root).catch(() => {});
      if (!o.json) process.stderr.write('fanfold ui: stopped\n');
      process.exitCode = 0;
    });
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Opens `url` with the desktop's opener; a failure only says so. */
function openBrowser(url: string): void {
  const cmd = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  try {
    const child = spawn(cmd, [url], { detached: true, stdio: 'ignore' });
    child.on('error', () => process.stderr.write(`fanfold ui: could not open a browser (${cmd}); open the URL yourself\n`));
    child.unref();
  } catch {
    process.stderr.write(`fanfold ui: could not open a browser (${cmd}); open the URL yourself\n`);
  }
}
