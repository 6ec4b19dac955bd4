import type { PoolClient } from 'pg';
import { WitnessError, consistencyProof, inclusionProof, signNote, type NodeSource, type NoteVerifier } from '../../core/index.js';
import type { AdoptOptions, AdoptResult, CheckpointRow, PublicKeyRow, RawEventRow, SealOptions, SealRecordText } from '../ledger.js';
import { adoptLedger, retryWhileRecordMissing, sealFrontSteps, sealRecordText, toCheckpoint, type SealFront, type StoredCheckpointRow } from '../seal-front.js';
import { DEFAULT_WRITER_ROLE } from '../roles.js';
import { keyAwareFront, pendingRotationSigners } from '../seal-keys.js';
import { clearPendingRecord, readSealRecordText, testKillAfterCommit, writePendingRecord, writeSealRecord } from '../seal-record.js';
import { NewEvents, SEAL_MAX_EVENTS, finishPlan, neededNodes, nothingToSeal, readRecord, trustedFrontier, type SealPlan, type SealRulesContext } from '../seal-rules.js';
import { translatePgError } from './errors.js';
import { PostgresQuery } from './query.js';

const SEAL_READ_PAGE = 10_000;
/** How long a seal waits for another process's sealer to finish before giving up with store_locked. */
const SEALER_LOCK_WAIT_MS = 30_000;
const EVENT_COLUMNS = 'pos, id, stream, seq, ts, kind, agent, resource, action, outcome, header, data, salt, hash';

type PgCheckpoint = StoredCheckpointRow;

type Plan = SealPlan;

/**
 * Sealing: the Merkle tree, signed checkpoints, the sealer's record, adoption and proofs, under the
 * same rules as the SQLite driver (../seal-rules.ts), and with the same record outside the
 * database (a file beside the key file, see open.ts).
 *
 * One sealer at a time per ledger: a seal takes a session-level advisory lock
 * (`pg_try_advisory_lock`, keyed by the ledger id) on a connection of its own, waits for it while
 * another process seals, and releases it when done; a sealer that crashes loses its connection
 * and with it the lock, so the next seal anywhere proceeds. Under the lock it reads one
 * REPEATABLE READ snapshot (every committed event has a position below max(pos) + 1 with no gap,
 * since positions are assigned under the append lock), verifies the new events, builds their tree
 * nodes and the consistency proof, signs, and stores nodes and checkpoint in one short transaction.
 */
export abstract class PostgresSeal extends PostgresQuery {
  private sealChain: Promise<unknown> = Promise.resolve();
  private closing: Promise<void> | undefined;
  /** The sealer's own connection, held (out of the pool) from the first seal until close. */
  private sealConnection: PoolClient | undefined;

  // ------------------------------------------------------------------ seal

  async seal(options: SealOptions = {}): Promise<CheckpointRow | null> {
    this.assertOpen();
    if (this.closing !== undefined) throw new WitnessError('closed', `The ledger ${this.info.location} is closing; open it again to seal.`);
    if (!this.readonly && !this.maySeal) {
      // Said before any key check: with the key or without, this login's checkpoints would be refused at their INSERT.
      throw new WitnessError(
        'forbidden',
        `This login may not seal the ledger ${this.info.location} (it may not insert checkpoints or tree nodes, as the retention and auditor roles may not); run \`witness seal\` as a login in the writer role (\`witness init --roles\` makes ${DEFAULT_WRITER_ROLE}).`,
      );
    }
    const run = this.sealChain.then(() => this.sealRetrying(options));
    this.sealChain = run.catch(() => undefined);
    return run;
  }

  private sealRetrying(options: SealOptions): Promise<CheckpointRow | null> {
    return retryWhileRecordMissing(() => this.sealLocked(options));
  }

  private rulesContext(): SealRulesContext {
    return { location: this.info.location, origin: this.info.origin, sealRecordPath: this.sealRecordPath, sealRecordConfigured: this.sealRecordConfigured, storeArg: this.info.location };
  }

  private async sealLocked(options: SealOptions): Promise<CheckpointRow | null> {
    const { signer, own } = sealFrontSteps(await keyAwareFront(this.sealFront(), this));
    const cosigners = options.cosigners ?? [];
    const c = await this.sealerConnection();
    await this.lockSealer(c);
    try {
      const now = options.now ?? new Date();
      let force = options.force === true;
      let newest: CheckpointRow | null = null;
      for (let attempt = 0; attempt < 10;) {
        const plan = await this.plan(c, own, force, now);
        if (plan === null) return newest;
        // The first checkpoint over a key.rotated event carries the new key's signature too (../seal-keys.ts).
        const note = signNote(plan.body, [signer, ...pendingRotationSigners(plan.rotations, signer, cosigners, this.info.location)]);
        // No record yet (the ledger's first checkpoint): its note goes beside it first, so a crash
        // between the commit and the record leaves what the next seal needs (seal-record.ts).
        if (plan.recordText === undefined) writePendingRecord(this.sealRecordPath, note);
        const row = await this.commit(c, plan, note, now);
        if (row === undefined) {
          // Someone stored a checkpoint without the lock (an older Witness, a hand edit): start over from it.
          if (plan.recordText === undefined) clearPendingRecord(this.sealRecordPath);
          attempt++;
          continue;
        }
        testKillAfterCommit();
        // A crash before this line leaves the record behind the database, which the next seal
        // accepts: the newer checkpoint is signed by this key and proven consistent with the record.
        writeSealRecord(this.sealRecordPath, { note: row.note, size: row.size, root: row.root }, own, this.info.origin);
        newest = row;
        force = false;
        if (!plan.more) return newest;
      }
      throw new WitnessError('store_locked', `Other processes kept sealing ${this.info.location} while this one verified; not signing now, the next seal will.`);
    } finally {
      await c.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [this.sealLockKey()]).catch(() => this.dropSealConnection());
    }
  }

  private sealLockKey(): string {
    return `witness-seal:${this.info.id}`;
  }

  private async sealerConnection(): Promise<PoolClient> {
    if (this.sealConnection === undefined) {
      try {
        const c = await this.pool.connect();
        // Held between seals: when its backend dies the next seal takes a fresh one (and the lock with it).
        c.once('error', () => {
          if (this.sealConnection === c) this.dropSealConnection();
        });
        this.sealConnection = c;
      } catch (e) {
        throw translatePgError(e, this.info.location);
      }
    }
    return this.sealConnection;
  }

  private dropSealConnection(): void {
    this.sealConnection?.release(true);
    this.sealConnection = undefined;
  }

  /** The ledger's sealer lock (session-level, on the sealer's connection); waits while another process seals. */
  private async lockSealer(c: PoolClient): Promise<void> {
    const deadline = Date.now() + SEALER_LOCK_WAIT_MS;
    for (;;) {
      let got: boolean;
      try {
        got = (await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok', [this.sealLockKey()])).rows[0]!.ok;
      } catch (e) {
        this.dropSealConnection();
        throw translatePgError(e, this.info.location);
      }
      if (got) return;
      if (Date.now() >= deadline) {
        throw new WitnessError('store_locked', `Another process has been sealing ${this.info.location} for ${SEALER_LOCK_WAIT_MS / 1000} s; not sealing now, retry later.`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** In one REPEATABLE READ snapshot: the newest checkpoint against the record, the new events verified, their nodes, root and proof. */
  private async plan(c: PoolClient, own: NoteVerifier, force: boolean, now: Date): Promise<Plan | null> {
    await this.run(c, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    try {
      const plan = await this.planInSnapshot(c, own, force, now);
      await this.run(c, 'COMMIT');
      return plan;
    } catch (e) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw e;
    }
  }

  private async planInSnapshot(c: PoolClient, own: NoteVerifier, force: boolean, now: Date): Promise<Plan | null> {
    const ctx = this.rulesContext();
    const { recordText, record: recordFor } = readRecord(ctx, own);
    const last = (await this.run<PgCheckpoint>(c, 'SELECT * FROM checkpoints ORDER BY id DESC LIMIT 1'))[0];
    const record = recordFor(last?.size);
    const toLast = record !== undefined && last !== undefined && record.size <= last.size ? neededNodes((src) => consistencyProof(record.size, last.size, src)) : [];
    const { frontier, root: lastRoot } = trustedFrontier(last, record, own, ctx, await this.nodes(c, toLast));
    const committed = (await this.run<{ n: number }>(c, 'SELECT coalesce(max(pos) + 1, 0) AS n FROM events'))[0]!.n;
    if (nothingToSeal(last, committed, force, recordText, ctx, own)) return null;
    const end = Math.min(committed, frontier.size + SEAL_MAX_EVENTS);
    const events = new NewEvents(ctx, frontier);
    for (let from = frontier.size; from < end; from += SEAL_READ_PAGE) {
      const want = Math.min(SEAL_READ_PAGE, end - from);
      const rows = await this.run<RawEventRow>(c, `SELECT ${EVENT_COLUMNS} FROM events WHERE pos >= $1 ORDER BY pos LIMIT $2`, [from, want]);
      // The stored predecessor of each stream's first event here, when the stream began before this seal: one query per page.
      const firsts = new Map<string, number>();
      for (const row of rows) if (events.needsPredecessor(row) && !firsts.has(row.stream)) firsts.set(row.stream, row.seq - 1);
      const prevs = new Map<string, Buffer>();
      if (firsts.size > 0) {
        const found = await this.run<{ stream: string; hash: Buffer }>(c, 'SELECT stream, hash FROM events WHERE (stream, seq) IN (SELECT * FROM unnest($1::text[], $2::bigint[]))', [
          [...firsts.keys()],
          [...firsts.values()],
        ]);
        for (const f of found) prevs.set(f.stream, f.hash);
      }
      for (const row of rows) {
        if (events.needsPredecessor(row)) {
          const prev = prevs.get(row.stream);
          if (prev !== undefined) events.seed(row.stream, row.seq, prev);
        }
        events.add(row);
      }
      if (rows.length < want) throw events.missing();
    }
    // The stored nodes the consistency proof reads, fetched in one query (the new ones are in memory).
    let stored: NodeSource = await this.nodes(c, []);
    if (last !== undefined && lastRoot !== undefined) {
      const fresh = new Set(events.nodes.map((n) => `${n.level}/${n.index}`));
      stored = await this.nodes(
        c,
        neededNodes((src) => consistencyProof(last.size, end, src)).filter((k) => !fresh.has(`${k.level}/${k.index}`)),
      );
    }
    return finishPlan(ctx, events, last, lastRoot, committed, recordText, stored, now);
  }

  /** Stores the nodes and the checkpoint unless someone sealed meanwhile (then undefined). */
  private async commit(c: PoolClient, plan: Plan, note: string, now: Date): Promise<CheckpointRow | undefined> {
    const consistency = plan.consistency.map((h) => h.toString('hex'));
    await this.run(c, 'BEGIN');
    try {
      const current = (await this.run<{ id: number }>(c, 'SELECT id FROM checkpoints ORDER BY id DESC LIMIT 1'))[0];
      if (current?.id !== plan.lastId || readSealRecordText(this.sealRecordPath) !== plan.recordText) {
        await this.run(c, 'ROLLBACK');
        return undefined;
      }
      if (plan.nodes.length > 0) {
        await this.run(c, 'INSERT INTO tree_nodes (level, idx, hash) SELECT * FROM unnest($1::int[], $2::bigint[], $3::bytea[])', [
          plan.nodes.map((n) => n.level),
          plan.nodes.map((n) => n.index),
          plan.nodes.map((n) => n.hash),
        ]);
      }
      const [row] = await this.run<{ id: number }>(
        c,
        `INSERT INTO checkpoints (id, size, root, note, ts, frontier, consistency, prev_size)
         VALUES ((SELECT coalesce(max(id), 0) + 1 FROM checkpoints), $1, $2, $3, $4, $5, $6, $7) RETURNING id`,
        [plan.end, plan.root, note, now.toISOString(), plan.frontier, JSON.stringify(consistency), plan.prevSize],
      );
      await this.run(c, 'COMMIT');
      return { id: row!.id, size: plan.end, root: plan.root, note, ts: now.toISOString(), consistency, prevSize: plan.prevSize };
    } catch (e) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw e;
    }
  }

  /** A statement on a given connection, errors typed. */
  private async run<R extends object>(c: PoolClient, text: string, values?: unknown[]): Promise<R[]> {
    try {
      return (await c.query(text, values)).rows as R[];
    } catch (e) {
      throw translatePgError(e, this.info.location);
    }
  }

  /** The stored tree nodes at `keys`, fetched in one query, as a NodeSource; a node not stored is `not_found`. */
  private async nodes(c: PoolClient | undefined, keys: ReadonlyArray<{ level: number; index: number }>): Promise<NodeSource> {
    const found = new Map<string, Buffer>();
    if (keys.length > 0) {
      const text = 'SELECT level, idx, hash FROM tree_nodes WHERE (level, idx) IN (SELECT * FROM unnest($1::int[], $2::bigint[]))';
      const values = [keys.map((k) => k.level), keys.map((k) => k.index)];
      const rows = c === undefined ? await this.sql<{ level: number; idx: number; hash: Buffer }>(text, values) : await this.run<{ level: number; idx: number; hash: Buffer }>(c, text, values);
      for (const r of rows) found.set(`${r.level}/${r.idx}`, r.hash);
    }
    const location = this.info.location;
    return {
      node(level: number, index: number): Uint8Array {
        const h = found.get(`${level}/${index}`);
        if (h === undefined) {
          throw new WitnessError('not_found', `Merkle node ${level}/${index} is not in ${location}; the range asked for is not sealed yet, run \`witness seal\`.`);
        }
        return h;
      },
    };
  }

  /** Waits for a seal on its way (it completes and is recorded), then closes the sealer's connection and the pool. */
  override async close(): Promise<void> {
    if (this.closed) return;
    this.closing ??= (async () => {
      await this.sealChain;
      this.sealConnection?.release();
      this.sealConnection = undefined;
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
      keyHint: "the ledger's key file (keyFile, or $WITNESS_SIGNING_KEY_FILE) or WITNESS_SIGNING_KEY, on a handle open for writing",
    };
  }

  /** As the SQLite driver's: verifies the whole ledger in one REPEATABLE READ snapshot with this key, then records its newest checkpoint (../seal-front.ts). */
  async adopt(options: AdoptOptions = {}): Promise<AdoptResult> {
    this.assertOpen();
    return adoptLedger(
      this.sealFront(),
      this,
      {
        hasCheckpoint: async () => (await this.latestCheckpoint()) !== undefined,
        readAll: (v) =>
          this.transaction('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', async (c) => {
            const rows = (await c.query<PgCheckpoint>('SELECT * FROM checkpoints ORDER BY id')).rows.map(toCheckpoint);
            v.setCheckpoints(rows);
            for (let pos = 0; ;) {
              const page = (await c.query<RawEventRow>(`SELECT ${EVENT_COLUMNS} FROM events WHERE pos >= $1 ORDER BY pos LIMIT 5000`, [pos])).rows;
              for (const row of page) v.addRow(row);
              if (page.length < 5000) break;
              pos = page[page.length - 1]!.pos + 1;
            }
            return rows[rows.length - 1];
          }),
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

  async checkpoints(): Promise<CheckpointRow[]> {
    this.assertOpen();
    return (await this.sql<PgCheckpoint>('SELECT * FROM checkpoints ORDER BY id')).map(toCheckpoint);
  }

  async latestCheckpoint(): Promise<CheckpointRow | undefined> {
    this.assertOpen();
    const row = (await this.sql<PgCheckpoint>('SELECT * FROM checkpoints ORDER BY id DESC LIMIT 1'))[0];
    return row === undefined ? undefined : toCheckpoint(row);
  }

  async inclusionProof(pos: number, size: number): Promise<Buffer[]> {
    this.assertOpen();
    const src = await this.nodes(
      undefined,
      neededNodes((s) => inclusionProof(pos, size, s)),
    );
    return inclusionProof(pos, size, src);
  }

  async consistencyProof(oldSize: number, newSize: number): Promise<Buffer[]> {
    this.assertOpen();
    const src = await this.nodes(
      undefined,
      neededNodes((s) => consistencyProof(oldSize, newSize, s)),
    );
    return consistencyProof(oldSize, newSize, src);
  }

  async publicKeys(): Promise<PublicKeyRow[]> {
    this.assertOpen();
    return (await this.sql<{ vkey: string; name: string; added_at: string }>('SELECT vkey, name, added_at FROM public_keys ORDER BY n')).map((r) => ({
      vkey: r.vkey,
      name: r.name,
      addedAt: r.added_at,
    }));
  }
}
