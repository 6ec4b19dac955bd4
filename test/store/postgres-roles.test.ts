import { randomBytes } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLedger, verifyLedger } from '../../src/store/index.js';
import { PNG_BYTES, oneSentence, runBin } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { note } from './contract/fixtures.js';
import { PG_URL, requirePostgres } from './postgres-driver.js';

/**
 * `witness init --roles` against the real PostgreSQL: the writer role appends and seals through the
 * driver but can change no stored row, not even by switching the triggers off; the auditor reads
 * and verifies and writes nothing. The roles are NOLOGIN, so each test logs in as a fresh login
 * role that is a member of one (as a deployment would), and also SETs ROLE to each from a
 * superuser's connection. Every schema and role made here is dropped after.
 */
const dir = tempDir('witness-pg-roles-');
const schemas: string[] = [];
const roles: string[] = [];

beforeAll(requirePostgres);
afterAll(async () => {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
    for (const r of roles.reverse()) {
      await c.query(`DROP OWNED BY ${r}`).catch(() => undefined);
      await c.query(`DROP ROLE IF EXISTS ${r}`);
    }
  } finally {
    await c.end();
  }
});

const asUser = (user: string, schema: string) => `${PG_URL.replace('//postgres@', `//${user}@`)}?schema=${schema}`;

async function superuser<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** A ledger made with `witness init --roles`, with a login member of each role. */
async function initWithRoles(): Promise<{ schema: string; url: string; keyFile: string; writer: string; auditor: string; stdout: string }> {
  const tag = randomBytes(4).toString('hex');
  const schema = `wt_roles_${tag}`;
  const writer = `wt_writer_${tag}`;
  const auditor = `wt_auditor_${tag}`;
  const retention = `wt_retention_${tag}`;
  schemas.push(schema);
  roles.push(writer, auditor, retention, `${writer}_login`, `${auditor}_login`);
  const url = `${PG_URL}?schema=${schema}`;
  const keyFile = path.join(dir, `${schema}.key`);
  const r = await runBin(['init', '--store', url, '--roles', '--writer-role', writer, '--auditor-role', auditor, '--retention-role', retention], { env: { WITNESS_SIGNING_KEY_FILE: keyFile } });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  await superuser(async (c) => {
    await c.query(`CREATE ROLE ${writer}_login LOGIN IN ROLE ${writer}`);
    await c.query(`CREATE ROLE ${auditor}_login LOGIN IN ROLE ${auditor}`);
  });
  return { schema, url, keyFile, writer, auditor, stdout: r.stdout };
}

/** The SQLSTATE each statement fails with, run one by one (each in its own transaction) after `SET ROLE role`. */
async function attempts(role: string, schema: string, statements: string[]): Promise<Record<string, string>> {
  return superuser(async (c) => {
    await c.query(`SET search_path = ${schema}`);
    await c.query(`SET ROLE ${role}`);
    const out: Record<string, string> = {};
    for (const sql of statements) {
      try {
        await c.query('BEGIN');
        await c.query(sql);
        out[sql] = 'ok';
      } catch (e) {
        out[sql] = String((e as { code?: unknown }).code);
      } finally {
        await c.query('ROLLBACK');
      }
    }
    return out;
  });
}

describe('witness init --roles', () => {
  it('creates the ledger, its key, a NOLOGIN writer and auditor role, and prints every grant it made', async () => {
    const { stdout, writer, auditor, schema, keyFile } = await initWithRoles();
    expect(stdout).toContain(`Created ledger ${PG_URL}?schema=${schema}`);
    expect(stdout).toContain(`signing key  ${keyFile}`);
    expect(stdout).toContain(`Created role ${writer} (NOLOGIN)`);
    expect(stdout).toContain(`Created role ${auditor} (NOLOGIN)`);
    const printed = stdout.split('\n').filter((l) => /^\s+(GRANT|REVOKE)/.test(l));
    // What the catalog says each role holds, as "table:privilege" (column grants as table(column):privilege).
    const held = await superuser(async (c) => {
      const tables = await c.query<{ grantee: string; t: string; p: string }>(
        `SELECT grantee, table_name AS t, privilege_type AS p FROM information_schema.role_table_grants WHERE table_schema = $1 AND grantee IN ($2, $3)`,
        [schema, writer, auditor],
      );
      const cols = await c.query<{ grantee: string; t: string; col: string; p: string }>(
        `SELECT grantee, table_name AS t, column_name AS col, privilege_type AS p FROM information_schema.column_privileges
         WHERE table_schema = $1 AND grantee IN ($2, $3) AND privilege_type = 'UPDATE'`,
        [schema, writer, auditor],
      );
      const login = await c.query<{ rolname: string; rolcanlogin: boolean }>('SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname IN ($1, $2)', [writer, auditor]);
      return {
        tables: tables.rows.map((r) => `${r.grantee === writer ? 'writer' : 'auditor'} ${r.t}:${r.p}`).sort(),
        columns: cols.rows.map((r) => `${r.grantee === writer ? 'writer' : 'auditor'} ${r.t}(${r.col}):${r.p}`).sort(),
        canLogin: login.rows.map((r) => r.rolcanlogin),
      };
    });
    expect(held.canLogin).toEqual([false, false]);
    const all = ['artifact_chunks', 'artifacts', 'checkpoints', 'events', 'ledger_head', 'meta', 'public_keys', 'stream_heads', 'tree_nodes'];
    expect(held.tables).toEqual(
      [
        ...all.map((t) => `auditor ${t}:SELECT`),
        ...all.map((t) => `writer ${t}:SELECT`),
        ...['artifact_chunks', 'artifacts', 'checkpoints', 'events', 'stream_heads', 'tree_nodes'].map((t) => `writer ${t}:INSERT`),
      ].sort(),
    );
    expect(held.columns).toEqual(['writer ledger_head(next_pos):UPDATE', 'writer stream_heads(ended):UPDATE', 'writer stream_heads(hash):UPDATE', 'writer stream_heads(seq):UPDATE']);
    // Every privilege held was printed.
    expect(printed.some((l) => l.includes(`GRANT UPDATE (next_pos) ON ${schema}.ledger_head TO ${writer};`))).toBe(true);
    expect(printed.some((l) => l.includes(`GRANT SELECT ON ${schema}.meta`) && l.includes(`TO ${writer}, ${auditor};`))).toBe(true);
    expect(
      printed.some((l) =>
        l.includes(`GRANT INSERT ON ${schema}.events, ${schema}.stream_heads, ${schema}.tree_nodes, ${schema}.checkpoints, ${schema}.artifacts, ${schema}.artifact_chunks TO ${writer};`),
      ),
    ).toBe(true);
  });

  it('lets a login in the writer role append, store a screenshot and seal through the driver, and refuses it every UPDATE, DELETE and TRUNCATE of stored rows, with or without triggers [R-APPEND-ONLY]', async () => {
    const { schema, keyFile, writer } = await initWithRoles();
    const l = await openLedger(asUser(`${writer}_login`, schema), { create: false, keyFile });
    try {
      const receipts = await l.append([note('s', 'one'), note('s', 'two'), note('t', 'three')]);
      expect(receipts.map((r) => r.pos)).toEqual([0, 1, 2]);
      const ref = await l.putArtifact(PNG_BYTES, 'image/png', 'before');
      await l.append([{ ...note('s', 'with a screenshot'), artifacts: [ref] }]);
      const cp = await l.seal();
      expect(cp?.size).toBe(4);
      expect((await verifyLedger(l)).ok).toBe(true);
    } finally {
      await l.close();
    }
    const refused = await attempts(writer, schema, [
      `UPDATE events SET data = '{"text":"forged"}' WHERE pos = 0`,
      'DELETE FROM events WHERE pos = 3',
      'TRUNCATE events',
      `UPDATE checkpoints SET note = 'x'`,
      'DELETE FROM checkpoints',
      'DELETE FROM tree_nodes',
      'TRUNCATE tree_nodes',
      `UPDATE public_keys SET name = 'x'`,
      `INSERT INTO public_keys (vkey, name, added_at) VALUES ('k', 'n', 't')`,
      `UPDATE artifacts SET mime = 'x'`,
      'DELETE FROM artifacts',
      `UPDATE meta SET value = 'x'`,
      'DELETE FROM stream_heads',
      'ALTER TABLE events DISABLE TRIGGER ALL',
      'ALTER TABLE events DISABLE TRIGGER events_no_change',
      'DROP TRIGGER events_no_change ON events',
      'SET session_replication_role = replica',
    ]);
    // 42501 insufficient_privilege: every one is refused for want of privilege, before any trigger runs.
    for (const [sql, code] of Object.entries(refused)) expect(code, sql).toBe('42501');
    // Nothing changed: the ledger still verifies, as the superuser who owns it sees it.
    const again = await openLedger(`${PG_URL}?schema=${schema}`, { create: false, readonly: true, keyFile });
    try {
      const report = await verifyLedger(again);
      expect(report.ok).toBe(true);
      expect(report.events).toBe(4);
    } finally {
      await again.close();
    }
  });

  it('lets a login in the auditor role query and verify read-only, and refuses it any write', async () => {
    const { schema, keyFile, auditor } = await initWithRoles();
    const w = await openLedger(`${PG_URL}?schema=${schema}`, { create: false, keyFile });
    try {
      await w.append([note('s', 'one'), note('s', 'two')]);
      await w.seal();
    } finally {
      await w.close();
    }
    const url = asUser(`${auditor}_login`, schema);
    const r = await openLedger(url, { create: false, readonly: true, keyFile });
    try {
      expect((await r.query({ stream: 's' })).events).toHaveLength(2);
      const report = await verifyLedger(r);
      expect(report.ok).toBe(true);
      expect(report.checkpoints).toBe(1);
    } finally {
      await r.close();
    }
    // witness verify as the auditor, as an auditor's host runs it.
    const v = await runBin(['verify', '--store', url], { env: { WITNESS_SIGNING_KEY_FILE: keyFile } });
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toContain('is intact: 2 events');
    // Even opened for writing, the driver's append is refused for want of privilege, in one sentence.
    const rw = await openLedger(url, { create: false, keyFile: path.join(dir, 'no-such.key') });
    try {
      await expect(rw.append([note('s', 'three')])).rejects.toMatchObject({ code: 'store_readonly' });
      await rw.append([note('s', 'three')]).catch((e: Error) => oneSentence(e.message));
    } finally {
      await rw.close();
    }
    const refused = await attempts(auditor, schema, [
      `INSERT INTO events (pos, id, stream, seq, ts, kind, agent, header, hash) VALUES (2, 'x', 's', 2, 't', 'note', 'a', '{}', '\\x00')`,
      `INSERT INTO artifacts (sha256, mime, size, bytes, created_at) VALUES ('a', 'b', 1, '\\x00', 't')`,
      `INSERT INTO checkpoints (id, size, root, note, ts, frontier, consistency) VALUES (9, 1, '\\x00', 'n', 't', 'f', '[]')`,
      'UPDATE ledger_head SET next_pos = 0',
      `UPDATE events SET kind = 'x'`,
      'DELETE FROM events',
    ]);
    for (const [sql, code] of Object.entries(refused)) expect(code, sql).toBe('42501');
  });

  it('refuses to hand the writer grants to an existing superuser role, in one sentence', async () => {
    const tag = randomBytes(4).toString('hex');
    const schema = `wt_roles_${tag}`;
    schemas.push(schema);
    const url = `${PG_URL}?schema=${schema}`;
    const r = await runBin(['init', '--store', url, '--roles', '--writer-role', 'postgres', '--auditor-role', `wt_auditor_${tag}`, '--retention-role', `wt_retention_${tag}`], {
      env: { WITNESS_SIGNING_KEY_FILE: path.join(dir, `${schema}.key`) },
    });
    expect(r.code).toBe(1);
    expect(oneSentence(r.stderr)).toMatch(/role postgres already exists and is a superuser/);
    // Nothing was granted or created for the auditor: the roles step is one transaction.
    const found = await superuser(async (c) => (await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [`wt_auditor_${tag}`])).rowCount);
    expect(found).toBe(0);
  });
});
