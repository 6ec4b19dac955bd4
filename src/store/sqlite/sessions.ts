import type Database from 'better-sqlite3';
import { decodeSessionCursor, encodeSessionCursor } from '../cursor.js';
import type { SessionFilter, SessionPage, SessionPageRequest, SessionSummary } from '../ledger.js';
import { honouredDecision, isHonouredRequest } from '../../core/index.js';
import { SYSTEM_STREAM_PREFIX, sessionLimit } from '../sessions.js';

/**
 * The session list: one row per stream with its counts (`session_index`), and which agents,
 * resources and outcomes each stream has (`session_terms`), both filled after commit by the
 * indexer (indexer.ts) in the transaction that fills the query index, so listing a page reads a
 * few dozen rows instead of grouping a million events. Like the query index they are derived and
 * never on the write path. Unlike it they are updated in place (a session's counts grow), so they
 * are working state, not append-only; `verify` folds the events again and compares (sessionMismatches).
 *
 * How far they got is their own position (`meta.sessions_indexed_upto`), never ahead of the query
 * index, so a ledger another (older) Witness indexed without them is caught up from there, and a
 * list unites the rows with the events after that position (one read snapshot): the answer is the
 * same whether or not the tail has been indexed.
 */
const TABLES = `
CREATE TABLE IF NOT EXISTS session_index (
  stream      TEXT PRIMARY KEY,
  start_ts    TEXT NOT NULL,      -- ts of the first event
  agent       TEXT NOT NULL,      -- agent of the first event
  agents      TEXT NOT NULL,      -- JSON array of every agent that recorded in it
  end_ts      TEXT NOT NULL,      -- ts of the last event indexed
  last_pos    INTEGER NOT NULL,
  events      INTEGER NOT NULL,
  tool_calls  INTEGER NOT NULL,
  denials     INTEGER NOT NULL,
  errors      INTEGER NOT NULL,
  requested   INTEGER NOT NULL,
  approved    INTEGER NOT NULL,
  denied      INTEGER NOT NULL,
  expired     INTEGER NOT NULL,
  ended       INTEGER NOT NULL,
  end_reason  TEXT
) STRICT;

-- Newest first is a walk down this index; the filter columns ride along, so rejected sessions cost no row read.
CREATE INDEX IF NOT EXISTS session_index_start ON session_index (start_ts, stream, end_ts, ended);

-- 'a:<agent>', 'r:<resource>', 'o:<outcome>' for every stream that has one. Keyed by stream first:
-- a filter probes (stream, term) as one lookup, and verify reads the terms stream by stream.
CREATE TABLE IF NOT EXISTS session_terms (
  stream TEXT NOT NULL,
  term   TEXT NOT NULL,
  PRIMARY KEY (stream, term)
) STRICT, WITHOUT ROWID;
`;

const UPTO_KEY = 'sessions_indexed_upto';

/**
 * What a session row is made of, read from each event: its narrow columns and, for approval
 * decisions and session ends only, the one payload field that counts (CASE, not AND: SQLite's AND
 * evaluates both sides, and parsing every payload made a 5,000-event tail cost 22 ms instead of
 * 0.6, measured). For approval records also who recorded them, and for a decision who recorded the
 * request its `parent` names in the same stream (one probe of the id index), from the hashed
 * headers: the counts take only what the rest of Witness honours (core's isHonouredRequest, honouredDecision).
 * Only approval records pay for it: reading a 5,100-event tail took 8 ms with none, and with one
 * event in 25 an approval record 12 ms instead of 8 (fastest of 40, a loaded 2-core machine).
 * A payload or header that is not valid JSON counts as absent: a damaged row is verify's to report,
 * not a reason for listing to fail. Raw rows, in position order.
 */
const EVENT_FACTS = `
SELECT e.pos, e.stream, e.seq, e.ts, e.kind, e.agent, e.resource, e.outcome,
  CASE WHEN e.kind = 'approval.decision' AND json_valid(e.data) THEN json_extract(e.data, '$.decision')
       WHEN e.kind = 'session.end' AND json_valid(e.data) THEN json_extract(e.data, '$.reason') END,
  CASE WHEN e.kind IN ('approval.request', 'approval.decision') THEN
    CASE WHEN json_valid(e.header) THEN json_extract(e.header, '$.recorder.kind') END END,
  CASE WHEN e.kind = 'approval.decision' THEN
    CASE WHEN json_valid(e.header) THEN
      (SELECT CASE WHEN json_valid(p.header) THEN json_extract(p.header, '$.recorder.kind') END FROM events p
       WHERE p.id = json_extract(e.header, '$.parent') AND p.stream = e.stream AND p.kind = 'approval.request') END END
FROM events e WHERE pos >= ? AND pos < ? ORDER BY pos`;

type Fact = [
  pos: number,
  stream: string,
  seq: number,
  ts: string,
  kind: string,
  agent: string,
  resource: string | null,
  outcome: string | null,
  detail: unknown,
  recorder: unknown,
  requestRecorder: unknown,
];

const COUNTS = ['events', 'tool_calls', 'denials', 'errors', 'requested', 'approved', 'denied', 'expired'] as const;
const COLUMNS = ['stream', 'start_ts', 'agent', 'agents', 'end_ts', 'last_pos', ...COUNTS, 'ended', 'end_reason'] as const;

/** One stream's session row (`agents` parsed), as stored or as folded from events. */
interface Agg {
  stream: string;
  start_ts: string;
  agent: string;
  agents: string[];
  end_ts: string;
  last_pos: number;
  events: number;
  tool_calls: number;
  denials: number;
  errors: number;
  requested: number;
  approved: number;
  denied: number;
  expired: number;
  ended: number;
  end_reason: string | null;
}

/** A fold of events: the row parts, plus where the fold began in the stream and the stream's terms. */
interface Folded extends Agg {
  first_pos: number;
  first_seq: number;
  terms: Set<string>;
}

/**
 * Events (in position order) folded per stream: the one definition of every count, used by the
 * indexer for the rows, by a list for the unindexed tail, and by verify to check the rows.
 */
function fold(facts: Iterable<Fact>, into = new Map<string, Folded>()): Map<string, Folded> {
  for (const fact of facts) foldOne(into, fact);
  return into;
}

function foldOne(into: Map<string, Folded>, [pos, stream, seq, ts, kind, agent, resource, outcome, detail, recorder, requestRecorder]: Fact): Folded {
  let a = into.get(stream);
  if (a === undefined) {
    a = {
      stream,
      start_ts: ts,
      agent,
      agents: [],
      end_ts: ts,
      last_pos: pos,
      events: 0,
      tool_calls: 0,
      denials: 0,
      errors: 0,
      requested: 0,
      approved: 0,
      denied: 0,
      expired: 0,
      ended: 0,
      end_reason: null,
      first_pos: pos,
      first_seq: seq,
      terms: new Set(),
    };
    into.set(stream, a);
  }
  a.events++;
  a.end_ts = ts;
  a.last_pos = pos;
  if (!a.agents.includes(agent)) a.agents.push(agent);
  a.terms.add(`a:${agent}`);
  if (resource !== null) a.terms.add(`r:${resource}`);
  if (outcome !== null) a.terms.add(`o:${outcome}`);
  if (kind === 'tool.call') a.tool_calls++;
  if (outcome === 'denied') a.denials++;
  if (kind === 'error' || outcome === 'error') a.errors++;
  if (kind === 'approval.request' && isHonouredRequest(recorder)) a.requested++;
  if (kind === 'approval.decision') {
    const counted = honouredDecision(detail, recorder, { recorder: requestRecorder });
    if (counted !== undefined) a[counted]++;
  }
  if (kind === 'session.end') {
    a.ended = 1;
    if (a.end_reason === null && typeof detail === 'string') a.end_reason = detail;
  }
  return a;
}

/** A stored row followed by a later fold of the same stream: the row keeps its start and first agent. */
function merge(r: Agg, t: Agg): Agg {
  const out: Agg = {
    ...r,
    agents: [...r.agents, ...t.agents.filter((a) => !r.agents.includes(a))],
    end_ts: t.end_ts,
    last_pos: t.last_pos,
    ended: Math.max(r.ended, t.ended),
    end_reason: r.end_reason ?? t.end_reason,
  };
  for (const c of COUNTS) out[c] = r[c] + t[c];
  return out;
}

interface StoredRow extends Omit<Agg, 'agents'> {
  agents: string;
}

function fromStored(r: StoredRow): Agg {
  let agents: unknown;
  try {
    agents = JSON.parse(r.agents);
  } catch {
    agents = undefined;
  }
  return { ...r, agents: Array.isArray(agents) ? agents.filter((a): a is string => typeof a === 'string') : [r.agent] };
}

export function hasSessionIndex(db: Database.Database): boolean {
  return db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'session_index'`).get() !== undefined;
}

/**
 * Which rule folded the rows (`meta.sessions_fold`): none (an older Witness) counted every approval
 * record whoever wrote it; 2 counts only what the rest of Witness honours (core's isHonouredRequest,
 * honouredDecision). Rows folded by another rule are not this Witness's to read, list or check.
 */
const FOLD_KEY = 'sessions_fold';
export const SESSIONS_FOLD = 2;

function foldOf(db: Database.Database): number | undefined {
  const v = db.prepare(`SELECT value FROM meta WHERE key = '${FOLD_KEY}'`).pluck().get() as string | undefined;
  return v === undefined ? undefined : Number(v);
}

/** Whether the session rows exist and were folded by this Witness's rule. */
function hasCurrentRows(db: Database.Database): boolean {
  return hasSessionIndex(db) && foldOf(db) === SESSIONS_FOLD;
}

/**
 * Creates the session tables when missing (a ledger written before them), empty, for the indexer
 * to fill from position 0; under the write lock and checked again inside it. Only a writer does:
 * a reader lists from the events themselves until a writer has opened the file. Adding them needs
 * no new schema version: an older Witness ignores them, and their own position tells this one
 * where to pick up.
 *
 * Rows an older Witness folded by another rule (FOLD_KEY) are emptied the same way and refolded
 * by the indexer from position 0, as for a ledger that had none; until then a list unites nothing
 * with the whole tail, which gives the same answer, and verify checks no rows. The events are not
 * touched, so the ledger verifies as before. An older Witness that goes on writing the file after
 * this folds its new events by its own rule into the rows, which verify then reports as
 * index_mismatch: upgrade every writer of a file together.
 */
export function ensureSessionIndex(db: Database.Database): void {
  if (hasCurrentRows(db)) return;
  db.transaction(() => {
    if (hasCurrentRows(db)) return;
    if (hasSessionIndex(db)) {
      db.exec('DELETE FROM session_index; DELETE FROM session_terms;');
      db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run('sessions_refolded_at', new Date().toISOString());
    } else db.exec(TABLES);
    db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(UPTO_KEY, '0');
    db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(FOLD_KEY, String(SESSIONS_FOLD));
  }).immediate();
}

interface Statements {
  upto: Database.Statement;
  setUpto: Database.Statement;
  facts: Database.Statement;
  row: Database.Statement;
  put: Database.Statement;
  term: Database.Statement;
}

const compiled = new WeakMap<Database.Database, Statements>();

function statementsFor(db: Database.Database): Statements | null {
  const known = compiled.get(db);
  if (known !== undefined) return known;
  // A ledger without the tables, or with rows another rule folded (a reader opened it before any
  // writer created or refolded them), is looked at again next time rather than remembered so.
  if (!hasCurrentRows(db)) return null;
  const s: Statements = {
    upto: db.prepare(`SELECT CAST(value AS INTEGER) FROM meta WHERE key = '${UPTO_KEY}'`).pluck(),
    setUpto: db.prepare(`UPDATE meta SET value = ? WHERE key = '${UPTO_KEY}'`),
    facts: db.prepare(EVENT_FACTS).raw(true),
    row: db.prepare('SELECT * FROM session_index WHERE stream = ?'),
    put: db.prepare(
      `INSERT INTO session_index (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map((c) => `@${c}`).join(', ')})
       ON CONFLICT (stream) DO UPDATE SET ${COLUMNS.filter((c) => c !== 'stream')
         .map((c) => `${c} = excluded.${c}`)
         .join(', ')}`,
    ),
    term: db.prepare('INSERT OR IGNORE INTO session_terms (stream, term) VALUES (?, ?)'),
  };
  compiled.set(db, s);
  return s;
}

/** How far the session rows reach (0 when there are none). */
export function sessionsIndexedUpto(db: Database.Database): number {
  const s = statementsFor(db);
  return s === null ? 0 : Number(s.upto.get() ?? 0);
}

/**
 * Inside the indexer's IMMEDIATE transaction: folds at most `limit` events after the session
 * rows' end, and never past `indexEnd` (the query index's end, which stops before a missing
 * event), into the session rows. Returns how many events it folded.
 */
export function indexSessionsLocked(db: Database.Database, indexEnd: number, limit: number): number {
  const s = statementsFor(db);
  if (s === null) return 0;
  const from = Number(s.upto.get() ?? 0);
  const to = Math.min(indexEnd, from + limit);
  if (to <= from) return 0;
  for (const t of fold(s.facts.all(from, to) as Fact[]).values()) {
    const stored = s.row.get(t.stream) as StoredRow | undefined;
    const next = stored === undefined ? t : merge(fromStored(stored), t);
    s.put.run({ ...pick(next), agents: JSON.stringify(next.agents) });
    for (const term of t.terms) s.term.run(t.stream, term);
  }
  s.setUpto.run(String(to));
  return to - from;
}

/**
 * Inside the retention purge's transaction (purge.ts): folds the given streams again from their
 * events below the rows' end, after payloads were erased, so the fields a row takes from a payload
 * (an approval's decision, a session.end's reason) no longer hold what was purged, and verify's
 * fold of the events agrees with the rows. Only rows that exist are rewritten; terms come from
 * headers and do not change.
 */
export function refoldSessionsLocked(db: Database.Database, streams: Iterable<string>): void {
  const s = statementsFor(db);
  if (s === null) return;
  const upto = Number(s.upto.get() ?? 0);
  const facts = db.prepare(`${EVENT_FACTS.replace('WHERE pos >= ? AND pos < ? ORDER BY pos', 'WHERE stream = ? AND pos < ? ORDER BY pos')}`).raw(true);
  for (const stream of streams) {
    if (s.row.get(stream) === undefined) continue;
    const folded = fold(facts.all(stream, upto) as Fact[]).get(stream);
    if (folded !== undefined) s.put.run({ ...pick(folded), agents: JSON.stringify(folded.agents) });
  }
}

function pick(a: Agg): Agg {
  const out = {} as Record<string, unknown>;
  for (const c of COLUMNS) out[c] = a[c];
  return out as unknown as Agg;
}

/**
 * Streams whose session row or terms disagree with their events below the rows' end, as the
 * position of the stream's first event (or, for a row or term of no stream, the rows' end): a row
 * is working state, updated in place, so a forged one would make the list hide a denial or an
 * agent's session although every event verifies. One pass over the events' narrow columns in
 * position order; a session is compared, and forgotten, at its session.end (nothing may follow
 * it), so memory holds the sessions open at a time, not the ledger's (verify's peak heap is a
 * benchmarked target). Reading each stream's events on its own instead was 4× slower (12 s
 * against 3 s on 1,000,000 events, measured).
 */
export function sessionMismatches(db: Database.Database, limit: number): number[] {
  const s = statementsFor(db);
  if (s === null) return [];
  const upto = Number(s.upto.get() ?? 0);
  const rowOf = db.prepare('SELECT * FROM session_index WHERE stream = ?');
  const termsOf = db.prepare('SELECT term FROM session_terms WHERE stream = ?').pluck();
  const bad = new Set<number>();
  let rowsSeen = 0;
  let termsSeen = 0;
  const check = (w: Folded) => {
    const stored = rowOf.get(w.stream) as StoredRow | undefined;
    const terms = termsOf.all(w.stream) as string[];
    if (stored !== undefined) rowsSeen++;
    termsSeen += terms.length;
    const got = stored === undefined ? undefined : fromStored(stored);
    const same =
      got !== undefined &&
      COLUMNS.every((c) => (c === 'agents' ? JSON.stringify([...got.agents].sort()) === JSON.stringify([...w.agents].sort()) : got[c] === w[c])) &&
      terms.length === w.terms.size &&
      terms.every((t) => w.terms.has(t));
    if (!same) bad.add(w.first_pos);
  };
  const open = new Map<string, Folded>();
  for (const fact of s.facts.iterate(0, upto) as IterableIterator<Fact>) {
    const w = foldOne(open, fact);
    if (w.ended === 1) {
      check(w);
      open.delete(w.stream);
    }
  }
  for (const w of open.values()) check(w);
  // Rows or terms for no stream below the rows' end: more of them than the streams accounted for.
  const rows = db.prepare('SELECT count(*) FROM session_index').pluck().get() as number;
  const terms = db.prepare('SELECT count(*) FROM session_terms').pluck().get() as number;
  if (rows > rowsSeen || terms > termsSeen) bad.add(upto);
  return [...bad].sort((a, b) => a - b).slice(0, limit);
}

// ------------------------------------------------------------------ listing

const MAX_POS = 2n ** 63n - 1n;

interface ListedRow extends StoredRow {
  m_agent: number;
  m_resource: number;
  m_outcome: number;
}

/**
 * One page of sessions, in one read snapshot: the indexed rows that pass the filter, or that the
 * unindexed tail touches (whose filter may still come true there), merged with the tail's own
 * fold and filtered again, plus the sessions that start in the tail. Fetching `limit + 1 +`
 * (tail sessions) indexed rows is enough: only those can fail the second filter.
 */
export function listSessionsSqlite(db: Database.Database, filter: SessionFilter, page: SessionPageRequest, cache: (sql: string) => Database.Statement): SessionPage {
  const limit = sessionLimit(page.limit);
  const cursor = page.cursor === undefined ? undefined : decodeSessionCursor(page.cursor);
  return db.transaction(() => {
    const upto = sessionsIndexedUpto(db);
    const tail = fold(cache(EVENT_FACTS).raw(true).all(upto, MAX_POS) as Fact[]);
    const rows: ListedRow[] = statementsFor(db) === null ? [] : indexedRows(filter, cursor, limit + 1 + tail.size, [...tail.keys()], cache);
    const candidates: SessionSummary[] = [];
    const seen = new Set<string>();
    const termIn = (t: Folded | undefined, term: string, indexed: boolean) => indexed || t?.terms.has(term) === true;
    const keep = (s: SessionSummary, t: Folded | undefined, m: { agent: boolean; resource: boolean; outcome: boolean }) =>
      (filter.agent === undefined || termIn(t, `a:${filter.agent}`, m.agent)) &&
      (filter.resource === undefined || termIn(t, `r:${filter.resource}`, m.resource)) &&
      (filter.outcome === undefined || termIn(t, `o:${filter.outcome}`, m.outcome)) &&
      (filter.since === undefined || s.end >= filter.since) &&
      (filter.ended === undefined || s.ended === filter.ended);
    for (const r of rows) {
      seen.add(r.stream);
      const t = tail.get(r.stream);
      const stored = fromStored(r);
      const s = summary(t === undefined ? stored : merge(stored, t));
      if (keep(s, t, { agent: r.m_agent === 1, resource: r.m_resource === 1, outcome: r.m_outcome === 1 })) candidates.push(s);
    }
    // Sessions whose first event is in the tail have no row yet.
    for (const t of tail.values()) {
      if (seen.has(t.stream) || t.first_seq !== 0 || t.stream.startsWith(SYSTEM_STREAM_PREFIX)) continue;
      if (filter.session !== undefined && t.stream !== filter.session) continue;
      const s = summary(t);
      if (filter.until !== undefined && !(s.start < filter.until)) continue;
      if (cursor !== undefined && !before(s, cursor)) continue;
      if (keep(s, t, { agent: false, resource: false, outcome: false })) candidates.push(s);
    }
    candidates.sort((a, b) => (a.start === b.start ? cmp(b.stream, a.stream) : cmp(b.start, a.start)));
    const sessions = candidates.slice(0, limit);
    const last = sessions[sessions.length - 1];
    return candidates.length > limit && last !== undefined ? { sessions, next: encodeSessionCursor(last.start, last.stream) } : { sessions };
  })();
}

function indexedRows(filter: SessionFilter, cursor: { start: string; stream: string } | undefined, fetch: number, tailStreams: string[], cache: (sql: string) => Database.Statement): ListedRow[] {
  const where = [`substr(s.stream, 1, ${SYSTEM_STREAM_PREFIX.length}) <> '${SYSTEM_STREAM_PREFIX}'`];
  const args: unknown[] = [];
  // One session: its row by the primary key, whatever else the filter says.
  if (filter.session !== undefined) {
    where.push('s.stream = ?');
    args.push(filter.session);
  }
  if (filter.until !== undefined) {
    where.push('s.start_ts < ?');
    args.push(filter.until);
  }
  if (cursor !== undefined) {
    // A range on start_ts plus a tie-break, so the walk seeks to the cursor instead of starting over.
    where.push('s.start_ts <= ? AND (s.start_ts < ? OR s.stream < ?)');
    args.push(cursor.start, cursor.start, cursor.stream);
  }
  // An ended session stays ended whatever the tail adds; an open one may end in the tail.
  if (filter.ended === false) where.push('s.ended = 0');
  const term = (t: string | undefined) => (t === undefined ? '1' : 'EXISTS (SELECT 1 FROM session_terms t WHERE t.stream = s.stream AND t.term = ?)');
  const termArgs = [filter.agent, filter.resource, filter.outcome].flatMap((v, i) => (v === undefined ? [] : [`${'aro'[i]}:${v}`]));
  // What the tail can still make true: an agent, resource or outcome it adds, a later last event, an end.
  const relaxed: string[] = [];
  const relaxedArgs: unknown[] = [];
  if (filter.agent !== undefined) relaxed.push('m_agent');
  if (filter.resource !== undefined) relaxed.push('m_resource');
  if (filter.outcome !== undefined) relaxed.push('m_outcome');
  if (filter.since !== undefined) {
    relaxed.push('s.end_ts >= ?');
    relaxedArgs.push(filter.since);
  }
  if (filter.ended === true) relaxed.push('s.ended = 1');
  if (relaxed.length > 0) {
    where.push(`(${relaxed.join(' AND ')}${tailStreams.length > 0 ? ' OR s.stream IN (SELECT value FROM json_each(?))' : ''})`);
    args.push(...relaxedArgs);
    if (tailStreams.length > 0) args.push(JSON.stringify(tailStreams));
  }
  const sql =
    `SELECT * FROM (SELECT s.*, ${term(filter.agent)} AS m_agent, ${term(filter.resource)} AS m_resource, ${term(filter.outcome)} AS m_outcome FROM session_index s)` +
    ` s WHERE ${where.join(' AND ')} ORDER BY s.start_ts DESC, s.stream DESC LIMIT ?`;
  return cache(sql).all(...termArgs, ...args, fetch) as ListedRow[];
}

function summary(r: Agg): SessionSummary {
  const others = r.agents.filter((a) => a !== r.agent).sort();
  return {
    stream: r.stream,
    agents: [r.agent, ...others],
    start: r.start_ts,
    end: r.end_ts,
    ended: r.ended === 1,
    ...(r.end_reason === null || r.ended !== 1 ? {} : { endReason: r.end_reason }),
    events: r.events,
    toolCalls: r.tool_calls,
    denials: r.denials,
    errors: r.errors,
    approvals: { requested: r.requested, approved: r.approved, denied: r.denied, expired: r.expired },
  };
}

/** Whether `s` sorts after the cursor in newest-first order. */
function before(s: SessionSummary, c: { start: string; stream: string }): boolean {
  return s.start < c.start || (s.start === c.start && cmp(s.stream, c.stream) < 0);
}

/** UTF-8 byte order, as SQLite's BINARY collation compares ids (JavaScript's < compares UTF-16 units). */
function cmp(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
