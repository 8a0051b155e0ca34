import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildContextFile, MIN_CONTEXT_BYTES, renderPrompt, type ContextDep, type ContextFile } from '../../src/digest/index.js';

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

describe('renderPrompt', () => {
  const digests = { map: 'map — 3 tasks: 3 succeeded\n▸ a: found 2', scan: 'scan — 1 task: 1 succeeded' };

  it('fills {{digest}} with the digests of the phases the task depends on, each under its id', () => {
    const out = renderPrompt('Context:\n{{digest}}\nGo.', { digests, deps: ['map', 'scan'] });
    expect(out).toBe(`Context:\n## map\n${digests.map}\n\n## scan\n${digests.scan}\nGo.`);
  });

  it('says so visibly when a dependency has no digest or there are no deps', () => {
    expect(renderPrompt('{{digest}}', { digests, deps: ['map', 'gone'] })).toContain("## gone\n[no digest for phase 'gone']");
    expect(renderPrompt('{{digest}}', { digests, deps: [] })).toBe('[no digest: this task depends on no phase]');
  });

  it('fills {{digest.<phaseId>}} and marks unknown phases', () => {
    expect(renderPrompt('A {{digest.scan}} B', { digests, deps: [] })).toBe(`A ${digests.scan} B`);
    expect(renderPrompt('{{ digest.map }}', { digests, deps: [] })).toBe(digests.map);
    expect(renderPrompt('{{digest.nope}}', { digests, deps: [] })).toBe("[no digest for phase 'nope']");
    expect(renderPrompt('{{digest.toString}}', { digests, deps: [] })).toBe("[no digest for phase 'toString']");
  });

  it('fills {{item}} and {{item.path}}', () => {
    const item = { path: 'src/a.ts', meta: { lines: 120, tags: ['x', 'y'] } };
    expect(renderPrompt('Read {{item.path}} ({{item.meta.lines}} lines, tag {{item.meta.tags.1}})', { digests, deps: [], item })).toBe(
      'Read src/a.ts (120 lines, tag y)',
    );
    expect(renderPrompt('{{item}}', { digests, deps: [], item: 'plain string' })).toBe('plain string');
    expect(renderPrompt('{{item}}', { digests, deps: [], item })).toBe(JSON.stringify(item));
    expect(renderPrompt('{{item.meta}}', { digests, deps: [], item })).toBe('{"lines":120,"tags":["x","y"]}');
    expect(renderPrompt('{{item}}', { digests, deps: [], item: 0 })).toBe('0');
  });

  it('leaves unknown placeholders, missing items and missing paths as they are', () => {
    const t = '{{unknown}} {{item}} {{item.x}} {{ digests }} {{}} {{digest.}} {x}';
    expect(renderPrompt(t, { digests, deps: [] })).toBe("{{unknown}} {{item}} {{item.x}} {{ digests }} {{}} [no digest for phase ''] {x}");
    expect(renderPrompt('{{item.missing}} {{item.constructor}} {{item.__proto__}}', { digests, deps: [], item: { a: 1 } })).toBe(
      '{{item.missing}} {{item.constructor}} {{item.__proto__}}',
    );
  });

  it('never expands placeholders found inside inserted text', () => {
    const out = renderPrompt('{{digest.map}} / {{item}}', { digests: { map: 'says {{item}} and {{digest.map}}' }, deps: [], item: 'X' });
    expect(out).toBe('says {{item}} and {{digest.map}} / X');
  });
});

/** Parses and checks the shape of a context file. */
function parse(text: string): ContextFile {
  const file = JSON.parse(text) as ContextFile;
  expect(file.schemaVersion).toBe(1);
  expect(typeof file.digests).toBe('object');
  expect(Array.isArray(file.deps)).toBe(true);
  for (const d of file.deps) {
    expect(typeof d.ref).toBe('string');
    expect(typeof d.output).toBe('string');
    expect(typeof d.truncated).toBe('boolean');
  }
  return file;
}

describe('buildContextFile', () => {
  it('passes small deps through whole', () => {
    const deps: ContextDep[] = [
      { ref: 'map/a', status: 'succeeded', output: 'alpha', structured: { n: 1 } },
      { ref: 'map/b', status: 'succeeded', output: 'beta' },
    ];
    const file = parse(buildContextFile({ deps, digests: { map: 'digest' }, maxBytes: 65536 }));
    expect(file).toEqual({
      schemaVersion: 1,
      digests: { map: 'digest' },
      deps: [
        { ref: 'map/a', status: 'succeeded', output: 'alpha', truncated: false, structured: { n: 1 } },
        { ref: 'map/b', status: 'succeeded', output: 'beta', truncated: false },
      ],
    });
  });

  it('keeps an upstream truncation mark', () => {
    const file = parse(buildContextFile({ deps: [{ ref: 'a/b', status: 'succeeded', output: 'x', truncated: true }], digests: {}, maxBytes: 4096 }));
    expect(file.deps[0]!.truncated).toBe(true);
  });

  it('never exceeds maxBytes with many huge deps, and shares the budget fairly', () => {
    const huge = 'line of output with "quotes", \\ backslashes, tabs\t and ünïcødé 🎉\n'.repeat(16_000); // ~1.1 MB
    const deps: ContextDep[] = Array.from({ length: 200 }, (_, i) => ({ ref: `map/t${i}`, status: 'succeeded', output: huge, structured: { i, big: 'y'.repeat(5000) } }));
    for (const maxBytes of [1024, 4096, 65_536, 1_000_000]) {
      const text = buildContextFile({ deps, digests: { map: 'd'.repeat(100_000) }, maxBytes });
      expect(bytes(text)).toBeLessThanOrEqual(maxBytes);
      const file = parse(text);
      const listed = file.deps.length + (file.omittedDeps ?? 0);
      expect(listed).toBe(200);
      if (maxBytes / 4 < 100_000) {
        expect(file.digestsTruncated).toBe(true);
        expect(bytes(file.digests.map!)).toBeLessThanOrEqual(maxBytes / 4);
      } else {
        expect(file.digests.map).toBe('d'.repeat(100_000));
      }
      for (const d of file.deps) {
        expect(d.truncated).toBe(true);
        expect(huge.startsWith(d.output)).toBe(true);
        expect(d.output).not.toContain('\ufffd');
      }
      if (maxBytes >= 65_536) {
        expect(file.omittedDeps).toBeUndefined();
        const sizes = file.deps.map((d) => bytes(d.output));
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThan(16);
        // Most of the budget is used.
        expect(bytes(text)).toBeGreaterThan(maxBytes * 0.95);
      }
    }
  });

  it('gives small deps all they need and shares the rest among the big ones', () => {
    const deps: ContextDep[] = [
      { ref: 'a/small1', status: 'succeeded', output: 'tiny result' },
      { ref: 'a/big1', status: 'succeeded', output: 'x'.repeat(500_000) },
      { ref: 'a/small2', status: 'failed', output: 'short error output' },
      { ref: 'a/big2', status: 'succeeded', output: 'z'.repeat(500_000) },
    ];
    const file = parse(buildContextFile({ deps, digests: {}, maxBytes: 20_000 }));
    expect(file.deps[0]).toEqual({ ref: 'a/small1', status: 'succeeded', output: 'tiny result', truncated: false });
    expect(file.deps[2]).toEqual({ ref: 'a/small2', status: 'failed', output: 'short error output', truncated: false });
    expect(file.deps[1]!.truncated).toBe(true);
    expect(Math.abs(file.deps[1]!.output.length - file.deps[3]!.output.length)).toBeLessThan(4);
    expect(file.deps[1]!.output.length).toBeGreaterThan(9000);
  });

  it('cuts on UTF-8 boundaries (no broken characters)', () => {
    const deps: ContextDep[] = [{ ref: 'a/emoji', status: 'succeeded', output: '🎉é中'.repeat(10_000) }];
    for (let maxBytes = 300; maxBytes < 340; maxBytes++) {
      const text = buildContextFile({ deps, digests: {}, maxBytes });
      expect(bytes(text)).toBeLessThanOrEqual(maxBytes);
      const out = parse(text).deps[0]!.output;
      expect(out).not.toMatch(/[\ud800-\udbff]$/);
      expect('🎉é中'.repeat(10_000).startsWith(out)).toBe(true);
    }
  });

  it('keeps a structured result when it fits and marks it omitted when it does not', () => {
    const small = parse(buildContextFile({ deps: [{ ref: 'a/s', status: 'succeeded', output: 'o'.repeat(100_000), structured: { count: 3 } }], digests: {}, maxBytes: 2048 }));
    expect(small.deps[0]!.structured).toEqual({ count: 3 });
    expect(small.deps[0]!.truncated).toBe(true);
    const big = parse(buildContextFile({ deps: [{ ref: 'a/s', status: 'succeeded', output: 'o', structured: { blob: 'b'.repeat(100_000) } }], digests: {}, maxBytes: 2048 }));
    expect(big.deps[0]!.structured).toBeUndefined();
    expect(big.deps[0]!.structuredOmitted).toBe(true);
  });

  it('counts the deps that cannot fit even empty', () => {
    const deps: ContextDep[] = Array.from({ length: 5000 }, (_, i) => ({ ref: `p/task-${i}`, status: 'succeeded', output: 'out' }));
    const text = buildContextFile({ deps, digests: {}, maxBytes: 8192 });
    expect(bytes(text)).toBeLessThanOrEqual(8192);
    const file = parse(text);
    expect(file.omittedDeps).toBeGreaterThan(0);
    expect(file.deps.length + file.omittedDeps!).toBe(5000);
    expect(file.deps[0]!.ref).toBe('p/task-0');
  });

  it('refuses a budget below the skeleton', () => {
    expect(() => buildContextFile({ deps: [], digests: {}, maxBytes: 10 })).toThrow(/at least 256, got 10/);
    expect(() => buildContextFile({ deps: [], digests: {}, maxBytes: Number.NaN })).toThrow(RangeError);
    expect(parse(buildContextFile({ deps: [], digests: {}, maxBytes: MIN_CONTEXT_BYTES }))).toEqual({ schemaVersion: 1, digests: {}, deps: [] });
  });

  it('never exceeds maxBytes and always parses (property)', () => {
    const dep = fc.record({
      ref: fc.string({ maxLength: 40 }),
      status: fc.constantFrom('succeeded', 'failed', 'timed_out' as const),
      output: fc.oneof(fc.string({ maxLength: 4000 }), fc.string({ unit: 'binary', maxLength: 4000 }), fc.string({ unit: fc.constantFrom('"', '\\', '\u0000', '🎉', 'é', '\n', 'a'), maxLength: 6000 })),
      structured: fc.option(fc.jsonValue({ maxDepth: 3 }), { nil: undefined }),
    });
    fc.assert(
      fc.property(
        fc.array(dep, { maxLength: 30 }),
        fc.dictionary(fc.string({ maxLength: 20 }), fc.string({ maxLength: 3000 }), { maxKeys: 8 }),
        fc.integer({ min: MIN_CONTEXT_BYTES, max: 40_000 }),
        (deps, digests, maxBytes) => {
          const text = buildContextFile({ deps: deps.map((d) => (d.structured === undefined ? { ...d, structured: undefined } : d)), digests, maxBytes });
          expect(bytes(text)).toBeLessThanOrEqual(maxBytes);
          const file = parse(text);
          expect(file.deps.length + (file.omittedDeps ?? 0)).toBe(deps.length);
          file.deps.forEach((d, i) => {
            const source = deps[i]!;
            expect(d.ref).toBe(source.ref);
            // Lone surrogates become U+FFFD in UTF-8; compare on well-formed input only.
            if (!/[\ud800-\udfff]/.test(source.output)) expect(source.output.startsWith(d.output)).toBe(true);
            if (!d.truncated) expect(d.output).toBe(source.output);
          });
        },
      ),
      { numRuns: 300 },
    );
  });
});
