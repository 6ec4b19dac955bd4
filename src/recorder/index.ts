export { RECORDER_VERSION, Witness, ledgerOf, openWitness, systemWriter, type SystemRecorderKind, type SystemWriter } from './witness.js';
export { Session, type CaptureShot, type ToolCapturer, type EndInput, type EventFields, type LlmCallInput, type SessionInit, type ToolOptions } from './session.js';
export { BUILTIN_PATTERNS, BUILTIN_SECRET_KEYS, HEADER_TEXT_FIELDS, Redactor, type RedactionConfig, type RedactionRule } from './redact.js';
export { WitnessOptions, type ParsedWitnessOptions, type WitnessOptionsInput } from './options.js';
export { BatchWriter, type BatchWriterOptions } from './writer.js';
export { EVIDENCE_STREAM, recordVideo, type RenderedVideo } from './evidence.js';
