import { WitnessError, consistencyProof, inclusionProof, signNote, type NodeSource, type NoteSigner, type PreparedEvent, type RotationEntry } from '../../core/index.js';
import type { AdoptOptions, AdoptResult, AppendOptions, AppendReceipt, AppendRequest, CheckpointRow, PublicKeyRow, SealOptions, SealRecordText } from '../ledger.js';
import { adoptLedger, retryWhileRecordMissing, sealFrontSteps, sealRecordText, toCheckpoint, type SealFront, type StoredCheckpointRow } from '../seal-front.js';
import { keyAwareFront, pendingRotationSigners } from '../seal-keys.js';
import { SealThread, sealThreadAvailable } from './seal-thread.js';
import { Sealer, storedNodes, type SealerContext } from './sealer.js';
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

  private sealRetrying(options: SealOptions): Promise<CheckpointRow | null> {
    return retryWhileRecordMissing(() => this.sealOnce(options));
  }

  private async sealOnce(options: SealOptions): Promise<CheckpointRow | null> {
    const { signer, own } = sealFrontSteps(await keyAwareFront(this.sealFront(), this));
    const request = { force: options.force === true, now: options.now ?? new Date() };
    const cosigners = options.cosigners ?? [];
    if (cosigners.length > 0) {
      // A key rotation: sealed here, where the new key is, by a sealer that signs with both.
      const rotating = new Sealer(this.db, this.sealerContext(), own, { sign: this.signWith(signer, cosigners), durable: this.durability === 'process' ? 'raise-sync' : 'as-is' });
      const sealed = await rotating.seal(request);
      await rotating.afterSeal();
      return sealed;
    }
    const thread = this.threadFor(signer);
    if (thread?.ready === true) return thread.seal(request);
    // Until the thread has loaded (the first few hundred milliseconds of a process, or a one-shot
    // `witness seal`), the seal runs inline rather than waiting for it: such seals are small or
    // have nobody recording beside them. Inline, on this connection, a commit is
    // synchronous=NORMAL under durability 'process'.
    thread?.warm();
    this.inlineSealer ??= new Sealer(this.db, this.sealerContext(), own, { sign: this.signWith(signer, []), durable: this.durability === 'process' ? 'raise-sync' : 'as-is' });
    const sealed = await this.inlineSealer.seal(request);
    await this.inlineSealer.afterSeal();
    return sealed;
  }

  /** Signs with this process's key, and with a rotation's new key when the checkpoint is the first to cover it (../seal-keys.ts). */
  private signWith(signer: NoteSigner, cosigners: readonly NoteSigner[]): (body: string, rotations: readonly RotationEntry[]) => string {
    return (body, rotations) => signNote(body, [signer, ...pendingRotationSigners(rotations, signer, cosigners, this.info.location)]);
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
  override async append(batch: readonly AppendRequest[], options?: AppendOptions): Promise<AppendReceipt[]> {
    const events = this.prepare(batch);
    if (!this.warmed) this.warmSealThread();
    const writing = this.sealThread?.writing;
    if (writing !== undefined) await writing;
    return this.appendPreparedSync(events, options);
  }

  override async appendPrepared(events: readonly PreparedEvent[], options?: AppendOptions): Promise<AppendReceipt[]> {
    if (!this.warmed) this.warmSealThread();
    const writing = this.sealThread?.writing;
    if (writing !== undefined) await writing;
    return this.appendPreparedSync(events, options);
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

  /** The sealing state the front steps (../seal-front.ts) read. */
  private sealFront(): SealFront {
    return {
      location: this.info.location,
      origin: this.info.origin,
      sealRecordPath: this.sealRecordPath,
      signer: this.signer,
      own: this.ownVerifier,
      canSeal: this.canSeal,
      foreignKey: this.foreignKey,
      keyHint: 'the key file beside the ledger or WITNESS_SIGNING_KEY',
    };
  }

  /**
   * For a ledger with checkpoints but no record, on explicit request (`witness seal --adopt`):
   * verifies the whole ledger in one read transaction with this key alone, then records its newest
   * checkpoint (../seal-front.ts holds the rules and the sentences).
   */
  async adopt(options: AdoptOptions = {}): Promise<AdoptResult> {
    this.assertOpen();
    return adoptLedger(
      this.sealFront(),
      this,
      {
        hasCheckpoint: async () => this.read(() => this.stmts.latestCheckpoint.get()) !== undefined,
        readAll: async (v) =>
          this.read(() =>
            this.db.transaction(() => {
              const rows = (this.stmts.allCheckpoints.all() as StoredCheckpointRow[]).map(toCheckpoint);
              v.setCheckpoints(rows);
              for (const page of this.scanSync()) for (const row of page) v.addRow(row);
              return rows[rows.length - 1];
            })(),
          ),
      },
      options,
    );
  }

  get sealRecordLocation(): string {
    return this.sealRecordPath;
  }

  async sealRecord(): Promise<SealRecordText | undefined> {
    this.assertOpen();
    return sealRecordText(this.sealRecordPath);
  }

  protected nodeSource(): NodeSource {
    return storedNodes(this.stmts.node, this.info.location);
  }

  async checkpoints(): Promise<CheckpointRow[]> {
    this.assertOpen();
    return this.read(() => (this.stmts.allCheckpoints.all() as StoredCheckpointRow[]).map(toCheckpoint));
  }

  async latestCheckpoint(): Promise<CheckpointRow | undefined> {
    this.assertOpen();
    const row = this.read(() => this.stmts.latestCheckpoint.get() as StoredCheckpointRow | undefined);
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
