import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { SqliteLedger, type Ledger } from '../../src/store/index.js';
import type { VerifyScanRow } from '../../src/store/ledger.js';
import { buildLedger, copyLedger, readRows, tamper, type BuiltLedger } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * The driver's verify scan (Ledger.scanForVerify) is what every verification reads: each column
 * as stored, salt and hash as lowercase hex instead of Buffers (cheaper by ~2 µs a row each), in
 * position order within [from, to). It must hand over exactly what `SELECT *` holds.
 */

const dir = tempDir('witness-verify-scan-');
let base: BuiltLedger;

beforeAll(async () => {
  base = await buildLedger(dir);
});

async function collect(l: Ledger, from: number, to?: number, pageSize?: number): Promise<VerifyScanRow[]> {
  const out: VerifyScanRow[] = [];
  for await (const page of l.scanForVerify(from, to, pageSize)) {
    if (pageSize !== undefined) expect(page.length).toBeLessThanOrEqual(pageSize);
    out.push(...page);
  }
  return out;
}

describe('the verify scan', () => {
  it('hands over every row of a range as stored, blobs as lowercase hex, in pages', async () => {
    const expected = readRows(base.file).map((r) => ({
      ...r,
      salt: r.salt === null ? null : r.salt.toString('hex'),
      hash: r.hash.toString('hex'),
    }));
    const l = SqliteLedger.open({
      path: base.file,
      create: false,
      readonly: true,
    });
    try {
      expect(await collect(l, 0)).toEqual(expected);
      expect(await collect(l, 3, 9, 4)).toEqual(expected.slice(3, 9));
      expect(await collect(l, 13)).toEqual([]);
    } finally {
      await l.close();
    }
  });

  it('keeps an erased salt null and an empty one empty, so verify tells them apart', async () => {
    const l = copyLedger(base, dir);
    tamper(l.file, (db: Database.Database) => {
      db.prepare('UPDATE events SET data = NULL, salt = NULL WHERE pos = 3').run();
      db.prepare(`UPDATE events SET salt = x'' WHERE pos = 4`).run();
    });
    const ledger = SqliteLedger.open({
      path: l.file,
      create: false,
      readonly: true,
    });
    try {
      const rows = await collect(ledger, 3, 5);
      expect(rows.map((r) => [r.salt, r.data === null])).toEqual([
        [null, true],
        ['', false],
      ]);
    } finally {
      await ledger.close();
    }
  });
});
