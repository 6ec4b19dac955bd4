import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approverKeysDir, createKey, storeApproverKey } from '../../src/server/index.js';
import { tempDir } from '../helpers/tmp.js';
import { serverFixture, type ServerFixture } from './fixture.js';

/**
 * Revoking an approver's API key over HTTP deletes the approver signing key the server held for
 * it, as `witness keys revoke` does: the server will not sign with it again, and nobody who reads
 * the directory later can either.
 */
describe('POST /v1/keys/:id/revoke', () => {
  const dir = tempDir('witness-admin-revoke-');
  let f: ServerFixture;
  beforeAll(async () => {
    f = await serverFixture(dir);
  });
  afterAll(async () => {
    await f?.close();
  });

  it('deletes the approver signing key the server held for a revoked approver key, and says so', async () => {
    const { record } = await createKey(f.ledger, { role: 'approver', name: 'bob' }, { who: 'test', recorder: 'cli' });
    const info = storeApproverKey(approverKeysDir(f.ledger.info), record.id, { name: 'bob@acme.example' });
    expect(fs.existsSync(info.file)).toBe(true);
    const res = await f.call('POST', `/v1/keys/${record.id}/revoke`, { key: f.keys.admin, body: {} });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ record: { id: record.id, role: 'approver' }, approver_key_removed: true });
    expect(fs.existsSync(info.file)).toBe(false);
  });

  it('revokes an approver key the server held no signing key for, saying none was removed', async () => {
    const { record } = await createKey(f.ledger, { role: 'approver', name: 'carol' }, { who: 'test', recorder: 'cli' });
    const res = await f.call('POST', `/v1/keys/${record.id}/revoke`, { key: f.keys.admin, body: {} });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ record: { id: record.id }, approver_key_removed: false });
  });

  it('leaves approver signing keys alone when the revoked key is not an approver key', async () => {
    const { record } = await createKey(f.ledger, { role: 'auditor', name: 'dave' }, { who: 'test', recorder: 'cli' });
    const res = await f.call('POST', `/v1/keys/${record.id}/revoke`, { key: f.keys.admin, body: {} });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).not.toHaveProperty('approver_key_removed');
  });
});
