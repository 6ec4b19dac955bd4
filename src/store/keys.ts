import { spawnSync } from 'node:child_process';
import { createPublicKey, verify } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { WitnessError, formatVerifierKey, generateKey, keyFingerprint, parseSignerKey, parseVerifierKey, type NoteSigner } from '../core/index.js';
import { syncDirectory } from './sync-directory.js';
import { SIGNING_KEY_FILE_ENV } from './url.js';

/**
 * Signing keys live outside the database: a 0600 file beside it, or WITNESS_SIGNING_KEY. Whoever
 * can write the database should not thereby be able to sign a rewritten history.
 */
export const SIGNING_KEY_ENV = 'WITNESS_SIGNING_KEY';

/**
 * A command that signs (a KMS or HSM client, `openssl pkeyutl`): Witness writes the bytes to sign to
 * its stdin and reads the signature from its stdout; it is asked once for its public key. Run by
 * /bin/sh, with $WITNESS_SIGNER_REQUEST set to `public-key` or `sign`.
 */
export const SIGNER_COMMAND_ENV = 'WITNESS_SIGNER_COMMAND';
/** The key name a command signer's key is known by in signed notes when its public-key answer does not name it. */
export const SIGNER_NAME_ENV = 'WITNESS_SIGNER_NAME';

export function loadSigner(keyPath: string, env: NodeJS.ProcessEnv = process.env): NoteSigner | undefined {
  const fromEnv = env[SIGNING_KEY_ENV];
  const command = env[SIGNER_COMMAND_ENV];
  if (command !== undefined && command.trim() !== '') {
    if (fromEnv !== undefined && fromEnv.trim() !== '') {
      throw new WitnessError('invalid_key', `Both ${SIGNING_KEY_ENV} and ${SIGNER_COMMAND_ENV} are set, so it is unclear which key signs; unset one of them.`);
    }
    return commandSigner(command.trim(), env);
  }
  // A key file anywhere ($WITNESS_SIGNING_KEY_FILE): the PostgreSQL driver already passes it as
  // keyPath; for a ledger whose key would otherwise be beside it, it is read instead, and must exist.
  const keyFileEnv = (env[SIGNING_KEY_FILE_ENV] ?? '').trim();
  if ((fromEnv === undefined || fromEnv.trim() === '') && keyFileEnv !== '' && path.resolve(keyFileEnv) !== path.resolve(keyPath)) {
    const signer = loadSigner(path.resolve(keyFileEnv), {});
    if (signer === undefined) {
      throw new WitnessError(
        'invalid_key',
        `The signing key file ${path.resolve(keyFileEnv)} named by $${SIGNING_KEY_FILE_ENV} does not exist; restore it, or unset the variable to use the key beside the ledger.`,
      );
    }
    return signer;
  }
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

/** Where this process's signing key comes from, by the same precedence as loadSigner. */
export function signingKeySource(env: NodeJS.ProcessEnv = process.env): 'command' | 'environment' | 'file' {
  if ((env[SIGNER_COMMAND_ENV] ?? '').trim() !== '') return 'command';
  if ((env[SIGNING_KEY_ENV] ?? '').trim() !== '') return 'environment';
  return 'file';
}

const SIGNER_TIMEOUT_MS = 30_000;
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/**
 * A signer that runs `command` (through /bin/sh) for each signature: the message on stdin, the
 * 64-byte Ed25519 signature on stdout (raw, or base64 text). Asked once, here, for its public key
 * (a verifier key `name+hash+base64`, a PEM or DER SubjectPublicKeyInfo, or the 32 raw bytes); each
 * signature is checked against it before use, so a signer answering with another key fails in one
 * sentence rather than leaving a checkpoint nobody can verify. A failing command throws
 * `invalid_key` and nothing is signed: the events stay recorded and the next seal tries again.
 */
export function commandSigner(command: string, env: NodeJS.ProcessEnv = process.env): NoteSigner {
  const out = runSigner(command, 'public-key', Buffer.alloc(0), env);
  const { name, publicKey } = parsePublicKeyAnswer(out, command, env);
  const verifierKey = formatVerifierKey(name, publicKey);
  const verifier = parseVerifierKey(verifierKey);
  const keyObject = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, publicKey]), format: 'der', type: 'spki' });
  return {
    name,
    keyHash: verifier.keyHash,
    verifierKey,
    sign(msg: Uint8Array): Uint8Array {
      const raw = runSigner(command, 'sign', Buffer.from(msg), env);
      const text = raw.toString('latin1').trim();
      const sig = raw.length === 64 ? raw : /^[A-Za-z0-9+/=\s]+$/.test(text) ? Buffer.from(text, 'base64') : Buffer.alloc(0);
      if (sig.length !== 64 || !verify(null, msg, keyObject, sig)) {
        throw new WitnessError(
          'invalid_key',
          `The signer command (${SIGNER_COMMAND_ENV}) answered with ${sig.length === 64 ? 'a signature that does not verify with its public key' : `${raw.length} bytes, not a 64-byte Ed25519 signature`} ${keyFingerprint(verifier)}; nothing was signed and the events stay unsealed until it signs correctly.`,
        );
      }
      return new Uint8Array(sig);
    },
  };
}

function runSigner(command: string, request: 'public-key' | 'sign', input: Buffer, env: NodeJS.ProcessEnv): Buffer {
  const r = spawnSync('/bin/sh', ['-c', command], { input, env: { ...env, WITNESS_SIGNER_REQUEST: request }, timeout: SIGNER_TIMEOUT_MS, maxBuffer: 64 * 1024 });
  const what = request === 'sign' ? 'nothing was signed and the events stay unsealed until the next seal succeeds' : 'no key was loaded';
  if (r.error !== undefined) {
    throw new WitnessError('invalid_key', `The signer command (${SIGNER_COMMAND_ENV}) could not run (${r.error.message}); ${what}.`, { cause: r.error });
  }
  if (r.status !== 0) {
    const why = r.signal !== null ? `killed by ${r.signal}` : `exit ${r.status}`;
    const err = r.stderr.toString('utf8').trim().split('\n')[0]?.slice(0, 200) ?? '';
    throw new WitnessError(
      'invalid_key',
      `The signer command (${SIGNER_COMMAND_ENV}) failed when asked to ${request === 'sign' ? 'sign' : 'give its public key'} (${why}${err === '' ? '' : `: ${err}`}); ${what}.`,
    );
  }
  return r.stdout;
}

function parsePublicKeyAnswer(out: Buffer, command: string, env: NodeJS.ProcessEnv): { name: string; publicKey: Uint8Array } {
  const text = out.toString('utf8').trim();
  const name = (env[SIGNER_NAME_ENV] ?? '').trim() || 'witness-signer';
  try {
    if (/^[^\s+]+\+[0-9a-fA-F]{8}\+[A-Za-z0-9+/=]+$/.test(text)) {
      const v = parseVerifierKey(text);
      return { name: v.name, publicKey: v.publicKey };
    }
    let der: Buffer | undefined;
    if (text.startsWith('-----BEGIN PUBLIC KEY-----')) der = createPublicKey(text).export({ format: 'der', type: 'spki' });
    else if (out.length === 44 && out.subarray(0, 12).equals(SPKI_ED25519_PREFIX)) der = out;
    if (der !== undefined && der.length === 44 && der.subarray(0, 12).equals(SPKI_ED25519_PREFIX)) return { name, publicKey: new Uint8Array(der.subarray(12)) };
    if (out.length === 32) return { name, publicKey: new Uint8Array(out) };
  } catch {
    // Reported below in one sentence.
  }
  throw new WitnessError(
    'invalid_key',
    `The signer command (${SIGNER_COMMAND_ENV}: ${JSON.stringify(command.slice(0, 80))}) did not answer WITNESS_SIGNER_REQUEST=public-key with an Ed25519 public key (a verifier key, PEM, DER or 32 raw bytes); fix the command.`,
  );
}

/**
 * After a rotation: the new key takes the key file's place (atomically, 0600, never through a
 * symbolic link) and the old one is kept beside it as `<key>.retired-<hash>` (0600): the ledger
 * still names its public half, and keeping the private half lets a person prove what it signed.
 * The public half goes to `pubPath`.
 */
export function installRotatedKey(keyPath: string, pubPath: string, newSignerKey: string, oldSigner: NoteSigner): { retired: string } {
  refuseKeySymlink(keyPath);
  const newSigner = parseSignerKey(newSignerKey.trim());
  const retired = `${keyPath}.retired-${keyFingerprint(oldSigner).split('+').pop() ?? 'old'}`;
  try {
    if (fs.existsSync(keyPath)) {
      const current = fs.readFileSync(keyPath, 'utf8');
      if (current.trim() !== newSignerKey.trim()) {
        if (!fs.existsSync(retired)) writeKeyFile(retired, current, 0o600);
        writeKeyFile(keyPath, `${newSignerKey.trim()}\n`, 0o600);
      }
    } else {
      writeKeyFile(keyPath, `${newSignerKey.trim()}\n`, 0o600);
    }
    writeKeyFile(pubPath, `${newSigner.verifierKey}\n`, 0o644);
  } catch (e) {
    throw new WitnessError(
      'store_unavailable',
      `The rotation is sealed, but the new key could not be written to ${keyPath} (${(e as Error).message}); put it there yourself from the copy this command kept.`,
      { cause: e },
    );
  }
  return { retired };
}

/** Temporary file, fsync, rename (which replaces a link rather than following it), fsync of the directory. */
function writeKeyFile(file: string, text: string, mode: number): void {
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  try {
    const fd = fs.openSync(tmp, 'wx', mode);
    try {
      fs.writeSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
    syncDirectory(path.dirname(file));
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/** Writes a generated key where an interrupted rotation can find it again (`<key>.next`, 0600); never overwrites one. */
export function keepNextKey(keyPath: string, signerKey: string): string {
  const next = `${keyPath}.next`;
  refuseKeySymlink(next);
  if (fs.existsSync(next)) {
    throw new WitnessError('invalid_argument', `${next} already holds a new key from a rotation that did not finish; complete it with \`witness keys rotate --new-key ${next}\`, or move it aside.`);
  }
  writeKeyFile(next, `${signerKey}\n`, 0o600);
  return next;
}
