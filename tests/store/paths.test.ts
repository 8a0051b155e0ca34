import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs/promises';
import fss from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { DEFAULT_STORE_DIR, SafeRoot, isInside, resolveStoreRoot, safeJoin, safeJoinReal } from '../../src/store/paths.js';
import { StoreError, type StoreErrorCode } from '../../src/store/errors.js';
import { cleanupTmp, tmpDir } from './helpers.js';

afterAll(cleanupTmp);

/** Runs both the sync and the async join and checks they agree. */
async function both(root: string, ...segs: string[]): Promise<string> {
  let syncResult: string | StoreError;
  try {
    syncResult = safeJoin(root, ...segs);
  } catch (err) {
    syncResult = err as StoreError;
  }
  let asyncResult: string | StoreError;
  try {
    asyncResult = await safeJoinReal(root, ...segs);
  } catch (err) {
    asyncResult = err as StoreError;
  }
  if (typeof syncResult === 'string') {
    expect(asyncResult).toBe(syncResult);
    return syncResult;
  }
  expect(asyncResult).toBeInstanceOf(StoreError);
  expect((asyncResult as StoreError).code).toBe(syncResult.code);
  throw syncResult;
}

async function expectCode(p: Promise<unknown>, code: StoreErrorCode): Promise<StoreError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).code).toBe(code);
    return err as StoreError;
  }
  throw new Error(`expected StoreError '${code}'`);
}

describe('resolveStoreRoot', () => {
  const cwd = '/home/u/project';

  it('prefers --store over FANFOLD_STORE over <cwd>/.agent_workflows', () => {
    expect(resolveStoreRoot({ store: '/s', env: { FANFOLD_STORE: '/e' }, cwd })).toBe('/s');
    expect(resolveStoreRoot({ env: { FANFOLD_STORE: '/e' }, cwd })).toBe('/e');
    expect(resolveStoreRoot({ env: {}, cwd })).toBe(path.join(cwd, DEFAULT_STORE_DIR));
    expect(DEFAULT_STORE_DIR).toBe('.agent_workflows');
  });

  it('resolves relative values against cwd and normalizes', () => {
    expect(resolveStoreRoot({ store: 'runs', env: {}, cwd })).toBe('/home/u/project/runs');
    expect(resolveStoreRoot({ store: '../x/./y/', env: {}, cwd })).toBe('/home/u/x/y');
    expect(resolveStoreRoot({ env: { FANFOLD_STORE: 'rel' }, cwd })).toBe('/home/u/project/rel');
    expect(resolveStoreRoot({ env: {}, cwd: 'relative/cwd' })).toBe(path.resolve('relative/cwd', DEFAULT_STORE_DIR));
  });

  it('treats an empty FANFOLD_STORE as unset', () => {
    expect(resolveStoreRoot({ env: { FANFOLD_STORE: '' }, cwd })).toBe(path.join(cwd, DEFAULT_STORE_DIR));
    expect(resolveStoreRoot({ env: { FANFOLD_STORE: '   ' }, cwd })).toBe(path.join(cwd, DEFAULT_STORE_DIR));
  });

  it('refuses an empty --store and NUL bytes', () => {
    expect(() => resolveStoreRoot({ store: '', env: {}, cwd })).toThrow(/--store must name a directory/);
    expect(() => resolveStoreRoot({ store: '  ', env: {}, cwd })).toThrow(StoreError);
    expect(() => resolveStoreRoot({ store: '/a\0b', env: {}, cwd })).toThrow(/NUL/);
    expect(() => resolveStoreRoot({ env: { FANFOLD_STORE: '/a\0b' }, cwd })).toThrow(/FANFOLD_STORE .* NUL/);
  });

  it('defaults to process.env and process.cwd()', () => {
    const saved = process.env.FANFOLD_STORE;
    try {
      delete process.env.FANFOLD_STORE;
      expect(resolveStoreRoot()).toBe(path.join(process.cwd(), DEFAULT_STORE_DIR));
      process.env.FANFOLD_STORE = '/from/env';
      expect(resolveStoreRoot()).toBe('/from/env');
      expect(resolveStoreRoot({ store: 'flag' })).toBe(path.join(process.cwd(), 'flag'));
    } finally {
      if (saved === undefined) delete process.env.FANFOLD_STORE;
      else process.env.FANFOLD_STORE = saved;
    }
  });
});

describe('isInside', () => {
  it.each([
    ['/a', '/a', true],
    ['/a', '/a/b', true],
    ['/a', '/a/b/c', true],
    ['/a', '/ab', false],
    ['/a', '/', false],
    ['/a/b', '/a', false],
    ['/a', '/a/..b', true],
    ['/a', '/b/../a/c', true],
  ])('isInside(%s, %s) = %s', (p, c, want) => {
    expect(isInside(p, path.resolve(c))).toBe(want);
  });
});

describe('safeJoin / safeJoinReal: lexical', () => {
  let root: string;
  beforeAll(async () => {
    root = path.join(await tmpDir(), 'store');
    await fs.mkdir(path.join(root, 'run1', 'agents'), { recursive: true });
  });

  it('joins ids and file names under the root', async () => {
    expect(await both(root, 'run1')).toBe(path.join(root, 'run1'));
    expect(await both(root, 'run1', 'agents', 'map.core.3.json')).toBe(path.join(root, 'run1', 'agents', 'map.core.3.json'));
    expect(await both(root, 'run1', 'run.json')).toBe(path.join(root, 'run1', 'run.json'));
    expect(await both(root)).toBe(root);
  });

  it('normalizes a root with trailing slashes or dots', async () => {
    expect(await both(`${root}/./`, 'run1')).toBe(path.join(root, 'run1'));
  });

  const BAD: [string, string[]][] = [
    ['../', ['../']],
    ['..', ['..']],
    ['.', ['.']],
    ['empty segment', ['']],
    ['../ inside a segment', ['run1/../../etc']],
    ['traversal after a good segment', ['run1', '..', '..']],
    ['absolute', ['/etc/passwd']],
    ['absolute second segment', ['run1', '/etc']],
    ['slash', ['a/b']],
    ['trailing slash', ['run1/']],
    ['backslash', ['a\\b']],
    ['windows traversal', ['..\\..\\x']],
    ['NUL', ['a\0b']],
    ['NUL after extension', ['run.json\0.png']],
    ['over-long', ['a'.repeat(65)]],
    ['over-long file name', [`${'a'.repeat(64)}.${'b'.repeat(64)}.${'c'.repeat(64)}.${'d'.repeat(64)}`]],
    ['hidden', ['.plans']],
    ['dot-json', ['.json']],
    ['double dot inside a name', ['a..json']],
    ['fullwidth dots', ['\uff0e\uff0e']],
    ['one-dot leaders', ['\u2024\u2024']],
    ['fullwidth solidus', ['a\uff0fb']],
    ['division slash', ['a\u2215..']],
    ['cyrillic lookalike id', ['run\u0031\u0430']],
    ['zero-width joiner', ['run\u200d1']],
    ['percent-encoded', ['%2e%2e']],
    ['tilde', ['~']],
    ['leading dash', ['-rf']],
    ['newline', ['run1\n']],
  ];

  it.each(BAD)('refuses %s', async (_name, segs) => {
    const err = await expectCode(both(root, ...segs), 'path_escape');
    expect(err.message).toMatch(/^store: /);
    expect(err.retryable).toBe(false);
  });

  it('refuses non-string segments at runtime', async () => {
    await expectCode(both(root, undefined as unknown as string), 'path_escape');
    await expectCode(both(root, 3 as unknown as string), 'path_escape');
  });

  it('refuses an empty root or one with NUL', async () => {
    await expectCode(both('', 'a'), 'invalid_argument');
    await expectCode(both('/tmp/\0x', 'a'), 'invalid_argument');
  });

  it('works lexically when the root does not exist yet', async () => {
    const missing = path.join(root, 'not-yet', 'deeper');
    expect(await both(missing, 'run1', 'run.json')).toBe(path.join(missing, 'run1', 'run.json'));
  });

  it('works with a relative root (resolved against cwd)', async () => {
    expect(safeJoin('rel-root', 'a')).toBe(path.resolve('rel-root', 'a'));
  });
});

describe('safeJoin / safeJoinReal: symlinks', () => {
  let base: string;
  let root: string;
  let outside: string;

  beforeAll(async () => {
    base = await tmpDir();
    root = path.join(base, 'store');
    outside = path.join(base, 'outside');
    await fs.mkdir(path.join(root, 'run1', 'agents'), { recursive: true });
    await fs.mkdir(outside);
    await fs.writeFile(path.join(outside, 'secret.json'), '{}');
    // A run directory that is a symlink pointing out of the store.
    await fs.symlink(outside, path.join(root, 'evil'));
    // A file inside a run that is a symlink to a file outside.
    await fs.symlink(path.join(outside, 'secret.json'), path.join(root, 'run1', 'run.json'));
    // A symlink to a missing file outside (dangling): writing through it would create it.
    await fs.symlink(path.join(outside, 'created-by-attack.json'), path.join(root, 'run1', 'control.json'));
    // A symlink chain out of the store: inside -> inside -> outside.
    await fs.symlink(path.join(root, 'evil'), path.join(root, 'hop'));
    // A symlink pointing elsewhere *inside* the store is fine.
    await fs.symlink(path.join(root, 'run1'), path.join(root, 'alias'));
    // A symlink loop.
    await fs.symlink(path.join(root, 'loop-b'), path.join(root, 'loop-a'));
    await fs.symlink(path.join(root, 'loop-a'), path.join(root, 'loop-b'));
    // A relative symlink climbing out.
    await fs.symlink('../outside', path.join(root, 'rel-evil'));
  });

  it('refuses a run directory that is a symlink pointing outside', async () => {
    const err = await expectCode(both(root, 'evil'), 'path_escape');
    expect(err.message).toContain(outside);
    expect(err.message).toContain('outside the store root');
  });

  it('refuses paths below such a symlink, existing or not', async () => {
    await expectCode(both(root, 'evil', 'secret.json'), 'path_escape');
    await expectCode(both(root, 'evil', 'new.json'), 'path_escape');
    await expectCode(both(root, 'evil', 'agents', 'map.a.1.json'), 'path_escape');
  });

  it('refuses a file symlink inside a run that points outside', async () => {
    await expectCode(both(root, 'run1', 'run.json'), 'path_escape');
  });

  it('refuses a dangling symlink (it would create a file outside)', async () => {
    const err = await expectCode(both(root, 'run1', 'control.json'), 'path_escape');
    expect(err.message).toMatch(/symlink that does not resolve/);
    expect(fss.existsSync(path.join(outside, 'created-by-attack.json'))).toBe(false);
  });

  it('refuses chains and relative symlinks that end outside', async () => {
    await expectCode(both(root, 'hop'), 'path_escape');
    await expectCode(both(root, 'hop', 'x.json'), 'path_escape');
    await expectCode(both(root, 'rel-evil'), 'path_escape');
  });

  it('refuses symlink loops', async () => {
    await expectCode(both(root, 'loop-a'), 'path_escape');
    await expectCode(both(root, 'loop-a', 'x.json'), 'path_escape');
  });

  it('allows a symlink that stays inside the store', async () => {
    expect(await both(root, 'alias', 'agents')).toBe(path.join(root, 'alias', 'agents'));
    expect(await both(root, 'alias', 'agents', 'new.json')).toBe(path.join(root, 'alias', 'agents', 'new.json'));
  });

  it('allows a store root that is itself a symlink (both sides resolve)', async () => {
    const link = path.join(base, 'store-link');
    await fs.symlink(root, link);
    expect(await both(link, 'run1', 'agents')).toBe(path.join(link, 'run1', 'agents'));
    await expectCode(both(link, 'evil'), 'path_escape');
  });

  it('allows paths whose parents do not exist yet', async () => {
    expect(await both(root, 'run2', 'agents', 'a.b.1.json')).toBe(path.join(root, 'run2', 'agents', 'a.b.1.json'));
  });

  it('does not mistake a file created concurrently for a dangling symlink (regression)', async () => {
    const dir = path.join(root, 'busy');
    await fs.mkdir(dir);
    const f = path.join(dir, 'flap.json');
    let stop = false;
    const churn = (async () => {
      while (!stop) {
        await fs.writeFile(f, '{}');
        await fs.unlink(f);
      }
    })();
    const errors: string[] = [];
    await Promise.all(
      Array.from({ length: 2000 }, async () => {
        try {
          await safeJoinReal(root, 'busy', 'flap.json');
        } catch (err) {
          errors.push((err as Error).message);
        }
      }),
    );
    for (let i = 0; i < 2000; i++) {
      try {
        safeJoin(root, 'busy', 'flap.json');
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    stop = true;
    await churn;
    expect(errors.filter((e) => !/kept appearing/.test(e))).toEqual([]);
  });

  it('refuses a symlink planted after the directory was checked once', async () => {
    const dir = path.join(root, 'run3');
    await fs.mkdir(dir);
    expect(await both(root, 'run3', 'agents')).toBe(path.join(dir, 'agents'));
    await fs.symlink(outside, path.join(dir, 'agents'));
    await expectCode(both(root, 'run3', 'agents', 'x.y.1.json'), 'path_escape');
  });
});

describe('safeJoin: property — random segments never escape the root', () => {
  let base: string;
  let root: string;
  beforeAll(async () => {
    base = await tmpDir();
    root = path.join(base, 'store');
    await fs.mkdir(path.join(root, 'run1'), { recursive: true });
  });

  const nasty = fc.constantFrom('..', '.', '/', '\\', '../', '..\\', '\0', '/etc/passwd', 'C:\\', '~', '%2e', '\uff0e', '\u2215', 'run1', 'a', '.json', 'x.json');
  const segment = fc.oneof(
    fc.string(),
    fc.string({ unit: 'binary' }),
    fc.stringMatching(/^[A-Za-z0-9_.\-/\\]{0,70}$/),
    fc.array(nasty, { maxLength: 5 }).map((a) => a.join('')),
  );

  it('sync: either throws StoreError or returns a path inside root', () => {
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 5 }), (segs) => {
        try {
          const p = safeJoin(root, ...segs);
          expect(isInside(root, p)).toBe(true);
          expect(p.startsWith(root)).toBe(true);
          expect(p).not.toContain('\0');
          expect(path.relative(root, p).split(path.sep)).not.toContain('..');
        } catch (err) {
          expect(err).toBeInstanceOf(StoreError);
          expect((err as StoreError).code).toBe('path_escape');
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('async: agrees with sync', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(segment, { maxLength: 4 }), async (segs) => {
        let a: string | undefined;
        let b: string | undefined;
        try {
          a = safeJoin(root, ...segs);
        } catch {
          a = undefined;
        }
        try {
          b = await safeJoinReal(root, ...segs);
        } catch {
          b = undefined;
        }
        expect(b).toBe(a);
        if (b !== undefined) expect(isInside(root, b)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

describe('SafeRoot', () => {
  it('joins like safeJoinReal', async () => {
    const base = await tmpDir();
    const root = path.join(base, 'run');
    await fs.mkdir(path.join(root, 'agents'), { recursive: true });
    await fs.mkdir(path.join(base, 'outside'));
    await fs.symlink(path.join(base, 'outside'), path.join(root, 'evil'));
    const r = await SafeRoot.open(root);
    expect(r.root).toBe(root);
    expect(await r.join('agents', 'a.b.1.json')).toBe(path.join(root, 'agents', 'a.b.1.json'));
    expect(await r.join()).toBe(root);
    await expectCode(r.join('..'), 'path_escape');
    await expectCode(r.join('evil', 'x.json'), 'path_escape');
    await expectCode(r.join('a/b'), 'path_escape');
  });

  it('measures against the realpath taken at open: a root swapped for a symlink later is refused', async () => {
    const base = await tmpDir();
    const root = path.join(base, 'run');
    await fs.mkdir(path.join(root, 'agents'), { recursive: true });
    const r = await SafeRoot.open(root);
    await fs.rename(root, path.join(base, 'moved'));
    await fs.mkdir(path.join(base, 'elsewhere', 'agents'), { recursive: true });
    await fs.symlink(path.join(base, 'elsewhere'), root);
    await expectCode(r.join('agents', 'x.json'), 'path_escape');
  });

  it('a root that does not exist yet is resolved on first use after it appears', async () => {
    const base = await tmpDir();
    const root = path.join(base, 'later');
    const r = await SafeRoot.open(root);
    expect(await r.join('x.json')).toBe(path.join(root, 'x.json'));
    await fs.mkdir(root);
    await fs.mkdir(path.join(base, 'out'));
    await fs.symlink(path.join(base, 'out'), path.join(root, 'sub'));
    await expectCode(r.join('sub', 'x.json'), 'path_escape');
  });

  it('refuses an empty root', async () => {
    await expectCode(SafeRoot.open(''), 'invalid_argument');
  });
});
