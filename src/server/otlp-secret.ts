import { createHash } from 'node:crypto';
import type { LedgerInfo } from '../store/index.js';
import { keyringKeyPath, loadKeyringKey } from './keyring-key.js';

/**
 * The secret OTLP ingest keys its span event ids and hashed stream names by (otlp-map.ts
 * spanEventId, streamFor). Trace and span ids are not secret (W3C traceparent carries them to every
 * downstream service), so an id computed from them alone could be taken first by another caller
 * through POST /v1/events, or probed with a duplicate to learn whether an agent sent a span.
 *
 * It lives where the server keeps its other secrets: it is derived from the ledger's API-key
 * signing key (keyring-key.ts: `<db>.keyring.key`, `~/.witness/postgres/<ledger id>.keyring.key`,
 * or $WITNESS_KEYRING_KEY; 0600, outside the database), so there is no second file to lose or
 * protect, and whoever can only append to the database cannot compute it. Derivation:
 *
 *   SHA-256("witness/otlp-id-secret/v1\n" ‖ Ed25519-sign(keyring key, "witness/otlp-id-secret/v1\n" ‖ ledger id))
 *
 * Ed25519 signatures are deterministic (RFC 8032 §5.1.6), so the same key gives the same secret
 * after a restart (a resent span keeps its id), and only the key's holder can compute it. Replacing
 * the keyring key changes every future span id: spans resent across that change are stored twice.
 */
const LABEL = Buffer.from('witness/otlp-id-secret/v1\n', 'utf8');

const cache = new Map<string, Buffer>();

export function otlpIdSecret(info: Pick<LedgerInfo, 'id' | 'location'>): Buffer {
  const file = keyringKeyPath(info);
  const hit = cache.get(`${info.id}\0${file}`);
  if (hit !== undefined) return hit;
  const key = loadKeyringKey(file, true)!;
  const signature = key.signer.sign(Buffer.concat([LABEL, Buffer.from(info.id, 'utf8')]));
  const secret = createHash('sha256').update(LABEL).update(signature).digest();
  cache.set(`${info.id}\0${file}`, secret);
  return secret;
}
