import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import net, { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCESS_STREAM, listen, type RunningServer } from '../../src/server/index.js';
import { openLedger, verifyLedger } from '../../src/store/index.js';
import { BIN, buildLedger, oneSentence, runBin } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { serverFixture, type ServerFixture } from './fixture.js';

describe('the API over a real socket', () => {
  const dir = tempDir('witness-server-http-');
  let f: ServerFixture;
  let server: RunningServer;
  beforeAll(async () => {
    f = await serverFixture(dir);
    server = await listen({ ledger: f.ledger, port: 0, sealEveryMs: 0 });
  });
  afterAll(async () => server.close());

  it('listen() on port 0 serves the API on 127.0.0.1 and records the peer address in audit.access', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ ok: true });
    const res = await fetch(`${server.url}/v1/sessions/${f.built.sessions.a}`, { headers: { authorization: `Bearer ${f.keys.auditor}` } });
    expect(res.status).toBe(200);
    const last = (await f.ledger.readStream(ACCESS_STREAM)).at(-1)!;
    expect(last.data).toMatchObject({ from: '127.0.0.1' });
    expect(last.source).toEqual({ host: '127.0.0.1' });
  });

  it('/v1/openapi.json is OpenAPI 3.1 listing every route with its roles', async () => {
    const doc = (await (await fetch(`${server.url}/v1/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<string, Record<string, { 'x-roles': string[]; parameters?: Array<{ name: string }> }>>;
    };
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.paths['/v1/events']?.['post']?.['x-roles']).toEqual(['agent']);
    expect(doc.paths['/v1/events']?.['get']?.parameters?.map((p) => p.name)).toEqual(expect.arrayContaining(['agent', 'session', 'kind', 'since', 'until', 'q', 'cursor', 'limit']));
    expect(doc.paths['/v1/artifacts/{sha256}']?.['get']?.['x-roles']).toEqual(['auditor']);
  });
});

describe('sealing while serving', () => {
  const dir = tempDir('witness-server-seal-');
  it('a listening server seals what it ingested on its own, and a tail left unsealed before it started', async () => {
    const f = await serverFixture(dir);
    await f.call('POST', '/v1/events', { key: f.keys.agent, body: { events: [{ stream: `before-${randomUUID()}`, kind: 'note', data: { text: 'unsealed' } }] } });
    const server = await listen({ ledger: f.ledger, port: 0, sealEveryMs: 50 });
    try {
      const deadline = Date.now() + 10_000;
      while (((await f.ledger.latestCheckpoint())?.size ?? 0) < f.ledger.info.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect((await f.ledger.latestCheckpoint())?.size).toBe(f.ledger.info.size);
      const res = await fetch(`${server.url}/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${f.keys.agent}`, 'content-type': 'application/json' },
        body: JSON.stringify({ events: [{ stream: `after-${randomUUID()}`, kind: 'note', data: { text: 'sealed soon' } }] }),
      });
      const { receipts } = (await res.json()) as { receipts: Array<{ pos: number }> };
      while (((await f.ledger.latestCheckpoint())?.size ?? 0) <= receipts[0]!.pos && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect((await f.ledger.latestCheckpoint())!.size).toBeGreaterThan(receipts[0]!.pos);
      expect(server.metrics.sealErrors).toBe(0);
    } finally {
      await server.close();
    }
  });
});

describe('witness serve', () => {
  const dir = tempDir('witness-serve-cli-');
  let child: ChildProcess | undefined;
  afterAll(() => {
    child?.kill('SIGKILL');
  });

  it('[R-KEY-REVOKE] serves a ledger, takes keys made and revoked by other `witness keys` processes at once, and on SIGTERM stops with every acknowledged event committed and sealed', async () => {
    const built = await buildLedger(dir);
    const store = `sqlite:${built.file}`;
    const agent = JSON.parse((await runBin(['keys', 'create', '--role', 'agent', '--agent', 'http-bot', '--store', store, '--json'])).stdout) as { key: string; id: string };
    child = spawn(process.execPath, [BIN, 'serve', '--store', store, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const url = await new Promise<string>((resolve, reject) => {
      child!.stdout!.on('data', (d: Buffer) => {
        stdout += d.toString();
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
        if (m) resolve(m[1]!);
      });
      child!.once('exit', (code) => reject(new Error(`witness serve exited ${code}: ${stderr}`)));
    });
    // A key created by another process while the server runs works at once.
    const auditor = JSON.parse((await runBin(['keys', 'create', '--role', 'auditor', '--name', 'dana', '--store', store, '--json'])).stdout) as { key: string; id: string };
    const stream = `http-${randomUUID()}`;
    const receipts: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${url}/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${agent.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ events: [{ stream, kind: i === 0 ? 'session.start' : 'note', agent: { id: 'someone-else' }, data: i === 0 ? {} : { text: `step ${i}` } }] }),
      });
      expect(res.status).toBe(201);
      receipts.push(...((await res.json()) as { receipts: Array<{ id: string }> }).receipts.map((r) => r.id));
    }
    const read = await fetch(`${url}/v1/sessions/${stream}`, { headers: { authorization: `Bearer ${auditor.key}` } });
    expect(read.status).toBe(200);
    expect(((await read.json()) as { events: Array<{ agent: { id: string } }> }).events.map((e) => e.agent.id)).toEqual(Array(5).fill('http-bot'));

    const revoked = await runBin(['keys', 'revoke', auditor.id, '--store', store]);
    expect(revoked.code).toBe(0);
    expect((await fetch(`${url}/v1/sessions/${stream}`, { headers: { authorization: `Bearer ${auditor.key}` } })).status).toBe(401);

    const exit = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exit).toBe(0);
    child = undefined;
    expect(stderr).toContain('stopped');

    const ledger = await openLedger(store, { create: false, readonly: true });
    try {
      const events = await ledger.readStream(stream);
      expect(events.map((e) => e.id)).toEqual(receipts);
      const report = await verifyLedger(ledger);
      expect(report.failures).toEqual([]);
      expect(report.ok).toBe(true);
      // The server sealed what it appended when it stopped.
      expect(report.unsealed).toBe(0);
    } finally {
      await ledger.close();
    }
  });

  it('a port already in use is bad usage in one sentence', async () => {
    const built = await buildLedger(tempDir('witness-serve-busy-'));
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    try {
      const port = (busy.address() as AddressInfo).port;
      const r = await runBin(['serve', '--store', `sqlite:${built.file}`, '--port', String(port)]);
      expect(r.code).toBe(2);
      expect(oneSentence(r.stderr)).toContain(`cannot listen on 127.0.0.1:${port} (EADDRINUSE)`);
    } finally {
      busy.close();
    }
  });

  it('refuses a bad --port as bad usage in one sentence', async () => {
    const r = await runBin(['serve', '--port', 'http', '--store', `sqlite:${dir}/none.db`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--port "http"');
  });
});
