/**
 * Commands that make runs move: `plan`, `run`, `resume`, `stop`.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { planCost, renderPlan } from '../spec/index.js';
import { planEnvViews, renderEnvViews } from '../runners/env.js';
import { loadPlanFile, missingAgentClis, missingCliText } from '../engine/plan-file.js';
import { createRun, launchOwner, requestStop } from '../engine/lifecycle.js';
import { ownRun } from '../engine/owner.js';
import { TERMINAL, readStatus, statusView } from '../engine/status.js';
import { readLease, leaseState, RunStore } from '../store/index.js';
import type { RunRecord } from '../store/types.js';
import { latestAttempts } from '../digest/index.js';
import { ProgressView, withDynamicLines } from './progress.js';
import { UsageError } from './errors.js';
import { terminalGone } from './terminal.js';
import { commandHint, printJson, storeRoot, summaryText, type CommandHint } from './shared.js';
import { stopAgent } from './control.js';
import { terminalAsk } from './ask.js';

/** Registers plan, run, resume and stop. */
export function registerRunCommands(program: Command): void {
  program
    .command('plan')
    .description('validate a spec and print the normalized plan')
    .argument('<spec>', 'workflow spec (YAML or JSON)')
    .option('--json', 'print the plan as JSON')
    .action(async (specPath: string, o: { json?: boolean }) => {
      const plan = await loadPlanFile(specPath);
      // Names only, never values: what each agent's child will receive from this environment.
      const env = planEnvViews(plan.agents, process.env);
      if (o.json) printJson({ ...plan, taskCount: plan.tasks.length, cost: planCost(plan), env });
      else process.stdout.write([renderPlan(plan), ...renderEnvViews(env)].join('\n') + '\n');
    });

  program
    .command('run')
    .description('start a run of a spec; in the foreground with live progress, or detached')
    .argument('<spec>', 'workflow spec (YAML or JSON)')
    .option('--detach', 'start a detached run owner and print the run id')
    .option('--json', 'print JSON instead of text')
    .action(async (specPath: string, o: { detach?: boolean; json?: boolean }) => {
      const plan = await loadPlanFile(specPath);
      // `plan` only warns about a missing agent CLI; a run would fail every one of its agents.
      const missing = missingAgentClis(plan);
      if (missing.length > 0) throw new UsageError(`cannot run ${specPath}: ${missing.map(missingCliText).join('; ')}`);
      const root = storeRoot(program);
      const runId = await createRun({ root, plan, cwd: process.cwd(), specPath: path.resolve(specPath) });
      if (o.detach) {
        const { pid } = await launchOwner({ root, runId });
        return detached(root, runId, pid, o.json, commandHint(program));
      }
      await foreground(root, runId, { json: o.json, hint: commandHint(program) });
    });

  program
    .command('resume')
    .description('continue a run that was stopped, interrupted or failed; finished tasks are not run again')
    .argument('<runId>', 'run id')
    .option('--detach', 'resume in a detached run owner')
    .option('--spec <file>', 'resume with a changed spec: tasks whose content key is unchanged are reused')
    .option('--wait-until-reset', 'a paused run: sleep until the usage limit resets (resumeAfter) first')
    .option('--json', 'print JSON instead of text')
    .action(async (runId: string, o: { detach?: boolean; spec?: string; json?: boolean; waitUntilReset?: boolean }) => {
      const root = storeRoot(program);
      if (o.waitUntilReset) await sleepUntilReset(root, runId);
      const store = await RunStore.open(root, runId);
      const lease = await readLease(store.dir);
      await store.close();
      if (leaseState(lease) === 'live') {
        throw new UsageError(`run '${runId}' is running (owner pid ${lease!.pid} on ${lease!.host}); stop it first with: ${commandHint(program)(['stop', runId])}`);
      }
      if (!o.spec && (await readStatus(root, runId)).status === 'completed') {
        throw new UsageError(`run '${runId}' already completed: nothing to resume (to run a changed spec on it, add --spec FILE)`);
      }
      // Validate a new spec here, so a bad one is exit code 2 before anything starts.
      const plan = o.spec ? await loadPlanFile(o.spec) : undefined;
      if (o.detach) {
        const { pid } = await launchOwner({ root, runId, ...(o.spec ? { specPath: o.spec } : {}) });
        return detached(root, runId, pid, o.json, commandHint(program));
      }
      await foreground(root, runId, { json: o.json, hint: commandHint(program), ...(plan ? { plan } : {}) });
    });

  program
    .command('stop')
    .description('stop a run gracefully from any terminal: agents are killed, statuses recorded; with phase/task, stop only that agent (its dependents are skipped, the rest goes on)')
    .argument('<runId>', 'run id')
    .argument('[phase/task]', 'stop only this agent')
    .option('--wait <seconds>', 'how long to wait for the run to end (or the owner to act on one agent)', '30')
    .option('--json', 'print the status as JSON')
    .action(async (runId: string, ref: string | undefined, o: { wait: string; json?: boolean }) => {
      if (ref !== undefined) return stopAgent(storeRoot(program), runId, ref, seconds(o.wait, '--wait') * 1000, o.json);
      const s = await requestStop(storeRoot(program), runId, seconds(o.wait, '--wait') * 1000);
      if (o.json) printJson(s);
      else process.stdout.write(summaryText(s, commandHint(program)) + '\n');
      process.exitCode = TERMINAL.has(s.status) ? 0 : 1;
    });
}

/** Prints what a detached start or resume says: the run id and how to follow it. */
export async function detached(root: string, runId: string, pid: number, json: boolean | undefined, hint: CommandHint) {
  const s = await readStatus(root, runId);
  if (json) printJson({ runId, status: s.status, pid, dir: s.dir });
  else {
    process.stdout.write(
      `${runId}\n` +
        `started run ${runId} (${s.name}) in the background\n` +
        `  watch:  ${hint(['status', runId, '--wait', '60'])}\n` +
        `  stop:   ${hint(['stop', runId])}\n` +
        `  files:  ${s.dir}\n`,
    );
  }
  process.exitCode = 0;
}

/** Signals that stop a foreground run the way Ctrl-C does, and how the run's reason names them. */
const STOP_SIGNALS: Record<'SIGINT' | 'SIGTERM' | 'SIGHUP', string> = {
  SIGINT: 'Ctrl-C',
  SIGTERM: `SIGTERM to pid ${process.pid}`,
  // The terminal closed (an SSH session dropped, a window shut): its agents must not run on unsupervised.
  SIGHUP: `SIGHUP to pid ${process.pid} (its terminal closed)`,
};

/** Owns the run in this process with live progress; exit code 0 only when it completed. */
export async function foreground(root: string, runId: string, o: { json?: boolean; hint: CommandHint; plan?: import('../spec/types.js').Plan; rerun?: string[] }) {
  // Why no guard here: once the terminal is gone, writing progress fails (EIO on a tty, EPIPE on a
  // pipe); main.ts guards stdout and stderr for every command (cli/terminal.ts), so an 'error'
  // event never crashes the owner mid-run and leaves its agents unsupervised.
  const view = new ProgressView(process.stderr);
  const ctl = new AbortController();
  const handlers = (Object.keys(STOP_SIGNALS) as (keyof typeof STOP_SIGNALS)[]).map((sig) => {
    const h = () => {
      if (sig === 'SIGHUP') terminalGone();
      if (!ctl.signal.aborted) process.stderr.write(`\nfanfold: stopping run ${runId} (${sig}): agents are being stopped and recorded…\n`);
      ctl.abort(STOP_SIGNALS[sig]);
    };
    process.on(sig, h);
    return [sig, h] as const;
  });
  try {
    const ask = terminalAsk(view);
    const run = await ownRun({
      root, runId, signal: ctl.signal, onProgress: (s) => view.update(s),
      ...(o.plan ? { plan: o.plan } : {}), ...(o.rerun ? { rerun: o.rerun } : {}), ...(ask ? { ask } : {}),
    });
    view.done();
    const s = statusView(run, path.join(root, runId));
    if (o.json) printJson(s);
    else {
      const final = await finalOutput(root, run, o.hint);
      process.stdout.write('\n' + (final ? final + '\n\n' : '') + withDynamicLines(summaryText(s, o.hint), run) + '\n');
    }
    process.exitCode = run.status === 'completed' ? 0 : 1;
  } finally {
    view.done();
    for (const [sig, h] of handlers) process.off(sig, h);
  }
}

/** `resume --wait-until-reset`: sleeps until the paused run's resumeAfter, saying so on stderr. */
async function sleepUntilReset(root: string, runId: string): Promise<void> {
  const s = await readStatus(root, runId);
  if (s.status !== 'paused') throw new UsageError(`--wait-until-reset: run '${runId}' is ${s.status}, not paused`);
  const at = s.resumeAfter ? Date.parse(s.resumeAfter) : NaN;
  if (!Number.isFinite(at)) {
    process.stderr.write(`fanfold: run ${runId} is paused without a known reset time; resuming now\n`);
    return;
  }
  const ms = at - Date.now();
  if (ms <= 0) return;
  process.stderr.write(`fanfold: run ${runId} is paused until ${s.resumeAfter}; waiting ${Math.ceil(ms / 1000)} s before resuming (Ctrl-C to cancel)\n`);
  // setTimeout overflows past ~24.8 days: sleep in steps.
  for (let left = ms; left > 0; left = at - Date.now()) await new Promise((r) => setTimeout(r, Math.min(left, 2 ** 31 - 1)));
}

/** Parses a non-negative number of seconds from an option. */
export function seconds(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`${flag}: expected a number of seconds ≥ 0, got '${v}'`);
  return n;
}

/** Most characters of the final phase's output printed at the end of a foreground run. */
const FINAL_PRINT_CHARS = 6000;

/**
 * The output of the run's `final: true` phase (what the workflow was for), to print when a
 * foreground run ends; cut at FINAL_PRINT_CHARS with the command that shows it whole.
 */
async function finalOutput(root: string, run: RunRecord, hint: CommandHint): Promise<string | undefined> {
  const phase = run.plan.phases.find((p) => p.final);
  if (!phase) return undefined;
  const store = await RunStore.open(root, run.runId);
  try {
    const { records } = await store.listAgentRecords();
    const latest = latestAttempts(records.filter((r) => r.phaseId === phase.id && r.status === 'succeeded'));
    const order = run.plan.tasks.filter((t) => t.phaseId === phase.id).map((t) => t.taskId);
    latest.sort((a, b) => order.indexOf(a.taskId) - order.indexOf(b.taskId));
    const parts = latest.filter((r) => r.output.trim()).map((r) => {
      const text = r.output.trimEnd();
      if (text.length <= FINAL_PRINT_CHARS) return text;
      return `${text.slice(0, FINAL_PRINT_CHARS)}\n… (cut; the whole output: ${hint(['show', run.runId, `${r.phaseId}/${r.taskId}`])})`;
    });
    return parts.length > 0 ? parts.join('\n\n') : undefined;
  } finally {
    await store.close();
  }
}
