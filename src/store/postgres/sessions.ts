import { decodeSessionCursor, encodeSessionCursor } from '../cursor.js';
import type { SessionFilter, SessionPage, SessionPageRequest, SessionSummary } from '../ledger.js';
import { EXPIRY_RECORDER, HONOURED_REQUEST_RECORDERS, PERSON_DECISION_RECORDERS } from '../../core/index.js';
import { SYSTEM_STREAM_PREFIX, sessionLimit } from '../sessions.js';

/**
 * The session list over `events` alone, with no table of its own (PostgreSQL maintains the
 * indexes used here on the write path; nothing is added to it). Two plans, by filter:
 *
 * - No agent, resource or outcome: one statement walks the streams' first events (seq = 0) newest
 *   first down the (ts, pos) index, checks the other filters per candidate through the (stream,
 *   seq) index and `stream_heads`, and counts only the page's sessions, each by one walk of its
 *   own events. Open sessions only (ended = false) are the streams `stream_heads` (one row per
 *   stream) has not ended, looked up one by one, so a page of the few open ones walks nothing.
 * - An agent, resource or outcome: that column's (column, ts, pos) index is walked newest first in
 *   growing steps (pgDrivenWalkSql), and the streams met are the candidates. A stream not met yet
 *   has all such events older than the last one read, so its start is too: once the page is full
 *   of candidates that started after that event, no stream not met can come before them. This
 *   rests on no event being dated before its session's first event, which holds for every event
 *   the recorder and gateway stamp; an event a caller dates earlier by hand can leave its session
 *   off a filtered page here (the SQLite driver, which keeps rows per session, does not rely on it).
 *
 * Both read one snapshot (REPEATABLE READ), so a page is consistent whatever is appended meanwhile.
 * The cost is the page's events plus what the filter reads, never the ledger's size, except where
 * a filter matches few sessions among many (PostgreSQL then walks far). A partial index on the
 * first events, `CREATE INDEX events_session_start ON events (ts, stream) WHERE seq = 0`, turns the
 * walk over the newest events into one over the newest sessions; the statements are written so
 * that PostgreSQL uses it once it exists.
 */
export function pgSessionsSql(filter: SessionFilter, page: SessionPageRequest, candidates?: { streams: string[]; after?: string }): { sql: string; args: unknown[]; limit: number } {
  const limit = sessionLimit(page.limit);
  const args: unknown[] = [];
  const arg = (v: unknown) => {
    args.push(v);
    return `$${args.length}`;
  };
  const where = ['e.seq = 0', 'e.pos >= 0', `left(e.stream, ${SYSTEM_STREAM_PREFIX.length}) <> ${arg(SYSTEM_STREAM_PREFIX)}`];
  // Candidates found by a driven walk are looked up by the (stream, seq) index, one each.
  if (candidates !== undefined) where.push(`e.stream = ANY(${arg(candidates.streams)}::text[])`);
  // One session: its first event by the (stream, seq) index, whatever else the filter says.
  if (filter.session !== undefined) where.push(`e.stream = ${arg(filter.session)}`);
  if (candidates?.after !== undefined) where.push(`e.ts > ${arg(candidates.after)}`);
  if (filter.until !== undefined) where.push(`e.ts < ${arg(filter.until)}`);
  if (page.cursor !== undefined) {
    const c = decodeSessionCursor(page.cursor);
    where.push(`(e.ts, e.stream) < (${arg(c.start)}, ${arg(c.stream)})`);
  }
  const has = (col: string, v: string | undefined) => {
    if (v !== undefined) where.push(`EXISTS (SELECT 1 FROM events f WHERE f.stream = e.stream AND f.${col} = ${arg(v)} AND f.pos >= 0)`);
  };
  has('agent', filter.agent);
  has('resource', filter.resource);
  has('outcome', filter.outcome);
  if (filter.since !== undefined) where.push(`(SELECT l.ts FROM events l WHERE l.stream = e.stream ORDER BY l.seq DESC LIMIT 1) >= ${arg(filter.since)}`);
  if (filter.ended !== undefined) where.push(`EXISTS (SELECT 1 FROM stream_heads h WHERE h.stream = e.stream AND h.ended = ${arg(filter.ended)})`);
  // Only the approval records the rest of Witness honours (core's isHonouredRequest and
  // honouredDecision, which the SQLite fold calls; the contract suite holds this SQL to the same
  // answers), read from the hashed headers: the request a decision's parent names is one probe of
  // the id index, and only for the session's decisions.
  const recorderOf = (alias: string) => `(${alias}.header::jsonb -> 'recorder' ->> 'kind')`;
  const anyOf = (kinds: readonly string[]) => `ANY(${arg([...kinds])}::text[])`;
  const honouredRequest = `EXISTS (SELECT 1 FROM events q WHERE q.id = (f.header::jsonb ->> 'parent') AND q.stream = f.stream AND q.kind = 'approval.request' AND q.pos >= 0 AND ${recorderOf('q')} = ${anyOf(HONOURED_REQUEST_RECORDERS)})`;
  const decision = (d: 'approved' | 'denied' | 'expired') =>
    `count(*) FILTER (WHERE f.kind = 'approval.decision' AND f.data::jsonb ->> 'decision' = '${d}' AND ${recorderOf('f')} = ${d === 'expired' ? arg(EXPIRY_RECORDER) : anyOf(PERSON_DECISION_RECORDERS)} AND ${honouredRequest})::int`;
  const sql = `
WITH s AS (
  SELECT e.stream, e.ts AS start_ts, e.agent FROM events e
  WHERE ${where.join(' AND ')}
  ORDER BY e.ts DESC, e.stream DESC LIMIT ${arg(limit + 1)}
)
SELECT s.stream, s.start_ts, s.agent, l.ts AS end_ts, a.* FROM s
CROSS JOIN LATERAL (
  SELECT count(*)::int AS events,
    count(*) FILTER (WHERE f.kind = 'tool.call')::int AS tool_calls,
    count(*) FILTER (WHERE f.outcome = 'denied')::int AS denials,
    count(*) FILTER (WHERE f.kind = 'error' OR f.outcome = 'error')::int AS errors,
    count(*) FILTER (WHERE f.kind = 'approval.request' AND ${recorderOf('f')} = ${anyOf(HONOURED_REQUEST_RECORDERS)})::int AS requested,
    ${decision('approved')} AS approved, ${decision('denied')} AS denied, ${decision('expired')} AS expired,
    bool_or(f.kind = 'session.end') AS ended,
    max(CASE WHEN f.kind = 'session.end' THEN f.data::jsonb ->> 'reason' END) AS end_reason,
    array_agg(DISTINCT f.agent) AS agents
  FROM events f WHERE f.stream = s.stream AND f.pos >= 0
) a
CROSS JOIN LATERAL (SELECT l.ts FROM events l WHERE l.stream = s.stream ORDER BY l.seq DESC LIMIT 1) l
ORDER BY s.start_ts DESC, s.stream DESC`;
  return { sql, args, limit };
}

/** The columns whose index can drive a walk, most selective first (an agent's sessions are usually a few among many). */
const DRIVERS = ['agent', 'outcome', 'resource'] as const;

export function drivenColumn(filter: SessionFilter): { col: (typeof DRIVERS)[number]; value: string } | undefined {
  for (const col of DRIVERS) {
    const value = filter[col];
    if (value !== undefined) return { col, value };
  }
  return undefined;
}

/** The newest `$2` events with `col` = `$1`, newest first: the (col, ts, pos) index walked backward. */
export function pgDrivenWalkSql(col: (typeof DRIVERS)[number]): string {
  return `SELECT stream, ts FROM events WHERE ${col} = $1 AND pos >= 0 ORDER BY ts DESC, pos DESC LIMIT $2`;
}

export interface PgSessionRow {
  stream: string;
  start_ts: string;
  agent: string;
  end_ts: string;
  events: number;
  tool_calls: number;
  denials: number;
  errors: number;
  requested: number;
  approved: number;
  denied: number;
  expired: number;
  ended: boolean;
  end_reason: string | null;
  agents: string[];
}

export function pgSessionPage(rows: PgSessionRow[], limit: number): SessionPage {
  const sessions = rows.slice(0, limit).map(summary);
  const last = sessions[sessions.length - 1];
  return rows.length > limit && last !== undefined ? { sessions, next: encodeSessionCursor(last.start, last.stream) } : { sessions };
}

function summary(r: PgSessionRow): SessionSummary {
  return {
    stream: r.stream,
    agents: [r.agent, ...r.agents.filter((a) => a !== r.agent).sort()],
    start: r.start_ts,
    end: r.end_ts,
    ended: r.ended,
    ...(r.end_reason === null || !r.ended ? {} : { endReason: r.end_reason }),
    events: r.events,
    toolCalls: r.tool_calls,
    denials: r.denials,
    errors: r.errors,
    approvals: { requested: r.requested, approved: r.approved, denied: r.denied, expired: r.expired },
  };
}
