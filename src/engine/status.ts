/**
 * The read side of a run, for any session: status as the CLI's `--json` and the MCP tools show it.
 * Readers never write. A run whose run.json says `running` but whose owner's lease is not live is
 * reported `interrupted` — the owner died without recording an end.
 */
import { RunStore, fullCounts, readLease, leaseState } from '../store/index.js';
import type { CheckpointWait, Counts, PausedRunner, RunRecord, RunStatus } from '../store/types.js';
import { fmtTokens } from '../spec/estimate.js';
import { cliCommand } from '../install/invocation.js';

/** One phase in a status answer. */
export interface PhaseStatusView extends Counts {
  id: string;
  title: string;
  status: string;
}

/** Status of a run, as `fanfold status --json` prints it. */
export interface RunStatusView {
  runId: string;
  name: string;
  status: RunStatus;
  /** Why it ended the way it did. */
  reason?: string;
  phases: PhaseStatusView[];
  agents: Counts;
  startedAt: string;
  endedAt: string | null;
  elapsedMs: number;
  /** Run directory. */
  dir: string;
  /** What the agents cost so far, as their CLIs reported it. */
  spend?: { usd: number; tokens: number };
  /** How the run's agents are confined (see Plan.security), when there is something to say. */
  security?: string[];
  /** Secrets replaced by `[REDACTED:<rule>]` in the run's records so far (run.json `totals.redactions`). */
  redactions: number;
  /** The owner, while one holds the lease. */
  owner?: { pid: number; host: string; heartbeatAgeMs: number };
  /** `awaiting_approval`: the checkpoints waiting for a person, with their questions. */
  checkpoints?: CheckpointWait[];
  /** `paused`: the runners that hit a usage or auth limit. */
  pausedRunners?: PausedRunner[];
  /** `paused`: when the limit resets (ISO), when the CLI said; `fanfold resume --wait-until-reset` sleeps until then. */
  resumeAfter?: string;
}

/** Terminal run statuses. */
export const TERMINAL: ReadonlySet<RunStatus> = new Set(['completed', 'failed', 'stopped', 'interrupted', 'budget_exhausted', 'paused']);

/**
 * Statuses a wait returns on: the ends, and `awaiting_approval` — a run that needs a person will
 * not move by itself, so a caller waiting for it must hear so at once.
 */
export function needsAttention(status: RunStatus): boolean {
  return TERMINAL.has(status) || status === 'awaiting_approval';
}

/** Reads a run's status, deriving `interrupted` from a dead owner. */
export async function readStatus(root: string, runId: string): Promise<RunStatusView> {
  const store = await RunStore.open(root, runId);
  try {
    const run = await store.readRun();
    const lease = await readLease(store.dir);
    const live = leaseState(lease) === 'live';
    return statusView(run, store.dir, live ? lease : undefined);
  } finally {
    await store.close();
  }
}

/** Shapes a run record into a status answer. */
export function statusView(
  run: RunRecord,
  dir: string,
  lease?: { pid: number; host: string; heartbeatAt: string },
): RunStatusView {
  let status = run.status;
  let reason = run.reason;
  // `agents` keeps the per-status counts only (every bucket, also for run.json files written before
  // some buckets existed); the redaction count has its own field.
  const { redactions = 0, ...counts } = run.totals;
  let agents: Counts = fullCounts(counts);
  const titles = new Map(run.plan.phases.map((p) => [p.id, p.title]));
  let phases: PhaseStatusView[] = run.phases.map((p) => ({ id: p.id, title: titles.get(p.id) ?? p.id, status: p.status, ...fullCounts(p.counts) }));
  let elapsedMs = run.elapsedMs;
  const live = status === 'running' || status === 'awaiting_approval';
  if (live && !lease) {
    // The owner died mid-run: what was running is pending again (it runs again on resume).
    status = 'interrupted';
    reason = `the run's owner stopped without finishing (crash, kill or reboot); ${resumeAdvice(run.runId)}`;
    const requeue = (c: Counts): Counts => ({ ...c, pending: c.pending + c.running, running: 0 });
    agents = requeue(agents);
    phases = phases.map((p) => ({ ...p, ...requeue(p), status: p.status === 'completed' ? p.status : p.status === 'pending' ? 'pending' : 'interrupted' }));
  } else if (live) {
    elapsedMs += Math.max(0, Date.now() - Date.parse(run.updatedAt));
  }
  return {
    runId: run.runId,
    name: run.name,
    status,
    ...(reason ? { reason } : {}),
    phases,
    agents,
    startedAt: run.startedAt,
    endedAt: run.endedAt ?? null,
    elapsedMs,
    dir,
    ...(run.spend ? { spend: run.spend } : {}),
    ...(run.plan.security ? { security: run.plan.security } : {}),
    redactions,
    ...(lease ? { owner: { pid: lease.pid, host: lease.host, heartbeatAgeMs: Date.now() - Date.parse(lease.heartbeatAt) } } : {}),
    // The question stays visible even when the owner died while waiting (it asks again on resume).
    ...(run.checkpoints?.length ? { checkpoints: run.checkpoints } : {}),
    ...(run.pausedRunners?.length ? { pausedRunners: run.pausedRunners } : {}),
    ...(run.resumeAfter ? { resumeAfter: run.resumeAfter } : {}),
  };
}

/** Status of every run in the store, newest first; unreadable runs are listed with their error. */
export async function listStatuses(root: string): Promise<(RunStatusView | { runId: string; error: string })[]> {
  const out: (RunStatusView | { runId: string; error: string })[] = [];
  for (const entry of await RunStore.listRuns(root)) {
    if (!entry.run) {
      out.push({ runId: entry.runId, error: entry.error ?? 'unreadable' });
      continue;
    }
    try {
      out.push(await readStatus(root, entry.runId));
    } catch (e) {
      out.push({ runId: entry.runId, error: e instanceof Error ? e.message : String(e) });
    }
  }
  return out;
}

/**
 * Waits until the run reaches a terminal status, or needs a person (`awaiting_approval`), or
 * `timeoutMs` passes, polling the files.
 * `onTick` sees each poll's status (for progress). Stops early when `signal` aborts.
 */
export async function waitForStatus(
  root: string,
  runId: string,
  opts: { timeoutMs: number; pollMs?: number; signal?: AbortSignal; onTick?: (s: RunStatusView) => void },
): Promise<RunStatusView> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const s = await readStatus(root, runId);
    opts.onTick?.(s);
    if (needsAttention(s.status) || Date.now() >= deadline || opts.signal?.aborted) return s;
    await new Promise((r) => setTimeout(r, Math.min(opts.pollMs ?? 250, Math.max(0, deadline - Date.now()))));
  }
}

/** What agents cost, as their CLIs reported it (Codex and Pi report tokens, no dollars). */
export interface Spend {
  usd: number;
  tokens: number;
}

/**
 * What runs cost together: the one sum every front shows (`fanfold list`, workflow_status without
 * runId). A run with no spend recorded counts as nothing spent.
 */
export function totalSpend(spends: Iterable<Spend | undefined>): Spend {
  let usd = 0;
  let tokens = 0;
  for (const s of spends) {
    if (!s) continue;
    usd += s.usd;
    tokens += s.tokens;
  }
  return { usd: Math.round(usd * 1e6) / 1e6, tokens };
}

/** `$0.42 · 12k tokens`, the way every front writes a spend. */
export function formatSpend(s: Spend | undefined): string {
  const x = s ?? { usd: 0, tokens: 0 };
  return `$${x.usd.toFixed(2)} · ${fmtTokens(x.tokens)} tokens`;
}

/**
 * What to run to continue an interrupted run, as the person can run it from here: `fanfold resume
 * ID` (or `npx fanfold resume ID` in a clone), naming the build's path when neither works here.
 */
function resumeAdvice(runId: string): string {
  const here = cliCommand(['resume', runId]);
  return here.includes(`fanfold resume ${runId}`) ? `run '${here}' to continue` : `run 'fanfold resume ${runId}' to continue (from here: '${here}')`;
}
