import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WitnessError, canonicalBytes, generateKey, parseSignerKey, parseVerifierKey, keyFingerprint, type NoteSigner } from '../core/index.js';
import type { LedgerInfo } from '../store/index.js';

/**
 * The key that signs API-key records. Key records live in the ledger (`witness.keys`), and on
 * PostgreSQL every recorder host may INSERT events: a record is believed only when it carries an
 * Ed25519 signature by this key, which lives outside the database like the ledger's own signing
 * key (a 0600 file, never written through a link), so whoever can only append to the ledger
 * cannot mint or revoke a key.
 *
 * Signed bytes (README "Server" repeats this for auditors):
 *
 *   "witness/api-key/v1\n" ‖ JCS(fields)
 *
 * where JCS is RFC 8785 canonical JSON and `fields` is, for a creation,
 *   { ledger, op: "create", key_id, role, agent?, name?, key_sha256 }
 * and for a revocation
 *   { ledger, op: "revoke", key_id }
 * with `ledger` the ledger's uuid (so a record cannot be copied into another ledger) and the
 * other members exactly as the record's `data` holds them (optional ones only when present). The
 * signature is `data.signature`, base64 of the 64-byte Ed25519 signature; `data.signed_by` is the
 * key's fingerprint, a hint only (verification always uses the key file).
 */
export const KEYRING_KEY_ENV = 'WITNESS_KEYRING_KEY';

const CONTEXT = Buffer.from('witness/api-key/v1\n', 'utf8');
const NAME = 'witness-api-keys';

export interface KeyRecordFields {
  op: 'create' | 'revoke';
  key_id: string;
  role?: string;
  agent?: string;
  name?: string;
  key_sha256?: string;
}

/** Where the key-record signing key of a ledger lives: $WITNESS_KEYRING_KEY, else beside the ledger's other secrets. */
export function keyringKeyPath(info: Pick<LedgerInfo, 'id' | 'location'>, env: NodeJS.ProcessEnv = process.env): string {
  const given = env[KEYRING_KEY_ENV]?.trim();
  if (given !== undefined && given !== '') return path.resolve(given);
  if (/^postgres(?:ql)?:\/\//i.test(info.location)) return path.join(os.homedir(), '.witness', 'postgres', `${info.id}.keyring.key`);
  return `${info.location}.keyring.key`;
}

/** The exact bytes a key record's signature covers. */
export function keyRecordMessage(ledgerId: string, f: KeyRecordFields): Buffer {
  const fields =
    f.op === 'create'
      ? {
          ledger: ledgerId,
          op: f.op,
          key_id: f.key_id,
          role: f.role,
          ...(f.agent === undefined ? {} : { agent: f.agent }),
          ...(f.name === undefined ? {} : { name: f.name }),
          key_sha256: f.key_sha256,
        }
      : { ledger: ledgerId, op: f.op, key_id: f.key_id };
  return Buffer.concat([CONTEXT, canonicalBytes(fields)]);
}

export interface KeyringKey {
  signer: NoteSigner;
  fingerprint: string;
  sign(ledgerId: string, f: KeyRecordFields): string;
  verify(ledgerId: string, f: KeyRecordFields, signature: string): boolean;
}

function wrap(signer: NoteSigner): KeyringKey {
  const verifier = parseVerifierKey(signer.verifierKey);
  return {
    signer,
    fingerprint: keyFingerprint(verifier),
    sign: (ledgerId, f) => Buffer.from(signer.sign(keyRecordMessage(ledgerId, f))).toString('base64'),
    verify: (ledgerId, f, signature) => {
      const sig = Buffer.from(signature, 'base64');
      // Only the canonical base64 of 64 bytes: Buffer.from skips characters it does not know.
      if (sig.length !== 64 || sig.toString('base64') !== signature) return false;
      return verifier.verify(keyRecordMessage(ledgerId, f), sig);
    },
  };
}

/**
 * Reads the key, creating it (0600, never overwriting, never through a link) when `create` and it
 * does not exist; undefined when absent and not created. Refused like an approver's key (and as ssh
 * refuses a private key) when it is a link, not a regular file, or open to other users: whoever can
 * read it can mint API keys the server believes.
 */
export function loadKeyringKey(file: string, create: boolean): KeyringKey | undefined {
  let text = readKeyringKey(file);
  if (text === undefined) {
    if (!create) return undefined;
    createKeyringKey(file);
    // Read back through the same checks: of two processes racing, the other's file may have won.
    text = readKeyringKey(file);
    if (text === undefined) throw new WitnessError('store_unavailable', `The API-key signing key ${file} vanished right after it was written; check what else manages that directory.`);
  }
  try {
    return wrap(parseSignerKey(text.trim()));
  } catch (e) {
    throw new WitnessError('invalid_key', `The API-key signing key ${file} is not a valid key; restore it from your backup.`, { cause: e });
  }
}

/** The key file's text, undefined when it does not exist. */
function readKeyringKey(file: string): string | undefined {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new WitnessError('invalid_key', `Cannot read the API-key signing key ${file} (${(e as NodeJS.ErrnoException).code ?? String(e)}); check its permissions.`, { cause: e });
  }
  if (st.isSymbolicLink()) throw new WitnessError('invalid_key', `The API-key signing key ${file} is a symbolic link; replace it with the key file itself.`);
  if (!st.isFile()) throw new WitnessError('invalid_key', `The API-key signing key ${file} is not a regular file; replace it with the key file itself.`);
  if ((st.mode & 0o077) !== 0) {
    throw new WitnessError('invalid_key', `The API-key signing key ${file} can be read or written by other users (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 on it.`);
  }
  try {
    // O_NOFOLLOW: a link swapped in after the lstat is refused by the kernel, not followed.
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      return fs.readFileSync(fd, 'utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    throw new WitnessError('invalid_key', `Cannot read the API-key signing key ${file} (${(e as NodeJS.ErrnoException).code ?? String(e)}); check its permissions.`, { cause: e });
  }
}

/** Writes a new key to a temporary file and hard-links it into place: of two processes racing, one key wins and both use it. */
function createKeyringKey(file: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  try {
    const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    try {
      fs.writeSync(fd, `${generateKey(NAME).signerKey}\n`);
      fs.fchmodSync(fd, 0o600);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    try {
      fs.linkSync(tmp, file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  } catch (e) {
    if (e instanceof WitnessError) throw e;
    throw new WitnessError('store_unavailable', `Cannot write the API-key signing key ${file} (${(e as NodeJS.ErrnoException).code ?? String(e)}); check the directory's permissions.`, { cause: e });
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}
