import { WitnessError, type StoredEvent } from '../../core/index.js';
import type { QueryFilter, SessionFilter } from '../../store/index.js';
import type { RouteContext } from '../context.js';
import { errorResponse } from '../errors.js';
import { isSystemStream, maskEvent } from '../mask.js';
import type { EventSearchQuery, SessionEventsQuery, SessionListQuery } from '../schemas.js';
import type { z } from 'zod';

type Stored = StoredEvent & { pos: number };

/** An event as this caller may see it: developers get the masked copy (mask.ts). */
export function view(ctx: RouteContext, e: Stored): Stored {
  return ctx.caller?.role === 'developer' ? maskEvent(e) : e;
}

/**
 * Witness's own streams (who read what, key records) are not a developer's: to a developer they
 * answer as if absent. Masking their payload is not enough, since their header names the reader,
 * the session read and the key.
 */
export function hiddenFrom(ctx: RouteContext, stream: string): boolean {
  return ctx.caller?.role === 'developer' && isSystemStream(stream);
}

/**
 * Header fields a developer sees masked (mask.ts keeps only fields Witness writes itself): a filter
 * on one would confirm the value the mask hides ("which sessions touched mailto:jane@…"), so it is
 * refused, naming the field.
 */
export function refuseMaskedFilters(ctx: RouteContext, query: Partial<Record<'resource' | 'action', unknown>>): void {
  if (ctx.caller?.role !== 'developer') return;
  for (const field of ['resource', 'action'] as const) {
    if (query[field] !== undefined) {
      throw new WitnessError('invalid_argument', `A developer may not filter on ${field}, which developers see masked; filter by agent, kind, outcome, time or text instead.`, {
        details: { path: field },
      });
    }
  }
}

/** At most this many events are read to answer one free-text search page (see `search`). */
export const TEXT_SCAN_LIMIT = 10_000;

/**
 * GET /v1/events. The store has no text index, so `q` filters the store's pages here: pages are
 * read with as many events as matches are still wanted (so the page's `next` is exactly where
 * this answer stops), until the page is full, the ledger ends, or TEXT_SCAN_LIMIT events were
 * read. A page with fewer matches than `limit` and a `next` means "keep going", not "the end".
 * A developer's search runs over the masked events, so it cannot confirm a masked value.
 */
export async function search(ctx: RouteContext<unknown, z.infer<typeof EventSearchQuery>>): Promise<Response> {
  const q = ctx.query;
  refuseMaskedFilters(ctx, q);
  if (q.session !== undefined && hiddenFrom(ctx, q.session)) {
    return errorResponse(ctx.c, 'not_found', `No session ${JSON.stringify(q.session)} is recorded; list sessions with GET /v1/sessions.`);
  }
  const limit = q.limit ?? 50;
  const filter: QueryFilter = {};
  for (const k of ['agent', 'kind', 'resource', 'action', 'outcome', 'since', 'until', 'cursor'] as const) {
    if (q[k] !== undefined) filter[k] = q[k];
  }
  if (q.session !== undefined) filter.stream = q.session;
  if (q.since !== undefined && q.until !== undefined && q.since >= q.until) {
    throw new WitnessError('invalid_argument', 'since must be before until; swap them or widen the window.', { details: { path: 'since' } });
  }
  let events: Stored[];
  let next: string | undefined;
  if (q.q === undefined) {
    const page = await ctx.ledger.query({ ...filter, limit });
    events = page.events.filter((e) => !hiddenFrom(ctx, e.stream)).map((e) => view(ctx, e));
    next = page.next;
  } else {
    const needle = q.q.toLowerCase();
    events = [];
    let scanned = 0;
    let cursor = filter.cursor;
    for (;;) {
      const want = limit - events.length;
      const page = await ctx.ledger.query({ ...filter, limit: want, ...(cursor === undefined ? {} : { cursor }) });
      scanned += page.events.length;
      for (const e of page.events) {
        if (hiddenFrom(ctx, e.stream)) continue;
        const seen = view(ctx, e);
        if (textOf(seen).includes(needle)) events.push(seen);
      }
      next = page.next;
      if (next === undefined || events.length >= limit || scanned >= TEXT_SCAN_LIMIT) break;
      cursor = next;
    }
  }
  await ctx.recordAccess({ count: events.length });
  return ctx.c.json(next === undefined ? { events } : { events, next });
}

/** What free text is matched against: tool names and arguments, requested tool calls, resource and action. */
function textOf(e: Stored): string {
  const d = e.data ?? {};
  const parts: unknown[] = [e.resource, e.action, d['tool'], d['server'], d['arguments'], d['tool_calls']];
  return parts
    .filter((p) => p !== undefined && p !== null)
    .map((p) => (typeof p === 'string' ? p : JSON.stringify(p)))
    .join('\n')
    .toLowerCase();
}

export async function getEvent(ctx: RouteContext<{ id: string }>): Promise<Response> {
  const e = await ctx.ledger.getEvent(ctx.params.id);
  if (e === undefined || hiddenFrom(ctx, e.stream)) return errorResponse(ctx.c, 'not_found', `No event has id ${ctx.params.id}; check the id, or search with GET /v1/events.`);
  await ctx.recordAccess({ count: 1, resource: e.stream });
  return ctx.c.json(view(ctx, e));
}

/** Events per page of GET /v1/sessions/:stream when the caller names no limit. */
export const SESSION_PAGE = 200;

/**
 * GET /v1/sessions/:stream, a page at a time: an agent can make a session arbitrarily long, so
 * it is never read whole. A page is the store's `readStreamPage` (its (stream, seq) index), in seq
 * order, which is the chain's order and what a session's timeline means (recorded times are a
 * client's claim and may run backwards). Pages read while the session grows miss and repeat
 * nothing.
 */
export async function getSession(ctx: RouteContext<{ stream: string }, z.infer<typeof SessionEventsQuery>>): Promise<Response> {
  const { stream } = ctx.params;
  const { limit = SESSION_PAGE, cursor } = ctx.query;
  if (hiddenFrom(ctx, stream)) return errorResponse(ctx.c, 'not_found', `No session ${JSON.stringify(stream)} is recorded; list sessions with GET /v1/sessions.`);
  const page = await ctx.ledger.readStreamPage(stream, { limit, fromSeq: cursor === undefined ? 0 : decodeSeqCursor(cursor) });
  if (page.events.length === 0 && cursor === undefined) {
    return errorResponse(ctx.c, 'not_found', `No session ${JSON.stringify(stream)} is recorded; list sessions with GET /v1/sessions.`);
  }
  await ctx.recordAccess({ count: page.events.length, resource: stream });
  const events = page.events.map((e) => view(ctx, e));
  return ctx.c.json(page.nextSeq === undefined ? { stream, events } : { stream, events, next: encodeSeqCursor(page.nextSeq) });
}

/**
 * A session page's cursor: base64url of `{"seq":n}`, the next seq to read. An object, where the
 * store's event and session cursors are arrays, so that none of them is taken for another
 * (`["seq", 200]` would read as an event cursor's (ts, pos)).
 */
function encodeSeqCursor(seq: number): string {
  return Buffer.from(JSON.stringify({ seq })).toString('base64url');
}

function decodeSeqCursor(cursor: string): number {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    v = undefined;
  }
  const seq = v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 1 ? (v as { seq?: unknown }).seq : undefined;
  if (typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0) return seq;
  throw new WitnessError('invalid_argument', "The cursor is not one this session's pages issued; pass the `next` of the previous page of this session unchanged.", { details: { path: 'cursor' } });
}

/** GET /v1/sessions: the store's session listing (`Ledger.listSessions`), newest first, with counts. */
export async function listSessions(ctx: RouteContext<unknown, z.infer<typeof SessionListQuery>>): Promise<Response> {
  const { limit, cursor, ...rest } = ctx.query;
  refuseMaskedFilters(ctx, rest);
  const filter: SessionFilter = {};
  for (const k of ['agent', 'resource', 'outcome', 'since', 'until', 'ended'] as const) {
    if (rest[k] !== undefined) (filter as Record<string, unknown>)[k] = rest[k];
  }
  if (filter.since !== undefined && filter.until !== undefined && filter.since >= filter.until) {
    throw new WitnessError('invalid_argument', 'since must be before until; swap them or widen the window.', { details: { path: 'since' } });
  }
  const page = await ctx.ledger.listSessions(filter, { ...(limit === undefined ? {} : { limit }), ...(cursor === undefined ? {} : { cursor }) });
  await ctx.recordAccess({ count: page.sessions.length });
  return ctx.c.json(page);
}
