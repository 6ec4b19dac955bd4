import fs from 'node:fs';
import type Database from 'better-sqlite3';
import { WitnessError, type Frontier, type NodeSource, type NoteVerifier, type RotationEntry } from '../../core/index.js';
import type { StoredCheckpointRow } from '../seal-front.js';
import { clearPendingRecord, readSealRecordText, testKillAfterCommit, writePendingRecord, writeSealRecord, type SealRecord } from '../seal-record.js';
import { NewEvents, SEAL_MAX_EVENTS, finishPlan, nothingToSeal, readRecord, trustedFrontier, type SealPlan, type SealRulesContext } from '../seal-rules.js';
import type { CheckpointRow, RawEventRow } from '../ledger.js';
import { translateSqliteError } from './errors.js';
import { indexTail } from './indexer.js';

const SEAL_READ_PAGE = 10_000;
/** Attempts before giving up when other sealers keep committing a checkpoint first. */
const SEAL_ATTEMPTS = 10;

/** What the sealer needs to know about its ledger; plain data, so it can cross to a worker thread. */
export interface SealerContext {
  location: string;
  origin: string;
  sealRecordPath: string;
  /** The record's path was given (option or environment), so messages repeat it. */
  sealRecordConfigured: boolean;
}

/**
 * Signs a checkpoint body (a signed note comes back). Where the key lives is the caller's affair;
 * `rotations` are the key.rotated events the checkpoint is the first to cover, whose new key must
 * sign too (store/seal-keys.ts).
 */
export type SignBody = (body: string, rotations: readonly RotationEntry[]) => string | Promise<string>;

/**
 * Taken around each short write transaction of a sealer on another thread: the recording thread
 * then holds its appends back (awaiting, its event loop free) instead of spinning in SQLite's busy
 * handler, whose sleeps (1, 2, 5, 10 … ms) would stall it longer than the transaction itself.
 */
export interface WriteGate {
  acquire(): Promise<void>;
  release(): void;
}

export interface SealerOptions {
  sign: SignBody;
  gate?: WriteGate;
  /**
   * How the checkpoint's commit is made durable before the record names it (a record ahead of the
   * disk would refuse every later seal after a power cut). `raise-sync`: the commit itself runs at
   * synchronous=FULL (a connection that otherwise commits at NORMAL). `fsync-wal`: the commit runs
   * at NORMAL, holding the write lock for no fsync, and the WAL file is synced right after it; its
   * frames are either still in the WAL or were already copied into the database by a checkpoint,
   * which syncs the database before the WAL is ever reused. `as-is`: the connection already syncs.
   */
  durable: 'raise-sync' | 'fsync-wal' | 'as-is';
}

/** Events indexed in the seal's own write window (see WriteGate): a seal of the default 1,000 events is indexed whole there. */
const INDEX_WITH_SEAL = 2_000;
/** Events indexed per further window when more are waiting. */
const INDEX_STEP = 1_000;

export interface SealRequest {
  force: boolean;
  now: Date;
}

/**
 * One seal, on whatever connection it is given: the driver's own (inline) or the sealer thread's
 * (seal-worker.ts). The heavy part — re-verifying every new event, building the tree nodes, the
 * consistency proof — reads one snapshot and holds no lock; only storing the nodes and the
 * checkpoint takes the write lock, after checking that nobody sealed in between. So the recorder's
 * appends, on another connection, wait at most for that short transaction.
 */
export class Sealer {
  private readonly stmts: {
    latest: Database.Statement;
    maxPos: Database.Statement;
    scan: Database.Statement;
    hashAt: Database.Statement;
    node: Database.Statement;
    putNode: Database.Statement;
    putCheckpoint: Database.Statement;
  };

  private readonly sign: SignBody;
  private readonly gate: WriteGate | undefined;
  private readonly durable: SealerOptions['durable'];
  /** The seal's own window did not catch the query index up (a backlog): afterSeal continues. */
  private indexBehind = true;

  constructor(
    private readonly db: Database.Database,
    private readonly ctx: SealerContext,
    private readonly own: NoteVerifier,
    options: SealerOptions,
  ) {
    this.sign = options.sign;
    this.gate = options.gate;
    this.durable = options.durable;
    this.stmts = {
      latest: db.prepare('SELECT * FROM checkpoints ORDER BY id DESC LIMIT 1'),
      maxPos: db.prepare('SELECT max(pos) AS m FROM events').pluck(),
      scan: db.prepare('SELECT * FROM events WHERE pos >= ? ORDER BY pos LIMIT ?'),
      hashAt: db.prepare('SELECT hash FROM events WHERE stream = ? AND seq = ?').pluck(),
      node: db.prepare('SELECT hash FROM tree_nodes WHERE level = ? AND idx = ?').pluck(),
      putNode: db.prepare('INSERT INTO tree_nodes (level, idx, hash) VALUES (?, ?, ?)'),
      putCheckpoint: db.prepare('INSERT INTO checkpoints (size, root, note, ts, frontier, consistency, prev_size) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    };
  }

  /**
   * Seals everything committed so far (in checkpoints of at most SEAL_MAX_EVENTS); null when there
   * was nothing to seal. Refuses with `seal_refused` exactly as described in seal.ts.
   */
  async seal(request: SealRequest): Promise<CheckpointRow | null> {
    let newest: CheckpointRow | null = null;
    let force = request.force;
    for (;;) {
      const sealed = await this.sealOnce(force, request.now);
      if (sealed === null) return newest;
      newest = sealed.row;
      force = false;
      if (!sealed.more) return newest;
    }
  }

  /**
   * The housekeeping after a seal, off the recording path: the query index catches up with the
   * events committed since (indexer.ts, in short transactions), then the WAL is copied into the
   * database. PASSIVE never waits for readers or writers; whatever it cannot copy now, the next
   * one will.
   */
  async afterSeal(): Promise<void> {
    if (this.gate === undefined) this.indexSome(Number.POSITIVE_INFINITY);
    else if (this.indexBehind) {
      // A backlog (the index of a ledger that never had one, a bulk import) in short windows.
      for (;;) {
        await this.gate.acquire();
        let added: number;
        try {
          added = this.indexSome(INDEX_STEP);
        } finally {
          this.gate.release();
        }
        if (added < INDEX_STEP) break;
      }
    }
    try {
      this.db.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      // A busy checkpoint is not a failure of the seal.
    }
  }

  /** Rows added to the query index (indexer.ts); a failure adds none, since queries unite the index with its unindexed tail and the next seal tries again. */
  private indexSome(maxRows: number): number {
    try {
      return indexTail(this.db, maxRows).indexed;
    } catch {
      return 0;
    }
  }

  private async sealOnce(force: boolean, now: Date): Promise<{ row: CheckpointRow; more: boolean } | null> {
    for (let attempt = 0; attempt < SEAL_ATTEMPTS; attempt++) {
      const plan = this.read(() => this.db.transaction(() => this.plan(force, now)).deferred());
      if (plan === null) return null;
      const note = await this.sign(plan.body, plan.rotations);
      // No record yet (a ledger's first checkpoint): its note goes beside it first, so a crash
      // between the commit and the record leaves what the next seal needs (seal-record.ts).
      if (plan.recordText === undefined) writePendingRecord(this.ctx.sealRecordPath, note);
      await this.gate?.acquire();
      let row: CheckpointRow | undefined;
      try {
        row = this.commit(plan, note, now);
        // The events just sealed go into the query index in the same window: each window holds
        // back whatever the recording thread commits meanwhile, so one per seal, not several.
        if (row !== undefined && this.gate !== undefined) this.indexBehind = this.indexSome(INDEX_WITH_SEAL) === INDEX_WITH_SEAL;
      } finally {
        this.gate?.release();
      }
      if (row === undefined) {
        // Another sealer committed first: start again from its checkpoint. Once it has recorded,
        // this seal's pending note must not outlive the record's absence later on.
        if (plan.recordText === undefined && readSealRecordText(this.ctx.sealRecordPath) !== undefined) clearPendingRecord(this.ctx.sealRecordPath);
        continue;
      }
      if (this.durable === 'fsync-wal') this.syncWal();
      testKillAfterCommit();
      // A crash before this line leaves the record behind the database, which the next seal
      // accepts: the newer checkpoint is signed by this key and proven consistent with the record.
      writeSealRecord(this.ctx.sealRecordPath, { note: row.note, size: row.size, root: row.root }, this.own, this.ctx.origin);
      return { row, more: plan.more };
    }
    throw new WitnessError('store_locked', `Other processes kept sealing ${this.ctx.location} while this one verified; not signing now, the next seal will.`);
  }

  /**
   * In one read snapshot, no lock: checks the newest checkpoint against the record, verifies the
   * new events and builds their tree nodes, the new root and the consistency proof.
   */
  private plan(force: boolean, now: Date): Plan | null {
    const { recordText, record: recordFor } = readRecord(this.rulesCtx(), this.own);
    const last = this.stmts.latest.get() as SqlCheckpoint | undefined;
    const { frontier, root: lastRoot } = this.trustedFrontier(last, recordFor(last?.size));
    const max = this.stmts.maxPos.get() as number | null;
    const committed = max === null ? 0 : max + 1;
    if (nothingToSeal(last, committed, force, recordText, this.rulesCtx(), this.own)) return null;
    const end = Math.min(committed, frontier.size + SEAL_MAX_EVENTS);
    const events = new NewEvents(this.rulesCtx(), frontier);
    for (let from = frontier.size; from < end; from += SEAL_READ_PAGE) {
      const want = Math.min(SEAL_READ_PAGE, end - from);
      const rows = this.stmts.scan.all(from, want) as RawEventRow[];
      for (const row of rows) {
        if (events.needsPredecessor(row)) {
          const prev = this.stmts.hashAt.get(row.stream, row.seq - 1) as Buffer | undefined;
          if (prev !== undefined) events.seed(row.stream, row.seq, prev);
        }
        events.add(row);
      }
      if (rows.length < want) throw events.missing();
    }
    return finishPlan(this.rulesCtx(), events, last, lastRoot, committed, recordText, this.stored(), now);
  }

  /** The write lock, briefly: stores the nodes and the checkpoint unless someone sealed meanwhile (then undefined). */
  private commit(plan: Plan, note: string, now: Date): CheckpointRow | undefined {
    const consistencyJson = JSON.stringify(plan.consistency.map((h) => h.toString('hex')));
    const run = this.db.transaction((): CheckpointRow | undefined => {
      const current = this.stmts.latest.get() as SqlCheckpoint | undefined;
      // Of two sealers the second sees the first's checkpoint (or its record) here and starts over.
      if (current?.id !== plan.lastId || readSealRecordText(this.ctx.sealRecordPath) !== plan.recordText) return undefined;
      for (const n of plan.nodes) this.stmts.putNode.run(n.level, n.index, n.hash);
      const info = this.stmts.putCheckpoint.run(plan.end, plan.root, note, now.toISOString(), plan.frontier, consistencyJson, plan.prevSize);
      return { id: Number(info.lastInsertRowid), size: plan.end, root: plan.root, note, ts: now.toISOString(), consistency: JSON.parse(consistencyJson) as string[], prevSize: plan.prevSize };
    });
    try {
      if (this.durable === 'raise-sync') this.db.pragma('synchronous = FULL');
      return run.immediate();
    } catch (e) {
      throw translateSqliteError(e, this.ctx.location);
    } finally {
      if (this.durable === 'raise-sync') this.db.pragma('synchronous = NORMAL');
    }
  }

  /** fsync of the WAL (or, when a checkpoint has already emptied and removed it, of the database). */
  private syncWal(): void {
    for (const file of [`${this.ctx.location}-wal`, this.ctx.location]) {
      let fd: number;
      try {
        fd = fs.openSync(file, 'r');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' && file !== this.ctx.location) continue;
        throw new WitnessError('store_unavailable', `Sealed a checkpoint but could not sync ${file} (${(e as Error).message}); not recording it, the next seal will.`, { cause: e });
      }
      try {
        fs.fsyncSync(fd);
        return;
      } catch (e) {
        throw new WitnessError('store_unavailable', `Sealed a checkpoint but could not sync ${file} (${(e as Error).message}); not recording it, the next seal will.`, { cause: e });
      } finally {
        fs.closeSync(fd);
      }
    }
  }

  private read<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw translateSqliteError(e, this.ctx.location);
    }
  }

  /** The sealing rules (../seal-rules.ts), over this connection's stored tree nodes. */
  private trustedFrontier(last: SqlCheckpoint | undefined, record: SealRecord | undefined): { frontier: Frontier; root: Buffer | undefined } {
    return trustedFrontier(last, record, this.own, this.rulesCtx(), this.stored());
  }

  private rulesCtx(): SealRulesContext {
    return { ...this.ctx, storeArg: `sqlite:${this.ctx.location}` };
  }

  private stored(): NodeSource {
    return storedNodes(this.stmts.node, this.ctx.location);
  }
}

type Plan = SealPlan;

export type SqlCheckpoint = StoredCheckpointRow;

/** The Merkle nodes stored in `tree_nodes`, read by `stmt` (level, index → hash); a missing one is `not_found`. */
export function storedNodes(stmt: Database.Statement, location: string): NodeSource {
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
