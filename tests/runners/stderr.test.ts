/**
 * The most telling line of a stderr tail (issue 10 item 8): the error a child printed, never the
 * runtime's version banner, a stack frame or the properties Node prints after an error.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { tellingLine } from '../../src/runners/stderr.js';
import { processFailure } from '../../src/runners/command.js';
import type { ProcessResult } from '../../src/runners/process.js';

/** What a real `node -e <code>` prints on stderr. */
const nodeStderr = (code: string) => spawnSync(process.execPath, ['-e', code], { encoding: 'utf8' }).stderr;

describe('tellingLine', () => {
  it("picks Node's `Error: Cannot find module …`, not the trailing `Node.js v…` banner (real node)", () => {
    const stderr = nodeStderr("require('nope')");
    expect(stderr.trim().split('\n').pop()).toMatch(/^Node\.js v\d/); // what the last-line rule quoted
    expect(tellingLine(stderr)).toBe("Error: Cannot find module 'nope'");
  });

  it('picks a thrown TypeError, not the echoed source line or a stack frame (real node)', () => {
    expect(tellingLine(nodeStderr("throw new TypeError('bad thing')"))).toBe('TypeError: bad thing');
  });

  it('picks an ESM error with a code in brackets', () => {
    const stderr = [
      'node:internal/modules/esm/resolve:854',
      '  throw new ERR_MODULE_NOT_FOUND(packageName, fileURLToPath(base), null);',
      '        ^',
      '',
      "Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'zod' imported from /p/x.mjs",
      '    at packageResolve (node:internal/modules/esm/resolve:854:9)',
      '    at moduleResolve (node:internal/modules/esm/resolve:927:18) {',
      "  code: 'ERR_MODULE_NOT_FOUND'",
      '}',
      '',
      'Node.js v20.20.2',
    ].join('\n');
    expect(tellingLine(stderr)).toBe("Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'zod' imported from /p/x.mjs");
  });

  it("picks Python's last exception of a chained traceback", () => {
    const stderr = [
      'Traceback (most recent call last):',
      '  File "/p/a.py", line 3, in <module>',
      '    open("x")',
      "FileNotFoundError: [Errno 2] No such file or directory: 'x'",
      '',
      'During handling of the above exception, another exception occurred:',
      '',
      'Traceback (most recent call last):',
      '  File "/p/a.py", line 5, in <module>',
      '    raise RuntimeError("config missing")',
      'RuntimeError: config missing',
    ].join('\n');
    expect(tellingLine(stderr)).toBe('RuntimeError: config missing');
  });

  it('picks `fatal:` / `error:` lines of tools over hints that follow them', () => {
    expect(tellingLine("fatal: not a git repository (or any of the parent directories): .git\nhint: run git init\n")).toBe(
      'fatal: not a git repository (or any of the parent directories): .git',
    );
    expect(tellingLine('error: unexpected argument \'--nope\' found\n\nUsage: tool [OPTIONS]\n\nFor more information, try \'--help\'.\n')).toBe(
      "error: unexpected argument '--nope' found",
    );
  });

  it('falls back to a line speaking of a failure, then to the last plain line, then to the last line', () => {
    expect(tellingLine('sh: 1: frobnicate: not found\n')).toBe('sh: 1: frobnicate: not found');
    expect(tellingLine('could not reach the server\nretrying later\n')).toBe('could not reach the server');
    expect(tellingLine('step 1\nstep 2\n')).toBe('step 2');
    expect(tellingLine('}\n')).toBe('}');
    expect(tellingLine('\n  \r\n')).toBe('');
  });

  it("keeps an error line that looks like a property (`Error: 'x' …`) and bounds long lines", () => {
    expect(tellingLine("Error: 'db' is not configured\n  code: 'ENOCONF',\n}\n")).toBe("Error: 'db' is not configured");
    expect(tellingLine(`Error: ${'x'.repeat(1000)}`)).toBe(`Error: ${'x'.repeat(293)}…`);
  });
});

describe('processFailure quotes the telling line', () => {
  it('exit code: the error, not the banner', () => {
    const result: ProcessResult = {
      exitCode: 1, signal: null, stdout: '', stdoutBytes: 0, truncated: false, stderrTail: nodeStderr("require('nope')"), stderrBytes: 100,
      timedOut: false, cancelled: false, durationMs: 5, pid: 1,
    };
    const f = processFailure(result, 1000);
    expect(f?.error.message).toBe("exited with code 1: Error: Cannot find module 'nope'");
  });
});
