import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { leafRanges } from '../../src/core/index.js';
import { UNPURGEABLE_KINDS, createPostgresRoles, eraseSubject, openLedger, runRetention, setRetentionRule, verifyLedger, type AppendRequest, type Ledger } from '../../src/store/index.js';
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

  it("refuses a login in the retention role the sealer's tables: a fake checkpoint (then a forged record and witness_purge of an unsealed leaf) fails at its INSERT, and nothing is erased", async () => {
    const s = await setup();
    const before = await payloads(s.url, s.keyFile);
    const sqlAs = async (login: string, statements: string[]): Promise<(Error & { code?: string }) | undefined> => {
      const c = new pg.Client({ connectionString: asUser(login, s.schema), options: `-c search_path=${s.schema}` });
      await c.connect();
      try {
        await c.query('BEGIN');
        for (const q of statements) await c.query(q);
        await c.query('COMMIT');
        return undefined;
      } catch (e) {
        await c.query('ROLLBACK').catch(() => undefined);
        return e as Error & { code?: string };
      } finally {
        await c.end();
      }
    };
    const data = JSON.stringify({ policy: 'forged', count: 1, leaves: leafRanges([s.unsealed]) });
    const attack = [
      `INSERT INTO checkpoints (id, size, root, note, ts, frontier, consistency) SELECT max(id) + 1, 1000000, '\\x00', 'x', 'x', '[]', '[]' FROM checkpoints`,
      `INSERT INTO events (pos, id, stream, seq, ts, kind, agent, header, data, salt, hash)
       SELECT max(pos) + 1, 'forged-r4', 'forged-r4', 0, '2026-01-01T00:00:00.000Z', 'retention.purge', 'witness-governance', '{}', '${data}', '\\x00', '\\x00' FROM events`,
      `SELECT witness_purge(ARRAY[${s.unsealed}]::bigint[])`,
    ];
    const refused = await sqlAs(`${s.retention}_login`, attack);
    expect(refused?.code, refused?.message).toBe('42501');
    expect(refused?.message).toMatch(/permission denied for table checkpoints/);
    const nodes = await sqlAs(`${s.retention}_login`, [`INSERT INTO tree_nodes (level, idx, hash) VALUES (40, 0, '\\x00')`]);
    expect(nodes?.code, nodes?.message).toBe('42501');
    expect(await payloads(s.url, s.keyFile)).toEqual(before);
    // Through the driver the retention login holds the key and still may not seal: it says whose job that is.
    const r = await openLedger(asUser(`${s.retention}_login`, s.schema), { create: false, keyFile: s.keyFile });
    try {
      expect(r.canSeal).toBe(false);
      const sealing = r.seal();
      await expect(sealing).rejects.toMatchObject({ code: 'forbidden' });
      const message = await sealing.then(
        () => '',
        (e: Error) => e.message,
      );
      expect(oneSentence(message)).toMatch(new RegExp(`may not seal .*run \`witness seal\` as a login in the writer role`));
      expect((await r.latestCheckpoint())?.size).toBe(s.unsealed);
    } finally {
      await r.close();
    }
    // The writer, whose job sealing is, still seals.
    const w = await openLedger(asUser(`${s.writer}_login`, s.schema), { create: false, keyFile: s.keyFile });
    try {
      expect(w.canSeal).toBe(true);
      expect((await w.seal())?.size).toBe(before.length);
    } finally {
      await w.close();
    }
  });

  it('refuses a purge under a newest checkpoint larger than the ledger (one a colluding writer or the owner inserted), in the function and through the driver', async () => {
    const s = await setup();
    const before = await payloads(s.url, s.keyFile);
    await superuser(s.schema, (c) => c.query(`INSERT INTO checkpoints (id, size, root, note, ts, frontier, consistency) SELECT max(id) + 1, 1000000, '\\x00', 'x', 'x', '[]', '[]' FROM checkpoints`));
    const r = await forgedPurge(`${s.retention}_login`, s.schema, [s.unsealed], true);
    expect(r).toHaveProperty('error');
    const { error } = r as { error: Error & { code?: string } };
    expect(error.code, error.message).toBe('WA004');
    // Its own record is in the ledger by then: before.length + 1 leaves.
    expect(error.message).toMatch(new RegExp(`newest checkpoint claims 1000000 leaves but the ledger holds ${before.length + 1}`));
    const translated = translatePgError(error, s.url);
    expect(translated.code).toBe('store_corrupt');
    expect(oneSentence(translated.message)).toMatch(/run `witness verify`/);
    const l = await openLedger(asUser(`${s.retention}_login`, s.schema), { create: false, keyFile: s.keyFile });
    try {
      const refused = l.purgePayloads({ positions: [s.unsealed], record: record([s.unsealed]) });
      await expect(refused).rejects.toMatchObject({ code: 'store_corrupt' });
      // A sealed leaf is refused too: nothing is erased while the checkpoints lie about the ledger.
      await expect(l.purgePayloads({ positions: [s.sealedNote], record: record([s.sealedNote]) })).rejects.toMatchObject({ code: 'store_corrupt' });
    } finally {
      await l.close();
    }
    expect(await payloads(s.url, s.keyFile)).toEqual(before);
  });

  it('lets a login in the retention role run a genuine retention purge and an erasure through the driver after a writer sealed, skipping or refusing what is unsealed, and it verifies', async () => {
    const s = await setup();
    const open = (login: string): Promise<Ledger> => openLedger(asUser(login, s.schema), { create: false, keyFile: s.keyFile });
    const later = new Date(Date.now() + 365 * 86_400_000);
    // A handle's size is what it saw at its open (and appended since), so each step opens its own, as each CLI run does.
    const as = async <T>(login: string, fn: (l: Ledger) => Promise<T>): Promise<T> => {
      const l = await open(login);
      try {
        return await fn(l);
      } finally {
        await l.close();
      }
    };
    const [writer, retention] = [`${s.writer}_login`, `${s.retention}_login`];
    const seal = () => as(writer, (w) => w.seal());
    // Before the writer seals, the note after the first seal is kept, not sealed by the retention host.
    await as(retention, async (r) => {
      expect(await runRetention(r, who, { now: later })).toMatchObject({ purged: 3, policies: [{ unsealed: 1 }] });
      expect((await r.latestCheckpoint())?.size).toBe(s.unsealed);
    });
    await seal();
    expect(await as(retention, (r) => runRetention(r, who, { now: later }))).toMatchObject({ purged: 1 });
    // An erasure with an unsealed event of the subject is refused, saying to seal as the writer first.
    await as(writer, async (w) => {
      await w.append([note('subj', 'Ann called', { subject: 'cust-7' })]);
      await w.seal();
      await w.append([note('subj', 'Ann called again', { subject: 'cust-7' })]);
    });
    const refused = as(retention, (r) => eraseSubject(r, { subject: 'cust-7', reason: 'DSR-7' }, who));
    await expect(refused).rejects.toMatchObject({ code: 'conflict' });
    const message = await refused.then(
      () => '',
      (e: Error) => e.message,
    );
    expect(oneSentence(message)).toMatch(/not in a signed checkpoint yet.*run `witness seal` as the writer/);
    await seal();
    expect(await as(retention, (r) => eraseSubject(r, { subject: 'cust-7', reason: 'DSR-7' }, who))).toMatchObject({ purged: 2, sealedFirst: false });
    await seal();
    const v = await as(retention, (r) => verifyLedger(r));
    expect(v.failures).toEqual([]);
    expect(v.ok).toBe(true);
    expect(v.purged).toMatchObject({ payloads: 6 });
    expect((await payloads(s.url, s.keyFile))[s.sealedNote]).toBeNull();
  });

  it('pins search_path on every function the schema creates, on a new ledger and on one migrated from version 4', async () => {
    const pinned = (schema: string) =>
      superuser('public', async (c) =>
        (await c.query<{ proname: string; proconfig: string[] | null }>('SELECT proname, proconfig FROM pg_proc WHERE pronamespace = $1::regnamespace ORDER BY proname', [schema])).rows.map((r) => [
          r.proname,
          r.proconfig,
        ]),
      );
    const { schema, url, keyFile } = newSchema('pin');
    const l = await openLedger(url, { keyFile });
    await l.append([note('pin', 'hello')]);
    await l.close();
    const expected = ['witness_append_only', 'witness_events_guard', 'witness_next_position', 'witness_purge'].map((f) => [f, ['search_path=pg_catalog, pg_temp']]);
    expect(await pinned(schema)).toEqual(expected);
    const old = newSchema('pinv4');
    await superuser('public', async (c) => {
      await c.query('BEGIN');
      await createSchemaObjects(c, old.schema, { id: 'pin-v4', origin: 'test/witness/pin-v4' }, {}, 4);
      await c.query('COMMIT');
    });
    expect((await pinned(old.schema)).filter(([, config]) => config === null).map(([f]) => f)).toEqual(['witness_append_only', 'witness_events_guard', 'witness_next_position']);
    await superuser('public', (c) => migrateSchema(c, old.schema, old.url));
    expect(await pinned(old.schema)).toEqual(expected);
    // The pinned guards still guard: an append at the wrong position and an UPDATE are refused.
    const m = await openLedger(old.url, { keyFile: old.keyFile });
    try {
      await m.append([note('pin', 'after the migration')]);
    } finally {
      await m.close();
    }
    const codes = await superuser(old.schema, async (c) => {
      const out: Array<string | undefined> = [];
      for (const q of [
        `INSERT INTO events (pos, id, stream, seq, ts, kind, agent, header, data, salt, hash) VALUES (7, 'x', 'x', 0, 't', 'note', 'a', '{}', '{}', '\\x00', '\\x00')`,
        `UPDATE events SET data = NULL`,
        `TRUNCATE checkpoints`,
      ]) {
        out.push(
          await c.query(q).then(
            () => undefined,
            (e: { code?: string }) => e.code,
          ),
        );
      }
      return out;
    });
    expect(codes).toEqual(['WA002', 'WA001', 'WA001']);
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
