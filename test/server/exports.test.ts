import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCESS_STREAM } from '../../src/server/index.js';
import { runBin } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { serverFixture, type ServerFixture } from './fixture.js';

/**
 * "Start an export" over the API: an auditor starts one, polls it, downloads the bundle as an
 * attachment, and the bundle verifies offline with `witness verify bundle.zip`; the export and
 * the download are each recorded as audit.access (who, what, when, from where), and the bundle is
 * written where the server decides, never where the request says.
 */

const dir = tempDir('witness-server-exports-');
const cwd = process.cwd();
let f: ServerFixture;

beforeAll(async () => {
  // The server writes bundles under its working directory: here, the test's own.
  process.chdir(dir);
  f = await serverFixture(dir);
});
afterAll(async () => {
  process.chdir(cwd);
  await f.close();
});

async function waitForExport(fx: ServerFixture, id: string, key: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 400; i++) {
    const res = await fx.call('GET', `/v1/exports/${id}`, { key });
    const doc = (await res.json()) as Record<string, unknown>;
    if (doc['status'] !== 'running') return doc;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`export ${id} did not finish`);
}

describe('exports over the API', () => {
  it('[R-OFFLINE] an auditor starts an export, downloads bundle.zip as an attachment, and it verifies offline; both are recorded as audit.access', async () => {
    const session = f.built.sessions.b;
    const started = await f.call('POST', '/v1/exports', { key: f.keys.auditor, body: { session } });
    expect(started.status).toBe(202);
    const job = (await started.json()) as { id: string; status: string; session: string };
    expect(job).toMatchObject({ status: 'running', session, started_by: `test auditor (key:${f.ids.auditor})` });
    expect(started.headers.get('location')).toBe(`/v1/exports/${job.id}`);

    const done = await waitForExport(f, job.id, f.keys.auditor);
    // The session's 5 events and the record of this POST, whose resource names the session (a bundle carries its session's access records).
    expect(done).toMatchObject({ status: 'done', events: 6, artifacts: 1, bundle: `/v1/exports/${job.id}/bundle.zip` });
    expect(fs.existsSync(path.join(dir, 'witness-exports', `${job.id}.zip`))).toBe(true);

    const res = await f.call('GET', `/v1/exports/${job.id}/bundle.zip`, { key: f.keys.auditor });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/zip');
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="witness-export-${job.id}.zip"`);
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(String(bytes.length)).toBe(res.headers.get('content-length'));
    expect(bytes.length).toBe(done['bytes']);
    const downloaded = path.join(dir, 'bundle.zip');
    fs.writeFileSync(downloaded, bytes);
    const verified = await runBin(['verify', downloaded, '--trusted-key', f.built.vkey, '--json']);
    expect(verified.code, verified.stderr).toBe(0);
    // Every leaf of the span (other sessions' events as headers only), then the export's own event.
    const span = done['span'] as { from: number; to: number };
    expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true, events: span.to - span.from + 1, artifacts: 1 });

    const records = await f.ledger.readStream(ACCESS_STREAM);
    // The bundle's own export event, appended and sealed before the zip was written, names the key's person.
    const own = records.filter((e) => e.action === 'export');
    expect(own.map((e) => [e.agent, e.principal, e.data?.['actor'], e.data?.['span']])).toEqual([
      [{ id: 'witness-server', credential: f.ids.auditor }, { id: `test auditor (key:${f.ids.auditor})`, kind: 'human' }, `test auditor (key:${f.ids.auditor})`, done['span']],
    ]);
    const access = records.filter((e) => e.data?.['operation'] === 'export' && e.action !== 'export');
    expect(access.map((e) => [e.action, e.resource, e.data?.['key_id'], e.data?.['role'], e.data?.['count']])).toEqual([
      ['POST /v1/exports', session, f.ids.auditor, 'auditor', undefined],
      ['GET /v1/exports/:id/bundle.zip', session, f.ids.auditor, 'auditor', bytes.length],
    ]);
    for (const e of access) {
      expect(e.kind).toBe('audit.access');
      expect(e.data?.['from']).toBeTypeOf('string');
      expect(e.principal).toMatchObject({ kind: 'human' });
    }
  });

  it('never takes a path from the request, and refuses an unknown session, an unknown export and a bad id in one sentence', async () => {
    const withPath = await f.call('POST', '/v1/exports', { key: f.keys.auditor, body: { session: f.built.sessions.a, out: '/tmp/elsewhere.zip' } });
    expect(withPath.status).toBe(400);
    expect(JSON.stringify(await withPath.json())).toMatch(/out/);
    const unknown = await f.call('POST', '/v1/exports', { key: f.keys.auditor, body: { session: 'no-such-session' } });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { message: string } }).error.message).toMatch(/^No session no-such-session in the ledger; .*\.$/);
    const missing = await f.call('GET', '/v1/exports/01234567-89ab-4def-8123-456789abcdef', { key: f.keys.auditor });
    expect(missing.status).toBe(404);
    const bad = await f.call('GET', '/v1/exports/..%2F..%2Fetc%2Fpasswd/bundle.zip', { key: f.keys.auditor });
    expect(bad.status).toBe(400);
  });

  it('runs at most two exports at once: of three started together, one is refused with 409 in one sentence', async () => {
    const body = { session: f.built.sessions.b };
    const answers = await Promise.all([0, 1, 2].map(() => f.call('POST', '/v1/exports', { key: f.keys.auditor, body })));
    expect(answers.map((r) => r.status).sort()).toEqual([202, 202, 409]);
    const refused = answers.find((r) => r.status === 409)!;
    expect(((await refused.json()) as { error: { code: string; message: string } }).error).toMatchObject({
      code: 'conflict',
      message: expect.stringMatching(/^2 exports are running already; .*\.$/) as unknown,
    });
    for (const r of answers.filter((a) => a.status === 202)) expect(await waitForExport(f, ((await r.json()) as { id: string }).id, f.keys.auditor)).toMatchObject({ status: 'done' });
  });

  it('a withheld export carries no artifacts and still verifies', async () => {
    const started = await f.call('POST', '/v1/exports', { key: f.keys.auditor, body: { session: f.built.sessions.b, withhold_data: true } });
    const { id } = (await started.json()) as { id: string };
    expect(await waitForExport(f, id, f.keys.auditor)).toMatchObject({ status: 'done', withheld: true, artifacts: 0 });
    const res = await f.call('GET', `/v1/exports/${id}/bundle.zip`, { key: f.keys.auditor });
    const file = path.join(dir, 'withheld.zip');
    fs.writeFileSync(file, Buffer.from(await res.arrayBuffer()));
    const verified = await runBin(['verify', file, '--trusted-key', f.built.vkey, '--json']);
    expect(verified.code, verified.stderr).toBe(0);
  });
});
