import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client, ClientConfig, Pool, PoolClient, QueryResultRow } from 'pg';
import { WitnessError, parseVerifierKey, type NoteSigner, type NoteVerifier } from '../../core/index.js';
import { createKeyFile, loadSigner, refuseKeySymlink } from '../keys.js';
import { checkSealRecordDirectory, sealRecordPath } from '../seal-record.js';
import type { LedgerInfo, WatchedKind } from '../ledger.js';
import { SIGNING_KEY_FILE_ENV, parsePostgresUrl, type PostgresLocation } from '../url.js';
import { translatePgError } from './errors.js';
import { ensurePublicKey, openOrCreateSchema, publicKeyCount } from './schema.js';

/*
 * The PostgreSQL driver is one class, PostgresLedger (ledger.ts), built up file by file exactly as
 * the SQLite driver is: open.ts (this: opening, state, life cycle) → artifacts.ts → append.ts →
 * query.ts → seal.ts. node-postgres is imported here, lazily, inside openPostgres: a process that
 * only ever opens SQLite ledgers never loads it (test/sdk-surface.test.ts).
 */

export interface PostgresLedgerOptions {
  /** `postgres://user@host:port/database?schema=<name>`. */
  url: string;
  /** Create the schema (and a signing key) when missing. Default true. */
  create?: boolean;
  /** A read-only session (`default_transaction_read_only = on`): never writes, never needs the private key. */
  readonly?: boolean;
  /** First part of the checkpoint origin for a new ledger. */
  name?: string;
  maxPayloadBytes?: number;
  /**
   * The signing key's file, kept outside the database as SQLite keeps `<db>.key` beside its file:
   * whoever can write the database must not thereby be able to sign. Default
   * `$WITNESS_SIGNING_KEY_FILE`, else `~/.witness/postgres/<ledger id>.key`; `$WITNESS_SIGNING_KEY`
   * (the key itself) wins over any file. The public half is `<base>.pub` beside it.
   */
  keyFile?: string;
  /** The sealer's record (a file path). Default `$WITNESS_SEAL_RECORD`, else `<base>.sealed` beside the key file. */
  sealRecord?: string;
  /** How long to wait to connect, and for the sealer's lock (milliseconds). Default 5,000 / 30,000. */
  busyTimeoutMs?: number;
  /** Environment for WITNESS_SIGNING_KEY, WITNESS_SIGNING_KEY_FILE and WITNESS_SEAL_RECORD (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** Everything an open finds out before the ledger object exists (the constructor cannot await). */
export interface PgOpened {
  pool: Pool;
  /** node-postgres's Client, for the connection that LISTENs (watch), which the pool cannot lend. */
  newClient: (config: ClientConfig) => Client;
  loc: PostgresLocation;
  connectionOptions: string;
  info: LedgerInfo;
  readonly: boolean;
  signer: NoteSigner | undefined;
  /**
   * Whether the login may store what a seal stores (INSERT on checkpoints and tree_nodes): the
   * writer role and the owner may, the retention role and the auditor may not (schema.ts roleGrants).
   */
  maySeal: boolean;
  foreignKey: { signer: string; ledger: string } | undefined;
  sealRecord: { file: string; configured: boolean };
  maxPayloadBytes: number | undefined;
  busyTimeoutMs: number;
}

/** int8 comes back as a string by default; positions, seqs and sizes are JavaScript numbers here, as in SQLite. */
const INT8_OID = 20;

export async function openPostgres(options: PostgresLedgerOptions): Promise<PgOpened> {
  const loc = parsePostgresUrl(options.url);
  const readonly = options.readonly ?? false;
  const create = options.create ?? true;
  const env = options.env ?? process.env;
  const { default: pg } = await import('pg');
  // search_path on every pooled connection (the ledger's schema, then nothing else: a table of the
  // same name elsewhere is never read), and a read-only session for a reader.
  const connectionOptions = `-c search_path=${loc.schema}${readonly ? ' -c default_transaction_read_only=on' : ''}`;
  const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
  const pool = new pg.Pool({
    connectionString: loc.connectionString,
    options: connectionOptions,
    max: 4,
    idleTimeoutMillis: 10_000,
    connectionTimeoutMillis: Math.max(busyTimeoutMs, 1000),
    types: { getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format))) as never },
  });
  // An idle pooled connection the server drops (a restart) must not crash the process.
  pool.on('error', () => undefined);
  // Nor one that is checked out: pg-pool removes its own listener while a client is lent, and a
  // backend that dies under a transaction (terminated, a restart, a cut network) then emits
  // 'error' with nobody listening, which ends the process. The pending query is rejected anyway,
  // so the caller gets store_unavailable and may retry; this listener only keeps the process alive.
  pool.on('connect', (c) => {
    c.on('error', () => undefined);
  });
  let client: PoolClient;
  try {
    client = await pool.connect();
  } catch (e) {
    await pool.end().catch(() => undefined);
    throw translatePgError(e, loc.location);
  }
  try {
    const meta = await openOrCreateSchema(client, loc.schema, loc.location, { readonly, ...(options.name === undefined ? {} : { name: options.name }) }, create);
    const keyFile = path.resolve(options.keyFile ?? nonEmpty(env[SIGNING_KEY_FILE_ENV]) ?? path.join(os.homedir(), '.witness', 'postgres', `${meta.id}.key`));
    const base = keyFile.replace(/\.key$/, '');
    const pubFile = `${base}.pub`;
    const sealRecord = sealRecordPath(`${base}.sealed`, options.sealRecord, env);
    if (sealRecord.configured && !readonly) checkSealRecordDirectory(sealRecord.file);
    let signer: NoteSigner | undefined;
    try {
      signer = loadSigner(keyFile, env);
    } catch (e) {
      // A reader (an auditor's account) needs no private key and is usually not allowed to read it.
      if (!readonly) throw e;
    }
    // A ledger that has never had a key gets one; a ledger whose key was removed does not silently get a new one.
    if (signer === undefined && !readonly && create && (await publicKeyCount(client, loc.schema)) === 0) {
      if (options.keyFile === undefined && nonEmpty(env[SIGNING_KEY_FILE_ENV]) === undefined) fs.mkdirSync(path.dirname(keyFile), { recursive: true, mode: 0o700 });
      if (!fs.existsSync(path.dirname(keyFile))) {
        throw new WitnessError('store_unavailable', `Cannot create the signing key ${keyFile}: the directory ${path.dirname(keyFile)} does not exist; create it or choose another key file.`);
      }
      for (const p of [keyFile, pubFile]) refuseKeySymlink(p);
      createKeyFile(keyFile, pubFile, meta.origin);
      signer = loadSigner(keyFile, {});
    }
    let ledgerKey: string | undefined;
    if (signer !== undefined && !readonly) ledgerKey = await ensurePublicKey(client, loc.schema, signer);
    // Only the key the ledger was created with signs it (see the SQLite driver's open.ts).
    const foreignKey = signer !== undefined && ledgerKey !== undefined && ledgerKey !== signer.verifierKey ? { signer: signer.verifierKey, ledger: ledgerKey } : undefined;
    const size = Number((await client.query<{ n: number }>('SELECT coalesce(max(pos) + 1, 0) AS n FROM events')).rows[0]!.n);
    const privilege = "SELECT has_table_privilege($1, 'INSERT') AND has_table_privilege($2, 'INSERT') AS ok";
    const maySeal = !readonly && (await client.query<{ ok: boolean }>(privilege, [`${loc.schema}.checkpoints`, `${loc.schema}.tree_nodes`])).rows[0]!.ok;
    client.release();
    return {
      pool,
      newClient: (config) => new pg.Client(config),
      loc,
      connectionOptions,
      info: { id: meta.id, origin: meta.origin, schemaVersion: meta.version, location: loc.location, size },
      readonly,
      signer,
      maySeal,
      foreignKey,
      sealRecord,
      maxPayloadBytes: options.maxPayloadBytes,
      busyTimeoutMs,
    };
  } catch (e) {
    client.release();
    await pool.end().catch(() => undefined);
    throw translatePgError(e, loc.location);
  }
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

/** The NOTIFY channel of a ledger: its id, so two ledgers in one database never hear each other. */
export function notifyChannel(ledgerId: string): string {
  return `witness_${ledgerId}`;
}

/** Reconnecting the LISTEN connection after a loss: first after this long, doubling up to the cap. */
const LISTEN_RETRY_MS = [100, 5000] as const;

/** Opening, the driver's state and its life cycle; the concerns are added by the files that extend it. */
export abstract class PostgresBase {
  readonly info: LedgerInfo;
  readonly canSeal: boolean;
  protected readonly pool: Pool;
  private readonly newClient: (config: ClientConfig) => Client;
  /** Whoever watches (see watch), and the one connection that LISTENs for them all while any do. */
  private readonly watchers = new Set<{ kind: WatchedKind; onCommit: () => void }>();
  private listener: Client | undefined;
  private listenRetry: NodeJS.Timeout | undefined;
  private listenDelayMs: number = LISTEN_RETRY_MS[0];
  protected readonly loc: PostgresLocation;
  protected readonly connectionOptions: string;
  protected readonly signer: NoteSigner | undefined;
  protected readonly maySeal: boolean;
  protected readonly ownVerifier: NoteVerifier | undefined;
  protected readonly foreignKey: { signer: string; ledger: string } | undefined;
  protected readonly sealRecordPath: string;
  protected readonly sealRecordConfigured: boolean;
  protected readonly readonly: boolean;
  protected readonly maxPayloadBytes: number | undefined;
  protected readonly busyTimeoutMs: number;
  protected closed = false;

  protected constructor(o: PgOpened) {
    this.info = o.info;
    this.pool = o.pool;
    this.newClient = o.newClient;
    this.loc = o.loc;
    this.connectionOptions = o.connectionOptions;
    this.signer = o.signer;
    this.ownVerifier = o.signer === undefined ? undefined : parseVerifierKey(o.signer.verifierKey);
    this.foreignKey = o.foreignKey;
    this.maySeal = o.maySeal;
    // A retention host holding the key still does not seal: its login may not store checkpoints.
    this.canSeal = o.signer !== undefined && !o.readonly && o.maySeal;
    this.sealRecordPath = o.sealRecord.file;
    this.sealRecordConfigured = o.sealRecord.configured;
    this.readonly = o.readonly;
    this.maxPayloadBytes = o.maxPayloadBytes;
    this.busyTimeoutMs = o.busyTimeoutMs;
  }

  /** One statement on a pooled connection; errors come out typed. */
  protected async sql<R extends QueryResultRow>(text: string, values?: unknown[]): Promise<R[]> {
    try {
      return (await this.pool.query<R>(text, values)).rows;
    } catch (e) {
      throw translatePgError(e, this.info.location);
    }
  }

  /**
   * A pooled connection for a transaction; `fn` runs inside `begin` … COMMIT (ROLLBACK on a throw).
   * With `begin` null, `fn` sends BEGIN itself (with its first statement, in one round trip).
   */
  protected async transaction<T>(begin: string | null, fn: (c: PoolClient) => Promise<T>): Promise<T> {
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw translatePgError(e, this.info.location);
    }
    let broken = false;
    try {
      if (begin !== null) await client.query(begin);
      const out = await fn(client);
      await client.query('COMMIT');
      return out;
    } catch (e) {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true;
      }
      throw translatePgError(e, this.info.location);
    } finally {
      client.release(broken);
    }
  }

  // ------------------------------------------------------------------ watching (LISTEN/NOTIFY)

  /**
   * See Ledger.watch. The append that commits an event of a watched kind NOTIFYs the ledger's
   * channel in its transaction (append.ts), so every listener anywhere hears of it at commit. One
   * dedicated connection per ledger handle LISTENs while anyone watches (a pooled one cannot: the
   * pool lends it to others and may close it); it is opened by the first watcher, closed after the
   * last, and reopened after a loss with a growing delay. Each time it starts listening every
   * watcher is called once, for whatever committed while nobody listened.
   */
  watch(kind: WatchedKind, onCommit: () => void): () => void {
    this.assertOpen();
    const w = { kind, onCommit };
    this.watchers.add(w);
    this.listen();
    return () => {
      this.watchers.delete(w);
      if (this.watchers.size === 0) this.unlisten();
    };
  }

  private announce(kind: string | undefined): void {
    for (const w of [...this.watchers]) {
      if (kind !== undefined && w.kind !== kind) continue;
      try {
        w.onCommit();
      } catch {
        // One watcher's fault must not keep the others from hearing.
      }
    }
  }

  private listen(): void {
    if (this.closed || this.watchers.size === 0 || this.listener !== undefined || this.listenRetry !== undefined) return;
    const channel = notifyChannel(this.info.id);
    const client = this.newClient({
      connectionString: this.loc.connectionString,
      connectionTimeoutMillis: Math.max(this.busyTimeoutMs, 1000),
      // A silently dead peer (a host gone) is noticed by TCP keepalive rather than never.
      keepAlive: true,
      application_name: 'witness-listen',
    });
    this.listener = client;
    let lost = false;
    const onLost = (): void => {
      if (lost) return;
      lost = true;
      client.end().catch(() => undefined);
      if (this.listener !== client) return; // closed on purpose
      this.listener = undefined;
      if (this.closed || this.watchers.size === 0) return;
      this.listenRetry = setTimeout(() => {
        this.listenRetry = undefined;
        this.listen();
      }, this.listenDelayMs);
      this.listenRetry.unref();
      this.listenDelayMs = Math.min(this.listenDelayMs * 2, LISTEN_RETRY_MS[1]);
    };
    client.on('error', onLost);
    client.on('end', onLost);
    client.on('notification', (n) => {
      if (n.channel === channel) this.announce(n.payload);
    });
    client
      .connect()
      .then(() => client.query(`LISTEN ${client.escapeIdentifier(channel)}`))
      .then(() => {
        if (this.listener !== client) return;
        this.listenDelayMs = LISTEN_RETRY_MS[0];
        this.announce(undefined);
      }, onLost);
  }

  private unlisten(): void {
    if (this.listenRetry !== undefined) clearTimeout(this.listenRetry);
    this.listenRetry = undefined;
    const client = this.listener;
    this.listener = undefined;
    client?.end().catch(() => undefined);
  }

  // ------------------------------------------------------------------ life cycle

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.watchers.clear();
    this.unlisten();
    await this.pool.end().catch(() => undefined);
  }

  protected assertOpen(): void {
    if (this.closed) throw new WitnessError('closed', `The ledger ${this.info?.location ?? ''} is closed; open it again to use it.`);
  }

  protected assertWritable(what: string): void {
    if (this.readonly) throw new WitnessError('store_readonly', `The ledger ${this.info.location} is open read-only; open it for writing to ${what}.`);
  }
}
