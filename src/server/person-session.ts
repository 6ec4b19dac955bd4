import { createHash, randomBytes } from 'node:crypto';
import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { WitnessError } from '../core/index.js';
import type { Caller } from './keys.js';
import type { Role } from './roles.js';

/**
 * People's sign-in sessions for the viewer. A session id is 32 random bytes sent once, in an
 * HttpOnly, SameSite=Strict cookie (Secure over https); the server keeps only its SHA-256, so a
 * dump of the server's memory or logs yields no usable cookie. Sessions live in this process's
 * memory: they end when the server restarts (people sign in again; nothing recorded is lost), and
 * a server run as several processes behind a balancer needs sticky routing.
 *
 * A session ends after IDLE_MS without a request and ABSOLUTE_MS after sign-in whatever happens,
 * at sign-out, and, for a key sign-in, as soon as the key is revoked (the app checks the key on
 * every request).
 *
 * A person (one API key, or one OpenID Connect subject) holds at most MAX_SESSIONS_PER_PERSON
 * sessions at once: signing in again beyond that ends their oldest. Without a cap a leaked key
 * could fill the server's memory with sessions, and twenty covers a person's browsers and devices.
 */
export const SESSION_COOKIE = 'witness_session';
export const IDLE_MS = 30 * 60_000;
export const ABSOLUTE_MS = 12 * 3_600_000;
export const MAX_SESSIONS_PER_PERSON = 20;

/** Who signed in, and how. `keyId` is the API key's id for a key sign-in. */
export interface Person {
  id: string;
  name: string;
  role: Role;
  via: 'key' | 'oidc';
  keyId?: string;
}

export interface PersonSession {
  person: Person;
  /** The synchronizer token every form of this session carries (csrf.ts compares it). */
  csrfToken: string;
  startedAt: number;
  lastSeenAt: number;
  /** The outcome of the last form this person posted, shown once on the next page. */
  flash?: { kind: 'ok' | 'error'; text: string };
}

/** The roles a person may sign in to the viewer with: an agent's key is for ingest only. */
export const PERSON_ROLES: readonly Role[] = ['developer', 'approver', 'auditor', 'admin'];

function hashOf(id: string): string {
  return createHash('sha256').update(id, 'utf8').digest('hex');
}

export class PersonSessions {
  private readonly byHash = new Map<string, PersonSession>();

  constructor(
    private readonly limits: { idleMs: number; absoluteMs: number; perPerson?: number } = { idleMs: IDLE_MS, absoluteMs: ABSOLUTE_MS },
    private readonly now: () => number = Date.now,
  ) {}

  /** Starts a session, ending the person's oldest when they hold the most allowed; returns the id for the cookie (never stored) and the session. */
  start(person: Person): { id: string; session: PersonSession } {
    if (!PERSON_ROLES.includes(person.role)) {
      throw new WitnessError('forbidden', `A ${person.role} may not sign in to the viewer; sign in with a developer, approver, auditor or admin key.`);
    }
    this.sweep();
    this.makeRoomFor(person);
    const id = randomBytes(32).toString('base64url');
    const t = this.now();
    const session: PersonSession = { person: { ...person }, csrfToken: randomBytes(32).toString('base64url'), startedAt: t, lastSeenAt: t };
    this.byHash.set(hashOf(id), session);
    return { id, session };
  }

  /** The live session for a cookie value (its idle clock restarted), or undefined. */
  get(id: string | undefined): PersonSession | undefined {
    if (id === undefined || id.length === 0 || id.length > 128) return undefined;
    const h = hashOf(id);
    const s = this.byHash.get(h);
    if (s === undefined) return undefined;
    const t = this.now();
    if (t - s.lastSeenAt > this.limits.idleMs || t - s.startedAt > this.limits.absoluteMs) {
      this.byHash.delete(h);
      return undefined;
    }
    s.lastSeenAt = t;
    return s;
  }

  end(id: string | undefined): void {
    if (id !== undefined) this.byHash.delete(hashOf(id));
  }

  /** Ends every session signed in with this API key (it was revoked). */
  endForKey(keyId: string): number {
    let n = 0;
    for (const [h, s] of this.byHash) {
      if (s.person.keyId === keyId) {
        this.byHash.delete(h);
        n++;
      }
    }
    return n;
  }

  get size(): number {
    return this.byHash.size;
  }

  /** Ends the person's oldest sessions until one more fits under the cap (the map keeps sign-in order, so the first found is the oldest). */
  private makeRoomFor(person: Person): void {
    const max = this.limits.perPerson ?? MAX_SESSIONS_PER_PERSON;
    const who = personKey(person);
    const theirs = [...this.byHash].filter(([, s]) => personKey(s.person) === who);
    for (const [h] of theirs.slice(0, Math.max(0, theirs.length - max + 1))) this.byHash.delete(h);
  }

  private sweep(): void {
    const t = this.now();
    for (const [h, s] of this.byHash) {
      if (t - s.lastSeenAt > this.limits.idleMs || t - s.startedAt > this.limits.absoluteMs) this.byHash.delete(h);
    }
  }
}

/** Who a session belongs to, for the cap: the API key for a key sign-in, the provider's subject for OpenID Connect. */
function personKey(p: Person): string {
  return p.via === 'key' ? `key:${p.keyId ?? p.id}` : `oidc:${p.id}`;
}

/** The context variable the app puts the server's PersonSessions under, for every request. */
export const SESSIONS_VAR = 'personSessions';

/** The context variable the request's live session is put under once authenticated. */
export const SESSION_VAR = 'personSession';

/** A signed-in person as the route runner's caller; an OpenID Connect person has no key, so its id says where it came from. */
export function personCaller(p: Person): Caller {
  return { keyId: p.keyId ?? `oidc:${p.id}`, role: p.role, name: p.name };
}

export function personSessionsOf(c: Context): PersonSessions {
  const s = c.get(SESSIONS_VAR) as PersonSessions | undefined;
  // A bug in Witness, not a request to refuse: answered 500 by the error edge.
  if (s === undefined) throw new Error('The server holds no person-session store (createServer sets one on every request).');
  return s;
}

/**
 * Whether cookies must be Secure: the request reached this server over https, or a TLS proxy in
 * front says the browser used https. Believing the header can only make a cookie stricter (a
 * client that lies gets a cookie its own plain-http requests never carry back).
 */
export function overHttps(c: Context): boolean {
  return new URL(c.req.url).protocol === 'https:' || c.req.header('x-forwarded-proto')?.split(',')[0]?.trim().toLowerCase() === 'https';
}

/**
 * Signs a person in: starts a session and sets its cookie on the response being built. Called by
 * the key sign-in form and by the OpenID Connect callback; the caller then redirects. An agent
 * role is refused (`forbidden`).
 */
export function startPersonSession(c: Context, person: Person): { csrfToken: string } {
  const sessions = personSessionsOf(c);
  // A session id presented before sign-in is never reused (no session fixation).
  sessions.end(getCookie(c, SESSION_COOKIE));
  const { id, session } = sessions.start(person);
  setCookie(c, SESSION_COOKIE, id, {
    httpOnly: true,
    sameSite: 'Strict',
    secure: overHttps(c),
    path: '/',
    maxAge: Math.floor(ABSOLUTE_MS / 1000),
  });
  return { csrfToken: session.csrfToken };
}

/** The signed-in person's session, or undefined (no cookie, unknown, expired). */
export function currentPersonSession(c: Context): PersonSession | undefined {
  return personSessionsOf(c).get(getCookie(c, SESSION_COOKIE));
}

/** Ends the request's session, if any, and clears its cookie. */
export function endPersonSession(c: Context): void {
  personSessionsOf(c).end(getCookie(c, SESSION_COOKIE));
  deleteCookie(c, SESSION_COOKIE, { path: '/', secure: overHttps(c), httpOnly: true, sameSite: 'Strict' });
}
