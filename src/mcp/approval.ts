/**
 * Approval before a run starts. A plan needs the user's yes when it is big (more agents than the
 * threshold) or may change files (an agent of tier `edit`). With a client that supports
 * elicitation the user is asked directly with a form; otherwise the host must show the plan and
 * call again with `approve: true`. Nothing starts without one of the two.
 *
 * The rule (one function, {@link decideApproval}, for every approval fanfold asks — starts,
 * resumes, and later checkpoints and restarts):
 * - A person's answer on a form is final: `decline` (or a dismissed form) is never overridden by
 *   the model's `approve: true`.
 * - Only a form nobody could have answered — the client cancels it at once, as `claude -p` does,
 *   or the form cannot be shown at all — falls back to the model's `approve: true` (the person
 *   said yes in the chat).
 * - Headless clients that *decline* at once (`codex exec`) look like a person saying no; the
 *   model's `approve: true` counts for them only when the server runs with
 *   `FANFOLD_APPROVAL_MODE=flag` (default `form`).
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { estimatePlan } from '../spec/index.js';
import type { Plan } from '../spec/types.js';
import { clipBytes, plural } from './answer.js';
import type { HandlerExtra } from './waiting.js';

/** Limits above which a plan needs the user's approval. */
export interface ApprovalThresholds {
  /** Agents a plan may start without approval. */
  agents: number;
  /** US dollars a plan may budget or be expected to spend without approval. */
  usd: number;
  /** Whether command-runner agents need approval (default true). */
  commands?: boolean;
}

/** An agent a dynamic phase will run at run time, and what for. */
interface RunTimeUse {
  agent: string;
  /** `review: forEach template`, `fixup: gate command`, … */
  what: string;
}

/**
 * The agents dynamic phases run for tasks they make at run time: task templates (forEach,
 * pipeline, converge), skeptics, the gate's check (a synthetic command agent `<phase>-gate` for
 * `gate.command`, or the critic) and the gate's fix agent. Why: these tasks are not in
 * `plan.tasks` when the plan is approved, yet they run with the same powers as written ones.
 */
function runTimeUses(plan: Plan): RunTimeUse[] {
  const out: RunTimeUse[] = [];
  for (const p of plan.phases) {
    const d = p.dynamic;
    if (!d) continue;
    const kind = d.forEach ? 'forEach' : d.pipeline ? 'pipeline' : d.converge ? 'converge' : 'task';
    for (const t of d.templates ?? []) out.push({ agent: t.agent, what: `${p.id}: ${kind} template` });
    if (d.verify) out.push({ agent: d.verify.agent, what: `${p.id}: skeptics` });
    if (d.gate) {
      out.push({ agent: d.gate.agent, what: d.gate.kind === 'command' ? `${p.id}: gate command \`${clipLine(d.gate.command ?? '', 80)}\`` : `${p.id}: gate critic` });
      out.push({ agent: d.gate.fixAgent, what: `${p.id}: gate fixes` });
    }
  }
  return out;
}

function clipLine(s: string, max: number): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

/** `a, b, c, …` from at most `max` names. */
function names(list: readonly string[], max = 5): string {
  return list.slice(0, max).join(', ') + (list.length > max ? ', …' : '');
}

/** ` and tasks made at run time (review: forEach template; fixup: gate command `npm test`)`, or ''. */
function runTimeClause(uses: readonly RunTimeUse[]): string {
  if (uses.length === 0) return '';
  const what = [...new Set(uses.map((u) => u.what))];
  return ` and tasks made at run time (${what.slice(0, 4).join('; ')}${what.length > 4 ? '; …' : ''})`;
}

/** `tasks made at run time (review: forEach template; …)`. */
function onlyRunTime(uses: readonly RunTimeUse[]): string {
  return runTimeClause(uses).replace(/^ and /, '');
}

/**
 * Why a plan needs approval (empty: it does not): more agents than the threshold (for a plan that
 * makes tasks at run time, the most it may start), tasks that may edit files, a budget or an
 * expected spend over the dollar threshold, or an expected spend over the plan's own budget (the
 * run would stop early). Tasks dynamic phases make at run time count like written ones.
 */
export function approvalReasons(plan: Plan, limits: ApprovalThresholds): string[] {
  const reasons: string[] = [];
  const e = estimatePlan(plan);
  // Why the upper bound: approving 3 written tasks must not let a forEach start 60 more unasked.
  // Phase summarizers are agents too (e.agents counts them).
  const most = e.lowerBound ? Math.min(e.agentsMax ?? e.agentsCap, e.agentsCap) : e.agents;
  const summ = e.summarizers > 0 ? ` (${plural(e.summarizers, 'phase summarizer')} included)` : '';
  if (e.agents > limits.agents) {
    reasons.push(`it starts ${plural(e.agents, 'agent')}${summ}, more than the ${limits.agents} that run without approval`);
  } else if (most > limits.agents) {
    const how = e.agentsMax !== null && e.agentsMax <= e.agentsCap ? 'as the spec allows' : `limits.maxAgents ${e.agentsCap}; how many depends on what agents answer`;
    reasons.push(`it may start up to ${plural(most, 'agent')} with the tasks made at run time (${how}), more than the ${limits.agents} that run without approval`);
  }
  const uses = runTimeUses(plan);
  const tierOf = (a: string) => plan.agents[a]?.tier;
  const used = new Set([...plan.tasks.map((t) => t.agent), ...uses.map((u) => u.agent)]);
  // A gate's command runs as tier edit (it builds and tests), but it is approved as what it is: a
  // shell command, named by the command-runner reason below.
  const gateCommands = new Set(plan.phases.flatMap((p) => (p.dynamic?.gate?.kind === 'command' ? [p.dynamic.gate.agent] : [])));
  const isEditor = (a: string) => tierOf(a) === 'edit' && !gateCommands.has(a);
  const editors = [...used].filter(isEditor).sort();
  if (editors.length > 0) {
    const n = plan.tasks.filter((t) => isEditor(t.agent)).length;
    const dynamic = uses.filter((u) => isEditor(u.agent));
    const who = n > 0 || dynamic.length === 0 ? `${plural(n, 'task')}${runTimeClause(dynamic)}` : onlyRunTime(dynamic);
    reasons.push(`${who} may edit files (agent${editors.length === 1 ? '' : 's'} ${names(editors)} of tier 'edit')`);
  }
  // Why: a `command` agent runs any argv outside the host's sandbox, whatever its tier says, so
  // it is as capable as an edit-tier agent and gets the same approval. A gate's command is one.
  const isCommand = (a: string) => plan.agents[a]?.runner === 'command' && (tierOf(a) !== 'edit' || gateCommands.has(a));
  const commands = [...used].filter(isCommand).sort();
  if (commands.length > 0 && limits.commands !== false) {
    const n = plan.tasks.filter((t) => isCommand(t.agent)).length;
    const dynamic = uses.filter((u) => isCommand(u.agent));
    const who = n > 0 || dynamic.length === 0 ? `${plural(n, 'task')}${runTimeClause(dynamic)}` : onlyRunTime(dynamic);
    const verb = n === 1 && dynamic.length === 0 ? 'runs' : 'run';
    reasons.push(`${who} ${verb} shell commands outside the host's sandbox (agent${commands.length === 1 ? '' : 's'} ${names(commands)} of runner 'command')`);
  }
  // Why: the network is how a prompt-injected agent sends what it read somewhere, and `sandbox:
  // off` lifts the OS confinement that keeps it from reading the owner's keys. Both are choices a
  // person makes, not the host model (a CLI run is approved by the person who typed it).
  const networked = [...used].filter((a) => plan.agents[a]?.network === true).sort();
  if (networked.length > 0) {
    reasons.push(`agent${networked.length === 1 ? '' : 's'} ${names(networked)} may use the network (network: true)`);
  }
  const unconfined = [...used].filter((a) => plan.agents[a]?.sandbox === 'off').sort();
  if (unconfined.length > 0) {
    reasons.push(`agent${unconfined.length === 1 ? '' : 's'} ${names(unconfined)} run${unconfined.length === 1 ? 's' : ''} unconfined (sandbox: off): ${unconfined.length === 1 ? 'it' : 'they'} may read any file the owner can`);
  }
  const usd = (n: number) => `$${n.toFixed(2)}`;
  const spendMax = e.lowerBound ? e.usdMax : e.usd;
  if (e.budget.usd !== null && e.budget.usd > limits.usd) {
    reasons.push(`its budget of ${usd(e.budget.usd)} is over the ${usd(limits.usd)} that runs without approval`);
  } else if (e.usd !== null && e.usd > limits.usd) {
    reasons.push(`it is expected to spend ${usd(e.usd)}, over the ${usd(limits.usd)} that runs without approval`);
  } else if (e.lowerBound && e.usd !== null && (spendMax === null || spendMax > limits.usd)) {
    const most = spendMax ?? round2(e.agentsCap * (plan.limits.budget?.perAgentUsd ?? 0));
    if (most > limits.usd) reasons.push(`it may spend up to ${usd(most)} with the tasks made at run time, over the ${usd(limits.usd)} that runs without approval`);
  }
  if (e.overBudget) reasons.push('its expected spend is over its own budget, so it would stop early (budget_exhausted)');
  return reasons;
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

/** Outcome of asking for approval. */
export type ApprovalOutcome =
  | { approved: true; by: 'not_needed' | 'elicitation' | 'approve_flag' }
  | { approved: false; kind: 'declined' | 'cancelled' | 'needs_flag'; message: string };

/**
 * How the server treats a form the client refuses at once. `form` (default): only an immediate
 * `cancel` lets the model's `approve: true` decide; an immediate `decline` stands, as a person's
 * would. `flag`: an immediate `decline` also lets `approve: true` decide — for headless clients
 * that decline every form (`codex exec`), set by the user who runs them.
 */
export type ApprovalMode = 'form' | 'flag';

/** Environment variable choosing the {@link ApprovalMode} of `fanfold serve`. */
export const APPROVAL_MODE_ENV = 'FANFOLD_APPROVAL_MODE';

/** Reads FANFOLD_APPROVAL_MODE (unset or empty: `form`); throws on anything but `form` or `flag`. */
export function approvalModeFrom(env: NodeJS.ProcessEnv): ApprovalMode {
  const raw = (env[APPROVAL_MODE_ENV] ?? '').trim();
  if (raw === '') return 'form';
  const v = raw.toLowerCase();
  if (v === 'form' || v === 'flag') return v;
  throw new Error(`mcp: ${APPROVAL_MODE_ENV} must be 'form' or 'flag', got '${raw}'`);
}

/** What came back from asking a person with a form. */
export type FormAnswer =
  /** No form was shown: the client cannot show one, or asking failed (`why` says which). */
  | { shown: false; why: string }
  /** The client answered: `yes` is the person's tick (accept with the box unticked is a no). */
  | { shown: true; action: 'accept' | 'decline' | 'cancel'; yes: boolean; afterMs: number };

/** The decision of {@link decideApproval}. */
export type ApprovalDecision =
  | { approved: true; by: 'elicitation' | 'approve_flag' }
  /** A person said no on the form; final. */
  | { approved: false; kind: 'declined' | 'cancelled' }
  /** Nobody answered a form; the model's `approve: true` is needed (`headless`: one was refused at once). */
  | { approved: false; kind: 'needs_flag'; headless?: { action: 'decline' | 'cancel'; afterMs: number } };

/**
 * The approval rule, in one place for every approval fanfold asks (starts, resumes, checkpoints,
 * restarts). Why this shape: the form is the person speaking and `approve` is only the model's
 * claim that the person agreed in the chat, so the claim counts only where no person could have
 * answered the form — it was never shown, or it was cancelled (in `flag` mode also declined)
 * faster than anyone reads it ({@link HEADLESS_ANSWER_MS}).
 */
export function decideApproval(
  answer: FormAnswer,
  opts: { approve: boolean | undefined; mode: ApprovalMode; headlessAnswerMs?: number },
): ApprovalDecision {
  const flag = (headless?: { action: 'decline' | 'cancel'; afterMs: number }): ApprovalDecision =>
    opts.approve === true ? { approved: true, by: 'approve_flag' } : { approved: false, kind: 'needs_flag', ...(headless ? { headless } : {}) };
  if (!answer.shown) return flag();
  if (answer.action === 'accept') return answer.yes ? { approved: true, by: 'elicitation' } : { approved: false, kind: 'declined' };
  const atOnce = answer.afterMs < (opts.headlessAnswerMs ?? HEADLESS_ANSWER_MS);
  // Why a decline stands even at once in `form` mode: `codex exec` declines every form at once,
  // but so may a person who clicks "no" quickly; only the user can say which kind of client this
  // is (FANFOLD_APPROVAL_MODE=flag). A cancel at once is `claude -p`'s "nothing to show it on".
  const headless = atOnce && (answer.action === 'cancel' || opts.mode === 'flag');
  if (headless) return flag({ action: answer.action, afterMs: answer.afterMs });
  return { approved: false, kind: answer.action === 'cancel' ? 'cancelled' : 'declined' };
}

/**
 * Most bytes of plan summary in the elicitation message. Why: the form is shown to a person in
 * the host's UI; a few screens of text are the most anyone reads before clicking.
 */
const MAX_ELICIT_MESSAGE_BYTES = 6 * 1024;

/**
 * How long the user may take to answer the form. Why 10 min: a person reads the plan; the SDK's
 * 60 s request default would turn a slow reader into a failure.
 */
const ELICIT_TIMEOUT_MS = 10 * 60_000;

/**
 * A form answered `cancel` or `decline` faster than this was not answered by a person. Why: both
 * `claude -p` and `codex exec` declare elicitation but, having no one to show the form to, answer
 * every form at once (claude: cancel, codex: decline). Nobody reads a plan in under a second.
 */
export const HEADLESS_ANSWER_MS = 1_500;

/** Whether the connected client can show a form (elicitation in form mode). */
export function clientCanElicit(server: McpServer): boolean {
  const e = server.server.getClientCapabilities()?.elicitation as { form?: unknown; url?: unknown } | undefined;
  // An empty `elicitation: {}` means form mode (older clients declare it that way).
  return e !== undefined && (e.form !== undefined || e.url === undefined);
}

/**
 * Asks the person a yes/no question with a form (one boolean field, ticked by default) and says
 * what came back, timed. Never decides: pass the answer to {@link decideApproval}.
 */
export async function askWithForm(opts: {
  server: McpServer;
  message: string;
  /** Label of the checkbox, e.g. `Start this workflow?`. */
  title: string;
  description: string;
  extra: HandlerExtra;
  log: (line: string) => void;
}): Promise<FormAnswer> {
  if (!clientCanElicit(opts.server)) return { shown: false, why: 'the client cannot show forms' };
  const asked = Date.now();
  try {
    const res = await opts.server.server.elicitInput(
      {
        mode: 'form',
        message: clipBytes(opts.message, MAX_ELICIT_MESSAGE_BYTES),
        requestedSchema: {
          type: 'object',
          properties: { approve: { type: 'boolean', title: opts.title, description: opts.description, default: true } },
          required: ['approve'],
        },
      },
      { signal: opts.extra.signal, timeout: ELICIT_TIMEOUT_MS },
    );
    return { shown: true, action: res.action, yes: res.action === 'accept' && res.content?.approve !== false, afterMs: Date.now() - asked };
  } catch (err) {
    if (opts.extra.signal.aborted) throw err;
    const why = err instanceof Error ? err.message : String(err);
    opts.log(`approval form failed (${why}); falling back to the approve flag`);
    return { shown: false, why: `the form failed: ${why}` };
  }
}

/**
 * Gets approval for `plan` when it needs one, under {@link decideApproval}'s rule: the form, when
 * the client can show one, decides; the host's `approve: true` counts only where no person could
 * answer it.
 */
export async function obtainApproval(opts: {
  server: McpServer;
  plan: Plan;
  reasons: string[];
  rendered: string;
  approve: boolean | undefined;
  extra: HandlerExtra;
  what: string;
  log: (line: string) => void;
  /** See HEADLESS_ANSWER_MS. */
  headlessAnswerMs?: number;
  /** See ApprovalMode (default `form`). */
  mode?: ApprovalMode;
}): Promise<ApprovalOutcome> {
  const { plan, reasons } = opts;
  if (reasons.length === 0) return { approved: true, by: 'not_needed' };
  const answer = await askWithForm({
    server: opts.server,
    message:
      `fanfold wants to ${opts.what} "${plan.name}" with ${plan.dynamic ? 'at least ' : ''}${plural(plan.agentCount, 'agent')}${plan.dynamic ? ' (more are made at run time)' : ''}.\n` +
      `It needs your approval because ${reasons.join('; and ')}.\n\n${opts.rendered}`,
    title: 'Start this workflow?',
    description: 'Check to start the run as planned.',
    extra: opts.extra,
    log: opts.log,
  });
  const mode = opts.mode ?? 'form';
  const d = decideApproval(answer, { approve: opts.approve, mode, headlessAnswerMs: opts.headlessAnswerMs });
  if (answer.shown && answer.action !== 'accept') {
    opts.log(`approval form answered '${answer.action}' after ${answer.afterMs} ms (mode ${mode}): ${d.approved ? 'the approve flag decided' : d.kind === 'needs_flag' ? 'no person saw it; the approve flag decides' : "the person's answer stands"}`);
  }
  if (d.approved) return d;
  if (d.kind === 'needs_flag') {
    const preface = d.headless ? `The host ${d.headless.action === 'cancel' ? 'cancelled' : 'declined'} the approval form at once (${d.headless.afterMs} ms), so no person saw it (a headless host). ` : '';
    return needsFlag(plan, reasons, opts.rendered, preface);
  }
  const kind = d.kind;
  return {
    approved: false,
    kind,
    message:
      (kind === 'cancelled' ? `The user dismissed the approval form to ${opts.what} "${plan.name}"; nothing was started. ` : `The user declined to ${opts.what} "${plan.name}"; nothing was started. `) +
      "A person's answer on the form is final: approve: true does not override it. " +
      'Ask the user what to change (fewer agents, read-only agents, a smaller scope), refine the plan with plan_workflow, and try again only if they want to.' +
      (answer.shown && answer.afterMs < (opts.headlessAnswerMs ?? HEADLESS_ANSWER_MS) && answer.action === 'decline'
        ? ` (The form was declined at once, in ${answer.afterMs} ms. If this host cannot show forms — codex exec declines every form — the user can start fanfold serve with ${APPROVAL_MODE_ENV}=flag, e.g. fanfold install codex --headless, so that approve: true counts.)`
        : ''),
  };
}

/** The refusal that tells the host to show the plan and call again with `approve: true`. */
function needsFlag(plan: Plan, reasons: string[], rendered: string, preface: string): ApprovalOutcome {
  return {
    approved: false,
    kind: 'needs_flag',
    message:
      `Approval needed: nothing was started. ${preface}"${plan.name}" needs the user's approval because ${reasons.join('; and ')}.\n` +
      'Show the plan below to the user. If they agree, call run_workflow again with the same arguments plus "approve": true. ' +
      'If not, refine it with plan_workflow.\n\n' +
      rendered,
  };
}
