import type { Ledger } from '../ledger.js';
import { openPostgres, type PgOpened, type PostgresLedgerOptions } from './open.js';
import { PostgresPurge } from './purge.js';

export type { PostgresLedgerOptions } from './open.js';

/**
 * The PostgreSQL driver of the `Ledger` interface, built up as the SQLite driver is (open →
 * artifacts → append → query → seal → purge), passing the same contract suite (test/store/drivers.test.ts).
 * Opening is asynchronous (connecting, creating the schema), so it is a static factory.
 */
export class PostgresLedger extends PostgresPurge implements Ledger {
  static async open(options: PostgresLedgerOptions): Promise<PostgresLedger> {
    return new PostgresLedger(await openPostgres(options));
  }

  private constructor(opened: PgOpened) {
    super(opened);
  }
}
