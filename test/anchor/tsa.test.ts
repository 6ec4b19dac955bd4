import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anchorLatest, checkTimestamps, readAnchors, requestTimeStamp, timeStampRequest, verifyTimeStamp } from '../../src/anchor/index.js';
import type { Ledger } from '../../src/store/index.js';
import { runCli } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { makeCa, startTsa } from './tsa-authority.js';
import { Agent, newLedger } from '../monitor/fixture.js';

describe('[R-ANCHOR-TSA] RFC 3161 time-stamps on checkpoints against a local openssl TSA', () => {
  const dir = tempDir('witness-anchor-tsa-');
  const ca = path.join(dir, 'ca');
  const other = path.join(dir, 'other');
  let server: http.Server;
  let url: string;
  let ledger: Ledger;
  let file: string;

  beforeAll(async () => {
    makeCa(ca, 'Test');
    makeCa(other, 'Other');
    ({ server, url } = await startTsa(ca));
    ({ ledger, file } = await newLedger(dir, 'ts'));
    await new Agent(ledger, 'bot').call('crm.lookup', new Date().toISOString());
    await ledger.seal();
  }, 60_000);
  afterAll(async () => {
    await ledger.close();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('writes a TimeStampReq that openssl reads as v1, SHA-256 imprint, the nonce, certReq', () => {
    const digest = createHash('sha256').update('checkpoint').digest();
    const req = timeStampRequest(digest, Buffer.from('0102030405060708', 'hex'));
    fs.writeFileSync(path.join(dir, 'r.tsq'), req.der);
    const text = execFileSync('openssl', ['ts', '-query', '-in', path.join(dir, 'r.tsq'), '-text'], { encoding: 'utf8' });
    expect(text).toMatch(/Version: 1/);
    expect(text).toMatch(/Hash Algorithm: sha256/);
    expect(text.replace(/\s+/g, ' ')).toContain(digest.toString('hex').match(/../g)!.slice(0, 4).join(' '));
    expect(text).toMatch(/Nonce: 0x0102030405060708/);
    expect(text).toMatch(/Certificate required: yes/);
  });

  it('anchors the newest checkpoint with a token whose imprint is its note and whose signature chains to the CA; verify reports the time', async () => {
    const anchors = `${file}.anchors.jsonl`;
    const copyDir = path.join(dir, 'copies');
    const out = await anchorLatest(ledger, { anchorsFile: anchors, cosigners: [], tsa: [url], copyTo: copyDir });
    expect(out.tsaFailed).toEqual([]);
    expect(out.timestamps).toEqual([{ tsa: url, time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) }]);
    expect(fs.existsSync(path.join(copyDir, `${out.size}.tsr`))).toBe(true);
    const cps = await ledger.checkpoints();
    const good = await checkTimestamps(cps, readAnchors(anchors).records, path.join(ca, 'ca.pem'));
    expect(good).toMatchObject({ ok: true, failures: [] });
    expect(good.checked).toEqual([{ tsa: url, size: out.size, time: out.timestamps[0]!.time }]);
    // Pinning the TSA's own certificate works too (partial chain).
    expect((await checkTimestamps(cps, readAnchors(anchors).records, path.join(ca, 'tsa.pem'))).ok).toBe(true);
    // Another authority's certificate: refused.
    const wrongCa = await checkTimestamps(cps, readAnchors(anchors).records, path.join(other, 'ca.pem'));
    expect(wrongCa.ok).toBe(false);
    expect(wrongCa.failures[0]).toMatchObject({ code: 'timestamp_invalid' });
  });

  it('a token over another checkpoint does not verify for this one, and a newer unstamped checkpoint is timestamp_missing', async () => {
    const { response } = await requestTimeStamp(url, createHash('sha256').update('some other note').digest());
    const cp = (await ledger.latestCheckpoint())!;
    const r = await verifyTimeStamp(response, createHash('sha256').update(cp.note).digest(), path.join(ca, 'ca.pem'));
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.reason).toMatch(/openssl ts -verify refused it/);
    await new Agent(ledger, 'bot').call('billing.refund', new Date().toISOString());
    await ledger.seal();
    const v = await checkTimestamps(await ledger.checkpoints(), readAnchors(`${file}.anchors.jsonl`).records, path.join(ca, 'ca.pem'));
    expect(v.ok).toBe(false);
    expect(v.failures).toEqual([expect.objectContaining({ code: 'timestamp_missing' })]);
    expect(v.checked).toHaveLength(1);
  });

  it('an unreachable authority is reported per TSA and nothing is recorded for it', async () => {
    const anchors = path.join(dir, 'x.anchors.jsonl');
    const out = await anchorLatest(ledger, { anchorsFile: anchors, cosigners: [], tsa: ['http://127.0.0.1:1/tsa'] });
    expect(out.tsaFailed[0]).toMatchObject({ code: 'store_unavailable', message: expect.stringMatching(/cannot be reached/) });
    expect(readAnchors(anchors).records).toEqual([]);
  });

  it('through the commands: witness anchor --tsa, then witness verify --tsa-cert reports the time, fails for another CA, and a missing certificate file is exit 2', async () => {
    await ledger.close();
    const store = `sqlite:${file}`;
    try {
      const a = await runCli(['anchor', '--store', store, '--tsa', url]);
      expect(a.code, a.stdout + a.stderr).toBe(0);
      expect(a.stdout).toMatch(/✔ Time-stamped checkpoint \d+ by http:\/\/127\.0\.0\.1:\d+\/tsa at \d{4}-/);
      const v = await runCli(['verify', '--store', store, '--tsa-cert', path.join(ca, 'ca.pem')]);
      expect(v.code, v.stdout).toBe(0);
      expect(v.stdout).toMatch(/anchor: ✔ checkpoint \d+ carries a valid RFC 3161 time-stamp/);
      expect(v.stdout).toMatch(/anchor: time-stamp by http:.+ on checkpoint \d+: \d{4}-\d\d-\d\dT.+ \(openssl ts -verify OK\)/);
      const wrong = await runCli(['verify', '--store', store, '--tsa-cert', path.join(other, 'ca.pem')]);
      expect(wrong.code).toBe(1);
      expect(wrong.stdout).toMatch(/anchor: timestamp_invalid: the time-stamp from .+ does not verify: openssl ts -verify refused it/);
      const missing = await runCli(['verify', '--store', store, '--tsa-cert', path.join(dir, 'nope.pem')]);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/The TSA certificate .+ does not exist/);
    } finally {
      ledger = await (await import('../../src/store/index.js')).openLedger(store);
    }
  });
});
