import { z } from 'zod';

/** A request Witness refuses as malformed (400): one sentence saying what is wrong. */
export class OtlpRequestError extends Error {
  constructor(
    message: string,
    readonly path?: string,
  ) {
    super(message);
    this.name = 'OtlpRequestError';
  }
}

/** An attribute value as JSON: strings, booleans, numbers (an int64 beyond 2^53 as its decimal string), arrays, objects, bytes as base64. */
export type AttrValue = string | boolean | number | null | AttrValue[] | { [key: string]: AttrValue };

/** One span as Witness reads it, from either encoding. */
export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  /** SpanKind's number (0 unspecified … 5 consumer). */
  kind: number;
  startTimeUnixNano?: string;
  endTimeUnixNano?: string;
  attributes: Record<string, AttrValue>;
  status?: { code: number; message?: string };
  events: Array<{ name: string; timeUnixNano?: string; attributes: Record<string, AttrValue> }>;
  links: Array<{ traceId: string; spanId: string; attributes: Record<string, AttrValue> }>;
  resource: Record<string, AttrValue>;
  scope?: { name?: string; version?: string };
}

// Nesting of arrays and key-value lists inside one attribute: deeper is refused, never recursed into without end.
const MAX_DEPTH = 16;

const int64 = z.union([z.string().regex(/^-?\d{1,20}$/), z.number().int()]);
const uint64 = z.union([z.string().regex(/^\d{1,20}$/), z.number().int().nonnegative()]);
const KeyValue = z.object({ key: z.string(), value: z.unknown().optional() });
const Attributes = z.array(KeyValue).optional();
const SpanDoc = z.object({
  traceId: z.string(),
  spanId: z.string(),
  parentSpanId: z.string().optional(),
  name: z.string().optional(),
  kind: z.number().int().min(0).max(5).optional(),
  startTimeUnixNano: uint64.optional(),
  endTimeUnixNano: uint64.optional(),
  attributes: Attributes,
  status: z.object({ code: z.number().int().min(0).max(2).optional(), message: z.string().optional() }).optional(),
  events: z.array(z.object({ name: z.string().optional(), timeUnixNano: uint64.optional(), attributes: Attributes })).optional(),
  links: z.array(z.object({ traceId: z.string(), spanId: z.string(), attributes: Attributes })).optional(),
});
const RequestDoc = z.object({
  resourceSpans: z
    .array(
      z.object({
        resource: z.object({ attributes: Attributes }).optional(),
        scopeSpans: z.array(z.object({ scope: z.object({ name: z.string().optional(), version: z.string().optional() }).optional(), spans: z.array(z.unknown()).optional() })).optional(),
      }),
    )
    .optional(),
});

/**
 * The spans of an ExportTraceServiceRequest in its OTLP/JSON object form (the JSON body as parsed,
 * or the protobuf as decoded by proto.ts). Throws OtlpRequestError naming the first thing wrong:
 * ids that are not hex of the right length, an attribute key given twice (which value would be
 * the claim?), nesting deeper than 16.
 */
export function readTraceRequest(doc: unknown): OtlpSpan[] {
  const r = RequestDoc.safeParse(doc);
  if (!r.success) throw new OtlpRequestError(`The body is not an OTLP ExportTraceServiceRequest (${issue(r.error)}).`);
  const spans: OtlpSpan[] = [];
  r.data.resourceSpans?.forEach((rs, i) => {
    const resource = attributes(rs.resource?.attributes, `resourceSpans[${i}].resource.attributes`);
    rs.scopeSpans?.forEach((ss, j) => {
      // One object per scope, like the resource, so what every span shares can be stored once (by identity).
      const scope = ss.scope === undefined ? undefined : { ...(ss.scope.name ? { name: ss.scope.name } : {}), ...(ss.scope.version ? { version: ss.scope.version } : {}) };
      ss.spans?.forEach((raw, k) => {
        const at = `resourceSpans[${i}].scopeSpans[${j}].spans[${k}]`;
        const p = SpanDoc.safeParse(raw);
        if (!p.success) throw new OtlpRequestError(`${at} is not an OTLP span (${issue(p.error)}).`, at);
        const s = p.data;
        const parent = s.parentSpanId === undefined || s.parentSpanId === '' ? undefined : hexId(s.parentSpanId, 16, `${at}.parentSpanId`);
        spans.push({
          traceId: hexId(s.traceId, 32, `${at}.traceId`),
          spanId: hexId(s.spanId, 16, `${at}.spanId`),
          ...(parent === undefined ? {} : { parentSpanId: parent }),
          name: s.name ?? '',
          kind: s.kind ?? 0,
          ...(s.startTimeUnixNano === undefined ? {} : { startTimeUnixNano: String(s.startTimeUnixNano) }),
          ...(s.endTimeUnixNano === undefined ? {} : { endTimeUnixNano: String(s.endTimeUnixNano) }),
          attributes: attributes(s.attributes, `${at}.attributes`),
          ...(s.status === undefined ? {} : { status: { code: s.status.code ?? 0, ...(s.status.message ? { message: s.status.message } : {}) } }),
          events: (s.events ?? []).map((e, n) => ({
            name: e.name ?? '',
            ...(e.timeUnixNano === undefined ? {} : { timeUnixNano: String(e.timeUnixNano) }),
            attributes: attributes(e.attributes, `${at}.events[${n}].attributes`),
          })),
          links: (s.links ?? []).map((l, n) => ({
            traceId: hexId(l.traceId, 32, `${at}.links[${n}].traceId`),
            spanId: hexId(l.spanId, 16, `${at}.links[${n}].spanId`),
            attributes: attributes(l.attributes, `${at}.links[${n}].attributes`),
          })),
          resource,
          ...(scope === undefined ? {} : { scope }),
        });
      });
    });
  });
  return spans;
}

function issue(e: z.ZodError): string {
  const first = e.issues[0];
  return first === undefined ? 'unreadable' : `${first.path.join('.') || 'body'}: ${first.message}`;
}

/** OTLP/JSON writes ids as hex (not base64, unlike proto3 JSON); an all-zero id is invalid. */
function hexId(v: string, length: number, at: string): string {
  const id = v.toLowerCase();
  if (id.length !== length || !/^[0-9a-f]+$/.test(id) || /^0+$/.test(id)) throw new OtlpRequestError(`${at} must be ${length} hex digits, not all zero.`, at);
  return id;
}

function attributes(list: Array<{ key: string; value?: unknown }> | undefined, at: string): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const [i, kv] of (list ?? []).entries()) {
    if (Object.hasOwn(out, kv.key)) throw new OtlpRequestError(`${at}[${i}] repeats the attribute key ${JSON.stringify(kv.key)}; each key may appear once.`, `${at}[${i}]`);
    put(out, kv.key, anyValue(kv.value, `${at}[${i}].value`, 0));
  }
  return out;
}

function anyValue(v: unknown, at: string, depth: number): AttrValue {
  if (depth > MAX_DEPTH) throw new OtlpRequestError(`${at} nests arrays or key-value lists deeper than ${MAX_DEPTH}.`, at);
  if (v === undefined || v === null) return null;
  if (typeof v !== 'object' || Array.isArray(v)) throw new OtlpRequestError(`${at} must be an AnyValue object.`, at);
  const o = v as Record<string, unknown>;
  if (typeof o['stringValue'] === 'string') return o['stringValue'];
  if (typeof o['boolValue'] === 'boolean') return o['boolValue'];
  if (o['intValue'] !== undefined) {
    const r = int64.safeParse(o['intValue']);
    if (!r.success) throw new OtlpRequestError(`${at}.intValue must be a 64-bit integer.`, at);
    const n = Number(r.data);
    return Number.isSafeInteger(n) ? n : String(r.data);
  }
  if (typeof o['doubleValue'] === 'number') return o['doubleValue'];
  // proto3 JSON writes NaN and the infinities as strings; kept as written.
  if (typeof o['doubleValue'] === 'string') return o['doubleValue'];
  if (typeof o['bytesValue'] === 'string') return o['bytesValue'];
  const arr = o['arrayValue'] as { values?: unknown } | undefined;
  if (arr !== undefined) {
    const values = arr.values ?? [];
    if (!Array.isArray(values)) throw new OtlpRequestError(`${at}.arrayValue.values must be an array.`, at);
    return values.map((x, i) => anyValue(x, `${at}.arrayValue.values[${i}]`, depth + 1));
  }
  const kvl = o['kvlistValue'] as { values?: unknown } | undefined;
  if (kvl !== undefined) {
    const values = kvl.values ?? [];
    if (!Array.isArray(values)) throw new OtlpRequestError(`${at}.kvlistValue.values must be an array.`, at);
    const out: Record<string, AttrValue> = {};
    for (const [i, kv] of values.entries()) {
      const p = KeyValue.safeParse(kv);
      if (!p.success) throw new OtlpRequestError(`${at}.kvlistValue.values[${i}] must be a key and a value.`, at);
      if (Object.hasOwn(out, p.data.key)) throw new OtlpRequestError(`${at}.kvlistValue repeats the key ${JSON.stringify(p.data.key)}.`, at);
      put(out, p.data.key, anyValue(p.data.value, `${at}.kvlistValue.values[${i}].value`, depth + 1));
    }
    return out;
  }
  // An empty AnyValue (no field set) is OTLP's null.
  if (Object.keys(o).length === 0) return null;
  throw new OtlpRequestError(`${at} has no value field OTLP defines.`, at);
}

/** Defines rather than assigns, so a key named `__proto__` is kept as data and never sets the object's prototype. */
function put(out: Record<string, AttrValue>, key: string, value: AttrValue): void {
  Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
}
