import { WitnessError } from '../../core/index.js';

/** SQLSTATEs the schema's own triggers raise (schema.ts): the append-only refusal and the position guard. */
export const IMMUTABLE_STATE = 'WA001';
export const POSITION_STATE = 'WA002';
/** SQLSTATE of witness_purge refusing a target (schema.ts purgeRefusals): its message is the driver's own sentence. */
export const PURGE_STATE = 'WA003';
/** SQLSTATE of witness_purge finding the newest checkpoint beyond the ledger's events (schema.ts purgeRefusals): a forged checkpoint or deleted events. */
export const CHECKPOINT_STATE = 'WA004';

/**
 * Turns node-postgres errors (a SQLSTATE in `code`, or a socket error) into one sentence a person
 * can act on, with the same stable codes as the SQLite driver: `store_unavailable` for a server
 * that cannot be reached or refused the connection (retry once it is up), `store_locked` for lock
 * and serialization conflicts, `store_readonly`, `immutable`, `invalid_event` for a duplicate id,
 * `invalid_argument` for a purge target `witness_purge` refuses (its sentence is the driver's own),
 * `store_corrupt` for a purge under a checkpoint larger than the ledger,
 * and `store_fault` for anything Witness has no case for (a bug, never retried as an outage).
 */
export function translatePgError(e: unknown, location: string): WitnessError {
  if (e instanceof WitnessError) return e;
  const raw = (e as { code?: unknown }).code;
  const code = typeof raw === 'string' ? raw : '';
  const msg = e instanceof Error ? e.message : String(e);
  const constraint = (e as { constraint?: unknown }).constraint;
  if (['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ECONNRESET', 'ETIMEDOUT', 'EAI_AGAIN', 'EPIPE'].includes(code) || /Connection terminated|timeout exceeded when trying to connect/i.test(msg)) {
    return new WitnessError('store_unavailable', `Cannot reach PostgreSQL for the ledger ${location} (${code || msg}); start the server or check the host and port in --store, then retry.`, {
      cause: e,
    });
  }
  if (code === IMMUTABLE_STATE) {
    return new WitnessError('immutable', `The ledger ${location} is append-only: ${msg.replace(/^witness: /, '')}.`, { cause: e });
  }
  if (code === PURGE_STATE) {
    return new WitnessError('invalid_argument', `${msg.replace(/^witness: /, '')}.`, { cause: e });
  }
  if (code === CHECKPOINT_STATE) {
    return new WitnessError('store_corrupt', `Cannot purge payloads of the ledger ${location}: ${msg.replace(/^witness: /, '')}; nothing was erased, run \`witness verify\`.`, { cause: e });
  }
  if (code === POSITION_STATE) {
    return new WitnessError(
      'store_corrupt',
      `The ledger ${location} refused an event out of position (${msg.replace(/^witness: /, '')}): its head no longer matches its events, which means they were edited; run \`witness verify\`.`,
      { cause: e },
    );
  }
  switch (code.slice(0, 2)) {
    case '08': // connection exception
    case '57': // operator intervention: admin shutdown, cannot connect now
    case '53': // insufficient resources: disk full, out of memory, too many connections
      return new WitnessError('store_unavailable', `PostgreSQL could not serve the ledger ${location} (${msg}); check the server, then retry.`, { cause: e });
    case '28': // invalid authorization
      return new WitnessError('store_unavailable', `PostgreSQL refused the login for the ledger ${location} (${msg}); check the user and password in --store or PGPASSWORD.`, { cause: e });
    case '3D': // invalid catalog name: no such database
      return new WitnessError('store_unavailable', `PostgreSQL has no such database for the ledger ${location} (${msg}); create it (createdb) or fix the database name in --store.`, { cause: e });
    default:
      break;
  }
  switch (code) {
    case '25006': // read_only_sql_transaction
    case '42501': // insufficient_privilege
      return new WitnessError('store_readonly', `The ledger ${location} is read-only for this connection (${msg}); open it for writing with a role that may insert.`, { cause: e });
    case '40001': // serialization_failure
    case '40P01': // deadlock_detected
    case '55P03': // lock_not_available
    case '57014': // query_canceled (statement or lock timeout)
      return new WitnessError('store_locked', `The ledger ${location} is locked by another writer (${msg}); retry.`, { cause: e });
    case '23505':
      if (constraint === 'events_id_key') {
        return new WitnessError('invalid_event', `An event with the same id already exists in ${location}; do not reuse event ids.`, { cause: e });
      }
      break;
    default:
      break;
  }
  const what = code === '' ? msg : `${code}: ${msg}`;
  return new WitnessError(
    'store_fault',
    `The ledger ${location} failed with an error Witness has no case for (${what.replace(/\.$/, '')}), which is a bug rather than an outage; report it with this message.`,
    { cause: e },
  );
}
