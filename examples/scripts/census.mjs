#!/usr/bin/env node
// A census agent for the demo: reads a folder path (the prompt) on stdin, walks it, and prints
// one JSON object: files per extension, lines, exported symbols, TODO/FIXME comments.
import fs from 'node:fs';
import path from 'node:path';

const folder = fs.readFileSync(0, 'utf8').trim();
const root = path.resolve(process.cwd(), folder);
if (!root.startsWith(process.cwd() + path.sep)) {
  console.error(`census: '${folder}' is outside the project`);
  process.exit(2);
}
const census = { folder, files: 0, lines: 0, exports: 0, todos: [], byExtension: {}, largest: null };
function walk(dir) {
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if (e.code === 'ENOENT') return;
    throw e;
  }
  for (const e of entries) {
    if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.isFile()) count(p);
  }
}
function count(file) {
  const text = fs.readFileSync(file, 'utf8');
  const lines = text.split('\n');
  const rel = path.relative(process.cwd(), file);
  census.files++;
  census.lines += lines.length;
  const ext = path.extname(file) || '(none)';
  census.byExtension[ext] = (census.byExtension[ext] ?? 0) + 1;
  census.exports += lines.filter((l) => /^export\s/.test(l)).length;
  lines.forEach((l, i) => {
    if (/\b(TODO|FIXME|XXX)\b/.test(l) && census.todos.length < 20) census.todos.push(`${rel}:${i + 1}: ${l.trim().slice(0, 120)}`);
  });
  if (!census.largest || lines.length > census.largest.lines) census.largest = { file: rel, lines: lines.length };
}
walk(root);
process.stdout.write(JSON.stringify(census, null, 2) + '\n');
