/**
 * Every URL a viewer page links to, built here and nowhere else. Recorded data never becomes a URL:
 * an artifact link is built from a digest that must be 64 hex characters, an event id must be a
 * UUID, and anything else taken from the ledger (a session id) only ever travels percent-encoded
 * in a query string, where no value can change the path, the scheme or the host.
 */

const HEX64 = /^[0-9a-f]{64}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const PATHS = {
  overview: '/',
  sessions: '/sessions',
  session: '/session',
  approvals: '/approvals',
  /** POST: request_id, decision (approve | deny), reason, csrf. */
  decide: '/approvals/decide',
  integrity: '/integrity',
  /** GET: who is halted; POST: csrf, agent, action (halt | resume), reason. */
  halts: '/halts',
  /** POST: csrf. */
  reverify: '/integrity/verify',
  signIn: '/sign-in',
  /** GET: starts the OpenID Connect authorization code flow. */
  oidc: '/sign-in/oidc',
  /** POST: csrf. */
  signOut: '/sign-out',
  stylesheet: '/assets/viewer.css',
} as const;

/** The form field every state-changing form carries; the route compares it with the session's token. */
export const CSRF_FIELD = 'csrf';

export function isSha256Hex(s: string): boolean {
  return HEX64.test(s);
}

/** `/v1/artifacts/<sha256>`, or undefined for anything that is not a lowercase SHA-256 hex digest. */
export function artifactPath(sha256: string): string | undefined {
  return HEX64.test(sha256) ? `/v1/artifacts/${sha256}` : undefined;
}

/**
 * The chapters of a recorded video as WebVTT, served by the route from the `capture` event (role
 * `video`) with this id. Keyed by the event's UUID so no recorded text reaches the path.
 */
export function chaptersPath(eventId: string): string | undefined {
  return UUID.test(eventId) ? `/video/${eventId}/chapters.vtt` : undefined;
}

/**
 * A session's timeline, from step `fromStep` when given. The session id is recorded data (any string
 * up to 512 characters, even `..`), so it goes in the query string, where dot segments and slashes
 * mean nothing.
 */
export function sessionPath(id: string, fromStep?: number): string {
  const q = new URLSearchParams({ id });
  if (fromStep !== undefined && fromStep > 1) q.set('from', String(Math.floor(fromStep)));
  return `${PATHS.session}?${q.toString()}`;
}

/** A same-origin path to return to after sign-in, or undefined: never another origin, never a scheme. */
export function localReturnPath(next: string | undefined): string | undefined {
  if (next === undefined || next.length > 2048) return undefined;
  // `//host` and `/\host` are read by browsers as another origin; control characters can hide either.
  if (!/^\/(?![/\\])[\x21-\x7e]*$/.test(next)) return undefined;
  return next;
}
