/**
 * Allow-lists for every name that becomes part of a path: ids (run, phase, task, lease owner) and
 * file names built from them. Nothing reaches the filesystem without passing one of these.
 */
import { customAlphabet } from 'nanoid';
import { StoreError, quote } from './errors.js';

/**
 * An id: 1–64 ASCII letters, digits, `-` or `_`, starting with a letter or digit.
 * Why so narrow: no `.` (so `..` and hidden files are impossible and `.` can separate parts of a
 * file name unambiguously), no separators, no NUL, no non-ASCII lookalikes, no leading `-` that a
 * command line could read as an option.
 */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/**
 * A file name: two or more dot-separated parts, each an id (the last is the extension), at most
 * 255 characters in all: `run.json`, `map.core.3.json`, `lease.json.takeover-ab12`.
 */
export const FILE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}(?:\.[A-Za-z0-9][A-Za-z0-9_-]{0,63})+$/;

/** Longest file name accepted (the common filesystem limit). */
export const MAX_FILE_NAME_LENGTH = 255;

const ID_RULE = "expected 1–64 letters, digits, '-' or '_', starting with a letter or digit";
const NAME_RULE =
  "expected dot-separated parts of 1–64 letters, digits, '-' or '_' (each starting with a letter or digit) and an extension, at most 255 characters";

/** True when `value` is a string matching ID_PATTERN. */
export function isId(value: unknown): value is string {
  return typeof value === 'string' && ID_PATTERN.test(value);
}

/** True when `value` is a string matching FILE_NAME_PATTERN and at most MAX_FILE_NAME_LENGTH long. */
export function isFileName(value: unknown): value is string {
  return typeof value === 'string' && value.length <= MAX_FILE_NAME_LENGTH && FILE_NAME_PATTERN.test(value);
}

/**
 * Returns `value` when it is a valid id, else throws StoreError 'invalid_id':
 * "store: invalid run id '../x': expected 1–64 letters, digits, …".
 * @param kind what the id names, for the message (`run`, `phase`, `task`, `lease owner`)
 */
export function assertId(kind: string, value: unknown): string {
  if (isId(value)) return value;
  throw new StoreError('invalid_id', `invalid ${kind} id ${quote(value)}: ${ID_RULE}`);
}

/**
 * Returns `value` when it is a valid file name, else throws StoreError 'invalid_name'.
 * @param kind what the file is, for the message (`input`, `agent record`)
 */
export function assertFileName(kind: string, value: unknown): string {
  if (isFileName(value)) return value;
  throw new StoreError('invalid_name', `invalid ${kind} file name ${quote(value)}: ${NAME_RULE}`);
}

/** Alphabet of generated ids: lowercase letters and digits (safe in paths, URLs and shells). */
const ID_ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';

const runIdGenerator = customAlphabet(ID_ALPHABET, 12);
const tokenGenerator = customAlphabet(ID_ALPHABET, 16);

/** A fresh run id: 12 lowercase letters and digits (~62 bits), always valid under ID_PATTERN. */
export function newRunId(): string {
  return runIdGenerator();
}

/** A fresh random token of 16 lowercase letters and digits (lease owner ids, temp-file suffixes). */
export function newToken(): string {
  return tokenGenerator();
}
