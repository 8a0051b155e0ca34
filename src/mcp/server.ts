/**
 * fanfold's MCP server: the tools (plan_workflow, run_workflow, workflow_status, query_workflow),
 * the run resources and the template prompts. Thin by design: it parses, calls the engine,
 * store and search layers, and shapes bounded answers. The transport is someone else's job
 * (stdio.ts for `fanfold serve`, an in-memory pair in tests).
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { resolveContext, type ServerDeps } from './context.js';
import { registerPrompts } from './prompts.js';
import { registerResources } from './resources.js';
import { registerTools } from './tools/index.js';

export type { ServerDeps } from './context.js';

/** Server name reported to clients. */
export const SERVER_NAME = 'fanfold';
/** Server version reported to clients. */
export const SERVER_VERSION = '0.1.0';

/**
 * Most array elements and object members one tool call's arguments may hold. Why: a spec has
 * at most 1,000 tasks of a handful of fields each; a payload far beyond that is an attack or a
 * runaway model, and is refused before zod walks it.
 */
export const MAX_TOOL_INPUT_ELEMENTS = 200_000;

const INSTRUCTIONS =
  'fanfold runs dynamic workflows: many sub-agents in parallel, every output kept on disk, only digests and a report folded back. ' +
  'Use it for audits across many files or packages, large migrations, parallel builds of N components and cross-checked research — ' +
  'not for small one-off tasks. Flow: plan_workflow(spec) → show the rendered plan to the user → run_workflow(planId) (approval for big ' +
  'or edit-capable plans) → workflow_status(runId, wait ≤ 50 s) until final → answer from the report; query_workflow for details.';

const CHILD_INSTRUCTIONS =
  'Read-only access to fanfold workflow runs: workflow_status for a run\'s status and digests, query_workflow to search agent outputs.';

/** Builds the MCP server for a store (`deps.root`) and a project directory (`deps.cwd`). */
export function createServer(deps: ServerDeps): McpServer {
  const ctx = resolveContext(deps);
  const server = new McpServer(
    { name: SERVER_NAME, version: SERVER_VERSION, title: 'fanfold — dynamic workflows' },
    {
      capabilities: { tools: {}, resources: {}, ...(ctx.child ? {} : { prompts: {} }) },
      instructions: ctx.child ? CHILD_INSTRUCTIONS : INSTRUCTIONS,
      maxToolInputElements: MAX_TOOL_INPUT_ELEMENTS,
    },
  );
  registerTools(server, ctx);
  registerResources(server, ctx);
  // A sub-agent has no use for templates that start workflows.
  if (!ctx.child) registerPrompts(server, ctx);
  return server;
}
