/**
 * Structured output through the engine: a task's `schema` is checked, an invalid answer is retried
 * with the validation errors fed back in the next attempt's prompt, and it fails with them when
 * the retries run out.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fanfold, readAgentFiles, tempDir } from '../helpers/cli.js';

// Answers {"count": "three"} (a string: invalid) unless its prompt carries the engine's feedback.
const AGENT = `["sh", "-c", "if grep -q 'was refused' \\"$FANFOLD_PROMPT_FILE\\"; then echo '{\\"count\\": 3}'; else echo '{\\"count\\": \\"three\\"}'; fi"]`;

function spec(retries: number): string {
  return `version: 1
name: structured
limits: { retries: ${retries}, retryBackoff: 100ms }
agents:
  counter: { runner: command, command: ${AGENT} }
phases:
  - id: p
    agent: counter
    schema: { type: object, properties: { count: { type: integer } }, required: [count] }
    tasks: [{ id: t, prompt: "count the widgets" }]
`;
}

describe('structured output through the engine', () => {
  it('retries an answer that does not match the schema, with the validation errors fed back', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'spec.yaml'), spec(1));
    const r = fanfold(['run', 'spec.yaml', '--json', '--store', 'store'], { cwd: dir });
    expect(r.status, r.stderr + r.stdout).toBe(0);
    const files = readAgentFiles(path.join(dir, 'store', r.json().runId));
    const first = files.get('p.t.1.json');
    const second = files.get('p.t.2.json');
    expect(first.status).toBe('failed');
    expect(first.error.type).toBe('invalid_structured_output');
    expect(first.error.message).toMatch(/count/);
    expect(second.prompt).toContain('was refused');
    expect(second.prompt).toContain(first.error.message.slice(0, 40));
    expect(second.status).toBe('succeeded');
    expect(second.structured).toEqual({ count: 3 });
  });

  it('fails with the validation errors when no retry is left', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'spec.yaml'), spec(0));
    const r = fanfold(['run', 'spec.yaml', '--json', '--store', 'store'], { cwd: dir });
    expect(r.status).toBe(1);
    const files = readAgentFiles(path.join(dir, 'store', r.json().runId));
    expect([...files.keys()]).toEqual(['p.t.1.json']);
    expect(files.get('p.t.1.json').error.type).toBe('invalid_structured_output');
  });
});
