import type { ClientBase, PoolClient } from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { WitnessError, type NoteSigner } from '../../core/index.js';
import { CHECKPOINT_STATE, IMMUTABLE_STATE, POSITION_STATE, PURGE_STATE } from './errors.js';

/**
 * The PostgreSQL schema, version 1, in the schema the URL names (`?schema=`, default `witness`):
 * one ledger per PostgreSQL schema, so one database can hold many.
 *
 * - `events` carries the query indexes itself: (agent, ts), (resource, ts), (action, ts),
 *   (outcome, ts), (kind, ts), (stream, seq). PostgreSQL maintains them on the write path within
 *   the batched INSERT, so there is no companion index table and no `queryIndexMismatches`.
 * - `ledger_head` is one row: the next global position. Every append locks it (FOR UPDATE) and holds
 *   the lock to commit, so positions are gap-free and in commit order across any number of writer
 *   processes. `stream_heads` is one row per stream (its last seq and hash, and whether it ended),
 *   locked FOR UPDATE by the append that extends the stream. Both are working state, derived from
 *   the events, and are not append-only.
 * - Events, checkpoints, tree nodes, public keys and artifacts are append-only in the database
 *   itself: BEFORE UPDATE/DELETE row triggers and a BEFORE TRUNCATE trigger refuse, each enabled
 *   ALWAYS so it fires under `session_replication_role = replica` as well. The INSERT guard on
 *   events (once per statement, over the rows it added) admits events only at the ledger's next
 *   positions (from max(pos) + 1 on, without a gap), so a row cannot be slipped in below the head
 *   or beyond it either.
 * - Text columns compared by `query` use the "C" collation: ISO-8601 times and ids then order by
 *   their bytes, as in SQLite, whatever the database's locale.
 *
 * Version 2 (PG_MIGRATIONS[0]) streams large artifacts: see artifactChunks below. Version 3
 * (PG_MIGRATIONS[1]) indexes where sessions start, for the session list: see sessionStarts below.
 * Version 4 (PG_MIGRATIONS[2]) adds the retention purge's one allowed change: see purgeGuard below.
 * Version 5 (PG_MIGRATIONS[3]) makes that purge refuse what the driver refuses, takes it from
 * the writer role, and pins every function's search_path: see purgeRefusals below.
 */
export const PG_SCHEMA_VERSION = 5;

/** The append-only tables of version 1; version 2 adds `artifact_chunks` (artifactChunks). */
export const APPEND_ONLY = ['events', 'checkpoints', 'tree_nodes', 'public_keys', 'artifacts'] as const;

function ddl(s: string): string {
  return `
CREATE TABLE IF NOT EXISTS ${s}.meta (
  key   text PRIMARY KEY,
  value text NOT NULL
);

CREATE TABLE IF NOT EXISTS ${s}.ledger_head (
  id       integer PRIMARY KEY CHECK (id = 1),
  next_pos bigint NOT NULL
);

CREATE TABLE IF NOT EXISTS ${s}.stream_heads (
  stream text COLLATE "C" PRIMARY KEY,
  seq    bigint NOT NULL,
  hash   bytea NOT NULL,
  ended  boolean NOT NULL
);

CREATE TABLE IF NOT EXISTS ${s}.events (
  pos      bigint PRIMARY KEY,        -- global position = Merkle leaf index, gapless, commit order
  id       text COLLATE "C" NOT NULL,
  stream   text COLLATE "C" NOT NULL,
  seq      bigint NOT NULL,
  ts       text COLLATE "C" NOT NULL,
  kind     text COLLATE "C" NOT NULL,
  agent    text COLLATE "C" NOT NULL,
  resource text COLLATE "C",
  action   text COLLATE "C",
  outcome  text COLLATE "C",
  header   text NOT NULL,             -- JCS of the header: the exact bytes that were hashed
  data     text,                      -- JCS of the payload; NULL once purged under retention
  salt     bytea,
  hash     bytea NOT NULL,
  CONSTRAINT events_id_key UNIQUE (id),
  CONSTRAINT events_stream_seq_key UNIQUE (stream, seq)
);

CREATE INDEX IF NOT EXISTS events_agent_ts ON ${s}.events (agent, ts, pos);
CREATE INDEX IF NOT EXISTS events_kind_ts ON ${s}.events (kind, ts, pos);
CREATE INDEX IF NOT EXISTS events_resource_ts ON ${s}.events (resource, ts, pos) WHERE resource IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_action_ts ON ${s}.events (action, ts, pos) WHERE action IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_outcome_ts ON ${s}.events (outcome, ts, pos) WHERE outcome IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_ts ON ${s}.events (ts, pos);

-- Consume-once for approvals (src/recorder/approvals.ts): a grant (an approval.decision) is used by
-- at most one policy.decision naming it in data.approval.decision_id, whichever gateway on whichever
-- host writes it; the second is refused here (append.ts turns that into a conflict error). Only
-- policy.decision rows that name a decision are indexed (the LIKE spares parsing the others' JSON:
-- parsing every policy.decision cost ~10 µs a row, measured), so other appends pay nothing for it.
CREATE UNIQUE INDEX IF NOT EXISTS events_grant_once ON ${s}.events ((((data::jsonb) -> 'approval') ->> 'decision_id')) WHERE kind = 'policy.decision' AND data LIKE '%"decision_id"%';

CREATE TABLE IF NOT EXISTS ${s}.tree_nodes (
  level integer NOT NULL,
  idx   bigint NOT NULL,
  hash  bytea NOT NULL,
  PRIMARY KEY (level, idx)
);

CREATE TABLE IF NOT EXISTS ${s}.checkpoints (
  id          bigint PRIMARY KEY,
  size        bigint NOT NULL,
  root        bytea NOT NULL,
  note        text NOT NULL,
  ts          text NOT NULL,
  frontier    text NOT NULL,          -- right edge of the tree, so the sealer resumes without a rebuild
  consistency text NOT NULL,          -- JSON array of hex hashes: proof from the previous checkpoint
  prev_size   bigint
);

CREATE TABLE IF NOT EXISTS ${s}.public_keys (
  n        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,   -- insertion order: the first is the ledger's own key
  vkey     text NOT NULL UNIQUE,
  name     text NOT NULL,
  added_at text NOT NULL
);

CREATE TABLE IF NOT EXISTS ${s}.artifacts (
  sha256     text COLLATE "C" PRIMARY KEY,
  mime       text NOT NULL,
  size       bigint NOT NULL,
  bytes      bytea NOT NULL,
  created_at text NOT NULL
);

CREATE OR REPLACE FUNCTION ${s}.witness_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = '${IMMUTABLE_STATE}', MESSAGE = format('witness: %s are append-only; %s is refused', TG_TABLE_NAME, TG_OP);
END $$;

CREATE OR REPLACE FUNCTION ${s}.witness_next_position() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE lo bigint; hi bigint; n bigint; below bigint; top bigint;
BEGIN
  -- Once per statement, over the rows it inserted (all visible here): they must be exactly the
  -- positions after the ledger's previous end, with no gap and nothing beyond them. Per row, the
  -- same check cost about a third of a 1,000-event batch's execution time (measured).
  SELECT min(pos), max(pos), count(*) INTO lo, hi, n FROM added;
  IF n = 0 THEN RETURN NULL; END IF;
  SELECT coalesce(max(pos) + 1, 0) INTO below FROM ${s}.events WHERE pos < lo;
  SELECT max(pos) INTO top FROM ${s}.events;
  IF lo IS DISTINCT FROM below OR hi - lo + 1 <> n OR top IS DISTINCT FROM hi THEN
    RAISE EXCEPTION USING ERRCODE = '${POSITION_STATE}', MESSAGE = format('witness: events may only be added at position %s onwards, without gaps, not %s..%s', below, lo, hi);
  END IF;
  RETURN NULL;
END $$;
`;
}

/** The append-only triggers of one table: row and TRUNCATE refusals, each (name, table, definition). */
function appendOnlyTriggers(s: string, t: string): Array<{ name: string; table: string; sql: string }> {
  return [
    { name: `${t}_no_change`, table: t, sql: `CREATE TRIGGER ${t}_no_change BEFORE UPDATE OR DELETE ON ${s}.${t} FOR EACH ROW EXECUTE FUNCTION ${s}.witness_append_only()` },
    { name: `${t}_no_truncate`, table: t, sql: `CREATE TRIGGER ${t}_no_truncate BEFORE TRUNCATE ON ${s}.${t} FOR EACH STATEMENT EXECUTE FUNCTION ${s}.witness_append_only()` },
  ];
}

/** The triggers of version 1, each (name, table, definition); enabled ALWAYS after creation. */
export function triggers(s: string): Array<{ name: string; table: string; sql: string }> {
  const out: Array<{ name: string; table: string; sql: string }> = [];
  for (const t of APPEND_ONLY) out.push(...appendOnlyTriggers(s, t));
  out.push({
    name: 'events_next_position',
    table: 'events',
    sql: `CREATE TRIGGER events_next_position AFTER INSERT ON ${s}.events REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION ${s}.witness_next_position()`,
  });
  return out;
}

/** The advisory lock key under which a schema is created or migrated (transaction-scoped). */
export function schemaLockKey(schema: string): string {
  return `witness-schema:${schema}`;
}

export interface SchemaMeta {
  id: string;
  origin: string;
  version: number;
  created: boolean;
}

/**
 * Opens the ledger in `schema`, creating it on a writable open when it is missing: CREATE SCHEMA IF
 * NOT EXISTS, the tables, the triggers and the meta rows, in one transaction under an advisory lock
 * (of two processes creating the same ledger at once, one creates and the other finds it). A
 * schema written by a newer Witness is refused with one sentence; a read-only open never writes.
 */
export async function openOrCreateSchema(client: PoolClient, schema: string, location: string, options: { readonly?: boolean; name?: string }, create: boolean): Promise<SchemaMeta> {
  const hasMeta = async () => (await client.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [`${schema}.meta`])).rows[0]?.t != null;
  let created = false;
  if (!(await hasMeta())) {
    if (!create || options.readonly === true) {
      throw new WitnessError('not_found', `No ledger in schema "${schema}" at ${location}; run \`witness init --store ${location}\` first or check --store.`);
    }
    await client.query('BEGIN');
    try {
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [schemaLockKey(schema)]);
      if (!(await hasMeta())) {
        const id = uuidv7();
        await createSchemaObjects(client, schema, { id, origin: `${options.name ?? 'local'}/witness/${id}` });
        created = true;
      }
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    }
  }
  const rows = (await client.query<{ key: string; value: string }>(`SELECT key, value FROM ${schema}.meta`)).rows;
  const meta = new Map(rows.map((r) => [r.key, r.value]));
  const version = Number(meta.get('schema_version'));
  if (!Number.isInteger(version)) {
    throw new WitnessError('store_corrupt', `Schema "${schema}" at ${location} has no valid ledger schema version; it is not a Witness ledger or it is damaged.`);
  }
  if (version > PG_SCHEMA_VERSION) {
    throw new WitnessError(
      'store_newer_schema',
      `Schema "${schema}" at ${location} uses ledger schema version ${version}, newer than this Witness understands (${PG_SCHEMA_VERSION}); upgrade Witness to open it.`,
    );
  }
  if (version < PG_SCHEMA_VERSION) {
    // Never migrated by an open: the schema's owner runs the DDL (writers have no DDL privilege), once.
    throw new WitnessError(
      'unsupported_version',
      `Schema "${schema}" at ${location} uses ledger schema version ${version}, older than this Witness needs (${PG_SCHEMA_VERSION}); run \`witness init --store ${location}\` as the schema's owner to migrate it.`,
    );
  }
  const id = meta.get('ledger_id');
  const origin = meta.get('origin');
  if (id === undefined || origin === undefined) {
    throw new WitnessError('store_corrupt', `Schema "${schema}" at ${location} is missing its ledger id or origin; it is damaged.`);
  }
  return { id, origin, version, created };
}

/**
 * The ledger's tables, triggers (enabled ALWAYS) and meta rows in `schema`, inside the caller's
 * transaction. `identity` is a new ledger's, or for `witness migrate` the copied ledger's own id
 * and origin (the origin binds every stream's genesis and every checkpoint, so it moves unchanged).
 * A new ledger is version 1 plus every migration step, so it is exactly what a migrated one is;
 * `version` stops earlier (tests build a version 1 ledger this way).
 */
export async function createSchemaObjects(
  client: ClientBase,
  schema: string,
  identity: { id: string; origin: string },
  extraMeta: Record<string, string> = {},
  version = PG_SCHEMA_VERSION,
): Promise<void> {
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  await client.query(ddl(schema));
  for (const t of triggers(schema)) {
    await client.query(t.sql);
    // ALWAYS: fires under session_replication_role = replica too, which disables ordinary triggers.
    await client.query(`ALTER TABLE ${schema}.${t.table} ENABLE ALWAYS TRIGGER ${t.name}`);
  }
  for (let v = 1; v < version; v++) await client.query(PG_MIGRATIONS[v - 1]!(schema));
  await client.query(`INSERT INTO ${schema}.ledger_head (id, next_pos) VALUES (1, 0)`);
  const meta: Record<string, string> = { schema_version: String(version), ledger_id: identity.id, origin: identity.origin, created_at: new Date().toISOString(), ...extraMeta };
  await client.query(`INSERT INTO ${schema}.meta (key, value) SELECT * FROM unnest($1::text[], $2::text[])`, [Object.keys(meta), Object.values(meta)]);
}

/** Bytes per row of `artifact_chunks`: large enough that a round trip per chunk is noise, small enough to hold one. */
export const ARTIFACT_CHUNK_BYTES = 1 << 20;

/**
 * Version 1 → 2: large artifacts in chunks. An artifact of at most one chunk keeps the version 1
 * form (its bytes in `artifacts.bytes`); a larger one is written as rows of `artifact_chunks`
 * (`upload`, n, at most `chunk_size` bytes each) under an id of its own, since its digest is known
 * only once the last byte is hashed, and its `artifacts` row (bytes NULL, `upload`, `chunk_size`)
 * is inserted last, in the same transaction: a reader finds an artifact only by that row, so it
 * never meets a partial one, and a failure or crash midway rolls the chunks back with it, leaving
 * nothing behind in a table from which nothing can ever be deleted. Chunks rather than large
 * objects: they are ordinary rows, so the append-only triggers, the role grants, pg_dump of one
 * schema and logical replication cover them as they cover every other table (large objects live
 * in pg_largeobject, outside the schema, with privileges of their own and no logical replication).
 * STORAGE EXTERNAL keeps chunks uncompressed (screenshots and videos are compressed already), so
 * a ranged read fetches only the bytes it asks for. Roles holding SELECT or INSERT on `artifacts`
 * get the same on `artifact_chunks`, so `witness init --roles` need not be run again.
 */
function artifactChunks(s: string): string {
  const trig = appendOnlyTriggers(s, 'artifact_chunks');
  return `
CREATE TABLE ${s}.artifact_chunks (
  upload text COLLATE "C" NOT NULL,
  n      integer NOT NULL CHECK (n >= 0),
  bytes  bytea NOT NULL,
  PRIMARY KEY (upload, n)
);
ALTER TABLE ${s}.artifact_chunks ALTER COLUMN bytes SET STORAGE EXTERNAL;
ALTER TABLE ${s}.artifacts ALTER COLUMN bytes DROP NOT NULL;
ALTER TABLE ${s}.artifacts ADD COLUMN upload text COLLATE "C";
ALTER TABLE ${s}.artifacts ADD COLUMN chunk_size integer CHECK (chunk_size > 0);
ALTER TABLE ${s}.artifacts ADD CONSTRAINT artifacts_one_form CHECK ((bytes IS NULL) = (upload IS NOT NULL) AND (upload IS NULL) = (chunk_size IS NULL));
${trig.map((t) => `${t.sql};\nALTER TABLE ${s}.${t.table} ENABLE ALWAYS TRIGGER ${t.name};`).join('\n')}
DO $grants$
DECLARE r record;
BEGIN
  FOR r IN SELECT a.grantee::regrole::text AS grantee, a.privilege_type AS p
           FROM pg_class c, aclexplode(c.relacl) a
           WHERE c.oid = '${s}.artifacts'::regclass AND a.privilege_type IN ('SELECT', 'INSERT') AND a.grantee <> c.relowner AND a.grantee <> 0
  LOOP
    EXECUTE format('GRANT %s ON ${s}.artifact_chunks TO %s', r.p, r.grantee);
  END LOOP;
END $grants$;
`;
}

/**
 * The versioned migrations: step n (index n - 1) takes a ledger from schema version n to n + 1, as
 * DDL on the schema; the next schema change adds its step here and raises PG_SCHEMA_VERSION. They
 * run only from `witness init` (see migrateSchema), as the schema's owner: the writer role has no
 * DDL privilege, and an open never changes the schema behind the operator's back (it refuses an
 * older one, saying to run `witness init`).
 */
/**
 * The session list (postgres/sessions.ts) pages sessions newest first by where they start: a
 * partial index over each stream's first event (seq 0) lets it walk them in that order, and a time
 * window start where it begins, instead of reading every older session's first event (a 2 s p99 on
 * 1M events without it). One index entry per session on the write path, none per other event.
 */
function sessionStarts(s: string): string {
  return `CREATE INDEX IF NOT EXISTS events_session_start ON ${s}.events (ts, stream) WHERE seq = 0;`;
}

/** The function through which alone a payload is erased (purgeGuard, purgeRefusals); only the retention role and the owner may EXECUTE it. */
export const PURGE_FUNCTION = 'witness_purge';

/**
 * Version 3 → 4: the retention purge (Ledger.purgePayloads, postgres/purge.ts). Events keep their
 * BEFORE UPDATE OR DELETE trigger, now with a function of their own that admits exactly one change:
 * `data` and `salt` set to NULL with every other column unchanged, while the transaction-local
 * flag `witness.purge` is on. Only `witness_purge(positions)` sets that flag: a SECURITY DEFINER
 * function (it runs as the schema's owner, so its caller needs EXECUTE on it and still no UPDATE
 * on events; version 4 granted EXECUTE to the writer, version 5 to the retention role alone) that first checks every position is listed (data.leaves) by a retention.purge
 * event this same transaction appended (xmin), below that event's own position; so no payload goes
 * without its record, and a header, hash or position is never changed. The schema's owner can set
 * the flag or drop the triggers, as an owner can do anything: `witness verify` then reports a
 * payload erased without a record as `uncovered_purge`.
 */
function purgeGuard(s: string): string {
  const cols = ['pos', 'id', 'stream', 'seq', 'ts', 'kind', 'agent', 'resource', 'action', 'outcome', 'header', 'hash'];
  return `
CREATE OR REPLACE FUNCTION ${s}.witness_events_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND current_setting('witness.purge', true) = 'on' AND NEW.data IS NULL AND NEW.salt IS NULL
     AND ROW(${cols.map((c) => `NEW.${c}`).join(', ')}) IS NOT DISTINCT FROM ROW(${cols.map((c) => `OLD.${c}`).join(', ')}) THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION USING ERRCODE = '${IMMUTABLE_STATE}', MESSAGE = format('witness: events are append-only; %s is refused (only the retention purge erases a payload)', TG_OP);
END $$;
DROP TRIGGER IF EXISTS events_no_change ON ${s}.events;
CREATE TRIGGER events_no_change BEFORE UPDATE OR DELETE ON ${s}.events FOR EACH ROW EXECUTE FUNCTION ${s}.witness_events_guard();
ALTER TABLE ${s}.events ENABLE ALWAYS TRIGGER events_no_change;
CREATE OR REPLACE FUNCTION ${s}.${PURGE_FUNCTION}(positions bigint[]) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE unlisted bigint; erased bigint;
BEGIN
  SELECT count(*) INTO unlisted FROM (
    SELECT unnest(positions)
    EXCEPT
    SELECT generate_series((l.r ->> 0)::bigint, (l.r ->> 1)::bigint)
    FROM ${s}.events e, jsonb_array_elements(e.data::jsonb -> 'leaves') AS l(r)
    WHERE e.kind = 'retention.purge' AND e.xmin::text::bigint = pg_current_xact_id()::text::bigint % 4294967296
      AND (l.r ->> 1)::bigint < e.pos
  ) x;
  IF unlisted > 0 THEN
    RAISE EXCEPTION USING ERRCODE = '${IMMUTABLE_STATE}', MESSAGE = format('witness: %s position(s) are not listed by a retention.purge event of this transaction; a payload is erased only with its record', unlisted);
  END IF;
  PERFORM set_config('witness.purge', 'on', true);
  UPDATE ${s}.events SET data = NULL, salt = NULL WHERE pos = ANY(positions) AND (data IS NOT NULL OR salt IS NOT NULL);
  GET DIAGNOSTICS erased = ROW_COUNT;
  PERFORM set_config('witness.purge', '', true);
  RETURN erased;
END $$;
REVOKE ALL ON FUNCTION ${s}.${PURGE_FUNCTION}(bigint[]) FROM PUBLIC;
DO $grants$
DECLARE r record;
BEGIN
  FOR r IN SELECT DISTINCT a.grantee::regrole::text AS grantee
           FROM pg_class c, aclexplode(c.relacl) a
           WHERE c.oid = '${s}.events'::regclass AND a.privilege_type = 'INSERT' AND a.grantee <> c.relowner AND a.grantee <> 0
  LOOP
    EXECUTE format('GRANT EXECUTE ON FUNCTION ${s}.${PURGE_FUNCTION}(bigint[]) TO %s', r.grantee);
  END LOOP;
END $grants$;
`;
}

/**
 * The kinds version 5's witness_purge never takes: core's UNPURGEABLE_KINDS as it stood, written
 * out because a migration's SQL must not change after it ships (a test holds the two equal; a new
 * kind there needs a new migration here).
 */
export const PG_V5_UNPURGEABLE_KINDS = ['human.halt', 'human.resume', 'hold.placed', 'hold.released', 'retention.purge', 'config.change', 'key.rotated'] as const;

/**
 * Version 4 → 5: `witness_purge` refuses, in the database, what Ledger.purgePayloads refuses before
 * it (ledger.ts purgeTargetRefusal), with the same sentences: a position that holds no event, a
 * leaf at or beyond the newest stored checkpoint's size (the key has not vouched for its content
 * yet), and an event of a governance kind (UNPURGEABLE_KINDS). In version 4 it checked only that a
 * retention.purge event of the same transaction listed the positions, and that record is any row
 * its caller inserts: a caller with SQL could erase hold records or rules, or content no checkpoint
 * covers, and the sealer would then sign the record. Holds are judged by verify (src/core): their
 * scopes are read from the ledger's events, which SQL here would have to mirror exactly.
 *
 * And the function is no longer the writer's: EXECUTE is revoked from every role but the owner
 * (version 4 granted it to each role that could insert events), and `witness init --roles` grants
 * it to the retention role alone (roleGrants), which the hosts running `witness retention run` or
 * `witness erase` log in as; recorders and gateways keep appending and sealing as the writer and
 * can erase nothing. Sealing stays the writer's alone: the retention role may not insert
 * checkpoints or tree nodes, so it cannot raise the sealed size with a fake checkpoint row and then
 * erase a leaf no key vouched for (found by review). Erasing an unsealed leaf so takes a writer and
 * a retention member together, and even then the function refuses a newest checkpoint claiming
 * more leaves than the ledger holds (max(pos) + 1; SQLSTATE WA004, as the sealer never signs
 * beyond the events); one within the ledger is caught by verify on its signature, too late for the
 * payload but not for the record. Such a row stays: checkpoints are append-only.
 *
 * Every other function of the schema gets `SET search_path = pg_catalog, pg_temp`, as
 * witness_purge has had it from the start: they name the ledger's tables with the schema, so
 * nothing a caller puts earlier on its search_path (a table or operator of its own) is ever what
 * a guard reads or calls.
 */
function purgeRefusals(s: string): string {
  return `
CREATE OR REPLACE FUNCTION ${s}.${PURGE_FUNCTION}(positions bigint[]) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE wanted bigint; present bigint; sealed bigint; total bigint; bad record; unlisted bigint; erased bigint;
BEGIN
  IF positions IS NULL OR cardinality(positions) = 0 OR array_position(positions, NULL) IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '${PURGE_STATE}', MESSAGE = 'witness: Cannot purge: no positions were given (or one is NULL)';
  END IF;
  SELECT count(DISTINCT p) INTO wanted FROM unnest(positions) AS p;
  SELECT count(*) INTO present FROM ${s}.events WHERE pos = ANY(positions);
  IF present < wanted THEN
    RAISE EXCEPTION USING ERRCODE = '${PURGE_STATE}', MESSAGE = format('witness: Cannot purge: %s of the given positions hold no event', wanted - present);
  END IF;
  SELECT coalesce((SELECT size FROM ${s}.checkpoints ORDER BY id DESC LIMIT 1), 0) INTO sealed;
  SELECT coalesce(max(pos) + 1, 0) INTO total FROM ${s}.events;
  IF sealed > total THEN
    RAISE EXCEPTION USING ERRCODE = '${CHECKPOINT_STATE}', MESSAGE = format('witness: the newest checkpoint claims %s leaves but the ledger holds %s, so the checkpoints or the events were tampered with', sealed, total);
  END IF;
  SELECT pos, kind INTO bad FROM ${s}.events WHERE pos = ANY(positions) AND (pos >= sealed OR kind IN (${PG_V5_UNPURGEABLE_KINDS.map((k) => `'${k}'`).join(', ')})) ORDER BY pos LIMIT 1;
  IF FOUND AND bad.pos >= sealed THEN
    RAISE EXCEPTION USING ERRCODE = '${PURGE_STATE}', MESSAGE = format('witness: Cannot purge leaf %s: it is not in a signed checkpoint yet (sealed size %s); run \`witness seal\` first, so the key vouched for the content before it goes', bad.pos, sealed);
  ELSIF FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '${PURGE_STATE}', MESSAGE = format('witness: Cannot purge leaf %s: it is a %s event, part of the record of governance, which is kept', bad.pos, bad.kind);
  END IF;
  SELECT count(*) INTO unlisted FROM (
    SELECT unnest(positions)
    EXCEPT
    SELECT generate_series((l.r ->> 0)::bigint, (l.r ->> 1)::bigint)
    FROM ${s}.events e, jsonb_array_elements(e.data::jsonb -> 'leaves') AS l(r)
    WHERE e.kind = 'retention.purge' AND e.xmin::text::bigint = pg_current_xact_id()::text::bigint % 4294967296
      AND (l.r ->> 1)::bigint < e.pos
  ) x;
  IF unlisted > 0 THEN
    RAISE EXCEPTION USING ERRCODE = '${IMMUTABLE_STATE}', MESSAGE = format('witness: %s position(s) are not listed by a retention.purge event of this transaction; a payload is erased only with its record', unlisted);
  END IF;
  PERFORM set_config('witness.purge', 'on', true);
  UPDATE ${s}.events SET data = NULL, salt = NULL WHERE pos = ANY(positions) AND (data IS NOT NULL OR salt IS NOT NULL);
  GET DIAGNOSTICS erased = ROW_COUNT;
  PERFORM set_config('witness.purge', '', true);
  RETURN erased;
END $$;
REVOKE ALL ON FUNCTION ${s}.${PURGE_FUNCTION}(bigint[]) FROM PUBLIC;
DO $grants$
DECLARE r record;
BEGIN
  FOR r IN SELECT DISTINCT a.grantee::regrole::text AS grantee
           FROM pg_proc p, aclexplode(p.proacl) a
           WHERE p.oid = '${s}.${PURGE_FUNCTION}(bigint[])'::regprocedure AND a.grantee <> p.proowner AND a.grantee <> 0
  LOOP
    EXECUTE format('REVOKE ALL ON FUNCTION ${s}.${PURGE_FUNCTION}(bigint[]) FROM %s', r.grantee);
  END LOOP;
END $grants$;
${['witness_append_only', 'witness_next_position', 'witness_events_guard'].map((f) => `ALTER FUNCTION ${s}.${f}() SET search_path = pg_catalog, pg_temp;`).join('\n')}
`;
}

export const PG_MIGRATIONS: ReadonlyArray<(schema: string) => string> = [artifactChunks, sessionStarts, purgeGuard, purgeRefusals];

/**
 * Brings the ledger in `schema` to version `to` with `steps` (by default this Witness's own), in
 * one transaction under the schema's advisory lock; a newer schema is refused in one sentence, as
 * an open refuses it. Returns the version found and the version left.
 */
export async function migrateSchema(
  client: ClientBase,
  schema: string,
  location: string,
  steps: ReadonlyArray<(schema: string) => string> = PG_MIGRATIONS,
  to = PG_SCHEMA_VERSION,
): Promise<{ from: number; to: number }> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [schemaLockKey(schema)]);
    const from = Number((await client.query<{ value: string }>(`SELECT value FROM ${schema}.meta WHERE key = 'schema_version'`)).rows[0]?.value);
    if (!Number.isInteger(from) || from < 1) {
      throw new WitnessError('store_corrupt', `Schema "${schema}" at ${location} has no valid ledger schema version; it is not a Witness ledger or it is damaged.`);
    }
    if (from > to) {
      throw new WitnessError('store_newer_schema', `Schema "${schema}" at ${location} uses ledger schema version ${from}, newer than this Witness understands (${to}); upgrade Witness to open it.`);
    }
    for (let v = from; v < to; v++) {
      const step = steps[v - 1];
      if (step === undefined) throw new WitnessError('store_fault', `This Witness has no migration from ledger schema version ${v} to ${v + 1}, which is a bug; report it with this message.`);
      await client.query(step(schema));
    }
    if (from !== to) await client.query(`UPDATE ${schema}.meta SET value = $1 WHERE key = 'schema_version'`, [String(to)]);
    await client.query('COMMIT');
    return { from, to };
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

/** Every table of a ledger of this version. */
export const LEDGER_TABLES = ['meta', 'ledger_head', 'stream_heads', 'events', 'tree_nodes', 'checkpoints', 'public_keys', 'artifacts', 'artifact_chunks'] as const;

/**
 * The privileges of the three roles `witness init --roles` creates (see README, PostgreSQL):
 *
 * - The writer (recorders, gateways, the sealer) reads every table and INSERTs into what appends
 *   and seals add to: events, stream_heads, tree_nodes, checkpoints, artifacts, artifact_chunks. It UPDATEs only the
 *   two working-state tables the append path moves, and only their moving columns: ledger_head's
 *   next_pos (append locks the row FOR UPDATE, which needs UPDATE, and advances it) and
 *   stream_heads' seq, hash and ended (locked FOR UPDATE, advanced by INSERT … ON CONFLICT DO
 *   UPDATE). It never gets UPDATE, DELETE or TRUNCATE on events, checkpoints, tree nodes, public
 *   keys or artifacts (nor their chunks), nor INSERT on public_keys or meta (`witness init` records the key). No
 *   table of the ledger draws from a sequence the writer uses (public_keys' identity is the
 *   writer-free one), so no sequence is granted. Nor may it EXECUTE witness_purge: a recorder host
 *   erases nothing.
 * - The auditor reads every table and nothing else.
 * - The retention role (`witness retention run`, `witness erase`) appends, since a purge appends its
 *   record (events, stream_heads and the two moving columns, as the writer), and may EXECUTE
 *   witness_purge, the one way a payload is erased (purgeGuard, purgeRefusals). It does not seal:
 *   no INSERT on checkpoints or tree_nodes (nor artifacts), so what it may erase is bounded by
 *   what a writer sealed, and erasing a leaf no key vouched for takes both roles (purgeRefusals).
 *
 * Every earlier privilege of the three on the schema's tables and on witness_purge is revoked
 * first, so the grants below are the whole of what they hold there.
 */
export function roleGrants(schema: string, writer: string, auditor: string, retention: string): string[] {
  const all = LEDGER_TABLES.map((t) => `${schema}.${t}`).join(', ');
  const purge = `FUNCTION ${schema}.${PURGE_FUNCTION}(bigint[])`;
  const writes = (role: string, tables: readonly string[]) => [
    `GRANT INSERT ON ${tables.map((t) => `${schema}.${t}`).join(', ')} TO ${role}`,
    `GRANT UPDATE (next_pos) ON ${schema}.ledger_head TO ${role}`,
    `GRANT UPDATE (seq, hash, ended) ON ${schema}.stream_heads TO ${role}`,
  ];
  return [
    `REVOKE ALL ON ALL TABLES IN SCHEMA ${schema} FROM ${writer}, ${auditor}`,
    `REVOKE ALL ON ${purge} FROM ${writer}, ${auditor}`,
    `GRANT USAGE ON SCHEMA ${schema} TO ${writer}, ${auditor}`,
    `GRANT SELECT ON ${all} TO ${writer}, ${auditor}`,
    ...writes(writer, ['events', 'stream_heads', 'tree_nodes', 'checkpoints', 'artifacts', 'artifact_chunks']),
    `REVOKE ALL ON ALL TABLES IN SCHEMA ${schema} FROM ${retention}`,
    `GRANT USAGE ON SCHEMA ${schema} TO ${retention}`,
    `GRANT SELECT ON ${all} TO ${retention}`,
    ...writes(retention, ['events', 'stream_heads']),
    `GRANT EXECUTE ON ${purge} TO ${retention}`,
  ];
}

export async function publicKeyCount(client: PoolClient, schema: string): Promise<number> {
  return Number((await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.public_keys`)).rows[0]!.n);
}

/** Records the signer's key when the ledger has none yet (under the schema lock); returns the ledger's own key. */
export async function ensurePublicKey(client: PoolClient, schema: string, signer: NoteSigner): Promise<string | undefined> {
  const first = async () => (await client.query<{ vkey: string }>(`SELECT vkey FROM ${schema}.public_keys ORDER BY n LIMIT 1`)).rows[0]?.vkey;
  const known = await first();
  if (known !== undefined) return known;
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [schemaLockKey(schema)]);
    await client.query(`INSERT INTO ${schema}.public_keys (vkey, name, added_at) SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM ${schema}.public_keys)`, [
      signer.verifierKey,
      signer.name,
      new Date().toISOString(),
    ]);
    await client.query('COMMIT');
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
  return first();
}
