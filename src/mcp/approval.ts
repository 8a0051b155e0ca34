/**
 * Approval before a run starts. A plan needs the user's yes when it is big (more agents than the
 * threshold) or may change files (an agent of tier `edit`). With a client that supports
 * elicitation the user is asked directly with a form; otherwise the host must show the plan and
 * call again with `approve: true`. Nothing starts without one of the two.
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
  const most = e.lowerBound ? Math.min(e.agentsMax ?? e.agentsCap, e.agentsCap) : plan.agentCount;
  if (plan.agentCount > limits.agents) {
    reasons.push(`it starts ${plural(plan.agentCount, 'agent')}, more than the ${limits.agents} that run without approval`);
  } else if (most > limits.agents) {
    const how = e.agentsMax !== null && e.agentsMax <= e.agentsCap ? 'as the spec allows' : `limits.maxAgents ${e.agentsCap}; how many depends on what agents answer`;
    reasons.push(`it may start up to ${plural(most, 'agent')} with the tasks made at run time (${how}), more than the ${limits.agents} that run without approval`);
  }
  const uses = runTimeUses(plan);
  const tierOf = (a: string) => plan.agents[a]?.tier;
  const used = new Set([...plan.tasks.map((t) => t.agent), ...uses.map((u) => u.agent)]);
  const editors = [...used].filter((a) => tierOf(a) === 'edit').sort();
  if (editors.length > 0) {
    const n = plan.tasks.filter((t) => tierOf(t.agent) === 'edit').length;
    const dynamic = uses.filter((u) => tierOf(u.agent) === 'edit');
    const who = n > 0 || dynamic.length === 0 ? `${plural(n, 'task')}${runTimeClause(dynamic)}` : onlyRunTime(dynamic);
    reasons.push(`${who} may edit files (agent${editors.length === 1 ? '' : 's'} ${names(editors)} of tier 'edit')`);
  }
  // Why: a `command` agent runs any argv outside the host's sandbox, whatever its tier says, so
  // it is as capable as an edit-tier agent and gets the same approval. A gate's command is one.
  const isCommand = (a: string) => plan.agents[a]?.runner === 'command' && tierOf(a) !== 'edit';
  const commands = [...used].filter(isCommand).sort();
  if (commands.length > 0 && limits.commands !== false) {
    const n = plan.tasks.filter((t) => isCommand(t.agent)).length;
    const dynamic = uses.filter((u) => isCommand(u.agent));
    const who = n > 0 || dynamic.length === 0 ? `${plural(n, 'task')}${runTimeClause(dynamic)}` : onlyRunTime(dynamic);
    const verb = n === 1 && dynamic.length === 0 ? 'runs' : 'run';
    reasons.push(`${who} ${verb} shell commands outside the host's sandbox (agent${commands.length === 1 ? '' : 's'} ${names(commands)} of runner 'command')`);
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
 * every form at once (claude: cancel, codex: decline). Nobody reads a plan in under a second, so
 * such an answer means "no form could be shown", and the approve flag decides, as for a client
 * without forms.
 */
export const HEADLESS_ANSWER_MS = 1_500;


/** Whether the connected client can show a form (elicitation in form mode). */
export function clientCanElicit(server: McpServer): boolean {
  const e = server.server.getClientCapabilities()?.elicitation as { form?: unknown; url?: unknown } | undefined;
  // An empty `elicitation: {}` means form mode (older clients declare it that way).
  return e !== undefined && (e.form !== undefined || e.url === undefined);
}

/**
 * Gets approval for `plan` when it needs one. With elicitation, the user's answer decides —
 * `approve: true` from the host does not replace it, since the form is the user speaking and the
 * flag is the model's claim. If the form cannot be shown (the client errs), the flag decides.
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
}): Promise<ApprovalOutcome> {
  const { plan, reasons } = opts;
  if (reasons.length === 0) return { approved: true, by: 'not_needed' };
  if (clientCanElicit(opts.server)) {
    const message = clipBytes(
      `fanfold wants to ${opts.what} "${plan.name}" with ${plan.dynamic ? 'at least ' : ''}${plural(plan.agentCount, 'agent')}${plan.dynamic ? ' (more are made at run time)' : ''}.\n` +
        `It needs your approval because ${reasons.join('; and ')}.\n\n${opts.rendered}`,
      MAX_ELICIT_MESSAGE_BYTES,
    );
    const asked = Date.now();
    try {
      const res = await opts.server.server.elicitInput(
        {
          mode: 'form',
          message,
          requestedSchema: {
            type: 'object',
            properties: {
              approve: { type: 'boolean', title: 'Start this workflow?', description: 'Check to start the run as planned.', default: true },
            },
            required: ['approve'],
          },
        },
        { signal: opts.extra.signal, timeout: ELICIT_TIMEOUT_MS },
      );
      if (res.action === 'accept' && res.content?.approve !== false) return { approved: true, by: 'elicitation' };
      const kind = res.action === 'cancel' ? 'cancelled' : 'declined';
      const answeredMs = Date.now() - asked;
      if (res.action !== 'accept' && answeredMs < (opts.headlessAnswerMs ?? HEADLESS_ANSWER_MS)) {
        opts.log(`approval form answered '${res.action}' after ${answeredMs} ms: no person saw it (headless host); the approve flag decides`);
        if (opts.approve === true) return { approved: true, by: 'approve_flag' };
        return needsFlag(plan, reasons, opts.rendered, `The host answered the approval form at once (${answeredMs} ms), so no person saw it (a headless host). `);
      }
      return {
        approved: false,
        kind,
        message:
          `The user ${kind === 'cancelled' ? 'dismissed the approval form' : 'declined'} to start "${plan.name}"; nothing was started. ` +
          'Ask the user what to change (fewer agents, read-only agents, a smaller scope), refine the plan with plan_workflow, and try again only if they want to.',
      };
    } catch (err) {
      if (opts.extra.signal.aborted) throw err;
      opts.log(`approval form failed (${err instanceof Error ? err.message : String(err)}); falling back to the approve flag`);
    }
  }
  if (opts.approve === true) return { approved: true, by: 'approve_flag' };
  return needsFlag(plan, reasons, opts.rendered, '');
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
