/**
 * The live progress view of `fanfold run` and `fanfold status --wait`: phases with bars, the
 * agents running now, done/failed counts and elapsed time. On a terminal it redraws in place
 * (stderr); elsewhere it prints a line when the counts change, at most once a second.
 */
import { createLogUpdate } from 'log-update';
import type { Counts, DynamicState, RunRecord } from '../store/types.js';
import { describeCounts, emptyCounts, endedCount } from '../store/counts.js';
import { fmtMs } from '../engine/say.js';
import { dynamicSummaries, dynamicSummary } from '../digest/report-md.js';

/** What the view draws; both an owner snapshot and a status answer fit. */
export interface ProgressModel {
  runId: string;
  name: string;
  status: string;
  phases: {
    id: string;
    status: string;
    counts?: Counts;
    total?: number;
    succeeded?: number;
    failed?: number;
    skipped?: number;
    running?: number;
    pending?: number;
    checkFailed?: number;
    cancelled?: number;
    /** What a dynamic phase did so far (items, verdicts, gate, rounds, merge). */
    dynamic?: DynamicState;
  }[];
  totals?: Counts;
  agents?: Counts;
  running?: { ref: string; attempt: number; startedAt: number }[];
  elapsedMs: number;
}

const MAX_RUNNING_SHOWN = 8;
/** Width used when the stream does not say (not a terminal, or a terminal that reports none). */
export const DEFAULT_COLUMNS = 80;
/** Height used when the terminal does not say. */
const DEFAULT_ROWS = 24;

function countsOf(p: ProgressModel['phases'][number]): Counts {
  return p.counts ?? {
    total: p.total ?? 0, succeeded: p.succeeded ?? 0, failed: p.failed ?? 0,
    skipped: p.skipped ?? 0, running: p.running ?? 0, pending: p.pending ?? 0,
    ...(p.checkFailed !== undefined ? { checkFailed: p.checkFailed } : {}),
    ...(p.cancelled !== undefined ? { cancelled: p.cancelled } : {}),
  };
}

function bar(c: Counts, width: number): string {
  if (c.total === 0) return '·'.repeat(width);
  const done = Math.round((endedCount(c) / c.total) * width);
  return '█'.repeat(done) + '░'.repeat(width - done);
}

/** `line` cut to `width` characters, with `…` where it was cut. */
export function fitLine(line: string, width: number): string {
  const chars = [...line];
  if (chars.length <= width) return line;
  return chars.slice(0, Math.max(0, width - 1)).join('') + '…';
}

/**
 * Renders the view as lines of text (no colours, so logs stay readable), every line at most
 * `columns` characters wide: a line that would wrap makes the in-place redraw scroll.
 */
export function renderProgress(m: ProgressModel, now = Date.now(), columns = DEFAULT_COLUMNS): string {
  const width = Math.max(20, columns);
  const totals = m.totals ?? m.agents ?? emptyCounts();
  const lines = [`run ${m.runId}  ${m.status}  ${fmtClock(m.elapsedMs)}  ${m.name}`];
  const idWidth = Math.min(16, Math.max(...m.phases.map((p) => p.id.length), 5));
  const rows = m.phases.map((p) => {
    const c = countsOf(p);
    return {
      p,
      c,
      id: p.id.length > idWidth ? `${p.id.slice(0, idWidth - 1)}…` : p.id.padEnd(idWidth),
      fin: `${endedCount(c)}/${c.total}`,
      words: describeCounts({ ...c, pending: 0 }, { short: true, of: false }),
    };
  });
  const finWidth = Math.max(0, ...rows.map((r) => r.fin.length));
  const statusWidth = Math.max(0, ...rows.map((r) => r.p.status.length));
  const wordsWidth = Math.max(0, ...rows.map((r) => r.words.length));
  // One bar width for every phase (the bars line up); it gives way first, down to 6 cells, then
  // the words at the end of the line are cut.
  const barWidth = Math.max(6, Math.min(20, width - (2 + idWidth + 1 + 1 + finWidth + 2 + statusWidth + 2 + Math.min(wordsWidth, 28))));
  for (const { p, c, id, fin, words } of rows) {
    lines.push(`  ${id} ${bar(c, barWidth)} ${fin.padStart(finWidth)}  ${p.status.padEnd(statusWidth)}  ${words}`);
    const dyn = dynamicSummary(p.dynamic);
    if (dyn) lines.push(`  ${' '.repeat(idWidth)} ↳ ${dyn}`);
  }
  const running = m.running ?? [];
  if (running.length) {
    lines.push(`  running now (${running.length}):`);
    for (const r of running.slice(0, MAX_RUNNING_SHOWN)) {
      lines.push(`    ${fmtMs(Math.max(0, now - r.startedAt)).padStart(6)}  ${r.ref}${r.attempt > 1 ? ` (attempt ${r.attempt})` : ''}`);
    }
    if (running.length > MAX_RUNNING_SHOWN) lines.push(`    … and ${running.length - MAX_RUNNING_SHOWN} more`);
  }
  lines.push(`  agents ${endedCount(totals)}/${totals.total} done: ${describeCounts(totals, { short: true, of: false })}`);
  return lines.map((l) => fitLine(l, width)).join('\n');
}

/**
 * `summary` (see cli/shared.ts `summaryText`) with one line under each dynamic phase saying what it
 * did: `    ↳ 3/5 items (2 dropped: forEach.max 3); verified 6 findings: 3 confirmed, 3 refuted`.
 */
export function withDynamicLines(summary: string, run: Pick<RunRecord, 'plan' | 'phases'>): string {
  const lines = new Map(dynamicSummaries(run).map((x) => [x.phaseId, x.summary]));
  if (lines.size === 0) return summary;
  return summary
    .split('\n')
    .flatMap((line) => {
      const m = /^  phase (\S+): /.exec(line);
      const dyn = m ? lines.get(m[1]!) : undefined;
      return dyn ? [line, `    ↳ ${dyn}`] : [line];
    })
    .join('\n');
}

/** mm:ss or h:mm:ss. */
export function fmtClock(ms: number): string {
  const s = Math.floor(ms / 1000);
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  const two = (n: number) => String(n).padStart(2, '0');
  return hh ? `${hh}:${two(mm)}:${two(ss)}` : `${two(mm)}:${two(ss)}`;
}

/** A progress view bound to a stream; `update` is cheap to call often. */
export class ProgressView {
  readonly #tty: boolean;
  readonly #out: NodeJS.WriteStream;
  readonly #draw: ReturnType<typeof createLogUpdate> | undefined;
  #last?: ProgressModel;
  #lastLine = '';
  #lastPrint = 0;
  #timer?: NodeJS.Timeout;

  constructor(out: NodeJS.WriteStream = process.stderr, opts: { quiet?: boolean } = {}) {
    this.#out = out;
    this.#tty = Boolean(out.isTTY) && !opts.quiet;
    // log-update wraps at the stream's `columns` and keeps its last `rows` lines; a terminal that
    // reports 0 for either (unknown size) would have every character wrapped, or every line cut.
    // It draws through a view of the stream whose size falls back to 80 × 24.
    const sized = {
      write: (chunk: string) => out.write(chunk),
      get columns() {
        return out.columns > 0 ? out.columns : DEFAULT_COLUMNS;
      },
      get rows() {
        return out.rows > 0 ? out.rows : DEFAULT_ROWS;
      },
    };
    this.#draw = this.#tty ? createLogUpdate(sized as unknown as NodeJS.WriteStream) : undefined;
    // Redraw on a terminal once a second so elapsed times move even when nothing happens.
    if (this.#tty) this.#timer = setInterval(() => this.#last && this.#render(this.#last), 1000).unref();
  }

  /** Shows a new model. */
  update(m: ProgressModel): void {
    this.#last = m;
    this.#render(m);
  }

  #held = false;

  /**
   * Stops (true) or resumes (false) drawing, e.g. while a question waits for an answer on the
   * same terminal; the last frame stays on screen and drawing starts afresh below it.
   */
  hold(on: boolean): void {
    if (on && !this.#held) this.#draw?.done();
    this.#held = on;
  }

  #render(m: ProgressModel) {
    if (this.#held) return;
    if (this.#draw) {
      this.#draw(renderProgress(m, Date.now(), this.#columns()));
      return;
    }
    const t = m.totals ?? m.agents;
    if (!t) return;
    const line = `[${fmtClock(m.elapsedMs)}] ${m.runId} ${m.status}: ${endedCount(t)}/${t.total} done — ${describeCounts(t, { of: false })}`;
    const now = Date.now();
    if (line === this.#lastLine) return;
    if (now - this.#lastPrint < 1000 && m.status === 'running') return;
    this.#lastLine = line;
    this.#lastPrint = now;
    this.#out.write(line + '\n');
  }

  /** The terminal's width now (it may be resized), else {@link DEFAULT_COLUMNS}. */
  #columns(): number {
    return this.#out.columns > 0 ? this.#out.columns : DEFAULT_COLUMNS;
  }

  #closed = false;

  /** Draws the final state and releases the terminal; later calls do nothing. */
  done(m?: ProgressModel): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    if (m) this.#last = m;
    if (this.#draw) {
      if (this.#last) this.#draw(renderProgress(this.#last, Date.now(), this.#columns()));
      this.#draw.done();
    } else if (this.#last) {
      this.#out.write(renderProgress(this.#last, Date.now(), this.#columns()) + '\n');
    }
  }
}

