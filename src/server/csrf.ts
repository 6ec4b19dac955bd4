import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import { WitnessError } from '../core/index.js';
import { overHttps } from './person-session.js';

/**
 * Cross-site request forgery protection for the viewer's forms, in two independent layers:
 *
 * 1. A synchronizer token: every form carries the token of the person's session (person-session.ts)
 *    and the POST is refused unless the field equals it, compared in constant time. The sign-in
 *    form, which has no session yet, carries a pre-session token that must equal the one in its
 *    own HttpOnly, SameSite=Strict cookie.
 * 2. The browser's own word on where the request came from: `Sec-Fetch-Site` must be
 *    `same-origin` and `Origin` this server's origin, when the browser sends them (clients that
 *    send neither still need the token).
 *
 * Requests authenticated by an `Authorization` header need neither: a browser never attaches one
 * on its own, so another site cannot forge them.
 */
export const PRESESSION_COOKIE = 'witness_signin';

/** Where an API POST authenticated by a session cookie (not a form) carries the session's token. */
export const CSRF_HEADER = 'x-csrf-token';

/** Equal strings, compared in constant time (hashed first, so lengths say nothing either). */
export function tokensEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a, 'utf8').digest();
  const hb = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(ha, hb) && a.length === b.length;
}

/** Refuses a request a browser says came from another site. */
export function checkSameOrigin(c: Context): void {
  const site = c.req.header('sec-fetch-site');
  if (site !== undefined && site !== 'same-origin') {
    throw new WitnessError('forbidden', `This form was posted from another site (Sec-Fetch-Site: ${site.slice(0, 32)}); open the page on this server and submit it again.`);
  }
  // The pages go out with `Referrer-Policy: no-referrer`, under which browsers send `Origin: null`
  // even for a same-origin form: that says nothing, so Sec-Fetch-Site and the token decide.
  const origin = c.req.header('origin');
  if (origin !== undefined && origin !== 'null' && origin !== new URL(c.req.url).origin) {
    throw new WitnessError('forbidden', 'This form was posted from another origin; open the page on this server and submit it again.');
  }
}

/** Checks a posted form's token against the one expected; `forbidden` (403) when missing or different. */
export function checkCsrfToken(c: Context, expected: string | undefined, presented: unknown): void {
  checkSameOrigin(c);
  if (typeof presented !== 'string' || presented === '') {
    throw new WitnessError('forbidden', 'This form carries no CSRF token; reload the page and submit it again.');
  }
  if (expected === undefined || !tokensEqual(expected, presented)) {
    throw new WitnessError('forbidden', 'This form’s CSRF token does not match your session; reload the page and submit it again.');
  }
}

/** The sign-in form's pre-session token: the one in the request's cookie, or a new one set on the response. */
export function presessionToken(c: Context): string {
  const have = getCookie(c, PRESESSION_COOKIE);
  if (have !== undefined && /^[A-Za-z0-9_-]{43}$/.test(have)) return have;
  const token = randomBytes(32).toString('base64url');
  setCookie(c, PRESESSION_COOKIE, token, { httpOnly: true, sameSite: 'Strict', secure: overHttps(c), path: '/sign-in', maxAge: 3600 });
  return token;
}

/** Checks the sign-in form's token against its pre-session cookie. */
export function checkPresession(c: Context, presented: unknown): void {
  checkCsrfToken(c, getCookie(c, PRESESSION_COOKIE), presented);
}
