/**
 * `fanfold serve [--child]`: the MCP server over stdio, for Claude Code, Codex and any MCP host.
 */
import type { Command } from 'commander';
import { resolveStoreRoot } from '../store/index.js';

/** Registers `serve`. */
export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run the MCP server over stdio (tools: plan_workflow, run_workflow, workflow_status, query_workflow, control_workflow; --child: the read-only set)')
    .option('--child', 'read-only mode for sub-agents: only workflow_status and query_workflow')
    .action(async (o: { child?: boolean }) => {
      // Imported here, not at the top: it rewires stdout for JSON-RPC, which no other command wants.
      const { serveStdio, guardStdout } = await import('../mcp/stdio.js');
      guardStdout();
      const store = program.opts<{ store?: string }>().store;
      const root = resolveStoreRoot({ ...(store !== undefined ? { store } : {}), env: process.env, cwd: process.cwd() });
      await serveStdio({ root, cwd: process.cwd(), child: o.child === true });
      // Stray timers (a wait cut short by the host leaving) must not keep the process alive.
      setTimeout(() => process.exit(0), 500).unref();
    });
}
