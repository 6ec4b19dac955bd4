import type { PoolClient } from 'pg';
import { WitnessError, chainEvent, genesisHash, prepareEvent, recommitPayload, type PreparedEvent } from '../../core/index.js';
import { batchStreams, checkOwner, type AppendOptions, type AppendReceipt, type AppendRequest } from '../ledger.js';
import { PostgresArtifacts } from './artifacts.js';
import { notifyChannel } from './open.js';

/**
 * The batch in one statement: the events as one multi-row INSERT from arrays (unnest), the stream
 * heads it moved, and the ledger head. The INSERT guard checks the positions once, after the statement.
 */
const INSERT_BATCH = `
WITH e AS (
  INSERT INTO events (pos, id, stream, seq, ts, kind, agent, resource, action, outcome, header, data, salt, hash)
  SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bytea[], $14::bytea[])
  RETURNING 1
), h AS (
  INSERT INTO stream_heads (stream, seq, hash, ended)
  SELECT * FROM unnest($15::text[], $16::bigint[], $17::bytea[], $18::boolean[])
  ON CONFLICT (stream) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, ended = excluded.ended
  RETURNING 1
)
UPDATE ledger_head SET next_pos = $19 WHERE id = 1 AND (SELECT count(*) FROM e) >= 0 AND (SELECT count(*) FROM h) >= 0`;

interface Head {
  seq: number;
  hash: Buffer;
  ended: boolean;
}

/**
 * Appending. The global position (the Merkle leaf index, which receipts carry) is assigned here,
 * inside the append transaction, under a ledger-wide row lock (`SELECT … FROM ledger_head … FOR
 * UPDATE`) held to commit: positions are then gap-free and in commit order across any number of
 * writer processes on any number of hosts, and a receipt's position is final when it is handed
 * out. (The issue suggests letting the sealer assign leaf indices after commit; the Ledger contract
 * hands positions out in receipts, so they are assigned at append, under the lock.) Each stream's
 * chain head is a row of its own in `stream_heads`, also locked FOR UPDATE, so seq and prev are
 * serialized per stream. Four round trips per batch, whatever its size.
 *
 * A batch holding an approval.decision also NOTIFYs the ledger's channel (see PostgresBase.watch),
 * in the same transaction, so a gateway on any host holding the call hears of it at commit: one
 * more round trip for that rare batch, none for any other (NOTIFY also serialises committing
 * transactions on a database-wide lock, which ordinary appends must not take). A policy.decision
 * that consumes a grant already consumed is refused by the unique index events_grant_once
 * (schema.ts), under the ledger lock, as a `conflict`: a grant releases one call, whichever
 * gateway on whichever host asks first.
 */
export abstract class PostgresAppend extends PostgresArtifacts {
  // ------------------------------------------------------------------ append

  prepare(batch: readonly AppendRequest[]): PreparedEvent[] {
    this.assertOpen();
    return batch.map(({ stream, ...input }) => prepareEvent(stream, input, { maxPayloadBytes: this.maxPayloadBytes }));
  }

  async append(batch: readonly AppendRequest[], options?: AppendOptions): Promise<AppendReceipt[]> {
    return this.appendPrepared(this.prepare(batch), options);
  }

  /**
   * A batch is appended whole or not at all, but a client can lose the answer to its COMMIT (a cut
   * connection) and not know which. The recorder then retries the same prepared events, whose ids
   * are fixed: when every one of them is already stored with the same stream, header fields and
   * payload commitment, that retry is answered with the stored receipts instead of a duplicate-id
   * refusal, so nothing acknowledged is lost and nothing is written twice.
   */
  async appendPrepared(events: readonly PreparedEvent[], options?: AppendOptions): Promise<AppendReceipt[]> {
    try {
      return await this.appendOnce(events, options?.owner);
    } catch (e) {
      if (!duplicateId(e)) throw e;
      const stored = await this.storedReceipts(events);
      if (stored === undefined) throw e;
      return stored;
    }
  }

  /** The receipts of a batch already committed exactly as prepared; undefined unless every event matches. */
  private async storedReceipts(events: readonly PreparedEvent[]): Promise<AppendReceipt[] | undefined> {
    const rows = await this.sql<{ id: string; stream: string; seq: number; pos: number; ts: string; kind: string; agent: string; data: string | null; salt: Buffer | null; hash: Buffer }>(
      'SELECT id, stream, seq, pos, ts, kind, agent, data, salt, hash FROM events WHERE id = ANY($1::text[])',
      [events.map((e) => e.fields.id)],
    );
    const byId = new Map(rows.map((r) => [r.id, r]));
    const receipts: AppendReceipt[] = [];
    for (const ev of events) {
      const r = byId.get(ev.fields.id);
      const same =
        r !== undefined &&
        r.stream === ev.stream &&
        r.ts === ev.fields.ts &&
        r.kind === ev.fields.kind &&
        r.agent === ev.fields.agent.id &&
        r.data === ev.canonicalData &&
        r.salt !== null &&
        Buffer.compare(r.salt, ev.salt) === 0;
      if (!same) return undefined;
      receipts.push({ id: r.id, stream: r.stream, seq: r.seq, pos: r.pos, hash: r.hash.toString('hex') });
    }
    return receipts;
  }

  /**
   * One append transaction. `within`, when given, runs in it after the events are inserted and
   * before COMMIT (the retention purge erases payloads there, so the record and the erasure commit
   * together); it throws to roll both back.
   */
  protected async appendOnce(events: readonly PreparedEvent[], owner: string | undefined, within?: (c: PoolClient) => Promise<void>): Promise<AppendReceipt[]> {
    this.assertOpen();
    this.assertWritable('append events');
    if (events.length === 0) return [];
    const streams = [...new Set(events.map((e) => e.stream))];
    const { receipts, next } = await this.transaction(null, async (c) => {
      // The ledger-wide lock first, always, so two appends never wait on each other's stream rows.
      const [, locked] = (await c.query('BEGIN; SELECT next_pos FROM ledger_head WHERE id = 1 FOR UPDATE')) as unknown as [unknown, { rows: Array<{ next_pos: number }> }];
      const start = locked.rows[0]?.next_pos;
      if (start === undefined) throw new WitnessError('store_corrupt', `The ledger ${this.info.location} has no head row; it is damaged.`);
      const headRows = await c.query<{ stream: string; seq: number; hash: Buffer; ended: boolean }>(
        'SELECT stream, seq, hash, ended FROM stream_heads WHERE stream = ANY($1::text[]) ORDER BY stream FOR UPDATE',
        [streams],
      );
      const heads = new Map<string, Head>(headRows.rows.map((r) => [r.stream, { seq: r.seq, hash: r.hash, ended: r.ended }]));
      if (owner !== undefined) {
        // Under the ledger lock and the stream_heads row locks: a stream with no head row is new,
        // and no other append can begin it before this one commits. One more round trip, only
        // for an append that asks for the check (and none when every stream is new).
        const begun = [...heads.keys()];
        const firsts = begun.length === 0 ? [] : (await c.query<{ stream: string; agent: string }>('SELECT stream, agent FROM events WHERE stream = ANY($1::text[]) AND seq = 0', [begun])).rows;
        checkOwner(batchStreams(events), owner, new Map(firsts.map((r) => [r.stream, r.agent])));
      }
      const cols: unknown[][] = Array.from({ length: 14 }, () => []);
      const receipts: AppendReceipt[] = [];
      let pos = start;
      let announce = false;
      for (const ev of events) {
        const head = heads.get(ev.stream) ?? { seq: -1, hash: genesisHash(this.info.origin, ev.stream), ended: false };
        if (head.ended) {
          // Anything after session.end would make the whole ledger fail verification forever.
          throw new WitnessError('invalid_event', `Session ${ev.stream} has already ended; start a new session to record more.`, { details: { stream: ev.stream, id: ev.fields.id } });
        }
        const seq = head.seq + 1;
        if (ev.fields.kind === 'approval.decision') announce = true;
        if (ev.fields.kind === 'session.end') recommitPayload(ev, { ...ev.data, event_count: seq, last_hash: head.hash.toString('hex') });
        const { canonicalHeader, hash, hashHex } = chainEvent(ev, seq, head.hash);
        const f = ev.fields;
        const row = [pos, f.id, ev.stream, seq, f.ts, f.kind, f.agent.id, f.resource ?? null, f.action ?? null, f.outcome ?? null, canonicalHeader, ev.canonicalData, ev.salt, hash];
        for (let i = 0; i < 14; i++) cols[i]!.push(row[i]);
        heads.set(ev.stream, { seq, hash, ended: f.kind === 'session.end' });
        receipts.push({ id: f.id, stream: ev.stream, seq, pos, hash: hashHex });
        pos++;
      }
      const moved = streams.map((s) => [s, heads.get(s)!] as const);
      try {
        await c.query(INSERT_BATCH, [...cols, moved.map(([s]) => s), moved.map(([, h]) => h.seq), moved.map(([, h]) => h.hash), moved.map(([, h]) => h.ended), pos]);
      } catch (e) {
        throw grantUsed(e, this.info.location) ?? e;
      }
      if (announce) await c.query('SELECT pg_notify($1, $2)', [notifyChannel(this.info.id), 'approval.decision']);
      if (within !== undefined) await within(c);
      return { receipts, next: pos };
    });
    this.info.size = Math.max(this.info.size, next);
    return receipts;
  }
}

/** Whether an append failed on the unique event id (the events_id_key constraint), before or after translation. */
function duplicateId(e: unknown): boolean {
  const pgError = (e instanceof WitnessError ? e.cause : e) as { code?: unknown; constraint?: unknown } | undefined;
  return pgError?.code === '23505' && pgError.constraint === 'events_id_key';
}

/** The refusal of a second consumption of one grant (events_grant_once), in one sentence; undefined for any other error. */
function grantUsed(e: unknown, location: string): WitnessError | undefined {
  const err = e as { code?: unknown; constraint?: unknown; detail?: unknown };
  if (err.code !== '23505' || err.constraint !== 'events_grant_once') return undefined;
  const decision = /\)=\((.*)\) already exists/.exec(typeof err.detail === 'string' ? err.detail : '')?.[1];
  return new WitnessError('conflict', `Approval decision ${decision ?? '(unknown)'} has already released a call in ${location}, and a grant is used once; this release was not recorded.`, {
    cause: e,
  });
}
