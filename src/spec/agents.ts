/**
 * Agent resolution for one spec: the agents the spec defines, profiles found through the caller's
 * `resolveAgent`, and the implicit agent that `defaults.runner` provides. Each unknown name is
 * reported once per place it is written, with the known names and a "did you mean".
 */
import type { AgentSpec, WorkflowSpec } from './schema.js';
import type { AgentDef, RunnerKind, SandboxMode, SpecIssue } from './types.js';
import { didYouMean, nameList } from './suggest.js';
import { parseDuration } from './duration.js';

/** Looks an agent up by name outside the spec (e.g. `.claude/agents/*.md` profiles). */
export type ResolveAgent = (name: string) => AgentDef | undefined;

/**
 * The runner an agent the spec defines without one gets when the spec sets no defaults.runner:
 * the host's agent CLI (FANFOLD_RUNNER, else the one installed). Throws with what to do when none.
 */
export type HostRunner = () => RunnerKind;

/** Builds the AgentDef of a spec entry; `runner` falls back to `defaults.runner`. */
function toAgentDef(name: string, spec: AgentSpec, runner: RunnerKind): AgentDef {
  const def: AgentDef = { name, runner, tier: spec.tier };
  if (spec.command !== undefined) def.command = [...spec.command];
  if (spec.model !== undefined) def.model = spec.model;
  if (spec.tools !== undefined) def.tools = [...spec.tools];
  if (spec.maxTurns !== undefined) def.maxTurns = spec.maxTurns;
  if (spec.idleTimeout !== undefined) {
    const ms = parseDuration(spec.idleTimeout);
    if (typeof ms === 'number') def.idleTimeoutMs = ms; // the schema has checked it
  }
  if (spec.continueSessions !== undefined) def.continueSessions = spec.continueSessions;
  if (spec.systemPrompt !== undefined) def.systemPrompt = spec.systemPrompt;
  if (spec.env !== undefined) def.env = { ...spec.env };
  if (spec.passEnv !== undefined) def.passEnv = [...new Set(spec.passEnv)];
  if (spec.isolation !== undefined) def.isolation = spec.isolation;
  if (spec.network !== undefined) def.network = spec.network;
  if (spec.sandbox !== undefined) def.sandbox = spec.sandbox;
  if (spec.readDirs !== undefined) def.readDirs = [...spec.readDirs];
  return def;
}

/** Tools that reach the network by themselves: listing one means `network: true`. */
const NETWORK_TOOLS: ReadonlySet<string> = new Set(['webfetch', 'websearch']);

/**
 * `def` with `defaults.sandbox` applied when it sets none, and `network: true` when its tools
 * list WebFetch or WebSearch. Why here: the content key and every layer after the plan must see
 * the same, final confinement of an agent.
 */
function withSecurityDefaults(def: AgentDef, sandbox: SandboxMode | undefined): AgentDef {
  const out = { ...def };
  if (out.sandbox === undefined && sandbox !== undefined) out.sandbox = sandbox;
  if (out.network === undefined && (out.tools ?? []).some((t) => NETWORK_TOOLS.has(t.split('(')[0]!.trim().toLowerCase()))) out.network = true;
  return out;
}

/** The agents of one spec and every name resolved so far. */
export class AgentBook {
  /** Agents the spec defines, in spec order (including ones with issues, for lookups). */
  readonly #defined = new Map<string, AgentDef>();
  /** Agents found through resolveAgent or made implicit, in first-use order. */
  readonly #external = new Map<string, AgentDef>();
  /** Names resolveAgent did not know (asked once per name). */
  readonly #unknown = new Set<string>();
  /** Names whose profile exists but could not be resolved (the first use reported why). */
  readonly #unresolvable = new Set<string>();
  /** Names some task, summarize or defaults entry uses. */
  readonly #used = new Set<string>();
  readonly #resolve: ResolveAgent | undefined;
  readonly #issues: SpecIssue[];
  readonly #warnings: string[];
  readonly #sandbox: SandboxMode | undefined;

  constructor(spec: WorkflowSpec, resolve: ResolveAgent | undefined, issues: SpecIssue[], warnings: string[], hostRunner?: HostRunner) {
    this.#resolve = resolve;
    this.#issues = issues;
    this.#warnings = warnings;
    this.#sandbox = spec.defaults?.sandbox;
    const defaultRunner = spec.defaults?.runner;
    // Asked at most once, and only for an agent that names no runner when the spec sets none.
    let host: { runner?: RunnerKind; why?: string } | undefined;
    const fromHost = () => {
      if (!host) {
        try {
          host = hostRunner ? { runner: hostRunner() } : {};
        } catch (e) {
          host = { why: e instanceof Error ? e.message : String(e) };
        }
      }
      return host;
    };
    for (const [name, entry] of Object.entries(spec.agents ?? {})) {
      const runner = entry.runner ?? defaultRunner ?? (entry.command === undefined ? fromHost().runner : undefined);
      if (runner === undefined) {
        const why = entry.command === undefined ? fromHost().why : undefined;
        issues.push({
          path: `agents.${name}.runner`,
          message: "required: expected one of 'command', 'claude', 'codex', 'pi' (or set defaults.runner)" + (why ? `; ${why}` : ''),
        });
      } else if (runner === 'command' && entry.command === undefined) {
        issues.push({
          path: `agents.${name}.command`,
          message: 'required for runner \'command\': the argv to run, e.g. ["bash", "scripts/census.sh"]',
        });
      } else if (runner !== 'command' && entry.command !== undefined) {
        warnings.push(`agents.${name}.command is only used by runner 'command'; runner '${runner}' ignores it`);
      }
      this.#defined.set(name, toAgentDef(name, entry, runner ?? 'command'));
    }
  }

  /** Names the spec defines, in spec order. */
  get definedNames(): string[] {
    return [...this.#defined.keys()];
  }

  /**
   * Finds the agent `name`, written at `path`; reports an issue there when neither the spec nor
   * resolveAgent knows it. Marks the name used.
   */
  lookup(name: string, path: string): AgentDef | undefined {
    const def = this.#find(name, path);
    if (def) this.#used.add(name);
    return def;
  }

  #find(name: string, path: string): AgentDef | undefined {
    const own = this.#defined.get(name) ?? this.#external.get(name);
    if (own) return own;
    // Its first use already said why it cannot be resolved; "unknown" would be false (it exists).
    if (this.#unresolvable.has(name)) return undefined;
    if (!this.#unknown.has(name) && this.#resolve) {
      let found: AgentDef | undefined;
      try {
        found = this.#resolve(name);
      } catch (err) {
        this.#issues.push({ path, message: `cannot resolve agent '${name}': ${(err as Error)?.message ?? String(err)}` });
        this.#unresolvable.add(name);
        return undefined;
      }
      if (found && typeof found === 'object') {
        // The plan refers to agents by the name the spec used; keep that name on the definition.
        const def: AgentDef = { ...found, name };
        this.#external.set(name, def);
        return def;
      }
    }
    this.#unknown.add(name);
    const known = this.definedNames;
    this.#issues.push({
      path,
      message:
        `unknown agent '${name}'${didYouMean(name, known)}: ` +
        (known.length > 0 ? `agents defined in the spec: ${nameList(known)}` : 'the spec defines no agents') +
        (this.#resolve ? '; no agent profile has that name either' : ''),
    });
    return undefined;
  }

  /**
   * The agent a task gets when neither it nor its phase nor `defaults.agent` names one: the only
   * agent the spec defines, else an implicit agent of `defaults.runner` (not `command`, which
   * needs argv), named after the runner kind.
   */
  fallback(spec: WorkflowSpec): AgentDef | undefined {
    const names = this.definedNames;
    if (names.length === 1) return this.lookup(names[0]!, 'agents');
    const runner = spec.defaults?.runner;
    if (runner === undefined || runner === 'command') return undefined;
    const def = this.#defined.get(runner) ?? this.#external.get(runner) ?? { name: runner, runner, tier: 'read_only' };
    if (!this.#defined.has(runner)) this.#external.set(runner, def);
    this.#used.add(runner);
    return def;
  }

  /** Adds an agent the engine makes itself (a gate's command); marked used. */
  addSynthetic(def: AgentDef): void {
    this.#external.set(def.name, def);
    this.#used.add(def.name);
  }

  /** Every agent the plan carries: all the spec defines, then the resolved ones in first-use order. */
  planAgents(): Record<string, AgentDef> {
    const out: Record<string, AgentDef> = {};
    // Plain assignment is safe: names match ID_PATTERN, which cannot spell `__proto__`.
    for (const [name, def] of [...this.#defined, ...this.#external]) out[name] = withSecurityDefaults(def, this.#sandbox);
    return out;
  }

  /** Adds warnings about defined-but-unused agents and edit-tier agents in use. */
  warnAboutUse(): void {
    for (const name of this.#defined.keys()) {
      if (!this.#used.has(name)) this.#warnings.push(`agent '${name}' is defined but no task uses it`);
    }
    for (const [name, def] of [...this.#defined, ...this.#external]) {
      if (this.#used.has(name) && def.tier === 'edit') {
        this.#warnings.push(`agent '${name}' has tier 'edit': its tasks may change files and need approval to run`);
      }
    }
  }
}
