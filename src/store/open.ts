import type { Ledger } from './ledger.js';
import { SqliteLedger, type SqliteLedgerOptions } from './sqlite/ledger.js';
import { sqlitePath } from './url.js';

export type OpenLedgerOptions = Omit<SqliteLedgerOptions, 'path'>;

/**
 * The only way src/ opens a ledger: the URL picks the driver (`sqlite:` today, `postgres:` next),
 * and callers see the `Ledger` interface alone, so a second driver needs no change outside store.
 * SQLite opens synchronously inside; the promise is the shape a pooled driver needs.
 */
export async function openLedger(url: string, options: OpenLedgerOptions = {}): Promise<Ledger> {
  return SqliteLedger.open({ ...options, path: sqlitePath(url) });
}
