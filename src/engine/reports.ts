/**
 * Writes a run's report.md and report.html from its records. Called by the owner when a run
 * ends; `fanfold report` calls it too for runs whose owner died before writing them.
 */
import path from 'node:path';
import { RunStore, writeTextAtomic } from '../store/index.js';
import type { AgentRecord, RunRecord } from '../store/types.js';
import { latestAttempts, pausesOf, renderReportHtml, renderReportMarkdown, type Pause } from '../digest/index.js';
import { resolveStoreRoot } from '../store/index.js';
import { cliCommand } from '../install/invocation.js';

/**
 * The commands a run's report prints, runnable from the run's project folder: `npx fanfold …` in
 * fanfold's clone, `fanfold …` when installed (install/invocation.ts), with `--store` when the
 * run's store is not the one found from there by default.
 */
export function reportHint(run: RunRecord, storeDir: string): (args: readonly string[]) => string {
  const cwd = run.cwd || process.cwd();
  let byDefault: string | undefined;
  try {
    byDefault = resolveStoreRoot({ env: process.env, cwd });
  } catch {
    byDefault = undefined;
  }
  const root = path.dirname(storeDir);
  const rel = path.relative(cwd, root);
  const shown = rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : root;
  return (args) => cliCommand(args, { cwd, store: shown, defaultStore: byDefault ?? root });
}

/** File names of the reports in a run directory. */
export const REPORT_MD = 'report.md';
export const REPORT_HTML = 'report.html';

/** Renders both reports of a run; records of tasks no longer in the plan are left out. */
export function renderReports(
  run: RunRecord,
  records: AgentRecord[],
  hint?: (args: readonly string[]) => string,
  pauses: Pause[] = [],
): { markdown: string; html: string } {
  const refs = new Set(run.plan.tasks.map((t) => t.ref));
  const keyOf = new Map(run.plan.tasks.map((t) => [t.ref, t.key]));
  const mine = records.filter((r) => refs.has(`${r.phaseId}/${r.taskId}`));
  // A resumed run with a changed spec may hold records of an older version of a task: the
  // latest attempt with the current key is the one that speaks for it.
  const current = mine.filter((r) => keyOf.get(`${r.phaseId}/${r.taskId}`) === r.key);
  const digests: Record<string, string> = {};
  for (const p of run.phases) if (p.digest) digests[p.id] = p.digest;
  const markdown = renderReportMarkdown({ run, latest: latestAttempts(current), digests, attempts: mine, ...(hint ? { hint } : {}) });
  const html = renderReportHtml({ run, records: mine, markdown, pauses });
  return { markdown, html };
}

/** Renders and writes report.md and report.html (atomically); returns their paths. */
export async function writeReports(
  store: RunStore,
  run: RunRecord,
  render?: (run: RunRecord, records: AgentRecord[], storeDir: string, pauses: Pause[]) => Promise<{ markdown: string; html: string }>,
): Promise<{ md: string; html: string }> {
  const { records } = await store.listAgentRecords();
  // `render`: the owner's rendering worker (offload.ts), so a big run's report never blocks the
  // owner's event loop; a failure there renders here.
  const hint = reportHint(run, store.dir);
  // The journal says when the run was stopped and resumed: the timeline marks those gaps.
  const { events } = await store.readJournal();
  const pauses = pausesOf(events);
  const { markdown, html } = render
    ? await render(run, records, store.dir, pauses).catch(() => renderReports(run, records, hint, pauses))
    : renderReports(run, records, hint, pauses);
  const md = path.join(store.dir, REPORT_MD);
  const htmlPath = path.join(store.dir, REPORT_HTML);
  // The store's fence: an owner that lost its lease writes no report (a store without a lease,
  // as `fanfold report` opens it, has none).
  await writeTextAtomic(md, markdown, { fence: store.fence });
  await writeTextAtomic(htmlPath, html, { fence: store.fence });
  return { md, html: htmlPath };
}
