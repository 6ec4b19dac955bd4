import fs from 'node:fs';
import pg from 'pg';
import { parsePostgresUrl, type Ledger } from '../../src/store/index.js';
import { headerColumns } from '../helpers/header-columns.js';
import type { EventImage, LedgerEdit } from './contract/driver.js';
import { PG_URL } from './postgres-driver.js';

/**
 * The PostgreSQL driver's edit hook for the contract suite: connects as the database owner, as
 * anyone with that access could, and (unless asked not to) disables the ledger's triggers with
 * ALTER TABLE … DISABLE TRIGGER USER, makes the edit and enables each trigger again as it was
 * (ENABLE ALWAYS), in one transaction. With `bypass: false` the same SQL runs with the triggers in
 * place, and they must refuse it. Only the columns integrity rests on are named; the query columns
 * are filled from the header, as a careful forger would.
 */
export async function postgresEdit(l: Ledger, op: LedgerEdit, options: { bypass?: boolean } = {}): Promise<void> {
  if (op.kind === 'forgetSealRecord') {
    fs.rmSync(l.sealRecordLocation);
    return;
  }
  const bypass = options.bypass ?? true;
  const { schema } = parsePostgresUrl(l.info.location);
  const c = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` });
  await c.connect();
  try {
    await c.query('BEGIN');
    const triggers = (
      await c.query<{ table: string; name: string }>(
        `SELECT c.relname AS table, t.tgname AS name FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND NOT t.tgisinternal`,
        [schema],
      )
    ).rows;
    // Every table with a trigger of the ledger's (src/store/postgres/schema.ts), whichever schema version it is.
    if (bypass) for (const t of new Set(triggers.map((x) => x.table))) await c.query(`ALTER TABLE ${t} DISABLE TRIGGER USER`);
    await applyEdit(c, op);
    if (bypass) for (const t of triggers) await c.query(`ALTER TABLE ${t.table} ENABLE ALWAYS TRIGGER ${t.name}`);
    await c.query('COMMIT');
  } catch (e) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    await c.end();
  }
}

async function applyEdit(c: pg.Client, op: Exclude<LedgerEdit, { kind: 'forgetSealRecord' }>): Promise<void> {
  switch (op.kind) {
    case 'rewriteData':
      return void (await c.query('UPDATE events SET data = $1 WHERE pos = $2', [op.data, op.pos]));
    case 'rewriteSalt':
      return void (await c.query('UPDATE events SET salt = $1 WHERE pos = $2', [op.salt, op.pos]));
    case 'rewriteHash':
      return void (await c.query('UPDATE events SET hash = $1 WHERE pos = $2', [op.hash, op.pos]));
    case 'rewriteHeader': {
      const cols: Record<string, unknown> = { ...derivedColumns(op.header), header: op.header, ...(op.hash === undefined ? {} : { hash: op.hash }) };
      const names = Object.keys(cols);
      await c.query(`UPDATE events SET ${names.map((n, i) => `${n} = $${i + 1}`).join(', ')} WHERE pos = $${names.length + 1}`, [...Object.values(cols), op.pos]);
      return;
    }
    case 'replaceEvent':
      await c.query('DELETE FROM events WHERE pos = $1', [op.row.pos]);
      return insertRow(c, op.row);
    case 'deleteEvent':
      return void (await c.query('DELETE FROM events WHERE pos = $1', [op.pos]));
    case 'insertEvent': {
      if ((await c.query('SELECT 1 FROM events WHERE pos = $1', [op.row.pos])).rowCount! > 0) {
        // Two steps, so the primary key never collides while the later events move up by one.
        await c.query('UPDATE events SET pos = -pos - 1 WHERE pos >= $1', [op.row.pos]);
        await c.query('UPDATE events SET pos = -pos WHERE pos < 0');
      }
      return insertRow(c, op.row);
    }
    case 'swapEvents':
      await c.query('UPDATE events SET pos = -1 WHERE pos = $1', [op.a]);
      await c.query('UPDATE events SET pos = $1 WHERE pos = $2', [op.a, op.b]);
      return void (await c.query('UPDATE events SET pos = $1 WHERE pos = -1', [op.b]));
    case 'truncateTail':
      return void (await c.query('DELETE FROM events WHERE pos >= $1', [op.from]));
    case 'rewriteCheckpoint':
      if (op.note !== undefined) await c.query('UPDATE checkpoints SET note = $1 WHERE id = $2', [op.note, op.id]);
      if (op.consistency !== undefined) await c.query('UPDATE checkpoints SET consistency = $1 WHERE id = $2', [JSON.stringify(op.consistency), op.id]);
      return;
    case 'deleteCheckpoints':
      return void (await c.query('DELETE FROM checkpoints WHERE id >= $1', [op.from]));
    case 'dropTreeNodes':
      return void (await c.query('DELETE FROM tree_nodes'));
    case 'rewritePublicKey':
      return void (await c.query('UPDATE public_keys SET vkey = $1 WHERE n = (SELECT min(n) FROM public_keys)', [op.vkey]));
    case 'guardedPurge':
      // The flag only witness_purge() sets (src/store/postgres/schema.ts purgeGuard), set by hand as the schema's owner could.
      await c.query(`SELECT set_config('witness.purge', 'on', true)`);
      if (op.header === undefined) return void (await c.query('UPDATE events SET data = NULL, salt = NULL WHERE pos = $1', [op.pos]));
      return void (await c.query('UPDATE events SET data = NULL, salt = NULL, header = $1 WHERE pos = $2', [op.header, op.pos]));
    case 'rewriteArtifact':
    case 'deleteArtifact': {
      const found = (await c.query<{ upload: string | null; chunk_size: number | null }>('SELECT upload, chunk_size FROM artifacts WHERE sha256 = $1', [op.sha256])).rows[0];
      if (found === undefined) throw new Error(`The PostgreSQL edit hook found no artifact ${op.sha256}; the driver's artifact table changed.`);
      if (op.kind === 'deleteArtifact') {
        await c.query('DELETE FROM artifacts WHERE sha256 = $1', [op.sha256]);
        if (found.upload !== null) await c.query('DELETE FROM artifact_chunks WHERE upload = $1', [found.upload]);
        return;
      }
      if (found.upload === null) return void (await c.query('UPDATE artifacts SET bytes = $1 WHERE sha256 = $2', [op.bytes, op.sha256]));
      // Chunked: only the chunks whose bytes differ are rewritten, as a forger changing one frame would.
      return rewriteChunks(c, found.upload, found.chunk_size!, op.bytes);
    }
  }
}

async function rewriteChunks(c: pg.Client, upload: string, size: number, bytes: Buffer): Promise<void> {
  const stored = new Map((await c.query<{ n: number; bytes: Buffer }>('SELECT n, bytes FROM artifact_chunks WHERE upload = $1', [upload])).rows.map((r) => [Number(r.n), r.bytes]));
  const count = Math.ceil(bytes.length / size);
  for (let n = 0; n < count; n++) {
    const part = bytes.subarray(n * size, (n + 1) * size);
    const old = stored.get(n);
    if (old === undefined) await c.query('INSERT INTO artifact_chunks (upload, n, bytes) VALUES ($1, $2, $3)', [upload, n, part]);
    else if (!old.equals(part)) await c.query('UPDATE artifact_chunks SET bytes = $1 WHERE upload = $2 AND n = $3', [part, upload, n]);
  }
  await c.query('DELETE FROM artifact_chunks WHERE upload = $1 AND n >= $2', [upload, count]);
}

async function insertRow(c: pg.Client, row: EventImage): Promise<void> {
  const cols: Record<string, unknown> = {
    ts: '',
    kind: '',
    agent: '',
    ...derivedColumns(row.header),
    pos: row.pos,
    id: row.id,
    stream: row.stream,
    seq: row.seq,
    header: row.header,
    data: row.data,
    salt: row.salt,
    hash: row.hash,
  };
  const names = Object.keys(cols);
  await c.query(`INSERT INTO events (${names.join(', ')}) VALUES (${names.map((_, i) => `$${i + 1}`).join(', ')})`, Object.values(cols));
}

/** The per-event query columns, filled from the header as the driver would; the identity columns (id, stream, seq) are left as they are. */
function derivedColumns(header: string): Record<string, unknown> {
  const { id: _id, stream: _stream, seq: _seq, ...query } = headerColumns(header);
  return query;
}
