import type { Ledger } from './ledger.js';
import type { PostgresLedgerOptions } from './postgres/ledger.js';
import { SqliteLedger, type SqliteLedgerOptions } from './sqlite/ledger.js';
import { parseStoreUrl } from './url.js';

/**
 * Options for either driver; each reads the ones that concern it (`keyFile` is PostgreSQL's,
 * `durability` SQLite's).
 */
export type OpenLedgerOptions = Omit<SqliteLedgerOptions, 'path'> & Omit<PostgresLedgerOptions, 'url'>;

/**
 * The only way src/ opens a ledger: the URL picks the driver (`sqlite:` or `postgres://`), and
 * callers see the `Ledger` interface alone. The PostgreSQL driver, and node-postgres with it, is
 * imported only when a `postgres://` URL is opened, so SQLite users never load either.
 */
export async function openLedger(url: string, options: OpenLedgerOptions = {}): Promise<Ledger> {
  const loc = parseStoreUrl(url);
  if (loc.driver === 'postgres') {
    const { PostgresLedger } = await import('./postgres/ledger.js');
    const { durability: _durability, ...rest } = options;
    return PostgresLedger.open({ ...rest, url: loc.url });
  }
  return SqliteLedger.open({ ...options, path: loc.path });
}
