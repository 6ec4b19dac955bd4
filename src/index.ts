/**
 * The SDK facade. Named exports only; nothing here may load heavy optional parts (pg, Chromium):
 * test/sdk-surface.test.ts proves it (pg is not a dependency yet).
 */
export { openWitness, Witness, Session, Redactor } from './recorder/index.js';
export type { CaptureShot, EndInput, EventFields, LlmCallInput, SessionInit, ToolCapturer, ToolOptions, WitnessOptionsInput, RedactionRule } from './recorder/index.js';
export { Capturer, CaptureBrowser } from './capture/index.js';
export type { CaptureSpecInput } from './capture/index.js';
export { WitnessError, isWitnessError, EVENT_KINDS } from './core/index.js';
export type { ErrorCode, EventHeader, EventInput, EventKind, StoredEvent, VerifyReport, Failure } from './core/index.js';
export { openLedger, verifyLedger } from './store/index.js';
export type { Ledger, LedgerReader, OpenLedgerOptions, QueryFilter, QueryPage } from './store/index.js';
