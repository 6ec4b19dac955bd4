import fs from 'node:fs';
import { Readable } from 'node:stream';
import type Database from 'better-sqlite3';
import { WitnessError, sha256Hex, type ArtifactRef } from '../../core/index.js';
import { artifactFilePath, checkDigest, resolveRange, sliced, writeArtifactFileStream } from '../artifacts.js';
import type { ArtifactInfo, ArtifactRange, ArtifactSource } from '../ledger.js';
import { translateSqliteError } from './errors.js';
import { SqliteBase } from './open.js';

/**
 * Artifacts, content addressed by SHA-256: files beside the ledger (`<db>.artifacts/<2 hex>/<sha>`),
 * a row each in `artifacts` (type, length). The file is the artifact: a row without its file is an
 * artifact the store does not hold, and a file without its row (a crash between the two) is held,
 * of unknown type.
 */
export abstract class SqliteArtifacts extends SqliteBase {
  private mimeStmt: Database.Statement | undefined;

  // ------------------------------------------------------------------ artifacts

  async putArtifact(bytes: Uint8Array, mime: string, role?: string): Promise<ArtifactRef> {
    this.assertOpen();
    this.refuseReadonly();
    const sha256 = sha256Hex(bytes);
    // Hashed first: bytes already stored are not written again.
    if (!fs.existsSync(artifactFilePath(this.artifactsDir, sha256))) await writeArtifactFileStream(this.artifactsDir, sliced(bytes, 1 << 20));
    return this.recordArtifact(sha256, bytes.byteLength, mime, role);
  }

  async putArtifactStream(source: ArtifactSource, mime: string, role?: string): Promise<ArtifactRef> {
    this.assertOpen();
    this.refuseReadonly();
    const { sha256, bytes } = await writeArtifactFileStream(this.artifactsDir, source);
    this.assertOpen();
    return this.recordArtifact(sha256, bytes, mime, role);
  }

  async readArtifact(sha256: string): Promise<Buffer | undefined> {
    this.assertOpen();
    try {
      return fs.readFileSync(this.artifactFile(sha256));
    } catch {
      return undefined;
    }
  }

  async readArtifactStream(sha256: string, range?: ArtifactRange): Promise<Readable | undefined> {
    this.assertOpen();
    const file = this.artifactFile(sha256);
    let fd: fs.promises.FileHandle;
    try {
      fd = await fs.promises.open(file, 'r');
    } catch {
      return undefined;
    }
    try {
      // Sized from the open file, so a range is checked against the bytes this stream will read.
      const { start, end } = resolveRange(range, (await fd.stat()).size, sha256);
      if (end > start) return fd.createReadStream({ start, end: end - 1, highWaterMark: 1 << 20 });
    } catch (e) {
      await fd.close();
      throw e;
    }
    // An empty artifact: createReadStream cannot express no bytes at all (its end is inclusive).
    await fd.close();
    return Readable.from([]);
  }

  async artifactInfo(sha256: string): Promise<ArtifactInfo | undefined> {
    this.assertOpen();
    let size: number;
    try {
      size = fs.statSync(this.artifactFile(sha256)).size;
    } catch (e) {
      if (e instanceof WitnessError) throw e;
      return undefined;
    }
    const mime = this.mimeOf(sha256);
    return mime === undefined ? { sha256, bytes: size } : { sha256, bytes: size, mime };
  }

  async *listArtifacts(): AsyncIterable<ArtifactInfo> {
    this.assertOpen();
    // The files are what the store holds (see the class comment), so they are listed, not the rows.
    let subs: string[];
    try {
      subs = fs.readdirSync(this.artifactsDir).filter((d) => /^[0-9a-f]{2}$/.test(d));
    } catch {
      return;
    }
    for (const sub of subs.sort()) {
      const names = fs.readdirSync(`${this.artifactsDir}/${sub}`).filter((n) => /^[0-9a-f]{64}$/.test(n) && n.startsWith(sub));
      for (const sha256 of names.sort()) {
        const info = await this.artifactInfo(sha256);
        if (info !== undefined) yield info;
      }
    }
  }

  async hasArtifact(sha256: string): Promise<boolean> {
    this.assertOpen();
    return fs.existsSync(this.artifactFile(sha256));
  }

  /** Where an artifact's bytes live beside this ledger: the driver's own affair, not the interface's. */
  protected artifactFile(sha256: string): string {
    return artifactFilePath(this.artifactsDir, sha256);
  }

  private refuseReadonly(): void {
    if (this.readonly) {
      // Refused before the file is written: a read-only handle must leave the store as it found it.
      throw new WitnessError('store_readonly', `The ledger ${this.info.location} is open read-only; open it for writing to store an artifact.`);
    }
  }

  private recordArtifact(sha256: string, bytes: number, mime: string, role: string | undefined): ArtifactRef {
    try {
      this.stmts.putArtifact.run({ sha256, mime, bytes, at: new Date().toISOString() });
    } catch (e) {
      throw translateSqliteError(e, this.info.location);
    }
    return role === undefined ? { sha256, mime, bytes } : { sha256, mime, bytes, role };
  }

  private mimeOf(sha256: string): string | undefined {
    checkDigest(sha256);
    this.mimeStmt ??= this.db.prepare('SELECT mime FROM artifacts WHERE sha256 = ?').pluck();
    try {
      return this.mimeStmt.get(sha256) as string | undefined;
    } catch (e) {
      throw translateSqliteError(e, this.info.location);
    }
  }
}
