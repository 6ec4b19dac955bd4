/**
 * C2SP tlog-cosignature v1 with Ed25519 (https://c2sp.org/tlog-cosignature): the key type 0x04,
 * its key ID SHA-256(name ‖ "\n" ‖ 0x04 ‖ public key)[:4], and the signature line
 * `— <name> base64(key ID ‖ u64 big-endian timestamp ‖ Ed25519 signature)` over
 * "cosignature/v1\ntime <unix>\n" ‖ checkpoint body. A cosigner key is deliberately not a note
 * (0x01) key: the same key must never sign both notes and cosignatures (the message formats do
 * not commit to which was meant).
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { WitnessError } from '../core/index.js';

export const COSIGNATURE_ALG = 0x04;
const SIG_PREFIX = '\u2014 ';
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const KEY_NAME = /^[^\s+\u0000-\u001f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/u;
/** The spec caps the timestamp at 2^63 - 1; JavaScript numbers are exact only to 2^53. */
const MAX_TIMESTAMP = BigInt(Number.MAX_SAFE_INTEGER);

export interface CosignerVerifier {
  readonly name: string;
  readonly keyHash: number;
  readonly vkey: string;
  readonly publicKey: KeyObject;
}

export interface CosignerSigner extends CosignerVerifier {
  readonly privateKey: KeyObject;
}

export interface Cosignature {
  readonly name: string;
  readonly keyHash: number;
  /** POSIX seconds the cosigner put in the signed message. */
  readonly timestamp: number;
  readonly signature: Uint8Array;
  /** The signature line as received, ending in a newline. */
  readonly line: string;
}

function invalidKey(message: string): WitnessError {
  return new WitnessError('invalid_key', message);
}

function strictBase64(s: string): Buffer | undefined {
  if (!BASE64.test(s)) return undefined;
  const b = Buffer.from(s, 'base64');
  return b.toString('base64') === s ? b : undefined;
}

function keyHashOf(name: string, publicKey: Uint8Array): number {
  return createHash('sha256').update(`${name}\n`, 'utf8').update(Uint8Array.of(COSIGNATURE_ALG)).update(publicKey).digest().readUInt32BE(0);
}

const hex8 = (n: number) => n.toString(16).padStart(8, '0');

function checkName(name: string): void {
  if (!KEY_NAME.test(name))
    throw invalidKey(`The cosigner name ${JSON.stringify(name)} must be non-empty with no spaces, plus signs or control characters (a schema-less URL such as witness.example.com/w1).`);
}

export function generateCosignerKey(name: string): { signerKey: string; verifierKey: string } {
  checkName(name);
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_ED25519_PREFIX.length);
  const pub = publicKey.export({ format: 'der', type: 'spki' }).subarray(SPKI_ED25519_PREFIX.length);
  const hash = hex8(keyHashOf(name, pub));
  const alg = Uint8Array.of(COSIGNATURE_ALG);
  return {
    signerKey: `PRIVATE+KEY+${name}+${hash}+${Buffer.concat([alg, seed]).toString('base64')}`,
    verifierKey: `${name}+${hash}+${Buffer.concat([alg, pub]).toString('base64')}`,
  };
}

function splitKey(text: string, what: string): { name: string; hash: number; raw: Buffer } {
  // The base64 key may itself hold '+': split at the first two only.
  const i = text.indexOf('+');
  const j = i < 0 ? -1 : text.indexOf('+', i + 1);
  if (i < 0 || j < 0) throw invalidKey(`The ${what} must have the form <name>+<8 hex digits>+<base64 key>.`);
  const [name, hash, data] = [text.slice(0, i), text.slice(i + 1, j), text.slice(j + 1)];
  checkName(name);
  if (!/^[0-9a-f]{8}$/.test(hash)) throw invalidKey(`The ${what} hash must be exactly 8 lowercase hexadecimal digits.`);
  const raw = strictBase64(data);
  if (raw === undefined || raw.length !== 33) throw invalidKey(`The ${what} must hold one type byte and 32 bytes of Ed25519 key in standard base64.`);
  if (raw[0] !== COSIGNATURE_ALG) {
    throw invalidKey(`The ${what} has type 0x${raw[0]!.toString(16).padStart(2, '0')}, not 0x04 (an Ed25519 cosignature key); a log's note key cannot be used as a cosigner key.`);
  }
  return { name, hash: Number.parseInt(hash, 16), raw: raw.subarray(1) };
}

export function parseCosignerVerifierKey(vkey: string): CosignerVerifier {
  const { name, hash, raw } = splitKey(vkey.trim(), 'cosigner verifier key');
  if (keyHashOf(name, raw) !== hash) throw invalidKey('The cosigner verifier key hash does not match its name and public key.');
  const publicKey = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' });
  return { name, keyHash: hash, vkey: vkey.trim(), publicKey };
}

export function parseCosignerSignerKey(skey: string): CosignerSigner {
  const text = skey.trim();
  if (!text.startsWith('PRIVATE+KEY+')) throw invalidKey('The cosigner key file must hold PRIVATE+KEY+<name>+<hash>+<key> (made by `witness cosign init`).');
  const { name, hash, raw } = splitKey(text.slice('PRIVATE+KEY+'.length), 'cosigner signer key');
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, raw]), format: 'der', type: 'pkcs8' });
  const pub = createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(SPKI_ED25519_PREFIX.length);
  if (keyHashOf(name, pub) !== hash) throw invalidKey('The cosigner signer key hash does not match its name and key.');
  const vkey = `${name}+${hex8(hash)}+${Buffer.concat([Uint8Array.of(COSIGNATURE_ALG), pub]).toString('base64')}`;
  return { name, keyHash: hash, vkey, publicKey: createPublicKey(privateKey), privateKey };
}

/** The exact bytes a v1 Ed25519 cosignature signs (tlog-cosignature, "Ed25519 signed message"). */
export function cosignedMessage(checkpointBody: string, timestamp: number): Buffer {
  return Buffer.from(`cosignature/v1\ntime ${timestamp}\n${checkpointBody}`, 'utf8');
}

/** Signs a checkpoint body (the note text without signature lines); returns the note signature line. */
export function cosign(signer: CosignerSigner, checkpointBody: string, timestamp: number): string {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw new WitnessError('invalid_argument', 'A cosignature timestamp must be a non-negative whole number of seconds.');
  const sig = sign(null, cosignedMessage(checkpointBody, timestamp), signer.privateKey);
  const ts = Buffer.alloc(8);
  ts.writeBigUInt64BE(BigInt(timestamp));
  const id = Buffer.alloc(4);
  id.writeUInt32BE(signer.keyHash);
  return `${SIG_PREFIX}${signer.name} ${Buffer.concat([id, ts, sig]).toString('base64')}\n`;
}

/** Parses one signature line (with or without its newline); undefined when it is not a well-formed cosignature line. */
export function parseCosignatureLine(line: string): Cosignature | undefined {
  const l = line.endsWith('\n') ? line.slice(0, -1) : line;
  if (!l.startsWith(SIG_PREFIX) || l.includes('\n')) return undefined;
  const body = l.slice(SIG_PREFIX.length);
  const sp = body.indexOf(' ');
  if (sp <= 0) return undefined;
  const name = body.slice(0, sp);
  const raw = strictBase64(body.slice(sp + 1));
  if (!KEY_NAME.test(name) || raw === undefined || raw.length !== 4 + 8 + 64) return undefined;
  const ts = raw.readBigUInt64BE(4);
  if (ts > MAX_TIMESTAMP) return undefined;
  return { name, keyHash: raw.readUInt32BE(0), timestamp: Number(ts), signature: Uint8Array.from(raw.subarray(12)), line: `${l}\n` };
}

/** Whether `cosig` is this cosigner's valid v1 signature over exactly `checkpointBody`. */
export function verifyCosignature(v: CosignerVerifier, checkpointBody: string, cosig: Cosignature): boolean {
  if (cosig.name !== v.name || cosig.keyHash !== v.keyHash) return false;
  try {
    return verify(null, cosignedMessage(checkpointBody, cosig.timestamp), v.publicKey, cosig.signature);
  } catch {
    return false;
  }
}

export function cosignerLabel(v: { name: string; keyHash: number }): string {
  return `${v.name}+${hex8(v.keyHash)}`;
}
