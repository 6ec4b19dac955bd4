import { createHash, randomBytes } from 'node:crypto';
import type { EventHeader } from './event.js';

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

export function newSalt(): Buffer {
  return randomBytes(SALT_BYTES);
}

/** `canonicalData` must already be JCS text: we hash exactly the bytes that are stored. */
export function payloadDigest(salt: Uint8Array, canonicalData: string): Buffer {
  return sha256(salt, canonicalData);
}

export function eventHash(prev: Uint8Array, canonicalHeader: string): Buffer {
  return sha256(EVENT_DOMAIN, prev, canonicalHeader);
}

/** The header of a full event: every field but `data`, `salt` and `hash`. */
export function headerOf<T extends EventHeader>(event: T & { data?: unknown; salt?: unknown; hash?: unknown }): EventHeader {
  const { data: _d, salt: _s, hash: _h, ...header } = event;
  return header;
}
