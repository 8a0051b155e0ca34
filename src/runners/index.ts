/**
 * The runner registry: one factory per runner kind. Adding a runner is one line in `FACTORIES`.
 */
import type { RunnerKind } from '../spec/types.js';
import { ClaudeRunner } from './claude.js';
import { CodexRunner } from './codex.js';
import { CommandRunner } from './command.js';
import { PiRunner } from './pi.js';
import type { Runner } from './types.js';

/** Factory of each runner kind; `undefined` marks a kind that is planned but not built yet. */
const FACTORIES: Record<RunnerKind, (() => Runner) | undefined> = {
  command: () => new CommandRunner(),
  claude: () => new ClaudeRunner(),
  codex: () => new CodexRunner(),
  pi: () => new PiRunner(),
};

/** Runner instances, created on first use (runners hold no per-attempt state). */
const instances = new Map<RunnerKind, Runner>();

/** Whether `kind` names a runner kind fanfold knows (available or not). */
function isKnownKind(kind: string): kind is RunnerKind {
  return Object.prototype.hasOwnProperty.call(FACTORIES, kind);
}

/**
 * The runner for `kind`. Throws when the kind is unknown, or known but not built yet
 * ("runner 'claude' is not available yet").
 */
export function getRunner(kind: RunnerKind): Runner {
  if (!isKnownKind(kind)) {
    throw new Error(
      `runners: unknown runner kind '${String(kind)}'; expected one of ${Object.keys(FACTORIES).join(', ')}`,
    );
  }
  const cached = instances.get(kind);
  if (cached) return cached;
  const factory = FACTORIES[kind];
  if (!factory) {
    throw new Error(
      `runner '${kind}' is not available yet (available: ${availableRunnerKinds().join(', ')})`,
    );
  }
  const runner = factory();
  instances.set(kind, runner);
  return runner;
}

/** Runner kinds that `getRunner` can return right now. */
export function availableRunnerKinds(): RunnerKind[] {
  return (Object.keys(FACTORIES) as RunnerKind[]).filter((k) => FACTORIES[k] !== undefined);
}

/** Whether `getRunner(kind)` would succeed. */
export function isRunnerAvailable(kind: string): boolean {
  return isKnownKind(kind) && FACTORIES[kind] !== undefined;
}

export type { Runner, RunnerInput, RunnerResult } from './types.js';
export { CommandRunner, type CommandRunnerOptions } from './command.js';
export { ClaudeRunner } from './claude.js';
export { CodexRunner } from './codex.js';
export { PiRunner } from './pi.js';
export {
  AGENT_CLIS,
  findExecutable,
  installHint,
  isCliInstalled,
  resolveBin,
  type AgentCliKind,
  type AgentCliRunnerOptions,
} from './agent-cli.js';
export { warmBwrapStatus } from './sandbox.js';
export { checkStructured, compileSchema, extractJson, INVALID_STRUCTURED_OUTPUT, type JsonSchema } from './structured.js';
export { defaultRunner, loadProfiles, parseProfile, type Profile, type ProfileSet } from './profiles.js';
export { formatDuration, lastStderrLine, parseWholeJson, processFailure, toRunnerResult } from './command.js';
export {
  activeProcessGroups,
  buildChildEnv,
  cutUtf8,
  FANFOLD_ENV_PREFIX,
  killActiveProcessGroups,
  runProcess,
  SCRUBBED_ENV_KEYS,
  type ProcessOptions,
  type ProcessResult,
} from './process.js';
