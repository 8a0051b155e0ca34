/**
 * Big outputs beside their records (issue 10 item 3): a record never exceeds what its readers
 * accept, the structured answer is not stored twice, and every reader gets at the whole output in
 * bounded pieces.
 */
import { afterAll, describe, expect, it } from 'vitest';
import fs from 'node:fs/promises';
import path from 'node:path';
import { RunStore } from '../../src/store/run-store.js';
import { OUTPUT_HEAD_BYTES, OUTPUT_INLINE_MAX_BYTES, utf8Head } from '../../src/store/agent-output.js';
import { DEFAULT_MAX_JSON_BYTES } from '../../src/store/atomic.js';
import { AGENT_RECORD_VERSION, SCHEMA_VERSION } from '../../src/store/types.js';
import { cleanupTmp, makeAgent, makeRun, tmpDir } from './helpers.js';

afterAll(cleanupTmp);

async function newStore(): Promise<RunStore> {
  return RunStore.create(await tmpDir(), makeRun('run1'));
}

/** ~`n` bytes of text with multi-byte characters and surrogate pairs sprinkled in. */
function text(n: number): string {
  const line = 'lease heartbeat journal — ünïcödé 😀 cache index\n';
  return line.repeat(Math.ceil(n / Buffer.byteLength(line))).slice(0, n);
}

describe('agent outputs beside their records', () => {
  it('keeps an output up to 1 MiB inline, as before', async () => {
    const s = await newStore();
    const output = text(OUTPUT_INLINE_MAX_BYTES - 100);
    await s.writeAgentRecord(makeAgent('run1', 'p', 't', 1, { output, structured: { a: 1 } }));
    expect((await fs.readdir(path.join(s.dir, 'agents'))).sort()).toEqual(['p.t.1.json']);
    const rec = await s.readAgentRecord('p.t.1.json');
    expect(rec.schemaVersion).toBe(AGENT_RECORD_VERSION);
    expect(rec.output).toBe(output);
    expect(rec.outputFile).toBeUndefined();
    expect(rec.structured).toEqual({ a: 1 });
    // Longer than what search indexes: the record says so.
    expect(rec.indexedBytes).toBe(OUTPUT_HEAD_BYTES);
    await s.close();
  });

  it('moves a bigger output to <file>.out, keeps its head in the record, and reads it back in pieces', async () => {
    const s = await newStore();
    const output = text(3 * 1024 * 1024 + 7);
    await s.writeAgentRecord(makeAgent('run1', 'p', 'big', 2, { output, outputBytes: Buffer.byteLength(output) }));
    expect((await fs.readdir(path.join(s.dir, 'agents'))).sort()).toEqual(['p.big.2.json', 'p.big.2.out']);
    expect(await fs.readFile(path.join(s.dir, 'agents', 'p.big.2.out'), 'utf8')).toBe(output);
    const rec = await s.readAgentRecord('p.big.2.json');
    expect(rec.outputFile).toBe('p.big.2.out');
    expect(rec.storedBytes).toBe(Buffer.byteLength(output));
    expect(rec.output).toBe(utf8Head(output, OUTPUT_HEAD_BYTES));
    expect(Buffer.byteLength(rec.output)).toBeLessThanOrEqual(OUTPUT_HEAD_BYTES);
    expect(output.startsWith(rec.output)).toBe(true);
    expect((await fs.stat(path.join(s.dir, 'agents', 'p.big.2.json'))).size).toBeLessThan(OUTPUT_INLINE_MAX_BYTES);

    // A bounded prefix, never a split character.
    const head = await s.readAgentOutput(rec, 100_001);
    expect(head.complete).toBe(false);
    expect(output.startsWith(head.text)).toBe(true);
    expect(Buffer.byteLength(head.text)).toBeLessThanOrEqual(100_001);
    expect(Buffer.byteLength(head.text)).toBeGreaterThan(100_001 - 4);
    const all = await s.readAgentOutput(rec, 64 * 1024 * 1024);
    expect(all.complete).toBe(true);
    expect(all.text).toBe(output);

    // The end, for steps that need what was printed last.
    for (const n of [1000, 1001, 1002, 1003]) {
      const tail = await s.readAgentOutputTail(rec, n);
      expect(output.endsWith(tail)).toBe(true);
      expect(Buffer.byteLength(tail)).toBeGreaterThan(n - 4);
    }

    // Pages (UTF-16 offsets) put back together are the output.
    const pages: string[] = [];
    let offset = 0;
    for (;;) {
      const page = await s.readAgentOutputPage(rec, offset, 700_000);
      expect(page.totalChars).toBe(output.length);
      pages.push(page.text);
      offset += page.text.length;
      if (offset >= page.totalChars) break;
    }
    expect(pages.join('')).toBe(output);

    // The whole as a stream.
    const chunks: Buffer[] = [];
    for await (const c of await s.agentOutputStream(rec)) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString('utf8')).toBe(output);
    await s.close();
  });

  it('stores 23 MB of JSON output once: the record stays small and names where the structured answer is', async () => {
    const s = await newStore();
    const items = Array.from({ length: 120_000 }, (_, i) => ({ id: i, title: `finding ${i}`, detail: 'x'.repeat(150), tags: ['a', 'b', 'c'] }));
    const output = JSON.stringify({ items });
    expect(output.length).toBeGreaterThan(22_000_000);
    await s.writeAgentRecord(makeAgent('run1', 'p', 'json', 1, { output, outputBytes: output.length, structured: { items } }));
    const size = (await fs.stat(path.join(s.dir, 'agents', 'p.json.1.json'))).size;
    // Today's main wrote the output and an indented copy of it: ~76 MB, over the read cap.
    expect(size).toBeLessThan(OUTPUT_INLINE_MAX_BYTES);
    expect(size).toBeLessThan(DEFAULT_MAX_JSON_BYTES);
    const rec = await s.readAgentRecord('p.json.1.json');
    expect(rec.structured).toBeUndefined();
    expect(rec.structuredIn).toBe('output');
    const whole = await s.readAgentOutput(rec, 64 * 1024 * 1024);
    expect(JSON.parse(whole.text)).toEqual({ items });
    await s.close();
  });

  it('still reads records of schema version 1', async () => {
    const s = await newStore();
    const v1 = makeAgent('run1', 'p', 'old', 1, { schemaVersion: SCHEMA_VERSION, output: 'old output' });
    await fs.writeFile(path.join(s.dir, 'agents', 'p.old.1.json'), JSON.stringify(v1));
    const rec = await s.readAgentRecord('p.old.1.json');
    expect(rec).toEqual(v1);
    expect((await s.readAgentOutput(rec, 1000)).text).toBe('old output');
    expect((await s.readAgentOutputPage(rec, 4, 3)).text).toBe('out');
    await s.close();
  });

  it('refuses a record that names another output file', async () => {
    const s = await newStore();
    await fs.writeFile(path.join(s.dir, 'agents', 'p.x.1.json'), JSON.stringify(makeAgent('run1', 'p', 'x', 1, {
      schemaVersion: AGENT_RECORD_VERSION, outputFile: '../run.json', storedBytes: 10,
    })));
    const rec = await s.readAgentRecord('p.x.1.json');
    await expect(s.readAgentOutput(rec, 100)).rejects.toMatchObject({ code: 'corrupt' });
    await s.close();
  });
});
