import crypto from 'node:crypto';
import { EVENT_DOMAIN, eventHash, payloadDigest } from './chain.js';

/**
 * The verifier's two per-event SHA-256s over the stored bytes, without the per-call buffers of
 * chain.ts: the input is written into one scratch buffer (the event domain stays in place at its
 * start) and digested in one `crypto.hash` call. Same bytes in, same digests out as
 * `payloadDigest` and `eventHash` (test/core/verify-hash.test.ts compares them); verification is
 * synchronous, so one scratch buffer per thread is never shared by two calls at once.
 */

const oneShot = (crypto as { hash?: (alg: string, data: Uint8Array, enc: 'buffer' | 'hex') => Buffer | string }).hash;

const PREFIX = EVENT_DOMAIN.length + 32;
/** [0] for payloads, [1] for headers, which keeps the event domain at its start. */
const scratch = [Buffer.allocUnsafe(1 << 16), Buffer.allocUnsafe(1 << 16)];
EVENT_DOMAIN.copy(scratch[1]!, 0);

/** Room for `head` bytes plus `text` in UTF-8 (at most 3 bytes per UTF-16 unit). */
function room(which: 0 | 1, head: number, text: string): Buffer {
  const need = head + text.length * 3;
  let s = scratch[which]!;
  if (need > s.length) {
    s = Buffer.allocUnsafe(Math.max(need, s.length * 2));
    if (which === 1) EVENT_DOMAIN.copy(s, 0);
    scratch[which] = s;
  }
  return s;
}

/**
 * hex(SHA-256(salt ‖ data)): the payload digest, as the header spells it. The salt comes as bytes
 * or as hex (a driver's verify scan reads it so: a Buffer per row cost ~2 µs, measured).
 */
export function payloadDigestHex(salt: Uint8Array | string, data: string): string {
  if (typeof salt === 'string') {
    if (oneShot === undefined) return payloadDigest(Buffer.from(salt, 'hex'), data).toString('hex');
    // Hex decodes to at most half its length; writing stops at the first character that is not hex,
    // as Buffer.from(salt, 'hex') does.
    const s = room(0, salt.length >> 1, data);
    const k = s.write(salt, 0, 'hex');
    const n = k + s.write(data, k, 'utf8');
    return oneShot('sha256', s.subarray(0, n), 'hex') as string;
  }
  if (oneShot === undefined) return payloadDigest(salt, data).toString('hex');
  const s = room(0, salt.length, data);
  s.set(salt, 0);
  const n = salt.length + s.write(data, salt.length, 'utf8');
  return oneShot('sha256', s.subarray(0, n), 'hex') as string;
}

/** SHA-256("witness/event/v1\n" ‖ prev ‖ header), with `prev` given as the header's 64 hex characters. */
export function eventHashFromHex(prevHex: string, header: string): Buffer {
  if (oneShot === undefined) return eventHash(Buffer.from(prevHex, 'hex'), header);
  const s = room(1, PREFIX, header);
  s.write(prevHex, EVENT_DOMAIN.length, 'hex');
  const n = PREFIX + s.write(header, PREFIX, 'utf8');
  return oneShot('sha256', s.subarray(0, n), 'buffer') as Buffer;
}
