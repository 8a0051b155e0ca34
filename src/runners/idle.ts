/**
 * The idle watchdog's two questions: how long may an agent stay silent, and is a silent process
 * group still working?
 *
 * "Silent" is not "idle": an agent whose tool runs a long test suite prints nothing for minutes
 * while its process group burns CPU. So a child counts as alive when it wrote to stdout or stderr
 * *or* its process group used a noticeable share of a CPU. An agent CLI waiting on a model that
 * never answers uses almost none: Claude Code 2.1.330 was measured here at ~1.3 % of one core
 * (timers and its event loop), which is why the bar is a share of the time (IDLE_CPU_SHARE) rather
 * than "any CPU tick at all".
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import type { AgentDef, Limits } from '../spec/types.js';

/** The default idle timeout of claude, codex and pi agents (15 minutes). */
export const DEFAULT_AGENT_IDLE_TIMEOUT_MS = 15 * 60_000;

/**
 * Share of the checked interval the process group must have spent on a CPU to count as working.
 * Why 2.5 %: about twice what an agent CLI uses while it waits on the network (see above), and far
 * below anything that compiles, tests or searches.
 */
export const IDLE_CPU_SHARE = 0.025;

/** Least CPU time (ms) that counts as work in one check, whatever the interval (3 clock ticks). */
export const IDLE_CPU_FLOOR_MS = 30;

/**
 * The idle timeout of one agent in ms, 0 when off: the agent's own `idleTimeout`, else
 * `limits.agentIdleTimeout`, else 15 min for agent CLIs and off for `command` (a command's author
 * knows what it does; an agent CLI may wait forever on a prompt nobody can answer).
 */
export function idleTimeoutFor(agent: Pick<AgentDef, 'runner' | 'idleTimeoutMs'>, limits: Pick<Limits, 'agentIdleTimeoutMs'>): number {
  if (agent.idleTimeoutMs !== undefined) return agent.idleTimeoutMs;
  if (limits.agentIdleTimeoutMs !== undefined) return limits.agentIdleTimeoutMs;
  return agent.runner === 'command' ? 0 : DEFAULT_AGENT_IDLE_TIMEOUT_MS;
}

let clockTicks: number | undefined;
/** Clock ticks per second of /proc's utime/stime (USER_HZ, 100 on every Linux we know of). */
function ticksPerSecond(): number {
  if (clockTicks !== undefined) return clockTicks;
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    clockTicks = Number.isFinite(n) && n > 0 ? n : 100;
  } catch {
    clockTicks = 100;
  }
  return clockTicks;
}

/**
 * CPU time (user + system, ms) used so far by the live members of process group `pgid`, or
 * undefined when it cannot be measured (no /proc and no `ps`). Reads /proc/<pid>/stat of every
 * process; falls back to `ps -e -o pgid=,time=`. Time of members that already exited is not
 * counted: a group that keeps starting short-lived commands still prints or shows new CPU time
 * in the live ones often enough, and the watchdog's window is minutes long.
 */
export function groupCpuMs(pgid: number): number | undefined {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return psGroupCpuMs(pgid);
  }
  const perTick = 1000 / ticksPerSecond();
  let total = 0;
  for (const name of entries) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // exited between readdir and read
    }
    // Fields after the command name (which may hold spaces and parentheses): state is field 3.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(rest[2]) !== pgid) continue; // field 5: pgrp
    total += (Number(rest[11]) + Number(rest[12])) * perTick; // fields 14, 15: utime, stime
  }
  return total;
}

function psGroupCpuMs(pgid: number): number | undefined {
  let out: string;
  try {
    out = execFileSync('ps', ['-e', '-o', 'pgid=,time='], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 });
  } catch {
    return undefined;
  }
  let total = 0;
  for (const line of out.split('\n')) {
    const m = /^\s*(\d+)\s+(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)\s*$/.exec(line);
    if (!m || Number(m[1]) !== pgid) continue;
    total += (((Number(m[2] ?? 0) * 24 + Number(m[3] ?? 0)) * 60 + Number(m[4])) * 60 + Number(m[5])) * 1000;
  }
  return total;
}
