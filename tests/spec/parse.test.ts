import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import {
  MAX_SPEC_BYTES,
  SpecError,
  buildPlan,
  loadSpecFile,
  parseSpecText,
} from '../../src/spec/index.js';
import { EXAMPLE_YAML, example } from './fixtures.js';

/** The SpecError a call throws (fails when it throws nothing or something else). */
function specErrorOf(fn: () => unknown): SpecError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SpecError);
    return err as SpecError;
  }
  throw new Error('expected a SpecError, nothing was thrown');
}

describe('parseSpecText', () => {
  test('YAML: the example parses to the plain object', () => {
    expect(parseSpecText(EXAMPLE_YAML)).toEqual(example());
  });

  test('JSON parses the same (JSON is YAML 1.2)', () => {
    expect(parseSpecText(JSON.stringify(example()))).toEqual(example());
    expect(parseSpecText(JSON.stringify(example(), null, 2))).toEqual(example());
    expect(parseSpecText(JSON.stringify(example(), null, '\t'))).toEqual(example());
  });

  test('YAML and JSON of the same spec give the same plan, keys included', () => {
    const a = buildPlan(parseSpecText(EXAMPLE_YAML));
    const b = buildPlan(parseSpecText(JSON.stringify(example())));
    expect(b).toEqual(a);
  });

  test('a syntax error names line and column and the source', () => {
    const text = 'version: 1\nname: x\nphases:\n  - id: a\n    tasks: [ { id: t, prompt: "x" } ]]\n';
    const err = specErrorOf(() => parseSpecText(text, 'wf.yaml'));
    expect(err.issues[0]!.path).toBe('');
    expect(err.issues[0]!.message).toBe(
      'wf.yaml: syntax error at line 5, column 38: Unexpected flow-seq-end token in YAML stream: "]"\n' +
        '    4 |   - id: a\n' +
        '  > 5 |     tasks: [ { id: t, prompt: "x" } ]]\n' +
        '      |                                      ^',
    );
    expect(err.message).toMatch(/^spec: wf\.yaml: syntax error at line 5/);
  });

  test('a JSON syntax error names its line', () => {
    const text = '{\n  "version": 1,\n  "name": "x",,\n  "phases": []\n}';
    const err = specErrorOf(() => parseSpecText(text));
    expect(err.issues[0]!.message).toMatch(/^spec: syntax error at line 3, column \d+/);
  });

  test('duplicate keys are a syntax error, not a silent overwrite', () => {
    const err = specErrorOf(() => parseSpecText('version: 1\nname: a\nname: b\n'));
    expect(err.issues[0]!.message).toMatch(/line 3, column 1: Map keys must be unique/);
  });

  test('several syntax errors are listed, at most five plus a count', () => {
    const text = Array.from({ length: 10 }, (_, i) => `k${i}: [\n`).join('') + 'x: "\n';
    const err = specErrorOf(() => parseSpecText(text));
    expect(err.issues.length).toBeGreaterThan(0);
    expect(err.issues.length).toBeLessThanOrEqual(6);
  });

  test('an empty or comment-only document is refused', () => {
    for (const text of ['', '   \n', '# nothing here\n']) {
      const err = specErrorOf(() => parseSpecText(text, 'e.yaml'));
      expect(err.issues).toEqual([{ path: '', message: 'e.yaml: the spec is empty' }]);
    }
  });

  test('more than one YAML document is refused', () => {
    const err = specErrorOf(() => parseSpecText('a: 1\n---\nb: 2\n'));
    expect(err.issues[0]!.message).toMatch(/line 2, column 1: .*multiple documents/);
  });

  test('text over 2 MiB is refused before parsing', () => {
    const big = 'x'.repeat(MAX_SPEC_BYTES + 1);
    const err = specErrorOf(() => parseSpecText(big, 'big.yaml'));
    expect(err.issues[0]!.message).toBe('big.yaml: the spec is 2.0 MiB, over the 2.0 MiB limit; split the workflow');
    // Multi-byte characters count as bytes, not characters.
    const wide = 'é'.repeat(MAX_SPEC_BYTES / 2 + 1);
    specErrorOf(() => parseSpecText(wide));
    // Just under the limit is parsed (and is then a plain string, not a spec).
    expect(parseSpecText('x'.repeat(MAX_SPEC_BYTES - 10))).toHaveLength(MAX_SPEC_BYTES - 10);
  });

  test('a YAML alias bomb is refused quickly', () => {
    const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    const names = 'abcdefghi';
    for (let i = 1; i < names.length; i++) {
      const ref = `*${names[i - 1]}`;
      levels.push(`${names[i]}: &${names[i]} [${Array(9).fill(ref).join(',')}]`);
    }
    const started = Date.now();
    const err = specErrorOf(() => parseSpecText(levels.join('\n')));
    expect(err.issues[0]!.message).toMatch(/YAML aliases expand past 100 nodes/);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  test('a few aliases are fine', () => {
    const text = 'base: &b { runner: claude }\nagents:\n  a: *b\n  c: *b\n';
    expect(parseSpecText(text)).toEqual({ base: { runner: 'claude' }, agents: { a: { runner: 'claude' }, c: { runner: 'claude' } } });
  });

  test('a __proto__ key stays a plain key and never touches the prototype', () => {
    const value = parseSpecText('{"__proto__": {"polluted": true}, "version": 1}') as Record<string, unknown>;
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const issues = (() => {
      try {
        buildPlan(value);
      } catch (e) {
        return (e as SpecError).issues;
      }
      return [];
    })();
    expect(issues).toContainEqual({ path: '__proto__', message: expect.stringMatching(/^unknown key '__proto__'/) });
  });

  test('a non-string argument is a SpecError, not a crash', () => {
    specErrorOf(() => parseSpecText(42 as unknown as string));
  });
});

describe('loadSpecFile', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'fanfold-spec-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('reads and parses a YAML file, returning the text too', async () => {
    const file = path.join(dir, 'census.yaml');
    writeFileSync(file, EXAMPLE_YAML);
    const { spec, text } = await loadSpecFile(file);
    expect(text).toBe(EXAMPLE_YAML);
    expect(buildPlan(spec).name).toBe('todo-census');
  });

  test('reads a JSON file with a byte-order mark', async () => {
    const file = path.join(dir, 'census.json');
    writeFileSync(file, '\uFEFF' + JSON.stringify(example()));
    const { spec } = await loadSpecFile(file);
    expect(spec).toEqual(example());
  });

  test('a missing file is a SpecError in words (no raw ENOENT), naming the spec files next to it', async () => {
    const file = path.join(dir, 'nope.yaml');
    writeFileSync(path.join(dir, 'real.yaml'), 'version: 1\n');
    const err = await loadSpecFile(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpecError);
    const message = (err as SpecError).issues[0]!.message;
    expect(message).toMatch(/^no spec file '.*nope\.yaml'; spec files there: .*real\.yaml/);
    expect(message).not.toMatch(/ENOENT/);
  });

  test('a directory is refused', async () => {
    const sub = path.join(dir, 'sub');
    mkdirSync(sub);
    const err = await loadSpecFile(sub).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpecError);
    expect((err as SpecError).message).toMatch(/cannot read spec file '.*sub'/);
  });

  test('a file over 2 MiB is refused without parsing it', async () => {
    const file = path.join(dir, 'big.yaml');
    writeFileSync(file, Buffer.alloc(MAX_SPEC_BYTES + 100, 0x61));
    const err = await loadSpecFile(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpecError);
    expect((err as SpecError).issues[0]!.message).toMatch(/is 2\.0 MiB, over the 2\.0 MiB limit/);
  });

  test('a syntax error names the file, line and column', async () => {
    const file = path.join(dir, 'broken.yaml');
    writeFileSync(file, 'version: 1\nname: [unclosed\n');
    const err = await loadSpecFile(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpecError);
    expect((err as SpecError).issues[0]!.message).toMatch(/broken\.yaml: syntax error at line \d+, column \d+/);
  });
});
