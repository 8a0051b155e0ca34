/**
 * Agent profiles: Markdown files whose YAML front matter describes an agent and whose body is the
 * system prompt appended to the CLI's own.
 *
 *   ---
 *   name: reviewer
 *   description: Reviews a change for bugs
 *   runner: claude            # optional: defaults.runner, $FANFOLD_RUNNER, else claude/codex on PATH
 *   model: sonnet             # optional
 *   tools: Read, Grep, Glob   # optional: a comma list (Claude Code style) or a YAML list
 *   tier: read_only           # read_only (default) | edit
 *   maxTurns: 20              # optional
 *   ---
 *   You are a meticulous reviewer…
 *
 * A name is looked up in the project's `.claude/agents/` first, then the user's
 * (`$CLAUDE_CONFIG_DIR/agents` or `~/.claude/agents`), then the profiles bundled with fanfold
 * (`agents/` of the package). So a user's own Claude Code subagents work as workflow agents: their
 * `tools` comma list is read, fields fanfold does not use (`color`, `permissionMode`, …) are
 * ignored, and `model: inherit` means "the CLI's default".
 *
 * Everything here is synchronous: `buildPlan`'s `resolveAgent` is, and profile folders are small.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { ID_PATTERN } from '../spec/ids.js';
import { MAX_PROMPT_CHARS, RUNNER_KINDS } from '../spec/schema.js';
import type { AgentDef, RunnerKind, Tier } from '../spec/types.js';
import { AGENT_CLIS, isCliInstalled } from './agent-cli.js';

/** Where a profile was found, in lookup order. */
export type ProfileSource = 'project' | 'user' | 'bundled';

/** One parsed profile. */
export interface Profile {
  name: string;
  description?: string;
  /** Runner named by the profile; absent means the default runner. */
  runner?: RunnerKind;
  model?: string;
  tools?: string[];
  tier: Tier;
  maxTurns?: number;
  /** The body: appended to the CLI's system prompt. */
  systemPrompt?: string;
  env?: Record<string, string>;
  /** Names of the owner's environment variables the child receives (see AgentDef.passEnv). */
  passEnv?: string[];
  /** argv, for a profile of runner `command`. */
  command?: string[];
  /** The file it came from. */
  file: string;
  source: ProfileSource;
}

/** Largest profile file read, in bytes. */
export const MAX_PROFILE_BYTES = 256 * 1024;

/** Most `.md` files read from one folder. */
const MAX_PROFILE_FILES = 500;

/** The folder of the profiles bundled with fanfold (`agents/` at the package root). */
export function bundledProfilesDir(): string {
  // From dist/runners/profiles.js (and src/runners/profiles.ts under the tests) to <package>/agents/.
  return fileURLToPath(new URL('../../agents/', import.meta.url));
}

function fail(file: string, message: string): never {
  throw new Error(`agent profile ${file}: ${message}`);
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v);
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${String(v)}`;
}

/**
 * `Read, Grep, Bash(git log:*)` → ['Read', 'Grep', 'Bash(git log:*)']: split on commas outside
 * parentheses (a permission pattern may hold commas).
 */
export function splitToolList(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    else if (ch === ')') depth = Math.max(0, depth - 1);
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((t) => t.trim()).filter((t) => t !== '');
}

/**
 * Parses a profile's text. `fallbackName` (the file's base name) is used when the front matter
 * has no `name`. Throws an Error naming the file and the field for anything malformed.
 */
export function parseProfile(text: string, file: string, source: ProfileSource, fallbackName?: string): Profile {
  const m = /^\uFEFF?---[ \t]*\r?\n([\s\S]*?)\r?\n---[ \t]*(?:\r?\n|$)/.exec(text);
  if (!m) fail(file, "expected YAML front matter between '---' lines at the top of the file");
  let fm: unknown;
  try {
    fm = parseYaml(m[1] ?? '', { maxAliasCount: 10 }) ?? {};
  } catch (err) {
    fail(file, `front matter is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (typeof fm !== 'object' || fm === null || Array.isArray(fm)) fail(file, `front matter must be a mapping of fields, got ${show(fm)}`);
  const f = fm as Record<string, unknown>;
  const str = (key: string): string | undefined => {
    const v = f[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' || v.trim() === '') fail(file, `${key}: expected a non-empty string, got ${show(v)}`);
    return v.trim();
  };

  const name = str('name') ?? fallbackName;
  if (name === undefined) fail(file, 'name: required');
  const p: Profile = { name, tier: 'read_only', file, source };
  const description = str('description');
  if (description !== undefined) p.description = description;

  const runner = str('runner');
  if (runner !== undefined) {
    if (!(RUNNER_KINDS as readonly string[]).includes(runner)) fail(file, `runner: expected one of ${RUNNER_KINDS.join(', ')}, got ${show(runner)}`);
    p.runner = runner as RunnerKind;
  }
  const model = str('model');
  // Claude Code's `inherit` = the main session's model; a sub-agent of fanfold has none: use the CLI's default.
  if (model !== undefined && model !== 'inherit') p.model = model;

  const tools = f.tools;
  if (tools !== undefined && tools !== null) {
    if (typeof tools === 'string') p.tools = splitToolList(tools);
    else if (Array.isArray(tools) && tools.every((t) => typeof t === 'string')) p.tools = tools.map((t) => t.trim()).filter((t) => t !== '');
    else fail(file, `tools: expected a comma-separated list ("Read, Grep, Glob") or a list of names, got ${show(tools)}`);
  }

  const tier = str('tier');
  if (tier !== undefined) {
    if (tier !== 'read_only' && tier !== 'edit') fail(file, `tier: expected read_only or edit, got ${show(tier)}`);
    p.tier = tier;
  }
  const maxTurns = f.maxTurns;
  if (maxTurns !== undefined && maxTurns !== null) {
    if (typeof maxTurns !== 'number' || !Number.isInteger(maxTurns) || maxTurns < 1 || maxTurns > 10_000) {
      fail(file, `maxTurns: expected an integer from 1 to 10000, got ${show(maxTurns)}`);
    }
    p.maxTurns = maxTurns;
  }
  const env = f.env;
  if (env !== undefined && env !== null) {
    if (typeof env !== 'object' || Array.isArray(env)) fail(file, `env: expected a mapping of variable names to strings, got ${show(env)}`);
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(env as Record<string, unknown>)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(k)) fail(file, `env: ${show(k)} is not an environment variable name`);
      if (typeof v !== 'string') fail(file, `env.${k}: expected a string, got ${show(v)} (quote it)`);
      out[k] = v;
    }
    p.env = out;
  }
  const passEnv = f.passEnv;
  if (passEnv !== undefined && passEnv !== null) {
    const names = typeof passEnv === 'string' ? passEnv.split(',').map((n) => n.trim()).filter((n) => n !== '') : passEnv;
    if (!Array.isArray(names) || !names.every((n) => typeof n === 'string' && /^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(n) && !n.startsWith('FANFOLD_'))) {
      fail(file, `passEnv: expected a list of environment variable names (not FANFOLD_*), got ${show(passEnv)}`);
    }
    p.passEnv = names as string[];
  }
  const command = f.command;
  if (command !== undefined && command !== null) {
    if (!Array.isArray(command) || command.length === 0 || !command.every((c) => typeof c === 'string')) {
      fail(file, `command: expected a non-empty list of strings (argv), got ${show(command)}`);
    }
    p.command = command as string[];
  }
  if (p.runner === 'command' && !p.command) fail(file, "command: required for runner 'command' (the argv to run)");

  const body = text.slice(m[0].length).trim();
  if (body.length > MAX_PROMPT_CHARS) fail(file, `the system prompt (the body) is ${body.length} characters, over ${MAX_PROMPT_CHARS}`);
  if (body !== '') p.systemPrompt = body;
  return p;
}

/** What `defaultRunner` looks at. */
export interface DefaultRunnerOptions {
  /** The spec's `defaults.runner`. */
  specRunner?: RunnerKind;
  /** For `FANFOLD_RUNNER`, the `FANFOLD_<KIND>_BIN` overrides and PATH (default `process.env`). */
  env?: NodeJS.ProcessEnv;
}

/**
 * The runner of an agent that names none: the spec's `defaults.runner`, else `$FANFOLD_RUNNER`,
 * else `claude` when its CLI is installed, else `codex`, else an Error saying what to install.
 * `command` never qualifies (a profile has no argv).
 */
export function defaultRunner(opts: DefaultRunnerOptions = {}): RunnerKind {
  const env = opts.env ?? process.env;
  if (opts.specRunner !== undefined && opts.specRunner !== 'command') return opts.specRunner;
  const fromEnv = env.FANFOLD_RUNNER?.trim();
  if (fromEnv) {
    if (fromEnv === 'claude' || fromEnv === 'codex' || fromEnv === 'pi') return fromEnv;
    throw new Error(`FANFOLD_RUNNER=${JSON.stringify(fromEnv)} is not an agent runner: expected claude, codex or pi`);
  }
  if (isCliInstalled('claude', env)) return 'claude';
  if (isCliInstalled('codex', env)) return 'codex';
  throw new Error(
    `no agent CLI found to run it: neither '${AGENT_CLIS.claude.bin}' nor '${AGENT_CLIS.codex.bin}' is on PATH. ` +
      `Install one (npm i -g ${AGENT_CLIS.claude.pkg}, or npm i -g ${AGENT_CLIS.codex.pkg}), ` +
      'or name a runner: defaults.runner in the spec, runner in the profile, or FANFOLD_RUNNER=claude|codex|pi',
  );
}

/** Claude Code model names and aliases, meaningless to another CLI. */
const CLAUDE_MODEL = /^(sonnet|opus|haiku|fable|opusplan|claude-[\w.:-]*)(\[[^\]]*\])?$/i;

/** Options of `loadProfiles`. */
export interface LoadProfilesOptions {
  /** The project directory: its `.claude/agents/` comes first. */
  cwd: string;
  /** Env for the user folder, FANFOLD_RUNNER and PATH (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** The spec's `defaults.runner`, for profiles that name no runner. */
  specRunner?: RunnerKind;
  /** The user's profile folder; `false` to skip it. Default `$CLAUDE_CONFIG_DIR/agents` or `~/.claude/agents`. */
  userDir?: string | false;
  /** The bundled profile folder (default `bundledProfilesDir()`). */
  bundledDir?: string;
}

/** The profiles visible from one project. */
export interface ProfileSet {
  /** Folders searched, in order. */
  readonly dirs: ReadonlyArray<{ source: ProfileSource; dir: string }>;
  /** The profile called `name` (project before user before bundled), or undefined. Throws for a broken file of that name. */
  find(name: string): Profile | undefined;
  /** `find`, as the AgentDef a plan carries (runner defaulted). For `buildPlan`'s `resolveAgent`. */
  resolve(name: string): AgentDef | undefined;
  /** Every profile that parses, first of each name. */
  list(): Profile[];
}

interface Folder {
  source: ProfileSource;
  dir: string;
  /** By front-matter name and by file base name. */
  byName?: Map<string, Profile>;
  /** Files that failed to parse, by base name. */
  broken?: Map<string, Error>;
}

function scan(folder: Folder): void {
  if (folder.byName) return;
  folder.byName = new Map();
  folder.broken = new Map();
  let names: string[];
  try {
    names = readdirSync(folder.dir).filter((n) => n.endsWith('.md')).sort().slice(0, MAX_PROFILE_FILES);
  } catch {
    return; // no such folder: no profiles there
  }
  const byFile = new Map<string, Profile>();
  for (const n of names) {
    const file = path.join(folder.dir, n);
    const base = n.slice(0, -3);
    try {
      const st = statSync(file);
      if (!st.isFile()) continue;
      if (st.size > MAX_PROFILE_BYTES) fail(file, `${st.size} bytes, over the ${MAX_PROFILE_BYTES}-byte limit`);
      const p = parseProfile(readFileSync(file, 'utf8'), file, folder.source, base);
      if (!folder.byName.has(p.name)) folder.byName.set(p.name, p);
      byFile.set(base, p);
    } catch (err) {
      folder.broken.set(base, err as Error);
    }
  }
  // A file's base name finds it too when its front matter names it differently.
  for (const [base, p] of byFile) if (!folder.byName.has(base)) folder.byName.set(base, p);
}

/**
 * The profiles visible from `opts.cwd`. Folders are read on first use, once. Lookups are
 * synchronous so they can serve as `buildPlan`'s `resolveAgent`.
 */
export function loadProfiles(opts: LoadProfilesOptions): ProfileSet {
  const env = opts.env ?? process.env;
  const folders: Folder[] = [{ source: 'project', dir: path.join(opts.cwd, '.claude', 'agents') }];
  if (opts.userDir !== false) {
    const configDir = env.CLAUDE_CONFIG_DIR?.trim() || path.join(env.HOME?.trim() || os.homedir(), '.claude');
    folders.push({ source: 'user', dir: opts.userDir ?? path.join(configDir, 'agents') });
  }
  folders.push({ source: 'bundled', dir: opts.bundledDir ?? bundledProfilesDir() });
  // The same folder twice (a project inside ~ with cwd = ~) is searched once.
  const seen = new Set<string>();
  const unique = folders.filter((f) => {
    const key = path.resolve(f.dir);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });

  const find = (name: string): Profile | undefined => {
    for (const folder of unique) {
      scan(folder);
      const hit = folder.byName!.get(name);
      if (hit) return hit;
      const broken = folder.broken!.get(name);
      if (broken) throw broken;
    }
    return undefined;
  };

  return {
    dirs: unique.map((f) => ({ source: f.source, dir: f.dir })),
    find,
    resolve(name: string): AgentDef | undefined {
      if (!ID_PATTERN.test(name)) return undefined;
      const p = find(name);
      if (!p) return undefined;
      return toAgentDef(p, p.runner ?? defaultRunner({ env, ...(opts.specRunner ? { specRunner: opts.specRunner } : {}) }));
    },
    list(): Profile[] {
      const out = new Map<string, Profile>();
      for (const folder of unique) {
        scan(folder);
        for (const p of folder.byName!.values()) if (!out.has(p.name)) out.set(p.name, p);
      }
      return [...out.values()];
    },
  };
}

/** The AgentDef of a profile run by `runner`. */
export function toAgentDef(p: Profile, runner: RunnerKind): AgentDef {
  const def: AgentDef = { name: p.name, runner, tier: p.tier };
  // A Claude model alias given to another CLI would fail every attempt: that CLI's default it is.
  if (p.model !== undefined && (runner === 'claude' || !CLAUDE_MODEL.test(p.model))) def.model = p.model;
  if (p.tools !== undefined) def.tools = [...p.tools];
  if (p.maxTurns !== undefined) def.maxTurns = p.maxTurns;
  if (p.systemPrompt !== undefined) def.systemPrompt = p.systemPrompt;
  if (p.env !== undefined) def.env = { ...p.env };
  if (p.passEnv !== undefined) def.passEnv = [...p.passEnv];
  if (p.command !== undefined) def.command = [...p.command];
  return def;
}
