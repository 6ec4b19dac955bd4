import fs from 'node:fs';
import { WitnessError, parseVerifierKey } from '../core/index.js';
import { DEFAULT_STORE, openLedger, type Ledger } from '../store/index.js';

export function resolveStore(flag: string | undefined): string {
  return flag ?? process.env['WITNESS_STORE'] ?? DEFAULT_STORE;
}

/**
 * Opens an existing ledger; commands other than init/demo never create one by accident.
 * `sealRecord` is `--seal-record`; without it the ledger reads $WITNESS_SEAL_RECORD, else uses
 * `<db>.sealed`.
 */
export async function openExisting(url: string, opts: { readonly?: boolean; sealRecord?: string } = {}): Promise<Ledger> {
  return openLedger(url, {
    create: false,
    readonly: opts.readonly ?? false,
    ...(opts.sealRecord === undefined ? {} : { sealRecord: opts.sealRecord }),
  });
}

export const SEAL_RECORD_HELP = "the sealer's record of the last checkpoint its key signed (default: $WITNESS_SEAL_RECORD, else <db>.sealed beside the ledger)";

/** `--trusted-key` takes a verifier key string or a file holding one key per line. */
export function readTrustedKeys(values: string[] | undefined): string[] | undefined {
  if (values === undefined || values.length === 0) return undefined;
  const keys: string[] = [];
  for (const v of values) {
    const isFile = fs.existsSync(v) && fs.statSync(v).isFile();
    const lines = isFile
      ? fs
          .readFileSync(v, 'utf8')
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l !== '')
      : [v.trim()];
    lines.forEach((line, i) => {
      try {
        parseVerifierKey(line);
      } catch (e) {
        const where = isFile ? `line ${i + 1} of ${v}` : `--trusted-key ${v}`;
        const hint = isFile ? '' : ' (or a file that does not exist)';
        throw new WitnessError('invalid_argument', `${where} is not a verifier key${hint}: ${(e as Error).message.replace(/\.$/, '')}; pass the ledger's .pub file or its key string.`);
      }
      keys.push(line);
    });
  }
  return keys;
}
