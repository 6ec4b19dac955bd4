import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { v7 as uuidv7 } from 'uuid';
import {
  ChainChecker,
  Frontier,
  LedgerVerifier,
  WitnessError,
  chainEvent,
  consistencyProof,
  formatCheckpoint,
  genesisHash,
  inclusionProof,
  keyFingerprint,
  leafHash,
  openCheckpoint,
  parseVerifierKey,
  prepareEvent,
  recommitPayload,
  sha256Hex,
  signNote,
  verifyConsistency,
  type ArtifactRef,
  type Failure,
  type NodeSource,
  type NoteSigner,
  type NoteVerifier,
  type PreparedEvent,
  type StoredEvent,
} from '../../core/index.js';
import { writeArtifactFile } from '../artifacts.js';
import { createKeyFile, loadSigner, refuseKeySymlink } from '../keys.js';
import { checkSealRecordDirectory, openSealRecord, readSealRecordText, sealRecordPath, writeSealRecord, type SealRecord } from '../seal-record.js';
import { checkArtifacts } from '../verify.js';
import type {
  AdoptOptions,
  AdoptResult,
  AppendReceipt,
  AppendRequest,
  CheckpointRow,
  Ledger,
  LedgerInfo,
  PublicKeyRow,
  QueryFilter,
  QueryPage,
  RawEventRow,
  SealOptions,
  SealRecordText,
} from '../ledger.js';
import { sidecarPaths } from '../url.js';
import { DDL, SCHEMA_VERSION, TRIGGERS } from './schema.js';
import { translateSqliteError } from './errors.js';

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

interface StreamHead {
  seq: number;
  hash: Buffer;
  /** The stream's last event is its session.end: nothing may follow it. */
  ended: boolean;
}

const HEAD_CACHE_LIMIT = 10_000;
const SEAL_READ_PAGE = 10_000;

export class SqliteLedger implements Ledger {
  readonly info: LedgerInfo;
  readonly canSeal: boolean;
  private readonly db: Database.Database;
  private readonly signer: NoteSigner | undefined;
  /** The signer's own verifier, to check the record and the checkpoints it builds on. */
  private readonly ownVerifier: NoteVerifier | undefined;
  /** Set when the signer's key is not this ledger's key (the first one recorded): seals are refused. */
  private readonly foreignKey: { signer: string; ledger: string } | undefined;
  private readonly sealRecordPath: string;
  /** The record's path was given (option or environment), so messages repeat it. */
  private readonly sealRecordConfigured: boolean;
  private readonly durability: 'process' | 'power';
  /** Opened for reading only (verify, query, an auditor's account): never writes, never needs the private key. */
  private readonly readonly: boolean;
  private readonly artifactsDir: string;
  private readonly maxPayloadBytes: number | undefined;
  private readonly heads = new Map<string, StreamHead>();
  private nextPos = 0;
  private seenDataVersion = -1;
  private closed = false;
  private readonly stmts: ReturnType<SqliteLedger['prepareStatements']>;
  /**
   * Built once: better-sqlite3's db.transaction() defines four wrapper functions with their
   * properties on every call, which a CPU profile of the gateway put at ~15 µs per append.
   */
  private readonly appendTxn: (events: readonly PreparedEvent[], receipts: AppendReceipt[]) => { pos: number; touched: Map<string, StreamHead> };

  static open(options: SqliteLedgerOptions): SqliteLedger {
    return new SqliteLedger(options);
  }

  private constructor(options: SqliteLedgerOptions) {
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
      const meta = retryBusy(() => this.openOrCreateSchema(file, options, create));
      if (!options.readonly) {
        retryBusy(() => db.pragma('journal_mode = WAL'));
        db.pragma(`synchronous = ${options.durability === 'power' ? 'FULL' : 'NORMAL'}`);
        // The append-only triggers make SQLite keep a statement journal per INSERT; on disk that
        // halved insert throughput (measured 63k → 29k rows/s), in memory it costs ~10 %.
        db.pragma('temp_store = MEMORY');
        // A one-event commit writes ~11 WAL pages (row + 9 index leaves), so the default
        // 1,000-page auto-checkpoint would land inside every ~90th awaited record. Let the WAL
        // grow to ~40 MiB and checkpoint after each seal instead (off the awaited path).
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
      if (signer === undefined && !options.readonly && create && retryBusy(() => this.publicKeyCount()) === 0) {
        createKeyFile(paths.key, paths.pub, meta.origin);
        signer = loadSigner(paths.key, {});
      }
      this.signer = signer;
      this.ownVerifier = signer === undefined ? undefined : parseVerifierKey(signer.verifierKey);
      let ledgerKey: string | undefined;
      if (signer !== undefined && !options.readonly) ledgerKey = retryBusy(() => this.ensurePublicKey(signer));
      // Only the key the ledger was created with signs it: a second key would be one more key an
      // auditor must trust, and nothing in this version adds one legitimately (rotation will, by a
      // signed key.rotated event). A process holding another key opens the ledger but never signs.
      this.foreignKey =
        signer !== undefined && ledgerKey !== undefined && ledgerKey !== signer.verifierKey ? { signer: signer.verifierKey, ledger: ledgerKey } : undefined;
      this.canSeal = signer !== undefined && !options.readonly;
      this.maxPayloadBytes = options.maxPayloadBytes;
      this.stmts = this.prepareStatements();
      this.appendTxn = db.transaction((events: readonly PreparedEvent[], receipts: AppendReceipt[]) => this.appendLocked(events, receipts)).immediate;
      this.nextPos = this.readNextPos();
      this.info = { id: meta.id, origin: meta.origin, schemaVersion: meta.version, location: file, size: this.nextPos };
    } catch (e) {
      db.close();
      throw translateSqliteError(e, file);
    }
  }

  // ------------------------------------------------------------------ schema

  private openOrCreateSchema(file: string, options: SqliteLedgerOptions, create: boolean): { id: string; origin: string; version: number; created: boolean } {
    const db = this.db;
    const listTables = () => db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).pluck().all() as string[];
    // Reading sqlite_master is the first real read: a non-SQLite file fails here with NOTADB.
    let tables = listTables();
    if (tables.length === 0) {
      if (!create || options.readonly) {
        throw new WitnessError('store_corrupt', `${file} is an empty database, not a Witness ledger; run \`witness init\` to create one.`);
      }
      // Measured trade-off: 32 KiB pages double batch-insert throughput (57k → 100k rows/s) but
      // every commit then writes ~9 large pages, and an awaited single record went from 70 µs to
      // 260 µs p50. Agents await single records far more often than they bulk-load, so 4 KiB.
      // page_size only takes effect before the first table exists.
      db.pragma('page_size = 4096');
      const id = uuidv7();
      const origin = `${options.name ?? 'local'}/witness/${id}`;
      // Under the write lock, so of two processes creating the same file at once one creates and
      // the other finds the schema and opens it.
      const created = db
        .transaction(() => {
          if (listTables().length > 0) return false;
          db.exec(DDL);
          db.exec(TRIGGERS);
          const put = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
          put.run('schema_version', String(SCHEMA_VERSION));
          put.run('ledger_id', id);
          put.run('origin', origin);
          put.run('created_at', new Date().toISOString());
          return true;
        })
        .immediate();
      if (created) return { id, origin, version: SCHEMA_VERSION, created: true };
      tables = listTables();
    }
    if (!tables.includes('meta')) {
      throw new WitnessError('store_corrupt', `${file} is an SQLite database but not a Witness ledger; point --store at a ledger or at a new file.`);
    }
    const meta = new Map((db.prepare('SELECT key, value FROM meta').all() as Array<{ key: string; value: string }>).map((r) => [r.key, r.value]));
    const version = Number(meta.get('schema_version'));
    if (!Number.isInteger(version)) {
      throw new WitnessError('store_corrupt', `${file} has no valid schema version; it is not a Witness ledger or it is damaged.`);
    }
    if (version > SCHEMA_VERSION) {
      throw new WitnessError(
        'store_newer_schema',
        `${file} uses ledger schema version ${version}, newer than this Witness understands (${SCHEMA_VERSION}); upgrade Witness to open it.`,
      );
    }
    const id = meta.get('ledger_id');
    const origin = meta.get('origin');
    if (id === undefined || origin === undefined) {
      throw new WitnessError('store_corrupt', `${file} is missing its ledger id or origin; it is damaged.`);
    }
    return { id, origin, version, created: false };
  }

  private publicKeyCount(): number {
    return this.db.prepare('SELECT count(*) FROM public_keys').pluck().get() as number;
  }

  /** The ledger's own key: the first one recorded (in insertion order), or none yet. */
  private firstKey(): string | undefined {
    return this.db.prepare('SELECT vkey FROM public_keys ORDER BY rowid LIMIT 1').pluck().get() as string | undefined;
  }

  /** Records the signer's key when the ledger has none yet; returns the ledger's own key. */
  private ensurePublicKey(signer: NoteSigner): string | undefined {
    // Opening must not need the write lock when the key is already known (readers stay unblocked);
    // the guarded insert keeps two processes opening a new ledger together from both inserting one.
    const first = this.firstKey();
    if (first !== undefined) return first;
    this.db
      .prepare('INSERT INTO public_keys (vkey, name, added_at) SELECT @vkey, @name, @at WHERE NOT EXISTS (SELECT 1 FROM public_keys)')
      .run({ vkey: signer.verifierKey, name: signer.name, at: new Date().toISOString() });
    return this.firstKey();
  }


  private prepareStatements() {
    const db = this.db;
    return {
      insert: db.prepare(
        `INSERT INTO events (pos, id, stream, seq, ts, kind, agent, resource, action, outcome, header, data, salt, hash)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      head: db.prepare('SELECT seq, hash, kind FROM events WHERE stream = ? ORDER BY seq DESC LIMIT 1'),
      maxPos: db.prepare('SELECT max(pos) AS m FROM events').pluck(),
      byId: db.prepare('SELECT * FROM events WHERE id = ?'),
      byStream: db.prepare('SELECT * FROM events WHERE stream = ? ORDER BY seq'),
      scan: db.prepare('SELECT * FROM events WHERE pos >= ? ORDER BY pos LIMIT ?'),
      hashAt: db.prepare('SELECT hash FROM events WHERE stream = ? AND seq = ?').pluck(),
      node: db.prepare('SELECT hash FROM tree_nodes WHERE level = ? AND idx = ?').pluck(),
      putNode: db.prepare('INSERT INTO tree_nodes (level, idx, hash) VALUES (?, ?, ?)'),
      latestCheckpoint: db.prepare('SELECT * FROM checkpoints ORDER BY id DESC LIMIT 1'),
      allCheckpoints: db.prepare('SELECT * FROM checkpoints ORDER BY id'),
      putCheckpoint: db.prepare(
        'INSERT INTO checkpoints (size, root, note, ts, frontier, consistency, prev_size) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      keys: db.prepare('SELECT vkey, name, added_at FROM public_keys ORDER BY rowid'),
      putArtifact: db.prepare(
        'INSERT INTO artifacts (sha256, mime, bytes, created_at) SELECT @sha256, @mime, @bytes, @at WHERE NOT EXISTS (SELECT 1 FROM artifacts WHERE sha256 = @sha256)',
      ),
      artifact: db.prepare('SELECT sha256 FROM artifacts WHERE sha256 = ?').pluck(),
      // db.pragma() compiles its statement on every call; this runs once per append.
      dataVersion: db.prepare('PRAGMA data_version').pluck(),
    };
  }

  private readonly queryStatements = new Map<string, Database.Statement>();

  /** Query shapes are few (one per combination of filters), so their statements are kept. */
  private cachedStatement(sql: string): Database.Statement {
    let stmt = this.queryStatements.get(sql);
    if (stmt === undefined) {
      stmt = this.db.prepare(sql);
      this.queryStatements.set(sql, stmt);
    }
    return stmt;
  }

  private readNextPos(): number {
    const m = this.stmts.maxPos.get() as number | null;
    return m === null ? 0 : m + 1;
  }

  /** Another connection committed since we last looked: our cached heads and position are stale. */
  private syncWithOtherWriters(): void {
    const v = this.stmts.dataVersion.get() as number;
    if (v !== this.seenDataVersion) {
      this.heads.clear();
      this.nextPos = this.readNextPos();
      this.seenDataVersion = v;
    }
  }

  private headOf(stream: string): StreamHead {
    const cached = this.heads.get(stream);
    if (cached !== undefined) return cached;
    const row = this.stmts.head.get(stream) as { seq: number; hash: Buffer; kind: string } | undefined;
    if (this.heads.size >= HEAD_CACHE_LIMIT) this.heads.clear();
    const head = row === undefined ? { seq: -1, hash: genesisHash(this.info.origin, stream), ended: false } : { seq: row.seq, hash: row.hash, ended: row.kind === 'session.end' };
    this.heads.set(stream, head);
    return head;
  }

  // ------------------------------------------------------------------ append

  /** Validates and commits to payloads before taking the write lock. */
  prepare(batch: readonly AppendRequest[]): PreparedEvent[] {
    this.assertOpen();
    return batch.map(({ stream, ...input }) => prepareEvent(stream, input, { maxPayloadBytes: this.maxPayloadBytes }));
  }

  async append(batch: readonly AppendRequest[]): Promise<AppendReceipt[]> {
    return this.appendPreparedSync(this.prepare(batch));
  }

  /** The interface's form: the work is done synchronously inside, so a fault becomes a rejection. */
  async appendPrepared(events: readonly PreparedEvent[]): Promise<AppendReceipt[]> {
    return this.appendPreparedSync(events);
  }

  /** One IMMEDIATE transaction: seq, prev, hash and position are assigned under the write lock. */
  appendPreparedSync(events: readonly PreparedEvent[]): AppendReceipt[] {
    this.assertOpen();
    if (events.length === 0) return [];
    const receipts: AppendReceipt[] = [];
    try {
      const { pos, touched } = this.appendTxn(events, receipts);
      this.nextPos = pos;
      for (const [s, h] of touched) this.heads.set(s, h);
      this.info.size = pos;
      // Our own commit does not change data_version for this connection, so the cache stays valid.
      return receipts;
    } catch (e) {
      this.heads.clear();
      this.seenDataVersion = -1;
      throw translateSqliteError(e, this.info.location);
    }
  }

  /** The body of appendPrepared's transaction; runs with the write lock held. */
  private appendLocked(events: readonly PreparedEvent[], receipts: AppendReceipt[]): { pos: number; touched: Map<string, StreamHead> } {
    this.syncWithOtherWriters();
    let pos = this.nextPos;
    const touched = new Map<string, StreamHead>();
    for (const ev of events) {
      const head = touched.get(ev.stream) ?? this.headOf(ev.stream);
      if (head.ended) {
        // Anything after session.end would make the whole ledger fail verification forever.
        throw new WitnessError('invalid_event', `Session ${ev.stream} has already ended; start a new session to record more.`, {
          details: { stream: ev.stream, id: ev.fields.id },
        });
      }
      const seq = head.seq + 1;
      if (ev.fields.kind === 'session.end') {
        recommitPayload(ev, { ...ev.data, event_count: seq, last_hash: head.hash.toString('hex') });
      }
      const { canonicalHeader, hash } = chainEvent(ev, seq, head.hash);
      const f = ev.fields;
      this.stmts.insert.run(
        pos,
        f.id,
        ev.stream,
        seq,
        f.ts,
        f.kind,
        f.agent.id,
        f.resource ?? null,
        f.action ?? null,
        f.outcome ?? null,
        canonicalHeader,
        ev.canonicalData,
        ev.salt,
        hash,
      );
      touched.set(ev.stream, { seq, hash, ended: ev.fields.kind === 'session.end' });
      receipts.push({ id: f.id, stream: ev.stream, seq, pos, hash: hash.toString('hex') });
      pos++;
    }
    return { pos, touched };
  }

  // ------------------------------------------------------------------ read

  async getEvent(id: string): Promise<(StoredEvent & { pos: number }) | undefined> {
    this.assertOpen();
    const row = this.read(() => this.stmts.byId.get(id) as RawEventRow | undefined);
    return row === undefined ? undefined : toStored(row);
  }

  async readStream(stream: string): Promise<Array<StoredEvent & { pos: number }>> {
    this.assertOpen();
    return this.read(() => this.stmts.byStream.all(stream) as RawEventRow[]).map(toStored);
  }

  async query(filter: QueryFilter): Promise<QueryPage> {
    this.assertOpen();
    const where: string[] = [];
    const args: unknown[] = [];
    const eq = (col: string, v: string | undefined) => {
      if (v !== undefined) {
        where.push(`${col} = ?`);
        args.push(v);
      }
    };
    eq('agent', filter.agent);
    eq('stream', filter.stream);
    eq('kind', filter.kind);
    eq('resource', filter.resource);
    eq('action', filter.action);
    eq('outcome', filter.outcome);
    if (filter.since !== undefined) {
      where.push('ts >= ?');
      args.push(filter.since);
    }
    if (filter.until !== undefined) {
      where.push('ts < ?');
      args.push(filter.until);
    }
    if (filter.cursor !== undefined) {
      const [ts, pos] = decodeCursor(filter.cursor);
      where.push('(ts > ? OR (ts = ? AND pos > ?))');
      args.push(ts, ts, pos);
    }
    const limit = Math.min(Math.max(filter.limit ?? 100, 1), 10_000);
    const sql = `SELECT * FROM events ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY ts, pos LIMIT ?`;
    const rows = this.read(() => this.cachedStatement(sql).all(...args, limit + 1) as RawEventRow[]);
    const more = rows.length > limit;
    const page = rows.slice(0, limit).map(toStored);
    const last = page[page.length - 1];
    return more && last !== undefined ? { events: page, next: encodeCursor(last.ts, last.pos) } : { events: page };
  }

  async *scan(fromPos = 0, pageSize = 5000): AsyncIterable<RawEventRow[]> {
    yield* this.scanSync(fromPos, pageSize);
  }

  /** Synchronous scan for the verifier's hot loop (no promise per page). */
  *scanSync(fromPos = 0, pageSize = 5000): Iterable<RawEventRow[]> {
    this.assertOpen();
    let pos = fromPos;
    for (;;) {
      const rows = this.read(() => this.stmts.scan.all(pos, pageSize) as RawEventRow[]);
      if (rows.length === 0) return;
      yield rows;
      pos = rows[rows.length - 1]!.pos + 1;
      if (rows.length < pageSize) return;
    }
  }

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
  private trustedFrontier(last: SqlCheckpoint | undefined, record: SealRecord | undefined, own: NoteVerifier): { frontier: Frontier; root: Buffer | undefined } {
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
  private provenConsistency(oldSize: number, oldRoot: Buffer, newSize: number, newRoot: Buffer, why: () => string): Buffer[] {
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
  private sealingKey(): { signer: NoteSigner; own: NoteVerifier } {
    const signer = this.signer;
    const own = this.ownVerifier;
    if (signer === undefined || own === undefined || !this.canSeal) {
      throw new WitnessError('invalid_key', `No signing key for ${this.info.location}; checkpoints need the key file beside the ledger or WITNESS_SIGNING_KEY.`);
    }
    return { signer, own };
  }

  private refuseForeignKey(): void {
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
  private checkRecordWritable(): void {
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

  private nodeSource(): NodeSource {
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

  /** Reads that a damaged file can fail must fail as typed errors, never as raw SQLite ones. */
  private read<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw translateSqliteError(e, this.info.location);
    }
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

  // ------------------------------------------------------------------ artifacts

  async putArtifact(bytes: Uint8Array, mime: string, role?: string): Promise<ArtifactRef> {
    this.assertOpen();
    const sha256 = sha256Hex(bytes);
    writeArtifactFile(this.artifactsDir, sha256, bytes);
    this.stmts.putArtifact.run({ sha256, mime, bytes: bytes.byteLength, at: new Date().toISOString() });
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
  private artifactFile(sha256: string): string {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new WitnessError('invalid_argument', `"${sha256}" is not a SHA-256 hex digest.`);
    return path.join(this.artifactsDir, sha256.slice(0, 2), sha256);
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
        this.db.pragma('journal_mode = DELETE');
      } catch {
        // Another process has the ledger open; it will do this when it closes.
      }
    }
    this.db.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new WitnessError('closed', `The ledger ${this.info?.location ?? ''} is closed; open it again to use it.`);
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

function sealRefused(why: string): WitnessError {
  return new WitnessError('seal_refused', `Not signing: ${why}.`);
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

export function toStored(row: RawEventRow): StoredEvent & { pos: number } {
  let header: StoredEvent;
  let data: Record<string, unknown> | null;
  try {
    header = JSON.parse(row.header) as StoredEvent;
    data = row.data === null ? null : (JSON.parse(row.data) as Record<string, unknown>);
  } catch {
    throw new WitnessError('store_corrupt', `The stored event at position ${row.pos} is not valid JSON: the ledger was damaged or edited; run \`witness verify\`.`);
  }
  return {
    ...header,
    data,
    salt: row.salt === null ? null : row.salt.toString('hex'),
    hash: row.hash.toString('hex'),
    pos: row.pos,
  };
}

function encodeCursor(ts: string, pos: number): string {
  return Buffer.from(JSON.stringify([ts, pos])).toString('base64url');
}

function decodeCursor(cursor: string): [string, number] {
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(v) && typeof v[0] === 'string' && Number.isSafeInteger(v[1])) return [v[0], v[1] as number];
  } catch {
    // fall through to the error below
  }
  throw new WitnessError('invalid_argument', 'The cursor is not one this ledger issued; pass the `next` value of the previous page unchanged.');
}
