/**
 * Commands over what runs left behind: `query` (BM25 search across runs, or one output by ref)
 * and `report` (a run's report.md, or the path of its timeline report.html).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { readRef, searchStore } from '../search/index.js';
import { RunStore } from '../store/index.js';
import { AGENT_STATUSES, type AgentStatus } from '../store/types.js';
import { REPORT_HTML, REPORT_MD, writeReports } from '../engine/reports.js';
import { readStatus } from '../engine/status.js';
import { UsageError } from './errors.js';
import { commandHint, printJson, storeRoot } from './shared.js';

const STATUSES: readonly AgentStatus[] = AGENT_STATUSES;

function int(v: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag}: expected a whole number from ${min} to ${max}, got '${v}'`);
  return n;
}

/** Registers query and report. */
export function registerMemoryCommands(program: Command): void {
  program
    .command('query')
    .description('search every agent output of every run (BM25); --ref reads one output whole, paged')
    .argument('[text...]', 'what to look for')
    .option('--run <id>', 'only this run')
    .option('--phase <id>', 'only this phase')
    .option('--status <status>', `only tasks with this status (${STATUSES.join(', ')})`)
    .option('--prefix', 'let terms match words they begin')
    .option('--fuzzy', 'let terms match words within a small edit distance')
    .option('--limit <n>', 'hits per page (1–50, default 10)')
    .option('--offset <n>', 'hits to skip')
    .option('--ref <ref>', 'read one output: <runId>/<phaseId>/<taskId> (as the hits give it)')
    .option('--json', 'print JSON ({hits, total} or {ref, text, nextOffset})')
    .action(async (words: string[], o: { run?: string; phase?: string; status?: string; prefix?: boolean; fuzzy?: boolean; limit?: string; offset?: string; ref?: string; json?: boolean }) => {
      const root = storeRoot(program);
      if (o.ref) {
        const offset = int(o.offset, '--offset', 0, Number.MAX_SAFE_INTEGER);
        const page = await readRef(root, o.ref, { ...(offset !== undefined ? { offset } : {}), limit: int(o.limit, '--limit', 1, 40_000) ?? 40_000 });
        if (o.json) return printJson(page);
        process.stdout.write(page.text + (page.text.endsWith('\n') ? '' : '\n'));
        if (page.nextOffset !== null) process.stderr.write(`(more: ${commandHint(program)(['query', '--ref', page.ref, '--offset', String(page.nextOffset)])})\n`);
        return;
      }
      const text = words.join(' ').trim();
      if (!text) throw new UsageError('query: give the text to search for, or --ref <runId>/<phaseId>/<taskId>');
      if (o.status && !STATUSES.includes(o.status as AgentStatus)) throw new UsageError(`--status: expected one of ${STATUSES.join(', ')}, got '${o.status}'`);
      const limit = int(o.limit, '--limit', 1, 50);
      const offset = int(o.offset, '--offset', 0, Number.MAX_SAFE_INTEGER);
      const page = await searchStore(root, text, {
        ...(o.run ? { runId: o.run } : {}),
        ...(o.phase ? { phaseId: o.phase } : {}),
        ...(o.status ? { status: o.status as AgentStatus } : {}),
        ...(o.prefix ? { prefix: true } : {}),
        ...(o.fuzzy ? { fuzzy: true } : {}),
        ...(limit !== undefined ? { limit } : {}),
        ...(offset !== undefined ? { offset } : {}),
      });
      if (o.json) return printJson({ hits: page.hits, total: page.total, ...(page.skipped.length ? { skipped: page.skipped } : {}) });
      if (page.total === 0) {
        process.stdout.write(`no matches for '${text}' in ${page.runsSearched} run(s)\n`);
        return;
      }
      const from = (offset ?? 0) + 1;
      process.stdout.write(`${page.total} match(es); showing ${from}–${from + page.hits.length - 1}\n\n`);
      for (const h of page.hits) {
        const cut = h.indexedBytes !== undefined ? `, only the first ${Math.round(h.indexedBytes / 1024)} KiB searched` : '';
        process.stdout.write(`${h.ref}  [${h.status}, score ${h.score.toFixed(2)}${cut}]\n  ${h.snippet.replace(/\n/g, ' ')}\n\n`);
      }
      process.stdout.write(`read one whole:\n  ${commandHint(program)(['query', '--ref', page.hits[0]!.ref])}\n`);
      for (const s of page.skipped) process.stderr.write(`fanfold: run ${s.runId} not searched: ${s.error}\n`);
    });

  program
    .command('report')
    .description("print a run's report (Markdown), or with --html the path of its timeline page")
    .argument('<runId>', 'run id')
    .option('--html', 'print the path of report.html (one self-contained page with the timeline)')
    .action(async (runId: string, o: { html?: boolean }) => {
      const root = storeRoot(program);
      const store = await RunStore.open(root, runId);
      try {
        const status = await readStatus(root, runId);
        const md = path.join(store.dir, REPORT_MD);
        const html = path.join(store.dir, REPORT_HTML);
        // A run whose owner died, or one still running, has no final report: render one now
        // from the records (reports are derived data, so any session may write them).
        const exists = await fs.stat(md).then(() => true, () => false);
        if (!exists || status.status === 'running' || status.status === 'awaiting_approval' || status.status === 'interrupted') {
          const run = await store.readRun();
          await writeReports(store, { ...run, status: status.status, ...(status.reason ? { reason: status.reason } : {}), phases: run.phases, totals: status.agents });
        }
        if (o.html) process.stdout.write(html + '\n');
        else process.stdout.write(await fs.readFile(md, 'utf8'));
      } finally {
        await store.close();
      }
    });
}
