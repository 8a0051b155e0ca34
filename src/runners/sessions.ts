/**
 * Continuing an agent CLI's session instead of starting over (issue 12 item 3).
 *
 * Where sessions live: an agent CLI writes its session (the conversation) into its own home
 * (Claude Code: `<config dir>/projects/<cwd slug>/<session id>.jsonl`). After each attempt the
 * runner moves that file into the run's `sessions/` folder — the run owns it, it goes when the run
 * folder goes, and the user's own CLI history does not fill up with thousands of sub-agent
 * sessions. To continue, the runner puts the copy back where the CLI looks for it, starts the CLI
 * in its resume mode with a short continuation prompt, and moves the (now longer) session back
 * into the run folder afterwards. The CLI's home is what its sandbox already reaches (bound
 * read-write for CLIs fanfold runs inside bwrap), so nothing new is opened to it.
 *
 * Session ids fanfold can choose (Claude's `--session-id`) are derived from the run, the task and
 * the attempt: an owner that resumes a run after a crash finds the cut-off attempt's session in the
 * CLI's home without any record of it.
 */
import { createHash } from 'node:crypto';
import { copyFile, mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { withFeedback } from './structured.js';

/** A session the next attempt continues (what the engine hands the runner). */
export interface ContinueFrom {
  /** The attempt whose session this is. */
  attempt: number;
  /** The CLI's session (thread) id. */
  sessionId: string;
  /** The run's copy of the session file (absolute), when it was saved; absent for a cut-off attempt. */
  file?: string;
  /** Where the CLI keeps it, relative to its home (e.g. `projects/-work-x/<id>.jsonl`), when known. */
  origin?: string;
  /** Why the earlier attempt ended (for the continuation prompt): "timed out after 10m", … */
  why: string;
  /**
   * Set when the session is another task's (a gate's `fix-n` continued by `fix-(n+1)`): that task's
   * ref; the new task's own prompt is sent then, not the continuation prompt.
   */
  ref?: string;
}

/** A session saved into the run folder after an attempt. */
export interface SavedSession {
  /** Absolute path of the run's copy. */
  file: string;
  /** Path relative to the CLI's home it came from (where a continuation puts it back). */
  origin: string;
}

/**
 * A UUID for the session of attempt `attempt` of `ref` in `runId`: stable, so a later owner can
 * name the session of an attempt that was cut off; shaped as a version-4 UUID (Claude checks it).
 */
export function sessionUuid(runId: string, ref: string, attempt: number): string {
  const h = createHash('sha256').update(`fanfold-session\0${runId}\0${ref}\0${attempt}`).digest('hex');
  const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * The prompt of a continued attempt: short, since the conversation so far is already in the
 * session; with the validation errors when the earlier answer was refused.
 */
export function continuationPrompt(from: ContinueFrom, feedback: string | undefined): string {
  const base =
    `[fanfold] Your previous attempt at this task was interrupted (${from.why}). The conversation so far is above. ` +
    'Continue from where you stopped and finish the task; give your final answer as the task asks.';
  return feedback === undefined ? base : withFeedback(base, feedback);
}

/** Moves `from` to `to` (copy + remove across file systems), making `to`'s folder. */
export async function moveFile(from: string, to: string): Promise<void> {
  await mkdir(path.dirname(to), { recursive: true });
  try {
    await rename(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    await copyFile(from, to);
    await rm(from, { force: true });
  }
}

/** Whether `file` exists and holds something. */
export async function nonEmpty(file: string): Promise<boolean> {
  try {
    return (await stat(file)).size > 0;
  } catch {
    return false;
  }
}
