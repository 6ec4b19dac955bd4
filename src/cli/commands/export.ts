import type { Command } from 'commander';
import { WitnessError } from '../../core/index.js';
import { exportSession } from '../../export/index.js';
import { SqliteLedger, parseStoreUrl } from '../../store/index.js';
import { type Io, printJson } from '../output.js';
import { resolveStore } from '../store-option.js';

export function registerExport(program: Command, io: Io): void {
  program
    .command('export')
    .description('write a session as an evidence bundle (events, inclusion proofs, signed checkpoint, keys, artifacts) that verifies offline')
    .requiredOption('--session <id>', 'the session to export')
    .requiredOption('-o, --out <dir>', 'output directory (must not exist or be empty)')
    .option('--withhold-data', 'export headers and salted payload digests only: shareable without personal data, still verifiable')
    .option('--store <url>', 'ledger location (default: $WITNESS_STORE or sqlite:./witness.db)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { session: string; out: string; withholdData?: boolean; store?: string; json?: boolean }) => {
      const loc = parseStoreUrl(resolveStore(opts.store));
      if (loc.driver !== 'sqlite') throw new WitnessError('invalid_store_url', 'The PostgreSQL driver is not built yet; use a sqlite: store for now.');
      // Not read-only: an unsealed session is sealed first when this process holds the key.
      const ledger = SqliteLedger.open({ path: loc.path, create: false });
      try {
        const r = await exportSession(ledger, opts.session, opts.out, { withholdData: opts.withholdData === true });
        if (opts.json) return printJson(io, r);
        for (const w of r.warnings) io.err(`witness: ${w}`);
        io.out(`Exported session ${opts.session}: ${r.events} events, ${r.artifacts} artifact(s), proofs against checkpoint size ${r.checkpointSize}${opts.withholdData ? ', payloads withheld' : ''}.`);
        io.out(`  bundle  ${r.dir}`);
        io.out(`  check   witness verify ${r.dir} --trusted-key <the ledger's public key>`);
      } finally {
        await ledger.close();
      }
    });
}
