import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { isWitnessError, openWitness, type ErrorCode } from '../../src/index.js';
import { SqliteLedger, verifyLedger, type AppendRequest } from '../../src/store/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

const dir = tempDir('witness-sqlite-errors-');

/** One sentence a person can act on: no line breaks, no second sentence, ends with a full stop. */
function expectOneSentence(message: string): void {
  expect(message.length).toBeGreaterThan(10);
  expect(message).not.toMatch(/\n/);
  expect(message).toMatch(/\.$/);
  expect(message).not.toMatch(/[.!?]\s+[A-Z]/);
}

/** Runs `fn`, expects a WitnessError with `code`, checks its message and returns it. */
async function expectWitnessError(fn: () => unknown, code: ErrorCode, mentions?: string): Promise<Error> {
  let thrown: unknown;
  try {
    await fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, `expected a WitnessError with code ${code}`).toBeDefined();
  if (!isWitnessError(thrown)) throw new Error(`expected a WitnessError, got ${String(thrown)}`);
  expect({ code: thrown.code, message: thrown.message }).toMatchObject({ code });
  expectOneSentence(thrown.message);
  if (mentions !== undefined) expect(thrown.message).toContain(mentions);
  return thrown;
}

const note = (text: string, stream = 'errors-stream'): AppendRequest => ({ stream, kind: 'note', agent: { id: 'errors-bot' }, data: { text } }) as AppendRequest;

async function makeLedger(): Promise<string> {
  const file = tempDb(dir);
  const l = SqliteLedger.open({ path: file });
  await l.append([note('first'), note('second')]);
  await l.seal();
  await l.close();
  return file;
}

describe('opening a ledger at an unusable path', () => {
  it('refuses a path whose directory does not exist with store_unavailable naming the directory', async () => {
    const missing = path.join(dir, 'no-such-dir', 'nested', 'ledger.db');
    await expectWitnessError(() => SqliteLedger.open({ path: missing }), 'store_unavailable', path.dirname(missing));
    await expectWitnessError(() => openWitness({ store: `sqlite:${missing}` }), 'store_unavailable', path.dirname(missing));
    expect(fs.existsSync(path.dirname(missing))).toBe(false);
  });

  it('refuses a path under a regular file with store_unavailable, even for root', async () => {
    const file = path.join(dir, 'plain-file');
    fs.writeFileSync(file, 'not a directory\n');
    const under = path.join(file, 'x.db');
    await expectWitnessError(() => SqliteLedger.open({ path: under }), 'store_unavailable', under);
    await expectWitnessError(() => openWitness({ store: `sqlite:${under}` }), 'store_unavailable', under);
    expect(fs.readFileSync(file, 'utf8')).toBe('not a directory\n');
  });

  it('refuses a path inside /proc, where nothing can be created, with store_unavailable', async () => {
    await expectWitnessError(() => SqliteLedger.open({ path: '/proc/witness-ledger.db' }), 'store_unavailable', '/proc/witness-ledger.db');
  });

  it('refuses a directory given as the ledger file with store_unavailable', async () => {
    const d = fs.mkdtempSync(path.join(dir, 'a-directory-'));
    await expectWitnessError(() => SqliteLedger.open({ path: d }), 'store_unavailable', d);
  });

  it('refuses a missing file with not_found when asked not to create one', async () => {
    const missing = path.join(dir, 'missing.db');
    await expectWitnessError(() => SqliteLedger.open({ path: missing, create: false }), 'not_found', missing);
    expect(fs.existsSync(missing)).toBe(false);
  });
});

describe('a locked ledger', () => {
  it('fails an append with store_locked within the busy timeout while another connection holds BEGIN EXCLUSIVE, and appends once it is released', async () => {
    const file = await makeLedger();
    const ledger = SqliteLedger.open({ path: file, busyTimeoutMs: 50 });
    const other = new Database(file);
    try {
      other.exec('BEGIN EXCLUSIVE');
      const started = Date.now();
      await expectWitnessError(() => ledger.append([note('while locked')]), 'store_locked', file);
      expect(Date.now() - started).toBeLessThan(2000);
      await expectWitnessError(() => ledger.seal({ force: true }), 'store_locked', file);
      other.exec('ROLLBACK');

      const [r] = await ledger.append([note('after the lock')]);
      expect(r?.seq).toBe(2);
      expect(r?.pos).toBe(2);
      expect(await ledger.seal()).not.toBeNull();
      const report = await verifyLedger(ledger);
      expect(report.failures).toEqual([]);
      expect(report.ok).toBe(true);
      expect(report.events).toBe(3);
    } finally {
      other.close();
      await ledger.close();
    }
  });

  it('still opens a WAL ledger for reading while another connection holds a write lock', async () => {
    const file = await makeLedger();
    const other = new Database(file);
    // A writer holding the ledger open keeps it in WAL mode (the last one to close switches it to
    // rollback-journal mode for read-only readers, test/store/readonly.test.ts).
    other.pragma('journal_mode = WAL');
    other.exec('BEGIN EXCLUSIVE');
    try {
      const ledger = SqliteLedger.open({ path: file, busyTimeoutMs: 50 });
      expect(ledger.info.size).toBe(2);
      expect((await ledger.readStream('errors-stream')).map((e) => e.data?.['text'])).toEqual(['first', 'second']);
      await ledger.close();
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
  });

  it('refuses to open with store_locked when another connection holds the database in exclusive locking mode', async () => {
    const file = await makeLedger();
    const other = new Database(file);
    other.pragma('locking_mode = EXCLUSIVE');
    other.exec('BEGIN EXCLUSIVE; COMMIT;');
    try {
      const started = Date.now();
      await expectWitnessError(() => SqliteLedger.open({ path: file, busyTimeoutMs: 50 }), 'store_locked', file);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      other.close();
    }
    const ledger = SqliteLedger.open({ path: file, busyTimeoutMs: 50 });
    expect(ledger.info.size).toBe(2);
    await ledger.close();
  });

  it('refuses to create a ledger with store_locked when another connection holds the new file exclusively', async () => {
    const file = tempDb(dir);
    const other = new Database(file);
    other.exec('BEGIN EXCLUSIVE');
    try {
      await expectWitnessError(() => SqliteLedger.open({ path: file, busyTimeoutMs: 50 }), 'store_locked', file);
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    const ledger = SqliteLedger.open({ path: file });
    expect(ledger.info.size).toBe(0);
    await ledger.close();
  });
});

describe('a ledger written by a newer Witness', () => {
  it('refuses a ledger whose meta.schema_version is newer with store_newer_schema naming both versions', async () => {
    const file = await makeLedger();
    const raw = new Database(file);
    raw.prepare(`UPDATE meta SET value = '7' WHERE key = 'schema_version'`).run();
    raw.close();
    const e = await expectWitnessError(() => SqliteLedger.open({ path: file }), 'store_newer_schema', file);
    expect(e.message).toContain('7');
    expect(e.message).toContain('(2)');
    await expectWitnessError(() => SqliteLedger.open({ path: file, readonly: true }), 'store_newer_schema');
    await expectWitnessError(() => openWitness({ store: `sqlite:${file}` }), 'store_newer_schema');
  });
});

describe('a file that is not a Witness ledger', () => {
  it('refuses random bytes with store_corrupt and leaves the file untouched', async () => {
    const file = path.join(dir, 'random.db');
    const bytes = randomBytes(16 * 1024);
    fs.writeFileSync(file, bytes);
    await expectWitnessError(() => SqliteLedger.open({ path: file }), 'store_corrupt', file);
    await expectWitnessError(() => openWitness({ store: `sqlite:${file}` }), 'store_corrupt', file);
    expect(fs.readFileSync(file).equals(bytes)).toBe(true);
    expect(fs.existsSync(`${file}.key`)).toBe(false);
  });

  it('refuses a text file with store_corrupt', async () => {
    const file = path.join(dir, 'notes.txt');
    fs.writeFileSync(file, 'These are my notes, not a database.\n'.repeat(200));
    await expectWitnessError(() => SqliteLedger.open({ path: file }), 'store_corrupt', file);
    const tiny = path.join(dir, 'tiny.db');
    fs.writeFileSync(tiny, 'hi');
    await expectWitnessError(() => SqliteLedger.open({ path: tiny }), 'store_corrupt', tiny);
  });

  it('refuses an SQLite database of another application with store_corrupt', async () => {
    const file = path.join(dir, 'app.db');
    const raw = new Database(file);
    raw.exec(`CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('ann');`);
    raw.close();
    await expectWitnessError(() => SqliteLedger.open({ path: file }), 'store_corrupt', file);
    await expectWitnessError(() => openWitness({ store: `sqlite:${file}` }), 'store_corrupt', file);
    expect(fs.existsSync(`${file}.key`)).toBe(false);

    const withMeta = path.join(dir, 'app-with-meta.db');
    const raw2 = new Database(withMeta);
    raw2.exec(`CREATE TABLE meta (key TEXT, value TEXT); INSERT INTO meta VALUES ('colour', 'blue');`);
    raw2.close();
    await expectWitnessError(() => SqliteLedger.open({ path: withMeta }), 'store_corrupt', withMeta);
  });

  it('leaves an SQLite database of another application byte-for-byte unchanged when refusing it', async () => {
    const file = path.join(dir, 'foreign.db');
    const raw = new Database(file);
    raw.exec(`CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL); INSERT INTO orders (total) VALUES (12.5);`);
    raw.close();
    const before = fs.readFileSync(file);
    await expectWitnessError(() => SqliteLedger.open({ path: file }), 'store_corrupt', file);
    // Refusing someone else's database must not rewrite it (e.g. switch it to WAL journal mode).
    expect(fs.readFileSync(file).equals(before)).toBe(true);
    const check = new Database(file, { readonly: true });
    expect(check.pragma('journal_mode', { simple: true })).toBe('delete');
    check.close();
  });
});

describe('append-only tables', () => {
  it('[R-APPEND-ONLY] refuses UPDATE and DELETE on events and checkpoints through raw SQL, leaving the ledger verifiable', async () => {
    const file = await makeLedger();
    const raw = new Database(file);
    try {
      const refused = (sql: string, table: string, verb: 'UPDATE' | 'DELETE' | 'REPLACE') => {
        let err: unknown;
        try {
          raw.prepare(sql).run();
        } catch (e) {
          err = e;
        }
        expect(err, sql).toBeInstanceOf(Error);
        expect((err as { code?: string }).code).toBe('SQLITE_CONSTRAINT_TRIGGER');
        // The one exception (a retention purge nulling data and salt) is named where it applies.
        const purge = table === 'events' && verb === 'UPDATE' ? ' (only the retention purge erases a payload)' : '';
        expect((err as Error).message).toBe(
          verb === 'REPLACE' ? `witness: ${table} are append-only; an existing row cannot be replaced` : `witness: ${table} are append-only; ${verb} is refused${purge}`,
        );
      };
      refused(`UPDATE events SET data = '{"text":"forged"}' WHERE pos = 0`, 'events', 'UPDATE');
      refused(`UPDATE events SET outcome = 'success'`, 'events', 'UPDATE');
      refused(`DELETE FROM events WHERE pos = 1`, 'events', 'DELETE');
      refused(`DELETE FROM events`, 'events', 'DELETE');
      refused(`UPDATE checkpoints SET note = 'forged'`, 'checkpoints', 'UPDATE');
      refused(`DELETE FROM checkpoints`, 'checkpoints', 'DELETE');
      refused(`UPDATE tree_nodes SET hash = zeroblob(32)`, 'tree_nodes', 'UPDATE');
      refused(`DELETE FROM public_keys`, 'public_keys', 'DELETE');
      refused(`INSERT INTO events SELECT * FROM events WHERE pos = 0 ON CONFLICT (pos) DO UPDATE SET data = '{"text":"forged"}'`, 'events', 'REPLACE');
      refused(`INSERT OR REPLACE INTO events SELECT * FROM events WHERE pos = 0`, 'events', 'REPLACE');
      refused(`REPLACE INTO checkpoints SELECT * FROM checkpoints`, 'checkpoints', 'REPLACE');
      expect(raw.prepare('SELECT count(*) FROM events').pluck().get()).toBe(2);
      expect(raw.prepare('SELECT count(*) FROM checkpoints').pluck().get()).toBe(1);
    } finally {
      raw.close();
    }
    const ledger = SqliteLedger.open({ path: file });
    try {
      // The connection the SDK exposes is refused the same way.
      expect(() => ledger.database.prepare(`DELETE FROM events`).run()).toThrow(/append-only; DELETE is refused/);
      expect(() => ledger.database.prepare(`UPDATE checkpoints SET ts = 'x'`).run()).toThrow(/append-only; UPDATE is refused/);
      const report = await verifyLedger(ledger);
      expect(report.failures).toEqual([]);
      expect(report.ok).toBe(true);
      expect((await ledger.readStream('errors-stream')).map((e) => e.data?.['text'])).toEqual(['first', 'second']);
    } finally {
      await ledger.close();
    }
  });

  it('refuses INSERT OR REPLACE that would overwrite an existing event or checkpoint', async () => {
    const file = await makeLedger();
    const raw = new Database(file);
    const attempts = [
      `INSERT OR REPLACE INTO events SELECT pos, id, stream, seq, ts, kind, agent, resource, action, outcome, header, '{"text":"forged"}', salt, hash FROM events WHERE pos = 0`,
      `REPLACE INTO checkpoints SELECT id, size, root, 'forged', ts, frontier, consistency, prev_size FROM checkpoints WHERE id = 1`,
    ];
    const outcomes: string[] = [];
    try {
      for (const sql of attempts) {
        try {
          raw.prepare(sql).run();
          outcomes.push(`accepted: ${sql.slice(0, 40)}`);
        } catch (e) {
          outcomes.push((e as { code?: string }).code ?? String(e));
        }
      }
    } finally {
      raw.close();
    }
    // REPLACE deletes the old row without firing DELETE triggers (recursive_triggers is off by
    // default), so only a BEFORE INSERT trigger can keep history from being rewritten this way.
    expect(outcomes).toEqual(['SQLITE_CONSTRAINT_TRIGGER', 'SQLITE_CONSTRAINT_TRIGGER']);
  });
});
