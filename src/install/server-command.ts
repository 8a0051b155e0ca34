/**
 * The command a host runs to start `fanfold serve`. It must work from any folder the host starts
 * in, and keep working after the user updates fanfold.
 *
 * - `absolute` (default): this Node binary (`process.execPath`) with the absolute path of this
 *   package's `dist/cli/main.js`. Needs nothing on PATH (hosts started from a desktop launcher
 *   often have a short PATH). A `git pull` + `npm run build` in a clone, or `npm i -g fanfold`
 *   again, rebuilds the same path, so the entry stays right. It breaks when that Node binary
 *   goes away (a version manager removing it) — running the install again fixes it.
 * - `path`: `fanfold serve`, found on PATH when the host starts it. The same line works on every
 *   machine (a project `.mcp.json` that is committed), and follows whatever `fanfold` is current.
 */
import fs from 'node:fs';
import path from 'node:path';

/** How the host finds fanfold. */
export type Launcher = 'absolute' | 'path';

/** The launchers, for option parsing. */
export const LAUNCHERS: readonly Launcher[] = ['absolute', 'path'];

/** A stdio command line, and what the user should know about it. */
export interface ServerCommand {
  command: string;
  args: string[];
  notes: string[];
}

/** Inputs of {@link serverCommand}; defaults come from `process`. */
export interface ServerCommandOptions {
  launcher: Launcher;
  packageRoot: string;
  execPath?: string;
  env?: NodeJS.ProcessEnv;
}

/** Folders of Node version managers, whose binaries come and go with the versions installed. */
const VERSION_MANAGED = /[\\/](\.nvm|\.volta|\.fnm|fnm|\.asdf|\.nodenv|n[\\/]versions|\.local[\\/]share[\\/]mise)[\\/]/;

/** The first executable `name` on PATH, or undefined. */
export function findOnPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  const exts = process.platform === 'win32' ? (env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';') : [''];
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    for (const ext of exts) {
      const p = path.join(dir, name + ext);
      try {
        fs.accessSync(p, fs.constants.X_OK);
        if (fs.statSync(p).isFile()) return p;
      } catch {
        /* not here */
      }
    }
  }
  return undefined;
}

/** The command line for `fanfold serve` under `launcher`. */
export function serverCommand(o: ServerCommandOptions): ServerCommand {
  const env = o.env ?? process.env;
  const notes: string[] = [];
  if (o.launcher === 'path') {
    const found = findOnPath('fanfold', env);
    if (!found) notes.push("'fanfold' is not on PATH here: the host will not find it unless it is on the host's PATH (npm i -g fanfold, or npm link in a clone)");
    return { command: 'fanfold', args: ['serve'], notes };
  }
  const execPath = o.execPath ?? process.execPath;
  const main = path.join(o.packageRoot, 'dist', 'cli', 'main.js');
  if (!fs.existsSync(main)) notes.push(`${main} does not exist yet: run 'npm run build' in ${o.packageRoot}`);
  if (/[\\/]_npx[\\/]/.test(main)) {
    notes.push("fanfold is running from npx's cache, which npm may clear: install it for good (from a clone: npm install -g .) and run this install again, or use --launcher path");
  }
  if (VERSION_MANAGED.test(execPath)) {
    notes.push(`the server runs with ${execPath}; if that Node version is removed, run this install again (or use --launcher path)`);
  }
  return { command: execPath, args: [main, 'serve'], notes };
}
