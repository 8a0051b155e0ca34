#!/usr/bin/env node
// A census agent for the demo: reads a folder path (the prompt) on stdin, walks it, and prints
// one JSON object: files per extension, lines, exported symbols, and the TODO/FIXME/XXX comments.
// A TODO counts only inside a comment of the file's language (// and /* */ for JS and TS, # for
// Python and shell): the word inside a string literal or in prose (Markdown) is not a comment.
import fs from 'node:fs';
import path from 'node:path';

const folder = fs.readFileSync(0, 'utf8').trim();
const root = path.resolve(process.cwd(), folder);
if (!root.startsWith(process.cwd() + path.sep)) {
  console.error(`census: '${folder}' is outside the project`);
  process.exit(2);
}
const census = { folder, files: 0, lines: 0, exports: 0, todos: [], byExtension: {}, largest: null };
const MARKER = /\b(TODO|FIXME|XXX)\b/;
const C_LIKE = new Set(['.js', '.mjs', '.cjs', '.jsx', '.ts', '.mts', '.cts', '.tsx']);
const HASH = new Set(['.py', '.sh', '.bash', '.yaml', '.yml', '.toml']);

function walk(dir) {
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if (e.code === 'ENOENT') return;
    throw e;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.isFile()) count(p);
  }
}

/** The comments of `text` as [line number (1-based), comment text] pairs, by the file's language. */
function comments(text, ext) {
  if (C_LIKE.has(ext)) return scan(text, { line: ['//'], block: ['/*', '*/'], quotes: ['"', "'", '`'] });
  if (HASH.has(ext)) return scan(text, { line: ['#'], quotes: ['"""', "'''", '"', "'"], hashAfterSpace: ext === '.sh' || ext === '.bash' });
  return [];
}

/** A small lexer: skips string literals (with escapes), collects line and block comments. */
function scan(text, syntax) {
  const out = [];
  let line = 1;
  let i = 0;
  const at = (s) => text.startsWith(s, i);
  while (i < text.length) {
    const ch = text[i];
    if (ch === '\n') {
      line++;
      i++;
      continue;
    }
    const quote = syntax.quotes.find((q) => at(q));
    if (quote) {
      i += quote.length;
      while (i < text.length && !at(quote)) {
        if (text[i] === '\\') i++;
        else if (text[i] === '\n') {
          line++;
          // A one-character quote other than ` ends at the line's end even when unclosed.
          if (quote.length === 1 && quote !== '`') break;
        }
        i++;
      }
      i += quote.length;
      continue;
    }
    const lineStart = syntax.line.find((m) => at(m));
    if (lineStart && (!syntax.hashAfterSpace || i === 0 || /\s/.test(text[i - 1]))) {
      const end = text.indexOf('\n', i);
      out.push([line, text.slice(i, end === -1 ? text.length : end)]);
      i = end === -1 ? text.length : end;
      continue;
    }
    if (syntax.block && at(syntax.block[0])) {
      const end = text.indexOf(syntax.block[1], i + 2);
      const body = text.slice(i, end === -1 ? text.length : end + 2);
      body.split('\n').forEach((l, k) => out.push([line + k, l]));
      line += body.split('\n').length - 1;
      i += body.length;
      continue;
    }
    i++;
  }
  return out;
}

function count(file) {
  const text = fs.readFileSync(file, 'utf8');
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const rel = path.relative(process.cwd(), file);
  const ext = path.extname(file) || '(none)';
  census.files++;
  census.lines += lines.length;
  census.byExtension[ext] = (census.byExtension[ext] ?? 0) + 1;
  census.exports += lines.filter((l) => /^export\s/.test(l)).length;
  for (const [n, comment] of comments(text, ext)) {
    if (MARKER.test(comment) && census.todos.length < 20) census.todos.push(`${rel}:${n}: ${comment.trim().slice(0, 120)}`);
  }
  if (!census.largest || lines.length > census.largest.lines) census.largest = { file: rel, lines: lines.length };
}
walk(root);
process.stdout.write(JSON.stringify(census, null, 2) + '\n');
