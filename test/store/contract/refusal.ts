import { describe, expect, it } from 'vitest';
import type { DriverUnderTest, LedgerEdit } from './driver.js';
import { buildSealed, forge, image, rawRows, verifyAfresh, withLedger } from './fixtures.js';

/**
 * The store itself refuses to change history: every edit in the vocabulary that rewrites or
 * removes a stored row, tried through the store's own surface without lifting its protections,
 * is refused, and the ledger still verifies afterwards.
 */
export function refusalContract(driver: DriverUnderTest): void {
  describe('refusal of edits', () => {
    it('[R-APPEND-ONLY] refuses UPDATE, DELETE and REPLACE of events, checkpoints, tree nodes and keys when its protections are in place, and still verifies', async () => {
      await withLedger(driver, async (l) => {
        const s = await buildSealed(l);
        const rows = await rawRows(l);
        const first = rows[0]!;
        const attempts: LedgerEdit[] = [
          { kind: 'rewriteData', pos: 3, data: '{"text":"forged"}' },
          { kind: 'rewriteSalt', pos: 3, salt: null },
          { kind: 'rewriteHeader', pos: 2, header: first.header },
          { kind: 'rewriteHash', pos: 2, hash: Buffer.alloc(32) },
          { kind: 'replaceEvent', row: { ...image(first), data: '{"forged":true}' } },
          { kind: 'deleteEvent', pos: 4 },
          { kind: 'truncateTail', from: 8 },
          { kind: 'swapEvents', a: 0, b: 1 },
          // Slipping an event into sealed history has to move the ones after it.
          { kind: 'insertEvent', row: forge('slipped-in', 0, Buffer.alloc(32), 6, 'note', { text: 'forged' }) },
          { kind: 'rewriteCheckpoint', id: 2, note: 'forged' },
          { kind: 'rewriteCheckpoint', id: 2, consistency: [] },
          { kind: 'deleteCheckpoints', from: 1 },
          { kind: 'dropTreeNodes' },
          { kind: 'rewritePublicKey', vkey: 'forged' },
        ];
        const accepted: string[] = [];
        for (const op of attempts) {
          try {
            await driver.edit(l, op, { bypass: false });
            accepted.push(JSON.stringify(op).slice(0, 80));
          } catch {
            // Refused, as it must be.
          }
        }
        expect(accepted).toEqual([]);
        const after = await rawRows(l);
        expect(after.map(image)).toEqual(rows.map(image));
        expect((await l.checkpoints()).map((c) => c.note)).toEqual(s.checkpoints.map((c) => c.note));
        const report = await verifyAfresh(driver, l);
        expect(report.failures).toEqual([]);
        expect(report).toMatchObject({ ok: true, events: 11, checkpoints: 3, sealedSize: 11 });
      });
    });

    it('puts its protections back after an edit that lifted them (so the edit hook cannot leave a store open)', async () => {
      await withLedger(driver, async (l) => {
        const [r] = await l.append([{ stream: 's', agent: { id: 'contract-bot' }, kind: 'note', data: { text: 'one' } } as never]);
        await driver.edit(l, { kind: 'rewriteData', pos: r!.pos, data: '{"text":"edited"}' });
        await expect(driver.edit(l, { kind: 'rewriteData', pos: r!.pos, data: '{"text":"again"}' }, { bypass: false })).rejects.toBeDefined();
        await expect(driver.edit(l, { kind: 'deleteEvent', pos: r!.pos }, { bypass: false })).rejects.toBeDefined();
        expect((await rawRows(l)).map((x) => x.data)).toEqual(['{"text":"edited"}']);
      });
    });
  });
}
