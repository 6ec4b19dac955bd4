import fs from 'node:fs';
import path from 'node:path';
import {
  LedgerVerifier,
  WitnessError,
  consistencyProof,
  inclusionProof,
  keyFingerprint,
  parseVerifierKey,
  signNote,
  type NodeSource,
  type NoteSigner,
  type NoteVerifier,
  type PreparedEvent,
} from '../../core/index.js';
import { openSealRecord, readSealRecordText, writeSealRecord } from '../seal-record.js';
import { checkArtifacts } from '../verify.js';
import type { AdoptOptions, AdoptResult, AppendReceipt, AppendRequest, CheckpointRow, PublicKeyRow, SealOptions, SealRecordText } from '../ledger.js';
import { SealThread, sealThreadAvailable } from './seal-thread.js';
import { Sealer, sealRefused, storedNodes, type SealerContext, type SqlCheckpoint } from './sealer.js';
import { SqliteQuery } from './query.js';

/** Sealing: the Merkle tree, signed checkpoints, the sealer's record, adoption and proofs. */
export abstract class SqliteSeal extends SqliteQuery {
  // ------------------------------------------------------------------ seal

  /** The sealer thread of this ledger, once started; undefined while sealing inline. */
  private sealThread: SealThread | undefined;
  private inlineSealer: Sealer | undefined;
  /** Seals run one after another; close() waits for the last one. */
  private sealChain: Promise<unknown> = Promise.resolve();
  private closing: Promise<void> | undefined;
  private sealThreadRefused = false;
  private warmed = false;

  /**
   * Signs a checkpoint over every event committed so far, but only over a tree that provably
   * extends the last checkpoint this key signed for this ledger (its record outside the database,
   * see seal-record.ts; with checkpoints but no record it refuses, see adopt(), unless the pending
   * note a kill -9 left beside it stands for it): the newest stored
   * checkpoint must be signed by this key, must be at least as large as the record, must be
   * consistent with it by a proof from the stored tree nodes checked by the core verifier, and its
   * stored frontier must reproduce its signed root. Otherwise it refuses with `seal_refused`, in
   * one sentence, and writes nothing (sealer.ts holds the rules).
   *
   * The work runs on the sealer thread (seal-thread.ts) with its own connection, so the thread that
   * records only waits for the short transaction that stores the checkpoint, as any second writer
   * would make it wait; before that thread has loaded, inline (sealOnce). Resolves once the
   * checkpoint is committed, synced and recorded.
   */
  async seal(options: SealOptions = {}): Promise<CheckpointRow | null> {
    this.assertOpen();
    if (this.closing !== undefined) throw new WitnessError('closed', `The ledger ${this.info.location} is closing; open it again to seal.`);
    const run = this.sealChain.then(() => this.sealRetrying(options));
    this.sealChain = run.catch(() => undefined);
    return run;
  }

  private async sealRetrying(options: SealOptions): Promise<CheckpointRow | null> {
    // Another process that has just committed a ledger's first checkpoint writes the record right
    // after its commit: a seal that lands in between sees checkpoints and no record yet. Look again
    // for up to a second before refusing (a deleted record stays refused, a second later).
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.sealOnce(options);
      } catch (e) {
        if (attempt >= 20 || !(e instanceof WitnessError) || e.details?.['noRecord'] !== true) throw e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  private async sealOnce(options: SealOptions): Promise<CheckpointRow | null> {
    const { signer, own } = this.sealingKey();
    this.refuseForeignKey();
    this.checkRecordWritable();
    const request = { force: options.force === true, now: options.now ?? new Date() };
    const thread = this.threadFor(signer);
    if (thread?.ready === true) return thread.seal(request);
    // Until the thread has loaded (the first few hundred milliseconds of a process, or a one-shot
    // `witness seal`), the seal runs inline rather than waiting for it: such seals are small or
    // have nobody recording beside them. Inline, on this connection, a commit is
    // synchronous=NORMAL under durability 'process'.
    thread?.warm();
    this.inlineSealer ??= new Sealer(this.db, this.sealerContext(), own, { sign: (body) => signNote(body, [signer]), durable: this.durability === 'process' ? 'raise-sync' : 'as-is' });
    const sealed = await this.inlineSealer.seal(request);
    await this.inlineSealer.afterSeal();
    return sealed;
  }

  private sealerContext(): SealerContext {
    return { location: this.info.location, origin: this.info.origin, sealRecordPath: this.sealRecordPath, sealRecordConfigured: this.sealRecordConfigured };
  }

  /** This ledger's sealer thread, started on first need; undefined where it cannot run (sources, `:memory:`). */
  private threadFor(signer: NoteSigner): SealThread | undefined {
    if (this.sealThread === undefined && !this.sealThreadRefused) {
      this.sealThreadRefused = this.info.location === ':memory:' || !sealThreadAvailable();
      if (!this.sealThreadRefused) {
        const busyTimeoutMs = Number(this.db.pragma('busy_timeout', { simple: true }));
        this.sealThread = new SealThread({ path: this.info.location, busyTimeoutMs, context: this.sealerContext(), verifierKey: signer.verifierKey }, signer);
      }
    }
    return this.sealThread;
  }

  /** A writer that can seal will: its first append warms the sealer thread (SealThread.warm). */
  private warmSealThread(): void {
    this.warmed = true;
    if (!this.canSeal || this.foreignKey !== undefined || this.signer === undefined || this.closing !== undefined) return;
    this.threadFor(this.signer)?.warm();
  }

  /**
   * While the sealer thread writes (a few milliseconds per seal), appends wait here, off the event
   * loop, rather than in SQLite's busy handler, which sleeps the recording thread in steps of up to
   * 100 ms. Against another process's lock the busy handler still applies.
   */
  override async append(batch: readonly AppendRequest[]): Promise<AppendReceipt[]> {
    const events = this.prepare(batch);
    if (!this.warmed) this.warmSealThread();
    const writing = this.sealThread?.writing;
    if (writing !== undefined) await writing;
    return this.appendPreparedSync(events);
  }

  override async appendPrepared(events: readonly PreparedEvent[]): Promise<AppendReceipt[]> {
    if (!this.warmed) this.warmSealThread();
    const writing = this.sealThread?.writing;
    if (writing !== undefined) await writing;
    return this.appendPreparedSync(events);
  }

  /**
   * Waits for a seal on its way (it completes and is recorded) and for the sealer thread's WAL copy
   * to finish, lets that thread close its connection, and only then closes this one: afterwards the
   * file is whole on its own, ready to be copied or reopened.
   */
  override async close(): Promise<void> {
    if (this.closed) return;
    this.closing ??= (async () => {
      await this.sealChain;
      await this.sealThread?.close();
      await super.close();
    })();
    return this.closing;
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
      throw sealRefused(
        `this process cannot write ${dir}, where it must record the checkpoint it signs (${this.sealRecordPath}: ${(e as NodeJS.ErrnoException).code ?? 'error'}); create that directory or let the sealer write it`,
      );
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
      throw sealRefused(
        `${location} exists but cannot be used as the record (${(e as Error).message.replace(/^Not signing: /, '').replace(/\.$/, '')}), and adopting never replaces a record; move it aside (keep it as evidence) and run again`,
      );
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
    if (this.read(() => this.stmts.latestCheckpoint.get()) === undefined) {
      // No checkpoint, so no record can be missing: the first seal starts the record itself.
      return { checkpoint: null, location, warnings: [`${this.info.location} has no checkpoint yet; \`witness seal\` signs its first one and starts the record.`] };
    }
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
    return storedNodes(this.stmts.node, this.info.location);
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
