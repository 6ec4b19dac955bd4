import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SqliteLedger, verifyLedger, type AppendRequest } from '../../src/store/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * Consume-once on SQLite beyond the contract suite's two-handle race (test/store/contract/
 * concurrency.ts): ledgers written before the index existed, and batches that release more than
 * one grant.
 */

const dir = tempDir('witness-grant-once-');

function release(stream: string, decisionId: string): AppendRequest {
  return {
    stream,
    agent: { id: 'gw' },
    kind: 'policy.decision',
    data: { decision: 'allow', tool: 'get-sum', approval: { request_id: `req-${decisionId}`, decision_id: decisionId } },
  } as AppendRequest;
}

const refusal = (id: string, file: string) => `Approval decision ${id} has already released a call in ${file}, and a grant is used once; this release was not recorded.`;

function indexSql(file: string): string | undefined {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare(`SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'events_grant_once'`).pluck().get() as string | undefined;
  } finally {
    db.close();
  }
}

/** A ledger as a Witness before consume-once left it: the same file without the index. */
function dropIndex(file: string): void {
  const db = new Database(file);
  try {
    db.exec('DROP INDEX events_grant_once');
  } finally {
    db.close();
  }
}

describe('consume-once on an SQLite ledger', () => {
  it('gives a ledger written before the index its index when opened for writing, not when opened read-only, and then refuses a second release', async () => {
    const file = tempDb(dir);
    const l = SqliteLedger.open({ path: file });
    await l.append([release('a', 'dec-1')]);
    await l.close();
    dropIndex(file);
    const ro = SqliteLedger.open({ path: file, readonly: true, create: false });
    await ro.close();
    expect(indexSql(file)).toBeUndefined();
    const w = SqliteLedger.open({ path: file, create: false });
    try {
      expect(indexSql(file)).toContain('json_extract(data');
      await expect(w.append([release('b', 'dec-1')])).rejects.toMatchObject({ code: 'conflict', message: refusal('dec-1', file) });
      await w.append([release('b', 'dec-2')]);
    } finally {
      await w.close();
    }
  });

  it('keeps two releases of one grant recorded before the index, and enforces one release per grant on every event after them', async () => {
    const file = tempDb(dir);
    const l = SqliteLedger.open({ path: file });
    await l.append([release('a', 'dec-1')]);
    await l.close();
    dropIndex(file);
    // What two gateways racing on a file without the index could write.
    const old = SqliteLedger.open({ path: file, create: false });
    // Opening for writing gave it the index again; this writer is the older Witness that had none.
    old.database.exec('DROP INDEX events_grant_once');
    await old.append([release('b', 'dec-1')]);
    await old.close();
    const w = SqliteLedger.open({ path: file, create: false });
    try {
      expect(indexSql(file)).toMatch(/AND pos >= 2$/);
      await expect(w.append([release('c', 'dec-2'), release('d', 'dec-2')])).rejects.toMatchObject({ code: 'conflict', message: refusal('dec-2', file) });
      await w.append([release('c', 'dec-2')]);
      await expect(w.append([release('d', 'dec-2')])).rejects.toMatchObject({ code: 'conflict' });
      const releases = (await w.query({ kind: 'policy.decision', limit: 10 })).events;
      expect(releases.map((e) => (e.data?.['approval'] as { decision_id: string }).decision_id)).toEqual(['dec-1', 'dec-1', 'dec-2']);
      await w.seal();
      const report = await verifyLedger(w);
      expect(report.failures).toEqual([]);
    } finally {
      await w.close();
    }
  });

  it('names, of a batch releasing several grants, the one already used', async () => {
    const file = tempDb(dir);
    const l = SqliteLedger.open({ path: file });
    try {
      await l.append([release('a', 'dec-2')]);
      await expect(l.append([release('b', 'dec-1'), release('b', 'dec-2'), release('b', 'dec-3')])).rejects.toMatchObject({ code: 'conflict', message: refusal('dec-2', file) });
      // The refused batch took nothing with it: dec-1 and dec-3 are still unused.
      await l.append([release('c', 'dec-1'), release('c', 'dec-3')]);
      expect((await l.query({ kind: 'policy.decision', limit: 10 })).events).toHaveLength(3);
    } finally {
      await l.close();
    }
  });
});
