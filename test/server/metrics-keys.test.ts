import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEYS_STREAM } from '../../src/server/index.js';
import { tempDir } from '../helpers/tmp.js';
import { serverFixture, type ServerFixture } from './fixture.js';

describe('/metrics and the API-key records the server ignores', () => {
  const dir = tempDir('witness-server-metrics-keys-');
  let f: ServerFixture;
  beforeAll(async () => {
    f = await serverFixture(dir);
  });
  afterAll(async () => f.close());

  const unverified = async (): Promise<number> => {
    const res = await f.call('GET', '/metrics', { key: f.keys.auditor });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain('# TYPE witness_server_unverified_key_records_total counter');
    return Number(/^witness_server_unverified_key_records_total (\d+)$/m.exec(text)?.[1]);
  };

  it('[R-ROLES] counts key records whose signature does not verify, so operations can alert on a forged key', async () => {
    expect(await unverified()).toBe(0);
    // Anyone who may append to the ledger can write this; the key ring ignores it, and now says so.
    const id = randomBytes(8).toString('hex');
    const key = `wk_${id}_${randomBytes(32).toString('base64url')}`;
    const data = {
      target: 'key',
      description: 'forged',
      op: 'create',
      key_id: id,
      role: 'admin',
      key_sha256: createHash('sha256').update(key).digest('hex'),
      signature: Buffer.alloc(64, 7).toString('base64'),
    };
    await f.ledger.append([{ stream: KEYS_STREAM, agent: { id: 'some-sdk-agent' }, recorder: { kind: 'sdk' }, kind: 'config.change', data } as never]);
    expect((await f.call('GET', '/v1/keys', { key })).status).toBe(401);
    expect(await unverified()).toBe(1);
    // A key the server made itself is not counted.
    expect((await f.call('POST', '/v1/keys', { key: f.keys.admin, body: { role: 'developer', name: 'fine' } })).status).toBe(201);
    expect(await unverified()).toBe(1);
  });
});
