import type { Root } from 'protobufjs';

/**
 * The messages of OTLP's ExportTraceServiceRequest (opentelemetry-proto v1:
 * opentelemetry/proto/collector/trace/v1/trace_service.proto, trace/v1/trace.proto,
 * common/v1/common.proto, resource/v1/resource.proto), transcribed as a protobufjs JSON
 * descriptor with their field numbers and types, so an auditor can check them against the
 * .proto files. opentelemetry-proto is Copyright The OpenTelemetry Authors, Apache License 2.0
 * (see LICENSE-opentelemetry-proto.md beside this file). Fields Witness does not read (entity
 * refs, profiles) are left out; protobuf skips unknown fields, so a newer exporter still decodes.
 */
export const OTLP_TRACE_DESCRIPTOR = {
  nested: {
    AnyValue: {
      oneofs: { value: { oneof: ['stringValue', 'boolValue', 'intValue', 'doubleValue', 'arrayValue', 'kvlistValue', 'bytesValue'] } },
      fields: {
        stringValue: { type: 'string', id: 1 },
        boolValue: { type: 'bool', id: 2 },
        intValue: { type: 'int64', id: 3 },
        doubleValue: { type: 'double', id: 4 },
        arrayValue: { type: 'ArrayValue', id: 5 },
        kvlistValue: { type: 'KeyValueList', id: 6 },
        bytesValue: { type: 'bytes', id: 7 },
      },
    },
    ArrayValue: { fields: { values: { rule: 'repeated', type: 'AnyValue', id: 1 } } },
    KeyValueList: { fields: { values: { rule: 'repeated', type: 'KeyValue', id: 1 } } },
    KeyValue: { fields: { key: { type: 'string', id: 1 }, value: { type: 'AnyValue', id: 2 } } },
    InstrumentationScope: {
      fields: {
        name: { type: 'string', id: 1 },
        version: { type: 'string', id: 2 },
        attributes: { rule: 'repeated', type: 'KeyValue', id: 3 },
        droppedAttributesCount: { type: 'uint32', id: 4 },
      },
    },
    Resource: {
      fields: {
        attributes: { rule: 'repeated', type: 'KeyValue', id: 1 },
        droppedAttributesCount: { type: 'uint32', id: 2 },
      },
    },
    ExportTraceServiceRequest: { fields: { resourceSpans: { rule: 'repeated', type: 'ResourceSpans', id: 1 } } },
    ExportTraceServiceResponse: { fields: { partialSuccess: { type: 'ExportTracePartialSuccess', id: 1 } } },
    ExportTracePartialSuccess: { fields: { rejectedSpans: { type: 'int64', id: 1 }, errorMessage: { type: 'string', id: 2 } } },
    ResourceSpans: {
      fields: {
        resource: { type: 'Resource', id: 1 },
        scopeSpans: { rule: 'repeated', type: 'ScopeSpans', id: 2 },
        schemaUrl: { type: 'string', id: 3 },
      },
    },
    ScopeSpans: {
      fields: {
        scope: { type: 'InstrumentationScope', id: 1 },
        spans: { rule: 'repeated', type: 'Span', id: 2 },
        schemaUrl: { type: 'string', id: 3 },
      },
    },
    Span: {
      fields: {
        traceId: { type: 'bytes', id: 1 },
        spanId: { type: 'bytes', id: 2 },
        traceState: { type: 'string', id: 3 },
        parentSpanId: { type: 'bytes', id: 4 },
        flags: { type: 'fixed32', id: 16 },
        name: { type: 'string', id: 5 },
        kind: { type: 'int32', id: 6 },
        startTimeUnixNano: { type: 'fixed64', id: 7 },
        endTimeUnixNano: { type: 'fixed64', id: 8 },
        attributes: { rule: 'repeated', type: 'KeyValue', id: 9 },
        droppedAttributesCount: { type: 'uint32', id: 10 },
        events: { rule: 'repeated', type: 'SpanEvent', id: 11 },
        droppedEventsCount: { type: 'uint32', id: 12 },
        links: { rule: 'repeated', type: 'SpanLink', id: 13 },
        droppedLinksCount: { type: 'uint32', id: 14 },
        status: { type: 'Status', id: 15 },
      },
    },
    SpanEvent: {
      fields: {
        timeUnixNano: { type: 'fixed64', id: 1 },
        name: { type: 'string', id: 2 },
        attributes: { rule: 'repeated', type: 'KeyValue', id: 3 },
        droppedAttributesCount: { type: 'uint32', id: 4 },
      },
    },
    SpanLink: {
      fields: {
        traceId: { type: 'bytes', id: 1 },
        spanId: { type: 'bytes', id: 2 },
        traceState: { type: 'string', id: 3 },
        attributes: { rule: 'repeated', type: 'KeyValue', id: 4 },
        droppedAttributesCount: { type: 'uint32', id: 5 },
        flags: { type: 'fixed32', id: 6 },
      },
    },
    // SpanKind and StatusCode are enums in the .proto; read as int32, their wire form, and named in otlp-map.ts.
    Status: { fields: { message: { type: 'string', id: 2 }, code: { type: 'int32', id: 3 } } },
  },
};

// Loaded on the first request, not when the integrations module is imported (the CLI imports it, and `witness hook` must start fast).
let root: Promise<Root> | undefined;
function otlpRoot(): Promise<Root> {
  root ??= import('protobufjs/light.js').then((m) => m.default.Root.fromJSON(OTLP_TRACE_DESCRIPTOR));
  return root;
}

/**
 * The request's bytes as the OTLP/JSON object form (lowerCamelCase fields, 64-bit integers as
 * decimal strings, ids as lowercase hex), so both encodings go through one reader (otlp/request.ts).
 * Rejects with protobufjs's error on bytes that are not such a message.
 */
export async function decodeTraceRequest(bytes: Uint8Array): Promise<unknown> {
  const Request = (await otlpRoot()).lookupType('ExportTraceServiceRequest');
  const message = Request.decode(bytes);
  const obj = Request.toObject(message, { longs: String, bytes: Array, defaults: false, arrays: true, oneofs: false });
  return hexIds(obj);
}

/** Spans refused one by one while the rest of the request was written (OTLP's partial success). */
export interface TracePartialSuccess {
  rejectedSpans: number;
  errorMessage: string;
}

/**
 * ExportTraceServiceResponse as protobuf. Everything accepted: no partial_success, so no field set,
 * which protobuf encodes as zero bytes. Some spans refused: partial_success with rejected_spans and
 * error_message, as the OTLP spec requires of a server that accepts only part of a request
 * (https://opentelemetry.io/docs/specs/otlp/#partial-success-1).
 */
export async function encodeTraceResponse(partial?: TracePartialSuccess): Promise<Uint8Array> {
  if (partial === undefined) return new Uint8Array(0);
  const Response = (await otlpRoot()).lookupType('ExportTraceServiceResponse');
  return Response.encode(Response.fromObject({ partialSuccess: { rejectedSpans: partial.rejectedSpans, errorMessage: partial.errorMessage } })).finish();
}

/** The same response in OTLP/JSON: int64 as a decimal string (the proto3 JSON mapping OTLP/JSON follows). */
export function traceResponseJson(partial?: TracePartialSuccess): Record<string, unknown> {
  return partial === undefined ? {} : { partialSuccess: { rejectedSpans: String(partial.rejectedSpans), errorMessage: partial.errorMessage } };
}

const ID_FIELDS = new Set(['traceId', 'spanId', 'parentSpanId']);

/** Ids to hex (as OTLP/JSON writes them); other bytes (an attribute's bytesValue) to base64, as proto3 JSON does. */
function hexIds(v: unknown, key?: string): unknown {
  if (Array.isArray(v)) {
    if (key !== undefined && ID_FIELDS.has(key)) return Buffer.from(v as number[]).toString('hex');
    if (key === 'bytesValue') return Buffer.from(v as number[]).toString('base64');
    return v.map((x) => hexIds(x));
  }
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = hexIds(x, k);
    return out;
  }
  return v;
}
