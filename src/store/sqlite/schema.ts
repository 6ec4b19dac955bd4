import type Database from 'better-sqlite3';
import { v7 as uuidv7 } from 'uuid';
import { WitnessError, type NoteSigner } from '../../core/index.js';

/**
 * The SQLite schema, version 1. Events, checkpoints, tree nodes and public keys are append-only:
 * triggers abort UPDATE and DELETE, so even a process holding the file cannot quietly rewrite
 * history through SQL (editing the bytes on disk is what `witness verify` is for).
 */
export const SCHEMA_VERSION = 1;

export const DDL = `
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS events (
  pos      INTEGER PRIMARY KEY,   -- global position = Merkle leaf index, gapless, commit order
  id       TEXT NOT NULL,
  stream   TEXT NOT NULL,
  seq      INTEGER NOT NULL,
  ts       TEXT NOT NULL,
  kind     TEXT NOT NULL,
  agent    TEXT NOT NULL,
  resource TEXT,
  action   TEXT,
  outcome  TEXT,
  header   TEXT NOT NULL,         -- JCS of the header: the exact bytes that were hashed
  data     TEXT,                  -- JCS of the payload; NULL once purged under retention
  salt     BLOB,                  -- payload salt; purged with the payload
  hash     BLOB NOT NULL
) STRICT;

CREATE UNIQUE INDEX IF NOT EXISTS events_id ON events (id);
CREATE UNIQUE INDEX IF NOT EXISTS events_stream_seq ON events (stream, seq);
CREATE INDEX IF NOT EXISTS events_agent_ts ON events (agent, ts);
CREATE INDEX IF NOT EXISTS events_kind_ts ON events (kind, ts);
CREATE INDEX IF NOT EXISTS events_resource_ts ON events (resource, ts) WHERE resource IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_action_ts ON events (action, ts) WHERE action IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_outcome_ts ON events (outcome, ts) WHERE outcome IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);

CREATE TABLE IF NOT EXISTS tree_nodes (
  level INTEGER NOT NULL,
  idx   INTEGER NOT NULL,
  hash  BLOB NOT NULL,
  PRIMARY KEY (level, idx)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS checkpoints (
  id          INTEGER PRIMARY KEY,
  size        INTEGER NOT NULL,
  root        BLOB NOT NULL,
  note        TEXT NOT NULL,
  ts          TEXT NOT NULL,
  frontier    TEXT NOT NULL,       -- right edge of the tree, so the sealer resumes without a rebuild
  consistency TEXT NOT NULL,       -- JSON array of hex hashes: proof from the previous checkpoint
  prev_size   INTEGER
) STRICT;

CREATE TABLE IF NOT EXISTS public_keys (
  vkey     TEXT PRIMARY KEY,
  name     TEXT NOT NULL,
  added_at TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS artifacts (
  sha256     TEXT PRIMARY KEY,
  mime       TEXT NOT NULL,
  bytes      INTEGER NOT NULL,
  created_at TEXT NOT NULL
) STRICT;
`;

const APPEND_ONLY = ['events', 'tree_nodes', 'checkpoints', 'public_keys', 'artifacts'];

/**
 * INSERT OR REPLACE deletes the conflicting row without firing DELETE triggers (recursive_triggers
 * is off by default in every connection), so each unique key also refuses a second insert.
 */
const UNIQUE_KEYS: Record<string, string[]> = {
  events: ['pos = NEW.pos', 'id = NEW.id', '(stream = NEW.stream AND seq = NEW.seq)'],
  tree_nodes: ['(level = NEW.level AND idx = NEW.idx)'],
  checkpoints: ['id = NEW.id'],
  public_keys: ['vkey = NEW.vkey'],
  artifacts: ['sha256 = NEW.sha256'],
};

export const TRIGGERS = APPEND_ONLY.flatMap((t) => [
  `CREATE TRIGGER IF NOT EXISTS ${t}_no_replace BEFORE INSERT ON ${t}
   WHEN EXISTS (SELECT 1 FROM ${t} WHERE ${UNIQUE_KEYS[t]!.join(' OR ')})
   BEGIN SELECT RAISE(ABORT, 'witness: ${t} are append-only; an existing row cannot be replaced'); END;`,
  `CREATE TRIGGER IF NOT EXISTS ${t}_no_update BEFORE UPDATE ON ${t}
   BEGIN SELECT RAISE(ABORT, 'witness: ${t} are append-only; UPDATE is refused'); END;`,
  `CREATE TRIGGER IF NOT EXISTS ${t}_no_delete BEFORE DELETE ON ${t}
   BEGIN SELECT RAISE(ABORT, 'witness: ${t} are append-only; DELETE is refused'); END;`,
]).join('\n');

// ------------------------------------------------------------------ opening the schema

export function openOrCreateSchema(db: Database.Database, file: string, options: { readonly?: boolean; name?: string }, create: boolean): { id: string; origin: string; version: number; created: boolean } {
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

export function publicKeyCount(db: Database.Database): number {
  return db.prepare('SELECT count(*) FROM public_keys').pluck().get() as number;
}

/** The ledger's own key: the first one recorded (in insertion order), or none yet. */
function firstKey(db: Database.Database): string | undefined {
  return db.prepare('SELECT vkey FROM public_keys ORDER BY rowid LIMIT 1').pluck().get() as string | undefined;
}

/** Records the signer's key when the ledger has none yet; returns the ledger's own key. */
export function ensurePublicKey(db: Database.Database, signer: NoteSigner): string | undefined {
  // Opening must not need the write lock when the key is already known (readers stay unblocked);
  // the guarded insert keeps two processes opening a new ledger together from both inserting one.
  const first = firstKey(db);
  if (first !== undefined) return first;
  db
    .prepare('INSERT INTO public_keys (vkey, name, added_at) SELECT @vkey, @name, @at WHERE NOT EXISTS (SELECT 1 FROM public_keys)')
    .run({ vkey: signer.verifierKey, name: signer.name, at: new Date().toISOString() });
  return firstKey(db);
}
