/**
 * Structured output: finding JSON in an answer, checking it against a task schema, the prompt
 * additions, and the command runner's use of them.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { CommandRunner } from '../../src/runners/command.js';
import { checkStructured, compileSchema, extractJson, isObjectSchema, schemaInstructions, withFeedback } from '../../src/runners/structured.js';
import type { RunnerInput } from '../../src/runners/types.js';

const SCHEMA = {
  type: 'object',
  properties: { refuted: { type: 'boolean' }, reasons: { type: 'array', items: { type: 'string' }, minItems: 1 } },
  required: ['refuted', 'reasons'],
  additionalProperties: false,
};

describe('extractJson', () => {
  it.each([
    ['{"a":1}', { a: 1 }, 'whole'],
    ['  [1, 2]\n', [1, 2], 'whole'],
    ['Here you go:\n```json\n{"a": 1}\n```\nThanks.', { a: 1 }, 'fence'],
    ['```json\n{"a": 1}\n```\nand a better one:\n```json\n{"a": 2}\n```', { a: 2 }, 'fence'],
    ['```\n{"a": 3}\n```', { a: 3 }, 'fence'],
    ['```ts\nconst x = 1;\n```\n```json\n{"a": 4}\n```', { a: 4 }, 'fence'],
    ['The verdict is {"refuted": false, "reasons": ["ok"]} as shown.', { refuted: false, reasons: ['ok'] }, 'braces'],
    ['List: [1, 2, 3] done', [1, 2, 3], 'braces'],
  ])('%j', (text, value, from) => {
    expect(extractJson(text)).toEqual({ ok: true, value, from });
  });

  it('says why nothing was found', () => {
    expect(extractJson('')).toEqual({ ok: false, reason: 'the answer is empty' });
    expect(extractJson('no json at all')).toMatchObject({ ok: false, reason: expect.stringContaining('no JSON found') });
    expect(extractJson('```json\n{"a": }\n```')).toMatchObject({ ok: false, reason: expect.stringContaining('the fenced JSON block does not parse') });
  });

  it('finds any JSON value wrapped in prose and a fence (property)', () => {
    const json = fc.jsonValue().filter((v) => v !== null && typeof v === 'object');
    fc.assert(
      fc.property(json, fc.string().filter((s) => !s.includes('`')), (value, prose) => {
        const text = `${prose}\n\`\`\`json\n${JSON.stringify(value, null, 2)}\n\`\`\`\n`;
        const r = extractJson(text);
        expect(r.ok).toBe(true);
        if (r.ok) expect(r.value).toEqual(JSON.parse(JSON.stringify(value)));
      }),
      { numRuns: 200 },
    );
  });
});

describe('checkStructured', () => {
  it('accepts a matching answer and returns the value', () => {
    expect(checkStructured(SCHEMA, '```json\n{"refuted": true, "reasons": ["x.ts:3 says so"]}\n```')).toEqual({
      ok: true,
      value: { refuted: true, reasons: ['x.ts:3 says so'] },
    });
    expect(checkStructured(SCHEMA, 'ignored', { value: { refuted: false, reasons: ['r'] } })).toMatchObject({ ok: true });
  });

  it('refuses a mismatch with every validation error, retryable', () => {
    const r = checkStructured(SCHEMA, '{"refuted": "yes", "extra": 1}');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error).toMatchObject({ type: 'invalid_structured_output', retryable: true });
    expect(r.error.message).toContain("must have required property 'reasons'");
    expect(r.error.message).toContain('must NOT have additional properties');
    expect(r.error.message).toContain('data/refuted must be boolean');
  });

  it('refuses an answer without JSON', () => {
    const r = checkStructured(SCHEMA, 'I think it holds.');
    expect(r).toMatchObject({ ok: false, error: { type: 'invalid_structured_output', message: expect.stringMatching(/^the answer is not JSON/) } });
  });

  it('a schema that does not compile is a config error, not the model\'s fault', () => {
    const r = checkStructured({ type: 'strnig' }, '"x"');
    expect(r).toMatchObject({ ok: false, error: { type: 'config', retryable: false, message: expect.stringContaining('not a valid JSON Schema') } });
    expect(() => compileSchema({ type: 'strnig' })).toThrow(/type must be JSONType/);
  });

  it('caps the list of errors', () => {
    const props = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`p${i}`, { type: 'string' }]));
    const r = checkStructured({ type: 'object', properties: props, required: Object.keys(props) }, '{}');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message).toMatch(/\(and 18 more\)$/);
  });

  it('compiles a schema with $id twice without complaint (ids are dropped)', () => {
    expect(compileSchema({ $id: 'x', type: 'string' })('s')).toBeUndefined();
    expect(compileSchema({ $id: 'x', type: 'integer' })('s')).toContain('must be integer');
  });
});

describe('prompt additions', () => {
  it('isObjectSchema', () => {
    expect(isObjectSchema({ type: 'object' })).toBe(true);
    expect(isObjectSchema({ properties: {} })).toBe(true);
    expect(isObjectSchema({ type: 'array' })).toBe(false);
    expect(isObjectSchema({})).toBe(false);
  });

  it('schemaInstructions and withFeedback', () => {
    expect(schemaInstructions({ type: 'integer' })).toBe(
      '\n\n---\nWhen you are done, end your answer with exactly one JSON value that matches this JSON Schema,\n' +
        'in a ```json fenced block, with nothing after the block:\n```json\n{\n  "type": "integer"\n}\n```',
    );
    expect(withFeedback('P', undefined)).toBe('P');
    expect(withFeedback('P', '  ')).toBe('P');
    expect(withFeedback('P', 'x'.repeat(5000)).length).toBeLessThan(2200);
  });
});

describe('command runner with a task schema', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fanfold-structured-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const input = (script: string, more: Partial<RunnerInput> = {}): RunnerInput => {
    const file = join(dir, `s${Math.random().toString(36).slice(2)}.mjs`);
    writeFileSync(file, script);
    return {
      runId: 'r', phaseId: 'p', taskId: 't', attempt: 1, prompt: 'x',
      agent: { name: 'cmd', runner: 'command', tier: 'read_only', command: [process.execPath, file] },
      cwd: dir, promptFile: join(dir, 'p'), contextFile: join(dir, 'c'),
      timeoutMs: 10_000, maxOutputBytes: 4096, signal: new AbortController().signal,
      schema: SCHEMA, ...more,
    };
  };

  it('valid JSON in a fence → structured', async () => {
    const r = await new CommandRunner().run(input('console.log("done\\n```json\\n" + JSON.stringify({refuted:false,reasons:["a"]}) + "\\n```")'));
    expect(r).toMatchObject({ status: 'succeeded', structured: { refuted: false, reasons: ['a'] } });
  });

  it('valid JSON not matching → failed invalid_structured_output, output kept', async () => {
    const r = await new CommandRunner().run(input('console.log(JSON.stringify({refuted:false}))'));
    expect(r).toMatchObject({ status: 'failed', error: { type: 'invalid_structured_output', retryable: true }, output: '{"refuted":false}\n' });
    expect(r.structured).toBeUndefined();
  });

  it('cut output cannot be checked', async () => {
    const r = await new CommandRunner().run(input('process.stdout.write("x".repeat(5000))'));
    expect(r.error).toMatchObject({ type: 'invalid_structured_output', message: expect.stringContaining('cut at 4096 bytes') });
  });

  it('without a schema the command runner is unchanged (whole-JSON stdout → structured)', async () => {
    const r = await new CommandRunner().run(input('console.log("[1,2]")', { schema: undefined }));
    expect(r).toMatchObject({ status: 'succeeded', structured: [1, 2] });
  });
});
