import type Database from 'better-sqlite3';
import { v7 as uuidv7 } from 'uuid';
import { WitnessError, type NoteSigner } from '../../core/index.js';
import { ensureSessionIndex } from './sessions.js';

/**
 * The SQLite schema, version 2. Events, checkpoints, tree nodes, public keys and the query index
 * are append-only: triggers abort UPDATE and DELETE, so even a process holding the file cannot
 * quietly rewrite history through SQL (editing the bytes on disk is what `witness verify` is for).
 *
 * Version 2 keeps the write path lean: `events` carries only the indexes integrity and the
 * recorder need (pos, id, stream + seq), and every filter of `query` (agent, kind, resource,
 * action, outcome, time window) is served from `event_index`, a copy of those columns filled after
 * commit by `indexTail` (indexer.ts), united with the few rows it has not reached yet (query.ts).
 * Measured on a one-event commit: v1's 8 secondary indexes and 3-probe INSERT trigger wrote ~11
 * WAL pages; v2 writes ~4.
 */
export const SCHEMA_VERSION = 2;

const EVENTS_TABLE = `
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
`;

/**
 * The query index: the filter columns of every event below max(pos) + 1, in position order (that
 * maximum is how far the indexer got, so there is no state row to update). pos is the rowid, so
 * each index below ends in pos and serves ORDER BY ts, pos without a sort.
 */
const INDEX_TABLE = `
CREATE TABLE IF NOT EXISTS event_index (
  pos      INTEGER PRIMARY KEY,   -- = events.pos
  ts       TEXT NOT NULL,
  agent    TEXT NOT NULL,
  kind     TEXT NOT NULL,
  resource TEXT,
  action   TEXT,
  outcome  TEXT
) STRICT;
`;

export const INDEX_INDEXES = `
CREATE INDEX IF NOT EXISTS event_index_agent_ts ON event_index (agent, ts);
CREATE INDEX IF NOT EXISTS event_index_kind_ts ON event_index (kind, ts);
CREATE INDEX IF NOT EXISTS event_index_resource_ts ON event_index (resource, ts) WHERE resource IS NOT NULL;
CREATE INDEX IF NOT EXISTS event_index_action_ts ON event_index (action, ts) WHERE action IS NOT NULL;
CREATE INDEX IF NOT EXISTS event_index_outcome_ts ON event_index (outcome, ts) WHERE outcome IS NOT NULL;
CREATE INDEX IF NOT EXISTS event_index_ts ON event_index (ts);
`;

const OTHER_TABLES = `
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

/**
 * Consume-once for approvals, as PostgreSQL's events_grant_once: a grant (an approval.decision) is
 * used by at most one policy.decision naming it in data.approval.decision_id, whichever process
 * writing this file records it; the second is refused by SQLite itself (append.ts turns that into
 * a `conflict`). `data` is the JCS text, so json_extract reads it; the instr() keeps every other
 * row, and the policy.decisions that name no grant, out of the index without parsing their JSON.
 * The index is maintained by any connection to the file, an older Witness's too, so adding it
 * needs no new schema version (which would make older releases refuse to read the file).
 * `fromPos` leaves out the history of a ledger that already held two releases of one grant when
 * the index came (that record stays as it was written); the rule holds from there on.
 */
export const GRANT_ONCE = 'events_grant_once';

export function grantOnceIndex(fromPos = 0): string {
  const floor = fromPos > 0 ? ` AND pos >= ${Math.trunc(fromPos)}` : '';
  return `CREATE UNIQUE INDEX IF NOT EXISTS ${GRANT_ONCE} ON events (json_extract(data, '$.approval.decision_id')) WHERE kind = 'policy.decision' AND instr(data, '"decision_id"') > 0${floor};`;
}

export const DDL = EVENTS_TABLE + grantOnceIndex() + INDEX_TABLE + INDEX_INDEXES + OTHER_TABLES;

/** The indexes version 1 kept on `events` and version 2 serves from `event_index` instead. */
export const V1_MOVED_INDEXES = ['events_agent_ts', 'events_kind_ts', 'events_resource_ts', 'events_action_ts', 'events_outcome_ts', 'events_ts'];

const APPEND_ONLY = ['events', 'event_index', 'tree_nodes', 'checkpoints', 'public_keys', 'artifacts'];

/**
 * INSERT OR REPLACE deletes the conflicting row without firing DELETE triggers (recursive_triggers
 * is off by default in every connection), so each table also refuses an insert that would replace
 * a row. For the tables on the write path that check is one probe of the rowid b-tree's last entry
 * instead of one per unique key: an event must land at exactly max(pos) + 1 (an index row strictly
 * after the last). An OR REPLACE of an existing event under a new position still passes here, but it
 * deletes the old row and so leaves a hole in the positions, which `witness verify` reports as
 * `position_gap` (test/store/schema-migration.test.ts proves both).
 */
const NO_REPLACE: Record<string, string> = {
  events: `NEW.pos IS NOT (SELECT coalesce(max(pos) + 1, 0) FROM events)`,
  // Contiguous, not merely increasing: one legal INSERT of a later event's row would otherwise
  // move the indexer past an event that no query filter would then ever find (found by review).
  event_index: `NEW.pos IS NOT (SELECT coalesce(max(pos) + 1, 0) FROM event_index)`,
  tree_nodes: `EXISTS (SELECT 1 FROM tree_nodes WHERE level = NEW.level AND idx = NEW.idx)`,
  checkpoints: `EXISTS (SELECT 1 FROM checkpoints WHERE id = NEW.id)`,
  public_keys: `EXISTS (SELECT 1 FROM public_keys WHERE vkey = NEW.vkey)`,
  artifacts: `EXISTS (SELECT 1 FROM artifacts WHERE sha256 = NEW.sha256)`,
};

/**
 * The one UPDATE of `events` SQLite admits: `data` and `salt` set to NULL with every other column
 * unchanged, at a position below the last row this connection inserted, which must be a
 * retention.purge event (SQLite's last_insert_rowid() is per connection, and an event's rowid is its
 * position). So a payload goes only after its record was appended on the same connection, as the
 * driver's purge does in one transaction (purge.ts); any other UPDATE is refused, whichever program
 * sends it. Whoever drops the triggers can do anything, as with every other table: `witness
 * verify` reports a payload erased without a record listing it as `uncovered_purge`. One primary
 * key probe a row (20,000 rows erased in ~25 ms, measured).
 */
export const PURGE_GUARD_MARK = 'last_insert_rowid()';
const EVENTS_NO_UPDATE = `CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
   WHEN NOT (NEW.data IS NULL AND NEW.salt IS NULL AND NEW.pos IS OLD.pos AND NEW.id IS OLD.id AND NEW.stream IS OLD.stream
     AND NEW.seq IS OLD.seq AND NEW.ts IS OLD.ts AND NEW.kind IS OLD.kind AND NEW.agent IS OLD.agent AND NEW.resource IS OLD.resource
     AND NEW.action IS OLD.action AND NEW.outcome IS OLD.outcome AND NEW.header IS OLD.header AND NEW.hash IS OLD.hash
     AND OLD.pos < ${PURGE_GUARD_MARK} AND (SELECT kind FROM events WHERE pos = ${PURGE_GUARD_MARK}) IS 'retention.purge')
   BEGIN SELECT RAISE(ABORT, 'witness: events are append-only; UPDATE is refused (only the retention purge erases a payload)'); END;`;

export const TRIGGERS = APPEND_ONLY.flatMap((t) => [
  `CREATE TRIGGER IF NOT EXISTS ${t}_no_replace BEFORE INSERT ON ${t}
   WHEN ${NO_REPLACE[t]!}
   BEGIN SELECT RAISE(ABORT, 'witness: ${t} are append-only; an existing row cannot be replaced'); END;`,
  t === 'events'
    ? EVENTS_NO_UPDATE
    : `CREATE TRIGGER IF NOT EXISTS ${t}_no_update BEFORE UPDATE ON ${t}
   BEGIN SELECT RAISE(ABORT, 'witness: ${t} are append-only; UPDATE is refused'); END;`,
  `CREATE TRIGGER IF NOT EXISTS ${t}_no_delete BEFORE DELETE ON ${t}
   BEGIN SELECT RAISE(ABORT, 'witness: ${t} are append-only; DELETE is refused'); END;`,
]).join('\n');

/**
 * Version 1 → 2, in the caller's IMMEDIATE transaction: the query index is created and filled
 * from every event (rows first, then its indexes, which SQLite then builds by sorting), the moved
 * indexes are dropped, and the 3-probe INSERT trigger on events gives way to the one-probe one.
 * The events themselves, their hashes and checkpoints are untouched, so the ledger verifies as
 * before.
 */
function migrateV1(db: Database.Database): void {
  db.exec(INDEX_TABLE);
  db.exec('INSERT INTO event_index (pos, ts, agent, kind, resource, action, outcome) SELECT pos, ts, agent, kind, resource, action, outcome FROM events ORDER BY pos');
  db.exec(INDEX_INDEXES);
  for (const i of V1_MOVED_INDEXES) db.exec(`DROP INDEX IF EXISTS ${i}`);
  db.exec('DROP TRIGGER IF EXISTS events_no_replace');
  db.exec(TRIGGERS);
  db.prepare(`UPDATE meta SET value = ? WHERE key = 'schema_version'`).run(String(SCHEMA_VERSION));
  db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run('migrated_v1_to_v2_at', new Date().toISOString());
}

/**
 * Gives a ledger written before consume-once was enforced its index, under the write lock and
 * checked again inside it (two processes opening it at once create it once). Only a writer does:
 * a reader leaves the file as it is.
 */
function ensureGrantOnce(db: Database.Database): void {
  const has = () => db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?`).pluck().get(GRANT_ONCE) !== undefined;
  if (has()) return;
  db.transaction(() => {
    if (has()) return;
    try {
      db.exec(grantOnceIndex());
    } catch (e) {
      if ((e as { code?: unknown }).code !== 'SQLITE_CONSTRAINT_UNIQUE') throw e;
      // Two processes already released one grant twice here before this Witness: that history is
      // evidence and stays; the index covers every event from the next one on.
      const next = db.prepare('SELECT coalesce(max(pos) + 1, 0) FROM events').pluck().get() as number;
      db.exec(grantOnceIndex(next));
      db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run('grant_once_from_pos', String(next));
    }
  }).immediate();
}

/**
 * Gives a ledger written before the retention purge its purge guard (EVENTS_NO_UPDATE) in place of
 * the trigger that refused every UPDATE, under the write lock and checked again inside it. No new
 * schema version: the guard is a stricter-or-equal trigger that older releases never exercise
 * (they never UPDATE events), so they still open the file. Only a writer does this.
 */
function ensurePurgeGuard(db: Database.Database): void {
  const current = () => db.prepare(`SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'events_no_update'`).pluck().get() as string | undefined;
  if (current()?.includes(PURGE_GUARD_MARK) === true) return;
  db.transaction(() => {
    if (current()?.includes(PURGE_GUARD_MARK) === true) return;
    db.exec('DROP TRIGGER IF EXISTS events_no_update');
    db.exec(EVENTS_NO_UPDATE);
  }).immediate();
}

// ------------------------------------------------------------------ opening the schema

export function openOrCreateSchema(
  db: Database.Database,
  file: string,
  options: { readonly?: boolean; name?: string },
  create: boolean,
): { id: string; origin: string; version: number; created: boolean } {
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
    if (created) {
      // The session list's tables (sessions.ts), which also come to ledgers written before them.
      ensureSessionIndex(db);
      return { id, origin, version: SCHEMA_VERSION, created: true };
    }
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
    throw new WitnessError('store_newer_schema', `${file} uses ledger schema version ${version}, newer than this Witness understands (${SCHEMA_VERSION}); upgrade Witness to open it.`);
  }
  const id = meta.get('ledger_id');
  const origin = meta.get('origin');
  if (id === undefined || origin === undefined) {
    throw new WitnessError('store_corrupt', `${file} is missing its ledger id or origin; it is damaged.`);
  }
  if (version < SCHEMA_VERSION && !options.readonly) {
    // Under the write lock and checked again inside it: of two processes upgrading at once, one
    // migrates and the other finds version 2. A read-only open leaves the file as it is and reads
    // it with the version-1 queries.
    const migrated = db
      .transaction(() => {
        const now = Number(db.prepare(`SELECT value FROM meta WHERE key = 'schema_version'`).pluck().get());
        if (now === 1) migrateV1(db);
        return now;
      })
      .immediate();
    if (migrated !== 1 && migrated !== SCHEMA_VERSION) {
      throw new WitnessError('store_corrupt', `${file} has schema version ${migrated}, which no Witness release wrote; it is damaged.`);
    }
    ensureGrantOnce(db);
    ensurePurgeGuard(db);
    ensureSessionIndex(db);
    return { id, origin, version: SCHEMA_VERSION, created: false };
  }
  if (!options.readonly) {
    ensureGrantOnce(db);
    ensurePurgeGuard(db);
    ensureSessionIndex(db);
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
  db.prepare('INSERT INTO public_keys (vkey, name, added_at) SELECT @vkey, @name, @at WHERE NOT EXISTS (SELECT 1 FROM public_keys)').run({
    vkey: signer.verifierKey,
    name: signer.name,
    at: new Date().toISOString(),
  });
  return firstKey(db);
}
