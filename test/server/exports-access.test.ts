import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { EXPORT_TTL_MS } from '../../src/server/handlers/exports.js';
import { ACCESS_STREAM } from '../../src/server/index.js';
import { tempDir } from '../helpers/tmp.js';
import { serverFixture, type ServerFixture } from './fixture.js';

/**
 * Exports are the auditor's (the issue: "auditor (read everything, verify, export)"; an admin
 * keeps keys and configuration and reads no audit data), every look at one is an audit read, and
 * a finished export does not sit on the server's disk for ever.
 */
const dir = tempDir('witness-server-exports-access-');
const cwd = process.cwd();
let f: ServerFixture;

beforeAll(async () => {
  process.chdir(dir);
  f = await serverFixture(dir);
});
afterAll(async () => {
  vi.useRealTimers();
  process.chdir(cwd);
  await f.close();
});

async function finished(id: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 400; i++) {
    const doc = (await (await f.call('GET', `/v1/exports/${id}`, { key: f.keys.auditor })).json()) as Record<string, unknown>;
    if (doc['status'] !== 'running') return doc;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`export ${id} did not finish`);
}

describe('exports: who, what is recorded, and for how long', () => {
  it('an admin can neither start an export nor read one an auditor started', async () => {
    expect((await f.call('POST', '/v1/exports', { key: f.keys.admin, body: { session: f.built.sessions.b } })).status).toBe(403);
    const started = await f.call('POST', '/v1/exports', { key: f.keys.auditor, body: { session: f.built.sessions.b } });
    const { id } = (await started.json()) as { id: string };
    expect(await finished(id)).toMatchObject({ status: 'done' });
    expect((await f.call('GET', `/v1/exports/${id}`, { key: f.keys.admin })).status).toBe(403);
    expect((await f.call('GET', `/v1/exports/${id}/bundle.zip`, { key: f.keys.admin })).status).toBe(403);
  });

  it("an auditor's look at an export's status is recorded as audit.access naming the session", async () => {
    const started = await f.call('POST', '/v1/exports', { key: f.keys.auditor, body: { session: f.built.sessions.a } });
    const { id } = (await started.json()) as { id: string };
    await finished(id);
    const before = (await f.ledger.readStream(ACCESS_STREAM)).length;
    expect((await f.call('GET', `/v1/exports/${id}`, { key: f.keys.auditor })).status).toBe(200);
    const after = await f.ledger.readStream(ACCESS_STREAM);
    expect(after.length).toBe(before + 1);
    expect(after.at(-1)).toMatchObject({
      kind: 'audit.access',
      resource: f.built.sessions.a,
      action: 'GET /v1/exports/:id',
      data: { operation: 'view', role: 'auditor', scope: { request: `/v1/exports/${id}` } },
    });
  });

  it(`a finished export and its bundle are gone ${EXPORT_TTL_MS / 3_600_000} h after it finished: 404, and the zip deleted`, async () => {
    const started = await f.call('POST', '/v1/exports', { key: f.keys.auditor, body: { session: f.built.sessions.b } });
    const { id } = (await started.json()) as { id: string };
    expect(await finished(id)).toMatchObject({ status: 'done' });
    const zip = path.join(dir, 'witness-exports', `${id}.zip`);
    expect(fs.existsSync(zip)).toBe(true);
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + EXPORT_TTL_MS - 60_000 });
    expect((await f.call('GET', `/v1/exports/${id}`, { key: f.keys.auditor })).status).toBe(200);
    vi.setSystemTime(Date.now() + 120_000);
    const gone = await f.call('GET', `/v1/exports/${id}/bundle.zip`, { key: f.keys.auditor });
    expect(gone.status).toBe(404);
    expect((await f.call('GET', `/v1/exports/${id}`, { key: f.keys.auditor })).status).toBe(404);
    expect(fs.existsSync(zip)).toBe(false);
    vi.useRealTimers();
  });
});
