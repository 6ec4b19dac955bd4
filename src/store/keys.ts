import fs from 'node:fs';
import { WitnessError, generateKey, parseSignerKey, type NoteSigner } from '../core/index.js';

/**
 * Signing keys live outside the database: a 0600 file beside it, or WITNESS_SIGNING_KEY. Whoever
 * can write the database should not thereby be able to sign a rewritten history.
 */
export const SIGNING_KEY_ENV = 'WITNESS_SIGNING_KEY';

export function loadSigner(keyPath: string, env: NodeJS.ProcessEnv = process.env): NoteSigner | undefined {
  const fromEnv = env[SIGNING_KEY_ENV];
  if (fromEnv !== undefined && fromEnv.trim() !== '') return parseSignerKey(fromEnv.trim());
  let text: string;
  try {
    text = fs.readFileSync(keyPath, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new WitnessError('invalid_key', `Cannot read the signing key ${keyPath}: ${(e as Error).message}; check its permissions.`, { cause: e });
  }
  return parseSignerKey(text.trim());
}

/** Creates a key pair; the private half is written with mode 0600 and never overwritten. */
export function createKeyFile(keyPath: string, pubPath: string, name: string): { vkey: string } {
  const { signerKey, verifierKey } = generateKey(name);
  try {
    fs.writeFileSync(keyPath, `${signerKey}\n`, { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new WitnessError('invalid_key', `A signing key already exists at ${keyPath}; keep it, or move it away before creating a new ledger there.`);
    }
    throw new WitnessError('store_unavailable', `Cannot write the signing key ${keyPath}: ${(e as Error).message}.`, { cause: e });
  }
  fs.writeFileSync(pubPath, `${verifierKey}\n`, { mode: 0o644 });
  return { vkey: verifierKey };
}
