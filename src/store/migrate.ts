import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ClientBase } from 'pg';
import { Frontier, WitnessError, leafHash, type NoteSigner, type VerifyReport } from '../core/index.js';
import { chunked } from './artifacts.js';
import { SIGNING_KEY_ENV, loadSigner, refuseKeySymlink } from './keys.js';
import type { Ledger, RawEventRow } from './ledger.js';
import { openLedger } from './open.js';
import { sealRecordPath } from './seal-record.js';
import { SIGNING_KEY_FILE_ENV, parsePostgresUrl, parseStoreUrl, redactUrl, sidecarPaths } from './url.js';
import { verifyLedger } from './verify.js';

/**
 * `witness migrate`: a ledger copied row for row into a new PostgreSQL schema, then verified on
 * both sides. Rows are written as they are stored (the exact header and payload bytes, salt, hash,
 * position and seq), never prepared again: a re-prepared event would get a new salt and hash, and
 * the checkpoints signed before the move would no longer match. The source is read only through
 * the Ledger interface (scan, checkpoints, publicKeys, listArtifacts, readArtifactStream, sealRecord), so any driver can
 * be a source; the target's rows go in through plain INSERTs in position order, inside one
 * transaction, with its append-only triggers and its position guard active as always.
 *
 * Tree nodes and each checkpoint's frontier are not read from the source (the interface has no
 * call for them): they are recomputed from the copied event hashes, which is what the source's
 * sealer did; the checks after the copy compare every checkpoint's consistency proof on both
 * sides, which reads the stored nodes of each.
 */

export interface MigrateOptions {
  /** The PostgreSQL ledger's signing key file (default $WITNESS_SIGNING_KEY_FILE, else ~/.witness/postgres/<ledger id>.key). */
  keyFile?: string;
  /** The sealer's record on the PostgreSQL side (default $WITNESS_SEAL_RECORD, else `<key base>.sealed`). */
  sealRecord?: string;
  env?: NodeJS.ProcessEnv;
}

export interface MigrateResult {
  from: string;
  to: string;
  ledgerId: string;
  origin: string;
  size: number;
  streams: number;
  checkpoints: number;
  treeNodes: number;
  artifacts: number;
  publicKeys: number;
  /** The newest checkpoint, the same on both sides; null when the ledger has none. */
  checkpoint: { size: number; root: string } | null;
  /** Where the signing key now is for the PostgreSQL ledger ('WITNESS_SIGNING_KEY' when it is given that way). */
  signingKey: string;
  sealRecord: string | null;
  source: VerifyReport;
  target: VerifyReport;
}

const PAGE = 5000;

/** Where the PostgreSQL driver looks for a ledger's key (as postgres/open.ts does). */
export function postgresKeyFile(ledgerId: string, keyFile: string | undefined, env: NodeJS.ProcessEnv = process.env): { file: string; configured: boolean } {
  const fromEnv = env[SIGNING_KEY_FILE_ENV]?.trim();
  const given = keyFile ?? (fromEnv === undefined || fromEnv === '' ? undefined : fromEnv);
  return { file: path.resolve(given ?? path.join(os.homedir(), '.witness', 'postgres', `${ledgerId}.key`)), configured: given !== undefined };
}

export async function migrateToPostgres(fromUrl: string, toUrl: string, options: MigrateOptions = {}): Promise<MigrateResult> {
  const env = options.env ?? process.env;
  const to = parseStoreUrl(toUrl);
  if (to.driver !== 'postgres') throw new WitnessError('invalid_argument', `--to "${toUrl}" is not a PostgreSQL URL; write --to postgres://user@host/database?schema=witness.`);
  const from = parseStoreUrl(fromUrl);
  const target = parsePostgresUrl(to.url);
  if (from.driver === 'postgres') {
    const src = parsePostgresUrl(from.url);
    if (src.connectionString === target.connectionString && src.schema === target.schema) {
      throw new WitnessError('invalid_argument', `--from and --to name the same ledger (${target.location}); name another schema with ?schema= in --to.`);
    }
  }

  // In a migration $WITNESS_SIGNING_KEY_FILE names the PostgreSQL ledger's key (postgresKeyFile), which
  // may not exist yet; a SQLite source's key is the one beside it, so the source never reads that variable.
  const sourceEnv = from.driver === 'sqlite' ? { ...env, [SIGNING_KEY_FILE_ENV]: undefined } : env;
  const source = await openLedger(fromUrl, { create: false, readonly: true, env: sourceEnv });
  try {
    // 1. The source must verify, exactly as `witness verify` checks it: a damaged ledger is not moved.
    const sourceReport = await verifyLedger(source);
    if (!sourceReport.ok) {
      const f = sourceReport.first;
      const at = f?.leaf !== undefined ? ` at leaf ${f.leaf}` : f?.checkpoint !== undefined ? ` at checkpoint ${f.checkpoint}` : '';
      throw new WitnessError(
        'verification_failed',
        `Not migrating: the source ${source.info.location} fails verification${at} (${f?.code ?? 'unverifiable'}), so it is not copied; run \`witness verify --store ${fromUrl}\` to see why.`,
        { details: { report: sourceReport } },
      );
    }
    const keys = await source.publicKeys();
    const own = keys[0];
    const found = sourceSigner(from, source.info.id, sourceEnv);
    const signer = found?.signer;
    if (own !== undefined && signer !== undefined && signer.verifierKey !== own.vkey) {
      throw new WitnessError(
        'invalid_key',
        `Not migrating: the signing key found for ${source.info.location} is not the ledger's own key; point WITNESS_SIGNING_KEY (or the key file) at the key the ledger was created with.`,
      );
    }
    if (own !== undefined && signer === undefined) {
      throw new WitnessError(
        'invalid_key',
        `Not migrating: the signing key of ${source.info.location} was not found (looked for ${keyLocationOf(from, source.info.id, env)}), and without it the PostgreSQL ledger could never be sealed again; run this where the key is, or set WITNESS_SIGNING_KEY.`,
      );
    }
    const record = await source.sealRecord();

    // 2. Where the key and the sealer's record go on the PostgreSQL side, as its driver looks for them.
    const keyFromEnv = (env[SIGNING_KEY_ENV] ?? '').trim() !== '';
    const key = postgresKeyFile(source.info.id, options.keyFile, env);
    const base = key.file.replace(/\.key$/, '');
    const recordFile = sealRecordPath(`${base}.sealed`, options.sealRecord, env).file;

    // 3. The copy, in one transaction: a failure leaves the destination as it was.
    const { default: pg } = await import('pg');
    const client = new pg.Client({
      connectionString: target.connectionString,
      types: { getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format))) as never },
    });
    const { translatePgError } = await import('./postgres/errors.js');
    const schemaMod = await import('./postgres/schema.js');
    try {
      await client.connect();
    } catch (e) {
      throw translatePgError(e, target.location);
    }
    let counts: { streams: number; treeNodes: number; artifacts: number };
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [schemaMod.schemaLockKey(target.schema)]);
      const held = (await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = $1`, [target.schema])).rows[0]!.n;
      if (held > 0) {
        throw new WitnessError(
          'conflict',
          `Not migrating: the destination schema "${target.schema}" at ${target.location} is not empty (${held} relation(s)), and a ledger is only copied into a new or empty schema; name another with ?schema= in --to.`,
        );
      }
      await schemaMod.createSchemaObjects(
        client,
        target.schema,
        { id: source.info.id, origin: source.info.origin },
        { migrated_from: redactUrl(source.info.location), migrated_at: new Date().toISOString() },
      );
      await client.query(`SET LOCAL search_path = ${target.schema}`);
      for (const k of keys) await client.query('INSERT INTO public_keys (vkey, name, added_at) VALUES ($1, $2, $3)', [k.vkey, k.name, k.addedAt]);
      counts = await copyRows(client, source);
      // The files last, before COMMIT: a failure here leaves no ledger without its key.
      if (found !== undefined && !keyFromEnv) placeKey(key.file, found, !key.configured);
      if (record !== undefined) placeFile(recordFile, record.note, 'the sealer\u2019s record');
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      if ((e as { code?: unknown }).code === '42501') {
        throw new WitnessError(
          'forbidden',
          `The user in --to may not create schema "${target.schema}" or its tables at ${target.location} (${(e as Error).message}); run \`witness migrate\` as a user with CREATE on the database, who then owns the ledger.`,
          { cause: e },
        );
      }
      throw translatePgError(e, target.location);
    } finally {
      await client.end().catch(() => undefined);
    }

    // 4. Both sides again: the target verifies as `witness verify` would, and nothing changed.
    const copied = await openLedger(to.url, { create: false, readonly: false, keyFile: key.file, ...(options.sealRecord === undefined ? {} : { sealRecord: options.sealRecord }), env });
    try {
      const targetReport = await verifyLedger(copied);
      const latest = await compareLedgers(source, copied, targetReport);
      return {
        from: source.info.location,
        to: copied.info.location,
        ledgerId: copied.info.id,
        origin: copied.info.origin,
        size: copied.info.size,
        streams: counts.streams,
        checkpoints: (await copied.checkpoints()).length,
        treeNodes: counts.treeNodes,
        artifacts: counts.artifacts,
        publicKeys: keys.length,
        checkpoint: latest === undefined ? null : { size: latest.size, root: latest.root.toString('hex') },
        signingKey: signer === undefined ? '' : keyFromEnv ? 'WITNESS_SIGNING_KEY' : key.file,
        sealRecord: record === undefined ? null : copied.sealRecordLocation,
        source: sourceReport,
        target: targetReport,
      };
    } finally {
      await copied.close();
    }
  } finally {
    await source.close();
  }
}

/**
 * Events in position order (their rows exactly as the source stores them), then the stream heads
 * and ledger head they leave, the tree nodes and frontiers the checkpoints cover, the checkpoints,
 * and every artifact the source holds.
 */
async function copyRows(client: ClientBase, source: Ledger): Promise<{ streams: number; treeNodes: number; artifacts: number }> {
  const checkpoints = await source.checkpoints();
  const sealed = checkpoints.reduce((m, c) => Math.max(m, c.size), 0);
  const frontiers = new Map<number, string>();
  const frontier = Frontier.empty();
  const snapshot = () => {
    if (!frontiers.has(frontier.size)) frontiers.set(frontier.size, JSON.stringify(frontier.toJSON()));
  };
  snapshot();
  const heads = new Map<string, { seq: number; hash: Buffer; ended: boolean }>();
  const mimes = new Map<string, string>();
  let treeNodes = 0;
  let size = 0;
  for await (const page of source.scan(0, PAGE)) {
    const cols: unknown[][] = Array.from({ length: 14 }, () => []);
    const nodes: Array<{ level: number; index: number; hash: Buffer }> = [];
    for (const row of page) {
      const r = [row.pos, row.id, row.stream, row.seq, row.ts, row.kind, row.agent, row.resource, row.action, row.outcome, row.header, row.data, row.salt, row.hash];
      for (let i = 0; i < 14; i++) cols[i]!.push(r[i]);
      heads.set(row.stream, { seq: row.seq, hash: row.hash, ended: row.kind === 'session.end' });
      for (const a of artifactRefs(row)) if (!mimes.has(a.sha256)) mimes.set(a.sha256, a.mime);
      if (row.pos < sealed) {
        for (const n of frontier.push(leafHash(row.hash))) nodes.push(n);
        snapshot();
      }
      size = row.pos + 1;
    }
    await client.query(
      `INSERT INTO events (pos, id, stream, seq, ts, kind, agent, resource, action, outcome, header, data, salt, hash)
       SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bytea[], $14::bytea[])`,
      cols,
    );
    if (nodes.length > 0) {
      await client.query('INSERT INTO tree_nodes (level, idx, hash) SELECT * FROM unnest($1::int[], $2::bigint[], $3::bytea[])', [
        nodes.map((n) => n.level),
        nodes.map((n) => n.index),
        nodes.map((n) => n.hash),
      ]);
      treeNodes += nodes.length;
    }
  }
  if (heads.size > 0) {
    const hs = [...heads];
    await client.query('INSERT INTO stream_heads (stream, seq, hash, ended) SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::boolean[])', [
      hs.map(([s]) => s),
      hs.map(([, h]) => h.seq),
      hs.map(([, h]) => h.hash),
      hs.map(([, h]) => h.ended),
    ]);
  }
  await client.query('UPDATE ledger_head SET next_pos = $1 WHERE id = 1', [size]);
  for (const c of checkpoints) {
    const f = frontiers.get(c.size);
    if (f === undefined) throw new WitnessError('store_corrupt', `Checkpoint ${c.id} of the source has size ${c.size}, beyond its ${size} events; not migrating.`);
    await client.query('INSERT INTO checkpoints (id, size, root, note, ts, frontier, consistency, prev_size) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)', [
      c.id,
      c.size,
      c.root,
      c.note,
      c.ts,
      f,
      JSON.stringify(c.consistency),
      c.prevSize,
    ]);
  }
  const artifacts = await copyArtifacts(client, source, mimes);
  return { streams: heads.size, treeNodes, artifacts };
}

/**
 * Every artifact the source holds, whether or not an event names it (a screenshot stored before
 * the event that cites it was written is still the operator's), streamed a chunk at a time in
 * the PostgreSQL driver's own layout (postgres/schema.ts artifactChunks) and re-hashed on the way:
 * bytes that no longer match their digest are not moved under it.
 */
async function copyArtifacts(client: ClientBase, source: Ledger, mimes: ReadonlyMap<string, string>): Promise<number> {
  const { ARTIFACT_CHUNK_BYTES } = await import('./postgres/schema.js');
  const { v7: uuidv7 } = await import('uuid');
  let copied = 0;
  for await (const info of source.listArtifacts()) {
    const stream = await source.readArtifactStream(info.sha256);
    if (stream === undefined) continue; // gone since it was listed: nothing to copy
    const mime = info.mime ?? mimes.get(info.sha256) ?? 'application/octet-stream';
    const { chunks, digest, total } = chunked(stream, ARTIFACT_CHUNK_BYTES);
    const upload = uuidv7();
    let held: Buffer | undefined;
    let n = 0;
    for await (const c of chunks) {
      // The first chunk waits: an artifact of one chunk or less keeps the single-row form.
      if (n === 0 && held === undefined) {
        held = c;
        continue;
      }
      if (held !== undefined) {
        await client.query('INSERT INTO artifact_chunks (upload, n, bytes) VALUES ($1, $2, $3)', [upload, n++, held]);
        held = undefined;
      }
      await client.query('INSERT INTO artifact_chunks (upload, n, bytes) VALUES ($1, $2, $3)', [upload, n++, c]);
    }
    if (digest() !== info.sha256) {
      throw new WitnessError(
        'verification_failed',
        `Not migrating: the source's artifact ${info.sha256} no longer matches its digest, so it is not copied under it; run \`witness verify\` on the source, and restore that artifact from a backup.`,
      );
    }
    const at = new Date().toISOString();
    if (n === 0) {
      await client.query('INSERT INTO artifacts (sha256, mime, size, bytes, created_at) VALUES ($1, $2, $3, $4, $5)', [info.sha256, mime, total(), held ?? Buffer.alloc(0), at]);
    } else {
      await client.query('INSERT INTO artifacts (sha256, mime, size, bytes, upload, chunk_size, created_at) VALUES ($1, $2, $3, NULL, $4, $5, $6)', [
        info.sha256,
        mime,
        total(),
        upload,
        ARTIFACT_CHUNK_BYTES,
        at,
      ]);
    }
    copied++;
  }
  return copied;
}

function artifactRefs(row: RawEventRow): Array<{ sha256: string; mime: string }> {
  if (!row.header.includes('"artifacts"')) return [];
  const h = JSON.parse(row.header) as { artifacts?: Array<{ sha256?: unknown; mime?: unknown }> };
  return (h.artifacts ?? []).filter((a): a is { sha256: string; mime: string } => typeof a.sha256 === 'string' && typeof a.mime === 'string');
}

/** Proves the copy changed nothing: same size, same checkpoints and proofs, same rows, same record. */
async function compareLedgers(a: Ledger, b: Ledger, targetReport: VerifyReport) {
  const differ = (what: string) =>
    new WitnessError(
      'store_corrupt',
      `The migrated ledger at ${b.info.location} differs from its source (${what}); drop that schema and run \`witness migrate\` again, or report this with both ledgers.`,
    );
  if (!targetReport.ok) {
    const f = targetReport.first;
    throw differ(`it fails verification${f?.leaf !== undefined ? ` at leaf ${f.leaf}` : ''}: ${f?.code ?? 'unverifiable'}`);
  }
  if (a.info.size !== b.info.size || a.info.origin !== b.info.origin) throw differ(`size ${a.info.size} became ${b.info.size}`);
  const ca = await a.checkpoints();
  const cb = await b.checkpoints();
  if (ca.length !== cb.length) throw differ(`${ca.length} checkpoints became ${cb.length}`);
  for (let i = 0; i < ca.length; i++) {
    const x = ca[i]!;
    const y = cb[i]!;
    if (x.id !== y.id || x.size !== y.size || !x.root.equals(y.root) || x.note !== y.note) throw differ(`checkpoint ${x.id}`);
    // Reads the stored tree nodes of each side.
    if (x.prevSize !== null && x.prevSize > 0) {
      const pa = await a.consistencyProof(x.prevSize, x.size);
      const pb = await b.consistencyProof(x.prevSize, x.size);
      if (pa.length !== pb.length || pa.some((h, j) => !h.equals(pb[j]!))) throw differ(`the consistency proof of checkpoint ${x.id}`);
    }
  }
  const ia = a.scan(0, PAGE)[Symbol.asyncIterator]();
  const ib = b.scan(0, PAGE)[Symbol.asyncIterator]();
  let rowsA: RawEventRow[] = [];
  let rowsB: RawEventRow[] = [];
  for (;;) {
    if (rowsA.length === 0) rowsA = (await ia.next()).value ?? [];
    if (rowsB.length === 0) rowsB = (await ib.next()).value ?? [];
    if (rowsA.length === 0 && rowsB.length === 0) break;
    const n = Math.min(rowsA.length, rowsB.length);
    if (n === 0) throw differ('the number of events');
    for (let i = 0; i < n; i++) {
      const x = rowsA[i]!;
      const y = rowsB[i]!;
      const same =
        x.pos === y.pos &&
        x.id === y.id &&
        x.stream === y.stream &&
        x.seq === y.seq &&
        x.header === y.header &&
        x.data === y.data &&
        x.hash.equals(y.hash) &&
        (x.salt === null ? y.salt === null : y.salt !== null && x.salt.equals(y.salt));
      if (!same) throw differ(`the event at position ${x.pos}`);
    }
    rowsA = rowsA.slice(n);
    rowsB = rowsB.slice(n);
  }
  const ra = await a.sealRecord();
  const rb = await b.sealRecord();
  if (ra?.note !== rb?.note) throw differ("the sealer's record");
  return cb[cb.length - 1];
}

/** The source's signing key and its text, found where the source's driver finds it. */
function sourceSigner(loc: ReturnType<typeof parseStoreUrl>, id: string, env: NodeJS.ProcessEnv): { signer: NoteSigner; text: string } | undefined {
  const file = keyLocationOf(loc, id, env);
  const signer = loadSigner(file, env);
  if (signer === undefined) return undefined;
  const fromEnv = (env[SIGNING_KEY_ENV] ?? '').trim();
  return { signer, text: fromEnv !== '' ? fromEnv : fs.readFileSync(file, 'utf8').trim() };
}

function keyLocationOf(loc: ReturnType<typeof parseStoreUrl>, id: string, env: NodeJS.ProcessEnv): string {
  return loc.driver === 'sqlite' ? sidecarPaths(loc.path).key : postgresKeyFile(id, undefined, env).file;
}

/** The key (and its public half beside it) where the PostgreSQL driver looks; an identical key already there is fine, another is refused. */
function placeKey(file: string, { signer, text }: { signer: NoteSigner; text: string }, makeDir: boolean): void {
  if (makeDir) fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const existing = loadSigner(file, {});
  if (existing !== undefined) {
    if (existing.verifierKey !== signer.verifierKey) {
      throw new WitnessError('conflict', `Not migrating: ${file} already holds another signing key, which Witness never overwrites; move it aside or choose another key file.`);
    }
    return;
  }
  placeFile(file, `${text}\n`, 'the signing key', 0o600);
  placeFile(`${file.replace(/\.key$/, '')}.pub`, `${signer.verifierKey}\n`, 'the public key', 0o644);
}

/** Writes a new file exclusively (never through a link); the same content already there is fine. */
function placeFile(file: string, text: string, what: string, mode = 0o600): void {
  refuseKeySymlink(file);
  try {
    fs.writeFileSync(file, text, { flag: 'wx', mode });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST' && fs.readFileSync(file, 'utf8') === text) return;
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new WitnessError('conflict', `Not migrating: ${file}, where ${what} of the PostgreSQL ledger goes, already exists with other content; move it aside and run again.`, { cause: e });
    }
    throw new WitnessError('store_unavailable', `Cannot write ${what} to ${file} (${(e as Error).message}); check that directory's permissions.`, { cause: e });
  }
}
