/**
 * Commands that read runs: `status`, `list`, `show`.
 */
import type { Command } from 'commander';
import { RunStore, assertId, isFailedCheck } from '../store/index.js';
import type { AgentRecord, RunRecord } from '../store/types.js';
import { TERMINAL, formatSpend, listStatuses, readStatus, totalSpend, waitForStatus, type RunStatusView } from '../engine/status.js';
import { dynamicSummary } from '../digest/report-md.js';
import { ProgressView, fmtClock, withDynamicLines } from './progress.js';
import { UsageError } from './errors.js';
import { commandHint, printJson, storeRoot, summaryText } from './shared.js';
import { seconds } from './run.js';

/** Registers status, list and show. */
export function registerInspectCommands(program: Command): void {
  program
    .command('status')
    .description('status of a run (the newest when no id is given)')
    .argument('[runId]', 'run id')
    .option('--json', 'print JSON')
    .option('--wait [seconds]', 'wait (up to this long; without a value, until it ends or needs a person) for the run to end, showing progress')
    .action(async (runId: string | undefined, o: { json?: boolean; wait?: string | true }) => {
      const root = storeRoot(program);
      const id = runId ?? (await newestRunId(root, commandHint(program)(['run'])));
      let s: RunStatusView;
      if (o.wait !== undefined) {
        const view = o.json ? undefined : new ProgressView(process.stderr);
        const timeoutMs = o.wait === true ? Number.POSITIVE_INFINITY : seconds(o.wait, '--wait') * 1000;
        s = await waitForStatus(root, id, { timeoutMs, onTick: (x) => view?.update(x) });
        view?.done();
      } else {
        s = await readStatus(root, id);
      }
      const run = await readRunRecord(root, id);
      if (o.json) printJson(withDynamicJson(s, run));
      else process.stdout.write(withDynamicLines(summaryText(s, commandHint(program)), run) + '\n');
      // awaiting_approval is 1: the run needs a person and will not move by itself.
      process.exitCode = s.status === 'completed' || s.status === 'running' ? 0 : 1;
    });

  program
    .command('list')
    .description('runs in the store, newest first')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const listed = await listStatuses(storeRoot(program));
      // Every readable run carries its spend (nothing recorded: nothing spent), and the list its total.
      const runs = listed.map((r) => ('error' in r ? r : { ...r, spend: r.spend ?? { usd: 0, tokens: 0 } }));
      const spend = totalSpend(runs.map((r) => ('error' in r ? undefined : r.spend)));
      if (o.json) return printJson({ runs, spend });
      if (runs.length === 0) return void process.stdout.write(`no runs yet in ${storeRoot(program)}\n`);
      process.stdout.write(`${'RUN'.padEnd(14)} ${'STATUS'.padEnd(17)} ${'OK/TOTAL'.padStart(9)}  ${'ELAPSED'.padEnd(5)}  ${'SPENT'.padStart(22)}  ${'STARTED'.padEnd(24)}  NAME\n`);
      for (const r of runs) {
        if ('error' in r) process.stdout.write(`${r.runId.padEnd(14)} unreadable: ${r.error}\n`);
        else {
          const a = r.agents;
          process.stdout.write(
            `${r.runId.padEnd(14)} ${r.status.padEnd(17)} ${`${a.succeeded}/${a.total}`.padStart(9)}  ${fmtClock(r.elapsedMs)}  ${formatSpend(r.spend).padStart(22)}  ${r.startedAt}  ${r.name}\n`,
          );
        }
      }
      process.stdout.write(`total: ${formatSpend(spend)} over ${runs.length} run${runs.length === 1 ? '' : 's'} (as the agent CLIs reported it; Codex and Pi report no dollars)\n`);
    });

  program
    .command('show')
    .description("one agent's record and full output")
    .argument('<runId>', 'run id')
    .argument('<phaseId/taskId>', 'the task, as phase/task')
    .option('--attempt <n>', 'a given attempt instead of the latest')
    .option('--json', 'print the record as JSON')
    .action(async (runId: string, ref: string, o: { attempt?: string; json?: boolean }) => {
      const parts = ref.split('/');
      if (parts.length !== 2) throw new UsageError(`expected <phaseId>/<taskId>, got '${ref}'`);
      const phaseId = assertId('phase id', parts[0]);
      const taskId = assertId('task id', parts[1]);
      const store = await RunStore.open(storeRoot(program), runId);
      try {
        const { records } = await store.listAgentRecords();
        const mine = records.filter((r) => r.phaseId === phaseId && r.taskId === taskId);
        if (mine.length === 0) {
          const refs = (await store.readRun()).plan.tasks.map((t) => t.ref);
          if (!refs.includes(`${phaseId}/${taskId}`)) {
            const shown = refs.slice(0, 20).join(', ') + (refs.length > 20 ? `, … (${refs.length - 20} more)` : '');
            throw new UsageError(`run '${runId}' has no task '${phaseId}/${taskId}'; its tasks: ${shown}`);
          }
          throw new UsageError(`run '${runId}' has no record for ${phaseId}/${taskId} yet (it has not run)`);
        }
        let rec: AgentRecord;
        if (o.attempt !== undefined) {
          const n = Number(o.attempt);
          const found = mine.find((r) => r.attempt === n);
          if (!found) throw new UsageError(`--attempt: ${phaseId}/${taskId} has attempts ${mine.map((r) => r.attempt).join(', ')}, not '${o.attempt}'`);
          rec = found;
        } else rec = mine.reduce((a, b) => (b.attempt > a.attempt ? b : a));
        if (o.json) return printJson(rec);
        const head = [
          // A gate check that did not pass says so: it ran fine, but its verdict is "not yet".
          `${rec.phaseId}/${rec.taskId} attempt ${rec.attempt}: ${isFailedCheck(rec) ? 'check failed (the gate check ran and did not pass)' : rec.status} in ${rec.durationMs} ms (agent ${rec.agent}, runner ${rec.runner})`,
          rec.exitCode !== null || rec.signal ? `exit: ${rec.signal ?? rec.exitCode}` : '',
          rec.error ? `cause: ${rec.error.message}` : '',
          rec.truncated ? `output: ${rec.storedBytes ?? Buffer.byteLength(rec.output)} bytes stored of ${rec.outputBytes} (truncated)` : '',
          rec.stderrTail ? `stderr (tail):\n${rec.stderrTail.trimEnd()}` : '',
          '--- output ---',
        ].filter(Boolean);
        process.stdout.write(head.join('\n') + '\n');
        // Streamed: an output beside its record may be 64 MiB.
        let last = '';
        for await (const chunk of await store.agentOutputStream(rec)) {
          const buf = chunk as Buffer;
          if (buf.length > 0) last = String.fromCharCode(buf[buf.length - 1]!);
          if (!process.stdout.write(buf)) await new Promise((r) => process.stdout.once('drain', r));
        }
        if (last !== '\n') process.stdout.write('\n');
      } finally {
        await store.close();
      }
    });
}

async function readRunRecord(root: string, runId: string): Promise<RunRecord> {
  const store = await RunStore.open(root, runId);
  try {
    return await store.readRun();
  } finally {
    await store.close();
  }
}

/**
 * The status JSON plus, for a run with dynamic phases, `dynamic`: per phase its one-line summary
 * and its state as run.json holds it (`phases[].dynamic`). Static runs print exactly the status.
 */
export function withDynamicJson(s: RunStatusView, run: RunRecord): RunStatusView & { dynamic?: unknown[] } {
  const plan = new Map(run.plan.phases.map((p) => [p.id, p]));
  const dynamic = run.phases
    .filter((p) => p.dynamic && Object.keys(p.dynamic).length > 0)
    .map((p) => ({ phaseId: p.id, summary: dynamicSummary(p.dynamic, plan.get(p.id)), state: p.dynamic }));
  return dynamic.length > 0 ? { ...s, dynamic } : s;
}

async function newestRunId(root: string, runCommand: string): Promise<string> {
  const runs = await RunStore.listRuns(root);
  const first = runs[0];
  if (!first) throw new UsageError(`no runs in ${root}; start one with '${runCommand}' and a spec file`);
  return first.runId;
}

export { TERMINAL };
