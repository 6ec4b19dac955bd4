import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { openLedger, parsePostgresUrl, type Ledger } from '../../src/store/index.js';
import { tempDir } from '../helpers/tmp.js';
import type { DriverUnderTest } from './contract/driver.js';
import { postgresEdit } from './postgres-edit-hook.js';

/**
 * The PostgreSQL server the contract runs against: this machine's cluster (trust auth, database
 * `test`), or WITNESS_TEST_PG_URL. Each open() is a fresh schema with a random name, dropped after
 * the run; the signing key and the sealer's record live in a temporary directory, as they would
 * live on the sealer's host.
 */
export const PG_URL = process.env['WITNESS_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

const START_HINT = 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start';

/** Fails loudly, in one sentence, when the server is down: the contract is never skipped silently. */
export async function requirePostgres(): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
  } catch (e) {
    throw new Error(`PostgreSQL is not reachable at ${PG_URL} (${(e as Error).message}); start it with \`${START_HINT}\` and run the tests again.`, { cause: e });
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Drops `schemas` (a test run's own) with everything in them. */
export async function dropSchemas(schemas: readonly string[]): Promise<void> {
  if (schemas.length === 0) return;
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
  } finally {
    await c.end();
  }
}

/** Runs `fn` on a connection of the superuser whose search_path is `schema`, below the driver, as an attacker with the server's own rights would. */
export async function superuser<T>(schema: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** A schema of a test file's own: its name, the store URL naming it, and where its signing key lives. */
export interface TestSchema {
  schema: string;
  url: string;
  keyFile: string;
}

export interface TestSchemas {
  /** The temporary directory the key files are in. */
  dir: string;
  /** A new schema name `<prefix>[_<part>]_<pid>_<n>` (not created), dropped after the file's tests. */
  schema(part?: string): TestSchema;
  /** A fresh ledger in a new schema. */
  fresh(): Promise<TestSchema & { l: Ledger }>;
}

/**
 * For a test file's own tests of the PostgreSQL driver (beyond the contract, which uses
 * postgresDriver): requires the server before the file's tests, and drops every schema it named
 * after them.
 */
export function testSchemas(prefix: string): TestSchemas {
  const dir = tempDir(`witness-${prefix}-`);
  const schemas: string[] = [];
  let n = 0;
  beforeAll(requirePostgres);
  afterAll(() => dropSchemas(schemas));
  const schema = (part?: string): TestSchema => {
    const name = `${prefix}${part === undefined ? '' : `_${part}`}_${process.pid}_${n++}`;
    schemas.push(name);
    return { schema: name, url: `${PG_URL}?schema=${name}`, keyFile: path.join(dir, `${name}.key`) };
  };
  return {
    dir,
    schema,
    fresh: async () => {
      const s = schema();
      return { ...s, l: await openLedger(s.url, { keyFile: s.keyFile }) };
    },
  };
}

export function postgresDriver(name = 'postgres'): DriverUnderTest {
  const dir = tempDir('witness-pg-contract-');
  const schemas: string[] = [];
  const keyFile = (l: Ledger) => path.join(dir, `${parsePostgresUrl(l.info.location).schema}.key`);
  beforeAll(requirePostgres);
  afterAll(() => dropSchemas(schemas));
  const urlOf = (schema: string) => `${PG_URL}?schema=${schema}`;
  const newSchema = () => {
    const schema = `wt_${randomBytes(6).toString('hex')}`;
    schemas.push(schema);
    return schema;
  };
  return {
    name,
    open: async () => {
      const schema = newSchema();
      return openLedger(urlOf(schema), { keyFile: path.join(dir, `${schema}.key`) });
    },
    openAgain: async (l, options = {}) => openLedger(l.info.location, { create: false, readonly: options.readonly ?? false, keyFile: keyFile(l) }),
    readonly: true,
    // A second process finds the key by the environment, as a sealer on another host would.
    childStore: (l) => ({ url: l.info.location, env: { WITNESS_SIGNING_KEY_FILE: keyFile(l) } }),
    // As an operator copies a PostgreSQL ledger: pg_dump of its schema restored under another
    // name, with the key file and the sealer's record copied beside it.
    copyClosed: async (l) => {
      const from = parsePostgresUrl(l.info.location).schema;
      const to = newSchema();
      const dump = execFileSync('pg_dump', ['--no-owner', '--schema', from, PG_URL], { encoding: 'utf8', maxBuffer: 1 << 28 });
      execFileSync('psql', ['--quiet', '--set', 'ON_ERROR_STOP=1', PG_URL], { input: dump.replaceAll(from, to), stdio: ['pipe', 'ignore', 'pipe'] });
      for (const ext of ['key', 'pub', 'sealed']) {
        const file = path.join(dir, `${from}.${ext}`);
        if (fs.existsSync(file)) fs.copyFileSync(file, path.join(dir, `${to}.${ext}`));
      }
      return openLedger(urlOf(to), { create: false, keyFile: path.join(dir, `${to}.key`) });
    },
    edit: postgresEdit,
  };
}
