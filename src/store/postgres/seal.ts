import fs from 'node:fs';
import path from 'node:path';
import type { PoolClient } from 'pg';
import {
  ChainChecker,
  LedgerVerifier,
  WitnessError,
  consistencyProof,
  formatCheckpoint,
  inclusionProof,
  keyFingerprint,
  leafHash,
  parseVerifierKey,
  signNote,
  type Failure,
  type NodeSource,
  type NoteSigner,
  type NoteVerifier,
} from '../../core/index.js';
import type { AdoptOptions, AdoptResult, CheckpointRow, PublicKeyRow, RawEventRow, SealOptions, SealRecordText } from '../ledger.js';
import { clearPendingRecord, openSealRecord, readSealRecordText, recordOrPending, testKillAfterCommit, writePendingRecord, writeSealRecord } from '../seal-record.js';
import { neededNodes, provenConsistency, sealRefused, trustedFrontier, withNewNodes, type SealRulesContext } from '../seal-rules.js';
import { checkArtifacts } from '../verify.js';
import { translatePgError } from './errors.js';
import { PostgresQuery } from './query.js';

const SEAL_READ_PAGE = 10_000;
/** At most this many events per checkpoint (their new nodes are held in memory until stored); a larger backlog becomes several. */
const SEAL_MAX_EVENTS = 100_000;
/** How long a seal waits for another process's sealer to finish before giving up with store_locked. */
const SEALER_LOCK_WAIT_MS = 30_000;
const EVENT_COLUMNS = 'pos, id, stream, seq, ts, kind, agent, resource, action, outcome, header, data, salt, hash';

interface PgCheckpoint {
  id: number;
  size: number;
  root: Buffer;
  note: string;
  ts: string;
  frontier: string;
  consistency: string;
  prev_size: number | null;
}

interface Plan {
  recordText: string | undefined;
  lastId: number | undefined;
  end: number;
  more: boolean;
  nodes: Array<{ level: number; index: number; hash: Buffer }>;
  root: Buffer;
  frontier: string;
  consistency: Buffer[];
  prevSize: number | null;
  body: string;
}

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
    const run = this.sealChain.then(() => this.sealRetrying(options));
    this.sealChain = run.catch(() => undefined);
    return run;
  }

  private async sealRetrying(options: SealOptions): Promise<CheckpointRow | null> {
    // As in the SQLite driver: another process that has just committed a ledger's first
    // checkpoint writes the record right after; look again for up to a second before refusing.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.sealLocked(options);
      } catch (e) {
        if (attempt >= 20 || !(e instanceof WitnessError) || e.details?.['noRecord'] !== true) throw e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  private rulesContext(): SealRulesContext {
    return { location: this.info.location, origin: this.info.origin, sealRecordPath: this.sealRecordPath, sealRecordConfigured: this.sealRecordConfigured, storeArg: this.info.location };
  }

  private async sealLocked(options: SealOptions): Promise<CheckpointRow | null> {
    const { signer, own } = this.sealingKey();
    this.refuseForeignKey();
    this.checkRecordWritable();
    const c = await this.sealerConnection();
    await this.lockSealer(c);
    try {
      const now = options.now ?? new Date();
      let force = options.force === true;
      let newest: CheckpointRow | null = null;
      for (let attempt = 0; attempt < 10;) {
        const plan = await this.plan(c, own, force, now);
        if (plan === null) return newest;
        const note = signNote(plan.body, [signer]);
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
    const recordText = readSealRecordText(this.sealRecordPath);
    const last = (await this.run<PgCheckpoint>(c, 'SELECT * FROM checkpoints ORDER BY id DESC LIMIT 1'))[0];
    const record = recordOrPending(
      this.sealRecordPath,
      recordText === undefined ? undefined : openSealRecord(recordText, own, this.info.origin, this.sealRecordPath),
      last?.size,
      own,
      this.info.origin,
    );
    const toLast = record !== undefined && last !== undefined && record.size <= last.size ? neededNodes((src) => consistencyProof(record.size, last.size, src)) : [];
    const { frontier, root: lastRoot } = trustedFrontier(last, record, own, ctx, await this.nodes(c, toLast));
    const committed = (await this.run<{ n: number }>(c, 'SELECT coalesce(max(pos) + 1, 0) AS n FROM events'))[0]!.n;
    if (last !== undefined && committed === last.size && !force) {
      // Nothing new since a kill -9 that left only the pending note (seal-record.ts): the newest
      // checkpoint, just shown to extend it, becomes the record, so the ledger needs the note no more.
      if (recordText === undefined) writeSealRecord(this.sealRecordPath, { note: last.note, size: Number(last.size), root: Buffer.from(last.root) }, own, this.info.origin);
      return null;
    }
    if (last === undefined && committed === 0 && !force) return null;
    const end = Math.min(committed, frontier.size + SEAL_MAX_EVENTS);
    // Signing is a statement that these events are genuine, so each new event is verified first.
    const failures: Failure[] = [];
    const chain = new ChainChecker(
      this.info.origin,
      (f) => failures.push(f),
      () => undefined,
    );
    const nodes: Array<{ level: number; index: number; hash: Buffer }> = [];
    const missing = () => new WitnessError('store_corrupt', `Event position ${frontier.size} is missing from ${this.info.location}; not signing: run \`witness verify\`.`);
    for (let from = frontier.size; from < end; from += SEAL_READ_PAGE) {
      const want = Math.min(SEAL_READ_PAGE, end - from);
      const rows = await this.run<RawEventRow>(c, `SELECT ${EVENT_COLUMNS} FROM events WHERE pos >= $1 ORDER BY pos LIMIT $2`, [from, want]);
      // The stored predecessor of each stream's first event here, when the stream began before this seal.
      const firsts = new Map<string, number>();
      for (const row of rows) if (!chain.streams.has(row.stream) && !firsts.has(row.stream) && row.seq > 0) firsts.set(row.stream, row.seq - 1);
      const prevs = new Map<string, Buffer>();
      if (firsts.size > 0) {
        const found = await this.run<{ stream: string; hash: Buffer }>(c, 'SELECT stream, hash FROM events WHERE (stream, seq) IN (SELECT * FROM unnest($1::text[], $2::bigint[]))', [
          [...firsts.keys()],
          [...firsts.values()],
        ]);
        for (const f of found) prevs.set(f.stream, f.hash);
      }
      for (const row of rows) {
        if (row.pos !== frontier.size) throw missing();
        if (!chain.streams.has(row.stream) && row.seq > 0) {
          const prev = prevs.get(row.stream);
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
        for (const n of frontier.push(leafHash(hash))) nodes.push(n);
      }
      if (rows.length < want) throw missing();
    }
    const root = frontier.root();
    const prevSize = last?.size ?? null;
    let consistency: Buffer[] = [];
    if (prevSize !== null && lastRoot !== undefined) {
      const fresh = new Set(nodes.map((n) => `${n.level}/${n.index}`));
      const want = neededNodes((src) => consistencyProof(prevSize, end, src)).filter((k) => !fresh.has(`${k.level}/${k.index}`));
      consistency = provenConsistency(
        prevSize,
        lastRoot,
        end,
        root,
        withNewNodes(await this.nodes(c, want), nodes),
        () => `the stored tree nodes do not prove that the new tree of ${end} events extends checkpoint ${last!.id} (size ${prevSize}): the tree_nodes table was edited`,
      );
    }
    const body = formatCheckpoint({ origin: this.info.origin, size: end, rootHash: root, extensions: [`witness-time ${now.toISOString()}`] });
    return { recordText, lastId: last?.id, end, more: end < committed, nodes, root, frontier: JSON.stringify(frontier.toJSON()), consistency, prevSize, body };
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

  protected sealingKey(): { signer: NoteSigner; own: NoteVerifier } {
    const signer = this.signer;
    const own = this.ownVerifier;
    if (signer === undefined || own === undefined || !this.canSeal) {
      throw new WitnessError(
        'invalid_key',
        `No signing key for ${this.info.location}; checkpoints need the ledger's key file (keyFile, or $WITNESS_SIGNING_KEY_FILE) or WITNESS_SIGNING_KEY, on a handle open for writing.`,
      );
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

  /** Checked before signing: a checkpoint committed but not recorded makes every later seal ask for adoption. */
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

  /** As the SQLite driver's adopt(): verifies the whole ledger in one snapshot with this key, then records its newest checkpoint. */
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
    if ((await this.latestCheckpoint()) === undefined) {
      return { checkpoint: null, location, warnings: [`${this.info.location} has no checkpoint yet; \`witness seal\` signs its first one and starts the record.`] };
    }
    const { verifier, newest } = await this.transaction('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', async (c) => {
      const v = new LedgerVerifier({ origin: this.info.origin, verifiers: [own], keySource: 'pinned', ...(options.against === undefined ? {} : { against: options.against }) });
      const rows = (await c.query<PgCheckpoint>('SELECT * FROM checkpoints ORDER BY id')).rows;
      v.setCheckpoints(rows.map(toCheckpoint));
      for (let pos = 0; ;) {
        const page = (await c.query<RawEventRow>(`SELECT ${EVENT_COLUMNS} FROM events WHERE pos >= $1 ORDER BY pos LIMIT 5000`, [pos])).rows;
        for (const row of page) v.addRow(row);
        if (page.length < 5000) break;
        pos = page[page.length - 1]!.pos + 1;
      }
      return { verifier: v, newest: rows[rows.length - 1] };
    });
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

function fingerprintOf(vkey: string): string {
  try {
    return keyFingerprint(parseVerifierKey(vkey));
  } catch {
    return JSON.stringify(vkey.slice(0, 80));
  }
}

function toCheckpoint(r: PgCheckpoint): CheckpointRow {
  let consistency: string[] = [];
  try {
    const parsed: unknown = JSON.parse(r.consistency);
    if (Array.isArray(parsed)) consistency = parsed.map(String);
  } catch {
    // A damaged proof column surfaces as a failed consistency check in verify, not here.
  }
  return { id: r.id, size: r.size, root: r.root, note: r.note, ts: r.ts, consistency, prevSize: r.prev_size };
}
