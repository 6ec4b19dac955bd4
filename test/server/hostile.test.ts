import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen, type RunningServer } from '../../src/server/index.js';
import { tempDir } from '../helpers/tmp.js';
import { serverFixture, type ServerFixture } from './fixture.js';

interface ErrorBody {
  error: { code: string; message: string; details?: { path?: string } };
}

describe('hostile input', () => {
  const dir = tempDir('witness-server-hostile-');
  let f: ServerFixture;
  beforeAll(async () => {
    f = await serverFixture(dir);
  });
  afterAll(async () => {
    await f.close().catch((e: unknown) => {
      if ((e as { code?: string }).code !== 'closed') throw e;
    });
  });

  it('invalid cursors, dates, hashes, ids, numbers and unknown or repeated parameters are 400 naming the parameter, never 500', async () => {
    const cases: Array<[string, string]> = [
      ['/v1/events?cursor=not-a-cursor', ''],
      ['/v1/events?cursor=' + Buffer.from('[1,"x"]').toString('base64url'), ''],
      ['/v1/events?cursor=' + Buffer.from('{"__proto__":1}').toString('base64url'), ''],
      ['/v1/events?since=yesterday', 'since'],
      ['/v1/events?since=2026-02-30T00:00:00Z', 'since'],
      ['/v1/events?until=1', 'until'],
      ['/v1/events?since=2026-01-01T00:00:00Z&until=2025-01-01T00:00:00Z', 'since'],
      ['/v1/events?since=%2B010000-01-01T00:00:00Z', 'since'],
      ['/v1/events?kind=tool.nope', 'kind'],
      ['/v1/events?outcome=maybe', 'outcome'],
      ['/v1/events?limit=0', 'limit'],
      ['/v1/events?limit=1e3', 'limit'],
      ['/v1/events?limit=99999', 'limit'],
      ['/v1/events?limit=1&limit=2', 'limit'],
      ['/v1/events?sql=1', 'sql'],
      ['/v1/events?q=' + 'x'.repeat(300), 'q'],
      ['/v1/events/not-a-uuid', 'id'],
      ['/v1/events/0190C5B8-0000-7000-8000-000000000000', 'id'],
      ['/v1/artifacts/xyz', 'sha256'],
      ['/v1/artifacts/' + 'A'.repeat(64), 'sha256'],
      ['/v1/artifacts/' + 'a'.repeat(65), 'sha256'],
      ['/v1/proofs/inclusion?pos=-1&size=2', 'pos'],
      ['/v1/proofs/inclusion?pos=0&size=99999999', 'size'],
      ['/v1/proofs/inclusion?pos=5&size=3', 'pos'],
      ['/v1/proofs/inclusion?pos=0', 'size'],
      ['/v1/proofs/consistency?from=0&to=3', 'from'],
      ['/v1/proofs/consistency?from=3&to=2', 'from'],
      ['/v1/proofs/consistency?from=1&to=9007199254740993', 'to'],
      ['/v1/sessions?limit=abc', 'limit'],
      ['/v1/sessions?since=soon', 'since'],
    ];
    for (const [path, field] of cases) {
      const res = await f.call('GET', path, { key: f.keys.auditor });
      const body = (await res.json()) as ErrorBody;
      expect(res.status, `${path}: ${JSON.stringify(body)}`).toBe(400);
      expect(body.error.code, path).toMatch(/^invalid_/);
      expect(body.error.message.length, path).toBeGreaterThan(10);
      if (field !== '') expect(body.error.details?.path, path).toBe(field);
    }
  });

  it('a body that is not JSON, or has a duplicate key or an integer beyond 2^53, is 400 invalid_json; a wrong field is 400 naming it', async () => {
    for (const raw of ['{"events": [', 'not json', '{"events":[],"events":[]}', '{"events":[{"stream":"s","kind":"note","data":{"n":9007199254740993}}]}']) {
      const res = await f.call('POST', '/v1/events', { key: f.keys.agent, raw, headers: { 'content-type': 'application/json' } });
      const body = (await res.json()) as ErrorBody;
      expect(res.status, raw).toBe(400);
      expect(body.error.code, raw).toBe('invalid_json');
    }
    const res = await f.call('POST', '/v1/keys', { key: f.keys.admin, body: { role: 'superuser' } });
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorBody).error.details?.path).toBe('role');
    const extra = await f.call('POST', '/v1/keys', { key: f.keys.admin, body: { role: 'auditor', admin: true } });
    expect(extra.status).toBe(400);
    expect(((await extra.json()) as ErrorBody).error.message).toContain('"admin"');
  });

  it('a body over the limit is refused with 413 by its Content-Length, before it is read', async () => {
    const res = await f.call('POST', '/v1/keys', { key: f.keys.admin, raw: 'x'.repeat(70 * 1024), headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(413);
    expect(((await res.json()) as ErrorBody).error.code).toBe('payload_too_large');
  });

  it('a body without a key is refused with 401 before any of it is read', async () => {
    let pulled = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        pulled++;
        c.enqueue(new Uint8Array(1 << 20));
      },
    });
    const res = await f.app.request('/v1/events', { method: 'POST', body, headers: { 'content-type': 'application/json' }, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(401);
    expect(pulled).toBeLessThanOrEqual(2);
  });

  describe('over HTTP', () => {
    let server: RunningServer;
    beforeAll(async () => {
      server = await listen({ ledger: f.ledger, port: 0, sealEveryMs: 0 });
    });
    // Closes the socket and the ledger; the fixture's own close then finds the ledger closed.
    afterAll(async () => server.close());

    it('a 50 MB streamed body (chunked, no Content-Length) is refused with 413 and the server does not hold it', async () => {
      const before = process.memoryUsage();
      const chunk = Buffer.alloc(1 << 20, 0x20);
      const result = await new Promise<{ status: number; body: string; sent: number }>((resolve, reject) => {
        let sent = 0;
        const req = http.request(
          `${server.url}/v1/events`,
          { method: 'POST', headers: { authorization: `Bearer ${f.keys.agent}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' } },
          (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d: string) => (body += d));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body, sent }));
          },
        );
        req.on('error', (e) => ((e as NodeJS.ErrnoException).code === 'EPIPE' || (e as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(e)));
        const write = () => {
          while (sent < 50) {
            sent++;
            if (!req.write(chunk)) return void req.once('drain', write);
          }
          req.end();
        };
        write();
      });
      const after = process.memoryUsage();
      expect(result.status).toBe(413);
      expect(JSON.parse(result.body)).toMatchObject({ error: { code: 'payload_too_large' } });
      // The default ingest limit is 10 MiB: the server buffered at most that, never the 50 MB.
      const grewMb = (after.arrayBuffers + after.heapUsed - before.arrayBuffers - before.heapUsed) / 2 ** 20;
      console.log(`50 MB body refused after ${result.sent} MB sent; heap + buffers grew ${grewMb.toFixed(1)} MB`);
      expect(grewMb).toBeLessThan(40);
    });

    it('a 50 MB body announced by Content-Length is refused with 413 at once', async () => {
      const result = await new Promise<number>((resolve, reject) => {
        const req = http.request(
          `${server.url}/v1/events`,
          { method: 'POST', headers: { authorization: `Bearer ${f.keys.agent}`, 'content-type': 'application/json', 'content-length': String(50 * 2 ** 20) } },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
            req.destroy();
          },
        );
        req.on('error', (e) => ((e as NodeJS.ErrnoException).code === 'ECONNRESET' || (e as NodeJS.ErrnoException).code === 'EPIPE' ? undefined : reject(e)));
        req.write(Buffer.alloc(1024));
      });
      expect(result).toBe(413);
    });
  });
});
