import type Database from 'better-sqlite3';
import { translateSqliteError } from './errors.js';
import { indexSessionsLocked, sessionMismatches } from './sessions.js';

/**
 * Filling the query index (`event_index`, schema.ts) after commit, off the recording path.
 *
 * How far it got is max(pos) + 1 of the index itself, read and extended inside one IMMEDIATE
 * transaction per chunk, so a call is idempotent, a crash between chunks loses nothing, and two
 * processes indexing the same ledger take turns under SQLite's write lock without double work.
 * Queries never need it to be current: they unite the index with the rows after it (query.ts).
 */

/**
 * Rows per transaction: the write lock is held while a chunk is copied and its six indexes are
 * updated, and a recording process waits for that lock, so chunks stay short (about 10 ms each
 * measured on this machine for 2,000 rows).
 */
const CHUNK = 2_000;

interface IndexerStatements {
  upto: Database.Statement;
  copy: Database.Statement;
  chunk: (from: number, limit: number) => { indexed: number; upto: number; sessions: number };
}

const compiled = new WeakMap<Database.Database, IndexerStatements | null>();

function statementsFor(db: Database.Database): IndexerStatements | null {
  let s = compiled.get(db);
  if (s !== undefined) return s;
  const hasIndex = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'event_index'`).get() !== undefined;
  if (!hasIndex) {
    // A version-1 ledger opened read-only: there is no index to fill, queries use v1's indexes.
    s = null;
  } else {
    const upto = db.prepare('SELECT coalesce(max(pos) + 1, 0) FROM event_index').pluck();
    const copy = db.prepare(
      `INSERT INTO event_index (pos, ts, agent, kind, resource, action, outcome)
       SELECT pos, ts, agent, kind, resource, action, outcome FROM events WHERE pos >= ? AND pos < ? ORDER BY pos`,
    );
    const positions = db.prepare('SELECT pos FROM events WHERE pos >= ? ORDER BY pos LIMIT ?').pluck();
    const chunk = db.transaction((_from: number, limit: number) => {
      // Read again under the write lock: another process may have indexed since the caller looked.
      const from = upto.get() as number;
      // The index only grows contiguously (its trigger): stop before a missing event, which verify
      // reports; queries read the events from there on from the table itself, so they stay right.
      const next = positions.all(from, limit) as number[];
      let end = from;
      while (end - from < next.length && next[end - from] === end) end++;
      const indexed = end === from ? 0 : copy.run(from, end).changes;
      const now = indexed === 0 ? from : (upto.get() as number);
      // The session rows (sessions.ts) in the same transaction, up to the index's end and no further.
      return { indexed, upto: now, sessions: indexSessionsLocked(db, now, limit) };
    }).immediate;
    s = { upto, copy, chunk };
  }
  compiled.set(db, s);
  return s;
}

/** The first position the query index does not cover yet (0 for a v1 ledger, which has none). */
export function indexedUpto(db: Database.Database): number {
  const s = statementsFor(db);
  return s === null ? 0 : (s.upto.get() as number);
}

/**
 * Copies the filter columns of events not yet in the query index into it, and folds them into the
 * session rows, in short IMMEDIATE transactions of at most 2,000 rows each, until both are current
 * or `maxRows` rows were added.
 * Returns how many rows this call added and the first position still unindexed. On a read-only
 * connection, or a version-1 ledger opened read-only, it adds nothing.
 */
export function indexTail(db: Database.Database, maxRows = Number.POSITIVE_INFINITY): { indexed: number; upto: number } {
  try {
    const s = statementsFor(db);
    if (s === null) return { indexed: 0, upto: 0 };
    if (db.readonly) return { indexed: 0, upto: s.upto.get() as number };
    let indexed = 0;
    let upto = s.upto.get() as number;
    // Rows of either kind count against maxRows: the session rows may lag the index (a ledger
    // indexed before they existed) and catch up here too, in the same bounded steps.
    let done = 0;
    while (done < maxRows) {
      const limit = Math.min(CHUNK, maxRows - done);
      const r = s.chunk(upto, limit);
      indexed += r.indexed;
      upto = r.upto;
      done += Math.max(r.indexed, r.sessions);
      if (r.indexed < limit && r.sessions < limit) break;
    }
    return { indexed, upto };
  } catch (e) {
    throw translateSqliteError(e, db.name);
  }
}

/**
 * Positions (at most `limit`, ascending) where the query index disagrees with the events it copies
 * — a column that differs, an event below the index's end (its max(pos) + 1: queries take the
 * events from there on from the table itself) that has no row, which every query would miss, or a
 * row for no event. Rows for no event are looked for outside the events' positions only: inside
 * them a missing event is a gap, which verify reports as the events' own failure (and then leaves
 * the index alone). One pass over the events joined to the index by position and two range seeks:
 * 0.5 µs an event on 200k (CPU time, measured), against 1.2 for a pass over each table.
 * `verify` checks the events' columns against their hashed headers; this is the same duty one step
 * further, since a forged index row (its triggers dropped) would make queries lie about events that
 * themselves verify. Empty for a version-1 ledger, which has no index.
 */
export function indexMismatches(db: Database.Database, limit = 10): number[] {
  try {
    if (statementsFor(db) === null) return [];
    const rows = db
      .prepare(
        `SELECT e.pos FROM events e LEFT JOIN event_index x ON x.pos = e.pos
         WHERE CASE WHEN x.pos IS NULL THEN e.pos < (SELECT coalesce(max(pos) + 1, 0) FROM event_index)
                    ELSE x.ts IS NOT e.ts OR x.agent IS NOT e.agent OR x.kind IS NOT e.kind
                      OR x.resource IS NOT e.resource OR x.action IS NOT e.action OR x.outcome IS NOT e.outcome END
         UNION SELECT pos FROM event_index WHERE pos < (SELECT coalesce(min(pos), 0) FROM events)
         UNION SELECT pos FROM event_index WHERE pos > (SELECT coalesce(max(pos), -1) FROM events)
         ORDER BY 1 LIMIT ?`,
      )
      .pluck()
      .all(limit) as number[];
    // The session list's rows are derived from the events too, and checked the same way.
    return [...new Set([...rows, ...sessionMismatches(db, limit)])].sort((a, b) => a - b).slice(0, limit);
  } catch (e) {
    throw translateSqliteError(e, db.name);
  }
}
