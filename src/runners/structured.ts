/**
 * Structured output: the JSON an agent's answer must carry when its task has a `schema`.
 *
 * Claude and Codex are given the schema natively (`--json-schema`, `--output-schema`), Pi and
 * `command` are asked for it in the prompt and their final text is parsed here. Whatever the
 * path, the value is checked against the schema here too (a local model server or an older CLI
 * may ignore the schema), and a mismatch becomes a retryable `invalid_structured_output` failure
 * whose message lists the validation errors, so a retry can feed them back to the model.
 */
import { createRequire } from 'node:module';
import type { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';
import type { FailureInfo } from '../store/types.js';

/**
 * The validator (ajv, through the MCP SDK fanfold already depends on), loaded on first use. Why
 * lazily and with require: every run owner and CLI command imports this module, and ajv costs
 * ~100 ms to load, which only runs with a task schema should pay. The SDK ships CommonJS too.
 */
function newValidator(): AjvJsonSchemaValidator {
  const require = createRequire(import.meta.url);
  const mod = require('@modelcontextprotocol/sdk/validation/ajv') as typeof import('@modelcontextprotocol/sdk/validation/ajv');
  return new mod.AjvJsonSchemaValidator();
}

/** A JSON Schema as a task carries it (an object; boolean schemas are not accepted). */
export type JsonSchema = Record<string, unknown>;

/** Failure type of an answer that does not parse as JSON or does not match the schema. */
export const INVALID_STRUCTURED_OUTPUT = 'invalid_structured_output';

/** Most validation errors quoted in a failure message. */
const MAX_ERRORS = 12;

/** Longest failure message about structured output, in characters. */
const MAX_MESSAGE = 2000;

/** Compiled validators by schema text; schemas repeat across the tasks of a run. */
const compiled = new Map<string, (value: unknown) => string | undefined>();
const MAX_COMPILED = 256;
let validatorProvider: AjvJsonSchemaValidator | undefined;

/**
 * A validator for `schema`: returns undefined when a value matches, else the errors as one line
 * ("data/lines must be integer, data must have required property 'word'"). Throws an Error
 * naming the problem when the schema itself cannot be compiled.
 */
export function compileSchema(schema: JsonSchema): (value: unknown) => string | undefined {
  const key = JSON.stringify(schema);
  const hit = compiled.get(key);
  if (hit) return hit;
  validatorProvider ??= newValidator();
  let check: ReturnType<AjvJsonSchemaValidator['getValidator']>;
  try {
    // `$id` would make ajv cache the schema globally and refuse a second, different schema with
    // the same id; the id means nothing here, so it is dropped before compiling.
    const { $id: _ignored, ...rest } = schema;
    check = validatorProvider.getValidator(rest as Parameters<AjvJsonSchemaValidator['getValidator']>[0]);
  } catch (err) {
    throw new Error(`not a valid JSON Schema: ${(err as Error).message}`);
  }
  const fn = (value: unknown): string | undefined => {
    const r = check(value);
    return r.valid ? undefined : limitErrors(r.errorMessage ?? 'does not match');
  };
  if (compiled.size >= MAX_COMPILED) compiled.delete(compiled.keys().next().value as string);
  compiled.set(key, fn);
  return fn;
}

function limitErrors(text: string): string {
  const parts = text.split(/, (?=data)/);
  if (parts.length <= MAX_ERRORS) return text;
  return `${parts.slice(0, MAX_ERRORS).join(', ')} (and ${parts.length - MAX_ERRORS} more)`;
}

/**
 * Whether the CLIs can enforce `schema` natively: Claude turns it into a tool's input schema and
 * OpenAI's structured outputs want an object at the root, so both need `type: "object"`.
 */
export function isObjectSchema(schema: JsonSchema): boolean {
  const t = schema.type;
  return t === 'object' || (t === undefined && typeof schema.properties === 'object' && schema.properties !== null);
}

/** Where a JSON value was found in a text. */
export type Extracted = { ok: true; value: unknown; from: 'whole' | 'fence' | 'braces' } | { ok: false; reason: string };

/**
 * The JSON value an answer carries: the whole text when it is JSON; else the last ```json fenced
 * block (or the last fenced block of any language) that parses; else the span from the first `{`
 * (or `[`) to the last `}` (or `]`). Why so lenient: models wrap JSON in prose and fences however
 * they like; the schema check that follows is what keeps the result honest.
 */
export function extractJson(text: string): Extracted {
  const trimmed = text.trim();
  if (trimmed === '') return { ok: false, reason: 'the answer is empty' };
  const whole = tryParse(trimmed);
  if (whole.ok) return { ok: true, value: whole.value, from: 'whole' };

  const fences = [...trimmed.matchAll(/```([A-Za-z0-9_-]*)[^\n]*\n([\s\S]*?)```/g)];
  const ordered = [
    ...fences.filter((m) => (m[1] ?? '').toLowerCase() === 'json').reverse(),
    ...fences.filter((m) => (m[1] ?? '').toLowerCase() !== 'json').reverse(),
  ];
  let fenceError: string | undefined;
  for (const m of ordered) {
    const r = tryParse((m[2] ?? '').trim());
    if (r.ok) return { ok: true, value: r.value, from: 'fence' };
    fenceError ??= r.error;
  }
  for (const [open, close] of [['{', '}'], ['[', ']']] as const) {
    const start = trimmed.indexOf(open);
    const end = trimmed.lastIndexOf(close);
    if (start !== -1 && end > start) {
      const r = tryParse(trimmed.slice(start, end + 1));
      if (r.ok) return { ok: true, value: r.value, from: 'braces' };
    }
  }
  return {
    ok: false,
    reason: fenceError
      ? `the fenced JSON block does not parse (${fenceError})`
      : 'no JSON found: expected the whole answer, or a ```json fenced block, to be one JSON value',
  };
}

function tryParse(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  const first = text[0];
  if (first !== '{' && first !== '[' && first !== '"' && !/^[-\dtfn]/.test(text)) {
    return { ok: false, error: 'not JSON' };
  }
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

/** Result of checking an answer against a schema. */
export type StructuredCheck = { ok: true; value: unknown } | { ok: false; error: FailureInfo };

/**
 * Checks an answer against `schema`. `candidate` is a value the CLI already parsed (Claude's
 * `structured_output`); without one, the JSON is extracted from `text`.
 */
export function checkStructured(schema: JsonSchema, text: string, candidate?: { value: unknown }): StructuredCheck {
  let validate: (value: unknown) => string | undefined;
  try {
    validate = compileSchema(schema);
  } catch (err) {
    return {
      ok: false,
      error: { type: 'config', message: `the task's schema is ${(err as Error).message}; fix the schema in the spec`, retryable: false },
    };
  }
  let value: unknown;
  if (candidate) {
    value = candidate.value;
  } else {
    const found = extractJson(text);
    if (!found.ok) return { ok: false, error: invalid(`the answer is not JSON: ${found.reason}`) };
    value = found.value;
  }
  const errors = validate(value);
  if (errors !== undefined) return { ok: false, error: invalid(`the answer does not match the task's schema: ${errors}`) };
  return { ok: true, value };
}

/** A retryable invalid_structured_output failure with `detail` as its message (bounded). */
export function invalid(detail: string): FailureInfo {
  const message = detail.length > MAX_MESSAGE ? `${detail.slice(0, MAX_MESSAGE - 1)}…` : detail;
  return { type: INVALID_STRUCTURED_OUTPUT, message, retryable: true };
}

/**
 * The instruction appended to a prompt when the answer must be JSON parsed from text (Pi,
 * non-object schemas): the schema and where to put the value.
 */
export function schemaInstructions(schema: JsonSchema): string {
  return [
    '',
    '',
    '---',
    'When you are done, end your answer with exactly one JSON value that matches this JSON Schema,',
    'in a ```json fenced block, with nothing after the block:',
    '```json',
    JSON.stringify(schema, null, 2),
    '```',
  ].join('\n');
}

/** The prompt of a retry: the original prompt, then why the previous answer was rejected. */
export function withFeedback(prompt: string, feedback: string | undefined): string {
  if (feedback === undefined || feedback.trim() === '') return prompt;
  const text = feedback.length > MAX_MESSAGE ? `${feedback.slice(0, MAX_MESSAGE - 1)}…` : feedback;
  return [
    prompt,
    '',
    '---',
    `Your previous attempt at this task was rejected: ${text}`,
    'Do the task again and make sure your final answer fixes this.',
  ].join('\n');
}
