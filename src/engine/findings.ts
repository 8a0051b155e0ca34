/**
 * Items and findings read out of agent answers: what forEach fans out over, what skeptics try to
 * refute and what converge counts as new. Pure functions over stored records.
 */
import { canonicalJson } from '../spec/key.js';
import { lookup } from '../digest/template.js';
import type { AgentRecord } from '../store/types.js';

/** Own-property lookup along a dotted path (`findings`, `result.files`, `list.0`). */
export function atPath(value: unknown, path: string): unknown {
  return lookup(value, path.split('.'));
}

/** The structured answer of a record; an answer that is JSON text counts too. */
export function answerOf(rec: AgentRecord): unknown {
  if (rec.structured !== undefined) return rec.structured;
  const text = rec.output.trim();
  if (text.startsWith('{') || text.startsWith('[')) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** What reading items out of one answer came to. */
export interface ItemsRead {
  items: unknown[];
  /** Why nothing could be read, when so (named in status and report). */
  problem?: string;
}

/**
 * The items of one answer at `path`; without a path, the answer itself when it is a list, else
 * its only list-valued property. `wholeOutput`: when no list is found, the task's output text is
 * one item (a finding that is a whole answer).
 */
export function itemsOf(rec: AgentRecord, path: string | undefined, wholeOutput: boolean): ItemsRead {
  const ref = `${rec.phaseId}/${rec.taskId}`;
  const answer = answerOf(rec);
  if (path !== undefined) {
    if (answer === undefined) {
      return wholeOutput && rec.output.trim() ? { items: [rec.output.trim()] } : { items: [], problem: `${ref} gave no structured answer to read '${path}' from (give its task a schema)` };
    }
    const v = atPath(answer, path);
    if (v === undefined) return { items: [], problem: `${ref}: its answer has nothing at '${path}'` };
    return { items: Array.isArray(v) ? v : [v] };
  }
  if (Array.isArray(answer)) return { items: answer };
  if (answer !== null && typeof answer === 'object') {
    const lists = Object.values(answer as Record<string, unknown>).filter(Array.isArray);
    if (lists.length === 1) return { items: lists[0]! };
  }
  if (wholeOutput) {
    const text = rec.output.trim();
    return text ? { items: [text] } : { items: [] };
  }
  return { items: [], problem: `${ref}: its answer is not a list and has no single list in it (name one with items: <path>)` };
}

/** A finding or item as one line of text, at most `max` characters. */
export function itemText(item: unknown, max = 4000): string {
  const text = typeof item === 'string' ? item : canonicalJson(item);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * The identity of a finding for deduplication: the value at `keyPath` when given, strings folded
 * (case, spacing, trailing punctuation) unless `fold` is false (forEach items such as file names
 * are told apart exactly), everything else as canonical JSON.
 */
export function identityOf(item: unknown, keyPath?: string, fold = true): string {
  const v = keyPath !== undefined && item !== null && typeof item === 'object' ? (atPath(item, keyPath) ?? item) : item;
  if (typeof v === 'string') return fold ? `s:${v.toLowerCase().replace(/\s+/g, ' ').trim().replace(/[.!;,]+$/, '')}` : `s:${v}`;
  return `j:${canonicalJson(v)}`;
}

/** A skeptic's vote, read from its answer `{refuted, reasons}`. */
export interface Vote {
  refuted: boolean;
  reasons: string;
  /** False when the answer could not be read: the skeptic abstains (counts as not refuting). */
  readable: boolean;
}

/** Reads a skeptic's answer. */
export function voteOf(rec: AgentRecord): Vote {
  const a = answerOf(rec);
  if (a !== null && typeof a === 'object' && typeof (a as { refuted?: unknown }).refuted === 'boolean') {
    const r = (a as { reasons?: unknown }).reasons;
    const reasons = Array.isArray(r) ? r.map(String).join('; ') : typeof r === 'string' ? r : '';
    return { refuted: (a as { refuted: boolean }).refuted, reasons, readable: true };
  }
  return { refuted: false, reasons: `unreadable answer: ${itemText(rec.output, 200)}`, readable: false };
}

/** A critic's verdict, read from its answer `{pass, reasons}`. */
export function criticVerdict(rec: AgentRecord): { pass: boolean; reasons: string } {
  const a = answerOf(rec);
  if (a !== null && typeof a === 'object' && typeof (a as { pass?: unknown }).pass === 'boolean') {
    const r = (a as { reasons?: unknown }).reasons;
    const reasons = Array.isArray(r) ? r.map(String).join('\n') : typeof r === 'string' ? r : '';
    return { pass: (a as { pass: boolean }).pass, reasons };
  }
  // Never a stand-in that passes: an answer without a boolean `pass` fails the gate.
  return { pass: false, reasons: `the critic's answer has no boolean 'pass': ${itemText(rec.output, 500)}` };
}

/** Whether `votes` refute a finding under `rule`. */
export function refutedBy(rule: 'majority' | 'any' | 'all', refute: number, total: number): boolean {
  if (total === 0) return false;
  if (rule === 'any') return refute >= 1;
  if (rule === 'all') return refute === total;
  return refute * 2 > total;
}

/** The JSON Schema skeptics answer with. */
export const SKEPTIC_SCHEMA: Record<string, unknown> = {
  type: 'object',
  properties: {
    refuted: { type: 'boolean', description: 'true when the finding is wrong, unsupported or not a real problem' },
    reasons: { type: 'string', description: 'why, with evidence (files, lines, facts)' },
  },
  required: ['refuted', 'reasons'],
  additionalProperties: false,
};

/** The JSON Schema a gate's critic answers with. */
export const CRITIC_SCHEMA: Record<string, unknown> = {
  type: 'object',
  properties: {
    pass: { type: 'boolean', description: 'true when the work meets the goal' },
    reasons: { type: 'array', items: { type: 'string' }, description: 'what is wrong or missing (empty when it passes)' },
  },
  required: ['pass', 'reasons'],
  additionalProperties: false,
};
