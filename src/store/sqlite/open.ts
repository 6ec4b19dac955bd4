import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { WitnessError, parseVerifierKey, type NoteSigner, type NoteVerifier, type PreparedEvent } from '../../core/index.js';
import { createKeyFile, loadSigner, refuseKeySymlink } from '../keys.js';
import { checkSealRecordDirectory, sealRecordPath } from '../seal-record.js';
import type { AppendReceipt, LedgerInfo } from '../ledger.js';
import { sidecarPaths } from '../url.js';
import { ensurePublicKey, openOrCreateSchema, publicKeyCount } from './schema.js';
import { translateSqliteError } from './errors.js';
import { indexTail } from './indexer.js';

/** Rows `close` indexes at most (~0.6 s of CPU here): far more than a recorder writes between seals. */
const CLOSE_INDEX_LIMIT = 100_000;

/*
 * The SQLite driver is one class, SqliteLedger (ledger.ts), built up file by file so that each
 * concern has its own file and a second driver (src/store/postgres/) can mirror them one for one:
 * open.ts (this: opening, state, life cycle) → artifacts.ts → append.ts → query.ts → seal.ts.
 */

export interface SqliteLedgerOptions {
  path: string;
  /** Create the database (and its signing key) when missing. Default true. */
  create?: boolean;
  readonly?: boolean;
  /** `process`: a committed event survives kill -9 (WAL, synchronous=NORMAL). `power`: also power loss (synchronous=FULL). */
  durability?: 'process' | 'power';
  /** First part of the checkpoint origin for a new ledger. */
  name?: string;
  busyTimeoutMs?: number;
  maxPayloadBytes?: number;
  /**
   * Where the sealer keeps its record of the last checkpoint its key signed (a file path). Default
   * `$WITNESS_SEAL_RECORD`, else `<db>.sealed` beside the ledger; see seal-record.ts for what each
   * protects against.
   */
  sealRecord?: string;
  /** Environment for WITNESS_SIGNING_KEY and WITNESS_SEAL_RECORD (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface StreamHead {
  seq: number;
  hash: Buffer;
  /** The stream's last event is its session.end: nothing may follow it. */
  ended: boolean;
}

/** The statements compiled once per connection (prepareStatements, below). */
export type Statements = Record<
  | 'insert'
  | 'head'
  | 'maxPos'
  | 'byId'
  | 'byStream'
  | 'scan'
  | 'scanVerify'
  | 'hashAt'
  | 'node'
  | 'putNode'
  | 'latestCheckpoint'
  | 'allCheckpoints'
  | 'putCheckpoint'
  | 'keys'
  | 'putArtifact'
  | 'artifact'
  | 'dataVersion',
  Database.Statement
>;

/** Opening, the driver's state and its life cycle; the concerns are added by the files that extend it. */
export abstract class SqliteBase {
  readonly info: LedgerInfo;
  readonly canSeal: boolean;
  protected readonly db: Database.Database;
  protected readonly signer: NoteSigner | undefined;
  /** The signer's own verifier, to check the record and the checkpoints it builds on. */
  protected readonly ownVerifier: NoteVerifier | undefined;
  /** Set when the signer's key is not this ledger's key (the first one recorded): seals are refused. */
  protected readonly foreignKey: { signer: string; ledger: string } | undefined;
  protected readonly sealRecordPath: string;
  /** The record's path was given (option or environment), so messages repeat it. */
  protected readonly sealRecordConfigured: boolean;
  protected readonly durability: 'process' | 'power';
  /** Opened for reading only (verify, query, an auditor's account): never writes, never needs the private key. */
  protected readonly readonly: boolean;
  protected readonly artifactsDir: string;
  protected readonly maxPayloadBytes: number | undefined;
  protected readonly heads = new Map<string, StreamHead>();
  protected nextPos = 0;
  protected seenDataVersion = -1;
  protected closed = false;
  protected readonly stmts: Statements;
  /**
   * Built once: better-sqlite3's db.transaction() defines four wrapper functions with their
   * properties on every call, which a CPU profile of the gateway put at ~15 µs per append.
   */
  protected readonly appendTxn: (events: readonly PreparedEvent[], receipts: AppendReceipt[]) => { pos: number; touched: Map<string, StreamHead> };
  protected readonly queryStatements: Map<string, Database.Statement> = new Map();

  protected constructor(options: SqliteLedgerOptions) {
    const file = options.path;
    const create = options.create ?? true;
    const record = sealRecordPath(sidecarPaths(file).sealed, options.sealRecord, options.env);
    // Refused before anything is opened or created: a writer that could not record what it signs
    // would leave checkpoints without a record, which every later seal refuses.
    if (record.configured && !(options.readonly ?? false)) checkSealRecordDirectory(record.file);
    this.sealRecordPath = record.file;
    this.sealRecordConfigured = record.configured;
    const exists = fs.existsSync(file);
    if (!exists && !create) {
      throw new WitnessError('not_found', `No ledger at ${file}; run \`witness init --store sqlite:${file}\` first or check --store.`);
    }
    if (exists && fs.statSync(file).isDirectory()) {
      throw new WitnessError('store_unavailable', `${file} is a directory; give --store the path of a ledger file, e.g. sqlite:${path.join(file, 'witness.db')}.`);
    }
    if (!exists) {
      const dir = path.dirname(file);
      if (!fs.existsSync(dir)) {
        throw new WitnessError('store_unavailable', `Cannot create the ledger ${file}: the directory ${dir} does not exist; create it or choose another --store path.`);
      }
      // Checked before anything is created, so a refused `witness init` leaves nothing behind.
      const { key, pub } = sidecarPaths(file);
      for (const p of [key, pub]) refuseKeySymlink(p);
    }
    let db: Database.Database;
    try {
      db = new Database(file, { readonly: options.readonly ?? false, fileMustExist: !create, timeout: options.busyTimeoutMs ?? 5000 });
    } catch (e) {
      throw translateSqliteError(e, file);
    }
    this.db = db;
    // Switching to WAL and creating the schema can meet SQLITE_BUSY without SQLite's busy handler
    // being consulted (two processes opening a new file at once); those steps are idempotent, so
    // they are retried for twice the busy timeout.
    const deadline = Date.now() + 2 * (options.busyTimeoutMs ?? 5000);
    const retryBusy = <T>(fn: () => T): T => {
      for (;;) {
        try {
          return fn();
        } catch (e) {
          const code = (e as { code?: unknown }).code;
          if ((code !== 'SQLITE_BUSY' && code !== 'SQLITE_LOCKED') || Date.now() >= deadline) throw e;
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
        }
      }
    };
    try {
      // The schema is checked before any pragma that writes, so a file that is not ours is refused
      // untouched (switching it to WAL would change its header).
      const meta = retryBusy(() => openOrCreateSchema(db, file, options, create));
      if (!options.readonly) {
        retryBusy(() => db.pragma('journal_mode = WAL'));
        db.pragma(`synchronous = ${options.durability === 'power' ? 'FULL' : 'NORMAL'}`);
        // The append-only triggers make SQLite keep a statement journal per INSERT; on disk that
        // halved insert throughput (measured 63k → 29k rows/s), in memory it costs ~10 %.
        db.pragma('temp_store = MEMORY');
        // A one-event commit writes ~4 WAL pages (row + the id and (stream, seq) index leaves;
        // schema v1 wrote ~11), so the default 1,000-page auto-checkpoint would land inside every
        // ~250th awaited record. Let the WAL grow to ~40 MiB and checkpoint after each seal instead
        // (off the awaited path).
        db.pragma('wal_autocheckpoint = 10000');
      }
      const paths = sidecarPaths(file);
      this.artifactsDir = paths.artifacts;
      this.durability = options.durability ?? 'process';
      this.readonly = options.readonly ?? false;
      let signer: NoteSigner | undefined;
      try {
        signer = loadSigner(paths.key, options.env);
      } catch (e) {
        // A reader (an auditor's account on a root-owned ledger) needs no private key and is
        // usually not allowed to read it; only a writer must have a usable one.
        if (!options.readonly) throw e;
      }
      // A ledger that has never had a key gets one, also when its creator died before writing it;
      // a ledger whose key was removed does not silently get a new one.
      if (signer === undefined && !options.readonly && create && retryBusy(() => publicKeyCount(db)) === 0) {
        createKeyFile(paths.key, paths.pub, meta.origin);
        signer = loadSigner(paths.key, {});
      }
      this.signer = signer;
      this.ownVerifier = signer === undefined ? undefined : parseVerifierKey(signer.verifierKey);
      let ledgerKey: string | undefined;
      if (signer !== undefined && !options.readonly) ledgerKey = retryBusy(() => ensurePublicKey(db, signer));
      // Only the key the ledger was created with signs it: a second key would be one more key an
      // auditor must trust, and nothing in this version adds one legitimately (rotation will, by a
      // signed key.rotated event). A process holding another key opens the ledger but never signs.
      this.foreignKey = signer !== undefined && ledgerKey !== undefined && ledgerKey !== signer.verifierKey ? { signer: signer.verifierKey, ledger: ledgerKey } : undefined;
      this.canSeal = signer !== undefined && !options.readonly;
      this.maxPayloadBytes = options.maxPayloadBytes;
      this.stmts = prepareStatements(db);
      this.appendTxn = db.transaction((events: readonly PreparedEvent[], receipts: AppendReceipt[]) => this.appendLocked(events, receipts)).immediate;
      this.nextPos = this.readNextPos();
      this.info = { id: meta.id, origin: meta.origin, schemaVersion: meta.version, location: file, size: this.nextPos };
    } catch (e) {
      db.close();
      throw translateSqliteError(e, file);
    }
  }

  /** The body of appendPrepared's transaction (append.ts); runs with the write lock held. */
  protected abstract appendLocked(events: readonly PreparedEvent[], receipts: AppendReceipt[]): { pos: number; touched: Map<string, StreamHead> };

  protected readNextPos(): number {
    const m = this.stmts.maxPos.get() as number | null;
    return m === null ? 0 : m + 1;
  }

  /** Reads that a damaged file can fail must fail as typed errors, never as raw SQLite ones. */
  protected read<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw translateSqliteError(e, this.info.location);
    }
  }

  // ------------------------------------------------------------------ life cycle

  /** For tests and `witness` internals that need SQL the interface does not offer. */
  get database(): Database.Database {
    return this.db;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.readonly) {
      // A WAL database can be read only by someone who may create its -shm file, i.e. write the
      // ledger's directory: an auditor's account reading a root-owned ledger may not. So the last
      // writer to close leaves the file in rollback-journal mode, which a read-only reader can open
      // as it is; the next writer switches back to WAL when it opens. With another connection open
      // the switch is refused at once (no busy wait) and left to whoever closes last.
      try {
        this.db.pragma('busy_timeout = 0');
      } catch {
        // Nothing to do: the pragmas below then wait as configured.
      }
      try {
        // The sealer keeps the query index current; a writer that never sealed leaves its events
        // to be scanned by every query until one does, so a bounded catch-up happens here. Busy or
        // failing is fine: the index is derived, and whoever indexes next picks up from its end.
        indexTail(this.db, CLOSE_INDEX_LIMIT);
      } catch {
        // See above.
      }
      try {
        this.db.pragma('journal_mode = DELETE');
      } catch {
        // Another process has the ledger open; it will do this when it closes.
      }
    }
    this.db.close();
  }

  protected assertOpen(): void {
    if (this.closed) throw new WitnessError('closed', `The ledger ${this.info?.location ?? ''} is closed; open it again to use it.`);
  }
}

/** Every statement the driver runs often, compiled once per connection. */
export function prepareStatements(db: Database.Database): Statements {
  return {
    insert: db.prepare(
      `INSERT INTO events (pos, id, stream, seq, ts, kind, agent, resource, action, outcome, header, data, salt, hash)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    head: db.prepare('SELECT seq, hash, kind FROM events WHERE stream = ? ORDER BY seq DESC LIMIT 1'),
    maxPos: db.prepare('SELECT max(pos) AS m FROM events').pluck(),
    // Positions start at 0; a row below is not served (see querySql) and verify reports it.
    byId: db.prepare('SELECT * FROM events WHERE id = ? AND +pos >= 0'),
    byStream: db.prepare('SELECT * FROM events WHERE stream = ? AND +pos >= 0 ORDER BY seq'),
    scan: db.prepare('SELECT * FROM events WHERE pos >= ? ORDER BY pos LIMIT ?'),
    // Rows as arrays (raw mode) and blobs as hex: on 200k events 4.2 µs a row against 8.2 for
    // `SELECT *` as objects with Buffers (measured, CPU time). iif keeps a NULL salt NULL (hex(NULL) is '').
    scanVerify: db
      .prepare(
        `SELECT pos, id, stream, seq, ts, kind, agent, resource, action, outcome, header, data,
                iif(salt IS NULL, NULL, lower(hex(salt))), lower(hex(hash))
         FROM events WHERE pos >= ? AND pos < ? ORDER BY pos LIMIT ?`,
      )
      .raw(true),
    hashAt: db.prepare('SELECT hash FROM events WHERE stream = ? AND seq = ?').pluck(),
    node: db.prepare('SELECT hash FROM tree_nodes WHERE level = ? AND idx = ?').pluck(),
    putNode: db.prepare('INSERT INTO tree_nodes (level, idx, hash) VALUES (?, ?, ?)'),
    latestCheckpoint: db.prepare('SELECT * FROM checkpoints ORDER BY id DESC LIMIT 1'),
    allCheckpoints: db.prepare('SELECT * FROM checkpoints ORDER BY id'),
    putCheckpoint: db.prepare('INSERT INTO checkpoints (size, root, note, ts, frontier, consistency, prev_size) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    keys: db.prepare('SELECT vkey, name, added_at FROM public_keys ORDER BY rowid'),
    putArtifact: db.prepare('INSERT INTO artifacts (sha256, mime, bytes, created_at) SELECT @sha256, @mime, @bytes, @at WHERE NOT EXISTS (SELECT 1 FROM artifacts WHERE sha256 = @sha256)'),
    artifact: db.prepare('SELECT sha256 FROM artifacts WHERE sha256 = ?').pluck(),
    // db.pragma() compiles its statement on every call; this runs once per append.
    dataVersion: db.prepare('PRAGMA data_version').pluck(),
  };
}
