import crypto, { createHash, randomBytes } from 'node:crypto';

/**
 * Hashing, version 1 (see README "How verification works"):
 *
 *   payload_digest = SHA-256(salt ‖ JCS(data))                         salt: 32 random bytes
 *   hash           = SHA-256("witness/event/v1\n" ‖ prev ‖ JCS(header)) prev: 32 raw bytes
 *   genesis        = SHA-256("witness/genesis/v1\n" ‖ origin ‖ "\n" ‖ stream)
 *
 * The domain prefixes keep an event hash from ever being confused with a genesis value or with a
 * Merkle leaf/node (which carry 0x00/0x01 prefixes).
 */
export const EVENT_DOMAIN = Buffer.from('witness/event/v1\n', 'utf8');
export const GENESIS_DOMAIN = Buffer.from('witness/genesis/v1\n', 'utf8');
export const SALT_BYTES = 32;

export function sha256(...parts: Array<Uint8Array | string>): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

export function sha256Hex(...parts: Array<Uint8Array | string>): string {
  return sha256(...parts).toString('hex');
}

export function genesisHash(origin: string, stream: string): Buffer {
  return sha256(GENESIS_DOMAIN, origin, '\n', stream);
}

// One randomBytes call per event costs several microseconds; drawing salts from a pool of
// fresh random bytes keeps them just as unpredictable at a fraction of the cost.
const SALT_POOL_BYTES = SALT_BYTES * 1024;
let saltPool = randomBytes(SALT_POOL_BYTES);
let saltOffset = 0;

export function newSalt(): Buffer {
  if (saltOffset + SALT_BYTES > SALT_POOL_BYTES) {
    saltPool = randomBytes(SALT_POOL_BYTES);
    saltOffset = 0;
  }
  // A copy, so a salt never aliases the pool that later salts are cut from.
  const salt = Buffer.from(saltPool.subarray(saltOffset, saltOffset + SALT_BYTES));
  saltOffset += SALT_BYTES;
  return salt;
}

// crypto.hash (Node >= 20.12) hashes one buffer without building a Hash object: about half the
// cost of createHash for the few hundred bytes of an event, and this runs once or twice per event.
// Asking it for hex rather than a Buffer saves ~0.4 µs more (measured): the Buffer it would make
// costs more than the hashing.
const oneShot = (crypto as { hash?: (alg: string, data: Uint8Array, enc: 'buffer' | 'hex') => Buffer | string }).hash;

/**
 * The bytes to hash are assembled in one reused buffer (hashing is synchronous, so nobody else
 * writes it meanwhile) instead of a fresh allocation per event; a text too large for it gets one
 * of its own so that a single huge payload does not pin megabytes for the life of the process.
 */
const SCRATCH_BYTES = 64 * 1024;
const scratch = Buffer.allocUnsafeSlow(SCRATCH_BYTES);

function hashed(a: Uint8Array, b: Uint8Array | undefined, text: string, enc: 'buffer' | 'hex'): Buffer | string {
  const head = a.length + (b?.length ?? 0);
  const room = head + text.length * 3;
  const buf = room <= SCRATCH_BYTES ? scratch : Buffer.allocUnsafe(room);
  buf.set(a, 0);
  if (b !== undefined) buf.set(b, a.length);
  const n = head + buf.write(text, head, 'utf8');
  return oneShot!('sha256', new Uint8Array(buf.buffer, buf.byteOffset, n), enc);
}

/** `canonicalData` must already be JCS text: we hash exactly the bytes that are stored. */
export function payloadDigest(salt: Uint8Array, canonicalData: string): Buffer {
  return oneShot === undefined ? sha256(salt, canonicalData) : (hashed(salt, undefined, canonicalData, 'buffer') as Buffer);
}

/** `payloadDigest` as lowercase hex, the form the header holds. */
export function payloadDigestHex(salt: Uint8Array, canonicalData: string): string {
  return oneShot === undefined ? sha256Hex(salt, canonicalData) : (hashed(salt, undefined, canonicalData, 'hex') as string);
}

export function eventHash(prev: Uint8Array, canonicalHeader: string): Buffer {
  return oneShot === undefined ? sha256(EVENT_DOMAIN, prev, canonicalHeader) : (hashed(EVENT_DOMAIN, prev, canonicalHeader, 'buffer') as Buffer);
}

/** `eventHash` as lowercase hex. */
export function eventHashHex(prev: Uint8Array, canonicalHeader: string): string {
  return oneShot === undefined ? sha256Hex(EVENT_DOMAIN, prev, canonicalHeader) : (hashed(EVENT_DOMAIN, prev, canonicalHeader, 'hex') as string);
}
