import fs from 'node:fs';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SqliteLedger, sidecarPaths, verifyLedger, type AppendRequest, type QueryFilter } from '../../src/store/index.js';
import { indexedUpto } from '../../src/store/sqlite/indexer.js';
import { querySql } from '../../src/store/sqlite/query.js';
import { V1_MOVED_INDEXES } from '../../src/store/sqlite/schema.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import { V1_DDL, V1_TRIGGERS } from './v1-schema.js';

const dir = tempDir('witness-migration-');

/** With `dated`, timestamps a minute apart in April 2026; without, stamped now (an unsealed tail must not predate its checkpoint). */
function batch(n: number, from: number, dated = true): AppendRequest[] {
  const out: AppendRequest[] = [];
  for (let i = from; i < from + n; i++) {
    const s = i % 5;
    out.push({
      stream: `session-${s}`,
      ...(dated ? { ts: new Date(Date.UTC(2026, 3, 1) + i * 60_000).toISOString() } : {}),
      agent: { id: `agent-${s % 3}` },
      kind: i % 4 === 0 ? 'note' : 'tool.call',
      ...(i % 4 === 0
        ? { data: { text: `n${i}` } }
        : { resource: i % 3 === 0 ? 'crm' : 'billing', action: 'refund', outcome: i % 7 === 0 ? 'error' : 'success', data: { tool: 'billing.refund', arguments: { i } } }),
    } as AppendRequest);
  }
  return out;
}

/**
 * A version-1 ledger: real events, sealed checkpoints, the sealer's record and the keys, in a file
 * whose tables, indexes and triggers are exactly what version 1 created (test/store/v1-schema.ts).
 * The rows are made by today's driver and copied in unchanged: the row format did not change.
 */
async function makeV1(): Promise<string> {
  const src = tempDb(dir);
  const l = SqliteLedger.open({ path: src });
  await l.append(batch(120, 0));
  await l.seal();
  await l.append(batch(80, 120));
  await l.seal();
  await l.append(batch(15, 200, false)); // an unsealed tail
  await l.close();
  const file = tempDb(dir);
  const db = new Database(file);
  try {
    db.exec(V1_DDL);
    db.prepare('ATTACH DATABASE ? AS src').run(src);
    for (const t of ['meta', 'events', 'tree_nodes', 'checkpoints', 'public_keys', 'artifacts']) db.exec(`INSERT INTO main.${t} SELECT * FROM src.${t}`);
    db.exec('DETACH DATABASE src');
    db.exec(`UPDATE meta SET value = '1' WHERE key = 'schema_version'`);
    db.exec(V1_TRIGGERS);
  } finally {
    db.close();
  }
  const a = sidecarPaths(src);
  const b = sidecarPaths(file);
  for (const k of ['key', 'pub', 'sealed'] as const) fs.copyFileSync(a[k], b[k]);
  return file;
}

function schemaOf(file: string): { version: string; indexes: string[]; triggers: Map<string, string>; tables: string[] } {
  const db = new Database(file, { readonly: true });
  try {
    const rows = db.prepare(`SELECT type, name, sql FROM sqlite_master`).all() as Array<{ type: string; name: string; sql: string | null }>;
    return {
      version: db.prepare(`SELECT value FROM meta WHERE key = 'schema_version'`).pluck().get() as string,
      indexes: rows.filter((r) => r.type === 'index' && r.sql !== null).map((r) => r.name),
      triggers: new Map(rows.filter((r) => r.type === 'trigger').map((r) => [r.name, r.sql ?? ''])),
      tables: rows.filter((r) => r.type === 'table').map((r) => r.name),
    };
  } finally {
    db.close();
  }
}

const FILTERS: QueryFilter[] = [
  { agent: 'agent-1' },
  { agent: 'agent-2', since: '2026-04-01T01:00:00.000Z', until: '2026-04-01T03:00:00.000Z' },
  { kind: 'note' },
  { resource: 'crm' },
  { action: 'refund', since: '2026-04-01T02:00:00.000Z' },
  { outcome: 'error' },
  { stream: 'session-2' },
  {},
];

async function answers(l: SqliteLedger): Promise<number[][]> {
  const out: number[][] = [];
  for (const f of FILTERS) {
    const pos: number[] = [];
    let cursor: string | undefined;
    do {
      const page = await l.query({ ...f, limit: 9, ...(cursor === undefined ? {} : { cursor }) });
      pos.push(...page.events.map((e) => e.pos));
      cursor = page.next;
    } while (cursor !== undefined);
    out.push(pos);
  }
  return out;
}

describe('schema version 1 → 2', () => {
  it('the fixture is a real version-1 ledger: 8 secondary indexes, the 3-key INSERT trigger, and it verifies', async () => {
    const file = await makeV1();
    const s = schemaOf(file);
    expect(s.version).toBe('1');
    expect(s.indexes).toEqual(expect.arrayContaining(['events_id', 'events_stream_seq', ...V1_MOVED_INDEXES]));
    expect(s.tables).not.toContain('event_index');
    expect(s.triggers.get('events_no_replace')).toContain('id = NEW.id');
    const ro = SqliteLedger.open({ path: file, readonly: true });
    try {
      expect(ro.info.schemaVersion).toBe(1);
      const report = await verifyLedger(ro);
      expect(report.failures).toEqual([]);
      expect(report.ok).toBe(true);
    } finally {
      await ro.close();
    }
  });

  it('a read-only open of a version-1 ledger changes nothing and answers every filter from v1 indexes', async () => {
    const file = await makeV1();
    const bytes = fs.readFileSync(file);
    const ro = SqliteLedger.open({ path: file, readonly: true });
    let before: number[][];
    try {
      expect(ro.info.schemaVersion).toBe(1);
      before = await answers(ro);
      expect(before.every((a) => a.length > 0)).toBe(true);
      const { sql, args } = querySql({ agent: 'agent-1', since: 'a', until: 'b' }, 10, ro.info.schemaVersion);
      const plan = (ro.database.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as Array<{ detail: string }>).map((r) => r.detail).join('\n');
      expect(plan).toContain('events_agent_ts');
      expect(indexedUpto(ro.database)).toBe(0);
    } finally {
      await ro.close();
    }
    expect(fs.readFileSync(file).equals(bytes)).toBe(true);
    expect(schemaOf(file).version).toBe('1');

    // And the same answers after the upgrade.
    const rw = SqliteLedger.open({ path: file });
    try {
      expect(await answers(rw)).toEqual(before);
    } finally {
      await rw.close();
    }
  });

  it('a read-write open upgrades in place: index table filled, moved indexes and the old trigger gone, recorded in meta; the ledger still verifies, appends and seals', async () => {
    const file = await makeV1();
    const l = SqliteLedger.open({ path: file });
    try {
      expect(l.info.schemaVersion).toBe(2);
      expect(l.info.size).toBe(215);
      expect(indexedUpto(l.database)).toBe(215);
      const s = schemaOf(file);
      expect(s.version).toBe('2');
      expect(s.tables).toContain('event_index');
      for (const i of V1_MOVED_INDEXES) expect(s.indexes).not.toContain(i);
      expect(s.indexes).toEqual(
        expect.arrayContaining([
          'events_id',
          'events_stream_seq',
          'event_index_agent_ts',
          'event_index_kind_ts',
          'event_index_resource_ts',
          'event_index_action_ts',
          'event_index_outcome_ts',
          'event_index_ts',
        ]),
      );
      expect(s.triggers.get('events_no_replace')).toContain('max(pos)');
      expect(s.triggers.get('events_no_replace')).not.toContain('id = NEW.id');
      for (const t of ['events_no_update', 'events_no_delete', 'event_index_no_replace', 'event_index_no_update', 'event_index_no_delete']) expect(s.triggers.has(t), t).toBe(true);
      expect(l.database.prepare(`SELECT value FROM meta WHERE key = 'migrated_v1_to_v2_at'`).pluck().get()).toMatch(/^\d{4}-\d\d-\d\dT/);

      const report = await verifyLedger(l);
      expect(report.failures).toEqual([]);
      expect(report.ok).toBe(true);
      expect(report.events).toBe(215);

      await l.append(batch(30, 215));
      expect(await l.seal()).not.toBeNull();
      const after = await verifyLedger(l);
      expect(after.ok).toBe(true);
      expect(after.events).toBe(245);
      expect(after.unsealed).toBe(0);
      expect((await l.query({ agent: 'agent-0', limit: 1000 })).events.map((e) => e.pos)).toEqual(
        l.database.prepare(`SELECT pos FROM events WHERE agent = 'agent-0' ORDER BY ts, pos`).pluck().all() as number[],
      );
    } finally {
      await l.close();
    }
    // Opening again finds version 2 and does nothing more.
    const again = SqliteLedger.open({ path: file });
    try {
      expect(again.info.schemaVersion).toBe(2);
      expect(indexedUpto(again.database)).toBeGreaterThanOrEqual(215);
    } finally {
      await again.close();
    }
  });

  it('two connections opening one version-1 ledger: one upgrades, the other finds version 2', async () => {
    const file = await makeV1();
    const a = SqliteLedger.open({ path: file });
    const b = SqliteLedger.open({ path: file });
    try {
      expect(a.info.schemaVersion).toBe(2);
      expect(b.info.schemaVersion).toBe(2);
      expect(a.database.prepare('SELECT count(*) FROM event_index').pluck().get()).toBe(215);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a ledger newer than version 2 is refused, read-write and read-only, and left as it is', async () => {
    const file = await makeV1();
    const db = new Database(file);
    db.exec(`UPDATE meta SET value = '3' WHERE key = 'schema_version'`);
    db.close();
    for (const readonly of [false, true]) {
      let err: unknown;
      try {
        SqliteLedger.open({ path: file, readonly });
      } catch (e) {
        err = e;
      }
      expect((err as { code?: string }).code).toBe('store_newer_schema');
      expect((err as Error).message).toContain('version 3');
    }
    expect(schemaOf(file).tables).not.toContain('event_index');
  });
});

describe('[R-APPEND-ONLY] the one-probe INSERT guard of version 2', () => {
  async function ledgerWith(n: number): Promise<string> {
    const file = tempDb(dir);
    const l = SqliteLedger.open({ path: file });
    await l.append(batch(n, 0));
    await l.seal();
    await l.close();
    return file;
  }

  it('INSERT OR REPLACE of an existing event at its own position is refused by the trigger', async () => {
    const file = await ledgerWith(20);
    const db = new Database(file);
    try {
      const before = db.prepare('SELECT * FROM events ORDER BY pos').all();
      for (const sql of [
        `INSERT OR REPLACE INTO events SELECT * FROM events WHERE pos = 3`,
        `REPLACE INTO events SELECT * FROM events WHERE pos = 19`,
        `INSERT INTO events SELECT * FROM events WHERE pos = 0 ON CONFLICT (pos) DO UPDATE SET data = '{"text":"forged"}'`,
        // Skipping ahead would leave a hole: also refused.
        `INSERT INTO events (pos, id, stream, seq, ts, kind, agent, header, hash) VALUES (25, 'x', 'y', 0, 't', 'note', 'a', '{}', zeroblob(32))`,
      ]) {
        expect(() => db.exec(sql), sql).toThrow(/append-only/);
      }
      expect(db.prepare('SELECT * FROM events ORDER BY pos').all()).toEqual(before);
    } finally {
      db.close();
    }
  });

  it('INSERT OR REPLACE of an existing event under the next position is detected by verifyLedger as a gap where it stood', async () => {
    for (const conflict of ['id', 'stream-seq'] as const) {
      const file = await ledgerWith(20);
      const db = new Database(file);
      try {
        const moved = 7;
        // Same id (or same stream and seq) at max(pos) + 1: the trigger lets it through, and REPLACE
        // deletes the original row without firing the DELETE trigger.
        const id = conflict === 'id' ? 'id' : `'forged-' || id`;
        db.exec(
          `INSERT OR REPLACE INTO events SELECT (SELECT max(pos) + 1 FROM events), ${id}, stream, seq, ts, kind, agent, resource, action, outcome, header, data, salt, hash FROM events WHERE pos = ${moved}`,
        );
        expect(db.prepare('SELECT count(*) FROM events WHERE pos = ?').pluck().get(moved)).toBe(0);
      } finally {
        db.close();
      }
      const l = SqliteLedger.open({ path: file, readonly: true });
      try {
        const report = await verifyLedger(l);
        expect(report.ok, conflict).toBe(false);
        expect(report.first?.code, conflict).toBe('position_gap');
        expect(report.first?.leaf, conflict).toBe(8);
        expect(report.first?.reason, conflict).toContain('7');
      } finally {
        await l.close();
      }
    }
  });
});
