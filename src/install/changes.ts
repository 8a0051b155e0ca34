/**
 * An install is computed first as a list of file changes (nothing touched), then shown, then —
 * unless it is a dry run — applied. Every change is decided before the first write, so a problem
 * with any file (a malformed config, a folder where a file should be) stops the install with
 * nothing written.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { writeTextAtomic } from '../store/index.js';
import { InstallError } from './errors.js';

/** What happens to one file. */
export type ChangeAction = 'create' | 'update' | 'unchanged' | 'skip' | 'delete';

/** One file of an install. */
export interface FileChange {
  /** The path the user knows (may be a symlink). */
  path: string;
  /** Where the bytes go: `path`, or the file its symlink points to (a dotfiles link stays a link). */
  target: string;
  action: ChangeAction;
  /** What the file is, for people: "MCP server entry", "skill", "slash command /workflow". */
  what: string;
  /** Current text (update, unchanged). */
  before?: string;
  /** New text (create, update). */
  after?: string;
  /** Why it is skipped, or a detail of the change. */
  note?: string;
  /** Show a line diff (config files) rather than a line count (copied files). */
  diff: boolean;
  /** Permission bits of the existing file, kept on rewrite. */
  mode?: number;
  /** For a delete: folders left empty by it are removed up to (not including) this one. */
  pruneUpTo?: string;
}

/** The file as it is on disk. */
export interface ExistingFile {
  text: string;
  /** The file the bytes live in (after following symlinks). */
  target: string;
  mode: number;
}

/** Most bytes of a file read to edit it. Why: ~/.claude.json grows with history, but not to this. */
const MAX_READ_BYTES = 64 * 1024 * 1024;

/**
 * Reads a file to edit it, following symlinks to the real file. Undefined when it does not exist
 * (a dangling symlink gives its would-be target). Throws InstallError for a folder in its place,
 * an unreadable or oversized file.
 */
export async function readExisting(file: string): Promise<{ existing?: ExistingFile; target: string }> {
  let target = path.resolve(file);
  for (let hops = 0; ; hops++) {
    let st;
    try {
      st = await fs.lstat(target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return { target };
      throw new InstallError(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
    }
    if (st.isSymbolicLink()) {
      if (hops >= 20) throw new InstallError(`${file}: too many symbolic links`);
      target = path.resolve(path.dirname(target), await fs.readlink(target));
      continue;
    }
    if (st.isDirectory()) throw new InstallError(`${file} is a folder, expected a file. Move it away, then run again; nothing was written.`);
    if (st.size > MAX_READ_BYTES) throw new InstallError(`${file} is ${st.size} bytes, more than this installer reads (${MAX_READ_BYTES}); nothing was written.`);
    try {
      return { existing: { text: await fs.readFile(target, 'utf8'), target, mode: st.mode & 0o777 }, target };
    } catch (err) {
      throw new InstallError(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
    }
  }
}

/** A change that writes `after` to `file` unless it already holds exactly that. */
export async function fileChange(file: string, after: string, what: string, opts: { diff?: boolean } = {}): Promise<FileChange> {
  const { existing, target } = await readExisting(file);
  const base = { path: file, target, what, diff: opts.diff ?? false };
  if (!existing) return { ...base, action: 'create', after };
  if (existing.text === after) return { ...base, action: 'unchanged', before: existing.text };
  return { ...base, action: 'update', before: existing.text, after, mode: existing.mode };
}

/** Whether any change writes something. */
export function hasWrites(changes: readonly FileChange[]): boolean {
  return changes.some((c) => c.action === 'create' || c.action === 'update' || c.action === 'delete');
}

/** Writes every create/update, in order, each atomically (folders made as needed). */
export async function applyChanges(changes: readonly FileChange[]): Promise<void> {
  for (const c of changes) {
    if (c.action === 'delete') {
      await deleteFile(c);
      continue;
    }
    if (c.action !== 'create' && c.action !== 'update') continue;
    try {
      await fs.mkdir(path.dirname(c.target), { recursive: true });
    } catch (err) {
      throw new InstallError(`cannot create the folder of ${c.path}: ${(err as Error).message}`, { cause: err });
    }
    await writeTextAtomic(c.target, c.after!, c.mode !== undefined ? { mode: c.mode } : {});
  }
}

/** Removes the file (the link itself when `path` is a symlink), then the folders it leaves empty. */
async function deleteFile(c: FileChange): Promise<void> {
  try {
    await fs.rm(c.path, { force: true });
  } catch (err) {
    throw new InstallError(`cannot remove ${c.path}: ${(err as Error).message}`, { cause: err });
  }
  if (!c.pruneUpTo) return;
  const stop = path.resolve(c.pruneUpTo);
  for (let dir = path.dirname(path.resolve(c.path)); dir.startsWith(stop + path.sep); dir = path.dirname(dir)) {
    // rmdir refuses a folder that still holds anything: only what the install made and left empty goes.
    const gone = await fs.rmdir(dir).then(() => true, () => false);
    if (!gone) break;
  }
}

/** Shows `p` with the home folder as `~`. */
export function tildify(p: string, home: string): string {
  return p === home ? '~' : p.startsWith(home + path.sep) ? `~${p.slice(home.length)}` : p;
}

/** Most diff lines shown per file. */
const MAX_DIFF_LINES = 40;

/**
 * A compact line diff: the common head and tail are cut (two lines of context kept), the middle
 * shown as `-` and `+` lines. Linear time, which matters for a large ~/.claude.json; the edits
 * this installer makes are one contiguous region, so nothing is lost.
 */
export function lineDiff(before: string, after: string): string[] {
  const lines = (t: string) => {
    const l = t.split('\n');
    if (l[l.length - 1] === '') l.pop();
    return l;
  };
  const a = lines(before);
  const b = lines(after);
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const ctx = 2;
  const out: string[] = [];
  const from = Math.max(0, head - ctx);
  if (from > 0) out.push(`@@ line ${from + 1} @@`);
  for (let i = from; i < head; i++) out.push(`  ${a[i]}`);
  for (let i = head; i < a.length - tail; i++) out.push(`- ${a[i]}`);
  for (let i = head; i < b.length - tail; i++) out.push(`+ ${b[i]}`);
  for (let i = b.length - tail; i < Math.min(b.length, b.length - tail + ctx); i++) out.push(`  ${b[i]}`);
  if (out.length > MAX_DIFF_LINES) return [...out.slice(0, MAX_DIFF_LINES), `… ${out.length - MAX_DIFF_LINES} more lines`];
  return out;
}

/** A new file's lines as `+` lines, capped like a diff. */
function addedLines(text: string): string[] {
  const all = text.split('\n');
  if (all[all.length - 1] === '') all.pop();
  const out = all.map((l) => `+ ${l}`);
  return out.length > MAX_DIFF_LINES ? [...out.slice(0, MAX_DIFF_LINES), `… ${out.length - MAX_DIFF_LINES} more lines`] : out;
}

function lineCount(text: string): number {
  return text === '' ? 0 : text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
}

/** The changes as a listing for people: one line per file, diffs under config files. */
export function renderChanges(changes: readonly FileChange[], home: string): string[] {
  const lines: string[] = [];
  const label: Record<ChangeAction, string> = { create: 'create', update: 'update', unchanged: 'ok', skip: 'skip', delete: 'delete' };
  for (const c of changes) {
    const shown = tildify(c.path, home) + (c.target !== path.resolve(c.path) ? ` → ${tildify(c.target, home)}` : '');
    let detail = c.what;
    if (c.action === 'unchanged') detail += ', unchanged';
    if (c.note) detail += `; ${c.note}`;
    if (!c.diff && c.action === 'create') detail += `, ${lineCount(c.after!)} lines`;
    if (!c.diff && c.action === 'update') detail += `, ${lineCount(c.before!)} → ${lineCount(c.after!)} lines`;
    lines.push(`  ${label[c.action].padEnd(7)} ${shown} (${detail})`);
    if (c.diff && c.action === 'update') for (const d of lineDiff(c.before!, c.after!)) lines.push(`            ${d}`);
    if (c.diff && c.action === 'create') for (const d of addedLines(c.after!)) lines.push(`            ${d}`);
    if (c.diff && c.action === 'delete' && c.before !== undefined) for (const d of addedLines(c.before).map((l) => `-${l.slice(1)}`)) lines.push(`            ${d}`);
  }
  return lines;
}
