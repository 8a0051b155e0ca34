/**
 * Turns zod issues into SpecIssues a person can act on: a path like
 * `phases[1].tasks[0].dependsOn[0]` and a sentence saying what was expected and what arrived
 * ("expected an integer from 1 to 16, got 40"; "expected a string, got number 3").
 *
 * zod calls `zodErrorMap` for every issue whose schema did not bring its own message; it then
 * knows the full path and the input, so it can look the schema up for bounds and known keys.
 */
import type * as z from 'zod';
import type { SpecIssue } from './types.js';
import { closest, describeValue, didYouMean, nameList, quote, showValue } from './suggest.js';

/** Most issues one SpecError carries; the rest are counted in a last issue. */
export const MAX_ISSUES = 50;

type Path = ReadonlyArray<PropertyKey>;

/** Formats a path as `phases[1].tasks[0].dependsOn[0]`; odd keys as `agents["my agent"]`. */
export function formatPath(path: Path): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (typeof seg === 'string' && /^[A-Za-z0-9_-]+$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(String(seg).slice(0, 60))}]`;
  }
  return out;
}

/** Fields of a zod schema's internal definition that the walk below reads. */
interface DefLike {
  type?: string;
  innerType?: unknown;
  in?: unknown;
  shape?: Record<string, unknown>;
  element?: unknown;
  valueType?: unknown;
}

function defOf(schema: unknown): DefLike | undefined {
  const zod = (schema as { _zod?: { def?: DefLike } } | undefined)?._zod;
  return zod?.def;
}

/** Strips optional/default/prefault/pipe wrappers off a schema. */
function unwrap(schema: unknown): unknown {
  let current = schema;
  for (let i = 0; i < 20; i++) {
    const def = defOf(current);
    if (!def) return current;
    if (def.innerType !== undefined) current = def.innerType;
    else if (def.type === 'pipe' && def.in !== undefined) current = def.in;
    else return current;
  }
  return current;
}

/** The schema that validates the value at `path` under `root`, if the path leads anywhere. */
export function schemaAt(root: unknown, path: Path): unknown {
  let current: unknown = root;
  for (const seg of path) {
    const def = defOf(unwrap(current));
    if (!def) return undefined;
    if (def.type === 'object' && def.shape && typeof seg === 'string' && Object.hasOwn(def.shape, seg)) {
      current = def.shape[seg];
    } else if (def.type === 'array' && typeof seg === 'number') {
      current = def.element;
    } else if (def.type === 'record' && typeof seg === 'string') {
      current = def.valueType;
    } else {
      return undefined;
    }
  }
  return unwrap(current);
}

/** Keys an object schema at `path` accepts (empty when it is not an object schema). */
export function knownKeysAt(root: unknown, path: Path): string[] {
  const def = defOf(schemaAt(root, path));
  return def?.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

function numberBounds(schema: unknown): { min?: number; max?: number; int: boolean } {
  const s = schema as { minValue?: unknown; maxValue?: unknown; isInt?: unknown } | undefined;
  // zod reports ±MAX_SAFE_INTEGER for open ends of int(); those are not bounds worth naming.
  const finite = (v: unknown) =>
    typeof v === 'number' && Math.abs(v) < Number.MAX_SAFE_INTEGER ? v : undefined;
  return { min: finite(s?.minValue), max: finite(s?.maxValue), int: s?.isInt === true };
}

function expectedPhrase(expected: string, schema: unknown): string {
  switch (expected) {
    case 'string': {
      const min = (schema as { minLength?: unknown } | undefined)?.minLength;
      return typeof min === 'number' && min > 0 ? 'a non-empty string' : 'a string';
    }
    case 'int':
    case 'number': {
      const { min, max, int } = numberBounds(schema);
      const kind = int || expected === 'int' ? 'an integer' : 'a number';
      if (min !== undefined && max !== undefined) return `${kind} from ${min} to ${max}`;
      if (min !== undefined) return `${kind} of at least ${min}`;
      return kind;
    }
    case 'boolean':
      return 'true or false';
    case 'array':
      return 'a list (array)';
    case 'object':
    case 'record':
      return 'a mapping (object)';
    default:
      return expected;
  }
}

type RawIssue = z.core.$ZodRawIssue;

/**
 * Builds the zod per-parse error map for `root`: one sentence per issue code, with the expected
 * shape and what arrived.
 */
export function zodErrorMap(root: unknown): (issue: RawIssue) => string {
  return (iss) => {
    const path = (iss.path ?? []) as Path;
    const input = iss.input;
    switch (iss.code) {
      case 'invalid_type': {
        if (path.length === 0) {
          return `expected the workflow spec as a mapping with version, name and phases, got ${describeValue(input)}`;
        }
        const phrase = expectedPhrase(String(iss.expected), schemaAt(root, path));
        if (input === undefined) return `required: expected ${phrase}`;
        return `expected ${phrase}, got ${describeValue(input)}`;
      }
      case 'too_small':
      case 'too_big': {
        const origin = String(iss.origin);
        const bound = Number(iss.code === 'too_small' ? iss.minimum : iss.maximum);
        if (origin === 'string') {
          const length = typeof input === 'string' ? input.length : 0;
          return iss.code === 'too_small'
            ? bound <= 1
              ? 'expected a non-empty string, got an empty string'
              : `expected at least ${bound} characters, got ${length}`
            : `expected at most ${bound} characters, got ${length}`;
        }
        if (origin === 'array' || origin === 'set') {
          const length = Array.isArray(input) ? input.length : 0;
          return iss.code === 'too_small'
            ? bound <= 1
              ? 'expected a non-empty list, got an empty list'
              : `expected at least ${bound} entries, got ${length}`
            : `expected at most ${bound} entries, got ${length}`;
        }
        const { min, max, int } = numberBounds(schemaAt(root, path));
        const kind = int || origin === 'int' ? 'an integer' : 'a number';
        if (min !== undefined && max !== undefined && iss.inclusive !== false) {
          return `expected ${kind} from ${min} to ${max}, got ${showValue(input)}`;
        }
        if (iss.code === 'too_small') {
          return bound === 0 && iss.inclusive === false
            ? `expected a positive ${int ? 'integer' : 'number'}, got ${showValue(input)}`
            : `expected ${kind} of at least ${bound}, got ${showValue(input)}`;
        }
        return `expected ${kind} of at most ${bound}, got ${showValue(input)}`;
      }
      case 'invalid_value': {
        const values = iss.values.map((v) => (typeof v === 'string' ? quote(v) : String(v)));
        const want = values.length === 1 ? values[0]! : `one of ${values.join(', ')}`;
        if (input === undefined) return `required: expected ${want}`;
        const hint =
          typeof input === 'string'
            ? didYouMean(input, iss.values.filter((v): v is string => typeof v === 'string'))
            : '';
        return `expected ${want}, got ${typeof input === 'string' ? quote(input) : describeValue(input)}${hint}`;
      }
      case 'invalid_format':
        return `expected a string matching ${iss.pattern ?? iss.format}, got ${showValue(input)}`;
      case 'unrecognized_keys':
        return `unknown ${iss.keys.length === 1 ? 'key' : 'keys'} ${nameList(iss.keys)}`;
      case 'invalid_key': {
        const inner = iss.issues[0]?.message ?? 'not a valid key';
        return `invalid key ${quote(String(input))}: ${inner}`;
      }
      case 'invalid_union':
        return `expected another kind of value, got ${describeValue(input)}`;
      default:
        return `invalid value ${showValue(input)}`;
    }
  };
}

/**
 * Converts the final zod issues of a failed parse of `root` into SpecIssues: one per unknown key
 * (with a "did you mean" when a known key is close), duplicates dropped, at most MAX_ISSUES.
 */
export function toSpecIssues(root: unknown, issues: readonly z.core.$ZodIssue[]): SpecIssue[] {
  const out: SpecIssue[] = [];
  for (const iss of issues) {
    if (iss.code === 'unrecognized_keys') {
      const known = knownKeysAt(root, iss.path);
      for (const key of iss.keys) {
        const hit = closest(key, known);
        out.push({
          path: formatPath([...iss.path, key]),
          message:
            `unknown key ${quote(key)}` +
            (hit !== undefined
              ? ` (did you mean '${hit}'?)`
              : known.length > 0
                ? `; known keys: ${known.join(', ')}`
                : ''),
        });
      }
    } else {
      out.push({ path: formatPath(iss.path), message: iss.message });
    }
  }
  return capIssues(dedupeIssues(out));
}

/** Drops repeated (path, message) pairs, keeping the first. */
export function dedupeIssues(issues: readonly SpecIssue[]): SpecIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const k = `${i.path}\u0000${i.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Keeps the first MAX_ISSUES issues and counts the rest in one last issue. */
export function capIssues(issues: readonly SpecIssue[]): SpecIssue[] {
  if (issues.length <= MAX_ISSUES) return [...issues];
  const kept = issues.slice(0, MAX_ISSUES);
  kept.push({ path: '', message: `… and ${issues.length - MAX_ISSUES} more issues` });
  return kept;
}
