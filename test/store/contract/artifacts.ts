import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../../../src/core/index.js';
import type { ArtifactInfo, ArtifactRange, Ledger } from '../../../src/store/index.js';
import type { DriverUnderTest } from './driver.js';
import { event, verifyAfresh, where, withLedger } from './fixtures.js';

const MiB = 1 << 20;
const WRITER = fileURLToPath(new URL('../artifact-writer.mjs', import.meta.url));

/** Starts test/store/artifact-writer.mjs streaming an endless artifact into `url`, and kills it with SIGKILL once it is `mid` MiB in. */
export async function killMidArtifact(url: string, env: Record<string, string>, mid: number): Promise<void> {
  const child = spawn(process.execPath, [WRITER, url, String(mid)], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('MID')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the artifact writer exited (${code}) before it was killed: ${err}`)));
  });
  child.kill('SIGKILL');
  await exited;
}

/** `bytes` in pieces of odd, changing sizes (never aligned to a chunk), as a socket or a file reader hands them over. */
async function* oddPieces(bytes: Buffer, fail?: { after: number; error: Error }): AsyncGenerator<Uint8Array> {
  const sizes = [1, 7919, 65_537, 333_333, 4099, 1_048_583];
  let at = 0;
  for (let i = 0; at < bytes.length; i++) {
    if (fail !== undefined && at >= fail.after) throw fail.error;
    const n = sizes[i % sizes.length]!;
    yield new Uint8Array(bytes.subarray(at, at + n));
    at += n;
  }
}

async function drain(l: Ledger, sha256: string, range?: ArtifactRange): Promise<Buffer | undefined> {
  const stream = await l.readArtifactStream(sha256, range);
  if (stream === undefined) return undefined;
  const parts: Buffer[] = [];
  for await (const p of stream) parts.push(p as Buffer);
  return Buffer.concat(parts);
}

async function listed(l: Ledger): Promise<ArtifactInfo[]> {
  const out: ArtifactInfo[] = [];
  for await (const a of l.listArtifacts()) out.push(a);
  return out;
}

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

    it('streams a multi-chunk artifact in (odd-sized pieces, hashed as written) and out, whole and by byte range', async () => {
      await withLedger(driver, async (l, also) => {
        const bytes = randomBytes(5 * MiB + 12_345);
        const ref = await l.putArtifactStream(oddPieces(bytes), 'video/mp4', 'video');
        expect(ref).toEqual({ sha256: sha256Hex(bytes), mime: 'video/mp4', bytes: bytes.length, role: 'video' });
        expect(await l.hasArtifact(ref.sha256)).toBe(true);
        expect(await l.artifactInfo(ref.sha256)).toEqual({ sha256: ref.sha256, bytes: bytes.length, mime: 'video/mp4' });
        const other = also(await driver.openAgain(l, driver.readonly ? { readonly: true } : {}));
        expect((await drain(other, ref.sha256))!.equals(bytes)).toBe(true);
        expect((await other.readArtifact(ref.sha256))!.equals(bytes)).toBe(true);
        // Ranges are inclusive at both ends, as HTTP's are; an end past the last byte is cut to it.
        const ranges: Array<[ArtifactRange, number, number]> = [
          [{ start: 0, end: 0 }, 0, 1],
          [{ start: MiB - 1, end: MiB }, MiB - 1, MiB + 1],
          [{ start: 3 * MiB - 5, end: 4 * MiB + 77 }, 3 * MiB - 5, 4 * MiB + 78],
          [{ start: bytes.length - 10 }, bytes.length - 10, bytes.length],
          [{ end: 99 }, 0, 100],
          [{ start: 2 * MiB, end: 10 * MiB }, 2 * MiB, bytes.length],
        ];
        for (const [range, from, to] of ranges) expect((await drain(other, ref.sha256, range))!.equals(bytes.subarray(from, to)), JSON.stringify(range)).toBe(true);
        await expect(other.readArtifactStream(ref.sha256, { start: bytes.length })).rejects.toMatchObject({ code: 'invalid_argument' });
        await expect(other.readArtifactStream(ref.sha256, { start: 10, end: 9 })).rejects.toMatchObject({ code: 'invalid_argument' });
        await expect(other.readArtifactStream(ref.sha256, { start: -1 })).rejects.toMatchObject({ code: 'invalid_argument' });
        expect(await other.readArtifactStream(sha256Hex(Buffer.from('never stored')))).toBeUndefined();
        expect(await other.artifactInfo(sha256Hex(Buffer.from('never stored')))).toBeUndefined();
      });
    });

    it('streams small and empty artifacts and a Node Readable, and reads buffer-stored ones as streams', async () => {
      await withLedger(driver, async (l) => {
        const empty = await l.putArtifactStream(Readable.from([]), 'application/octet-stream');
        expect(empty).toEqual({ sha256: sha256Hex(Buffer.alloc(0)), mime: 'application/octet-stream', bytes: 0 });
        expect(await drain(l, empty.sha256)).toEqual(Buffer.alloc(0));
        const small = Buffer.from('a small screenshot');
        const viaReadable = await l.putArtifactStream(Readable.from([small.subarray(0, 5), small.subarray(5)], { objectMode: false }), 'image/png', 'before');
        expect(viaReadable).toEqual({ sha256: sha256Hex(small), mime: 'image/png', bytes: small.length, role: 'before' });
        expect(await l.readArtifact(viaReadable.sha256)).toEqual(small);
        expect(await drain(l, viaReadable.sha256, { start: 2, end: 6 })).toEqual(small.subarray(2, 7));
        const large = Buffer.alloc(2 * MiB + 3, 0x5a);
        const viaBuffer = await l.putArtifact(large, 'application/octet-stream');
        expect((await drain(l, viaBuffer.sha256, { start: MiB - 2, end: MiB + 1 }))!.equals(large.subarray(MiB - 2, MiB + 2))).toBe(true);
        expect(
          createHash('sha256')
            .update((await drain(l, viaBuffer.sha256))!)
            .digest('hex'),
        ).toBe(viaBuffer.sha256);
      });
    });

    it('leaves no artifact under any digest when the source throws midway, and rethrows its error', async () => {
      await withLedger(driver, async (l, also) => {
        const bytes = randomBytes(4 * MiB);
        const boom = new Error('the camera went away');
        await expect(l.putArtifactStream(oddPieces(bytes, { after: Math.floor(2.5 * MiB), error: boom }), 'video/mp4')).rejects.toBe(boom);
        // Nor when it fails within the first chunk.
        await expect(l.putArtifactStream(oddPieces(bytes, { after: 1000, error: boom }), 'video/mp4')).rejects.toBe(boom);
        for (const sha of [sha256Hex(bytes), sha256Hex(bytes.subarray(0, Math.floor(2.5 * MiB)))]) expect(await l.hasArtifact(sha)).toBe(false);
        expect(await listed(l)).toEqual([]);
        const other = also(await driver.openAgain(l));
        expect(await listed(other)).toEqual([]);
        // The same bytes stored in full afterwards are whole.
        const ref = await l.putArtifactStream(oddPieces(bytes), 'video/mp4');
        expect((await drain(other, ref.sha256))!.equals(bytes)).toBe(true);
        expect((await listed(other)).map((a) => a.sha256)).toEqual([ref.sha256]);
      });
    });

    it('keeps one copy of bytes stored twice, streamed or not, also by two handles at once, and lists every artifact held once', async () => {
      await withLedger(driver, async (l, also) => {
        const bytes = randomBytes(3 * MiB + 1);
        const other = also(await driver.openAgain(l));
        const [a, b] = await Promise.all([l.putArtifactStream(oddPieces(bytes), 'video/mp4'), other.putArtifactStream(oddPieces(bytes), 'video/mp4')]);
        expect(b).toEqual(a);
        expect(await l.putArtifactStream(oddPieces(bytes), 'video/mp4')).toEqual(a);
        expect(await l.putArtifact(bytes, 'video/mp4')).toEqual(a);
        const small = await l.putArtifact(Buffer.from('unreferenced'), 'text/plain');
        expect(await listed(other)).toEqual(
          [
            { sha256: a.sha256, bytes: bytes.length, mime: 'video/mp4' },
            { sha256: small.sha256, bytes: small.bytes, mime: 'text/plain' },
          ].sort((x, y) => x.sha256.localeCompare(y.sha256)),
        );
        expect((await drain(other, a.sha256))!.equals(bytes)).toBe(true);
      });
    });

    it('[R-TAMPER-ARTIFACT] reports artifact_mismatch when one byte inside a multi-chunk artifact changes, or its tail goes', async () => {
      for (const edit of ['flip', 'cut'] as const) {
        await withLedger(driver, async (l) => {
          const bytes = randomBytes(3 * MiB + 500);
          const ref = await l.putArtifactStream(oddPieces(bytes), 'video/mp4', 'video');
          const [r] = await l.append([event('s', 'capture', { role: 'video' }, { artifacts: [ref] })]);
          await l.seal();
          expect((await verifyAfresh(driver, l)).failures).toEqual([]);
          const changed = Buffer.from(bytes);
          if (edit === 'flip') changed[MiB + 4242]! ^= 0x01;
          await driver.edit(l, { kind: 'rewriteArtifact', sha256: ref.sha256, bytes: edit === 'flip' ? changed : changed.subarray(0, 2 * MiB) });
          expect(where(await verifyAfresh(driver, l)), edit).toEqual([{ code: 'artifact_mismatch', artifact: ref.sha256, leaf: r!.pos }]);
        });
      }
    });

    it.skipIf(driver.childStore === undefined)('leaves no artifact, under any digest, of a writer killed with SIGKILL while it streamed one in', async () => {
      await withLedger(driver, async (l, also) => {
        const { url, env = {} } = driver.childStore!(l);
        await killMidArtifact(url, env, 3);
        const other = also(await driver.openAgain(l));
        expect(await listed(other)).toEqual([]);
        // And the store takes the next one whole.
        const bytes = randomBytes(2 * MiB + 1);
        const ref = await other.putArtifactStream(oddPieces(bytes), 'video/mp4');
        expect((await listed(l)).map((a) => a.sha256)).toEqual([ref.sha256]);
      });
    });
  });
}
