/**
 * The one registry of fanfold's MCP tools. Child mode (a sub-agent's server) gets only the
 * read-only look-ups: a sub-agent may search and read status, never plan or start workflows —
 * that is how nesting (agents fanning out agents) is ruled out.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { ToolContext } from '../context.js';
import { PLAN_WORKFLOW, registerPlanWorkflowTool } from './plan-workflow.js';
import { QUERY_WORKFLOW, registerQueryWorkflowTool } from './query-workflow.js';
import { RUN_WORKFLOW, registerRunWorkflowTool } from './run-workflow.js';
import { WORKFLOW_STATUS, registerWorkflowStatusTool } from './workflow-status.js';
import { CONTROL_WORKFLOW, registerControlWorkflowTool } from './control-workflow.js';

/** Names of every tool, in the order they are listed. */
export const TOOL_NAMES = [PLAN_WORKFLOW, RUN_WORKFLOW, WORKFLOW_STATUS, QUERY_WORKFLOW, CONTROL_WORKFLOW] as const;

/** Names of the tools a child (sub-agent) server offers. */
export const CHILD_TOOL_NAMES = [WORKFLOW_STATUS, QUERY_WORKFLOW] as const;

/** Registers the tools for `ctx` (all of them, or the read-only two in child mode). */
export function registerTools(server: McpServer, ctx: ToolContext): void {
  if (!ctx.child) {
    registerPlanWorkflowTool(server, ctx);
    registerRunWorkflowTool(server, ctx);
  }
  registerWorkflowStatusTool(server, ctx);
  registerQueryWorkflowTool(server, ctx);
  // Why not for children: a sub-agent must never stop, resume or steer runs (nor answer checkpoints).
  if (!ctx.child) registerControlWorkflowTool(server, ctx);
}

export { PLAN_WORKFLOW, RUN_WORKFLOW, WORKFLOW_STATUS, QUERY_WORKFLOW, CONTROL_WORKFLOW };
