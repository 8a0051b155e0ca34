/**
 * The dashboard's one lock: a random token. The printed URL carries it (`?token=`); the first
 * request with it gets a cookie, so the page's own requests (scripts, API calls, the event stream)
 * carry it without putting it in every URL. Scripts may send `Authorization: Bearer <token>`.
 * Every request without it is refused with 401.
 *
 * Why a token even on 127.0.0.1: any local process and any web page the person opens can reach a
 * loopback port; only someone who was shown the URL can drive runs through it.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** A new access token: 32 random bytes, base64url. */
export function newAccessToken(): string {
  return randomBytes(32).toString('base64url');
}

/** The cookie name of the dashboard on `port`: cookies are per host, not per port, so two dashboards must not share one. */
export function cookieName(port: number): string {
  return `fanfold_ui_${port}`;
}

/** Constant-time comparison of a presented token with the real one. */
export function sameToken(given: string | undefined, token: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given, 'utf8');
  const b = Buffer.from(token, 'utf8');
  // Why compare lengths first: timingSafeEqual throws on a length mismatch; the length of a
  // random token is no secret.
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The value of one cookie in a request, if present. */
export function readCookie(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return undefined;
}

/** How a request proved it holds the token, if it did. */
export type AuthWay = 'query' | 'cookie' | 'bearer';

/** Checks a request: the `token` query parameter, the cookie, or a bearer header. */
export function authenticate(req: IncomingMessage, url: URL, token: string, port: number): AuthWay | undefined {
  if (sameToken(url.searchParams.get('token') ?? undefined, token)) return 'query';
  if (sameToken(readCookie(req, cookieName(port)), token)) return 'cookie';
  const h = req.headers.authorization;
  if (h?.startsWith('Bearer ') && sameToken(h.slice(7).trim(), token)) return 'bearer';
  return undefined;
}

/**
 * The cookie that lets the page's own requests in. HttpOnly: no script reads it. SameSite=Strict:
 * another site's page cannot make the browser send it (no cross-site form posts).
 */
export function authCookie(port: number, token: string): string {
  return `${cookieName(port)}=${token}; HttpOnly; SameSite=Strict; Path=/`;
}
