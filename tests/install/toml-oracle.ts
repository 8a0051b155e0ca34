/**
 * An independent TOML parser for the tests: Python's standard `tomllib` (3.11+), when there is a
 * python3 that has it. The editor under test is checked against it: its output must parse, and
 * must mean the input plus exactly the keys it set.
 */
import { spawnSync } from 'node:child_process';

let available: boolean | undefined;

/** Whether python3 with tomllib is there (checked once). */
export function hasTomlOracle(): boolean {
  if (available === undefined) {
    const r = spawnSync('python3', ['-c', 'import tomllib'], { encoding: 'utf8' });
    available = r.status === 0;
    if (!available) process.stderr.write('[fanfold tests] SKIPPED: TOML oracle checks (no python3 with tomllib on this machine)\n');
  }
  return available;
}

/** A tomllib answer: the parsed value (dates as strings), or the error for invalid TOML. */
export type OracleResult = { ok: true; value: any } | { ok: false; error: string };

/** Parses several TOML texts with tomllib in one python process. */
export function parseTomlAll(texts: string[]): OracleResult[] {
  const script = [
    'import sys, json, tomllib',
    'out = []',
    'for t in json.loads(sys.stdin.read()):',
    '  try: out.append({"ok": True, "value": tomllib.loads(t)})',
    '  except Exception as e: out.append({"ok": False, "error": str(e)})',
    'print(json.dumps(out, default=str))',
  ].join('\n');
  const r = spawnSync('python3', ['-c', script], { input: JSON.stringify(texts), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`toml oracle failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as OracleResult[];
}

/** Parses one TOML text with tomllib. */
export function parseToml(text: string): OracleResult {
  return parseTomlAll([text])[0]!;
}
