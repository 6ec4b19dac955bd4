import type { Ledger } from '../ledger.js';
import type { SqliteLedgerOptions } from './open.js';
import { SqlitePurge } from './purge.js';

export type { SqliteLedgerOptions } from './open.js';
export { toStored } from './query.js';

/**
 * The SQLite driver of the `Ledger` interface. Its parts live in files named for what they do,
 * each extending the one before (open → artifacts → append → query → seal → purge), so that the
 * PostgreSQL driver can mirror them file for file.
 */
export class SqliteLedger extends SqlitePurge implements Ledger {
  static open(options: SqliteLedgerOptions): SqliteLedger {
    return new SqliteLedger(options);
  }

  private constructor(options: SqliteLedgerOptions) {
    super(options);
  }
}
