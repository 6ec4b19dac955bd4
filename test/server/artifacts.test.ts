import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PNG_BYTES } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { serverFixture, type ServerFixture } from './fixture.js';

describe('GET /v1/artifacts/:sha256', () => {
  const dir = tempDir('witness-server-artifacts-');
  let f: ServerFixture;
  beforeAll(async () => {
    f = await serverFixture(dir);
  });
  afterAll(async () => f.close());

  const get = (sha: string, headers: Record<string, string> = {}) => f.call('GET', `/v1/artifacts/${sha}`, { key: f.keys.auditor, headers });

  it('serves a screenshot with its stored type, as an attachment, with nosniff and a sandbox CSP', async () => {
    const ref = await f.ledger.putArtifact(PNG_BYTES, 'image/png', 'before');
    const res = await get(ref.sha256);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="${ref.sha256}.png"`);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('content-security-policy')).toBe("default-src 'none'; sandbox");
    expect(Buffer.from(await res.arrayBuffer()).equals(PNG_BYTES)).toBe(true);
  });

  it('never serves HTML, SVG, XML or JavaScript as themselves: they go out as application/octet-stream', async () => {
    const hostile: Array<[string, string]> = [
      ['<html><script>alert(1)</script></html>', 'text/html'],
      ['<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>', 'image/svg+xml'],
      ['<?xml version="1.0"?><x:script xmlns:x="http://www.w3.org/1999/xhtml">alert(1)</x:script>', 'application/xhtml+xml'],
      ['alert(1)', 'text/javascript'],
      ['<html>', 'text/html; charset=utf-8'],
      ['plain <b>text</b>', 'TEXT/PLAIN'],
    ];
    for (const [body, mime] of hostile) {
      const ref = await f.ledger.putArtifact(Buffer.from(body), mime);
      const res = await get(ref.sha256);
      expect(res.status, mime).toBe(200);
      expect(res.headers.get('content-type'), mime).toBe(mime === 'TEXT/PLAIN' ? 'text/plain' : 'application/octet-stream');
      expect(res.headers.get('content-disposition'), mime).toMatch(/^attachment; /);
      expect(await res.text()).toBe(body);
    }
  });

  it('answers a byte range with 206 and Content-Range, a range past the end with 416, and an unknown digest with 404', async () => {
    const bytes = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 256));
    const ref = await f.ledger.putArtifact(bytes, 'application/octet-stream');
    const part = await get(ref.sha256, { range: 'bytes=100-199' });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe('bytes 100-199/1000');
    expect(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(100, 200))).toBe(true);
    const tail = await get(ref.sha256, { range: 'bytes=-10' });
    expect(tail.status).toBe(206);
    expect(Buffer.from(await tail.arrayBuffer()).equals(bytes.subarray(990))).toBe(true);
    const past = await get(ref.sha256, { range: 'bytes=5000-' });
    expect(past.status).toBe(416);
    expect(past.headers.get('content-range')).toBe('bytes */1000');
    const missing = await get('0'.repeat(64));
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('not_found');
  });
});
