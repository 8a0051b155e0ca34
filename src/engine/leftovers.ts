/**
 * Agents a dead owner left running. Each agent leads its own process group, so when its owner is
 * SIGKILLed it goes on, unsupervised — and a resumed run would start a second copy beside it. The
 * owner journals every child's pid with its start time (`agent.spawned`); a new owner kills the
 * groups whose attempt never finished and whose pid still belongs to the same process.
 *
 * Where a start time comes from: Linux's `/proc/<pid>/stat` (clock ticks since boot, `startTicks`);
 * where there is no /proc (macOS, or `FANFOLD_NO_PROC=1`, which tests use to take this path on
 * Linux) `ps -o pid=,pgid=,lstart=` (`psStart`, the start to the second, read in UTC).
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import type { RunEvent } from '../store/types.js';

/** How a process is told apart from a later one given the same pid. */
export interface ProcessStart {
  /** Start in clock ticks since boot (Linux /proc). */
  startTicks?: number;
  /** Start as `ps` prints it (lstart), normalized to `YYYY-MM-DDTHH:MM:SS` (UTC). */
  psStart?: string;
}

/** Whether /proc answers for processes here; `FANFOLD_NO_PROC=1` says no (the `ps` path). */
export function procAvailable(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.FANFOLD_NO_PROC !== '1' && existsSync('/proc/self/stat');
}

/** Start time of a process in clock ticks since boot (Linux), or undefined where unknown. */
export function procStartTicks(pid: number): number | undefined {
  const fields = procStatFields(pid);
  const ticks = Number(fields?.[19]); // field 22 of stat: starttime
  return Number.isFinite(ticks) ? ticks : undefined;
}

/** The fields of /proc/<pid>/stat after the command name (from field 3, `state`), or undefined. */
function procStatFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: fields start after its last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** One process as `ps -o pid=,pgid=,lstart=` lists it. */
export interface PsEntry {
  pid: number;
  pgid: number;
  /** Its start, normalized (see normalizeLstart). */
  start: string;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const two = (n: number) => String(n).padStart(2, '0');

/**
 * An `lstart` column normalized to `YYYY-MM-DDTHH:MM:SS`, or undefined when it cannot be read.
 * Accepts what procps and the BSD/macOS `ps` print in the C locale — `Mon Dec  7 23:36:40 2026`,
 * with or without the weekday, day before or after the month (`Mon  7 Dec 23:36:40 2026`) — and an
 * ISO date (`2026-12-07 23:36:40`). Why normalize rather than compare the text: the column is
 * padded differently by each `ps`, and a resume may run a different `ps` than its owner did.
 */
export function normalizeLstart(text: string): string | undefined {
  let year: number | undefined;
  let month: number | undefined;
  let day: number | undefined;
  let time: string | undefined;
  for (const tok of text.trim().split(/\s+/)) {
    const iso = /^(\d{4})-(\d{2})-(\d{2})$/.exec(tok);
    const clock = /^(\d{1,2}):(\d{2}):(\d{2})$/.exec(tok);
    if (iso) [year, month, day] = [Number(iso[1]), Number(iso[2]), Number(iso[3])];
    else if (clock) time = `${two(Number(clock[1]))}:${clock[2]}:${clock[3]}`;
    else if (/^\d{4}$/.test(tok)) year = Number(tok);
    else if (/^\d{1,2}$/.test(tok)) day = Number(tok);
    else {
      // A month's name; anything else (a weekday: no weekday starts like a month) is passed over.
      const m = /^[A-Za-z]{3,}\.?$/.test(tok) ? MONTHS.indexOf(tok.slice(0, 3).toLowerCase()) : -1;
      if (m >= 0) month = m + 1;
    }
  }
  if (year === undefined || month === undefined || day === undefined || time === undefined) return undefined;
  if (day < 1 || day > 31) return undefined;
  return `${year}-${two(month)}-${two(day)}T${time}`;
}

/**
 * Parses the output of `ps -o pid=,pgid=,lstart=` (one process a line: pid, process group id,
 * start). Lines that do not parse (a header, a blank) are passed over.
 */
export function parsePsOutput(text: string): PsEntry[] {
  const out: PsEntry[] = [];
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*(\d+)\s+(\d+)\s+(.+?)\s*$/.exec(line);
    if (!m) continue;
    const start = normalizeLstart(m[3]!);
    if (start !== undefined) out.push({ pid: Number(m[1]), pgid: Number(m[2]), start });
  }
  return out;
}

/**
 * Runs `ps` for `pids` (all processes when omitted) and parses it. Why LC_ALL=C and TZ=UTC: the
 * owner and a later resume must print the same start the same way, whatever their locale or zone.
 * Resolves [] when `ps` is missing or fails (then no leftover can be identified, and none is killed).
 */
export function psList(pids?: readonly number[]): Promise<PsEntry[]> {
  const args = pids ? ['-o', 'pid=,pgid=,lstart=', '-p', pids.join(',')] : ['-A', '-o', 'pid=,pgid=,lstart='];
  return new Promise((resolve) => {
    execFile('ps', args, { env: { ...process.env, LC_ALL: 'C', TZ: 'UTC' }, maxBuffer: 16 * 1024 * 1024, timeout: 10_000 }, (err, stdout) => {
      // `ps -p` exits 1 when none of the pids exists: its (empty) output is still the answer.
      resolve(err && !stdout ? [] : parsePsOutput(String(stdout)));
    });
  });
}

/** The start of `pid`, from /proc where it answers, else from `ps`; {} when neither knows it. */
export async function processStart(pid: number): Promise<ProcessStart> {
  if (procAvailable()) {
    const startTicks = procStartTicks(pid);
    return startTicks !== undefined ? { startTicks } : {};
  }
  const entry = (await psList([pid])).find((e) => e.pid === pid);
  return entry ? { psStart: entry.start } : {};
}

/**
 * The `agent.spawned` line of a child: its pid and start. The caller awaits its journal write
 * before the child is given its prompt (see runProcess's onSpawn).
 */
export async function spawnedEvent(ref: string, attempt: number, pid: number): Promise<Extract<RunEvent, { type: 'agent.spawned' }>> {
  const start = await processStart(pid);
  return { type: 'agent.spawned', t: new Date().toISOString(), ref, attempt, pid, ...start };
}

/** One process group killed, for the log. */
export interface KilledLeftover {
  ref: string;
  attempt: number;
  pid: number;
  /** How it was found: its journaled pid and start, or (no `agent.spawned` line) its FANFOLD_* env. */
  by: 'journal' | 'env';
}

interface OpenAttempt {
  ref: string;
  attempt: number;
  spawned?: { pid: number } & ProcessStart;
}

/** Attempts that started (or spawned) in `events` and never finished. */
export function openAttempts(events: readonly RunEvent[]): OpenAttempt[] {
  const open = new Map<string, OpenAttempt>();
  const id = (e: { ref: string; attempt: number }) => `${e.ref}#${e.attempt}`;
  for (const e of events) {
    if (e.type === 'agent.started') open.set(id(e), { ...open.get(id(e)), ref: e.ref, attempt: e.attempt });
    else if (e.type === 'agent.spawned') {
      const { pid, startTicks, psStart } = e;
      open.set(id(e), { ref: e.ref, attempt: e.attempt, spawned: { pid, ...(startTicks !== undefined ? { startTicks } : {}), ...(psStart !== undefined ? { psStart } : {}) } });
    }
    // A phase summarizer (ref `<phase>/_digest`) ends with its own event.
    else if (e.type === 'agent.finished' || e.type === 'summarizer.finished') open.delete(id(e));
  }
  return [...open.values()];
}

/**
 * Kills the process groups of attempts of run `runId` that started but never finished in `events`:
 * - with an `agent.spawned` line, when the pid still leads its group and is the process that was
 *   journaled (same start, from /proc or `ps`). Why the start check: pids are reused, and killing
 *   a stranger's process group would be far worse than a duplicate;
 * - without one (the owner died between the spawn and that line), on Linux, the group leader whose
 *   environment names this very attempt (FANFOLD_RUN_ID, _PHASE_ID, _TASK_ID, _ATTEMPT), which
 *   only a child of this run can have.
 */
export async function killLeftovers(runId: string, events: readonly RunEvent[]): Promise<KilledLeftover[]> {
  const open = openAttempts(events);
  const spawned = open.filter((o) => o.spawned);
  const unspawned = open.filter((o) => !o.spawned);
  const targets: KilledLeftover[] = [];
  if (spawned.length > 0) {
    const useProc = procAvailable();
    const ps = useProc ? undefined : new Map((await psList()).map((e) => [e.pid, e]));
    for (const o of spawned) {
      const s = o.spawned!;
      const same = useProc
        ? s.startTicks !== undefined && procStartTicks(s.pid) === s.startTicks && procPgid(s.pid) === s.pid
        : s.psStart !== undefined && ps?.get(s.pid)?.start === s.psStart && ps.get(s.pid)?.pgid === s.pid;
      if (same) targets.push({ ref: o.ref, attempt: o.attempt, pid: s.pid, by: 'journal' });
    }
  }
  if (unspawned.length > 0 && procAvailable()) {
    for (const o of unspawned) {
      const pid = leaderWithEnv(runId, o.ref, o.attempt);
      if (pid !== undefined) targets.push({ ref: o.ref, attempt: o.attempt, pid, by: 'env' });
    }
  }
  const killed: KilledLeftover[] = [];
  for (const t of targets) {
    try {
      process.kill(-t.pid, 'SIGKILL');
      killed.push(t);
    } catch {
      /* gone already */
    }
  }
  return killed;
}

/** The process group of `pid` (Linux /proc), or undefined. */
function procPgid(pid: number): number | undefined {
  const pgid = Number(procStatFields(pid)?.[2]); // field 5 of stat: pgrp
  return Number.isFinite(pgid) ? pgid : undefined;
}

/**
 * The pid of a process-group leader whose environment carries the FANFOLD_* variables of attempt
 * `attempt` of `ref` in run `runId` (Linux /proc; only this user's processes are readable).
 */
function leaderWithEnv(runId: string, ref: string, attempt: number): number | undefined {
  const slash = ref.indexOf('/');
  const want = [`FANFOLD_RUN_ID=${runId}`, `FANFOLD_PHASE_ID=${ref.slice(0, slash)}`, `FANFOLD_TASK_ID=${ref.slice(slash + 1)}`, `FANFOLD_ATTEMPT=${attempt}`];
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return undefined;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid || procPgid(pid) !== pid) continue;
    let env: string;
    try {
      env = readFileSync(`/proc/${pid}/environ`, 'utf8');
    } catch {
      continue;
    }
    const vars = new Set(env.split('\0'));
    if (want.every((w) => vars.has(w))) return pid;
  }
  return undefined;
}
