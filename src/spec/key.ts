/**
 * Content keys of tasks. A key is a hash of what a task is (phase, task, prompt, resolved agent)
 * and of the keys of the tasks it depends on, so changing an upstream task changes every key
 * downstream of it. Keys never depend on time, randomness or object key order.
 */
import { createHash } from 'node:crypto';
import type { AgentDef } from './types.js';

/** Version of the key recipe; bump it to invalidate every stored result on purpose. */
export const KEY_VERSION = 1;

/** Hex characters kept from the sha256 digest (96 bits: collisions are not a practical concern). */
export const KEY_LENGTH = 24;

/**
 * JSON with object keys sorted at every level and `undefined` members dropped, so equal values
 * always give equal text. Arrays keep their order.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    const text = JSON.stringify(value);
    return text === undefined ? 'null' : text;
  }
  if (Array.isArray(value)) {
    return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  }
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** What a task key is computed from. */
export interface TaskKeyInput {
  phaseId: string;
  taskId: string;
  prompt: string;
  agent: AgentDef;
  /** Dependencies: their refs and keys (any order; sorted by ref here). */
  deps: ReadonlyArray<{ ref: string; key: string }>;
  /** JSON Schema of the answer; absent leaves the key as it was before schemas existed. */
  schema?: Record<string, unknown>;
  /** What a task made at run time was made for (its item, round, finding…); absent for static tasks. */
  origin?: unknown;
  /** `worktree` isolation changes what a task does; absent keeps older keys. */
  isolation?: string;
}

/**
 * The agent as far as it decides what a task is. Why without `idleTimeoutMs`: how long fanfold
 * waits for a silent agent does not change its work, and a changed watchdog must not make a
 * resume run finished tasks again.
 */
function keyedAgent(agent: AgentDef): AgentDef {
  if (agent.idleTimeoutMs === undefined) return agent;
  const { idleTimeoutMs: _watchdog, ...rest } = agent;
  return rest;
}

/** The content key of a task: first KEY_LENGTH hex chars of sha256 over its canonical JSON. */
export function taskKey(input: TaskKeyInput): string {
  const deps = [...input.deps]
    .sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0))
    .map((d) => d.key);
  const body = canonicalJson({
    v: KEY_VERSION,
    phaseId: input.phaseId,
    taskId: input.taskId,
    prompt: input.prompt,
    agent: keyedAgent(input.agent),
    deps,
    // undefined members are dropped by canonicalJson: keys of tasks without a schema are unchanged.
    schema: input.schema,
    origin: input.origin,
    isolation: input.isolation,
  });
  return createHash('sha256').update(body, 'utf8').digest('hex').slice(0, KEY_LENGTH);
}

/**
 * The content key of a dynamic phase's virtual end node: its configuration and the keys of what
 * it waits for at plan time, so a change upstream or to the phase changes every key downstream.
 */
export function nodeKey(phaseId: string, config: unknown, deps: ReadonlyArray<{ ref: string; key: string }>): string {
  const keys = [...deps].sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0)).map((d) => d.key);
  const body = canonicalJson({ v: KEY_VERSION, node: phaseId, config, deps: keys });
  return createHash('sha256').update(body, 'utf8').digest('hex').slice(0, KEY_LENGTH);
}
