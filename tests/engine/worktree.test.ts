/**
 * Worktree isolation against real git in real temp directories: create, collect a patch, merge
 * the patches in order, resume a merge, clean up after a crash. Every repository configures its
 * own identity, so nothing depends on the machine's global git config.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  IsolationError,
  applyPatches,
  cleanupWorktrees,
  collectPatch,
  createWorktree,
  gitTopLevel,
  removeWorktree,
  type MergeItem,
  type Patch,
  type Worktree,
} from '../../src/engine/worktree.js';

const temps: string[] = [];

afterEach(() => {
  for (const dir of temps.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh temp directory (realpath: macOS' /var is a symlink), removed after the test. */
function tempDir(): string {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'fanfold-wt-')));
  temps.push(dir);
  return dir;
}

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } });
}

/** A repository with its own identity and the given files, committed once (unless `commit: false`). */
function makeRepo(files: Record<string, string | Buffer> = { 'a.txt': 'one\ntwo\nthree\n' }, commit = true): string {
  const repo = path.join(tempDir(), 'repo');
  fs.mkdirSync(repo);
  git(repo, 'init', '-q');
  git(repo, 'config', 'user.name', 'Fanfold Test');
  git(repo, 'config', 'user.email', 'test@fanfold.invalid');
  git(repo, 'config', 'commit.gpgsign', 'false');
  git(repo, 'config', 'core.autocrlf', 'false');
  for (const [name, content] of Object.entries(files)) write(repo, name, content);
  if (commit) {
    git(repo, 'add', '-A');
    git(repo, 'commit', '-q', '-m', 'initial');
  }
  return repo;
}

function write(root: string, name: string, content: string | Buffer): void {
  const file = path.join(root, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
}

function read(root: string, name: string): string {
  return fs.readFileSync(path.join(root, name), 'utf8');
}

/** A new worktree for `repo` under `<tmp>/wts/<name>`. */
async function worktree(repo: string, name: string, cwd = repo): Promise<Worktree> {
  return createWorktree({ cwd, dir: path.join(path.dirname(repo), 'wts', name) });
}

/** An isolated attempt: worktree, edit, patch. */
async function attempt(repo: string, name: string, edit: (dir: string) => void): Promise<Patch> {
  const wt = await worktree(repo, name);
  edit(wt.dir);
  return collectPatch(wt);
}

function listedWorktrees(repo: string): string[] {
  return git(repo, 'worktree', 'list', '--porcelain')
    .split('\n')
    .filter((l) => l.startsWith('worktree '))
    .map((l) => l.slice('worktree '.length));
}

async function rejection(p: Promise<unknown>): Promise<IsolationError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(IsolationError);
  return err as IsolationError;
}

describe('createWorktree', () => {
  it("makes and removes many worktrees of one repository at once (git's worktree administration is not safe against itself)", async () => {
    const repo = makeRepo();
    const names = Array.from({ length: 12 }, (_, i) => `w${i}`);
    const made = await Promise.all(names.map((n) => worktree(repo, n)));
    for (const wt of made) expect(read(wt.dir, 'a.txt')).toBe('one\ntwo\nthree\n');
    await Promise.all(made.map((wt) => removeWorktree(repo, wt.dir)));
    for (const wt of made) expect(fs.existsSync(wt.dir)).toBe(false);
    expect(git(repo, 'worktree', 'list', '--porcelain').match(/^worktree /gm)).toHaveLength(1);
  });

  it('checks out HEAD in a detached worktree; edits there leave the main tree alone', async () => {
    const repo = makeRepo({ 'a.txt': 'one\n', 'src/b.txt': 'bee\n' });
    const head = git(repo, 'rev-parse', 'HEAD').trim();
    const wt = await worktree(repo, 'w1');

    expect(wt).toEqual({ repo, dir: path.join(path.dirname(repo), 'wts', 'w1'), base: head, cwd: wt.dir });
    expect(read(wt.dir, 'src/b.txt')).toBe('bee\n');
    expect(git(wt.dir, 'rev-parse', 'HEAD').trim()).toBe(head);
    expect(git(wt.dir, 'rev-parse', '--abbrev-ref', 'HEAD').trim()).toBe('HEAD'); // detached: no branch taken
    expect(listedWorktrees(repo)).toContain(wt.dir);

    write(wt.dir, 'a.txt', 'changed\n');
    write(wt.dir, 'new.txt', 'new\n');
    fs.rmSync(path.join(wt.dir, 'src/b.txt'));
    expect(read(repo, 'a.txt')).toBe('one\n');
    expect(fs.existsSync(path.join(repo, 'new.txt'))).toBe(false);
    expect(read(repo, 'src/b.txt')).toBe('bee\n');
    expect(git(repo, 'status', '--porcelain')).toBe('');
  });

  it('maps the caller subdirectory to the same subdirectory of the worktree', async () => {
    const repo = makeRepo({ 'pkg/sub/x.txt': 'x\n' });
    const wt = await createWorktree({ cwd: path.join(repo, 'pkg', 'sub'), dir: path.join(path.dirname(repo), 'wts', 'w') });
    expect(wt.repo).toBe(repo);
    expect(wt.cwd).toBe(path.join(wt.dir, 'pkg', 'sub'));
    expect(read(wt.cwd, 'x.txt')).toBe('x\n');
  });

  it('creates the mapped subdirectory when git does not track it (an untracked or empty folder)', async () => {
    const repo = makeRepo();
    fs.mkdirSync(path.join(repo, 'scratch', 'deep'), { recursive: true });
    const wt = await createWorktree({ cwd: path.join(repo, 'scratch', 'deep'), dir: path.join(path.dirname(repo), 'wts', 'w') });
    expect(wt.cwd).toBe(path.join(wt.dir, 'scratch', 'deep'));
    expect(fs.statSync(wt.cwd).isDirectory()).toBe(true);
    expect((await collectPatch(wt)).diff).toBe(''); // an empty folder is no change
  });

  it('creates missing parents of dir and registers the realpath when the parent is reached through a symlink', async () => {
    const repo = makeRepo();
    const real = path.join(path.dirname(repo), 'real');
    fs.mkdirSync(real);
    const link = path.join(path.dirname(repo), 'link');
    fs.symlinkSync(real, link);
    const wt = await createWorktree({ cwd: repo, dir: path.join(link, 'a', 'b', 'w') });
    expect(wt.dir).toBe(path.join(real, 'a', 'b', 'w'));
    expect(listedWorktrees(repo)).toContain(wt.dir);
  });

  it('resolves the repository from a symlinked cwd', async () => {
    const repo = makeRepo({ 'pkg/x.txt': 'x\n' });
    const link = path.join(path.dirname(repo), 'repo-link');
    fs.symlinkSync(repo, link);
    const wt = await createWorktree({ cwd: path.join(link, 'pkg'), dir: path.join(path.dirname(repo), 'wts', 'w') });
    expect(wt.repo).toBe(repo);
    expect(wt.cwd).toBe(path.join(wt.dir, 'pkg'));
  });

  it('refuses a directory outside any repository, naming the path and what git said', async () => {
    const dir = tempDir();
    const err = await rejection(createWorktree({ cwd: dir, dir: path.join(dir, 'wts', 'w') }));
    expect(err.code).toBe('not_a_repo');
    expect(err.message).toContain(`isolation: worktree needs a git repository at ${dir}`);
    expect(err.message).toMatch(/not a git repository/i);
    expect(fs.existsSync(path.join(dir, 'wts'))).toBe(false);
  });

  it('refuses a cwd that does not exist, naming it', async () => {
    const missing = path.join(tempDir(), 'nope');
    const err = await rejection(createWorktree({ cwd: missing, dir: path.join(path.dirname(missing), 'w') }));
    expect(err.code).toBe('not_a_repo');
    expect(err.message).toContain(`${missing} is not an existing directory`);
  });

  it('refuses a repository without a commit', async () => {
    const repo = makeRepo({ 'a.txt': 'a\n' }, false);
    const err = await rejection(createWorktree({ cwd: repo, dir: path.join(path.dirname(repo), 'wts', 'w') }));
    expect(err.code).toBe('no_commit');
    expect(err.message).toContain(`isolation: worktree needs a git repository with at least one commit at ${repo}`);
    expect(err.message).toContain('`git rev-parse HEAD` said:');
  });

  it('refuses a target that already holds files, with git’s own words', async () => {
    const repo = makeRepo();
    const dir = path.join(path.dirname(repo), 'busy');
    write(dir, 'keep.txt', 'mine\n');
    const err = await rejection(createWorktree({ cwd: repo, dir }));
    expect(err.code).toBe('git_failed');
    expect(err.message).toContain('git worktree add --detach');
    expect(err.message).toContain('already exists');
    expect(read(dir, 'keep.txt')).toBe('mine\n');
  });

  it('refuses to put a worktree on top of the repository itself', async () => {
    const repo = makeRepo();
    const err = await rejection(createWorktree({ cwd: repo, dir: repo }));
    expect(err.code).toBe('invalid_argument');
  });

  it('ignores GIT_DIR and GIT_WORK_TREE inherited from a parent (e.g. a git hook)', async () => {
    const repo = makeRepo();
    const other = makeRepo({ 'other.txt': 'other\n' });
    const saved = { dir: process.env.GIT_DIR, tree: process.env.GIT_WORK_TREE };
    process.env.GIT_DIR = path.join(other, '.git');
    process.env.GIT_WORK_TREE = other;
    try {
      const wt = await worktree(repo, 'w');
      expect(wt.repo).toBe(repo);
      expect(fs.existsSync(path.join(wt.dir, 'a.txt'))).toBe(true);
    } finally {
      if (saved.dir === undefined) delete process.env.GIT_DIR;
      else process.env.GIT_DIR = saved.dir;
      if (saved.tree === undefined) delete process.env.GIT_WORK_TREE;
      else process.env.GIT_WORK_TREE = saved.tree;
    }
  });
});

describe('gitTopLevel', () => {
  it('returns the realpath of the top level from any subdirectory', async () => {
    const repo = makeRepo({ 'pkg/x.txt': 'x\n' });
    expect(await gitTopLevel(path.join(repo, 'pkg'))).toBe(repo);
    expect(await gitTopLevel(repo)).toBe(repo);
  });

  it('returns undefined outside a work tree, inside .git, and for a missing directory', async () => {
    const repo = makeRepo();
    expect(await gitTopLevel(tempDir())).toBeUndefined();
    expect(await gitTopLevel(path.join(repo, '.git'))).toBeUndefined();
    expect(await gitTopLevel(path.join(repo, 'missing'))).toBeUndefined();
  });
});

describe('collectPatch', () => {
  it('captures modified, new, deleted, binary and mode changes, and the patch recreates them byte for byte', async () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 1, 2, 3, 255, 254, 0]);
    const repo = makeRepo({ 'a.txt': 'one\ntwo\nthree\n', 'gone.txt': 'bye\n', 'img.bin': png, 'run.sh': 'echo hi\n' });
    const wt = await worktree(repo, 'w');
    write(wt.dir, 'a.txt', 'one\nTWO\nthree\n');
    write(wt.dir, 'dir with space/new file.txt', 'fresh\n');
    write(wt.dir, 'ünïcødé.txt', 'ü\n');
    fs.rmSync(path.join(wt.dir, 'gone.txt'));
    const newPng = Buffer.concat([png, Buffer.from([9, 8, 7, 0, 0, 0])]);
    write(wt.dir, 'img.bin', newPng);
    write(wt.dir, 'new.bin', Buffer.from([0, 0, 1, 2, 255]));
    fs.chmodSync(path.join(wt.dir, 'run.sh'), 0o755);

    const patch = await collectPatch(wt);
    expect(patch.base).toBe(wt.base);
    expect(patch.files).toEqual(['a.txt', 'dir with space/new file.txt', 'gone.txt', 'img.bin', 'new.bin', 'run.sh', 'ünïcødé.txt'].sort());
    expect(patch.truncated).toBe(false);
    expect(patch.bytes).toBe(Buffer.byteLength(patch.diff));
    expect(patch.diff).toContain('GIT binary patch');
    expect(patch.diff).toContain('diff --git a/a.txt b/a.txt');
    expect(patch.diff).toContain('+TWO');

    const result = await applyPatches(repo, [{ ref: 'r/p/t', patch }]);
    expect(result).toEqual({ applied: ['r/p/t'], alreadyApplied: [], empty: [], conflicts: [] });
    expect(read(repo, 'a.txt')).toBe('one\nTWO\nthree\n');
    expect(read(repo, 'dir with space/new file.txt')).toBe('fresh\n');
    expect(read(repo, 'ünïcødé.txt')).toBe('ü\n');
    expect(fs.existsSync(path.join(repo, 'gone.txt'))).toBe(false);
    expect(fs.readFileSync(path.join(repo, 'img.bin'))).toEqual(newPng);
    expect(fs.readFileSync(path.join(repo, 'new.bin'))).toEqual(Buffer.from([0, 0, 1, 2, 255]));
    expect(fs.statSync(path.join(repo, 'run.sh')).mode & 0o111).not.toBe(0);
  });

  it('keeps diff paths relative to the repository root when the agent worked in a subdirectory', async () => {
    const repo = makeRepo({ 'pkg/x.txt': 'x\n' });
    const wt = await createWorktree({ cwd: path.join(repo, 'pkg'), dir: path.join(path.dirname(repo), 'wts', 'w') });
    write(wt.cwd, 'x.txt', 'y\n');
    const patch = await collectPatch(wt);
    expect(patch.files).toEqual(['pkg/x.txt']);
    expect(patch.diff).toContain('diff --git a/pkg/x.txt b/pkg/x.txt');
    // and it applies from a subdirectory of the main tree as well
    await applyPatches(path.join(repo, 'pkg'), [{ ref: 't', patch }]);
    expect(read(repo, 'pkg/x.txt')).toBe('y\n');
  });

  it('captures commits the agent made in the worktree, plus what it left uncommitted', async () => {
    const repo = makeRepo();
    const wt = await worktree(repo, 'w');
    write(wt.dir, 'committed.txt', 'c\n');
    git(wt.dir, 'add', '-A');
    git(wt.dir, 'commit', '-q', '-m', 'agent commit');
    write(wt.dir, 'loose.txt', 'l\n');
    const patch = await collectPatch(wt);
    expect(patch.files).toEqual(['committed.txt', 'loose.txt']);
    await applyPatches(repo, [{ ref: 't', patch }]);
    expect(read(repo, 'committed.txt')).toBe('c\n');
    expect(read(repo, 'loose.txt')).toBe('l\n');
    expect(git(repo, 'log', '--format=%s')).toBe('initial\n'); // the main branch gets no commit
  });

  it('returns an empty patch when nothing changed, including changes the agent undid', async () => {
    const repo = makeRepo();
    const wt = await worktree(repo, 'w');
    expect(await collectPatch(wt)).toEqual({ base: wt.base, diff: '', files: [], bytes: 0, truncated: false });
    write(wt.dir, 'a.txt', 'other\n');
    write(wt.dir, 'a.txt', 'one\ntwo\nthree\n');
    expect(await collectPatch(wt)).toEqual({ base: wt.base, diff: '', files: [], bytes: 0, truncated: false });
  });

  it('leaves ignored files out of the patch', async () => {
    const repo = makeRepo({ '.gitignore': 'build/\n', 'a.txt': 'a\n' });
    const wt = await worktree(repo, 'w');
    write(wt.dir, 'build/out.js', 'generated\n');
    write(wt.dir, 'a.txt', 'b\n');
    expect((await collectPatch(wt)).files).toEqual(['a.txt']);
  });

  it('carries text that is not UTF-8 as binary hunks, so it survives JSON byte for byte', async () => {
    const latin1Old = Buffer.from('caf\xe9\nna\xefve\n', 'latin1');
    const repo = makeRepo({ 'old.txt': latin1Old });
    const wt = await worktree(repo, 'w');
    const latin1New = Buffer.from('fa\xe7ade\n\xa9 2024\n', 'latin1');
    const latin1Edit = Buffer.from('caf\xe9\nna\xefve\n\xfcber\n', 'latin1');
    write(wt.dir, 'new.txt', latin1New);
    write(wt.dir, 'old.txt', latin1Edit);
    write(wt.dir, 'plain.txt', 'plain\n');

    const patch = await collectPatch(wt);
    expect(patch.diff).not.toContain('\ufffd');
    expect(patch.diff).toContain('GIT binary patch');
    expect(patch.files).toEqual(['new.txt', 'old.txt', 'plain.txt']);
    const stored: Patch = JSON.parse(JSON.stringify(patch));
    const result = await applyPatches(repo, [{ ref: 't', patch: stored }]);
    expect(result.applied).toEqual(['t']);
    expect(fs.readFileSync(path.join(repo, 'new.txt'))).toEqual(latin1New);
    expect(fs.readFileSync(path.join(repo, 'old.txt'))).toEqual(latin1Edit);
    expect(read(repo, 'plain.txt')).toBe('plain\n');
  });

  it('writes patches git apply reads whatever the repository config says about diffs', async () => {
    const repo = makeRepo({ 'a.txt': 'one\ntwo  \nthree\n' });
    for (const [key, value] of [
      ['diff.noprefix', 'true'],
      ['diff.mnemonicPrefix', 'true'],
      ['diff.context', '0'],
      ['diff.renames', 'copies'],
      ['diff.external', 'false'],
      ['color.ui', 'always'],
      ['apply.whitespace', 'error'],
    ] as const) {
      git(repo, 'config', key, value);
    }
    const patch = await attempt(repo, 'w', (dir) => {
      write(dir, 'a.txt', 'one\ntwo  \nthree   \n'); // adds trailing whitespace
      fs.renameSync(path.join(dir, 'a.txt'), path.join(dir, 'b.txt'));
    });
    expect(patch.diff).not.toContain('\x1b[');
    expect(patch.files).toEqual(['a.txt', 'b.txt']);
    const result = await applyPatches(repo, [{ ref: 't', patch }]);
    expect(result.applied).toEqual(['t']);
    expect(read(repo, 'b.txt')).toBe('one\ntwo  \nthree   \n');
    expect(fs.existsSync(path.join(repo, 'a.txt'))).toBe(false);
  });

  it('cuts a diff over maxBytes, keeps its full size, and never splits a character', async () => {
    const repo = makeRepo();
    const wt = await worktree(repo, 'w');
    write(wt.dir, 'big.txt', 'éééééééééé\n'.repeat(500));
    const full = await collectPatch(wt);
    const patch = await collectPatch(wt, { maxBytes: 101 });
    expect(patch.truncated).toBe(true);
    expect(patch.bytes).toBe(full.bytes);
    expect(Buffer.byteLength(patch.diff)).toBeLessThanOrEqual(101);
    expect(Buffer.byteLength(patch.diff)).toBeGreaterThan(90);
    expect(patch.diff).not.toContain('\ufffd');
    expect(full.diff.startsWith(patch.diff)).toBe(true);
    expect(patch.files).toEqual(['big.txt']);
  });

  it('is not truncated when the diff is exactly maxBytes', async () => {
    const repo = makeRepo();
    const wt = await worktree(repo, 'w');
    write(wt.dir, 'a.txt', 'changed\n');
    const full = await collectPatch(wt);
    const exact = await collectPatch(wt, { maxBytes: full.bytes });
    expect(exact).toEqual(full);
    expect((await collectPatch(wt, { maxBytes: full.bytes - 1 })).truncated).toBe(true);
  });

  it('rejects a bad maxBytes and a base that is not a sha', async () => {
    const repo = makeRepo();
    const wt = await worktree(repo, 'w');
    for (const maxBytes of [-1, 1.5, Number.NaN]) {
      const err = await rejection(collectPatch(wt, { maxBytes }));
      expect(err.message).toContain('expected `maxBytes` to be a non-negative integer, got');
    }
    const err = await rejection(collectPatch({ ...wt, base: '--output=/tmp/x' }));
    expect(err.code).toBe('invalid_argument');
    expect(err.message).toContain('`--output=/tmp/x`');
  });

  it('names the worktree and git’s complaint when the worktree is gone', async () => {
    const repo = makeRepo();
    const wt = await worktree(repo, 'w');
    fs.rmSync(wt.dir, { recursive: true });
    const err = await rejection(collectPatch(wt));
    expect(err.message).toContain(wt.dir);
  });
});

describe('applyPatches', () => {
  it('applies non-conflicting patches in order, to the working tree only, calling onApplied after each', async () => {
    const repo = makeRepo({ 'a.txt': 'a1\na2\na3\n', 'b.txt': 'b1\nb2\nb3\n' });
    const p1 = await attempt(repo, 'w1', (d) => write(d, 'a.txt', 'a1\nA2\na3\n'));
    const p2 = await attempt(repo, 'w2', (d) => {
      write(d, 'b.txt', 'b1\nb2\nB3\n');
      write(d, 'c.txt', 'c\n');
    });
    const seen: string[] = [];
    const result = await applyPatches(repo, [{ ref: 'run/edit/one', patch: p1 }, { ref: 'run/edit/two', patch: p2 }], {
      onApplied: async (ref) => {
        seen.push(`${ref}:${read(repo, ref.endsWith('one') ? 'a.txt' : 'b.txt')}`);
      },
    });
    expect(result).toEqual({ applied: ['run/edit/one', 'run/edit/two'], alreadyApplied: [], empty: [], conflicts: [] });
    expect(seen).toEqual(['run/edit/one:a1\nA2\na3\n', 'run/edit/two:b1\nb2\nB3\n']);
    expect(read(repo, 'a.txt')).toBe('a1\nA2\na3\n');
    expect(read(repo, 'b.txt')).toBe('b1\nb2\nB3\n');
    expect(read(repo, 'c.txt')).toBe('c\n');
    expect(git(repo, 'diff', '--cached', '--name-only')).toBe(''); // index untouched
    expect(git(repo, 'status', '--porcelain').split('\n').filter(Boolean).sort()).toEqual([' M a.txt', ' M b.txt', '?? c.txt']);
  });

  it('reports a same-line edit as a conflict, keeps the first change only, and still applies later patches', async () => {
    const repo = makeRepo({ 'a.txt': 'one\ntwo\nthree\n', 'z.txt': 'z\n' });
    const first = await attempt(repo, 'w1', (d) => write(d, 'a.txt', 'one\nFIRST\nthree\n'));
    const second = await attempt(repo, 'w2', (d) => write(d, 'a.txt', 'one\nSECOND\nthree\n'));
    const third = await attempt(repo, 'w3', (d) => write(d, 'z.txt', 'zz\n'));
    const applied: string[] = [];
    const result = await applyPatches(
      repo,
      [
        { ref: 'first', patch: first },
        { ref: 'second', patch: second },
        { ref: 'third', patch: third },
      ],
      { onApplied: (ref) => void applied.push(ref) },
    );
    expect(result.applied).toEqual(['first', 'third']);
    expect(applied).toEqual(['first', 'third']);
    expect(result.alreadyApplied).toEqual([]);
    expect(result.conflicts).toHaveLength(1);
    expect(result.conflicts[0]?.ref).toBe('second');
    expect(result.conflicts[0]?.files).toEqual(['a.txt']);
    expect(result.conflicts[0]?.message).toMatch(/a\.txt/);
    expect(result.conflicts[0]?.message.length).toBeGreaterThan(0);
    expect(result.conflicts[0]?.message.length).toBeLessThanOrEqual(2000);
    expect(read(repo, 'a.txt')).toBe('one\nFIRST\nthree\n');
    expect(read(repo, 'z.txt')).toBe('zz\n');
  });

  it('leaves every file of a conflicting patch untouched, even the ones that would apply', async () => {
    const repo = makeRepo({ 'a.txt': 'a\n', 'b.txt': 'b\n' });
    const both = await attempt(repo, 'w', (d) => {
      write(d, 'a.txt', 'A\n');
      write(d, 'b.txt', 'B\n');
    });
    write(repo, 'b.txt', 'local edit\n');
    const result = await applyPatches(repo, [{ ref: 't', patch: both }]);
    expect(result.conflicts.map((c) => c.ref)).toEqual(['t']);
    expect(read(repo, 'a.txt')).toBe('a\n');
    expect(read(repo, 'b.txt')).toBe('local edit\n');
  });

  it('finds every patch already applied when the same merge runs again (resume after a crash)', async () => {
    const repo = makeRepo({ 'a.txt': 'a1\na2\na3\n', 'gone.txt': 'g\n' });
    const items: MergeItem[] = [
      { ref: 'one', patch: await attempt(repo, 'w1', (d) => write(d, 'a.txt', 'a1\nA2\na3\n')) },
      { ref: 'two', patch: await attempt(repo, 'w2', (d) => write(d, 'new.txt', 'n\n')) },
      { ref: 'three', patch: await attempt(repo, 'w3', (d) => fs.rmSync(path.join(d, 'gone.txt'))) },
      { ref: 'four', patch: await attempt(repo, 'w4', () => {}) },
    ];
    const first = await applyPatches(repo, items);
    expect(first).toEqual({ applied: ['one', 'two', 'three'], alreadyApplied: [], empty: ['four'], conflicts: [] });
    const again = await applyPatches(repo, items);
    expect(again).toEqual({ applied: [], alreadyApplied: ['one', 'two', 'three'], empty: ['four'], conflicts: [] });
    expect(read(repo, 'a.txt')).toBe('a1\nA2\na3\n');
  });

  it('resumes a merge that stopped half way: the applied half is recognised, the rest applied', async () => {
    const repo = makeRepo({ 'a.txt': 'a\n', 'b.txt': 'b\n' });
    const items: MergeItem[] = [
      { ref: 'one', patch: await attempt(repo, 'w1', (d) => write(d, 'a.txt', 'A\n')) },
      { ref: 'two', patch: await attempt(repo, 'w2', (d) => write(d, 'b.txt', 'B\n')) },
    ];
    await expect(
      applyPatches(repo, items, {
        onApplied: () => {
          throw new Error('journal write failed');
        },
      }),
    ).rejects.toThrow('journal write failed');
    expect(read(repo, 'b.txt')).toBe('b\n');
    const resumed = await applyPatches(repo, items);
    expect(resumed).toEqual({ applied: ['two'], alreadyApplied: ['one'], empty: [], conflicts: [] });
  });

  it('reports a truncated patch as a conflict and does not touch the tree', async () => {
    const repo = makeRepo();
    const patch = await attempt(repo, 'w', (d) => {
      write(d, 'a.txt', 'x\n'.repeat(200));
      write(d, 'b.txt', 'b\n');
    });
    const wt2 = await worktree(repo, 'w2');
    write(wt2.dir, 'a.txt', 'x\n'.repeat(200));
    const cut = await collectPatch(wt2, { maxBytes: 64 });
    expect(patch.truncated).toBe(false);
    expect(cut.truncated).toBe(true);
    const before = git(repo, 'status', '--porcelain');
    const result = await applyPatches(repo, [{ ref: 'big', patch: cut }]);
    expect(result.applied).toEqual([]);
    expect(result.conflicts).toEqual([{ ref: 'big', files: ['a.txt'], message: expect.stringContaining('cut at its size cap') }]);
    expect(result.conflicts[0]?.message).toContain('applied by hand');
    expect(git(repo, 'status', '--porcelain')).toBe(before);
    expect(read(repo, 'a.txt')).toBe('one\ntwo\nthree\n');
  });

  it('treats a patch truncated to nothing (maxBytes 0) as a conflict, not as no change', async () => {
    const repo = makeRepo();
    const patch = await attempt(repo, 'w', (d) => write(d, 'a.txt', 'x\n'));
    const cut: Patch = { ...patch, diff: '', truncated: true };
    const result = await applyPatches(repo, [{ ref: 't', patch: cut }]);
    expect(result.empty).toEqual([]);
    expect(result.conflicts.map((c) => c.ref)).toEqual(['t']);
  });

  it('reports a corrupt diff as a conflict with git’s message', async () => {
    const repo = makeRepo();
    const patch: Patch = { base: 'x', diff: 'this is not a patch\n', files: ['a.txt'], bytes: 20, truncated: false };
    const result = await applyPatches(repo, [{ ref: 't', patch }]);
    expect(result.conflicts).toHaveLength(1);
    expect(result.conflicts[0]?.message.length).toBeGreaterThan(0);
  });

  it('refuses a patch that would write outside the repository', async () => {
    const repo = makeRepo();
    const diff = 'diff --git a/../escape.txt b/../escape.txt\nnew file mode 100644\n--- /dev/null\n+++ b/../escape.txt\n@@ -0,0 +1 @@\n+x\n';
    const result = await applyPatches(repo, [{ ref: 't', patch: { base: 'x', diff, files: ['../escape.txt'], bytes: diff.length, truncated: false } }]);
    expect(result.conflicts.map((c) => c.ref)).toEqual(['t']);
    expect(fs.existsSync(path.join(path.dirname(repo), 'escape.txt'))).toBe(false);
  });

  it('bounds a long git message to 2000 characters', async () => {
    const repo = makeRepo();
    const files = Array.from({ length: 300 }, (_, i) => `missing-${i}-${'x'.repeat(20)}.txt`);
    const diff = files.map((f) => `diff --git a/${f} b/${f}\n--- a/${f}\n+++ b/${f}\n@@ -1 +1 @@\n-a\n+b\n`).join('');
    const result = await applyPatches(repo, [{ ref: 't', patch: { base: 'x', diff, files, bytes: diff.length, truncated: false } }]);
    expect(result.conflicts[0]?.message.length).toBeLessThanOrEqual(2000);
    expect(result.conflicts[0]?.message.length).toBeGreaterThan(100);
  });

  it('refuses a cwd outside a repository and malformed items, naming them', async () => {
    const dir = tempDir();
    const err = await rejection(applyPatches(dir, []));
    expect(err.code).toBe('not_a_repo');
    expect(err.message).toContain(dir);
    const repo = makeRepo();
    const bad = await rejection(applyPatches(repo, [{ ref: 'x', patch: { diff: 3 } } as unknown as MergeItem]));
    expect(bad.code).toBe('invalid_argument');
    expect(bad.message).toContain('items[0]');
  });

  it('stops between patches when aborted', async () => {
    const repo = makeRepo();
    const patch = await attempt(repo, 'w', (d) => write(d, 'a.txt', 'x\n'));
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await expect(applyPatches(repo, [{ ref: 't', patch }], { signal: controller.signal })).rejects.toThrow('stop');
    expect(read(repo, 'a.txt')).toBe('one\ntwo\nthree\n');
  });
});

describe('removeWorktree and cleanupWorktrees', () => {
  it('removes a worktree with uncommitted and untracked changes, and unregisters it', async () => {
    const repo = makeRepo();
    const wt = await worktree(repo, 'w');
    write(wt.dir, 'a.txt', 'dirty\n');
    write(wt.dir, 'untracked.txt', 'u\n');
    await removeWorktree(repo, wt.dir);
    expect(fs.existsSync(wt.dir)).toBe(false);
    expect(listedWorktrees(repo)).toEqual([repo]);
    expect(read(repo, 'a.txt')).toBe('one\ntwo\nthree\n');
  });

  it('does not throw for a missing directory, a worktree deleted behind git’s back, or a second call', async () => {
    const repo = makeRepo();
    await removeWorktree(repo, path.join(path.dirname(repo), 'never-existed'));
    const wt = await worktree(repo, 'w');
    fs.rmSync(wt.dir, { recursive: true });
    await removeWorktree(repo, wt.dir);
    expect(listedWorktrees(repo)).toEqual([repo]);
    await removeWorktree(repo, wt.dir);
  });

  it('removes a locked worktree (a crash during `git worktree add` leaves it locked)', async () => {
    const repo = makeRepo();
    const wt = await worktree(repo, 'w');
    git(repo, 'worktree', 'lock', '--reason', 'initializing', wt.dir);
    await removeWorktree(repo, wt.dir);
    expect(fs.existsSync(wt.dir)).toBe(false);
    expect(listedWorktrees(repo)).toEqual([repo]);
  });

  it('deletes the remains of a worktree whose registration is gone but whose .git file points into the repository', async () => {
    const repo = makeRepo();
    const wt = await worktree(repo, 'w');
    const gitFile = read(wt.dir, '.git');
    const wtGitDir = gitFile.replace(/^gitdir: /, '').trim();
    // Simulate a half-finished removal: the registration is gone, the checkout is not.
    fs.rmSync(wtGitDir, { recursive: true });
    expect(listedWorktrees(repo)).toEqual([repo]);
    await removeWorktree(repo, wt.dir);
    expect(fs.existsSync(wt.dir)).toBe(false);
  });

  it('refuses to delete the main tree, a directory containing it, or a folder that is not a worktree', async () => {
    const repo = makeRepo();
    const mainErr = await rejection(removeWorktree(repo, repo));
    expect(mainErr.code).toBe('unsafe_path');
    expect(mainErr.message).toContain('main working tree');
    expect(fs.existsSync(path.join(repo, 'a.txt'))).toBe(true);

    const parentErr = await rejection(removeWorktree(repo, path.dirname(repo)));
    expect(parentErr.code).toBe('unsafe_path');
    expect(fs.existsSync(path.join(repo, 'a.txt'))).toBe(true);

    const plain = path.join(path.dirname(repo), 'precious');
    write(plain, 'data.txt', 'keep me\n');
    const plainErr = await rejection(removeWorktree(repo, plain));
    expect(plainErr.code).toBe('unsafe_path');
    expect(plainErr.message).toContain(`will not delete ${plain}`);
    expect(read(plain, 'data.txt')).toBe('keep me\n');

    // A worktree of another repository is not ours to delete either.
    const other = makeRepo();
    const foreign = await worktree(other, 'foreign');
    const foreignErr = await rejection(removeWorktree(repo, foreign.dir));
    expect(foreignErr.code).toBe('unsafe_path');
    expect(listedWorktrees(other)).toContain(foreign.dir);
  });

  it('cleanupWorktrees removes every leftover under the parent dir and nothing else', async () => {
    const repo = makeRepo();
    const parent = path.join(path.dirname(repo), 'run', 'worktrees');
    const a = await createWorktree({ cwd: repo, dir: path.join(parent, 'a') });
    const b = await createWorktree({ cwd: repo, dir: path.join(parent, 'nested', 'b') });
    const c = await createWorktree({ cwd: repo, dir: path.join(parent, 'c') });
    fs.rmSync(c.dir, { recursive: true }); // already gone on disk, still registered
    write(a.dir, 'a.txt', 'dirty\n');
    const keep = await createWorktree({ cwd: repo, dir: path.join(path.dirname(repo), 'run', 'worktrees-other', 'k') });

    const removed = await cleanupWorktrees(repo, parent);
    expect(removed.sort()).toEqual([a.dir, b.dir, c.dir].sort());
    const porcelain = git(repo, 'worktree', 'list', '--porcelain');
    for (const dir of [a.dir, b.dir, c.dir]) {
      expect(porcelain).not.toContain(`worktree ${dir}\n`);
      expect(fs.existsSync(dir)).toBe(false);
    }
    expect(listedWorktrees(repo)).toEqual([repo, keep.dir]);
    expect(fs.existsSync(keep.dir)).toBe(true);
    expect(await cleanupWorktrees(repo, parent)).toEqual([]);
  });

  it('cleanupWorktrees accepts a parent reached through a symlink, and a parent that does not exist', async () => {
    const repo = makeRepo();
    const parent = path.join(path.dirname(repo), 'wts');
    const wt = await createWorktree({ cwd: repo, dir: path.join(parent, 'x') });
    const link = path.join(path.dirname(repo), 'wts-link');
    fs.symlinkSync(parent, link);
    expect(await cleanupWorktrees(repo, link)).toEqual([wt.dir]);
    expect(await cleanupWorktrees(repo, path.join(path.dirname(repo), 'nothing-here'))).toEqual([]);
    expect(listedWorktrees(repo)).toEqual([repo]);
  });

  it('cleanupWorktrees never removes the main tree, even when the parent contains it', async () => {
    const repo = makeRepo();
    const wt = await worktree(repo, 'w');
    const removed = await cleanupWorktrees(repo, path.dirname(repo));
    expect(removed).toEqual([wt.dir]);
    expect(read(repo, 'a.txt')).toBe('one\ntwo\nthree\n');
    expect(listedWorktrees(repo)).toEqual([repo]);
  });
});
