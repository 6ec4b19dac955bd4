import { WitnessError } from '../core/index.js';
import { parsePostgresUrl } from './url.js';

export interface RoleOptions {
  /** Default `witness_writer`: recorders, gateways and the sealer. */
  writer?: string;
  /** Default `witness_auditor`: reads and verifies, nothing else. */
  auditor?: string;
  /** Default `witness_retention`: `witness retention run` and `witness erase`, the only role that may purge payloads. */
  retention?: string;
}

export interface RolesResult {
  writer: string;
  auditor: string;
  retention: string;
  /** Roles this call created (NOLOGIN); the others existed and were re-granted. */
  created: string[];
  /** Every statement run, in order: the CREATE ROLEs, the REVOKE, then each GRANT. */
  statements: string[];
}

export const DEFAULT_WRITER_ROLE = 'witness_writer';
export const DEFAULT_AUDITOR_ROLE = 'witness_auditor';
export const DEFAULT_RETENTION_ROLE = 'witness_retention';

/**
 * `witness init --roles`: the writer, auditor and retention roles for the PostgreSQL ledger at `url`, with
 * exactly the privileges postgres/schema.ts roleGrants lists. The roles are created NOLOGIN (group
 * roles): Witness never handles their passwords; an administrator makes each login a member
 * (`GRANT witness_writer TO app_host_1`). A role that already exists is reused unless it could
 * bypass the grants (a superuser, BYPASSRLS, or the owner of the ledger's tables), which is refused.
 * Runs in one transaction, as a role that may create roles and owns the ledger's schema.
 */
export async function createPostgresRoles(url: string, options: RoleOptions = {}): Promise<RolesResult> {
  const loc = parsePostgresUrl(url);
  const writer = options.writer ?? DEFAULT_WRITER_ROLE;
  const auditor = options.auditor ?? DEFAULT_AUDITOR_ROLE;
  const retention = options.retention ?? DEFAULT_RETENTION_ROLE;
  for (const [flag, name] of [
    ['--writer-role', writer],
    ['--auditor-role', auditor],
    ['--retention-role', retention],
  ] as const) {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new WitnessError('invalid_argument', `${flag} "${name}" is not a plain lowercase role name (letters, digits, _; at most 63).`);
  }
  if (new Set([writer, auditor, retention]).size !== 3) {
    throw new WitnessError('invalid_argument', `The writer, auditor and retention roles must all differ, not "${writer}", "${auditor}" and "${retention}"; name each with its own flag.`);
  }
  const { default: pg } = await import('pg');
  const { translatePgError } = await import('./postgres/errors.js');
  const { roleGrants } = await import('./postgres/schema.js');
  const client = new pg.Client({ connectionString: loc.connectionString });
  try {
    await client.connect();
  } catch (e) {
    throw translatePgError(e, loc.location);
  }
  const statements: string[] = [];
  const created: string[] = [];
  try {
    await client.query('BEGIN');
    const meta = (await client.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [`${loc.schema}.meta`])).rows[0]?.t;
    if (meta == null) throw new WitnessError('not_found', `No ledger in schema "${loc.schema}" at ${loc.location}; create it first with \`witness init --store\` and this URL.`);
    for (const role of [writer, auditor, retention]) {
      const found = (
        await client.query<{ rolsuper: boolean; rolbypassrls: boolean; owns: boolean }>(
          `SELECT r.rolsuper, r.rolbypassrls,
                  EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $2 AND c.relowner = r.oid)
                  OR EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspname = $2 AND n.nspowner = r.oid) AS owns
           FROM pg_roles r WHERE r.rolname = $1`,
          [role, loc.schema],
        )
      ).rows[0];
      if (found === undefined) {
        const sql = `CREATE ROLE ${role} NOLOGIN`;
        await client.query(sql);
        statements.push(sql);
        created.push(role);
      } else if (found.rolsuper || found.rolbypassrls || found.owns) {
        const why = found.rolsuper ? 'a superuser' : found.rolbypassrls ? 'allowed to bypass row security' : `the owner of schema "${loc.schema}" or its tables`;
        throw new WitnessError('conflict', `The role ${role} already exists and is ${why}, so no grant could limit it; choose another name with --writer-role, --auditor-role or --retention-role.`);
      }
    }
    for (const sql of roleGrants(loc.schema, writer, auditor, retention)) {
      await client.query(sql);
      statements.push(sql);
    }
    await client.query('COMMIT');
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    if ((e as { code?: unknown }).code === '42501') {
      throw new WitnessError(
        'forbidden',
        `The user in --store may not create roles or grant on schema "${loc.schema}" at ${loc.location} (${(e as Error).message}); run \`witness init --roles\` as the schema's owner with CREATEROLE.`,
        { cause: e },
      );
    }
    throw translatePgError(e, loc.location);
  } finally {
    await client.end().catch(() => undefined);
  }
  return { writer, auditor, retention, created, statements };
}

/**
 * `witness init` on an existing PostgreSQL ledger: applies the schema migrations this Witness has
 * (postgres/schema.ts PG_MIGRATIONS) as the connecting user; undefined when the schema holds no
 * ledger yet (init then creates it). A schema newer than this Witness is refused in one sentence.
 */
export async function migratePostgresSchema(url: string): Promise<{ from: number; to: number } | undefined> {
  const loc = parsePostgresUrl(url);
  const { default: pg } = await import('pg');
  const { translatePgError } = await import('./postgres/errors.js');
  const { migrateSchema } = await import('./postgres/schema.js');
  const client = new pg.Client({ connectionString: loc.connectionString });
  try {
    await client.connect();
    const meta = (await client.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [`${loc.schema}.meta`])).rows[0]?.t;
    if (meta == null) return undefined;
    return await migrateSchema(client, loc.schema, loc.location);
  } catch (e) {
    throw translatePgError(e, loc.location);
  } finally {
    await client.end().catch(() => undefined);
  }
}
