import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../src/core/index.js';
import { SqliteLedger, type AppendRequest, type QueryFilter } from '../../src/store/index.js';
import { indexMismatches, indexTail, indexedUpto } from '../../src/store/sqlite/indexer.js';
import { querySql } from '../../src/store/sqlite/query.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * Schema v2 serves query filters from `event_index`, filled after commit; the events it has not
 * reached yet (the tail) are scanned directly. These tests prove a query answers the same with the
 * tail unindexed as with it indexed, pages across the boundary, and that the indexed part is read
 * through the index each filter needs (so dropping one fails here).
 */

const dir = tempDir('witness-query-tail-');
const AGENTS = ['support-bot', 'billing-bot', 'ops-bot', 'audit-bot'];
const RESOURCES = ['billing', 'crm', 'kb', undefined];
const ACTIONS = ['refund', 'lookup', 'search', undefined];
const OUTCOMES = ['success', 'error', 'denied', 'pending', undefined] as const;
const T0 = Date.UTC(2026, 5, 1);
const HOUR = 3600_000;

/** Deterministic pseudo-random numbers, so a failure replays. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Events across 12 sessions with every filter column varied; timestamps are NOT in position order
 * (writers' clocks differ, and many share one millisecond), so the tail holds events dated before
 * indexed ones and ties are broken by position.
 */
function inputs(count: number, seed: number): AppendRequest[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const out: AppendRequest[] = [];
  for (let i = 0; i < count; i++) {
    const s = Math.floor(r() * 12);
    const ts = new Date(T0 + Math.floor(r() * 48) * HOUR + (r() < 0.3 ? 0 : Math.floor(r() * 1000))).toISOString();
    const resource = pick(RESOURCES);
    const action = pick(ACTIONS);
    const outcome = pick(OUTCOMES);
    const base = { stream: `session-${s}`, ts, agent: { id: AGENTS[s % AGENTS.length]! } };
    out.push(
      r() < 0.6
        ? { ...base, kind: 'tool.call', ...(resource ? { resource } : {}), ...(action ? { action } : {}), ...(outcome ? { outcome } : {}), data: { tool: 'x.y', arguments: { i } } }
        : { ...base, kind: 'note', ...(resource ? { resource } : {}), ...(outcome ? { outcome } : {}), data: { text: `note ${i}` } },
    );
  }
  return out;
}

const FILTERS: Array<{ name: string; filter: QueryFilter; index: string }> = [
  { name: 'agent', filter: { agent: 'billing-bot' }, index: 'event_index_agent_ts' },
  { name: 'agent + window', filter: { agent: 'support-bot', since: new Date(T0 + 6 * HOUR).toISOString(), until: new Date(T0 + 30 * HOUR).toISOString() }, index: 'event_index_agent_ts' },
  { name: 'kind + window', filter: { kind: 'note', since: new Date(T0 + 10 * HOUR).toISOString(), until: new Date(T0 + 40 * HOUR).toISOString() }, index: 'event_index_kind_ts' },
  { name: 'resource + window', filter: { resource: 'crm', since: new Date(T0 + 2 * HOUR).toISOString(), until: new Date(T0 + 20 * HOUR).toISOString() }, index: 'event_index_resource_ts' },
  { name: 'action + window', filter: { action: 'refund', since: new Date(T0).toISOString(), until: new Date(T0 + 47 * HOUR).toISOString() }, index: 'event_index_action_ts' },
  { name: 'outcome + window', filter: { outcome: 'denied', since: new Date(T0 + 12 * HOUR).toISOString(), until: new Date(T0 + 36 * HOUR).toISOString() }, index: 'event_index_outcome_ts' },
  { name: 'window alone', filter: { since: new Date(T0 + 20 * HOUR).toISOString(), until: new Date(T0 + 22 * HOUR).toISOString() }, index: 'event_index_ts' },
  { name: 'two filters', filter: { agent: 'ops-bot', outcome: 'success' }, index: 'event_index_' },
  { name: 'no filter', filter: {}, index: 'event_index_ts' },
];

/** What a query must return: the filter applied to every stored event, in (ts, pos) order. */
function expected(all: Array<StoredEvent & { pos: number }>, f: QueryFilter): number[] {
  return all
    .filter(
      (e) =>
        (f.agent === undefined || e.agent.id === f.agent) &&
        (f.stream === undefined || e.stream === f.stream) &&
        (f.kind === undefined || e.kind === f.kind) &&
        (f.resource === undefined || e.resource === f.resource) &&
        (f.action === undefined || e.action === f.action) &&
        (f.outcome === undefined || e.outcome === f.outcome) &&
        (f.since === undefined || e.ts >= f.since) &&
        (f.until === undefined || e.ts < f.until),
    )
    .sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : a.pos - b.pos))
    .map((e) => e.pos);
}

/** Every page of a query, following `next`, as positions; each page's ts/pos order is checked too. */
async function allPages(ledger: SqliteLedger, f: QueryFilter, limit: number): Promise<number[]> {
  const out: number[] = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 10_000; pages++) {
    const page = await ledger.query({ ...f, limit, ...(cursor === undefined ? {} : { cursor }) });
    out.push(...page.events.map((e) => e.pos));
    if (page.next === undefined) return out;
    cursor = page.next;
  }
  throw new Error('paging did not end');
}

let file: string;
let ledger: SqliteLedger;
let all: Array<StoredEvent & { pos: number }>;
const INDEXED = 700;
const TOTAL = 1000;

beforeAll(async () => {
  file = tempDb(dir);
  ledger = SqliteLedger.open({ path: file });
  const batch = inputs(TOTAL, 7);
  await ledger.append(batch.slice(0, INDEXED));
  expect(indexTail(ledger.database)).toEqual({ indexed: INDEXED, upto: INDEXED });
  await ledger.append(batch.slice(INDEXED));
  expect(indexedUpto(ledger.database)).toBe(INDEXED);
  all = [];
  for (const s of new Set(batch.map((b) => b.stream))) all.push(...(await ledger.readStream(s)));
  expect(all).toHaveLength(TOTAL);
});

afterAll(async () => {
  await ledger.close();
});

describe('[R-WHAT-WHEN-RESULT] queries over the query index and the unindexed tail', () => {
  it('the test ledger has matches for every filter on both sides of the boundary', () => {
    for (const { name, filter } of FILTERS) {
      const pos = expected(all, filter);
      expect(
        pos.some((p) => p < INDEXED),
        name,
      ).toBe(true);
      expect(
        pos.some((p) => p >= INDEXED),
        name,
      ).toBe(true);
    }
  });

  it('every filter returns exactly the matching events, in (ts, pos) order, with 300 events not yet indexed', async () => {
    for (const { name, filter } of FILTERS) {
      const want = expected(all, filter);
      const page = await ledger.query({ ...filter, limit: 10_000 });
      expect(
        page.events.map((e) => e.pos),
        name,
      ).toEqual(want);
      expect(page.next, name).toBeUndefined();
    }
    expect(indexedUpto(ledger.database)).toBe(INDEXED);
  });

  it('pages of 7 walk across the indexed/unindexed boundary without losing or repeating an event', async () => {
    for (const { name, filter } of FILTERS) {
      expect(await allPages(ledger, filter, 7), name).toEqual(expected(all, filter));
    }
  });

  it('a cursor taken before the tail is indexed continues correctly after it is indexed', async () => {
    const filter = { agent: 'support-bot' };
    const want = expected(all, filter);
    const first = await ledger.query({ ...filter, limit: 11 });
    const copy = tempDb(dir);
    await ledger.database.backup(copy);
    const other = SqliteLedger.open({ path: copy });
    try {
      expect(indexTail(other.database)).toEqual({ indexed: TOTAL - INDEXED, upto: TOTAL });
      const rest = await allPages(other, { ...filter, cursor: first.next! }, 13);
      expect([...first.events.map((e) => e.pos), ...rest]).toEqual(want);
    } finally {
      await other.close();
    }
  });

  it('a read-only connection answers the same while the tail is unindexed', async () => {
    const ro = SqliteLedger.open({ path: file, readonly: true });
    try {
      expect(indexTail(ro.database)).toEqual({ indexed: 0, upto: INDEXED });
      for (const { name, filter } of FILTERS) expect(await allPages(ro, filter, 50), name).toEqual(expected(all, filter));
    } finally {
      await ro.close();
    }
  });

  it('a stream filter reads events by (stream, seq) and needs no index', async () => {
    const filter = { stream: 'session-3', outcome: 'success' as const };
    expect(await allPages(ledger, filter, 5)).toEqual(expected(all, filter));
    const { sql, args } = querySql(filter, 6, 2);
    const plan = explain(ledger.database, sql, args);
    expect(plan).toContain('USING INDEX events_stream_seq');
    expect(plan).not.toContain('event_index');
  });

  it('the indexed part of each filter is read through its own index, and the tail by position', () => {
    for (const { name, filter, index } of FILTERS) {
      const { sql, args } = querySql(filter, 101, 2);
      const plan = explain(ledger.database, sql, args);
      expect(plan, name).toMatch(new RegExp(`(SEARCH|SCAN) x USING (COVERING )?INDEX ${index}`));
      expect(plan, name).toContain('SEARCH e USING INTEGER PRIMARY KEY (rowid=?)');
      expect(plan, name).toContain('SEARCH events USING INTEGER PRIMARY KEY (rowid>?)');
      // The indexed subquery is ordered by its index: no sort of the whole match before LIMIT.
      const indexed = plan.split('RIGHT')[0]!;
      expect(
        indexed.split('\n').filter((l) => l.includes('TEMP B-TREE')),
        name,
      ).toHaveLength(1);
      if (filter.since !== undefined && filter.until !== undefined) expect(plan, name).toMatch(/ts>\? AND ts<\?/);
    }
  });

  it('closing a writer indexes what it left unindexed', async () => {
    const copy = tempDb(dir);
    await ledger.database.backup(copy);
    const other = SqliteLedger.open({ path: copy });
    expect(indexedUpto(other.database)).toBe(INDEXED);
    await other.close();
    const ro = new Database(copy, { readonly: true });
    try {
      expect(indexedUpto(ro)).toBe(TOTAL);
    } finally {
      ro.close();
    }
  });

  it('indexing the rest changes no answer, and indexing again adds nothing', async () => {
    const before = new Map<string, number[]>();
    for (const { name, filter } of FILTERS) before.set(name, await allPages(ledger, filter, 7));
    expect(indexTail(ledger.database, 100)).toEqual({ indexed: 100, upto: INDEXED + 100 });
    for (const { name, filter } of FILTERS) expect(await allPages(ledger, filter, 9), name).toEqual(before.get(name));
    expect(indexTail(ledger.database)).toEqual({ indexed: TOTAL - INDEXED - 100, upto: TOTAL });
    expect(indexTail(ledger.database)).toEqual({ indexed: 0, upto: TOTAL });
    for (const { name, filter } of FILTERS) expect(await allPages(ledger, filter, 7), name).toEqual(before.get(name));
  });

  it('two connections indexing the same ledger at once index each event exactly once', async () => {
    const f = tempDb(dir);
    const a = SqliteLedger.open({ path: f });
    const b = SqliteLedger.open({ path: f });
    try {
      await a.append(inputs(5000, 11));
      let n = 0;
      let upA = 0;
      let upB = 0;
      // Interleaved in small steps, as two processes' sealers would.
      while (upA < 5000 || upB < 5000) {
        const ra = indexTail(a.database, 300);
        const rb = indexTail(b.database, 200);
        n += ra.indexed + rb.indexed;
        upA = ra.upto;
        upB = rb.upto;
      }
      expect(n).toBe(5000);
      const db = a.database;
      expect(db.prepare('SELECT count(*) FROM event_index').pluck().get()).toBe(5000);
      expect(
        db
          .prepare(
            'SELECT count(*) FROM event_index x JOIN events e USING (pos) WHERE x.ts = e.ts AND x.agent = e.agent AND x.kind = e.kind AND x.resource IS e.resource AND x.action IS e.action AND x.outcome IS e.outcome',
          )
          .pluck()
          .get(),
      ).toBe(5000);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('indexMismatches names a forged index row (its triggers dropped), which would make queries lie, and nothing on an honest index', async () => {
    const copy = tempDb(dir);
    await ledger.database.backup(copy);
    const db = new Database(copy);
    try {
      indexTail(db);
      expect(indexMismatches(db)).toEqual([]);
      db.transaction(() => {
        for (const t of db.prepare(`SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'event_index'`).pluck().all() as string[]) db.exec(`DROP TRIGGER "${t}"`);
        db.exec(`UPDATE event_index SET agent = 'someone-else' WHERE pos = 42`);
        db.exec(`UPDATE event_index SET outcome = NULL WHERE pos = 77 AND outcome IS NOT NULL`);
        db.exec(`UPDATE event_index SET outcome = 'success' WHERE pos = 77 AND outcome IS NULL`);
      })();
      expect(indexMismatches(db)).toEqual([42, 77]);
    } finally {
      db.close();
    }
  });

  it('[R-APPEND-ONLY] the query index refuses UPDATE, DELETE and an insert at or before its last row', () => {
    const db = new Database(file);
    try {
      const code = (sql: string) => {
        try {
          db.exec(sql);
          return 'ok';
        } catch (e) {
          return (e as { code?: string }).code;
        }
      };
      expect(code(`UPDATE event_index SET agent = 'forged' WHERE pos = 3`)).toBe('SQLITE_CONSTRAINT_TRIGGER');
      expect(code('DELETE FROM event_index WHERE pos = 3')).toBe('SQLITE_CONSTRAINT_TRIGGER');
      expect(code(`INSERT OR REPLACE INTO event_index (pos, ts, agent, kind) VALUES (3, 'x', 'forged', 'note')`)).toBe('SQLITE_CONSTRAINT_TRIGGER');
      expect(db.prepare('SELECT agent FROM event_index WHERE pos = 3').pluck().get()).toBe(all.find((e) => e.pos === 3)!.agent.id);
    } finally {
      db.close();
    }
  });
});

function explain(db: Database.Database, sql: string, args: unknown[]): string {
  return (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as Array<{ detail: string }>).map((r) => r.detail).join('\n');
}
