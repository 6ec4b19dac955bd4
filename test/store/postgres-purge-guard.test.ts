import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { leafRanges } from '../../src/core/index.js';
import { UNPURGEABLE_KINDS, createPostgresRoles, openLedger, runRetention, setRetentionRule, verifyLedger, type AppendRequest } from '../../src/store/index.js';
import { translatePgError } from '../../src/store/postgres/errors.js';
import { PG_SCHEMA_VERSION, PG_V5_UNPURGEABLE_KINDS, createSchemaObjects, migrateSchema } from '../../src/store/postgres/schema.js';
import { oneSentence, runBin } from '../helpers/ledger.js';
import { buildSealed, note, rawRows } from './contract/fixtures.js';
import { PG_URL, superuser, testSchemas } from './postgres-driver.js';

/**
 * The PostgreSQL retention purge's own guard (schema version 5): `witness_purge` may be called only
 * by the retention role (and the owner), never by the writer role that every recorder and gateway
 * host logs in as; and the function itself refuses what the driver refuses — a governance event,
 * a leaf no signed checkpoint covers yet, a position that holds no event — so a caller who writes
 * its own retention.purge record in SQL, below the driver, gets no further than the driver would.
 * Logins here are real LOGIN roles, members of the NOLOGIN roles `witness init --roles` makes.
 */
const { schema: newSchema } = testSchemas('wt_pguard');
const roles: string[] = [];

afterAll(async () => {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    for (const r of roles.reverse()) {
      await c.query(`DROP OWNED BY ${r}`).catch(() => undefined);
      await c.query(`DROP ROLE IF EXISTS ${r}`);
    }
  } finally {
    await c.end();
  }
});

const who = { actor: 'dpo@acme.example' };
const asUser = (user: string, schema: string) => `${PG_URL.replace('//postgres@', `//${user}@`)}?schema=${schema}`;

/** A retention.purge record listing exactly `positions`, as the retention run writes one. */
function record(positions: number[]): AppendRequest {
  return {
    stream: 'witness.retention',
    agent: { id: 'witness-governance' },
    kind: 'retention.purge',
    data: { policy: 'retention:kind=note:30d', before: '2026-01-01T00:00:00.000Z', count: positions.length, leaves: leafRanges(positions) },
  } as AppendRequest;
}

interface Setup {
  schema: string;
  url: string;
  keyFile: string;
  writer: string;
  retention: string;
  /** A sealed note, which a retention purge may take. */
  sealedNote: number;
  /** The config.change that recorded the retention rule (sealed): part of the record of governance. */
  governance: number;
  /** A note appended after the last seal. */
  unsealed: number;
}

/** A sealed ledger with a retention rule, an unsealed tail, and the writer, auditor and retention roles, each with a login member. */
async function setup(): Promise<Setup> {
  const { schema, url, keyFile } = newSchema();
  const tag = randomBytes(4).toString('hex');
  const writer = `wt_pg_writer_${tag}`;
  const auditor = `wt_pg_auditor_${tag}`;
  const retention = `wt_pg_retention_${tag}`;
  roles.push(writer, auditor, retention, `${writer}_login`, `${retention}_login`);
  const l = await openLedger(url, { keyFile });
  let out: Omit<Setup, 'schema' | 'url' | 'keyFile' | 'writer' | 'retention'>;
  try {
    const s = await buildSealed(l);
    const { receipt } = await setRetentionRule(l, { match: { kind: 'note' }, olderThan: '30d' }, who);
    await l.seal();
    const [fresh] = await l.append([note(s.c, 'after the seal')]);
    out = { sealedNote: s.pos(s.a, 3), governance: receipt.pos, unsealed: fresh!.pos };
  } finally {
    await l.close();
  }
  await createPostgresRoles(url, { writer, auditor, retention });
  await superuser(schema, async (c) => {
    await c.query(`CREATE ROLE ${writer}_login LOGIN IN ROLE ${writer}`);
    await c.query(`CREATE ROLE ${retention}_login LOGIN IN ROLE ${retention}`);
  });
  return { schema, url, keyFile, writer, retention, ...out };
}

/**
 * As a login of the caller's choosing, in SQL and in one transaction, what an attacker with that
 * login would do: append a retention.purge row of their own listing `positions` (at the next
 * position, which the INSERT guard demands, with made-up hashes: the function never reads them),
 * then call witness_purge on them. Rolled back unless `commit`. Returns what witness_purge returned,
 * or the error it raised.
 */
async function forgedPurge(login: string, schema: string, positions: number[], commit = false): Promise<{ erased: number } | { error: Error & { code?: string } }> {
  const c = new pg.Client({ connectionString: asUser(login, schema), options: `-c search_path=${schema}` });
  await c.connect();
  try {
    await c.query('BEGIN');
    const data = JSON.stringify({ policy: 'forged', count: positions.length, leaves: leafRanges(positions) });
    await c.query(
      `INSERT INTO events (pos, id, stream, seq, ts, kind, agent, header, data, salt, hash)
       SELECT coalesce(max(pos) + 1, 0), $1, $1, 0, '2026-01-01T00:00:00.000Z', 'retention.purge', 'witness-governance', '{}', $2, '\\x00', '\\x00' FROM events`,
      [`forged-${randomBytes(4).toString('hex')}`, data],
    );
    const erased = Number((await c.query<{ n: string }>('SELECT witness_purge($1::bigint[]) AS n', [positions])).rows[0]!.n);
    await c.query(commit ? 'COMMIT' : 'ROLLBACK');
    return { erased };
  } catch (e) {
    await c.query('ROLLBACK').catch(() => undefined);
    return { error: e as Error & { code?: string } };
  } finally {
    await c.end();
  }
}

async function payloads(url: string, keyFile: string): Promise<Array<string | null>> {
  const l = await openLedger(url, { create: false, readonly: true, keyFile });
  try {
    return (await rawRows(l)).map((r) => r.data);
  } finally {
    await l.close();
  }
}

describe('PostgreSQL witness_purge guard (schema version 5)', () => {
  it('refuses a login in the writer role the purge function, in SQL and through the driver, while it still appends and seals', async () => {
    const s = await setup();
    const before = await payloads(s.url, s.keyFile);
    // In SQL, as an attacker with a recorder host's login: a record of its own, then the function.
    for (const target of [s.governance, s.sealedNote]) {
      const r = await forgedPurge(`${s.writer}_login`, s.schema, [target], true);
      expect(r, `writer purging ${target}`).toMatchObject({ error: { code: '42501' } });
    }
    const w = await openLedger(asUser(`${s.writer}_login`, s.schema), { create: false, keyFile: s.keyFile });
    try {
      // Through the driver: refused in one sentence naming the role that may purge.
      const refused = w.purgePayloads({ positions: [s.sealedNote], record: record([s.sealedNote]) });
      await expect(refused).rejects.toMatchObject({ code: 'forbidden' });
      const message = await refused.then(
        () => '',
        (e: Error) => e.message,
      );
      expect(oneSentence(message)).toMatch(/may not purge payloads.*retention role/);
      // The writer's own work is untouched by the change.
      await w.append([note('writer-still-writes', 'hello')]);
      expect((await w.seal())?.size).toBe(before.length + 1);
      const v = await verifyLedger(w);
      expect(v.failures).toEqual([]);
      expect(v.purged?.payloads ?? 0).toBe(0);
    } finally {
      await w.close();
    }
    expect((await payloads(s.url, s.keyFile)).slice(0, before.length)).toEqual(before);
  });

  it('refuses the retention role a forged purge of a governance event, an unsealed leaf or an empty position, in the function itself, with a clear sentence', async () => {
    const s = await setup();
    const before = await payloads(s.url, s.keyFile);
    const cases: Array<[string, number[], RegExp]> = [
      ['governance', [s.governance], new RegExp(`Cannot purge leaf ${s.governance}: it is a config\\.change event, part of the record of governance, which is kept`)],
      ['unsealed', [s.unsealed], new RegExp(`Cannot purge leaf ${s.unsealed}: it is not in a signed checkpoint yet`)],
      ['beside a good one', [s.sealedNote, s.governance], /record of governance/],
      ['no event', [-1, s.sealedNote], /1 of the given positions hold no event/],
    ];
    for (const [what, positions, sentence] of cases) {
      const r = await forgedPurge(`${s.retention}_login`, s.schema, positions, true);
      expect(r, what).toHaveProperty('error');
      const { error } = r as { error: Error & { code?: string } };
      expect(error.code, `${what}: ${error.message}`).toBe('WA003');
      const translated = translatePgError(error, s.url);
      expect(translated.code, what).toBe('invalid_argument');
      expect(oneSentence(translated.message), what).toMatch(sentence);
    }
    expect(await payloads(s.url, s.keyFile)).toEqual(before);
  });

  it('lets a login in the retention role run a genuine retention purge through the driver, which verifies', async () => {
    const s = await setup();
    const r = await openLedger(asUser(`${s.retention}_login`, s.schema), { create: false, keyFile: s.keyFile });
    try {
      await r.seal();
      const run = await runRetention(r, who, { now: new Date(Date.now() + 365 * 86_400_000) });
      // Every note: a1, a3, c1 and the one after the first seal (sealed now).
      expect(run).toMatchObject({ purged: 4 });
      await r.seal();
      const v = await verifyLedger(r);
      expect(v.failures).toEqual([]);
      expect(v.ok).toBe(true);
      expect(v.purged).toMatchObject({ payloads: 4, records: [{ policy: 'retention:kind=note:30d', count: 4 }] });
    } finally {
      await r.close();
    }
    expect((await payloads(s.url, s.keyFile))[s.sealedNote]).toBeNull();
  });

  it('migrates a version 4 ledger to 5: the writer loses EXECUTE on witness_purge, the function gains its refusals, and init --roles grants the retention role', async () => {
    const { schema, url } = newSchema('v4');
    const tag = randomBytes(4).toString('hex');
    const writer = `wt_pg_v4writer_${tag}`;
    roles.push(writer);
    await superuser('public', async (c) => {
      await c.query('BEGIN');
      await createSchemaObjects(c, schema, { id: `v4-${tag}`, origin: `test/witness/v4-${tag}` }, {}, 4);
      // What version 4's `witness init --roles` granted the writer: INSERT on events and EXECUTE on the purge.
      await c.query(`CREATE ROLE ${writer} NOLOGIN`);
      await c.query(`GRANT USAGE ON SCHEMA ${schema} TO ${writer}`);
      await c.query(`GRANT INSERT ON ${schema}.events TO ${writer}`);
      await c.query(`GRANT EXECUTE ON FUNCTION ${schema}.witness_purge(bigint[]) TO ${writer}`);
      await c.query('COMMIT');
    });
    const canPurge = (role: string) =>
      superuser('public', async (c) => (await c.query<{ ok: boolean }>(`SELECT has_function_privilege($1, $2, 'EXECUTE') AS ok`, [role, `${schema}.witness_purge(bigint[])`])).rows[0]!.ok);
    expect(await canPurge(writer)).toBe(true);
    await expect(openLedger(url, { create: false, readonly: true })).rejects.toMatchObject({ code: 'unsupported_version' });
    await superuser('public', async (c) => expect(await migrateSchema(c, schema, url)).toEqual({ from: 4, to: PG_SCHEMA_VERSION }));
    expect(PG_SCHEMA_VERSION).toBe(5);
    // The kinds version 5 keeps are the driver's: a kind added there needs a migration of its own.
    expect([...PG_V5_UNPURGEABLE_KINDS].sort()).toEqual([...UNPURGEABLE_KINDS].sort());
    expect(await canPurge(writer)).toBe(false);
    expect(await canPurge('public')).toBe(false);
    // The function's refusals bind its owner too: its own record, at a leaf no checkpoint covers.
    const refused = await superuser(schema, async (c) => {
      await c.query('BEGIN');
      try {
        await c.query(
          `INSERT INTO events (pos, id, stream, seq, ts, kind, agent, header, data, salt, hash) VALUES (0, 'r', 'r', 0, 't', 'retention.purge', 'g', '{}', '{"leaves":[]}', '\\x00', '\\x00')`,
        );
        await c.query('SELECT witness_purge(ARRAY[0]::bigint[])');
        return undefined;
      } catch (e) {
        return (e as { code?: string }).code;
      } finally {
        await c.query('ROLLBACK');
      }
    });
    expect(refused).toBe('WA003');
    const retention = `wt_pg_v4retention_${tag}`;
    roles.push(retention, `wt_pg_v4auditor_${tag}`);
    const made = await createPostgresRoles(url, { writer, auditor: `wt_pg_v4auditor_${tag}`, retention });
    expect(made).toMatchObject({ writer, retention, created: [`wt_pg_v4auditor_${tag}`, retention] });
    expect(made.statements).toContain(`GRANT EXECUTE ON FUNCTION ${schema}.witness_purge(bigint[]) TO ${retention}`);
    expect(await canPurge(writer)).toBe(false);
    expect(await canPurge(retention)).toBe(true);
  });

  it('witness init migrates a version 4 ledger, saying who may purge now, and init --roles --retention-role prints the grant of the purge', async () => {
    const { schema, url, keyFile } = newSchema('v4cli');
    const tag = randomBytes(4).toString('hex');
    await superuser('public', async (c) => {
      await c.query('BEGIN');
      await createSchemaObjects(c, schema, { id: `v4cli-${tag}`, origin: `test/witness/v4cli-${tag}` }, {}, 4);
      await c.query('COMMIT');
    });
    const env = { WITNESS_SIGNING_KEY_FILE: keyFile };
    const migrated = await runBin(['init', '--store', url], { env });
    expect(migrated.stderr).toBe('');
    expect(migrated.code).toBe(0);
    expect(migrated.stdout).toContain(`Migrated ledger ${url} from schema version 4 to 5.`);
    expect(migrated.stdout).toMatch(/Only the schema's owner may purge payloads now: run `witness init --roles`/);
    const [writer, auditor, retention] = ['writer', 'auditor', 'retention'].map((r) => `wt_pg_cli${r}_${tag}`) as [string, string, string];
    roles.push(writer, auditor, retention);
    const r = await runBin(['init', '--store', url, '--roles', '--writer-role', writer, '--auditor-role', auditor, '--retention-role', retention], { env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Created role ${retention} (NOLOGIN)`);
    expect(r.stdout).toContain(`  GRANT EXECUTE ON FUNCTION ${schema}.witness_purge(bigint[]) TO ${retention};`);
    expect(r.stdout).toContain(`  REVOKE ALL ON FUNCTION ${schema}.witness_purge(bigint[]) FROM ${writer}, ${auditor};`);
    expect(r.stdout).toContain(`GRANT ${retention} TO retention_host;`);
    expect(r.stdout).not.toMatch(/Only the schema's owner may purge/);
  });

  it('refuses a retention role named like the writer or auditor, in one sentence', async () => {
    const { url } = newSchema('names');
    await expect(createPostgresRoles(url, { writer: 'wt_same', auditor: 'wt_aud', retention: 'wt_same' })).rejects.toMatchObject({
      code: 'invalid_argument',
      message: expect.stringMatching(/writer, auditor and retention roles must all differ/),
    });
  });
});
