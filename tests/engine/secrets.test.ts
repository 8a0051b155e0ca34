/**
 * Secrets never stored, through the real CLI and real child processes: an agent that prints the
 * owner's secrets (read from a file, passed with passEnv, set in the spec's env, a credential
 * format split across two writes, in its stderr and its structured answer) leaves no original
 * anywhere under the run folder; records count what was replaced; run.json, status and the report
 * say how many; the spec's secret env value is stored as [REDACTED] yet reaches the child.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fanfold, readAgentFiles, tempDir } from '../helpers/cli.js';
import { BIG_OUTPUT_CHARS, PatchOriginals, redactAttempt, redactAttemptAsync, runRedactor } from '../../src/engine/secrets.js';
import { Offloader } from '../../src/engine/offload.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const OWNER_SECRET = 'owner-db-password-7f3a91c2';
const PASSED_TOKEN = 'passed-token-5e6f7a8b9c0d';
const SPEC_SECRET = 'spec-secret-value-42abc';
const AWS_KEY = 'AKIAIOSFODNN7EXAMPLE';

/** Prints every kind of secret; the AWS key in two writes 300 ms apart (two pipe chunks). */
const LEAKER = `
const fs = require('node:fs');
process.stdout.write('chunk one: ${AWS_KEY.slice(0, 10)}');
setTimeout(() => {
  process.stdout.write('${AWS_KEY.slice(10)} end\\n');
  process.stdout.write('passed: ' + process.env.GITHUB_TOKEN + '\\n');
  process.stdout.write('file: ' + fs.readFileSync('notes.txt', 'utf8') + '\\n');
  process.stdout.write('spec env: ' + process.env.MY_API_KEY + '\\n');
  process.stdout.write('owner env seen: ' + String(process.env.DB_PASSWORD) + '\\n');
  process.stderr.write('stderr too: ' + process.env.GITHUB_TOKEN + '\\n');
}, 300);
`;

const STRUCTURED = `process.stdout.write(JSON.stringify({ found: process.env.GITHUB_TOKEN, key: '${AWS_KEY}', plain: 'fine' }))`;

function everyFile(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...everyFile(p));
    else out.push(p);
  }
  return out;
}

describe('secrets never stored', () => {
  it('no original under the run folder; counts in records, run.json, status and report; the child got the spec value', () => {
    const dir = tempDir('fanfold-secrets-');
    dirs.push(dir);
    fs.writeFileSync(path.join(dir, 'leaker.cjs'), LEAKER);
    fs.writeFileSync(path.join(dir, 'structured.cjs'), STRUCTURED);
    fs.writeFileSync(path.join(dir, 'notes.txt'), `db password is ${OWNER_SECRET}`);
    fs.writeFileSync(
      path.join(dir, 'spec.yaml'),
      `version: 1
name: secrets
agents:
  leaker:
    runner: command
    command: ["${process.execPath}", "leaker.cjs"]
    env: { MY_API_KEY: "${SPEC_SECRET}", MODE: "plain-value-not-secret" }
    passEnv: [GITHUB_TOKEN]
  answer:
    runner: command
    command: ["${process.execPath}", "structured.cjs"]
    passEnv: [GITHUB_TOKEN]
phases:
  - id: leak
    tasks:
      - { id: out, agent: leaker, prompt: "print everything" }
      - { id: json, agent: answer, prompt: "answer in JSON" }
  - id: after
    dependsOn: [leak]
    agent: answer
    tasks: [{ id: next, prompt: "build on the first phase" }]
`,
    );
    const env = { DB_PASSWORD: OWNER_SECRET, GITHUB_TOKEN: PASSED_TOKEN };
    const r = fanfold(['run', 'spec.yaml', '--json', '--store', 'store'], { cwd: dir, env });
    expect(r.status, r.stderr + r.stdout).toBe(0);
    const runId = r.json().runId as string;
    const runDir = path.join(dir, 'store', runId);

    const files = readAgentFiles(runDir);
    const out = files.get('leak.out.1.json');
    expect(out.output).toContain(`chunk one: [REDACTED:aws-access-key-id] end`);
    expect(out.output).toContain('passed: [REDACTED:env:GITHUB_TOKEN]');
    expect(out.output).toContain('file: db password is [REDACTED:env:DB_PASSWORD]');
    expect(out.output).toContain('spec env: [REDACTED:env:MY_API_KEY]'); // the child had the real value
    expect(out.output).toContain('owner env seen: undefined'); // not passed: the allowlist withheld it
    expect(out.stderrTail).toContain('stderr too: [REDACTED:env:GITHUB_TOKEN]');
    expect(out.redactions).toEqual([
      { rule: 'aws-access-key-id', count: 1 },
      { rule: 'env:DB_PASSWORD', count: 1 },
      { rule: 'env:GITHUB_TOKEN', count: 2 },
      { rule: 'env:MY_API_KEY', count: 1 },
    ]);
    const json = files.get('leak.json.1.json');
    expect(json.structured).toEqual({ found: '[REDACTED:env:GITHUB_TOKEN]', key: '[REDACTED:aws-access-key-id]', plain: 'fine' });

    // Not one original anywhere under the run folder: records, journal, index, inputs, report.
    const all = everyFile(runDir);
    expect(all.some((f) => f.includes(`${path.sep}inputs${path.sep}`))).toBe(true);
    for (const f of all) {
      const text = fs.readFileSync(f, 'utf8');
      for (const secret of [OWNER_SECRET, PASSED_TOKEN, SPEC_SECRET, AWS_KEY]) {
        expect(text.includes(secret), `${secret} in ${path.relative(runDir, f)}`).toBe(false);
      }
    }

    // The spec's secret value lives beside the run folder, readable by its owner only.
    const side = path.join(dir, 'store', '.secret-env', `${runId}.json`);
    expect(fs.statSync(side).mode & 0o777).toBe(0o600);
    expect(JSON.parse(fs.readFileSync(side, 'utf8')).agents).toEqual({ leaker: { MY_API_KEY: SPEC_SECRET } });

    const run = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8'));
    expect(run.plan.agents.leaker.env).toEqual({ MY_API_KEY: '[REDACTED]', MODE: 'plain-value-not-secret' });
    expect(run.plan.agents.leaker.passEnv).toEqual(['GITHUB_TOKEN']);
    // leak/out 5; leak/json and after/next 2 each in the output text and 2 in the structured answer.
    const total = 5 + 4 + 4;
    expect(run.totals.redactions).toBe(total);

    const status = fanfold(['status', runId, '--json', '--store', 'store'], { cwd: dir });
    expect(status.status, status.stderr).toBe(0);
    expect(JSON.stringify(status.json())).toContain(`"redactions":${total}`);
    const report = fs.readFileSync(path.join(runDir, 'report.md'), 'utf8');
    expect(report).toContain(`Secrets redacted: ${total}`);
  });

  it('redactAttempt: output, stderr tail, structured, error and patch; a redacted patch merges from its original', () => {
    const redactor = runRedactor({ agents: { a: { name: 'a', runner: 'command', tier: 'edit', passEnv: ['X_TOKEN'] } } }, { X_TOKEN: 'x-token-value-123', PATH: '/bin' });
    const patch = { base: 'abc', diff: '+token = x-token-value-123\n', files: ['config.ini'], bytes: 28, truncated: false };
    const clean = redactAttempt(
      redactor,
      {
        status: 'failed', output: 'o x-token-value-123', outputBytes: 19, truncated: false, exitCode: 1, signal: null,
        stderrTail: 'e x-token-value-123', structured: { t: 'x-token-value-123' },
        error: { type: 'exit_code', message: 'failed with x-token-value-123', retryable: false },
      },
      patch,
    );
    expect(clean.result.output).toBe('o [REDACTED:env:X_TOKEN]');
    expect(clean.result.stderrTail).toBe('e [REDACTED:env:X_TOKEN]');
    expect(clean.result.structured).toEqual({ t: '[REDACTED:env:X_TOKEN]' });
    expect(clean.result.error!.message).toBe('failed with [REDACTED:env:X_TOKEN]');
    expect(clean.patch).toMatchObject({ diff: '+token = [REDACTED:env:X_TOKEN]\n', redacted: true });
    expect(clean.redactions).toEqual([{ rule: 'env:X_TOKEN', count: 5 }]);

    const originals = new PatchOriginals();
    originals.remember('p/t', clean.patch!, patch);
    const merged = originals.resolve([{ ref: 'p/t', patch: clean.patch! }]);
    expect(merged.items[0]!.patch.diff).toBe(patch.diff);
    expect(merged.lost).toEqual([]);
    // A resumed owner no longer has the original: a conflict, never markers written into the project.
    const resumed = new PatchOriginals().resolve([{ ref: 'p/t', patch: clean.patch! }]);
    expect(resumed.items).toEqual([]);
    expect(resumed.lost[0]).toMatchObject({ ref: 'p/t', files: ['config.ini'] });
    expect(resumed.lost[0]!.message).toMatch(/secrets redacted/);
  });

  it('a big output is redacted in the worker thread to the same text and counts, and comes back as the same string when clean', async () => {
    const redactor = runRedactor({ agents: { a: { name: 'a', runner: 'command', tier: 'edit', passEnv: ['X_TOKEN'] } } }, { X_TOKEN: 'x-token-value-123', PATH: '/bin' });
    // Multi-byte characters across the 1 MiB chunk boundaries, secrets in the middle and at the end.
    const filler = 'héllo wörld 🎉 '.repeat(Math.ceil((BIG_OUTPUT_CHARS * 1.5) / 15));
    const dirty = `${filler}x-token-value-123 ${filler}ghp_${'a'.repeat(36)} x-token-value-123`;
    const result = { status: 'succeeded' as const, output: dirty, outputBytes: 0, truncated: false, exitCode: 0, signal: null, stderrTail: '' };
    const offloader = new Offloader();
    try {
      let offThread = 0;
      const viaWorker = await redactAttemptAsync(redactor, result, undefined, (text, counts) => {
        offThread++;
        return offloader.redact(redactor, text, counts);
      });
      const inline = redactAttempt(redactor, result);
      expect(offThread).toBe(1);
      expect(viaWorker.result.output).toBe(inline.result.output);
      expect(viaWorker.redactions).toEqual(inline.redactions);
      expect(viaWorker.redactions).toEqual([{ rule: 'env:X_TOKEN', count: 2 }, { rule: 'github-token', count: 1 }].sort((a, b) => (a.rule < b.rule ? -1 : 1)));
      const counts = new Map<string, number>();
      expect(await offloader.redact(redactor, filler, counts)).toBe(filler);
      expect(counts.size).toBe(0);
    } finally {
      await offloader.close();
    }
  });
});
