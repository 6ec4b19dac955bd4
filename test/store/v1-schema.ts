/**
 * The SQLite ledger schema as version 1 of Witness created it, copied verbatim from
 * src/store/sqlite/schema.ts before version 2 (commit edb03f9), so migration tests open a real v1
 * file rather than one built from today's code.
 */
export const V1_DDL = `
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

const V1_APPEND_ONLY = ['events', 'tree_nodes', 'checkpoints', 'public_keys', 'artifacts'];

const V1_UNIQUE_KEYS: Record<string, string[]> = {
  events: ['pos = NEW.pos', 'id = NEW.id', '(stream = NEW.stream AND seq = NEW.seq)'],
  tree_nodes: ['(level = NEW.level AND idx = NEW.idx)'],
  checkpoints: ['id = NEW.id'],
  public_keys: ['vkey = NEW.vkey'],
  artifacts: ['sha256 = NEW.sha256'],
};

export const V1_TRIGGERS = V1_APPEND_ONLY.flatMap((t) => [
  `CREATE TRIGGER IF NOT EXISTS ${t}_no_replace BEFORE INSERT ON ${t}
   WHEN EXISTS (SELECT 1 FROM ${t} WHERE ${V1_UNIQUE_KEYS[t]!.join(' OR ')})
   BEGIN SELECT RAISE(ABORT, 'witness: ${t} are append-only; an existing row cannot be replaced'); END;`,
  `CREATE TRIGGER IF NOT EXISTS ${t}_no_update BEFORE UPDATE ON ${t}
   BEGIN SELECT RAISE(ABORT, 'witness: ${t} are append-only; UPDATE is refused'); END;`,
  `CREATE TRIGGER IF NOT EXISTS ${t}_no_delete BEFORE DELETE ON ${t}
   BEGIN SELECT RAISE(ABORT, 'witness: ${t} are append-only; DELETE is refused'); END;`,
]).join('\n');
