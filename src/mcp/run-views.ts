/**
 * Bounded views of runs for tools and resources: status with phases, the joined phase digests,
 * the report, per-agent rows (paged), the list of recent runs, and the next step to suggest.
 * Read-only: nothing here writes to a run directory.
 */
import { constants as C } from 'node:fs';
import fs from 'node:fs/promises';
import { formatSpend, statusView, TERMINAL, totalSpend, type RunStatusView } from '../engine/status.js';
import {
  AGENTS_DIR,
  describeCounts,
  endedCount,
  isFailedCheck,
  RunStore,
  errnoCode,
  leaseState,
  parseAgentFileName,
  readLease,
  safeJoinReal,
  type AgentRecord,
  type RunRecord,
} from '../store/index.js';
import { dynamicSummary } from '../digest/report-md.js';
import { failureCause } from '../digest/records.js';
import { clipBytes, callText, plural, prefixFitting, utf8Length } from './answer.js';

/** Most phases listed in one answer; the rest are counted. */
export const MAX_PHASE_ROWS = 50;
/** Most bytes of joined phase digests in one answer. */
export const MAX_DIGEST_BYTES = 8 * 1024;
/** Most bytes of one phase's digest when listed per phase (`detail: 'phases'`). */
export const MAX_PHASE_DIGEST_BYTES = 1500;
/**
 * Most bytes of all per-phase digests together (`detail: 'phases'`). Why: 50 phases of 1,500
 * bytes would be 75 KB; each phase gets a fair share of this instead.
 */
export const MAX_PHASE_DIGESTS_TOTAL_BYTES = 12 * 1024;
/** Most characters of a phase title in a row. */
export const MAX_TITLE_CHARS = 100;
/**
 * Most bytes of report.md quoted in a status answer. Why 16 KB: with the digest (8 KB), the phase
 * rows and the status lines it stays inside the 40 KB answer cap; the full report is on disk and
 * in the run resource.
 */
export const MAX_REPORT_BYTES = 16 * 1024;
/** Most bytes of all dynamic-phase summary lines together; the rest are counted. */
export const MAX_DYNAMIC_BYTES = 4 * 1024;
/** Most verdicts listed per phase with `detail: 'phases'`, and in all. */
export const MAX_VERDICTS_PER_PHASE = 5;
export const MAX_VERDICTS_TOTAL = 20;
/** Most characters of a finding, or of a skeptic's reason, in a verdict row. */
const MAX_VERDICT_CHARS = 120;
/** Agent rows per page (`detail: 'agents'`). */
export const AGENT_PAGE_SIZE = 50;
/** Most recent runs listed. */
export const MAX_RUN_ROWS = 20;
/** Most characters of an agent's failure cause in a row. */
const MAX_CAUSE_CHARS = 200;

/** A run record with its status as any reader sees it (owner liveness folded in). */
export interface RunSnapshot {
  run: RunRecord;
  view: RunStatusView;
}

/** Reads a run's record and status. Throws StoreError for a bad or unknown id. */
export async function readRunSnapshot(root: string, runId: string): Promise<RunSnapshot> {
  const store = await RunStore.open(root, runId);
  try {
    const run = await store.readRun();
    const lease = await readLease(store.dir);
    return { run, view: statusView(run, store.dir, leaseState(lease) === 'live' ? lease : undefined) };
  } finally {
    await store.close();
  }
}

/** One phase row of a status answer. */
export interface PhaseRow {
  id: string;
  title: string;
  status: string;
  total: number;
  succeeded: number;
  /** Gate checks that ran and did not pass. */
  checkFailed: number;
  failed: number;
  /** Running when the run was stopped. */
  cancelled: number;
  skipped: number;
  running: number;
  pending: number;
  /** The phase's digest (only with `detail: 'phases'`), bounded. */
  digest?: string;
}

/** Phase rows (at most MAX_PHASE_ROWS) and how many were left out. */
export function phaseRows(snap: RunSnapshot, withDigests: boolean): { rows: PhaseRow[]; omitted: number } {
  const digests = new Map(snap.run.phases.map((p) => [p.id, p.digest]));
  const shown = snap.view.phases.slice(0, MAX_PHASE_ROWS);
  const withDigest = shown.filter((p) => digests.get(p.id)).length;
  const share = Math.min(MAX_PHASE_DIGEST_BYTES, Math.floor(MAX_PHASE_DIGESTS_TOTAL_BYTES / Math.max(1, withDigest)));
  const rows = shown.map((p): PhaseRow => {
    const d = digests.get(p.id);
    return {
      id: p.id,
      title: clipChars(p.title, MAX_TITLE_CHARS),
      status: p.status,
      total: p.total,
      succeeded: p.succeeded,
      checkFailed: p.checkFailed ?? 0,
      failed: p.failed,
      cancelled: p.cancelled ?? 0,
      skipped: p.skipped,
      running: p.running,
      pending: p.pending,
      ...(withDigests && d ? { digest: clipBytes(d, share) } : {}),
    };
  });
  return { rows, omitted: Math.max(0, snap.view.phases.length - MAX_PHASE_ROWS) };
}

/** A finding's verdict as a status answer lists it (bounded). */
export interface VerdictRow {
  id: string;
  verdict: 'confirmed' | 'refuted';
  finding: string;
  /** Skeptics that refuted it, of how many. */
  refute: number;
  of: number;
  /** The first reason on the verdict's side. */
  reason?: string;
}

/** One dynamic phase in a status answer: a one-line summary, and with `detail: 'phases'` some verdicts. */
export interface DynamicRow {
  phaseId: string;
  summary: string;
  verdicts?: VerdictRow[];
  /** Verdicts of the phase not listed here (run.json and report.md have them). */
  verdictsOmitted?: number;
}

/**
 * One line per dynamic phase that has done something (items, verdicts, gate, rounds, merge), in
 * plan order, within MAX_DYNAMIC_BYTES; with `withVerdicts`, the first confirmed and refuted
 * findings of each verified phase (MAX_VERDICTS_PER_PHASE each phase, MAX_VERDICTS_TOTAL in all).
 */
export function dynamicRows(run: RunRecord, withVerdicts: boolean): { rows: DynamicRow[]; omitted: number } {
  const plan = new Map(run.plan.phases.map((p) => [p.id, p]));
  const rows: DynamicRow[] = [];
  let budget = MAX_DYNAMIC_BYTES;
  let verdictsLeft = MAX_VERDICTS_TOTAL;
  let omitted = 0;
  for (const p of run.phases) {
    const summary = dynamicSummary(p.dynamic, plan.get(p.id));
    if (!summary) continue;
    const size = utf8Length(summary) + utf8Length(p.id) + 32;
    if (size > budget) {
      omitted++;
      continue;
    }
    budget -= size;
    const row: DynamicRow = { phaseId: p.id, summary };
    const v = p.dynamic?.verify;
    if (withVerdicts && v && v.verdicts.length > 0) {
      // Refuted and confirmed alternate, so a cap never hides one kind entirely.
      const confirmed = v.verdicts.filter((x) => x.verdict === 'confirmed');
      const refuted = v.verdicts.filter((x) => x.verdict === 'refuted');
      const picked: typeof v.verdicts = [];
      for (let i = 0; picked.length < Math.min(MAX_VERDICTS_PER_PHASE, verdictsLeft) && (i < confirmed.length || i < refuted.length); i++) {
        if (i < confirmed.length) picked.push(confirmed[i]!);
        if (i < refuted.length && picked.length < Math.min(MAX_VERDICTS_PER_PHASE, verdictsLeft)) picked.push(refuted[i]!);
      }
      verdictsLeft -= picked.length;
      row.verdicts = picked.map((x) => {
        const side = x.verdict === 'refuted' ? 'refutes: ' : 'upholds: ';
        const reason = x.reasons.find((r) => r.startsWith(side)) ?? x.reasons[0];
        return {
          id: x.id,
          verdict: x.verdict,
          finding: clipChars(x.finding, MAX_VERDICT_CHARS),
          refute: x.refute,
          of: x.of,
          ...(reason ? { reason: clipChars(reason.startsWith(side) ? reason.slice(side.length) : reason, MAX_VERDICT_CHARS) } : {}),
        };
      });
      const all = v.confirmed + v.refuted;
      if (all > picked.length) row.verdictsOmitted = all - picked.length;
    }
    rows.push(row);
  }
  return { rows, omitted };
}

/** Text lines for dynamic rows. */
export function dynamicText(d: { rows: DynamicRow[]; omitted: number }): string {
  if (d.rows.length === 0 && d.omitted === 0) return '';
  const lines = ['Dynamic phases:'];
  for (const r of d.rows) {
    lines.push(`- ${r.phaseId}: ${r.summary}`);
    for (const v of r.verdicts ?? []) {
      lines.push(`  ${v.verdict === 'refuted' ? 'REFUTED' : 'confirmed'} ${v.id} (${v.refute}/${v.of} refute): ${v.finding}${v.reason ? ` — ${v.reason}` : ''}`);
    }
    if (r.verdictsOmitted) lines.push(`  … and ${plural(r.verdictsOmitted, 'more verdict')} (report.md lists them)`);
  }
  if (d.omitted > 0) lines.push(`… and ${plural(d.omitted, 'more dynamic phase')}: \`fanfold status\` or run.json phases[].dynamic`);
  return lines.join('\n');
}

/**
 * The phases' digests (run.json `phases[i].digest`, filled by the engine as phases end) joined
 * under their ids, within MAX_DIGEST_BYTES: each phase gets a fair share, and what a short
 * digest leaves over goes to the next ones. Empty when no phase has a digest yet.
 */
export function joinedDigest(run: RunRecord, maxBytes = MAX_DIGEST_BYTES): string {
  const titles = new Map(run.plan.phases.map((p) => [p.id, p.title]));
  const parts = run.phases.filter((p) => typeof p.digest === 'string' && p.digest.trim() !== '');
  if (parts.length === 0) return '';
  let budget = maxBytes;
  const out: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    const title = titles.get(p.id);
    const head = `## ${p.id}${title && title !== p.id ? ` — ${title}` : ''} (${p.status})\n`;
    const share = Math.floor(budget / (parts.length - i));
    if (share < utf8Length(head) + 40) {
      out.push(`… ${plural(parts.length - i, 'more phase digest')} left out to stay within the answer size; see the run resource or report.`);
      break;
    }
    const piece = head + clipBytes(p.digest!.trim(), share - utf8Length(head) - 2, '\n… [digest clipped]') + '\n';
    out.push(piece);
    budget -= utf8Length(piece);
  }
  return clipBytes(out.join('\n'), maxBytes);
}

/** The head of `<run dir>/report.md`, or undefined when there is none yet. */
export interface ReportHead {
  /** The report text (clipped to the limit). */
  text: string;
  /** Size of the whole file in bytes. */
  bytes: number;
  clipped: boolean;
  /** Absolute path of the file. */
  path: string;
}

/**
 * Reads at most `maxBytes` of the run's report.md. Why not the whole file: a report can be large,
 * and an answer only quotes its head (the full file is referenced by path). Refuses to follow a
 * symlink at report.md (O_NOFOLLOW), like every other read in the store.
 */
export async function readReportHead(runDir: string, maxBytes = MAX_REPORT_BYTES): Promise<ReportHead | undefined> {
  const file = await safeJoinReal(runDir, 'report.md');
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, C.O_RDONLY | C.O_NOFOLLOW);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return undefined;
    const want = Math.min(st.size, maxBytes + 4);
    const buf = Buffer.alloc(want);
    const { bytesRead } = await fh.read(buf, 0, want, 0);
    let text = buf.subarray(0, bytesRead).toString('utf8');
    const clipped = st.size > maxBytes;
    if (clipped) {
      text = text.replace(/\uFFFD+$/, ''); // a multi-byte character cut by the read
      text = text.slice(0, prefixFitting(text, maxBytes - 200));
      text += `\n\n… [report clipped: ${st.size} bytes in all; the whole report is ${file}]`;
    }
    return { text, bytes: st.size, clipped, path: file };
  } finally {
    await fh.close().catch(() => {});
  }
}

/** One agent (task) row of `detail: 'agents'`. */
export interface AgentRow {
  /** Handle for query_workflow `ref`: `<runId>/<phaseId>/<taskId>`. */
  ref: string;
  phaseId: string;
  taskId: string;
  /** Latest attempt's status (`check_failed` for a gate check that did not pass), or `running` / `pending` when it has not ended. */
  status: string;
  /** Latest attempt number with a record (absent before the first one). */
  attempt?: number;
  durationMs?: number;
  /** Bytes of output the agent produced. */
  outputBytes?: number;
  /** Why it did not succeed, short. */
  cause?: string;
}

/** A page of agent rows. */
export interface AgentPage {
  rows: AgentRow[];
  total: number;
  offset: number;
  /** Offset of the next page, or null at the end. */
  nextOffset: number | null;
}

/**
 * One page of per-task rows, in plan order. Rows come from the agent file names (latest attempt
 * per task) and the journal (what is running now); only the records on this page are read, so a
 * 1,000-agent run costs one directory listing and at most AGENT_PAGE_SIZE file reads.
 */
export async function agentPage(
  root: string,
  snap: RunSnapshot,
  offset: number,
  limit = AGENT_PAGE_SIZE,
  /** Reads one record by file name (default: from disk); the dashboard passes its cache. */
  read: (store: RunStore, file: string) => Promise<AgentRecord> = (store, file) => store.readAgentRecord(file),
): Promise<AgentPage> {
  const { run, view } = snap;
  const tasks = run.plan.tasks;
  const store = await RunStore.open(root, run.runId);
  try {
    const latest = new Map<string, { attempt: number; file: string }>();
    let names: string[] = [];
    try {
      names = await fs.readdir(await safeJoinReal(store.dir, AGENTS_DIR));
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
    for (const n of names) {
      const p = parseAgentFileName(n);
      if (!p) continue;
      const ref = `${p.phaseId}/${p.taskId}`;
      if ((latest.get(ref)?.attempt ?? 0) < p.attempt) latest.set(ref, { attempt: p.attempt, file: n });
    }
    const running = new Set<string>();
    if (view.status === 'running' || view.status === 'awaiting_approval') {
      // Only a live run has agents running; after a crash they count as pending.
      const { events } = await store.readJournal();
      for (const e of events) {
        if (e.type === 'agent.started') running.add(e.ref);
        else if (e.type === 'agent.finished' || e.type === 'agent.skipped') running.delete(e.ref);
      }
    }
    const page = tasks.slice(offset, offset + limit);
    const rows = await Promise.all(
      page.map(async (t): Promise<AgentRow> => {
        const base = { ref: `${run.runId}/${t.phaseId}/${t.taskId}`, phaseId: t.phaseId, taskId: t.taskId };
        const l = latest.get(t.ref);
        if (running.has(t.ref)) return { ...base, status: 'running', ...(l ? { attempt: l.attempt } : {}) };
        if (!l) return { ...base, status: 'pending' };
        let rec: AgentRecord;
        try {
          rec = await read(store, l.file);
        } catch (err) {
          return { ...base, status: 'unreadable', attempt: l.attempt, cause: clipChars((err as Error).message, MAX_CAUSE_CHARS) };
        }
        const checkFailed = isFailedCheck(rec);
        return {
          ...base,
          // A gate check that did not pass is its own state, never a green `succeeded`.
          status: checkFailed ? 'check_failed' : rec.status,
          attempt: rec.attempt,
          durationMs: rec.durationMs,
          outputBytes: rec.outputBytes,
          ...(rec.error || checkFailed ? { cause: clipChars(failureCause(rec), MAX_CAUSE_CHARS) } : {}),
        };
      }),
    );
    const end = offset + rows.length;
    return { rows, total: tasks.length, offset, nextOffset: end < tasks.length ? end : null };
  } finally {
    await store.close();
  }
}

function clipChars(s: string, max: number): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

/** One row of the recent-runs list. */
export interface RunRow {
  runId: string;
  name: string;
  status: string;
  /** Agents that ended, however they ended (see store/counts.ts). */
  done: number;
  total: number;
  failed: number;
  startedAt: string;
  elapsedMs: number;
  /** What its agents cost, as their CLIs reported it (nothing recorded: zero). */
  spend: { usd: number; tokens: number };
  /** Why it could not be read, for a damaged run. */
  error?: string;
}

/** The most recent runs (newest first, at most `limit`), how many runs the store holds, and what the listed runs cost together. */
export async function recentRuns(root: string, limit = MAX_RUN_ROWS): Promise<{ runs: RunRow[]; total: number; spend: { usd: number; tokens: number } }> {
  const all = await RunStore.listRuns(root);
  const runs = await Promise.all(
    all.slice(0, limit).map(async (entry): Promise<RunRow> => {
      if (!entry.run) {
        return { runId: entry.runId, name: '?', status: 'unreadable', done: 0, total: 0, failed: 0, startedAt: '', elapsedMs: 0, spend: { usd: 0, tokens: 0 }, error: clipChars(entry.error ?? 'unreadable', 300) };
      }
      const run = entry.run;
      let lease;
      try {
        lease = await readLease(await safeJoinReal(root, run.runId));
      } catch {
        lease = undefined;
      }
      const v = statusView(run, '', leaseState(lease) === 'live' ? lease : undefined);
      return {
        runId: v.runId,
        name: v.name,
        status: v.status,
        done: endedCount(v.agents),
        total: v.agents.total,
        failed: v.agents.failed,
        startedAt: v.startedAt,
        elapsedMs: v.elapsedMs,
        spend: v.spend ?? { usd: 0, tokens: 0 },
      };
    }),
  );
  return { runs, total: all.length, spend: totalSpend(runs.map((r) => r.spend)) };
}

/** Text lines for the recent-runs list. */
export function runRowsText(list: { runs: RunRow[]; total: number; spend?: { usd: number; tokens: number } }): string {
  if (list.total === 0) return 'No runs yet. Plan one with plan_workflow, then start it with run_workflow.';
  const lines = [`${plural(list.total, 'run')} in the store, newest first:`];
  for (const r of list.runs) {
    lines.push(
      r.error
        ? `- runId ${r.runId}: unreadable (${r.error})`
        : `- runId ${r.runId} "${clipChars(r.name, 80)}": ${r.status}, ${r.done}/${r.total} agents done${r.failed ? `, ${r.failed} failed` : ''}, started ${r.startedAt}, ${fmtDuration(r.elapsedMs)}, spent ${formatSpend(r.spend)}`,
    );
  }
  if (list.total > list.runs.length) lines.push(`… and ${list.total - list.runs.length} older runs.`);
  lines.push(`Spend of the ${plural(list.runs.length, 'run')} listed: ${formatSpend(list.spend ?? totalSpend(list.runs.map((r) => r.spend)))} (as the agent CLIs reported it; Codex and Pi report no dollars).`);
  lines.push('Next: workflow_status {"runId": "<id>"} for one run.');
  return lines.join('\n');
}

/** What the host should do next, given a run's status. */
export function nextStepFor(view: RunStatusView): string {
  const id = view.runId;
  switch (view.status) {
    case 'running':
      return (
        `The run is still going. Call ${callText('workflow_status', { runId: id, wait: 50 })} to wait for it ` +
        '(repeat until the status is final); keep doing other work in between if you like.'
      );
    case 'completed':
      return (
        'The run is complete. Answer from the report and digests here; look up details with ' +
        `${callText('query_workflow', { query: '<words>', runId: id })} instead of reading every output.`
      );
    case 'awaiting_approval': {
      const cps = view.checkpoints ?? [];
      const q = cps.map((c) => `phase ${c.phaseId}: "${c.message}"${c.timeoutAt ? ` (unanswered by ${c.timeoutAt}: ${c.onTimeout})` : ''}`).join('; ');
      const one = cps.length === 1 ? cps[0]!.phaseId : '<phaseId>';
      return (
        `The run waits for a person at a checkpoint (${q || 'see the status'}); phases that do not depend on it go on. ` +
        'Ask the user the question and do not answer it yourself. With their answer, call ' +
        `${callText('control_workflow', { runId: id, action: 'approve', phaseId: one })} or ${callText('control_workflow', { runId: id, action: 'reject', phaseId: one })} ` +
        `(they may also run 'fanfold approve ${id}${cps.length > 1 ? ' <phaseId>' : ''}' [--reject] in a terminal).`
      );
    }
    case 'paused': {
      const runners = (view.pausedRunners ?? []).map((p) => p.runner).join(', ') || 'a runner';
      const auth = (view.pausedRunners ?? []).some((p) => p.kind === 'auth');
      return (
        `The run is paused: ${runners} ${auth ? 'could not log in or' : ''} hit a usage limit, so no further agent of it was started; nothing that finished is lost. ` +
        (view.resumeAfter
          ? `The limit resets at ${view.resumeAfter}: resume after that with ${callText('control_workflow', { runId: id, action: 'resume' })} (or 'fanfold resume ${id} --wait-until-reset' in a terminal). `
          : `Tell the user; once the limit has reset${auth ? ' (or the login is fixed)' : ''}, resume with ${callText('control_workflow', { runId: id, action: 'resume' })}. `) +
        'Agents cut off by the limit run again; finished ones are reused.'
      );
    }
    case 'interrupted':
      return `The run's owner died before the end. Resume it with ${callText('run_workflow', { resumeRunId: id })}: finished agents are not run again.`;
    default:
      return (
        `The run ended ${view.status}. See which agents failed and why with ${callText('workflow_status', { runId: id, detail: 'agents' })}; ` +
        `after fixing the cause, resume with ${callText('run_workflow', { resumeRunId: id })} (finished agents are reused).`
      );
  }
}

/** `1m 05s` style duration. */
export function fmtDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

/** One line of agent counts: `12/40 agents done (10 succeeded, 2 failed), 4 running, 24 pending`. */
export function countsLine(a: RunStatusView['agents'], redactions = 0): string {
  const ended = describeCounts({ ...a, running: 0, pending: 0 }, { of: false });
  const redacted = redactions > 0 ? `; ${redactions} secret${redactions === 1 ? '' : 's'} redacted` : '';
  return `${endedCount(a)}/${a.total} agents done (${ended}), ${a.running} running, ${a.pending} pending${redacted}`;
}

/** Whether a status is final. */
export function isFinal(view: RunStatusView): boolean {
  return TERMINAL.has(view.status);
}
