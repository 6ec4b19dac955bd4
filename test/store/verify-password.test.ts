import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLedger, verifyLedger } from '../../src/store/index.js';
import { runBin } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { startPasswordServer, type PasswordServer } from './pg-password-server.js';

/**
 * `witness verify` checks a large ledger on worker threads, each opening the ledger again
 * (src/store/verify-pool.ts). On a server that demands a password, each thread must connect with
 * the credentials the main thread used, however they were given: in the URL, in PGPASSWORD, or in
 * a password file. A thread that cannot connect does not fail the verification (its chunks are
 * checked again on the main thread), so these tests count what the threads did.
 */

const dir = tempDir('witness-verify-password-');
const PASSWORD = `pw-${Math.random().toString(36).slice(2)}-secret`;
const NO_PGPASS = path.join(dir, 'no-pgpass');
let server: PasswordServer;
let schemas = 0;

beforeAll(async () => {
  server = await startPasswordServer(PASSWORD);
  // Nothing of the machine's own may supply the password behind a test's back.
  delete process.env['PGPASSWORD'];
  process.env['PGPASSFILE'] = NO_PGPASS;
}, 60_000);
afterAll(() => server?.stop());

const withPassword = (url: string) => url.replace('postgres@', `postgres:${encodeURIComponent(PASSWORD)}@`);

/** A sealed ledger of `events` notes in a fresh schema, written with the password in the URL. */
async function ledger(events: number): Promise<{ url: string; keyFile: string }> {
  const schema = `pw_${++schemas}`;
  const url = `${server.url}?schema=${schema}`;
  const keyFile = path.join(dir, `${schema}.key`);
  const w = await openLedger(withPassword(url), { keyFile });
  try {
    for (let done = 0; done < events; done += 1000) {
      await w.append(Array.from({ length: Math.min(1000, events - done) }, (_, i) => ({ stream: `s${i % 4}`, agent: { id: 'bot' }, kind: 'note', data: { text: `${done + i}` } })));
    }
    await w.seal();
  } finally {
    await w.close();
  }
  return { url, keyFile };
}

/** Verifies with two threads in 1,024-event chunks; returns how many chunks the threads' results stood for. */
async function verifyOnThreads(openUrl: string, workerUrl: string | undefined, keyFile: string): Promise<{ ok: boolean; fromThreads: number; rechecked: number }> {
  const r = await openLedger(openUrl, { readonly: true, create: false, keyFile });
  let stats = { fromThreads: -1, rechecked: -1 };
  try {
    const report = await verifyLedger(r, { threads: 2, chunkEvents: 1024, onChunks: (s) => (stats = s), ...(workerUrl === undefined ? {} : { url: workerUrl }) });
    expect(report.failures).toEqual([]);
    return { ok: report.ok, ...stats };
  } finally {
    await r.close();
  }
}

describe('verify threads on a PostgreSQL server that demands a password', () => {
  it('refuses a connection without the password, so the tests below can tell', async () => {
    await expect(openLedger(`${server.url}?schema=pw_none`, { readonly: true, create: false })).rejects.toMatchObject({ code: expect.stringMatching(/^store_/) });
  });

  it('connects every thread with the password given in the URL', async () => {
    const { url, keyFile } = await ledger(4096);
    expect(await verifyOnThreads(withPassword(url), withPassword(url), keyFile)).toEqual({ ok: true, fromThreads: 4, rechecked: 0 });
  });

  it('connects every thread with the password given in PGPASSWORD', async () => {
    const { url, keyFile } = await ledger(4096);
    process.env['PGPASSWORD'] = PASSWORD;
    try {
      expect(await verifyOnThreads(url, undefined, keyFile)).toEqual({ ok: true, fromThreads: 4, rechecked: 0 });
    } finally {
      delete process.env['PGPASSWORD'];
    }
  });

  it('connects every thread with the password found in the password file (PGPASSFILE, else ~/.pgpass)', async () => {
    const { url, keyFile } = await ledger(4096);
    const file = path.join(dir, 'pgpass');
    fs.writeFileSync(file, `127.0.0.1:${new URL(server.url).port}:*:postgres:${PASSWORD}\n`, { mode: 0o600 });
    process.env['PGPASSFILE'] = file;
    try {
      expect(await verifyOnThreads(url, undefined, keyFile)).toEqual({ ok: true, fromThreads: 4, rechecked: 0 });
    } finally {
      process.env['PGPASSFILE'] = NO_PGPASS;
    }
  });

  it('witness verify --threads 2 with the password in --store connects its threads with it too, and never prints it', async () => {
    // Two chunks of the CLI's 32,768 events, so the threads get work.
    const { url } = await ledger(33_000);
    const before = server.log().length;
    const out = await runBin(['verify', '--threads', '2', '--store', withPassword(url)], { env: { PGPASSFILE: NO_PGPASS } });
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout + out.stderr).not.toContain(PASSWORD);
    const log = server.log().slice(before);
    const received = log.match(/connection received:/g)?.length ?? 0;
    const authorized = log.match(/connection authorized:/g)?.length ?? 0;
    // The main thread's connection and at least one per thread, every one of them authenticated.
    expect(authorized).toBeGreaterThanOrEqual(3);
    expect(received).toBe(authorized);
  }, 60_000);
});
