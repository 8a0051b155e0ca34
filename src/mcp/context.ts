/**
 * What the MCP server needs from the outside, and the resolved form every tool receives.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchOwner } from '../engine/lifecycle.js';
import { approvalModeFrom, HEADLESS_ANSWER_MS, type ApprovalMode } from './approval.js';

/** Inputs of createServer. Defaults come from `process`. */
export interface ServerDeps {
  /** Store root (`.agent_workflows` or `--store DIR`). */
  root: string;
  /** Project directory runs execute in. */
  cwd: string;
  /** Child mode: only read-only look-ups (workflow_status, query_workflow), never starting workflows. */
  child?: boolean;
  /** Plans with more agents than this need the user's approval (default 25, env FANFOLD_APPROVAL_AGENTS). */
  approvalAgentThreshold?: number;
  /**
   * Plans whose budget (limits.budget.usd) or expected spend is over this many US dollars need
   * the user's approval (default 5, env FANFOLD_APPROVAL_USD).
   */
  approvalUsdThreshold?: number;
  /**
   * Whether plans with `command`-runner agents need approval (default true; env
   * FANFOLD_APPROVAL_COMMANDS=0 turns it off for hosts that already confirm every tool call).
   */
  approveCommands?: boolean;
  /**
   * An approval form refused faster than this (ms) was refused by a headless host, not a person;
   * the approve flag then decides (default 1500; see approval.ts).
   */
  headlessAnswerMs?: number;
  /**
   * Whether a form the client declines at once lets the model's `approve: true` decide (`flag`,
   * for headless clients such as `codex exec`) or stands as a person's no (`form`, the default;
   * env FANFOLD_APPROVAL_MODE). See approval.ts.
   */
  approvalMode?: ApprovalMode;
  /**
   * Starts a detached run owner and resolves once it holds the lease (default: engine's
   * launchOwner). Tests running the TypeScript sources pass the built one, since the owner entry
   * point is a `.js` file next to the engine module in dist/.
   */
  launch?: typeof launchOwner;
  /** Folder of bundled workflow templates offered as prompts (default: the package's examples/). */
  examplesDir?: string;
  /** Log sink for diagnostics (default: stderr — never stdout, which carries JSON-RPC). */
  log?: (line: string) => void;
  /** Environment to read FANFOLD_APPROVAL_* from (default `process.env`). */
  env?: NodeJS.ProcessEnv;
}

/** The resolved dependencies every tool, resource and prompt gets. */
export interface ToolContext {
  root: string;
  cwd: string;
  child: boolean;
  approvalAgentThreshold: number;
  approvalUsdThreshold: number;
  approveCommands: boolean;
  headlessAnswerMs: number;
  approvalMode: ApprovalMode;
  launch: typeof launchOwner;
  examplesDir: string;
  log: (line: string) => void;
}

/** Default approval threshold (agents). */
export const DEFAULT_APPROVAL_AGENTS = 25;

/** Environment variable overriding the approval threshold. */
export const APPROVAL_ENV = 'FANFOLD_APPROVAL_AGENTS';

/** Default approval threshold for a plan's budget or expected spend (US dollars). */
export const DEFAULT_APPROVAL_USD = 5;

/** Environment variable overriding the spend threshold. */
export const APPROVAL_USD_ENV = 'FANFOLD_APPROVAL_USD';

/** Environment variable: `0` lets command-runner plans start without approval. */
export const APPROVAL_COMMANDS_ENV = 'FANFOLD_APPROVAL_COMMANDS';

/** A threshold from deps, else from the environment, else the default; refuses malformed values. */
function threshold(name: string, given: number | undefined, env: NodeJS.ProcessEnv, envName: string, fallback: number, integer: boolean): number {
  let value = given;
  const raw = env[envName];
  if (value === undefined && raw !== undefined && raw.trim() !== '') {
    value = Number(raw);
    if (!Number.isFinite(value) || value < 0 || (integer && !Number.isInteger(value))) {
      throw new Error(`mcp: ${envName} must be ${integer ? 'an integer' : 'a number'} ≥ 0, got '${raw}'`);
    }
  }
  value ??= fallback;
  if (!Number.isFinite(value) || value < 0 || (integer && !Number.isInteger(value))) {
    throw new Error(`mcp: ${name} must be ${integer ? 'an integer' : 'a number'} ≥ 0, got ${String(value)}`);
  }
  return value;
}

/** Resolves ServerDeps into a ToolContext; throws on a malformed threshold. */
export function resolveContext(deps: ServerDeps): ToolContext {
  const env = deps.env ?? process.env;
  const agents = threshold('approvalAgentThreshold', deps.approvalAgentThreshold, env, APPROVAL_ENV, DEFAULT_APPROVAL_AGENTS, true);
  const usd = threshold('approvalUsdThreshold', deps.approvalUsdThreshold, env, APPROVAL_USD_ENV, DEFAULT_APPROVAL_USD, false);
  return {
    root: path.resolve(deps.root),
    cwd: path.resolve(deps.cwd),
    child: deps.child === true,
    approvalAgentThreshold: agents,
    approvalUsdThreshold: usd,
    approveCommands: deps.approveCommands ?? !['0', 'false', 'no', 'off'].includes((env[APPROVAL_COMMANDS_ENV] ?? '').trim().toLowerCase()),
    headlessAnswerMs: deps.headlessAnswerMs ?? HEADLESS_ANSWER_MS,
    approvalMode: deps.approvalMode ?? approvalModeFrom(env),
    launch: deps.launch ?? launchOwner,
    examplesDir: deps.examplesDir ?? fileURLToPath(new URL('../../examples/', import.meta.url)),
    log: deps.log ?? ((line) => void process.stderr.write(`fanfold mcp: ${line}\n`)),
  };
}
