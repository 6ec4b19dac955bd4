import { spawn } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { openLedger, parsePostgresUrl, verifyLedger } from '../../src/store/index.js';
import { note } from './contract/fixtures.js';
import { PG_SCHEMA_VERSION } from '../../src/store/postgres/schema.js';
import { PG_URL, superuser, testSchemas } from './postgres-driver.js';

/**
 * What the PostgreSQL driver owes beyond the shared contract (test/store/drivers.test.ts): the
 * URL's schema parameter, immutability that survives session_replication_role = replica, the
 * INSERT guard on positions, a newer schema refused, a server that is down reported in one
 * sentence.
 */
const { dir, fresh } = testSchemas('wt_pgtest');

describe('the PostgreSQL driver', () => {
  it('keeps the ledger in the schema the URL names, and says where in info.location without a password', async () => {
    const { l, schema } = await fresh();
    try {
      await l.append([note('s', 'one')]);
      expect(parsePostgresUrl(l.info.location).schema).toBe(schema);
      expect(l.info.location).not.toMatch(/:[^/@]*@.*:.*@/);
      const tables = await superuser(schema, async (c) =>
        (await c.query<{ t: string }>(`SELECT table_name AS t FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1`, [schema])).rows.map((r) => r.t),
      );
      expect(tables).toEqual(['artifact_chunks', 'artifacts', 'checkpoints', 'events', 'ledger_head', 'meta', 'public_keys', 'stream_heads', 'tree_nodes']);
    } finally {
      await l.close();
    }
    expect(parsePostgresUrl('postgres://u:secret@h:5432/db?schema=abc').location).toBe('postgres://u@h:5432/db?schema=abc');
    expect(() => parsePostgresUrl('postgres://h/db?schema=Robert"; DROP')).toThrow(expect.objectContaining({ code: 'invalid_store_url' }));
  });

  it("refuses a superuser's UPDATE, DELETE and TRUNCATE under session_replication_role = replica, which disables ordinary triggers", async () => {
    const { l, schema } = await fresh();
    try {
      await l.append([note('s', 'one'), note('s', 'two')]);
      await l.putArtifact(Buffer.from('bytes'), 'text/plain');
      await l.seal();
      const attempts = [
        `UPDATE events SET data = '{"text":"forged"}' WHERE pos = 0`,
        'DELETE FROM events WHERE pos = 1',
        'TRUNCATE events',
        'UPDATE checkpoints SET note = $$x$$',
        'DELETE FROM tree_nodes',
        'TRUNCATE public_keys',
        `UPDATE artifacts SET mime = 'x'`,
      ];
      const refused = await superuser(schema, async (c) => {
        await c.query('SET session_replication_role = replica');
        const out: string[] = [];
        for (const sql of attempts) {
          try {
            await c.query(sql);
          } catch (e) {
            out.push((e as { code?: string }).code ?? '');
          }
        }
        return out;
      });
      expect(refused).toEqual(attempts.map(() => 'WA001'));
      const report = await verifyLedger(l);
      expect(report.failures).toEqual([]);
    } finally {
      await l.close();
    }
  });

  it("refuses an INSERT at any position but the ledger's next one", async () => {
    const { l, schema } = await fresh();
    try {
      const [r] = await l.append([note('s', 'one')]);
      const codes = await superuser(schema, async (c) => {
        const out: string[] = [];
        for (const pos of [0, 5, -1]) {
          try {
            await c.query(`INSERT INTO events (pos, id, stream, seq, ts, kind, agent, header, hash) VALUES ($1, $2, 's', 9, 't', 'note', 'a', '{}', '\\x00')`, [pos, `x${pos}`]);
          } catch (e) {
            out.push((e as { code?: string }).code ?? '');
          }
        }
        try {
          // Two rows in one statement, the first at the right position and the second past a gap.
          await c.query(`INSERT INTO events (pos, id, stream, seq, ts, kind, agent, header, hash) SELECT p, 'y' || p, 's', 9 + p, 't', 'note', 'a', '{}', '\\x00' FROM unnest(ARRAY[1, 3]) AS p`);
        } catch (e) {
          out.push((e as { code?: string }).code ?? '');
        }
        return out;
      });
      // Position 0 is taken (the primary key refuses it first); 5 would leave a gap; -1 is below the start; 1 and 3 leave one between them.
      expect(codes).toEqual(['23505', 'WA002', 'WA002', 'WA002']);
      expect(r!.pos).toBe(0);
    } finally {
      await l.close();
    }
  });

  it("waits while another process holds the ledger's sealer lock, and seals as soon as that process is killed (its lock goes with its connection)", async () => {
    const { l } = await fresh();
    try {
      await l.append([note('s', 'one'), note('s', 'two')]);
      // A stand-in for a sealer mid-seal in another process: it holds the lock and never lets go.
      const holder = spawn(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `import pg from 'pg'; const c = new pg.Client(${JSON.stringify(PG_URL)}); await c.connect(); await c.query("SELECT pg_advisory_lock(hashtextextended($1, 0))", [${JSON.stringify(`witness-seal:${l.info.id}`)}]); console.log('LOCKED'); setInterval(() => {}, 1000);`,
        ],
        { cwd: path.join(import.meta.dirname, '..', '..'), stdio: ['ignore', 'pipe', 'inherit'] },
      );
      await new Promise<void>((resolve, reject) => {
        holder.stdout.on('data', (d: Buffer) => (String(d).includes('LOCKED') ? resolve() : undefined));
        holder.on('exit', () => reject(new Error('the lock holder exited early')));
      });
      let sealed = false;
      const sealing = l.seal().then((cp) => {
        sealed = true;
        return cp;
      });
      await new Promise((r) => setTimeout(r, 500));
      expect(sealed).toBe(false);
      const killedAt = Date.now();
      holder.kill('SIGKILL');
      const cp = await sealing;
      expect(cp).toMatchObject({ size: 2 });
      expect(Date.now() - killedAt).toBeLessThan(3000);
    } finally {
      await l.close();
    }
  });

  it('refuses, in one sentence, a schema written by a newer Witness', async () => {
    const { l, schema, url, keyFile } = await fresh();
    await l.close();
    await superuser(schema, (c) => c.query(`UPDATE meta SET value = '99' WHERE key = 'schema_version'`));
    await expect(openLedger(url, { keyFile })).rejects.toMatchObject({
      code: 'store_newer_schema',
      message: expect.stringMatching(new RegExp(`version 99, newer than this Witness understands \\(${PG_SCHEMA_VERSION}\\); upgrade Witness`)),
    });
  });

  it('says, in one sentence, that a ledger is missing rather than creating one when asked not to', async () => {
    await expect(openLedger(`${PG_URL}?schema=wt_never_created_${process.pid}`, { create: false, keyFile: path.join(dir, 'none.key') })).rejects.toMatchObject({
      code: 'not_found',
      message: expect.stringMatching(/witness init/),
    });
  });

  it('reports a server that is down as store_unavailable, saying what to do', async () => {
    const down = 'postgres://postgres@127.0.0.1:1/test?schema=w';
    await expect(openLedger(down, { keyFile: path.join(dir, 'down.key'), busyTimeoutMs: 1000 })).rejects.toMatchObject({
      code: 'store_unavailable',
      message: expect.stringMatching(/start the server/),
    });
  });

  it('refuses to append, seal or store an artifact on a read-only session, and the session itself refuses writes', async () => {
    const { l, url, keyFile } = await fresh();
    const reader = await openLedger(url, { readonly: true, create: false, keyFile });
    try {
      await l.append([note('s', 'one')]);
      await expect(reader.append([note('s', 'two')])).rejects.toMatchObject({ code: 'store_readonly' });
      // Below the driver's own check: the session is read-only, so even a raw write through its pool is refused.
      const pool = (reader as unknown as { pool: pg.Pool }).pool;
      await expect(pool.query('INSERT INTO meta (key, value) VALUES ($1, $2)', ['x', 'y'])).rejects.toMatchObject({ code: '25006' });
    } finally {
      await reader.close();
      await l.close();
    }
  });
});
