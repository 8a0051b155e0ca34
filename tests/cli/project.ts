/**
 * Temp projects for the CLI and engine integration tests: a project directory with a spec (written
 * as JSON, which the YAML parser reads too), helper scripts, and a store folder inside it; plus
 * readers for what a run leaves behind, and the journal analysis the concurrency tests share.
 */
import fs from 'node:fs';
import path from 'node:path';
import { alive, fanfold, fanfoldAsync, readAgentFiles, readJournal, tempDir, until } from '../helpers/cli.js';

/** A spec as plain data (JSON is YAML 1.2, so the spec loader reads it). */
export type Spec = Record<string, unknown>;

/** One temp project: spec file, store dir (not created by the test), helpers bound to both. */
export interface Project {
  dir: string;
  store: string;
  spec: string;
  /** Writes (or rewrites) a spec file; returns its path. */
  writeSpec(spec: Spec, name?: string): string;
  /** Runs the CLI synchronously in the project dir, with `--store` unless `noStore`. */
  cli(args: string[], opts?: { env?: NodeJS.ProcessEnv; noStore?: boolean; timeoutMs?: number }): ReturnType<typeof fanfold>;
  /** Runs the CLI asynchronously in the project dir, with `--store`. */
  cliAsync(args: string[], opts?: { env?: NodeJS.ProcessEnv }): ReturnType<typeof fanfoldAsync>;
  runDir(runId: string): string;
  journal(runId: string): any[];
  agents(runId: string): Map<string, any>;
  runJson(runId: string): any;
  /** Path of a file in the project dir. */
  file(name: string): string;
  /** Contents of a file in the project, or undefined. */
  read(name: string): string | undefined;
}

/** Creates a temp project with `spec` written to spec.json and `files` beside it. */
export function makeProject(spec: Spec, files: Record<string, string> = {}): Project {
  const dir = fs.realpathSync(tempDir('fanfold-it-'));
  const store = path.join(dir, 'store');
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  const p: Project = {
    dir,
    store,
    spec: path.join(dir, 'spec.json'),
    writeSpec(s, name = 'spec.json') {
      const f = path.join(dir, name);
      fs.writeFileSync(f, JSON.stringify(s, null, 2));
      return f;
    },
    cli(args, opts = {}) {
      const full = opts.noStore ? args : [...args, '--store', store];
      return fanfold(full, { cwd: dir, ...(opts.env ? { env: opts.env } : {}), ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}) });
    },
    cliAsync(args, opts = {}) {
      return fanfoldAsync([...args, '--store', store], { cwd: dir, ...(opts.env ? { env: opts.env } : {}) });
    },
    runDir: (id) => path.join(store, id),
    journal: (id) => readJournal(path.join(store, id)),
    agents: (id) => readAgentFiles(path.join(store, id)),
    runJson: (id) => JSON.parse(fs.readFileSync(path.join(store, id, 'run.json'), 'utf8')),
    file: (name) => path.join(dir, name),
    read(name) {
      try {
        return fs.readFileSync(path.join(dir, name), 'utf8');
      } catch {
        return undefined;
      }
    },
  };
  p.writeSpec(spec);
  return p;
}

/**
 * An agent that runs `script` with `sh -c` (the prompt is on its stdin). `sandbox: off`: these
 * agents test the engine (they leave marker and pid files in the project and their pids are read
 * from the host), not the OS sandbox, which tests/runners/sandbox.test.ts covers.
 */
export const sh = (script: string) => ({ runner: 'command', command: ['sh', '-c', script], sandbox: 'off' });

/**
 * A shell agent that records its own pid in `<task>.<attempt>.pid` in the project dir, appends its
 * task id to ran.log, then sleeps `secs` (as `exec sleep`, so the recorded pid is the sleeper) —
 * unless the file `fast.flag` exists, in which case it prints `fast <task>` and exits 0.
 */
export const sleeper = (secs: number) =>
  sh(
    'echo "$FANFOLD_TASK_ID" >> ran.log; ' +
      'if [ -f fast.flag ]; then echo "fast $FANFOLD_TASK_ID"; exit 0; fi; ' +
      `echo $$ > "$FANFOLD_TASK_ID.$FANFOLD_ATTEMPT.pid"; exec sleep ${secs}`,
  );

/** A shell agent that appends its task id to ran.log and echoes it. */
export const quick = (extra = '') => sh(`echo "$FANFOLD_TASK_ID" >> ran.log; ${extra} echo "done $FANFOLD_TASK_ID"`);

/** Lines of ran.log counted per task id. */
export function ranCounts(p: Project): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of (p.read('ran.log') ?? '').split('\n').filter(Boolean)) out[line] = (out[line] ?? 0) + 1;
  return out;
}

/** How the runs of the store ended, for a failure message: status, reason and the owner log's tail. */
function ownerEnd(p: Project): string {
  const out: string[] = [];
  for (const id of fs.existsSync(p.store) ? fs.readdirSync(p.store).filter((n) => !n.startsWith('.')) : []) {
    const read = (f: string) => {
      try {
        return fs.readFileSync(path.join(p.store, id, f), 'utf8');
      } catch {
        return '';
      }
    };
    let status = '';
    try {
      const run = JSON.parse(read('run.json')) as { status?: string; reason?: string };
      status = `${run.status ?? '?'}${run.reason ? ` (${run.reason})` : ''}`;
    } catch {
      status = 'no readable run.json';
    }
    out.push(`run ${id}: ${status}; owner.log: ${read('owner.log').slice(-1200).trim() || '(empty)'}`);
  }
  return out.join('\n') || 'no run in the store';
}

/**
 * Waits until every named pid file exists and holds a pid; returns the pids. With `owner`, fails at
 * once when that process is gone (so a generous `timeoutMs` costs nothing when the run died).
 */
export async function pidsOf(p: Project, names: string[], timeoutMs = 20_000, owner?: number): Promise<number[]> {
  const ready = () => names.every((n) => /^\d+\s*$/.test(p.read(n) ?? ''));
  await until(() => {
    if (ready()) return true;
    // Why: with a generous deadline, a run that died can never write them; say so at once.
    if (owner !== undefined && !alive(owner)) {
      // One last look (it may have written them just before it ended), then say how the run ended.
      if (ready()) return true;
      throw new Error(`the owner (pid ${owner}) exited before writing pid files ${names.join(', ')}; ${ownerEnd(p)}`);
    }
    return false;
  }, timeoutMs, `pid files ${names.join(', ')}`);
  return names.map((n) => Number(p.read(n)!.trim()));
}

/** Kills leftover processes a test started (by pid), ignoring those already gone. */
export function killPids(pids: number[]): void {
  for (const pid of pids) {
    try {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/** Required fields of every agent file, as issue 2 lists them. */
export const AGENT_FIELDS = [
  'schemaVersion', 'runId', 'phaseId', 'taskId', 'key', 'attempt', 'status', 'output', 'outputBytes',
  'truncated', 'exitCode', 'signal', 'stderrTail', 'startedAt', 'endedAt', 'durationMs',
] as const;

/** Latest attempt of a task among a run's agent files. */
export function latest(files: Map<string, any>, ref: string): any {
  const [phaseId, taskId] = ref.split('/');
  let best: any;
  for (const r of files.values()) {
    if (r.phaseId === phaseId && r.taskId === taskId && (!best || r.attempt > best.attempt)) best = r;
  }
  return best;
}

/** One agent attempt as the journal shows it: from `agent.started` to `agent.finished`. */
export interface Interval {
  ref: string;
  attempt: number;
  slot: number;
  start: number;
  end: number;
}

/** Intervals of every finished attempt in a journal (times in ms since the epoch). */
export function intervals(journal: any[]): Interval[] {
  const open = new Map<string, any>();
  const out: Interval[] = [];
  for (const e of journal) {
    if (e.type === 'agent.started') open.set(`${e.ref}#${e.attempt}`, e);
    if (e.type === 'agent.finished') {
      const s = open.get(`${e.ref}#${e.attempt}`);
      if (!s) throw new Error(`agent.finished without agent.started: ${e.ref} attempt ${e.attempt}`);
      out.push({ ref: e.ref, attempt: e.attempt, slot: s.slot, start: Date.parse(s.t), end: Date.parse(e.t) });
    }
  }
  return out;
}

/**
 * Sweeps the journal's intervals in time order (a finish before a start at the same millisecond,
 * the conservative reading). Reports the peak number of agents running, and the dispatch latency
 * seen from outside: at each event after which fewer than `cap` agents run while some task whose
 * dependencies have all finished waits, the time until the next `agent.started` — the longest such
 * wait (`longestWaitMs`, from `waitFrom`), and the longest merged stretch of such states
 * (`longestIdleStretchMs`, several back-to-back dispatches), and every such wait (`waits`).
 * `deps` maps each ref to its deps.
 */
export function sweep(
  iv: Interval[],
  deps: Map<string, string[]>,
  cap: number,
): { peak: number; longestWaitMs: number; waitFrom?: number; longestIdleStretchMs: number; waits: number[] } {
  type Ev = { t: number; kind: 0 | 1; ref: string };
  const evs: Ev[] = [];
  for (const i of iv) {
    evs.push({ t: i.start, kind: 1, ref: i.ref });
    evs.push({ t: i.end, kind: 0, ref: i.ref });
  }
  evs.sort((a, b) => a.t - b.t || a.kind - b.kind);
  const finished = new Set<string>();
  const started = new Set<string>();
  let running = 0;
  let peak = 0;
  let idleSince: number | undefined;
  let stretch = 0;
  let longestWait = 0;
  let waitFrom: number | undefined;
  const waits: number[] = [];
  const readyWaiting = () => {
    for (const [ref, ds] of deps) if (!started.has(ref) && ds.every((d) => finished.has(d))) return true;
    return false;
  };
  for (let k = 0; k < evs.length; k++) {
    const e = evs[k]!;
    if (e.kind === 1) {
      running++;
      started.add(e.ref);
    } else {
      running--;
      finished.add(e.ref);
    }
    peak = Math.max(peak, running);
    // Only judge the state once every event at this instant has been applied.
    if (k + 1 < evs.length && evs[k + 1]!.t === e.t) continue;
    const idle = running < cap && readyWaiting();
    if (idle) {
      const next = evs.slice(k + 1).find((x) => x.kind === 1);
      const wait = (next?.t ?? Infinity) - e.t;
      waits.push(wait);
      if (wait > longestWait) {
        longestWait = wait;
        waitFrom = e.t;
      }
      idleSince ??= e.t;
    } else if (idleSince !== undefined) {
      stretch = Math.max(stretch, e.t - idleSince);
      idleSince = undefined;
    }
  }
  return { peak, longestWaitMs: longestWait, longestIdleStretchMs: stretch, waits, ...(waitFrom !== undefined ? { waitFrom } : {}) };
}
