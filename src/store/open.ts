import type { Ledger } from './ledger.js';
import { SqliteLedger, type SqliteLedgerOptions } from './sqlite/ledger.js';
import { sqlitePath } from './url.js';

export type OpenLedgerOptions = Omit<SqliteLedgerOptions, 'path'>;

export async function openLedger(url: string, options: OpenLedgerOptions = {}): Promise<Ledger & { canSeal: boolean }> {
  return SqliteLedger.open({ ...options, path: sqlitePath(url) });
}
