import type { Command } from 'commander';
import { WitnessError } from '../../core/index.js';
import { type Io, printJson } from '../output.js';
import { openExisting, resolveStore } from '../store-option.js';

export function registerCheckpoint(program: Command, io: Io): void {
  program
    .command('checkpoint')
    .description('print the newest signed checkpoint; save it, and later prove the ledger still extends it with `witness verify --against`')
    .option('--store <url>', 'ledger location (default: $WITNESS_STORE or sqlite:./witness.db)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { store?: string; json?: boolean }) => {
      const ledger = await openExisting(resolveStore(opts.store), { readonly: true });
      try {
        const cp = await ledger.latestCheckpoint();
        if (cp === undefined) throw new WitnessError('not_found', 'The ledger has no checkpoint yet; run `witness seal` first.');
        if (opts.json) return printJson(io, { id: cp.id, size: cp.size, root: cp.root.toString('hex'), ts: cp.ts, note: cp.note });
        io.out(cp.note);
      } finally {
        await ledger.close();
      }
    });
}
