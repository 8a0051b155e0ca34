import { afterAll, describe, expect, it } from 'vitest';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Low, Memory, type Adapter } from 'lowdb';
import { AtomicJsonFile } from '../../src/store/lowdb-adapter.js';
import { StoreError } from '../../src/store/errors.js';
import { cleanupTmp, ls, tmpDir } from './helpers.js';

afterAll(cleanupTmp);

interface Doc {
  schemaVersion: 1;
  items: number[];
}

/** One conformance suite that every adapter for run.json must pass. */
function conformance(name: string, make: () => Promise<Adapter<Doc>>) {
  describe(`adapter conformance: ${name}`, () => {
    it('reads null before the first write', async () => {
      expect(await (await make()).read()).toBeNull();
    });

    it('Low keeps the default data when nothing was written', async () => {
      const db = new Low<Doc>(await make(), { schemaVersion: 1, items: [] });
      await db.read();
      expect(db.data).toEqual({ schemaVersion: 1, items: [] });
    });

    it('round-trips through Low.write/read and update', async () => {
      const adapter = await make();
      const db = new Low<Doc>(adapter, { schemaVersion: 1, items: [] });
      await db.update((d) => d.items.push(1, 2));
      const again = new Low<Doc>(adapter, { schemaVersion: 1, items: [] });
      await again.read();
      expect(again.data).toEqual({ schemaVersion: 1, items: [1, 2] });
    });

    it('the last of many sequential writes wins', async () => {
      const adapter = await make();
      for (let i = 0; i < 20; i++) await adapter.write({ schemaVersion: 1, items: [i] });
      expect(await adapter.read()).toEqual({ schemaVersion: 1, items: [19] });
    });
  });
}

conformance('AtomicJsonFile', async () => new AtomicJsonFile<Doc>(path.join(await tmpDir(), 'doc.json'), { kind: 'doc', expectVersion: 1 }));
conformance('lowdb Memory (the in-memory twin)', async () => new Memory<Doc>());

describe('AtomicJsonFile', () => {
  it('persists to disk even though vitest sets NODE_ENV=test (unlike JSONFilePreset)', async () => {
    expect(process.env.NODE_ENV).toBe('test');
    const dir = await tmpDir();
    const file = path.join(dir, 'doc.json');
    const db = new Low<Doc>(new AtomicJsonFile<Doc>(file, { kind: 'doc', expectVersion: 1 }), { schemaVersion: 1, items: [] });
    await db.update((d) => d.items.push(7));
    expect(JSON.parse(await fs.readFile(file, 'utf8'))).toEqual({ schemaVersion: 1, items: [7] });
    expect(ls(dir)).toEqual(['doc.json']);
  });

  it('refuses another schemaVersion on read', async () => {
    const dir = await tmpDir();
    const file = path.join(dir, 'doc.json');
    await fs.writeFile(file, '{"schemaVersion":2,"items":[]}');
    const db = new Low<Doc>(new AtomicJsonFile<Doc>(file, { kind: 'run record', expectVersion: 1 }), { schemaVersion: 1, items: [] });
    await expect(db.read()).rejects.toMatchObject({ code: 'bad_version' });
    // Low kept its default data; nothing was overwritten.
    expect(await fs.readFile(file, 'utf8')).toBe('{"schemaVersion":2,"items":[]}');
  });

  it('reports a corrupt file instead of treating it as empty', async () => {
    const dir = await tmpDir();
    const file = path.join(dir, 'doc.json');
    await fs.writeFile(file, '{"schemaVersion":1,"ite');
    const adapter = new AtomicJsonFile<Doc>(file, { kind: 'run record', expectVersion: 1 });
    const err = await adapter.read().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).code).toBe('corrupt');
  });

  it('reads without a version check when none is expected', async () => {
    const dir = await tmpDir();
    const file = path.join(dir, 'doc.json');
    await fs.writeFile(file, '{"anything":true}');
    expect(await new AtomicJsonFile(file, { kind: 'x' }).read()).toEqual({ anything: true });
  });

  it('exposes its file', () => {
    expect(new AtomicJsonFile('/a/b.json', { kind: 'x' }).file).toBe('/a/b.json');
  });
});
