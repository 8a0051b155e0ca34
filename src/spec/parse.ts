/**
 * Reading spec text: YAML or JSON (JSON is YAML 1.2, so one parser serves both). A syntax error
 * becomes a SpecError naming line and column. Guards: at most MAX_SPEC_BYTES of text, and a cap
 * on YAML alias expansion (a "billion laughs" document of a few lines can otherwise expand to
 * gigabytes).
 */
import { readdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, resolve as resolvePath } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { SpecError, type SpecIssue } from './types.js';

/** Largest spec accepted, in bytes (2 MiB). */
export const MAX_SPEC_BYTES = 2 * 1024 * 1024;

/**
 * Most alias nodes a document may resolve. Why: aliases are references, so a few lines of nested
 * aliases can expand exponentially when turned into plain objects; a real spec needs a handful.
 */
export const MAX_ALIAS_COUNT = 100;

/** Most syntax errors listed in one SpecError. */
const MAX_SYNTAX_ERRORS = 5;

function fail(message: string): never {
  throw new SpecError([{ path: '', message }]);
}

function sizeText(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MiB` : `${Math.ceil(bytes / 1024)} KiB`;
}

/**
 * Parses spec text (YAML or JSON) into a plain value, not yet validated. `source` names the text
 * in messages (a file path, `<stdin>`). Throws SpecError on oversized text, a syntax error (with
 * line and column), an empty document, or an alias bomb; never any other error.
 */
export function parseSpecText(text: string, source = 'spec'): unknown {
  if (typeof text !== 'string') fail(`${source}: expected the spec as text, got ${typeof text}`);
  // Cheap upper bound first (UTF-8 needs at most 3 bytes per UTF-16 unit), exact count only if needed.
  if (text.length * 3 > MAX_SPEC_BYTES) {
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes > MAX_SPEC_BYTES) {
      fail(`${source}: the spec is ${sizeText(bytes)}, over the ${sizeText(MAX_SPEC_BYTES)} limit; split the workflow`);
    }
  }
  const lines = new LineCounter();
  let doc;
  try {
    doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  } catch (err) {
    fail(`${source}: cannot parse: ${(err as Error).message}`);
  }
  if (doc.errors.length > 0) {
    const framed = new Set<number>();
    const issues: SpecIssue[] = doc.errors.slice(0, MAX_SYNTAX_ERRORS).map((e) => {
      const { line, col } = lines.linePos(e.pos[0]);
      // One frame per line: two errors found at the same place would show it twice.
      const frame = framed.has(line) ? '' : `\n${codeFrame(text, line, col)}`;
      framed.add(line);
      return { path: '', message: `${source}: syntax error at line ${line}, column ${col}: ${e.message}${frame}` };
    });
    if (doc.errors.length > MAX_SYNTAX_ERRORS) {
      issues.push({ path: '', message: `… and ${doc.errors.length - MAX_SYNTAX_ERRORS} more syntax errors` });
    }
    throw new SpecError(issues);
  }
  if (doc.contents === null) fail(`${source}: the spec is empty`);
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    // yaml throws a ReferenceError when alias expansion passes maxAliasCount.
    fail(`${source}: cannot load: ${(err as Error).message} (YAML aliases expand past ${MAX_ALIAS_COUNT} nodes)`);
  }
}

/** Most characters of a source line shown in a code frame. */
const FRAME_LINE_CHARS = 160;

/**
 * The lines around `line` (1-based) with a caret under `col`, as a person reads a syntax error:
 * the line before and the line itself, each with its number.
 */
export function codeFrame(text: string, line: number, col: number): string {
  const lines = text.split('\n');
  const from = Math.max(1, line - 1);
  const to = Math.min(Math.max(line, 1), lines.length);
  const width = String(to).length;
  const out: string[] = [];
  for (let n = from; n <= to; n++) {
    const src = (lines[n - 1] ?? '').replace(/\r$/, '').replace(/\t/g, ' ').slice(0, FRAME_LINE_CHARS);
    out.push(`  ${n === line ? '>' : ' '} ${String(n).padStart(width)} | ${src}`);
  }
  out.push(`    ${' '.repeat(width)} | ${' '.repeat(Math.max(0, Math.min(col - 1, FRAME_LINE_CHARS)))}^`);
  return out.join('\n');
}

/** A person's words for why a spec file could not be opened (never a bare errno). */
function openFailure(path: string, err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOENT':
      return `no spec file '${path}'${resolvePath(path) === path ? '' : ` (looked for ${resolvePath(path)})`}${nearbySpecs(path)}`;
    case 'EACCES':
    case 'EPERM':
      return `cannot read spec file '${path}': permission denied`;
    case 'EISDIR':
      return `cannot read spec file '${path}': it is a folder, not a file`;
    case 'ENOTDIR':
      return `no spec file '${path}': a part of the path is not a folder`;
    default:
      return `cannot read spec file '${path}': ${err.message}`;
  }
}

/** "; spec files there: a.yaml, b.yaml" for the folder the missing file was looked for in. */
function nearbySpecs(path: string): string {
  try {
    const dir = dirname(resolvePath(path));
    const names = readdirSync(dir).filter((n) => /\.(ya?ml|json)$/i.test(n) && n !== 'package.json' && !n.startsWith('.')).sort();
    if (names.length === 0) return '';
    return `; spec files there: ${names.slice(0, 8).join(', ')}${names.length > 8 ? ', …' : ''}`;
  } catch {
    return '';
  }
}

/**
 * Reads and parses a spec file. Refuses a path that is not a regular file or is larger than
 * MAX_SPEC_BYTES without reading it all. A missing or unreadable file is a SpecError saying so in
 * words (a missing one names where it was looked for and the spec files next to it).
 */
export async function loadSpecFile(path: string): Promise<{ spec: unknown; text: string }> {
  let text: string;
  let handle;
  try {
    handle = await open(path, 'r');
    const info = await handle.stat();
    if (!info.isFile()) fail(`cannot read spec file '${path}': not a regular file`);
    if (info.size > MAX_SPEC_BYTES) {
      fail(`spec file '${path}' is ${sizeText(info.size)}, over the ${sizeText(MAX_SPEC_BYTES)} limit; split the workflow`);
    }
    // Read at most one byte past the limit: the file may have grown since stat.
    const buffer = Buffer.alloc(MAX_SPEC_BYTES + 1);
    let filled = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, null);
      if (bytesRead === 0) break;
      filled += bytesRead;
      if (filled === buffer.length) break;
    }
    if (filled > MAX_SPEC_BYTES) {
      fail(`spec file '${path}' is over the ${sizeText(MAX_SPEC_BYTES)} limit; split the workflow`);
    }
    text = buffer.subarray(0, filled).toString('utf8');
  } catch (err) {
    if (err instanceof SpecError) throw err;
    fail(openFailure(path, err as NodeJS.ErrnoException));
  } finally {
    await handle?.close().catch(() => undefined);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a UTF-8 byte-order mark is not content
  return { spec: parseSpecText(text, path), text };
}
