import { createHash, createHmac } from 'node:crypto';
import { Redactor } from '../recorder/index.js';
import type { AttrValue, OtlpSpan } from './otlp/request.js';

/**
 * OpenTelemetry spans as Witness events, by the GenAI semantic conventions (pure: no clock, no
 * store). The caller (the server's POST /v1/traces) stamps identity, recorder and time.
 *
 * - `gen_ai.operation.name` chat, text_completion, generate_content → `llm.call`;
 *   execute_tool → `tool.call` and its `tool.result`; anything else (invoke_agent, create_agent,
 *   embeddings, a span with no GenAI attributes) → a `note`, so no span is dropped.
 * - Every event keeps the span as sent in `data.otlp` (ids, name, kind, times, status, every span
 *   attribute, events, links): what the exporter said, stored as its claim. An attribute Witness
 *   maps into a field of its own (the messages, tool arguments and result) is kept once, in that
 *   field, and `data.otlp.mapped` names where: a 600 KB prompt stored twice would be over the
 *   ledger's 1 MiB payload limit. The resource and scope are the caller's to attach
 *   (`SpanOwner.shared`): the server stores a large one once per request and names it by digest. The agent a span names
 *   (`gen_ai.agent.id`/`name`) is only such a claim, under `data.otlp.claimed_agent`; the event's
 *   agent is always the ingest key's.
 * - The stream is `otlp:<agent>:<gen_ai.conversation.id or trace id>`, the agent percent-encoded,
 *   so each key's agent has its own namespace and one agent's spans can never name another's
 *   session. A conversation id that the recorder's redaction would change (it holds a secret) is
 *   replaced by `hmac-` and its keyed digest: stream names are in the hashed header, where
 *   nothing can be redacted later.
 * - Event ids are derived under the server's per-ledger secret from the agent, trace id and span
 *   id (UUIDv8 over HMAC-SHA-256), so a span sent twice maps to the same ids and is stored once,
 *   and nobody without the secret can compute the id of someone else's span (trace and span ids
 *   are not secret: W3C traceparent carries them to every downstream service).
 */

/** Whose spans these are: the ingest key's agent, and the server's per-ledger secret the ids and hashed names are keyed by. */
export interface SpanOwner {
  agent: string;
  secret: Uint8Array;
  /**
   * What `data.otlp.resource` (or `.scope`) holds for a span: the value itself, or a reference to
   * where it is stored once, since every span of a request shares them. Default: the value itself.
   */
  shared?: (value: Record<string, unknown>, what: 'resource' | 'scope') => unknown;
}

export type MappedKind = 'llm.call' | 'tool.call' | 'tool.result' | 'note';

export interface MappedEvent {
  id: string;
  stream: string;
  kind: MappedKind;
  outcome: 'success' | 'error';
  parent?: string;
  action?: string;
  resource?: string;
  data: Record<string, unknown>;
}

const LLM_OPERATIONS = new Set(['chat', 'text_completion', 'generate_content']);
const SPAN_KINDS = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'] as const;
const STATUS_CODES = ['unset', 'ok', 'error'] as const;
/** Stream parts longer than this are replaced by their SHA-256, so a stream stays within 512 characters. */
const MAX_AGENT_PART = 128;
const MAX_SESSION_PART = 256;

export function mapSpans(spans: readonly OtlpSpan[], owner: SpanOwner): MappedEvent[] {
  return spans.flatMap((s) => mapSpan(s, owner));
}

/** The attributes an operation maps into fields of their own, and the field each goes to. */
const LLM_MAPPED = { 'gen_ai.input.messages': 'input', 'gen_ai.output.messages': 'output' } as const;
const TOOL_MAPPED = { 'gen_ai.tool.call.arguments': 'arguments', 'gen_ai.tool.call.result': 'tool.result output' } as const;

export function mapSpan(span: OtlpSpan, owner: SpanOwner): MappedEvent[] {
  const a = span.attributes;
  const op = str(a['gen_ai.operation.name']);
  const base = {
    stream: streamFor(span, owner),
    outcome: span.status?.code === 2 ? ('error' as const) : ('success' as const),
    ...(span.parentSpanId === undefined ? {} : { parent: spanEventId(owner, span.traceId, span.parentSpanId) }),
  };
  const mapped = op !== undefined && LLM_OPERATIONS.has(op) ? LLM_MAPPED : op === 'execute_tool' ? TOOL_MAPPED : {};
  const otlp = spanClaims(span, owner, mapped);
  const durationMs = duration(span);
  const id = spanEventId(owner, span.traceId, span.spanId);
  const error =
    span.status?.code === 2
      ? { error: { message: span.status.message ?? str(a['error.type']) ?? 'The span ended with status ERROR.', ...(str(a['error.type']) ? { name: str(a['error.type']) } : {}) } }
      : {};

  if (op !== undefined && LLM_OPERATIONS.has(op)) {
    const model = str(a['gen_ai.request.model']) ?? str(a['gen_ai.response.model']) ?? '(not given)';
    const usage = pick({ input_tokens: count(a['gen_ai.usage.input_tokens']), output_tokens: count(a['gen_ai.usage.output_tokens']) });
    const finish = a['gen_ai.response.finish_reasons'];
    const output = messages(a['gen_ai.output.messages']);
    const data = pick({
      provider: str(a['gen_ai.provider.name']) ?? str(a['gen_ai.system']),
      model,
      response_model: str(a['gen_ai.response.model']),
      parameters: parameters(a),
      input: messages(a['gen_ai.input.messages']) ?? [],
      output,
      usage: Object.keys(usage).length === 0 ? undefined : usage,
      latency_ms: durationMs,
      stop_reason: Array.isArray(finish) ? finish.map(String).join(',') : str(finish),
      request_id: str(a['gen_ai.response.id']),
      ...error,
      otlp,
    });
    return [{ ...base, id, kind: 'llm.call', action: op, data }];
  }

  if (op === 'execute_tool') {
    const tool = str(a['gen_ai.tool.name']) ?? (span.name === '' ? '(not given)' : span.name);
    const callId = str(a['gen_ai.tool.call.id']);
    const mcpMethod = str(a['mcp.method.name']);
    const call: MappedEvent = {
      ...base,
      outcome: 'success',
      id,
      kind: 'tool.call',
      action: 'execute_tool',
      resource: tool,
      data: pick({ tool, method: mcpMethod, arguments: json(a['gen_ai.tool.call.arguments']) ?? null, tool_call_id: callId, otlp }),
    };
    const result: MappedEvent = {
      stream: base.stream,
      outcome: base.outcome,
      id: spanEventId(owner, span.traceId, span.spanId, 'result'),
      parent: id,
      kind: 'tool.result',
      action: 'execute_tool',
      resource: tool,
      // The whole span rides on the call; the result names it by the call's id (its parent).
      data: pick({ tool, output: json(a['gen_ai.tool.call.result']), is_error: span.status?.code === 2, duration_ms: durationMs, ...error }),
    };
    return [call, result];
  }

  const what = op === undefined ? `OpenTelemetry span ${JSON.stringify(span.name)}` : `OpenTelemetry span ${JSON.stringify(span.name)} (gen_ai.operation.name ${op})`;
  return [{ ...base, id, kind: 'note', ...(op === undefined ? { action: 'otlp.span' } : { action: op }), data: pick({ text: what, level: 'info', ...error, otlp }) }];
}

/**
 * The event id of a span (`part` tells the two events of one execute_tool span apart): UUIDv8
 * (RFC 9562) from HMAC-SHA-256 under the server's per-ledger secret of
 * "witness/otlp/v2" NUL agent NUL trace id NUL span id NUL part. The agent is in it, so two agents
 * sending the same ids never meet; the secret is in it, so no other caller can compute the id to
 * take it first or to probe with a duplicate whether a span was sent.
 */
export function spanEventId(owner: Pick<SpanOwner, 'agent' | 'secret'>, traceId: string, spanId: string, part = 'span'): string {
  const h = createHmac('sha256', owner.secret).update(['witness/otlp/v2', owner.agent, traceId, spanId, part].join('\0')).digest();
  h[6] = (h[6]! & 0x0f) | 0x80;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

const redactor = new Redactor();

export function streamFor(span: OtlpSpan, owner: Pick<SpanOwner, 'agent' | 'secret'>): string {
  const conversation = str(span.attributes['gen_ai.conversation.id']);
  const session = conversation !== undefined && conversation !== '' ? conversation : span.traceId;
  // A conversation id holding what redaction removes (an API key as the session id) would sit in the hashed header for good.
  const named =
    session !== span.traceId && redactor.redactString(session) !== session ? `hmac-${createHmac('sha256', owner.secret).update(`witness/otlp-stream/v1\0${session}`).digest('hex')}` : session;
  return `${otlpStreamPrefix(owner.agent)}${bounded(named, MAX_SESSION_PART)}`;
}

/** The start of every stream OTLP ingest writes for this agent; /v1/events refuses an agent key another agent's. */
export function otlpStreamPrefix(agentId: string): string {
  return `${OTLP_STREAM_PREFIX}${bounded(encodeURIComponent(agentId), MAX_AGENT_PART)}:`;
}

export const OTLP_STREAM_PREFIX = 'otlp:';

function bounded(s: string, max: number): string {
  return s.length <= max ? s : `sha256-${createHash('sha256').update(s).digest('hex')}`;
}

function spanClaims(span: OtlpSpan, owner: SpanOwner, mapped: Readonly<Record<string, string>>): Record<string, unknown> {
  const a = span.attributes;
  let attributes = a;
  const moved: Record<string, string> = {};
  for (const [k, to] of Object.entries(mapped)) if (Object.hasOwn(a, k) && a[k] !== null) moved[k] = to;
  if (Object.keys(moved).length > 0) {
    attributes = {};
    // Defined, not assigned: an attribute named __proto__ stays data.
    for (const [k, v] of Object.entries(a)) if (!Object.hasOwn(moved, k)) Object.defineProperty(attributes, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  const claimedAgent = pick({ id: str(a['gen_ai.agent.id']), name: str(a['gen_ai.agent.name']) });
  return pick({
    trace_id: span.traceId,
    span_id: span.spanId,
    parent_span_id: span.parentSpanId,
    name: span.name,
    kind: SPAN_KINDS[span.kind] ?? String(span.kind),
    start_time_unix_nano: span.startTimeUnixNano,
    end_time_unix_nano: span.endTimeUnixNano,
    status: span.status === undefined ? undefined : pick({ code: STATUS_CODES[span.status.code] ?? String(span.status.code), message: span.status.message }),
    claimed_agent: Object.keys(claimedAgent).length === 0 ? undefined : claimedAgent,
    attributes,
    mapped: Object.keys(moved).length === 0 ? undefined : moved,
    resource: Object.keys(span.resource).length === 0 ? undefined : (owner.shared?.(span.resource, 'resource') ?? span.resource),
    scope: span.scope === undefined ? undefined : (owner.shared?.(span.scope, 'scope') ?? span.scope),
    events: span.events.length === 0 ? undefined : span.events,
    links: span.links.length === 0 ? undefined : span.links,
  });
}

function parameters(a: Record<string, AttrValue>): Record<string, unknown> | undefined {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(a)) if (k.startsWith('gen_ai.request.') && k !== 'gen_ai.request.model') out[k.slice('gen_ai.request.'.length)] = v;
  return Object.keys(out).length === 0 ? undefined : out;
}

/** Messages as the conventions carry them: structured, or a JSON string of them (what most SDKs set). Always an array when present. */
function messages(v: AttrValue | undefined): unknown[] | undefined {
  const parsed = json(v);
  if (parsed === undefined || parsed === null) return undefined;
  return Array.isArray(parsed) ? parsed : [parsed];
}

/** A string that holds JSON, parsed; any other value (or a string that is not JSON) as it is. */
function json(v: AttrValue | undefined): unknown {
  if (typeof v !== 'string') return v;
  const t = v.trim();
  if (!(t.startsWith('{') || t.startsWith('['))) return v;
  try {
    return JSON.parse(t) as unknown;
  } catch {
    return v;
  }
}

function duration(span: OtlpSpan): number | undefined {
  if (span.startTimeUnixNano === undefined || span.endTimeUnixNano === undefined) return undefined;
  const ns = BigInt(span.endTimeUnixNano) - BigInt(span.startTimeUnixNano);
  return ns < 0n ? undefined : Number(ns / 1000n) / 1000;
}

function str(v: AttrValue | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function count(v: AttrValue | undefined): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

/** The object without its undefined fields (the schema's optional fields are absent, not undefined). */
function pick<T extends Record<string, unknown>>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
