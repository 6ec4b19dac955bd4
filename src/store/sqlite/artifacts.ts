import fs from 'node:fs';
import path from 'node:path';
import { WitnessError, sha256Hex, type ArtifactRef } from '../../core/index.js';
import { writeArtifactFile } from '../artifacts.js';
import { translateSqliteError } from './errors.js';
import { SqliteBase } from './open.js';

/** Artifacts, content addressed by SHA-256: files beside the ledger, a row each in `artifacts`. */
export abstract class SqliteArtifacts extends SqliteBase {
  // ------------------------------------------------------------------ artifacts

  async putArtifact(bytes: Uint8Array, mime: string, role?: string): Promise<ArtifactRef> {
    this.assertOpen();
    if (this.readonly) {
      // Refused before the file is written: a read-only handle must leave the store as it found it.
      throw new WitnessError('store_readonly', `The ledger ${this.info.location} is open read-only; open it for writing to store an artifact.`);
    }
    const sha256 = sha256Hex(bytes);
    writeArtifactFile(this.artifactsDir, sha256, bytes);
    try {
      this.stmts.putArtifact.run({ sha256, mime, bytes: bytes.byteLength, at: new Date().toISOString() });
    } catch (e) {
      throw translateSqliteError(e, this.info.location);
    }
    return role === undefined ? { sha256, mime, bytes: bytes.byteLength } : { sha256, mime, bytes: bytes.byteLength, role };
  }

  async readArtifact(sha256: string): Promise<Buffer | undefined> {
    this.assertOpen();
    try {
      return fs.readFileSync(this.artifactFile(sha256));
    } catch {
      return undefined;
    }
  }

  async hasArtifact(sha256: string): Promise<boolean> {
    this.assertOpen();
    return fs.existsSync(this.artifactFile(sha256));
  }

  /** Where an artifact's bytes live beside this ledger: the driver's own affair, not the interface's. */
  protected artifactFile(sha256: string): string {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new WitnessError('invalid_argument', `"${sha256}" is not a SHA-256 hex digest.`);
    return path.join(this.artifactsDir, sha256.slice(0, 2), sha256);
  }
}
