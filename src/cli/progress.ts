/**
 * The live progress view of `fanfold run` and `fanfold status --wait`: phases with bars, the
 * agents running now, done/failed counts and elapsed time. On a terminal it redraws in place
 * (stderr); elsewhere it prints a line when the counts change, at most once a second.
 */
import { createLogUpdate } from 'log-update';
import type { Counts, DynamicState, RunRecord } from '../store/types.js';
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
    /** What a dynamic phase did so far (items, verdicts, gate, rounds, merge). */
    dynamic?: DynamicState;
  }[];
  totals?: Counts;
  agents?: Counts;
  running?: { ref: string; attempt: number; startedAt: number }[];
  elapsedMs: number;
}

const MAX_RUNNING_SHOWN = 8;

function countsOf(p: ProgressModel['phases'][number]): Counts {
  return p.counts ?? {
    total: p.total ?? 0, succeeded: p.succeeded ?? 0, failed: p.failed ?? 0,
    skipped: p.skipped ?? 0, running: p.running ?? 0, pending: p.pending ?? 0,
  };
}

function bar(c: Counts, width = 20): string {
  if (c.total === 0) return '·'.repeat(width);
  const done = Math.round(((c.succeeded + c.failed + c.skipped) / c.total) * width);
  return '█'.repeat(done) + '░'.repeat(width - done);
}

/** Renders the view as lines of text (no colours, so logs stay readable). */
export function renderProgress(m: ProgressModel, now = Date.now()): string {
  const totals = m.totals ?? m.agents ?? { total: 0, succeeded: 0, failed: 0, skipped: 0, running: 0, pending: 0 };
  const lines = [`${m.name}  run ${m.runId}  ${m.status}  ${fmtClock(m.elapsedMs)}`];
  const idWidth = Math.min(24, Math.max(...m.phases.map((p) => p.id.length), 5));
  for (const p of m.phases) {
    const c = countsOf(p);
    const fin = c.succeeded + c.failed + c.skipped;
    lines.push(
      `  ${p.id.padEnd(idWidth).slice(0, idWidth)} ${bar(c)} ${String(fin).padStart(4)}/${c.total}` +
        `  ok ${c.succeeded}  failed ${c.failed}  skipped ${c.skipped}  running ${c.running}  ${p.status}`,
    );
    const dyn = dynamicSummary(p.dynamic);
    if (dyn) lines.push(`  ${' '.repeat(idWidth)} ↳ ${dyn}`);
  }
  const running = m.running ?? [];
  if (running.length) {
    lines.push(`  running now (${running.length}):`);
    for (const r of running.slice(0, MAX_RUNNING_SHOWN)) {
      lines.push(`    ${r.ref}${r.attempt > 1 ? ` (attempt ${r.attempt})` : ''}  ${fmtMs(Math.max(0, now - r.startedAt))}`);
    }
    if (running.length > MAX_RUNNING_SHOWN) lines.push(`    … and ${running.length - MAX_RUNNING_SHOWN} more`);
  }
  lines.push(
    `  agents: ${totals.succeeded + totals.failed + totals.skipped}/${totals.total} done` +
      ` (${totals.succeeded} ok, ${totals.failed} failed, ${totals.skipped} skipped), ${totals.running} running, ${totals.pending} pending`,
  );
  return lines.join('\n');
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
    this.#draw = this.#tty ? createLogUpdate(out) : undefined;
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
      this.#draw(renderProgress(m));
      return;
    }
    const t = m.totals ?? m.agents;
    if (!t) return;
    const line = `[${fmtClock(m.elapsedMs)}] ${m.runId} ${m.status}: ${t.succeeded + t.failed + t.skipped}/${t.total} done, ${t.failed} failed, ${t.running} running`;
    const now = Date.now();
    if (line === this.#lastLine) return;
    if (now - this.#lastPrint < 1000 && m.status === 'running') return;
    this.#lastLine = line;
    this.#lastPrint = now;
    this.#out.write(line + '\n');
  }

  #closed = false;

  /** Draws the final state and releases the terminal; later calls do nothing. */
  done(m?: ProgressModel): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    if (m) this.#last = m;
    if (this.#draw) {
      if (this.#last) this.#draw(renderProgress(this.#last));
      this.#draw.done();
    } else if (this.#last) {
      this.#out.write(renderProgress(this.#last) + '\n');
    }
  }
}

