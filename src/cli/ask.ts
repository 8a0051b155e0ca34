/**
 * A checkpoint's question on the terminal of a foreground `fanfold run`/`resume`. Only when both
 * stdin and stderr are terminals: a script or a detached run is never asked (they answer with
 * `fanfold approve`). The question competes with answers from other sessions; whichever comes
 * first wins, and the prompt is withdrawn (its signal aborts).
 */
import readline from 'node:readline/promises';
import type { CheckpointWait } from '../store/types.js';
import type { ProgressView } from './progress.js';

/** The ask function for ownRun, or undefined when there is no terminal to ask on. */
export function terminalAsk(view: ProgressView): ((wait: CheckpointWait, signal: AbortSignal) => Promise<boolean | undefined>) | undefined {
  if (!process.stdin.isTTY || !process.stderr.isTTY) return undefined;
  // One question at a time on one terminal: later checkpoints wait for the earlier prompt.
  let queue: Promise<unknown> = Promise.resolve();
  return (wait, signal) => {
    const p = queue.then(() => askOnce(view, wait, signal));
    queue = p.catch(() => undefined);
    return p;
  };
}

async function askOnce(view: ProgressView, wait: CheckpointWait, signal: AbortSignal): Promise<boolean | undefined> {
  if (signal.aborted) return undefined;
  view.hold(true);
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  try {
    for (;;) {
      const line = await rl.question(
        `\nCheckpoint before phase ${wait.phaseId}: ${wait.message}\nApprove? [y]es / [n]o (reject: the run ends stopped): `,
        { signal },
      );
      const a = line.trim().toLowerCase();
      if (a === 'y' || a === 'yes') return true;
      if (a === 'n' || a === 'no') return false;
    }
  } catch {
    return undefined; // withdrawn (answered elsewhere, the run stopped) or the terminal closed
  } finally {
    rl.close();
    view.hold(false);
  }
}
