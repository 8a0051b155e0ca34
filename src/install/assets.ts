/**
 * The files an install copies, read from this package: the skill (`skill/`, every file in it) and
 * the `/workflow` slash command. The command's source of truth ships in `.claude-plugin/commands/`
 * (the plugin uses it from there, and that folder is in the npm package; `.claude/` is not).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InstallError } from './errors.js';

/** This package's root folder (the same from `src/install/` and from `dist/install/`). */
export function packageRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
}

/** Path of the slash command's source, relative to the package root. */
export const WORKFLOW_COMMAND_SOURCE = '.claude-plugin/commands/workflow.md';

/** The skill's name: its folder name wherever it is installed, and its front matter `name`. */
export const SKILL_NAME = 'fanfold';

/** One file of the skill: its path inside the skill folder (`/`-separated) and its text. */
export interface SkillFile {
  rel: string;
  text: string;
}

/** Most files and bytes a skill folder may hold. Why: a stray build output must not be copied into every host. */
const MAX_SKILL_FILES = 50;
const MAX_SKILL_BYTES = 2 * 1024 * 1024;

/** Every file of `<root>/skill`, sorted by path; throws InstallError when the folder is missing. */
export async function readSkillFiles(root: string): Promise<SkillFile[]> {
  const dir = path.join(root, 'skill');
  const out: SkillFile[] = [];
  let bytes = 0;
  const walk = async (rel: string): Promise<void> => {
    let entries;
    try {
      entries = await fs.readdir(path.join(dir, rel), { withFileTypes: true });
    } catch (err) {
      throw new InstallError(`cannot read the bundled skill at ${path.join(dir, rel)}: ${(err as Error).message}`, { cause: err });
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.name.startsWith('.')) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(r);
      else if (e.isFile()) {
        const text = await fs.readFile(path.join(dir, r), 'utf8');
        bytes += Buffer.byteLength(text);
        out.push({ rel: r, text });
        if (out.length > MAX_SKILL_FILES || bytes > MAX_SKILL_BYTES) {
          throw new InstallError(`the bundled skill at ${dir} holds more than ${MAX_SKILL_FILES} files or ${MAX_SKILL_BYTES} bytes; refusing to copy it`);
        }
      }
    }
  };
  await walk('');
  // SKILL.md first: it is the file that makes the folder a skill.
  out.sort((a, b) => (a.rel === 'SKILL.md' ? -1 : b.rel === 'SKILL.md' ? 1 : a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  if (!out.some((f) => f.rel === 'SKILL.md')) throw new InstallError(`the bundled skill at ${dir} has no SKILL.md`);
  return out;
}

/** The `/workflow` slash command's text. */
export async function readWorkflowCommand(root: string): Promise<string> {
  const file = path.join(root, WORKFLOW_COMMAND_SOURCE);
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new InstallError(`cannot read the bundled slash command ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** The front matter of a Markdown file as key → raw value (one-line values only), or undefined. */
export function frontMatter(text: string): Record<string, string> | undefined {
  const m = /^---\r?\n([\s\S]*?)\r?\n---\r?\n/.exec(text);
  if (!m) return undefined;
  const out: Record<string, string> = {};
  for (const line of m[1]!.split(/\r?\n/)) {
    const kv = /^([A-Za-z][\w-]*):\s*(.*)$/.exec(line);
    if (kv) out[kv[1]!] = kv[2]!.trim();
  }
  return out;
}
