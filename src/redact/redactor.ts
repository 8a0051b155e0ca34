/**
 * Redaction of everything derived from a child before it is stored: exact values of the owner's
 * secret-looking environment variables (and of what the spec passes or sets), then the
 * well-known credential formats of rules.ts. Each secret becomes `[REDACTED:<rule>]`; the counts
 * per rule go into the record's `redactions`.
 *
 * Why on the assembled text and not on stream chunks: a secret split across two reads of a pipe
 * would slip past a per-chunk filter. Runners assemble the output, the stderr tail and the final
 * answer; the engine redacts those whole strings once, before the record is built, so nothing
 * downstream (record file, journal, index, digests, context files, report, MCP answers) ever
 * sees the original.
 */
import { SECRET_RULES, type SecretRule } from './rules.js';

/** The marker that replaces a secret. */
export function marker(rule: string): string {
  return `[REDACTED:${rule}]`;
}

/** How many values one rule replaced. */
export interface RedactionCount {
  rule: string;
  count: number;
}

/** Shortest env value redacted by exact match: shorter ones would hit ordinary words. */
export const MIN_SECRET_VALUE_CHARS = 8;

/**
 * Name parts that make an env variable's value a secret (underscore-separated, any case):
 * `GITHUB_TOKEN`, `DB_PASSWORD`, `AWS_SECRET_ACCESS_KEY`, `NPM_AUTH`.
 */
export const SECRET_NAME_PARTS: ReadonlySet<string> = new Set(['KEY', 'TOKEN', 'SECRET', 'PASSWORD', 'PASSWD', 'CREDENTIAL', 'CREDENTIALS', 'AUTH']);

/** Names whose parts look secret but whose values are not (a socket path, an X11 cookie file path). */
export const NOT_SECRET_NAMES: ReadonlySet<string> = new Set(['SSH_AUTH_SOCK', 'XAUTHORITY']);

/** Whether an environment variable's name says its value is a secret. */
export function isSecretName(name: string): boolean {
  if (NOT_SECRET_NAMES.has(name.toUpperCase())) return false;
  return name.toUpperCase().split('_').some((part) => SECRET_NAME_PARTS.has(part));
}

/** A value to redact wherever it occurs, with its rule name (`env:<NAME>`). */
export interface SecretValue {
  rule: string;
  value: string;
}

/**
 * The exact values to redact from `env`: every variable whose name looks secret, plus `alsoNames`
 * (passEnv: declared to pass, so treated as secret whatever the name). Values shorter than
 * MIN_SECRET_VALUE_CHARS, and absolute paths (a credentials *file* name is no secret, and paths
 * show up everywhere in outputs), are left out.
 */
export function secretValuesOf(env: Readonly<Record<string, string | undefined>>, alsoNames: Iterable<string> = []): SecretValue[] {
  const also = new Set(alsoNames);
  const out: SecretValue[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || value.length < MIN_SECRET_VALUE_CHARS) continue;
    if (!also.has(name) && !isSecretName(name)) continue;
    if (!also.has(name) && value.startsWith('/')) continue;
    out.push({ rule: `env:${name}`, value });
  }
  return out;
}

/** The result of redacting one string. */
export interface Redacted {
  text: string;
  /** Replacements per rule (empty when nothing was found). */
  counts: Map<string, number>;
}

/** Adds `n` to `rule` in `counts`. */
function bump(counts: Map<string, number>, rule: string, n = 1): void {
  counts.set(rule, (counts.get(rule) ?? 0) + n);
}

/** Redacts secrets from strings; build one per run (the exact values are fixed for its life). */
export class Redactor {
  readonly #values: SecretValue[];
  readonly #rules: readonly SecretRule[];

  /**
   * `values`: exact values (longest first, so a value containing another is replaced whole);
   * `rules`: the format table (default SECRET_RULES).
   */
  constructor(values: SecretValue[] = [], rules: readonly SecretRule[] = SECRET_RULES) {
    const seen = new Set<string>();
    this.#values = values
      .filter((v) => v.value.length >= MIN_SECRET_VALUE_CHARS && !seen.has(v.value) && (seen.add(v.value), true))
      .sort((a, b) => b.value.length - a.value.length);
    this.#rules = rules;
  }

  /** Number of exact values this redactor looks for. */
  get valueCount(): number {
    return this.#values.length;
  }

  /**
   * The exact values, and whether the format table is the default one: with both, another
   * thread can build the same redactor (`new Redactor(values)`); undefined otherwise.
   */
  portable(): SecretValue[] | undefined {
    return this.#rules === SECRET_RULES ? this.#values.map((v) => ({ ...v })) : undefined;
  }

  /** `text` with every secret replaced, and how many per rule. */
  redact(text: string, counts: Map<string, number> = new Map()): Redacted {
    let out = text;
    for (const { rule, value } of this.#values) {
      if (out.indexOf(value) === -1) continue;
      const parts = out.split(value);
      bump(counts, rule, parts.length - 1);
      out = parts.join(marker(rule));
    }
    for (const rule of this.#rules) {
      if (!rule.keywords.some((k) => out.indexOf(k) !== -1)) continue;
      rule.pattern.lastIndex = 0;
      out = out.replace(rule.pattern, (...m: unknown[]) => {
        const whole = m[0] as string;
        const g = rule.group ?? 0;
        if (g === 0) {
          bump(counts, rule.id);
          return marker(rule.id);
        }
        const secret = m[g] as string | undefined;
        if (!secret || secret.startsWith('[REDACTED')) return whole;
        bump(counts, rule.id);
        // The groups before `g` are the readable context; the match ends with the secret.
        const before = (m.slice(1, g) as (string | undefined)[]).map((s) => s ?? '').join('');
        return `${before}${marker(rule.id)}${whole.slice(before.length + secret.length)}`;
      });
    }
    return { text: out, counts };
  }

  /**
   * A deep copy of a JSON value with every string (and object key) redacted. For structured
   * answers: a secret inside a field is as durable as one in the text.
   */
  redactValue<T>(value: T, counts: Map<string, number> = new Map()): T {
    const walk = (v: unknown): unknown => {
      if (typeof v === 'string') return this.redact(v, counts).text;
      if (Array.isArray(v)) return v.map(walk);
      if (v && typeof v === 'object') {
        const out: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
          // defineProperty: a key such as `__proto__` stays an own key instead of changing the prototype.
          Object.defineProperty(out, this.redact(k, counts).text, { value: walk(x), enumerable: true, writable: true, configurable: true });
        }
        return out;
      }
      return v;
    };
    return walk(value) as T;
  }
}

/** `counts` as the record's `redactions` list, sorted by rule; empty map → empty list. */
export function countsToList(counts: Map<string, number>): RedactionCount[] {
  return [...counts].filter(([, n]) => n > 0).sort(([a], [b]) => a.localeCompare(b)).map(([rule, count]) => ({ rule, count }));
}

/** Total replacements of a `redactions` list. */
export function totalRedactions(list: readonly RedactionCount[] | undefined): number {
  return (list ?? []).reduce((n, r) => n + r.count, 0);
}
