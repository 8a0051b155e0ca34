/**
 * How a person runs fanfold *where they are*: the one function every printed command (the CLI's
 * "next:" hints, the demo's last lines, report.md, error advice) takes its first words from.
 *
 * - `fanfold`: the `fanfold` found on PATH is this very installation (`npm link` or
 *   `npm install -g .` from a clone, or a global install), so its name is enough.
 * - `npx fanfold`: fanfold runs from a checkout and the folder the user is in lies inside that
 *   checkout: npx runs the checkout's own bin there. Never printed outside the checkout: while the
 *   package is unpublished, npx elsewhere would fetch whatever holds the name `fanfold`.
 * - `node /abs/path/dist/cli/main.js`: anything else (this build started by its path from another
 *   folder). Long, but it runs as printed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { findOnPath } from './server-command.js';
import { packageRoot as defaultPackageRoot } from './assets.js';

/** Inputs of {@link cliInvocation}; defaults come from `process`. */
export interface InvocationOptions {
  /** The folder the printed command will be run from. */
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** The root of the fanfold package that is running. */
  packageRoot?: string;
}

function real(p: string): string | undefined {
  try {
    return fs.realpathSync(p);
  } catch {
    return undefined;
  }
}

function inside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** Quotes one word for a POSIX shell when it needs it. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The words that start fanfold from `cwd`, joined for a shell (see the module comment). */
export function cliInvocation(o: InvocationOptions = {}): string {
  const env = o.env ?? process.env;
  const cwd = o.cwd ?? process.cwd();
  const root = o.packageRoot ?? defaultPackageRoot();
  const main = path.join(root, 'dist', 'cli', 'main.js');
  const mainReal = real(main) ?? main;
  const onPath = findOnPath('fanfold', env);
  if (onPath && real(onPath) === mainReal) return 'fanfold';
  const rootReal = real(root) ?? root;
  const cwdReal = real(cwd) ?? cwd;
  // A checkout (not an installed copy inside some node_modules) whose package.json npx will
  // find from cwd: npm looks up the nearest package.json, so cwd must not sit in a nested package.
  if (!rootReal.split(path.sep).includes('node_modules') && inside(cwdReal, rootReal) && nearestPackage(cwdReal) === rootReal) {
    return 'npx fanfold';
  }
  return `node ${shellQuote(mainReal)}`;
}

/** The folder of the nearest package.json at or above `dir`. */
function nearestPackage(dir: string): string | undefined {
  for (let d = dir; ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'package.json'))) return d;
    if (path.dirname(d) === d) return undefined;
  }
}

/**
 * A full command line to print: the invocation, then `args` quoted for the shell, then
 * `--store DIR` when the store is not the one the command would find by itself from there.
 */
export function cliCommand(args: readonly string[], o: InvocationOptions & { store?: string; defaultStore?: string } = {}): string {
  const words = [cliInvocation(o), ...args.map(shellQuote)];
  const base = o.cwd ?? process.cwd();
  if (o.store && o.defaultStore && path.resolve(base, o.store) !== path.resolve(base, o.defaultStore)) words.push('--store', shellQuote(o.store));
  return words.join(' ');
}
