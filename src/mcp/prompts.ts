/**
 * Prompts: one per bundled workflow template in `examples/`. Claude Code shows them as slash
 * commands; each asks the host to adapt the template to the user's request and plan it.
 * Templates are read once, at startup.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import * as z from 'zod';
import { parseSpecText } from '../spec/index.js';
import { isId } from '../store/index.js';
import type { ToolContext } from './context.js';

/** A bundled template. */
export interface Template {
  /** Prompt name: the file name without its extension. */
  name: string;
  file: string;
  text: string;
  /** The spec's `name` and `goal`, for the prompt's description. */
  specName?: string;
  goal?: string;
}

/**
 * Largest template file offered. Why: a prompt's text lands in the host's context whole; a
 * template is a few dozen lines, anything far bigger is not one.
 */
const MAX_TEMPLATE_BYTES = 32 * 1024;

/** Most templates registered (the folder holds a handful). */
const MAX_TEMPLATES = 50;

/** Reads the templates in `dir` (YAML or JSON specs); unreadable or invalid ones are skipped and logged. */
export function loadTemplates(dir: string, log: (line: string) => void): Template[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => /\.(ya?ml|json)$/i.test(n)).sort();
  } catch {
    return []; // no examples folder (a trimmed install): no prompts
  }
  const out: Template[] = [];
  for (const file of names.slice(0, MAX_TEMPLATES)) {
    const name = file.replace(/\.(ya?ml|json)$/i, '');
    if (!isId(name) || out.some((t) => t.name === name)) continue;
    try {
      const full = path.join(dir, file);
      const st = fs.lstatSync(full);
      if (!st.isFile() || st.size > MAX_TEMPLATE_BYTES) continue;
      const text = fs.readFileSync(full, 'utf8');
      const spec = parseSpecText(text, file) as { name?: unknown; goal?: unknown } | null;
      out.push({
        name,
        file,
        text,
        ...(typeof spec?.name === 'string' ? { specName: spec.name } : {}),
        ...(typeof spec?.goal === 'string' ? { goal: spec.goal.replace(/\s+/g, ' ').trim() } : {}),
      });
    } catch (err) {
      log(`skipping template ${file}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return out;
}

/** The user message a template prompt returns. */
export function templatePromptText(t: Template, request: string | undefined): string {
  return [
    `Use fanfold to run a workflow based on the bundled template "${t.name}"${t.goal ? ` (${t.goal})` : ''}.`,
    request?.trim() ? `What I want: ${request.trim()}` : 'Ask me what the workflow should cover if it is not clear from our conversation.',
    '',
    `Template (${t.file}):`,
    '```yaml',
    t.text.trimEnd(),
    '```',
    '',
    'Adapt the template to what I want: phases, tasks (one per item to cover), agents, and limits. Keep agents read-only unless edits are needed.',
    'Then call plan_workflow with the adapted spec, show me the rendered plan, and start it with run_workflow once I agree.',
    'Follow it with workflow_status (wait up to 50 s per call) and answer from the report; use query_workflow for details.',
  ].join('\n');
}

/** Registers one prompt per template. */
export function registerPrompts(server: McpServer, ctx: ToolContext): void {
  for (const t of loadTemplates(ctx.examplesDir, ctx.log)) {
    server.registerPrompt(
      t.name,
      {
        title: `Workflow: ${t.specName ?? t.name}`,
        description: `Adapt the bundled "${t.name}" workflow template to your request and plan it with fanfold${t.goal ? `. Template goal: ${t.goal.slice(0, 300)}` : ''}`,
        argsSchema: { request: z.string().optional().describe('what the workflow should do, e.g. the folders, packages or questions to cover') },
      },
      (args) => ({
        description: `fanfold workflow from template ${t.name}`,
        messages: [{ role: 'user', content: { type: 'text', text: templatePromptText(t, args.request) } }],
      }),
    );
  }
}
