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
  try {
    return parseSignerKey(text.trim());
  } catch (e) {
    throw new WitnessError('invalid_key', `The signing key file ${keyPath} is not a valid key (${(e as Error).message.replace(/\.$/, '')}); restore it from your backup.`, { cause: e });
  }
}

/**
 * Creates a key pair; the private half is written with mode 0600 and never overwritten. It is
 * written to a temporary file, synced, then hard-linked into place, so a crash never leaves a
 * half-written key and of two processes racing, exactly one key wins (the loser reads it).
 */
export function createKeyFile(keyPath: string, pubPath: string, name: string): void {
  const { signerKey, verifierKey } = generateKey(name);
  const tmp = `${keyPath}.${process.pid}.${Date.now()}.tmp`;
  try {
    const fd = fs.openSync(tmp, 'wx', 0o600);
    try {
      fs.writeSync(fd, `${signerKey}\n`);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    try {
      fs.linkSync(tmp, keyPath);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return; // another process won; use its key
      throw e;
    }
    fs.writeFileSync(pubPath, `${verifierKey}\n`, { mode: 0o644 });
  } catch (e) {
    throw new WitnessError('store_unavailable', `Cannot write the signing key ${keyPath}: ${(e as Error).message}; check the directory's permissions.`, { cause: e });
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}
