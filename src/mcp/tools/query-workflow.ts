/**
 * `query_workflow`: search the agent outputs of this and past runs (BM25), or page through one
 * agent's full output by its ref. Read-only; the way a host reads details without pulling every
 * output into its context.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import * as z from 'zod';
import { MAX_QUERY_CHARS, readRef, searchStore } from '../../search/index.js';
import { AGENT_STATUSES, assertId } from '../../store/index.js';
import { callText, okResult, prefixFitting, utf8Length } from '../answer.js';
import type { ToolContext } from '../context.js';
import { ToolInputError, toolError } from '../errors.js';

/** Tool name. */
export const QUERY_WORKFLOW = 'query_workflow';

/** Most hits per page. Why 20: 20 snippets of ≤ 300 characters stay far inside the answer cap. */
export const MAX_HITS = 20;
/** Hits per page when `limit` is not given. */
export const DEFAULT_HITS = 10;

/**
 * Most UTF-8 bytes of output per `ref` page. Why 24 KB: the page appears twice in an answer (text
 * and structured copy), each under the 40 KB cap with room for the header and next step.
 */
export const REF_PAGE_BYTES = 24 * 1024;

const InputSchema = z.strictObject({
  query: z
    .string()
    .max(MAX_QUERY_CHARS)
    .optional()
    .describe('words to search for in agent outputs (BM25 ranking; required unless ref is given)'),
  runId: z.string().optional().describe('only this run (default: every run in the store)'),
  phaseId: z.string().optional().describe('only this phase'),
  limit: z.number().int().min(1).max(MAX_HITS).optional().describe(`hits per page, 1–${MAX_HITS} (default ${DEFAULT_HITS})`),
  offset: z.number().int().min(0).optional().describe('hits to skip; with ref: the character offset of the page (nextOffset of the previous page)'),
  status: z
    .enum(AGENT_STATUSES)
    .optional()
    .describe('only tasks whose latest attempt has this status (the same choices as `fanfold query --status`)'),
  prefix: z.boolean().optional().describe('let each word (3+ letters) also match words it begins: "inj" finds "injection"'),
  fuzzy: z.boolean().optional().describe('let each word (3+ letters) match words within a small edit distance (typos)'),
  ref: z.string().optional().describe("read one agent's whole output, paged: a ref '<runId>/<phaseId>/<taskId>' from a hit or a status row"),
});

const HitSchema = z.object({
  runId: z.string(),
  phaseId: z.string(),
  taskId: z.string(),
  score: z.number(),
  snippet: z.string(),
  ref: z.string(),
  status: z.string(),
  indexedBytes: z.number().int().optional().describe('set when the output is longer than search covers: only its first indexedBytes bytes were searched (read it all with ref)'),
});

const OutputSchema = z.object({
  hits: z.array(HitSchema).optional(),
  total: z.number().int().optional().describe('matching agent outputs in all'),
  ref: z.string().optional(),
  text: z.string().optional().describe("with ref: this page of the agent's output"),
  offset: z.number().int().optional(),
  nextOffset: z.number().int().nullable().optional().describe('offset of the next page, or null at the end'),
  totalChars: z.number().int().optional(),
  attempt: z.number().int().optional(),
  status: z.string().optional(),
  truncated: z.boolean().optional().describe('the agent produced more output than was stored'),
  nextStep: z.string(),
});

/** Registers query_workflow. */
export function registerQueryWorkflowTool(server: McpServer, ctx: ToolContext): void {
  server.registerTool(
    QUERY_WORKFLOW,
    {
      title: 'Search workflow outputs',
      description:
        'Search the stored outputs of workflow agents (this run and past ones) and get ranked hits with snippets and refs; or pass ' +
        "ref to read one agent's whole output page by page. Use it to answer detail questions instead of reading every output.",
      inputSchema: InputSchema,
      outputSchema: OutputSchema,
      annotations: { title: 'Search workflow outputs', readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    async (args, extra) => {
      try {
        if (args.ref !== undefined) return await readPage(ctx, args.ref, args.offset ?? 0);
        if (args.query === undefined || args.query.trim() === '') {
          throw new ToolInputError(
            "pass query (words to search for), or ref (a '<runId>/<phaseId>/<taskId>' from a hit) to read one output. Example: " +
              callText(QUERY_WORKFLOW, { query: 'timeout error', runId: args.runId ?? '<runId>' }),
          );
        }
        if (args.runId !== undefined) assertId('run', args.runId);
        if (args.phaseId !== undefined) assertId('phase', args.phaseId);
        const limit = args.limit ?? DEFAULT_HITS;
        const offset = args.offset ?? 0;
        const page = await searchStore(ctx.root, args.query, {
          limit,
          offset,
          ...(args.runId !== undefined ? { runId: args.runId } : {}),
          ...(args.phaseId !== undefined ? { phaseId: args.phaseId } : {}),
          ...(args.status !== undefined ? { status: args.status } : {}),
          ...(args.prefix ? { prefix: true } : {}),
          ...(args.fuzzy ? { fuzzy: true } : {}),
          signal: extra.signal,
        });
        const hits = page.hits.map((h) => ({ runId: h.runId, phaseId: h.phaseId, taskId: h.taskId, score: round(h.score), snippet: h.snippet, ref: h.ref, status: h.status,
          ...(h.indexedBytes !== undefined ? { indexedBytes: h.indexedBytes } : {}) }));
        const end = offset + hits.length;
        const more = end < page.total;
        const nextStep =
          hits.length === 0
            ? 'No hits: try other or fewer words, prefix: true or fuzzy: true, drop the phaseId/runId/status filter, or check the run finished (workflow_status).'
            : `Read one output in full with ${callText(QUERY_WORKFLOW, { ref: hits[0]!.ref })}` +
              (more ? `; more hits with offset ${end}.` : '.');
        const lines = [
          `${page.total} matching outputs for "${args.query}"${hits.length ? `, showing ${offset + 1}–${end}` : ''}` +
            `${args.runId ? ` in run ${args.runId}` : ` across ${page.runsSearched} runs`}${args.phaseId ? `, phase ${args.phaseId}` : ''}${args.status ? `, status ${args.status}` : ''}:`,
        ];
        hits.forEach((h, i) => {
          lines.push(`${offset + i + 1}. ref ${h.ref} — score ${h.score}, ${h.status}` +
            (h.indexedBytes !== undefined ? ` (long output: only its first ${Math.round(h.indexedBytes / 1024)} KiB are searched)` : ''));
          lines.push(`   ${h.snippet.replace(/\n/g, ' ')}`);
        });
        if (page.skipped.length) lines.push(`(${page.skipped.length} runs could not be searched: ${page.skipped.slice(0, 3).map((s) => s.runId).join(', ')})`);
        lines.push(`Next: ${nextStep}`);
        return okResult({ hits, total: page.total, offset, nextOffset: more ? end : null, nextStep }, lines.join('\n'));
      } catch (err) {
        return toolError(QUERY_WORKFLOW, err);
      }
    },
  );
}

async function readPage(ctx: ToolContext, ref: string, offset: number) {
  // Ask for as many characters as bytes allowed (each character is ≥ 1 byte), then cut to the byte budget.
  const page = await readRef(ctx.root, ref, { offset, limit: REF_PAGE_BYTES });
  let text = page.text;
  let nextOffset = page.nextOffset;
  if (utf8Length(text) > REF_PAGE_BYTES) {
    text = text.slice(0, prefixFitting(text, REF_PAGE_BYTES));
    nextOffset = offset + text.length;
  }
  const end = offset + text.length;
  const nextStep =
    nextOffset !== null
      ? `Next page: ${callText(QUERY_WORKFLOW, { ref: page.ref, offset: nextOffset })}`
      : 'This is the end of the output.' + (page.truncated ? ' (The agent produced more than was stored: the store keeps the first limits.maxOutputBytes bytes.)' : '');
  const header =
    `ref: ${page.ref} — attempt ${page.attempt}, ${page.status}; characters ${offset}–${end} of ${page.totalChars}` +
    (page.truncated ? ' (stored output truncated)' : '');
  return okResult(
    {
      ref: page.ref,
      text,
      offset,
      nextOffset,
      totalChars: page.totalChars,
      attempt: page.attempt,
      status: page.status,
      truncated: page.truncated,
      nextStep,
    },
    `${header}\n--- output ---\n${text}\n--- end of page ---\nNext: ${nextStep}`,
  );
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
