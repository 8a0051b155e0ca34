/**
 * Surviving a terminal that goes away under a foreground run (an SSH session dropped, a window
 * closed, a pipe's reader gone). The run must still stop cleanly and record everything; only the
 * words meant for the person are lost.
 */
import { closeSync, openSync } from 'node:fs';

let gone = false;
let exitHookInstalled = false;
const guarded = new WeakSet<NodeJS.WriteStream>();

/** The write errors of a reader or terminal that went away; anything else is a real fault. */
const GONE_CODES = new Set(['EPIPE', 'EIO', 'ERR_STREAM_DESTROYED']);

/**
 * Makes a closed stdout or stderr harmless, for every command: `fanfold list | head -1` (EPIPE), a
 * hung-up terminal under a foreground run (EIO), and the writes that follow on the destroyed
 * stream. What is still written is dropped and the command finishes as it would have. Why not
 * exit at once: a foreground `fanfold run` owns a run, and must still stop its agents and record
 * them. Once a terminal is known to be gone, the process also exits with its own exit code (see
 * releaseGoneTerminal). Guarding a stream twice is a no-op.
 */
export function guardOutput(streams: NodeJS.WriteStream[] = [process.stdout, process.stderr]): void {
  for (const stream of streams) {
    if (guarded.has(stream)) continue;
    guarded.add(stream);
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (!GONE_CODES.has(e.code ?? '')) throw e;
      if (e.code === 'EIO') terminalGone();
      stream.write = ((_chunk: unknown, enc?: unknown, cb?: unknown) => {
        const done = typeof enc === 'function' ? enc : cb;
        if (typeof done === 'function') queueMicrotask(() => (done as () => void)());
        return true;
      }) as typeof stream.write;
    });
  }
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', releaseGoneTerminal);
  }
}

/** Notes that the terminal is gone (SIGHUP, or EIO on a write). */
export function terminalGone(): void {
  gone = true;
}

/**
 * Why: on exit Node 20 restores the terminal mode of fds 0–2 with tcsetattr and aborts the process
 * (a failed CHECK, exit by SIGABRT) when that fails with EIO, as it does on a hung-up terminal —
 * turning a clean `stopped` (exit 1) into a crash. Node skips an fd that now refers to another
 * file, so each is pointed at /dev/null first: close, then open (which takes the lowest free
 * number, the one just closed). Runs in the synchronous 'exit' hook: no other I/O is in flight.
 */
function releaseGoneTerminal(): void {
  if (!gone) return;
  for (const fd of [0, 1, 2]) {
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
    try {
      const got = openSync('/dev/null', fd === 0 ? 'r' : 'w');
      if (got !== fd) closeSync(got);
    } catch {
      /* nothing more to do on the way out */
    }
  }
}
