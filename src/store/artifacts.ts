import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { WitnessError } from '../core/index.js';
import type { ArtifactRange, ArtifactSource } from './ledger.js';
import { syncDirectory } from './sync-directory.js';

/*
 * What both drivers share about artifacts: digest checks, byte ranges, cutting a stream into
 * chunks of one size, and (for SQLite, and anything else that keeps them as files) the
 * content-addressed file layout `<dir>/<first two hex>/<sha256>`.
 */

export function checkDigest(sha256: string): void {
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new WitnessError('invalid_argument', `"${sha256}" is not a SHA-256 hex digest.`);
}

/** A range resolved against an artifact of `size` bytes, as [start, end) with end exclusive. */
export function resolveRange(range: ArtifactRange | undefined, size: number, sha256: string): { start: number; end: number } {
  if (range === undefined || (range.start === undefined && range.end === undefined)) return { start: 0, end: size };
  const bad = (v: number | undefined) => v !== undefined && (!Number.isSafeInteger(v) || v < 0);
  if (bad(range.start) || bad(range.end)) {
    throw new WitnessError('invalid_argument', `The range ${String(range.start ?? '')}-${String(range.end ?? '')} of artifact ${sha256} is not a pair of byte offsets; give whole numbers from 0.`);
  }
  const start = range.start ?? 0;
  const last = range.end ?? size - 1;
  if (start >= size || last < start) {
    throw new WitnessError(
      'invalid_argument',
      `The range ${start}-${String(range.end ?? '')} lies outside artifact ${sha256}, which has ${size} bytes; ask for bytes 0 to ${size - 1} at most, the start not after the end.`,
    );
  }
  return { start, end: Math.min(last, size - 1) + 1 };
}

function asBytes(piece: unknown): Uint8Array {
  if (piece instanceof Uint8Array) return piece;
  throw new WitnessError('invalid_argument', `An artifact source yielded ${typeof piece === 'string' ? 'a string' : typeof piece}, not bytes; read it without an encoding.`);
}

/**
 * Cuts `source` into chunks of exactly `size` bytes (the last may be shorter, and an empty source
 * yields nothing), hashing as it goes: `digest()` is the SHA-256 of everything yielded, once the
 * source is exhausted. Each chunk is a fresh Buffer the caller may keep.
 */
export function chunked(source: ArtifactSource, size: number): { chunks: AsyncGenerator<Buffer>; digest: () => string; total: () => number } {
  const hash = createHash('sha256');
  let total = 0;
  let digest: string | undefined;
  async function* chunks(): AsyncGenerator<Buffer> {
    let buf = Buffer.allocUnsafe(size);
    let used = 0;
    for await (const raw of source) {
      const piece = asBytes(raw);
      hash.update(piece);
      total += piece.byteLength;
      let at = 0;
      while (at < piece.byteLength) {
        const n = Math.min(size - used, piece.byteLength - at);
        buf.set(piece.subarray(at, at + n), used);
        used += n;
        at += n;
        if (used === size) {
          yield buf;
          buf = Buffer.allocUnsafe(size);
          used = 0;
        }
      }
    }
    if (used > 0) yield buf.subarray(0, used);
    digest = hash.digest('hex');
  }
  return {
    chunks: chunks(),
    digest: () => {
      if (digest === undefined) throw new WitnessError('store_fault', 'An artifact digest was asked for before its source ended, which is a bug; report it with this message.');
      return digest;
    },
    total: () => total,
  };
}

export function artifactFilePath(dir: string, sha256: string): string {
  checkDigest(sha256);
  return path.join(dir, sha256.slice(0, 2), sha256);
}

/**
 * Writes `source` into the content-addressed layout under `dir` without holding it whole: into a
 * temporary file beside the final ones, hashed as written, fsynced, then renamed to its digest (and
 * the directory fsynced), so a reader never sees half an artifact and an error midway leaves no
 * file under any digest (the temporary file is removed; after a crash it stays, named `*.tmp`,
 * never under a digest). A digest already present is kept and the new copy dropped.
 */
export async function writeArtifactFileStream(dir: string, source: ArtifactSource): Promise<{ sha256: string; bytes: number }> {
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${process.pid}.${randomBytes(8).toString('hex')}.tmp`);
  const { chunks, digest, total } = chunked(source, 1 << 20);
  const fd = await fs.promises.open(tmp, 'wx', 0o644);
  let renamed = false;
  try {
    for await (const c of chunks) await fd.write(c);
    await fd.sync();
    await fd.close();
    const sha256 = digest();
    const sub = path.join(dir, sha256.slice(0, 2));
    const target = path.join(sub, sha256);
    if (!fs.existsSync(target)) {
      fs.mkdirSync(sub, { recursive: true });
      fs.renameSync(tmp, target);
      renamed = true;
      syncDirectory(sub);
    }
    return { sha256, bytes: total() };
  } finally {
    await fd.close().catch(() => undefined);
    if (!renamed) fs.rmSync(tmp, { force: true });
  }
}

/** One buffer as an ArtifactSource, in slices, so the buffer forms can share the streaming paths. */
export async function* sliced(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.byteLength; at += size) yield bytes.subarray(at, Math.min(at + size, bytes.byteLength));
}
