/**
 * Writes a run's report.md and report.html from its records. Called by the owner when a run
 * ends; `fanfold report` calls it too for runs whose owner died before writing them.
 */
import path from 'node:path';
import { RunStore, writeTextAtomic } from '../store/index.js';
import type { AgentRecord, RunRecord } from '../store/types.js';
import { latestAttempts, renderReportHtml, renderReportMarkdown } from '../digest/index.js';

/** File names of the reports in a run directory. */
export const REPORT_MD = 'report.md';
export const REPORT_HTML = 'report.html';

/** Renders both reports of a run; records of tasks no longer in the plan are left out. */
export function renderReports(run: RunRecord, records: AgentRecord[]): { markdown: string; html: string } {
  const refs = new Set(run.plan.tasks.map((t) => t.ref));
  const keyOf = new Map(run.plan.tasks.map((t) => [t.ref, t.key]));
  const mine = records.filter((r) => refs.has(`${r.phaseId}/${r.taskId}`));
  // A resumed run with a changed spec may hold records of an older version of a task: the
  // latest attempt with the current key is the one that speaks for it.
  const current = mine.filter((r) => keyOf.get(`${r.phaseId}/${r.taskId}`) === r.key);
  const digests: Record<string, string> = {};
  for (const p of run.phases) if (p.digest) digests[p.id] = p.digest;
  const markdown = renderReportMarkdown({ run, latest: latestAttempts(current), digests, attempts: mine });
  const html = renderReportHtml({ run, records: mine, markdown });
  return { markdown, html };
}

/** Renders and writes report.md and report.html (atomically); returns their paths. */
export async function writeReports(
  store: RunStore,
  run: RunRecord,
  render?: (run: RunRecord, records: AgentRecord[]) => Promise<{ markdown: string; html: string }>,
): Promise<{ md: string; html: string }> {
  const { records } = await store.listAgentRecords();
  // `render`: the owner's rendering worker (offload.ts), so a big run's report never blocks the
  // owner's event loop; a failure there renders here.
  const { markdown, html } = render ? await render(run, records).catch(() => renderReports(run, records)) : renderReports(run, records);
  const md = path.join(store.dir, REPORT_MD);
  const htmlPath = path.join(store.dir, REPORT_HTML);
  await writeTextAtomic(md, markdown);
  await writeTextAtomic(htmlPath, html);
  return { md, html: htmlPath };
}
