import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import type { VerifyReport } from '../../src/core/index.js';
import { SqliteLedger, verifyLedger, type VerifyLedgerOptions } from '../../src/store/index.js';
import { REPO_ROOT, buildLedger, copyLedger, tamper, verifyFile, where, type BuiltLedger } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * The query index (`event_index`: each event's filter columns, kept beside the events so a write
 * pays for no secondary index) is what `witness query` answers from. A row of it forged, altered,
 * added or removed by someone who can write the file would make a query hide or misattribute an
 * event whose own row verifies, so verify compares the index with the events and names the leaf.
 * The ledger is the tamper suite's (13 events, three checkpoints); the edits are raw SQL with the
 * append-only triggers dropped, as anyone with write access to the file could make them.
 */

const dir = tempDir('witness-verify-index-');
let base: BuiltLedger;

beforeAll(async () => {
  base = await buildLedger(dir);
});

function indexed(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare('SELECT count(*) FROM event_index').pluck().get() as number;
  } finally {
    db.close();
  }
}

/** The same report in one pass and split over two threads in chunks of 4 events (dist/ must be built). */
async function verifyBoth(file: string, options: VerifyLedgerOptions = {}): Promise<VerifyReport> {
  const single = await verifyFile(file, { ...options, threads: 1 });
  if (fs.existsSync(path.join(REPO_ROOT, 'dist', 'store', 'verify-worker.js'))) {
    const ledger = SqliteLedger.open({
      path: file,
      create: false,
      readonly: true,
    });
    try {
      const parallel = await verifyLedger(ledger, {
        ...options,
        threads: 2,
        chunkEvents: 4,
      });
      expect(parallel).toEqual(single);
    } finally {
      await ledger.close();
    }
  }
  return single;
}

describe('verify checks the query index against the events', () => {
  it('[R-TAMPER-INDEX] passes an intact ledger whose index is complete, partly filled (an unindexed tail) or empty', async () => {
    expect(indexed(base.file)).toBe(base.size);
    expect((await verifyBoth(base.file)).ok).toBe(true);
    // The indexer fills from max(pos) + 1 of the index, so an index that stops early is exactly a
    // ledger whose tail was appended after the last fill: queries scan that tail from `events`.
    for (const from of [9, 0]) {
      const l = copyLedger(base, dir);
      tamper(l.file, (db) => void db.prepare('DELETE FROM event_index WHERE pos >= ?').run(from));
      expect(indexed(l.file)).toBe(from);
      const r = await verifyBoth(l.file);
      expect(where(r)).toEqual([]);
      expect(r.ok).toBe(true);
    }
  });

  it('[R-TAMPER-INDEX] reports index_mismatch at the leaf of a forged index row, though every event verifies', async () => {
    const l = copyLedger(base, dir);
    // Queries by agent would now give support-bot's refund to someone else.
    tamper(l.file, (db) => void db.prepare(`UPDATE event_index SET agent = 'someone-else' WHERE pos = 6`).run());
    const r = await verifyBoth(l.file);
    expect(r.ok).toBe(false);
    expect(where(r)).toEqual([{ code: 'index_mismatch', leaf: 6 }]);
    expect(r.first?.reason).toContain('leaf 6');
    expect(r.first?.reason).toContain('witness query');
  });

  it('[R-TAMPER-INDEX] reports an event whose index row was removed below the end of the index, which every query would miss', async () => {
    const l = copyLedger(base, dir);
    tamper(l.file, (db) => void db.prepare('DELETE FROM event_index WHERE pos = 3').run());
    expect(where(await verifyBoth(l.file))).toEqual([{ code: 'index_mismatch', leaf: 3 }]);
  });

  it('[R-TAMPER-INDEX] reports an index row added for no event, and the events it would leave unindexed', async () => {
    const l = copyLedger(base, dir);
    tamper(l.file, (db) => {
      // A row far past the end moves where the indexer resumes: events appended up to it would
      // never be indexed. Below it, the rows of 11 and 12 are removed too: both are reported.
      db.prepare(`INSERT INTO event_index (pos, ts, agent, kind) VALUES (40, '2026-01-01T00:00:00.000Z', 'ghost', 'note')`).run();
      db.prepare('DELETE FROM event_index WHERE pos IN (11, 12)').run();
    });
    expect(where(await verifyBoth(l.file))).toEqual([
      { code: 'index_mismatch', leaf: 11 },
      { code: 'index_mismatch', leaf: 12 },
      { code: 'index_mismatch', leaf: 40 },
    ]);
  });

  it('[R-TAMPER-INDEX] reports an edited events column as column_mismatch alone, where the index now disagrees too', async () => {
    // The events' own checks name the fault; the index, which still holds what the header says,
    // is not reported again under another name (test/store/tamper.test.ts asserts the same list).
    const l = copyLedger(base, dir);
    tamper(l.file, (db) => void db.prepare(`UPDATE events SET agent = 'someone-else' WHERE pos = 5`).run());
    expect(where(await verifyBoth(l.file)).map((f) => f.code)).toEqual(['column_mismatch']);
  });
});
