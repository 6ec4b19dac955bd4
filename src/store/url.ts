import fs from 'node:fs';
import path from 'node:path';
import { WitnessError } from '../core/index.js';

export type StoreLocation = { driver: 'sqlite'; path: string } | { driver: 'postgres'; url: string };

export const DEFAULT_STORE = 'sqlite:./witness.db';

/**
 * `sqlite:./witness.db`, `sqlite:/abs/path.db`, `sqlite:///abs/path.db`, a bare path, or
 * `postgres://…` (schemes in any case). A bare path whose first segment looks like a scheme
 * (`sqllite:./w.db`) is refused rather than silently created as a file of that name, unless that
 * segment exists (an existing `logs:2026/` directory) or is a drive letter (`C:\\`); write
 * `./name:with:colons.db` or `sqlite:name:with:colons.db` for a new one.
 */
export function parseStoreUrl(url: string): StoreLocation {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'postgres' || scheme === 'postgresql') {
    if (!/^[a-z]+:\/\//i.test(url)) throw new WitnessError('invalid_store_url', `The store "${url}" is not a PostgreSQL URL; write postgres://user@host/database.`);
    return { driver: 'postgres', url };
  }
  let p = url;
  if (scheme === 'sqlite') p = url.replace(/^sqlite:(\/\/)?/i, '');
  else if (scheme !== undefined && !/^[a-z]:[\\/]/i.test(url) && !fs.existsSync(url.split(/[\\/]/)[0]!)) {
    const asPath = /^[^:]*:\/\//.test(url) ? '' : `, or write ./${url} for a file name with a colon`;
    throw new WitnessError('invalid_store_url', `The store "${url}" starts with "${scheme}:", which is not a known scheme; use sqlite:<file> or postgres://…${asPath}.`);
  }
  if (p === '' || p === ':memory:') {
    throw new WitnessError('invalid_store_url', `The store "${url}" names no file; use sqlite:./witness.db or another file path.`);
  }
  return { driver: 'sqlite', path: path.resolve(p) };
}

/** The file of a SQLite store; a `postgres://` URL is refused here (openLedger routes it to its own driver). */
export function sqlitePath(url: string): string {
  const loc = parseStoreUrl(url);
  if (loc.driver !== 'sqlite') {
    throw new WitnessError(
      'invalid_store_url',
      `The store "${redactUrl(url)}" is a PostgreSQL URL, and this command handles SQLite files only for now; create a PostgreSQL ledger with "witness init --store postgres://…" (a recorder's first writable open also creates one).`,
    );
  }
  return loc.path;
}

/** A PostgreSQL ledger has no file to keep its signing key beside: this names the key's file (see postgres/open.ts). */
export const SIGNING_KEY_FILE_ENV = 'WITNESS_SIGNING_KEY_FILE';

/** The default PostgreSQL schema of a ledger when the URL names none (`?schema=`). */
export const DEFAULT_PG_SCHEMA = 'witness';

export interface PostgresLocation {
  /** What node-postgres connects with: the URL minus Witness's own parameters. */
  connectionString: string;
  /** The PostgreSQL schema that holds the ledger's tables. */
  schema: string;
  /** The URL without its password, for messages and `info.location`. */
  location: string;
}

/**
 * `postgres://user@host:port/db?schema=<name>`: `schema` is a Witness parameter, not a libpq one
 * (node-postgres would send it to the server as a setting), so it is taken out here. One database
 * can then hold many ledgers, one per schema. A schema name is a plain lowercase identifier, so it
 * can be spliced into DDL and trigger bodies without quoting surprises.
 */
export function parsePostgresUrl(url: string): PostgresLocation {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new WitnessError('invalid_store_url', `The store "${redactUrl(url)}" is not a valid PostgreSQL URL; write postgres://user@host:5432/database?schema=witness.`);
  }
  const given = u.searchParams.get('schema');
  const schema = given ?? DEFAULT_PG_SCHEMA;
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new WitnessError('invalid_store_url', `The schema "${schema}" in --store is not a plain lowercase name (letters, digits, _; at most 63); choose e.g. ?schema=witness.`);
  }
  u.searchParams.delete('schema');
  const connectionString = u.toString();
  const shown = new URL(u.toString());
  if (shown.password !== '') shown.password = '';
  shown.searchParams.set('schema', schema);
  return { connectionString, schema, location: shown.toString() };
}

/** A URL fit for a message: its password, if any, replaced. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)[^@/]*@/i, '$1***@');
}

/**
 * Files that live beside a SQLite ledger, never inside it. `sealed` is the last checkpoint the
 * signing key signed for this ledger (see src/store/seal-record.ts).
 */
export function sidecarPaths(dbPath: string): { key: string; pub: string; sealed: string; artifacts: string } {
  return { key: `${dbPath}.key`, pub: `${dbPath}.pub`, sealed: `${dbPath}.sealed`, artifacts: `${dbPath}.artifacts` };
}
