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
 * half-written key and of two processes racing, exactly one key wins (the loser reads it). Neither
 * half is ever written through a symbolic link: a link planted at `<db>.key` or `<db>.pub` could
 * otherwise make Witness overwrite whatever file it points to, or use a key someone else holds.
 */
export function createKeyFile(keyPath: string, pubPath: string, name: string): void {
  for (const p of [keyPath, pubPath]) refuseKeySymlink(p);
  const { signerKey, verifierKey } = generateKey(name);
  const tmp = `${keyPath}.${process.pid}.${Date.now()}.tmp`;
  const pubTmp = `${pubPath}.${process.pid}.${Date.now()}.tmp`;
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
      // link() never follows a link at the target: a link planted since the check above lands here.
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
        refuseKeySymlink(keyPath);
        return; // another process won; use its key
      }
      throw e;
    }
    // Renamed into place, which replaces a link instead of writing through it.
    fs.writeFileSync(pubTmp, `${verifierKey}\n`, { mode: 0o644, flag: 'wx' });
    fs.renameSync(pubTmp, pubPath);
  } catch (e) {
    if (e instanceof WitnessError) throw e;
    throw new WitnessError('store_unavailable', `Cannot write the signing key ${keyPath}: ${(e as Error).message}; check the directory's permissions.`, { cause: e });
  } finally {
    fs.rmSync(tmp, { force: true });
    fs.rmSync(pubTmp, { force: true });
  }
}

/** Throws when `p` is a symbolic link: a key is never written through one. */
export function refuseKeySymlink(p: string): void {
  let isLink = false;
  try {
    isLink = fs.lstatSync(p).isSymbolicLink();
  } catch {
    // Absent (the usual case) or unreadable: the write that follows reports the latter.
  }
  if (isLink) {
    throw new WitnessError('store_unavailable', `Not writing the signing key: ${p} is a symbolic link, which could redirect the write to another file; remove it and run again.`);
  }
}
