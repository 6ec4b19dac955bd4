import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLedger, sidecarPaths, type Ledger, type RawEventRow } from '../../src/store/index.js';
import { v7 as uuidv7 } from 'uuid';
import { PG_SCHEMA_VERSION, createSchemaObjects } from '../../src/store/postgres/schema.js';
import { PNG_BYTES, buildLedger, copyLedger, oneSentence, runBin, tamper, type BuiltLedger } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { event, note } from '../store/contract/fixtures.js';
import { PG_URL, requirePostgres } from '../store/postgres-driver.js';

/**
 * `witness migrate --from sqlite:… --to postgres://…` with the real binary (build dist first) and
 * the real PostgreSQL: a SQLite ledger recorded through the SDK (three sessions, three sealed
 * checkpoints, a PNG screenshot) moves with its exact rows, checkpoints, key, sealer's record and
 * artifact; `witness verify` passes on the copy, also against a checkpoint saved before the move,
 * and the sealer carries on there. A non-empty destination and a tampered source are refused.
 */
const dir = tempDir('witness-migrate-');
const schemas: string[] = [];
let base: BuiltLedger;

beforeAll(async () => {
  await requirePostgres();
  base = await buildLedger(dir);
});
afterAll(async () => {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
  } finally {
    await c.end();
  }
});

function target(): { url: string; schema: string; keyFile: string; env: Record<string, string> } {
  const schema = `wt_migrate_${randomBytes(5).toString('hex')}`;
  schemas.push(schema);
  const keyFile = path.join(dir, `${schema}.key`);
  return { url: `${PG_URL}?schema=${schema}`, schema, keyFile, env: { WITNESS_SIGNING_KEY_FILE: keyFile } };
}

async function rows(l: Ledger): Promise<RawEventRow[]> {
  const out: RawEventRow[] = [];
  for await (const page of l.scan(0, 4)) out.push(...page);
  return out;
}

describe('witness migrate', () => {
  it('copies a SQLite ledger to PostgreSQL with its exact rows, checkpoints, key, record and screenshot, and the copy verifies, also against a checkpoint saved before the move [R-AGAINST]', async () => {
    const src = copyLedger(base, dir);
    const saved = path.join(dir, 'before-the-move.note');
    const cp = await runBin(['checkpoint', '--store', `sqlite:${src.file}`]);
    expect(cp.code, cp.stderr).toBe(0);
    fs.writeFileSync(saved, cp.stdout);
    // One event after the last checkpoint: the tail moves unsealed, and the PostgreSQL sealer folds it in.
    const w = await openLedger(`sqlite:${src.file}`, { create: false });
    try {
      await w.append([note(src.sessions.c, 'after the last seal, before the move')]);
    } finally {
      await w.close();
    }
    const to = target();

    const m = await runBin(['migrate', '--from', `sqlite:${src.file}`, '--to', to.url], { env: to.env });
    expect(m.stderr).toBe('');
    expect(m.code).toBe(0);
    expect(m.stdout).toContain(`14 events in 3 session(s), 3 checkpoint(s)`);
    expect(m.stdout).toContain('1 artifact(s)');
    expect(m.stdout).toContain(`root ${src.checkpoints[2]!.root.toString('hex')}, the same on both sides`);
    expect(m.stdout).toContain(`signing key  ${to.keyFile}`);

    // The key moved where the PostgreSQL driver looks (0600), with the sealer's record beside it.
    expect(fs.readFileSync(to.keyFile, 'utf8').trim()).toBe(src.signerKey);
    expect(fs.statSync(to.keyFile).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(to.keyFile.replace(/\.key$/, '.sealed'), 'utf8')).toBe(fs.readFileSync(sidecarPaths(src.file).sealed, 'utf8'));

    // witness verify on the copy, pinned to the key recorded at creation, and against the saved note.
    const v = await runBin(['verify', '--store', to.url, '--trusted-key', src.vkey], { env: to.env });
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(v.stdout).toContain('is intact: 14 events in 3 session(s), verified against 3 signed checkpoint(s) (tree size 13)');
    const against = await runBin(['verify', '--store', to.url, '--against', saved], { env: to.env });
    expect(against.code, against.stdout + against.stderr).toBe(0);

    // Row for row the same: positions, seq, stored header and payload bytes, salt, hash; the same PNG.
    const a = await openLedger(`sqlite:${src.file}`, { create: false, readonly: true });
    const b = await openLedger(to.url, { create: false, keyFile: to.keyFile });
    try {
      const [ra, rb] = [await rows(a), await rows(b)];
      expect(rb).toHaveLength(14);
      expect(rb.map((r) => [r.pos, r.id, r.stream, r.seq, r.header, r.data, r.salt?.toString('hex'), r.hash.toString('hex')])).toEqual(
        ra.map((r) => [r.pos, r.id, r.stream, r.seq, r.header, r.data, r.salt?.toString('hex'), r.hash.toString('hex')]),
      );
      expect(b.info.origin).toBe(src.origin);
      expect(b.info.id).toBe(a.info.id);
      expect((await b.readArtifact(src.artifact.sha256))?.equals(PNG_BYTES)).toBe(true);
      expect((await b.publicKeys()).map((k) => k.vkey)).toEqual([src.vkey]);
      const [ca, cb] = [await a.checkpoints(), await b.checkpoints()];
      expect(cb.map((c) => [c.id, c.size, c.root.toString('hex'), c.note, c.consistency, c.prevSize])).toEqual(
        ca.map((c) => [c.id, c.size, c.root.toString('hex'), c.note, c.consistency, c.prevSize]),
      );
      for (const pos of [0, 6, 12]) expect(await b.inclusionProof(pos, 13)).toEqual(await a.inclusionProof(pos, 13));
      // The tree nodes, recomputed from the copied hashes, are the very nodes the SQLite sealer stored.
      const db = new Database(src.file, { readonly: true });
      const sqliteNodes = (db.prepare('SELECT level, idx, hash FROM tree_nodes ORDER BY level, idx').all() as Array<{ level: number; idx: number; hash: Buffer }>).map(
        (n) => `${n.level}/${n.idx}/${n.hash.toString('hex')}`,
      );
      db.close();
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      const pgNodes = (await c.query<{ level: number; idx: string; hash: Buffer }>(`SELECT level, idx, hash FROM ${to.schema}.tree_nodes ORDER BY level, idx`)).rows.map(
        (n) => `${n.level}/${n.idx}/${n.hash.toString('hex')}`,
      );
      await c.end();
      expect(sqliteNodes.length).toBeGreaterThan(13);
      expect(pgNodes).toEqual(sqliteNodes);

      // The sealer carries on on PostgreSQL: the session still open takes more events, then a seal.
      await b.append([note(src.sessions.c, 'after the move')]);
      const next = await b.seal();
      expect(next?.size).toBe(15);
    } finally {
      await a.close();
      await b.close();
    }
    const later = await runBin(['verify', '--store', to.url, '--against', saved, '--trusted-key', src.vkey], { env: to.env });
    expect(later.code, later.stdout + later.stderr).toBe(0);
    expect(later.stdout).toContain('is intact: 15 events in 3 session(s), verified against 4 signed checkpoint(s) (tree size 15)');
  });

  it('refuses a destination schema that is not empty, in one sentence, and leaves it as it was', async () => {
    const src = copyLedger(base, dir);
    const to = target();
    const first = await runBin(['migrate', '--from', `sqlite:${src.file}`, '--to', to.url], { env: to.env });
    expect(first.code, first.stderr).toBe(0);
    const again = await runBin(['migrate', '--from', `sqlite:${src.file}`, '--to', to.url], { env: to.env });
    expect(again.code).toBe(1);
    expect(oneSentence(again.stderr)).toMatch(new RegExp(`destination schema "${to.schema}" .* is not empty`));
    const v = await runBin(['verify', '--store', to.url], { env: to.env });
    expect(v.code, v.stdout).toBe(0);
    expect(v.stdout).toContain('is intact: 13 events');
  });

  it('verifies the source first and refuses a tampered one, in one sentence, creating nothing', async () => {
    const src = copyLedger(base, dir);
    tamper(src.file, (db) => db.prepare(`UPDATE events SET data = '{"text":"forged"}' WHERE pos = ?`).run(src.pos(src.sessions.a, 4)));
    const to = target();
    const m = await runBin(['migrate', '--from', `sqlite:${src.file}`, '--to', to.url], { env: to.env });
    expect(m.code).toBe(1);
    expect(oneSentence(m.stderr)).toMatch(new RegExp(`^Not migrating: the source .* fails verification at leaf ${src.pos(src.sessions.a, 4)} \\(payload_mismatch\\)`));
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    try {
      expect((await c.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [to.schema])).rowCount).toBe(0);
    } finally {
      await c.end();
    }
    expect(fs.existsSync(to.keyFile)).toBe(false);
  });

  it('refuses in one sentence a --to user who may not create the schema, leaving nothing behind', async () => {
    const src = copyLedger(base, dir);
    const to = target();
    const nobody = `wt_nobody_${randomBytes(4).toString('hex')}`;
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    try {
      await c.query(`CREATE ROLE ${nobody} LOGIN`);
      const m = await runBin(['migrate', '--from', `sqlite:${src.file}`, '--to', to.url.replace('//postgres@', `//${nobody}@`)], { env: to.env });
      expect(m.code).toBe(1);
      expect(oneSentence(m.stderr)).toMatch(new RegExp(`may not create schema "${to.schema}"`));
      expect((await c.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [to.schema])).rowCount).toBe(0);
      expect(fs.existsSync(to.keyFile)).toBe(false);
    } finally {
      await c.query(`DROP ROLE IF EXISTS ${nobody}`);
      await c.end();
    }
  });

  it('says in one sentence what is missing when --to is absent or not PostgreSQL, and that --roles needs PostgreSQL', async () => {
    const r = await runBin(['migrate', '--from', `sqlite:${base.file}`]);
    expect(r.code).toBe(2);
    expect(oneSentence(r.stderr)).toMatch(/needs both --from .* and --to postgres/);
    const s = await runBin(['migrate', '--from', `sqlite:${base.file}`, '--to', `sqlite:${path.join(dir, 'x.db')}`]);
    expect(s.code).toBe(2);
    expect(oneSentence(s.stderr)).toMatch(/is not a PostgreSQL URL/);
    // Roles are PostgreSQL's: init --roles on a SQLite file is bad usage, and creates no file.
    const file = path.join(dir, 'roles.db');
    const roles = await runBin(['init', '--store', `sqlite:${file}`, '--roles']);
    expect(roles.code).toBe(2);
    expect(oneSentence(roles.stderr)).toMatch(/--roles creates PostgreSQL roles/);
    expect(fs.existsSync(file)).toBe(false);
  });
});

describe('witness init on an existing PostgreSQL ledger', () => {
  it('finds a current ledger and changes nothing, migrates a version 1 ledger (which no open accepts until then), and refuses a newer schema in one sentence', async () => {
    const to = target();
    const first = await runBin(['init', '--store', to.url], { env: to.env });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(`Created ledger ${to.url} (schema version ${PG_SCHEMA_VERSION})`);
    const again = await runBin(['init', '--store', to.url], { env: to.env });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(`Ledger already exists at ${to.url} (schema version ${PG_SCHEMA_VERSION}, current); nothing changed.`);

    // A ledger as version 1 made it: refused by witness verify (any open) with the command to run, then migrated by it.
    const old = target();
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    try {
      await c.query('BEGIN');
      const id = uuidv7();
      await createSchemaObjects(c, old.schema, { id, origin: `local/witness/${id}` }, {}, 1);
      await c.query('COMMIT');
      const refused = await runBin(['verify', '--store', old.url], { env: old.env });
      expect(refused.code).toBe(1);
      expect(oneSentence(refused.stderr)).toMatch(
        new RegExp(`uses ledger schema version 1, older than this Witness needs \\(${PG_SCHEMA_VERSION}\\); run \`witness init --store .*\` as the schema's owner to migrate it\\.$`),
      );
      const migrated = await runBin(['init', '--store', old.url], { env: old.env });
      expect(migrated.code, migrated.stderr).toBe(0);
      expect(migrated.stdout).toContain(`Migrated ledger ${old.url} from schema version 1 to ${PG_SCHEMA_VERSION}.`);
      expect((await c.query(`SELECT to_regclass($1) AS t`, [`${old.schema}.artifact_chunks`])).rows[0]).toEqual({ t: `${old.schema}.artifact_chunks` });
      const v = await runBin(['verify', '--store', old.url], { env: old.env });
      expect(v.code, v.stdout + v.stderr).toBe(0);

      // A version newer than this Witness: init refuses it and leaves it as it is.
      await c.query(`UPDATE ${to.schema}.meta SET value = '${PG_SCHEMA_VERSION + 1}' WHERE key = 'schema_version'`);
    } finally {
      await c.end();
    }
    const newer = await runBin(['init', '--store', to.url], { env: to.env });
    expect(newer.code).toBe(1);
    expect(oneSentence(newer.stderr)).toMatch(
      new RegExp(`uses ledger schema version ${PG_SCHEMA_VERSION + 1}, newer than this Witness understands \\(${PG_SCHEMA_VERSION}\\); upgrade Witness to open it\\.$`),
    );
  });
});

describe('witness migrate from PostgreSQL', () => {
  it('copies a PostgreSQL ledger to another schema with every artifact it holds, a multi-chunk video streamed and an unreferenced one too, and both verify', async () => {
    const from = target();
    const MiB = 1 << 20;
    const video = randomBytes(3 * MiB + 17);
    const loose = Buffer.from('stored, never cited by an event');
    const l = await openLedger(from.url, { keyFile: from.keyFile });
    let videoSha: string;
    try {
      const ref = await l.putArtifactStream(
        (async function* () {
          for (let at = 0; at < video.length; at += 777_777) yield video.subarray(at, at + 777_777);
        })(),
        'video/mp4',
        'video',
      );
      videoSha = ref.sha256;
      await l.putArtifact(loose, 'text/plain');
      await l.append([event('s', 'session.start', {}), event('s', 'capture', { role: 'video' }, { artifacts: [ref] }), note('s', 'done')]);
      await l.seal();
    } finally {
      await l.close();
    }
    const to = target();
    // One key file for both: the source's key is found, and placed (the same) where the copy's driver looks.
    const m = await runBin(['migrate', '--from', from.url, '--to', to.url], { env: from.env });
    expect(m.stderr).toBe('');
    expect(m.code).toBe(0);
    expect(m.stdout).toContain('3 events in 1 session(s), 1 checkpoint(s)');
    expect(m.stdout).toContain('2 artifact(s)');
    const v = await runBin(['verify', '--store', to.url], { env: from.env });
    expect(v.code, v.stdout + v.stderr).toBe(0);
    const b = await openLedger(to.url, { create: false, readonly: true, keyFile: from.keyFile });
    try {
      const parts: Buffer[] = [];
      for await (const p of (await b.readArtifactStream(videoSha))!) parts.push(p as Buffer);
      expect(Buffer.concat(parts).equals(video)).toBe(true);
      expect(await b.readArtifact(createHash('sha256').update(loose).digest('hex'))).toEqual(loose);
      expect(await b.artifactInfo(videoSha)).toEqual({ sha256: videoSha, bytes: video.length, mime: 'video/mp4' });
    } finally {
      await b.close();
    }
    // In the copy's own layout: the video in 1 MiB chunks.
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    try {
      expect((await c.query(`SELECT count(*)::int AS n FROM ${to.schema}.artifact_chunks`)).rows[0]).toEqual({ n: 4 });
    } finally {
      await c.end();
    }
  });

  it('copies from SQLite an artifact no event cites as well as those they do', async () => {
    const src = copyLedger(base, dir);
    const loose = Buffer.from('a screenshot whose event was never written');
    const w = await openLedger(`sqlite:${src.file}`, { create: false });
    try {
      await w.putArtifactStream(
        (async function* () {
          yield loose;
        })(),
        'image/png',
      );
    } finally {
      await w.close();
    }
    const to = target();
    const m = await runBin(['migrate', '--from', `sqlite:${src.file}`, '--to', to.url], { env: to.env });
    expect(m.code, m.stderr).toBe(0);
    expect(m.stdout).toContain('2 artifact(s)');
    const b = await openLedger(to.url, { create: false, readonly: true, keyFile: to.keyFile });
    try {
      expect(await b.readArtifact(createHash('sha256').update(loose).digest('hex'))).toEqual(loose);
      expect((await b.readArtifact(src.artifact.sha256))?.equals(PNG_BYTES)).toBe(true);
    } finally {
      await b.close();
    }
  });
});
