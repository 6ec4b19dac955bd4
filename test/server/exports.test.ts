import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCESS_STREAM } from '../../src/server/index.js';
import { BIN, REPO_ROOT, runBin } from '../helpers/ledger.js';
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
    // The session's 5 events and the access records whose resource names the session (a bundle carries its session's access records):
    // this POST, and any poll of the job recorded before the export picked its events (it verifies the ledger first, so that is timing).
    const before = await f.ledger.readStream(ACCESS_STREAM);
    const exported = before.find((e) => e.action === 'export');
    const named = before.filter((e) => e.resource === session && exported !== undefined && e.seq < exported.seq);
    expect(named[0]).toMatchObject({ action: 'POST /v1/exports' });
    expect(done).toMatchObject({ status: 'done', events: 5 + named.length, artifacts: 1, bundle: `/v1/exports/${job.id}/bundle.zip` });
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

describe('exports over the API of a real `witness serve`', () => {
  it('[R-OFFLINE] a bundle exported through witness serve carries report.html, listed in its manifest, and passes witness verify, verify.mjs and the independent Python verifier', async () => {
    // The server process writes bundles under its own working directory: a directory of this test.
    const cwdOfServer = path.join(dir, 'served');
    fs.mkdirSync(cwdOfServer, { recursive: true });
    const child = spawn(process.execPath, [BIN, 'serve', '--store', `sqlite:${f.built.file}`, '--port', '0'], { cwd: cwdOfServer, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      const url = await new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`witness serve did not start: ${out}`)), 20_000);
        const seen = (c: Buffer) => {
          out += c.toString();
          const m = /listening on (http:\/\/[^\s,;]+)/.exec(out);
          if (m !== null) {
            clearTimeout(t);
            resolve(m[1]!);
          }
        };
        child.stdout.on('data', seen);
        child.stderr.on('data', seen);
        child.once('exit', (code) => reject(new Error(`witness serve exited (${code}): ${out}`)));
      });
      const auth = { authorization: `Bearer ${f.keys.auditor}` };
      const started = await fetch(`${url}/v1/exports`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ session: f.built.sessions.a }) });
      expect(started.status, await started.clone().text()).toBe(202);
      const { id } = (await started.json()) as { id: string };
      let doc: Record<string, unknown> = {};
      for (let i = 0; i < 600 && doc['status'] !== 'done' && doc['status'] !== 'failed'; i++) {
        if (i > 0) await new Promise((r) => setTimeout(r, 50));
        doc = (await (await fetch(`${url}/v1/exports/${id}`, { headers: auth })).json()) as Record<string, unknown>;
      }
      expect(doc['status'], JSON.stringify(doc)).toBe('done');
      const bundle = path.join(dir, 'served-bundle.zip');
      fs.writeFileSync(bundle, Buffer.from(await (await fetch(`${url}/v1/exports/${id}/bundle.zip`, { headers: auth })).arrayBuffer()));

      // The manifest lists report.html with the SHA-256 of the report in the zip (read by Python's zipfile).
      const listed = spawnSync(
        '/usr/bin/python3',
        [
          '-c',
          'import hashlib,json,sys,zipfile; z=zipfile.ZipFile(sys.argv[1]); m=json.loads(z.read("manifest.json")); r=z.read("report.html"); print(json.dumps([m["files"].get("report.html"), hashlib.sha256(r).hexdigest(), b"<html" in r]))',
          bundle,
        ],
        { encoding: 'utf8' },
      );
      expect(listed.stderr).toBe('');
      const [listedSha, actualSha, isHtml] = JSON.parse(listed.stdout) as [string | null, string, boolean];
      expect(listedSha).toBe(actualSha);
      expect(isHtml).toBe(true);

      const witness = await runBin(['verify', bundle, '--trusted-key', f.built.vkey, '--json']);
      expect(witness.code, witness.stdout).toBe(0);
      const standalone = (await import(pathToFileURL(path.join(REPO_ROOT, 'src', 'export', 'standalone', 'verify.mjs')).href)) as {
        verifyTarget(target: string, opts?: { trustedKeys?: string[] }): Promise<{ ok: boolean; failures: unknown[] }>;
      };
      const s = await standalone.verifyTarget(bundle, { trustedKeys: [f.built.vkey] });
      expect(s.failures).toEqual([]);
      expect(s.ok).toBe(true);
      const py = spawnSync('/usr/bin/python3', [path.join(REPO_ROOT, 'test', 'export', 'independent', 'verify_bundle.py'), bundle, '--trusted-key', f.built.vkey, '--json'], { encoding: 'utf8' });
      expect(py.stderr).toBe('');
      expect((JSON.parse(py.stdout) as { verdict: string; failures: unknown[] }).failures).toEqual([]);
      expect(py.status).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  }, 120_000);
});
