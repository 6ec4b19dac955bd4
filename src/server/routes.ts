import { z } from 'zod';
import type { RouteContext, RouteSpec } from './context.js';
import { createKeyRoute, listKeysRoute, revokeKeyRoute, whoami } from './handlers/admin.js';
import { getArtifact } from './handlers/artifacts.js';
import { VerifyRunner, consistency, inclusion, listCheckpoints } from './handlers/integrity.js';
import { ingest, StreamOwners } from './handlers/ingest.js';
import { getEvent, getSession, listSessions, search } from './handlers/read.js';
import {
  CheckpointList,
  ConsistencyQuery,
  CreateKeyBody,
  CreatedKey,
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
export function routeTable(options: { maxIngestBytes?: number } = {}): RouteSpec[] {
  const owners = new StreamOwners();
  const verifier = new VerifyRunner();
  const readers = ['developer', 'auditor'] as const;
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
      summary: 'Prometheus text: events appended, ingest and seal errors, age of the last checkpoint, the last verification.',
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
      summary: "A session's events in order.",
      params: StreamParam,
      query: NoQuery,
      response: SessionEvents,
      access: 'view',
      handler: getSession,
    },
    {
      method: 'GET',
      path: '/v1/artifacts/:sha256',
      // Screenshots and videos cannot be masked here, so developers do not get them.
      roles: ['auditor'],
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
      summary: 'Revoke an API key at once (a config.change event).',
      params: KeyIdParam,
      body: z.strictObject({}),
      response: z.object({ record: KeyDoc }),
      handler: revokeKeyRoute,
    },
  ];
}
