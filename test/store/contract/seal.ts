import { describe, expect, it } from 'vitest';
import { leafHash, openCheckpoint, parseVerifierKey, verifyConsistency, verifyInclusion } from '../../../src/core/index.js';
import { verifyLedger, type CheckpointRow, type Ledger } from '../../../src/store/index.js';
import type { DriverUnderTest } from './driver.js';
import { buildSealed, note, rawRows, rewrittenStream, verifyAfresh, where, withLedger } from './fixtures.js';

async function opened(l: Ledger, cp: CheckpointRow) {
  const keys = (await l.publicKeys()).map((k) => parseVerifierKey(k.vkey));
  return openCheckpoint(cp.note, keys, l.info.origin).checkpoint;
}

/** Every leaf proven into every checkpoint, and every checkpoint proven to extend every earlier one. */
async function expectAllProofs(l: Ledger): Promise<void> {
  const cps = await l.checkpoints();
  const rows = await rawRows(l);
  for (const cp of cps) {
    const signed = await opened(l, cp);
    expect(signed.size).toBe(cp.size);
    expect(Buffer.from(signed.rootHash).equals(cp.root)).toBe(true);
    for (const row of rows.filter((r) => r.pos < cp.size)) {
      const proof = await l.inclusionProof(row.pos, cp.size);
      expect(verifyInclusion(leafHash(Buffer.from(row.hash)), row.pos, cp.size, proof, signed.rootHash), `leaf ${row.pos} in ${cp.size}`).toEqual({ ok: true });
    }
    for (const older of cps.filter((o) => o.size < cp.size)) {
      const proof = await l.consistencyProof(older.size, cp.size);
      expect(verifyConsistency(older.size, cp.size, proof, older.root, signed.rootHash), `${older.size} → ${cp.size}`).toEqual({ ok: true });
    }
  }
}

export function sealContract(driver: DriverUnderTest): void {
  describe('sealing and proofs', () => {
    it('seals signed checkpoints whose inclusion and consistency proofs verify, and the whole ledger verifies', async () => {
      await withLedger(driver, async (l) => {
        expect(l.canSeal).toBe(true);
        await l.append([note('p', '1'), note('p', '2'), note('p', '3')]);
        expect(await l.sealRecord()).toBeUndefined();
        const first = (await l.seal())!;
        expect((await l.sealRecord())?.note).toBe(first.note);
        await l.append([note('p', '4'), note('p', '5')]);
        const second = (await l.seal())!;
        expect(await l.seal()).toBeNull();
        // The sealer keeps the last checkpoint it signed outside the database, for the next seal and for verify.
        expect((await l.sealRecord())?.note).toBe(second.note);
        const cp1 = await opened(l, first);
        const cp2 = await opened(l, second);
        expect([cp1.size, cp2.size]).toEqual([3, 5]);
        expect(verifyConsistency(3, 5, await l.consistencyProof(3, 5), cp1.rootHash, cp2.rootHash)).toEqual({ ok: true });
        for (const ev of await l.readStream('p')) {
          const proof = await l.inclusionProof(ev.pos, 5);
          expect(verifyInclusion(leafHash(Buffer.from(ev.hash, 'hex')), ev.pos, 5, proof, cp2.rootHash)).toEqual({ ok: true });
        }
        const report = await verifyLedger(l);
        expect(report.failures).toEqual([]);
        expect(report).toMatchObject({ ok: true, checkpoints: 2, sealedSize: 5, unsealed: 0 });
      });
    });

    it('lists checkpoints in order, each with the size it extends and a stored consistency proof from it, the newest as latestCheckpoint', async () => {
      await withLedger(driver, async (l) => {
        expect(await l.latestCheckpoint()).toBeUndefined();
        expect(await l.checkpoints()).toEqual([]);
        const s = await buildSealed(l);
        const cps = await l.checkpoints();
        expect(cps.map((c) => [c.size, c.prevSize, c.consistency.length > 0])).toEqual([
          [5, null, false],
          [8, 5, true],
          [11, 8, true],
        ]);
        expect(cps.map((c) => c.note)).toEqual(s.checkpoints.map((c) => c.note));
        expect((await l.latestCheckpoint())?.note).toBe(cps[2]!.note);
        for (const [i, cp] of cps.entries()) {
          if (i === 0) continue;
          const proof = cp.consistency.map((h) => Buffer.from(h, 'hex'));
          expect(verifyConsistency(cps[i - 1]!.size, cp.size, proof, cps[i - 1]!.root, cp.root)).toEqual({ ok: true });
        }
        await expectAllProofs(l);
        // The checkpoint is signed by the ledger's own key, the first it lists.
        const [own] = await l.publicKeys();
        expect(() => openCheckpoint(cps[0]!.note, [parseVerifierKey(own!.vkey)], l.info.origin)).not.toThrow();
      });
    });

    it('returns null with nothing new to seal, and writes a heartbeat checkpoint of the same size when forced', async () => {
      await withLedger(driver, async (l) => {
        expect(await l.seal()).toBeNull();
        await l.append([note('h', 'one')]);
        const first = (await l.seal())!;
        expect(await l.seal()).toBeNull();
        const later = new Date(Date.now() + 3_600_000);
        const heartbeat = (await l.seal({ force: true, now: later }))!;
        expect(heartbeat).toMatchObject({ size: 1, prevSize: 1, ts: later.toISOString() });
        expect(heartbeat.root.equals(first.root)).toBe(true);
        expect(heartbeat.note).not.toBe(first.note);
        expect((await l.checkpoints()).map((c) => c.size)).toEqual([1, 1]);
        expect((await verifyAfresh(driver, l)).failures).toEqual([]);
      });
    });

    it('continues the tree from another handle and after a reopen: each checkpoint extends the one before', async () => {
      await withLedger(driver, async (l, also) => {
        await l.append([note('t', '1'), note('t', '2'), note('u', '3')]);
        await l.seal();
        const other = also(await driver.openAgain(l));
        await other.append([note('t', '4')]);
        expect(await other.seal()).toMatchObject({ size: 4, prevSize: 3 });
        await other.close();
        await l.append([note('u', '5'), note('t', '6')]);
        expect(await l.seal()).toMatchObject({ size: 6, prevSize: 4 });
        const reopened = also(await driver.openAgain(l));
        await reopened.append([note('t', '7')]);
        expect(await reopened.seal()).toMatchObject({ size: 7, prevSize: 6 });
        await expectAllProofs(reopened);
        const report = await verifyAfresh(driver, l);
        expect(report.failures).toEqual([]);
        expect(report).toMatchObject({ ok: true, checkpoints: 4, sealedSize: 7 });
      });
    });

    it('refuses, with a typed error, proofs for a range that is not sealed or sizes that make no sense', async () => {
      await withLedger(driver, async (l) => {
        await l.append([note('r', '1'), note('r', '2')]);
        await l.seal();
        await l.append([note('r', '3'), note('r', '4')]);
        expect(await l.inclusionProof(1, 2)).toHaveLength(1);
        for (const attempt of [() => l.inclusionProof(3, 4), () => l.inclusionProof(5, 2), () => l.consistencyProof(2, 4), () => l.consistencyProof(3, 2), () => l.inclusionProof(-1, 2)]) {
          await expect(attempt()).rejects.toMatchObject({ name: 'WitnessError' });
        }
      });
    });

    it('lists the key the ledger was created with, the one its checkpoints are signed by, and no other', async () => {
      await withLedger(driver, async (l, also) => {
        await l.append([note('k', '1')]);
        const cp = (await l.seal())!;
        const keys = await l.publicKeys();
        expect(keys).toHaveLength(1);
        expect(() => openCheckpoint(cp.note, [parseVerifierKey(keys[0]!.vkey)], l.info.origin)).not.toThrow();
        expect(Number.isNaN(Date.parse(keys[0]!.addedAt))).toBe(false);
        const other = also(await driver.openAgain(l));
        expect(await other.publicKeys()).toEqual(keys);
        expect(other.info).toMatchObject({ id: l.info.id, origin: l.info.origin });
      });
    });
  });

  describe('closing during a seal', () => {
    it('waits, on close, for a seal already on its way: a new handle finds the checkpoint, the record matching it, and seals on from there', async () => {
      await withLedger(driver, async (l, also) => {
        const batch = Array.from({ length: 500 }, (_, i) => note(`s${i % 5}`, `event ${i}`));
        await l.append(batch);
        const sealing = l.seal();
        await l.close();
        const cp = await sealing;
        expect(cp).toMatchObject({ size: 500 });
        const again = also(await driver.openAgain(l));
        expect((await again.latestCheckpoint())?.note).toBe(cp!.note);
        expect((await again.sealRecord())?.note).toBe(cp!.note);
        await again.append([note('s0', 'after the reopen')]);
        expect(await again.seal()).toMatchObject({ size: 501, prevSize: 500 });
        const report = await verifyAfresh(driver, again);
        expect(report.failures).toEqual([]);
        expect(report).toMatchObject({ ok: true, events: 501, sealedSize: 501 });
      });
    });

    it.skipIf(driver.copyClosed === undefined)('leaves, once closed during a seal, a store whose copy is whole: every event, the checkpoint, and it verifies', async () => {
      const l = await driver.open();
      await l.append(Array.from({ length: 2000 }, (_, i) => note(`c${i % 7}`, `event ${i}`)));
      const sealing = l.seal();
      await l.close();
      const cp = await sealing;
      const copy = await driver.copyClosed!(l);
      try {
        expect(copy.info.id).toBe(l.info.id);
        expect((await copy.latestCheckpoint())?.note).toBe(cp!.note);
        const report = await verifyLedger(copy);
        expect(report.failures).toEqual([]);
        expect(report).toMatchObject({ ok: true, events: 2000, sealedSize: 2000, unsealed: 0 });
        await copy.append([note('c0', 'the copy keeps recording')]);
        expect(await copy.seal()).toMatchObject({ size: 2001, prevSize: 2000 });
      } finally {
        await copy.close();
      }
    });
  });

  describe("adopting a ledger without the sealer's record", () => {
    it('[R-SEAL-ADOPT] refuses to seal a ledger with checkpoints but no record, until adopt() verifies it whole and records its newest checkpoint', async () => {
      await withLedger(driver, async (l) => {
        const s = await buildSealed(l);
        await driver.edit(l, { kind: 'forgetSealRecord' });
        expect(await l.sealRecord()).toBeUndefined();
        await l.append([note(s.c, 'after the record was lost')]);
        await expect(l.seal()).rejects.toMatchObject({ code: 'seal_refused', message: expect.stringMatching(/adopt/) });
        expect((await l.checkpoints()).length).toBe(3);
        const adopted = await l.adopt({ against: s.checkpoints[1]!.note });
        expect(adopted.checkpoint?.note).toBe(s.checkpoints[2]!.note);
        expect(adopted.location).toBe(l.sealRecordLocation);
        expect((await l.sealRecord())?.note).toBe(s.checkpoints[2]!.note);
        expect(await l.seal()).toMatchObject({ size: 12, prevSize: 11 });
        expect((await verifyAfresh(driver, l)).failures).toEqual([]);
      });
    });

    it('[R-SEAL-ADOPT] does not adopt a ledger whose sealed part fails verification, and records nothing', async () => {
      await withLedger(driver, async (l) => {
        const s = await buildSealed(l);
        await driver.edit(l, { kind: 'forgetSealRecord' });
        await driver.edit(l, { kind: 'rewriteData', pos: s.pos(s.a, 1), data: '{"arguments":{"amount":5000,"order":"A-1042"},"tool":"billing.refund"}' });
        await expect(l.adopt()).rejects.toMatchObject({ name: 'WitnessError' });
        expect(await l.sealRecord()).toBeUndefined();
        await expect(l.seal({ force: true })).rejects.toMatchObject({ code: 'seal_refused' });
      });
    });

    it('needs no adoption for a brand-new ledger: its first seal starts the record', async () => {
      await withLedger(driver, async (l) => {
        expect(await l.sealRecord()).toBeUndefined();
        await l.append([note('n', 'first')]);
        // Events but no checkpoint: nothing to adopt, and adopting records nothing.
        const nothing = await l.adopt();
        expect(nothing.checkpoint).toBeNull();
        expect(nothing.warnings.join(' ')).toMatch(/no checkpoint yet/);
        expect(await l.sealRecord()).toBeUndefined();
        const cp = (await l.seal())!;
        expect((await l.sealRecord())?.note).toBe(cp.note);
      });
    });
  });

  describe('the sealer signs only what verifies', () => {
    it('refuses with store_corrupt to sign an unsealed event whose payload was edited, and writes nothing', async () => {
      await withLedger(driver, async (l) => {
        await l.append([note('v', 'sealed')]);
        await l.seal();
        const [r] = await l.append([note('v', 'refund 650')]);
        await driver.edit(l, { kind: 'rewriteData', pos: r!.pos, data: '{"text":"refund 5"}' });
        await expect(l.seal()).rejects.toMatchObject({ code: 'store_corrupt' });
        expect((await l.checkpoints()).map((c) => c.size)).toEqual([1]);
      });
    });

    it('[R-SEAL-ROLLBACK] refuses with seal_refused a sealed history rewritten with its chain recomputed and the checkpoints and tree nodes above it deleted; verify fails it against the record', async () => {
      await withLedger(driver, async (l) => {
        const s = await buildSealed(l);
        const forged = rewrittenStream(await rawRows(l), s.b, 2, { tool: 'crm.delete', arguments: { customer: 'customer-12345' } });
        for (const row of forged) await driver.edit(l, { kind: 'rewriteHeader', pos: row.pos, header: row.header, hash: row.hash });
        for (const row of forged) await driver.edit(l, { kind: 'rewriteData', pos: row.pos, data: row.data });
        await driver.edit(l, { kind: 'deleteCheckpoints', from: 2 });
        await driver.edit(l, { kind: 'dropTreeNodes' });
        await expect(l.seal({ force: true })).rejects.toMatchObject({ code: 'seal_refused' });
        expect((await l.checkpoints()).map((c) => c.size)).toEqual([5]);
        const r = await verifyAfresh(driver, l);
        expect(r.ok).toBe(false);
        // Not one chain failure: only what is signed outside the rows can tell.
        expect(r.failures.filter((f) => f.stream !== undefined)).toEqual([]);
        expect(where(r).map((f) => f.code)).toContain('sealed_record_mismatch');
      });
    });

    it('[R-SEAL-ROLLBACK] refuses with seal_refused when only the newest checkpoint was deleted, and verify reports checkpoint_missing', async () => {
      await withLedger(driver, async (l) => {
        await buildSealed(l);
        await driver.edit(l, { kind: 'deleteCheckpoints', from: 3 });
        await l.append([note('late', 'one more')]);
        await expect(l.seal()).rejects.toMatchObject({ code: 'seal_refused' });
        expect((await l.checkpoints()).map((c) => c.size)).toEqual([5, 8]);
        expect(where(await verifyAfresh(driver, l)).map((f) => f.code)).toContain('checkpoint_missing');
      });
    });
  });
}
