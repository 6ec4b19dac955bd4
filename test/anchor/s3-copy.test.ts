import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { AwsClient } from 'aws4fetch';
import S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkpointBodyOf, copyCheckpointToS3, cosign, generateCosignerKey, parseCosignerSignerKey, parseS3Url, s3SettingsFrom } from '../../src/anchor/index.js';
import type { Ledger } from '../../src/store/index.js';
import { runCli } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { Agent, newLedger } from '../monitor/fixture.js';

/*
 * Checkpoint copies to an S3-compatible bucket (issue 15 (c)), against s3rver: a real S3 API
 * server (SigV4 checked, objects on disk) started here on a free port. s3rver ignores
 * If-None-Match / If-Match on PUT, so what runs here is the read-compare path Witness takes on any
 * server without conditional writes.
 */
const dir = tempDir('witness-s3-');
const BUCKET = 'checkpoints';
// s3rver's built-in account; the secret must never appear in anything Witness prints.
const KEY_ID = 'S3RVER';
const SECRET = 'S3RVER';
let server: S3rver;
let endpoint: string;
let ledger: Ledger;
let store: string;
let client: AwsClient;
const savedEnv = { ...process.env };

async function getObject(key: string): Promise<{ status: number; bytes: Buffer }> {
  const res = await client.fetch(`${endpoint}/${BUCKET}/${key}`);
  return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()) };
}

async function putObject(key: string, body: string): Promise<void> {
  const res = await client.fetch(`${endpoint}/${BUCKET}/${key}`, { method: 'PUT', body });
  expect(res.status).toBe(200);
}

function anchor(...args: string[]): ReturnType<typeof runCli> {
  return runCli(['anchor', '--store', store, '--s3-endpoint', endpoint, '--s3-path-style', ...args]);
}

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * A front for s3rver that checks Content-MD5 and evaluates `If-None-Match: *` and `If-Match` on PUT the way AWS S3 does
 * (412 PreconditionFailed) — or, in `not-implemented` mode, answers 501 to them as servers without
 * conditional writes do — and otherwise passes the request through untouched. `beforePut` runs once,
 * between Witness's read and its conditional write: another writer getting there first.
 */
async function conditionalFront(mode: 'conditional' | 'not-implemented'): Promise<{ url: string; beforePut?: () => Promise<void>; seen: string[]; close(): Promise<void> }> {
  const front: { url: string; beforePut?: () => Promise<void>; seen: string[]; close(): Promise<void> } = { url: '', seen: [], close: async () => {} };
  const srv = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const path = req.url ?? '/';
        // As S3 does: a body that does not match its Content-MD5 is refused (Witness sends one for Object Lock buckets).
        if (req.method === 'PUT' && req.headers['content-md5'] !== createHash('md5').update(Buffer.concat(chunks)).digest('base64')) {
          res.writeHead(400, { 'content-type': 'application/xml' }).end('<Error><Code>BadDigest</Code></Error>');
          return;
        }
        const ifNone = req.headers['if-none-match'];
        const ifMatch = req.headers['if-match'];
        if (req.method === 'PUT' && (ifNone !== undefined || ifMatch !== undefined)) {
          front.seen.push(`${ifNone !== undefined ? 'If-None-Match' : 'If-Match'} ${path}`);
          if (mode === 'not-implemented') {
            res
              .writeHead(501, { 'content-type': 'application/xml' })
              .end('<Error><Code>NotImplemented</Code><Message>A header you provided implies functionality that is not implemented</Message></Error>');
            return;
          }
          const hook = front.beforePut;
          delete front.beforePut;
          await hook?.();
          const current = await client.fetch(`${endpoint}${path}`);
          const etag = current.status === 200 ? current.headers.get('etag') : null;
          await current.body?.cancel();
          if ((ifNone === '*' && etag !== null) || (ifMatch !== undefined && ifMatch !== etag)) {
            res.writeHead(412, { 'content-type': 'application/xml' }).end('<Error><Code>PreconditionFailed</Code></Error>');
            return;
          }
        }
        const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => !['host', 'connection', 'content-length', 'if-none-match', 'if-match'].includes(k))) as Record<string, string>;
        const body = req.method === 'GET' || req.method === 'HEAD' ? undefined : Buffer.concat(chunks);
        const up = await fetch(`${endpoint}${path}`, { method: req.method!, headers, ...(body === undefined ? {} : { body }) });
        const out = Buffer.from(await up.arrayBuffer());
        res.writeHead(up.status, Object.fromEntries([...up.headers].filter(([k]) => !['content-length', 'transfer-encoding', 'connection'].includes(k)))).end(out);
      })().catch((e: Error) => res.writeHead(500).end(e.message));
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  front.url = `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}`;
  front.close = () => new Promise<void>((r) => srv.close(() => r()));
  return front;
}

beforeAll(async () => {
  fs.mkdirSync(path.join(dir, 's3'));
  server = new S3rver({ address: '127.0.0.1', port: 0, directory: path.join(dir, 's3'), silent: true, vhostBuckets: false, configureBuckets: [{ name: BUCKET }] });
  const { port } = await server.run();
  endpoint = `http://127.0.0.1:${port}`;
  client = new AwsClient({ accessKeyId: KEY_ID, secretAccessKey: SECRET, service: 's3', region: 'us-east-1', retries: 0 });
  let url: string;
  ({ ledger, url } = await newLedger(dir, 's3'));
  store = url;
  await new Agent(ledger, 'bot').call('crm.lookup', new Date().toISOString());
  await ledger.seal();
  for (const k of ['AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_S3', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'WITNESS_COPY_TO', 'WITNESS_COSIGNERS', 'WITNESS_TSA']) delete process.env[k];
  process.env['AWS_ACCESS_KEY_ID'] = KEY_ID;
  process.env['AWS_SECRET_ACCESS_KEY'] = SECRET;
  process.env['AWS_REGION'] = 'us-east-1';
}, 60_000);

afterAll(async () => {
  process.env = savedEnv;
  await ledger?.close();
  await server?.close();
});

describe('[R-ANCHOR-COPY] witness anchor --copy-to s3://bucket/prefix', () => {
  it('writes <prefix>/<size>.checkpoint with exactly the bytes of the directory copy, beside it in one run', async () => {
    const copies = path.join(dir, 'copies');
    const r = await anchor('--copy-to', copies, `s3://${BUCKET}/prod/witness`);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const size = (await ledger.latestCheckpoint())!.size;
    expect(r.stdout).toContain(`✔ Copied checkpoint ${size} to s3://${BUCKET}/prod/witness/${size}.checkpoint.`);
    const local = fs.readFileSync(path.join(copies, `${size}.checkpoint`));
    const remote = await getObject(`prod/witness/${size}.checkpoint`);
    expect(remote.status).toBe(200);
    expect(remote.bytes.equals(local)).toBe(true);
    // Run again: the same checkpoint, nothing to add, nothing rewritten.
    const again = await anchor('--copy-to', `s3://${BUCKET}/prod/witness/`);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toContain(`s3://${BUCKET}/prod/witness/${size}.checkpoint already holds checkpoint ${size}; unchanged.`);
  });

  it('WITNESS_COPY_TO names several destinations, space-separated, when --copy-to is not given', async () => {
    const copies = path.join(dir, 'env-copies');
    process.env['WITNESS_COPY_TO'] = `${copies} s3://${BUCKET}/from-env`;
    try {
      const r = await anchor();
      expect(r.code, r.stdout + r.stderr).toBe(0);
    } finally {
      delete process.env['WITNESS_COPY_TO'];
    }
    const size = (await ledger.latestCheckpoint())!.size;
    expect((await getObject(`from-env/${size}.checkpoint`)).bytes.equals(fs.readFileSync(path.join(copies, `${size}.checkpoint`)))).toBe(true);
  });

  it('adds cosignature lines the object lacks on a later anchor, keeps the ones it has, and writes each time-stamp token under a new name', async () => {
    const cp = (await ledger.latestCheckpoint())!;
    const body = checkpointBodyOf(cp.note);
    const w1 = parseCosignerSignerKey(generateCosignerKey('witness.test/w1').signerKey);
    const w2 = parseCosignerSignerKey(generateCosignerKey('witness.test/w2').signerKey);
    const l1 = cosign(w1, body, 1_800_000_000);
    const l2 = cosign(w2, body, 1_800_000_001);
    const target = parseS3Url(`s3://${BUCKET}/cosigned`);
    const settings = s3SettingsFrom(process.env, { endpoint, pathStyle: true });
    const first = await copyCheckpointToS3(target, settings, cp.size, cp.note, [l1], [Buffer.from('token one')]);
    expect(first).toEqual({ file: `s3://${BUCKET}/cosigned/${cp.size}.checkpoint`, written: true });
    expect((await getObject(`cosigned/${cp.size}.checkpoint`)).bytes.toString()).toBe(cp.note + l1);
    const second = await copyCheckpointToS3(target, settings, cp.size, cp.note, [l2], [Buffer.from('token two')]);
    expect(second.written).toBe(true);
    expect((await getObject(`cosigned/${cp.size}.checkpoint`)).bytes.toString()).toBe(cp.note + l1 + l2);
    const third = await copyCheckpointToS3(target, settings, cp.size, cp.note, [l2, l1], []);
    expect(third.written).toBe(false);
    expect((await getObject(`cosigned/${cp.size}.tsr`)).bytes.toString()).toBe('token one');
    expect((await getObject(`cosigned/${cp.size}.2.tsr`)).bytes.toString()).toBe('token two');
  });

  it('refuses, exit 1, to overwrite an object holding a different tree of the same size (a fork), and leaves it as it was', async () => {
    const cp = (await ledger.latestCheckpoint())!;
    const forged = cp.note.replace(/\n[A-Za-z0-9+/]{43}=\n/, `\n${Buffer.alloc(32, 7).toString('base64')}\n`);
    expect(forged).not.toBe(cp.note);
    await putObject(`forked/${cp.size}.checkpoint`, forged);
    const r = await anchor('--copy-to', `s3://${BUCKET}/forked`);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`s3://${BUCKET}/forked/${cp.size}\\.checkpoint already holds a different checkpoint of size ${cp.size} .*a fork; the copy was not overwritten`));
    expect((await getObject(`forked/${cp.size}.checkpoint`)).bytes.toString()).toBe(forged);
    expect((await getObject(`forked/${cp.size}.tsr`)).status).toBe(404);
  });

  it('wrong credentials: one sentence naming the refusal, exit 1, and no credential printed', async () => {
    // s3rver checks the access key id but not SigV4 signatures, so the wrong pair here is an unknown key id with a wrong secret.
    const wrongSecret = 'wJalrXUtnFEMI-not-the-secret-EXAMPLEKEY';
    process.env['AWS_ACCESS_KEY_ID'] = 'AKIANOTAKNOWNKEY';
    process.env['AWS_SECRET_ACCESS_KEY'] = wrongSecret;
    process.env['AWS_SESSION_TOKEN'] = 'session-token-that-must-stay-hidden';
    try {
      const r = await anchor('--copy-to', `s3://${BUCKET}/denied`);
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr.trim()).toMatch(
        /^✘ s3:\/\/checkpoints\/denied\/: http:\/\/127\.0\.0\.1:\d+ refused access to s3:\/\/checkpoints\/denied\/\d+\.checkpoint \(InvalidAccessKeyId\); check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, and the bucket's policy\.$/,
      );
      for (const secret of [wrongSecret, 'session-token-that-must-stay-hidden', 'AKIANOTAKNOWNKEY']) expect(r.stdout + r.stderr).not.toContain(secret);
      const json = await anchor('--copy-to', `s3://${BUCKET}/denied`, '--json');
      expect(json.code).toBe(1);
      expect(JSON.parse(json.stdout)).toMatchObject({ copies: [], copyFailed: [{ to: `s3://${BUCKET}/denied/`, code: 'forbidden' }] });
      for (const secret of [wrongSecret, 'session-token-that-must-stay-hidden', 'AKIANOTAKNOWNKEY']) expect(json.stdout + json.stderr).not.toContain(secret);
    } finally {
      process.env['AWS_ACCESS_KEY_ID'] = KEY_ID;
      process.env['AWS_SECRET_ACCESS_KEY'] = SECRET;
      delete process.env['AWS_SESSION_TOKEN'];
    }
    expect((await getObject(`denied/1.checkpoint`)).status).toBe(404);
  });

  it('a missing bucket, an unreachable endpoint and missing credentials are each one sentence', async () => {
    const missing = await anchor('--copy-to', 's3://no-such-bucket/x');
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toMatch(/^✘ s3:\/\/no-such-bucket\/x\/: The bucket no-such-bucket does not exist at http:\/\/127\.0\.0\.1:\d+; create it or correct the destination\.$/);

    const port = await closedPort();
    const down = await runCli(['anchor', '--store', store, '--s3-endpoint', `http://127.0.0.1:${port}`, '--s3-path-style', '--copy-to', `s3://${BUCKET}/x`]);
    expect(down.code).toBe(1);
    expect(down.stderr.trim()).toMatch(
      new RegExp(`^✘ s3://${BUCKET}/x/: The S3 endpoint http://127\\.0\\.0\\.1:${port} cannot be reached \\(ECONNREFUSED\\); check --s3-endpoint or AWS_ENDPOINT_URL_S3 and the network\\.$`),
    );

    delete process.env['AWS_SECRET_ACCESS_KEY'];
    try {
      const none = await anchor('--copy-to', `s3://${BUCKET}/x`);
      expect(none.code).toBe(2);
      expect(none.stderr.trim()).toBe('witness: Copies to s3://checkpoints/x/ need credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones).');
    } finally {
      process.env['AWS_SECRET_ACCESS_KEY'] = SECRET;
    }
  });

  it('refuses destinations that are not a bucket and a plain prefix, before anything is sent', async () => {
    for (const [dest, msg] of [
      ['s3://', /names no bucket/],
      ['s3://Bad_Bucket/x', /is not an S3 bucket name/],
      ['s3://checkpoints/../other', /"\." or "\.\." or an empty segment/],
      ['s3://checkpoints/a?b', /may hold only letters, digits/],
      ['gs://checkpoints/x', /only directories and s3:\/\/ URLs/],
    ] as const) {
      const r = await anchor('--copy-to', dest);
      expect(r.code, dest).toBe(2);
      expect(r.stderr, dest).toMatch(msg);
    }
    const withUser = await runCli(['anchor', '--store', store, '--s3-endpoint', 'http://user:pw@127.0.0.1:1', '--copy-to', `s3://${BUCKET}/x`]);
    expect(withUser.code).toBe(2);
    expect(withUser.stderr).toMatch(/must not carry a user name or password/);
    expect(withUser.stderr).not.toContain('pw');
  });

  it('with conditional writes, a writer that gets in between the read and the write never has its tree or its cosignatures overwritten', async () => {
    const cp = (await ledger.latestCheckpoint())!;
    const body = checkpointBodyOf(cp.note);
    const [l1, l2, l3] = ['w1', 'w2', 'w3'].map((n, i) => cosign(parseCosignerSignerKey(generateCosignerKey(`witness.test/${n}`).signerKey), body, 1_800_000_000 + i)) as [string, string, string];
    const front = await conditionalFront('conditional');
    try {
      const settings = s3SettingsFrom(process.env, { endpoint: front.url, pathStyle: true });
      // A forged tree lands first: the conditional create fails, the copy reads again and refuses the fork.
      const raced = parseS3Url(`s3://${BUCKET}/raced`);
      const forged = cp.note.replace(/\n[A-Za-z0-9+/]{43}=\n/, `\n${Buffer.alloc(32, 9).toString('base64')}\n`);
      front.beforePut = () => putObject(`raced/${cp.size}.checkpoint`, forged);
      await expect(copyCheckpointToS3(raced, settings, cp.size, cp.note, [l1])).rejects.toMatchObject({ code: 'conflict', message: expect.stringMatching(/already holds a different checkpoint/) });
      expect((await getObject(`raced/${cp.size}.checkpoint`)).bytes.toString()).toBe(forged);
      expect(front.seen).toEqual([`If-None-Match /${BUCKET}/raced/${cp.size}.checkpoint`]);
      // Another anchor adds its cosignature between our read and write: If-Match fails, we re-read and keep both.
      const merged = parseS3Url(`s3://${BUCKET}/merged`);
      await copyCheckpointToS3(merged, settings, cp.size, cp.note, [l1]);
      front.beforePut = () => putObject(`merged/${cp.size}.checkpoint`, cp.note + l1 + l3);
      expect(await copyCheckpointToS3(merged, settings, cp.size, cp.note, [l2])).toMatchObject({ written: true });
      expect((await getObject(`merged/${cp.size}.checkpoint`)).bytes.toString()).toBe(cp.note + l1 + l3 + l2);
      expect(front.seen.filter((s) => s.startsWith('If-Match'))).toHaveLength(2);
    } finally {
      await front.close();
    }
  });

  it('on a server that answers 501 to conditional writes, falls back to the read-compare and still writes the copy and its tokens', async () => {
    const cp = (await ledger.latestCheckpoint())!;
    const front = await conditionalFront('not-implemented');
    try {
      const settings = s3SettingsFrom(process.env, { endpoint: front.url, pathStyle: true });
      const out = await copyCheckpointToS3(parseS3Url(`s3://${BUCKET}/no-conditions`), settings, cp.size, cp.note, [], [Buffer.from('tok')]);
      expect(out.written).toBe(true);
      expect(front.seen).toEqual([`If-None-Match /${BUCKET}/no-conditions/${cp.size}.checkpoint`, `If-None-Match /${BUCKET}/no-conditions/${cp.size}.tsr`]);
      expect((await getObject(`no-conditions/${cp.size}.checkpoint`)).bytes.toString()).toBe(cp.note);
      expect((await getObject(`no-conditions/${cp.size}.tsr`)).bytes.toString()).toBe('tok');
    } finally {
      await front.close();
    }
  });

  it('addresses buckets virtual-hosted by default and by path with --s3-path-style; the default endpoint follows AWS_REGION', () => {
    const t = parseS3Url('s3://my-bucket/a/b');
    const env = { AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's', AWS_REGION: 'eu-west-3' };
    expect(s3SettingsFrom(env, {}).objectUrl(t, '5.checkpoint').href).toBe('https://my-bucket.s3.eu-west-3.amazonaws.com/a/b/5.checkpoint');
    expect(s3SettingsFrom({ ...env, AWS_ENDPOINT_URL_S3: 'https://minio.internal:9000' }, { pathStyle: true }).objectUrl(t, '5.tsr').href).toBe('https://minio.internal:9000/my-bucket/a/b/5.tsr');
    expect(s3SettingsFrom({ ...env, AWS_ENDPOINT_URL: 'http://ceph:7480', AWS_REGION: undefined, AWS_DEFAULT_REGION: 'default' }, {}).region).toBe('default');
  });
});
