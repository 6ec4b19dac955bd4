import type { Command } from 'commander';
import { eraseSubject } from '../../store/index.js';
import { type Io, inert, printJson } from '../output.js';
import { openExisting, resolveStore } from '../store-option.js';
import { actorOf } from './retention.js';

/**
 * `witness erase --subject ID`: GDPR Art. 17 erasure of one data subject's payloads through the
 * retention purge, with the same receipt (src/store/erase.ts); refused under a hold or a duty.
 */
export function registerErase(program: Command, io: Io): void {
  program
    .command('erase')
    .description("erase a data subject's payloads (GDPR Art. 17): headers, hashes and digests stay, the purge is recorded as erasure:<subject>; refused under a legal hold or a keeping duty")
    .requiredOption('--subject <id>', 'the (pseudonymised) subject id, as recorded in event headers')
    .requiredOption('--reason <text>', 'the request reference or why (recorded)')
    .option('--dry-run', 'say what would be erased; change nothing')
    .option('--by <name>', 'who erases (default: $USER)')
    .option('--store <url>', 'ledger location (default: $WITNESS_STORE or sqlite:./witness.db)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { subject: string; reason: string; dryRun?: boolean; by?: string; store?: string; json?: boolean }) => {
      const ledger = await openExisting(resolveStore(opts.store), { readonly: opts.dryRun === true });
      try {
        const r = await eraseSubject(ledger, { subject: opts.subject, reason: opts.reason, dryRun: opts.dryRun === true }, actorOf(opts.by));
        if (opts.json) return printJson(io, r);
        const already = r.alreadyPurged > 0 ? ` (${r.alreadyPurged} already purged)` : '';
        if (r.dryRun) return io.out(inert(`Dry run: would erase ${r.purged} payload(s) of subject ${r.subject}${already}; nothing was changed.`));
        if (r.purged === 0) return io.out(inert(`Nothing to erase: no payload of subject ${r.subject} is left${already}.`));
        io.out(
          inert(
            `Erased ${r.purged} payload(s) of subject ${r.subject}${already} under policy ${r.policy}; recorded by ${r.records.length} retention.purge event(s) from leaf ${r.records[0]!.pos}${r.sealedFirst ? ', after sealing the ledger so every erased event was signed first' : ''}.`,
          ),
        );
      } finally {
        await ledger.close();
      }
    });
}
