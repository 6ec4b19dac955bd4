import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { html } from 'hono/html';
import * as client from 'openid-client';
import { z } from 'zod';
import { WitnessError } from '../core/index.js';
import { RECORDER_VERSION } from '../recorder/index.js';
import type { Ledger } from '../store/index.js';
import { ACCESS_STREAM } from './access.js';
import { OIDC_CALLBACK_PATH, type OidcConfig, type PersonRole } from './config.js';
import type { RouteContext, RouteSpec } from './context.js';
import { overHttps, startPersonSession } from './person-session.js';
import { PATHS, localReturnPath, renderErrorPage, viewerHeaders } from './views/index.js';

/**
 * OpenID Connect sign-in for the viewer: the authorization code flow with PKCE (S256), a state and
 * a nonce, through openid-client (discovery, the code exchange, ID token checks: issuer,
 * audience, nonce, expiry; the token comes over TLS straight from the token endpoint, which OIDC Core
 * 3.1.3.7 accepts in place of its signature). The provider says who the person is; the config's
 * claim → role map says what they may do, and a person whose claim maps to no role is refused,
 * never given a default.
 *
 * What the flow keeps between the redirect and the callback (state, nonce, PKCE verifier, where to
 * return) stays in this process's memory, keyed by the SHA-256 of a random id sent in an HttpOnly
 * cookie scoped to /sign-in/oidc. The cookie binds the callback to the browser that started the
 * flow (a code obtained by someone else cannot be planted: login CSRF); it is SameSite=Lax because
 * the callback is a top-level navigation from the provider's site, which a Strict cookie would miss.
 * A flow is used once (taken before anything is checked, so a replayed or tampered callback finds
 * nothing) and expires after FLOW_TTL_MS.
 */
export const FLOW_COOKIE = 'witness_oidc';
export const FLOW_TTL_MS = 10 * 60_000;
/** Pending flows kept at most; the oldest go first, so unauthenticated requests cannot grow memory without bound. */
export const MAX_PENDING_FLOWS = 10_000;

interface Flow {
  state: string;
  nonce: string;
  verifier: string;
  next: string | undefined;
  createdAt: number;
}

/** Who the provider said signed in, and the role the map gave them. */
export interface OidcPerson {
  subject: string;
  name: string;
  role: PersonRole;
  /** The claim value that matched. */
  matched: string;
}

const Claims = z.record(z.string(), z.unknown());

export class OidcSignIn {
  private readonly flows = new Map<string, Flow>();
  /**
   * Refusals before the provider named anyone (provider error, bad state, failed exchange), by
   * code. Anyone who can start a flow can cause them, so they are counted here and never written
   * to the ledger, where each would be a permanent event an unauthenticated stranger chose.
   */
  readonly unnamedRefusals = new Map<string, number>();
  private discovered: Promise<client.Configuration> | undefined;

  constructor(
    readonly config: OidcConfig,
    private readonly now: () => number = Date.now,
  ) {}

  /** GET /sign-in/oidc: a redirect to the provider's authorization endpoint. */
  async start(c: Context): Promise<Response> {
    const provider = await this.provider();
    const flow: Flow = {
      state: client.randomState(),
      nonce: client.randomNonce(),
      verifier: client.randomPKCECodeVerifier(),
      next: localReturnPath(c.req.query('next')),
      createdAt: this.now(),
    };
    const url = client.buildAuthorizationUrl(provider, {
      redirect_uri: this.config.redirectUri,
      scope: this.config.scopes.join(' '),
      response_type: 'code',
      code_challenge: await client.calculatePKCECodeChallenge(flow.verifier),
      code_challenge_method: 'S256',
      state: flow.state,
      nonce: flow.nonce,
    });
    const id = randomBytes(32).toString('base64url');
    this.keep(id, flow);
    setCookie(c, FLOW_COOKIE, id, { httpOnly: true, sameSite: 'Lax', secure: overHttps(c), path: PATHS.oidc, maxAge: FLOW_TTL_MS / 1000 });
    return c.redirect(url.href, 302);
  }

  /**
   * GET /sign-in/oidc/callback: checks the flow and the provider's answer, exchanges the code,
   * maps the claim to a role and signs the person in. Throws `SignInRefused` for every refusal.
   */
  async finish(c: Context): Promise<{ person: OidcPerson; next: string | undefined }> {
    try {
      return await this.check(c);
    } catch (e) {
      if (e instanceof SignInRefused && !e.recorded) this.unnamedRefusals.set(e.code, (this.unnamedRefusals.get(e.code) ?? 0) + 1);
      throw e;
    }
  }

  private async check(c: Context): Promise<{ person: OidcPerson; next: string | undefined }> {
    const flow = this.take(getCookie(c, FLOW_COOKIE));
    deleteCookie(c, FLOW_COOKIE, { path: PATHS.oidc, secure: overHttps(c), httpOnly: true, sameSite: 'Lax' });
    if (flow === undefined) {
      throw new SignInRefused(400, 'oidc_no_flow', 'This sign-in answer is not one this browser started here, or it expired or was already used; sign in again.');
    }
    const params = new URL(c.req.url).searchParams;
    if (!sameString(params.get('state') ?? '', flow.state)) {
      throw new SignInRefused(400, 'oidc_state_mismatch', "The provider's answer does not carry the state this sign-in was started with, so it is refused; sign in again.");
    }
    // Still nobody named: the redirect's text is whatever its sender chose, so it is shown to
    // them (escaped) and never kept.
    const error = params.get('error');
    if (error !== null) {
      const why = params.get('error_description');
      throw new SignInRefused(
        403,
        'oidc_provider_refused',
        `${this.config.label} refused the sign-in (${clip(error, 64)}${why === null ? '' : `: ${clip(why, 200)}`}); try again or ask its administrator.`,
      );
    }
    const provider = await this.provider();
    // The configured redirect URI, not the Host header, is what the code was issued for.
    const current = new URL(this.config.redirectUri);
    current.search = new URL(c.req.url).search;
    let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
    try {
      tokens = await client.authorizationCodeGrant(provider, current, { pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce, idTokenExpected: true });
    } catch (e) {
      throw new SignInRefused(403, 'oidc_exchange_failed', `The sign-in could not be completed with ${this.config.label}: ${describeOidcError(e)}; sign in again.`, e);
    }
    const idClaims = tokens.claims();
    if (idClaims === undefined) throw new SignInRefused(403, 'oidc_exchange_failed', `${this.config.label} returned no ID token; sign in again.`);
    // From here the provider has named someone: a refusal is theirs, and recorded.
    const subject = idClaims.sub;
    let claims: Record<string, unknown> = { ...idClaims };
    // Providers often leave groups out of the ID token and answer them from userinfo.
    if (claims[this.config.roleClaim] === undefined && tokens.access_token !== undefined && provider.serverMetadata().userinfo_endpoint !== undefined) {
      try {
        const info = Claims.parse(await client.fetchUserInfo(provider, tokens.access_token, idClaims.sub));
        claims = { ...info, ...claims };
      } catch (e) {
        throw new SignInRefused(502, 'oidc_userinfo_failed', `${this.config.label}'s userinfo endpoint did not answer who signed in (${describeOidcError(e)}); try again later.`, e, {
          subject,
          name: personName(claims) ?? subject,
        });
      }
    }
    const name = personName(claims) ?? subject;
    const values = claimValues(claims[this.config.roleClaim]);
    const hit = this.config.roleMap.find((entry) => values.includes(entry.value));
    if (hit === undefined) {
      const held =
        values.length === 0
          ? `no ${this.config.roleClaim} claim`
          : `${this.config.roleClaim} ${values
              .slice(0, 5)
              .map((v) => JSON.stringify(clip(v, 64)))
              .join(', ')}${values.length > 5 ? ', …' : ''}`;
      throw new SignInRefused(
        403,
        'oidc_no_role',
        `${clip(name, 128)} signed in at ${this.config.label} but has ${held}, which this server maps to no role; ask an administrator to add your group to the roles map of the server's config.`,
        undefined,
        { subject, name },
      );
    }
    return { person: { subject, name, role: hit.role, matched: hit.value }, next: flow.next };
  }

  /**
   * Discovers the provider now, so `witness serve` can say at start that it cannot be reached.
   * Throws SignInRefused (oidc_discovery_failed) with the sentence a person would be shown.
   */
  async ready(): Promise<void> {
    await this.provider();
  }

  /** The provider's metadata, discovered once; a failure is retried on the next sign-in. */
  private provider(): Promise<client.Configuration> {
    this.discovered ??= (async () => {
      const c = this.config;
      const auth = c.clientAuth === 'none' ? client.None() : c.clientAuth === 'client_secret_post' ? client.ClientSecretPost(c.clientSecret) : client.ClientSecretBasic(c.clientSecret);
      // http is accepted only for a loopback issuer (config.ts), where nothing crosses a network.
      const options = new URL(c.issuer).protocol === 'http:' ? { execute: [client.allowInsecureRequests] } : undefined;
      try {
        return await client.discovery(new URL(c.issuer), c.clientId, c.clientSecret, auth, options);
      } catch (e) {
        this.discovered = undefined;
        throw new SignInRefused(
          503,
          'oidc_discovery_failed',
          `The OpenID provider ${c.issuer} could not be reached or described itself wrongly (${describeOidcError(e)}); try again later, or check oidc.issuer in the server's config.`,
          e,
        );
      }
    })();
    return this.discovered;
  }

  private keep(id: string, flow: Flow): void {
    const t = this.now();
    for (const [k, f] of this.flows) {
      // Map order is insertion order: the oldest come first.
      if (t - f.createdAt <= FLOW_TTL_MS && this.flows.size < MAX_PENDING_FLOWS) break;
      this.flows.delete(k);
    }
    this.flows.set(hashOf(id), flow);
  }

  private take(id: string | undefined): Flow | undefined {
    if (id === undefined || id.length === 0 || id.length > 128) return undefined;
    const key = hashOf(id);
    const flow = this.flows.get(key);
    this.flows.delete(key);
    if (flow === undefined || this.now() - flow.createdAt > FLOW_TTL_MS) return undefined;
    return flow;
  }

  get pending(): number {
    return this.flows.size;
  }
}

/** A sign-in refused: shown to the person as a page; recorded in the ledger only when the provider named `who` it was. */
export class SignInRefused extends Error {
  constructor(
    readonly status: 400 | 403 | 404 | 502 | 503,
    readonly code: string,
    message: string,
    cause?: unknown,
    readonly who?: { subject: string; name: string },
  ) {
    super(message, cause === undefined ? undefined : { cause });
  }

  get recorded(): boolean {
    return this.who !== undefined;
  }
}

/**
 * The two public routes. With no `oidc:` section in the config they answer 404 in one sentence, so
 * the table (and the route × role matrix) is the same whatever the configuration.
 */
export function oidcRoutes(oidc: OidcSignIn | undefined, onError?: (e: unknown) => void): RouteSpec[] {
  const notConfigured = (ctx: RouteContext): Response =>
    page(ctx.c, 404, 'oidc_not_configured', 'OpenID Connect sign-in is not configured on this server; sign in with a key, or ask its administrator to add an oidc: section to its config.');
  return [
    {
      method: 'GET',
      path: PATHS.oidc,
      roles: 'public',
      summary: 'Starts OpenID Connect sign-in: a redirect to the provider with state, nonce and a PKCE S256 challenge; `next` is where to return (a same-origin path).',
      response: z.string(),
      produces: 'text/html',
      handler: async (ctx) => {
        if (oidc === undefined) return notConfigured(ctx);
        try {
          return await oidc.start(ctx.c);
        } catch (e) {
          return refusalPage(ctx, e, onError);
        }
      },
    },
    {
      method: 'GET',
      path: OIDC_CALLBACK_PATH,
      roles: 'public',
      summary:
        "The provider's answer: state and the browser's flow cookie checked, the code exchanged with the PKCE verifier, the ID token checked (issuer, audience, nonce, expiry), the claim mapped to a role; signs the person in (a config.change event, action sign-in, on the access stream) or refuses in one sentence.",
      response: z.string(),
      produces: 'text/html',
      handler: async (ctx) => {
        if (oidc === undefined) return notConfigured(ctx);
        let done: Awaited<ReturnType<OidcSignIn['finish']>>;
        try {
          done = await oidc.finish(ctx.c);
        } catch (e) {
          if (e instanceof SignInRefused && e.who !== undefined) {
            await recordSignIn(ctx.ledger, { config: oidc.config, from: ctx.from, outcome: e.status === 403 ? 'denied' : 'error', reason: e.message, code: e.code, who: e.who }).catch(onError);
          }
          return refusalPage(ctx, e, onError);
        }
        const { person } = done;
        try {
          await recordSignIn(ctx.ledger, { config: oidc.config, from: ctx.from, outcome: 'success', who: { subject: person.subject, name: person.name }, role: person.role, matched: person.matched });
        } catch (e) {
          onError?.(e);
          return page(ctx.c, 503, 'store_unavailable', 'The sign-in could not be recorded in the ledger, so it is refused; try again when the store is writable.');
        }
        startPersonSession(ctx.c, { id: person.subject, name: person.name, role: person.role, via: 'oidc' });
        return signedInPage(ctx.c, person, done.next ?? PATHS.overview);
      },
    },
  ];
}

/** Records a sign-in, or a refused one, beside the reads it leads to (the access stream). */
async function recordSignIn(
  ledger: Ledger,
  s: { config: OidcConfig; from: string; outcome: 'success' | 'denied' | 'error'; who?: { subject: string; name: string }; role?: PersonRole; matched?: string; reason?: string; code?: string },
): Promise<void> {
  const actor = s.who === undefined ? 'unknown (OpenID Connect)' : `${clip(s.who.name, 256)} (oidc:${clip(s.who.subject, 200)})`;
  const description =
    s.outcome === 'success'
      ? `${actor} signed in to the viewer as ${s.role} through OpenID Connect (${s.config.issuer}; ${s.config.roleClaim} ${JSON.stringify(s.matched)})`
      : `Sign-in through OpenID Connect refused: ${s.reason ?? 'unknown reason'}`;
  await ledger.append([
    {
      stream: ACCESS_STREAM,
      agent: { id: 'witness-server' },
      ...(s.who === undefined ? {} : { principal: { id: actor, kind: 'human' as const } }),
      recorder: { kind: 'server', version: RECORDER_VERSION },
      source: { host: s.from },
      kind: 'config.change',
      resource: 'viewer',
      action: 'sign-in',
      outcome: s.outcome,
      data: {
        target: 'other',
        description,
        via: 'oidc',
        issuer: s.config.issuer,
        client_id: s.config.clientId,
        from: s.from,
        ...(s.who === undefined ? {} : { subject: clip(s.who.subject, 512), name: clip(s.who.name, 512) }),
        ...(s.role === undefined ? {} : { role: s.role, claim: s.config.roleClaim, matched: s.matched }),
        ...(s.code === undefined ? {} : { code: s.code }),
      },
    },
  ]);
}

function refusalPage(ctx: RouteContext, e: unknown, onError?: (e: unknown) => void): Response {
  if (e instanceof SignInRefused) {
    if (e.status >= 500 || e.code === 'oidc_exchange_failed') onError?.(e.cause ?? e);
    return page(ctx.c, e.status, e.code, e.message);
  }
  if (e instanceof WitnessError) return page(ctx.c, 503, e.code, e.message);
  onError?.(e);
  return page(ctx.c, 500, 'internal', 'The sign-in failed unexpectedly; the failure is logged, and you can sign in again.');
}

function page(c: Context, status: 400 | 403 | 404 | 500 | 502 | 503, code: string, message: string): Response {
  return c.body(renderErrorPage({ status, code, message }), status, viewerHeaders());
}

/**
 * After sign-in, a page that moves on by itself (meta refresh, no script). A redirect would not
 * do: the navigation began at the provider's site, and browsers keep the SameSite=Strict session
 * cookie off every step of a chain that began cross-site, so the first page would look signed out.
 */
function signedInPage(c: Context, person: OidcPerson, next: string): Response {
  const doc = html`<!DOCTYPE html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta http-equiv="refresh" content="0;url=${next}" />
        <title>Signed in</title>
        <link rel="stylesheet" href="${PATHS.stylesheet}" />
      </head>
      <body>
        <main>
          <p>Signed in as ${person.name} (${person.role}).</p>
          <p><a href="${next}">Continue</a></p>
        </main>
      </body>
    </html>`;
  return c.body(String(doc), 200, viewerHeaders());
}

function claimValues(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  return [];
}

function personName(claims: Record<string, unknown>): string | undefined {
  for (const k of ['name', 'preferred_username', 'email']) {
    const v = claims[k];
    // Control characters would let a provider-supplied name forge lines in logs and pages.
    if (typeof v === 'string' && v.trim() !== '') return clip(v.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ').trim(), 256);
  }
  return undefined;
}

/** openid-client's errors as a clause: its code and message (no tokens or secrets are in them). */
export function describeOidcError(e: unknown): string {
  if (e instanceof SignInRefused) return e.message.replace(/\.$/, '');
  const err = e as { code?: unknown; message?: unknown; cause?: { message?: unknown; code?: unknown } };
  const msg = typeof err.message === 'string' ? err.message.replace(/\.$/, '') : String(e);
  const cause = typeof err.cause?.message === 'string' && err.cause.message !== '' ? ` (${err.cause.message.replace(/\.$/, '')})` : typeof err.cause?.code === 'string' ? ` (${err.cause.code})` : '';
  return clip(`${msg}${cause}`, 300);
}

function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function hashOf(id: string): string {
  return createHash('sha256').update(id, 'utf8').digest('hex');
}
