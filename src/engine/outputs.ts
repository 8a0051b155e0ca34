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

/** Bytes of the end of a big output that steps see after its head (a gate's test log ends there). */
const STEP_TAIL_BYTES = 64 * 1024;

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

/**
 * `rec` as a dynamic step (forEach, verify, gate, converge) reads it: its structured answer (see
 * withStructured) and, for an output beside its record, the head the record keeps followed by the
 * output's last 64 KiB — what a failing gate command printed last is usually what matters.
 */
export async function forSteps(store: RunStore, rec: AgentRecord): Promise<AgentRecord> {
  const full = await withStructured(store, rec);
  if (rec.outputFile === undefined) return full;
  const tail = await store.readAgentOutputTail(rec, STEP_TAIL_BYTES);
  const skipped = Math.max(0, (rec.storedBytes ?? 0) - Buffer.byteLength(rec.output, 'utf8') - Buffer.byteLength(tail, 'utf8'));
  return { ...full, output: `${rec.output}\n[… ${skipped} bytes of this output not shown …]\n${tail}` };
}
