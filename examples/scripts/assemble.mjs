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
rows.sort((a, b) => b.lines - a.lines);
const total = rows.reduce((t, r) => ({ files: t.files + r.files, lines: t.lines + r.lines, exports: t.exports + r.exports, todos: t.todos + r.todos.length }), { files: 0, lines: 0, exports: 0, todos: 0 });
const out = [
  `# Source census of ${process.cwd().split('/').pop()}`,
  '',
  `${rows.length} folders, ${total.files} files, ${total.lines} lines, ${total.exports} exports, ${total.todos} TODO/FIXME comments.`,
  '',
  '| rank | folder | files | lines | exports | TODOs | largest file |',
  '|---:|---|---:|---:|---:|---:|---|',
  ...rows.map((r, i) => `| ${i + 1} | ${r.folder} | ${r.files} | ${r.lines} | ${r.exports} | ${r.todos.length} | ${r.largest ? `${r.largest.file} (${r.largest.lines})` : '—'} |`),
];
const todos = rows.flatMap((r) => r.todos).slice(0, 10);
if (todos.length) out.push('', 'TODO comments found:', ...todos.map((t) => `- ${t}`));
process.stdout.write(out.join('\n') + '\n');

function safeParse(s) {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}
