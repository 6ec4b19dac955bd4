import { createHash } from 'node:crypto';
import { SpanKind, SpanStatusCode, TraceFlags, type Attributes, type AttributeValue, type HrTime, type Link, type SpanContext } from '@opentelemetry/api';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { RECORDER_VERSION } from '../recorder/index.js';

/**
 * Witness events as OpenTelemetry spans, sent to an OTLP/HTTP endpoint with the official exporter
 * (README "OpenTelemetry export"). One event is one span: trace backends list, search and filter
 * spans, while span events hide inside a span and carry no attributes of their own worth searching.
 *
 * A span is evidence only by reference: it carries `witness.ledger.position` and `witness.event.hash`,
 * which `witness proof --leaf N` (or the bundle's verifier) checks against a signed checkpoint. Its
 * other attributes are a view for people and may be altered anywhere between here and the backend.
 *
 * Ids are derived, never random, so exporting the same event twice gives the same span (a backend
 * deduplicates or at least shows the repeat as the same span): trace id from the ledger's origin and
 * the session (stream), span id from the event id.
 */

export type OtlpProtocol = 'http/protobuf' | 'http/json';
export const OTLP_PROTOCOLS: readonly OtlpProtocol[] = ['http/protobuf', 'http/json'];

/** The part of a stored event (core's StoredEvent plus its leaf) the mapping reads. */
export interface ExportableEvent {
  pos: number;
  id: string;
  ts: string;
  stream: string;
  seq: number;
  kind: string;
  hash: string;
  agent: { id: string; version?: string | undefined };
  parent?: string | undefined;
  outcome?: string | undefined;
  resource?: string | undefined;
  action?: string | undefined;
  data: Record<string, unknown> | null;
}

export interface SpanContextOptions {
  /** The ledger's origin (its checkpoint name): part of every trace id, and a resource attribute. */
  origin: string;
  /** Leaves covered by the newest signed checkpoint: a span at a lower position gets witness.checkpoint.size. */
  checkpointSize: number;
  /** Leave every payload out (headers, position and hash only), like the SIEM export's --withhold-data. */
  withholdData?: boolean;
}

/**
 * HTTP statuses that say the endpoint or its credentials are wrong, or that it is busy, not that
 * this batch is bad: the same batch (and every one after it) is worth sending again once that is
 * fixed, so they stop the export instead of skipping events.
 */
const ABOUT_THE_ENDPOINT = new Set([401, 403, 404, 405, 407, 408, 429]);

/** Why an export failed, as one sentence; `kind` tells unreachable from refused, `status` is the HTTP status of a refusal. */
export class OtlpExportError extends Error {
  constructor(
    readonly kind: 'unreachable' | 'refused',
    message: string,
    options?: { cause?: unknown; status?: number },
  ) {
    super(message, options);
    this.name = 'OtlpExportError';
    this.status = options?.status;
  }

  readonly status: number | undefined;

  /**
   * The backend refused this batch for good: a 4xx other than those about the endpoint (above).
   * OTLP exporters do not retry these either (https://opentelemetry.io/docs/specs/otlp/#failures-1);
   * sent again unchanged, the batch would be refused again forever.
   */
  get permanent(): boolean {
    return this.kind === 'refused' && this.status !== undefined && this.status >= 400 && this.status < 500 && !ABOUT_THE_ENDPOINT.has(this.status);
  }
}

function digestHex(label: string, ...parts: string[]): string {
  const h = createHash('sha256').update(label);
  for (const p of parts) h.update('\0').update(p);
  return h.digest('hex');
}

/** The trace of one session: 16 bytes of SHA-256 over the origin and the stream. */
export function traceIdOf(origin: string, stream: string): string {
  return digestHex('witness.otlp.trace', origin, stream).slice(0, 32);
}

/** The span of one event: 8 bytes of SHA-256 over its id. */
export function spanIdOf(eventId: string): string {
  return digestHex('witness.otlp.span', eventId).slice(0, 16);
}

function hrTime(ms: number): HrTime {
  const s = Math.floor(ms / 1000);
  return [s, Math.round((ms - s * 1000) * 1e6)];
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function json(v: unknown): string | undefined {
  return v === undefined ? undefined : JSON.stringify(v);
}

function put(attrs: Attributes, key: string, value: AttributeValue | undefined): void {
  if (value !== undefined) attrs[key] = value;
}

/**
 * Longest string attribute value sent, in UTF-8 bytes. The OpenTelemetry SDKs set no length limit by
 * default (https://opentelemetry.io/docs/specs/otel/common/#attribute-limits), but backends do (New
 * Relic keeps 4,095 characters of a value), and a collector refuses a request over its body or gRPC
 * message limit (4 MiB for gRPC by default) whole, so one giant event would hold back every export
 * after it. A span is a view; the ledger keeps the whole value.
 */
export const OTLP_MAX_VALUE_BYTES = 16 * 1024;
/** Attributes per span: the OpenTelemetry SDKs' default span attribute count limit (same page). */
export const OTLP_MAX_ATTRIBUTES = 128;
/** Never cut or dropped: what a trace is checked back against the ledger by. */
const KEPT_WHOLE = ['witness.ledger.position', 'witness.event.hash', 'witness.event.id'] as const;
/** The marks of a cut: the keys cut, and each one's length in UTF-8 bytes before the cut (parallel arrays: OTLP arrays hold one type). */
const TRUNCATED = 'witness.truncated';
const TRUNCATED_BYTES = 'witness.truncated.bytes';

/** `text` cut to at most `max` UTF-8 bytes on a character boundary, or undefined when it fits. */
function cut(text: string, max: number): { text: string; bytes: number } | undefined {
  // A UTF-16 unit is 1 to 3 UTF-8 bytes: the exact count only when in doubt.
  if (text.length * 3 <= max) return undefined;
  const bytes = Buffer.byteLength(text);
  if (bytes <= max) return undefined;
  const head = Buffer.from(text.slice(0, max), 'utf8');
  let end = Math.min(max, head.length);
  // Back off continuation bytes (10xxxxxx) so no character is split.
  while (end > 0 && (head[end]! & 0xc0) === 0x80) end--;
  return { text: head.subarray(0, end).toString('utf8'), bytes };
}

/**
 * Bounds a span's attributes in place: at most OTLP_MAX_ATTRIBUTES (those kept whole first, then in
 * the order they were set, two places kept for the marks), each string (and each string of an
 * array) at most OTLP_MAX_VALUE_BYTES, with the cut keys and their original byte lengths named in
 * `witness.truncated` and `witness.truncated.bytes`. Returns how many attributes were dropped.
 */
export function boundAttributes(attrs: Attributes): number {
  const keys = Object.keys(attrs);
  let dropped = 0;
  if (keys.length > OTLP_MAX_ATTRIBUTES - 2) {
    const keep = new Set<string>(KEPT_WHOLE.filter((k) => k in attrs));
    for (const k of keys) if (keep.size < OTLP_MAX_ATTRIBUTES - 2) keep.add(k);
    for (const k of keys) {
      if (keep.has(k)) continue;
      delete attrs[k];
      dropped++;
    }
  }
  const cutKeys: string[] = [];
  const cutBytes: number[] = [];
  for (const [k, v] of Object.entries(attrs)) {
    if ((KEPT_WHOLE as readonly string[]).includes(k)) continue;
    if (typeof v === 'string') {
      const c = cut(v, OTLP_MAX_VALUE_BYTES);
      if (c === undefined) continue;
      attrs[k] = c.text;
      cutKeys.push(k);
      cutBytes.push(c.bytes);
    } else if (Array.isArray(v) && v.some((x) => typeof x === 'string')) {
      let total = 0;
      let changed = false;
      const out = (v as unknown[]).map((x) => {
        if (typeof x !== 'string') return x;
        const c = cut(x, OTLP_MAX_VALUE_BYTES);
        total += c?.bytes ?? Buffer.byteLength(x);
        if (c === undefined) return x;
        changed = true;
        return c.text;
      });
      if (!changed) continue;
      attrs[k] = out as AttributeValue;
      cutKeys.push(k);
      cutBytes.push(total);
    }
  }
  if (cutKeys.length > 0) {
    attrs[TRUNCATED] = cutKeys;
    attrs[TRUNCATED_BYTES] = cutBytes;
  }
  return dropped;
}

/** Characters in a span's string attributes (what makes a request large; a UTF-16 count is close enough to bound a batch). */
function attributeBytes(attrs: Attributes): number {
  let n = 0;
  for (const v of Object.values(attrs)) {
    if (typeof v === 'string') n += v.length;
    else if (Array.isArray(v)) for (const x of v) if (typeof x === 'string') n += x.length;
  }
  return n;
}

/** GenAI semantic-convention attributes and the span's name for one event. */
function genAi(ev: ExportableEvent, attrs: Attributes, withhold: boolean): { name: string; kind: SpanKind; durationMs: number } {
  const d = ev.data ?? {};
  const full = !withhold && ev.data !== null;
  switch (ev.kind) {
    case 'llm.call': {
      const model = str(d.model);
      put(attrs, 'gen_ai.operation.name', 'chat');
      put(attrs, 'gen_ai.provider.name', str(d.provider));
      put(attrs, 'gen_ai.request.model', model);
      put(attrs, 'gen_ai.response.model', str(d.response_model));
      const usage = (d.usage ?? {}) as Record<string, unknown>;
      put(attrs, 'gen_ai.usage.input_tokens', num(usage.input_tokens));
      put(attrs, 'gen_ai.usage.output_tokens', num(usage.output_tokens));
      const stop = str(d.stop_reason);
      if (stop !== undefined) attrs['gen_ai.response.finish_reasons'] = [stop];
      put(attrs, 'gen_ai.response.id', str(d.request_id));
      if (full) {
        put(attrs, 'gen_ai.input.messages', json(d.input));
        put(attrs, 'gen_ai.output.messages', json(d.output));
      }
      return { name: model === undefined ? 'chat' : `chat ${model}`, kind: SpanKind.CLIENT, durationMs: num(d.latency_ms) ?? 0 };
    }
    case 'tool.call':
    case 'tool.result': {
      const tool = str(d.tool);
      put(attrs, 'gen_ai.operation.name', 'execute_tool');
      put(attrs, 'gen_ai.tool.name', tool);
      put(attrs, 'gen_ai.tool.call.id', str(d.call_id) ?? (typeof d.jsonrpc_id === 'number' ? String(d.jsonrpc_id) : str(d.jsonrpc_id)));
      if (full) {
        if (ev.kind === 'tool.call') put(attrs, 'gen_ai.tool.call.arguments', json(d.arguments));
        else put(attrs, 'gen_ai.tool.call.result', json(d.output));
      }
      const name = `execute_tool${tool === undefined ? '' : ` ${tool}`}${ev.kind === 'tool.result' ? ' (result)' : ''}`;
      return { name, kind: SpanKind.INTERNAL, durationMs: num(d.duration_ms) ?? 0 };
    }
    case 'session.start':
      put(attrs, 'gen_ai.operation.name', 'invoke_agent');
      if (full) put(attrs, 'witness.event.data', json(ev.data));
      return { name: `invoke_agent ${ev.agent.id}`, kind: SpanKind.INTERNAL, durationMs: 0 };
    default:
      if (full) put(attrs, 'witness.event.data', json(ev.data));
      return { name: ev.kind, kind: SpanKind.INTERNAL, durationMs: 0 };
  }
}

/**
 * Builds spans for a run of events in ledger order. Remembers which trace each exported event went
 * to, so a child in another stream (a monitor's anomaly flag) links to its parent instead of naming a
 * span of the wrong trace as its parent.
 */
export class SpanMapper {
  private readonly resources = new Map<string, Resource>();
  private readonly traces = new Map<string, string>();
  private readonly scope = { name: 'witness', version: RECORDER_VERSION };

  constructor(private readonly options: SpanContextOptions) {}

  /** A newer checkpoint seen while following the ledger. */
  set checkpointSize(size: number) {
    this.options.checkpointSize = size;
  }

  private resourceFor(agent: ExportableEvent['agent']): Resource {
    const key = `${agent.id}\0${agent.version ?? ''}`;
    let r = this.resources.get(key);
    if (r === undefined) {
      r = resourceFromAttributes({
        'service.name': agent.id,
        ...(agent.version === undefined ? {} : { 'service.version': agent.version }),
        'gen_ai.agent.id': agent.id,
        'witness.ledger.origin': this.options.origin,
      });
      if (this.resources.size > 10_000) this.resources.clear();
      this.resources.set(key, r);
    }
    return r;
  }

  span(ev: ExportableEvent): ReadableSpan {
    const withhold = this.options.withholdData === true;
    const attrs: Attributes = {};
    const g = genAi(ev, attrs, withhold);
    attrs['gen_ai.conversation.id'] = ev.stream;
    attrs['gen_ai.agent.id'] = ev.agent.id;
    attrs['witness.ledger.position'] = ev.pos;
    attrs['witness.event.id'] = ev.id;
    attrs['witness.event.hash'] = ev.hash;
    attrs['witness.event.kind'] = ev.kind;
    attrs['witness.event.stream'] = ev.stream;
    attrs['witness.event.seq'] = ev.seq;
    attrs['witness.event.ts'] = ev.ts;
    put(attrs, 'witness.event.outcome', ev.outcome);
    put(attrs, 'witness.event.parent', ev.parent);
    put(attrs, 'witness.event.resource', ev.resource);
    put(attrs, 'witness.event.action', ev.action);
    if (ev.pos < this.options.checkpointSize) attrs['witness.checkpoint.size'] = this.options.checkpointSize;
    if (withhold) attrs['witness.data'] = 'withheld';
    else if (ev.data === null) attrs['witness.data'] = 'purged';
    const failed = ev.outcome === 'error' || ev.outcome === 'denied' || ev.outcome === 'expired';
    if (failed) attrs['error.type'] = ev.outcome!;
    const dropped = boundAttributes(attrs);

    const traceId = traceIdOf(this.options.origin, ev.stream);
    if (this.traces.size > 100_000) this.traces.clear();
    this.traces.set(ev.id, traceId);
    const context: SpanContext = { traceId, spanId: spanIdOf(ev.id), traceFlags: TraceFlags.SAMPLED, isRemote: false };
    let parentSpanContext: SpanContext | undefined;
    const links: Link[] = [];
    if (ev.parent !== undefined) {
      const parent: SpanContext = { traceId: this.traces.get(ev.parent) ?? traceId, spanId: spanIdOf(ev.parent), traceFlags: TraceFlags.SAMPLED, isRemote: false };
      if (parent.traceId === traceId) parentSpanContext = parent;
      else links.push({ context: parent, attributes: { 'witness.link': 'parent' } });
    }
    const start = Date.parse(ev.ts);
    const startTime = hrTime(start);
    const endTime = hrTime(start + g.durationMs);
    return {
      name: g.name,
      kind: g.kind,
      spanContext: () => context,
      ...(parentSpanContext === undefined ? {} : { parentSpanContext }),
      startTime,
      endTime,
      duration: hrTime(g.durationMs),
      status: failed ? { code: SpanStatusCode.ERROR, message: ev.outcome! } : { code: SpanStatusCode.UNSET },
      attributes: attrs,
      links,
      events: [],
      ended: true,
      resource: this.resourceFor(ev.agent),
      instrumentationScope: this.scope,
      droppedAttributesCount: dropped,
      droppedEventsCount: 0,
      droppedLinksCount: 0,
    };
  }
}

export interface OtlpSenderOptions {
  /** The traces endpoint; a URL with no path gets the standard /v1/traces. */
  url: string;
  protocol?: OtlpProtocol;
  headers?: Record<string, string>;
  /** Per batch, retries included (the exporter retries 429, 502, 503 and 504 and refused connections with backoff within it). Default: the exporter's (OTEL_EXPORTER_OTLP_TIMEOUT, else 10 s). */
  timeoutMillis?: number;
}

/** `http://host:4318` → `http://host:4318/v1/traces`; a URL with a path is taken as given. Refuses what is not http(s). */
export function tracesUrl(endpoint: string): string {
  let u: URL;
  try {
    u = new URL(endpoint);
  } catch {
    throw new OtlpExportError('refused', `"${endpoint}" is not a URL; give the collector's OTLP/HTTP address, e.g. http://127.0.0.1:4318.`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new OtlpExportError('refused', `"${endpoint}" is not an http(s) URL; OTLP export speaks OTLP/HTTP, e.g. http://127.0.0.1:4318.`);
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/v1/traces';
  return u.toString();
}

/** The OTLP exporter of one endpoint: `send` resolves once the batch is accepted, else throws one sentence. */
export class OtlpSender {
  private readonly exporter: ProtoExporter | JsonExporter;
  readonly url: string;

  constructor(options: OtlpSenderOptions) {
    this.url = tracesUrl(options.url);
    const config = {
      url: this.url,
      headers: options.headers ?? {},
      ...(options.timeoutMillis === undefined ? {} : { timeoutMillis: options.timeoutMillis }),
    };
    this.exporter = options.protocol === 'http/json' ? new JsonExporter(config) : new ProtoExporter(config);
  }

  async send(spans: ReadableSpan[]): Promise<void> {
    if (spans.length === 0) return;
    const result = await new Promise<{ code: number; error?: Error }>((resolve) => this.exporter.export(spans, resolve));
    if (result.code === 0) return;
    throw describeFailure(this.url, result.error);
  }

  async close(): Promise<void> {
    await this.exporter.shutdown();
  }
}

function describeFailure(url: string, error: Error | undefined): OtlpExportError {
  const e = error as (Error & { code?: unknown; data?: unknown }) | undefined;
  if (typeof e?.code === 'number') {
    const body = typeof e.data === 'string' && e.data.trim() !== '' ? `: ${e.data.trim().slice(0, 200)}` : '';
    return new OtlpExportError('refused', `The OTLP endpoint ${url} refused the spans with HTTP ${e.code}${body}; check the URL, the protocol and the --otlp-header credentials.`, {
      cause: e,
      status: e.code,
    });
  }
  const code = typeof e?.code === 'string' ? e.code : (e?.message ?? 'no answer');
  return new OtlpExportError('unreachable', `The OTLP endpoint ${url} could not be reached (${code}); check that the collector is running at that address, then export again.`, { cause: e });
}

/** Spans per OTLP request: the SDK's BatchSpanProcessor default. */
export const OTLP_BATCH = 512;
/**
 * Attribute text per OTLP request: a batch is sent early when its spans' strings reach this, so a
 * run of large (capped) events stays under a collector's 4 MiB gRPC message limit when it forwards.
 */
export const OTLP_BATCH_BYTES = 3 * 1024 * 1024;

/**
 * Sends every event of `pages` as spans, in order, a batch at a time; `onBatch` runs after each
 * batch is accepted with the position after its last event (what a follower saves). Stops at the
 * first batch that fails, throwing its sentence: what was sent before stays sent.
 *
 * With `onRefused`, a batch the backend refuses for good (OtlpExportError.permanent: a 400 or 413,
 * say) does not stop the export: it is split in halves and each sent again, down to single spans,
 * and each span still refused is handed to `onRefused` with its ledger position (to be recorded as
 * a gap) and passed over. Without it, such a batch would be sent again from the same position on
 * every pass, for ever.
 */
export async function sendEvents(
  pages: AsyncIterable<ExportableEvent[]>,
  mapper: SpanMapper,
  sender: OtlpSender,
  onBatch?: (next: number, count: number) => Promise<void> | void,
  onRefused?: (position: number, error: OtlpExportError) => Promise<void> | void,
): Promise<number> {
  let sent = 0;
  let batch: ReadableSpan[] = [];
  let positions: number[] = [];
  let bytes = 0;
  let next = -1;
  const deliver = async (spans: ReadableSpan[], at: number[]): Promise<number> => {
    try {
      await sender.send(spans);
      return spans.length;
    } catch (e) {
      if (onRefused === undefined || !(e instanceof OtlpExportError) || !e.permanent) throw e;
      if (spans.length === 1) {
        await onRefused(at[0]!, e);
        return 0;
      }
      const half = Math.ceil(spans.length / 2);
      return (await deliver(spans.slice(0, half), at.slice(0, half))) + (await deliver(spans.slice(half), at.slice(half)));
    }
  };
  const flush = async () => {
    if (batch.length === 0) return;
    const n = await deliver(batch, positions);
    sent += n;
    batch = [];
    positions = [];
    bytes = 0;
    await onBatch?.(next, n);
  };
  for await (const page of pages) {
    for (const ev of page) {
      const span = mapper.span(ev);
      batch.push(span);
      positions.push(ev.pos);
      bytes += attributeBytes(span.attributes);
      next = ev.pos + 1;
      if (batch.length >= OTLP_BATCH || bytes >= OTLP_BATCH_BYTES) await flush();
    }
  }
  await flush();
  return sent;
}
