import { describe, expect, it } from 'vitest';
import { leafHash, sha256Hex, verifyInclusion } from '../../../src/core/index.js';
import { verifyLedger } from '../../../src/store/index.js';
import type { DriverUnderTest } from './driver.js';
import { buildSealed, note, withLedger } from './fixtures.js';

export function readonlyContract(driver: DriverUnderTest): void {
  describe.runIf(driver.readonly)('a read-only handle', () => {
    it('reads, queries, proves and verifies what the writer stored, and refuses to append, seal or store an artifact', async () => {
      await withLedger(driver, async (l, also) => {
        const s = await buildSealed(l);
        const reader = also(await driver.openAgain(l, { readonly: true }));
        expect(reader.canSeal).toBe(false);
        expect(reader.info).toMatchObject({ id: l.info.id, origin: l.info.origin, size: 11 });
        expect((await reader.readStream(s.a)).map((e) => e.seq)).toEqual([0, 1, 2, 3, 4]);
        expect((await reader.query({ resource: 'billing', limit: 10 })).events.map((e) => e.pos)).toEqual([2, 4]);
        expect(await reader.readArtifact(s.artifact.sha256)).toEqual(s.artifact.bytes);
        const cp = (await reader.latestCheckpoint())!;
        const ev = (await reader.readStream(s.c))[1]!;
        expect(verifyInclusion(leafHash(Buffer.from(ev.hash, 'hex')), ev.pos, cp.size, await reader.inclusionProof(ev.pos, cp.size), cp.root)).toEqual({ ok: true });
        const report = await verifyLedger(reader);
        expect(report.failures).toEqual([]);
        expect(report).toMatchObject({ ok: true, events: 11, checkpoints: 3 });
        await expect(reader.append([note('ro', 'refused')])).rejects.toMatchObject({ name: 'WitnessError', code: 'store_readonly' });
        await expect(reader.seal({ force: true })).rejects.toMatchObject({ name: 'WitnessError' });
        await expect(reader.putArtifact(Buffer.from('refused'), 'text/plain')).rejects.toMatchObject({ name: 'WitnessError', code: 'store_readonly' });
        // The writer was not disturbed, and the refused writes left nothing.
        await l.append([note('rw', 'still writing')]);
        expect(await l.readStream('ro')).toEqual([]);
        expect((await l.checkpoints()).length).toBe(3);
        expect(await l.hasArtifact(sha256Hex(Buffer.from('refused')))).toBe(false);
      });
    });
  });
}
