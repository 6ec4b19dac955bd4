import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SqliteLedger, verifyLedger } from '../../src/store/index.js';
import { indexTail, indexedUpto } from '../../src/store/sqlite/indexer.js';
import { tamper } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

const dir = tempDir('witness-index-contiguous-');
const ev = (i: number) => ({ stream: 's', kind: 'note' as const, agent: { id: 'bot' }, action: i === 10 ? 'wire-transfer' : 'lookup', data: { text: `n${i}` } });

/** Found by review: with an index that only had to grow, one legal INSERT could skip an event. */
describe('the query index grows only contiguously [R-TAMPER-INDEX]', () => {
  it('refuses an index row that skips a not yet indexed event, so no query loses it', async () => {
    const file = tempDb(dir);
    const ledger = SqliteLedger.open({ path: file });
    try {
      await ledger.append(Array.from({ length: 10 }, (_, i) => ev(i)));
      indexTail(ledger.database);
      await ledger.append([ev(10), ev(11)]);
      expect(indexedUpto(ledger.database)).toBe(10);
      // Another process with SQL access and every trigger in place:
      const db = new Database(file);
      try {
        expect(() => db.exec('INSERT INTO event_index (pos, ts, agent, kind, resource, action, outcome) SELECT pos, ts, agent, kind, resource, action, outcome FROM events WHERE pos = 11')).toThrow(
          /append-only/,
        );
      } finally {
        db.close();
      }
      expect((await ledger.query({ action: 'wire-transfer' })).events.map((e) => e.pos)).toEqual([10]);
      expect(indexTail(ledger.database)).toEqual({ indexed: 2, upto: 12 });
      expect((await ledger.query({ action: 'wire-transfer' })).events.map((e) => e.pos)).toEqual([10]);
    } finally {
      await ledger.close();
    }
  });

  it('stops indexing before a missing event instead of failing, and queries still read the events after it', async () => {
    const file = tempDb(dir);
    const ledger = SqliteLedger.open({ path: file });
    await ledger.append(Array.from({ length: 12 }, (_, i) => ev(i)));
    await ledger.close();
    // close() indexed everything: take the index back to before the hole, as a crash would leave it.
    tamper(file, (db) => {
      db.prepare('DELETE FROM events WHERE pos = 5').run();
      db.prepare('DELETE FROM event_index WHERE pos >= 3').run();
    });
    const again = SqliteLedger.open({ path: file, create: false });
    try {
      expect(indexTail(again.database)).toEqual({ indexed: 2, upto: 5 });
      expect((await again.query({ action: 'wire-transfer' })).events.map((e) => e.pos)).toEqual([10]);
      expect((await verifyLedger(again)).failures.map((f) => f.code)).toContain('position_gap');
    } finally {
      await again.close();
    }
  });
});
