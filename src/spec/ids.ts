/**
 * Ids of phases, tasks and agents. They become file names under `.agent_workflows/<runId>/`, so
 * they are held to a strict allow-list here and checked again (with path containment) by `store/`.
 */

/**
 * An id: 1–64 characters, letters, digits, `_` and `-`, starting with a letter or digit.
 * Why: no `/`, `\`, `.`, NUL or leading `-`/`_`, so an id can never escape its folder, hide as a
 * dot-file, read as a CLI flag or collide with `__proto__`.
 */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** The rule of ID_PATTERN in words, for error messages. */
export const ID_RULE =
  "1–64 letters, digits, '_' or '-', starting with a letter or digit";

/**
 * A task dependency as written in a task's `dependsOn`: `phase/task`, or a bare `task` of the
 * same phase.
 */
export const TASK_DEP_PATTERN =
  /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}(?:\/[A-Za-z0-9][A-Za-z0-9_-]{0,63})?$/;

/** True when `value` is a string that matches ID_PATTERN. */
export function isId(value: unknown): value is string {
  return typeof value === 'string' && ID_PATTERN.test(value);
}

/** The ref of a task in a plan: `phaseId/taskId`. */
export function taskRef(phaseId: string, taskId: string): string {
  return `${phaseId}/${taskId}`;
}

/**
 * Splits a task dependency as written (`phase/task` or bare `task`) into its phase and task;
 * a bare task gets `samePhase`.
 */
export function splitTaskDep(dep: string, samePhase: string): { phaseId: string; taskId: string } {
  const slash = dep.indexOf('/');
  if (slash < 0) return { phaseId: samePhase, taskId: dep };
  return { phaseId: dep.slice(0, slash), taskId: dep.slice(slash + 1) };
}
