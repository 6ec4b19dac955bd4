// OTLP trace ingest's pure parts, for the server's POST /v1/traces: decoding (protobuf and JSON) and the GenAI mapping.
export { decodeTraceRequest, encodeTraceResponse, traceResponseJson, OTLP_TRACE_DESCRIPTOR, type TracePartialSuccess } from './otlp/proto.js';
export { OtlpRequestError, readTraceRequest, type AttrValue, type OtlpSpan } from './otlp/request.js';
export { OTLP_STREAM_PREFIX, mapSpan, mapSpans, otlpStreamPrefix, spanEventId, streamFor, type MappedEvent, type MappedKind, type SpanOwner } from './otlp-map.js';
