import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { phaseDigest, phaseDigests, summarizeStructured } from '../../src/digest/index.js';
import { failedRecord, filler, makePhase, makeRecord, taskName } from './fixtures.js';

/** No control characters other than LF, and no lone surrogates. */
function assertClean(text: string): void {
  expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
  expect(text).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/);
}

describe('phaseDigest', () => {
  it('digests an empty phase to its header', () => {
    const d = phaseDigest({ phase: makePhase('map', 0), records: [] });
    expect(d).toBe('map — 0 tasks: nothing to digest');
    const pending = phaseDigest({ phase: makePhase('map', 5, { title: 'Map the repo' }), records: [] });
    expect(pending).toBe('map (Map the repo) — 5 tasks: none finished yet');
  });

  it('heads the digest with counts per status', () => {
    const phase = makePhase('map', 12);
    const records = Array.from({ length: 11 }, (_, i) => makeRecord({ phaseId: 'map', taskId: taskName(i), output: `found ${i} files` }));
    records.push(failedRecord('map', taskName(11), 'Process exited with code 2'));
    const d = phaseDigest({ phase, records });
    expect(d.split('\n')[0]).toBe('map — 12 tasks: 11 succeeded, 1 failed');
  });

  it('counts tasks without a record as pending', () => {
    const phase = makePhase('map', 4);
    const d = phaseDigest({ phase, records: [makeRecord({ phaseId: 'map', taskId: taskName(0) })] });
    expect(d.split('\n')[0]).toBe('map — 4 tasks: 1 succeeded, 3 pending');
  });

  it('is deterministic', () => {
    const phase = makePhase('scan', 30, { title: 'Scan for security issues' });
    const records = Array.from({ length: 30 }, (_, i) =>
      makeRecord({ phaseId: 'scan', taskId: taskName(i), output: filler(40, i + 1) + `\nFound ${i} issues in file${i}.ts` }),
    );
    const a = phaseDigest({ phase, goal: 'Find security issues', records });
    const b = phaseDigest({ phase, goal: 'Find security issues', records: structuredClone(records) });
    expect(a).toBe(b);
  });

  it('picks a planted line that matches the goal out of a long output', () => {
    const phase = makePhase('audit', 1, { title: 'Audit the code' });
    const lines = filler(3000, 7).split('\n');
    lines.splice(1777, 0, 'The SQL injection vulnerability sits in login handler at auth/session.ts:88');
    const records = [makeRecord({ phaseId: 'audit', taskId: 'core', output: lines.join('\n') })];
    const d = phaseDigest({ phase, goal: 'Find SQL injection vulnerabilities', records });
    expect(d).toContain('SQL injection vulnerability sits in login handler');
    expect(d.length).toBeLessThanOrEqual(1500);
  });

  it('picks a planted line in one task out of 200', () => {
    const phase = makePhase('audit', 200, { title: 'Audit modules' });
    const records = Array.from({ length: 200 }, (_, i) =>
      makeRecord({ phaseId: 'audit', taskId: taskName(i), output: filler(30, i + 100) }),
    );
    records[137] = makeRecord({
      phaseId: 'audit',
      taskId: taskName(137),
      output: filler(15, 5) + '\nRace condition in the payment reconciler corrupts ledger totals\n' + filler(15, 6),
    });
    const d = phaseDigest({ phase, goal: 'Look for race conditions and ledger corruption', records });
    expect(d).toContain(`▸ ${taskName(137)}: Race condition in the payment reconciler corrupts ledger totals`);
  });

  it('prefers numbers, findings and key: value lines over chatter', () => {
    const phase = makePhase('count', 1);
    const output = [
      "Sure, I'll take a look at that for you.",
      'Let me think about the approach here.',
      'total: 1532 files',
      'I looked around a bit.',
      'Found 3 errors in parser.ts',
      'Okay, that is all.',
    ].join('\n');
    const d = phaseDigest({ phase, records: [makeRecord({ phaseId: 'count', taskId: 'a', output })], maxChars: 170 });
    expect(d).toContain('total: 1532 files');
    expect(d).toContain('Found 3 errors in parser.ts');
    expect(d).not.toContain('Sure');
  });

  it('gives every task a share before any task gets a second line', () => {
    const phase = makePhase('m', 5);
    const records = Array.from({ length: 5 }, (_, i) =>
      makeRecord({ phaseId: 'm', taskId: taskName(i), output: Array.from({ length: 50 }, (_, k) => `result ${i}.${k}: value ${k * 7}`).join('\n') }),
    );
    const d = phaseDigest({ phase, records, maxChars: 600 });
    for (let i = 0; i < 5; i++) expect(d).toContain(`▸ ${taskName(i)}:`);
  });

  it('stays within maxChars for 1000 tasks and says what it left out', () => {
    const phase = makePhase('fan', 1000, { title: 'Fan out over files' });
    const records = Array.from({ length: 1000 }, (_, i) =>
      i % 10 === 3
        ? failedRecord('fan', taskName(i), `Process exited with code ${i % 3}`, `boom ${i % 3}\n`)
        : makeRecord({ phaseId: 'fan', taskId: taskName(i), output: filler(20, i) + `\nfiles: ${i}` }),
    );
    const started = performance.now();
    const d = phaseDigest({ phase, goal: 'Summarize files', records });
    const ms = performance.now() - started;
    expect(d.length).toBeLessThanOrEqual(1500);
    expect(d.split('\n')[0]).toBe('fan (Fan out over files) — 1000 tasks: 900 succeeded, 100 failed');
    expect(d).toMatch(/\n… \(\d+ more lines in \d+ outputs(, \d+ more failures?)?; query_workflow \/ fanfold query\)$/);
    // Failures grouped by cause: 3 causes for 100 failures.
    expect(d).toMatch(/✗ 3\d failed \(t\d{4}, t\d{4}, t\d{4} \+3\d\): Process exited with code \d — stderr: boom \d/);
    const tasksShown = new Set([...d.matchAll(/▸ (t\d{4}):/g)].map((m) => m[1]));
    expect(tasksShown.size).toBeGreaterThan(5);
    // A guard against quadratic blow-ups, not a speed target (bench/ holds those): generous for a busy machine.
    expect(ms).toBeLessThan(30_000);
  });

  it('stays within maxChars with huge outputs (MBs) and stays fast', () => {
    const phase = makePhase('big', 6);
    const block = filler(2000, 3);
    const huge = (block + '\n').repeat(Math.ceil((3 * 1024 * 1024) / block.length)); // ~3 MB
    const records = Array.from({ length: 6 }, (_, i) =>
      makeRecord({ phaseId: 'big', taskId: taskName(i), output: huge + `\nSummary: task ${i} found ${i * 11} problems`, truncated: true, outputBytes: 9e6 }),
    );
    const started = performance.now();
    const d = phaseDigest({ phase, goal: 'find problems', records });
    expect(performance.now() - started).toBeLessThan(8000);
    expect(d.length).toBeLessThanOrEqual(1500);
    // The conclusion at the very end of a huge output is inside the scanned tail window.
    expect(d).toContain('Summary: task 5 found 55 problems');
  });

  it('digests an all-failed phase with causes and stderr', () => {
    const phase = makePhase('f', 4);
    const records = [
      failedRecord('f', 'a', 'Process exited with code 127', 'sh: 1: frob: not found\n'),
      failedRecord('f', 'b', 'Process exited with code 127', 'sh: 1: frob: not found\n'),
      makeRecord({ phaseId: 'f', taskId: 'c', status: 'timed_out', output: '', error: { type: 'timeout', message: 'no answer within 10m', retryable: true } }),
      makeRecord({ phaseId: 'f', taskId: 'd', status: 'skipped', output: '', error: { type: 'dependency_failed', message: 'depends on f/a which failed', retryable: false } }),
    ];
    const d = phaseDigest({ phase, records });
    expect(d).toContain('f — 4 tasks: 0 succeeded, 3 failed, 1 skipped');
    expect(d).toContain('✗ 2 failed (a, b): Process exited with code 127 — stderr: sh: 1: frob: not found');
    expect(d).toContain('✗ c timed out: no answer within 10m');
    expect(d).toContain('✗ d skipped: depends on f/a which failed');
  });

  it('bounds an all-failed phase of 1000 distinct causes', () => {
    const phase = makePhase('f', 1000);
    const records = Array.from({ length: 1000 }, (_, i) => failedRecord('f', taskName(i), `distinct failure number ${i} `.repeat(20)));
    for (const maxChars of [1500, 400, 120]) {
      const d = phaseDigest({ phase, records, maxChars });
      expect(d.length).toBeLessThanOrEqual(maxChars);
      expect(d.startsWith('f — 1000 tasks: 0 succeeded, 1000 failed')).toBe(true);
    }
    const d = phaseDigest({ phase, records });
    expect(d).toMatch(/more failures; query_workflow \/ fanfold query\)$/);
  });

  it('handles unicode, CRLF and binary-looking junk', () => {
    const phase = makePhase('u', 3);
    const records = [
      makeRecord({ phaseId: 'u', taskId: 'emoji', output: 'Résumé: 3 ✅ checks passed 🎉\r\nГотово: 12 файлов\r\n数据库连接失败: error 42\r\n' }),
      makeRecord({ phaseId: 'u', taskId: 'bin', output: '\u0000\u0001\u0002PK\u0003\u0004\ufffd\ufffd'.repeat(500) }),
      makeRecord({ phaseId: 'u', taskId: 'mixed', output: 'good line: 7 items\n\u0001\u0002\u0003\u0004\u0005junk\ufffd\ufffd\ufffd\n\u001b[31mred error: 5 failures\u001b[0m\n' }),
    ];
    const d = phaseDigest({ phase, records });
    assertClean(d);
    expect(d).not.toContain('\r');
    expect(d).toContain('Résumé: 3 ✅ checks passed 🎉');
    expect(d).toContain('数据库连接失败: error 42');
    expect(d).toContain('[binary-looking output');
    expect(d).toContain('red error: 5 failures');
    expect(d).not.toContain('junk');
  });

  it('never splits a surrogate pair when clipping', () => {
    const phase = makePhase('e', 1);
    const output = '🎉'.repeat(400) + ' total 5';
    for (let max = 60; max < 140; max++) {
      const d = phaseDigest({ phase, records: [makeRecord({ phaseId: 'e', taskId: 'x', output })], maxChars: max });
      expect(d.length).toBeLessThanOrEqual(max);
      assertClean(d);
    }
  });

  it('summarizes structured results compactly', () => {
    const phase = makePhase('s', 1);
    const structured = { files: 12, language: 'typescript', modules: ['a', 'b', 'c', 'd', 'e'], nested: { deep: { deeper: 1 } }, long: 'x'.repeat(500) };
    const d = phaseDigest({ phase, records: [makeRecord({ phaseId: 's', taskId: 'x', output: 'done', structured })] });
    expect(d).toContain('▸ x: result: {files: 12, language: "typescript", modules: ["a", "b", "c", +2 more], nested: {deep: {1 keys}}, long: "xxxx');
    expect(summarizeStructured(structured).length).toBeLessThanOrEqual(220);
    expect(summarizeStructured([1, 2])).toBe('[1, 2]');
    expect(summarizeStructured(null)).toBe('null');
  });

  it('respects tiny caps', () => {
    const phase = makePhase('tiny', 2, { title: 'A phase with a rather long title for a tiny cap' });
    const records = [makeRecord({ phaseId: 'tiny', taskId: 'a', output: filler(50) })];
    for (const maxChars of [0, 1, 5, 20, 40, 80, 100, 200]) {
      expect(phaseDigest({ phase, records, maxChars }).length).toBeLessThanOrEqual(maxChars);
    }
  });

  it('never exceeds maxChars on arbitrary input (property)', () => {
    const status = fc.constantFrom('succeeded', 'failed', 'timed_out', 'cancelled', 'skipped' as const);
    const record = fc.record({
      taskId: fc.string({ minLength: 1, maxLength: 60 }),
      status,
      output: fc.oneof(fc.string({ maxLength: 3000 }), fc.string({ unit: 'binary', maxLength: 2000 }), fc.string({ unit: 'grapheme', maxLength: 1500 })),
      message: fc.string({ maxLength: 400 }),
      stderr: fc.string({ maxLength: 300 }),
      structured: fc.option(fc.jsonValue({ maxDepth: 3 }), { nil: undefined }),
    });
    fc.assert(
      fc.property(fc.array(record, { maxLength: 40 }), fc.integer({ min: 0, max: 3000 }), fc.string({ maxLength: 200 }), (recs, maxChars, goal) => {
        const phase = makePhase('p', recs.length);
        const records = recs.map((r) =>
          makeRecord({
            phaseId: 'p',
            taskId: r.taskId,
            status: r.status,
            output: r.output,
            stderrTail: r.stderr,
            ...(r.status !== 'succeeded' ? { error: { type: 'x', message: r.message, retryable: false } } : {}),
            ...(r.structured !== undefined ? { structured: r.structured } : {}),
          }),
        );
        const d = phaseDigest({ phase, goal, records, maxChars });
        expect(d.length).toBeLessThanOrEqual(maxChars);
        assertClean(d);
        expect(phaseDigest({ phase, goal, records, maxChars })).toBe(d);
      }),
      { numRuns: 300 },
    );
  });

  it('phaseDigests digests each phase from mixed records', () => {
    const phases = [makePhase('a', 1), makePhase('b', 1)];
    const out = phaseDigests({
      phases,
      records: [makeRecord({ phaseId: 'b', taskId: taskName(0), output: 'b found 3 things' }), makeRecord({ phaseId: 'a', taskId: taskName(0), output: 'a found 1 thing' })],
    });
    expect(Object.keys(out)).toEqual(['a', 'b']);
    expect(out.a).toContain('a found 1 thing');
    expect(out.b).toContain('b found 3 things');
  });
});
