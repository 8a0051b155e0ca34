/**
 * Setting one MCP server entry in a JSON config that other tools and people also write: a
 * project's `.mcp.json`, or Claude Code's user config (`~/.claude.json`, which holds much more
 * than servers). Everything but `mcpServers.<name>` is kept: other servers, other keys, key order,
 * the file's indentation and its final newline. Keys of our entry that fanfold does not manage
 * (e.g. an `env` the user added) are kept too.
 */
import { InstallError } from './errors.js';

/** The stdio server entry fanfold writes (the shape `claude mcp add` writes). */
export interface StdioServerEntry {
  type: 'stdio';
  command: string;
  args: string[];
}

/** What {@link upsertMcpServerJson} did. */
export interface JsonEditResult {
  text: string;
  changed: boolean;
  /** 'added' (no entry before), 'updated' (entry differed), 'unchanged'. */
  action: 'added' | 'updated' | 'unchanged';
}

type JsonObject = Record<string, unknown>;

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  }
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual(a[k], b[k]));
  }
  return false;
}

/** The indentation the file uses (its first indented line), default two spaces. */
function detectIndent(text: string): string | number {
  const m = /\n([ \t]+)\S/.exec(text);
  return m ? m[1]! : 2;
}

/** Line and column of a character offset (1-based), for parse errors. */
function lineCol(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const col = offset - before.lastIndexOf('\n');
  return `line ${line}, column ${col}`;
}

/** Parses a JSON config; an InstallError names the file, where and what, and says nothing was written. */
export function parseJsonConfig(text: string, file: string): JsonObject {
  let value: unknown;
  try {
    value = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (err) {
    const msg = (err as Error).message;
    const pos = /position (\d+)/.exec(msg);
    const where = pos ? ` (${lineCol(text, Number(pos[1]))})` : '';
    throw new InstallError(`${file} is not valid JSON${where}: ${msg}. Fix or move the file, then run again; nothing was written.`);
  }
  if (!isObject(value)) {
    throw new InstallError(`${file} holds ${Array.isArray(value) ? 'an array' : JSON.stringify(value)}, expected a JSON object. Fix or move the file, then run again; nothing was written.`);
  }
  return value;
}

/**
 * Sets `mcpServers[name]` in the JSON config `text` (undefined: the file does not exist yet) to
 * `entry`, keeping any other keys of an existing entry. Throws InstallError, naming `file`, when
 * the text is not a JSON object or `mcpServers` is not an object.
 */
export function upsertMcpServerJson(text: string | undefined, file: string, name: string, entry: StdioServerEntry): JsonEditResult {
  if (text === undefined || text.trim() === '') {
    const doc = { mcpServers: { [name]: { ...entry, env: {} } } };
    return { text: JSON.stringify(doc, null, 2) + '\n', changed: true, action: 'added' };
  }
  const doc = parseJsonConfig(text, file);
  const servers = doc.mcpServers ?? {};
  if (!isObject(servers)) {
    throw new InstallError(`${file}: "mcpServers" is ${Array.isArray(servers) ? 'an array' : typeof servers}, expected an object of servers. Fix the file, then run again; nothing was written.`);
  }
  const before = Object.prototype.hasOwnProperty.call(servers, name) ? servers[name] : undefined;
  if (before !== undefined && !isObject(before)) {
    throw new InstallError(`${file}: "mcpServers.${name}" is not an object. Fix or remove it, then run again; nothing was written.`);
  }
  // Ours: type, command, args. Kept: whatever else the entry has (env, timeouts…); env defaults to
  // {} as `claude mcp add` writes it.
  const next: JsonObject = { ...(before ?? {}), type: entry.type, command: entry.command, args: [...entry.args] };
  if (!('env' in next)) next.env = {};
  if (before !== undefined && deepEqual(before, next)) return { text, changed: false, action: 'unchanged' };
  // Plain assignment would be wrong for a server named `__proto__`; defineProperty keeps it data.
  const newServers: JsonObject = { ...servers };
  Object.defineProperty(newServers, name, { value: next, enumerable: true, writable: true, configurable: true });
  const newDoc: JsonObject = { ...doc };
  Object.defineProperty(newDoc, 'mcpServers', { value: newServers, enumerable: true, writable: true, configurable: true });
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  let out = JSON.stringify(newDoc, null, detectIndent(text));
  if (eol === '\r\n') out = out.replace(/\n/g, '\r\n');
  if (/\r?\n$/.test(text)) out += eol;
  return { text: out, changed: true, action: before === undefined ? 'added' : 'updated' };
}

/** What {@link removeMcpServerJson} did: the new text, or `empty` when nothing but `{}` is left. */
export interface JsonRemoveResult {
  text: string;
  changed: boolean;
  /** Nothing is left but an empty object: the install made the file, so the uninstall removes it. */
  empty: boolean;
}

/**
 * Removes `mcpServers[name]` — the inverse of {@link upsertMcpServerJson}: every other key and
 * server stays; an `mcpServers` left empty goes too (the install added it when it was missing).
 * Throws InstallError on a file that is not a JSON object, like the install.
 */
export function removeMcpServerJson(text: string | undefined, file: string, name: string): JsonRemoveResult {
  if (text === undefined || text.trim() === '') return { text: text ?? '', changed: false, empty: false };
  const doc = parseJsonConfig(text, file);
  const servers = doc.mcpServers;
  if (!isObject(servers) || !Object.prototype.hasOwnProperty.call(servers, name)) return { text, changed: false, empty: false };
  const newServers: JsonObject = {};
  for (const [k, v] of Object.entries(servers)) {
    if (k !== name) Object.defineProperty(newServers, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  const newDoc: JsonObject = {};
  for (const [k, v] of Object.entries(doc)) {
    if (k === 'mcpServers' && Object.keys(newServers).length === 0) continue;
    Object.defineProperty(newDoc, k, { value: k === 'mcpServers' ? newServers : v, enumerable: true, writable: true, configurable: true });
  }
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  let out = JSON.stringify(newDoc, null, detectIndent(text));
  if (eol === '\r\n') out = out.replace(/\n/g, '\r\n');
  if (/\r?\n$/.test(text)) out += eol;
  return { text: out, changed: true, empty: Object.keys(newDoc).length === 0 };
}
