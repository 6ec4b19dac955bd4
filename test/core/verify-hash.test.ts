import { describe, expect, it } from 'vitest';
import { eventHash, payloadDigest } from '../../src/core/index.js';
import { eventHashFromHex, payloadDigestHex } from '../../src/core/verify-hash.js';
import { randomString, rng } from '../helpers/random.js';

describe("the verifier's hashing into scratch buffers", () => {
  it('gives the digests of chain.ts for the same bytes, alternating and across a buffer regrowth', () => {
    const r = rng(7);
    for (let i = 0; i < 500; i++) {
      const salt = Buffer.from(Array.from({ length: 32 }, () => Math.floor(r() * 256)));
      const prev = Buffer.from(Array.from({ length: 32 }, () => Math.floor(r() * 256)));
      // Mostly short texts, sometimes one past the 64 KiB scratch buffer, with non-ASCII and lone surrogates.
      const text = i % 97 === 0 ? 'é€😀'.repeat(30_000) : `${randomString(r)}\ud800${randomString(r)}`;
      expect(payloadDigestHex(salt, text)).toBe(payloadDigest(salt, text).toString('hex'));
      expect(eventHashFromHex(prev.toString('hex'), text).equals(eventHash(prev, text))).toBe(true);
    }
  });
});
