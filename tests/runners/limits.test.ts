/**
 * Usage limits versus rate limits, from the words agent CLIs print (real shapes: Claude Code
 * 2.1.330's result text, OpenAI's `insufficient_quota` body, Anthropic's credit-balance 400), and
 * when a limit resets.
 */
import { describe, expect, it } from 'vitest';
import { apiFailure } from '../../src/runners/agent-cli.js';
import { isQuotaText, resetTimeIn, retryAfterMsIn, tripsBreaker } from '../../src/runners/limits.js';
import { toRunnerResult } from '../../src/runners/command.js';

const hints = { auth: 'log in' };
const NOW = new Date('2026-12-07T20:00:00Z');

describe('isQuotaText', () => {
  it.each([
    'API Error: Request rejected (429) · You have reached your usage limit. Your limit will reset at 2026-12-08T03:00:00Z.',
    'Claude AI usage limit reached|1765000000',
    "You've hit your limit · resets 3pm (Europe/Berlin)",
    'insufficient_quota: You exceeded your current quota, please check your plan and billing details.',
    'invalid_request_error: Your credit balance is too low to access the Anthropic API.',
    "You've hit your usage limit. Upgrade to Pro or try again in 2 hours 3 minutes.",
  ])('quota: %s', (text) => expect(isQuotaText(text)).toBe(true));
  it.each([
    'API Error: Request rejected (429) · Number of requests has exceeded your rate limit',
    '529 overloaded_error: Overloaded',
    "Quota exceeded for quota metric 'Generate requests' and limit 'requests per minute'",
    'Too many requests, please retry after 7 seconds',
  ])('not quota: %s', (text) => expect(isQuotaText(text)).toBe(false));
});

describe('resetTimeIn', () => {
  it('reads an epoch, an ISO time, a relative time and a wall-clock time in a zone', () => {
    expect(resetTimeIn('Claude AI usage limit reached|1765000000', NOW)).toBe(new Date(1765000000 * 1000).toISOString());
    expect(resetTimeIn('Your limit will reset at 2026-12-08T03:00:00Z.', NOW)).toBe('2026-12-08T03:00:00.000Z');
    expect(resetTimeIn('try again in 2 hours 3 minutes.', NOW)).toBe('2026-12-07T22:03:00.000Z');
    expect(resetTimeIn('resets in 45m', NOW)).toBe('2026-12-07T20:45:00.000Z');
    // 3pm in Berlin (UTC+1 in December) has passed at 20:00 UTC: the next one is tomorrow 14:00 UTC.
    expect(resetTimeIn("You've hit your limit · resets 3pm (Europe/Berlin)", NOW)).toBe('2026-12-08T14:00:00.000Z');
    expect(resetTimeIn('resets 11:30pm (UTC)', NOW)).toBe('2026-12-07T23:30:00.000Z');
    expect(resetTimeIn('You have reached your usage limit.', NOW)).toBeUndefined();
  });
  it("reads Codex 0.169.0's wording of resets_at, in the machine's zone, to the end of the minute it shows", () => {
    const at = (h: number, m: number) => new Date(2026, 11, 7, h, m).toISOString();
    const now = new Date(2026, 11, 7, 23, 42, 30);
    // A reset 5 s away reads as the current minute: the end of that minute, not tomorrow.
    expect(resetTimeIn('You’ve hit your usage limit. Try again at 11:42 PM.', now)).toBe(at(23, 43));
    expect(resetTimeIn('You’ve hit your usage limit. Try again at 11:50 PM.', now)).toBe(at(23, 50));
    expect(resetTimeIn('You’ve hit your usage limit. Try again at 11:40 PM.', now)).toBe(new Date(2026, 11, 8, 23, 40).toISOString());
    expect(resetTimeIn('You’ve hit your usage limit. Try again at Dec 9th, 2026 3:05 AM.', now)).toBe(new Date(2026, 11, 9, 3, 6).toISOString());
    expect(isQuotaText('You’ve hit your usage limit. Try again later.')).toBe(true);
  });
  it('reads a rate limit retry-after', () => {
    expect(retryAfterMsIn('please retry after 7 seconds')).toBe(7000);
    expect(retryAfterMsIn('Rate limit reached. Please try again in 1.5s.')).toBe(1500);
    expect(retryAfterMsIn('retry-after: 12')).toBe(12_000);
    expect(retryAfterMsIn('Overloaded')).toBeUndefined();
  });
});

describe('apiFailure', () => {
  it('classifies a usage limit as quota (not retryable, with resumeAfter) and trips the breaker', () => {
    const f = apiFailure('claude', 429, 'API Error: Request rejected (429) · You have reached your usage limit. Your limit will reset at 2026-12-08T03:00:00Z.', hints);
    expect(f.type).toBe('quota');
    expect(f.retryable).toBe(false);
    expect(f.resumeAfter).toBe('2026-12-08T03:00:00.000Z');
    expect(f.message).toMatch(/^claude hit a usage limit/);
    expect(tripsBreaker(f)).toBe(true);
  });
  it('classifies OpenAI insufficient_quota and an empty credit balance as quota', () => {
    const body = '429 {"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","code":"insufficient_quota"}}';
    expect(apiFailure('codex', undefined, body, hints).type).toBe('quota');
    expect(apiFailure('claude', 400, '{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API."}}', hints).type).toBe('quota');
  });
  it('keeps a plain rate limit and overload retryable, with the retry-after it names', () => {
    const rate = apiFailure('claude', 429, 'Number of requests has exceeded your rate limit; retry after 9 seconds', hints);
    expect(rate).toMatchObject({ type: 'model_api', retryable: true, retryAfterMs: 9000 });
    expect(tripsBreaker(rate)).toBe(false);
    expect(apiFailure('claude', 529, 'Overloaded', hints)).toMatchObject({ type: 'model_api', retryable: true });
  });
  it('keeps auth failures auth (they trip the breaker too)', () => {
    const f = apiFailure('claude', 401, 'invalid x-api-key', hints);
    expect(f.type).toBe('auth');
    expect(tripsBreaker(f)).toBe(true);
  });
});

describe('command runner', () => {
  it('reads a usage limit from the end of stderr', () => {
    const r = toRunnerResult({
      exitCode: 1, signal: null, stdout: '', stdoutBytes: 0, truncated: false,
      stderrTail: 'working…\nError: usage limit reached; resets in 2h\n', stderrBytes: 40, timedOut: false, cancelled: false, durationMs: 5, pid: 1,
    }, 1000);
    expect(r.error).toMatchObject({ type: 'quota', retryable: false });
    expect(r.error?.resumeAfter).toBeDefined();
  });
});
