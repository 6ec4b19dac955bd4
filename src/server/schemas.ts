import { z } from 'zod';
import { EventKind, Outcome } from '../core/index.js';
import { normaliseInstant } from '../export/index.js';
import { AgentId, KeyName } from './keys.js';
import { Role } from './roles.js';

/**
 * The request and response shapes of every route: checked at the edge and the source of
 * /v1/openapi.json. Query strings arrive as text, so numbers are parsed from digits here and a
 * parameter a route does not know is refused (strict objects), naming it.
 */

/** Most events one ingest request may carry; a larger batch is refused whole (413) before anything is appended. */
export const MAX_INGEST_EVENTS = 1000;
export const MAX_PAGE = 1000;

const digits = (what: string) =>
  z
    .string()
    .regex(/^\d{1,15}$/, `must be a whole number (${what})`)
    .transform(Number);

/**
 * An ISO-8601 time with a zone, or a date (midnight UTC), as the store compares it
 * (`YYYY-MM-DDTHH:MM:SS.mmmZ`): read by the export module's normaliseInstant, the one reading every
 * command uses, so `?since=` means what `--since` means (no roll-over of T24:00 or 02-30, no local
 * zone, digits below the millisecond rounded up). Date.parse alone would take "1" as 2001.
 */
export const TimeParam = z
  .string()
  .max(40)
  .transform((v, ctx) => {
    try {
      return normaliseInstant(v, 'time');
    } catch (e) {
      // normaliseInstant says `time "<value>" <why>`; the caller's sentence names the parameter.
      ctx.addIssue({ code: 'custom', message: (e as Error).message.replace(/^time ".*?" /, '') });
      return z.NEVER;
    }
  });

const text = z.string().min(1).max(512);

export const EventSearchQuery = z.strictObject({
  agent: text.optional().describe('agent identity'),
  session: text.optional().describe('session (stream) id'),
  kind: EventKind.optional(),
  resource: text.optional(),
  action: text.optional(),
  outcome: Outcome.optional(),
  since: TimeParam.optional().describe('events at or after this time'),
  until: TimeParam.optional().describe('events before this time'),
  q: z.string().min(1).max(256).optional().describe('free text, case-insensitive, over tool names and arguments, resource and action'),
  limit: digits('events per page').pipe(z.number().int().min(1).max(MAX_PAGE)).optional().describe(`events per page, 1-${MAX_PAGE} (default 50)`),
  cursor: z.string().min(1).max(1024).optional().describe('the `next` of the previous page, unchanged'),
});

export const SessionListQuery = z.strictObject({
  agent: z.string().min(1).max(512).optional(),
  resource: z.string().min(1).max(512).optional(),
  outcome: Outcome.optional(),
  since: TimeParam.optional(),
  until: TimeParam.optional(),
  ended: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .optional(),
  limit: z
    .string()
    .regex(/^\d{1,4}$/, 'must be a whole number from 1 to 1000')
    .transform(Number)
    .pipe(z.number().int().min(1).max(1000))
    .optional(),
  cursor: z.string().min(1).max(1024).optional(),
});

/** A session can be arbitrarily long, so its events come in pages, like GET /v1/events. */
export const SessionEventsQuery = z.strictObject({
  limit: digits('events per page').pipe(z.number().int().min(1).max(MAX_PAGE)).optional().describe(`events per page, 1-${MAX_PAGE} (default 200)`),
  cursor: z.string().min(1).max(1024).optional().describe('the `next` of the previous page, unchanged'),
});

export const EventIdParam = z.strictObject({
  id: z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'must be an event id (a lowercase UUID)'),
});
export const StreamParam = z.strictObject({ stream: text });
export const Sha256Param = z.strictObject({ sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex characters (a SHA-256 digest)') });
export const KeyIdParam = z.strictObject({ id: z.string().regex(/^[0-9a-f]{16}$/, 'must be a key id (16 lowercase hex characters)') });
export const NoQuery = z.strictObject({});

export const InclusionQuery = z.strictObject({
  pos: digits('the event position, from 0'),
  size: digits('the tree size of a checkpoint'),
});
export const ConsistencyQuery = z.strictObject({
  from: digits('the older tree size'),
  to: digits('the newer tree size'),
});

/**
 * One event to ingest: any field of the event schema (see README, "The event"), plus the stream.
 * `agent` (all but `version`), `recorder` and `received_ts` are set by the server from the API key:
 * whatever the body says there is replaced, never trusted.
 */
export const IngestEvent = z.looseObject({
  stream: z.string().min(1).max(512).describe('session id; names starting with `witness.` are reserved'),
  kind: EventKind,
  data: z.record(z.string(), z.unknown()),
});
export const IngestBody = z.strictObject({
  events: z.array(z.unknown()).min(1, 'must hold at least one event').max(MAX_INGEST_EVENTS, `must hold at most ${MAX_INGEST_EVENTS} events; split the batch`),
});
export const IngestBodyDoc = z.strictObject({ events: z.array(IngestEvent).min(1).max(MAX_INGEST_EVENTS) });

export const Receipt = z.object({ id: z.string(), stream: z.string(), seq: z.number().int(), pos: z.number().int(), hash: z.string() });
export const IngestResponse = z.object({ receipts: z.array(Receipt) });

export const StoredEventDoc = z.looseObject({
  v: z.literal(1),
  id: z.string(),
  stream: z.string(),
  seq: z.number().int(),
  pos: z.number().int(),
  ts: z.string(),
  kind: EventKind,
  agent: z.looseObject({ id: z.string() }),
  data: z.record(z.string(), z.unknown()).nullable(),
  hash: z.string(),
  masked: z.boolean().optional().describe('true when personal data was masked for the caller role (developer); the payload then no longer matches its digest'),
});
export const EventPage = z.object({ events: z.array(StoredEventDoc), next: z.string().optional() });
export const SessionEvents = z.object({
  stream: z.string(),
  events: z.array(StoredEventDoc),
  next: z.string().optional().describe('present when the session has more events: pass it back as `cursor`'),
});

export const SessionSummaryDoc = z.object({
  stream: z.string(),
  agents: z.array(z.string()),
  start: z.string(),
  end: z.string(),
  ended: z.boolean(),
  endReason: z.string().optional(),
  events: z.number().int(),
  toolCalls: z.number().int(),
  denials: z.number().int(),
  errors: z.number().int(),
  approvals: z.object({ requested: z.number().int(), approved: z.number().int(), denied: z.number().int(), expired: z.number().int() }),
});
export const SessionList = z.object({ sessions: z.array(SessionSummaryDoc), next: z.string().optional() });

export const CheckpointDoc = z.object({
  id: z.number().int(),
  size: z.number().int(),
  root: z.string(),
  ts: z.string(),
  note: z.string(),
  prev_size: z.number().int().nullable(),
  consistency: z.array(z.string()),
});
export const CheckpointList = z.object({ checkpoints: z.array(CheckpointDoc) });
export const ProofResponse = z.object({ proof: z.array(z.string()), checkpoint: CheckpointDoc.optional() });

export const VerifyBody = z.strictObject({}).describe('no options yet: the ledger is verified against its own key and the sealer record');
export const VerifyResponse = z.looseObject({ ok: z.boolean(), checked_at: z.string(), events: z.number().int(), failures: z.array(z.unknown()) });

export const KeyDoc = z.object({
  id: z.string(),
  role: Role,
  agent: z.string().optional(),
  name: z.string().optional(),
  createdAt: z.string(),
  createdBy: z.string(),
  revokedAt: z.string().optional(),
  revokedBy: z.string().optional(),
});
export const KeyList = z.object({ keys: z.array(KeyDoc) });
export const CreateKeyBody = z.strictObject({ role: Role, agent: AgentId.optional(), name: KeyName.optional() });
export const CreatedKey = z.object({ key: z.string().describe('shown once; only its SHA-256 is kept'), record: KeyDoc });
export const WhoAmI = z.object({ keyId: z.string(), role: Role, agent: z.string().optional(), name: z.string().optional() });
export const Health = z.object({ ok: z.boolean(), ledger: z.string(), size: z.number().int() });
export const ErrorDoc = z.object({ error: z.object({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()).optional() }) });

export const APPROVAL_STATUSES = ['pending', 'approved', 'denied', 'expired', 'consumed'] as const;
export const ApprovalListQuery = z.strictObject({
  status: z
    .enum([...APPROVAL_STATUSES, 'all'])
    .optional()
    .describe('pending (default), approved, denied, expired, consumed (approved and used by the gateway) or all'),
  agent: text.optional().describe('only requests by this agent'),
  since: TimeParam.optional().describe('only requests made at or after this time'),
  limit: digits('requests per answer').pipe(z.number().int().min(1).max(MAX_PAGE)).optional().describe(`at most this many, oldest first (default 100, at most ${MAX_PAGE})`),
});
export const ApprovalIdParam = z.strictObject({
  id: z.string().regex(/^[0-9a-f-]{8,36}$/, 'must be an approval request id (its event id) or at least 8 of its first characters'),
});
export const DecideBody = z.strictObject({
  reason: z.string().max(2000).optional().describe('why, recorded and signed with the decision'),
  arguments_digest: z
    .string()
    .regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex characters')
    .optional()
    .describe('the arguments digest you reviewed; the decision is refused (409) when the request holds other arguments'),
});
export const ApprovalDoc = z.object({
  id: z.string().describe('the request id (the approval.request event)'),
  status: z.enum(APPROVAL_STATUSES),
  agent: z.string().describe('who asked: the agent that made the held call'),
  user: z.string().optional().describe('on whose behalf the agent acted'),
  session: z.string(),
  call_id: z.string().optional(),
  server: z.string().optional(),
  tool: z.string(),
  arguments: z.unknown().describe('the exact arguments held, as recorded (redacted at write time)'),
  arguments_digest: z.string(),
  rule: z.string().optional(),
  policy_reason: z.string().optional(),
  policy_version: z.string().optional(),
  requested_at: z.string(),
  expires_at: z.string(),
  seconds_left: z.number().int().describe('until it expires, 0 once it has'),
  approvers: z.array(z.object({ key: z.string(), fingerprint: z.string() })).describe('the keys the policy allows to decide it'),
  decision: z
    .object({ id: z.string(), decision: z.string(), approver: z.string(), role: z.string().optional(), reason: z.string().optional(), meaning: z.string().optional(), at: z.string() })
    .optional(),
  decisions_recorded: z.number().int().describe('decisions recorded for it, counting or not'),
  consumed_by: z.string().optional().describe('the policy.decision that released the call'),
});
export const ApprovalList = z.object({ approvals: z.array(ApprovalDoc), truncated: z.boolean() });
export const DecidedDoc = z.object({
  request_id: z.string(),
  decision: z.enum(['approved', 'denied']),
  decision_id: z.string(),
  approver: z.string().describe("the approver's identity, from the key the server signed with"),
  approver_key_fingerprint: z.string(),
  status: z.enum(APPROVAL_STATUSES),
});

/** Turns a zod failure into one sentence naming the field (`events[2].kind`, `since`). */
export function describeIssue(error: z.ZodError, where: string): { message: string; path: string } {
  const issue = error.issues[0];
  const path = issue === undefined ? where : joinPath(where, issue.path);
  if (issue?.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => JSON.stringify(k)).join(', ');
    return {
      message: `${where === 'query' ? 'Query parameter' : 'Field'}${issue.keys.length > 1 ? 's' : ''} ${keys} ${issue.keys.length > 1 ? 'are' : 'is'} not accepted here; see /v1/openapi.json.`,
      path: joinPath(where, [issue.keys[0] ?? '']),
    };
  }
  const msg = (issue?.message ?? 'is invalid').replace(/\s+/g, ' ').replace(/\.+$/, '');
  return { message: `${path} ${msg.charAt(0).toLowerCase()}${msg.slice(1)}; fix it and send the request again.`, path };
}

function joinPath(where: string, path: readonly PropertyKey[]): string {
  let out = where === 'query' || where === 'params' || where === 'body' ? '' : where;
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out === '' ? where : out;
}

/** `POST /v1/exports`: one session, as `witness export --session` takes it. */
export const ExportBody = z.strictObject({
  session: text.describe('the session (stream) id to export'),
  withhold_data: z.boolean().optional().describe('headers and salted digests only, as `witness export --withhold-data`'),
});
export const ExportIdParam = z.strictObject({ id: z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'must be an export id (a UUID)') });
export const ExportDoc = z.object({
  id: z.string(),
  session: z.string(),
  withheld: z.boolean(),
  status: z.enum(['running', 'done', 'failed']),
  started_at: z.string(),
  started_by: z.string(),
  finished_at: z.string().optional(),
  events: z.number().int().optional(),
  artifacts: z.number().int().optional(),
  bytes: z.number().int().optional(),
  signed_by: z.array(z.string()).optional(),
  warnings: z.array(z.string()).optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  bundle: z.string().optional().describe('where to download the bundle once done'),
});
