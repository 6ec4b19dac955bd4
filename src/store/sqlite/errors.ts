import { WitnessError } from '../../core/index.js';

/**
 * Turns better-sqlite3's error codes into one sentence a person can act on. SQLite reports extended
 * codes (`SQLITE_IOERR_WRITE`, `SQLITE_BUSY_TIMEOUT`, `SQLITE_CANTOPEN_ISDIR`…), so the primary
 * code before the first underscore after `SQLITE_` decides, except for constraints, whose
 * sub-codes mean different things. Only `store_locked` and `store_unavailable` are conditions worth
 * retrying (another process holds the lock, the disk is full or failing); an error with no case
 * here is `store_fault`: a bug, reported at once and never retried as an outage.
 */
export function translateSqliteError(e: unknown, file: string): WitnessError {
  if (e instanceof WitnessError) return e;
  const raw = (e as { code?: unknown }).code;
  const code = typeof raw === 'string' ? raw : '';
  const primary = /^SQLITE_[A-Z]+/.exec(code)?.[0] ?? '';
  const msg = e instanceof Error ? e.message : String(e);
  // The driver's native addon itself would not load: after a Node.js upgrade, the everyday case.
  if (code === 'ERR_DLOPEN_FAILED') {
    return new WitnessError(
      'store_unavailable',
      `The SQLite driver (better-sqlite3's native module) cannot be loaded to open ${file} (${msg.replace(/\.$/, '')}); it was built for another Node.js version or is damaged: run \`npm rebuild better-sqlite3\`.`,
      { cause: e },
    );
  }
  switch (primary) {
    case 'SQLITE_BUSY':
    case 'SQLITE_LOCKED':
      return new WitnessError('store_locked', `The ledger ${file} is locked by another process; retry, or stop the process that holds it.`, { cause: e });
    case 'SQLITE_NOTADB':
    case 'SQLITE_CORRUPT':
      return new WitnessError('store_corrupt', `${file} is not a Witness ledger or is damaged (${msg}); check the --store path.`, { cause: e });
    case 'SQLITE_CANTOPEN':
      return new WitnessError('store_unavailable', `Cannot open the ledger ${file}: the path does not exist or is not accessible; check the directory and its permissions.`, { cause: e });
    case 'SQLITE_READONLY':
    case 'SQLITE_PERM':
    case 'SQLITE_AUTH':
      return new WitnessError('store_readonly', `The ledger ${file} is read-only for this process; check the file's and its directory's permissions.`, { cause: e });
    case 'SQLITE_FULL':
    case 'SQLITE_IOERR':
    case 'SQLITE_NOMEM':
    case 'SQLITE_PROTOCOL':
      return new WitnessError('store_unavailable', `Writing to the ledger ${file} failed (${msg}); free disk space or check the device, then retry.`, { cause: e });
    case 'SQLITE_CONSTRAINT':
      if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        return new WitnessError('invalid_event', `An event with the same id already exists in ${file}; do not reuse event ids.`, { cause: e });
      }
      if (code === 'SQLITE_CONSTRAINT_TRIGGER') {
        // The no-replace trigger fires before the unique index would: for an INSERT it means a duplicate.
        if (msg.includes('cannot be replaced') && msg.includes('events')) {
          return new WitnessError('invalid_event', `An event with the same id already exists in ${file}; do not reuse event ids.`, { cause: e });
        }
        return new WitnessError('immutable', `The ledger ${file} is append-only: ${msg.replace(/^witness: /, '')}.`, { cause: e });
      }
      return fault(e, code, msg, file);
    default:
      return fault(e, code, msg, file);
  }
}

/**
 * The refusal of a second consumption of one grant (the events_grant_once index, schema.ts), in the
 * sentence PostgreSQL's driver says; undefined for any other error. SQLite's message names the
 * index but not the value, so `decisionOf` says which grant of the batch it was.
 */
export function grantUsed(e: unknown, file: string, decisionOf: () => string | undefined): WitnessError | undefined {
  const err = e as { code?: unknown; message?: unknown };
  if (err.code !== 'SQLITE_CONSTRAINT_UNIQUE' || typeof err.message !== 'string' || !err.message.includes(`'events_grant_once'`)) return undefined;
  return new WitnessError('conflict', `Approval decision ${decisionOf() ?? '(unknown)'} has already released a call in ${file}, and a grant is used once; this release was not recorded.`, {
    cause: e,
  });
}

/** Retrying cannot mend what nobody expected (a CHECK added by hand, a bug): say so at once, with the error. */
function fault(e: unknown, code: string, msg: string, file: string): WitnessError {
  const what = code === '' ? msg : `${code}: ${msg}`;
  return new WitnessError(
    'store_fault',
    `The ledger ${file} failed with an error Witness has no case for (${what.replace(/\.$/, '')}), which is a bug rather than an outage; report it with this message.`,
    { cause: e },
  );
}
