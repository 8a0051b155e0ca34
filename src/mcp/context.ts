/**
 * What the MCP server needs from the outside, and the resolved form every tool receives.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchOwner } from '../engine/lifecycle.js';

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
   * Starts a detached run owner and resolves once it holds the lease (default: engine's
   * launchOwner). Tests running the TypeScript sources pass the built one, since the owner entry
   * point is a `.js` file next to the engine module in dist/.
   */
  launch?: typeof launchOwner;
  /** Folder of bundled workflow templates offered as prompts (default: the package's examples/). */
  examplesDir?: string;
  /** Log sink for diagnostics (default: stderr — never stdout, which carries JSON-RPC). */
  log?: (line: string) => void;
  /** Environment to read FANFOLD_APPROVAL_AGENTS from (default `process.env`). */
  env?: NodeJS.ProcessEnv;
}

/** The resolved dependencies every tool, resource and prompt gets. */
export interface ToolContext {
  root: string;
  cwd: string;
  child: boolean;
  approvalAgentThreshold: number;
  launch: typeof launchOwner;
  examplesDir: string;
  log: (line: string) => void;
}

/** Default approval threshold (agents). */
export const DEFAULT_APPROVAL_AGENTS = 25;

/** Environment variable overriding the approval threshold. */
export const APPROVAL_ENV = 'FANFOLD_APPROVAL_AGENTS';

/** Resolves ServerDeps into a ToolContext; throws on a malformed threshold. */
export function resolveContext(deps: ServerDeps): ToolContext {
  const env = deps.env ?? process.env;
  let threshold = deps.approvalAgentThreshold;
  if (threshold === undefined && env[APPROVAL_ENV] !== undefined && env[APPROVAL_ENV]!.trim() !== '') {
    threshold = Number(env[APPROVAL_ENV]);
    if (!Number.isInteger(threshold) || threshold < 0) {
      throw new Error(`mcp: ${APPROVAL_ENV} must be an integer ≥ 0 (agents a plan may have without approval), got '${env[APPROVAL_ENV]}'`);
    }
  }
  threshold ??= DEFAULT_APPROVAL_AGENTS;
  if (!Number.isInteger(threshold) || threshold < 0) {
    throw new Error(`mcp: approvalAgentThreshold must be an integer ≥ 0, got ${String(threshold)}`);
  }
  return {
    root: path.resolve(deps.root),
    cwd: path.resolve(deps.cwd),
    child: deps.child === true,
    approvalAgentThreshold: threshold,
    launch: deps.launch ?? launchOwner,
    examplesDir: deps.examplesDir ?? fileURLToPath(new URL('../../examples/', import.meta.url)),
    log: deps.log ?? ((line) => void process.stderr.write(`fanfold mcp: ${line}\n`)),
  };
}
