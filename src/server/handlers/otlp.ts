import { gunzipSync } from 'node:zlib';
import { WitnessError, isWitnessError, SYSTEM_STREAM_PREFIX, strictParse, type PreparedEvent } from '../../core/index.js';
import { RECORDER_VERSION, Redactor } from '../../recorder/index.js';
import { OtlpRequestError, decodeTraceRequest, encodeTraceResponse, mapSpans, readTraceRequest, type MappedEvent } from '../../integrations/index.js';
import type { AppendRequest } from '../../store/index.js';
import type { RouteContext } from '../context.js';
import { errorResponse } from '../errors.js';
import type { StreamOwners } from './ingest.js';

const redactor = new Redactor();

const PROTOBUF = 'application/x-protobuf';
const JSON_TYPE = 'application/json';
/** Spans in one request, appended as one batch (the SDK's batch processor sends at most 512 by default). */
export const MAX_SPANS = 5_000;

/**
 * POST /v1/traces (OTLP/HTTP): an ExportTraceServiceRequest, protobuf or JSON, optionally gzip'd,
 * mapped to events (integrations/otlp-map.ts) and appended as one batch, all or nothing. As on
 * /v1/events the identity is the key's: the agent, the recorder (`otlp`, this server's version),
 * and the time (`ts` and `received_ts` are the server's clock; the span's own times are kept as its
 * claim). A span already stored (same agent, trace id and span id) is answered as accepted and not
 * written again, so an exporter's retry is harmless.
 *
 * `maxBytes` bounds the body twice: as sent (the route's body limit) and once inflated, so a small
 * gzip bomb is refused with 413 before it is held in memory whole.
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
  let mapped: MappedEvent[];
  try {
    const spans = readTraceRequest(doc);
    if (spans.length > MAX_SPANS) {
      throw new WitnessError(
        'payload_too_large',
        `The request holds ${spans.length.toLocaleString('en-US')} spans, over the limit of ${MAX_SPANS.toLocaleString('en-US')}; export smaller batches (the SDK's maxExportBatchSize).`,
      );
    }
    mapped = mapSpans(spans, agentId);
  } catch (e) {
    if (e instanceof OtlpRequestError) throw new WitnessError('invalid_argument', `Nothing was recorded: ${e.message}`, { cause: e, details: { path: e.path ?? 'body' } });
    throw e;
  }

  for (const stream of new Set(mapped.map((m) => m.stream))) {
    const owner = owners.ownerOf(stream);
    if (owner !== undefined && owner !== agentId) throw new WitnessError('forbidden', `Stream ${JSON.stringify(stream)} is another agent's session.`, { details: { path: 'stream' } });
  }
  const received = new Date().toISOString();
  // A span repeated within one request is one span.
  const unique = [...new Map(mapped.map((m) => [m.id, m])).values()];
  // New spans are the common case: append at once, and look up which are stored only when the
  // store refuses a duplicate id (an exporter's retry, or an identical request racing this one).
  let batch = unique;
  for (let attempt = 0; batch.length > 0; attempt++) {
    try {
      await append(ctx, ctx.ledger.prepare(batch.map((m) => stamp(m, agentId, ctx.caller!.keyId, received))), agentId);
    } catch (e) {
      if (attempt < 2 && isWitnessError(e) && e.code === 'invalid_event' && /same id already exists/.test(e.message)) {
        batch = await unstored(ctx, batch);
        continue;
      }
      throw e;
    }
    for (const m of batch) owners.remember(m.stream, agentId);
    break;
  }
  // Everything is accepted or nothing is: there is never a partial_success to report.
  return type === PROTOBUF ? c.body(encodeTraceResponse() as Uint8Array<ArrayBuffer>, 200, { 'Content-Type': PROTOBUF }) : c.json({}, 200);
}

async function append(ctx: RouteContext, prepared: PreparedEvent[], agentId: string): Promise<void> {
  const receipts = await ctx.ledger.appendPrepared(prepared, { owner: agentId });
  ctx.metrics.appended += receipts.length;
}

/** The mapped events whose ids the ledger does not hold yet (the ids are the agent's own: otlp-map.ts spanEventId). */
async function unstored(ctx: RouteContext, mapped: MappedEvent[]): Promise<MappedEvent[]> {
  const out: MappedEvent[] = [];
  for (const m of mapped) if ((await ctx.ledger.getEvent(m.id)) === undefined) out.push(m);
  return out;
}

function stamp(m: MappedEvent, agentId: string, keyId: string, received: string): AppendRequest {
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
