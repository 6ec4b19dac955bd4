import os from 'node:os';
import path from 'node:path';
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { WitnessError, type ErrorCode } from '../core/index.js';
import { SEAL_RECORD_ENV, SIGNING_KEY_FILE_ENV, sidecarPaths, type LedgerInfo } from '../store/index.js';
import { approverKeysDir } from './approver-keys.js';
import { keyringKeyPath } from './keyring-key.js';

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
export function toErrorResponse(c: Context, e: unknown, onInternal?: (e: unknown) => void, locations: readonly string[] = []): Response {
  if (e instanceof WitnessError) return errorResponse(c, e.code, withoutServerPaths(e.message, locations), statusFor(e.code), pickDetails(e));
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

const WITHHELD = '[path withheld]';

/**
 * The files and folders of this server's ledger that the store's refusals can name: the SQLite
 * file as given and resolved, its sidecars (signing key, public key, seal record, artifacts) and
 * folder, the signing-key and seal-record files set by environment, the API-key signing key, the
 * approver keys' folder and the exports folder. A PostgreSQL location is a URL already shown
 * without its password, and is kept.
 */
export function serverLocations(info: Pick<LedgerInfo, 'id' | 'location'>, env: NodeJS.ProcessEnv = process.env): string[] {
  const out = new Set<string>();
  const add = (p: string | undefined) => {
    const t = p?.trim();
    if (t === undefined || t === '') return;
    out.add(t);
    out.add(path.resolve(t));
  };
  if (!/^postgres(?:ql)?:\/\//i.test(info.location) && info.location !== ':memory:') {
    for (const file of [info.location, path.resolve(info.location)]) {
      add(file);
      for (const side of Object.values(sidecarPaths(file))) add(side);
    }
    add(path.dirname(path.resolve(info.location)));
  }
  add(env[SIGNING_KEY_FILE_ENV]);
  add(env[SEAL_RECORD_ENV]);
  add(keyringKeyPath(info, env));
  add(approverKeysDir(info, undefined, env));
  add(path.resolve('witness-exports'));
  add(path.join(os.homedir(), '.witness'));
  // Never a folder so short that replacing it would eat ordinary text ("/", "/v1").
  return [...out].filter((p) => (path.isAbsolute(p) ? p.split('/').filter((s) => s !== '').length >= 2 : p.length >= 3)).sort((a, b) => b.length - a.length);
}

/**
 * The message with the server's own locations (serverLocations) replaced exactly, longest first,
 * so a folder whose name has spaces is hidden whole; then any other absolute path by the pattern
 * (withoutFilePaths), which cannot know where a name with spaces ends.
 */
export function withoutServerPaths(message: string, locations: readonly string[]): string {
  let out = message;
  for (const loc of locations) if (out.includes(loc)) out = out.split(loc).join(WITHHELD);
  return withoutFilePaths(out).replace(/(?:\[path withheld\])+/g, WITHHELD);
}
