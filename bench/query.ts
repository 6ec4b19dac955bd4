/**
 * Benchmark 4 — query by agent, resource, action, outcome or kind and a time window on the large
 * ledger: `ledger.query({ <filter>, since, until, limit: 100 })` over random values and windows,
 * once with the query index current and once with a realistic unindexed tail (the last events,
 * which a query scans directly until the sealer indexes them).
 */
import type Database from 'better-sqlite3';
import { SqliteLedger, type QueryFilter, type RawEventRow } from '../src/store/index.js';
import { querySql } from '../src/store/sqlite/query.js';
import type { Config } from './config.js';
import { MONTH_MS, MONTH_START } from './events.js';
import type { LargeLedgers } from './ledgers.js';
import { fmtInt, fmtMs, gc, log, max, mdTable, median, percentile, rng, type Section, type Verdict } from './util.js';

const HOUR = 3600 * 1000;
/** Events left unindexed in the "tail" runs: several seals' worth (the sealer indexes after each seal of ≤ 1,000 events). */
const TAIL = 5_000;

type Field = 'agent' | 'resource' | 'action' | 'outcome' | 'kind';

/** The values each filter draws from: those the shared ledger's timeline writes (bench/events.ts). */
function domain(field: Field, agents: number): string[] {
  switch (field) {
    case 'agent':
      return Array.from({ length: agents }, (_, i) => `agent-${i}`);
    case 'resource':
      return ['billing', 'crm', 'notify', 'kb'];
    case 'action':
      return ['refund', 'invoice', 'lookup', 'update', 'email', 'search'];
    case 'outcome':
      return ['pending', 'success'];
    case 'kind':
      return ['session.start', 'llm.call', 'tool.call', 'tool.result', 'session.end'];
  }
}

const FIELDS: Field[] = ['agent', 'resource', 'action', 'outcome', 'kind'];

/** Random value of the field, window of 1 hour to 7 days (log-uniform), placed anywhere in the month. */
export function queries(field: Field, count: number, agents: number, seed: number): QueryFilter[] {
  const r = rng(seed);
  const values = domain(field, agents);
  const out: QueryFilter[] = [];
  for (let i = 0; i < count; i++) {
    const len = Math.round(HOUR * Math.exp(r() * Math.log(24 * 7)));
    const start = MONTH_START + Math.floor(r() * (MONTH_MS - len));
    out.push({ [field]: values[Math.floor(r() * values.length)]!, since: new Date(start).toISOString(), until: new Date(start + len).toISOString() });
  }
  return out;
}

interface Stats {
  p50: number[];
  p99: number[];
  worst: number[];
  rows: number;
  full: number;
  total: number;
}

async function measure(ledger: SqliteLedger, field: Field, cfg: Config, seedBase: number): Promise<Stats> {
  const st: Stats = { p50: [], p99: [], worst: [], rows: 0, full: 0, total: 0 };
  for (let rep = 0; rep < cfg.reps; rep++) {
    const qs = queries(field, cfg.query.queries, cfg.query.agents, seedBase + rep);
    gc();
    const lat: number[] = [];
    for (const q of qs) {
      const t = performance.now();
      const page = await ledger.query({ ...q, limit: 100 });
      lat.push(performance.now() - t);
      st.rows += page.events.length;
      if (page.events.length === 100) st.full++;
      st.total++;
    }
    st.p50.push(percentile(lat, 50));
    st.p99.push(percentile(lat, 99));
    st.worst.push(max(lat));
  }
  return st;
}

/**
 * Runs `fn` with the last `tail` events taken out of the query index, inside a transaction on the
 * ledger's own connection that is rolled back afterwards: the ledger as a reader sees it between
 * two seals, without copying a gigabyte. (The index is append-only, so its triggers are dropped
 * inside the transaction; the rollback restores them.)
 */
async function withUnindexedTail<T>(db: Database.Database, size: number, tail: number, fn: () => Promise<T>): Promise<T> {
  db.exec('BEGIN IMMEDIATE');
  try {
    for (const t of db.prepare(`SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'event_index'`).pluck().all() as string[]) db.exec(`DROP TRIGGER "${t}"`);
    db.prepare('DELETE FROM event_index WHERE pos >= ?').run(size - tail);
    return await fn();
  } finally {
    db.exec('ROLLBACK');
  }
}

export async function benchQuery(cfg: Config, ledgers: LargeLedgers): Promise<Section> {
  const n = cfg.query.events;
  const reps = cfg.reps;
  const count = cfg.query.queries;
  const path = await ledgers.path(n);
  // A fresh connection: SQLite's page cache starts cold (the OS cache is whatever the build left).
  const ledger = SqliteLedger.open({ path, create: false });
  const db = ledger.database;
  const upto = db.prepare('SELECT coalesce(max(pos) + 1, 0) FROM event_index').pluck().get() as number;

  const indexed = new Map<Field, Stats>();
  const tailed = new Map<Field, Stats>();
  for (const f of FIELDS) {
    indexed.set(f, await measure(ledger, f, cfg, 1000 + FIELDS.indexOf(f) * 100));
    log(`query: ${f} + window, index current: p50 ${fmtMs(median(indexed.get(f)!.p50))} ms p99 ${fmtMs(median(indexed.get(f)!.p99))} ms`);
  }
  await withUnindexedTail(db, n, TAIL, async () => {
    for (const f of FIELDS) {
      tailed.set(f, await measure(ledger, f, cfg, 1000 + FIELDS.indexOf(f) * 100));
      log(`query: ${f} + window, last ${fmtInt(TAIL)} unindexed: p50 ${fmtMs(median(tailed.get(f)!.p50))} ms p99 ${fmtMs(median(tailed.get(f)!.p99))} ms`);
    }
  });

  // The agent queries straight through SQLite (the same statement, rows not parsed into events).
  const { sql } = querySql({ agent: 'a', since: 'a', until: 'b' }, 101, ledger.info.schemaVersion);
  const stmt = db.prepare(sql);
  const rawP50: number[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const lat: number[] = [];
    for (const q of queries('agent', count, cfg.query.agents, 1000 + rep)) {
      const t = performance.now();
      stmt.all(q.agent, q.since, q.until, 101, q.agent, q.since, q.until, 101, 101) as RawEventRow[];
      lat.push(performance.now() - t);
    }
    rawP50.push(percentile(lat, 50));
  }
  const plans = new Map<Field, string>();
  for (const f of FIELDS) {
    const { sql: s, args } = querySql({ [f]: domain(f, 1)[0]!, since: 'a', until: 'b' }, 101, ledger.info.schemaVersion);
    plans.set(
      f,
      (db.prepare(`EXPLAIN QUERY PLAN ${s}`).all(...args) as Array<{ detail: string }>)
        .map((r) => r.detail)
        .filter((d) => /^(SEARCH|SCAN) (x|events)/.test(d))
        .join('; '),
    );
  }
  await ledger.close();

  const rowsOf = (label: string, st: Stats) => [
    label,
    fmtMs(median(st.p50)),
    fmtMs(median(st.p99)),
    fmtMs(median(st.worst)),
    `${fmtMs(Math.min(...st.p50))} – ${fmtMs(Math.max(...st.p50))}`,
    (st.rows / st.total).toFixed(1),
    `${fmtInt((st.full / st.total) * 100)} %`,
  ];
  const table = mdTable(
    ['filter (+ since, until, limit 100)', 'p50 ms', 'p99 ms', 'max ms', 'p50 range over reps ms', 'events returned (mean)', 'pages hitting the limit'],
    FIELDS.flatMap((f) => [rowsOf(`**${f}**, query index current`, indexed.get(f)!), rowsOf(`${f}, last ${fmtInt(TAIL)} events not yet indexed`, tailed.get(f)!)]),
  );
  const context = mdTable(['context', 'p50 ms'], [['the agent queries through better-sqlite3 alone (same statement, rows not turned into events), index current', fmtMs(median(rawP50))]]);
  const verdicts: Verdict[] = FIELDS.map((f) => {
    const a = median(indexed.get(f)!.p50);
    const b = median(tailed.get(f)!.p50);
    const worst = Math.max(a, b);
    return {
      target: `query p50 ≤ 10 ms on ${fmtInt(n)} events: ${f} + window`,
      measured: `${fmtMs(a)} ms index current, ${fmtMs(b)} ms with ${fmtInt(TAIL)} unindexed (p99 ${fmtMs(median(indexed.get(f)!.p99))} / ${fmtMs(median(tailed.get(f)!.p99))} ms)`,
      met: worst <= 10,
      ...(worst <= 10 ? {} : { note: `SQLite's plan: ${plans.get(f)}; with the tail unindexed every query also scans the last ${fmtInt(TAIL)} events by position.` }),
    };
  });
  return {
    id: 'query',
    title: '4. Query by agent, resource, action, outcome or kind and a time window',
    method: [
      `For each of the five filters, ${reps} repetitions × ${count} random queries on the shared ledger of ${fmtInt(n)} events: a random value (agent of ${cfg.query.agents}; resource, action, outcome or kind of those the timeline writes), a window of 1 hour to 7 days (log-uniform length, uniform position in the month), \`limit: 100\`; each repetition draws a new set. A fresh connection is opened first. The query index covered ${fmtInt(upto)} of ${fmtInt(n)} events when opened.`,
      `Each filter is measured twice: with the query index current (as the sealer leaves it after a seal), and with the last ${fmtInt(TAIL)} events taken out of the index (inside a transaction on the same connection, rolled back afterwards), so every query also scans them by position — the state between two seals, several times over.`,
      `SQLite's plans (indexed part; tail): ${FIELDS.map((f) => `${f}: \`${plans.get(f)}\``).join('; ')}.`,
    ],
    body: [table, context],
    verdicts,
  };
}
