import type { Command } from 'commander';
import { WitnessError } from '../../core/index.js';
import { migrateToPostgres } from '../../store/index.js';
import { type Io, printJson } from '../output.js';

interface MigrateOpts {
  from?: string;
  to?: string;
  json?: boolean;
}

export function registerMigrate(program: Command, io: Io): void {
  program
    .command('migrate')
    .description('copy a ledger (events as stored, checkpoints, keys, artifacts, the sealer\u2019s record) into a new PostgreSQL schema, verifying both sides')
    .option('--from <url>', 'the ledger to copy, e.g. sqlite:./witness.db (it must verify first)')
    .option('--to <url>', 'a new or empty PostgreSQL schema, e.g. postgres://user@host/db?schema=witness')
    .option('--json', 'machine-readable report')
    .action(async (opts: MigrateOpts) => {
      if (opts.from === undefined || opts.to === undefined) {
        throw new WitnessError('invalid_argument', 'witness migrate needs both --from <ledger> and --to postgres://…; run `witness migrate --help` for usage.');
      }
      const r = await migrateToPostgres(opts.from, opts.to);
      if (opts.json) {
        const { source, target, ...rest } = r;
        return printJson(io, { ...rest, verified: { source: source.ok, target: target.ok } });
      }
      const n = (x: number) => x.toLocaleString('en-US');
      io.out(
        `Migrated ${r.from} to ${r.to}: ${n(r.size)} events in ${n(r.streams)} session(s), ${n(r.checkpoints)} checkpoint(s), ${n(r.treeNodes)} tree nodes, ${n(r.artifacts)} artifact(s), ${n(r.publicKeys)} public key(s).`,
      );
      io.out(`  origin       ${r.origin} (unchanged)`);
      io.out(`  checkpoint   ${r.checkpoint === null ? 'none yet' : `size ${n(r.checkpoint.size)}, root ${r.checkpoint.root}, the same on both sides`}`);
      io.out(`  signing key  ${r.signingKey === '' ? 'none (the ledger had no key)' : r.signingKey}`);
      io.out(`  seal record  ${r.sealRecord ?? 'none (the source had none)'}`);
      io.out(
        `Verified both sides: ${n(r.source.events)} events and ${n(r.source.checkpoints)} signed checkpoint(s) in the source, the same in the copy, with the same positions, hashes and roots; checkpoints saved before the move keep verifying with \`witness verify --against FILE\`.`,
      );
    });
}
