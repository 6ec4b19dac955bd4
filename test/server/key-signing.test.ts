import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalize, generateKey, parseSignerKey, parseVerifierKey } from '../../src/core/index.js';
import { KEYS_STREAM, KeyRing } from '../../src/server/index.js';
import { tempDir } from '../helpers/tmp.js';
import { serverFixture, type ServerFixture } from './fixture.js';

/** What anyone who may append to the ledger can write on the keys stream. */
function forgedCreate(role: string, signature?: string): { id: string; key: string; data: Record<string, unknown> } {
  const id = randomBytes(8).toString('hex');
  const key = `wk_${id}_${randomBytes(32).toString('base64url')}`;
  return {
    id,
    key,
    data: {
      target: 'key',
      description: 'forged',
      op: 'create',
      key_id: id,
      role,
      key_sha256: createHash('sha256').update(key).digest('hex'),
      ...(signature === undefined ? {} : { signature }),
    },
  };
}

describe('API-key records are believed only when signed with the server key', () => {
  const dir = tempDir('witness-server-keysig-');
  let f: ServerFixture;
  beforeAll(async () => {
    f = await serverFixture(dir);
  });
  afterAll(async () => f.close());

  const append = (data: Record<string, unknown>) => f.ledger.append([{ stream: KEYS_STREAM, agent: { id: 'some-sdk-agent' }, recorder: { kind: 'sdk' }, kind: 'config.change', data } as never]);

  it('[R-ROLES] an admin key appended to the keys stream without a valid signature opens nothing, and is counted', async () => {
    const other = parseSignerKey(generateKey('witness-api-keys').signerKey);
    const unsigned = forgedCreate('admin');
    const garbage = forgedCreate('admin', Buffer.alloc(64, 7).toString('base64'));
    const foreign = forgedCreate('admin');
    // Signed over exactly the documented bytes, but with a key that is not this server's.
    const msg = Buffer.concat([
      Buffer.from('witness/api-key/v1\n'),
      Buffer.from(canonicalize({ ledger: f.ledger.info.id, op: 'create', key_id: foreign.id, role: 'admin', key_sha256: foreign.data['key_sha256'] })),
    ]);
    foreign.data['signature'] = Buffer.from(other.sign(msg)).toString('base64');
    for (const forged of [unsigned, garbage, foreign]) await append(forged.data);
    const ring = new KeyRing(f.ledger);
    await ring.refresh();
    expect(ring.unverified).toBe(3);
    for (const forged of [unsigned, garbage, foreign]) {
      const res = await f.call('GET', '/v1/keys', { key: forged.key });
      expect(res.status).toBe(401);
      expect(ring.get(forged.id)).toBeUndefined();
    }
    expect((await f.call('GET', '/v1/keys', { key: f.keys.admin })).status).toBe(200);
  });

  it('[R-KEY-REVOKE] a revocation without a valid signature leaves the key working', async () => {
    await append({ target: 'key', description: 'forged', op: 'revoke', key_id: f.ids.auditor });
    await append({ target: 'key', description: 'forged', op: 'revoke', key_id: f.ids.auditor, signature: Buffer.alloc(64).toString('base64') });
    expect((await f.call('GET', '/v1/sessions', { key: f.keys.auditor })).status).toBe(200);
    const ring = new KeyRing(f.ledger);
    await ring.refresh();
    expect(ring.get(f.ids.auditor)?.revokedAt).toBeUndefined();
  });

  it('[R-ROLES] a key record carries an Ed25519 signature over "witness/api-key/v1\\n" and the canonical JSON of the documented fields, by the 0600 key beside the ledger', async () => {
    const file = `${f.built.file}.keyring.key`;
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const verifier = parseVerifierKey(parseSignerKey(fs.readFileSync(file, 'utf8').trim()).verifierKey);
    const records = (await f.ledger.readStream(KEYS_STREAM)).filter((e) => e.recorder?.kind === 'cli');
    expect(records.length).toBeGreaterThan(0);
    for (const e of records) {
      const d = e.data as Record<string, string>;
      const fields =
        d['op'] === 'create'
          ? {
              ledger: f.ledger.info.id,
              op: 'create',
              key_id: d['key_id'],
              role: d['role'],
              ...(d['agent'] === undefined ? {} : { agent: d['agent'] }),
              ...(d['name'] === undefined ? {} : { name: d['name'] }),
              key_sha256: d['key_sha256'],
            }
          : { ledger: f.ledger.info.id, op: 'revoke', key_id: d['key_id'] };
      const msg = Buffer.concat([Buffer.from('witness/api-key/v1\n'), Buffer.from(canonicalize(fields))]);
      expect(verifier.verify(msg, Buffer.from(d['signature']!, 'base64'))).toBe(true);
    }
  });
});
