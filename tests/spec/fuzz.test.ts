/**
 * Property tests: junk never crashes the spec layer. Whatever goes in, parseSpecText and buildPlan
 * either succeed or throw SpecError, and validateSpec either succeeds or returns issues — no other
 * exception, no files written.
 */
import fc from 'fast-check';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { SpecError, buildPlan, parseSpecText, renderPlan, validateSpec, type SpecIssue } from '../../src/spec/index.js';
import { EXAMPLE_YAML, example } from './fixtures.js';

/** Scale for the number of runs: `SPEC_FUZZ_SCALE=20 npx vitest run tests/spec/fuzz.test.ts` fuzzes deeper. */
const SCALE = Math.max(1, Number(process.env.SPEC_FUZZ_SCALE ?? 1) || 1);
const runs = (n: number) => ({ numRuns: n * SCALE });

function expectWellFormedIssues(issues: SpecIssue[]): void {
  expect(issues.length).toBeGreaterThan(0);
  expect(issues.length).toBeLessThanOrEqual(51);
  for (const i of issues) {
    expect(typeof i.path).toBe('string');
    expect(typeof i.message).toBe('string');
    expect(i.message.length).toBeGreaterThan(0);
    expect(i.message.length).toBeLessThan(2000);
  }
}

/** Runs the whole pipeline on a value: only SpecError may escape buildPlan. */
function checkValue(value: unknown): void {
  const r = validateSpec(value);
  if (r.ok) {
    expect(r.plan.agentCount).toBe(r.plan.tasks.length);
    expect(typeof renderPlan(r.plan)).toBe('string');
  } else {
    expectWellFormedIssues(r.issues);
  }
  try {
    buildPlan(value);
  } catch (err) {
    if (!(err instanceof SpecError)) throw err;
  }
}

/** Runs parse then validate on text: only SpecError may escape. */
function checkText(text: string): void {
  let value: unknown;
  try {
    value = parseSpecText(text);
  } catch (err) {
    if (!(err instanceof SpecError)) throw err;
    expectWellFormedIssues(err.issues);
    return;
  }
  checkValue(value);
}

// buildPlan is pure: run everything from an empty cwd and check it stays empty.
let cwd: string;
let previous: string;
beforeAll(() => {
  previous = process.cwd();
  cwd = mkdtempSync(path.join(tmpdir(), 'fanfold-fuzz-'));
  process.chdir(cwd);
});
afterAll(() => {
  process.chdir(previous);
  expect(readdirSync(cwd)).toEqual([]);
  rmSync(cwd, { recursive: true, force: true });
});

describe('junk never crashes', () => {
  test('fc.anything() through validateSpec and buildPlan', () => {
    fc.assert(fc.property(fc.anything({ withNullPrototype: true, withBoxedValues: true, withSparseArray: true }), checkValue),
      runs(400),
    );
  });

  test('random strings through parseSpecText', () => {
    // Code points drawn directly (fast-check's `unit: 'binary'` is ~300× slower to generate);
    // mostly ASCII so YAML structure shows up, with the full range including lone surrogates.
    const codePoint = fc.oneof(
      { weight: 4, arbitrary: fc.integer({ min: 0, max: 0x7f }) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 0x10ffff }) },
    );
    const text = fc.array(codePoint, { maxLength: 300 }).map((cs) => cs.map((c) => String.fromCodePoint(c)).join(''));
    fc.assert(fc.property(text, checkText), runs(1000));
  });

  test('random YAML-ish text through parseSpecText', () => {
    const token = fc.constantFrom(
      'version: 1\n', 'name: x\n', 'phases:\n', '  - id: a\n', '    tasks:\n', '      - {id: t, prompt: p}\n',
      '&a ', '*a', '[', ']', '{', '}', ':', '- ', '"', "'", '#', '\t', '  ', '\n', '---\n', '!!binary ', '? ', '|\n', '>\n',
      'dependsOn: [a]\n', '1e400', '.inf', '~', 'null', '<<: *a\n',
    );
    fc.assert(fc.property(fc.array(token, { maxLength: 40 }).map((ts) => ts.join('')), checkText), runs(300));
  });

  test('mutations of the valid spec', () => {
    const junk = fc.oneof(
      fc.anything({ maxDepth: 2 }),
      fc.constantFrom('', 'map', 'map/core', 'rank', 'shell', 'a/b/c', '__proto__', 'constructor', '../x', 'x'.repeat(70), '10m', -1, 0, 1e9, null),
    );
    // A mutation: a path into the example (as indexes into sorted keys) and what to do there.
    const mutation = fc.record({
      path: fc.array(fc.nat({ max: 20 }), { minLength: 1, maxLength: 5 }),
      op: fc.constantFrom('set', 'delete', 'rename', 'push'),
      value: junk,
      key: fc.constantFrom('dependOn', 'agent', 'tasks', 'id', 'extra', 'dependsOn', 'prompt', 'runner'),
    });
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (mutations) => {
        const spec: unknown = example();
        for (const m of mutations) mutate(spec, m);
        checkValue(spec);
        checkText(JSON.stringify(spec) ?? 'null');
      }),
      runs(400),
    );
  });

  test('valid specs built at random always produce a consistent plan', () => {
    const id = fc.constantFrom('a', 'b', 'c', 'd', 'e');
    const arb = fc.array(
      fc.record({
        deps: fc.array(id, { maxLength: 3 }),
        tasks: fc.array(fc.record({ id, prompt: fc.string({ minLength: 1, maxLength: 5 }), deps: fc.array(fc.tuple(id, id), { maxLength: 2 }) }), {
          minLength: 1,
          maxLength: 4,
        }),
      }),
      { minLength: 1, maxLength: 5 },
    );
    fc.assert(
      fc.property(arb, (raw) => {
        const ids = ['a', 'b', 'c', 'd', 'e'];
        const spec = {
          version: 1,
          name: 'random',
          agents: { sh: { runner: 'command', command: ['true'] } },
          phases: raw.map((p, i) => ({
            id: ids[i]!,
            dependsOn: p.deps,
            tasks: p.tasks.map((t) => ({ id: t.id, prompt: t.prompt, dependsOn: t.deps.map(([ph, tk]) => `${ph}/${tk}`) })),
          })),
        };
        const r = validateSpec(spec);
        if (!r.ok) {
          expectWellFormedIssues(r.issues);
          return;
        }
        const plan = r.plan;
        const at = new Map(plan.tasks.map((t, i) => [t.ref, i]));
        expect(at.size).toBe(plan.tasks.length);
        for (const t of plan.tasks) for (const d of t.deps) expect(at.get(d)!).toBeLessThan(at.get(t.ref)!);
        expect(new Set(plan.tasks.map((t) => t.key)).size).toBe(plan.tasks.length);
        expect(plan.criticalPath.length).toBeGreaterThanOrEqual(1);
        expect(validateSpec(spec)).toEqual(r); // deterministic
      }),
      runs(200),
    );
  });
});

test('the example YAML survives single-character deletions without a crash', () => {
  // Every third position (every position with SPEC_FUZZ_SCALE > 1).
  const step = SCALE > 1 ? 1 : 3;
  for (let i = 0; i < EXAMPLE_YAML.length; i += step) checkText(EXAMPLE_YAML.slice(0, i) + EXAMPLE_YAML.slice(i + 1));
});

interface Mutation {
  path: number[];
  op: 'set' | 'delete' | 'rename' | 'push';
  value: unknown;
  key: string;
}

/** Applies one mutation at a path chosen by index into each level's sorted keys. */
function mutate(root: unknown, m: Mutation): void {
  let node = root as Record<string, unknown>;
  for (let depth = 0; depth < m.path.length; depth++) {
    if (node === null || typeof node !== 'object') return;
    const keys = Object.keys(node).sort();
    if (keys.length === 0) return;
    const key = keys[m.path[depth]! % keys.length]!;
    const last = depth === m.path.length - 1;
    const child = node[key];
    if (!last && child !== null && typeof child === 'object') {
      node = child as Record<string, unknown>;
      continue;
    }
    switch (m.op) {
      case 'set':
        node[key] = m.value;
        break;
      case 'delete':
        if (Array.isArray(node)) node.splice(Number(key), 1);
        else delete node[key];
        break;
      case 'rename':
        if (!Array.isArray(node)) {
          node[m.key] = node[key];
          if (m.key !== key) delete node[key];
        }
        break;
      case 'push':
        if (Array.isArray(child)) child.push(m.value);
        else if (Array.isArray(node)) node.push(m.value);
        else node[m.key] = m.value;
        break;
    }
    return;
  }
}
