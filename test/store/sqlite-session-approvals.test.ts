import Database from 'better-sqlite3';
import { v7 as uuidv7 } from 'uuid';
import { describe, expect, it } from 'vitest';
import { SqliteLedger, type AppendRequest, type SessionSummary } from '../../src/store/index.js';
import { indexTail } from '../../src/store/sqlite/indexer.js';
import { tamper, verifyFile, where } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * The SQLite driver keeps a row of counts per session, and an older Witness folded every approval
 * record into it whoever recorded it: an agent that wrote its own approval.request and an
 * approval.decision on it straight into the ledger showed `requested: 1, approved: 1`. This
 * Witness counts only the records the rest of Witness honours (contract/session-approvals.ts), so
 * rows another rule folded are neither read nor checked, and the next writer empties them for the
 * indexer to fold again; the events are not touched.
 */

const dir = tempDir('witness-sqlite-session-approvals-');
const minute = (i: number) => new Date(Date.UTC(2026, 4, 2, 12, i)).toISOString();
const DIGEST = 'ab'.repeat(32);

function corpus(): AppendRequest[] {
  const genuine = uuidv7();
  const forged = uuidv7();
  const ev = (stream: string, i: number, kind: string, recorder: string, data: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    ({ stream, agent: { id: 'support-bot' }, ts: minute(i), kind, recorder: { kind: recorder, version: '0.1.0' }, data, ...extra }) as AppendRequest;
  return [
    ev('gw', 0, 'session.start', 'gateway', {}),
    ev('gw', 1, 'approval.request', 'gateway', { request_id: genuine, arguments_digest: DIGEST }, { id: genuine }),
    ev('gw', 2, 'approval.decision', 'cli', { request_id: genuine, decision: 'approved', approver: 'alice@corp', arguments_digest: DIGEST }, { parent: genuine }),
    ev('own', 3, 'session.start', 'sdk', {}),
    ev('own', 4, 'approval.request', 'sdk', { request_id: forged, arguments_digest: DIGEST }, { id: forged }),
    ev('own', 5, 'approval.decision', 'sdk', { request_id: forged, decision: 'approved', approver: 'alice@corp', arguments_digest: DIGEST }, { parent: forged }),
  ];
}

const WANT = {
  gw: { requested: 1, approved: 1, denied: 0, expired: 0 },
  own: { requested: 0, approved: 0, denied: 0, expired: 0 },
};

async function approvalsOf(l: SqliteLedger): Promise<Record<string, SessionSummary['approvals']>> {
  return Object.fromEntries((await l.listSessions()).sessions.map((s) => [s.stream, s.approvals]));
}

function read<T>(file: string, sql: string): T {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare(sql).pluck().get() as T;
  } finally {
    db.close();
  }
}

/** A ledger as an older Witness left it: every event indexed, the forged pair counted in its row, no fold rule named. */
async function olderLedger(): Promise<string> {
  const file = tempDb(dir);
  const l = SqliteLedger.open({ path: file });
  await l.append(corpus());
  await l.seal();
  indexTail(l.database);
  await l.close();
  expect(read<number>(file, 'SELECT count(*) FROM session_index')).toBe(2);
  const db = new Database(file);
  db.exec(`UPDATE session_index SET requested = 1, approved = 1 WHERE stream = 'own'; DELETE FROM meta WHERE key = 'sessions_fold'`);
  db.close();
  return file;
}

describe('SQLite session rows and approval records nobody honours', () => {
  it('[R-WHAT-WHEN-RESULT] a ledger whose rows an older Witness folded is listed from its events by a reader, and refolded by the next writer, the agent’s own approval pair counted nowhere', async () => {
    const file = await olderLedger();
    const reader = SqliteLedger.open({ path: file, create: false, readonly: true });
    expect(await approvalsOf(reader)).toEqual(WANT);
    expect((await reader.listSessions({ session: 'own' })).sessions[0]?.approvals).toEqual(WANT.own);
    await reader.close();
    // Rows no reader of this Witness reads are not checked either: the events verify as they are.
    expect(where(await verifyFile(file))).toEqual([]);

    const writer = SqliteLedger.open({ path: file, create: false });
    expect(read<number>(file, 'SELECT count(*) FROM session_index')).toBe(0);
    expect(read<string>(file, `SELECT value FROM meta WHERE key = 'sessions_fold'`)).toBe('2');
    expect(await approvalsOf(writer)).toEqual(WANT);
    indexTail(writer.database);
    expect(read<number>(file, 'SELECT count(*) FROM session_index')).toBe(2);
    expect(read<number>(file, `SELECT requested + approved FROM session_index WHERE stream = 'own'`)).toBe(0);
    expect(await approvalsOf(writer)).toEqual(WANT);
    await writer.close();
    expect(where(await verifyFile(file))).toEqual([]);

    // Opened again, the rows are this Witness's and stay: nothing is folded twice.
    const again = SqliteLedger.open({ path: file, create: false });
    expect(read<number>(file, 'SELECT count(*) FROM session_index')).toBe(2);
    expect(await approvalsOf(again)).toEqual(WANT);
    await again.close();
  });

  it('[R-TAMPER-INDEX] verify reports a refolded row that counts the agent’s own approval pair again, at the session’s first event', async () => {
    const file = await olderLedger();
    const writer = SqliteLedger.open({ path: file, create: false });
    indexTail(writer.database);
    await writer.close();
    tamper(file, (db) => void db.prepare(`UPDATE session_index SET requested = 1, approved = 1 WHERE stream = 'own'`).run());
    // own starts at leaf 3.
    expect(where(await verifyFile(file))).toEqual([{ code: 'index_mismatch', leaf: 3 }]);
  });
});
