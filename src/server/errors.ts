import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { WitnessError, type ErrorCode } from '../core/index.js';

/** The JSON every refusal answers with: a stable code to branch on and one sentence for a person. */
export interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

/** WitnessError codes as HTTP statuses, in this one place; anything unlisted is a 500. */
const STATUS: Partial<Record<ErrorCode, ContentfulStatusCode>> = {
  invalid_argument: 400,
  invalid_event: 400,
  invalid_json: 400,
  not_serialisable: 400,
  invalid_proof: 400,
  payload_too_large: 413,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  immutable: 409,
  store_readonly: 503,
  store_unavailable: 503,
  store_locked: 503,
  closed: 503,
};

export function statusFor(code: string): ContentfulStatusCode {
  return STATUS[code as ErrorCode] ?? 500;
}

export function errorBody(code: string, message: string, details?: Record<string, unknown>): ErrorBody {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

export function errorResponse(c: Context, code: string, message: string, status: ContentfulStatusCode = statusFor(code), details?: Record<string, unknown>): Response {
  return c.json(errorBody(code, message, details), status);
}

/**
 * The one error edge: a WitnessError keeps its code and sentence; a body over the limit is a 413;
 * anything else is a bug in Witness, answered in one sentence without internals and reported to
 * `onInternal` (the server's log).
 */
export function toErrorResponse(c: Context, e: unknown, onInternal?: (e: unknown) => void): Response {
  if (e instanceof WitnessError) return errorResponse(c, e.code, withoutFilePaths(e.message), statusFor(e.code), pickDetails(e));
  if (e instanceof HTTPException && e.status === 413) return payloadTooLarge(c);
  if (e instanceof HTTPException) return errorResponse(c, e.status === 401 ? 'unauthorized' : 'invalid_argument', e.message || 'The request was refused.', e.status as ContentfulStatusCode);
  onInternal?.(e);
  return errorResponse(c, 'internal', 'The server failed unexpectedly; the failure is logged, and the request can be retried.', 500);
}

export function payloadTooLarge(c: Context, limit?: number): Response {
  const size = limit === undefined ? '' : ` of ${limit.toLocaleString('en-US')} bytes`;
  return errorResponse(c, 'payload_too_large', `The request body is over this route's limit${size}; send smaller batches.`, 413);
}

/**
 * An absolute file path of two or more segments (`/var/lib/witness/witness.db`), not inside a
 * word or URL. Store errors name the ledger by its location, which for SQLite is the server's file
 * path: an API client is told the sentence without it. API paths (`/v1/...`) are kept, and a
 * PostgreSQL location is already shown without its password.
 */
const FILE_PATH = /(?<![\w.~:/@-])\/(?:[\w.@~+-]+\/)+[\w.@~+-]*[\w~+-]/g;
const API_PATH = /^\/v\d+\//;

/** The message with every server file path replaced by "[path withheld]". */
export function withoutFilePaths(message: string): string {
  return message.replace(FILE_PATH, (p) => (API_PATH.test(p) ? p : '[path withheld]'));
}

function pickDetails(e: WitnessError): Record<string, unknown> | undefined {
  // Details name fields, streams and positions; nothing in them is a secret.
  return e.details;
}
