import { WitnessError } from '../core/index.js';
import type { Ledger } from './ledger.js';
import { SqliteLedger, type SqliteLedgerOptions } from './sqlite/ledger.js';
import { parseStoreUrl } from './url.js';

export type OpenLedgerOptions = Omit<SqliteLedgerOptions, 'path'>;

export async function openLedger(url: string, options: OpenLedgerOptions = {}): Promise<Ledger & { canSeal: boolean }> {
  const loc = parseStoreUrl(url);
  if (loc.driver === 'postgres') {
    throw new WitnessError('invalid_store_url', 'The PostgreSQL driver is not built yet; use a sqlite: store for now.');
  }
  return SqliteLedger.open({ ...options, path: loc.path });
}
