import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteLedger, openLedger, sidecarPaths, verifyLedger } from '../../src/store/index.js';
import { pendingRecordPath } from '../../src/store/seal-record.js';
import { REPO_ROOT, verifyFile } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import { PG_URL, requirePostgres } from './postgres-driver.js';

/**
 * kill -9 during a seal, in the one window that used to be fatal: a ledger's first checkpoint
 * committed, its record (`<db>.sealed`) not yet written. Every later seal then refused the ledger
 * ("has checkpoints but no record"), as test/recorder/durability.test.ts [R-DURABLE] hit at random.
 * The sealer's test-only hook ($WITNESS_TEST_SEAL_KILL=after-commit, src/store/seal-record.ts)
 * makes the child kill itself exactly there. The child runs the built package: build it first
 * (`npx tsc -p tsconfig.build.json`).
 */

const dir = tempDir('witness-seal-crash-');
const CHILD = path.join(REPO_ROOT, 'test', 'fixtures', 'children', 'seal-child.mjs');
const EVENTS = 30;

function run(file: string, thread: boolean, env: Record<string, string> = {}): Promise<{ signal: NodeJS.Signals | null; lines: string[]; stderr: string }> {
  return new Promise((resolve) => {
    const args = [CHILD, file, String(EVENTS), ...(thread ? ['wait-thread'] : [])];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env, WITNESS_TEST_SEAL_KILL: 'after-commit' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (_code, signal) => resolve({ signal, lines: stdout.trim().split('\n'), stderr }));
  });
}

/** A ledger whose writer was killed between its first checkpoint's commit and its record. */
async function crashed(thread: boolean): Promise<{ file: string; acked: string[] }> {
  const file = tempDb(dir);
  const r = await run(file, thread);
  expect(r.stderr).toBe('');
  expect(r.signal).toBe('SIGKILL');
  expect(r.lines).toContain(`THREAD ${thread ? 'yes' : 'no'}`);
  expect(r.lines.some((l) => l.startsWith('SEALED'))).toBe(false);
  // Killed in the window: the checkpoint is stored, the record is not.
  expect(fs.existsSync(sidecarPaths(file).sealed)).toBe(false);
  const db = new Database(file, { readonly: true });
  try {
    expect(db.prepare('SELECT size FROM checkpoints').pluck().all()).toEqual([EVENTS + 1]);
  } finally {
    db.close();
  }
  return { file, acked: r.lines.filter((l) => l.startsWith('A ')).map((l) => l.slice(2)) };
}

describe('kill -9 between the first checkpoint and its record', () => {
  for (const thread of [true, false]) {
    it(`loses nothing acknowledged, verifies, and the next seal resumes (sealing ${thread ? 'on the sealer thread' : 'inline'})`, async () => {
      const { file, acked } = await crashed(thread);
      expect(acked).toHaveLength(EVENTS);
      const report = await verifyFile(file);
      expect(report.failures).toEqual([]);
      const db = new Database(file, { readonly: true });
      const ids = new Set(db.prepare('SELECT id FROM events').pluck().all() as string[]);
      db.close();
      for (const id of acked) expect(ids.has(id)).toBe(true);
      const ledger = SqliteLedger.open({ path: file });
      try {
        // Nothing new to seal: the stored checkpoint becomes the record, the pending note goes.
        expect(await ledger.seal()).toBeNull();
        expect(fs.readFileSync(sidecarPaths(file).sealed, 'utf8')).toMatch(/\n31\n/);
        expect(fs.existsSync(pendingRecordPath(sidecarPaths(file).sealed))).toBe(false);
        await ledger.append([{ stream: 'after', agent: { id: 'after' }, kind: 'note', resource: 'loop', action: 'note', data: { text: 'after the crash' } }]);
        const cp = await ledger.seal();
        expect(cp?.size).toBe(EVENTS + 2);
      } finally {
        await ledger.close();
      }
      expect(fs.readFileSync(sidecarPaths(file).sealed, 'utf8')).toMatch(/\n32\n/);
      expect(fs.existsSync(pendingRecordPath(sidecarPaths(file).sealed))).toBe(false);
      expect((await verifyFile(file)).failures).toEqual([]);
    }, 60_000);
  }

  it('still refuses a ledger with checkpoints and no record when nothing stands in for it', async () => {
    const { file } = await crashed(false);
    // A record missing for any other reason than that window: no pending note beside it.
    fs.rmSync(pendingRecordPath(sidecarPaths(file).sealed));
    const ledger = SqliteLedger.open({ path: file });
    try {
      await expect(ledger.seal({ force: true })).rejects.toMatchObject({ code: 'seal_refused', message: expect.stringMatching(/has checkpoints but no record/) });
    } finally {
      await ledger.close();
    }
  }, 60_000);

  it('takes a pending note larger than the newest checkpoint (a seal that lost the race to another process) for no record, not for a roll-back, and seals once the record is written', async () => {
    // Two processes seal a ledger's first checkpoint at once: one commits size 8 and is about to
    // write its record; the other had written its pending note for size 16 and will find its
    // commit beaten. A third seal in that moment must not read the note as "this key signed 16,
    // the ledger holds 8, so it was rolled back" (CI saw exactly that, at random).
    const file = tempDb(dir);
    const { sealed, key } = sidecarPaths(file);
    const writer = SqliteLedger.open({ path: file });
    const note8 = Array.from({ length: 8 }, (_, i) => ({ stream: 's', agent: { id: 'a' }, kind: 'note' as const, resource: 'loop', action: 'note', data: { text: `n${i}` } }));
    await writer.append(note8);
    await writer.seal();
    await writer.close();
    const at8 = `${file}-at8.db`;
    fs.copyFileSync(file, at8);
    fs.copyFileSync(key, sidecarPaths(at8).key);
    const again = SqliteLedger.open({ path: file });
    await again.append(note8.map((e, i) => ({ ...e, data: { text: `n${i + 8}` } })));
    expect((await again.seal())?.size).toBe(16);
    await again.close();
    const record16 = fs.readFileSync(sealed, 'utf8');
    expect(record16).toMatch(/\n16\n/);
    fs.writeFileSync(pendingRecordPath(sidecarPaths(at8).sealed), record16, { mode: 0o600 });
    const racing = SqliteLedger.open({ path: at8 });
    try {
      await expect(racing.seal({ force: true })).rejects.toMatchObject({ code: 'seal_refused', message: expect.stringMatching(/has checkpoints but no record/) });
      // The winner's record arrives (here: the size-8 checkpoint becomes the record): sealing goes on.
      const cp8 = (await racing.latestCheckpoint())!;
      fs.writeFileSync(sidecarPaths(at8).sealed, cp8.note, { mode: 0o600 });
      await racing.append([{ stream: 's', agent: { id: 'a' }, kind: 'note', resource: 'loop', action: 'note', data: { text: 'n8' } }]);
      expect((await racing.seal())?.size).toBe(9);
    } finally {
      await racing.close();
    }
    expect((await verifyFile(at8)).failures).toEqual([]);
  }, 60_000);

  it('does not let a pending note of another ledger stand for the record', async () => {
    const { file } = await crashed(false);
    const other = await crashed(false);
    fs.copyFileSync(pendingRecordPath(sidecarPaths(other.file).sealed), pendingRecordPath(sidecarPaths(file).sealed));
    const ledger = SqliteLedger.open({ path: file });
    try {
      await expect(ledger.seal({ force: true })).rejects.toMatchObject({ code: 'seal_refused', message: expect.stringMatching(/has checkpoints but no record/) });
    } finally {
      await ledger.close();
    }
  }, 60_000);
});

describe('kill -9 between the first checkpoint and its record, on PostgreSQL', () => {
  const pgDir = tempDir('witness-seal-crash-pg-');
  const schema = `wt_crash_${randomBytes(5).toString('hex')}`;
  const url = `${PG_URL}?schema=${schema}`;
  const keyFile = path.join(pgDir, `${schema}.key`);
  beforeAll(requirePostgres);
  afterAll(async () => {
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).finally(() => c.end());
  });

  it('loses nothing acknowledged, verifies, and the next seal resumes', async () => {
    await (await openLedger(url, { keyFile })).close();
    const r = await run(url, false, { WITNESS_SIGNING_KEY_FILE: keyFile });
    expect(r.stderr).toBe('');
    expect(r.signal).toBe('SIGKILL');
    const acked = r.lines.filter((l) => l.startsWith('A ')).map((l) => l.slice(2));
    expect(acked).toHaveLength(EVENTS);
    const ledger = await openLedger(url, { create: false, keyFile });
    try {
      expect(await ledger.sealRecord()).toBeUndefined();
      expect((await ledger.checkpoints()).map((c) => c.size)).toEqual([EVENTS + 1]);
      expect((await verifyLedger(ledger)).failures).toEqual([]);
      for (const id of acked) expect(await ledger.getEvent(id)).toBeDefined();
      expect(await ledger.seal()).toBeNull();
      expect((await ledger.sealRecord())?.note).toMatch(/\n31\n/);
      await ledger.append([{ stream: 'after', agent: { id: 'after' }, kind: 'note', resource: 'loop', action: 'note', data: { text: 'after the crash' } }]);
      expect((await ledger.seal())?.size).toBe(EVENTS + 2);
      expect((await ledger.sealRecord())?.note).toMatch(/\n32\n/);
      expect((await verifyLedger(ledger)).failures).toEqual([]);
    } finally {
      await ledger.close();
    }
  }, 60_000);
});
