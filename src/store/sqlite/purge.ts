import type Database from 'better-sqlite3';
import type { PreparedEvent } from '../../core/index.js';
import { checkPurgeRequest, purgeTargetRefusal, type AppendReceipt, type PurgeReceipt, type PurgeRequest } from '../ledger.js';
import { translateSqliteError } from './errors.js';
import type { StreamHead } from './open.js';
import { SqliteSeal } from './seal.js';
import { refoldSessionsLocked } from './sessions.js';

type PurgeTxn = (events: readonly PreparedEvent[], positions: readonly number[], receipts: AppendReceipt[]) => { pos: number; touched: Map<string, StreamHead>; erased: number };

/**
 * The retention purge (Ledger.purgePayloads): the record and the erasure in one IMMEDIATE
 * transaction, the record first, so a failure anywhere takes both back. The schema's guard
 * (schema.ts EVENTS_NO_UPDATE) admits an UPDATE of events only when it nulls data and salt,
 * changes nothing else, and follows the insert of a retention.purge record on the same connection:
 * exactly what this transaction does, for the positions its record lists.
 */
export abstract class SqlitePurge extends SqliteSeal {
  private purgeTxnFn: PurgeTxn | undefined;

  async purgePayloads(request: PurgeRequest): Promise<PurgeReceipt> {
    this.assertOpen();
    checkPurgeRequest(request);
    const events = this.prepare([request.record]);
    const receipts: AppendReceipt[] = [];
    try {
      const { pos, touched, erased } = this.purgeTxn()(events, request.positions, receipts);
      this.nextPos = pos;
      for (const [s, h] of touched) this.heads.set(s, h);
      this.info.size = pos;
      return { record: receipts[0]!, erased };
    } catch (e) {
      this.heads.clear();
      this.seenDataVersion = -1;
      throw translateSqliteError(e, this.info.location);
    }
  }

  private purgeTxn(): PurgeTxn {
    if (this.purgeTxnFn === undefined) {
      const db: Database.Database = this.db;
      // json_each keeps one statement whatever the number of positions (no bound-parameter limit).
      const targets = db.prepare('SELECT pos, kind, stream FROM events WHERE pos IN (SELECT value FROM json_each(?))');
      const sealed = db.prepare('SELECT size FROM checkpoints ORDER BY id DESC LIMIT 1').pluck();
      const erase = db.prepare('UPDATE events SET data = NULL, salt = NULL WHERE pos IN (SELECT value FROM json_each(?)) AND (data IS NOT NULL OR salt IS NOT NULL)');
      this.purgeTxnFn = db.transaction((events: readonly PreparedEvent[], positions: readonly number[], receipts: AppendReceipt[]) => {
        const list = JSON.stringify(positions);
        const rows = targets.all(list) as Array<{ pos: number; kind: string; stream: string }>;
        const refusal = purgeTargetRefusal(rows, (sealed.get() as number | undefined) ?? 0, positions.length);
        if (refusal !== undefined) throw refusal;
        // The record first (the guard requires it: last_insert_rowid()); a failure below takes both back.
        const appended = this.appendLocked(events, receipts);
        const erased = erase.run(list).changes;
        // Session rows take an approval's decision and a session.end's reason from the payload.
        refoldSessionsLocked(db, new Set(rows.filter((r) => r.kind === 'approval.decision' || r.kind === 'session.end').map((r) => r.stream)));
        return { ...appended, erased };
      }).immediate;
    }
    return this.purgeTxnFn;
  }
}
