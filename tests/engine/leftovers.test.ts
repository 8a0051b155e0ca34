/**
 * Leftover agents of a dead owner (issue 10 item 7): identified without /proc through
 * `ps -o pid=,pgid=,lstart=` (the parsing unit-tested on Linux and macOS output, the path itself
 * forced on Linux with FANFOLD_NO_PROC=1 against real processes), and found by their FANFOLD_*
 * environment when the owner died before it could journal their pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import {
  killLeftovers,
  normalizeLstart,
  openAttempts,
  parsePsOutput,
  processStart,
  psList,
  spawnedEvent,
} from '../../src/engine/leftovers.js';
import type { RunEvent } from '../../src/store/types.js';
import { alive, until } from '../helpers/cli.js';

const children: ChildProcess[] = [];
afterEach(() => {
  delete process.env.FANFOLD_NO_PROC;
  for (const c of children.splice(0)) {
    try {
      process.kill(-c.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
});

/** A detached `sleep` (its own process group, as agents are), with `env` added. */
function sleeper(env: Record<string, string> = {}): number {
  const c = spawn('sleep', ['60'], { detached: true, stdio: 'ignore', env: { ...process.env, ...env } });
  children.push(c);
  return c.pid!;
}

const T = '2026-01-01T00:00:00.000Z';
const started = (ref: string, attempt = 1): RunEvent => ({ type: 'agent.started', t: T, ref, key: 'k', attempt, slot: 0 });
const finished = (ref: string, attempt = 1): RunEvent => ({ type: 'agent.finished', t: T, ref, key: 'k', attempt, status: 'succeeded', durationMs: 1, file: 'x.json' });

describe('parsing ps -o pid=,pgid=,lstart=', () => {
  it('reads procps output (Linux): padded columns, the day padded with a space', () => {
    const out = [
      '    1     0 Mon Dec  7 20:28:45 2026',
      '27681 27681 Mon Dec  7 23:36:36 2026',
      '27690 27681 Tue Dec 15 03:04:05 2026',
      '',
    ].join('\n');
    expect(parsePsOutput(out)).toEqual([
      { pid: 1, pgid: 0, start: '2026-12-07T20:28:45' },
      { pid: 27681, pgid: 27681, start: '2026-12-07T23:36:36' },
      { pid: 27690, pgid: 27681, start: '2026-12-15T03:04:05' },
    ]);
  });

  it('reads macOS output: the C locale form, and the day-before-month form some locales print', () => {
    const out = [
      '    1     1 Thu Nov 26 08:59:01 2026',
      '  501   501 Fri Nov 27 9:03:12 2026',
      ' 7321  7320 Sat 28 Nov 10:11:12 2026',
      '88123 88123 Sun  1 Mar 00:00:00 2026',
    ].join('\n');
    expect(parsePsOutput(out)).toEqual([
      { pid: 1, pgid: 1, start: '2026-11-26T08:59:01' },
      { pid: 501, pgid: 501, start: '2026-11-27T09:03:12' },
      { pid: 7321, pgid: 7320, start: '2026-11-28T10:11:12' },
      { pid: 88123, pgid: 88123, start: '2026-03-01T00:00:00' },
    ]);
  });

  it('passes over headers, blank lines and lines without a readable start', () => {
    const out = ['  PID  PGID STARTED', '', '  12    12 yesterday', '  13    13 Mon Dec  7 20:28:45 2026', 'garbage'].join('\n');
    expect(parsePsOutput(out)).toEqual([{ pid: 13, pgid: 13, start: '2026-12-07T20:28:45' }]);
  });

  it('normalizeLstart: weekday optional, ISO dates, CRLF; undefined when a part is missing', () => {
    expect(normalizeLstart('Dec  7 23:36:40 2026')).toBe('2026-12-07T23:36:40');
    expect(normalizeLstart('2026-12-07 23:36:40')).toBe('2026-12-07T23:36:40');
    expect(normalizeLstart('Mon Sep  7 23:36:40 2026\r')).toBe('2026-09-07T23:36:40');
    expect(normalizeLstart('Mon Dec  7 23:36:40')).toBeUndefined(); // no year
    expect(normalizeLstart('Mon  7 23:36:40 2026')).toBeUndefined(); // no month
    expect(normalizeLstart('Mon Dec 7 2026')).toBeUndefined(); // no time
  });
});

describe('openAttempts', () => {
  it('started or spawned and not finished; a summarizer ends with summarizer.finished', () => {
    const events: RunEvent[] = [
      started('p/a'), { type: 'agent.spawned', t: T, ref: 'p/a', attempt: 1, pid: 10, startTicks: 5 },
      started('p/b'), { type: 'agent.spawned', t: T, ref: 'p/b', attempt: 1, pid: 11, psStart: '2026-12-07T23:36:40' }, finished('p/b'),
      started('p/c'),
      { type: 'agent.spawned', t: T, ref: 'p/_digest', attempt: 1, pid: 12 },
      { type: 'agent.spawned', t: T, ref: 'q/_digest', attempt: 1, pid: 13 },
      { type: 'summarizer.finished', t: T, phaseId: 'q', ref: 'q/_digest', attempt: 1, agent: 's', runner: 'command', status: 'succeeded', durationMs: 1 } as RunEvent,
    ];
    expect(openAttempts(events)).toEqual([
      { ref: 'p/a', attempt: 1, spawned: { pid: 10, startTicks: 5 } },
      { ref: 'p/c', attempt: 1 },
      { ref: 'p/_digest', attempt: 1, spawned: { pid: 12 } },
    ]);
  });
});

describe('the ps path, forced on Linux (FANFOLD_NO_PROC=1)', () => {
  it("ps gives this process's group and its start, in UTC, to the second", async () => {
    const [me] = await psList([process.pid]);
    expect(me).toMatchObject({ pid: process.pid, pgid: expect.any(Number) });
    const startedAtMs = Date.now() - process.uptime() * 1000;
    expect(Math.abs(Date.parse(`${me!.start}Z`) - startedAtMs)).toBeLessThan(5000);
    expect(await psList([2 ** 22 + 12345])).toEqual([]); // no such pid: nothing, not a throw
  });

  it('journals psStart (not startTicks) and kills the real leftover whose pid and start match', async () => {
    process.env.FANFOLD_NO_PROC = '1';
    const pid = sleeper();
    const spawned = await spawnedEvent('p/t', 1, pid);
    expect(spawned.startTicks).toBeUndefined();
    expect(spawned.psStart).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
    expect(await processStart(pid)).toEqual({ psStart: spawned.psStart });

    const killed = await killLeftovers('run1', [started('p/t'), spawned]);
    expect(killed).toEqual([{ ref: 'p/t', attempt: 1, pid, by: 'journal' }]);
    await until(() => !alive(pid), 10_000, 'the leftover to die');
  });

  it('leaves alone a process whose start differs (a reused pid) and one that finished', async () => {
    process.env.FANFOLD_NO_PROC = '1';
    const pid = sleeper();
    const spawned = await spawnedEvent('p/t', 1, pid);
    const stranger = { ...spawned, psStart: '2001-01-01T00:00:00' };
    expect(await killLeftovers('run1', [started('p/t'), stranger])).toEqual([]);
    expect(await killLeftovers('run1', [started('p/t'), spawned, finished('p/t')])).toEqual([]);
    expect(alive(pid)).toBe(true);
  });
});

describe('the window before agent.spawned', () => {
  it("an attempt journaled started but never spawned: its child is found by its FANFOLD_* env and killed", async () => {
    const env = (attempt: number) => ({ FANFOLD_RUN_ID: 'runx', FANFOLD_PHASE_ID: 'p', FANFOLD_TASK_ID: 't', FANFOLD_ATTEMPT: String(attempt) });
    const mine = sleeper(env(2));
    const other = sleeper(env(1)); // attempt 1 finished: its process (if any) is not this attempt's
    const otherRun = sleeper({ ...env(2), FANFOLD_RUN_ID: 'runy' });
    const killed = await killLeftovers('runx', [started('p/t', 1), finished('p/t', 1), started('p/t', 2)]);
    expect(killed).toEqual([{ ref: 'p/t', attempt: 2, pid: mine, by: 'env' }]);
    await until(() => !alive(mine), 10_000, 'the leftover to die');
    expect(alive(other)).toBe(true);
    expect(alive(otherRun)).toBe(true);
  });
});
