/**
 * Shared fixtures for the store tests: temp directories, record factories, and a transpiled copy of
 * src/store that child processes can import (the project build may not compile while other layers
 * are in progress; transpiling only src/store needs nothing else).
 */
import fs from 'node:fs/promises';
import fss from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { SCHEMA_VERSION, type AgentRecord, type RunRecord } from '../../src/store/types.js';
import type { Plan } from '../../src/spec/types.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Repository root. */
export const REPO = path.resolve(here, '../..');

const tmpDirs: string[] = [];

/** A fresh temp directory (realpath'd), removed by cleanupTmp(). */
export async function tmpDir(prefix = 'fanfold-store-'): Promise<string> {
  const d = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), prefix)));
  tmpDirs.push(d);
  return d;
}

/** Removes every temp directory made by tmpDir(). */
export async function cleanupTmp(): Promise<void> {
  await Promise.all(tmpDirs.splice(0).map((d) => fs.rm(d, { recursive: true, force: true })));
}

/** A minimal valid plan. */
export function makePlan(name = 'demo'): Plan {
  return {
    schemaVersion: 1,
    name,
    limits: {
      maxConcurrent: 4,
      maxAgents: 64,
      agentTimeoutMs: 600_000,
      runTimeoutMs: 3_600_000,
      retries: 1,
      retryBackoffMs: 1000,
      maxOutputBytes: 262_144,
      maxContextBytes: 65_536,
    },
    agents: { worker: { name: 'worker', runner: 'command', command: ['true'], tier: 'read_only' } },
    phases: [{ id: 'map', title: 'Map', dependsOn: [], onFailure: 'continue', taskRefs: ['map/a'] }],
    tasks: [{ ref: 'map/a', phaseId: 'map', taskId: 'a', prompt: 'hi', agent: 'worker', deps: [], key: 'k-a' }],
    criticalPath: { length: 1, refs: ['map/a'] },
    agentCount: 1,
    warnings: [],
  };
}

const zeroCounts = () => ({ total: 1, succeeded: 0, failed: 0, skipped: 0, running: 0, pending: 1 });

/** A valid run record for `runId`. */
export function makeRun(runId: string, over: Partial<RunRecord> = {}): RunRecord {
  const t = over.createdAt ?? '2025-01-01T00:00:00.000Z';
  return {
    schemaVersion: SCHEMA_VERSION,
    runId,
    name: 'demo',
    status: 'running',
    cwd: '/tmp/project',
    createdAt: t,
    startedAt: t,
    elapsedMs: 0,
    resumes: 0,
    plan: makePlan(),
    phases: [{ id: 'map', status: 'pending', counts: zeroCounts() }],
    totals: zeroCounts(),
    updatedAt: t,
    ...over,
  };
}

/** A valid agent record. */
export function makeAgent(runId: string, phaseId: string, taskId: string, attempt: number, over: Partial<AgentRecord> = {}): AgentRecord {
  return {
    schemaVersion: SCHEMA_VERSION,
    runId,
    phaseId,
    taskId,
    key: `key-${phaseId}-${taskId}`,
    attempt,
    status: 'succeeded',
    agent: 'worker',
    runner: 'command',
    prompt: `do ${taskId}`,
    output: `output of ${phaseId}/${taskId}#${attempt}`,
    outputBytes: 20,
    truncated: false,
    exitCode: 0,
    signal: null,
    stderrTail: '',
    startedAt: '2025-01-01T00:00:00.000Z',
    endedAt: '2025-01-01T00:00:01.000Z',
    durationMs: 1000,
    ...over,
  };
}

let transpiled: Promise<string> | undefined;

/**
 * Transpiles src/store/*.ts (no type check) to plain ESM in a temp directory with a package.json
 * of type module and a node_modules symlink to the repo's, and returns the path of its index.js.
 * Child processes import that file to run the real store code.
 */
export function storeModule(): Promise<string> {
  transpiled ??= (async () => {
    const out = await tmpDir('fanfold-store-build-');
    const dest = path.join(out, 'store');
    await fs.mkdir(dest);
    await fs.writeFile(path.join(out, 'package.json'), '{"type":"module"}\n');
    await fs.symlink(path.join(REPO, 'node_modules'), path.join(out, 'node_modules'), 'dir');
    const srcDir = path.join(REPO, 'src', 'store');
    for (const f of await fs.readdir(srcDir)) {
      if (!f.endsWith('.ts')) continue;
      const src = await fs.readFile(path.join(srcDir, f), 'utf8');
      const res = ts.transpileModule(src, {
        fileName: f,
        compilerOptions: {
          module: ts.ModuleKind.ESNext,
          target: ts.ScriptTarget.ES2022,
          verbatimModuleSyntax: true,
          esModuleInterop: true,
        },
      });
      await fs.writeFile(path.join(dest, f.replace(/\.ts$/, '.js')), res.outputText);
    }
    return path.join(dest, 'index.js');
  })();
  return transpiled;
}

/** A child started by spawnNode, with helpers to read its output. */
export interface NodeChild {
  proc: ChildProcess;
  /** Everything written to stdout so far. */
  stdout: () => string;
  /** Everything written to stderr so far. */
  stderr: () => string;
  /** Resolves when stdout contains `text`; rejects when the child exits first or after `ms`. */
  waitFor: (text: string, ms?: number) => Promise<void>;
  /** Resolves with exit code and signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children = new Set<ChildProcess>();

/**
 * Runs `node --input-type=module -e <code>` with `args`, visible to the code as `ARGS`; stdio piped;
 * killed by killChildren().
 */
export function spawnNode(code: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): NodeChild {
  const prelude = 'const ARGS = process.argv.slice(1);\n';
  const proc = spawn(process.execPath, ['--input-type=module', '-e', prelude + code, '--', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  children.add(proc);
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.on('exit', (code, signal) => {
      children.delete(proc);
      resolve({ code, signal });
    });
  });
  const waitFor = (text: string, ms = 20_000) =>
    new Promise<void>((resolve, reject) => {
      const timer = setInterval(check, 10);
      const deadline = Date.now() + ms;
      function check() {
        if (out.includes(text)) {
          clearInterval(timer);
          resolve();
        } else if (proc.exitCode !== null || proc.signalCode !== null || Date.now() > deadline) {
          clearInterval(timer);
          reject(new Error(`child did not print ${JSON.stringify(text)} (exit ${proc.exitCode}/${proc.signalCode}); stdout: ${out.slice(-500)} stderr: ${err.slice(-2000)}`));
        }
      }
      check();
    });
  return { proc, stdout: () => out, stderr: () => err, waitFor, exited };
}

/** SIGKILLs every child still running. */
export function killChildren(): void {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
}

/** A pid that is certainly not running: a child that has exited. */
export async function deadPid(): Promise<number> {
  const c = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  const pid = c.pid!;
  await new Promise((r) => c.on('exit', r));
  return pid;
}

/** Names in `dir`, sorted. */
export function ls(dir: string): string[] {
  return fss.readdirSync(dir).sort();
}

/** Sleeps `ms`. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
