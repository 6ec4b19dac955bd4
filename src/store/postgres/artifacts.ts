import { WitnessError, sha256Hex, type ArtifactRef } from '../../core/index.js';
import { PostgresBase } from './open.js';

/**
 * Artifacts, content addressed by SHA-256, in the `artifacts` table itself (bytes as bytea), so
 * every host that reaches the database reads them. Each is written and read whole; streaming large
 * ones through large objects is left for later.
 */
export abstract class PostgresArtifacts extends PostgresBase {
  // ------------------------------------------------------------------ artifacts

  async putArtifact(bytes: Uint8Array, mime: string, role?: string): Promise<ArtifactRef> {
    this.assertOpen();
    this.assertWritable('store an artifact');
    const sha256 = sha256Hex(bytes);
    // ON CONFLICT DO NOTHING: the same bytes stored twice are one row, and nothing is ever updated.
    await this.sql('INSERT INTO artifacts (sha256, mime, size, bytes, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (sha256) DO NOTHING', [
      sha256,
      mime,
      bytes.byteLength,
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
      new Date().toISOString(),
    ]);
    return role === undefined ? { sha256, mime, bytes: bytes.byteLength } : { sha256, mime, bytes: bytes.byteLength, role };
  }

  async readArtifact(sha256: string): Promise<Buffer | undefined> {
    this.assertOpen();
    checkDigest(sha256);
    const rows = await this.sql<{ bytes: Buffer }>('SELECT bytes FROM artifacts WHERE sha256 = $1', [sha256]);
    return rows[0]?.bytes;
  }

  async hasArtifact(sha256: string): Promise<boolean> {
    this.assertOpen();
    checkDigest(sha256);
    return (await this.sql('SELECT 1 FROM artifacts WHERE sha256 = $1', [sha256])).length > 0;
  }
}

function checkDigest(sha256: string): void {
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new WitnessError('invalid_argument', `"${sha256}" is not a SHA-256 hex digest.`);
}
