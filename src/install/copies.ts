/**
 * The copied parts of an install, shared by the hosts: the skill folder and the `/workflow`
 * slash command. A file of the same name that is not fanfold's is never overwritten: it is
 * skipped and the user is told.
 */
import path from 'node:path';
import { SKILL_NAME, frontMatter, type SkillFile } from './assets.js';
import { fileChange, readExisting, type FileChange } from './changes.js';

/** Changes that put the skill's files into `<skillsDir>/fanfold/`. */
export async function skillChanges(skillsDir: string, files: readonly SkillFile[]): Promise<FileChange[]> {
  const dir = path.join(skillsDir, SKILL_NAME);
  const skillMd = path.join(dir, 'SKILL.md');
  const { existing } = await readExisting(skillMd);
  if (existing) {
    const name = frontMatter(existing.text)?.name?.replace(/^["']|["']$/g, '');
    if (name !== SKILL_NAME) {
      return [{
        path: skillMd,
        target: skillMd,
        action: 'skip',
        what: 'skill',
        diff: false,
        note: `a skill named '${name ?? '(no name)'}' is already there, not fanfold's; left as is — move it and run again to install the fanfold skill`,
      }];
    }
  }
  const out: FileChange[] = [];
  for (const f of files) out.push(await fileChange(path.join(dir, ...f.rel.split('/')), f.text, f.rel === 'SKILL.md' ? 'skill' : 'skill reference'));
  return out;
}

/** Whether a slash command file is fanfold's (any version): it drives fanfold's tools. */
export function isFanfoldCommand(text: string): boolean {
  return text.includes('plan_workflow');
}

/** The change that puts the `/workflow` slash command into `<commandsDir>/workflow.md`. */
export async function commandChange(commandsDir: string, text: string): Promise<FileChange> {
  const file = path.join(commandsDir, 'workflow.md');
  const { existing } = await readExisting(file);
  if (existing && !isFanfoldCommand(existing.text)) {
    return {
      path: file,
      target: file,
      action: 'skip',
      what: 'slash command /workflow',
      diff: false,
      note: 'a /workflow command that is not fanfold\'s is already there; left as is — the skill still works (ask for "a fanfold workflow")',
    };
  }
  return fileChange(file, text, 'slash command /workflow');
}
