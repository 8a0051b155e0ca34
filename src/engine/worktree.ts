/**
 * Git worktree isolation for agents that edit files. Each such attempt runs in its own detached
 * worktree; its change comes back as a `Patch` (stored in the agent record); a merge step later
 * applies the patches in order to the main working tree, reports conflicts, and the worktrees are
 * removed.
 *
 * Goals: agents never see or clobber each other's half-done edits; a patch is byte-exact (binary
 * files, modes, non-UTF-8 text); a merge can be resumed after a crash without applying anything
 * twice; a patch either applies whole or leaves the tree untouched; memory stays bounded whatever an
 * agent writes; nothing is deleted that is not one of our worktrees.
 * Non-goals: three-way merges (a conflict is reported, not resolved); submodule changes; Windows.
 */
import { spawn } from 'node:child_process';
import { isUtf8 } from 'node:buffer';
import { lstat, mkdir, readFile, realpath, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TailRing, cutUtf8 } from '../runners/buffers.js';

/** A patch taken from one isolated attempt. Stored inside the agent record (JSON). */
export interface Patch {
  /** Commit sha the worktree started from: the patch's context is this commit's content. */
  base: string;
  /** `git diff --binary` text, relative to the repository root ('' when nothing changed). */
  diff: string;
  /** Paths touched (relative to the repository root), sorted; a rename lists both names. */
  files: string[];
  /** Full size of the diff in bytes (UTF-8), also when `diff` holds only its head. */
  bytes: number;
  /** True when `diff` was cut at `maxBytes`: such a patch is never applied. */
  truncated: boolean;
}

/**
 * One isolated checkout. Carries the repository as well as the directory because removal and
 * merging run from the repository, and `cwd` because an agent must start where its caller was.
 */
export interface Worktree {
  /** Top level of the repository the worktree belongs to (realpath). */
  repo: string;
  /** The worktree's own top level (realpath). */
  dir: string;
  /** Commit sha the worktree was created at. */
  base: string;
  /** `dir` plus the caller's cwd relative to `repo`: <repo>/pkg maps to <dir>/pkg. */
  cwd: string;
}

/** One patch to merge, with the task ref it came from (for the result and `onApplied`). */
export interface MergeItem {
  ref: string;
  patch: Patch;
}

/** What a merge did with each ref. Every ref given lands in exactly one of the four lists. */
export interface MergeResult {
  /** Refs applied by this call, in order. */
  applied: string[];
  /** Refs whose patch is already in the tree (a resumed merge): `git apply --check --reverse` succeeds. */
  alreadyApplied: string[];
  /** Refs with no change. */
  empty: string[];
  /** Refs not applied; the working tree is untouched for each. `message` is git's stderr, at most 2000 chars. */
  conflicts: { ref: string; files: string[]; message: string }[];
}

/** Machine-readable kinds of isolation failures. */
export type IsolationErrorCode =
  /** A caller passed something unusable (bad option, malformed patch, missing cwd). */
  | 'invalid_argument'
  /** The directory is not inside a git work tree. */
  | 'not_a_repo'
  /** The repository has no commit yet, so there is nothing to branch a worktree from. */
  | 'no_commit'
  /** `git` could not be started. */
  | 'git_missing'
  /** A git command exited non-zero. */
  | 'git_failed'
  /** A path we were asked to delete is not one of our worktrees. */
  | 'unsafe_path'
  /** An agent's change could not be represented as a patch string. */
  | 'unrepresentable';

/**
 * An isolation failure: prefixed `isolation:`, typed, with whether a retry can help, because the
 * engine turns it into a task failure and must know whether retrying the attempt makes sense.
 */
export class IsolationError extends Error {
  /** What kind of failure this is. */
  readonly code: IsolationErrorCode;
  /** Whether the same call could succeed later without anyone fixing anything (git failures only). */
  readonly retryable: boolean;

  constructor(code: IsolationErrorCode, message: string, options?: { cause?: unknown }) {
    super(message.startsWith('isolation: ') ? message : `isolation: ${message}`, options);
    this.name = 'IsolationError';
    this.code = code;
    // A git failure may be a held index.lock or a full disk; everything else needs a fix first.
    this.retryable = code === 'git_failed';
  }
}

/** Default cap of a patch's diff: a change larger than this is not merged automatically. */
const DEFAULT_MAX_PATCH_BYTES = 8 * 1024 * 1024;
/** Cap on the stdout of git commands whose output is a listing, not a diff. */
const MAX_LISTING_BYTES = 64 * 1024 * 1024;
/** Longest git message kept in a conflict. */
const MAX_CONFLICT_MESSAGE = 2000;

/**
 * Variables that point git at another repository, index or object store. A parent started from a
 * git hook (or any tool that exports them) would otherwise make every command below act on the
 * wrong repository. `GIT_DIFF_OPTS` could turn our diffs into zero-context ones `git apply` rejects.
 */
const REDIRECTING_GIT_ENV = [
  'GIT_DIR',
  'GIT_WORK_TREE',
  'GIT_INDEX_FILE',
  'GIT_COMMON_DIR',
  'GIT_OBJECT_DIRECTORY',
  'GIT_ALTERNATE_OBJECT_DIRECTORIES',
  'GIT_NAMESPACE',
  'GIT_PREFIX',
  'GIT_DIFF_OPTS',
  'GIT_EXTERNAL_DIFF',
];

/**
 * Diff options that pin the patch format whatever the user's config says (`diff.noprefix`,
 * `diff.mnemonicPrefix`, `diff.context`, `diff.external`, `color.ui=always`, textconv drivers,
 * `diff.renames`), so that `git apply` in the merge step always reads what we wrote. Renames are
 * off so that `files` names both sides and a reverse check is a plain delete/create.
 */
const DIFF_FORMAT = [
  '--binary',
  '--no-color',
  '--no-ext-diff',
  '--no-textconv',
  '--no-renames',
  '--unified=3',
  '--src-prefix=a/',
  '--dst-prefix=b/',
];

/** A commit id as git prints it (SHA-1 or SHA-256); anything else could be read as an option. */
const SHA = /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/;

interface GitResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** At most `maxStdout` + 1 bytes of stdout. */
  stdout: Buffer;
  /** Every stdout byte git wrote. */
  stdoutBytes: number;
  /** The end of stderr. */
  stderr: string;
}

interface GitOptions {
  cwd: string;
  /** Written to git's stdin, which is then closed. */
  input?: string;
  /** Stdout kept in memory; the rest is counted only (default MAX_LISTING_BYTES). */
  maxStdout?: number;
  signal?: AbortSignal;
}

function gitEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, GIT_TERMINAL_PROMPT: '0' };
  for (const key of REDIRECTING_GIT_ENV) delete env[key];
  return env;
}

/** The tail of each repository's queue of worktree administration commands (see runGit). */
const adminQueues = new Map<string, Promise<unknown>>();

/**
 * Runs git (see spawnGit). Why `worktree add|remove|prune` of one repository run one at a time:
 * git does not guard its `.git/worktrees/` administration against itself, and two concurrent
 * `worktree add`s failed ("failed to read .git/worktrees/<other>/commondir") on a loaded machine.
 * Only this process's commands are ordered; the run's owner is the only process that makes them.
 */
function runGit(args: string[], opts: GitOptions): Promise<GitResult> {
  if (args[0] !== 'worktree' || !['add', 'remove', 'prune'].includes(args[1] ?? '')) return spawnGit(args, opts);
  const key = path.resolve(opts.cwd);
  const run = (adminQueues.get(key) ?? Promise.resolve()).then(() => spawnGit(args, opts));
  const tail = run.catch(() => undefined);
  adminQueues.set(key, tail);
  void tail.then(() => {
    if (adminQueues.get(key) === tail) adminQueues.delete(key);
  });
  return run;
}

/**
 * Runs git without a shell. Never rejects for a non-zero exit (callers decide what that means);
 * rejects when git cannot start or `signal` aborts. Why spawn and not a promisified execFile: the
 * diff may be far larger than we keep, and we still need its exact size, so stdout is counted and
 * only its head is held.
 */
function spawnGit(args: string[], opts: GitOptions): Promise<GitResult> {
  const maxStdout = opts.maxStdout ?? MAX_LISTING_BYTES;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let kept = 0;
    let total = 0;
    const stderr = new TailRing(8192);
    const child = spawn('git', args, {
      cwd: opts.cwd,
      env: gitEnv(),
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    let settled = false;
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      if (opts.signal?.aborted) return reject(opts.signal.reason);
      const e = err as NodeJS.ErrnoException;
      reject(
        new IsolationError(
          'git_missing',
          `could not start \`git ${args[0] ?? ''}\` in ${opts.cwd}: ${e.message ?? String(err)}; expected git on PATH and an existing directory`,
          { cause: err },
        ),
      );
    };
    child.on('error', fail);
    child.stdout?.on('data', (chunk: Buffer) => {
      total += chunk.length;
      // One byte past the cap so that cutUtf8 can tell whether a character straddles the cut.
      const room = maxStdout + 1 - kept;
      if (room <= 0) return;
      const part = chunk.length <= room ? chunk : Buffer.from(chunk.subarray(0, room));
      chunks.push(part);
      kept += part.length;
    });
    child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
    if (opts.input !== undefined && child.stdin) {
      // git may exit before reading all of stdin (e.g. a corrupt patch): EPIPE is then expected,
      // and the exit code tells the story.
      child.stdin.on('error', () => {});
      child.stdin.end(opts.input);
    }
    child.on('close', (code, signal) => {
      if (settled) return;
      settled = true;
      if (opts.signal?.aborted) return reject(opts.signal.reason);
      resolve({ code, signal, stdout: Buffer.concat(chunks, kept), stdoutBytes: total, stderr: stderr.toString().trim() });
    });
  });
}

/** How a finished git command ended, for messages. */
function describeExit(r: GitResult): string {
  const how = r.signal ? `was killed by ${r.signal}` : `exited with code ${r.code}`;
  return r.stderr ? `${how}: ${r.stderr}` : `${how} and printed nothing on stderr`;
}

/** Runs git and throws a `git_failed` IsolationError naming the command, the directory and git's words. */
async function git(args: string[], opts: GitOptions): Promise<GitResult> {
  const r = await runGit(args, opts);
  if (r.code !== 0) {
    throw new IsolationError('git_failed', `expected \`git ${args.join(' ')}\` in ${opts.cwd} to succeed, but it ${describeExit(r)}`);
  }
  return r;
}

/** Stdout of a listing command as text, refusing one that did not fit (it would be silently wrong). */
function listingText(r: GitResult, what: string): string {
  if (r.stdoutBytes > MAX_LISTING_BYTES) {
    throw new IsolationError('unrepresentable', `${what} printed ${r.stdoutBytes} bytes; expected at most ${MAX_LISTING_BYTES}`);
  }
  return r.stdout.toString('utf8');
}

/** Whether `p` exists, without following a final symlink. */
async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** `p` after realpath, or resolved only when it does not exist (yet). */
async function realOrResolved(p: string): Promise<string> {
  try {
    return await realpath(p);
  } catch {
    return path.resolve(p);
  }
}

/** True when `child` lies strictly inside `parent` (both absolute and normalised). */
function isInside(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

/** `git rev-parse --show-toplevel` in `cwd`: the realpath'd top level, or git's complaint. */
async function topLevelOf(cwd: string, signal?: AbortSignal): Promise<{ top: string } | { said: string }> {
  const dir = path.resolve(cwd);
  let isDir = false;
  try {
    isDir = (await stat(dir)).isDirectory();
  } catch {
    /* reported below */
  }
  if (!isDir) return { said: `${dir} is not an existing directory` };
  const r = await runGit(['rev-parse', '--show-toplevel'], { cwd: dir, ...(signal ? { signal } : {}) });
  const out = r.stdout.toString('utf8').trim();
  // A bare repository or the inside of .git exits 0 with no output on some git versions.
  if (r.code !== 0 || out === '') return { said: r.code !== 0 ? describeExit(r) : 'it printed no top level (a bare repository or .git directory?)' };
  return { top: await realpath(out) };
}

/**
 * The top level (realpath) of the git work tree containing `cwd`, or undefined when `cwd` is not
 * inside one (or does not exist). Lets the engine decide whether isolation is possible at all
 * before it plans any worktree. Throws only when git itself cannot run.
 */
export async function gitTopLevel(cwd: string): Promise<string | undefined> {
  const found = await topLevelOf(cwd);
  return 'top' in found ? found.top : undefined;
}

/**
 * Creates a detached worktree at `dir` from the HEAD commit of the repository containing `cwd`, so
 * an edit-capable agent works on a private copy and cannot disturb the main tree or other agents.
 * The parent of `dir` is created; `dir` itself must not exist or be empty. The result's `cwd` is
 * the same subdirectory of the worktree as the caller's `cwd` is of the repository (created when
 * it is not tracked, so the agent can always start there).
 * Throws an IsolationError when `cwd` is not in a repository (`not_a_repo`) or HEAD has no commit
 * (`no_commit`).
 */
export async function createWorktree(opts: { cwd: string; dir: string; signal?: AbortSignal }): Promise<Worktree> {
  const signal = opts.signal ? { signal: opts.signal } : {};
  const cwd = path.resolve(opts.cwd);
  const found = await topLevelOf(cwd, opts.signal);
  if (!('top' in found)) {
    throw new IsolationError('not_a_repo', `worktree needs a git repository at ${cwd}; \`git rev-parse --show-toplevel\` said: ${found.said}`);
  }
  const repo = found.top;
  const head = await runGit(['rev-parse', '--verify', '--quiet', 'HEAD^{commit}'], { cwd: repo, ...signal });
  const base = head.stdout.toString('utf8').trim();
  if (head.code !== 0 || !SHA.test(base)) {
    const said = head.stderr || (head.code === 0 ? `\`${base}\`` : 'HEAD does not name a commit yet');
    throw new IsolationError('no_commit', `worktree needs a git repository with at least one commit at ${repo}; \`git rev-parse HEAD\` said: ${said}`);
  }
  // The caller's place in the repository; realpath first because `repo` is a realpath.
  const rel = path.relative(repo, await realpath(cwd));
  const sub = rel === '' || rel.startsWith('..') || path.isAbsolute(rel) ? '' : rel;

  const wanted = path.resolve(opts.dir);
  await mkdir(path.dirname(wanted), { recursive: true });
  // Register the realpath, as git lists it, so cleanup can compare paths without guessing.
  const dir = path.join(await realpath(path.dirname(wanted)), path.basename(wanted));
  if (dir === repo || isInside(dir, repo)) {
    throw new IsolationError('invalid_argument', `worktree directory ${dir} must not be or contain the repository ${repo}`);
  }
  // The sha, not HEAD: another process may move HEAD between our rev-parse and the checkout, and
  // `base` must be exactly what the worktree holds. Hooks (post-checkout) run as for any checkout
  // the repository's owner makes: tools such as git-lfs rely on them.
  await git(['worktree', 'add', '--detach', dir, base], { cwd: repo, ...signal });
  const wtCwd = sub === '' ? dir : path.join(dir, sub);
  await mkdir(wtCwd, { recursive: true });
  return { repo, dir, base, cwd: wtCwd };
}

/** The worktree's private git directory (`.git/worktrees/<id>`), removed together with it. */
async function privateGitDir(wt: Worktree, signal?: AbortSignal): Promise<string> {
  const r = await git(['rev-parse', '--absolute-git-dir'], { cwd: wt.dir, ...(signal ? { signal } : {}) });
  return r.stdout.toString('utf8').trim();
}

/**
 * Takes the change an attempt made in `wt` as one patch against `wt.base`: everything in the
 * working tree (`git add -A`, so new files count and ignored ones do not) including commits the
 * agent made, because the diff is of the index against the base commit, not against HEAD.
 * A diff over `maxBytes` (default 8 MiB) is kept only up to the cap and marked `truncated`, which
 * bounds what lands in the agent record and keeps the merge step from applying half a change.
 */
export async function collectPatch(wt: Worktree, opts: { maxBytes?: number; signal?: AbortSignal } = {}): Promise<Patch> {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_PATCH_BYTES;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) {
    throw new IsolationError('invalid_argument', `expected \`maxBytes\` to be a non-negative integer, got \`${String(opts.maxBytes)}\``);
  }
  if (!SHA.test(wt.base)) {
    throw new IsolationError('invalid_argument', `expected the worktree's \`base\` to be a commit sha, got \`${wt.base}\``);
  }
  const signal = opts.signal ? { signal: opts.signal } : {};
  await git(['add', '-A'], { cwd: wt.dir, ...signal });

  let raw = await git(['diff', '--cached', ...DIFF_FORMAT, wt.base, '--'], { cwd: wt.dir, maxStdout: maxBytes, ...signal });
  if (raw.stdoutBytes <= maxBytes && !isUtf8(raw.stdout)) {
    // Text in another encoding (Latin-1, Shift-JIS…) would be mangled by the JSON string the patch
    // lives in, and git would then write U+FFFD into the merged files. As binary hunks (base85,
    // pure ASCII) those files survive byte for byte. The attributes file sits in the worktree's
    // private git dir, so it affects only this diff and goes away with the worktree.
    const attributes = path.join(await privateGitDir(wt, opts.signal), 'fanfold-binary.attributes');
    await writeFile(attributes, '* binary\n');
    raw = await git(['-c', `core.attributesFile=${attributes}`, 'diff', '--cached', ...DIFF_FORMAT, wt.base, '--'], {
      cwd: wt.dir,
      maxStdout: maxBytes,
      ...signal,
    });
    if (raw.stdoutBytes <= maxBytes && !isUtf8(raw.stdout)) {
      throw new IsolationError(
        'unrepresentable',
        `the change in ${wt.dir} holds text that is not UTF-8 and stays text even when diffed as binary (a .gitattributes \`diff\` setting?); expected a patch that fits a JSON string`,
      );
    }
  }
  const truncated = raw.stdoutBytes > maxBytes;
  const diff = cutUtf8(raw.stdout, maxBytes).toString('utf8');

  const names = await git(['diff', '--cached', '--name-only', '-z', '--no-renames', wt.base, '--'], { cwd: wt.dir, ...signal });
  const files = listingText(names, `\`git diff --name-only\` in ${wt.dir}`)
    .split('\0')
    .filter((f) => f !== '')
    .sort();
  return { base: wt.base, diff, files, bytes: raw.stdoutBytes, truncated };
}

/** One entry of `git worktree list --porcelain`. */
interface ListedWorktree {
  path: string;
  main: boolean;
}

async function listWorktrees(repo: string): Promise<ListedWorktree[]> {
  const r = await git(['worktree', 'list', '--porcelain'], { cwd: repo });
  const out: ListedWorktree[] = [];
  for (const line of listingText(r, `\`git worktree list\` in ${repo}`).split('\n')) {
    // The first entry is always the main worktree (or the bare repository).
    if (line.startsWith('worktree ')) out.push({ path: line.slice('worktree '.length), main: out.length === 0 });
  }
  return out;
}

/** The repository's common git directory (absolute), which holds `worktrees/<id>` for each linked tree. */
async function commonGitDir(repo: string): Promise<string> {
  const r = await git(['rev-parse', '--git-common-dir'], { cwd: repo });
  return realOrResolved(path.resolve(repo, r.stdout.toString('utf8').trim()));
}

/** Whether `dir/.git` is a file pointing into `common/worktrees/`, i.e. `dir` is a linked worktree of this repository. */
async function pointsIntoRepo(dir: string, common: string): Promise<boolean> {
  try {
    const text = await readFile(path.join(dir, '.git'), 'utf8');
    const m = /^gitdir: (.+)$/m.exec(text);
    if (!m?.[1]) return false;
    const target = await realOrResolved(path.resolve(dir, m[1].trim()));
    return isInside(path.join(common, 'worktrees'), target);
  } catch {
    return false;
  }
}

/**
 * Removes the worktree at `dir` of `repo`: `git worktree remove --force --force` (the second force
 * also takes locked trees, such as one a crash left "initializing"), then deletes what is left of
 * the directory, then `git worktree prune`. Never throws for an already-gone worktree, so cleanup
 * can run any number of times. Why the checks before deleting: this is an `rm -rf` with a path that
 * came from a record on disk, so it deletes only a registered linked worktree of `repo` or a
 * directory whose `.git` file points into `repo`'s worktrees, never the main tree or anything else.
 */
export async function removeWorktree(repo: string, dir: string): Promise<void> {
  const target = await realOrResolved(dir);
  const present = await exists(target);
  let listed: ListedWorktree[];
  try {
    listed = await listWorktrees(repo);
  } catch (err) {
    if (!present) return; // nothing on disk and no repository to tidy: already gone
    throw err;
  }
  const resolved = await Promise.all(listed.map(async (w) => ({ ...w, real: await realOrResolved(w.path) })));
  const main = resolved.find((w) => w.main);
  if (main && (target === main.real || isInside(target, main.real))) {
    throw new IsolationError('unsafe_path', `will not remove ${target}: it is or contains the main working tree of ${repo}; expected a linked worktree`);
  }
  const entry = resolved.find((w) => !w.main && (w.real === target || w.path === target));
  let removeSaid = '';
  if (entry) {
    const r = await runGit(['worktree', 'remove', '--force', '--force', entry.path], { cwd: repo });
    if (r.code !== 0) removeSaid = describeExit(r);
  }
  if (await exists(target)) {
    if (!entry && !(await pointsIntoRepo(target, await commonGitDir(repo)))) {
      throw new IsolationError(
        'unsafe_path',
        `will not delete ${target}: expected a linked worktree of ${repo}, but it is not registered and has no \`.git\` file pointing into that repository`,
      );
    }
    // `git worktree remove` refuses trees with submodules and may stop half way: finish the job.
    try {
      await rm(target, { recursive: true, force: true, maxRetries: 3 });
    } catch (err) {
      const also = removeSaid ? ` (\`git worktree remove\` ${removeSaid})` : '';
      throw new IsolationError('git_failed', `could not delete worktree ${target}: ${(err as Error).message}${also}`, { cause: err });
    }
  }
  await git(['worktree', 'prune'], { cwd: repo });
}

/**
 * Removes every registered worktree of `repo` whose path lies under `parentDir`, then prunes, and
 * returns the removed directories. For after a crash: worktrees of attempts that died would
 * otherwise stay registered and on disk forever.
 * Worktrees elsewhere, and the main tree, are left alone. Tries every one before throwing the
 * first failure.
 */
export async function cleanupWorktrees(repo: string, parentDir: string): Promise<string[]> {
  const parents = [...new Set([path.resolve(parentDir), await realOrResolved(parentDir)])];
  const removed: string[] = [];
  let firstError: unknown;
  for (const w of await listWorktrees(repo)) {
    if (w.main) continue;
    const real = await realOrResolved(w.path);
    if (!parents.some((p) => isInside(p, w.path) || isInside(p, real))) continue;
    try {
      await removeWorktree(repo, w.path);
      removed.push(w.path);
    } catch (err) {
      firstError ??= err;
    }
  }
  await git(['worktree', 'prune'], { cwd: repo });
  if (firstError !== undefined) throw firstError;
  return removed;
}

/** Throws an `invalid_argument` IsolationError unless `item` has the shape of a MergeItem. */
function checkItem(item: MergeItem, index: number): void {
  const p = item?.patch as Partial<Patch> | undefined;
  if (typeof item?.ref !== 'string' || !p || typeof p.diff !== 'string' || !Array.isArray(p.files) || typeof p.truncated !== 'boolean') {
    throw new IsolationError('invalid_argument', `expected items[${index}] to be { ref: string, patch: Patch }, got \`${JSON.stringify(item)?.slice(0, 200)}\``);
  }
}

/**
 * Applies the patches to the working tree (not the index) of the repository containing `cwd`, in
 * order, each whole or not at all (`git apply` is atomic). A patch already in the tree counts as
 * `alreadyApplied`, which makes a merge resumable: run it again with the same items after a crash.
 * A conflict leaves the tree untouched for that patch and later patches still get their turn.
 * `onApplied` runs right after each patch lands, so the caller can journal progress; if it throws,
 * so does applyPatches (the patch is in the tree; a rerun finds it already applied).
 * Paths are checked by `git apply` itself, which refuses to write outside the repository or
 * through a symlink.
 */
export async function applyPatches(
  cwd: string,
  items: MergeItem[],
  opts: { onApplied?: (ref: string) => void | Promise<void>; signal?: AbortSignal } = {},
): Promise<MergeResult> {
  items.forEach(checkItem);
  const found = await topLevelOf(cwd, opts.signal);
  if (!('top' in found)) {
    throw new IsolationError('not_a_repo', `merging patches needs a git work tree at ${path.resolve(cwd)}; \`git rev-parse --show-toplevel\` said: ${found.said}`);
  }
  // At the top level: from a subdirectory, `git apply` silently skips paths outside it.
  const top = found.top;
  const signal = opts.signal ? { signal: opts.signal } : {};
  // `--whitespace=nowarn`: a repository's `apply.whitespace=error` must not reject an agent's edit.
  const apply = (extra: string[], diff: string) => runGit(['apply', '--binary', '--whitespace=nowarn', ...extra], { cwd: top, input: diff, ...signal });
  const result: MergeResult = { applied: [], alreadyApplied: [], empty: [], conflicts: [] };
  for (const { ref, patch } of items) {
    opts.signal?.throwIfAborted();
    // Truncated before empty: a patch cut at a cap of 0 has an empty diff but is not "no change".
    if (patch.truncated) {
      result.conflicts.push({
        ref,
        files: [...patch.files],
        message: `the patch was cut at its size cap (${Buffer.byteLength(patch.diff)} of ${patch.bytes} bytes kept) and must be applied by hand from the agent's worktree or output`,
      });
      continue;
    }
    if (patch.diff === '') {
      result.empty.push(ref);
      continue;
    }
    const check = await apply(['--check'], patch.diff);
    if (check.code === 0) {
      const done = await apply([], patch.diff);
      if (done.code !== 0) {
        result.conflicts.push({ ref, files: [...patch.files], message: bound(describeExit(done)) });
        continue;
      }
      result.applied.push(ref);
      await opts.onApplied?.(ref);
      continue;
    }
    const reverse = await apply(['--check', '--reverse'], patch.diff);
    if (reverse.code === 0) result.alreadyApplied.push(ref);
    else result.conflicts.push({ ref, files: [...patch.files], message: bound(check.stderr || describeExit(check)) });
  }
  return result;
}

/** At most MAX_CONFLICT_MESSAGE characters, marked when cut. */
function bound(text: string): string {
  return text.length <= MAX_CONFLICT_MESSAGE ? text : `${text.slice(0, MAX_CONFLICT_MESSAGE - 1)}…`;
}
