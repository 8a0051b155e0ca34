/**
 * Continue, don't restart (issue 12 item 3), the pure parts: which attempt continues which
 * session, the session ids fanfold gives claude, claude's session flags and where Claude Code keeps
 * a session. The whole path with the real CLI is tests/e2e/misbehave.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { SessionChain, continuesSessions, cutOffBecause } from '../../src/engine/sessions.js';
import { claudeInvocation, claudeSessions } from '../../src/runners/claude.js';
import { continuationPrompt, sessionUuid } from '../../src/runners/sessions.js';
import type { RunnerInput } from '../../src/runners/types.js';
import type { AgentDef, Limits } from '../../src/spec/types.js';

const claude: AgentDef = { name: 'a', runner: 'claude', tier: 'read_only' };
const limits = { retries: 1 } as Limits;
const fail = (type: string, retryable = true) => ({ status: 'failed' as const, error: { type, message: `${type} happened`, retryable } });

describe('which attempts continue a session', () => {
  it('a transient failure, a timeout, a stall, a refused answer, a usage limit or a stop: continue; the rest: fresh', () => {
    expect(cutOffBecause(fail('model_api'))).toMatch(/model API failed/);
    expect(cutOffBecause(fail('model_api', false))).toBeUndefined();
    expect(cutOffBecause(fail('stalled'))).toMatch(/no sign of life/);
    expect(cutOffBecause(fail('invalid_structured_output'))).toMatch(/schema/);
    expect(cutOffBecause(fail('quota', false))).toMatch(/usage limit/);
    expect(cutOffBecause({ status: 'timed_out', error: { type: 'timeout', message: 'timed out after 10m', retryable: true } })).toMatch(/timed out/);
    expect(cutOffBecause({ status: 'cancelled', error: { type: 'cancelled', message: 'the run was stopped', retryable: false } })).toMatch(/stopped/);
    // A person's restart wants a fresh start; so do failures a retry cannot fix.
    expect(cutOffBecause({ status: 'cancelled', error: { type: 'cancelled', message: 'restarted by fanfold restart', retryable: false } })).toBeUndefined();
    expect(cutOffBecause(fail('permission_denied', false))).toBeUndefined();
    expect(cutOffBecause(fail('max_turns', false))).toBeUndefined();
    expect(cutOffBecause({ status: 'succeeded' })).toBeUndefined();
  });

  it('the chain hands the next attempt the session, with the run copy; off per agent or limits, and for worktree tasks', () => {
    const chain = new SessionChain('/runs/r/sessions');
    const t = { ref: 'p/t' };
    chain.ended('p/t', { attempt: 1, ...fail('stalled'), sessionId: 's-1', session: { file: 'p.t.1.claude.jsonl', origin: 'projects/-w/s-1.jsonl' } });
    expect(chain.forAttempt(t, 2, claude, limits)).toMatchObject({ attempt: 1, sessionId: 's-1', file: '/runs/r/sessions/p.t.1.claude.jsonl', origin: 'projects/-w/s-1.jsonl' });
    expect(chain.forAttempt(t, 1, claude, limits)).toBeUndefined();
    expect(chain.forAttempt(t, 2, { ...claude, continueSessions: false }, limits)).toBeUndefined();
    expect(chain.forAttempt(t, 2, claude, { ...limits, continueSessions: false })).toBeUndefined();
    expect(chain.forAttempt(t, 2, { ...claude, continueSessions: true }, { ...limits, continueSessions: false })).toBeDefined();
    expect(chain.forAttempt({ ref: 'p/t', isolation: 'worktree' }, 2, claude, limits)).toBeUndefined();
    expect(continuesSessions({ runner: 'command' }, limits)).toBe(false);
    // A failure that a retry cannot fix forgets the session.
    chain.ended('p/t', { attempt: 2, ...fail('permission_denied', false), sessionId: 's-2' });
    expect(chain.forAttempt(t, 3, claude, limits)).toBeUndefined();
    // An attempt an owner started but never recorded: its id is the one fanfold gave it.
    chain.cutOff('r', 'p/t', 3);
    expect(chain.forAttempt(t, 4, claude, limits)).toMatchObject({ attempt: 3, sessionId: sessionUuid('r', 'p/t', 3) });
  });

  it("a gate's fix-(n+1) continues fix-n's session (even a succeeded one), on its first attempt", () => {
    const chain = new SessionChain('/s');
    const fix = (n: number) => ({ ref: `g/fix-${n}`, origin: { kind: 'fix' as const, iteration: n } });
    expect(chain.forAttempt(fix(2), 1, claude, limits)).toBeUndefined();
    chain.ended('g/fix-1', { attempt: 1, status: 'succeeded', sessionId: 'f1', session: { file: 'g.fix-1.1.claude.jsonl', origin: 'projects/-w/f1.jsonl' } });
    expect(chain.forAttempt(fix(2), 1, claude, limits)).toMatchObject({ ref: 'g/fix-1', sessionId: 'f1', file: '/s/g.fix-1.1.claude.jsonl' });
    expect(chain.forAttempt(fix(1), 1, claude, limits)).toBeUndefined();
    expect(chain.forAttempt(fix(3), 1, claude, limits)).toBeUndefined();
    expect(chain.forAttempt(fix(2), 1, claude, { ...limits, continueSessions: false })).toBeUndefined();
    // An earlier owner's record of the previous fix serves as well.
    chain.keep('g/fix-2', { attempt: 2, sessionId: 'f2', session: { file: 'g.fix-2.2.claude.jsonl', origin: 'projects/-w/f2.jsonl' } });
    expect(chain.knows('g/fix-2')).toBe(true);
    expect(chain.forAttempt(fix(3), 1, claude, limits)).toMatchObject({ ref: 'g/fix-2', attempt: 2, sessionId: 'f2' });
  });
});

describe('claude sessions', () => {
  const input = (more: Partial<RunnerInput> = {}): RunnerInput => ({
    runId: 'r1', phaseId: 'p', taskId: 't', attempt: 2, prompt: 'Do it.', agent: claude, cwd: '/work/my.project',
    promptFile: '/w/p.txt', contextFile: '/w/c.json', timeoutMs: 1000, maxOutputBytes: 1000, signal: new AbortController().signal, ...more,
  });

  it('session ids are stable version-4 UUIDs per run, task and attempt', () => {
    const id = sessionUuid('r1', 'p/t', 2);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(sessionUuid('r1', 'p/t', 2)).toBe(id);
    expect(new Set([sessionUuid('r1', 'p/t', 3), sessionUuid('r2', 'p/t', 2), sessionUuid('r1', 'p/u', 2), id]).size).toBe(4);
  });

  it('argv: no persistence without a session folder; --session-id with one; --resume to continue', () => {
    expect(claudeInvocation(input()).args).toContain('--no-session-persistence');
    const kept = claudeInvocation(input({ sessionDir: '/runs/r1/sessions' })).args;
    expect(kept).toContain(`--session-id=${sessionUuid('r1', 'p/t', 2)}`);
    expect(kept).not.toContain('--no-session-persistence');
    const from = { attempt: 1, sessionId: 'abc', why: 'it timed out' };
    const cont = claudeInvocation(input({ sessionDir: '/runs/r1/sessions', continueFrom: from, prompt: continuationPrompt(from, undefined) }));
    expect(cont.args).toContain('--resume=abc');
    expect(cont.args.some((a) => a.startsWith('--session-id'))).toBe(false);
    expect(cont.stdin).toMatch(/^\[fanfold\] Your previous attempt at this task was interrupted \(it timed out\)/);
    expect(continuationPrompt(from, 'word: expected string')).toContain('rejected: word: expected string');
  });

  it("a session's place in Claude Code's config dir: projects/<cwd with every other character as '-'>/<id>.jsonl", () => {
    expect(claudeSessions.origin('/work/my.project', 'abc')).toBe('projects/-work-my-project/abc.jsonl');
    expect(claudeSessions.home({ CLAUDE_CONFIG_DIR: '/h/cfg', HOME: '/h' })).toBe('/h/cfg');
    expect(claudeSessions.home({ HOME: '/h' })).toBe('/h/.claude');
    const r = { status: 'failed' as const, output: '', outputBytes: 0, truncated: false, exitCode: 1, signal: null, stderrTail: 'No conversation found with session ID: abc' };
    expect(claudeSessions.cannotResume(r)).toBe(true);
    expect(claudeSessions.cannotResume({ ...r, stderrTail: 'boom' })).toBe(false);
  });
});
