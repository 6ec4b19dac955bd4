import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { WitnessError, keyFingerprint, parseVerifierKey } from '../../core/index.js';
import {
  DEFAULT_AUDITOR_ROLE,
  DEFAULT_RETENTION_ROLE,
  DEFAULT_WRITER_ROLE,
  SIGNING_KEY_ENV,
  createPostgresRoles,
  migratePostgresSchema,
  openLedger,
  parseStoreUrl,
  postgresKeyFile,
  sidecarPaths,
  sqlitePath,
  type Ledger,
} from '../../store/index.js';
import { type Io, printJson } from '../output.js';
import { resolveStore } from '../store-option.js';

interface InitOpts {
  store?: string;
  name: string;
  roles?: boolean;
  writerRole: string;
  auditorRole: string;
  retentionRole: string;
  json?: boolean;
}

export function registerInit(program: Command, io: Io): void {
  program
    .command('init')
    .description('create a ledger and its Ed25519 signing key (private key mode 0600, outside the database)')
    .option('--store <url>', 'ledger location (default: $WITNESS_STORE or sqlite:./witness.db)')
    .option('--name <name>', 'name for the checkpoint origin, e.g. your team or host', 'local')
    .option('--roles', 'PostgreSQL: also create a writer, an auditor and a retention role (NOLOGIN) and grant them what they need, printing each grant')
    .option('--writer-role <name>', 'with --roles: the writer role (appends and seals)', DEFAULT_WRITER_ROLE)
    .option('--auditor-role <name>', 'with --roles: the read-only auditor role', DEFAULT_AUDITOR_ROLE)
    .option(
      '--retention-role <name>',
      'with --roles: the role that alone may purge payloads (retention run, erase); it appends its purge records but does not seal: a writer seals first',
      DEFAULT_RETENTION_ROLE,
    )
    .option('--json', 'machine-readable output')
    .action(async (opts: InitOpts) => {
      const url = resolveStore(opts.store);
      if (!/^[A-Za-z0-9._-]{1,64}$/.test(opts.name)) {
        throw new WitnessError('invalid_argument', `--name "${opts.name}" must be 1-64 letters, digits, dots, dashes or underscores.`);
      }
      if (parseStoreUrl(url).driver === 'postgres') return initPostgres(url, opts, io);
      if (opts.roles === true)
        throw new WitnessError('invalid_argument', '--roles creates PostgreSQL roles; a SQLite ledger is protected by its file permissions, so drop --roles or use --store postgres://….');
      const file = sqlitePath(url);
      const existed = fs.existsSync(file);
      const ledger = await openLedger(url, { name: opts.name });
      try {
        const keys = await ledger.publicKeys();
        const paths = sidecarPaths(file);
        const result = {
          created: !existed,
          database: file,
          origin: ledger.info.origin,
          signingKey: ledger.canSeal ? (process.env['WITNESS_SIGNING_KEY'] ? 'WITNESS_SIGNING_KEY' : paths.key) : null,
          // Where the sealer will record the last checkpoint it signs ($WITNESS_SEAL_RECORD or beside the ledger).
          sealRecord: ledger.sealRecordLocation,
          publicKeys: keys.map((k) => ({ vkey: k.vkey, fingerprint: fingerprint(k.vkey) })),
        };
        if (opts.json) return printJson(io, result);
        io.out(existed ? `Ledger already exists at ${file}; nothing changed${opts.name !== 'local' ? ' (its origin, and so --name, is fixed at creation)' : ''}.` : `Created ledger ${file}`);
        io.out(`  origin       ${result.origin}`);
        io.out(`  signing key  ${result.signingKey ?? 'none (checkpoints cannot be signed by this process)'}`);
        io.out(`  seal record  ${result.sealRecord}`);
        for (const k of result.publicKeys) io.out(`  public key   ${k.vkey}\n  fingerprint  ${k.fingerprint}`);
        // The .pub beside the ledger can be replaced by whoever writes the ledger's directory, so it
        // pins nothing later: the key must be recorded now, somewhere that writer cannot reach.
        io.out(
          `Record this public key and its fingerprint now, outside this machine (your auditors' records, a ticket, a password manager), and give auditors that copy: they pin it with \`witness verify --trusted-key\`. ${paths.pub} is a convenience copy only, as changeable as the ledger.`,
        );
        if (result.sealRecord === paths.sealed) {
          // Beside the ledger, the record stops whoever can only edit rows, not whoever can write this directory.
          io.out(
            `The seal record beside the ledger protects against edits to the database's rows only; if other accounts or processes can write ${path.dirname(file)}, set $WITNESS_SEAL_RECORD to a file in a directory only the sealer can write, and keep the key there too (or in $WITNESS_SIGNING_KEY).`,
          );
        }
      } finally {
        await ledger.close();
      }
    });
}

/** The key hash as the note format defines it: what an auditor compares by eye. */
export function fingerprint(vkey: string): string {
  return keyFingerprint(parseVerifierKey(vkey));
}

/**
 * A PostgreSQL ledger: its schema created (or found, and checked to be a version this Witness can
 * open: a newer one is refused in one sentence), its signing key created where the driver keeps
 * it, and with --roles the writer and auditor roles and their grants.
 */
async function initPostgres(url: string, opts: InitOpts, io: Io): Promise<void> {
  // An existing ledger is brought to this Witness's schema version first (a newer one is refused).
  const migrated = await migratePostgresSchema(url);
  const existed = migrated !== undefined;
  const ledger: Ledger = await openLedger(url, existed ? { create: false } : { name: opts.name });
  try {
    const keys = await ledger.publicKeys();
    const fromEnv = (process.env[SIGNING_KEY_ENV] ?? '').trim() !== '';
    const keyFile = postgresKeyFile(ledger.info.id, undefined).file;
    const roles = opts.roles === true ? await createPostgresRoles(url, { writer: opts.writerRole, auditor: opts.auditorRole, retention: opts.retentionRole }) : undefined;
    const result = {
      created: !existed,
      database: ledger.info.location,
      schemaVersion: ledger.info.schemaVersion,
      origin: ledger.info.origin,
      signingKey: ledger.canSeal ? (fromEnv ? SIGNING_KEY_ENV : keyFile) : null,
      sealRecord: ledger.sealRecordLocation,
      publicKeys: keys.map((k) => ({ vkey: k.vkey, fingerprint: fingerprint(k.vkey) })),
      ...(migrated === undefined ? {} : { migratedFrom: migrated.from }),
      ...(roles === undefined ? {} : { roles }),
    };
    if (opts.json) return printJson(io, result);
    io.out(
      existed
        ? migrated.from !== migrated.to
          ? `Migrated ledger ${result.database} from schema version ${migrated.from} to ${migrated.to}.`
          : `Ledger already exists at ${result.database} (schema version ${result.schemaVersion}, current); nothing changed${opts.name !== 'local' ? ' (its origin, and so --name, is fixed at creation)' : ''}.`
        : `Created ledger ${result.database} (schema version ${result.schemaVersion})`,
    );
    if (migrated !== undefined && migrated.from < 5 && roles === undefined) {
      // Version 5 took witness_purge from every role but the owner (postgres/schema.ts purgeRefusals).
      io.out(
        `  Only the schema's owner may purge payloads now: run \`witness init --roles\` (with your --writer-role and --auditor-role) to create the retention role, and run \`witness retention run\` and \`witness erase\` as a member of it.`,
      );
    }
    io.out(`  origin       ${result.origin}`);
    io.out(`  signing key  ${result.signingKey ?? `none found (looked for ${keyFile}; checkpoints cannot be signed by this process)`}`);
    io.out(`  seal record  ${result.sealRecord}`);
    for (const k of result.publicKeys) io.out(`  public key   ${k.vkey}\n  fingerprint  ${k.fingerprint}`);
    if (roles !== undefined) {
      for (const r of [roles.writer, roles.auditor, roles.retention])
        io.out(roles.created.includes(r) ? `Created role ${r} (NOLOGIN)` : `Role ${r} exists; its privileges on the ledger were replaced by these`);
      for (const sql of roles.statements.filter((q) => !q.startsWith('CREATE ROLE'))) io.out(`  ${sql};`);
      io.out(
        `Make each host's login a member, e.g. \`GRANT ${roles.writer} TO recorder_host_1;\`, \`GRANT ${roles.auditor} TO auditor_jane;\` and, for the one host that runs \`witness retention run\` or \`witness erase\`, \`GRANT ${roles.retention} TO retention_host;\`: the roles themselves cannot log in, and only ${roles.retention} (and the schema's owner) may purge.`,
      );
    }
    io.out(
      `Record this public key and its fingerprint now, outside this machine and this database, and give auditors that copy: they pin it with \`witness verify --trusted-key\`; keep the private key on the sealer's host only (${result.signingKey ?? keyFile}).`,
    );
  } finally {
    await ledger.close();
  }
}
