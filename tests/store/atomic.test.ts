import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import fs from 'node:fs/promises';
import fss from 'node:fs';
import path from 'node:path';
import { DEFAULT_MAX_JSON_BYTES, readJsonFile, readTextFile, syncDir, writeJsonAtomic, writeTextAtomic } from '../../src/store/atomic.js';
import { StoreError, type StoreErrorCode } from '../../src/store/errors.js';
import { Journal } from '../../src/store/journal.js';
import { RunStore } from '../../src/store/run-store.js';
import { cleanupTmp, killChildren, ls, makeRun, sleep, spawnNode, storeModule, tmpDir } from './helpers.js';

afterAll(cleanupTmp);
afterEach(killChildren);

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

/** A JSON value of roughly `kb` KiB whose every field encodes `n`, so a mix of two versions is detectable. */
function payload(n: number, kb: number): { schemaVersion: 1; n: number; body: string[]; tail: number } {
  const chunk = `v${n}-`.padEnd(1000, String(n % 10));
  return { schemaVersion: 1, n, body: Array.from({ length: kb }, () => chunk), tail: n };
}

function consistent(v: { n: number; body: string[]; tail: number }): boolean {
  return v.tail === v.n && v.body.every((c) => c.startsWith(`v${v.n}-`));
}

describe('writeJsonAtomic', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tmpDir();
  });

  it('writes pretty JSON with a final newline and reads it back', async () => {
    const f = path.join(dir, 'a.json');
    await writeJsonAtomic(f, { schemaVersion: 1, x: [1, 2], s: 'é\n"' });
    const text = await fs.readFile(f, 'utf8');
    expect(text).toBe('{\n  "schemaVersion": 1,\n  "x": [\n    1,\n    2\n  ],\n  "s": "é\\n\\""\n}\n');
    expect(await readJsonFile(f, { kind: 'test', expectVersion: 1 })).toEqual({ schemaVersion: 1, x: [1, 2], s: 'é\n"' });
  });

  it('writes compact JSON with indent 0', async () => {
    const f = path.join(dir, 'compact.json');
    await writeJsonAtomic(f, { a: 1, b: [2] }, { indent: 0 });
    expect(await fs.readFile(f, 'utf8')).toBe('{"a":1,"b":[2]}\n');
  });

  it('replaces an existing file and leaves no temp files behind', async () => {
    const d = await tmpDir();
    const f = path.join(d, 'r.json');
    for (let i = 0; i < 50; i++) await writeJsonAtomic(f, { i });
    expect(ls(d)).toEqual(['r.json']);
    expect(JSON.parse(await fs.readFile(f, 'utf8'))).toEqual({ i: 49 });
  });

  it('survives many concurrent writers to the same file: one whole value wins, no temp files', async () => {
    const d = await tmpDir();
    const f = path.join(d, 'c.json');
    await Promise.all(Array.from({ length: 200 }, (_, i) => writeJsonAtomic(f, payload(i, 4))));
    expect(ls(d)).toEqual(['c.json']);
    const v = JSON.parse(await fs.readFile(f, 'utf8'));
    expect(consistent(v)).toBe(true);
  });

  it('many concurrent writers to different files in one folder leave exactly those files', async () => {
    const d = await tmpDir();
    await Promise.all(Array.from({ length: 300 }, (_, i) => writeJsonAtomic(path.join(d, `f${i}.json`), { i })));
    const names = ls(d);
    expect(names).toHaveLength(300);
    expect(names.every((n) => /^f\d+\.json$/.test(n))).toBe(true);
  });

  it('an in-process reader racing a writer never sees a partial or mixed file', async () => {
    const d = await tmpDir();
    const f = path.join(d, 'race.json');
    await writeJsonAtomic(f, payload(0, 256));
    let stop = false;
    let reads = 0;
    const bad: string[] = [];
    const reader = (async () => {
      while (!stop) {
        const text = await fs.readFile(f, 'utf8');
        reads++;
        try {
          const v = JSON.parse(text);
          if (!consistent(v)) bad.push(`mixed n=${v.n}`);
        } catch {
          bad.push(`partial (${text.length} chars)`);
        }
      }
    })();
    const readers2 = (async () => {
      while (!stop) {
        try {
          const v = await readJsonFile<{ n: number; body: string[]; tail: number }>(f, { kind: 'race', expectVersion: 1 });
          reads++;
          if (!consistent(v)) bad.push(`mixed n=${v.n}`);
        } catch (err) {
          bad.push(String(err));
        }
      }
    })();
    for (let i = 1; i <= 150; i++) await writeJsonAtomic(f, payload(i, 64 + (i % 3) * 128));
    stop = true;
    await Promise.all([reader, readers2]);
    expect(bad).toEqual([]);
    expect(reads).toBeGreaterThan(10);
    expect(ls(d)).toEqual(['race.json']);
  });

  it('a reader in another process racing a writer never sees a partial file', async () => {
    const d = await tmpDir();
    const f = path.join(d, 'xproc.json');
    await writeJsonAtomic(f, payload(0, 128));
    const child = spawnNode(
      `
      import fs from 'node:fs';
      const [file] = ARGS;
      let reads = 0, bad = 0, last = -1;
      process.stdout.write('ready\\n');
      const end = Date.now() + 20000;
      while (Date.now() < end) {
        let text;
        try { text = fs.readFileSync(file, 'utf8'); } catch (e) { bad++; continue; }
        reads++;
        try {
          const v = JSON.parse(text);
          if (v.tail !== v.n || !v.body.every((c) => c.startsWith('v' + v.n + '-'))) bad++;
          last = v.n;
          if (v.n === -1) break;
        } catch { bad++; }
      }
      process.stdout.write(JSON.stringify({ reads, bad, last }) + '\\n');
      `,
      [f],
    );
    await child.waitFor('ready');
    const started = Date.now();
    let i = 1;
    while (Date.now() - started < 1500) await writeJsonAtomic(f, payload(i++, 64 + (i % 4) * 64));
    await writeJsonAtomic(f, { ...payload(-1, 1), n: -1, tail: -1, body: ['v-1-'] });
    await child.exited;
    const result = JSON.parse(child.stdout().trim().split('\n').pop()!);
    expect(result.bad).toBe(0);
    expect(result.last).toBe(-1);
    expect(result.reads).toBeGreaterThan(20);
    console.log(`[atomic] cross-process reader: ${result.reads} reads during ${i} writes, 0 partial`);
  });

  it('a writer SIGKILLed mid-stream leaves the target whole (old or new value)', async () => {
    const mod = await storeModule();
    const d = await tmpDir();
    const f = path.join(d, 'killed.json');
    await writeJsonAtomic(f, payload(0, 256));
    for (let round = 0; round < 4; round++) {
      const child = spawnNode(
        `
        const { writeJsonAtomic } = await import(ARGS[0]);
        const file = ARGS[1];
        const payload = (n) => ({ schemaVersion: 1, n, body: Array.from({ length: 256 }, () => ('v' + n + '-').padEnd(1000, String(n % 10))), tail: n });
        process.stdout.write('ready\\n');
        for (let i = 1; ; i++) await writeJsonAtomic(file, payload(i));
        `,
        [mod, f],
      );
      await child.waitFor('ready');
      await sleep(50 + round * 60);
      child.proc.kill('SIGKILL');
      await child.exited;
      const v = JSON.parse(await fs.readFile(f, 'utf8'));
      expect(consistent(v)).toBe(true);
      // A killed writer may leave its unique temp file behind, never a half-written target.
      for (const n of ls(d)) expect(n === 'killed.json' || /^killed\.json\.\d+-[0-9a-f]{12}\.tmp$/.test(n)).toBe(true);
    }
  });

  it('never writes through a symlink: the link itself is replaced, its target untouched', async () => {
    const d = await tmpDir();
    const outside = path.join(d, 'outside.json');
    await fs.writeFile(outside, '{"keep":true}');
    const link = path.join(d, 'link.json');
    await fs.symlink(outside, link);
    await writeJsonAtomic(link, { replaced: true });
    expect(await fs.readFile(outside, 'utf8')).toBe('{"keep":true}');
    expect((await fs.lstat(link)).isSymbolicLink()).toBe(false);
    expect(JSON.parse(await fs.readFile(link, 'utf8'))).toEqual({ replaced: true });
    const dangling = path.join(d, 'dangling.json');
    await fs.symlink(path.join(d, 'nowhere.json'), dangling);
    await writeJsonAtomic(dangling, {});
    expect(fss.existsSync(path.join(d, 'nowhere.json'))).toBe(false);
  });

  it('writes to one file from one process land in call order (the last call wins)', async () => {
    const d = await tmpDir();
    const f = path.join(d, 'order.json');
    for (let round = 0; round < 5; round++) {
      await Promise.all(Array.from({ length: 50 }, (_, i) => writeJsonAtomic(f, { i, round }, { fsync: i % 2 === 0 })));
      expect(JSON.parse(await fs.readFile(f, 'utf8'))).toEqual({ i: 49, round });
    }
    // The same file named two ways is one queue.
    await Promise.all([writeJsonAtomic(path.join(d, '.', 'order.json'), { a: 1 }), writeJsonAtomic(f, { a: 2 })]);
    expect(JSON.parse(await fs.readFile(f, 'utf8'))).toEqual({ a: 2 });
    expect(ls(d)).toEqual(['order.json']);
  });

  it('one failed write does not block later writes to the same file', async () => {
    const d = await tmpDir();
    const f = path.join(d, 'x.json');
    const bad = writeJsonAtomic(f, { n: 1n });
    const good = writeJsonAtomic(f, { n: 2 });
    await expect(bad).rejects.toMatchObject({ code: 'invalid_argument' });
    await good;
    expect(JSON.parse(await fs.readFile(f, 'utf8'))).toEqual({ n: 2 });
  });

  it('removes its temp file when the rename fails (target is a directory)', async () => {
    const d = await tmpDir();
    await fs.mkdir(path.join(d, 'adir.json'));
    await fs.writeFile(path.join(d, 'adir.json', 'inside'), 'x');
    await expectCode(writeJsonAtomic(path.join(d, 'adir.json'), { a: 1 }), 'io');
    expect(ls(d)).toEqual(['adir.json']);
  });

  it('temp names are unique, in the same folder, and never a fixed name', async () => {
    const d = await tmpDir();
    const f = path.join(d, 'seen.json');
    const seen = new Set<string>();
    const realOpen = fs.open;
    const spy = vi.spyOn(fs, 'open').mockImplementation(async (p, ...rest) => {
      seen.add(String(p));
      return realOpen(p, ...(rest as [])) as never;
    });
    try {
      await Promise.all(Array.from({ length: 100 }, (_, i) => writeJsonAtomic(f, { i })));
    } finally {
      spy.mockRestore();
    }
    // The folder is opened too, to fsync it after the first write creates seen.json.
    const temps = [...seen].filter((p) => p !== f && p !== d);
    expect(temps).toHaveLength(100);
    for (const t of temps) {
      expect(path.dirname(t)).toBe(d);
      expect(path.basename(t)).toMatch(new RegExp(`^seen\\.json\\.${process.pid}-[0-9a-f]{12}\\.tmp$`));
    }
    expect(ls(d)).toEqual(['seen.json']);
  });

  it('fails with not_found when the folder is missing, leaving nothing behind', async () => {
    const d = await tmpDir();
    await expectCode(writeJsonAtomic(path.join(d, 'no', 'x.json'), {}), 'not_found');
    expect(ls(d)).toEqual([]);
  });

  it('fails with io when the folder is not writable', async () => {
    if (process.getuid?.() === 0) return; // root ignores permissions
    const d = await tmpDir();
    await fs.chmod(d, 0o500);
    try {
      const err = await expectCode(writeJsonAtomic(path.join(d, 'x.json'), {}), 'io');
      expect(err.message).toContain(path.join(d, 'x.json'));
    } finally {
      await fs.chmod(d, 0o700);
    }
  });

  it.each([
    ['a cycle', (() => {
      const o: Record<string, unknown> = {};
      o.self = o;
      return o;
    })()],
    ['a BigInt', { n: 1n }],
    ['undefined', undefined],
    ['a function', () => 1],
  ])('refuses %s without touching the file', async (_n, value) => {
    const d = await tmpDir();
    const f = path.join(d, 'v.json');
    await writeJsonAtomic(f, { ok: 1 });
    await expectCode(writeJsonAtomic(f, value), 'invalid_argument');
    expect(JSON.parse(await fs.readFile(f, 'utf8'))).toEqual({ ok: 1 });
    expect(ls(d)).toEqual(['v.json']);
  });

  it('writeTextAtomic writes text and buffers as is', async () => {
    const d = await tmpDir();
    await writeTextAtomic(path.join(d, 't.txt'), 'hello\nworld');
    await writeTextAtomic(path.join(d, 'b.bin'), Buffer.from([0, 1, 2, 255]));
    expect(await fs.readFile(path.join(d, 't.txt'), 'utf8')).toBe('hello\nworld');
    expect([...(await fs.readFile(path.join(d, 'b.bin')))]).toEqual([0, 1, 2, 255]);
    expect(ls(d)).toEqual(['b.bin', 't.txt']);
  });

  it('honours a mode for new files (before the umask)', async () => {
    const d = await tmpDir();
    const f = path.join(d, 'm.json');
    await writeJsonAtomic(f, { a: 1 }, { mode: 0o600 });
    expect((await fs.stat(f)).mode & 0o777).toBe(0o600);
  });
});

describe('readJsonFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tmpDir();
  });
  const write = async (name: string, text: string) => {
    const f = path.join(dir, name);
    await fs.writeFile(f, text);
    return f;
  };

  it('reads any JSON without expectVersion', async () => {
    expect(await readJsonFile(await write('any.json', '[1,2]'), { kind: 'x' })).toEqual([1, 2]);
    expect(await readJsonFile(await write('null.json', 'null'), { kind: 'x' })).toBeNull();
  });

  it('not_found for a missing file, naming kind and path', async () => {
    const err = await expectCode(readJsonFile(path.join(dir, 'missing.json'), { kind: 'run record' }), 'not_found');
    expect(err.message).toBe(`store: run record ${path.join(dir, 'missing.json')} does not exist`);
  });

  it.each([
    ['truncated', '{"schemaVersion": 1, "a": [1, 2'],
    ['empty', ''],
    ['garbage', '\u0000\u0000\u0000'],
    ['trailing junk', '{"schemaVersion":1} x'],
    ['two objects', '{"schemaVersion":1}{"schemaVersion":1}'],
    ['single quotes', "{'schemaVersion': 1}"],
  ])('corrupt for %s JSON', async (name, text) => {
    const f = await write(`corrupt-${name.replace(/ /g, '-')}.json`, text);
    const err = await expectCode(readJsonFile(f, { kind: 'agent record', expectVersion: 1 }), 'corrupt');
    expect(err.message).toContain(`agent record ${f} is not valid JSON`);
    expect(err.cause).toBeInstanceOf(SyntaxError);
  });

  it.each([
    ['an array', '[{"schemaVersion":1}]'],
    ['null', 'null'],
    ['a number', '1'],
    ['a string', '"x"'],
  ])('corrupt when expecting a versioned object and finding %s', async (name, text) => {
    const f = await write(`shape-${name.replace(/ /g, '-')}.json`, text);
    const err = await expectCode(readJsonFile(f, { kind: 'run record', expectVersion: 1 }), 'corrupt');
    expect(err.message).toContain('is not a JSON object');
  });

  it('bad_version names file, found and expected — loudly, for a newer version', async () => {
    const f = await write('v2.json', '{"schemaVersion": 2, "x": 1}');
    const err = await expectCode(readJsonFile(f, { kind: 'run record', expectVersion: 1 }), 'bad_version');
    expect(err.message).toBe(`store: run record ${f} has schemaVersion 2, expected 1 (written by a newer fanfold?)`);
    expect(err.retryable).toBe(false);
  });

  it.each([
    ['missing', '{"x":1}', 'none'],
    ['zero', '{"schemaVersion":0}', '0'],
    ['a string', '{"schemaVersion":"1"}', '"1"'],
    ['null', '{"schemaVersion":null}', 'null'],
    ['a float', '{"schemaVersion":1.5}', '1.5'],
  ])('bad_version when schemaVersion is %s', async (name, text, shown) => {
    const f = await write(`ver-${name.replace(/ /g, '-')}.json`, text);
    const err = await expectCode(readJsonFile(f, { kind: 'lease', expectVersion: 1 }), 'bad_version');
    expect(err.message).toContain(`has schemaVersion ${shown}, expected 1`);
  });

  it('too_large above maxBytes', async () => {
    const f = await write('big.json', JSON.stringify({ s: 'x'.repeat(2000) }));
    const err = await expectCode(readJsonFile(f, { kind: 'x', maxBytes: 1000 }), 'too_large');
    expect(err.message).toMatch(/more than the 1000-byte limit/);
    expect(DEFAULT_MAX_JSON_BYTES).toBe(64 * 1024 * 1024);
  });

  it('refuses to follow a symlink at the file itself', async () => {
    const target = await write('real.json', '{"schemaVersion":1}');
    const link = path.join(dir, 'link-to-real.json');
    await fs.symlink(target, link);
    await expectCode(readJsonFile(link, { kind: 'x', expectVersion: 1 }), 'path_escape');
  });

  it('io for a directory', async () => {
    const d = path.join(dir, 'adir.json');
    await fs.mkdir(d);
    await expectCode(readJsonFile(d, { kind: 'x' }), 'io');
  });

  it('readTextFile reads UTF-8 and enforces its cap', async () => {
    const f = await write('t.txt', 'héllo');
    expect(await readTextFile(f, 'text', 100)).toBe('héllo');
    await expectCode(readTextFile(f, 'text', 3), 'too_large');
  });
});

describe('the folder is fsynced after a rename that creates a file', () => {
  afterEach(() => vi.restoreAllMocks());

  /** Spies on fs.open and FileHandle#sync; returns the folders whose own handle was fsynced. */
  async function watchFolderSyncs(): Promise<{ synced: string[]; opened: string[] }> {
    const probe = await fs.open(path.join(await tmpDir(), 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as { sync: (this: fs.FileHandle) => Promise<void> };
    await probe.close();
    const folderOf = new WeakMap<object, string>();
    const opened: string[] = [];
    const synced: string[] = [];
    const realOpen = fs.open.bind(fs);
    vi.spyOn(fs, 'open').mockImplementation((async (p: Parameters<typeof fs.open>[0], flags?: string | number, mode?: number) => {
      const fh = await realOpen(p, flags, mode);
      if (typeof flags === 'number' && (flags & fss.constants.O_DIRECTORY) !== 0) {
        opened.push(String(p));
        folderOf.set(fh, String(p));
      }
      return fh;
    }) as typeof fs.open);
    const realSync = proto.sync;
    vi.spyOn(proto, 'sync').mockImplementation(async function (this: fs.FileHandle) {
      await realSync.call(this);
      const folder = folderOf.get(this);
      if (folder !== undefined) synced.push(folder);
    });
    return { synced, opened };
  }

  it('a new file: its folder is opened as a folder and fsynced, after the rename', async () => {
    const d = await tmpDir();
    const seen = await watchFolderSyncs();
    await writeJsonAtomic(path.join(d, 'new.json'), { a: 1 });
    expect(seen.synced).toEqual([d]);
    expect(ls(d)).toEqual(['new.json']);
  });

  it('replacing a file does not sync the folder (the old file stays whole until the journal commits)', async () => {
    const d = await tmpDir();
    await writeJsonAtomic(path.join(d, 'old.json'), { a: 1 });
    const seen = await watchFolderSyncs();
    await writeJsonAtomic(path.join(d, 'old.json'), { a: 2 });
    expect(seen.opened).toEqual([]);
  });

  it('with fsync: false nothing is synced, the folder neither', async () => {
    const d = await tmpDir();
    const seen = await watchFolderSyncs();
    await writeTextAtomic(path.join(d, 'fast.txt'), 'x', { fsync: false });
    expect(seen.opened).toEqual([]);
  });

  it('a burst of new files in one folder shares folder syncs, and each write waits for one', async () => {
    const d = await tmpDir();
    const seen = await watchFolderSyncs();
    const n = 40;
    await Promise.all(Array.from({ length: n }, (_, i) => writeTextAtomic(path.join(d, `f${i}.txt`), String(i))));
    expect(seen.synced.length).toBeGreaterThanOrEqual(1);
    expect(seen.synced.every((f) => f === d)).toBe(true);
    // Shared: never more folder syncs than files (usually two or three for the whole burst).
    expect(seen.synced.length).toBeLessThanOrEqual(n);
    expect(ls(d)).toHaveLength(n);
  });

  it('a new journal syncs its folder once; reopening a journal with lines does not', async () => {
    const d = await tmpDir();
    const seen = await watchFolderSyncs();
    const j = await Journal.open(path.join(d, 'events.jsonl'));
    await j.append({ type: 'phase.started', phaseId: 'p' });
    await j.close();
    expect(seen.synced).toEqual([d]);
    const again = await Journal.open(path.join(d, 'events.jsonl'));
    await again.close();
    expect(seen.synced).toEqual([d]);
  });

  it('a new run syncs the store root (its folder is a new name there) and its own folder (run.json)', async () => {
    const root = await tmpDir();
    const seen = await watchFolderSyncs();
    const s = await RunStore.create(root, makeRun('newrun'));
    await s.close();
    expect(seen.synced).toEqual(expect.arrayContaining([path.join(root, 'newrun'), root]));
  });

  it('syncDir: a caller that asks while a sync runs gets a sync that starts after it', async () => {
    const d = await tmpDir();
    const seen = await watchFolderSyncs();
    const first = syncDir(d);
    // The first sync is queued to start on the next turn; one asked now shares it.
    expect(syncDir(d)).toBe(first);
    await first;
    expect(seen.synced).toEqual([d]);
    await syncDir(d);
    expect(seen.synced).toEqual([d, d]);
  });
});
