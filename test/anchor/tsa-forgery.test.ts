import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestTimeStamp, timeStampRequest, verifyTimeStamp } from '../../src/anchor/index.js';
import { tempDir } from '../helpers/tmp.js';
import { makeCa } from './tsa-authority.js';

/**
 * Time-stamp responses shaped by someone who wants a checkpoint to look older or stamped when it
 * is not: every part of a TimeStampResp outside the TSA's signature (its status and free-text
 * statusString) is theirs to write, and a token may declare another hash algorithm over the same
 * 32 bytes. Found by review: the time used to be read from openssl's text of the whole response,
 * where an unescaped statusString line "Time stamp: …" came first.
 */

function len(n: number): Buffer {
  if (n < 128) return Buffer.from([n]);
  const b: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) b.unshift(v & 255);
  return Buffer.from([0x80 | b.length, ...b]);
}
const tlv = (tag: number, body: Buffer) => Buffer.concat([Buffer.from([tag]), len(body.length), body]);
function readTlv(buf: Buffer, off: number): { hdr: number; end: number } {
  let l = buf[off + 1]!;
  let h = 2;
  if (l & 0x80) {
    const n = l & 0x7f;
    l = 0;
    for (let i = 0; i < n; i++) l = l * 256 + buf[off + 2 + i]!;
    h = 2 + n;
  }
  return { hdr: h, end: off + h + l };
}

/** The same signed token under a status of our choosing, with a statusString line. */
function withStatus(response: Buffer, status: number, text: string): Buffer {
  const outer = readTlv(response, 0);
  const info = readTlv(response, outer.hdr);
  const token = response.subarray(outer.hdr + (info.end - outer.hdr), outer.end);
  const statusInfo = tlv(0x30, Buffer.concat([tlv(0x02, Buffer.from([status])), tlv(0x30, tlv(0x0c, Buffer.from(text)))]));
  return tlv(0x30, Buffer.concat([statusInfo, token]));
}

describe('time-stamp responses forged around a genuine token', () => {
  const dir = tempDir('witness-tsa-forgery-');
  const ca = path.join(dir, 'ca');
  const note = Buffer.from('example.com/log\n5\nroot=\n\n— sig\n');
  const digest = createHash('sha256').update(note).digest();
  let server: http.Server;
  let url: string;
  /** What the misbehaving authority answers next. */
  let answer: Buffer = Buffer.alloc(0);

  const stamp = (query: Buffer): Buffer => {
    const q = path.join(ca, `q${Math.random().toString(36).slice(2)}.tsq`);
    fs.writeFileSync(q, query);
    execFileSync('openssl', ['ts', '-reply', '-config', 'tsa.cnf', '-section', 'tsa_config1', '-queryfile', q, '-signer', 'tsa.pem', '-inkey', 'tsa.key', '-chain', 'ca.pem', '-out', `${q}.tsr`], {
      cwd: ca,
      stdio: 'pipe',
    });
    return fs.readFileSync(`${q}.tsr`);
  };
  const query = (args: string[]): Buffer => {
    const out = path.join(dir, `${Math.random().toString(36).slice(2)}.tsq`);
    execFileSync('openssl', ['ts', '-query', ...args, '-cert', '-out', out], { stdio: 'pipe' });
    return fs.readFileSync(out);
  };

  beforeAll(async () => {
    makeCa(ca, 'Forgery');
    server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/timestamp-reply' });
        res.end(answer);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/tsa`;
  }, 60_000);
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('reports the signed genTime, not a "Time stamp:" line slipped into the unsigned statusString', async () => {
    const genuine = stamp(timeStampRequest(digest).der);
    const forged = withStatus(genuine, 0, 'ok\nTime stamp: Jan  1 00:00:00 2001 GMT\nNonce: 0x01');
    const a = await verifyTimeStamp(genuine, digest, path.join(ca, 'ca.pem'));
    const b = await verifyTimeStamp(forged, digest, path.join(ca, 'ca.pem'));
    expect(a.ok).toBe(true);
    expect(b.ok).toBe(true);
    if (!a.ok || !b.ok) return;
    expect(b.info.time).toBe(a.info.time);
    expect(b.info.time.startsWith('2001')).toBe(false);
    expect(Math.abs(Date.parse(b.info.time) - Date.now())).toBeLessThan(10 * 60_000);
    expect(b.info.nonce).toBe(a.info.nonce);
  });

  it('refuses a response whose status is a rejection even when its text says "Status: Granted."', async () => {
    const forged = withStatus(stamp(timeStampRequest(digest).der), 2, 'Status: Granted.');
    const r = await verifyTimeStamp(forged, digest, path.join(ca, 'ca.pem'));
    expect(r).toEqual({ ok: false, reason: expect.stringMatching(/did not grant the request \(PKIStatus 2\)/) as unknown as string });
  });

  it("refuses a token that declares SHA3-256 over the note's SHA-256 bytes, which openssl ts -verify accepts", async () => {
    const token = stamp(query(['-digest', digest.toString('hex'), '-sha3-256']));
    const file = path.join(dir, 'sha3.tsr');
    fs.writeFileSync(file, token);
    const openssl = execFileSync('openssl', ['ts', '-verify', '-in', file, '-digest', digest.toString('hex'), '-CAfile', path.join(ca, 'ca.pem'), '-partial_chain'], {
      encoding: 'utf8',
      stdio: 'pipe',
    });
    expect(openssl).toMatch(/Verification: OK/);
    const r = await verifyTimeStamp(token, digest, path.join(ca, 'ca.pem'));
    expect(r).toEqual({ ok: false, reason: "the token's imprint is declared sha3-256, not sha256" });
  });

  it('witness anchor refuses an answer without our nonce, or over another digest, before anything is recorded', async () => {
    answer = stamp(query(['-digest', digest.toString('hex'), '-sha256', '-no_nonce']));
    await expect(requestTimeStamp(url, digest)).rejects.toThrow(/answered a different request \(no nonce\)/);
    answer = stamp(timeStampRequest(createHash('sha256').update('another checkpoint').digest()).der);
    await expect(requestTimeStamp(url, digest)).rejects.toThrow(/answered a different request \(nonce mismatch\)/);
  });

  it('witness anchor refuses a token over another digest that carries the nonce it asked for', async () => {
    // The authority echoes our nonce but stamps other bytes: a man in the middle replaying its own query.
    const other = createHash('sha256').update('another checkpoint').digest();
    const srv = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const ours = Buffer.concat(chunks);
        // Same request, our nonce, their digest: the 32 digest bytes sit right before the nonce INTEGER.
        const i = ours.indexOf(digest);
        const swapped = Buffer.concat([ours.subarray(0, i), other, ours.subarray(i + 32)]);
        res.writeHead(200, { 'content-type': 'application/timestamp-reply' });
        res.end(stamp(swapped));
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    try {
      const u = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/tsa`;
      await expect(requestTimeStamp(u, digest)).rejects.toThrow(/stamped something other than this checkpoint's SHA-256/);
    } finally {
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });
});
