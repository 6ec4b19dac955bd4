import { Readable } from 'node:stream';
import type { PoolClient } from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { WitnessError, sha256Hex, type ArtifactRef } from '../../core/index.js';
import { checkDigest, chunked, resolveRange, sliced } from '../artifacts.js';
import type { ArtifactInfo, ArtifactRange, ArtifactSource } from '../ledger.js';
import { translatePgError } from './errors.js';
import { PostgresBase } from './open.js';
import { ARTIFACT_CHUNK_BYTES } from './schema.js';

/** Where an artifact's bytes are: in its own row (at most one chunk, and every version 1 artifact), or in chunks. */
interface Stored {
  size: number;
  upload: string | null;
  chunk_size: number | null;
}

/** Artifacts listed per query by listArtifacts. */
const LIST_PAGE = 1000;

/**
 * Artifacts, content addressed by SHA-256, in the database itself, so every host that reaches it
 * reads them: one row of `artifacts` each, holding the bytes of a small one, and for one larger than
 * a chunk its chunks in `artifact_chunks`, written in the same transaction as that row (see
 * schema.ts artifactChunks for why, and why not large objects). Reads go a chunk per query, so no
 * more than one chunk of an artifact is ever in this process at once.
 */
export abstract class PostgresArtifacts extends PostgresBase {
  // ------------------------------------------------------------------ artifacts

  async putArtifact(bytes: Uint8Array, mime: string, role?: string): Promise<ArtifactRef> {
    this.assertOpen();
    this.assertWritable('store an artifact');
    if (bytes.byteLength > ARTIFACT_CHUNK_BYTES) return this.putArtifactStream(sliced(bytes, ARTIFACT_CHUNK_BYTES), mime, role);
    const sha256 = sha256Hex(bytes);
    await this.putInline(sha256, mime, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    return ref(sha256, mime, bytes.byteLength, role);
  }

  async putArtifactStream(source: ArtifactSource, mime: string, role?: string): Promise<ArtifactRef> {
    this.assertOpen();
    this.assertWritable('store an artifact');
    const { chunks, digest, total } = chunked(source, ARTIFACT_CHUNK_BYTES);
    // The source's own errors reach the caller as they are; only the database's are translated.
    const first = await chunks.next();
    const second = first.done === true ? first : await chunks.next();
    if (second.done === true) {
      // At most one chunk: the single-row form, with no transaction held open.
      const bytes = first.done === true ? Buffer.alloc(0) : first.value;
      await this.putInline(digest(), mime, bytes);
      return ref(digest(), mime, total(), role);
    }
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw translatePgError(e, this.info.location);
    }
    const upload = uuidv7();
    let sourceFailed = false;
    let broken = false;
    try {
      await client.query('BEGIN');
      let n = 0;
      const put = (bytes: Buffer) => client.query('INSERT INTO artifact_chunks (upload, n, bytes) VALUES ($1, $2, $3)', [upload, n++, bytes]);
      await put(first.value as Buffer);
      await put(second.value);
      for (;;) {
        let next: IteratorResult<Buffer>;
        try {
          next = await chunks.next();
        } catch (e) {
          sourceFailed = true;
          throw e;
        }
        if (next.done === true) break;
        this.assertOpen();
        await put(next.value);
      }
      const sha256 = digest();
      // Bytes already stored (by another handle, maybe at this very moment: the insert then waits
      // for that transaction) are kept once; this copy's chunks are rolled back with the rest.
      const added = await client.query(
        'INSERT INTO artifacts (sha256, mime, size, bytes, upload, chunk_size, created_at) VALUES ($1, $2, $3, NULL, $4, $5, $6) ON CONFLICT (sha256) DO NOTHING RETURNING 1',
        [sha256, mime, total(), upload, ARTIFACT_CHUNK_BYTES, new Date().toISOString()],
      );
      await client.query(added.rowCount === 1 ? 'COMMIT' : 'ROLLBACK');
      return ref(sha256, mime, total(), role);
    } catch (e) {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true;
      }
      // Stopped early by the database: the source is told, so a file or socket behind it is closed.
      if (!sourceFailed) await chunks.return(undefined).catch(() => undefined);
      if (sourceFailed) throw e;
      throw translatePgError(e, this.info.location);
    } finally {
      client.release(broken);
    }
  }

  async readArtifact(sha256: string): Promise<Buffer | undefined> {
    this.assertOpen();
    checkDigest(sha256);
    const rows = await this.sql<{ bytes: Buffer | null }>('SELECT bytes FROM artifacts WHERE sha256 = $1', [sha256]);
    const row = rows[0];
    if (row === undefined) return undefined;
    if (row.bytes !== null) return row.bytes;
    // Asked for whole, so it is gathered whole; readArtifactStream is the form that is not.
    const parts: Buffer[] = [];
    for await (const part of this.pieces(sha256, undefined)) parts.push(part);
    return Buffer.concat(parts);
  }

  async readArtifactStream(sha256: string, range?: ArtifactRange): Promise<Readable | undefined> {
    this.assertOpen();
    checkDigest(sha256);
    const info = await this.artifactInfo(sha256);
    if (info === undefined) return undefined;
    const wanted = range === undefined || (range.start === undefined && range.end === undefined) ? undefined : resolveRange(range, info.bytes, sha256);
    // Not object mode: the generator is pulled a chunk at a time, as the consumer drains it.
    return Readable.from(this.pieces(sha256, wanted), { objectMode: false });
  }

  async artifactInfo(sha256: string): Promise<ArtifactInfo | undefined> {
    this.assertOpen();
    checkDigest(sha256);
    const row = (await this.sql<{ size: number; mime: string }>('SELECT size, mime FROM artifacts WHERE sha256 = $1', [sha256]))[0];
    return row === undefined ? undefined : { sha256, bytes: row.size, mime: row.mime };
  }

  async *listArtifacts(): AsyncIterable<ArtifactInfo> {
    this.assertOpen();
    let after = '';
    for (;;) {
      const rows = await this.sql<{ sha256: string; size: number; mime: string }>('SELECT sha256, size, mime FROM artifacts WHERE sha256 > $1 ORDER BY sha256 LIMIT $2', [after, LIST_PAGE]);
      for (const r of rows) yield { sha256: r.sha256, bytes: r.size, mime: r.mime };
      if (rows.length < LIST_PAGE) return;
      after = rows[rows.length - 1]!.sha256;
    }
  }

  async hasArtifact(sha256: string): Promise<boolean> {
    this.assertOpen();
    checkDigest(sha256);
    return (await this.sql('SELECT 1 FROM artifacts WHERE sha256 = $1', [sha256])).length > 0;
  }

  private async putInline(sha256: string, mime: string, bytes: Buffer): Promise<void> {
    // ON CONFLICT DO NOTHING: the same bytes stored twice are one row, and nothing is ever updated.
    await this.sql('INSERT INTO artifacts (sha256, mime, size, bytes, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (sha256) DO NOTHING', [
      sha256,
      mime,
      bytes.byteLength,
      bytes,
      new Date().toISOString(),
    ]);
  }

  /**
   * The stored bytes in pieces of at most a chunk, one query each. Without a range: everything
   * stored under the artifact, whatever its row claims (verify hashes exactly what is there); a
   * chunk missing from the run is reported, not skipped. With one: the bytes [start, end), from
   * the chunks that hold them, each cut down by the server (substring) to the part asked for.
   */
  private async *pieces(sha256: string, range: { start: number; end: number } | undefined): AsyncGenerator<Buffer> {
    const row = (await this.sql<Stored>('SELECT size, upload, chunk_size FROM artifacts WHERE sha256 = $1', [sha256]))[0];
    if (row === undefined) throw this.gone(sha256, 'its row');
    const step = row.chunk_size ?? ARTIFACT_CHUNK_BYTES;
    if (row.upload === null) {
      // The single-row form (also every version 1 artifact, of any length): read a chunk's worth at a time.
      const end = range?.end ?? Infinity;
      for (let at = range?.start ?? 0; at < end; at += step) {
        const len = Math.min(step, end - at);
        const got = (await this.sql<{ b: Buffer | null }>('SELECT substring(bytes FROM $2 FOR $3) AS b FROM artifacts WHERE sha256 = $1', [sha256, at + 1, len]))[0];
        if (got?.b == null) throw this.gone(sha256, 'its row');
        if (got.b.length > 0) yield got.b;
        if (got.b.length < len) {
          if (range !== undefined) throw this.gone(sha256, `bytes from ${at + got.b.length}`);
          return;
        }
      }
      return;
    }
    if (range === undefined) {
      for (let n = 0; ; n++) {
        const got = (await this.sql<{ n: number; bytes: Buffer }>('SELECT n, bytes FROM artifact_chunks WHERE upload = $1 AND n >= $2 ORDER BY n LIMIT 1', [row.upload, n]))[0];
        if (got === undefined) return;
        if (got.n !== n) throw this.gone(sha256, `chunk ${n}`);
        yield got.bytes;
      }
    }
    for (let at = range.start; at < range.end;) {
      const n = Math.floor(at / step);
      const off = at - n * step;
      const len = Math.min(step - off, range.end - at);
      const got = (await this.sql<{ b: Buffer }>('SELECT substring(bytes FROM $3 FOR $4) AS b FROM artifact_chunks WHERE upload = $1 AND n = $2', [row.upload, n, off + 1, len]))[0];
      if (got === undefined || got.b.length !== len) throw this.gone(sha256, `chunk ${n}`);
      yield got.b;
      at += len;
    }
  }

  private gone(sha256: string, what: string): WitnessError {
    return new WitnessError(
      'store_corrupt',
      `The artifact ${sha256} in ${this.info.location} is incomplete (${what} is missing or short), so its stored bytes were changed; run \`witness verify\` to see where.`,
    );
  }
}

function ref(sha256: string, mime: string, bytes: number, role: string | undefined): ArtifactRef {
  return role === undefined ? { sha256, mime, bytes } : { sha256, mime, bytes, role };
}
