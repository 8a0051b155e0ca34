/** Shared helpers for the runner tests: fixture paths and process liveness checks. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Absolute path of a fixture script under tests/runners/fixtures. */
export function fixture(name: string): string {
  return fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
}

/** argv running a fixture with this very node binary. */
export function nodeFixture(name: string, ...args: string[]): string[] {
  return [process.execPath, fixture(name), ...args];
}

/**
 * Whether `pid` is a live (non-zombie) process. A killed orphan is reparented to pid 1, which in
 * some containers never reaps it: it stays a zombie, which `kill(pid, 0)` still reports. A zombie
 * runs nothing, so it counts as dead here.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 3 (after the parenthesized command name) is the state.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Polls until `pid` is dead or `withinMs` passed; returns whether it died. */
export async function waitDead(pid: number, withinMs = 2000): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return !isAlive(pid);
}

/** Kills `pid` if it is still alive (test cleanup after a failed assertion). */
export function killIfAlive(pid: number | undefined): void {
  if (pid === undefined || !Number.isInteger(pid) || pid <= 0) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** The first line of `text` made only of digits, as a pid. */
export function pidLine(text: string): number {
  const line = text.split('\n').find((l) => /^\d+$/.test(l));
  const pid = Number(line);
  if (line === undefined || pid <= 0) {
    throw new Error(`expected a pid line, got ${JSON.stringify(text.slice(0, 80))}`);
  }
  return pid;
}
