/**
 * What the dashboard's JSON API answers, built from the same functions every other front uses:
 * status and counts from engine/status.ts and store/counts.ts (through mcp/run-views.ts), task rows
 * from `agentPage`, the timeline from digest/timeline.ts (the component report.html embeds), search
 * from search/. Nothing here counts or decides a status on its own.
 *
 * A {@link RunWatch} keeps, per run, the journal follower and a cache of agent records with their
 * big fields dropped: records never change once written (a new attempt is a new file), so a
 * 1,000-agent run is read once, then only its new files.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { describeCounts, EVENTS_FILE, RunStore, safeJoin, type AgentRecord } from '../store/index.js';
import { agentPage, dynamicRows, readRunSnapshot, isFinal, type RunSnapshot } from '../mcp/run-views.js';
import { barStatus, failureCause, pausesOf, renderMarkdownHtml, renderTimeline, type RunningAttempt } from '../digest/index.js';
import { REPORT_MD } from '../engine/reports.js';
import { JournalFollower } from './journal-follow.js';

/** Characters of output per page in the agent view. */
export const OUTPUT_PAGE_CHARS = 40_000;
/** Most bytes of report.md rendered in the run view. */
const MAX_REPORT_BYTES = 512 * 1024;
/** Most characters of a patch diff sent to the page. */
const MAX_DIFF_CHARS = 200_000;
/** Characters of stderr kept in a cached record (the timeline quotes its last line). */
const CACHED_STDERR_CHARS = 400;

/** Per-run state the server keeps: the journal follower and the slim record cache. */
export class RunWatch {
  readonly root: string;
  readonly runId: string;
  readonly follower: JournalFollower;
  readonly #records = new Map<string, AgentRecord>();

  constructor(root: string, runId: string) {
    this.root = root;
    this.runId = runId;
    this.follower = new JournalFollower(safeJoin(root, runId, EVENTS_FILE));
  }

  /** A record by file name, from the cache or the disk (then cached, slim). */
  async record(store: RunStore, file: string): Promise<AgentRecord> {
    const hit = this.#records.get(file);
    if (hit) return hit;
    const rec = await store.readAgentRecord(file);
    // Why slim: outputs may be a MiB each; the list and the timeline need only the metadata.
    const slim: AgentRecord = { ...rec, prompt: '', output: '', structured: undefined, patch: undefined, stderrTail: rec.stderrTail.slice(-CACHED_STDERR_CHARS) };
    this.#records.set(file, slim);
    return slim;
  }

  /** Every attempt's (slim) record. */
  async records(): Promise<AgentRecord[]> {
    const store = await RunStore.open(this.root, this.runId);
    try {
      const files = await store.listAgentFiles();
      const out: AgentRecord[] = [];
      for (const f of files) {
        try {
          out.push(await this.record(store, f.file));
        } catch {
          // An unreadable record is shown by the task list (agentPage says why); the timeline skips it.
        }
      }
      return out;
    } finally {
      await store.close();
    }
  }

  /** Attempts running now, from the journal (only a live run has any). */
  running(): RunningAttempt[] {
    const open = new Map<string, RunningAttempt>();
    for (const { event: e } of this.follower.events) {
      if (e.type === 'agent.started') open.set(e.ref, { ref: e.ref, attempt: e.attempt, startedAt: e.t });
      else if (e.type === 'agent.finished' || e.type === 'agent.skipped') open.delete(e.ref);
      else if (e.type === 'run.finished' || e.type === 'run.resumed') open.clear();
    }
    return [...open.values()];
  }
}

/** The run view: status and counts in words, phases, dynamic phases, checkpoints, report. */
export async function runView(watch: RunWatch) {
  await watch.follower.poll();
  const snap = await readRunSnapshot(watch.root, watch.runId);
  const { view, run } = snap;
  const report = isFinal(view) ? await readReport(view.dir) : undefined;
  return {
    ...view,
    live: view.status === 'running' || view.status === 'awaiting_approval',
    countsText: describeCounts(view.agents),
    phases: view.phases.map((p) => ({ ...p, countsText: describeCounts(p) })),
    dynamic: dynamicRows(run, true).rows,
    taskCount: run.plan.tasks.length,
    journalBytes: watch.follower.offset,
    ...(report !== undefined ? { reportHtml: report } : {}),
  };
}

async function readReport(dir: string): Promise<string | undefined> {
  try {
    const fh = await fs.open(path.join(dir, REPORT_MD), 'r');
    try {
      const buf = Buffer.alloc(MAX_REPORT_BYTES);
      const { bytesRead } = await fh.read(buf, 0, MAX_REPORT_BYTES, 0);
      return renderMarkdownHtml(buf.subarray(0, bytesRead).toString('utf8'));
    } finally {
      await fh.close();
    }
  } catch {
    return undefined;
  }
}

/** Every task's row (latest attempt), in plan order: the status comes from `agentPage`, as workflow_status shows it. */
export async function taskRows(watch: RunWatch, snap?: RunSnapshot) {
  const s = snap ?? (await readRunSnapshot(watch.root, watch.runId));
  const page = await agentPage(watch.root, s, 0, s.run.plan.tasks.length, (store, file) => watch.record(store, file));
  return { rows: page.rows.map(({ ref: _handle, ...r }) => ({ ref: `${r.phaseId}/${r.taskId}`, ...r })), total: page.total, status: s.view.status };
}

/** The timeline fragment: the very component report.html draws, with running attempts growing. */
export async function timelineHtml(watch: RunWatch): Promise<string> {
  await watch.follower.poll();
  const snap = await readRunSnapshot(watch.root, watch.runId);
  const live = snap.view.status === 'running' || snap.view.status === 'awaiting_approval';
  const records = await watch.records();
  const events = watch.follower.events.map((f) => f.event);
  return renderTimeline({
    run: snap.run,
    records,
    pauses: pausesOf(events),
    ...(live ? { running: watch.running() } : {}),
    refAttribute: 'data-bar-ref',
  });
}

/** One agent: every attempt with its cause, and the chosen attempt's prompt, output page, answer, stderr, usage and patch. */
export async function agentView(watch: RunWatch, ref: string, opts: { attempt?: number; offset?: number }) {
  const snap = await readRunSnapshot(watch.root, watch.runId);
  const task = snap.run.plan.tasks.find((t) => t.ref === ref);
  if (!task) return undefined;
  const store = await RunStore.open(watch.root, watch.runId);
  try {
    const files = (await store.listAgentFiles()).filter((f) => f.phaseId === task.phaseId && f.taskId === task.taskId);
    const records: AgentRecord[] = [];
    for (const f of files) records.push(await store.readAgentRecord(f.file).catch(() => undefined as unknown as AgentRecord));
    const good = records.filter(Boolean);
    const chosen = opts.attempt !== undefined ? good.find((r) => r.attempt === opts.attempt) : good[good.length - 1];
    const running = watch.running().find((a) => a.ref === ref);
    const attempts = good.map((r) => ({
      attempt: r.attempt,
      status: barStatus(r),
      startedAt: r.startedAt,
      durationMs: r.durationMs,
      ...(r.status !== 'succeeded' || barStatus(r) === 'check_failed' ? { cause: failureCause(r, 400) } : {}),
      ...(r.costUsd !== undefined ? { costUsd: r.costUsd } : {}),
      ...(r.usage ? { usage: r.usage } : {}),
    }));
    const base = { ref, phaseId: task.phaseId, taskId: task.taskId, agent: task.agent, attempts, ...(running ? { running } : {}) };
    if (!chosen) return { ...base, prompt: task.prompt, output: null };
    const offset = Math.max(0, opts.offset ?? 0);
    const page = await store.readAgentOutputPage(chosen, offset, OUTPUT_PAGE_CHARS);
    const end = offset + page.text.length;
    return {
      ...base,
      attempt: chosen.attempt,
      status: barStatus(chosen),
      prompt: chosen.prompt,
      runner: chosen.runner,
      exitCode: chosen.exitCode,
      signal: chosen.signal,
      startedAt: chosen.startedAt,
      endedAt: chosen.endedAt,
      durationMs: chosen.durationMs,
      ...(chosen.error ? { error: chosen.error } : {}),
      ...(chosen.status !== 'succeeded' || barStatus(chosen) === 'check_failed' ? { cause: failureCause(chosen, 400) } : {}),
      ...(chosen.structured !== undefined ? { structured: chosen.structured } : {}),
      ...(chosen.structuredIn ? { structuredIn: chosen.structuredIn } : {}),
      stderrTail: chosen.stderrTail,
      ...(chosen.usage ? { usage: chosen.usage } : {}),
      ...(chosen.costUsd !== undefined ? { costUsd: chosen.costUsd } : {}),
      outputBytes: chosen.outputBytes,
      truncated: chosen.truncated,
      ...(chosen.patch
        ? { patch: { files: chosen.patch.files, bytes: chosen.patch.bytes, truncated: chosen.patch.truncated || chosen.patch.diff.length > MAX_DIFF_CHARS, diff: chosen.patch.diff.slice(0, MAX_DIFF_CHARS) } }
        : {}),
      output: { text: page.text, offset, totalChars: page.totalChars, nextOffset: end < page.totalChars ? end : null },
    };
  } finally {
    await store.close();
  }
}
