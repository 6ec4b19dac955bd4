import fs from 'node:fs';
import { WitnessError } from '../core/index.js';
import { DEFAULT_STORE, SqliteLedger, parseStoreUrl } from '../store/index.js';

export function resolveStore(flag: string | undefined): string {
  return flag ?? process.env['WITNESS_STORE'] ?? DEFAULT_STORE;
}

/** Opens an existing ledger; commands other than init/demo never create one by accident. */
export function openExisting(url: string, opts: { readonly?: boolean } = {}): SqliteLedger {
  const loc = parseStoreUrl(url);
  if (loc.driver !== 'sqlite') {
    throw new WitnessError('invalid_store_url', 'The PostgreSQL driver is not built yet; use a sqlite: store for now.');
  }
  return SqliteLedger.open({ path: loc.path, create: false, readonly: opts.readonly ?? false });
}

/** `--trusted-key` takes a verifier key string or a file holding one key per line. */
export function readTrustedKeys(values: string[] | undefined): string[] | undefined {
  if (values === undefined || values.length === 0) return undefined;
  const keys: string[] = [];
  for (const v of values) {
    if (fs.existsSync(v) && fs.statSync(v).isFile()) {
      keys.push(...fs.readFileSync(v, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== ''));
    } else if (/[+]/.test(v)) {
      keys.push(v.trim());
    } else {
      throw new WitnessError('invalid_argument', `--trusted-key ${v} is neither a key file that exists nor a verifier key (name+hash+key); check the path.`);
    }
  }
  return keys;
}
