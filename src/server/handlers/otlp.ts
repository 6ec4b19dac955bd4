import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { WitnessError, canonicalBytes, isWitnessError, SYSTEM_STREAM_PREFIX, strictParse, type ArtifactRef, type PreparedEvent } from '../../core/index.js';
import { RECORDER_VERSION, Redactor } from '../../recorder/index.js';
import {
  OtlpRequestError,
  decodeTraceRequest,
  encodeTraceResponse,
  mapSpan,
  readTraceRequest,
  spanEventId,
  traceResponseJson,
  type MappedEvent,
  type OtlpSpan,
  type SpanOwner,
} from '../../integrations/index.js';
import type { AppendRequest } from '../../store/index.js';
import type { RouteContext } from '../context.js';
import { errorResponse } from '../errors.js';
import { otlpIdSecret } from '../otlp-secret.js';
import type { StreamOwners } from './ingest.js';

const redactor = new Redactor();

const PROTOBUF = 'application/x-protobuf';
const JSON_TYPE = 'application/json';
/** Spans in one request, appended as one batch (the SDK's batch processor sends at most 512 by default). */
export const MAX_SPANS = 5_000;
/**
 * A resource or scope whose canonical JSON is over this is stored once per request, as an artifact
 * the span events name by digest, instead of inside each of them: a 4 KB gzip'd request with a
 * 900 KiB resource attribute and 1,000 spans wrote 1.77 GiB when it was copied (issue 16 review, H2).
 * Under it, a copy per span costs at most 2 KiB a span, 10 MiB for the most spans a request may hold.
 */
export const MAX_INLINE_SHARED = 2 * 1024;
/**
 * The events a request maps to may hold at most this many characters of canonical JSON per byte of
 * the body limit: what a span says once is stored once now, but protobuf carries a control
 * character in one byte that JSON writes in six, so a body can still grow when mapped.
 */
export const MAX_MAPPED_PER_BODY_BYTE = 2;

/**
 * POST /v1/traces (OTLP/HTTP): an ExportTraceServiceRequest, protobuf or JSON, optionally gzip'd,
 * mapped to events (integrations/otlp-map.ts) and appended as one batch. A request that does not
 * read as OTLP is refused whole (400/413, nothing written); a span whose events the ledger cannot
 * take is refused alone and answered as OTLP's partial success (200, partial_success). As on
 * /v1/events the identity is the key's: the agent, the recorder (`otlp`, this server's version),
 * and the time (`ts` and `received_ts` are the server's clock; the span's own times are kept as its
 * claim). A span already stored (same agent, trace id and span id: its ids are keyed by the
 * ledger's secret, otlp-secret.ts) is answered as accepted and not written again, so an exporter's
 * retry is harmless.
 *
 * `maxBytes` bounds the body three times: as sent (the route's body limit), once inflated, so a
 * small gzip bomb is refused with 413 before it is held in memory whole, and once mapped
 * (MAX_MAPPED_PER_BODY_BYTE), before anything is written.
 */
export async function traces(ctx: RouteContext, owners: StreamOwners, maxBytes: number): Promise<Response> {
  const c = ctx.c;
  const agentId = ctx.caller?.agent;
  if (agentId === undefined) throw new WitnessError('forbidden', 'This key has no agent identity to record under; send traces with an agent key.');
  const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== PROTOBUF && type !== JSON_TYPE) {
    return errorResponse(
      c,
      'unsupported_media_type',
      `OTLP traces must be sent as ${PROTOBUF} or ${JSON_TYPE}, not ${type === '' ? 'without a Content-Type' : type}; set the exporter's protocol to http/protobuf or http/json.`,
      415,
    );
  }
  const encoding = (c.req.header('content-encoding') ?? 'identity').trim().toLowerCase();
  if (encoding !== 'gzip' && encoding !== 'identity') {
    return errorResponse(c, 'unsupported_media_type', `Content-Encoding ${encoding} is not supported; send the body uncompressed or gzip'd.`, 415);
  }
  const sent = new Uint8Array(await c.req.arrayBuffer());
  const body = encoding === 'gzip' ? inflate(sent, maxBytes) : sent;

  let doc: unknown;
  try {
    doc = type === PROTOBUF ? await decodeTraceRequest(body) : strictParse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch (e) {
    const why = e instanceof Error ? e.message.replace(/\.$/, '') : 'it does not decode';
    throw new WitnessError('invalid_argument', `The body is not a ${type === PROTOBUF ? 'protobuf' : 'JSON'} ExportTraceServiceRequest (${why}); nothing was recorded.`, {
      cause: e,
      details: { path: 'body' },
    });
  }
  let spans: OtlpSpan[];
  let groups: MappedEvent[][];
  const shared = new SharedParts();
  const owner: SpanOwner = { agent: agentId, secret: otlpIdSecret(ctx.ledger.info), shared: (value, what) => shared.refer(value, what) };
  try {
    spans = readTraceRequest(doc);
    if (spans.length > MAX_SPANS) {
      throw new WitnessError(
        'payload_too_large',
        `The request holds ${spans.length.toLocaleString('en-US')} spans, over the limit of ${MAX_SPANS.toLocaleString('en-US')}; export smaller batches (the SDK's maxExportBatchSize).`,
      );
    }
    groups = spans.map((s) => mapSpan(s, owner));
  } catch (e) {
    if (e instanceof OtlpRequestError) throw new WitnessError('invalid_argument', `Nothing was recorded: ${e.message}`, { cause: e, details: { path: e.path ?? 'body' } });
    throw e;
  }

  for (const stream of new Set(groups.map((g) => g[0]!.stream))) {
    const owner = owners.ownerOf(stream);
    if (owner !== undefined && owner !== agentId) throw new WitnessError('forbidden', `Stream ${JSON.stringify(stream)} is another agent's session.`, { details: { path: 'stream' } });
  }
  const keyId = ctx.caller!.keyId;
  const received = new Date().toISOString();
  // A span repeated within one request is one span. Each span is checked on its own: one the
  // ledger cannot take (its event over the payload limit, a value over a field's limit) is refused
  // alone and the others are written, as OTLP's partial success allows; the refusal itself is
  // recorded where the span would have been, so the gap shows in the ledger and not only in the
  // exporter's log.
  const seen = new Set<string>();
  const entries: Entry[] = [];
  const refused: Refused[] = [];
  const prepare = (events: Writable[]) => ctx.ledger.prepare(events.map((m) => stamp(m, agentId, keyId, received)));
  const limit = MAX_MAPPED_PER_BODY_BYTE * maxBytes;
  let mappedSize = 0;
  const count = (ready: PreparedEvent[]) => {
    for (const p of ready) mappedSize += p.canonicalData.length;
    if (mappedSize + shared.bytes > limit) {
      throw new WitnessError(
        'payload_too_large',
        `The request maps to more than ${limit.toLocaleString('en-US')} characters of events, over the limit of ${MAX_MAPPED_PER_BODY_BYTE} per byte of the ${maxBytes.toLocaleString('en-US')}-byte body limit; nothing was recorded, send smaller batches.`,
      );
    }
  };
  spans.forEach((span, i) => {
    const group = withShared(groups[i]!, shared.artifactsOf(span));
    if (seen.has(group[0]!.id)) return;
    seen.add(group[0]!.id);
    const ready = prepareSpan(group, prepare);
    if (Array.isArray(ready)) {
      count(ready);
      entries.push({ span, events: group, prepared: ready });
      return;
    }
    const kind = typeof ready.details?.['kind'] === 'string' ? ready.details['kind'] : group[0]!.kind;
    refused.push({ span, why: ready, kind });
    const refusal = refusalEvent(span, group[0]!, owner, ready, kind);
    const prepared = prepare([refusal]);
    count(prepared);
    entries.push({ span, events: [refusal], prepared });
  });
  // Bounded before anything is written: the shared parts first, so every event's artifact is there when it is.
  await shared.store(ctx);
  // New spans are the common case: append at once, and look up which are stored only when the
  // store refuses a duplicate id (an exporter's retry, or an identical request racing this one).
  let pending = entries;
  for (let attempt = 0; pending.length > 0; attempt++) {
    const events = pending.flatMap((e) => e.events);
    try {
      await append(ctx, attempt === 0 ? pending.flatMap((e) => e.prepared) : prepare(events), agentId);
    } catch (e) {
      if (attempt < 2 && isWitnessError(e) && e.code === 'invalid_event' && /same id already exists/.test(e.message)) {
        pending = await unstored(ctx, pending, agentId, refused);
        continue;
      }
      throw e;
    }
    for (const m of events) owners.remember(m.stream, agentId);
    break;
  }
  const partial = refused.length === 0 ? undefined : { rejectedSpans: refused.length, errorMessage: partialMessage(refused, seen.size) };
  return type === PROTOBUF ? c.body((await encodeTraceResponse(partial)) as Uint8Array<ArrayBuffer>, 200, { 'Content-Type': PROTOBUF }) : c.json(traceResponseJson(partial), 200);
}

/** One span of the request and what it is written as: its events, or the error event recording its refusal. */
interface Entry {
  span: OtlpSpan;
  events: Writable[];
  prepared: PreparedEvent[];
}

interface Refused {
  span: OtlpSpan;
  why: WitnessError;
  /** The kind of the event the ledger refused (an execute_tool span maps to two). */
  kind: string;
}

/** A mapped event, or the `error` event that records a span's refusal. */
type Writable = Omit<MappedEvent, 'kind'> & { kind: MappedEvent['kind'] | 'error'; artifacts?: ArtifactRef[] };

/** The span's first event (the one carrying `data.otlp`) binds the shared parts it names, so verify re-hashes them. */
function withShared(group: MappedEvent[], artifacts: ArtifactRef[]): Writable[] {
  if (artifacts.length === 0) return group;
  return [{ ...group[0]!, artifacts }, ...group.slice(1)];
}

/**
 * The resources and scopes of one request: each one over MAX_INLINE_SHARED stored once, as a
 * content-addressed artifact (the same resource sent in another request is the same artifact),
 * redacted like the payload it would have been part of. The span events hold
 * `{ sha256, bytes, mime }` in its place and list it in `artifacts` (role `otlp.resource` or
 * `otlp.scope`), so the event's hash covers the digest.
 */
class SharedParts {
  private readonly refs = new Map<object, { ref: ArtifactRef; body: Buffer } | null>();
  /** Bytes of the parts to store, counted against the request's mapped limit. */
  bytes = 0;

  refer(value: Record<string, unknown>, what: 'resource' | 'scope'): unknown {
    let got = this.refs.get(value);
    if (got === undefined) {
      const body = canonicalBytes(redactor.redact(value) as never);
      if (body.length <= MAX_INLINE_SHARED) got = null;
      else {
        got = { ref: { sha256: createHash('sha256').update(body).digest('hex'), mime: 'application/json', bytes: body.length, role: `otlp.${what}` }, body: Buffer.from(body) };
        this.bytes += body.length;
      }
      this.refs.set(value, got);
    }
    return got === null ? undefined : { sha256: got.ref.sha256, bytes: got.ref.bytes, mime: got.ref.mime };
  }

  artifactsOf(span: OtlpSpan): ArtifactRef[] {
    const out: ArtifactRef[] = [];
    for (const v of [span.resource, span.scope]) {
      const got = v === undefined ? undefined : this.refs.get(v);
      if (got) out.push(got.ref);
    }
    return out;
  }

  async store(ctx: RouteContext): Promise<void> {
    for (const got of this.refs.values()) if (got) await ctx.ledger.putArtifact(got.body, got.ref.mime, got.ref.role);
  }
}

/**
 * The span's events prepared for the append (each span on its own, so one the ledger cannot take
 * does not take the others with it), or why the ledger would not take them: prepare's own checks,
 * the event schema's field limits and the payload limit. Only those two codes are the span's
 * fault; anything else is the server's and fails the request as before.
 */
function prepareSpan(group: Writable[], prepare: (events: Writable[]) => PreparedEvent[]): PreparedEvent[] | WitnessError {
  try {
    return prepare(group);
  } catch (e) {
    if (isWitnessError(e) && (e.code === 'payload_too_large' || e.code === 'invalid_event')) return e;
    throw e;
  }
}

const MAX_NAME = 256;
const MAX_REASON = 400;

function spanName(span: OtlpSpan): string {
  return span.name.length <= MAX_NAME ? span.name : `${span.name.slice(0, MAX_NAME)}…`;
}

/** The reason a span was refused, for the sender and the ledger: what was over which limit. */
function reasonOf(kind: string, e: WitnessError): string {
  if (e.code === 'conflict') return `its ${kind} event id is already taken by another record, so nothing of it was recorded (send it with a new span id)`;
  if (e.code === 'payload_too_large') {
    const bytes = Number(e.details?.['bytes']);
    const limit = Number(e.details?.['limit']);
    return `its ${kind} event would be ${bytes.toLocaleString('en-US')} bytes, over the ledger's limit of ${limit.toLocaleString('en-US')} bytes per event (send large content in smaller spans)`;
  }
  // The first clause says what is wrong; the rest of core's sentence speaks to a recorder's caller, not to an exporter.
  const m = e.message
    .replace(/^Invalid event: /, '')
    .split('; ')[0]!
    .replace(/\.$/, '');
  return `its ${kind} event is not valid (${m.length <= MAX_REASON ? m : `${m.slice(0, MAX_REASON)}…`})`;
}

/** An `error` event in the span's stream saying it was refused; its id is derived, so a retry records it once. */
function refusalEvent(span: OtlpSpan, first: Writable, owner: SpanOwner, why: WitnessError, kind: string): Writable {
  return {
    id: spanEventId(owner, span.traceId, span.spanId, 'refused'),
    stream: first.stream,
    kind: 'error',
    outcome: 'error',
    action: 'otlp.refused',
    ...(first.parent === undefined ? {} : { parent: first.parent }),
    data: {
      message: `The span ${span.spanId} (${JSON.stringify(spanName(span))}) was not recorded: ${reasonOf(kind, why)}.`,
      code: why.code,
      otlp: { trace_id: span.traceId, span_id: span.spanId, name: spanName(span) },
      ...(why.code === 'payload_too_large' ? { bytes: why.details?.['bytes'], limit: why.details?.['limit'] } : {}),
    },
  };
}

/** partial_success.error_message: how many of the request's spans were refused, and why, the first three named. */
function partialMessage(refused: Refused[], total: number): string {
  const listed = refused.slice(0, 3).map((r) => `span ${r.span.spanId} (${JSON.stringify(spanName(r.span))}): ${reasonOf(r.kind, r.why)}`);
  const more = refused.length > 3 ? `; and ${refused.length - 3} more` : '';
  return `${refused.length} of ${total} spans ${refused.length === 1 ? 'was' : 'were'} not recorded: ${listed.join('; ')}${more}.`;
}

async function append(ctx: RouteContext, prepared: readonly PreparedEvent[], agentId: string): Promise<void> {
  const receipts = await ctx.ledger.appendPrepared(prepared, { owner: agentId });
  ctx.metrics.appended += receipts.length;
}

/**
 * The spans still to write after the store refused a duplicate id. An event already stored counts
 * as this span sent before only when it is OTLP ingest's, from the same agent and in the same
 * stream; an id held by anything else (which the keyed ids make a forgery or a bug) refuses the
 * span, answered as partial success without a word about the other record.
 */
async function unstored(ctx: RouteContext, entries: Entry[], agentId: string, refused: Refused[]): Promise<Entry[]> {
  const out: Entry[] = [];
  for (const entry of entries) {
    const events: Writable[] = [];
    let taken = false;
    for (const m of entry.events) {
      const stored = await ctx.ledger.getEvent(m.id);
      if (stored === undefined) events.push(m);
      else if (stored.recorder?.kind !== 'otlp' || stored.agent.id !== agentId || stored.stream !== m.stream) taken = true;
    }
    if (taken) {
      refused.push({ span: entry.span, why: new WitnessError('conflict', 'Its event id is already taken in this ledger by another record.'), kind: entry.events[0]!.kind });
      continue;
    }
    if (events.length > 0) out.push({ ...entry, events });
  }
  return out;
}

function stamp(m: Writable, agentId: string, keyId: string, received: string): AppendRequest {
  // otlp-map.ts builds every stream under "otlp:", so none is a system stream; checked all the same.
  if (m.stream.startsWith(SYSTEM_STREAM_PREFIX)) throw new WitnessError('forbidden', `Stream ${JSON.stringify(m.stream)} is reserved for Witness.`);
  const header = redactor.redactHeader({
    id: m.id,
    kind: m.kind,
    agent: { id: agentId, credential: keyId },
    recorder: { kind: 'otlp', version: RECORDER_VERSION },
    ts: received,
    received_ts: received,
    outcome: m.outcome,
    ...(m.parent === undefined ? {} : { parent: m.parent }),
    ...(m.action === undefined ? {} : { action: m.action }),
    ...(m.resource === undefined ? {} : { resource: m.resource }),
    ...(m.artifacts === undefined ? {} : { artifacts: m.artifacts }),
    data: redactor.redact(m.data),
  });
  return { ...(header as unknown as AppendRequest), stream: m.stream };
}

/** Gunzips within `max` bytes: more is a 413, a body that is not gzip a 400. */
function inflate(body: Uint8Array, max: number): Uint8Array {
  try {
    return gunzipSync(body, { maxOutputLength: max });
  } catch (e) {
    if ((e as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new WitnessError('payload_too_large', `The request body inflates to more than ${max.toLocaleString('en-US')} bytes; send smaller batches.`, { cause: e });
    }
    throw new WitnessError('invalid_argument', "The body is declared gzip'd (Content-Encoding: gzip) but does not gunzip; nothing was recorded.", { cause: e, details: { path: 'body' } });
  }
}
