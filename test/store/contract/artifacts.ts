import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../../../src/core/index.js';
import type { DriverUnderTest } from './driver.js';
import { withLedger } from './fixtures.js';

export function artifactsContract(driver: DriverUnderTest): void {
  describe('artifacts', () => {
    it('stores artifacts by SHA-256 once, and returns their bytes', async () => {
      await withLedger(driver, async (l) => {
        const bytes = Buffer.from('screenshot bytes');
        const a = await l.putArtifact(bytes, 'image/png', 'before');
        const b = await l.putArtifact(bytes, 'image/png', 'before');
        expect(a).toEqual({ sha256: sha256Hex(bytes), mime: 'image/png', bytes: bytes.length, role: 'before' });
        expect(b).toEqual(a);
        expect(await l.readArtifact(a.sha256)).toEqual(bytes);
        expect(await l.readArtifact('0'.repeat(64))).toBeUndefined();
      });
    });

    it('answers for artifacts by digest alone (put, read, has), never with a file path a caller could open', async () => {
      await withLedger(driver, async (l) => {
        const bytes = Buffer.from('video bytes');
        const ref = await l.putArtifact(bytes, 'video/mp4', 'video');
        expect(await l.hasArtifact(ref.sha256)).toBe(true);
        expect(await l.hasArtifact(sha256Hex(Buffer.from('never stored')))).toBe(false);
        expect(await l.readArtifact(ref.sha256)).toEqual(bytes);
        // A path is a driver detail (PostgreSQL keeps artifacts elsewhere): the seam does not offer one.
        expect(Object.keys(l).concat(Object.getOwnPropertyNames(Object.getPrototypeOf(l)))).not.toContain('artifactPath');
      });
    });

    it('keeps artifacts byte for byte (empty, binary, large), shares them between handles, and keeps them across a reopen', async () => {
      await withLedger(driver, async (l, also) => {
        const empty = Buffer.alloc(0);
        const binary = Buffer.from([...Array(256).keys()]);
        const large = Buffer.alloc(3 * 1024 * 1024 + 7, 0xa5);
        const refs = [await l.putArtifact(empty, 'application/octet-stream'), await l.putArtifact(binary, 'application/octet-stream'), await l.putArtifact(large, 'video/mp4', 'video')];
        expect(refs.map((r) => r.bytes)).toEqual([0, 256, large.length]);
        expect(refs[0]).not.toHaveProperty('role');
        const other = also(await driver.openAgain(l));
        // Stored by one handle, read by another; stored again by the other, still one copy with the same name.
        expect(await other.readArtifact(refs[1]!.sha256)).toEqual(binary);
        expect(await other.putArtifact(binary, 'application/octet-stream')).toEqual(refs[1]);
        const viaOther = await other.putArtifact(Buffer.from('from the other handle'), 'text/plain');
        expect(await l.readArtifact(viaOther.sha256)).toEqual(Buffer.from('from the other handle'));
        await other.close();
        const reopened = also(await driver.openAgain(l));
        for (const [i, bytes] of [empty, binary, large].entries()) {
          expect(await reopened.hasArtifact(refs[i]!.sha256)).toBe(true);
          expect((await reopened.readArtifact(refs[i]!.sha256))!.equals(bytes)).toBe(true);
        }
      });
    });
  });
}
