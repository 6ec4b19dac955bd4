import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SqliteLedger, type AppendRequest, type SessionSummary } from '../../src/store/index.js';
import { indexTail } from '../../src/store/sqlite/indexer.js';
import { tamper, verifyFile, where } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * The SQLite driver lists sessions from rows it keeps per stream (`session_index`, `session_terms`),
 * filled after commit by the indexer. What the contract cannot see from outside: a ledger written
 * before those tables gets them, a reader lists such a ledger from its events alone, and the rows,
 * updated in place, are checked by verify against the events like the query index.
 */

const dir = tempDir('witness-sqlite-sessions-');
const minute = (i: number) => new Date(Date.UTC(2026, 4, 1, 12, i)).toISOString();

function corpus(): AppendRequest[] {
  const out: AppendRequest[] = [];
  for (let s = 0; s < 6; s++) {
    const stream = `sess-${s}`;
    const agent = { id: s % 2 === 0 ? 'even-bot' : 'odd-bot' };
    out.push({ stream, agent, ts: minute(s * 10), kind: 'session.start', data: {} } as AppendRequest);
    out.push({
      stream,
      agent,
      ts: minute(s * 10 + 1),
      kind: 'tool.call',
      resource: 'billing',
      outcome: s === 3 ? 'denied' : 'success',
      data: { tool: 'billing.refund', arguments: {} },
    } as AppendRequest);
    if (s < 4) out.push({ stream, agent, ts: minute(s * 10 + 2), kind: 'session.end', data: { reason: 'completed' } } as AppendRequest);
  }
  return out;
}

async function build(): Promise<{ file: string; want: SessionSummary[] }> {
  const file = tempDb(dir);
  const l = SqliteLedger.open({ path: file });
  await l.append(corpus());
  await l.seal();
  indexTail(l.database);
  const want = (await l.listSessions()).sessions;
  await l.close();
  expect(want.map((s) => s.stream)).toEqual(['sess-5', 'sess-4', 'sess-3', 'sess-2', 'sess-1', 'sess-0']);
  expect(want.find((s) => s.stream === 'sess-3')).toMatchObject({ denials: 1, ended: true, events: 3, toolCalls: 1 });
  return { file, want };
}

function count(file: string, sql: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare(sql).pluck().get() as number;
  } finally {
    db.close();
  }
}

describe('SQLite session rows', () => {
  it('[R-WHAT-WHEN-RESULT] a ledger from before the session tables is listed from its events by a reader, and gets the tables, filled, from the next writer', async () => {
    const { file, want } = await build();
    // As an older Witness left it: no session tables, nothing in meta about them.
    const db = new Database(file);
    db.exec(`DROP TABLE session_index; DROP TABLE session_terms; DELETE FROM meta WHERE key = 'sessions_indexed_upto'`);
    db.close();
    const reader = SqliteLedger.open({ path: file, create: false, readonly: true });
    expect((await reader.listSessions()).sessions).toEqual(want);
    expect((await reader.listSessions({ agent: 'odd-bot', ended: false })).sessions.map((s) => s.stream)).toEqual(['sess-5']);
    await reader.close();

    const writer = SqliteLedger.open({ path: file, create: false });
    expect(count(file, 'SELECT count(*) FROM session_index')).toBe(0);
    // Empty rows and everything in the tail: the same answer before the indexer catches up, and after.
    expect((await writer.listSessions()).sessions).toEqual(want);
    indexTail(writer.database);
    expect(count(file, 'SELECT count(*) FROM session_index')).toBe(6);
    expect((await writer.listSessions()).sessions).toEqual(want);
    await writer.close();
    expect((await verifyFile(file)).ok).toBe(true);
  });

  it('[R-TAMPER-INDEX] verify reports a session row or term altered, removed or added, at the stream’s first event, though every event verifies', async () => {
    const { file } = await build();
    expect(where(await verifyFile(file))).toEqual([]);
    // sess-3 starts at leaf 9 (three events for each of sess-0..2 before it).
    const edits: Array<[string, (db: Database.Database) => void, number[]]> = [
      ['a denial hidden', (db) => void db.prepare(`UPDATE session_index SET denials = 0 WHERE stream = 'sess-3'`).run(), [9]],
      ['an agent hidden', (db) => void db.prepare(`DELETE FROM session_terms WHERE stream = 'sess-3' AND term = 'a:odd-bot'`).run(), [9]],
      ['an agent added', (db) => void db.prepare(`INSERT INTO session_terms (term, stream) VALUES ('a:someone', 'sess-0')`).run(), [0]],
      ['a session removed', (db) => void db.prepare(`DELETE FROM session_index WHERE stream = 'sess-1'`).run(), [3]],
      [
        'a session made up',
        (db) =>
          void db
            .prepare(
              `INSERT INTO session_index SELECT 'ghost', start_ts, agent, agents, end_ts, last_pos, events, tool_calls, denials, errors, requested, approved, denied, expired, ended, end_reason FROM session_index WHERE stream = 'sess-0'`,
            )
            .run(),
        [16],
      ],
    ];
    for (const [what, edit, leaves] of edits) {
      const copy = tempDb(dir);
      const src = new Database(file, { readonly: true });
      await src.backup(copy);
      src.close();
      tamper(copy, edit);
      const r = await verifyFile(copy);
      expect(r.ok, what).toBe(false);
      expect(where(r), what).toEqual(leaves.map((leaf) => ({ code: 'index_mismatch', leaf })));
    }
  });
});
