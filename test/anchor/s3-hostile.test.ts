import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyCheckpointToS3, parseS3Url, s3SettingsFrom } from '../../src/anchor/index.js';
import { WitnessError } from '../../src/core/index.js';

/**
 * An endpoint that answers a GET's head at once and then drips its body one byte a second for
 * ever (found by review: the body read was outside the request's error handling, so the copy
 * ended in a raw DOMException, not a sentence, and the other --copy-to targets were skipped).
 */
describe('an S3 endpoint that never finishes an answer', () => {
  let server: http.Server;
  let endpoint: string;
  const secrets = { AWS_ACCESS_KEY_ID: 'AKIDHOSTILETEST', AWS_SECRET_ACCESS_KEY: 'hostile-secret-value', AWS_REGION: 'us-east-1' };

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      res.writeHead(200, { etag: '"x"' });
      const t = setInterval(() => res.write('a'), 1000);
      req.on('close', () => clearInterval(t));
      res.on('close', () => clearInterval(t));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('ends the copy with one sentence saying the endpoint did not answer in time, with no credential in it', async () => {
    const settings = s3SettingsFrom(secrets, { endpoint, pathStyle: true });
    const error = await copyCheckpointToS3(parseS3Url('s3://bucket/ledger'), settings, 1, 'o\n1\nAAAA\n\n— k sig\n', []).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(WitnessError);
    const e = error as WitnessError;
    expect(e.code).toBe('store_unavailable');
    expect(e.message).toMatch(/cannot be reached \(no answer within 30 s\)/);
    expect(JSON.stringify({ m: e.message, d: e.details })).not.toMatch(/AKIDHOSTILETEST|hostile-secret-value/);
  }, 60_000);
});
