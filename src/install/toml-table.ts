/**
 * A minimal, careful editor for one TOML table in a file people also edit by hand (Codex's
 * `config.toml`): set a few keys of `[a.b]`, and leave every other byte alone — other tables,
 * comments, blank lines, key order, quoting, line endings.
 *
 * It is not a TOML parser. It scans just enough of the grammar to know where each statement
 * starts and ends (table headers; keys, including dotted and quoted ones; values, including
 * multi-line strings, arrays and inline tables that span lines), so that a `[` inside a
 * multi-line string is never taken for a header. Values it must compare (strings, integers,
 * booleans and arrays of them) it reads exactly; anything else counts as different and is
 * replaced. Forms it cannot edit safely — the table written as an inline table or with dotted
 * keys, an array of tables, a header given twice — are refused with the line number, never
 * rewritten.
 *
 * No TOML library is installed in this project; this covers the one table fanfold touches.
 */

/** A value this editor writes and compares. */
export type TomlValue = string | number | boolean | TomlValue[];

/** A file this editor refuses to change (or cannot read), with the 1-based line it is about. */
export class TomlEditError extends Error {
  readonly line: number;
  constructor(message: string, line: number) {
    super(message);
    this.name = 'TomlEditError';
    this.line = line;
  }
}

/** What {@link upsertTomlTable} did. */
export interface TomlEditResult {
  /** The new text (=== the input when nothing changed). */
  text: string;
  changed: boolean;
  /** Whether the table header had to be added. */
  createdTable: boolean;
  added: string[];
  updated: string[];
  unchanged: string[];
  /** Things worth telling the user that were left as they are (e.g. `enabled = false`). */
  warnings: string[];
}

/** One statement of the file: a table header or a key/value pair. */
interface Statement {
  kind: 'table' | 'arrayTable' | 'keyval';
  /** Dotted key of the header, or the key of the pair (relative to its table). */
  key: string[];
  /** Offsets in the text: statement start, value span (pairs), end of its last line (after `\n`). */
  start: number;
  valueStart: number;
  valueEnd: number;
  lineEnd: number;
  /** 1-based line of the statement's start. */
  line: number;
}

const BARE_KEY = /[A-Za-z0-9_-]/;

/** Scans TOML text into its headers and key/value statements. Throws TomlEditError on text it cannot follow. */
class Scanner {
  readonly #t: string;
  #i = 0;

  constructor(text: string) {
    this.#t = text;
    if (text.charCodeAt(0) === 0xfeff) this.#i = 1;
  }

  /** End offset of the value that starts at `at`. */
  valueEndAt(at: number): number {
    this.#i = at;
    this.#value();
    return this.#i;
  }

  statements(): Statement[] {
    const out: Statement[] = [];
    const t = this.#t;
    while (this.#i < t.length) {
      this.#skipSpaces();
      const c = t[this.#i];
      if (c === undefined) break;
      if (c === '\n' || c === '#' || (c === '\r' && t[this.#i + 1] === '\n')) {
        this.#endOfLine();
        continue;
      }
      const start = this.#i;
      const line = this.#lineOf(start);
      if (c === '[') {
        const array = t[this.#i + 1] === '[';
        this.#i += array ? 2 : 1;
        const key = this.#key();
        this.#skipSpaces();
        if (!t.startsWith(array ? ']]' : ']', this.#i)) this.#fail(`expected '${array ? ']]' : ']'}' to close the table header`);
        this.#i += array ? 2 : 1;
        this.#endOfLine();
        out.push({ kind: array ? 'arrayTable' : 'table', key, start, valueStart: -1, valueEnd: -1, lineEnd: this.#i, line });
        continue;
      }
      const key = this.#key();
      this.#skipSpaces();
      if (t[this.#i] !== '=') this.#fail(`expected '=' after the key '${key.join('.')}'`);
      this.#i++;
      this.#skipSpaces();
      const valueStart = this.#i;
      this.#value();
      const valueEnd = this.#i;
      this.#endOfLine();
      out.push({ kind: 'keyval', key, start, valueStart, valueEnd, lineEnd: this.#i, line });
    }
    return out;
  }

  #lineOf(offset: number): number {
    let n = 1;
    for (let k = 0; k < offset; k++) if (this.#t.charCodeAt(k) === 10) n++;
    return n;
  }

  #fail(message: string): never {
    throw new TomlEditError(message, this.#lineOf(this.#i));
  }

  #skipSpaces(): void {
    while (this.#t[this.#i] === ' ' || this.#t[this.#i] === '\t') this.#i++;
  }

  /** Whitespace, newlines and comments (inside arrays and inline tables). */
  #skipBlank(): void {
    for (;;) {
      const c = this.#t[this.#i];
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') this.#i++;
      else if (c === '#') while (this.#i < this.#t.length && this.#t[this.#i] !== '\n') this.#i++;
      else return;
    }
  }

  /** After a statement: spaces, an optional comment, then a newline or the end of the text. */
  #endOfLine(): void {
    this.#skipSpaces();
    const t = this.#t;
    if (t[this.#i] === '#') while (this.#i < t.length && t[this.#i] !== '\n') this.#i++;
    if (t[this.#i] === '\r' && t[this.#i + 1] === '\n') this.#i++;
    if (this.#i < t.length && t[this.#i] !== '\n') this.#fail(`unexpected '${t[this.#i]}' after a complete statement`);
    if (this.#i < t.length) this.#i++;
  }

  /** A dotted key: bare, "basic" or 'literal' parts joined by dots. */
  #key(): string[] {
    const parts: string[] = [];
    const t = this.#t;
    for (;;) {
      this.#skipSpaces();
      const c = t[this.#i];
      if (c === '"') parts.push(decodeBasic(this.#singleLineString('"'), () => this.#fail('bad escape in a quoted key')));
      else if (c === "'") parts.push(this.#singleLineString("'").slice(1, -1));
      else {
        const from = this.#i;
        while (this.#i < t.length && BARE_KEY.test(t[this.#i]!)) this.#i++;
        if (this.#i === from) this.#fail(c === undefined ? 'expected a key, got the end of the file' : `expected a key, got '${c}'`);
        parts.push(t.slice(from, this.#i));
      }
      this.#skipSpaces();
      if (t[this.#i] !== '.') return parts;
      this.#i++;
    }
  }

  /** A one-line string starting at the cursor (quote included); returns its source text. */
  #singleLineString(q: '"' | "'"): string {
    const t = this.#t;
    const from = this.#i;
    this.#i++;
    while (this.#i < t.length) {
      const c = t[this.#i];
      if (c === '\n') break;
      if (q === '"' && c === '\\') {
        this.#i += 2;
        continue;
      }
      this.#i++;
      if (c === q) return t.slice(from, this.#i);
    }
    this.#i = from;
    return this.#fail('unterminated string');
  }

  #multiLineString(q: '"""' | "'''"): void {
    const t = this.#t;
    const from = this.#i;
    this.#i += 3;
    while (this.#i < t.length) {
      if (q === '"""' && t[this.#i] === '\\') {
        this.#i += 2;
        continue;
      }
      if (t.startsWith(q, this.#i)) {
        this.#i += 3;
        // Up to two more quotes right before the closing ones belong to the content.
        for (let k = 0; k < 2 && t[this.#i] === q[0]; k++) this.#i++;
        return;
      }
      this.#i++;
    }
    this.#i = from;
    this.#fail('unterminated multi-line string');
  }

  #value(): void {
    const t = this.#t;
    const c = t[this.#i];
    if (t.startsWith('"""', this.#i)) return this.#multiLineString('"""');
    if (t.startsWith("'''", this.#i)) return this.#multiLineString("'''");
    if (c === '"' || c === "'") {
      this.#singleLineString(c);
      return;
    }
    if (c === '[') {
      this.#i++;
      for (;;) {
        this.#skipBlank();
        if (t[this.#i] === ']') break;
        if (this.#i >= t.length) this.#fail("unterminated array: expected ']'");
        this.#value();
        this.#skipBlank();
        if (t[this.#i] === ',') this.#i++;
        else if (t[this.#i] !== ']') this.#fail(`expected ',' or ']' in an array, got '${t[this.#i] ?? 'the end of the file'}'`);
      }
      this.#i++;
      return;
    }
    if (c === '{') {
      this.#i++;
      for (;;) {
        this.#skipBlank();
        if (t[this.#i] === '}') break;
        if (this.#i >= t.length) this.#fail("unterminated inline table: expected '}'");
        this.#key();
        this.#skipSpaces();
        if (t[this.#i] !== '=') this.#fail("expected '=' in an inline table");
        this.#i++;
        this.#skipSpaces();
        this.#value();
        this.#skipBlank();
        if (t[this.#i] === ',') this.#i++;
        else if (t[this.#i] !== '}') this.#fail(`expected ',' or '}' in an inline table, got '${t[this.#i] ?? 'the end of the file'}'`);
      }
      this.#i++;
      return;
    }
    // A bare scalar: number, boolean, date or time. A date-time may hold one space (`1979-05-27 07:32:00`).
    const from = this.#i;
    const stop = (ch: string | undefined) => ch === undefined || ' \t\r\n,]}#'.includes(ch);
    while (!stop(t[this.#i])) this.#i++;
    if (/^\d{4}-\d{2}-\d{2}$/.test(t.slice(from, this.#i)) && t[this.#i] === ' ' && /^\d{2}:/.test(t.slice(this.#i + 1, this.#i + 4))) {
      this.#i++;
      while (!stop(t[this.#i])) this.#i++;
    }
    if (this.#i === from) this.#fail(c === undefined || c === '\n' ? 'expected a value' : `expected a value, got '${c}'`);
  }
}

/** Decodes the source of a basic string (quotes included); calls `bad` on an invalid escape. */
function decodeBasic(src: string, bad: () => never): string {
  const body = src.slice(1, -1);
  return body.replace(/\\(u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|[btnfr"\\e]|[\s\S])/g, (_m, e: string) => {
    switch (e[0]) {
      case 'b': return '\b';
      case 't': return '\t';
      case 'n': return '\n';
      case 'f': return '\f';
      case 'r': return '\r';
      case 'e': return '\x1b';
      case '"': return '"';
      case '\\': return '\\';
      case 'u':
      case 'U': {
        const cp = parseInt(e.slice(1), 16);
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) bad();
        return String.fromCodePoint(cp);
      }
      default:
        return bad();
    }
  });
}

/**
 * Reads a value's source text when it is a string, an integer, a boolean or an array of them;
 * undefined for anything else (floats, dates, inline tables, multi-line strings…).
 */
export function readSimpleValue(src: string): TomlValue | undefined {
  const s = src.trim();
  const bad = (): never => {
    throw new Error('bad escape');
  };
  if (s.startsWith('"""') || s.startsWith("'''")) return undefined;
  if (s.startsWith('"') && s.endsWith('"') && s.length >= 2) {
    try {
      return decodeBasic(s, bad);
    } catch {
      return undefined;
    }
  }
  if (s.startsWith("'") && s.endsWith("'") && s.length >= 2) return s.slice(1, -1);
  if (s === 'true') return true;
  if (s === 'false') return false;
  if (/^[+-]?(0|[1-9](_?\d)*)$/.test(s)) return Number(s.replace(/_/g, ''));
  if (/^0x[0-9A-Fa-f](_?[0-9A-Fa-f])*$/.test(s)) return parseInt(s.slice(2).replace(/_/g, ''), 16);
  if (/^0o[0-7](_?[0-7])*$/.test(s)) return parseInt(s.slice(2).replace(/_/g, ''), 8);
  if (/^0b[01](_?[01])*$/.test(s)) return parseInt(s.slice(2).replace(/_/g, ''), 2);
  if (s.startsWith('[') && s.endsWith(']')) return readSimpleArray(s);
  return undefined;
}

function readSimpleArray(s: string): TomlValue[] | undefined {
  const items: TomlValue[] = [];
  const scanner = new Scanner(s);
  let i = 1; // after '['
  const end = s.length - 1; // the closing ']'
  while (i < end) {
    const c = s[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === ',') {
      i++;
      continue;
    }
    if (c === '#') {
      while (i < end && s[i] !== '\n') i++;
      continue;
    }
    let next: number;
    try {
      next = scanner.valueEndAt(i);
    } catch {
      return undefined;
    }
    if (next > end) return undefined;
    const v = readSimpleValue(s.slice(i, next));
    if (v === undefined) return undefined;
    items.push(v);
    i = next;
  }
  return items;
}

/** Writes a TOML basic string. Throws on text TOML cannot hold (a lone surrogate). */
export function tomlString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp >= 0xd800 && cp <= 0xdfff) throw new Error(`toml: cannot write a lone surrogate (U+${cp.toString(16).toUpperCase()}) in a string`);
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (cp < 0x20 || cp === 0x7f) out += `\\u${cp.toString(16).padStart(4, '0').toUpperCase()}`;
    else out += ch;
  }
  return out + '"';
}

/** Writes a value as TOML (one line). */
export function tomlValue(v: TomlValue): string {
  if (typeof v === 'string') return tomlString(v);
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new Error(`toml: this editor writes integers only, got ${v}`);
    return String(v);
  }
  return `[${v.map(tomlValue).join(', ')}]`;
}

/** A key part as TOML (bare when it can be). */
function tomlKeyPart(k: string): string {
  return /^[A-Za-z0-9_-]+$/.test(k) ? k : tomlString(k);
}

function sameValue(a: TomlValue | undefined, b: TomlValue): boolean {
  if (a === undefined) return false;
  if (Array.isArray(b)) return Array.isArray(a) && a.length === b.length && a.every((x, i) => sameValue(x, b[i]!));
  return a === b;
}

function startsWith(path: string[], prefix: string[]): boolean {
  return prefix.length <= path.length && prefix.every((p, i) => path[i] === p);
}

function equal(a: string[], b: string[]): boolean {
  return a.length === b.length && startsWith(a, b);
}

/**
 * Sets `entries` in the table `table` (e.g. `['mcp_servers', 'fanfold']`) of TOML `text`:
 * keys already holding the same value stay as they are, other values are replaced in place (a
 * trailing comment survives), missing keys are added after the table's last key; the table is
 * appended at the end when it does not exist. Keys of the table that `entries` does not name,
 * its sub-tables and everything else in the file are left byte for byte.
 *
 * Throws TomlEditError (with a line) when the text cannot be followed, or when the table is
 * written in a form this editor does not change (inline table, dotted keys, array of tables,
 * two headers).
 */
export function upsertTomlTable(text: string, table: string[], entries: ReadonlyArray<readonly [string, TomlValue]>): TomlEditResult {
  if (table.length === 0) throw new Error('toml: a table path is required');
  const stmts = new Scanner(text).statements();
  const name = table.map(tomlKeyPart).join('.');

  // Where each statement lives, and whether the table is written in a form we must not touch.
  let current: string[] = [];
  const headers: Statement[] = [];
  for (const s of stmts) {
    if (s.kind !== 'keyval') {
      current = s.key;
      if (s.kind === 'arrayTable' && (startsWith(table, s.key) || startsWith(s.key, table))) {
        throw new TomlEditError(
          `[[${s.key.map(tomlKeyPart).join('.')}]] makes ${s.key.join('.')} an array of tables; ${name} must be a plain table. Fix the file by hand`,
          s.line,
        );
      }
      if (s.kind === 'table' && equal(s.key, table)) headers.push(s);
      continue;
    }
    const full = [...current, ...s.key];
    const inOwn = startsWith(current, table);
    if (!inOwn && startsWith(full, table)) {
      throw new TomlEditError(
        `${name} is defined with ${s.key.length > 1 ? 'dotted keys' : 'an inline table'} here; this installer edits only a [${name}] table. ` +
          `Rewrite it as a [${name}] table (or remove it) and run again`,
        s.line,
      );
    }
    if (!inOwn && startsWith(table, full)) {
      throw new TomlEditError(`${full.join('.')} is set as a value here, so [${name}] cannot be added. Fix the file by hand`, s.line);
    }
  }
  if (headers.length > 1) {
    throw new TomlEditError(`[${name}] appears twice (lines ${headers.map((h) => h.line).join(' and ')}); the file is not valid TOML. Fix it by hand`, headers[1]!.line);
  }

  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const line = (k: string, v: TomlValue) => `${tomlKeyPart(k)} = ${tomlValue(v)}${eol}`;
  const result: TomlEditResult = { text, changed: false, createdTable: false, added: [], updated: [], unchanged: [], warnings: [] };

  if (headers.length === 0) {
    let out = text;
    if (out.length > 0 && !out.endsWith('\n')) out += eol;
    if (out.trim().length > 0 && !/(\r?\n){2}$/.test(out)) out += eol;
    out += `[${name}]${eol}`;
    for (const [k, v] of entries) {
      out += line(k, v);
      result.added.push(k);
    }
    return { ...result, text: out, changed: true, createdTable: true };
  }

  const header = headers[0]!;
  const index = stmts.indexOf(header);
  const section: Statement[] = [];
  for (let k = index + 1; k < stmts.length && stmts[k]!.kind === 'keyval'; k++) section.push(stmts[k]!);

  const enabled = section.find((s) => s.key.length === 1 && s.key[0] === 'enabled');
  if (enabled && readSimpleValue(text.slice(enabled.valueStart, enabled.valueEnd)) === false) {
    result.warnings.push(`[${name}] has enabled = false (line ${enabled.line}); left as is, so the server stays off until you change it`);
  }

  const edits: Array<{ at: number; end: number; text: string }> = [];
  const missing: string[] = [];
  for (const [k, v] of entries) {
    const found = section.filter((s) => s.key.length === 1 && s.key[0] === k);
    if (found.length > 1) throw new TomlEditError(`${k} is set twice in [${name}]; the file is not valid TOML. Fix it by hand`, found[1]!.line);
    const s = found[0];
    if (!s) {
      missing.push(line(k, v));
      result.added.push(k);
    } else if (sameValue(readSimpleValue(text.slice(s.valueStart, s.valueEnd)), v)) {
      result.unchanged.push(k);
    } else {
      edits.push({ at: s.valueStart, end: s.valueEnd, text: tomlValue(v) });
      result.updated.push(k);
    }
  }
  if (missing.length > 0) {
    const last = section.length > 0 ? section[section.length - 1]! : header;
    const prefix = last.lineEnd === text.length && !text.endsWith('\n') ? eol : '';
    edits.push({ at: last.lineEnd, end: last.lineEnd, text: prefix + missing.join('') });
  }
  if (edits.length === 0) return result;
  let out = text;
  for (const e of edits.sort((a, b) => b.at - a.at)) out = out.slice(0, e.at) + e.text + out.slice(e.end);
  return { ...result, text: out, changed: true };
}

/** What {@link removeTomlTable} did. */
export interface TomlRemoveResult {
  /** The new text (=== the input when the table was not there). */
  text: string;
  changed: boolean;
  /** The headers removed: the table and its sub-tables (`[a.b]`, `[a.b.env]`). */
  removed: string[];
}

/**
 * Removes `[a.b]` and its sub-tables (`[a.b.c]`) with their keys — the inverse of
 * {@link upsertTomlTable} adding them: comments and blank lines between other statements, and
 * every other table, stay byte for byte; the blank line the upsert put before an appended table
 * goes with it. Refuses the same forms the upsert refuses (inline table, dotted keys, array of
 * tables, a header twice), with the line.
 */
export function removeTomlTable(text: string, table: string[]): TomlRemoveResult {
  upsertTomlTable(text, table, []); // validation only: throws on a form this editor must not touch
  const stmts = new Scanner(text).statements();
  const ranges: Array<{ start: number; end: number }> = [];
  const removed: string[] = [];
  for (let i = 0; i < stmts.length; i++) {
    const s = stmts[i]!;
    if (s.kind !== 'table' || !startsWith(s.key, table)) continue;
    let last = s;
    while (i + 1 < stmts.length && stmts[i + 1]!.kind === 'keyval') last = stmts[++i]!;
    ranges.push({ start: s.start, end: last.lineEnd });
    removed.push(`[${s.key.map(tomlKeyPart).join('.')}]`);
  }
  if (ranges.length === 0) return { text, changed: false, removed };
  let out = text;
  for (const r of ranges.reverse()) {
    let { start, end } = r;
    // The upsert separates an appended table from what precedes it by one blank line: take it too,
    // when the table is followed by nothing or by another blank line.
    const before = out.slice(0, start);
    const after = out.slice(end);
    const blank = /(\r?\n)(\r?\n)$/.exec(before);
    if (blank && (after.trim() === '' || /^\r?\n/.test(after))) start -= blank[2]!.length;
    if (after.trim() === '') end = out.length;
    out = out.slice(0, start) + out.slice(end);
  }
  return { text: out, changed: true, removed };
}
