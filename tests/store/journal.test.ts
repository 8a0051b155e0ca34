import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Journal, parseEventLine, readEvents, readJournal, type NewRunEvent } from '../../src/store/journal.js';
import { StoreError, type StoreErrorCode } from '../../src/store/errors.js';
import type { RunEvent } from '../../src/store/types.js';
import { cleanupTmp, killChildren, sleep, spawnNode, storeModule, tmpDir } from './helpers.js';

afterAll(cleanupTmp);
afterEach(() => {
  killChildren();
  vi.restoreAllMocks();
});

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

const started = (slot: number, t?: string): NewRunEvent => ({
  type: 'agent.started',
  ref: `map/t${slot}`,
  key: `k${slot}`,
  attempt: 1,
  slot,
  ...(t ? { t } : {}),
});

const line = (ev: object) => `${JSON.stringify(ev)}\n`;
const ev = (slot: number): RunEvent => ({ t: '2025-01-01T00:00:00.000Z', type: 'agent.started', ref: `map/t${slot}`, key: 'k', attempt: 1, slot });

async function journalFile(): Promise<string> {
  return path.join(await tmpDir(), 'events.jsonl');
}

/** The prototype of FileHandle, to spy on write/datasync. */
async function fileHandleProto(): Promise<Record<string, (...a: unknown[]) => unknown>> {
  const fh = await fs.open(path.join(await tmpDir(), 'probe'), 'w');
  const proto = Object.getPrototypeOf(fh);
  await fh.close();
  return proto;
}

describe('Journal.append', () => {
  it('writes one JSON object per line, fills in t when missing, keeps it when given', async () => {
    const f = await journalFile();
    const j = await Journal.open(f);
    const before = Date.now();
    await j.append(started(1));
    await j.append(started(2, '2020-02-02T02:02:02.000Z'));
    await j.close();
    const text = await fs.readFile(f, 'utf8');
    const lines = text.split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[2]).toBe('');
    const [a, b] = lines.slice(0, 2).map((l) => JSON.parse(l));
    expect(Date.parse(a.t)).toBeGreaterThanOrEqual(before - 1);
    expect(a.t).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(b.t).toBe('2020-02-02T02:02:02.000Z');
    expect(a).toMatchObject({ type: 'agent.started', slot: 1 });
  });

  it('keeps call order under thousands of concurrent appends', async () => {
    const f = await journalFile();
    const j = await Journal.open(f);
    const n = 3000;
    const all = Array.from({ length: n }, (_, i) => j.append(started(i)));
    expect(j.pendingCount).toBeGreaterThan(0);
    await Promise.all(all);
    expect(j.pendingCount).toBe(0);
    await j.close();
    const events = await readEvents(f);
    expect(events.map((e) => (e as { slot: number }).slot)).toEqual(Array.from({ length: n }, (_, i) => i));
    expect((await fs.stat(f)).size).toBe(j.size);
  });

  it('keeps call order when producers interleave with awaits and random delays', async () => {
    const f = await journalFile();
    const j = await Journal.open(f);
    const order: number[] = [];
    let seq = 0;
    const producer = async (k: number) => {
      for (let i = 0; i < 50; i++) {
        if ((i + k) % 7 === 0) await sleep(Math.random() * 3);
        const s = seq++;
        order.push(s);
        const p = j.append(started(s));
        if (i % 3 === 0) await p; // some producers wait, some fire and forget
      }
    };
    await Promise.all(Array.from({ length: 20 }, (_, k) => producer(k)));
    await j.close();
    const slots = (await readEvents(f)).map((e) => (e as { slot: number }).slot);
    expect(slots).toEqual(order);
    expect(slots).toHaveLength(1000);
  });

  it('a string with newlines, quotes and unicode stays on one line', async () => {
    const f = await journalFile();
    const j = await Journal.open(f);
    await j.append({ type: 'agent.retry_scheduled', ref: 'a/b', attempt: 2, delayMs: 5, cause: 'line1\nline2\r\n"q"\u2028\u2029\0é😀' });
    await j.close();
    const text = await fs.readFile(f, 'utf8');
    expect(text.split('\n')).toHaveLength(2);
    const [e] = await readEvents(f);
    expect((e as { cause: string }).cause).toBe('line1\nline2\r\n"q"\u2028\u2029\0é😀');
  });

  it('rejects an event without a string type, and later appends still work', async () => {
    const f = await journalFile();
    const j = await Journal.open(f);
    await expectCode(j.append({} as unknown as NewRunEvent), 'invalid_argument');
    await expectCode(j.append(null as unknown as NewRunEvent), 'invalid_argument');
    await expectCode(j.append({ type: 5 } as unknown as NewRunEvent), 'invalid_argument');
    const cyclic: Record<string, unknown> = { type: 'x' };
    cyclic.self = cyclic;
    await expectCode(j.append(cyclic as unknown as NewRunEvent), 'invalid_argument');
    await j.append(started(1));
    await j.close();
    expect(await readEvents(f)).toHaveLength(1);
  });

  it('rejects an over-long line, and later appends still work', async () => {
    const f = await journalFile();
    const j = await Journal.open(f, { maxLineBytes: 1000 });
    const err = await expectCode(j.append({ type: 'run.stop_requested', by: 'x'.repeat(2000) }), 'too_large');
    expect(err.message).toMatch(/run\.stop_requested/);
    await j.append(started(1));
    await j.close();
    expect(await readEvents(f)).toHaveLength(1);
  });

  it('rejects appends after close; close waits for queued appends and is idempotent', async () => {
    const f = await journalFile();
    const j = await Journal.open(f);
    const pending = Array.from({ length: 100 }, (_, i) => j.append(started(i)));
    await j.close();
    await Promise.all(pending);
    expect(await readEvents(f)).toHaveLength(100);
    await expectCode(j.append(started(1)), 'closed');
    await expectCode(j.sync(), 'closed');
    await j.close();
  });

  it('an append issued while close() is draining the queue is refused, not written to a closed file', async () => {
    const f = await journalFile();
    const j = await Journal.open(f);
    const queued = Array.from({ length: 50 }, (_, i) => j.append(started(i)));
    const closing = j.close();
    const late = j.append(started(999));
    const closingAgain = j.close();
    await expectCode(late, 'closed');
    await Promise.all([...queued, closing, closingAgain]);
    const contents = await readJournal(f);
    expect(contents.events).toHaveLength(50);
    expect(contents.corrupt).toEqual([]);
  });

  it('appends to an existing journal without touching what is there', async () => {
    const f = await journalFile();
    await fs.writeFile(f, line(ev(1)) + line(ev(2)));
    const j = await Journal.open(f);
    expect(j.repairedBytes).toBe(0);
    await j.append(started(3));
    await j.close();
    expect((await readEvents(f)).map((e) => (e as { slot: number }).slot)).toEqual([1, 2, 3]);
  });

  it('refuses to open a journal that is a symlink', async () => {
    const d = await tmpDir();
    await fs.writeFile(path.join(d, 'elsewhere'), '');
    await fs.symlink(path.join(d, 'elsewhere'), path.join(d, 'events.jsonl'));
    await expectCode(Journal.open(path.join(d, 'events.jsonl')), 'path_escape');
  });

  it('fails with io when the folder does not exist', async () => {
    const d = await tmpDir();
    await expectCode(Journal.open(path.join(d, 'missing', 'events.jsonl')), 'io');
  });

  it('a write that fails half-way is cut back off, so no torn line is left in the middle', async () => {
    const f = await journalFile();
    const j = await Journal.open(f);
    await j.append(started(1));
    const proto = await fileHandleProto();
    const original = proto.write!;
    const spy = vi.spyOn(proto, 'write').mockImplementationOnce(async function (this: unknown, ...args: unknown[]) {
      const [buf, off, len] = args as [Buffer, number, number];
      await original.call(this, buf, off, Math.floor(len / 2));
      throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    });
    const err = await expectCode(j.append(started(2)), 'io');
    expect(err.retryable).toBe(true);
    expect(spy).toHaveBeenCalled();
    await j.append(started(3));
    await j.close();
    const contents = await readJournal(f);
    expect(contents.corrupt).toEqual([]);
    expect(contents.tornTailBytes).toBe(0);
    expect(contents.events.map((e) => (e as { slot: number }).slot)).toEqual([1, 3]);
  });

  it('if a failed write cannot be undone, the journal refuses further appends', async () => {
    const f = await journalFile();
    const j = await Journal.open(f);
    await j.append(started(1));
    const proto = await fileHandleProto();
    const original = proto.write!;
    vi.spyOn(proto, 'write').mockImplementationOnce(async function (this: unknown, ...args: unknown[]) {
      const [buf, off, len] = args as [Buffer, number, number];
      await original.call(this, buf, off, 5);
      throw Object.assign(new Error('EIO'), { code: 'EIO' });
    });
    vi.spyOn(proto, 'truncate').mockImplementationOnce(async () => {
      throw Object.assign(new Error('EIO truncate'), { code: 'EIO' });
    });
    await expectCode(j.append(started(2)), 'io');
    const err = await expectCode(j.append(started(3)), 'io');
    expect(err.message).toMatch(/unusable/);
    await j.close();
  });

  describe('sync policy', () => {
    async function countSyncs(sync: 'always' | 'boundaries' | 'never'): Promise<number> {
      const proto = await fileHandleProto();
      const spy = vi.spyOn(proto, 'datasync');
      const j = await Journal.open(await journalFile(), { sync });
      await j.append({ type: 'run.started', runId: 'r', name: 'n', agentCount: 3 });
      await j.append({ type: 'phase.started', phaseId: 'p' });
      await j.append(started(1));
      await j.append(started(2));
      await j.append({ type: 'phase.finished', phaseId: 'p', status: 'completed' });
      const n = spy.mock.calls.length;
      await j.close();
      expect(spy.mock.calls.length).toBe(n + 1); // close syncs
      spy.mockRestore();
      return n;
    }
    it('always: after every line', async () => expect(await countSyncs('always')).toBe(5));
    it('boundaries (default): after run.* and phase.* events', async () => expect(await countSyncs('boundaries')).toBe(3));
    it('never: only on close', async () => expect(await countSyncs('never')).toBe(0));
  });
});

describe('readEvents / readJournal', () => {
  async function withText(text: string | Buffer): Promise<string> {
    const f = await journalFile();
    await fs.writeFile(f, text);
    return f;
  }

  it('reads an empty journal as no events', async () => {
    expect(await readEvents(await withText(''))).toEqual([]);
  });

  it('not_found for a missing journal', async () => {
    await expectCode(readEvents(path.join(await tmpDir(), 'nope.jsonl')), 'not_found');
  });

  it('skips a torn final line (crash mid-append)', async () => {
    const whole = line(ev(1)) + line(ev(2));
    const torn = line(ev(3)).slice(0, 25);
    const f = await withText(whole + torn);
    expect((await readEvents(f)).map((e) => (e as { slot: number }).slot)).toEqual([1, 2]);
    const j = await readJournal(f);
    expect(j.tornTailBytes).toBe(25);
    expect(j.corrupt).toEqual([]);
  });

  it('skips a torn final line at every possible cut point', async () => {
    const full = line(ev(1)) + line(ev(2)) + line({ ...ev(3), extra: 'é😀' });
    const bytes = Buffer.from(full);
    const firstTwo = Buffer.byteLength(line(ev(1)) + line(ev(2)));
    for (let cut = firstTwo; cut <= bytes.length; cut++) {
      const f = await withText(bytes.subarray(0, cut));
      const slots = (await readEvents(f)).map((e) => (e as { slot: number }).slot);
      // A cut that keeps the whole third object (with or without its newline) keeps the event.
      expect(slots).toEqual(cut >= bytes.length - 1 ? [1, 2, 3] : [1, 2]);
    }
  });

  it('keeps a final event that only lost its newline', async () => {
    const f = await withText(line(ev(1)) + JSON.stringify(ev(2)));
    expect(await readEvents(f)).toHaveLength(2);
    expect((await readJournal(f)).tornTailBytes).toBe(0);
  });

  it('reports a corrupt line in the middle: readEvents throws naming it, readJournal returns the rest', async () => {
    const f = await withText(line(ev(1)) + '{"type":"agent.started", broken\n' + line(ev(3)) + 'not json\n' + line(ev(5)));
    const err = await expectCode(readEvents(f), 'corrupt');
    expect(err.message).toBe(`store: journal ${f} has 2 corrupt line(s): line 2, 4`);
    const j = await readJournal(f);
    expect(j.events.map((e) => (e as { slot: number }).slot)).toEqual([1, 3, 5]);
    expect(j.corrupt.map((c) => c.line)).toEqual([2, 4]);
    expect(j.corrupt[1]!.text).toBe('not json');
  });

  it('counts as corrupt: valid JSON that is not an event', async () => {
    const f = await withText(
      [line(ev(1)), '[]\n', '42\n', 'null\n', '{"type":"x"}\n', '{"t":"2025"}\n', '{"type":1,"t":"x"}\n', line(ev(2))].join(''),
    );
    const j = await readJournal(f);
    expect(j.events).toHaveLength(2);
    expect(j.corrupt.map((c) => c.line)).toEqual([2, 3, 4, 5, 6, 7]);
  });

  it('ignores blank lines, truncates long corrupt excerpts and names more than ten lines compactly', async () => {
    const bad = Array.from({ length: 12 }, () => `${'z'.repeat(500)}\n`).join('');
    const f = await withText(`\n${line(ev(1))}   \n${bad}${line(ev(2))}`);
    const j = await readJournal(f);
    expect(j.events).toHaveLength(2);
    expect(j.corrupt).toHaveLength(12);
    expect(j.corrupt[0]!.text).toHaveLength(200);
    const err = await expectCode(readEvents(f), 'corrupt');
    expect(err.message).toMatch(/12 corrupt line\(s\): line 4, 5, .*, 13 and 2 more$/);
  });

  it('parseEventLine accepts only objects with string type and t', () => {
    expect(parseEventLine(JSON.stringify(ev(1)))).toEqual(ev(1));
    for (const bad of ['', 'x', '[]', 'null', '{"type":"a"}', '{"t":"a"}', '{"type":"a","t":1}']) expect(parseEventLine(bad)).toBeUndefined();
  });

  it('respects maxBytes', async () => {
    const f = await withText(line(ev(1)).repeat(100));
    await expectCode(readEvents(f, { maxBytes: 100 }), 'too_large');
  });
});

describe('Journal.open repairs a torn tail before appending', () => {
  it('cuts a torn final line so the next append starts on its own line', async () => {
    const f = await journalFile();
    const torn = line(ev(3)).slice(0, 30);
    await fs.writeFile(f, line(ev(1)) + line(ev(2)) + torn);
    const j = await Journal.open(f);
    expect(j.repairedBytes).toBe(30);
    await j.append(started(4));
    await j.close();
    const contents = await readJournal(f);
    expect(contents.corrupt).toEqual([]);
    expect(contents.tornTailBytes).toBe(0);
    expect(contents.events.map((e) => (e as { slot: number }).slot)).toEqual([1, 2, 4]);
  });

  it('adds the missing newline after a whole final event instead of cutting it', async () => {
    const f = await journalFile();
    await fs.writeFile(f, line(ev(1)) + JSON.stringify(ev(2)));
    const j = await Journal.open(f);
    expect(j.repairedBytes).toBe(0);
    await j.append(started(3));
    await j.close();
    expect((await readEvents(f)).map((e) => (e as { slot: number }).slot)).toEqual([1, 2, 3]);
  });

  it('cuts a file that is one torn line to empty', async () => {
    const f = await journalFile();
    await fs.writeFile(f, '{"type":"agent.sta');
    const j = await Journal.open(f);
    expect(j.repairedBytes).toBe(18);
    expect(j.size).toBe(0);
    await j.append(started(1));
    await j.close();
    expect(await readEvents(f)).toHaveLength(1);
  });

  it('cuts a torn tail longer than the scan window (and longer than any line)', async () => {
    const f = await journalFile();
    const junk = 'x'.repeat(300 * 1024);
    await fs.writeFile(f, line(ev(1)) + junk);
    const j = await Journal.open(f, { maxLineBytes: 100 * 1024 });
    expect(j.repairedBytes).toBe(junk.length);
    await j.append(started(2));
    await j.close();
    expect((await readEvents(f)).map((e) => (e as { slot: number }).slot)).toEqual([1, 2]);
  });

  it('cuts a tail of NUL bytes (what some filesystems leave after a power loss)', async () => {
    const f = await journalFile();
    await fs.writeFile(f, Buffer.concat([Buffer.from(line(ev(1))), Buffer.alloc(4096)]));
    const j = await Journal.open(f);
    expect(j.repairedBytes).toBe(4096);
    await j.close();
    expect(await readEvents(f)).toHaveLength(1);
  });

  it('leaves a corrupt middle line alone (that is for a person to look at)', async () => {
    const f = await journalFile();
    await fs.writeFile(f, `${line(ev(1))}garbage\n${line(ev(2))}`);
    const j = await Journal.open(f);
    expect(j.repairedBytes).toBe(0);
    await j.close();
    expect((await readJournal(f)).corrupt.map((c) => c.line)).toEqual([2]);
  });
});

describe('Journal: crash for real', () => {
  it('SIGKILL during a stream of appends leaves only whole lines in order; a new writer continues cleanly', async () => {
    const mod = await storeModule();
    const f = await journalFile();
    let expected = 0;
    for (let round = 0; round < 4; round++) {
      const child = spawnNode(
        `
        const { Journal } = await import(ARGS[0]);
        const j = await Journal.open(ARGS[1], { sync: 'never' });
        let slot = Number(ARGS[2]);
        process.stdout.write('ready\\n');
        // Big-ish lines so a kill can land inside a write.
        const pad = 'p'.repeat(8000);
        for (;;) {
          const batch = [];
          for (let i = 0; i < 50; i++) batch.push(j.append({ type: 'agent.started', ref: 'map/x', key: pad, attempt: 1, slot: slot++ }));
          await Promise.all(batch);
        }
        `,
        [mod, f, String(expected)],
      );
      await child.waitFor('ready');
      await sleep(80 + round * 40);
      child.proc.kill('SIGKILL');
      await child.exited;
      const contents = await readJournal(f);
      expect(contents.corrupt).toEqual([]);
      const slots = contents.events.map((e) => (e as { slot: number }).slot);
      expect(slots).toEqual(Array.from({ length: slots.length }, (_, i) => i));
      expected = slots.length;
      // The next owner opens (repairing a torn tail, if the kill made one) and appends.
      const j = await Journal.open(f);
      await j.close();
      expect((await readJournal(f)).tornTailBytes).toBe(0);
    }
    expect(expected).toBeGreaterThan(0);
    console.log(`[journal] ${expected} events survived 4 SIGKILLs with no corrupt line`);
  });
});
