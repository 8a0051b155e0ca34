/**
 * Reading back what a big output's record leaves out. A record whose output lives beside it
 * (`outputFile`, store/agent-output.ts) does not copy its structured answer: that answer is the
 * JSON the output carries, so it is parsed again from the output when a step needs it (forEach
 * items, verdicts, gates). Steps that only show an output (contexts, digests, reports, search)
 * never need it and read a bounded prefix instead.
 */
import type { RunStore } from '../store/index.js';
import type { AgentRecord } from '../store/types.js';
import { extractJson } from '../runners/structured.js';

/** Largest output parsed again for its structured answer (the largest `limits.maxOutputBytes`). */
const MAX_REPARSE_BYTES = 64 * 1024 * 1024;

/**
 * `rec` with its structured answer: as stored, or — for a record whose answer stayed in its output
 * file — parsed from that file the way the runners parsed it (the whole text, else its fenced
 * JSON block). Unchanged when there is nothing to parse or it no longer parses.
 */
export async function withStructured(store: RunStore, rec: AgentRecord): Promise<AgentRecord> {
  if (rec.structuredIn !== 'output' || rec.structured !== undefined) return rec;
  const { text, complete } = await store.readAgentOutput(rec, MAX_REPARSE_BYTES);
  if (!complete) return rec;
  const found = extractJson(text);
  return found.ok ? { ...rec, structured: found.value } : rec;
}
