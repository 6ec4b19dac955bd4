import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { sidecarPaths, type Ledger } from '../../src/store/index.js';
import { genesisHash } from '../../src/core/index.js';
import { headerColumns } from '../helpers/header-columns.js';
import type { EventImage, LedgerEdit } from './contract/driver.js';
import { forge } from './contract/fixtures.js';

/**
 * The SQLite driver's edit hook for the contract suite: opens the ledger's file with better-sqlite3
 * directly, as anyone with write access to it could, and (unless asked not to) drops every trigger,
 * makes the edit and puts the triggers back, in one transaction. It names only the columns and
 * tables that integrity rests on (events: pos, id, stream, seq, header, data, salt, hash;
 * checkpoints, tree_nodes, public_keys), never an index or a table the driver may reshape: other
 * per-event columns are filled from the header when the table has them.
 */
export async function sqliteEdit(l: Ledger, op: LedgerEdit, options: { bypass?: boolean } = {}): Promise<void> {
  const file = l.info.location;
  if (op.kind === 'rewriteArtifact' || op.kind === 'deleteArtifact') {
    editArtifactFile(file, op);
    return;
  }
  if (op.kind === 'forgetSealRecord') {
    fs.rmSync(l.sealRecordLocation);
    return;
  }
  const bypass = options.bypass ?? true;
  const db = new Database(file, { timeout: 10_000 });
  try {
    db.transaction(() => {
      const triggers = db.prepare(`SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND sql IS NOT NULL`).all() as Array<{ name: string; sql: string }>;
      if (bypass) for (const t of triggers) db.exec(`DROP TRIGGER "${t.name.replaceAll('"', '""')}"`);
      applyEdit(db, op, l.info.origin);
      if (bypass) for (const t of triggers) db.exec(t.sql);
    }).immediate();
  } finally {
    db.close();
  }
}

function applyEdit(db: Database.Database, op: Exclude<LedgerEdit, { kind: 'rewriteArtifact' | 'deleteArtifact' | 'forgetSealRecord' }>, origin: string): void {
  switch (op.kind) {
    case 'rewriteData':
      return void db.prepare('UPDATE events SET data = ? WHERE pos = ?').run(op.data, op.pos);
    case 'rewriteSalt':
      return void db.prepare('UPDATE events SET salt = ? WHERE pos = ?').run(op.salt, op.pos);
    case 'rewriteHash':
      return void db.prepare('UPDATE events SET hash = ? WHERE pos = ?').run(op.hash, op.pos);
    case 'rewriteHeader': {
      const cols = { ...derivedColumns(db, op.header), header: op.header, ...(op.hash === undefined ? {} : { hash: op.hash }) };
      const sets = Object.keys(cols).map((c) => `"${c}" = @${c}`);
      return void db.prepare(`UPDATE events SET ${sets.join(', ')} WHERE pos = @pos`).run({ ...cols, pos: op.pos });
    }
    case 'replaceEvent':
      return insertRow(db, op.row, 'INSERT OR REPLACE');
    case 'deleteEvent':
      return void db.prepare('DELETE FROM events WHERE pos = ?').run(op.pos);
    case 'insertEvent': {
      if (db.prepare('SELECT 1 FROM events WHERE pos = ?').get(op.row.pos) !== undefined) {
        // Two steps, so the primary key never collides while the later events move up by one.
        db.prepare('UPDATE events SET pos = -pos - 1 WHERE pos >= ?').run(op.row.pos);
        db.prepare('UPDATE events SET pos = -pos WHERE pos < 0').run();
      }
      return insertRow(db, op.row, 'INSERT');
    }
    case 'swapEvents':
      db.prepare('UPDATE events SET pos = -1 WHERE pos = ?').run(op.a);
      db.prepare('UPDATE events SET pos = ? WHERE pos = ?').run(op.a, op.b);
      return void db.prepare('UPDATE events SET pos = ? WHERE pos = -1').run(op.b);
    case 'truncateTail':
      return void db.prepare('DELETE FROM events WHERE pos >= ?').run(op.from);
    case 'rewriteCheckpoint': {
      if (op.note !== undefined) db.prepare('UPDATE checkpoints SET note = ? WHERE id = ?').run(op.note, op.id);
      if (op.consistency !== undefined) db.prepare('UPDATE checkpoints SET consistency = ? WHERE id = ?').run(JSON.stringify(op.consistency), op.id);
      return;
    }
    case 'deleteCheckpoints':
      return void db.prepare('DELETE FROM checkpoints WHERE id >= ?').run(op.from);
    case 'dropTreeNodes':
      return void db.prepare('DELETE FROM tree_nodes').run();
    case 'rewritePublicKey':
      return void db.prepare('UPDATE public_keys SET vkey = ? WHERE rowid = (SELECT min(rowid) FROM public_keys)').run(op.vkey);
    case 'guardedPurge': {
      // The guard's door (src/store/sqlite/schema.ts EVENTS_NO_UPDATE): a retention.purge record
      // inserted on this connection just before, here one that lists no leaf, correctly chained.
      const stream = 'witness.forged-purge';
      const pos = (db.prepare('SELECT coalesce(max(pos) + 1, 0) FROM events').pluck().get() as number) ?? 0;
      insertRow(db, forge(stream, 0, genesisHash(origin, stream), pos, 'retention.purge', { policy: 'forged', before: '2026-01-01T00:00:00.000Z', count: 0, leaves: [] }), 'INSERT');
      if (op.header === undefined) return void db.prepare('UPDATE events SET data = NULL, salt = NULL WHERE pos = ?').run(op.pos);
      return void db.prepare('UPDATE events SET data = NULL, salt = NULL, header = ? WHERE pos = ?').run(op.header, op.pos);
    }
  }
}

function insertRow(db: Database.Database, row: EventImage, verb: 'INSERT' | 'INSERT OR REPLACE'): void {
  const cols: Record<string, unknown> = {
    ...derivedColumns(db, row.header),
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
  db.prepare(`${verb} INTO events (${names.map((n) => `"${n}"`).join(', ')}) VALUES (${names.map((n) => `@${n}`).join(', ')})`).run(cols);
}

/** The per-event columns this version of the table has, filled from the header as the driver would. */
function derivedColumns(db: Database.Database, header: string): Record<string, unknown> {
  const present = new Set(db.prepare('SELECT name FROM pragma_table_info(?)').pluck().all('events') as string[]);
  return Object.fromEntries(Object.entries(headerColumns(header)).filter(([k]) => present.has(k)));
}

function editArtifactFile(file: string, op: Extract<LedgerEdit, { kind: 'rewriteArtifact' | 'deleteArtifact' }>): void {
  const p = path.join(sidecarPaths(file).artifacts, op.sha256.slice(0, 2), op.sha256);
  if (!fs.existsSync(p)) throw new Error(`The SQLite edit hook found no artifact file at ${p}; the driver's artifact layout changed.`);
  if (op.kind === 'deleteArtifact') fs.rmSync(p);
  else fs.writeFileSync(p, op.bytes);
}
