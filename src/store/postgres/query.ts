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
import { PostgresAppend } from './append.js';
import { drivenColumn, pgDrivenWalkSql, pgSessionPage, pgSessionsSql, type PgSessionRow } from './sessions.js';
import { sessionLimit } from '../sessions.js';

const COLUMNS = 'pos, id, stream, seq, ts, kind, agent, resource, action, outcome, header, data, salt, hash';
/** A stream's events from a seq on; positions start at 0 (a row below was put there behind the driver's back). */
const STREAM_PAGE_SQL = `SELECT ${COLUMNS} FROM events WHERE stream = $1 AND seq >= $2 AND pos >= 0`;
/** The bigint range, as the open bounds of a verify scan (a row below 0 was put there behind the driver's back). */
const MIN_POS = '-9223372036854775808';
const MAX_POS = '9223372036854775807';

/**
 * Reading events: by id, by stream, by filter with a cursor, and raw rows in position order for
 * verification. Every filter is answered from `events` through its own (column, ts, pos) index,
 * which PostgreSQL maintains on the write path, so there is no separate query index to keep in
 * step (and nothing for `queryIndexMismatches` to check: the driver leaves it out).
 */
export abstract class PostgresQuery extends PostgresAppend {
  // ------------------------------------------------------------------ read

  async getEvent(id: string): Promise<(StoredEvent & { pos: number }) | undefined> {
    this.assertOpen();
    const rows = await this.sql<RawEventRow>(`SELECT ${COLUMNS} FROM events WHERE id = $1 AND pos >= 0`, [id]);
    return rows[0] === undefined ? undefined : toStored(rows[0]);
  }

  async readStream(stream: string): Promise<Array<StoredEvent & { pos: number }>> {
    this.assertOpen();
    return (await this.sql<RawEventRow>(`SELECT ${COLUMNS} FROM events WHERE stream = $1 AND pos >= 0 ORDER BY seq`, [stream])).map(toStored);
  }

  async readStreamPage(stream: string, page: StreamPageRequest = {}): Promise<StreamPage> {
    this.assertOpen();
    const { fromSeq, limit } = streamPageArgs(stream, page);
    // Through the UNIQUE (stream, seq) index, first as a closed range of seqs: a stream's seqs
    // have no gaps, so it holds the page, and PostgreSQL reads only those rows whatever it plans.
    // Open-ended ("seq >= $2 ORDER BY seq LIMIT"), a table not yet analyzed was planned as a
    // bitmap scan of the whole rest of the stream and a sort: 48 ms a page of 200 (p50), 25 s
    // through 100,000 events, against SQLite's 2 ms. Only a short range (the stream's end, or a
    // row missing, which verify reports) reads on past it, for what is left.
    const rows = await this.sql<RawEventRow>(`${STREAM_PAGE_SQL} AND seq <= $3 ORDER BY seq`, [stream, fromSeq, fromSeq + limit]);
    const last = rows[rows.length - 1];
    if (rows.length <= limit) {
      const after = last === undefined ? fromSeq : last.seq + 1;
      rows.push(...(await this.sql<RawEventRow>(`${STREAM_PAGE_SQL} ORDER BY seq LIMIT $3`, [stream, after, limit + 1 - rows.length])));
    }
    return streamPageOf(rows.map(toStored), limit);
  }

  async query(filter: QueryFilter): Promise<QueryPage> {
    this.assertOpen();
    const limit = Math.min(Math.max(filter.limit ?? 100, 1), 10_000);
    const { sql, args } = pgQuerySql(filter, limit + 1);
    const rows = await this.sql<RawEventRow>(sql, args);
    const more = rows.length > limit;
    const page = rows.slice(0, limit).map(toStored);
    const last = page[page.length - 1];
    return more && last !== undefined ? { events: page, next: encodeCursor(last.ts, last.pos) } : { events: page };
  }

  async scanKind(request: KindScanRequest): Promise<KindScanRow[]> {
    this.assertOpen();
    const { sql, args } = pgKindScanSql(request);
    return this.sql<KindScanRow>(sql, args);
  }

  async listSessions(filter: SessionFilter = {}, page: SessionPageRequest = {}): Promise<SessionPage> {
    this.assertOpen();
    // One session is found by its id, so no column index need drive the walk.
    const driver = filter.session === undefined ? drivenColumn(filter) : undefined;
    if (driver === undefined && (filter.ended !== false || filter.session !== undefined)) {
      const { sql, args, limit } = pgSessionsSql(filter, page);
      return pgSessionPage(await this.sql<PgSessionRow>(sql, args), limit);
    }
    if (driver === undefined) {
      // Open sessions only: the streams not ended, from their heads (one row each), looked up one by one.
      return this.transaction('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', async (c) => {
        const streams = (await c.query<{ stream: string }>('SELECT stream FROM stream_heads WHERE NOT ended')).rows.map((r) => r.stream);
        const { sql, args, limit } = pgSessionsSql(filter, page, { streams });
        return pgSessionPage((await c.query<PgSessionRow>(sql, args)).rows, limit);
      });
    }
    // Walk the filter column's index newest first, 4× further each round, until the page is full
    // of sessions that started after the last event read (see sessions.ts) or the index ends.
    return this.transaction('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', async (c) => {
      const limit = sessionLimit(page.limit);
      for (let step = Math.max(256, (limit + 1) * 64); ; step *= 4) {
        const walked = (await c.query<{ stream: string; ts: string }>(pgDrivenWalkSql(driver.col), [driver.value, step])).rows;
        const exhausted = walked.length < step;
        const streams = [...new Set(walked.map((r) => r.stream))];
        const after = exhausted ? undefined : walked[walked.length - 1]?.ts;
        const { sql, args } = pgSessionsSql(filter, page, { streams, ...(after === undefined ? {} : { after }) });
        const rows = (await c.query<PgSessionRow>(sql, args)).rows;
        if (exhausted || rows.length > limit) return pgSessionPage(rows, limit);
      }
    });
  }

  async *scan(fromPos = 0, pageSize = 5000): AsyncIterable<RawEventRow[]> {
    this.assertOpen();
    let pos = fromPos;
    for (;;) {
      const rows = await this.sql<RawEventRow>(`SELECT ${COLUMNS} FROM events WHERE pos >= $1 ORDER BY pos LIMIT $2`, [pos, pageSize]);
      if (rows.length === 0) return;
      yield rows;
      pos = rows[rows.length - 1]!.pos + 1;
      if (rows.length < pageSize) return;
    }
  }

  async *scanForVerify(fromPos: number, toPos = Number.POSITIVE_INFINITY, pageSize = 5000): AsyncIterable<VerifyScanRow[]> {
    this.assertOpen();
    const end = Number.isFinite(toPos) ? toPos : MAX_POS;
    let pos: number | string = Number.isFinite(fromPos) ? fromPos : MIN_POS;
    for (;;) {
      const rows = await this.sql<VerifyScanRow>(
        `SELECT pos, id, stream, seq, ts, kind, agent, resource, action, outcome, header, data, encode(salt, 'hex') AS salt, encode(hash, 'hex') AS hash
         FROM events WHERE pos >= $1 AND pos < $2 ORDER BY pos LIMIT $3`,
        [pos, end, pageSize],
      );
      if (rows.length === 0) return;
      yield rows;
      const next = rows[rows.length - 1]!.pos + 1;
      if (rows.length < pageSize || (typeof pos === 'number' && next <= pos)) return;
      pos = next;
    }
  }
}

/** The statement `query` runs and its arguments, fetching `fetch` rows in (ts, pos) order. */
export function pgQuerySql(filter: QueryFilter, fetch: number): { sql: string; args: unknown[] } {
  const where: string[] = ['pos >= 0'];
  const args: unknown[] = [];
  const arg = (v: unknown) => {
    args.push(v);
    return `$${args.length}`;
  };
  const eq = (col: string, v: string | undefined) => {
    if (v !== undefined) where.push(`${col} = ${arg(v)}`);
  };
  eq('agent', filter.agent);
  eq('stream', filter.stream);
  eq('kind', filter.kind);
  eq('resource', filter.resource);
  eq('action', filter.action);
  eq('outcome', filter.outcome);
  if (filter.since !== undefined) where.push(`ts >= ${arg(filter.since)}`);
  if (filter.until !== undefined) where.push(`ts < ${arg(filter.until)}`);
  if (filter.cursor !== undefined) {
    const [ts, pos] = decodeCursor(filter.cursor);
    // A row comparison, which PostgreSQL turns into one seek on the (…, ts, pos) indexes.
    where.push(`(ts, pos) > (${arg(ts)}, ${arg(pos)})`);
  }
  return { sql: `SELECT ${COLUMNS} FROM events WHERE ${where.join(' AND ')} ORDER BY ts, pos LIMIT ${arg(fetch)}`, args };
}

/** The statement `scanKind` runs: the (kind, ts, pos) index (or (agent, ts, pos)) walked from `after`. */
export function pgKindScanSql(request: KindScanRequest): { sql: string; args: unknown[] } {
  const limit = Math.min(Math.max(request.limit ?? 5000, 1), 10_000);
  const after = request.after;
  if (after !== undefined && !Number.isSafeInteger(after.pos)) throw new WitnessError('invalid_argument', `scanKind: after.pos ${String(after.pos)} is not a position; pass the last row's pos.`);
  const args: unknown[] = [];
  const arg = (v: unknown) => {
    args.push(v);
    return `$${args.length}`;
  };
  const where = ['pos >= 0', `kind = ${arg(request.kind)}`];
  if (request.agent !== undefined) where.push(`agent = ${arg(request.agent)}`);
  if (request.since !== undefined) where.push(`ts >= ${arg(request.since)}`);
  if (request.until !== undefined) where.push(`ts < ${arg(request.until)}`);
  if (after !== undefined) where.push(`(ts, pos) > (${arg(after.ts)}, ${arg(after.pos)})`);
  const header = request.header === 'always' ? 'header' : 'CASE WHEN data IS NULL THEN header END AS header';
  return { sql: `SELECT pos, id, ts, agent, data, ${header} FROM events WHERE ${where.join(' AND ')} ORDER BY ts, pos LIMIT ${arg(limit)}`, args };
}

/** A stored row as the interface hands it out (the same shape as the SQLite driver's). */
export function toStored(row: RawEventRow): StoredEvent & { pos: number } {
  let header: StoredEvent;
  let data: Record<string, unknown> | null;
  try {
    header = JSON.parse(row.header) as StoredEvent;
    data = row.data === null ? null : (JSON.parse(row.data) as Record<string, unknown>);
  } catch {
    throw new WitnessError('store_corrupt', `The stored event at position ${row.pos} is not valid JSON: the ledger was damaged or edited; run \`witness verify\`.`);
  }
  return { ...header, data, salt: row.salt === null ? null : row.salt.toString('hex'), hash: row.hash.toString('hex'), pos: row.pos };
}
