import { WitnessError } from '../../core/index.js';

/** Turns better-sqlite3's error codes into one sentence a person can act on. */
export function translateSqliteError(e: unknown, file: string): WitnessError {
  if (e instanceof WitnessError) return e;
  const code = (e as { code?: unknown }).code;
  const msg = e instanceof Error ? e.message : String(e);
  switch (typeof code === 'string' ? code : '') {
    case 'SQLITE_BUSY':
    case 'SQLITE_BUSY_SNAPSHOT':
    case 'SQLITE_BUSY_RECOVERY':
    case 'SQLITE_LOCKED':
      return new WitnessError('store_locked', `The ledger ${file} is locked by another process; retry, or stop the process that holds it.`, { cause: e });
    case 'SQLITE_NOTADB':
    case 'SQLITE_CORRUPT':
      return new WitnessError('store_corrupt', `${file} is not a Witness ledger or is damaged (${msg}); check the --store path.`, { cause: e });
    case 'SQLITE_CANTOPEN':
      return new WitnessError('store_unavailable', `Cannot open the ledger ${file}: the path does not exist or is not accessible; check the directory and its permissions.`, { cause: e });
    case 'SQLITE_READONLY':
    case 'SQLITE_READONLY_DBMOVED':
    case 'SQLITE_PERM':
    case 'SQLITE_AUTH':
      return new WitnessError('store_readonly', `The ledger ${file} is read-only for this process; check the file's and its directory's permissions.`, { cause: e });
    case 'SQLITE_FULL':
    case 'SQLITE_IOERR':
      return new WitnessError('store_unavailable', `Writing to the ledger ${file} failed (${msg}); free disk space or check the device, then retry.`, { cause: e });
    case 'SQLITE_CONSTRAINT_UNIQUE':
    case 'SQLITE_CONSTRAINT_PRIMARYKEY':
      return new WitnessError('invalid_event', `An event with the same id already exists in ${file}; do not reuse event ids.`, { cause: e });
    case 'SQLITE_CONSTRAINT_TRIGGER':
      // The no-replace trigger fires before the unique index would: for an INSERT it means a duplicate.
      if (msg.includes('cannot be replaced') && msg.includes('events')) {
        return new WitnessError('invalid_event', `An event with the same id already exists in ${file}; do not reuse event ids.`, { cause: e });
      }
      return new WitnessError('immutable', `The ledger ${file} is append-only: ${msg.replace(/^witness: /, '')}.`, { cause: e });
    default:
      return new WitnessError('store_unavailable', `The ledger ${file} failed: ${msg}.`, { cause: e });
  }
}
