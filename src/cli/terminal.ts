/**
 * Surviving a terminal that goes away under a foreground run (an SSH session dropped, a window
 * closed, a pipe's reader gone). The run must still stop cleanly and record everything; only the
 * words meant for the person are lost.
 */
import { closeSync, openSync } from 'node:fs';

let gone = false;
let exitHookInstalled = false;

/**
 * Makes writes to a closed stdout or stderr harmless (EPIPE, EIO, and the errors of writing to a
 * stream destroyed by them) and, once the terminal is known to be gone, lets the process exit with
 * its own exit code. Returns a function that removes the error listeners.
 */
export function guardOutput(streams: NodeJS.WriteStream[] = [process.stdout, process.stderr]): () => void {
  const onError = (e: NodeJS.ErrnoException) => {
    if (e.code === 'EIO' || e.code === 'EPIPE') terminalGone();
  };
  for (const s of streams) s.on('error', onError);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', releaseGoneTerminal);
  }
  return () => {
    for (const s of streams) s.off('error', onError);
  };
}

/** Notes that the terminal is gone (SIGHUP, or EIO/EPIPE on a write). */
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
