/**
 * How another session asks a live run's owner for something besides a whole-run stop: it leaves a
 * request in the run's requests/ folder (see control.ts for what the owner does with it) and waits
 * for the owner's journal line that says what it did. One function for every front — `fanfold
 * approve/stop/restart`, MCP `control_workflow` and the dashboard — so they cannot drift apart.
 */
import os from 'node:os';
import { RunStore } from '../store/index.js';
import type { RequestRecord, RunEvent } from '../store/types.js';

/** A request as a front hands it in (the store fills id, time and version). */
export type NewRequest = Omit<RequestRecord, 'schemaVersion' | 'id' | 'requestedAt'>;

/** Who asks, from this process: `via` names the front (e.g. `fanfold approve`, `dashboard`). */
export function requestedBy(via: string): RequestRecord['by'] {
  return { pid: process.pid, host: os.hostname(), via };
}

/** Leaves one request for the run's owner. */
export async function addRequest(root: string, runId: string, req: NewRequest): Promise<void> {
  const store = await RunStore.open(root, runId);
  try {
    await store.addRequest(req);
  } finally {
    await store.close();
  }
}

/**
 * Reads the journal until an event at or after `since` (ISO) matches, or `waitMs` passes
 * (undefined then). Polls every 150 ms: the owner answers within one of its own request polls.
 */
export async function waitForEvent(root: string, runId: string, since: string, waitMs: number, match: (e: RunEvent) => boolean): Promise<RunEvent | undefined> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const store = await RunStore.open(root, runId);
    try {
      const { events } = await store.readJournal();
      const hit = events.find((e) => e.t >= since && match(e));
      if (hit) return hit;
    } finally {
      await store.close();
    }
    if (Date.now() >= deadline) return undefined;
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** Leaves a request and waits up to `waitMs` for the owner's journal line that answers it. */
export async function sendRequest(root: string, runId: string, req: NewRequest, match: (e: RunEvent) => boolean, waitMs: number): Promise<RunEvent | undefined> {
  // Why take the time before writing: the owner may answer before addRequest returns.
  const since = new Date().toISOString();
  await addRequest(root, runId, req);
  return waitForEvent(root, runId, since, waitMs, match);
}

/** The journal line an owner writes when it acts on a stop or restart of one agent. */
export type AgentActionEvent = Extract<RunEvent, { type: 'agent.stop_requested' | 'agent.restart_requested' }>;

/** Asks the owner to stop or restart one agent; resolves with its answer, or undefined if it did not answer in time. */
export async function requestAgentAction(root: string, runId: string, request: 'stop_agent' | 'restart_agent', ref: string, by: RequestRecord['by'], waitMs: number): Promise<AgentActionEvent | undefined> {
  const type = request === 'stop_agent' ? 'agent.stop_requested' : 'agent.restart_requested';
  return (await sendRequest(root, runId, { request, ref, by }, (e) => e.type === type && e.ref === ref, waitMs)) as AgentActionEvent | undefined;
}

/** Leaves a checkpoint answer and waits for the owner's `checkpoint.answered` line (undefined when it did not take it in time). */
export async function answerCheckpoint(root: string, runId: string, phaseId: string, approve: boolean, by: RequestRecord['by'], waitMs: number): Promise<RunEvent | undefined> {
  return sendRequest(root, runId, { request: 'answer', phaseId, approve, by }, (e) => e.type === 'checkpoint.answered' && e.phaseId === phaseId, waitMs);
}
