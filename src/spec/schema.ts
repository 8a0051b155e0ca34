/**
 * The raw workflow spec as a user (or a host agent) writes it, in YAML or JSON. This is shape
 * only; references, cycles and limits across fields are checked in `normalize.ts`.
 *
 * Every object is strict: an unknown key is an error, so a typo such as `dependOn` is caught
 * instead of silently ignored. Messages for most issues are written in `issues.ts`; the few
 * written here are the ones that need to know which field they belong to.
 */
import * as z from 'zod';
import { DURATION_HINT, MAX_DURATION_MS, formatDuration, parseDuration } from './duration.js';
import { ID_PATTERN, ID_RULE, TASK_DEP_PATTERN } from './ids.js';
import { describeValue, showValue } from './suggest.js';

/** The runner kinds a spec may name. */
export const RUNNER_KINDS = ['command', 'claude', 'codex', 'pi'] as const;

/** Longest prompt or system prompt accepted, in characters. */
export const MAX_PROMPT_CHARS = 100_000;

/** Longest list accepted for `dependsOn`, `tools` and `command`. */
export const MAX_LIST = 1000;

/** An id (phase, task or agent name): see ID_PATTERN. */
const idSchema = z.string().regex(ID_PATTERN, {
  error: (iss) => `expected an id (${ID_RULE}), got ${showValue(iss.input)}`,
});

/** An integer in [min, max]; every failure says the whole range and what arrived. */
function intRange(min: number, max: number) {
  const error = (iss: { input?: unknown }) =>
    `expected an integer from ${min} to ${max}, got ${showValue(iss.input)}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

/** A duration (see duration.ts) between `minMs` and MAX_DURATION_MS. */
function durationSchema(minMs: number) {
  return z
    .union([z.string(), z.number()], {
      error: (iss) => `expected ${DURATION_HINT}, got ${describeValue(iss.input)}`,
    })
    .superRefine((value, ctx) => {
      const millis = parseDuration(value);
      if (typeof millis === 'string') {
        ctx.addIssue({ code: 'custom', message: millis });
      } else if (millis < minMs || millis > MAX_DURATION_MS) {
        const low = minMs === 0 ? '0' : formatDuration(minMs);
        ctx.addIssue({
          code: 'custom',
          message:
            `expected a duration from ${low} to ${formatDuration(MAX_DURATION_MS)}, got ` +
            `${showValue(value)}` +
            (millis > MAX_DURATION_MS ? ' (Node timers overflow past about 24.8 days)' : ''),
        });
      }
    });
}

/** A bounded list of non-empty strings. */
const stringList = z.array(z.string().min(1)).max(MAX_LIST);

/** `limits`: every field optional with a default; durations stay as written until normalize. */
export const LimitsSchema = z.strictObject({
  maxConcurrent: intRange(1, 16).default(4),
  maxAgents: intRange(1, 1000).default(64),
  agentTimeout: durationSchema(1).default('10m'),
  runTimeout: durationSchema(1).default('60m'),
  /**
   * Kill an agent that showed no sign of life (no output, no CPU time of its process group) for
   * this long; `0` turns it off. Absent: 15m for claude/codex/pi agents, off for `command`.
   */
  agentIdleTimeout: durationSchema(0).optional(),
  /**
   * Continue an agent's CLI session (claude --resume, codex exec resume, pi --session) instead of
   * starting over when it runs again after a transient failure, a timeout or a stall, or when a
   * resume reruns it. Default true; `false` always starts fresh.
   */
  continueSessions: z.boolean().optional(),
  retries: intRange(0, 10).default(1),
  retryBackoff: durationSchema(0).default('1s'),
  maxOutputBytes: intRange(1024, 64 * 1024 * 1024).default(262_144),
  maxContextBytes: intRange(1024, 64 * 1024 * 1024).default(65_536),
  budget: z
    .strictObject({
      /** Ceiling on the run's total cost in US dollars (as agent CLIs report it). */
      usd: z.number().positive().optional(),
      /** Ceiling on the run's total tokens (input + output). */
      tokens: z.number().int().positive().optional(),
      /** Expected cost of one agent, for the plan's estimate and dispatch decisions. */
      perAgentUsd: z.number().positive().optional(),
      /** Expected tokens of one agent. */
      perAgentTokens: z.number().int().positive().optional(),
    })
    .optional(),
});

/** `defaults`: the agent a task gets when neither it nor its phase names one, and the runner an
 * agent gets when it names none. */
export const DefaultsSchema = z.strictObject({
  agent: idSchema.optional(),
  runner: z.enum(RUNNER_KINDS).optional(),
  /** `sandbox` of every agent that sets none (see AgentSpecSchema.sandbox). */
  sandbox: z.enum(['off', 'required']).optional(),
});

/** An environment variable name. */
const envNameSchema = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, {
  error: (iss) =>
    `expected an environment variable name (letters, digits and '_', not starting with a digit), got ${showValue(iss.input)}`,
});

/**
 * One entry of `agents`. `runner` may be left out when `defaults.runner` is set; `command` is
 * required (non-empty) for runner `command` — checked in normalize, where defaults are known.
 */
export const AgentSpecSchema = z.strictObject({
  runner: z.enum(RUNNER_KINDS).optional(),
  command: z
    .array(z.string(), {
      error: (iss) =>
        iss.code === 'invalid_type' && typeof iss.input === 'string'
          ? 'expected an array of strings (argv), got a string; write ["bash","-c","..."] to use a shell'
          : undefined,
    })
    .min(1, { error: 'expected a non-empty array of strings (argv), got an empty array' })
    .max(MAX_LIST)
    .optional(),
  model: z.string().min(1).max(200).optional(),
  tools: stringList.optional(),
  tier: z.enum(['read_only', 'edit']).default('read_only'),
  /** `worktree`: every task of this agent runs in its own git worktree (see phases[].isolation). */
  isolation: z.enum(['worktree', 'none']).optional(),
  maxTurns: z.number().int().positive().optional(),
  /** This agent's idle watchdog (see limits.agentIdleTimeout); `0` turns it off. */
  idleTimeout: durationSchema(0).optional(),
  /** This agent's continueSessions (see limits.continueSessions). */
  continueSessions: z.boolean().optional(),
  systemPrompt: z.string().max(MAX_PROMPT_CHARS).optional(),
  /** `true`: the agent (and what it runs) may reach the network; shown in the plan, needs approval over MCP. */
  network: z.boolean().optional(),
  /**
   * `off`: run unconfined on purpose (needs approval over MCP); `required`: refuse to run when the
   * OS sandbox (bubblewrap) is missing. Unset: confined where possible (see docs/security.md).
   */
  sandbox: z.enum(['off', 'required']).optional(),
  /** Extra folders the agent may read (absolute, `~/…`, or relative to the project). */
  readDirs: z.array(z.string().min(1).max(4096)).max(MAX_LIST).optional(),
  env: z
    .record(
      envNameSchema,
      z.string({
        error: (iss) =>
          `expected a string, got ${describeValue(iss.input)}` +
          (typeof iss.input === 'number' || typeof iss.input === 'boolean'
            ? ` (quote it: "${String(iss.input)}")`
            : ''),
      }),
    )
    .optional(),
  /**
   * Names of the owner's environment variables the agent's child receives; the values are read
   * when the child starts and never stored. Secrets belong here rather than in `env`.
   */
  passEnv: z
    .array(
      envNameSchema.refine((n) => !n.startsWith('FANFOLD_'), {
        error: (iss) => `expected a variable of your own, got ${showValue(iss.input)}: fanfold's own FANFOLD_* settings never pass to a child`,
      }),
      {
      error: (iss) =>
        iss.code === 'invalid_type' && typeof iss.input === 'string'
          ? `expected a list of environment variable names, got a string; write [${JSON.stringify(iss.input)}]`
          : undefined,
      },
    )
    .max(200, { error: (iss) => `expected at most 200 names, got ${(iss.input as unknown[]).length}` })
    .optional(),
});

/** Longest task schema accepted, as JSON text (characters). */
export const MAX_SCHEMA_CHARS = 64 * 1024;

/**
 * A task's `schema`: the JSON Schema its answer must match (structured output). Only its shape is
 * checked here; whether it compiles is checked where plans are built (engine/plan-file.ts).
 */
export const JsonSchemaSpec = z
  .record(z.string(), z.unknown(), {
    error: (iss) =>
      `expected a JSON Schema object (e.g. {type: object, properties: {...}, required: [...]}), got ${describeValue(iss.input)}`,
  })
  .superRefine((value, ctx) => {
    const size = JSON.stringify(value).length;
    if (size > MAX_SCHEMA_CHARS) {
      ctx.addIssue({ code: 'custom', message: `expected a schema of at most ${MAX_SCHEMA_CHARS} characters as JSON, got ${size}` });
    }
  });

/** One task of a phase: one agent run. */
export const TaskSpecSchema = z.strictObject({
  id: idSchema,
  prompt: z.string().min(1).max(MAX_PROMPT_CHARS),
  agent: idSchema.optional(),
  dependsOn: z
    .array(
      z.string().regex(TASK_DEP_PATTERN, {
        error: (iss) =>
          `expected a task ref 'phase/task' or the id of a task of this phase, got ${showValue(iss.input)}`,
      }),
    )
    .max(MAX_LIST)
    .optional(),
  /** JSON Schema of the task's structured answer (overrides the phase's). */
  schema: JsonSchemaSpec.optional(),
  /** `worktree`: run in an own git worktree and hand the change back as a patch (edit tier). */
  isolation: z.enum(['worktree', 'none']).optional(),
});

/**
 * A dotted path into a structured answer (`findings`, `result.files`). Each step is a property
 * name or an array index; no brackets, no wildcards.
 */
export const ItemsPathSchema = z.string().regex(/^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/, {
  error: (iss) => `expected a dotted path into the structured answer (e.g. 'findings' or 'result.files'), got ${showValue(iss.input)}`,
});

/** `forEach`: one task per item found in the structured answers of an earlier phase. */
export const ForEachSchema = z.strictObject({
  /** The phase whose structured answers hold the items (it becomes a dependency). */
  from: idSchema,
  /** Where the items are in each answer; absent: the answer itself when it is a list, or its only list. */
  items: ItemsPathSchema.optional(),
  /** Most items expanded; the rest are reported as dropped (never silently). */
  max: intRange(1, 1000).optional(),
});

/** `verify`: N skeptics try to refute every finding of the phase; the majority decides. */
export const VerifySchema = z.strictObject({
  skeptics: intRange(1, 9).default(2),
  agent: idSchema.default('skeptic'),
  refuteBy: z.enum(['majority', 'any', 'all']).default('majority'),
  /** Where the findings are in each structured answer; absent: the answer's only list, else the whole output. */
  items: ItemsPathSchema.optional(),
  /** The skeptic's prompt, a template over `{{finding}}`; a built-in prompt when absent. */
  prompt: z.string().min(1).max(MAX_PROMPT_CHARS).optional(),
  /** Most findings verified; the rest are reported as unverified. */
  max: intRange(1, 1000).optional(),
});

/** `gate`: a check after the phase; on failure, a fix task and the check again. */
export const GateSchema = z.strictObject({
  /** A shell command (run with `sh -c` in the project directory); exit code 0 passes. */
  command: z.string().min(1).max(10_000).optional(),
  /** An agent that judges the phase's work and answers `{pass, reasons}`. */
  critic: z.strictObject({
    agent: idSchema,
    prompt: z.string().min(1).max(MAX_PROMPT_CHARS).optional(),
  }).optional(),
  /** How many times the gate runs at most (the first check included). */
  maxIterations: intRange(1, 20).optional(),
  /** The agent (default: the phase's) and prompt (a template over `{{failure}}`) of fix tasks. */
  fix: z.strictObject({
    agent: idSchema.optional(),
    prompt: z.string().min(1).max(MAX_PROMPT_CHARS).optional(),
  }).optional(),
  /** Longest gate output handed to a fix task, in characters. */
  maxFailureChars: intRange(200, 100_000).default(8000),
});

/** `converge`: repeat the phase while its rounds still find something new. */
export const ConvergeSchema = z.strictObject({
  /** Stop after this many rounds in a row that found nothing new. */
  untilDry: intRange(1, 20).default(1),
  /** Stop after this many rounds in any case. */
  maxRounds: intRange(1, 50).default(5),
  /** Where the findings are in each structured answer (as in verify.items). */
  items: ItemsPathSchema.optional(),
  /** A path inside each finding that identifies it for deduplication (default: the whole finding). */
  key: ItemsPathSchema.optional(),
});

/**
 * `checkpoint`: before the phase starts, the run waits (status `awaiting_approval`) for a person
 * to answer `message`; phases that do not depend on it go on meanwhile.
 */
export const CheckpointSchema = z.strictObject({
  message: z.string().min(1).max(2000),
  /** How long to wait for an answer; absent: until answered. */
  timeout: durationSchema(1).optional(),
  /** What an unanswered checkpoint does when `timeout` runs out (default `stop`). */
  onTimeout: z.enum(['stop', 'continue']).default('stop'),
});

/** One phase: a group of tasks that run in parallel once the phases they depend on are done. */
export const PhaseSpecSchema = z.strictObject({
  id: idSchema,
  title: z.string().max(200).optional(),
  description: z.string().max(10_000).optional(),
  agent: idSchema.optional(),
  dependsOn: z.array(idSchema).max(MAX_LIST).optional(),
  onFailure: z.enum(['stop', 'continue']).default('stop'),
  final: z.boolean().optional(),
  summarize: z.strictObject({ agent: idSchema }).optional(),
  /** JSON Schema every task of the phase answers with, unless the task has its own. */
  schema: JsonSchemaSpec.optional(),
  /** Shorthand for `tasks: [{id: <phase id>, prompt}]`. */
  prompt: z.string().min(1).max(MAX_PROMPT_CHARS).optional(),
  // No upper bound here on purpose: a long list is refused by the limits.maxAgents check, whose
  // message says how many tasks were planned and what to do.
  tasks: z.array(TaskSpecSchema).min(1).optional(),
  forEach: ForEachSchema.optional(),
  /** `pipeline`: each item moves to this phase as soon as its previous stage is done. */
  mode: z.enum(['barrier', 'pipeline']).default('barrier'),
  verify: VerifySchema.optional(),
  gate: GateSchema.optional(),
  /** Same as gate.maxIterations. */
  maxIterations: intRange(1, 20).optional(),
  converge: ConvergeSchema.optional(),
  /** `worktree`: every task of the phase runs in its own git worktree (edit tier). */
  isolation: z.enum(['worktree', 'none']).optional(),
  /** `true`: the phase's gate command may reach the network (it has none by default). */
  network: z.boolean().optional(),
  /** A person approves (or rejects) before this phase starts; see CheckpointSchema. */
  checkpoint: CheckpointSchema.optional(),
});

/** The whole workflow spec (version 1). */
export const WorkflowSpecSchema = z.strictObject({
  version: z.literal(1),
  name: z.string().min(1).max(100),
  goal: z.string().max(10_000).optional(),
  limits: LimitsSchema.prefault({}),
  defaults: DefaultsSchema.optional(),
  agents: z.record(idSchema, AgentSpecSchema).optional(),
  phases: z.array(PhaseSpecSchema).min(1),
});

/** A validated spec, with schema defaults applied (durations still as written). */
export type WorkflowSpec = z.output<typeof WorkflowSpecSchema>;

/** A spec as an author may write it (defaults optional). */
export type WorkflowSpecInput = z.input<typeof WorkflowSpecSchema>;

/** One `agents` entry of a validated spec. */
export type AgentSpec = z.output<typeof AgentSpecSchema>;

/** One phase of a validated spec. */
export type PhaseSpec = z.output<typeof PhaseSpecSchema>;

/** One task of a validated spec. */
export type TaskSpec = z.output<typeof TaskSpecSchema>;

export type ForEachSpec = z.output<typeof ForEachSchema>;
export type VerifySpec = z.output<typeof VerifySchema>;
export type GateSpec = z.output<typeof GateSchema>;
export type ConvergeSpec = z.output<typeof ConvergeSchema>;
