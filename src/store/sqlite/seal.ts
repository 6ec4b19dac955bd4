import fs from 'node:fs';
import path from 'node:path';
import {
  ChainChecker,
  Frontier,
  LedgerVerifier,
  WitnessError,
  consistencyProof,
  formatCheckpoint,
  inclusionProof,
  keyFingerprint,
  leafHash,
  openCheckpoint,
  parseVerifierKey,
  signNote,
  verifyConsistency,
  type Failure,
  type NodeSource,
  type NoteSigner,
  type NoteVerifier,
} from '../../core/index.js';
import { openSealRecord, readSealRecordText, writeSealRecord, type SealRecord } from '../seal-record.js';
import { checkArtifacts } from '../verify.js';
import type { AdoptOptions, AdoptResult, CheckpointRow, PublicKeyRow, RawEventRow, SealOptions, SealRecordText } from '../ledger.js';
import { translateSqliteError } from './errors.js';
import { SqliteQuery } from './query.js';

const SEAL_READ_PAGE = 10_000;

/** Sealing: the Merkle tree, signed checkpoints, the sealer's record, adoption and proofs. */
export abstract class SqliteSeal extends SqliteQuery {
  // ------------------------------------------------------------------ seal

  /**
   * Signs a checkpoint over every event committed so far, but only over a tree that provably
   * extends the last checkpoint this key signed for this ledger (its record outside the database,
   * see seal-record.ts; with checkpoints but no record it refuses, see adopt()): the newest stored
   * checkpoint must be signed by this key, must be at least as large as the record, must be
   * consistent with it by a proof from the stored tree nodes checked by the core verifier, and its
   * stored frontier must reproduce its signed root. Otherwise it refuses with `seal_refused`, in
   * one sentence, and writes nothing.
   */
  async seal(options: SealOptions = {}): Promise<CheckpointRow | null> {
    // Another process that has just committed a ledger's first checkpoint writes the record right
    // after its commit: a seal that lands in between sees checkpoints and no record yet. Look again
    // for up to a second before refusing (a deleted record stays refused, a second later).
    for (let attempt = 1; ; attempt++) {
      try {
        return this.sealOnce(options);
      } catch (e) {
        if (attempt >= 20 || !(e instanceof WitnessError) || e.details?.['noRecord'] !== true) throw e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  private sealOnce(options: SealOptions): CheckpointRow | null {
    this.assertOpen();
    const { signer, own } = this.sealingKey();
    this.refuseForeignKey();
    const now = options.now ?? new Date();
    this.checkRecordWritable();
    const run = this.db.transaction((): CheckpointRow | null => {
      // Read under the write lock, so that of two sealers the second sees the first's checkpoint.
      const text = readSealRecordText(this.sealRecordPath);
      const record = text === undefined ? undefined : openSealRecord(text, own, this.info.origin, this.sealRecordPath);
      const last = this.stmts.latestCheckpoint.get() as SqlCheckpoint | undefined;
      const { frontier, root: lastRoot } = this.trustedFrontier(last, record, own);
      const end = this.readNextPos();
      if (last !== undefined && end === last.size && options.force !== true) return null;
      if (last === undefined && end === 0 && options.force !== true) return null;
      // Signing is a statement that these events are genuine, so each new event is verified
      // first (digest, hash, link to its stored predecessor): a rewrite of the unsealed tail is
      // refused here instead of being signed by the real key.
      const failures: Failure[] = [];
      const chain = new ChainChecker(this.info.origin, (f) => failures.push(f), () => undefined);
      for (let from = frontier.size; from < end; from += SEAL_READ_PAGE) {
        const rows = this.stmts.scan.all(from, Math.min(SEAL_READ_PAGE, end - from)) as RawEventRow[];
        for (const row of rows) {
          if (row.pos !== frontier.size) {
            throw new WitnessError('store_corrupt', `Event position ${frontier.size} is missing from ${this.info.location}; not signing: run \`witness verify\`.`);
          }
          if (!chain.streams.has(row.stream) && row.seq > 0) {
            const prev = this.stmts.hashAt.get(row.stream, row.seq - 1) as Buffer | undefined;
            if (prev !== undefined) chain.seed(row.stream, row.seq, prev);
          }
          const hash = chain.check(row, { stream: row.stream, seq: row.seq, leaf: row.pos });
          const bad = failures[0];
          if (bad !== undefined) {
            throw new WitnessError(
              'store_corrupt',
              `Not signing: the event at leaf ${row.pos} (session ${row.stream}, seq ${row.seq}) does not verify (${bad.code}); the ledger may have been edited, run \`witness verify\`.`,
              { details: { failure: bad } },
            );
          }
          for (const n of frontier.push(leafHash(hash))) this.stmts.putNode.run(n.level, n.index, n.hash);
        }
      }
      const root = frontier.root();
      const prevSize = last?.size ?? null;
      let consistency: Buffer[] = [];
      if (prevSize !== null && lastRoot !== undefined) {
        // The proof is built from stored nodes, which the database writer could have edited: it
        // is checked before it is stored, so a stored proof is never one that fails.
        consistency = this.provenConsistency(prevSize, lastRoot, end, root, () => `the stored tree nodes do not prove that the new tree of ${end} events extends checkpoint ${last!.id} (size ${prevSize}): the tree_nodes table was edited`);
      }
      const body = formatCheckpoint({ origin: this.info.origin, size: end, rootHash: root, extensions: [`witness-time ${now.toISOString()}`] });
      const note = signNote(body, [signer]);
      const consistencyJson = JSON.stringify(consistency.map((h) => h.toString('hex')));
      const info = this.stmts.putCheckpoint.run(end, root, note, now.toISOString(), JSON.stringify(frontier.toJSON()), consistencyJson, prevSize);
      return { id: Number(info.lastInsertRowid), size: end, root, note, ts: now.toISOString(), consistency: JSON.parse(consistencyJson) as string[], prevSize };
    });
    let sealed: CheckpointRow | null;
    // The record is written after the commit (a record ahead of the database would refuse every
    // later seal), so the commit must be on disk first: with durability 'process' commits are
    // not synced, and a power cut could otherwise lose a checkpoint that the record names.
    const syncOnce = this.durability === 'process';
    try {
      if (syncOnce) this.db.pragma('synchronous = FULL');
      sealed = run.immediate();
    } catch (e) {
      throw translateSqliteError(e, this.info.location);
    } finally {
      if (syncOnce) this.db.pragma('synchronous = NORMAL');
    }
    // PASSIVE never waits for readers or writers; whatever it cannot copy now, the next one will.
    try {
      this.db.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      // A busy checkpoint is not a failure of the seal.
    }
    // A crash before this line leaves the record behind the database, which the next seal accepts:
    // the newer checkpoint is signed by this key and proven consistent with the record.
    if (sealed !== null) writeSealRecord(this.sealRecordPath, { note: sealed.note, size: sealed.size, root: sealed.root }, own, this.info.origin);
    return sealed;
  }

  /**
   * Where the next tree starts: the newest stored checkpoint's frontier, once that checkpoint is
   * shown to be this key's and to extend the record. Runs under the write lock.
   */
  protected trustedFrontier(last: SqlCheckpoint | undefined, record: SealRecord | undefined, own: NoteVerifier): { frontier: Frontier; root: Buffer | undefined } {
    const where = this.info.location;
    const kept = `kept in ${this.sealRecordPath}`;
    if (last === undefined) {
      if (record !== undefined) {
        throw sealRefused(`${where} holds no checkpoint, but this key last signed one of size ${record.size} for it (${kept}), so its checkpoints were deleted or the ledger was replaced; run \`witness verify --against ${this.sealRecordPath}\``);
      }
      return { frontier: Frontier.empty(), root: undefined };
    }
    if (record === undefined) {
      // No silent trust on first use: a ledger with checkpoints and no record was sealed before
      // records existed, had its record moved aside, or had it deleted by someone rolling it back.
      // Only a person can tell which, so adoption is an explicit command that verifies first.
      const seal = `witness seal --adopt --store sqlite:${where}${this.sealRecordConfigured ? ` --seal-record ${this.sealRecordPath}` : ''}`;
      throw sealRefused(
        `${where} has checkpoints but no record of the last one this key signed (looked for ${this.sealRecordPath}), so it cannot tell whether they were rolled back; if the ledger is yours and intact, run \`${seal}\` (with --against FILE if you saved a checkpoint), which verifies it whole and then records its newest checkpoint`,
        { noRecord: true },
      );
    }
    let signed: { size: number; root: Buffer };
    try {
      const { checkpoint } = openCheckpoint(last.note, [own], this.info.origin);
      signed = { size: checkpoint.size, root: Buffer.from(checkpoint.rootHash) };
    } catch {
      throw sealRefused(`the newest checkpoint in ${where} (id ${last.id}, size ${last.size}) is not signed by this key, so it was not written by this ledger's sealer; run \`witness verify\``);
    }
    if (signed.size !== last.size) {
      throw sealRefused(`checkpoint ${last.id} in ${where} is stored as size ${last.size} but signed for size ${signed.size}, so the checkpoints table was edited; run \`witness verify\``);
    }
    if (signed.size < record.size) {
      throw sealRefused(`the newest checkpoint in ${where} has size ${signed.size}, but this key last signed one of size ${record.size} (${kept}), so checkpoints were deleted or the ledger was rolled back; run \`witness verify --against ${this.sealRecordPath}\``);
    }
    this.provenConsistency(record.size, record.root, signed.size, signed.root, () => `the newest checkpoint in ${where} (size ${signed.size}) does not extend the last one this key signed (size ${record.size}, ${kept}), so history was rewritten; run \`witness verify --against ${this.sealRecordPath}\``);
    let frontier: Frontier;
    try {
      frontier = Frontier.fromJSON(JSON.parse(last.frontier));
    } catch {
      throw sealRefused(`the stored frontier of checkpoint ${last.id} in ${where} is malformed, so the sealer's working state was edited; run \`witness verify\``);
    }
    if (frontier.size !== signed.size || !frontier.root().equals(signed.root)) {
      throw sealRefused(`the stored frontier of checkpoint ${last.id} in ${where} does not reproduce the root this key signed for size ${signed.size}, so it was edited to make the key sign another tree; run \`witness verify\``);
    }
    return { frontier, root: signed.root };
  }

  /** A consistency proof from stored nodes, checked by the core verifier against two signed roots; refuses when it fails. */
  protected provenConsistency(oldSize: number, oldRoot: Buffer, newSize: number, newRoot: Buffer, why: () => string): Buffer[] {
    let proof: Buffer[];
    try {
      proof = consistencyProof(oldSize, newSize, this.nodeSource());
    } catch {
      throw sealRefused(why());
    }
    if (!verifyConsistency(oldSize, newSize, proof, oldRoot, newRoot).ok) throw sealRefused(why());
    return proof;
  }

  /** The signer and its verifier, or the reason this process cannot seal. */
  protected sealingKey(): { signer: NoteSigner; own: NoteVerifier } {
    const signer = this.signer;
    const own = this.ownVerifier;
    if (signer === undefined || own === undefined || !this.canSeal) {
      throw new WitnessError('invalid_key', `No signing key for ${this.info.location}; checkpoints need the key file beside the ledger or WITNESS_SIGNING_KEY.`);
    }
    return { signer, own };
  }

  protected refuseForeignKey(): void {
    if (this.foreignKey !== undefined) {
      throw new WitnessError(
        'seal_refused',
        `Not signing: the signing key ${fingerprintOf(this.foreignKey.signer)} is not this ledger's key ${fingerprintOf(this.foreignKey.ledger)}, and a ledger is signed by the key it was created with only (key rotation is not built yet); use that key.`,
      );
    }
  }

  /**
   * Checked before signing, since a checkpoint committed but not recorded makes every later seal
   * ask for adoption (the record is replaced by a rename, so the directory is what must be writable).
   */
  protected checkRecordWritable(): void {
    const dir = path.dirname(this.sealRecordPath);
    try {
      fs.accessSync(dir, fs.constants.W_OK);
    } catch (e) {
      throw sealRefused(`this process cannot write ${dir}, where it must record the checkpoint it signs (${this.sealRecordPath}: ${(e as NodeJS.ErrnoException).code ?? 'error'}); create that directory or let the sealer write it`);
    }
  }

  /**
   * For a ledger with checkpoints but no record, on explicit request (`witness seal --adopt`):
   * verifies the whole ledger from raw rows, in one read snapshot, with this key alone (every
   * checkpoint must be this key's, every root must match the rebuilt tree, every artifact its
   * digest) and against `against` when given; any failure refuses. Then records the newest
   * checkpoint as the one this key last signed. It signs nothing itself. An existing record, even a
   * damaged one, is never replaced here: it may be the evidence of a roll-back.
   */
  async adopt(options: AdoptOptions = {}): Promise<AdoptResult> {
    this.assertOpen();
    const { own } = this.sealingKey();
    this.refuseForeignKey();
    const location = this.sealRecordPath;
    let existing: string | undefined;
    try {
      existing = readSealRecordText(location);
    } catch (e) {
      throw sealRefused(`${location} exists but cannot be used as the record (${(e as Error).message.replace(/^Not signing: /, '').replace(/\.$/, '')}), and adopting never replaces a record; move it aside (keep it as evidence) and run again`);
    }
    if (existing !== undefined) {
      let size = '';
      try {
        size = `, size ${openSealRecord(existing, own, this.info.origin, location).size}`;
      } catch {
        // Foreign or damaged: still a record that adopting must not replace.
      }
      throw new WitnessError(
        'invalid_argument',
        `The sealer already has a record of its last checkpoint for ${this.info.location} (${location}${size}), so there is nothing to adopt; run \`witness seal\` without --adopt, or move the record aside (keep it as evidence) if you mean to replace it.`,
      );
    }
    this.checkRecordWritable();
    const { v: verifier, newest } = this.read(() =>
      this.db.transaction(() => {
        const v = new LedgerVerifier({
          origin: this.info.origin,
          verifiers: [own],
          keySource: 'pinned',
          ...(options.against === undefined ? {} : { against: options.against }),
        });
        const rows = this.stmts.allCheckpoints.all() as SqlCheckpoint[];
        v.setCheckpoints(rows.map(toCheckpoint));
        for (const page of this.scanSync()) for (const row of page) v.addRow(row);
        return { v, newest: rows[rows.length - 1] };
      })(),
    );
    // Artifacts are files, outside the read snapshot, so they are re-hashed after it as verify does.
    await checkArtifacts(verifier, this);
    const report = verifier.finish();
    const bad = report.first;
    if (bad !== undefined) {
      const at = bad.leaf !== undefined ? ` at leaf ${bad.leaf}` : bad.checkpoint !== undefined ? ` at checkpoint ${bad.checkpoint}` : '';
      throw new WitnessError(
        'seal_refused',
        `Not adopting: ${this.info.location} does not verify with this key (${bad.code}${at}${report.failures.length > 1 ? ` and ${report.failures.length - 1} more` : ''}), so its newest checkpoint is not recorded as one this key vouches for; run \`witness verify --trusted-key\` with this ledger's public key to see why.`,
        { details: { failure: bad } },
      );
    }
    if (newest === undefined) return { checkpoint: null, location, warnings: report.warnings };
    writeSealRecord(location, { note: newest.note, size: newest.size, root: newest.root }, own, this.info.origin);
    return { checkpoint: toCheckpoint(newest), location, warnings: report.warnings };
  }

  get sealRecordLocation(): string {
    return this.sealRecordPath;
  }

  async sealRecord(): Promise<SealRecordText | undefined> {
    this.assertOpen();
    const text = readSealRecordText(this.sealRecordPath);
    return text === undefined ? undefined : { note: text, location: this.sealRecordPath };
  }

  protected nodeSource(): NodeSource {
    const stmt = this.stmts.node;
    const location = this.info.location;
    return {
      node(level: number, index: number): Uint8Array {
        const h = stmt.get(level, index) as Buffer | undefined;
        if (h === undefined) {
          throw new WitnessError('not_found', `Merkle node ${level}/${index} is not in ${location}; the range asked for is not sealed yet, run \`witness seal\`.`);
        }
        return h;
      },
    };
  }

  async checkpoints(): Promise<CheckpointRow[]> {
    this.assertOpen();
    return this.read(() => (this.stmts.allCheckpoints.all() as SqlCheckpoint[]).map(toCheckpoint));
  }


  async latestCheckpoint(): Promise<CheckpointRow | undefined> {
    this.assertOpen();
    const row = this.read(() => this.stmts.latestCheckpoint.get() as SqlCheckpoint | undefined);
    return row === undefined ? undefined : toCheckpoint(row);
  }

  async inclusionProof(pos: number, size: number): Promise<Buffer[]> {
    this.assertOpen();
    return inclusionProof(pos, size, this.nodeSource());
  }

  async consistencyProof(oldSize: number, newSize: number): Promise<Buffer[]> {
    this.assertOpen();
    return consistencyProof(oldSize, newSize, this.nodeSource());
  }

  async publicKeys(): Promise<PublicKeyRow[]> {
    this.assertOpen();
    return this.read(() => this.stmts.keys.all() as Array<{ vkey: string; name: string; added_at: string }>).map((r) => ({
      vkey: r.vkey,
      name: r.name,
      addedAt: r.added_at,
    }));
  }
}

interface SqlCheckpoint {
  id: number;
  size: number;
  root: Buffer;
  note: string;
  ts: string;
  frontier: string;
  consistency: string;
  prev_size: number | null;
}

function sealRefused(why: string, details?: Record<string, unknown>): WitnessError {
  return new WitnessError('seal_refused', `Not signing: ${why}.`, details === undefined ? {} : { details });
}

function fingerprintOf(vkey: string): string {
  try {
    return keyFingerprint(parseVerifierKey(vkey));
  } catch {
    return JSON.stringify(vkey.slice(0, 80));
  }
}

function toCheckpoint(r: SqlCheckpoint): CheckpointRow {
  let consistency: string[] = [];
  try {
    const parsed: unknown = JSON.parse(r.consistency);
    if (Array.isArray(parsed)) consistency = parsed.map(String);
  } catch {
    // A damaged proof column surfaces as a failed consistency check in verify, not here.
  }
  return { id: r.id, size: r.size, root: r.root, note: r.note, ts: r.ts, consistency, prevSize: r.prev_size };
}
