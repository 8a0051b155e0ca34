/**
 * Phase digests written by an agent (`summarize: {agent}`) and the extractive fallback when that
 * agent fails, seen from what later phases receive in their prompts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fanfold, tempDir } from '../helpers/cli.js';

function spec(summarizer: string): string {
  return `version: 1
name: summarize-test
goal: count the widgets
limits: { maxConcurrent: 2, retries: 0 }
agents:
  worker: { runner: command, command: ["sh", "-c", "echo found 3 widgets in $(cat)"] }
  summ: { runner: command, command: ${summarizer} }
  echo: { runner: command, command: ["cat"] }
phases:
  - id: map
    title: Count widgets
    agent: worker
    summarize: { agent: summ }
    tasks:
      - { id: a, prompt: "alpha" }
      - { id: b, prompt: "beta" }
  - id: reduce
    dependsOn: [map]
    agent: echo
    tasks:
      - { id: r, prompt: "DIGEST<<{{digest.map}}>>" }
`;
}

describe('summarize: {agent}', () => {
  it("hands later phases the summarizer agent's digest, and records it in run.json", () => {
    const dir = tempDir();
    // The summarizer reads the phase outputs from its context file and writes one line.
    const summarizer = `["sh", "-c", "echo SUMMARY of $(grep -o widgets \\"$FANFOLD_CONTEXT_FILE\\" | wc -l) outputs"]`;
    fs.writeFileSync(path.join(dir, 'spec.yaml'), spec(summarizer));
    const r = fanfold(['run', 'spec.yaml', '--json', '--store', 'store'], { cwd: dir });
    expect(r.status, r.stderr).toBe(0);
    const { runId } = r.json();
    const out = fanfold(['show', runId, 'reduce/r', '--json', '--store', 'store'], { cwd: dir }).json();
    expect(out.output).toMatch(/DIGEST<<SUMMARY of 2 outputs>>/);
    const run = JSON.parse(fs.readFileSync(path.join(dir, 'store', runId, 'run.json'), 'utf8'));
    expect(run.phases.find((p: any) => p.id === 'map').digest).toBe('SUMMARY of 2 outputs');
  });

  it('falls back to the extractive digest, said out loud, when the summarizer fails', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'spec.yaml'), spec(`["sh", "-c", "echo broken >&2; exit 4"]`));
    const r = fanfold(['run', 'spec.yaml', '--json', '--store', 'store'], { cwd: dir });
    expect(r.status, r.stderr).toBe(0);
    const { runId } = r.json();
    const out = fanfold(['show', runId, 'reduce/r', '--json', '--store', 'store'], { cwd: dir }).json();
    expect(out.output).toMatch(/found 3 widgets/); // extractive lines from the outputs
    expect(out.output).toMatch(/summarizer 'summ' failed: exited with code 4: broken; extractive digest/);
  });
});
