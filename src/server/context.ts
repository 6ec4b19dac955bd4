import type { Context } from 'hono';
import type { z } from 'zod';
import type { Ledger } from '../store/index.js';
import type { AccessOperation } from './access.js';
import type { Caller, KeyRing } from './keys.js';
import type { ServerMetrics } from './metrics.js';
import type { Role } from './roles.js';

/** What every handler gets: the request, the caller, the parsed inputs and the server's parts. */
export interface RouteContext<P = unknown, Q = unknown, B = unknown> {
  c: Context;
  /** Undefined only on public routes. */
  caller: Caller | undefined;
  params: P;
  query: Q;
  body: B;
  ledger: Ledger;
  keys: KeyRing;
  metrics: ServerMetrics;
  /** The peer address, for access records. */
  from: string;
  /**
   * Records this read as `audit.access` (for people; an agent's reads are not audit reads), with
   * how much it returned and what it was about. The route runner records one for every route that
   * declares `access` and whose handler did not.
   */
  recordAccess(detail?: { count?: number; resource?: string }): Promise<void>;
}

/** One row of the route table. */
export interface RouteSpec {
  method: 'GET' | 'POST';
  /** Hono path syntax (`/v1/events/:id`). */
  path: string;
  /** Who may call it; `public` needs no key. Anything not listed is refused. */
  roles: readonly Role[] | 'public';
  summary: string;
  params?: z.ZodType;
  query?: z.ZodType;
  /** The body as validated (JSON). */
  body?: z.ZodType;
  /** The body as documented, when validation is looser than the documentation (ingest checks each event itself). */
  bodyDoc?: z.ZodType;
  /** Largest body accepted, in bytes (default 64 KiB). */
  maxBodyBytes?: number;
  response: z.ZodType;
  /** Content type of a success when not JSON. */
  produces?: string;
  /** Refusals and failures of this route are counted as ingest errors in /metrics. */
  countsIngest?: boolean;
  /**
   * A viewer page: a person's session cookie authenticates it (an API key still does, for
   * scripts), refusals are HTML pages, a GET without either redirects to sign-in, and a form
   * posted with the cookie must carry the session's CSRF token (csrf.ts).
   */
  page?: boolean;
  /** An API route that a person's session cookie also authenticates (artifacts, for <img> and <video>). */
  acceptsSession?: boolean;
  /** A person's call is an audit read, recorded as `audit.access` with this operation. */
  access?: AccessOperation;
  // Method syntax: each handler narrows the parsed inputs to its own schemas.
  handler(ctx: RouteContext): Promise<Response>;
}
