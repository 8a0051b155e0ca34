import { describe, expect, test } from 'vitest';
import { KEY_LENGTH, canonicalJson, taskKey, type AgentDef } from '../../src/spec/index.js';

describe('canonicalJson', () => {
  test('sorts object keys at every level, keeps array order, drops undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, 1], c: undefined, b: null } })).toBe('{"a":{"b":null,"d":[3,1]},"b":1}');
  });

  test('equal values in any key order give equal text', () => {
    expect(canonicalJson({ x: 1, y: { p: 'q', r: 's' } })).toBe(canonicalJson({ y: { r: 's', p: 'q' }, x: 1 }));
  });

  test('strings are escaped like JSON', () => {
    expect(canonicalJson({ 'a"b': 'line\nbreak' })).toBe('{"a\\"b":"line\\nbreak"}');
  });
});

describe('taskKey', () => {
  const agent: AgentDef = { name: 'sh', runner: 'command', command: ['bash', 'x.sh'], tier: 'read_only' };
  const base = { phaseId: 'p', taskId: 't', prompt: 'hello', agent, deps: [] };

  test('is 24 lowercase hex characters', () => {
    expect(taskKey(base)).toMatch(new RegExp(`^[0-9a-f]{${KEY_LENGTH}}$`));
    expect(KEY_LENGTH).toBe(24);
  });

  test('is stable for equal content, whatever the key order of the agent', () => {
    const reordered = { tier: 'read_only', command: ['bash', 'x.sh'], runner: 'command', name: 'sh' } as AgentDef;
    expect(taskKey({ ...base, agent: reordered })).toBe(taskKey(base));
  });

  test('changes with each input', () => {
    const k = taskKey(base);
    expect(taskKey({ ...base, phaseId: 'q' })).not.toBe(k);
    expect(taskKey({ ...base, taskId: 'u' })).not.toBe(k);
    expect(taskKey({ ...base, prompt: 'hello!' })).not.toBe(k);
    expect(taskKey({ ...base, agent: { ...agent, model: 'm' } })).not.toBe(k);
    expect(taskKey({ ...base, agent: { ...agent, command: ['bash', 'y.sh'] } })).not.toBe(k);
    expect(taskKey({ ...base, deps: [{ ref: 'a/b', key: 'k1' }] })).not.toBe(k);
  });

  test('phase and task ids cannot be confused by where the slash falls', () => {
    expect(taskKey({ ...base, phaseId: 'a-b', taskId: 'c' })).not.toBe(taskKey({ ...base, phaseId: 'a', taskId: 'b-c' }));
  });

  test('deps are sorted by ref, so their listed order does not matter', () => {
    const d1 = { ref: 'a/x', key: 'k1' };
    const d2 = { ref: 'b/y', key: 'k2' };
    expect(taskKey({ ...base, deps: [d2, d1] })).toBe(taskKey({ ...base, deps: [d1, d2] }));
    expect(taskKey({ ...base, deps: [d1, { ...d2, key: 'k3' }] })).not.toBe(taskKey({ ...base, deps: [d1, d2] }));
  });
});
