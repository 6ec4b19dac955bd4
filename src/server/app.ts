import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { WitnessError, strictParse } from '../core/index.js';
import type { Ledger } from '../store/index.js';
import type { ExportOptions } from '../export/index.js';
import { RefusalLimiter, recordAccess } from './access.js';
import type { RouteContext, RouteSpec } from './context.js';
import type { OidcConfig } from './config.js';
import { errorResponse, payloadTooLarge, serverLocations, statusFor, toErrorResponse, withoutServerPaths } from './errors.js';
import { KeyRing, type Caller } from './keys.js';
import { ServerMetrics } from './metrics.js';
import { OidcSignIn } from './oidc.js';
import { openApiDocument } from './openapi.js';
import { CSRF_HEADER, checkCsrfToken } from './csrf.js';
import { PersonSessions, SESSIONS_VAR, SESSION_VAR, currentPersonSession, personCaller, type PersonSession } from './person-session.js';
import { pageError } from './handlers/pages.js';
import { CSRF_FIELD, PATHS, localReturnPath, viewerHeaders } from './views/index.js';
import { routeTable } from './routes.js';
import { describeIssue } from './schemas.js';

export interface ServerOptions {
  ledger: Ledger;
  /** Largest ingest body in bytes (default 10 MiB); other routes take 64 KiB. */
  maxIngestBytes?: number;
  /** Shared with the process that serves the app (its seal loop counts errors here). */
  metrics?: ServerMetrics;
  /** Failures that are bugs in Witness (answered 500): for the server's log. */
  onError?: (e: unknown) => void;
  /** OpenID Connect sign-in for the viewer (the config file's oidc: section); without it, key sign-in only. */
  oidc?: OidcConfig;
  /**
   * Renders report.html into each bundle POST /v1/exports writes (ExportOptions.renderReport). The
   * report module imports the server's views, so the server cannot import it: whoever starts the
   * server passes it in (`witness serve` passes report's bundleReport).
   */
  renderReport?: ExportOptions['renderReport'];
  /**
   * More Prometheus series for GET /metrics, in the text format, from other parts running in the
   * server's process (`witness serve --monitor` passes the monitor's, which the server may not import).
   */
  extraMetrics?: () => string | Promise<string>;
}

const DEFAULT_BODY_BYTES = 64 * 1024;

type Env = { Bindings: { incoming?: { socket?: { remoteAddress?: string } } }; Variables: { caller?: Caller; [SESSIONS_VAR]: PersonSessions; [SESSION_VAR]?: PersonSession } };

/**
 * The HTTP API as a Hono app: testable with `app.request()` and served by @hono/node-server
 * (listen.ts). It holds only the `Ledger` interface, so it runs on SQLite and PostgreSQL alike.
 */
export function createServer(options: ServerOptions): Hono<Env> {
  const ledger: Ledger = options.ledger;
  const keys = new KeyRing(ledger);
  const metrics = options.metrics ?? new ServerMetrics();
  metrics.keyRing = keys;
  const oidc = options.oidc === undefined ? undefined : new OidcSignIn(options.oidc);
  metrics.oidc = oidc;
  metrics.extra = options.extraMetrics;
  const refusals = new RefusalLimiter();
  // Where this ledger keeps its files, withheld exactly from every refusal (errors.ts).
  const locations = serverLocations(ledger.info);
  const routes = routeTable({
    ...(options.maxIngestBytes === undefined ? {} : { maxIngestBytes: options.maxIngestBytes }),
    ...(options.oidc === undefined ? {} : { oidc: options.oidc }),
    ...(oidc === undefined ? {} : { oidcSignIn: oidc }),
    ...(options.onError === undefined ? {} : { onError: options.onError }),
    ...(options.renderReport === undefined ? {} : { renderReport: options.renderReport }),
  });
  const openapi = openApiDocument(routes);
  const app = new Hono<Env>();
  // People's viewer sessions, in this process's memory (person-session.ts): they end when it restarts.
  const personSessions = new PersonSessions();

  app.use('*', async (c, next) => {
    c.set(SESSIONS_VAR, personSessions);
    await next();
    c.header('X-Content-Type-Options', 'nosniff');
    if (!c.res.headers.has('Cache-Control')) c.header('Cache-Control', 'no-store');
  });

  for (const route of routes) {
    const limit = route.maxBodyBytes ?? DEFAULT_BODY_BYTES;
    app.on(
      route.method,
      route.path,
      // Every refused or failed ingest is counted by its code (a misconfigured agent key, a body
      // over the limit too), for alerts.
      async (c, next) => {
        if (!route.countsIngest) return next();
        try {
          await next();
        } catch (e) {
          metrics.ingestError(e instanceof WitnessError ? e.code : 'internal');
          throw e;
        }
        if (c.res.status >= 400) {
          const body = (await c.res
            .clone()
            .json()
            .catch(() => ({}))) as { error?: { code?: string } };
          metrics.ingestError(body.error?.code ?? String(c.res.status));
        }
      },
      // The key (or a person's session) and role are checked before any of the body is read.
      async (c, next) => {
        if (route.roles === 'public') return next();
        const session = route.page === true || route.acceptsSession === true ? await sessionOf(c) : undefined;
        const auth = session !== undefined ? { ok: true as const, caller: personCaller(session.person) } : await authenticate(c);
        if (!auth.ok) {
          // A person without a session is sent to sign in and brought back; a form post cannot be replayed that way.
          if (route.page === true && route.method === 'GET' && c.req.header('authorization') === undefined) {
            const back = localReturnPath(c.req.url.slice(new URL(c.req.url).origin.length));
            return c.redirect(back === undefined || back === '/' ? PATHS.signIn : `${PATHS.signIn}?${new URLSearchParams({ next: back }).toString()}`, 303);
          }
          if (route.page === true) return pageError(c, 401, 'unauthorized', 'You are not signed in, or your sign-in has ended; sign in again.');
          return errorResponse(c, 'unauthorized', auth.message);
        }
        if (!route.roles.includes(auth.caller.role)) {
          const who = session === undefined ? 'key' : 'person';
          const message = `A ${auth.caller.role} ${who} may not call ${route.method} ${route.path}; use a key with one of the roles ${route.roles.join(', ')}.`;
          await recordRefusal(c, route, auth.caller, message);
          return route.page === true ? pageError(c, 403, 'forbidden', message, session) : errorResponse(c, 'forbidden', message);
        }
        c.set('caller', auth.caller);
        if (session !== undefined) c.set(SESSION_VAR, session);
        return next();
      },
      bodyLimit({ maxSize: limit, onError: (c) => payloadTooLarge(c, limit) }),
      async (c) => {
        if (route.path === '/v1/openapi.json') return c.json(openapi);
        if (route.page !== true) {
          // An API write authenticated by a person's session cookie (an OpenID Connect approver
          // deciding from a script in their browser) carries the session's CSRF token in a header,
          // as a form carries it in a field; a key in an Authorization header needs none.
          const session = c.get(SESSION_VAR);
          if (route.method === 'POST' && session !== undefined) checkCsrfToken(c, session.csrfToken, c.req.header(CSRF_HEADER));
          return run(c, route);
        }
        try {
          // A form posted with the session cookie must carry the session's token; a key in a header cannot be forged by another site.
          const session = c.get(SESSION_VAR);
          if (route.method === 'POST' && session !== undefined) {
            const form = await c.req.parseBody();
            checkCsrfToken(c, session.csrfToken, form[CSRF_FIELD]);
          }
          const res = await run(c, route);
          // The sign-in form's only 401 is a key this server did not issue or has revoked, which
          // pages.ts does not record (it names no one): counted here, where every route's answer passes.
          if (route.method === 'POST' && route.path === PATHS.signIn && res.status === 401) metrics.keyRefused('sign-in');
          for (const [k, v] of Object.entries(viewerHeaders())) if (k !== 'Content-Type' || !res.headers.has(k)) res.headers.set(k, v);
          return res;
        } catch (e) {
          if (!(e instanceof WitnessError)) options.onError?.(e);
          return e instanceof WitnessError
            ? pageError(c, statusFor(e.code), e.code, withoutServerPaths(e.message, locations), c.get(SESSION_VAR))
            : pageError(c, 500, 'internal', 'The server failed unexpectedly; the failure is logged, and the page can be reloaded.', c.get(SESSION_VAR));
        }
      },
    );
  }

  // Default deny: whatever the table does not declare (path or method) is refused, 401 without a key.
  app.all('*', async (c) => {
    const auth = await authenticate(c);
    if (!auth.ok) return errorResponse(c, 'unauthorized', auth.message);
    return errorResponse(c, 'forbidden', `${c.req.method} ${new URL(c.req.url).pathname} is not a route of this server; see /v1/openapi.json.`);
  });

  app.onError((e, c) => toErrorResponse(c, e, options.onError, locations));

  /**
   * The person's live session, if the request carries one. A key sign-in is checked against the
   * key on every request, so revoking the key ends its sessions at once.
   */
  async function sessionOf(c: Context): Promise<PersonSession | undefined> {
    const s = currentPersonSession(c);
    if (s === undefined || s.person.via !== 'key') return s;
    await keys.refresh();
    const rec = s.person.keyId === undefined ? undefined : keys.get(s.person.keyId);
    if (rec === undefined || rec.revokedAt !== undefined || rec.role !== s.person.role) {
      personSessions.endForKey(s.person.keyId ?? '');
      return undefined;
    }
    return s;
  }

  async function authenticate(c: Context): Promise<{ ok: true; caller: Caller } | { ok: false; message: string }> {
    // Read on every request, so a key revoked by another process is refused from its next request.
    await keys.refresh();
    const header = c.req.header('authorization');
    const r = keys.authenticate(header);
    // A request that sent no key at all is a browser or a probe; one that sent a wrong key is worth an alert.
    if (!r.ok && header !== undefined && header.trim() !== '') metrics.keyRefused('bearer');
    return r.ok ? { ok: true, caller: r.caller } : r;
  }

  /**
   * Records a person's refusal for their role as `audit.access` denied: trying to read what the
   * role does not allow is what an access review looks for. People only (an agent's key reads
   * nothing, and its refusals are its configuration's fault), rate-limited per person; a record
   * that fails is counted and the refusal answered all the same.
   */
  async function recordRefusal(c: Context, route: RouteSpec, caller: Caller, message: string): Promise<void> {
    if (caller.role === 'agent') return;
    const slot = refusals.take(caller.keyId);
    if (!slot.record) {
      metrics.refusalsUnrecorded++;
      return;
    }
    try {
      await recordAccess(ledger, {
        caller,
        // The enum has no value for a refused write; the route in `scope` says what was tried.
        operation: route.access ?? 'view',
        route: `${route.method} ${route.path}`,
        target: c.req.url.slice(new URL(c.req.url).origin.length),
        from: peerOf(c),
        refusal: { status: 403, message, unrecordedBefore: slot.unrecordedBefore },
      });
      metrics.appended++;
      metrics.refusalsRecorded++;
    } catch (e) {
      metrics.refusalRecordErrors++;
      options.onError?.(e);
    }
  }

  async function run(c: Context<Env>, route: RouteSpec): Promise<Response> {
    const caller = c.get('caller');
    const params = parse(route.params, c.req.param(), 'params');
    const query = route.query === undefined ? {} : parse(route.query, singleQuery(c), 'query');
    const body = route.body === undefined ? undefined : parse(route.body, await readJson(c), 'body');
    const from = peerOf(c);
    let recorded = false;
    const ctx: RouteContext = {
      c,
      caller,
      params,
      query,
      body,
      ledger,
      keys,
      metrics,
      from,
      recordAccess: async (detail = {}) => {
        if (route.access === undefined || caller === undefined || caller.role === 'agent' || recorded) return;
        recorded = true;
        try {
          await recordAccess(ledger, {
            caller,
            operation: route.access,
            route: `${route.method} ${route.path}`,
            target: c.req.url.slice(new URL(c.req.url).origin.length),
            from,
            ...detail,
          });
        } catch (e) {
          metrics.accessRecordErrors++;
          throw new WitnessError('store_unavailable', 'This read could not be recorded in the ledger as an access, so it is refused; try again when the store is writable.', { cause: e });
        }
        metrics.appended++;
      },
    };
    const res = await route.handler(ctx);
    if (res.status < 400) await ctx.recordAccess();
    return res;
  }

  return app;
}

/** The peer address, for access records; `unknown` when served without a socket (app.request in tests). */
function peerOf(c: Context<Env>): string {
  return c.env?.incoming?.socket?.remoteAddress ?? 'unknown';
}

function parse<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: import('zod').ZodError } } | undefined, value: unknown, where: string): T {
  if (schema === undefined) return value as T;
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const { message, path } = describeIssue(r.error, where);
  throw new WitnessError('invalid_argument', message, { details: { path } });
}

/** Query parameters, each at most once: a repeated one is ambiguous and refused. */
function singleQuery(c: Context): Record<string, string> {
  const all = c.req.queries();
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(all)) {
    if (v.length > 1) throw new WitnessError('invalid_argument', `Query parameter ${JSON.stringify(k)} is given ${v.length} times; give it once.`, { details: { path: k } });
    out[k] = v[0] ?? '';
  }
  return out;
}

/** The body as strict JSON (no duplicate keys, no integers beyond 2^53); an empty body is `{}`. */
async function readJson(c: Context): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === '') return {};
  try {
    return strictParse(text);
  } catch (e) {
    const why = e instanceof Error ? e.message.replace(/\.$/, '') : 'it does not parse';
    throw new WitnessError('invalid_json', `The request body is not valid JSON: ${why}.`, { cause: e, details: { path: 'body' } });
  }
}
