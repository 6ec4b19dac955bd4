/**
 * RFC 3161 time-stamps on checkpoints. The request is the one fixed TimeStampReq shape (v1,
 * SHA-256 message imprint of the log-signed checkpoint note, a random nonce, certReq true),
 * written as DER by hand because it is 69 bytes with nothing variable but the hash and nonce.
 * Responses are read and verified by `openssl ts` (a real, widely audited implementation of
 * RFC 3161 and CMS), not by a parser of our own: verification of a signed CMS structure and a
 * certificate chain is exactly the code that must not be written twice.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { WitnessError } from '../core/index.js';

const run = promisify(execFile);
const SHA256_ALG = Buffer.from('300d06096086480165030402010500', 'hex');

/** DER TimeStampReq for a SHA-256 digest; returns it with the nonce (hex) it carries. */
export function timeStampRequest(digest: Uint8Array, nonce: Uint8Array = randomBytes(8)): { der: Buffer; nonce: string } {
  if (digest.length !== 32) throw new WitnessError('invalid_argument', 'A SHA-256 digest is 32 bytes.');
  const n = Buffer.from(nonce);
  // A positive INTEGER in minimal DER: top bit clear and first byte non-zero.
  n[0] = (n[0]! & 0x7f) | 0x01;
  const imprint = Buffer.concat([Buffer.from([0x30, SHA256_ALG.length + 34]), SHA256_ALG, Buffer.from([0x04, 0x20]), digest]);
  const body = Buffer.concat([Buffer.from([0x02, 0x01, 0x01]), imprint, Buffer.from([0x02, n.length]), n, Buffer.from([0x01, 0x01, 0xff])]);
  return { der: Buffer.concat([Buffer.from([0x30, body.length]), body]), nonce: n.toString('hex') };
}

async function withTemp<T>(files: Record<string, Buffer | string>, fn: (paths: Record<string, string>) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'witness-tsa-'));
  try {
    const paths: Record<string, string> = {};
    for (const [name, data] of Object.entries(files)) {
      paths[name] = path.join(dir, name);
      fs.writeFileSync(paths[name], data);
    }
    return await fn(paths);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function openssl(args: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    const r = await run('openssl', args, { maxBuffer: 4 * 1024 * 1024 });
    return { ok: true, out: `${r.stdout}${r.stderr}` };
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    if (err.code === 'ENOENT') throw new WitnessError('missing_program', 'openssl is not installed; RFC 3161 time-stamps are read and verified with `openssl ts` — install OpenSSL.');
    return { ok: false, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

export interface TimeStampInfo {
  /** The TSA's time, as openssl prints it, converted to ISO-8601. */
  time: string;
  nonce: string | null;
}

/** Reads a TimeStampResp's text form (status, time, nonce); refused unless the status is granted. */
export async function describeResponse(response: Buffer): Promise<TimeStampInfo> {
  return withTemp({ 'resp.tsr': response }, async (p) => {
    const r = await openssl(['ts', '-reply', '-in', p['resp.tsr']!, '-text']);
    if (!r.ok) throw new WitnessError('invalid_proof', 'The time-stamp authority answered with something that is not an RFC 3161 response.');
    if (!/Status: Granted\./.test(r.out)) {
      throw new WitnessError('invalid_proof', `The time-stamp authority did not grant the request (${(/Status: (.*)/.exec(r.out)?.[1] ?? 'no status').trim()}).`);
    }
    const t = /Time stamp: (.+)/.exec(r.out)?.[1]?.trim();
    const ms = t === undefined ? NaN : Date.parse(t.replace(/ GMT$/, ' UTC'));
    if (!Number.isFinite(ms)) throw new WitnessError('invalid_proof', 'The time-stamp response carries no readable time.');
    const nonce = /Nonce: (0x)?([0-9A-Fa-f]+)/.exec(r.out)?.[2]?.toLowerCase() ?? null;
    return { time: new Date(ms).toISOString(), nonce };
  });
}

/** Asks a TSA for a time-stamp over `digest`; checks the answer is granted and carries our nonce. */
export async function requestTimeStamp(url: string, digest: Uint8Array, timeoutMs = 10_000): Promise<{ response: Buffer; info: TimeStampInfo }> {
  const req = timeStampRequest(digest);
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', body: req.der, headers: { 'content-type': 'application/timestamp-query' }, signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    throw new WitnessError('store_unavailable', `The time-stamp authority at ${url} cannot be reached (${(e as Error).message}).`, { cause: e });
  }
  if (res.status !== 200) throw new WitnessError('store_unavailable', `The time-stamp authority at ${url} answered ${res.status}.`);
  const response = Buffer.from(await res.arrayBuffer());
  const info = await describeResponse(response);
  if (info.nonce !== null && info.nonce.replace(/^0+/, '') !== req.nonce.replace(/^0+/, '')) {
    throw new WitnessError('invalid_proof', `The time-stamp authority at ${url} answered a different request (nonce mismatch).`);
  }
  return { response, info };
}

/**
 * `openssl ts -verify`: the token's message imprint must be `digest` and its signature must chain
 * to `certFile` (a CA or the TSA's own certificate: -partial_chain lets the auditor pin either).
 */
export async function verifyTimeStamp(response: Buffer, digest: Uint8Array, certFile: string): Promise<{ ok: true; info: TimeStampInfo } | { ok: false; reason: string }> {
  let info: TimeStampInfo;
  try {
    info = await describeResponse(response);
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
  const r = await withTemp({ 'resp.tsr': response }, (p) => openssl(['ts', '-verify', '-in', p['resp.tsr']!, '-digest', Buffer.from(digest).toString('hex'), '-CAfile', certFile, '-partial_chain']));
  if (!r.ok || !/Verification: OK/.test(r.out)) {
    const why = /(message imprint mismatch|certificate verify error|unable to get local issuer certificate|signature failure|[a-z ]+error[^\n]*)/i.exec(r.out)?.[1];
    return { ok: false, reason: `openssl ts -verify refused it${why === undefined ? '' : ` (${why.trim()})`}` };
  }
  return { ok: true, info };
}
