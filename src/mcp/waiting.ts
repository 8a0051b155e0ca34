/**
 * Waiting on a run inside a tool call: bounded, cancellable, and visible to the host through
 * progress notifications when the request carried a progress token.
 */
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { ServerNotification, ServerRequest } from '@modelcontextprotocol/sdk/types.js';
import { waitForStatus, type RunStatusView } from '../engine/status.js';
import { countsLine } from './run-views.js';

/** The `extra` argument of a tool handler. */
export type HandlerExtra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/**
 * Longest wait one call may ask for, in seconds. Why 50: Codex gives an MCP call 60 s by default
 * and Claude Code moves calls past ~2 min to the background; 50 s leaves room for the answer.
 */
export const MAX_WAIT_SECONDS = 50;

/**
 * A progress notification is sent at least this often while waiting. Why 3 s: each notification
 * resets the host's idle timer and shows its message; the contract asks for ≤ 10 s.
 */
export const PROGRESS_HEARTBEAT_MS = 3_000;

/** Changes are reported at most this often, so a fast run does not flood the host. */
const PROGRESS_MIN_GAP_MS = 1_000;

/** How often the run files are read while waiting. */
const POLL_MS = 250;

/** Result of waitWithProgress. */
export interface WaitOutcome {
  view: RunStatusView;
  waitedMs: number;
  /** True when the host cancelled the request (the answer will not be delivered). */
  cancelled: boolean;
  /** Progress notifications sent. */
  notified: number;
}

/** The progress message for a status: `12/40 agents done (…), 4 running, 24 pending — running`. */
export function progressMessage(v: RunStatusView): string {
  const phase = v.phases.find((p) => p.status === 'running');
  return `${countsLine(v.agents)}; run ${v.status}${phase ? `, phase ${phase.id}` : ''}`;
}

/**
 * Waits up to `seconds` for the run to reach a final status, sending progress notifications when
 * `extra._meta.progressToken` is set, and stopping as soon as `extra.signal` aborts.
 */
export async function waitWithProgress(
  root: string,
  runId: string,
  seconds: number,
  extra: HandlerExtra,
  log?: (line: string) => void,
): Promise<WaitOutcome> {
  const started = Date.now();
  const token = extra._meta?.progressToken;
  let lastSent = 0;
  let lastProgress = -1;
  let lastKey = '';
  let notified = 0;
  const send = (v: RunStatusView, force: boolean) => {
    if (token === undefined || extra.signal.aborted) return;
    const now = Date.now();
    const done = v.agents.succeeded + v.agents.failed + v.agents.skipped;
    const key = `${done}:${v.agents.running}:${v.status}`;
    const changed = key !== lastKey;
    if (!force && !(changed && now - lastSent >= PROGRESS_MIN_GAP_MS) && now - lastSent < PROGRESS_HEARTBEAT_MS) return;
    // Why nudge: the protocol asks that `progress` increase with every notification; a heartbeat
    // with no agent finished adds a thousandth, which never reaches the next whole agent.
    const progress = done > lastProgress ? done : lastProgress + 0.001;
    lastProgress = progress;
    lastSent = now;
    lastKey = key;
    notified++;
    extra
      .sendNotification({
        method: 'notifications/progress',
        params: { progressToken: token, progress, total: v.agents.total, message: progressMessage(v) },
      })
      .catch((e: unknown) => log?.(`progress notification failed: ${e instanceof Error ? e.message : String(e)}`));
  };
  let first = true;
  const view = await waitForStatus(root, runId, {
    timeoutMs: Math.max(0, Math.min(seconds, MAX_WAIT_SECONDS)) * 1000,
    pollMs: POLL_MS,
    signal: extra.signal,
    onTick: (v) => {
      send(v, first);
      first = false;
    },
  });
  const cancelled = extra.signal.aborted;
  const waitedMs = Date.now() - started;
  if (cancelled) log?.(`wait on run ${runId} cancelled by the client after ${waitedMs} ms`);
  return { view, waitedMs, cancelled, notified };
}
