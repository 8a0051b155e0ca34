/**
 * The extractive phase digest: a short, deterministic summary of one phase's outputs, made without
 * a model. It is what the host and later phases read instead of the outputs themselves, so it is
 * bounded hard (`maxChars`) and says what it left out.
 *
 * How lines are chosen: every non-empty line of every output (a head and tail window of huge ones)
 * is a candidate; each gets a tf-idf-like score against the phase title and run goal (idf over all
 * candidate lines of the phase, so boilerplate repeated everywhere scores low) plus small bonuses for
 * numbers, findings words ("error", "found", "total"…), headings and `key: value` lines. Tasks are
 * served round-robin — every task's best line before any task's second — so one chatty agent cannot
 * crowd out the rest. Failures are grouped by cause.
 */
import type { PlanPhase } from '../spec/types.js';
import type { AgentRecord } from '../store/types.js';
import { failureCause, STATUS_LABELS } from './records.js';
import { countTasks, describeCounts, taskStateOf, type TaskState } from '../store/counts.js';
import {
  cleanLine,
  clip,
  countNonEmptyLines,
  formatBytes,
  junkRatio,
  looksBinary,
  normalizeNewlines,
  utf8Bytes,
} from './text.js';

/** Default hard cap of a phase digest, in UTF-16 code units (what `String.length` counts). */
export const DEFAULT_DIGEST_CHARS = 1500;

/** Input of {@link phaseDigest}. */
export interface PhaseDigestInput {
  /** The phase being digested (its id and title head the digest and seed the salience terms). */
  phase: PlanPhase;
  /** The run's goal; its words make lines salient. */
  goal?: string;
  /** The latest attempt of each of the phase's tasks (see `latestAttempts`). */
  records: AgentRecord[];
  /** Hard cap on the digest's length in UTF-16 code units; default {@link DEFAULT_DIGEST_CHARS}. */
  maxChars?: number;
}

/** Longest line quoted from an output. */
const LINE_MAX = 180;
/** Longest task label. */
const LABEL_MAX = 40;
/** Longest compact rendering of a structured result. */
const STRUCTURED_MAX = 220;
/** Longest failure cause. */
const CAUSE_MAX = 200;
/** Share of the body failures may take while there are output lines to show too. */
const FAILURE_SHARE = 0.4;
/** Continuation indent of a task's second and later lines. */
const INDENT = '  ';
/** A clipped entry shorter than this is not worth showing. */
const MIN_CLIPPED = 40;

/** Score a line needs to be shown as a task's second or later line. */
const MIN_EXTRA_SCORE = 0.75;
/** Scanned characters across all outputs of a phase, shared among them. */
const SCAN_TOTAL = 8 * 1024 * 1024;
/** Candidate lines across all outputs of a phase, shared among them. */
const CANDIDATES_TOTAL = 40_000;

const STOPWORDS = new Set(
  (
    'a an and are as at be been but by can could did do does for from had has have how i if in into is ' +
    'it its it\'s let me my no not of on or our out over should so some such than that the their them then ' +
    'there these they this those to up us was we were what when where which while who why will with would ' +
    'you your all any each every more most other same both only own very just also about after again ' +
    'against before below between during further here once under until off too few per via use using'
  ).split(' '),
);

const FINDING_WORDS =
  /\b(errors?|fail\w*|exceptions?|warn\w*|found|total|missing|bugs?|vulnerab\w*|critical|results?|summary|conclusions?|recommend\w*|fixed|broken|todo|fixme|issues?|risks?)\b/i;
const FILLER =
  /^(sure|okay|ok|certainly|of course|great|thanks|thank you|here(?:'s| is| are)|let me|let's|i(?:'ll| will|'ve| have| am|'m| think)|hope this|feel free|happy to|as requested|below is)\b/i;
const KEY_VALUE = /^[\p{L}\p{N} _./-]{1,40}:\s+\S/u;
const PATH_LIKE = /[\w.-]+\/[\w.-]+|\b[\w-]+\.[a-z]{1,5}:\d+/;
const NOTHING_FOUND = /\b(?:0|no|none|zero)\s+(?:\w+\s+)?(?:bugs?|issues?|errors?|problems?|findings?|warnings?|failures?|vulnerabilit\w*)\b/i;
const PUNCT_ONLY = /^[\s\p{P}\p{S}]*$/u;

/** Reduces a word to a crude stem so `vulnerabilities` meets `vulnerability`, `failed` meets `fails`. */
function stem(word: string): string {
  if (word.length > 5 && word.endsWith('ies')) return word.slice(0, -3) + 'y';
  if (word.length > 5 && word.endsWith('ing')) return word.slice(0, -3);
  if (word.length > 4 && word.endsWith('ed')) return word.slice(0, -2);
  if (word.length > 3 && word.endsWith('s') && !word.endsWith('ss')) return word.slice(0, -1);
  return word;
}

/** Distinct stems of the words of `text`, without stopwords and one-letter words. */
function termsOf(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.toLowerCase().matchAll(/[\p{L}\p{N}]+/gu)) {
    const w = m[0];
    if (w.length < 2 || STOPWORDS.has(w)) continue;
    out.add(stem(w));
  }
  return [...out];
}

/** A line (or a structured result, or a note) that may go into the digest. */
interface Candidate {
  /** Index of the record it comes from. */
  rec: number;
  /** Position in its output (structured results come first). */
  pos: number;
  text: string;
  terms: string[];
  score: number;
  /** Whether it stands for a line of the output (counted in "N more lines"). */
  isLine: boolean;
}

/**
 * Compact one-line rendering of a structured result: keys and short values, long strings clipped,
 * long arrays and objects counted, nesting below two levels elided. Never longer than `max`.
 */
export function summarizeStructured(value: unknown, max = STRUCTURED_MAX): string {
  return clip(renderValue(value, 0), max);
}

function renderValue(value: unknown, depth: number): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return JSON.stringify(clip(cleanLine(value), 48));
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return String(value);
  }
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    if (depth >= 2) return `[${value.length} items]`;
    const shown = value.slice(0, 3).map((v) => renderValue(v, depth + 1));
    const more = value.length > 3 ? `, +${value.length - 3} more` : '';
    return `[${shown.join(', ')}${more}]`;
  }
  if (typeof value === 'object') {
    const keys = Object.keys(value as object);
    if (keys.length === 0) return '{}';
    if (depth >= 2) return `{${keys.length} keys}`;
    const shown = keys
      .slice(0, 6)
      .map((k) => `${clip(cleanLine(k), 24)}: ${renderValue((value as Record<string, unknown>)[k], depth + 1)}`);
    const more = keys.length > 6 ? `, +${keys.length - 6} keys` : '';
    return `{${shown.join(', ')}${more}}`;
  }
  return typeof value;
}

/** Display form of a candidate line: cleaned, heading marks and bullets dropped, clipped. */
function displayLine(raw: string): { text: string; heading: boolean } {
  let text = cleanLine(raw);
  const heading = /^#{1,6}\s+\S/.test(text);
  if (heading) text = text.replace(/^#{1,6}\s+/, '').replace(/\s+#+$/, '');
  text = text.replace(/^(?:[-*•+]|>)\s+/, '');
  return { text: clip(text, LINE_MAX), heading };
}

/** Splits an output into the lines worth scoring: a head and tail window of huge outputs. */
function windowLines(output: string, scanChars: number, maxLines: number): string[] {
  let lines: string[];
  if (output.length > scanChars) {
    const headLen = Math.floor(scanChars * 0.75);
    const head = normalizeNewlines(output.slice(0, headLen)).split('\n');
    const tail = normalizeNewlines(output.slice(output.length - (scanChars - headLen))).split('\n');
    // The last line of the head and the first of the tail are cut mid-line.
    head.pop();
    tail.shift();
    lines = head.concat(tail);
  } else {
    lines = normalizeNewlines(output).split('\n');
  }
  if (lines.length > maxLines) {
    const headCount = Math.ceil(maxLines * 0.7);
    lines = lines.slice(0, headCount).concat(lines.slice(lines.length - (maxLines - headCount)));
  }
  return lines;
}

/** Header line: phase id (and title when it says more), task count and counts per status. */
function headerLine(phase: PlanPhase, records: readonly AgentRecord[]): string {
  const planned = phase.taskRefs?.length ?? 0;
  const total = Math.max(planned, records.length);
  const title = cleanLine(phase.title ?? '');
  const name = title && title !== phase.id ? `${phase.id} (${clip(title, 60)})` : phase.id;
  const tasks = `${total} task${total === 1 ? '' : 's'}`;
  if (records.length === 0) {
    return `${name} — ${tasks}: ${total === 0 ? 'nothing to digest' : 'none finished yet'}`;
  }
  // The same counts and words as status and the report: tasks without a record are pending.
  const states: TaskState[] = records.map((r) => taskStateOf(r));
  for (let i = records.length; i < total; i++) states.push('pending');
  return `${name} — ${tasks}: ${describeCounts(countTasks(states), { of: false })}`;
}

/** The "what was left out" line. */
function trailerLine(moreLines: number, moreOutputs: number, moreFailures: number): string {
  const parts: string[] = [];
  if (moreLines > 0) {
    parts.push(`${moreLines} more line${moreLines === 1 ? '' : 's'} in ${moreOutputs} output${moreOutputs === 1 ? '' : 's'}`);
  }
  if (moreFailures > 0) parts.push(`${moreFailures} more failure${moreFailures === 1 ? '' : 's'}`);
  return `… (${parts.join(', ')}; query_workflow / fanfold query)`;
}

/**
 * Digest of one phase: a header with counts, then the most salient output lines (fair share per
 * task), compact structured results, and failures grouped by cause; at most `maxChars` code units,
 * ending with a "… (N more lines in M outputs; query_workflow / fanfold query)" line when anything
 * was left out. Deterministic: the same input always gives the same digest.
 */
export function phaseDigest(input: PhaseDigestInput): string {
  const { phase, records } = input;
  const maxChars = Math.max(0, Math.floor(input.maxChars ?? DEFAULT_DIGEST_CHARS));
  const header = headerLine(phase, records);
  if (records.length === 0) return clip(header, maxChars);

  const labels = records.map((r) => clip(cleanLine(r.taskId) || '?', LABEL_MAX));
  const query = new Set(termsOf(`${phase.id.replace(/[-_.]/g, ' ')} ${phase.title ?? ''} ${input.goal ?? ''}`));

  // 1. Candidate lines, with per-output counts of non-empty lines (for the trailer).
  const scanChars = Math.max(8 * 1024, Math.min(256 * 1024, Math.floor(SCAN_TOTAL / records.length)));
  const maxLines = Math.max(30, Math.min(8000, Math.floor(CANDIDATES_TOTAL / records.length)));
  const lineCounts: number[] = [];
  const candidates: Candidate[] = [];
  const seen = new Set<string>();
  records.forEach((record, rec) => {
    const output = typeof record.output === 'string' ? record.output : '';
    if (record.structured !== undefined && record.structured !== null) {
      const text = `result: ${summarizeStructured(record.structured)}`;
      candidates.push({ rec, pos: -1, text, terms: termsOf(text), score: 0, isLine: false });
    }
    if (output && looksBinary(output)) {
      lineCounts.push(0);
      const size = formatBytes(record.outputBytes || utf8Bytes(output));
      candidates.push({ rec, pos: 0, text: `[binary-looking output, ${size}, not quoted]`, terms: [], score: 0, isLine: false });
      return;
    }
    lineCounts.push(countNonEmptyLines(output));
    const lines = windowLines(output, scanChars, maxLines);
    for (let pos = 0; pos < lines.length; pos++) {
      const raw = lines[pos]!;
      if (raw.trim().length < 3 || junkRatio(raw) > 0.1) continue;
      const { text, heading } = displayLine(raw);
      if (text.length < 3 || PUNCT_ONLY.test(text)) continue;
      // A bare heading ("Summary", "## Findings") says nothing on its own.
      if (heading && !/\d/.test(text) && text.split(/\s+/).length < 3) continue;
      const key = text.toLowerCase();
      if (seen.has(key)) continue;
      seen.add(key);
      const candidate: Candidate = { rec, pos, text, terms: termsOf(text), score: 0, isLine: true };
      candidate.score = (heading ? 0.5 : 0) + (pos >= lines.length * 0.8 ? 0.3 : 0);
      candidates.push(candidate);
    }
  });

  // 2. Scores. idf is normalized to 0..1 (1 = a term on one line only); a goal term adds 1.5 × (0.5 +
  //    idf), so any goal word lifts a line and a rare one more; features add fixed amounts on top.
  const df = new Map<string, number>();
  for (const c of candidates) for (const t of c.terms) df.set(t, (df.get(t) ?? 0) + 1);
  const n = Math.max(1, candidates.length);
  const maxIdf = Math.log(1 + n);
  const idf = (t: string): number => Math.log(1 + n / (df.get(t) ?? 1)) / maxIdf;
  for (const c of candidates) {
    let q = 0;
    let sum = 0;
    for (const t of c.terms) {
      const w = idf(t);
      sum += w;
      // Any goal word counts; a rare one counts more.
      if (query.has(t)) q += 0.5 + w;
    }
    const distinct = c.terms.length ? sum / c.terms.length : 0;
    let s = c.score + 1.5 * q + distinct;
    if (/\d/.test(c.text)) s += 1;
    if (FINDING_WORDS.test(c.text)) s += 1.5;
    if (KEY_VALUE.test(c.text)) s += 1;
    if (PATH_LIKE.test(c.text)) s += 0.5;
    if (NOTHING_FOUND.test(c.text)) s -= 0.75;
    if (c.text.length < 15) s -= 1;
    if (FILLER.test(c.text)) s -= 2;
    if (!c.isLine) s = c.pos < 0 ? s + 3 : -1;
    c.score = s;
  }

  // 3. Failures grouped by status and cause, biggest groups first.
  const groups = new Map<string, { status: string; cause: string; recs: number[] }>();
  records.forEach((record, rec) => {
    if (record.status === 'succeeded') return;
    const status = STATUS_LABELS.find(([s]) => s === record.status)?.[1] ?? cleanLine(String(record.status));
    const cause = failureCause(record, CAUSE_MAX) || 'no cause recorded';
    const key = `${status}\u0000${cause}`;
    const group = groups.get(key) ?? { status, cause, recs: [] };
    group.recs.push(rec);
    groups.set(key, group);
  });
  const failureEntries = [...groups.values()]
    .map((g, order) => ({ ...g, order }))
    .sort((a, b) => b.recs.length - a.recs.length || a.order - b.order)
    .map((g) => {
      if (g.recs.length === 1) return `✗ ${labels[g.recs[0]!]} ${g.status}: ${g.cause}`;
      const names = g.recs.slice(0, 3).map((r) => labels[r]).join(', ');
      const more = g.recs.length > 3 ? ` +${g.recs.length - 3}` : '';
      return `✗ ${g.recs.length} ${g.status} (${names}${more}): ${g.cause}`;
    });

  // 4. Budgets. The trailer is reserved at its longest possible length so it always fits.
  const totalLines = lineCounts.reduce((a, b) => a + b, 0);
  const reserve = trailerLine(Math.max(totalLines, 1), records.length, failureEntries.length).length + 1;
  let body = maxChars - header.length - 1 - reserve;
  if (body <= 0) return finishTiny(header, maxChars, totalLines, lineCounts, failureEntries.length);

  const perRecord: Candidate[][] = records.map(() => []);
  for (const c of candidates) perRecord[c.rec]!.push(c);
  for (const list of perRecord) list.sort((a, b) => b.score - a.score || a.pos - b.pos);

  const failureNeed = failureEntries.reduce((sum, e) => sum + e.length + 1, 0);
  let failureBudget = candidates.length > 0 ? Math.min(failureNeed, Math.floor(body * FAILURE_SHARE)) : body;
  const shownFailures: string[] = [];
  const takeFailures = (): void => {
    for (let i = shownFailures.length; i < failureEntries.length; i++) {
      const entry = failureEntries[i]!;
      if (entry.length + 1 <= failureBudget) {
        shownFailures.push(entry);
        failureBudget -= entry.length + 1;
      } else if (failureBudget - 1 >= MIN_CLIPPED) {
        shownFailures.push(clip(entry, failureBudget - 1));
        failureBudget = 0;
        break;
      } else {
        break;
      }
    }
  };
  takeFailures();
  // What the first pass did not use stays in the body for output lines.
  body -= shownFailures.reduce((sum, e) => sum + e.length + 1, 0);
  failureBudget = 0;

  // 5. Round-robin over tasks: round r offers each task's r-th best candidate, best first.
  const picked: Candidate[] = [];
  const pickedPerRecord = new Map<number, number>();
  const pickedText = new Map<Candidate, string>();
  let remaining = body;
  const prefixOf = (rec: number): string => `▸ ${labels[rec]}: `;
  outer: for (let round = 0; remaining > 0; round++) {
    const offers: Candidate[] = [];
    for (const list of perRecord) if (list[round]) offers.push(list[round]!);
    if (offers.length === 0) break;
    offers.sort((a, b) => b.score - a.score || a.rec - b.rec);
    for (const c of offers) {
      // Past each task's best line, only lines that carry something (bland prose scores below).
      if (round > 0 && c.score < MIN_EXTRA_SCORE) continue;
      const lead = pickedPerRecord.has(c.rec) ? INDENT.length : prefixOf(c.rec).length;
      const cost = lead + c.text.length + 1;
      let text = c.text;
      if (cost > remaining) {
        const room = remaining - lead - 1;
        if (room < MIN_CLIPPED) continue;
        text = clip(c.text, room);
      }
      picked.push(c);
      pickedText.set(c, text);
      pickedPerRecord.set(c.rec, (pickedPerRecord.get(c.rec) ?? 0) + 1);
      remaining -= lead + text.length + 1;
      if (remaining < 8) break outer;
    }
  }

  // 6. Room left over goes back to failures.
  failureBudget = remaining;
  takeFailures();

  // 7. Layout: tasks in input order, lines in output order, failures after.
  picked.sort((a, b) => a.rec - b.rec || a.pos - b.pos);
  const out: string[] = [header];
  let lastRec = -1;
  for (const c of picked) {
    const text = pickedText.get(c)!;
    out.push(c.rec === lastRec ? INDENT + text : prefixOf(c.rec) + text);
    lastRec = c.rec;
  }
  out.push(...shownFailures);

  const shownLinesPerRecord = new Map<number, number>();
  for (const c of picked) if (c.isLine) shownLinesPerRecord.set(c.rec, (shownLinesPerRecord.get(c.rec) ?? 0) + 1);
  let moreLines = 0;
  let moreOutputs = 0;
  lineCounts.forEach((count, rec) => {
    const rest = count - (shownLinesPerRecord.get(rec) ?? 0);
    if (rest > 0) {
      moreLines += rest;
      moreOutputs++;
    }
  });
  const moreFailures = failureEntries.length - shownFailures.length;
  if (moreLines > 0 || moreFailures > 0) out.push(trailerLine(moreLines, moreOutputs, moreFailures));
  return enforceCap(out, maxChars);
}

/** When the cap leaves no room for a body: the header, and the trailer if both fit. */
function finishTiny(
  header: string,
  maxChars: number,
  totalLines: number,
  lineCounts: readonly number[],
  failures: number,
): string {
  const outputs = lineCounts.filter((c) => c > 0).length;
  if (totalLines === 0 && failures === 0) return clip(header, maxChars);
  const withTrailer = `${header}\n${trailerLine(totalLines, outputs, failures)}`;
  return withTrailer.length <= maxChars ? withTrailer : clip(header, maxChars);
}

/**
 * Last line of defence for the hard cap: joins lines, and should the result be too long (it cannot
 * by construction), drops whole lines from the end, keeping the header.
 */
function enforceCap(lines: string[], maxChars: number): string {
  let text = lines.join('\n');
  while (text.length > maxChars && lines.length > 1) {
    lines.pop();
    text = lines.join('\n');
  }
  return text.length > maxChars ? clip(text, maxChars) : text;
}

/** Input of {@link phaseDigests}. */
export interface PhaseDigestsInput {
  /** Phases to digest, in plan order. */
  phases: PlanPhase[];
  goal?: string;
  /** Latest attempt per task, any phase (see `latestAttempts`). */
  records: AgentRecord[];
  maxChars?: number;
}

/** Extractive digests of several phases at once, keyed by phase id (records grouped by `phaseId`). */
export function phaseDigests(input: PhaseDigestsInput): Record<string, string> {
  const byPhase = new Map<string, AgentRecord[]>();
  for (const r of input.records) {
    const list = byPhase.get(r.phaseId) ?? [];
    list.push(r);
    byPhase.set(r.phaseId, list);
  }
  const out: Record<string, string> = {};
  for (const phase of input.phases) {
    out[phase.id] = phaseDigest({
      phase,
      goal: input.goal,
      records: byPhase.get(phase.id) ?? [],
      maxChars: input.maxChars,
    });
  }
  return out;
}
