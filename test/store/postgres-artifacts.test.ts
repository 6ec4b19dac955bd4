import { createHash, randomBytes } from 'node:crypto';
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { v7 as uuidv7 } from 'uuid';
import { createPostgresRoles, openLedger, verifyLedger } from '../../src/store/index.js';
import { ARTIFACT_CHUNK_BYTES, PG_SCHEMA_VERSION, createSchemaObjects, migrateSchema } from '../../src/store/postgres/schema.js';
import { killMidArtifact } from './contract/artifacts.js';
import { event, note } from './contract/fixtures.js';
import { PG_URL, superuser, testSchemas } from './postgres-driver.js';

/**
 * The PostgreSQL driver's artifacts beyond the shared contract (test/store/contract/artifacts.ts):
 * where large ones go (chunk rows written in the artifact's one transaction), that streaming holds
 * no more than a few chunks in memory, that the chunk table is as append-only as the rest (also
 * under session_replication_role = replica) and covered by the roles, and schema version 1 → 2.
 */
const { schema: newSchema, fresh } = testSchemas('wt_pgart');
const MiB = 1 << 20;

/** `total` pseudo-random bytes made as they are pulled, so the test itself never holds them. */
async function* generated(total: number, piece: number, hash: ReturnType<typeof createHash>): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < total; at += piece) {
    const b = randomBytes(Math.min(piece, total - at));
    hash.update(b);
    yield b;
  }
}

describe('PostgreSQL artifacts', () => {
  it('keeps memory bounded while a 64 MiB artifact streams in and out: growth stays far below its size', async () => {
    const { l } = await fresh();
    try {
      const size = 64 * MiB;
      // What the process still holds after a full collection: garbage from chunks already passed on
      // does not count, a buffer kept for the whole artifact would.
      v8.setFlagsFromString('--expose-gc');
      const gc = vm.runInNewContext('gc') as () => void;
      const held = async () => {
        // Twice, a turn apart: array buffers' memory is released by a sweeper after the collection.
        gc();
        await new Promise(setImmediate);
        gc();
        const m = process.memoryUsage();
        return m.heapUsed + m.arrayBuffers;
      };
      const base = await held();
      let peak = 0;
      let since = 0;
      const trace: number[] = [];
      // Every 4 MiB: each sample is two full collections, which is what this test spends its time on.
      const sample = async (bytes: number) => {
        since += bytes;
        if (since >= 4 * MiB) {
          since = 0;
          const h = (await held()) - base;
          trace.push(Math.round(h / MiB));
          peak = Math.max(peak, h);
        }
      };
      const written = createHash('sha256');
      async function* sampled(): AsyncGenerator<Uint8Array> {
        for await (const b of generated(size, 256 * 1024, written)) {
          await sample(b.length);
          yield b;
        }
      }
      const ref = await l.putArtifactStream(sampled(), 'video/mp4');
      expect(ref.bytes).toBe(size);
      expect(ref.sha256).toBe(written.digest('hex'));
      const writePeak = peak;
      peak = 0;
      const read = createHash('sha256');
      let got = 0;
      for await (const piece of (await l.readArtifactStream(ref.sha256))!) {
        read.update(piece as Buffer);
        got += (piece as Buffer).length;
        await sample((piece as Buffer).length);
      }
      expect(got).toBe(size);
      expect(read.digest('hex')).toBe(ref.sha256);
      // A few chunks in flight (the source's piece, the chunk being filled, one being sent or read):
      // measured ~4 MiB writing and ~1.3 MiB reading; whole, the artifact would be 64.
      expect(writePeak, `held while writing, MiB every 4 MiB: ${trace.join(' ')}`).toBeLessThan(size / 4);
      expect(peak, `held while reading, MiB: ${trace.join(' ')}`).toBeLessThan(size / 4);
    } finally {
      await l.close();
    }
  }, 60_000);

  it('writes a large artifact as 1 MiB chunk rows under its row, a small one in its row, and a failed one not at all', async () => {
    const { l, schema } = await fresh();
    try {
      const big = randomBytes(5 * MiB + 3);
      const a = await l.putArtifactStream(
        (async function* () {
          for (let at = 0; at < big.length; at += 100_003) yield big.subarray(at, at + 100_003);
        })(),
        'video/mp4',
      );
      const small = await l.putArtifactStream(
        (async function* () {
          yield Buffer.from('tiny');
        })(),
        'text/plain',
      );
      const failed = l.putArtifactStream(
        (async function* () {
          yield randomBytes(3 * MiB);
          throw new Error('source gone');
        })(),
        'video/mp4',
      );
      await expect(failed).rejects.toThrow('source gone');
      const rows = await superuser(schema, async (c) => ({
        artifacts: (await c.query('SELECT sha256, size::int AS size, bytes IS NULL AS chunked, chunk_size FROM artifacts ORDER BY size')).rows,
        chunks: (await c.query<{ upload: string; n: number; len: number }>('SELECT upload, n, length(bytes) AS len FROM artifact_chunks ORDER BY n')).rows,
        upload: (await c.query<{ upload: string }>('SELECT upload FROM artifacts WHERE sha256 = $1', [a.sha256])).rows[0]!.upload,
      }));
      expect(rows.artifacts).toEqual([
        { sha256: small.sha256, size: 4, chunked: false, chunk_size: null },
        { sha256: a.sha256, size: big.length, chunked: true, chunk_size: ARTIFACT_CHUNK_BYTES },
      ]);
      // Six chunks of the one artifact, nothing left of the failed one (rolled back with its transaction).
      expect(rows.chunks.map((c) => [c.upload, c.n, c.len])).toEqual([0, 1, 2, 3, 4, 5].map((n) => [rows.upload, n, n < 5 ? MiB : 3]));
    } finally {
      await l.close();
    }
  });

  it('leaves no chunk row behind when the writing process is killed with SIGKILL midway: the server rolls its transaction back', async () => {
    const { l, schema, url, keyFile } = await fresh();
    try {
      await killMidArtifact(url, { WITNESS_SIGNING_KEY_FILE: keyFile }, 3);
      const settled = await superuser(schema, async (c) => {
        // Until the killed client's backend has gone (and its transaction with it), and its statistics are in.
        for (let i = 0; i < 100; i++) {
          const open = (await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' AND query LIKE '%artifact_chunks%'`)).rows[0]!.n;
          const tried = (await c.query<{ n: number }>(`SELECT coalesce(sum(n_tup_ins), 0)::int AS n FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'artifact_chunks'`, [schema])).rows[0]!
            .n;
          if (open === 0 && tried >= 3) return { tried, rows: (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM artifact_chunks')).rows[0]!.n };
          await new Promise((r) => setTimeout(r, 100));
        }
        throw new Error('the killed writer never wrote three chunks, or its backend never went');
      });
      // It had inserted chunks (three or more: 3 MiB in), and none of them remain.
      expect(settled.tried).toBeGreaterThanOrEqual(3);
      expect(settled.rows).toBe(0);
      expect((await l.artifactInfo('0'.repeat(64))) === undefined && (await l.listArtifacts()[Symbol.asyncIterator]().next()).done).toBe(true);
    } finally {
      await l.close();
    }
  });

  it("refuses a superuser's UPDATE, DELETE and TRUNCATE of chunks, also under session_replication_role = replica, and verify reports a deleted chunk", async () => {
    const { l, schema } = await fresh();
    try {
      const ref = await l.putArtifact(randomBytes(2 * MiB + 1), 'video/mp4');
      const [r] = await l.append([event('s', 'capture', { role: 'video' }, { artifacts: [ref] })]);
      await l.seal();
      const attempts = ["UPDATE artifact_chunks SET bytes = '\\x00' WHERE n = 1", 'DELETE FROM artifact_chunks WHERE n = 2', 'TRUNCATE artifact_chunks'];
      for (const replica of [false, true]) {
        const refused = await superuser(schema, async (c) => {
          if (replica) await c.query('SET session_replication_role = replica');
          const out: string[] = [];
          for (const sql of attempts)
            await c.query(sql).then(
              () => out.push('ok'),
              (e: { code?: string }) => out.push(e.code ?? ''),
            );
          return out;
        });
        expect(refused, `replica ${replica}`).toEqual(attempts.map(() => 'WA001'));
      }
      expect((await verifyLedger(l)).failures).toEqual([]);
      // Past the triggers (dropped by the owner), a chunk taken out of the middle is found by verify.
      await superuser(schema, async (c) => {
        await c.query('ALTER TABLE artifact_chunks DISABLE TRIGGER USER');
        await c.query('DELETE FROM artifact_chunks WHERE n = 1');
      });
      const report = await verifyLedger(l);
      expect(report.failures.map((f) => [f.code, f.artifact, f.leaf])).toEqual([['artifact_mismatch', ref.sha256, r!.pos]]);
      // A ranged read over the gap fails as it reaches it, saying so, rather than serving other bytes.
      const drain = async () => {
        for await (const p of (await l.readArtifactStream(ref.sha256, { start: MiB - 5, end: MiB + 10 }))!) void p;
      };
      await expect(drain()).rejects.toMatchObject({ code: 'store_corrupt', message: expect.stringMatching(/chunk 1 is missing or short/) });
    } finally {
      await l.close();
    }
  });

  it('lets the writer role stream artifacts in and the auditor stream them out, and refuses both any change to a chunk', async () => {
    const { l, schema, url, keyFile } = await fresh();
    await l.close();
    const tag = randomBytes(4).toString('hex');
    const [writer, auditor] = [`wt_art_writer_${tag}`, `wt_art_auditor_${tag}`];
    await createPostgresRoles(url, { writer, auditor });
    await superuser(schema, async (c) => {
      await c.query(`CREATE ROLE ${writer}_login LOGIN IN ROLE ${writer}`);
      await c.query(`CREATE ROLE ${auditor}_login LOGIN IN ROLE ${auditor}`);
    });
    try {
      const as = (role: string) => `${PG_URL.replace('//postgres@', `//${role}_login@`)}?schema=${schema}`;
      const w = await openLedger(as(writer), { create: false, keyFile });
      const bytes = randomBytes(3 * MiB);
      let ref;
      try {
        ref = await w.putArtifactStream(
          (async function* () {
            yield bytes.subarray(0, MiB + 1);
            yield bytes.subarray(MiB + 1);
          })(),
          'video/mp4',
        );
      } finally {
        await w.close();
      }
      const r = await openLedger(as(auditor), { create: false, readonly: true, keyFile });
      try {
        const parts: Buffer[] = [];
        for await (const p of (await r.readArtifactStream(ref.sha256))!) parts.push(p as Buffer);
        expect(Buffer.concat(parts).equals(bytes)).toBe(true);
      } finally {
        await r.close();
      }
      for (const role of [writer, auditor]) {
        const codes = await superuser(schema, async (c) => {
          await c.query(`SET ROLE ${role}`);
          const out: string[] = [];
          for (const sql of [
            "UPDATE artifact_chunks SET bytes = '\\x00'",
            'DELETE FROM artifact_chunks',
            'TRUNCATE artifact_chunks',
            ...(role === auditor ? [`INSERT INTO artifact_chunks (upload, n, bytes) VALUES ('x', 0, '\\x00')`] : []),
          ]) {
            await c.query(sql).then(
              () => out.push('ok'),
              (e: { code?: string }) => out.push(e.code ?? ''),
            );
          }
          return out;
        });
        expect(new Set(codes), role).toEqual(new Set(['42501']));
      }
    } finally {
      await superuser(schema, async (c) => {
        for (const r of [`${writer}_login`, `${auditor}_login`, writer, auditor]) {
          await c.query(`DROP OWNED BY ${r}`).catch(() => undefined);
          await c.query(`DROP ROLE IF EXISTS ${r}`);
        }
      });
    }
  });

  it('refuses to open a version 1 ledger, saying to run witness init; migrated, its old artifacts stream and its grants carry over to the chunks', async () => {
    const { schema, url, keyFile } = newSchema('v1');
    const role = `wt_art_reader_${randomBytes(4).toString('hex')}`;
    // Version 1 as it was: its artifact of 3 MiB in one row.
    const old = randomBytes(3 * MiB + 5);
    const oldSha = createHash('sha256').update(old).digest('hex');
    await superuser('public', async (c) => {
      await c.query('BEGIN');
      const id = uuidv7();
      await createSchemaObjects(c, schema, { id, origin: `test/witness/${id}` }, {}, 1);
      await c.query(`INSERT INTO ${schema}.artifacts (sha256, mime, size, bytes, created_at) VALUES ($1, 'video/mp4', $2, $3, 'then')`, [oldSha, old.length, old]);
      await c.query(`CREATE ROLE ${role} NOLOGIN`);
      await c.query(`GRANT USAGE ON SCHEMA ${schema} TO ${role}`);
      await c.query(`GRANT SELECT ON ${schema}.artifacts TO ${role}`);
      await c.query('COMMIT');
    });
    try {
      await expect(openLedger(url, { keyFile })).rejects.toMatchObject({
        code: 'unsupported_version',
        message: expect.stringMatching(new RegExp(`version 1, older than this Witness needs \\(${PG_SCHEMA_VERSION}\\); run \`witness init --store .*\` as the schema's owner to migrate it\\.$`)),
      });
      await superuser('public', async (c) => expect(await migrateSchema(c, schema, url)).toEqual({ from: 1, to: PG_SCHEMA_VERSION }));
      const l = await openLedger(url, { keyFile });
      try {
        const parts: Buffer[] = [];
        for await (const p of (await l.readArtifactStream(oldSha))!) parts.push(p as Buffer);
        expect(Buffer.concat(parts).equals(old)).toBe(true);
        const ranged: Buffer[] = [];
        for await (const p of (await l.readArtifactStream(oldSha, { start: MiB - 1, end: 2 * MiB + 1 }))!) ranged.push(p as Buffer);
        expect(Buffer.concat(ranged).equals(old.subarray(MiB - 1, 2 * MiB + 2))).toBe(true);
        const fresh = await l.putArtifact(randomBytes(2 * MiB), 'video/mp4');
        await l.append([note('s', 'after the migration', { artifacts: [fresh, { sha256: oldSha, mime: 'video/mp4', bytes: old.length }] })]);
        await l.seal();
        expect((await verifyLedger(l)).failures).toEqual([]);
      } finally {
        await l.close();
      }
      const grants = await superuser(schema, async (c) =>
        (
          await c.query<{ p: string }>(`SELECT privilege_type AS p FROM information_schema.role_table_grants WHERE table_schema = $1 AND table_name = 'artifact_chunks' AND grantee = $2`, [
            schema,
            role,
          ])
        ).rows.map((r) => r.p),
      );
      expect(grants).toEqual(['SELECT']);
    } finally {
      await superuser('public', async (c) => {
        await c.query(`DROP OWNED BY ${role}`).catch(() => undefined);
        await c.query(`DROP ROLE IF EXISTS ${role}`);
      });
    }
  });

  it('makes a migrated ledger the very schema a new one is: columns, constraints and triggers (enabled ALWAYS)', async () => {
    const catalog = (schema: string) =>
      superuser(schema, async (c) => ({
        columns: (
          await c.query(`SELECT table_name, column_name, data_type, is_nullable, collation_name FROM information_schema.columns WHERE table_schema = $1 ORDER BY table_name, column_name`, [schema])
        ).rows,
        constraints: (
          await c.query(
            `SELECT cl.relname, pg_get_constraintdef(co.oid) AS def FROM pg_constraint co JOIN pg_class cl ON cl.oid = co.conrelid JOIN pg_namespace s ON s.oid = cl.relnamespace WHERE s.nspname = $1 ORDER BY 1, 2`,
            [schema],
          )
        ).rows,
        triggers: (
          await c.query(
            `SELECT cl.relname, t.tgname, t.tgenabled FROM pg_trigger t JOIN pg_class cl ON cl.oid = t.tgrelid JOIN pg_namespace s ON s.oid = cl.relnamespace WHERE s.nspname = $1 AND NOT t.tgisinternal ORDER BY 1, 2`,
            [schema],
          )
        ).rows,
        storage: (await c.query(`SELECT attstorage FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'bytes'`, [`${schema}.artifact_chunks`])).rows,
      }));
    const made = await fresh();
    await made.l.close();
    const { schema: old } = newSchema('old');
    await superuser('public', async (c) => {
      await c.query('BEGIN');
      const id = uuidv7();
      await createSchemaObjects(c, old, { id, origin: `test/witness/${id}` }, {}, 1);
      await c.query('COMMIT');
      await migrateSchema(c, old, old);
    });
    const [a, b] = [await catalog(made.schema), await catalog(old)];
    expect(b).toEqual(a);
    expect(a.triggers.filter((t: { relname: string }) => t.relname === 'artifact_chunks')).toEqual([
      { relname: 'artifact_chunks', tgname: 'artifact_chunks_no_change', tgenabled: 'A' },
      { relname: 'artifact_chunks', tgname: 'artifact_chunks_no_truncate', tgenabled: 'A' },
    ]);
    expect(a.storage).toEqual([{ attstorage: 'e' }]);
  });
});
