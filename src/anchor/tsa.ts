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
  /** The TSA's time (the signed genTime), as openssl prints it, converted to ISO-8601. */
  time: string;
  nonce: string | null;
  /** The message imprint's hash algorithm as openssl names it (`sha256`). */
  hashAlgorithm: string;
  /** The message imprint, hex. */
  imprint: string;
}

/** One DER TLV at `off`: its tag, where its contents start and end; undefined when cut short. */
function tlvAt(der: Buffer, off: number): { tag: number; start: number; end: number } | undefined {
  if (off + 2 > der.length) return undefined;
  let len = der[off + 1]!;
  let start = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > der.length) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i]!;
    start += n;
  }
  return start + len > der.length ? undefined : { tag: der[off]!, start, end: start + len };
}

/**
 * The PKIStatus of a DER TimeStampResp (RFC 3161 2.4.2: SEQUENCE { status SEQUENCE { INTEGER, … }, token }),
 * read from the bytes: the status sits outside the TSA's signature and openssl's text form prints its
 * free-text statusString unescaped, so a line of that text proves nothing.
 */
function pkiStatusOf(der: Buffer): number | undefined {
  const resp = tlvAt(der, 0);
  if (resp?.tag !== 0x30) return undefined;
  const info = tlvAt(der, resp.start);
  if (info?.tag !== 0x30) return undefined;
  const status = tlvAt(der, info.start);
  if (status?.tag !== 0x02 || status.end - status.start !== 1) return undefined;
  return der[status.start]!;
}

/**
 * Reads a TimeStampResp: refused unless its status is granted (0) or granted with modifications (1);
 * the time, nonce and imprint come from the signed TSTInfo alone (`openssl ts -token_out`, then the
 * token's text), never from the unsigned status text around it.
 */
export async function describeResponse(response: Buffer): Promise<TimeStampInfo> {
  const status = pkiStatusOf(response);
  if (status === undefined) throw new WitnessError('invalid_proof', 'The time-stamp authority answered with something that is not an RFC 3161 response.');
  if (status > 1) throw new WitnessError('invalid_proof', `The time-stamp authority did not grant the request (PKIStatus ${status}).`);
  return withTemp({ 'resp.tsr': response }, async (p) => {
    const token = path.join(path.dirname(p['resp.tsr']!), 'token.der');
    const out = await openssl(['ts', '-reply', '-in', p['resp.tsr']!, '-token_out', '-out', token]);
    const r = out.ok ? await openssl(['ts', '-reply', '-in', token, '-token_in', '-text']) : out;
    const at = r.out.indexOf('\nTST info:\n');
    if (!r.ok || at < 0) throw new WitnessError('invalid_proof', 'The time-stamp authority answered with something that is not an RFC 3161 response.');
    // Everything from here on is the TSTInfo, which the TSA signed.
    const tst = r.out.slice(at);
    const line = (name: string): string | undefined => {
      const all = [...tst.matchAll(new RegExp(`^${name}: (.*)$`, 'gm'))];
      return all.length === 1 ? all[0]![1]!.trim() : undefined;
    };
    const t = line('Time stamp');
    const ms = t === undefined ? NaN : Date.parse(t.replace(/ GMT$/, ' UTC'));
    if (!Number.isFinite(ms)) throw new WitnessError('invalid_proof', 'The time-stamp response carries no readable time.');
    const hashAlgorithm = line('Hash Algorithm');
    if (hashAlgorithm === undefined) throw new WitnessError('invalid_proof', 'The time-stamp response names no hash algorithm.');
    const data = /^Message data:\n((?: {4}[0-9a-f]{4} - .*\n)+)/m.exec(tst)?.[1] ?? '';
    const imprint = [...data.matchAll(/^ {4}[0-9a-f]{4} - ((?:[0-9a-f]{2}[ -]){0,15}[0-9a-f]{2})/gm)].map((m) => m[1]!.replace(/[ -]/g, '')).join('');
    const nonce = /^Nonce: (0x)?([0-9A-Fa-f]+)$/m.exec(tst)?.[2]?.toLowerCase() ?? null;
    return { time: new Date(ms).toISOString(), nonce, hashAlgorithm, imprint };
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
  // Checked here too, not only at verify time, so a token for another request is never recorded as a time-stamp.
  if (info.nonce === null || info.nonce.replace(/^0+/, '') !== req.nonce.replace(/^0+/, '')) {
    throw new WitnessError('invalid_proof', `The time-stamp authority at ${url} answered a different request (${info.nonce === null ? 'no nonce' : 'nonce mismatch'}).`);
  }
  if (info.hashAlgorithm !== 'sha256' || info.imprint !== Buffer.from(digest).toString('hex')) {
    throw new WitnessError('invalid_proof', `The time-stamp authority at ${url} stamped something other than this checkpoint's SHA-256.`);
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
  // openssl compares the imprint's bytes, not its algorithm: a token claiming SHA3-256 over these bytes is not a SHA-256 stamp.
  if (info.hashAlgorithm !== 'sha256') return { ok: false, reason: `the token's imprint is declared ${info.hashAlgorithm}, not sha256` };
  const r = await withTemp({ 'resp.tsr': response }, (p) => openssl(['ts', '-verify', '-in', p['resp.tsr']!, '-digest', Buffer.from(digest).toString('hex'), '-CAfile', certFile, '-partial_chain']));
  if (!r.ok || !/Verification: OK/.test(r.out)) {
    const why = /(message imprint mismatch|certificate verify error|unable to get local issuer certificate|signature failure|[a-z ]+error[^\n]*)/i.exec(r.out)?.[1];
    return { ok: false, reason: `openssl ts -verify refused it${why === undefined ? '' : ` (${why.trim()})`}` };
  }
  return { ok: true, info };
}
