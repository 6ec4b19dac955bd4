export { recordAnthropic } from './anthropic.js';
export { recordOpenAI } from './openai.js';
export { toolCallParent } from './record-call.js';
export * from './otlp.js';
// witness/ai and witness/langchain are subpath exports only: they load the AI SDK or LangChain at run time.
export * from './hooks/index.js';
export type { ExportableEvent, OtlpProtocol, OtlpSenderOptions, SpanContextOptions } from './otlp-export.js';
export type { FollowOptions, FollowSource } from './otlp-export-follow.js';
/** OTLP export, loaded only when asked for: the OpenTelemetry exporter is large, and `witness hook` starts once per tool call. */
export const loadOtlpExport = () => import('./otlp-export.js');
export const loadOtlpFollow = () => import('./otlp-export-follow.js');
