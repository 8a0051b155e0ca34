/**
 * Where the store lives and how ids become paths. A path under the store is only ever built by
 * `safeJoin`/`safeJoinReal`: every segment on an allow-list, then `path.resolve`, then a
 * containment check against the root, then the same check after resolving symlinks.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { StoreError, errnoCode, quote } from './errors.js';
import { isFileName, isId } from './ids.js';

/** Name of the default store folder under the project directory. */
export const DEFAULT_STORE_DIR = '.agent_workflows';

/** Environment variable that names the store root. */
export const STORE_ENV = 'FANFOLD_STORE';

/** Inputs of resolveStoreRoot; defaults come from `process`. */
export interface StoreRootOptions {
  /** Value of the `--store DIR` flag, if given. */
  store?: string;
  /** Environment to read FANFOLD_STORE from (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** Directory relative paths are resolved against (default `process.cwd()`). */
  cwd?: string;
}

/**
 * The absolute store root: `--store DIR` > `FANFOLD_STORE` > `<cwd>/.agent_workflows`.
 * Relative values resolve against `cwd`. An empty `FANFOLD_STORE` counts as unset; an empty
 * `--store` or any value with a NUL byte is refused (StoreError 'invalid_argument').
 */
export function resolveStoreRoot(opts: StoreRootOptions = {}): string {
  const cwd = path.resolve(opts.cwd ?? process.cwd());
  if (opts.store !== undefined) {
    if (opts.store.trim() === '') {
      throw new StoreError('invalid_argument', 'store: --store must name a directory, got an empty string');
    }
    return checkedRoot('--store', opts.store, cwd);
  }
  const fromEnv = (opts.env ?? process.env)[STORE_ENV];
  // Why: `FANFOLD_STORE=` is how people unset a variable for one command; treat it as unset.
  if (fromEnv !== undefined && fromEnv.trim() !== '') return checkedRoot(STORE_ENV, fromEnv, cwd);
  return path.join(cwd, DEFAULT_STORE_DIR);
}

function checkedRoot(source: string, value: string, cwd: string): string {
  if (value.includes('\0')) {
    throw new StoreError('invalid_argument', `store: ${source} ${quote(value)} contains a NUL byte`);
  }
  return path.resolve(cwd, value);
}

/** True when `child` is `parent` or lies below it (both absolute and normalized). */
export function isInside(parent: string, child: string): boolean {
  if (child === parent) return true;
  const rel = path.relative(parent, child);
  // `..b` is a child named `..b`; only `..` itself or `../…` climbs out.
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

/** Checks one segment: an id (`agents`, a run id) or a file name (`map.core.3.json`). */
function checkSegment(root: string, segment: unknown): string {
  if (isId(segment) || isFileName(segment)) return segment;
  throw new StoreError(
    'path_escape',
    `path segment ${quote(segment)} under ${root} is not an id or a plain file name (letters, digits, '-', '_', '.'-separated parts)`,
  );
}

/** The lexical part of safeJoin: allow-list, resolve, containment. Returns [root, target]. */
function lexicalJoin(root: string, segments: readonly string[]): [string, string] {
  if (typeof root !== 'string' || root === '' || root.includes('\0')) {
    throw new StoreError('invalid_argument', `store: root ${quote(root)} must be a non-empty path without NUL bytes`);
  }
  const absRoot = path.resolve(root);
  for (const s of segments) checkSegment(absRoot, s);
  const target = path.resolve(absRoot, ...segments);
  // Why: the allow-list already rules out separators and `..`; the containment check is the second
  // lock on the same door, so a future loosening of the patterns cannot open it silently.
  if (!isInside(absRoot, target)) {
    throw new StoreError('path_escape', `path ${quote(segments.join('/'))} resolves outside ${absRoot}`);
  }
  return [absRoot, target];
}

function escapeError(absRoot: string, target: string, real: string): StoreError {
  return new StoreError(
    'path_escape',
    `path ${target} resolves to ${real}, outside the store root ${absRoot} (a symlink inside the store points out of it)`,
  );
}

function danglingError(p: string, cause: unknown): StoreError {
  return new StoreError('path_escape', `path ${p} is a symlink that does not resolve; refusing to follow it`, { cause });
}

/**
 * Joins `segments` under `root` safely and returns the absolute path, or throws StoreError
 * 'path_escape'. Each segment must be an id or a file name (see ids.ts); the result must lie in
 * `root` lexically and — when it or a parent below root exists — after `realpath`, measured against
 * the realpath of `root`. A dangling symlink on the way is refused. Synchronous; see safeJoinReal.
 *
 * Not a defence against a concurrent attacker who can write into the store (a symlink planted
 * between this check and the use of the path); it stops planted or accidental symlinks and ids
 * that try to climb out.
 */
export function safeJoin(root: string, ...segments: string[]): string {
  const [absRoot, target] = lexicalJoin(root, segments);
  let rootReal: string;
  try {
    rootReal = fs.realpathSync.native(absRoot);
  } catch (err) {
    // Why: when root itself does not exist nothing below it can exist, so no symlink can redirect us.
    if (errnoCode(err) === 'ENOENT') return target;
    throw new StoreError('io', `store: cannot resolve store root ${absRoot}: ${(err as Error).message}`, { cause: err });
  }
  for (let p = target; p !== absRoot && isInside(absRoot, p); p = path.dirname(p)) {
    const real = resolveOrMissing(p);
    if (real === undefined) continue;
    if (!isInside(rootReal, real)) throw escapeError(absRoot, target, real);
    return target;
  }
  return target;
}

/**
 * realpath of `p`, or undefined when nothing is at `p`. Throws 'path_escape' for a dangling
 * symlink or a loop. A retry covers an entry created or removed between the two system calls.
 */
function resolveOrMissing(p: string): string | undefined {
  for (let tries = 0; tries < 3; tries++) {
    try {
      return fs.realpathSync.native(p);
    } catch (err) {
      const code = errnoCode(err);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw danglingOrIo(p, err);
      let st: fs.Stats;
      try {
        st = fs.lstatSync(p);
      } catch {
        return undefined; // nothing there
      }
      // Why: realpath fails for a missing path and for a symlink to a missing target alike; only
      // the first is harmless — writing through the second would create a file wherever it points.
      if (st.isSymbolicLink() && tries > 0) throw danglingError(p, err);
      // Otherwise the entry appeared between realpath and lstat (a concurrent create), or we look once more at a link.
    }
  }
  throw flappingError(p);
}

/** Async twin of safeJoin (same checks, non-blocking `realpath`). */
export async function safeJoinReal(root: string, ...segments: string[]): Promise<string> {
  const [absRoot, target] = lexicalJoin(root, segments);
  const rootReal = await realRoot(absRoot);
  return rootReal === undefined ? target : checkReal(absRoot, rootReal, target);
}

/** realpath of the root, or undefined when it does not exist yet. */
async function realRoot(absRoot: string): Promise<string | undefined> {
  try {
    return await fsp.realpath(absRoot);
  } catch (err) {
    // Why: when root itself does not exist nothing below it can exist, so no symlink can redirect us.
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw new StoreError('io', `store: cannot resolve store root ${absRoot}: ${(err as Error).message}`, { cause: err });
  }
}

/** The realpath re-check of safeJoinReal: the target or its nearest existing parent must resolve inside rootReal. */
async function checkReal(absRoot: string, rootReal: string, target: string): Promise<string> {
  for (let p = target; p !== absRoot && isInside(absRoot, p); p = path.dirname(p)) {
    const real = await resolveOrMissingAsync(p);
    if (real === undefined) continue;
    if (!isInside(rootReal, real)) throw escapeError(absRoot, target, real);
    return target;
  }
  return target;
}

/**
 * A root directory whose realpath is taken once, for joining many paths under it with the checks
 * of safeJoinReal at one `realpath` fewer each. Measuring against the realpath from when the root
 * was opened is, if anything, stricter: if the root is later swapped for a symlink, paths through
 * it resolve elsewhere and are refused.
 */
export class SafeRoot {
  /** The absolute root. */
  readonly root: string;
  #real: string | undefined;

  private constructor(root: string, real: string | undefined) {
    this.root = root;
    this.#real = real;
  }

  /** Resolves `root` (absolute, realpath taken now if it exists). */
  static async open(root: string): Promise<SafeRoot> {
    const [absRoot] = lexicalJoin(root, []);
    return new SafeRoot(absRoot, await realRoot(absRoot));
  }

  /** Like safeJoinReal(root, ...segments). */
  async join(...segments: string[]): Promise<string> {
    const [absRoot, target] = lexicalJoin(this.root, segments);
    this.#real ??= await realRoot(absRoot);
    return this.#real === undefined ? target : checkReal(absRoot, this.#real, target);
  }
}

/** Async twin of resolveOrMissing. */
async function resolveOrMissingAsync(p: string): Promise<string | undefined> {
  for (let tries = 0; tries < 3; tries++) {
    try {
      return await fsp.realpath(p);
    } catch (err) {
      const code = errnoCode(err);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw danglingOrIo(p, err);
      let st: fs.Stats;
      try {
        st = await fsp.lstat(p);
      } catch {
        return undefined;
      }
      if (st.isSymbolicLink() && tries > 0) throw danglingError(p, err);
    }
  }
  throw flappingError(p);
}

function flappingError(p: string): StoreError {
  return new StoreError('io', `store: ${p} kept appearing and disappearing while being resolved`, { retryable: true });
}

function danglingOrIo(p: string, err: unknown): StoreError {
  if (errnoCode(err) === 'ELOOP') return danglingError(p, err);
  return new StoreError('io', `store: cannot resolve ${p}: ${(err as Error).message}`, { cause: err });
}
