import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { WitnessError, keyFingerprint, parseVerifierKey } from '../../core/index.js';
import { openLedger, sidecarPaths, sqlitePath } from '../../store/index.js';
import { type Io, printJson } from '../output.js';
import { resolveStore } from '../store-option.js';

export function registerInit(program: Command, io: Io): void {
  program
    .command('init')
    .description('create a ledger and its Ed25519 signing key (private key mode 0600, outside the database)')
    .option('--store <url>', 'ledger location (default: $WITNESS_STORE or sqlite:./witness.db)')
    .option('--name <name>', 'name for the checkpoint origin, e.g. your team or host', 'local')
    .option('--json', 'machine-readable output')
    .action(async (opts: { store?: string; name: string; json?: boolean }) => {
      const url = resolveStore(opts.store);
      const file = sqlitePath(url);
      if (!/^[A-Za-z0-9._-]{1,64}$/.test(opts.name)) {
        throw new WitnessError('invalid_argument', `--name "${opts.name}" must be 1-64 letters, digits, dots, dashes or underscores.`);
      }
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
