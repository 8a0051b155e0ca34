#!/usr/bin/env node
// The assembling agent of the demo: reads the census outputs of the tasks it depends on from
// FANFOLD_CONTEXT_FILE and prints a ranked Markdown table with totals.
import fs from 'node:fs';

const ctx = JSON.parse(fs.readFileSync(process.env.FANFOLD_CONTEXT_FILE, 'utf8'));
const rows = [];
for (const dep of ctx.deps) {
  const c = dep.structured ?? safeParse(dep.output);
  if (c) rows.push(c);
  else rows.push({ folder: dep.ref, files: 0, lines: 0, exports: 0, todos: [], unreadable: true });
}
rows.sort((a, b) => b.lines - a.lines || (a.folder < b.folder ? -1 : a.folder > b.folder ? 1 : 0));
// The folders' common parent names the table, so it reads the same in every clone.
const parent = commonParent(rows.map((r) => r.folder));
const total = rows.reduce((t, r) => ({ files: t.files + r.files, lines: t.lines + r.lines, exports: t.exports + r.exports, todos: t.todos + r.todos.length }), { files: 0, lines: 0, exports: 0, todos: 0 });
const out = [
  `# Census of ${parent || 'the project'}`,
  '',
  `${rows.length} folders, ${total.files} files, ${total.lines} lines, ${total.exports} exports, ${total.todos} TODO comments (TODO, FIXME or XXX in a comment).`,
  '',
  '| rank | folder | files | lines | exports | TODOs | largest file |',
  '|---:|---|---:|---:|---:|---:|---|',
  ...rows.map((r, i) => `| ${i + 1} | ${short(r.folder)} | ${r.files} | ${r.lines} | ${r.exports} | ${r.todos.length} | ${r.largest ? `${short(r.largest.file)} (${r.largest.lines})` : '—'} |`),
];
const todos = rows.flatMap((r) => r.todos).slice(0, 10);
if (todos.length) out.push('', 'TODO comments found:', ...todos.map((t) => `- ${short(t)}`));
process.stdout.write(out.join('\n') + '\n');

function safeParse(s) {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

function commonParent(folders) {
  const parts = folders.map((f) => String(f).split('/'));
  const first = parts[0] ?? [];
  let n = 0;
  while (n < first.length - 1 && parts.every((p) => p.length > n + 1 && p[n] === first[n])) n++;
  return first.slice(0, n).join('/');
}

function short(p) {
  return parent && String(p).startsWith(parent + '/') ? String(p).slice(parent.length + 1) : p;
}
