/**
 * `workflow_status`: where a run stands — or, without a runId, the recent runs. Can wait (bounded,
 * cancellable, with progress notifications) for the run to end. Read-only.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import * as z from 'zod';
import { assertId, describeCounts } from '../../store/index.js';
import { composeText, okResult } from '../answer.js';
import type { ToolContext } from '../context.js';
import { ToolInputError, toolError } from '../errors.js';
import {
  AGENT_PAGE_SIZE,
  agentPage,
  countsLine,
  dynamicRows,
  dynamicText,
  fmtDuration,
  isFinal,
  joinedDigest,
  nextStepFor,
  phaseRows,
  readReportHead,
  readRunSnapshot,
  recentRuns,
  runRowsText,
  type AgentPage,
  type PhaseRow,
  type RunSnapshot,
} from '../run-views.js';
import { MAX_WAIT_SECONDS, waitWithProgress } from '../waiting.js';
import { CountsSchema } from './run-workflow.js';
import { readDashboardUrl } from '../../ui/dashboard-file.js';

/** Tool name. */
export const WORKFLOW_STATUS = 'workflow_status';

const DETAILS = ['summary', 'phases', 'agents'] as const;

const InputSchema = z.strictObject({
  runId: z.string().optional().describe('the run (leave out to list the recent runs)'),
  wait: z
    .number()
    .min(0)
    .max(MAX_WAIT_SECONDS)
    .optional()
    .describe(`seconds to wait for the run to finish before answering (0–${MAX_WAIT_SECONDS}); progress is reported meanwhile`),
  detail: z
    .enum(DETAILS)
    .optional()
    .describe("'summary' (default): counts, phases, digest, report; 'phases': plus each phase's digest and the first verdicts of verified phases; 'agents': plus one row per agent, paged"),
  offset: z.number().int().min(0).optional().describe(`first agent row with detail 'agents' (pages of ${AGENT_PAGE_SIZE})`),
});

const PhaseRowSchema = z.object({
  id: z.string(),
  title: z.string(),
  status: z.string(),
  total: z.number().int(),
  succeeded: z.number().int(),
  checkFailed: z.number().int().describe('gate checks that ran and did not pass (not agent failures)'),
  failed: z.number().int(),
  cancelled: z.number().int().describe('running when the run was stopped; they run again on resume'),
  skipped: z.number().int(),
  running: z.number().int(),
  pending: z.number().int(),
  digest: z.string().optional(),
});

const DynamicRowSchema = z.object({
  phaseId: z.string(),
  summary: z.string().describe('one line: items found/made/dropped, verdicts, gate runs, converge rounds, merged patches'),
  verdicts: z
    .array(
      z.object({
        id: z.string(),
        verdict: z.enum(['confirmed', 'refuted']),
        finding: z.string(),
        refute: z.number().int(),
        of: z.number().int(),
        reason: z.string().optional(),
      }),
    )
    .optional()
    .describe("with detail 'phases': the first verdicts of a verified phase"),
  verdictsOmitted: z.number().int().optional(),
});

const AgentRowSchema = z.object({
  ref: z.string().describe('pass to query_workflow as ref to read the whole output'),
  phaseId: z.string(),
  taskId: z.string(),
  status: z.string(),
  attempt: z.number().int().optional(),
  durationMs: z.number().optional(),
  outputBytes: z.number().int().optional(),
  cause: z.string().optional(),
});

const RunRowSchema = z.object({
  runId: z.string(),
  name: z.string(),
  status: z.string(),
  done: z.number().int(),
  total: z.number().int(),
  failed: z.number().int(),
  startedAt: z.string(),
  elapsedMs: z.number(),
  spend: z.object({ usd: z.number(), tokens: z.number() }).describe("what the run's agents cost, as their CLIs reported it (Codex and Pi report no dollars)"),
  error: z.string().optional(),
});

const OutputSchema = z.object({
  runId: z.string().optional(),
  name: z.string().optional(),
  status: z.string().optional(),
  reason: z.string().optional(),
  checkpoints: z
    .array(z.object({ phaseId: z.string(), message: z.string(), askedAt: z.string(), timeoutAt: z.string().optional(), onTimeout: z.enum(['stop', 'continue']) }))
    .optional()
    .describe("awaiting_approval: the checkpoints waiting for a person — ask the user the message, then control_workflow approve/reject with their answer"),
  resumeAfter: z.string().optional().describe('paused: when the usage limit resets (ISO time); resume after it'),
  pausedRunners: z
    .array(z.object({ runner: z.string(), kind: z.string(), cause: z.string(), ref: z.string() }).passthrough())
    .optional()
    .describe('paused: the runners that hit a usage (quota) or auth limit, and the failure that said so'),
  phases: z.array(PhaseRowSchema).optional(),
  phasesOmitted: z.number().int().optional(),
  dynamic: z.array(DynamicRowSchema).optional().describe('one row per dynamic phase that has done something (forEach, verify, gate, converge, merge)'),
  dynamicOmitted: z.number().int().optional(),
  agents: CountsSchema.optional(),
  redactions: z.number().int().optional().describe('secrets (exact env values, credential formats) replaced by [REDACTED:<rule>] in what the run stored'),
  elapsedMs: z.number().optional(),
  spend: z
    .object({ usd: z.number(), tokens: z.number() })
    .optional()
    .describe("what the run's agents cost so far, as their CLIs reported it; without runId: the total of the runs listed"),
  security: z.array(z.string()).optional().describe('how the agents are confined: network, sandbox: off, agents run unconfined for want of bubblewrap'),
  digest: z.string().optional().describe("the phases' digests, joined and bounded"),
  report: z.string().optional().describe('report.md (head) once the run has ended'),
  reportPath: z.string().optional(),
  agentRows: z
    .object({ rows: z.array(AgentRowSchema), total: z.number().int(), offset: z.number().int(), nextOffset: z.number().int().nullable() })
    .optional(),
  runs: z.array(RunRowSchema).optional().describe('without runId: the recent runs, newest first'),
  totalRuns: z.number().int().optional(),
  waitedMs: z.number().optional(),
  dir: z.string().optional(),
  dashboard: z.string().optional().describe('the live dashboard (`fanfold ui`) serving this store, while it runs: offer this URL to the user to watch and steer runs'),
  nextStep: z.string(),
});

/** Registers workflow_status. */
export function registerWorkflowStatusTool(server: McpServer, ctx: ToolContext): void {
  server.registerTool(
    WORKFLOW_STATUS,
    {
      title: 'Status of a fanfold workflow',
      description:
        'Status of a workflow run: agent counts, phases, one line per dynamic phase (items, verdicts, gate, rounds, merge), the phase digests ' +
        'and, once finished, the report. Pass wait (≤ 50 s) to wait for ' +
        "the run to finish (progress is reported meanwhile); call again while it is running. detail: 'phases' adds per-phase digests, " +
        "'agents' lists each agent (paged with offset). Without runId: the recent runs with what each cost and the total.",
      inputSchema: InputSchema,
      outputSchema: OutputSchema,
      annotations: { title: 'Workflow status', readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    async (args, extra) => {
      try {
        // Why never in child mode: the URL carries the dashboard's token, and whoever holds it acts
        // as the person (stop, resume, approve); a sub-agent must not get it.
        const dashboard = ctx.child ? undefined : await readDashboardUrl(ctx.root).catch(() => undefined);
        if (args.runId === undefined) {
          const list = await recentRuns(ctx.root);
          const nextStep =
            list.total === 0
              ? 'No runs yet: plan one with plan_workflow and start it with run_workflow.'
              : 'Call workflow_status with one of these runIds for its status, digest and report.';
          return okResult({ runs: list.runs, totalRuns: list.total, spend: list.spend, ...(dashboard ? { dashboard } : {}), nextStep },
            runRowsText(list) + (dashboard ? `\ndashboard: ${dashboard}` : ''));
        }
        const runId = assertId('run', args.runId);
        let waitedMs: number | undefined;
        if (args.wait !== undefined && args.wait > 0) {
          waitedMs = (await waitWithProgress(ctx.root, runId, args.wait, extra, ctx.log)).waitedMs;
        }
        const snap = await readRunSnapshot(ctx.root, runId);
        const detail = args.detail ?? 'summary';
        const tasks = snap.run.plan.tasks.length;
        if (args.offset !== undefined && detail === 'agents' && args.offset > tasks) {
          throw new ToolInputError(`offset ${args.offset} is past the last agent: run ${runId} has ${tasks}; use an offset from 0 to ${Math.max(0, tasks - 1)}.`);
        }
        const page = detail === 'agents' ? await agentPage(ctx.root, snap, args.offset ?? 0) : undefined;
        return await statusAnswer(snap, detail, page, waitedMs, dashboard);
      } catch (err) {
        return toolError(WORKFLOW_STATUS, err);
      }
    },
  );
}

async function statusAnswer(snap: RunSnapshot, detail: (typeof DETAILS)[number], page: AgentPage | undefined, waitedMs: number | undefined, dashboard: string | undefined) {
  const { view, run } = snap;
  const phases = phaseRows(snap, detail === 'phases');
  const dynamic = dynamicRows(run, detail === 'phases');
  const digest = joinedDigest(run);
  // The report is quoted in the summary once the run has ended; with detail 'phases' or
  // 'agents' the per-phase digests or the rows take its room (the path is still given).
  const report = isFinal(view) && detail === 'summary' ? await readReportHead(view.dir) : undefined;
  const reportPath = isFinal(view) ? `${view.dir}/report.md` : undefined;
  let nextStep = nextStepFor(view);
  if (page?.nextOffset != null) nextStep += ` More agent rows: workflow_status {"runId":"${view.runId}","detail":"agents","offset":${page.nextOffset}}.`;
  const structured = {
    runId: view.runId,
    name: view.name,
    status: view.status,
    ...(view.reason ? { reason: view.reason } : {}),
    ...(view.checkpoints?.length ? { checkpoints: view.checkpoints.map((c) => ({ ...c, message: clipText(c.message, 2000) })) } : {}),
    ...(view.resumeAfter ? { resumeAfter: view.resumeAfter } : {}),
    ...(view.pausedRunners?.length ? { pausedRunners: view.pausedRunners.map((p) => ({ ...p, cause: clipText(p.cause, 500) })) } : {}),
    phases: phases.rows,
    phasesOmitted: phases.omitted,
    ...(dynamic.rows.length > 0 ? { dynamic: dynamic.rows } : {}),
    ...(dynamic.omitted > 0 ? { dynamicOmitted: dynamic.omitted } : {}),
    agents: view.agents,
    redactions: view.redactions,
    elapsedMs: view.elapsedMs,
    ...(view.spend ? { spend: view.spend } : {}),
    ...(view.security ? { security: view.security } : {}),
    digest,
    ...(report ? { report: report.text } : {}),
    ...(reportPath ? { reportPath } : {}),
    ...(page ? { agentRows: page } : {}),
    ...(waitedMs !== undefined ? { waitedMs } : {}),
    dir: view.dir,
    ...(dashboard ? { dashboard } : {}),
    nextStep,
  };
  const head = [
    `runId: ${view.runId} — "${view.name}": ${view.status}${view.reason ? ` — ${view.reason}` : ''}`,
    ...(view.checkpoints ?? []).map((c) => `checkpoint before phase ${c.phaseId} waits for the user: ${clipText(c.message, 2000)}`),
    ...(view.resumeAfter ? [`paused until ${view.resumeAfter} (the usage limit resets then)`] : []),
    `${countsLine(view.agents, view.redactions)}; elapsed ${fmtDuration(view.elapsedMs)}${waitedMs !== undefined ? ` (waited ${fmtDuration(waitedMs)})` : ''}`,
    ...(view.spend ? [`spend so far: $${view.spend.usd.toFixed(2)}, ${view.spend.tokens} tokens`] : []),
    ...(view.security ?? []).map((s) => `sandbox: ${s}`),
    `outputs: ${view.dir}`,
    ...(dashboard ? [`dashboard: ${dashboard} (live view: offer it to the user)`] : []),
  ];
  const sections = [
    phasesText(phases.rows, phases.omitted),
    dynamicText(dynamic),
    // With detail 'phases' each phase row carries its digest; the joined one would repeat them.
    digest && detail !== 'phases' ? `Digest:\n${digest}` : '',
    page ? agentsText(page) : '',
    report ? `Report (${report.clipped ? `first part of ${report.bytes} bytes` : `${report.bytes} bytes`}, ${report.path}):\n${report.text}` : '',
    isFinal(view) && !report && detail === 'summary' ? 'Report: none yet (report.md is written when the run ends).' : '',
    isFinal(view) && detail !== 'summary' ? `Report: ${reportPath} (quoted with detail 'summary').` : '',
  ];
  return okResult(structured, composeText(head, sections, [`Next: ${nextStep}`]));
}

function phasesText(rows: PhaseRow[], omitted: number): string {
  const lines = ['Phases:'];
  for (const p of rows) {
    lines.push(`- ${p.id}${p.title && p.title !== p.id ? ` (${p.title})` : ''}: ${p.status}, ${describeCounts(p)}`);
    if (p.digest) lines.push(`  digest: ${p.digest.replace(/\n/g, '\n  ')}`);
  }
  if (omitted) lines.push(`… and ${omitted} more phases`);
  return lines.join('\n');
}

function agentsText(page: AgentPage): string {
  const end = page.offset + page.rows.length;
  const lines = [`Agents ${page.rows.length ? page.offset + 1 : 0}–${end} of ${page.total} (ref, status, attempt, duration, output):`];
  for (const r of page.rows) {
    const bits = [r.status];
    if (r.attempt !== undefined) bits.push(`attempt ${r.attempt}`);
    if (r.durationMs !== undefined) bits.push(fmtDuration(r.durationMs));
    if (r.outputBytes !== undefined) bits.push(`${r.outputBytes} B`);
    lines.push(`- ${r.ref}: ${bits.join(', ')}${r.cause ? ` — ${r.cause}` : ''}`);
  }
  if (page.nextOffset !== null) lines.push(`… ${page.total - end} more; next page: offset ${page.nextOffset}`);
  return lines.join('\n');
}

/** `text` cut to `max` characters, with an ellipsis where it was cut (answers stay bounded). */
function clipText(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
