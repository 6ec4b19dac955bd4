import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { GatewayAgentConfig } from './http-config.js';

/**
 * Bearer API keys for the HTTP gateway. The configuration holds only SHA-256 hashes of the keys,
 * so a leaked config file grants nothing; a presented key is hashed and compared against every
 * configured hash in constant time, without stopping at the first match, so neither the timing
 * nor the order of the agents tells an attacker anything.
 */

export const KEY_PREFIX = 'wk_';

export interface AuthenticatedAgent {
  id: string;
  /** Key id recorded with every event: the first 12 hex digits of the key's hash, never the key. */
  credential: string;
}

export type AuthResult = { ok: true; agent: AuthenticatedAgent } | { ok: false; reason: 'missing' | 'malformed' | 'unknown'; fingerprint?: string };

export function keySha256(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** What a record may say about a presented key: enough to tell keys apart, nothing to use. */
export function keyFingerprint(key: string): string {
  return keySha256(key).slice(0, 12);
}

/** A fresh key: 32 random bytes, base64url, with a prefix that secret scanners can spot. */
export function newGatewayKey(): string {
  return `${KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
}

export class KeyRing {
  private readonly entries: Array<{ id: string; hash: Buffer; credential: string }>;

  constructor(agents: readonly GatewayAgentConfig[]) {
    this.entries = agents.map((a) => ({ id: a.id, hash: Buffer.from(a.keySha256, 'hex'), credential: a.keySha256.slice(0, 12) }));
  }

  /** Reads `Authorization: Bearer <key>` and names the agent the key belongs to. */
  authenticate(header: string | undefined): AuthResult {
    if (header === undefined || header.trim() === '') return { ok: false, reason: 'missing' };
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header.trim());
    if (m === null) return { ok: false, reason: 'malformed' };
    const key = m[1]!;
    const presented = createHash('sha256').update(key, 'utf8').digest();
    let found: (typeof this.entries)[number] | undefined;
    for (const e of this.entries) {
      // No early exit: every hash is compared, whichever matches.
      if (timingSafeEqual(presented, e.hash) && found === undefined) found = e;
    }
    if (found === undefined) return { ok: false, reason: 'unknown', fingerprint: keyFingerprint(key) };
    return { ok: true, agent: { id: found.id, credential: found.credential } };
  }
}
