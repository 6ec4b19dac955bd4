import os from 'node:os';
import type { Command } from 'commander';
import { WitnessError } from '../../core/index.js';
import { type Io, printJson, table } from '../output.js';
import { openExisting, resolveStore } from '../store-option.js';

const ROLE_NAMES = ['agent', 'developer', 'approver', 'auditor', 'admin'] as const;
type RoleName = (typeof ROLE_NAMES)[number];

/** Who is changing keys, as recorded in the config.change event: the operating-system user. */
function who(): string {
  try {
    return os.userInfo().username;
  } catch {
    return process.env['USER'] ?? 'unknown';
  }
}

/**
 * `witness keys create|list|revoke`: API keys for `witness serve`. Keys are kept in the ledger as
 * config.change events holding only each key's SHA-256 (see src/server/keys.ts); the key itself is
 * printed once, here.
 */
export function registerKeys(program: Command, io: Io): void {
  const keys = program.command('keys').description('API keys for witness serve: create (printed once), list, revoke; every change is a config.change event');
  const store = '--store <url>';
  const storeHelp = 'ledger location (default: $WITNESS_STORE or sqlite:./witness.db)';

  keys
    .command('create')
    .description('create an API key and print it once (only its SHA-256 is kept)')
    .requiredOption('--role <role>', `one of ${ROLE_NAMES.join(', ')}`)
    .option('--agent <id>', 'for an agent key: the agent identity its events are recorded under')
    .option('--name <name>', 'who or what holds the key, for lists and access records')
    .option(store, storeHelp)
    .option('--json', 'machine-readable output')
    .action(async (opts: { role: string; agent?: string; name?: string; store?: string; json?: boolean }) => {
      if (!(ROLE_NAMES as readonly string[]).includes(opts.role)) throw new WitnessError('invalid_argument', `--role "${opts.role}" is not a role; use one of ${ROLE_NAMES.join(', ')}.`);
      const { createKey } = await import('../../server/index.js');
      const ledger = await openExisting(resolveStore(opts.store));
      try {
        const { key, record } = await createKey(
          ledger,
          { role: opts.role as RoleName, ...(opts.agent === undefined ? {} : { agent: opts.agent }), ...(opts.name === undefined ? {} : { name: opts.name }) },
          { who: who(), recorder: 'cli' },
        );
        if (opts.json) return printJson(io, { key, ...record });
        io.out(`key: ${key}`);
        io.out(
          `Key ${record.id} (${record.role}${record.agent === undefined ? '' : `, agent ${record.agent}`}) created. This is the only time the key is shown: give it to its holder, who sends it as Authorization: Bearer <key>.`,
        );
      } finally {
        await ledger.close();
      }
    });

  keys
    .command('list')
    .description('list API keys: id, role, agent, name, created, revoked (never the keys)')
    .option(store, storeHelp)
    .option('--json', 'machine-readable output')
    .action(async (opts: { store?: string; json?: boolean }) => {
      const { listKeys } = await import('../../server/index.js');
      const ledger = await openExisting(resolveStore(opts.store), { readonly: true });
      try {
        const list = await listKeys(ledger);
        if (opts.json) return printJson(io, { keys: list });
        if (list.length === 0) return io.out('No API keys yet; create one with `witness keys create --role <role>`.');
        io.out(
          table(
            ['ID', 'ROLE', 'AGENT', 'NAME', 'CREATED', 'BY', 'REVOKED'],
            list.map((k) => [k.id, k.role, k.agent ?? '', k.name ?? '', k.createdAt, k.createdBy, k.revokedAt ?? '']),
          ),
        );
      } finally {
        await ledger.close();
      }
    });

  keys
    .command('revoke')
    .description('revoke an API key: a running witness serve refuses it from its next request')
    .argument('<id>', 'the key id (from `witness keys list`)')
    .option(store, storeHelp)
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { store?: string; json?: boolean }) => {
      const { revokeKey } = await import('../../server/index.js');
      const ledger = await openExisting(resolveStore(opts.store));
      try {
        const record = await revokeKey(ledger, id, { who: who(), recorder: 'cli' });
        if (opts.json) return printJson(io, record);
        io.out(`Key ${record.id} (${record.role}) revoked at ${record.revokedAt ?? 'now'}.`);
      } finally {
        await ledger.close();
      }
    });
}
