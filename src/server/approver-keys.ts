import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { APPROVER_NAME, WitnessError, generateKey, keyFingerprint, parseSignerKey, parseVerifierKey, type NoteSigner } from '../core/index.js';
import type { LedgerInfo } from '../store/index.js';

/**
 * Server-held approver signing keys. A decision counts only when signed by an Ed25519 key the
 * policy lists for the approver (src/approvals, core's decisionProblem). A person signed in to the
 * server holds an API key or an OpenID Connect session, not their Ed25519 key, so the server keeps
 * one signing key per approver API key (and per OpenID Connect approver the config lists, named by
 * oidcApproverKeyId) and signs on that person's behalf: whoever
 * controls the server's key directory can approve as any approver it holds a key for (README
 * "Server" says so). The keys live in files (0600, in a 0700 directory), never in the ledger or
 * the database; the API key's id names the file, so the key a request signs with is fixed by the
 * key it authenticated with, never by anything in the request.
 */

/** Overrides where the server keeps approver signing keys. */
export const APPROVER_KEYS_ENV = 'WITNESS_APPROVER_KEYS';

const KEY_ID = /^[0-9a-f]{16}$/;
/** The file id of an OpenID Connect person's key: see oidcApproverKeyId. */
const OIDC_KEY_ID = /^oidc-[0-9a-f]{32}$/;

/**
 * The id that names the approver signing key the server holds for an OpenID Connect person:
 * `oidc-` and 32 hex digits of SHA-256 over the issuer and the subject, both exactly as the
 * provider gives them. The issuer is part of it, so the same `sub` at another provider (another
 * person) never finds this key; the hash keeps whatever characters a provider puts in a subject
 * out of file names.
 */
export function oidcApproverKeyId(issuer: string, subject: string): string {
  return `oidc-${createHash('sha256').update(`witness/oidc-approver/v1\n${issuer}\n${subject}`, 'utf8').digest('hex').slice(0, 32)}`;
}

/**
 * The directory of approver signing keys for a ledger: `dir`, else $WITNESS_APPROVER_KEYS, else
 * beside the ledger like its other secrets (`<db>.approvers/` for SQLite,
 * `~/.witness/postgres/<ledger id>.approvers/` for PostgreSQL, beside its default signing key).
 */
export function approverKeysDir(info: Pick<LedgerInfo, 'id' | 'location'>, dir?: string, env: NodeJS.ProcessEnv = process.env): string {
  const given = dir ?? nonEmpty(env[APPROVER_KEYS_ENV]);
  if (given !== undefined) return path.resolve(given);
  if (/^postgres(?:ql)?:\/\//i.test(info.location)) return path.join(os.homedir(), '.witness', 'postgres', `${info.id}.approvers`);
  return `${info.location}.approvers`;
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function keyPath(dir: string, keyId: string): string {
  if (!KEY_ID.test(keyId) && !OIDC_KEY_ID.test(keyId)) {
    throw new WitnessError('invalid_argument', `${JSON.stringify(keyId)} is not an API key id (16 hex characters) or an OpenID Connect approver's key id.`);
  }
  return path.join(dir, `${keyId}.key`);
}

export interface ApproverKeyInfo {
  /** The approver's identity: the name inside the key, which the decision records. */
  name: string;
  /** The line for the policy file's approvers list. */
  verifierKey: string;
  fingerprint: string;
  file: string;
}

function describe(signer: NoteSigner, file: string): ApproverKeyInfo {
  return { name: signer.name, verifierKey: signer.verifierKey, fingerprint: keyFingerprint(parseVerifierKey(signer.verifierKey)), file };
}

/**
 * Stores the approver signing key for API key `keyId`: a new one named `name`, or a copy of the
 * private key in `from` (a file `witness approver init` wrote, 0600). Never overwrites a key and
 * never writes through a link.
 */
export function storeApproverKey(dir: string, keyId: string, source: { name: string } | { from: string; name?: string }): ApproverKeyInfo {
  const file = keyPath(dir, keyId);
  let signerKey: string;
  if ('from' in source) {
    signerKey = readKeyFile(source.from, 'the --approver-key');
    const signer = parseSigner(signerKey, source.from);
    if (source.name !== undefined && source.name !== signer.name) {
      throw new WitnessError('invalid_argument', `The approver key ${source.from} belongs to ${signer.name}, not to ${source.name}; give --name ${signer.name} or leave --name out.`);
    }
  } else {
    if (!APPROVER_NAME.test(source.name)) {
      throw new WitnessError(
        'invalid_argument',
        `--name "${source.name}" must be the approver's identity, of letters, digits and . _ @ - (at most 128, starting with a letter or digit), as in alice@acme.example.`,
      );
    }
    signerKey = generateKey(source.name).signerKey;
  }
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  } catch (e) {
    throw new WitnessError('conflict', `Cannot create the approver key ${file} (${(e as NodeJS.ErrnoException).code ?? String(e)}); it must not exist yet.`, { cause: e });
  }
  try {
    fs.writeSync(fd, `${signerKey}\n`);
    fs.fchmodSync(fd, 0o600);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return describe(parseSigner(signerKey, file), file);
}

/** The identity inside a person's own approver key file (checked as storeApproverKey checks it), before anything is created. */
export function approverKeyName(file: string): string {
  return parseSigner(readKeyFile(file, 'the --approver-key'), file).name;
}

/** Removes the approver signing key of an API key (on revocation); true when there was one. */
export function removeApproverKey(dir: string, keyId: string): boolean {
  const file = keyPath(dir, keyId);
  try {
    fs.rmSync(file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/**
 * The approver signing key the server holds for API key `keyId` (or an OpenID Connect person's
 * oidcApproverKeyId); refuses (forbidden) when it holds none, with `missing` as the sentence when given.
 */
export function loadApproverKey(dir: string, keyId: string, missing?: string): { signer: NoteSigner; info: ApproverKeyInfo } {
  const file = keyPath(dir, keyId);
  let text: string;
  try {
    text = readKeyFile(file, 'the server-held approver key');
  } catch (e) {
    if (e instanceof WitnessError && e.details?.['missing'] === true) {
      throw new WitnessError(
        'forbidden',
        missing ??
          `This server holds no approver signing key for API key ${keyId}, so it cannot sign a decision for you; an admin creates one with \`witness keys create --role approver --name <you>\` (or links yours with --approver-key).`,
        { details: { refusal: 'no_approver_key' } },
      );
    }
    throw e;
  }
  const signer = parseSigner(text, file);
  return { signer, info: describe(signer, file) };
}

/** A private key file, refused (as ssh refuses one) when it is a link, not a file, or readable by others. */
function readKeyFile(file: string, what: string): string {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new WitnessError('invalid_argument', `${what} ${file} cannot be read (${code ?? String(e)}).`, { cause: e, details: { missing: code === 'ENOENT' } });
  }
  if (!st.isFile()) throw new WitnessError('invalid_argument', `${what} ${file} is not a regular file (a link or directory); give the key file itself.`);
  if ((st.mode & 0o077) !== 0) throw new WitnessError('invalid_argument', `${what} ${file} can be read by other users (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 on it.`);
  return fs.readFileSync(file, 'utf8').trim();
}

function parseSigner(text: string, source: string): NoteSigner {
  try {
    const signer = parseSignerKey(text);
    if (!APPROVER_NAME.test(signer.name)) throw new Error(`its name ${JSON.stringify(signer.name)} is not an approver identity`);
    return signer;
  } catch (e) {
    throw new WitnessError('invalid_argument', `${source} is not an approver key (${(e as Error).message.replace(/\.$/, '')}); use a .key file that witness approver init wrote.`);
  }
}
