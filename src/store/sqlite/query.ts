import type Database from 'better-sqlite3';
import { WitnessError, type StoredEvent } from '../../core/index.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import {
  streamPageArgs,
  streamPageOf,
  type KindScanRequest,
  type KindScanRow,
  type QueryFilter,
  type QueryPage,
  type RawEventRow,
  type SessionFilter,
  type SessionPage,
  type SessionPageRequest,
  type StreamPage,
  type StreamPageRequest,
  type VerifyScanRow,
} from '../ledger.js';
import { SqliteAppend } from './append.js';
import { indexMismatches } from './indexer.js';
import { listSessionsSqlite } from './sessions.js';

/** The largest position SQLite stores, as the open upper bound of a verify scan. */
const MAX_POS = 2n ** 63n - 1n;

/** Positions start at 0: a row below was put there behind the driver's back and is not served (see querySql). */
const STREAM_PAGE_SQL = 'SELECT * FROM events WHERE stream = ? AND seq >= ? AND +pos >= 0 ORDER BY seq LIMIT ?';

type ScanTuple = [number, string, string, number, string, string, string, string | null, string | null, string | null, string, string | null, string | null, string];

/** Reading events: by id, by stream, by filter with a cursor, and raw rows in position order for verification. */
export abstract class SqliteQuery extends SqliteAppend {
  /** Query shapes are few (one per combination of filters), so their statements are kept. */
  protected cachedStatement(sql: string): Database.Statement {
    let stmt = this.queryStatements.get(sql);
    if (stmt === undefined) {
      stmt = this.db.prepare(sql);
      this.queryStatements.set(sql, stmt);
    }
    return stmt;
  }

  // ------------------------------------------------------------------ read

  async getEvent(id: string): Promise<(StoredEvent & { pos: number }) | undefined> {
    this.assertOpen();
    const row = this.read(() => this.stmts.byId.get(id) as RawEventRow | undefined);
    return row === undefined ? undefined : toStored(row);
  }

  async readStream(stream: string): Promise<Array<StoredEvent & { pos: number }>> {
    this.assertOpen();
    return this.read(() => this.stmts.byStream.all(stream) as RawEventRow[]).map(toStored);
  }

  async readStreamPage(stream: string, page: StreamPageRequest = {}): Promise<StreamPage> {
    this.assertOpen();
    const { fromSeq, limit } = streamPageArgs(stream, page);
    // On events itself, not the query index: appends keep (stream, seq) unique, so this is one
    // seek and a walk of limit + 1 index entries, and nothing waits on the indexer.
    const rows = this.read(() => this.cachedStatement(STREAM_PAGE_SQL).all(stream, fromSeq, limit + 1) as RawEventRow[]);
    return streamPageOf(rows.map(toStored), limit);
  }

  async query(filter: QueryFilter): Promise<QueryPage> {
    this.assertOpen();
    const limit = Math.min(Math.max(filter.limit ?? 100, 1), 10_000);
    const { sql, args: all } = querySql(filter, limit + 1, this.info.schemaVersion);
    const rows = this.read(() => this.cachedStatement(sql).all(...all) as RawEventRow[]);
    const more = rows.length > limit;
    const page = rows.slice(0, limit).map(toStored);
    const last = page[page.length - 1];
    return more && last !== undefined ? { events: page, next: encodeCursor(last.ts, last.pos) } : { events: page };
  }

  async scanKind(request: KindScanRequest): Promise<KindScanRow[]> {
    this.assertOpen();
    const { limit, terms } = kindScanTerms(request);
    const columns = (p: string) => `${p}pos, ${p}id, ${p}ts, ${p}agent, ${p}data, ${request.header === 'always' ? `${p}header` : `CASE WHEN ${p}data IS NULL THEN ${p}header END AS header`}`;
    if (this.info.schemaVersion < 2) {
      // A version-1 ledger opened read-only has no query index: its filters are indexed on events.
      const { where, args } = terms('');
      return this.read(() => this.cachedStatement(`SELECT ${columns('')} FROM events WHERE ${where} AND +pos >= 0 ORDER BY ts, pos LIMIT ?`).all(...args, limit) as KindScanRow[]);
    }
    // The query index and the tail it has not reached, as two statements in one read transaction
    // (one snapshot, as querySql's UNION ALL is), merged here; the tail is usually empty, and as
    // one UNION ALL SQLite sorted every page in temp B-trees even then.
    const x = terms('x.');
    const t = terms('');
    const indexed = this.cachedStatement(`SELECT ${columns('e.')} FROM event_index x CROSS JOIN events e ON e.pos = x.pos WHERE ${x.where} AND +e.pos >= 0 ORDER BY x.ts, x.pos LIMIT ?`);
    const tail = this.cachedStatement(`SELECT ${columns('')} FROM events WHERE pos >= ? AND ${t.where} ORDER BY ts, pos LIMIT ?`);
    const indexEnd = this.cachedStatement('SELECT coalesce(max(pos) + 1, 0) AS n FROM event_index');
    return this.read(() =>
      this.db.transaction(() => {
        const end = (indexEnd.get() as { n: number }).n;
        const rows = indexed.all(...x.args, limit) as KindScanRow[];
        const after = tail.all(end, ...t.args, limit) as KindScanRow[];
        if (after.length === 0) return rows;
        return [...rows, ...after].sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : a.pos - b.pos)).slice(0, limit);
      })(),
    );
  }

  async listSessions(filter: SessionFilter = {}, page: SessionPageRequest = {}): Promise<SessionPage> {
    this.assertOpen();
    return this.read(() => listSessionsSqlite(this.db, filter, page, (sql) => this.cachedStatement(sql)));
  }

  async *scan(fromPos = 0, pageSize = 5000): AsyncIterable<RawEventRow[]> {
    yield* this.scanSync(fromPos, pageSize);
  }

  /** Synchronous scan for the verifier's hot loop (no promise per page). */
  *scanSync(fromPos = 0, pageSize = 5000): Iterable<RawEventRow[]> {
    this.assertOpen();
    let pos = fromPos;
    for (;;) {
      const rows = this.read(() => this.stmts.scan.all(pos, pageSize) as RawEventRow[]);
      if (rows.length === 0) return;
      yield rows;
      pos = rows[rows.length - 1]!.pos + 1;
      if (rows.length < pageSize) return;
    }
  }

  async *scanForVerify(fromPos: number, toPos = Number.POSITIVE_INFINITY, pageSize = 5000): AsyncIterable<VerifyScanRow[]> {
    this.assertOpen();
    const end = Number.isFinite(toPos) ? toPos : MAX_POS;
    let pos = fromPos;
    for (;;) {
      const tuples = this.read(() => this.stmts.scanVerify.all(pos, end, pageSize) as ScanTuple[]);
      if (tuples.length === 0) return;
      const rows = new Array<VerifyScanRow>(tuples.length);
      for (let i = 0; i < tuples.length; i++) {
        const t = tuples[i]!;
        rows[i] = {
          pos: t[0],
          id: t[1],
          stream: t[2],
          seq: t[3],
          ts: t[4],
          kind: t[5],
          agent: t[6],
          resource: t[7],
          action: t[8],
          outcome: t[9],
          header: t[10],
          data: t[11],
          salt: t[12],
          hash: t[13],
        };
      }
      yield rows;
      // A position past 2^53 comes back rounded, so pos + 1 may not move: that is the end.
      const next = rows[rows.length - 1]!.pos + 1;
      if (rows.length < pageSize || next <= pos) return;
      pos = next;
    }
  }

  async queryIndexMismatches(limit: number): Promise<number[]> {
    this.assertOpen();
    return indexMismatches(this.db, limit);
  }
}

export function toStored(row: RawEventRow): StoredEvent & { pos: number } {
  let header: StoredEvent;
  let data: Record<string, unknown> | null;
  try {
    header = JSON.parse(row.header) as StoredEvent;
    data = row.data === null ? null : (JSON.parse(row.data) as Record<string, unknown>);
  } catch {
    throw new WitnessError('store_corrupt', `The stored event at position ${row.pos} is not valid JSON: the ledger was damaged or edited; run \`witness verify\`.`);
  }
  return {
    ...header,
    data,
    salt: row.salt === null ? null : row.salt.toString('hex'),
    hash: row.hash.toString('hex'),
    pos: row.pos,
  };
}

/**
 * The statement `query` runs and its arguments, fetching `fetch` rows in (ts, pos) order. A stream
 * filter goes to `events` through its (stream, seq) index; every other filter (agent, kind,
 * resource, action, outcome, time window) is answered from the query index, united with the
 * events it has not reached yet (positions at or after its end, scanned directly) — one
 * statement, so one snapshot: the result is the same whether or not the tail has been indexed. A
 * version-1 ledger opened read-only has its filters indexed on `events` itself.
 */
export function querySql(filter: QueryFilter, fetch: number, schemaVersion: number): { sql: string; args: unknown[] } {
  const useIndex = filter.stream === undefined && schemaVersion >= 2;
  const head = conditions(filter, useIndex ? 'x.' : '');
  // Positions start at 0: a row below can only have been put there behind the driver's back, and
  // is served to no one (verify reports it). The unary + keeps the term from steering the planner.
  if (!useIndex) {
    return { sql: `SELECT * FROM events ${whereClause([...head.where, '+pos >= 0'])} ORDER BY ts, pos LIMIT ?`, args: [...head.args, fetch] };
  }
  head.where.push('+e.pos >= 0');
  const tail = conditions(filter, '');
  tail.where.push('+pos >= 0');
  // CROSS JOIN keeps event_index the outer loop: its index picks the rows, and events is only
  // looked up by pos for the rows of the page.
  const sql =
    `SELECT * FROM (SELECT e.* FROM event_index x CROSS JOIN events e ON e.pos = x.pos ${whereClause(head.where)} ORDER BY x.ts, x.pos LIMIT ?)` +
    ` UNION ALL SELECT * FROM (SELECT * FROM events WHERE pos >= (SELECT coalesce(max(pos) + 1, 0) FROM event_index)` +
    `${tail.where.length > 0 ? ` AND ${tail.where.join(' AND ')}` : ''} ORDER BY ts, pos LIMIT ?)` +
    ' ORDER BY ts, pos LIMIT ?';
  return { sql, args: [...head.args, fetch, ...tail.args, fetch, fetch] };
}

/** The WHERE terms of a filter over columns prefixed by `p` (`x.` for the query index, '' for events). */
function conditions(filter: QueryFilter, p: string): { where: string[]; args: unknown[] } {
  const where: string[] = [];
  const args: unknown[] = [];
  const eq = (col: string, v: string | undefined) => {
    if (v !== undefined) {
      where.push(`${p}${col} = ?`);
      args.push(v);
    }
  };
  eq('agent', filter.agent);
  eq('stream', filter.stream);
  eq('kind', filter.kind);
  eq('resource', filter.resource);
  eq('action', filter.action);
  eq('outcome', filter.outcome);
  if (filter.since !== undefined) {
    where.push(`${p}ts >= ?`);
    args.push(filter.since);
  }
  if (filter.until !== undefined) {
    where.push(`${p}ts < ?`);
    args.push(filter.until);
  }
  if (filter.cursor !== undefined) {
    const [ts, pos] = decodeCursor(filter.cursor);
    // Written as a range on ts plus a tie-break (not "ts > ? OR (ts = ? AND pos > ?)"), so that
    // SQLite can seek the (…, ts) index to the cursor instead of walking from the start.
    where.push(`${p}ts >= ? AND (${p}ts > ? OR ${p}pos > ?)`);
    args.push(ts, ts, pos);
  }
  return { where, args };
}

/** The page size and the WHERE terms of a scanKind request, over columns prefixed by `p`. */
function kindScanTerms(request: KindScanRequest): { limit: number; terms: (p: string) => { where: string; args: unknown[] } } {
  const limit = Math.min(Math.max(request.limit ?? 5000, 1), 10_000);
  const after = request.after;
  if (after !== undefined && !Number.isSafeInteger(after.pos)) throw new WitnessError('invalid_argument', `scanKind: after.pos ${String(after.pos)} is not a position; pass the last row's pos.`);
  return {
    limit,
    terms: (p) => {
      const where = [`${p}kind = ?`];
      const args: unknown[] = [request.kind];
      if (request.agent !== undefined) {
        where.push(`${p}agent = ?`);
        args.push(request.agent);
      }
      if (request.since !== undefined) {
        where.push(`${p}ts >= ?`);
        args.push(request.since);
      }
      if (request.until !== undefined) {
        where.push(`${p}ts < ?`);
        args.push(request.until);
      }
      if (after !== undefined) {
        // A row value, which SQLite turns into a seek of the (…, ts) index to the row.
        where.push(`(${p}ts, ${p}pos) > (?, ?)`);
        args.push(after.ts, after.pos);
      }
      return { where: where.join(' AND '), args };
    },
  };
}

function whereClause(where: string[]): string {
  return where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
}
