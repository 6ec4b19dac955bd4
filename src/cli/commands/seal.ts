import type { Command } from 'commander';
import { WitnessError } from '../../core/index.js';
import { SIGNER_COMMAND_ENV, openLedger, readAgainstFile } from '../../store/index.js';
import { type Io, inert, printJson } from '../output.js';
import { SEAL_RECORD_HELP, resolveStore } from '../store-option.js';

interface SealOpts {
  store?: string;
  force?: boolean;
  adopt?: boolean;
  against?: string;
  sealRecord?: string;
  signerCommand?: string;
  json?: boolean;
}

export function registerSeal(program: Command, io: Io): void {
  program
    .command('seal')
    .description('fold unsealed events into the Merkle tree and sign a checkpoint now')
    .option('--store <url>', 'ledger location (default: $WITNESS_STORE or sqlite:./witness.db)')
    .option('--force', 'write a checkpoint even when nothing new arrived (a heartbeat)')
    .option('--adopt', 'for a ledger with checkpoints but no record: verify it whole with the key, record its newest checkpoint, then seal')
    .option('--against <file>', 'with --adopt: a checkpoint saved earlier that the ledger must still extend')
    .option('--seal-record <file>', SEAL_RECORD_HELP)
    .option('--signer-command <command>', `sign with this command instead of a key file (default $${SIGNER_COMMAND_ENV}; README "Keeping the key outside Witness")`)
    .option('--json', 'machine-readable output')
    .action(async (opts: SealOpts) => {
      if (opts.against !== undefined && opts.adopt !== true) {
        throw new WitnessError('invalid_argument', '--against is checked only when adopting; add --adopt, or use `witness verify --against` to check a ledger.');
      }
      const against = opts.against === undefined ? undefined : readAgainstFile(opts.against);
      // The signer command reaches the ledger as its environment would (store/keys.ts loadSigner).
      const env = opts.signerCommand === undefined ? process.env : { ...process.env, [SIGNER_COMMAND_ENV]: opts.signerCommand };
      const ledger = await openLedger(resolveStore(opts.store), { create: false, readonly: false, env, ...(opts.sealRecord === undefined ? {} : { sealRecord: opts.sealRecord }) });
      try {
        // Adoption is never implicit (seal refuses a ledger with checkpoints and no record): only a
        // person can say the ledger is theirs and intact, so it is this flag, and it verifies first.
        const adopted = opts.adopt === true ? await ledger.adopt(against === undefined ? {} : { against }) : undefined;
        if (adopted !== undefined && !opts.json) {
          for (const w of adopted.warnings) io.err(inert(`witness: ${w}`));
          io.out(
            adopted.checkpoint === null
              ? 'Nothing to adopt: the ledger has no checkpoint yet, so its first seal starts the record.'
              : `Adopted checkpoint ${adopted.checkpoint.id} (${adopted.checkpoint.size} events) as the sealer's record in ${adopted.location}, after verifying the whole ledger with this key.`,
          );
        }
        const cp = await ledger.seal({ force: opts.force === true });
        if (opts.json) {
          const adoptedJson = adopted === undefined ? {} : { adopted: { size: adopted.checkpoint?.size ?? null, location: adopted.location, warnings: adopted.warnings } };
          return printJson(io, cp === null ? { ...adoptedJson, sealed: false } : { ...adoptedJson, sealed: true, size: cp.size, root: cp.root.toString('hex'), note: cp.note });
        }
        if (cp === null) io.out('Nothing to seal: every event is already in a signed checkpoint.');
        else io.out(`Sealed checkpoint ${cp.id}: ${cp.size} events, root ${cp.root.toString('hex')}.\n\n${cp.note}`);
      } finally {
        await ledger.close();
      }
    });
}
