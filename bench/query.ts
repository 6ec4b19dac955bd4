/**
 * Benchmark 4 — query by agent and time window on the large ledger:
 * `ledger.query({ agent, since, until, limit: 100 })` over random agents and windows.
 */
import { SqliteLedger, type RawEventRow } from '../src/store/index.js';
import type { Config } from './config.js';
import { MONTH_MS, MONTH_START } from './events.js';
import type { LargeLedgers } from './ledgers.js';
import { fmtInt, fmtMs, gc, log, max, mdTable, median, percentile, rng, type Section, type Verdict } from './util.js';

const HOUR = 3600 * 1000;

interface Q {
  agent: string;
  since: string;
  until: string;
}

/** Random agent, window of 1 hour to 7 days (log-uniform), placed anywhere in the month. */
function queries(count: number, agents: number, seed: number): Q[] {
  const r = rng(seed);
  const out: Q[] = [];
  for (let i = 0; i < count; i++) {
    const len = Math.round(HOUR * Math.exp(r() * Math.log(24 * 7)));
    const start = MONTH_START + Math.floor(r() * (MONTH_MS - len));
    out.push({ agent: `agent-${Math.floor(r() * agents)}`, since: new Date(start).toISOString(), until: new Date(start + len).toISOString() });
  }
  return out;
}

export async function benchQuery(cfg: Config, ledgers: LargeLedgers): Promise<Section> {
  const n = cfg.query.events;
  const reps = cfg.reps;
  const count = cfg.query.queries;
  const path = await ledgers.path(n);
  // A fresh connection: SQLite's page cache starts cold (the OS cache is whatever the build left).
  const ledger = SqliteLedger.open({ path, create: false });

  const p50: number[] = [];
  const p99: number[] = [];
  const worst: number[] = [];
  const all: number[] = [];
  let rowsReturned = 0;
  let full = 0;
  for (let rep = 0; rep < reps; rep++) {
    const qs = queries(count, cfg.query.agents, 1000 + rep);
    gc();
    const lat: number[] = [];
    for (const q of qs) {
      const t = performance.now();
      const page = await ledger.query({ agent: q.agent, since: q.since, until: q.until, limit: 100 });
      lat.push(performance.now() - t);
      rowsReturned += page.events.length;
      if (page.events.length === 100) full++;
    }
    p50.push(percentile(lat, 50));
    p99.push(percentile(lat, 99));
    worst.push(max(lat));
    all.push(...lat);
    log(`query: rep ${rep + 1}/${reps} p50 ${fmtMs(p50.at(-1)!)} ms p99 ${fmtMs(p99.at(-1)!)} ms`);
  }

  // The same queries straight through SQLite (same SQL and index, rows not parsed into events).
  const stmt = ledger.database.prepare('SELECT * FROM events WHERE agent = ? AND ts >= ? AND ts < ? ORDER BY ts, pos LIMIT ?');
  const rawP50: number[] = [];
  const rawP99: number[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const qs = queries(count, cfg.query.agents, 1000 + rep);
    const lat: number[] = [];
    for (const q of qs) {
      const t = performance.now();
      stmt.all(q.agent, q.since, q.until, 101) as RawEventRow[];
      lat.push(performance.now() - t);
    }
    rawP50.push(percentile(lat, 50));
    rawP99.push(percentile(lat, 99));
  }
  const plan = (ledger.database.prepare('EXPLAIN QUERY PLAN SELECT * FROM events WHERE agent = ? AND ts >= ? AND ts < ? ORDER BY ts, pos LIMIT ?').all('agent-1', 'a', 'b', 101) as Array<{ detail: string }>)
    .map((r) => r.detail)
    .join('; ');
  await ledger.close();

  const total = reps * count;
  const table = mdTable(
    ['what', 'p50 ms', 'p99 ms', 'max ms', 'p50 range over reps ms'],
    [
      ['**`ledger.query({ agent, since, until, limit: 100 })`**', fmtMs(median(p50)), fmtMs(median(p99)), fmtMs(median(worst)), `${fmtMs(Math.min(...p50))} – ${fmtMs(Math.max(...p50))}`],
      ['all queries of all repetitions pooled', fmtMs(percentile(all, 50)), fmtMs(percentile(all, 99)), fmtMs(max(all)), ''],
      ['_context:_ the same SQL through better-sqlite3, rows not turned into events', fmtMs(median(rawP50)), fmtMs(median(rawP99)), '', ''],
    ],
  );
  const m = median(p50);
  const verdicts: Verdict[] = [
    {
      target: `query p50 ≤ 10 ms on ${fmtInt(n)} events`,
      measured: `${fmtMs(m)} ms (p99 ${fmtMs(median(p99))} ms)`,
      met: m <= 10,
      ...(m <= 10
        ? {}
        : {
            note: `The SQL alone takes ${fmtMs(median(rawP50))} ms at p50 with plan "${plan}"; the rest is parsing rows into events.`,
          }),
    },
  ];
  return {
    id: 'query',
    title: '4. Query by agent and time window',
    method: [
      `${reps} repetitions × ${count} random queries on the shared ledger of ${fmtInt(n)} events: a random agent of ${cfg.query.agents}, a window of 1 hour to 7 days (log-uniform length, uniform position in the month), \`limit: 100\`; each repetition draws a new set. A fresh connection is opened first. On average a query returned ${(rowsReturned / total).toFixed(1)} events; ${fmtInt((full / total) * 100)} % of them hit the 100 limit.`,
      `SQLite's plan for it: \`${plan}\`.`,
    ],
    body: [table],
    verdicts,
  };
}
