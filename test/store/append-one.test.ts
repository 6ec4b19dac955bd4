import { describe, expect, it } from 'vitest';
import { SqliteLedger, verifyLedger, type AppendRequest } from '../../src/store/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * A one-event append runs as a single autocommit INSERT with no explicit transaction, relying on
 * the schema's INSERT trigger (position must be max(pos) + 1) to refuse it when another writer got
 * there first; then it is retried under the write lock. These tests drive exactly those races with
 * two handles on one file (two connections: the same as two processes for SQLite's locking).
 */

const dir = tempDir('witness-append-one-');

const note = (stream: string, i: number, agent = 'a'): AppendRequest => ({ stream, agent: { id: agent }, kind: 'note', data: { text: `n${i}` } });

describe('[R-CONCURRENT] one-event appends from two connections', () => {
  it('interleaved single appends to shared and separate streams stay gapless, chained and verifiable, with receipts that match the rows', async () => {
    const file = tempDb(dir);
    const a = SqliteLedger.open({ path: file });
    const b = SqliteLedger.open({ path: file });
    try {
      const receipts = [];
      for (let i = 0; i < 300; i++) {
        // Every append finds the other handle's caches stale (it appended last), on the shared
        // stream and on streams only one side writes.
        const [who, stream] = i % 3 === 0 ? [a, 'shared'] : i % 3 === 1 ? [b, 'shared'] : [i % 2 === 0 ? a : b, `own-${i % 2}`];
        const [r] = await who.append([note(stream, i)]);
        receipts.push(r!);
      }
      expect(receipts.map((r) => r.pos)).toEqual(receipts.map((_, i) => i));
      const shared = await a.readStream('shared');
      expect(shared.map((e) => e.seq)).toEqual(shared.map((_, i) => i));
      for (const r of receipts) {
        const ev = await b.getEvent(r.id);
        expect({ pos: ev!.pos, seq: ev!.seq, stream: ev!.stream, hash: ev!.hash }).toEqual({ pos: r.pos, seq: r.seq, stream: r.stream, hash: r.hash });
      }
      const report = await verifyLedger(a);
      expect(report.failures).toEqual([]);
      expect(report.events).toBe(300);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a session ended through the other connection refuses the next single event with invalid_event, and writes nothing', async () => {
    const file = tempDb(dir);
    const a = SqliteLedger.open({ path: file });
    const b = SqliteLedger.open({ path: file });
    try {
      await a.append([note('s', 0)]);
      await a.append([note('s', 1)]); // a's cache: s open at seq 1
      await b.append([{ stream: 's', agent: { id: 'a' }, kind: 'session.end', data: { reason: 'completed' } }]);
      await expect(a.append([note('s', 2)])).rejects.toMatchObject({ code: 'invalid_event', message: expect.stringContaining('already ended') });
      expect(a.database.prepare('SELECT count(*) FROM events').pluck().get()).toBe(3);
      expect((await verifyLedger(a)).ok).toBe(true);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('appending the same prepared event twice is refused as a reused id, and the ledger is unchanged', async () => {
    const file = tempDb(dir);
    const a = SqliteLedger.open({ path: file });
    try {
      const [p] = a.prepare([note('s', 0)]);
      await a.appendPrepared([p!]);
      await expect(a.appendPrepared([p!])).rejects.toMatchObject({ code: 'invalid_event' });
      expect(a.info.size).toBe(1);
      const [r] = await a.append([note('s', 1)]);
      expect({ pos: r!.pos, seq: r!.seq }).toEqual({ pos: 1, seq: 1 });
      expect((await verifyLedger(a)).ok).toBe(true);
    } finally {
      await a.close();
    }
  });
});
