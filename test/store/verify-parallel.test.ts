import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { canonicalize, type VerifyReport } from '../../src/core/index.js';
import { SqliteLedger, sidecarPaths, verifyLedger, type RawEventRow, type VerifyLedgerOptions } from '../../src/store/index.js';
import { REPO_ROOT, buildLedger, copyLedger, rewriteStream, runCli, tamper, type BuiltLedger } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * Parallel verification splits the ledger into chunks checked by worker threads and takes their
 * findings in, in order; a chunk whose streams do not continue from where they stood (an edit, a
 * deletion, a moved stream) is checked again in order. The report must be the one a single pass
 * gives, failure for failure, on every ledger: these tests use chunks of 2 and 4 events so that
 * every tamper lands on or next to a chunk seam.
 *
 * The threads run the compiled worker (dist/store/verify-worker.js): build first.
 */

const dir = tempDir('witness-verify-parallel-');
let base: BuiltLedger;

beforeAll(async () => {
  if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'store', 'verify-worker.js'))) {
    throw new Error('dist/ is missing the verify worker: run `npx tsc -p tsconfig.build.json` before these tests.');
  }
  base = await buildLedger(dir);
});

async function verifyWith(file: string, options: VerifyLedgerOptions): Promise<{ report: VerifyReport; threads: number; fromThreads: number }> {
  const ledger = SqliteLedger.open({ path: file, create: false, readonly: true });
  let threads = 0;
  let fromThreads = 0;
  try {
    const report = await verifyLedger(ledger, {
      ...options,
      onPlan: (p) => (threads = p.threads),
      onChunks: (s) => (fromThreads = s.fromThreads),
    });
    return { report, threads, fromThreads };
  } finally {
    await ledger.close();
  }
}

/** The same ledger verified in one pass and in chunks (of 2 events by default) on two threads: identical reports. */
async function expectSameReports(file: string, options: VerifyLedgerOptions = {}, chunks = [2]): Promise<VerifyReport> {
  const single = await verifyWith(file, { ...options, threads: 1 });
  expect(single.threads).toBe(1);
  for (const chunkEvents of chunks) {
    const parallel = await verifyWith(file, { ...options, threads: 2, chunkEvents });
    expect(parallel.threads).toBe(2);
    expect(parallel.report).toEqual(single.report);
  }
  return single.report;
}

function fresh(): BuiltLedger {
  return copyLedger(base, dir);
}

function rowAt(db: Database.Database, pos: number): RawEventRow {
  return db.prepare('SELECT * FROM events WHERE pos = ?').get(pos) as RawEventRow;
}

describe('parallel verification', () => {
  it('[R-TAMPER-HEADER] reports an intact ledger exactly as a single pass does, with the threads doing the work', async () => {
    const r = await expectSameReports(base.file, {}, [2, 4, 8]);
    expect(r.ok).toBe(true);
    const parallel = await verifyWith(base.file, { threads: 2, chunkEvents: 4 });
    // 13 events in chunks of 4: every chunk's result was taken in as the threads made it.
    expect(parallel.fromThreads).toBe(4);
  });

  const cases: Array<[string, (l: BuiltLedger, db: Database.Database) => void]> = [
    [
      '[R-TAMPER-HEADER] a header edit',
      (_l, db) => {
        const h = JSON.parse(rowAt(db, 6).header) as Record<string, unknown>;
        h['action'] = 'refund-everything';
        db.prepare('UPDATE events SET header = ? WHERE pos = 6').run(canonicalize(h));
      },
    ],
    ['[R-TAMPER-PAYLOAD] a payload edit', (_l, db) => void db.prepare(`UPDATE events SET data = '{"text":"x"}' WHERE pos = 8`).run()],
    ['[R-TAMPER-PAYLOAD] an erased payload', (_l, db) => void db.prepare('UPDATE events SET data = NULL, salt = NULL WHERE pos = 3').run()],
    ['[R-TAMPER-DELETE] a deletion on a chunk seam', (_l, db) => void db.prepare('DELETE FROM events WHERE pos = 4').run()],
    ['[R-TAMPER-DELETE] a deletion inside a chunk', (_l, db) => void db.prepare('DELETE FROM events WHERE pos IN (5, 6)').run()],
    ['[R-TAMPER-TRUNCATE] the tail cut off', (_l, db) => void db.prepare('DELETE FROM events WHERE pos >= 10').run()],
    [
      '[R-TAMPER-REORDER] two events swapped across a seam',
      (_l, db) => {
        db.prepare('UPDATE events SET pos = -1 WHERE pos = 3').run();
        db.prepare('UPDATE events SET pos = 3 WHERE pos = 4').run();
        db.prepare('UPDATE events SET pos = 4 WHERE pos = -1').run();
      },
    ],
    [
      '[R-TAMPER-INSERT] an event inserted as a copy',
      (_l, db) => {
        const r = rowAt(db, 12);
        db.prepare('INSERT INTO events (pos, id, stream, seq, ts, kind, agent, resource, action, outcome, header, data, salt, hash) VALUES (13, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').run(
          // Another id (the last character changed), or the unique index refuses the copy.
          `${r.id.slice(0, -1)}${r.id.endsWith('0') ? '1' : '0'}`,
          r.stream,
          r.seq + 1,
          r.ts,
          r.kind,
          r.agent,
          r.resource,
          r.action,
          r.outcome,
          r.header,
          r.data,
          r.salt,
          r.hash,
        );
      },
    ],
    ['[R-TAMPER-HEADER] an indexed column that disagrees with the header', (_l, db) => void db.prepare(`UPDATE events SET agent = 'someone-else' WHERE pos = 5`).run()],
    ['[R-TAMPER-HEADER] a non-canonical header', (_l, db) => void db.prepare(`UPDATE events SET header = '{ ' || substr(header, 2) WHERE pos = 7`).run()],
    ['[R-TAMPER-HEADER] a header that is not JSON', (_l, db) => void db.prepare(`UPDATE events SET header = 'nonsense' WHERE pos = 2`).run()],
    ['[R-TAMPER-HEADER] a stored hash edited', (_l, db) => void db.prepare('UPDATE events SET hash = zeroblob(32) WHERE pos = 9').run()],
    ['[R-TAMPER-REWRITE] a stream rewritten so its chain verifies', (l, db) => rewriteStream(db, l.sessions.a, 2, { model: 'claude', input: [] })],
    ['[R-TAMPER-SIGNATURE] the newest checkpoint deleted', (_l, db) => void db.prepare('DELETE FROM checkpoints WHERE id = (SELECT max(id) FROM checkpoints)').run()],
    [
      '[R-TAMPER-MOVE] a session.end moved after a later event of its stream',
      (l, db) => {
        // Session a ends at pos 9; giving its session.end the position of an event after it makes
        // a stream continue after its end.
        const end = l.pos(l.sessions.a, 5);
        db.prepare('UPDATE events SET pos = 100 WHERE pos = ?').run(end);
        db.prepare('UPDATE events SET pos = ? WHERE pos = 12').run(end);
        db.prepare('UPDATE events SET pos = 12 WHERE pos = 100').run();
      },
    ],
  ];

  for (const [name, edit] of cases) {
    it(`${name} is reported exactly as a single pass reports it`, async () => {
      const l = fresh();
      tamper(l.file, (db) => edit(l, db));
      const r = await expectSameReports(l.file);
      expect(r.ok).toBe(false);
    });
  }

  it('[R-HOSTILE] checks a ledger whose stored positions claim more than 2^53 events in one thread, and reports the gap', async () => {
    const l = fresh();
    tamper(l.file, (db) => void db.prepare('UPDATE events SET pos = ? WHERE pos = 12').run(2n ** 62n));
    const single = await verifyWith(l.file, { threads: 1 });
    const asked = await verifyWith(l.file, { threads: 2, chunkEvents: 2 });
    expect(asked.threads).toBe(1);
    expect(asked.report).toEqual(single.report);
    expect(single.report.first).toMatchObject({ code: 'position_gap', stream: l.sessions.c, seq: 1 });
  });

  it('[R-SEAL-ROLLBACK] gives the single-pass report on every ledger of the tamper corpus, pinned key or not', async () => {
    const corpus = path.join(REPO_ROOT, 'test', 'fixtures', 'tamper');
    const ledgers = path.join(corpus, 'ledgers');
    const trusted = fs.readFileSync(path.join(corpus, 'trusted.pub'), 'utf8').trim();
    const names = fs.readdirSync(ledgers).filter((d) => fs.existsSync(path.join(ledgers, d, 'ledger.sql')));
    expect(names.length).toBeGreaterThanOrEqual(6);
    for (const name of names) {
      const file = tempDb(dir);
      const db = new Database(file);
      db.exec(fs.readFileSync(path.join(ledgers, name, 'ledger.sql'), 'utf8'));
      db.close();
      fs.copyFileSync(path.join(ledgers, name, 'ledger.sealed'), sidecarPaths(file).sealed);
      fs.chmodSync(sidecarPaths(file).sealed, 0o600);
      await expectSameReports(file, name === 'original' ? {} : { trustedKeys: [trusted] });
    }
  });

  it('[R-AGAINST] compares a saved checkpoint inside a chunk exactly as a single pass does', async () => {
    const l = fresh();
    const db = new Database(l.file, { readonly: true });
    const note = db.prepare('SELECT note FROM checkpoints ORDER BY id LIMIT 1').pluck().get() as string;
    db.close();
    expect((await expectSameReports(l.file, { against: note })).ok).toBe(true);
    tamper(l.file, (d) => void d.prepare(`UPDATE events SET data = '{"text":"x"}' WHERE pos = 1`).run());
    expect((await expectSameReports(l.file, { against: note })).ok).toBe(false);
  });

  it('[R-CLI-USAGE] witness verify --threads N verifies with that many threads, and refuses a count that is not one', async () => {
    const ok = await runCli(['verify', '--store', `sqlite:${base.file}`, '--threads', '2', '--json']);
    expect(ok.code).toBe(0);
    expect((JSON.parse(ok.stdout) as VerifyReport).ok).toBe(true);
    for (const bad of ['0', 'two', '1.5', '-1']) {
      const r = await runCli(['verify', '--store', `sqlite:${base.file}`, '--threads', bad]);
      expect(r.code, bad).toBe(2);
      expect(r.stderr).toContain('--threads takes a whole number');
    }
  });
});
