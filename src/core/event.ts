import { z } from 'zod';

/**
 * The event schema, version 1. These schemas are the single source of the TypeScript types.
 *
 * Hashed bytes are hard to migrate, so version 1 already carries the fields that audit regimes
 * ask for (EU AI Act Art. 12/14, NIST AU-3/AU-8/AU-10, SOC 2 CC6/CC8, HIPAA 164.312(b),
 * SEC/FINRA), optional where unknown. The header is strict (an unknown header field is an error,
 * because it would be hashed with no meaning); `data` is loose so agents can add context.
 */

export const SCHEMA_VERSION = 1 as const;

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex characters (a SHA-256 digest)');
const isoTime = z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/, 'must be an ISO-8601 UTC time with milliseconds, e.g. 2026-11-23T10:00:00.123Z');
const uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'must be a lowercase UUID');
const name = z.string().min(1).max(512);
const label = z.string().max(4096);

export const Sha256Hex = hex64;
export const IsoTime = isoTime;

/**
 * Whether `s` (already of isoTime's shape) names a real calendar instant: 2026-11-01T10:05:60.000Z,
 * T24:00 and 11-31 have the shape but not the meaning. Checked on input only (prepareEvent), never
 * by verify: a stored header is judged by the schema it was hashed under, so old ledgers still verify.
 */
export function isCalendarInstant(s: string): boolean {
  const ms = Date.parse(s);
  return Number.isFinite(ms) && new Date(ms).toISOString() === s;
}

export const EVENT_KINDS = [
  'session.start',
  'session.end',
  'llm.call',
  'tool.call',
  'tool.result',
  'policy.decision',
  'approval.request',
  'approval.decision',
  'capture',
  'error',
  'note',
  'config.change',
  'review',
  'human.override',
  'human.halt',
  'human.resume',
  'audit.access',
  'alert',
  'anomaly',
  'key.rotated',
  'retention.purge',
  'hold.placed',
  'hold.released',
] as const;
export const EventKind = z.enum(EVENT_KINDS);
export type EventKind = z.infer<typeof EventKind>;

/**
 * What happened, as a compliance reader means it (README "The event", per kind): `pending` is
 * waiting (a call recorded before its answer, a call held for a person); `denied` was refused (by
 * the policy, a person, or the gateway); `expired` ran out of time undecided; `success` and `error`
 * are done. `expired` came last: the header is hashed, so older ledgers simply never use it.
 */
export const OUTCOMES = ['success', 'error', 'denied', 'pending', 'expired'] as const;
export const Outcome = z.enum(OUTCOMES);
export type Outcome = z.infer<typeof Outcome>;

// ---------------------------------------------------------------- header parts

export const AgentRef = z.strictObject({
  id: name,
  version: label.optional(),
  /** Id of the credential (API key id, mTLS subject) that authenticated the agent; never the secret. */
  credential: label.optional(),
});
export type AgentRef = z.infer<typeof AgentRef>;

export const RecorderRef = z.strictObject({
  id: label.optional(),
  kind: z.enum(['sdk', 'gateway', 'server', 'otlp', 'cli']),
  version: label.optional(),
});

export const SourceRef = z.strictObject({
  host: label.optional(),
  process: label.optional(),
});

export const PrincipalRef = z.strictObject({
  /** The human (or service) on whose authority the agent acts. */
  id: name,
  kind: z.enum(['human', 'service']).optional(),
});

export const Delegation = z.strictObject({
  id: label,
  issuer: label.optional(),
  scopes: z.array(label).max(256).optional(),
  expires: isoTime.optional(),
});

export const PolicyDecision = z.enum(['allow', 'deny', 'review']);
export const PolicyContext = z.strictObject({
  decision: PolicyDecision,
  rule: label.optional(),
  /** SHA-256 of the policy file that was evaluated. */
  version: hex64.optional(),
  reason_code: label.optional(),
  /** `shadow`: evaluated and recorded but not enforced (a dry run). */
  mode: z.enum(['enforce', 'shadow']).optional(),
  approver: label.optional(),
});

export const Approval = z.strictObject({
  approver: name,
  role: label.optional(),
  decision: z.enum(['approved', 'denied']),
  reason: label.optional(),
  /** What the signature means (EU AI Act Art. 14 / 21 CFR 11.50 style): "reviewed and approved the refund". */
  meaning: label.optional(),
  args_digest: hex64.optional(),
  ts: isoTime,
});

export const ArtifactRef = z.strictObject({
  sha256: hex64,
  mime: z.string().min(1).max(255),
  bytes: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  role: label.optional(),
  name: label.optional(),
});
export type ArtifactRef = z.infer<typeof ArtifactRef>;

/** Everything the caller may set on any event, besides `kind` and `data`. */
const commonInput = {
  id: uuid.optional(),
  ts: isoTime.optional(),
  received_ts: isoTime.optional(),
  agent: AgentRef,
  user: label.optional(),
  principal: PrincipalRef.optional(),
  delegation: Delegation.optional(),
  /** The pseudonymised person the action concerns (customer, patient). */
  subject: label.optional(),
  recorder: RecorderRef.optional(),
  source: SourceRef.optional(),
  env: label.optional(),
  tenant: label.optional(),
  parent: uuid.optional(),
  resource: label.optional(),
  action: label.optional(),
  outcome: Outcome.optional(),
  policy: PolicyContext.optional(),
  approvals: z.array(Approval).max(64).optional(),
  /** Drives retention: e.g. `financial-record` (SEC 17a-4, 6 years), `audit-log`, `clinical`. */
  record_class: label.optional(),
  data_categories: z.array(label).max(64).optional(),
  artifacts: z.array(ArtifactRef).max(1024).optional(),
};

// ---------------------------------------------------------------- payloads per kind

const loose = z.looseObject;

/**
 * Fields written by Witness's own writers (gateway, recorder, capture, demo) are declared below so
 * readers get them typed. They are declared as wide as their writers write them (plain strings, no
 * length caps beyond what was already checked) and optional: an event any earlier version accepted
 * is still accepted, and no stored payload's bytes or digest change (`data` is hashed as written).
 */
const text = z.string();

/**
 * Streams Witness writes itself, besides one stream per session, whose events an export of a
 * session or agent takes in when they name the session in `resource` or an in-scope event in
 * `parent` (docs/FORMAT.md 7.11): halts go to witness.approvals, and the monitor's anomaly flags to
 * witness.monitor with the flagged event as parent. witness.retention is not one: its records name
 * neither (resource `retention` or `erasure`), and a session could be called that.
 */
export const SYSTEM_STREAMS = ['witness.approvals', 'witness.gateway', 'witness.evidence', 'witness.audit-access', 'witness.keys', 'witness.monitor'] as const;
export type SystemStream = (typeof SYSTEM_STREAMS)[number];

/**
 * Codes Witness records in `error` events (`data.code`), so readers (the video, the viewer,
 * alerts) branch on a known set. A tool's own JSON-RPC error codes (numbers) and an agent's codes
 * are recorded too, so a reader must still expect other values.
 */
export const RECORDED_ERROR_CODES = [
  // approvals (core/approval.ts, approvals/)
  'approval_forged',
  'approver_not_allowed',
  'approval_mismatch',
  'approvals_unreadable',
  // the stop button (approvals/halt.ts): a gateway that cannot read whether its agent is halted refuses
  'halts_unreadable',
  // a halted agent's traffic the gateway answered or dropped itself (gateway/halted-traffic.ts)
  'halted',
  // the gateway refusing or losing a message
  'parse_error',
  'batch_refused',
  'frame_too_large',
  'unsupported_protocol_version',
  'unknown_response',
  'invalid_params',
  'internal_error',
  'protocol_error',
  'rpc_error',
  'too_many_sessions',
  'too_many_groups',
  'too_many_requests',
  'too_many_listens',
  'unauthenticated',
  'unauthorized',
  'forbidden',
  'client_disconnected',
  'cancelled',
  // a request reusing an id still in use (pending, held, or cancelled but unanswered), and a server's answer after a cancel
  'duplicate_id',
  'answered_after_cancel',
  'timeout',
  'server_exited',
  'upstream_exited',
  'upstream_spawn_failed',
  'upstream_unreachable',
  'upstream_redirect',
  'upstream_refused',
  'upstream_no_response',
  // the recorder's own faults, recorded once recording works again
  'recording_gap',
  // capture
  'capture_failed',
  'no_capturer',
] as const;
export type RecordedErrorCode = (typeof RECORDED_ERROR_CODES)[number];

export function isRecordedErrorCode(code: unknown): code is RecordedErrorCode {
  return typeof code === 'string' && (RECORDED_ERROR_CODES as readonly string[]).includes(code);
}

/** What a policy.decision that released an approved call names (and so consumes, once). */
export const ApprovalRef = loose({
  request_id: text,
  decision_id: text.optional(),
  approver: text.optional(),
  approver_key: text.optional(),
  stream: text.optional(),
});
export type ApprovalRef = z.infer<typeof ApprovalRef>;

const Message = z.unknown();
const ToolCallRequest = loose({ id: label.optional(), name: name, arguments: z.unknown().optional() });
const Usage = loose({
  input_tokens: z.number().int().nonnegative().optional(),
  output_tokens: z.number().int().nonnegative().optional(),
  total_tokens: z.number().int().nonnegative().optional(),
});
const DataSource = loose({ id: label, version: label.optional(), digest: label.optional() });
const ErrorInfo = loose({ message: z.string(), name: label.optional(), code: z.union([label, z.number()]).optional() });

export const PAYLOADS = {
  'session.start': loose({
    /** How `ts` was obtained (NIST AU-8): e.g. `system`, `ntp:pool.ntp.org`, with the measured offset if known. */
    clock: loose({ source: label, synced: z.boolean().optional(), offset_ms: z.number().optional() }).optional(),
    purpose: label.optional(),
    labels: z.record(z.string(), label).optional(),
  }),
  'session.end': loose({
    reason: z.enum(['completed', 'timeout', 'max_iterations', 'error', 'cancelled']),
    /** What the agent finally told the user. */
    final_output: z.unknown().optional(),
    /**
     * Number of events in the stream before this one and the hash of the last of them, so a
     * cut-off tail shows. The store fills both inside the append transaction; verify requires them.
     */
    event_count: z.number().int().nonnegative().optional(),
    last_hash: hex64.optional(),
  }),
  'llm.call': loose({
    provider: label.optional(),
    /** The model the agent asked for. */
    model: name,
    /** The model that answered (providers may route to another snapshot). */
    response_model: label.optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    input: z.array(Message),
    output: z.unknown().optional(),
    tool_calls: z.array(ToolCallRequest).optional(),
    usage: Usage.optional(),
    latency_ms: z.number().nonnegative().optional(),
    system_prompt_sha256: hex64.optional(),
    tool_definitions_sha256: hex64.optional(),
    data_sources: z.array(DataSource).optional(),
    stop_reason: label.optional(),
    agent_version: label.optional(),
    /** Written by the SDK wrappers (src/integrations): the provider's request id, a streamed answer, one cut off before its end, the provider's error, the time to its first chunk. */
    request_id: text.optional(),
    stream: z.boolean().optional(),
    partial: z.boolean().optional(),
    error: ErrorInfo.optional(),
    first_chunk_ms: z.number().nonnegative().optional(),
    /** Also the wrappers': the paths of parts replaced by a `$truncated` marker (`output`, `input[2]`), and a call whose raw HTTP response the caller read itself. */
    truncated: z.array(text).optional(),
    raw_response: z.boolean().optional(),
  }),
  'tool.call': loose({
    tool: name,
    server: label.optional(),
    /** A request other than tools/call (resources/read, prompts/get, tools/list): its MCP method. */
    method: text.optional(),
    /** The resource URI or prompt name such a request names. */
    target: text.optional(),
    arguments: z.unknown(),
    jsonrpc_id: z.union([z.string(), z.number()]).optional(),
    requires_approval: z.boolean().optional(),
    /** What the client said about itself (MCP clientInfo, _meta): recorded as a claim, never trusted. */
    client_claims: z.unknown().optional(),
    /** A 2026-07-28 retry round (MRTR): the client's answers and the server's opaque state, as sent. */
    input_responses: z.unknown().optional(),
    request_state: z.unknown().optional(),
  }),
  'tool.result': loose({
    tool: name,
    server: label.optional(),
    output: z.unknown().optional(),
    is_error: z.boolean(),
    error: ErrorInfo.optional(),
    duration_ms: z.number().nonnegative().optional(),
    requires_approval: z.boolean().optional(),
    /** A 2026-07-28 result that does not finish its request (e.g. `input_required`). */
    result_type: text.optional(),
    /** What the client said about itself (a coding agent's hook payload fields): recorded as a claim, never trusted. */
    client_claims: z.unknown().optional(),
    /** How `witness hook` found the call this result answers: Witness's inference, not the agent's claim. */
    call_link: z
      .object({ by: z.enum(['tool_use_id', 'arguments', 'none']), reason: text.optional() })
      .passthrough()
      .optional(),
  }),
  'policy.decision': loose({
    decision: PolicyDecision,
    rule: label.optional(),
    mode: z.enum(['enforce', 'shadow']).optional(),
    policy_version: hex64.optional(),
    reason: label.optional(),
    tool: label.optional(),
    /**
     * SHA-256("witness/args/v1\n" ‖ arguments_salt ‖ JCS(redacted arguments)); see core/approval.ts.
     * Records written before salting (no `arguments_salt`) hold SHA-256(JCS(arguments)).
     */
    arguments_digest: hex64.optional(),
    arguments_salt: hex64.optional(),
    /** For a review: the ids of the approvers the policy allows to release the call. */
    approvers: z.array(label).max(256).optional(),
    /** Ids of every rule that matched, in file order (including those outranked). */
    matched: z.array(text).readonly().optional(),
    /** On the decision that releases an approved call: the grant it consumes. */
    approval: ApprovalRef.optional(),
  }),
  'approval.request': loose({
    request_id: name,
    tool: label.optional(),
    arguments: z.unknown().optional(),
    arguments_digest: hex64,
    /** 32 random bytes (hex) salting `arguments_digest`; withheld and purged with the arguments. */
    arguments_salt: hex64.optional(),
    /** The verifier keys of the people who may decide this request (from the policy). */
    approvers: z.array(label).max(256).optional(),
    rule: label.optional(),
    reason: label.optional(),
    expires_at: isoTime.optional(),
    server: text.optional(),
    policy_version: text.optional(),
    /** The session the held call was made in, and its tool.call event. */
    session: text.optional(),
    call_id: text.optional(),
  }),
  'approval.decision': loose({
    request_id: name,
    decision: z.enum(['approved', 'denied', 'expired']),
    approver: name,
    role: label.optional(),
    reason: label.optional(),
    meaning: label.optional(),
    arguments_digest: hex64,
    /** A person's decision is signed: their verifier key, and Ed25519 (hex) over the rest of `data` (core/approval.ts). */
    approver_key: label.optional(),
    approver_sig: z
      .string()
      .regex(/^[0-9a-f]{128}$/, 'must be an Ed25519 signature in 128 lowercase hex characters')
      .optional(),
    agent: name.optional(),
    origin: label.optional(),
    decided_at: isoTime.optional(),
    expires_at: isoTime.optional(),
    policy_version: hex64.optional(),
    /** What the decision binds besides the digest (all signed; see core/approval.ts). */
    tool: text.optional(),
    server: text.optional(),
    session: text.optional(),
    call_id: text.optional(),
    rule: text.optional(),
  }),
  capture: loose({
    role: label,
    url: label.optional(),
    viewport: loose({ width: z.number().int().positive(), height: z.number().int().positive() }).optional(),
    text: z.string().optional(),
    /** A screenshot: the page's title, the HTTP status of its document, what was masked, when and how long. */
    title: text.optional(),
    http_status: z.number().optional(),
    masked_selectors: z.array(text).optional(),
    captured_at: text.optional(),
    capture_ms: z.number().optional(),
    /**
     * An `after` screenshot: the bounding box, in the image's pixels, of what differs from the
     * call's `before` screenshot (src/capture/png-diff.ts); absent when nothing does or there was no
     * before shot. `size_changed`: the two images differ in size, so the whole image is the region.
     */
    changed_region: loose({
      x: z.number().int().nonnegative(),
      y: z.number().int().nonnegative(),
      width: z.number().int().positive(),
      height: z.number().int().positive(),
      image_width: z.number().int().positive(),
      image_height: z.number().int().positive(),
      size_changed: z.literal(true).optional(),
    }).optional(),
    /** A narrated video (role `video`): the session it shows and its chapters. */
    session: text.optional(),
    duration_s: z.number().optional(),
    steps: z.number().optional(),
    chapters: z.array(loose({ title: text, start_s: z.number(), end_s: z.number() })).optional(),
    voice: text.optional(),
    speed_wpm: z.number().optional(),
    missing_screenshots: z.array(z.unknown()).readonly().optional(),
  }),
  error: loose({
    message: z.string(),
    name: label.optional(),
    code: z.union([label, z.number()]).optional(),
    stack: z.string().optional(),
    /** Whose fault: the agent's, a tool's, or the recorder's own (recorded when recording works again). */
    source: z.enum(['agent', 'tool', 'llm', 'recorder', 'gateway', 'capture']).optional(),
    retryable: z.boolean().optional(),
    /** Context the gateway adds to an approval error: which request, decision and digest. */
    tool: text.optional(),
    request_id: text.optional(),
    decision_id: text.optional(),
    approver: text.optional(),
    approver_key: text.optional(),
    arguments_digest: text.optional(),
    approved_digest: text.optional(),
    method: z.unknown().optional(),
    jsonrpc_id: z.unknown().optional(),
    /** A screenshot that could not be stored: its role. */
    role: text.optional(),
    /**
     * What the gateway saw when it refused or lost a message, as it was (values vary, so unknown):
     * the request (`path`, `remote_address`, `session`, `protocol_version`, `requested` and
     * `supported` versions, `key_fingerprint`), the message (`kind`, `head`, `line`, `body`,
     * `chars`, `bytes`, `size`, `limit`), the upstream (`url`, `exit_code`, `signal`), and why (`reason`).
     */
    path: z.unknown().optional(),
    remote_address: z.unknown().optional(),
    session: z.unknown().optional(),
    protocol_version: z.unknown().optional(),
    requested: z.unknown().optional(),
    supported: z.unknown().optional(),
    key_fingerprint: z.unknown().optional(),
    kind: z.unknown().optional(),
    head: z.unknown().optional(),
    line: z.unknown().optional(),
    body: z.unknown().optional(),
    chars: z.unknown().optional(),
    bytes: z.unknown().optional(),
    size: z.unknown().optional(),
    limit: z.unknown().optional(),
    url: z.unknown().optional(),
    exit_code: z.unknown().optional(),
    signal: z.unknown().optional(),
    reason: z.unknown().optional(),
  }),
  note: loose({
    text: z.string(),
    level: z.enum(['debug', 'info', 'warn']).optional(),
    /** A held call that waits on, or was released by, an existing approval request. */
    approval: loose({ request_id: text }).optional(),
    /** A v2 client's version probe run (the gateway's note): what the server's server/discover said. */
    probe: z.boolean().optional(),
    method: text.optional(),
    server_era: text.optional(),
    supported_versions: z.unknown().optional(),
    discover_error: z.unknown().optional(),
  }),
  'config.change': loose({
    target: z.enum(['model', 'prompt', 'policy', 'tool_scope', 'retention', 'key', 'other']),
    description: z.string(),
    before_digest: hex64.optional(),
    after_digest: hex64.optional(),
    approved_by: label.optional(),
  }),
  review: loose({
    reviewer: name,
    /** A person attests they reviewed a population of events, bound to its digest. */
    population_digest: hex64,
    /** `name`: the bundle population (export/populations.ts POPULATIONS) that was reviewed. */
    population: loose({ query: z.unknown().optional(), count: z.number().int().nonnegative(), name: text.optional() }),
    attestation: z.string(),
    /** What `witness review` binds besides the digest: the verdict, the leaves, the checkpoint the population was taken at, and the scope that chose them. */
    disposition: z.enum(['ok', 'escalated']).optional(),
    span: loose({ from: z.number().int().nonnegative(), to: z.number().int().nonnegative() }).optional(),
    checkpoint: loose({ size: z.number().int().nonnegative(), root: hex64 }).optional(),
    scope: z.unknown().optional(),
  }),
  'human.override': loose({ actor: name, description: z.string(), target_event: uuid.optional() }),
  /** A person stopped an agent (EU AI Act Art. 14): `agent` is the halted agent's id; every gateway refuses its calls until a `human.resume` for it. */
  'human.halt': loose({ actor: name, reason: z.string(), agent: name.optional() }),
  /** A person lifted a halt: `agent` is the resumed agent's id, `halt` the id of the halt event it ends. */
  'human.resume': loose({ actor: name, agent: name, reason: z.string().optional(), halt: uuid.optional() }),
  'audit.access': loose({
    actor: name,
    operation: z.enum(['query', 'export', 'view', 'verify']),
    scope: z.unknown().optional(),
    count: z.number().int().nonnegative().optional(),
    /**
     * An export's record (src/export ExportRecord, docs/FORMAT.md 7.8): what was handed out and in
     * what form — `witness-evidence/2`, `ocsf/<version>`, `jsonl`, `report/<pdf|html>` — the mode,
     * the leaf span, the digest of the span's event hashes, the in-scope count, the bound file
     * digests and where the first checkpoint line starts, the checkpoint it rests on, where it was
     * written and whether a streamed export completed. Declared wide: the export module validates
     * its own record strictly.
     */
    format: text.optional(),
    mode: text.optional(),
    span: z.unknown().optional(),
    events_digest: text.optional(),
    in_scope: z.number().int().nonnegative().optional(),
    files: z.unknown().optional(),
    checkpoints_from: z.unknown().optional(),
    checkpoint: z.unknown().optional(),
    output: text.optional(),
    file: text.optional(),
    complete: z.boolean().optional(),
    /** A read through `witness serve` (src/server access.ts): the caller's role and key, where from, and a refusal's answer. */
    role: text.optional(),
    key_id: text.optional(),
    from: text.optional(),
    refusal: z.unknown().optional(),
  }),
  alert: loose({ severity: z.enum(['info', 'warning', 'critical']), message: z.string(), code: label.optional() }),
  /** A rule flagged unusual behaviour (never a block): `rule` is its stable id, `reason` the sentence a reader sees, `target_event` the event that tripped it. */
  anomaly: loose({ rule: label, reason: z.string(), agent: name.optional(), target_event: uuid.optional() }),
  'key.rotated': loose({ old_key: label, new_key: label, reason: label.optional() }),
  'retention.purge': loose({ policy: label, before: isoTime, count: z.number().int().nonnegative() }),
  'hold.placed': loose({ hold_id: name, scope: z.unknown(), reason: z.string(), placed_by: name }),
  'hold.released': loose({ hold_id: name, released_by: name, reason: z.string().optional() }),
} as const satisfies Record<EventKind, z.ZodType>;

export type Payload<K extends EventKind> = z.infer<(typeof PAYLOADS)[K]>;

/** What a caller hands to `Ledger.append`: one member of the union per kind. */
function inputOf<K extends EventKind>(kind: K) {
  return z.strictObject({ ...commonInput, kind: z.literal(kind), data: PAYLOADS[kind] });
}

export const EventInput = z.discriminatedUnion('kind', [
  inputOf('session.start'),
  inputOf('session.end'),
  inputOf('llm.call'),
  inputOf('tool.call'),
  inputOf('tool.result'),
  inputOf('policy.decision'),
  inputOf('approval.request'),
  inputOf('approval.decision'),
  inputOf('capture'),
  inputOf('error'),
  inputOf('note'),
  inputOf('config.change'),
  inputOf('review'),
  inputOf('human.override'),
  inputOf('human.halt'),
  inputOf('human.resume'),
  inputOf('audit.access'),
  inputOf('alert'),
  inputOf('anomaly'),
  inputOf('key.rotated'),
  inputOf('retention.purge'),
  inputOf('hold.placed'),
  inputOf('hold.released'),
]);
export type EventInput = z.infer<typeof EventInput>;

/**
 * The hashed header: every field but `data`, `salt` and `hash`. Validated on read by `verify`,
 * so it is strict about its own fields and loose about none.
 */
export const EventHeader = z.strictObject({
  ...commonInput,
  v: z.literal(SCHEMA_VERSION),
  id: uuid,
  ts: isoTime,
  stream: name,
  seq: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  kind: EventKind,
  payload_digest: hex64,
  prev: hex64,
});
export type EventHeader = z.infer<typeof EventHeader>;

/**
 * A stored event as it is exported: header, payload (null once purged or withheld), salt and hash.
 * `StoredEvent<K>` is one of kind K, its payload typed by K's schema (narrow with `isKind`).
 *
 * The payload type is what Witness's writers put there; it is not re-validated on read, because a
 * payload is hashed as written and an older or hostile ledger may hold other values. Readers that
 * judge something (an approval) still check the type of what they rely on.
 */
export type StoredEvent<K extends EventKind = EventKind> = [EventKind] extends [K] ? EventHeader & { data: Record<string, unknown> | null; salt: string | null; hash: string } : TypedStoredEvent<K>;

type TypedStoredEvent<K extends EventKind> = K extends EventKind ? Omit<EventHeader, 'kind'> & { kind: K; data: Payload<K> | null; salt: string | null; hash: string } : never;

/** Narrows a stored event to one kind (or one of several), so its payload reads typed. */
export function isKind<E extends { kind: EventKind }, K extends EventKind>(e: E, ...kinds: K[]): e is E & StoredEvent<K> {
  return (kinds as readonly EventKind[]).includes(e.kind);
}

/**
 * A payload as a judge reads it from a ledger that may hold anything (an older Witness, an edited
 * row): the field names are the schema's, checked by the compiler; every value is still unknown.
 */
export type Unchecked<T> = { readonly [K in keyof T]?: unknown };

/** A payload field that is text, else undefined (for values read from a ledger that may hold anything). */
export function textField(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** Formats a zod issue path the way a person reads it: `data.usage.input_tokens`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out === '' ? '(event)' : out;
}
