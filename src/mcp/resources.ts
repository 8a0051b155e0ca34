/**
 * Resources: the recent runs, one run (status, digest and report), and one agent's full output.
 * Every id from a URI passes the store's allow-list before it touches a path; every read is
 * bounded like a tool answer.
 */
import { ResourceTemplate, type McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ErrorCode, McpError, type ReadResourceResult } from '@modelcontextprotocol/sdk/types.js';
import { readRef } from '../search/index.js';
import { SearchError } from '../search/errors.js';
import { StoreError, assertId } from '../store/index.js';
import { MAX_ANSWER_BYTES, callText, composeText, prefixFitting, utf8Length } from './answer.js';
import type { ToolContext } from './context.js';
import { countsLine, fmtDuration, isFinal, joinedDigest, nextStepFor, readReportHead, readRunSnapshot, recentRuns, runRowsText } from './run-views.js';

/** URI of the run list. */
export const RUNS_URI = 'fanfold://runs';

/** Runs listed by the run list and the template's list callback. */
const MAX_LISTED_RUNS = 50;

/**
 * Most bytes of an agent's output in one resource read. Why below the 40 KB cap: the header and
 * the note on how to page the rest must fit too.
 */
const MAX_OUTPUT_BYTES = MAX_ANSWER_BYTES - 2048;

/** One template variable as a checked id; a list or a bad id is the caller's mistake. */
function idVar(kind: string, value: string | string[] | undefined): string {
  if (typeof value !== 'string') throw new McpError(ErrorCode.InvalidParams, `fanfold: expected one ${kind} id in the URI, got ${value === undefined ? 'none' : 'a list'}`);
  let decoded: string;
  try {
    decoded = decodeURIComponent(value);
  } catch {
    throw new McpError(ErrorCode.InvalidParams, `fanfold: the ${kind} id in the URI is not valid percent-encoding`);
  }
  try {
    return assertId(kind, decoded);
  } catch (err) {
    throw asMcpError(err);
  }
}

/** A store or search failure as a protocol error: the caller's mistake (bad or unknown id) or ours. */
function asMcpError(err: unknown): McpError {
  if (err instanceof McpError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  if (err instanceof StoreError && ['invalid_id', 'unknown_run', 'not_found', 'path_escape', 'invalid_name'].includes(err.code)) {
    return new McpError(ErrorCode.InvalidParams, msg);
  }
  if (err instanceof SearchError && err.code !== 'io') return new McpError(ErrorCode.InvalidParams, msg);
  return new McpError(ErrorCode.InternalError, msg);
}

function markdown(uri: string, text: string): ReadResourceResult {
  return { contents: [{ uri, mimeType: 'text/markdown', text }] };
}

/** Registers the run list, the run and the agent-output resources. */
export function registerResources(server: McpServer, ctx: ToolContext): void {
  server.registerResource(
    'runs',
    RUNS_URI,
    { title: 'fanfold runs', description: 'The recent workflow runs in this store, newest first', mimeType: 'text/markdown' },
    async (uri) => {
      try {
        return markdown(uri.href, runRowsText(await recentRuns(ctx.root, MAX_LISTED_RUNS)));
      } catch (err) {
        throw asMcpError(err);
      }
    },
  );

  server.registerResource(
    'run',
    new ResourceTemplate(`${RUNS_URI}/{runId}`, {
      list: async () => {
        const { runs } = await recentRuns(ctx.root, MAX_LISTED_RUNS);
        return {
          resources: runs.map((r) => ({
            uri: `${RUNS_URI}/${r.runId}`,
            name: `run ${r.runId}`,
            title: `${r.name} (${r.status})`,
            mimeType: 'text/markdown',
          })),
        };
      },
    }),
    { title: 'fanfold run', description: "One run's status, phase digests and report", mimeType: 'text/markdown' },
    async (uri, vars) => {
      const runId = idVar('run', vars['runId']);
      try {
        const snap = await readRunSnapshot(ctx.root, runId);
        const { view } = snap;
        const report = isFinal(view) ? await readReportHead(view.dir) : undefined;
        const digest = joinedDigest(snap.run);
        const text = composeText(
          [
            `# Run ${view.runId}: ${view.name}`,
            `status: ${view.status}${view.reason ? ` — ${view.reason}` : ''}`,
            `${countsLine(view.agents)}; elapsed ${fmtDuration(view.elapsedMs)}`,
            `outputs: ${view.dir}`,
          ],
          [
            view.phases.map((p) => `- phase ${p.id}: ${p.status}, ${p.succeeded}/${p.total} succeeded${p.failed ? `, ${p.failed} failed` : ''}`).join('\n'),
            digest ? `## Digests\n\n${digest}` : '',
            report ? `## Report\n\n${report.text}` : '',
          ],
          [`Next: ${nextStepFor(view)}`],
        );
        return markdown(uri.href, text);
      } catch (err) {
        throw asMcpError(err);
      }
    },
  );

  server.registerResource(
    'agent-output',
    // No list callback: a run may hold a thousand agents; status rows and query hits name them.
    new ResourceTemplate(`${RUNS_URI}/{runId}/agents/{phaseId}/{taskId}`, { list: undefined }),
    { title: 'fanfold agent output', description: "One agent's full stored output (latest attempt)", mimeType: 'text/plain' },
    async (uri, vars) => {
      const runId = idVar('run', vars['runId']);
      const phaseId = idVar('phase', vars['phaseId']);
      const taskId = idVar('task', vars['taskId']);
      try {
        const ref = `${runId}/${phaseId}/${taskId}`;
        const page = await readRef(ctx.root, ref, { offset: 0, limit: MAX_OUTPUT_BYTES });
        let text = page.text;
        if (utf8Length(text) > MAX_OUTPUT_BYTES) text = text.slice(0, prefixFitting(text, MAX_OUTPUT_BYTES));
        const more = text.length < page.totalChars;
        const note = more
          ? `\n\n[fanfold: first ${text.length} of ${page.totalChars} characters shown; read the rest with ${callText('query_workflow', { ref, offset: text.length })}]`
          : page.truncated
            ? '\n\n[fanfold: the agent produced more than was stored (limits.maxOutputBytes)]'
            : '';
        return { contents: [{ uri: uri.href, mimeType: 'text/plain', text: `${text}${note}` }] };
      } catch (err) {
        throw asMcpError(err);
      }
    },
  );
}
