/**
 * Prompt templating and the context file handed to a child: how a task's prompt receives the
 * digests of the phases it depends on, and how dependency outputs reach it within a byte budget.
 */
import type { AgentStatus } from '../store/types.js';
import { fairShares, jsonStringBytes, truncateForJson, utf8Bytes } from './text.js';

/** Context of {@link renderPrompt}. */
export interface PromptContext {
  /** Phase digests by phase id. */
  digests: Record<string, string>;
  /** Ids of the phases the task depends on, in the order `{{digest}}` lists them. */
  deps: string[];
  /** The forEach item the task was made for, when there is one. */
  item?: unknown;
  /**
   * Values of a task made at run time: `item`, `finding`, `failure`, `seen`, `prev`, `iteration`,
   * `round`. Each fills `{{name}}` and `{{name.<path>}}`; a name without a value stays as written.
   */
  vars?: Record<string, unknown>;
}

/** Names `vars` may fill. */
const VAR_NAMES = new Set(['item', 'finding', 'failure', 'seen', 'prev', 'iteration', 'round']);

/** `{{ name }}` with optional inner spaces; names hold no braces. */
const PLACEHOLDER = /\{\{\s*([^{}\s]+)\s*\}\}/g;

/** What stands in for a digest that does not exist (visible, so the gap is noticed). */
export function missingDigestNote(phaseId: string): string {
  return `[no digest for phase '${phaseId}']`;
}

/** Own property lookup along a dotted path (`a.b.0.c`); undefined when any step is missing. */
export function lookup(value: unknown, path: string[]): unknown {
  let cur = value;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    // Own properties only: `{{item.constructor}}` or `{{item.__proto__}}` must not reach prototypes.
    if (!Object.prototype.hasOwnProperty.call(cur, key)) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

/** A value as prompt text: strings as they are, everything else as JSON. */
function asText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === undefined) return '';
  try {
    return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * Fills a prompt template in one pass (text inserted is never expanded again):
 * - `{{digest}}` — the digests of `ctx.deps`, each under a `## <phaseId>` heading;
 * - `{{digest.<phaseId>}}` — one phase's digest, or a visible `[no digest for phase '<id>']`;
 * - `{{item}}` and `{{item.<path>}}` — the forEach item (strings as is, other values as JSON);
 * - anything else, including `{{item…}}` without an item or with a missing path, stays as written.
 */
export function renderPrompt(template: string, ctx: PromptContext): string {
  return template.replace(PLACEHOLDER, (whole, name: string) => {
    if (name === 'digest') {
      if (ctx.deps.length === 0) return '[no digest: this task depends on no phase]';
      return ctx.deps
        .map((id) => `## ${id}\n${Object.prototype.hasOwnProperty.call(ctx.digests, id) ? ctx.digests[id] : missingDigestNote(id)}`)
        .join('\n\n');
    }
    if (name.startsWith('digest.')) {
      const id = name.slice('digest.'.length);
      return Object.prototype.hasOwnProperty.call(ctx.digests, id) ? ctx.digests[id]! : missingDigestNote(id);
    }
    const dot = name.indexOf('.');
    const head = dot < 0 ? name : name.slice(0, dot);
    if (VAR_NAMES.has(head)) {
      const base = head === 'item' && ctx.item !== undefined ? ctx.item : ctx.vars && Object.prototype.hasOwnProperty.call(ctx.vars, head) ? ctx.vars[head] : undefined;
      if (base === undefined) return whole;
      const path = dot < 0 ? [] : name.slice(dot + 1).split('.');
      if (path.some((p) => p === '')) return whole;
      const value = lookup(base, path);
      return value === undefined ? whole : asText(value);
    }
    return whole;
  });
}

/** One dependency's result as given to {@link buildContextFile}. */
export interface ContextDep {
  /** `phase/task` of the dependency. */
  ref: string;
  status: AgentStatus;
  output: string;
  structured?: unknown;
  /** The dependency has a structured answer that is not handed over (too large to read): marked `structuredOmitted`. */
  structuredOmitted?: true;
  /** Whether `output` was already cut when stored (it stays marked truncated). */
  truncated?: boolean;
}

/** Input of {@link buildContextFile}. */
export interface ContextFileInput {
  deps: ContextDep[];
  /** Phase digests by phase id. */
  digests: Record<string, string>;
  /** Hard cap on the file's size in UTF-8 bytes (see `Limits.maxContextBytes`). */
  maxBytes: number;
}

/** One dependency in the context file. */
export interface ContextFileDep {
  ref: string;
  status: AgentStatus;
  output: string;
  /** True when `output` holds less than the dependency produced. */
  truncated: boolean;
  structured?: unknown;
  /** Present (true) when a structured result existed but did not fit the budget. */
  structuredOmitted?: true;
}

/** The JSON in FANFOLD_CONTEXT_FILE, schema version 1. */
export interface ContextFile {
  schemaVersion: 1;
  digests: Record<string, string>;
  deps: ContextFileDep[];
  /** Present when some deps did not fit at all: how many were left out (from the end of the list). */
  omittedDeps?: number;
  /** Present when some digests were cut (or, with a tiny budget, left out) to fit. */
  digestsTruncated?: true;
}

/** Share of the budget digests may take at most. */
const DIGEST_SHARE = 0.25;
/**
 * Smallest `maxBytes` {@link buildContextFile} accepts: room for the skeleton, its flags and a
 * quarter of it for digest keys.
 */
export const MIN_CONTEXT_BYTES = 256;

/** JSON text of a value, or undefined when it cannot be serialized (cycles, bigint…). */
function safeJson(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch {
    return undefined;
  }
}

/**
 * The JSON handed to a child in FANFOLD_CONTEXT_FILE:
 * `{schemaVersion: 1, digests, deps: [{ref, status, output, truncated, structured?}]}`,
 * never more than `maxBytes` UTF-8 bytes. Digests take at most a quarter of the budget; the rest is
 * shared fairly among deps (a small output takes what it needs, the large ones split what is left),
 * outputs are cut on character boundaries and marked `truncated`, a structured result that does not
 * fit its share is dropped and marked `structuredOmitted`, and deps that cannot fit even empty are
 * left out and counted in `omittedDeps`. Throws a RangeError when `maxBytes` is below
 * {@link MIN_CONTEXT_BYTES}.
 */
export function buildContextFile(input: ContextFileInput): string {
  const maxBytes = Math.floor(input.maxBytes);
  if (!(maxBytes >= MIN_CONTEXT_BYTES)) {
    throw new RangeError(`digest: expected maxBytes to be at least ${MIN_CONTEXT_BYTES}, got ${input.maxBytes}`);
  }

  // Digests: fair shares of at most a quarter of the budget.
  // Keys first (`"id":"",` each); phases whose key does not fit the share are left out.
  const digestShare = Math.floor(maxBytes * DIGEST_SHARE);
  const digestIds: string[] = [];
  let digestKeyCost = 0;
  let digestsTruncated = false;
  for (const id of Object.keys(input.digests)) {
    const cost = utf8Bytes(JSON.stringify(id)) + 4;
    if (digestKeyCost + cost > digestShare) {
      digestsTruncated = true;
      break;
    }
    digestIds.push(id);
    digestKeyCost += cost;
  }
  const digestNeeds = digestIds.map((id) => jsonStringBytes(input.digests[id] ?? ''));
  const digestShares = fairShares(digestNeeds, digestShare - digestKeyCost);
  const digests: Record<string, string> = {};
  digestIds.forEach((id, i) => {
    const text = input.digests[id] ?? '';
    if (digestNeeds[i]! <= digestShares[i]!) {
      digests[id] = text;
    } else {
      digests[id] = truncateForJson(text, digestShares[i]!);
      digestsTruncated = true;
    }
  });

  const fileOf = (deps: ContextFileDep[], omitted: number): ContextFile => {
    const file: ContextFile = { schemaVersion: 1, digests, deps };
    if (omitted > 0) file.omittedDeps = omitted;
    if (digestsTruncated) file.digestsTruncated = true;
    return file;
  };

  // Each dep at its smallest: empty output, structured dropped. `truncated` is measured as `false`,
  // its longer spelling, so flipping it either way never grows a dep past its allowance.
  const smallest = (d: ContextDep): ContextFileDep => {
    const dep: ContextFileDep = { ref: d.ref, status: d.status, output: '', truncated: false };
    if (d.structured !== undefined || d.structuredOmitted) dep.structuredOmitted = true;
    return dep;
  };
  const depBytes = (d: ContextFileDep): number => utf8Bytes(JSON.stringify(d));
  const minimal = input.deps.map((d) => depBytes(smallest(d)));

  // How many deps fit at all (in order); the rest are counted, not listed.
  let kept = input.deps.length;
  const fixedBytes = (count: number): number => {
    const skeleton = utf8Bytes(JSON.stringify(fileOf([], input.deps.length - count)));
    let sum = 0;
    for (let i = 0; i < count; i++) sum += minimal[i]!;
    return skeleton + sum + Math.max(0, count - 1);
  };
  while (kept > 0 && fixedBytes(kept) > maxBytes) kept--;
  const spare = maxBytes - fixedBytes(kept);

  // Extra bytes each kept dep would like beyond its smallest form (counted no further than needed).
  const structuredJson = input.deps.slice(0, kept).map((d) => (d.structured === undefined ? undefined : safeJson(d.structured)));
  const wants = input.deps.slice(0, kept).map((d, i) => {
    const out = jsonStringBytes(d.output ?? '', spare + 1);
    const st = structuredJson[i];
    // `,"structured":<json>` replaces `,"structuredOmitted":true`.
    const stExtra = st === undefined ? 0 : 14 + utf8Bytes(st) - 25;
    return Math.max(0, out + Math.max(0, stExtra));
  });
  const shares = fairShares(wants, spare);

  const deps: ContextFileDep[] = [];
  for (let i = 0; i < kept; i++) {
    const d = input.deps[i]!;
    const base = smallest(d);
    const allowance = minimal[i]! + shares[i]!;
    const st = structuredJson[i];
    const output = d.output ?? '';
    // The whole thing, when it fits.
    const full: ContextFileDep = { ref: d.ref, status: d.status, output, truncated: Boolean(d.truncated) };
    if (st !== undefined) full.structured = JSON.parse(st) as unknown;
    else if (d.structured !== undefined || d.structuredOmitted) full.structuredOmitted = true;
    if (wants[i]! <= shares[i]! && depBytes(full) <= allowance) {
      deps.push(full);
      continue;
    }
    // Otherwise keep the structured result if it takes at most half the allowance, then cut output.
    const dep: ContextFileDep = { ...base };
    if (st !== undefined) {
      const withSt: ContextFileDep = { ref: d.ref, status: d.status, output: '', truncated: false, structured: JSON.parse(st) as unknown };
      if (depBytes(withSt) <= allowance && depBytes(withSt) - minimal[i]! <= shares[i]! / 2) {
        delete dep.structuredOmitted;
        dep.structured = withSt.structured;
      }
    }
    const room = allowance - depBytes(dep);
    dep.output = room > 0 ? truncateForJson(output, room) : '';
    dep.truncated = dep.output.length < output.length || Boolean(d.truncated);
    deps.push(dep);
  }

  const text = JSON.stringify(fileOf(deps, input.deps.length - kept));
  if (utf8Bytes(text) > maxBytes) {
    // Cannot happen by construction; refuse rather than hand a child more than promised.
    throw new Error(`digest: context file came out at ${utf8Bytes(text)} bytes, over maxBytes ${maxBytes}`);
  }
  return text;
}
