/**
 * Telling a usage limit from a rate limit, and reading when either ends.
 *
 * The distinction decides what the engine does next (see engine/breaker.ts): a *rate* limit (429
 * "too many requests", 529 overloaded) passes in seconds, so the attempt is retried after a
 * back-off; a *quota* (a plan's usage limit, `insufficient_quota`, an empty credit balance) lasts
 * hours, and every further agent started against it fails the same way and burns a start-up's
 * worth of tokens — so the run stops starting agents of that runner and ends `paused`.
 * Both arrive as HTTP 429 from some providers, so the wording decides, not the status.
 */
import type { FailureInfo } from '../store/types.js';

/**
 * Wording of a usage/quota/credit limit (as opposed to a rate). Matched against the CLI's error
 * text after JSON bodies were made readable (`insufficient_quota: You exceeded your current quota`).
 */
const QUOTA_TEXT =
  /usage limit|hit your (?:usage )?limit|(?:plan|monthly|weekly|daily|spend(?:ing)?) limit (?:reached|exceeded)|insufficient[_ ]quota|exceeded your (?:current )?quota|quota (?:exceeded|exhausted|reached)|credit balance|out of credits|insufficient[_ ](?:credits|funds|balance)|payment required|billing (?:hard )?limit/i;

/** Wording that makes a "quota" message a per-minute rate limit after all (Google's "requests per minute" quotas). */
const RATE_TEXT = /per (?:minute|second)|requests? per|rate[ _-]?limit(?!.*(?:usage|quota|credit))/i;

/** True when `text` says a usage, quota or credit limit was reached (not a short rate limit). */
export function isQuotaText(text: string): boolean {
  if (!QUOTA_TEXT.test(text)) return false;
  // "exceeded your rate limit" never names a quota; "quota metric 'requests per minute'" is a rate.
  return !(RATE_TEXT.test(text) && !/usage limit|insufficient[_ ]quota|credit balance|out of credits/i.test(text));
}

/** A failure of kind `quota`: not retryable now; `resumeAfter` when the text says when it resets. */
export function quotaFailure(who: string, text: string, now: Date = new Date()): FailureInfo {
  const resumeAfter = resetTimeIn(text, now);
  return {
    type: 'quota',
    message: `${who} hit a usage limit: ${text}${resumeAfter ? ` (resets ${resumeAfter})` : ''}`,
    retryable: false,
    ...(resumeAfter ? { resumeAfter } : {}),
  };
}

/** Whether a failure stops the run from starting more agents of its runner (see engine/breaker.ts). */
export function tripsBreaker(error: Pick<FailureInfo, 'type'> | undefined): boolean {
  return error?.type === 'quota' || error?.type === 'auth';
}

/** Milliseconds per unit, by the unit's first letter (`ms` and `milli…` are told apart first). */
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `2h 30m`, `2 hours 3 minutes`, `20s`, `1.5 seconds` at the start of `text`, in ms. */
function durationAt(text: string): number | undefined {
  const part = /^\s*(?:and\s+|,\s*)?(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?)\b/i;
  let rest = text;
  let total = 0;
  let found = false;
  for (let m = part.exec(rest); m; m = part.exec(rest)) {
    const unit = m[2]!.toLowerCase();
    const per = unit === 'ms' || unit.startsWith('milli') ? 1 : UNIT_MS[unit[0]!]!;
    total += Number(m[1]) * per;
    found = true;
    rest = rest.slice(m[0].length);
  }
  return found ? total : undefined;
}

/** How long a rate-limited request should wait, when the text says (`retry after 7s`, `try again in 20s`). */
export function retryAfterMsIn(text: string): number | undefined {
  const m = /(?:retry[- ]after[:=]?|try again in|retry in|wait)\s*/i.exec(text);
  if (!m) return undefined;
  const after = text.slice(m.index + m[0].length);
  const plain = /^(\d+(?:\.\d+)?)(?![\d.]|\s*[a-z])/i.exec(after); // `retry-after: 7` is seconds
  if (plain) return Number(plain[1]) * 1000;
  return durationAt(after);
}

/** Month names' first three letters, in order. */
const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/** Offset (ms) of IANA zone `zone` from UTC at `at`, or undefined for an unknown zone. */
function zoneOffsetMs(zone: string, at: Date): number | undefined {
  try {
    const parts = new Intl.DateTimeFormat('en-US', {
      timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
    }).formatToParts(at);
    const get = (t: string) => Number(parts.find((p) => p.type === t)?.value);
    const asUtc = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
    return asUtc - Math.floor(at.getTime() / 1000) * 1000;
  } catch {
    return undefined;
  }
}

/**
 * When a usage limit resets, as an ISO time, from the CLI's wording: an epoch after `|` (Claude's
 * "usage limit reached|1735689600"), an ISO time, "in 2 hours 3 minutes", or a wall-clock time
 * ("resets 3pm (Europe/Berlin)", "reset at 15:30") taken as the next such time in the named zone
 * (else the machine's). Undefined when the text does not say.
 */
export function resetTimeIn(text: string, now: Date = new Date()): string | undefined {
  const epoch = /\|\s*(\d{10})(?:\D|$)/.exec(text);
  if (epoch) return new Date(Number(epoch[1]) * 1000).toISOString();
  const iso = /\b(\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d)?)/.exec(text);
  if (iso) {
    const t = Date.parse(/Z|[+-]\d\d:?\d\d$/.test(iso[1]!) ? iso[1]! : `${iso[1]}Z`);
    if (Number.isFinite(t)) return new Date(t).toISOString();
  }
  const rel = /(?:reset(?:s)?|try again|available(?: again)?|retry|back)\s+in\s+/i.exec(text);
  if (rel) {
    const ms = durationAt(text.slice(rel.index + rel[0].length));
    if (ms !== undefined) return new Date(now.getTime() + ms).toISOString();
  }
  // "resets 3pm (Europe/Berlin)" (Claude Code), "Try again at 11:42 PM." and "Try again at Dec
  // 9th, 2026 3:05 AM." (Codex 0.169.0, from the error's resets_at, in the machine's zone).
  const wall =
    /(?:reset(?:s)?(?:\s+at)?|try again at|available(?: again)? at)\s+(?:([A-Za-z]{3})[a-z]*\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4}),?\s+)?(\d{1,2})(?::(\d\d))?\s*(am|pm)?(?:\s*\(([A-Za-z_]+(?:\/[A-Za-z_+-]+)*)\))?/i.exec(
      text,
    );
  if (wall && (wall[5] !== undefined || wall[6] !== undefined)) {
    let hour = Number(wall[4]);
    const minute = Number(wall[5] ?? 0);
    const ampm = wall[6]?.toLowerCase();
    if (ampm === 'pm' && hour < 12) hour += 12;
    if (ampm === 'am' && hour === 12) hour = 0;
    if (hour > 23 || minute > 59) return undefined;
    const zone = wall[7];
    const offset = zone ? zoneOffsetMs(zone, now) : -now.getTimezoneOffset() * 60_000;
    if (offset === undefined) return undefined;
    const month = wall[1] ? MONTHS.indexOf(wall[1].toLowerCase()) : -1;
    if (wall[1] && month >= 0) {
      // A full date: that day's hour:minute in the zone, plus the minute the clock shows (see below).
      return new Date(Date.UTC(Number(wall[3]), month, Number(wall[2]), hour, minute) - offset + 60_000).toISOString();
    }
    // The wall clock of `now` in that zone, then the next time it shows hour:minute. Why the
    // minute of grace: the time is shown to the minute, so a reset a few seconds from now reads
    // as the current minute — which has begun already but not ended; it is not tomorrow's.
    const local = new Date(now.getTime() + offset);
    let t = Date.UTC(local.getUTCFullYear(), local.getUTCMonth(), local.getUTCDate(), hour, minute) - offset;
    if (t + 60_000 <= now.getTime()) t += 86_400_000;
    else if (t <= now.getTime()) t += 60_000;
    return new Date(t).toISOString();
  }
  return undefined;
}
