import os from 'node:os';
import type { Command } from 'commander';
import { exportSession } from '../../export/index.js';
import { type Io, printJson } from '../output.js';
import { SEAL_RECORD_HELP, openExisting, resolveStore } from '../store-option.js';

export function registerExport(program: Command, io: Io): void {
  program
    .command('export')
    .description('write a session as an evidence bundle (events, inclusion proofs, signed checkpoint, keys, artifacts) that verifies offline')
    .requiredOption('--session <id>', 'the session to export')
    .requiredOption('-o, --out <dir>', 'output directory (must not exist or be empty)')
    .option('--withhold-data', 'export headers and salted payload digests only: shareable without personal data, still verifiable')
    .option('--as <person>', 'who is exporting, recorded as an audit.access event (default: the OS user)')
    .option('--store <url>', 'ledger location (default: $WITNESS_STORE or sqlite:./witness.db)')
    .option('--seal-record <file>', SEAL_RECORD_HELP)
    .option('--json', 'machine-readable output')
    .action(async (opts: { session: string; out: string; withholdData?: boolean; as?: string; store?: string; sealRecord?: string; json?: boolean }) => {
      // Not read-only: an unsealed session is sealed first when this process holds the key, and
      // that seal checks the ledger against the record like `witness seal` does.
      const ledger = await openExisting(resolveStore(opts.store), opts.sealRecord === undefined ? {} : { sealRecord: opts.sealRecord });
      try {
        const actor = opts.as ?? os.userInfo().username;
        const r = await exportSession(ledger, opts.session, opts.out, { withholdData: opts.withholdData === true, actor });
        if (opts.json) return printJson(io, r);
        for (const w of r.warnings) io.err(`witness: ${w}`);
        io.out(
          `Exported session ${opts.session}: ${r.events} events, ${r.artifacts} artifact(s), proofs against checkpoint size ${r.checkpointSize}${opts.withholdData ? ', payloads withheld' : ''}.`,
        );
        // Not the .pub beside the ledger: whoever can rewrite the ledger can replace that file too,
        // so it pins nothing. The fingerprint is what to compare with the auditor's own record.
        io.out(`  bundle     ${r.dir}`);
        io.out(`  signed by  ${r.signedBy.join(', ')} (the key fingerprint: compare it with the one recorded when the ledger was created)`);
        io.out(`  check      npx witness verify ${r.dir} --trusted-key <that public key, from your own record>`);
      } finally {
        await ledger.close();
      }
    });
}
