/**
 * Helpers for tests of dynamic phases (forEach, pipeline, verify, gate, converge): a temp project
 * with scripted `command`-runner agents, a run of the built CLI in it, and the run's files read
 * back the way an outside observer would (run.json, journal, agent records, report.md).
 */
import fs from 'node:fs';
import path from 'node:path';
import { alive, fanfold, readAgentFiles, readJournal, tempDir, until } from '../helpers/cli.js';

export { alive, fanfold, readAgentFiles, readJournal, tempDir, until };

/** The store folder every helper here uses, relative to the project directory. */
export const STORE = 'store';

/**
 * A fresh project directory holding `files` (path → content). Files ending in `.sh` are made
 * executable. Returns the directory (a realpath, so paths compare equal on every platform).
 */
export function project(files: Record<string, string> = {}): string {
  const dir = fs.realpathSync(tempDir('fanfold-dyn-'));
  for (const [name, content] of Object.entries(files)) {
    const file = path.join(dir, name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content, { mode: name.endsWith('.sh') ? 0o755 : 0o644 });
  }
  return dir;
}

/** A YAML flow list for an agent's `command` that runs a bash script of the project. */
export function script(dir: string, name: string): string {
  return JSON.stringify(['bash', path.join(dir, name)]);
}

/** Writes the spec text to `<dir>/spec.yaml` (or `name`). */
export function writeSpec(dir: string, text: string, name = 'spec.yaml'): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

/** What a finished foreground run left: the CLI's result, its id and directory. */
export interface RunResult {
  /** Exit code of `fanfold run`. */
  code: number | null;
  stdout: string;
  stderr: string;
  runId: string;
  runDir: string;
  /** The status `fanfold run --json` printed. */
  status: string;
}

/** Runs `fanfold run <spec> --json --store store` in the foreground, in `dir`, to its end. */
export function runSpec(dir: string, spec = 'spec.yaml', timeoutMs = 30_000): RunResult {
  const r = fanfold(['run', spec, '--json', '--store', STORE], { cwd: dir, timeoutMs });
  let out: { runId?: string; status?: string };
  try {
    out = r.json();
  } catch {
    throw new Error(`fanfold run printed no JSON (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  }
  if (!out.runId) throw new Error(`fanfold run printed no runId (exit ${r.status}): ${r.stdout}\n${r.stderr}`);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, runId: out.runId, runDir: path.join(dir, STORE, out.runId), status: out.status ?? '' };
}

/** Starts `fanfold run <spec> --detach`; returns the run id, directory and the owner's pid. */
export function startDetached(dir: string, spec = 'spec.yaml'): { runId: string; runDir: string; pid: number } {
  const r = fanfold(['run', spec, '--detach', '--json', '--store', STORE], { cwd: dir });
  if (r.status !== 0) throw new Error(`fanfold run --detach failed (exit ${r.status}): ${r.stderr}`);
  const { runId, pid } = r.json() as { runId: string; pid: number };
  return { runId, pid, runDir: path.join(dir, STORE, runId) };
}

/** SIGKILLs a process and waits until it is gone. */
export async function killHard(pid: number, timeoutMs = 5000): Promise<void> {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
  await until(() => !alive(pid), timeoutMs, `death of pid ${pid}`);
}

/** `fanfold <cmd> <runId> --json --store store` in `dir`, with its parsed JSON. */
export function cli(dir: string, cmd: 'status' | 'resume', runId: string, timeoutMs = 30_000) {
  return fanfold([cmd, runId, '--json', '--store', STORE], { cwd: dir, timeoutMs });
}

/** run.json of a run. */
export function readRun(runDir: string): any {
  return JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8'));
}

/** One phase's state in run.json (throws when it is missing). */
export function phaseState(run: any, phaseId: string): any {
  const p = run.phases.find((x: any) => x.id === phaseId);
  if (!p) throw new Error(`run.json has no phase '${phaseId}' (has ${run.phases.map((x: any) => x.id).join(', ')})`);
  return p;
}

/** report.md of a run. */
export function readReport(runDir: string): string {
  return fs.readFileSync(path.join(runDir, 'report.md'), 'utf8');
}

/** The latest attempt's record of every task, by ref `phase/task`. */
export function latestRecords(runDir: string): Map<string, any> {
  const out = new Map<string, any>();
  for (const rec of readAgentFiles(runDir).values()) {
    const ref = `${rec.phaseId}/${rec.taskId}`;
    const prev = out.get(ref);
    if (!prev || prev.attempt < rec.attempt) out.set(ref, rec);
  }
  return out;
}

/** The refs of tasks that have a succeeded record. */
export function succeededRefs(runDir: string): Set<string> {
  return new Set([...readAgentFiles(runDir).values()].filter((r) => r.status === 'succeeded').map((r) => `${r.phaseId}/${r.taskId}`));
}

/** Journal events of one type. */
export function events(runDir: string, type: string): any[] {
  return readJournal(runDir).filter((e) => e.type === type);
}

/** How many times each ref had `agent.started` in the whole journal (every owner of the run). */
export function startsByRef(runDir: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of events(runDir, 'agent.started')) out.set(e.ref, (out.get(e.ref) ?? 0) + 1);
  return out;
}

/** Index of the first journal event matching `pred` (-1 when none). */
export function indexOfEvent(journal: any[], pred: (e: any) => boolean): number {
  return journal.findIndex(pred);
}
