import type { Command } from 'commander';
import { type Io, printJson } from '../output.js';
import { openExisting, resolveStore } from '../store-option.js';

export function registerSeal(program: Command, io: Io): void {
  program
    .command('seal')
    .description('fold unsealed events into the Merkle tree and sign a checkpoint now')
    .option('--store <url>', 'ledger location (default: $WITNESS_STORE or sqlite:./witness.db)')
    .option('--force', 'write a checkpoint even when nothing new arrived (a heartbeat)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { store?: string; force?: boolean; json?: boolean }) => {
      const ledger = openExisting(resolveStore(opts.store));
      try {
        const cp = await ledger.seal({ force: opts.force === true });
        if (opts.json) return printJson(io, cp === null ? { sealed: false } : { sealed: true, size: cp.size, root: cp.root.toString('hex'), note: cp.note });
        if (cp === null) io.out('Nothing to seal: every event is already in a signed checkpoint.');
        else io.out(`Sealed checkpoint ${cp.id}: ${cp.size} events, root ${cp.root.toString('hex')}.\n\n${cp.note}`);
      } finally {
        await ledger.close();
      }
    });
}
