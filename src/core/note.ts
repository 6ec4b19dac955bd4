/**
 * C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 keys, wire-compatible with Go's
 * golang.org/x/mod/sumdb/note: the same key strings, key hashes and signature lines, so checkpoints
 * we sign can be checked by existing transparency-log tooling and theirs by us.
 *
 * Parsing is deliberately stricter than Go's where Go is lenient (canonical base64 only, every
 * signature from a known key is verified, not just the first), and every failure is a
 * WitnessError so hostile input can never surface as some other exception type.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { WitnessError } from './errors.js';

/** Go rejects notes with more than 100 signatures; the spec asks that at least 16 be accepted. */
export const MAX_NOTE_SIGNATURES = 100;
/**
 * Checkpoints are a few hundred bytes; a generous cap bounds the work an attacker can make us do
 * before we even look at the signatures.
 */
export const MAX_NOTE_BYTES = 1024 * 1024;

const ALG_ED25519 = 0x01;
const ED25519_KEY_BYTES = 32;
const ED25519_SIG_BYTES = 64;
const SIG_PREFIX = '\u2014 ';

// Raw 32-byte Ed25519 keys become KeyObjects by prepending the fixed DER headers (RFC 8410).
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** Order of the Ed25519 base point (RFC 8032 section 5.1). */
const ED25519_L = (1n << 252n) + 27742317777372353535851937790883648493n;

export interface NoteKeyId {
  readonly name: string;
  /** uint32: first four bytes, big-endian, of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key). */
  readonly keyHash: number;
}

export interface NoteVerifier extends NoteKeyId {
  /** Raw 32-byte Ed25519 public key; lets identical keys listed twice be told from a collision. */
  readonly publicKey: Uint8Array;
  verify(msg: Uint8Array, sig: Uint8Array): boolean;
}

export interface NoteSigner extends NoteKeyId {
  /** The matching verifier key string, so a store can publish it beside its checkpoints. */
  readonly verifierKey: string;
  sign(msg: Uint8Array): Uint8Array;
}

export interface OpenedNote {
  /** The signed text, including its final newline. */
  readonly text: string;
  /** Known keys whose signatures verified, in order of first appearance, each once. */
  readonly verified: NoteKeyId[];
  /** Signatures from keys not in the verifier list; ignored as the spec requires. */
  readonly unknown: NoteKeyId[];
}

const UNICODE_SPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;
const FORBIDDEN_CONTROL = /[\u0000-\u0009\u000b-\u001f]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const HEX_HASH = /^[0-9a-fA-F]{8}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Strict standard base64: Buffer.from(_, 'base64') silently skips junk, so without this a mangled
 * key or signature could decode to something valid.
 */
export function decodeBase64Strict(s: string): Uint8Array | undefined {
  if (!BASE64.test(s)) return undefined;
  const bytes = Buffer.from(s, 'base64');
  // Non-zero padding bits would give two spellings of the same bytes.
  if (bytes.toString('base64') !== s) return undefined;
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function isWellFormedText(s: string): boolean {
  return !FORBIDDEN_CONTROL.test(s) && !LONE_SURROGATE.test(s);
}

/** Key names: non-empty, no Unicode space, no '+', and (since they appear in notes) no control characters. */
export function isValidKeyName(name: string): boolean {
  return name !== '' && !UNICODE_SPACE.test(name) && !name.includes('+') && isWellFormedText(name);
}

export function computeKeyHash(name: string, publicKey: Uint8Array): number {
  const h = createHash('sha256');
  h.update(Buffer.from(`${name}\n`, 'utf8'));
  h.update(Uint8Array.of(ALG_ED25519));
  h.update(publicKey);
  return h.digest().readUInt32BE(0);
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

/** `name+hash`, the short form of a key an auditor compares by eye. */
export function keyFingerprint(k: NoteKeyId): string {
  return `${k.name}+${hex8(k.keyHash)}`;
}

function keyLabel(id: NoteKeyId): string {
  return `${id.name}+${hex8(id.keyHash)}`;
}

function b64(...parts: Uint8Array[]): string {
  return Buffer.concat(parts).toString('base64');
}

function invalidKey(message: string): WitnessError {
  return new WitnessError('invalid_key', message);
}

function publicKeyObject(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' });
}

/**
 * RFC 8032 requires S < L; accepting S + L would make signatures malleable. OpenSSL 3 already
 * checks this, but the guarantee must not depend on which crypto library Node was built with.
 */
export function isCanonicalEd25519Signature(sig: Uint8Array): boolean {
  if (sig.length !== ED25519_SIG_BYTES) return false;
  const s = BigInt(`0x${Buffer.from(sig.subarray(32)).reverse().toString('hex')}`);
  return s < ED25519_L;
}

function makeVerifier(name: string, keyHash: number, publicKey: Uint8Array): NoteVerifier {
  let key: KeyObject;
  try {
    key = publicKeyObject(publicKey);
  } catch (cause) {
    throw new WitnessError('invalid_key', `The verifier key for ${name} is not a usable Ed25519 public key.`, { cause });
  }
  const pub = Uint8Array.from(publicKey);
  return {
    name,
    keyHash,
    publicKey: pub,
    verify(msg: Uint8Array, sig: Uint8Array): boolean {
      if (!isCanonicalEd25519Signature(sig)) return false;
      try {
        return verify(null, msg, key, sig);
      } catch {
        return false;
      }
    },
  };
}

/** Parses `<name>+<8 hex key hash>+<base64(0x01 ‖ 32-byte public key)>`. */
export function parseVerifierKey(vkey: string): NoteVerifier {
  if (typeof vkey !== 'string') throw invalidKey('The verifier key must be a string of the form <name>+<hash>+<key>.');
  const i = vkey.indexOf('+');
  const j = i < 0 ? -1 : vkey.indexOf('+', i + 1);
  if (i < 0 || j < 0) throw invalidKey('The verifier key must have the form <name>+<hash>+<key>.');
  const name = vkey.slice(0, i);
  const hash16 = vkey.slice(i + 1, j);
  const key = decodeBase64Strict(vkey.slice(j + 1));
  if (!isValidKeyName(name)) throw invalidKey('The verifier key name must be non-empty with no spaces, plus signs or control characters.');
  if (!HEX_HASH.test(hash16)) throw invalidKey('The verifier key hash must be exactly 8 hexadecimal digits.');
  if (key === undefined || key.length === 0) throw invalidKey('The verifier key data must be non-empty standard base64.');
  if (key[0] !== ALG_ED25519) throw invalidKey('The verifier key uses an unknown algorithm; only Ed25519 (0x01) is supported.');
  if (key.length !== 1 + ED25519_KEY_BYTES) throw invalidKey('The verifier key must hold exactly 32 bytes of Ed25519 public key.');
  const keyHash = Number.parseInt(hash16, 16);
  const publicKey = key.subarray(1);
  if (computeKeyHash(name, publicKey) !== keyHash) throw invalidKey('The verifier key hash does not match its name and public key.');
  return makeVerifier(name, keyHash, publicKey);
}

/** Parses `PRIVATE+KEY+<name>+<8 hex key hash>+<base64(0x01 ‖ 32-byte seed)>`. */
export function parseSignerKey(skey: string): NoteSigner {
  if (typeof skey !== 'string' || !skey.startsWith('PRIVATE+KEY+')) {
    throw invalidKey('The signer key must have the form PRIVATE+KEY+<name>+<hash>+<key>.');
  }
  const rest = skey.slice('PRIVATE+KEY+'.length);
  const i = rest.indexOf('+');
  const j = i < 0 ? -1 : rest.indexOf('+', i + 1);
  if (i < 0 || j < 0) throw invalidKey('The signer key must have the form PRIVATE+KEY+<name>+<hash>+<key>.');
  const name = rest.slice(0, i);
  const hash16 = rest.slice(i + 1, j);
  const key = decodeBase64Strict(rest.slice(j + 1));
  if (!isValidKeyName(name)) throw invalidKey('The signer key name must be non-empty with no spaces, plus signs or control characters.');
  if (!HEX_HASH.test(hash16)) throw invalidKey('The signer key hash must be exactly 8 hexadecimal digits.');
  if (key === undefined || key.length === 0) throw invalidKey('The signer key data must be non-empty standard base64.');
  if (key[0] !== ALG_ED25519) throw invalidKey('The signer key uses an unknown algorithm; only Ed25519 (0x01) is supported.');
  if (key.length !== 1 + ED25519_KEY_BYTES) throw invalidKey('The signer key must hold exactly a 32-byte Ed25519 seed.');
  let privateKey: KeyObject;
  let publicKey: Uint8Array;
  try {
    privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, key.subarray(1)]), format: 'der', type: 'pkcs8' });
    publicKey = new Uint8Array(createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(SPKI_ED25519_PREFIX.length));
  } catch (cause) {
    throw new WitnessError('invalid_key', 'The signer key is not a usable Ed25519 seed.', { cause });
  }
  const keyHash = Number.parseInt(hash16, 16);
  // The hash commits to the public key, so it can only be checked after deriving it from the seed.
  if (computeKeyHash(name, publicKey) !== keyHash) throw invalidKey('The signer key hash does not match its name and public key.');
  return {
    name,
    keyHash,
    verifierKey: formatVerifierKey(name, publicKey),
    sign(msg: Uint8Array): Uint8Array {
      return new Uint8Array(sign(null, msg, privateKey));
    },
  };
}

/** Builds the verifier key string for a raw 32-byte Ed25519 public key. */
export function formatVerifierKey(name: string, publicKey: Uint8Array): string {
  if (!isValidKeyName(name)) throw invalidKey('A key name must be non-empty with no spaces, plus signs or control characters.');
  if (publicKey.length !== ED25519_KEY_BYTES) throw invalidKey('An Ed25519 public key must be exactly 32 bytes.');
  return `${name}+${hex8(computeKeyHash(name, publicKey))}+${b64(Uint8Array.of(ALG_ED25519), publicKey)}`;
}

export function generateKey(name: string): { signerKey: string; verifierKey: string } {
  if (!isValidKeyName(name)) throw invalidKey('A key name must be non-empty with no spaces, plus signs or control characters.');
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_ED25519_PREFIX.length);
  const pub = publicKey.export({ format: 'der', type: 'spki' }).subarray(SPKI_ED25519_PREFIX.length);
  const hash = hex8(computeKeyHash(name, pub));
  return {
    signerKey: `PRIVATE+KEY+${name}+${hash}+${b64(Uint8Array.of(ALG_ED25519), seed)}`,
    verifierKey: `${name}+${hash}+${b64(Uint8Array.of(ALG_ED25519), pub)}`,
  };
}

function isUint32(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
}

/**
 * Signs `text` (which must end in a newline) with every signer, in order, and returns the encoded
 * note: the text, a blank line, then one `— <name> <base64(key hash ‖ signature)>` line per signer.
 */
export function signNote(text: string, signers: readonly NoteSigner[]): string {
  if (typeof text !== 'string' || !text.endsWith('\n')) {
    throw new WitnessError('invalid_argument', 'The note text must end with a newline.');
  }
  if (!isWellFormedText(text)) {
    throw new WitnessError('invalid_argument', 'The note text must be valid Unicode without control characters other than newline.');
  }
  if (Buffer.byteLength(text, 'utf8') > MAX_NOTE_BYTES) {
    throw new WitnessError('invalid_argument', `The note text exceeds the ${MAX_NOTE_BYTES}-byte limit.`);
  }
  if (signers.length === 0) throw new WitnessError('invalid_argument', 'A note needs at least one signer.');
  if (signers.length > MAX_NOTE_SIGNATURES) {
    throw new WitnessError('invalid_argument', `A note may carry at most ${MAX_NOTE_SIGNATURES} signatures.`);
  }
  const msg = Buffer.from(text, 'utf8');
  const seen = new Set<string>();
  let sigs = '';
  for (const s of signers) {
    if (!isValidKeyName(s.name) || !isUint32(s.keyHash)) {
      throw invalidKey('A signer has an invalid key name or key hash.');
    }
    const label = keyLabel(s);
    // Verifiers count a key once, so a second line would only be dead weight or a mistake.
    if (seen.has(label)) throw invalidKey(`The key ${label} is listed twice among the signers.`);
    seen.add(label);
    const hash = Buffer.alloc(4);
    hash.writeUInt32BE(s.keyHash, 0);
    sigs += `${SIG_PREFIX}${s.name} ${b64(hash, s.sign(msg))}\n`;
  }
  return `${text}\n${sigs}`;
}

function malformed(message: string): WitnessError {
  return new WitnessError('invalid_signature', message, { details: { reason: 'malformed' } });
}

function decodeMessage(msg: string | Uint8Array): string {
  if (typeof msg === 'string') {
    // Each UTF-16 unit is at least one UTF-8 byte, so this bounds the work before counting bytes.
    if (msg.length > MAX_NOTE_BYTES || Buffer.byteLength(msg, 'utf8') > MAX_NOTE_BYTES) {
      throw malformed(`The signed note exceeds the ${MAX_NOTE_BYTES}-byte limit.`);
    }
    return msg;
  }
  if (!(msg instanceof Uint8Array)) throw malformed('The signed note must be a string or bytes.');
  if (msg.length > MAX_NOTE_BYTES) throw malformed(`The signed note exceeds the ${MAX_NOTE_BYTES}-byte limit.`);
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(msg);
  } catch (cause) {
    throw new WitnessError('invalid_signature', 'The signed note is not valid UTF-8.', { cause, details: { reason: 'malformed' } });
  }
}

function indexVerifiers(verifiers: readonly NoteVerifier[]): Map<string, NoteVerifier | 'ambiguous'> {
  const byId = new Map<string, NoteVerifier | 'ambiguous'>();
  for (const v of verifiers) {
    if (!isValidKeyName(v.name) || !isUint32(v.keyHash) || !(v.publicKey instanceof Uint8Array)) {
      throw invalidKey('A verifier has an invalid key name, key hash or public key.');
    }
    const label = keyLabel(v);
    const prev = byId.get(label);
    if (prev === undefined) {
      byId.set(label, v);
    } else if (prev !== 'ambiguous' && prev !== v && !Buffer.from(prev.publicKey).equals(Buffer.from(v.publicKey))) {
      // Two different keys with one name and hash: we cannot know which one is meant.
      byId.set(label, 'ambiguous');
    }
  }
  return byId;
}

/**
 * Parses a signed note and checks its signatures against the trusted `verifiers`. Signatures from
 * unknown keys are ignored (and reported); any signature from a known key that fails to verify, or
 * a note with no verified signature at all, is an `invalid_signature` error.
 */
export function openNote(msg: string | Uint8Array, verifiers: readonly NoteVerifier[]): OpenedNote {
  const s = decodeMessage(msg);
  if (!isWellFormedText(s)) throw malformed('The signed note contains control characters or invalid Unicode.');

  // The text is separated from the signatures by the last blank line.
  const split = s.lastIndexOf('\n\n');
  if (split < 0) throw malformed('The signed note has no blank line before its signatures.');
  const text = s.slice(0, split + 1);
  const block = s.slice(split + 2);
  if (block === '' || !block.endsWith('\n')) throw malformed('The signed note must end with signature lines, each ending in a newline.');

  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_NOTE_SIGNATURES) throw malformed(`The signed note has more than ${MAX_NOTE_SIGNATURES} signatures.`);

  const known = indexVerifiers(verifiers);
  const textBytes = Buffer.from(text, 'utf8');
  const verified: NoteKeyId[] = [];
  const unknown: NoteKeyId[] = [];
  const seenVerified = new Set<string>();
  const seenUnknown = new Set<string>();

  for (const line of lines) {
    if (!line.startsWith(SIG_PREFIX)) throw malformed('A signature line does not start with an em dash and a space.');
    const body = line.slice(SIG_PREFIX.length);
    const sp = body.indexOf(' ');
    if (sp < 0) throw malformed('A signature line has no space between key name and signature.');
    const name = body.slice(0, sp);
    const raw = decodeBase64Strict(body.slice(sp + 1));
    if (!isValidKeyName(name)) throw malformed('A signature line has an invalid key name.');
    if (raw === undefined || raw.length < 5) throw malformed('A signature line does not hold a base64 key hash and signature.');
    const id: NoteKeyId = { name, keyHash: Buffer.from(raw.buffer, raw.byteOffset, 4).readUInt32BE(0) };
    const label = keyLabel(id);
    const v = known.get(label);

    if (v === undefined) {
      if (!seenUnknown.has(label)) {
        seenUnknown.add(label);
        unknown.push(id);
      }
      continue;
    }
    if (v === 'ambiguous') throw invalidKey(`More than one trusted verifier key is named ${label}.`);
    // Every signature from a known key is checked, even repeats: a forged duplicate is still a forgery.
    if (!v.verify(textBytes, raw.subarray(4))) {
      throw new WitnessError('invalid_signature', `The signature by key ${label} does not verify.`, {
        details: { reason: 'bad_signature', key: label },
      });
    }
    if (!seenVerified.has(label)) {
      seenVerified.add(label);
      verified.push(id);
    }
  }

  if (verified.length === 0) {
    throw new WitnessError('invalid_signature', 'The note has no signature from a trusted key.', {
      details: { reason: 'unverified', unknown: unknown.map(keyLabel) },
    });
  }
  return { text, verified, unknown };
}
