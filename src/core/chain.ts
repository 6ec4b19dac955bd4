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
const oneShot = (crypto as { hash?: (alg: string, data: Uint8Array, enc: 'buffer') => Buffer }).hash;

function sha256Of(prefix: Uint8Array, text: string): Buffer {
  if (oneShot === undefined) return sha256(prefix, text);
  const buf = Buffer.allocUnsafe(prefix.length + Buffer.byteLength(text, 'utf8'));
  buf.set(prefix, 0);
  buf.write(text, prefix.length, 'utf8');
  return oneShot('sha256', buf, 'buffer');
}

/** `canonicalData` must already be JCS text: we hash exactly the bytes that are stored. */
export function payloadDigest(salt: Uint8Array, canonicalData: string): Buffer {
  return sha256Of(salt, canonicalData);
}

export function eventHash(prev: Uint8Array, canonicalHeader: string): Buffer {
  const prefix = Buffer.allocUnsafe(EVENT_DOMAIN.length + prev.length);
  EVENT_DOMAIN.copy(prefix, 0);
  prefix.set(prev, EVENT_DOMAIN.length);
  return sha256Of(prefix, canonicalHeader);
}
