/**
 * Agents a dead owner left running. Each agent leads its own process group, so when its owner is
 * SIGKILLed it goes on, unsupervised — and a resumed run would start a second copy beside it. The
 * owner journals every child's pid with its start time; a new owner kills the groups whose
 * attempt never finished and whose pid still belongs to the same process.
 */
import { readFileSync } from 'node:fs';
import type { RunEvent } from '../store/types.js';

/** Start time of a process in clock ticks since boot (Linux), or undefined where unknown. */
export function procStartTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces and parentheses) start at state.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]); // field 22 of stat: starttime
    return Number.isFinite(ticks) ? ticks : undefined;
  } catch {
    return undefined;
  }
}

/** One process group killed, for the log. */
export interface KilledLeftover {
  ref: string;
  attempt: number;
  pid: number;
}

/**
 * Kills the process groups of attempts that started but never finished in `events`, when their
 * leader is still the process that was journaled (same start time). Why the start-time check:
 * pids are reused, and killing a stranger's process group would be far worse than a duplicate.
 */
export function killLeftovers(events: readonly RunEvent[]): KilledLeftover[] {
  const open = new Map<string, { ref: string; attempt: number; pid: number; startTicks?: number }>();
  for (const e of events) {
    if (e.type === 'agent.spawned') open.set(`${e.ref}#${e.attempt}`, { ref: e.ref, attempt: e.attempt, pid: e.pid, ...(e.startTicks !== undefined ? { startTicks: e.startTicks } : {}) });
    // A phase summarizer (ref `<phase>/_digest`) ends with its own event.
    else if (e.type === 'agent.finished' || e.type === 'summarizer.finished') open.delete(`${e.ref}#${e.attempt}`);
  }
  const killed: KilledLeftover[] = [];
  for (const o of open.values()) {
    if (o.startTicks === undefined || procStartTicks(o.pid) !== o.startTicks) continue;
    try {
      process.kill(-o.pid, 'SIGKILL');
      killed.push({ ref: o.ref, attempt: o.attempt, pid: o.pid });
    } catch {
      /* gone already */
    }
  }
  return killed;
}
