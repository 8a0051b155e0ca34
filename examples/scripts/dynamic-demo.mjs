#!/usr/bin/env node
// The scripted agents of examples/dynamic-demo.yaml, one role per argument. Each reads its prompt
// on stdin (as every `command` agent does) and stands in for what a model would do, so the
// dynamic parts of a workflow can be watched offline, in seconds:
//
//   discover  a scout that lists at most 4 source folders per round that it was not told about
//   measure   counts the files and lines of one folder (JSON)
//   claim     claims every module of a measured folder over 450 lines is too long (JSON findings)
//   refute    a skeptic: recounts a claimed module's lines of code, blanks and comments left out
//   draft     writes the census table to <run dir>/demo/summary.md, forgetting the totals row
//   gate      the gate's check: the table must end with a totals row that adds up
//   fix       adds the totals row the gate asked for
//   report    quotes the summary and the findings the skeptics confirmed
//
// Nothing here writes to the project: the summary lives in the run's own folder under the store
// (next to the `inputs/` folder that holds FANFOLD_PROMPT_FILE), or in the temp folder.
import fs from 'node:fs';
import path from 'node:path';

const role = process.argv[2];
const prompt = fs.readFileSync(0, 'utf8');
const LONG = 450;
const PER_ROUND = 4;

/** Prints one JSON answer (the structured result) and ends. */
function answer(value) {
  process.stdout.write(JSON.stringify(value) + '\n');
}

function fail(message) {
  process.stdout.write(message + '\n');
  process.exit(1);
}

/**
 * The folder this run's scratch files live in: `.fanfold-demo/<run id>/` in the project. Why the
 * project: agents run sandboxed, and an agent of tier edit may write only the project (the run's
 * own folder is read-only to every agent, and each agent's /tmp is private).
 */
function scratchDir() {
  const dir = path.join(process.cwd(), '.fanfold-demo', process.env.FANFOLD_RUN_ID ?? 'norun');
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}
const summaryFile = () => path.join(scratchDir(), 'summary.md');

/** Source files of a folder, recursively, as paths relative to the project. */
function filesOf(folder) {
  const out = [];
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && /\.(ts|mjs|js)$/.test(e.name)) out.push(path.relative(process.cwd(), p));
    }
  };
  walk(path.resolve(process.cwd(), folder));
  return out.sort();
}

const lineCount = (file) => fs.readFileSync(file, 'utf8').split('\n').length - 1;
/** Lines that are neither blank nor only a comment. */
const codeLines = (file) =>
  fs.readFileSync(file, 'utf8').split('\n').filter((l) => !/^\s*($|\/\/|\/\*|\*)/.test(l)).length;

/** The table rows of the summary: [folder, files, lines]. */
function tableRows(text) {
  return [...text.matchAll(/^\| `([^`]+)` \| (\d+) \| (\d+) \|$/gm)].map((m) => [m[1], Number(m[2]), Number(m[3])]);
}
const totalsRow = (rows) =>
  `| **total** | ${rows.reduce((n, r) => n + r[1], 0)} | ${rows.reduce((n, r) => n + r[2], 0)} |`;

switch (role) {
  case 'discover': {
    // `{{seen}}` arrives as "- <folder>" lines; anything not listed there is new.
    const seen = new Set([...prompt.matchAll(/^- (\S+)$/gm)].map((m) => m[1]));
    const all = fs.readdirSync('src', { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => `src/${e.name}`).sort();
    answer({ folders: all.filter((f) => !seen.has(f)).slice(0, PER_ROUND) });
    break;
  }
  case 'measure': {
    const folder = /Measure (\S+?):/.exec(prompt)?.[1];
    if (!folder || !folder.startsWith('src/')) fail(`measure: no folder under src/ in the prompt`);
    const files = filesOf(folder).map((file) => ({ file, lines: lineCount(file) })).sort((a, b) => b.lines - a.lines);
    answer({ folder, files: files.length, lines: files.reduce((n, f) => n + f.lines, 0), longest: files.slice(0, 12) });
    break;
  }
  case 'claim': {
    // `{{prev}}` is the measurement of the same folder, as its agent printed it.
    const m = JSON.parse(prompt.slice(prompt.indexOf('{')));
    answer({
      findings: m.longest.filter((f) => f.lines > LONG)
        .map((f) => `${f.file} has ${f.lines} lines`),
    });
    break;
  }
  case 'refute': {
    const m = /(\S+\.(?:ts|mjs|js)) has (\d+) lines/.exec(prompt);
    if (!m) {
      answer({ refuted: true, reasons: 'the claim names no module and line count to check' });
      break;
    }
    const code = codeLines(m[1]);
    answer(code > LONG
      ? { refuted: false, reasons: `${code} lines of code` }
      : { refuted: true, reasons: `only ${code} lines of code` });
    break;
  }
  case 'draft': {
    const ctx = JSON.parse(fs.readFileSync(process.env.FANFOLD_CONTEXT_FILE, 'utf8'));
    const rows = ctx.deps.filter((d) => d.ref.startsWith('measure/') && d.structured)
      .map((d) => d.structured).sort((a, b) => b.lines - a.lines);
    const text = ['# Source census', '', '| folder | files | lines |', '|---|---|---|',
      ...rows.map((r) => `| \`${r.folder}\` | ${r.files} | ${r.lines} |`), ''].join('\n');
    fs.writeFileSync(summaryFile(), text);
    process.stdout.write(`Wrote the census of ${rows.length} folders to ${summaryFile()}\n`);
    break;
  }
  case 'gate': {
    let text;
    try {
      text = fs.readFileSync(summaryFile(), 'utf8');
    } catch {
      fail(`gate: ${summaryFile()} does not exist`);
    }
    const rows = tableRows(text);
    if (rows.length === 0) fail('gate: the summary has no folder rows');
    const want = totalsRow(rows);
    const has = /^\| \*\*total\*\* \|.*$/m.exec(text)?.[0];
    if (!has) fail(`gate: the table has no totals row; expected: ${want}`);
    if (has !== want) fail(`gate: the totals row does not add up: got ${has}, expected ${want}`);
    process.stdout.write(`gate: ${rows.length} rows, totals add up\n`);
    break;
  }
  case 'fix': {
    const file = summaryFile();
    const text = fs.readFileSync(file, 'utf8');
    const rows = tableRows(text);
    const lines = text.split('\n').filter((l) => !l.startsWith('| **total** |'));
    const last = lines.findLastIndex((l) => l.startsWith('| `'));
    lines.splice(last + 1, 0, totalsRow(rows));
    fs.writeFileSync(file, lines.join('\n'));
    process.stdout.write(`Added the totals row to ${file}: ${totalsRow(rows)}\n`);
    break;
  }
  case 'report': {
    // The digest of `claims` lists the verdicts, confirmed ones first (and only the first ones
    // when there are many): quote the confirmed findings and count the rest.
    const counted = /: (\d+) confirmed, (\d+) refuted, (\d+) unverified/.exec(prompt);
    const confirmed = prompt.split('\n').filter((l) => /^- confirmed f\d+: .* has \d+ lines$/.test(l));
    const lines = [`## Modules over ${LONG} lines, confirmed by the skeptics`, '', ...confirmed.map((l) => l.replace(/^- confirmed /, '- '))];
    if (counted && confirmed.length < Number(counted[1])) lines.push(`- … and ${Number(counted[1]) - confirmed.length} more (see the report's verification section)`);
    if (counted) lines.push('', `${counted[2]} claim(s) refuted by the skeptics, ${counted[3]} unverified: see the report's verification section.`);
    process.stdout.write(`${fs.readFileSync(summaryFile(), 'utf8').trim()}\n\n${lines.join('\n')}\n`);
    break;
  }
  default:
    console.error(`dynamic-demo: unknown role '${role}' (expected discover, measure, claim, refute, draft, gate, fix or report)`);
    process.exit(2);
}
