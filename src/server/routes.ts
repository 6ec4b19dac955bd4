import path from 'node:path';
import { z } from 'zod';
import type { RouteContext, RouteSpec } from './context.js';
import type { ExportOptions } from '../export/index.js';
import { createKeyRoute, listKeysRoute, revokeKeyRoute, whoami } from './handlers/admin.js';
import { getArtifact } from './handlers/artifacts.js';
import { ExportRunner } from './handlers/exports.js';
import { VerifyRunner, consistency, inclusion, listCheckpoints } from './handlers/integrity.js';
import { ingest, StreamOwners } from './handlers/ingest.js';
import { traces } from './handlers/otlp.js';
import { decideRoute, getApprovalRoute, listApprovalsRoute } from './handlers/approvals.js';
import { haltRoutes } from './handlers/halts.js';
import { getEvent, getSession, listSessions, search } from './handlers/read.js';
import type { OidcConfig } from './config.js';
import { OidcSignIn, oidcRoutes } from './oidc.js';
import { PageState, approvalsPage, chapters, decideApproval, integrityPage, overview, reverify, sessionPage, sessionsPage, signIn, signInForm, signOut, stylesheet } from './handlers/pages.js';
import type { AccessOperation } from './access.js';
import type { Role } from './roles.js';
import {
  ApprovalDoc,
  ApprovalIdParam,
  ApprovalList,
  ApprovalListQuery,
  DecideBody,
  DecidedDoc,
  CheckpointList,
  ConsistencyQuery,
  CreateKeyBody,
  CreatedKey,
  ExportBody,
  ExportDoc,
  ExportIdParam,
  EventIdParam,
  EventPage,
  EventSearchQuery,
  Health,
  InclusionQuery,
  IngestBody,
  IngestBodyDoc,
  IngestResponse,
  KeyDoc,
  KeyIdParam,
  KeyList,
  NoQuery,
  ProofResponse,
  Sha256Param,
  SessionList,
  SessionListQuery,
  SessionEvents,
  SessionEventsQuery,
  StoredEventDoc,
  StreamParam,
  VerifyBody,
  VerifyResponse,
  WhoAmI,
} from './schemas.js';

/** Largest ingest body by default: 1,000 events of about 10 KB each. */
export const DEFAULT_INGEST_BODY_BYTES = 10 * 1024 * 1024;

/**
 * Every route the server answers, with who may call it. This table is the whole of access
 * control: a path not in it, or a role not listed on it, is refused (403; no key at all, 401).
 * `/healthz` and `/v1/openapi.json` are public (they say nothing about what was recorded);
 * `/metrics` is for auditors and admins, who are the ones alerted when audit generation fails.
 */
export function routeTable(
  options: { maxIngestBytes?: number; oidc?: OidcConfig; oidcSignIn?: OidcSignIn; onError?: (e: unknown) => void; renderReport?: ExportOptions['renderReport'] } = {},
): RouteSpec[] {
  const owners = new StreamOwners();
  const verifier = new VerifyRunner();
  // Bundles go to the server's own directory, fixed when it starts, never to a path from a request.
  const exports = new ExportRunner(path.resolve('witness-exports'), options.onError, options.renderReport);
  const readers = ['developer', 'auditor'] as const;
  const people = ['developer', 'approver', 'auditor', 'admin'] as const;
  const pages = new PageState();
  // Who among the people OpenID Connect signs in may decide approvals, and with which held key (approve.ts).
  const oidcApprovers = options.oidc === undefined ? undefined : { issuer: options.oidc.issuer, approvers: options.oidc.approvers };
  return [
    {
      method: 'GET',
      path: '/healthz',
      roles: 'public',
      summary: 'Liveness: the server is up and its ledger answers.',
      response: Health,
      handler: async (ctx) => ctx.c.json({ ok: true, ledger: ctx.ledger.info.origin, size: ctx.ledger.info.size }),
    },
    {
      method: 'GET',
      path: '/metrics',
      roles: ['auditor', 'admin'],
      summary:
        "Prometheus text: events appended, ingest and seal errors, recorders' own recorded errors (24 h, by source), refused keys and sign-ins, people's recorded refusals, pending approvals and their age, age of the last checkpoint, the last verification.",
      response: z.string(),
      produces: 'text/plain; version=0.0.4',
      handler: async (ctx) => ctx.c.text(await ctx.metrics.render(ctx.ledger), 200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' }),
    },
    {
      method: 'GET',
      path: '/v1/openapi.json',
      roles: 'public',
      summary: 'This API, as OpenAPI 3.1 generated from its zod schemas.',
      response: z.record(z.string(), z.unknown()),
      // Filled in by the app, which holds the whole table.
      handler: async (ctx) => ctx.c.json({}),
    },
    // The viewer's pages (handlers/pages.ts): a person's session cookie authenticates them, and
    // they follow the API's roles: developers read masked and get no screenshots, auditors read
    // everything, approvers see the queue, admins the integrity panel.
    ...page('GET', '/sign-in', 'public', 'Sign-in page (an API key, or OpenID Connect when configured).', (ctx) => signInForm(ctx, options.oidc)),
    ...page('POST', '/sign-in', 'public', 'Sign in with an API key (form: csrf, api_key, next); starts a session cookie. An agent key is refused.', (ctx) => signIn(ctx, options.oidc)),
    ...page('POST', '/sign-out', people, "Ends the person's session (form: csrf).", signOut),
    ...page('GET', '/assets/viewer.css', 'public', "The viewer's stylesheet.", stylesheet),
    ...page('GET', '/', readers, 'Overview: events, tool calls, denials, approvals and recording errors of the last 24 hours as charts.', overview, 'query'),
    ...page('GET', '/sessions', readers, 'Sessions list with filters and counts.', sessionsPage, 'query'),
    ...page('GET', '/session', readers, "A session's timeline (?id=&from=); developers see it masked, without screenshots or video.", (ctx) => sessionPage(ctx, pages), 'view'),
    ...page('GET', '/video/:id/chapters.vtt', ['auditor'], "A recorded video's chapters as WebVTT (like the video, not for developers).", chapters, 'view'),
    ...page('GET', '/approvals', ['approver', 'auditor', 'admin'], 'Pending approvals with their exact arguments, rule and time left.', approvalsPage, 'view'),
    ...page('POST', '/approvals/decide', ['approver'], 'Approve or deny a held call as the signed-in approver (form: csrf, request_id, arguments_digest, decision, reason).', (ctx) =>
      decideApproval(ctx, oidcApprovers),
    ),
    // The stop button (handlers/halts.ts): its page, its form and its API rows.
    ...haltRoutes(),
    ...page('GET', '/integrity', ['developer', 'auditor', 'admin'], 'Integrity panel: the newest checkpoint, its signers, the last verification.', (ctx) => integrityPage(ctx, pages), 'view'),
    ...page('POST', '/integrity/verify', ['auditor', 'admin'], 'Verify the whole ledger again (form: csrf).', (ctx) => reverify(ctx, pages), 'verify'),
    {
      method: 'GET',
      path: '/v1/whoami',
      roles: ['agent', 'developer', 'approver', 'auditor', 'admin'],
      summary: 'The key the request was made with: its id, role, agent and name.',
      query: NoQuery,
      response: WhoAmI,
      handler: whoami,
    },
    {
      method: 'POST',
      path: '/v1/events',
      roles: ['agent'],
      summary: "Ingest a batch of events as the key's agent; the server assigns seq, hash and position and returns receipts.",
      body: IngestBody,
      bodyDoc: IngestBodyDoc,
      maxBodyBytes: options.maxIngestBytes ?? DEFAULT_INGEST_BODY_BYTES,
      countsIngest: true,
      response: IngestResponse,
      handler: (ctx) => ingest(ctx as RouteContext<unknown, unknown, { events: unknown[] }>, owners),
    },
    {
      method: 'POST',
      path: '/v1/traces',
      roles: ['agent'],
      summary:
        "OTLP/HTTP trace ingest (application/x-protobuf or application/json, optionally gzip'd): GenAI spans as llm.call, tool.call and tool.result, any other span as a note, under the key's agent in streams otlp:<agent>:<conversation or trace id>; a span sent again is stored once (event ids keyed by a per-ledger secret); a resource or scope over 2 KiB is stored once per request as an artifact; a request that does not read as OTLP, or whose events would exceed twice the body limit, is refused whole, a span the ledger cannot take (over the payload or a field limit, or its id held by another record) is refused alone and counted in partialSuccess, recorded as an error event unless its id was held.",
      maxBodyBytes: options.maxIngestBytes ?? DEFAULT_INGEST_BODY_BYTES,
      countsIngest: true,
      response: z.object({ partialSuccess: z.object({ rejectedSpans: z.string().optional(), errorMessage: z.string().optional() }).optional() }),
      produces: 'application/json',
      handler: (ctx) => traces(ctx, owners, options.maxIngestBytes ?? DEFAULT_INGEST_BODY_BYTES),
    },
    {
      method: 'GET',
      path: '/v1/events',
      roles: readers,
      summary: 'Search events by agent, session, kind, resource, action, outcome, time window and free text, with cursor paging.',
      query: EventSearchQuery,
      response: EventPage,
      access: 'query',
      handler: search,
    },
    {
      method: 'GET',
      path: '/v1/events/:id',
      roles: readers,
      summary: 'One event by id.',
      params: EventIdParam,
      query: NoQuery,
      response: StoredEventDoc,
      access: 'view',
      handler: getEvent,
    },
    {
      method: 'GET',
      path: '/v1/sessions',
      roles: readers,
      summary: 'Sessions, newest first, with agents, start, end, counts of events, tool calls, denials, errors and approvals; cursor paging.',
      query: SessionListQuery,
      response: SessionList,
      access: 'query',
      handler: listSessions,
    },
    {
      method: 'GET',
      path: '/v1/sessions/:stream',
      roles: readers,
      summary: "A session's events in time order, a page at a time (cursor paging, as GET /v1/events).",
      params: StreamParam,
      query: SessionEventsQuery,
      response: SessionEvents,
      access: 'view',
      handler: getSession,
    },
    {
      method: 'GET',
      path: '/v1/artifacts/:sha256',
      // Screenshots and videos cannot be masked here, so developers do not get them.
      roles: ['auditor'],
      // A signed-in auditor's <img> and <video> load it with the session cookie.
      acceptsSession: true,
      summary: 'An artifact by SHA-256, as an attachment never rendered as a page; Range honoured when the store streams.',
      params: Sha256Param,
      query: NoQuery,
      response: z.string(),
      produces: 'application/octet-stream',
      access: 'view',
      handler: getArtifact,
    },
    {
      method: 'GET',
      path: '/v1/checkpoints',
      roles: readers,
      summary: 'Signed checkpoints, oldest first.',
      query: NoQuery,
      response: CheckpointList,
      access: 'view',
      handler: listCheckpoints,
    },
    {
      method: 'GET',
      path: '/v1/proofs/inclusion',
      roles: readers,
      summary: 'Inclusion proof of the event at position pos in the tree of size size (a sealed size).',
      query: InclusionQuery,
      response: ProofResponse,
      access: 'view',
      handler: inclusion,
    },
    {
      method: 'GET',
      path: '/v1/proofs/consistency',
      roles: readers,
      summary: 'Consistency proof between two sealed tree sizes.',
      query: ConsistencyQuery,
      response: ProofResponse,
      access: 'view',
      handler: consistency,
    },
    {
      method: 'POST',
      path: '/v1/verify',
      roles: ['auditor'],
      summary: 'Verify the whole ledger now; the result is returned and kept for /metrics.',
      body: VerifyBody,
      response: VerifyResponse,
      access: 'verify',
      handler: (ctx) => verifier.run(ctx),
    },
    {
      method: 'POST',
      path: '/v1/exports',
      roles: ['auditor'],
      summary: "Start exporting a session as an evidence bundle (zip) in the background, into the server's own directory; recorded as audit.access. 202 with the export's id.",
      body: ExportBody,
      response: ExportDoc,
      access: 'export',
      handler: (ctx) => exports.start(ctx as RouteContext<unknown, unknown, { session: string; withhold_data?: boolean }>),
    },
    {
      method: 'GET',
      path: '/v1/exports/:id',
      roles: ['auditor'],
      summary:
        'An export started on this server: running, done (with the bundle link, events, artifacts, bytes, signing key) or failed (with why); kept 24 h after it finishes; recorded as audit.access.',
      params: ExportIdParam,
      query: NoQuery,
      response: ExportDoc,
      access: 'view',
      handler: (ctx) => exports.status(ctx as RouteContext<{ id: string }>),
    },
    {
      method: 'GET',
      path: '/v1/exports/:id/bundle.zip',
      roles: ['auditor'],
      summary: "A finished export's bundle, streamed as an attachment; every download recorded as audit.access. `witness verify bundle.zip` checks it offline.",
      params: ExportIdParam,
      query: NoQuery,
      response: z.string(),
      produces: 'application/zip',
      access: 'export',
      handler: (ctx) => exports.download(ctx as RouteContext<{ id: string }>),
    },
    {
      method: 'GET',
      path: '/v1/approvals',
      roles: ['approver', 'auditor', 'admin'],
      summary: 'Approval requests (pending by default; ?status=), oldest first: the exact arguments, who asked, the policy rule, the time left, the decision.',
      query: ApprovalListQuery,
      response: ApprovalList,
      access: 'query',
      handler: listApprovalsRoute,
    },
    {
      method: 'GET',
      path: '/v1/approvals/:id',
      roles: ['approver', 'auditor', 'admin'],
      summary: 'One approval request by id (or a unique prefix of at least 8 characters), with every decision recorded for it.',
      params: ApprovalIdParam,
      query: NoQuery,
      response: ApprovalDoc,
      access: 'view',
      handler: getApprovalRoute,
    },
    {
      method: 'POST',
      path: '/v1/approvals/:id/approve',
      roles: ['approver'],
      summary:
        "Approve a held call as the caller, signed with the approver key the server holds for the caller's API key (or OpenID Connect subject, with the session cookie and an X-CSRF-Token header); 409 when it is already decided or expired, 403 when the caller is the agent that asked.",
      params: ApprovalIdParam,
      body: DecideBody,
      response: DecidedDoc,
      // A person signed in to the viewer (OpenID Connect approvers have no API key) may call it with
      // their session cookie and the session's CSRF token in an X-CSRF-Token header (app.ts).
      acceptsSession: true,
      handler: decideRoute('approved', oidcApprovers),
    },
    {
      method: 'POST',
      path: '/v1/approvals/:id/deny',
      roles: ['approver'],
      summary: 'Deny a held call as the caller, signed like an approval; the gateway refuses the call.',
      params: ApprovalIdParam,
      body: DecideBody,
      response: DecidedDoc,
      // A person signed in to the viewer (OpenID Connect approvers have no API key) may call it with
      // their session cookie and the session's CSRF token in an X-CSRF-Token header (app.ts).
      acceptsSession: true,
      handler: decideRoute('denied', oidcApprovers),
    },
    {
      method: 'GET',
      path: '/v1/keys',
      roles: ['admin'],
      summary: 'API keys (ids, roles, agents, names, created and revoked; never the keys).',
      query: NoQuery,
      response: KeyList,
      handler: listKeysRoute,
    },
    {
      method: 'POST',
      path: '/v1/keys',
      roles: ['admin'],
      summary: 'Create an API key; the key is in this answer only, the ledger keeps its SHA-256 (a config.change event).',
      body: CreateKeyBody,
      response: CreatedKey,
      handler: createKeyRoute,
    },
    {
      method: 'POST',
      path: '/v1/keys/:id/revoke',
      roles: ['admin'],
      summary: 'Revoke an API key at once (a config.change event); for an approver key, also delete the approver signing key the server held for it (`approver_key_removed`).',
      params: KeyIdParam,
      body: z.strictObject({}),
      response: z.object({ record: KeyDoc, approver_key_removed: z.boolean().optional() }),
      handler: revokeKeyRoute,
    },
    // OpenID Connect sign-in (oidc.ts): public, answering 404 when the config has no oidc: section.
    // The app passes its own sign-in (its refusals are counted in /metrics); a table built alone makes one.
    ...oidcRoutes(options.oidcSignIn ?? (options.oidc === undefined ? undefined : new OidcSignIn(options.oidc)), options.onError),
  ];
}

/** One viewer page as a row of the table: HTML, no JSON schema of its own. */
function page(method: 'GET' | 'POST', path: string, roles: readonly Role[] | 'public', summary: string, handler: RouteSpec['handler'], access?: AccessOperation): [RouteSpec] {
  return [
    {
      method,
      path,
      roles,
      summary,
      page: true,
      response: z.string(),
      produces: path.endsWith('.css') ? 'text/css' : path.endsWith('.vtt') ? 'text/vtt' : 'text/html',
      ...(access === undefined ? {} : { access }),
      handler,
    },
  ];
}
