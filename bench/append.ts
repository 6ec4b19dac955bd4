/**
 * Benchmark 1 — append throughput: SqliteLedger.prepare()+appendPrepared() in batches vs a raw
 * better-sqlite3 insert of the very same rows into a table with only its primary key (issue 10's
 * baseline), and, for context, into the table with schema v2's indexes, with v2's triggers, and
 * with schema v1's eight secondary indexes (the baseline of earlier runs).
 */
import Database from 'better-sqlite3';
import { chainEvent, type PreparedEvent } from '../src/core/index.js';
import { encodeJcs } from '../src/core/canonical-json.js';
import { fastHeader } from '../src/core/fast-header.js';
import { SqliteLedger, type AppendRequest } from '../src/store/index.js';
import { DDL, TRIGGERS } from '../src/store/sqlite/schema.js';
import type { Config } from './config.js';
import { toolCallInputs } from './events.js';
import { fmtInt, fmtMs, fmtRatio, fmtUs, freshDbPath, gc, log, max, mdTable, median, min, removeDb, type Section, type Verdict } from './util.js';

const DEFAULT_PAGE = 4096;
const COLUMNS = 'pos, id, stream, seq, ts, kind, agent, resource, action, outcome, header, data, salt, hash';
const INSERT_SQL = `INSERT INTO events (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;

/** The `events` DDL without its secondary indexes (the rowid primary key on pos stays). */
const DDL_NO_INDEXES = DDL.split('\n')
  .filter((l) => !/^\s*CREATE\s+(UNIQUE\s+)?INDEX/i.test(l))
  .join('\n');

/**
 * The six indexes schema v1 kept on `events` besides id and (stream, seq), as v1 created them
 * (v2 serves these filters from `event_index`, filled after commit): DDL + these = v1's 8 indexes.
 */
const V1_EXTRA_INDEXES = `
CREATE INDEX IF NOT EXISTS events_agent_ts ON events (agent, ts);
CREATE INDEX IF NOT EXISTS events_kind_ts ON events (kind, ts);
CREATE INDEX IF NOT EXISTS events_resource_ts ON events (resource, ts) WHERE resource IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_action_ts ON events (action, ts) WHERE action IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_outcome_ts ON events (outcome, ts) WHERE outcome IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
`;

type Row = [number, string, string, number, string, string, string, string | null, string | null, string | null, string, string | null, Buffer | null, Buffer];

interface WitnessRun {
  ms: number;
  prepareMs: number;
  appendMs: number;
  path: string;
}

function runWitness(inputs: readonly AppendRequest[], batch: number, keep = false): WitnessRun {
  const path = freshDbPath('append-witness');
  const ledger = SqliteLedger.open({ path });
  gc();
  let prepareMs = 0;
  let appendMs = 0;
  const t0 = performance.now();
  for (let i = 0; i < inputs.length; i += batch) {
    const a = performance.now();
    const prepared = ledger.prepare(inputs.slice(i, i + batch));
    const b = performance.now();
    ledger.appendPreparedSync(prepared);
    appendMs += performance.now() - b;
    prepareMs += b - a;
  }
  const ms = performance.now() - t0;
  void ledger.close();
  if (!keep) removeDb(path);
  return { ms, prepareMs, appendMs, path };
}

function readRows(path: string): { rows: Row[]; pageSize: number } {
  const db = new Database(path, { readonly: true });
  const rows = db.prepare(`SELECT ${COLUMNS} FROM events ORDER BY pos`).raw().all() as Row[];
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  db.close();
  return { rows, pageSize };
}

type Baseline = 'indexed' | 'plain' | 'triggers' | 'v1';

function runBaseline(rows: readonly Row[], batch: number, kind: Baseline, pageSize: number): number {
  const path = freshDbPath(`append-raw-${kind}`);
  const db = new Database(path);
  db.pragma(`page_size = ${pageSize}`);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.exec(kind === 'plain' ? DDL_NO_INDEXES : DDL);
  if (kind === 'v1') db.exec(V1_EXTRA_INDEXES);
  if (kind === 'triggers') {
    db.exec(TRIGGERS);
    db.pragma('temp_store = MEMORY');
  }
  const insert = db.prepare(INSERT_SQL);
  const tx = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const r = rows[i]!;
      insert.run(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13]);
    }
  });
  gc();
  const t0 = performance.now();
  for (let i = 0; i < rows.length; i += batch) tx.immediate(i, Math.min(i + batch, rows.length));
  const ms = performance.now() - t0;
  db.close();
  removeDb(path);
  return ms;
}

/** Per-event cost of prepare() and of its pieces, and of chainEvent(), each measured on its own. */
function breakdown(inputs: readonly AppendRequest[], reps: number, batch: number): { prepareUs: number; checkUs: number; jcsDataUs: number; chainUs: number } {
  const n = inputs.length;
  // What prepareEvent checks: the input with `data` already a plain copy (encodeJcs made it).
  const checked: Array<Record<string, unknown>> = inputs.map(({ stream: _s, ...rest }) => ({ ...rest, data: encodeJcs(rest.data, { path: 'data' }).value }));
  const path = freshDbPath('append-breakdown');
  const ledger = SqliteLedger.open({ path });
  const prepared: PreparedEvent[] = ledger.prepare(inputs);
  const prev = Buffer.alloc(32, 7);
  const prep: number[] = [];
  const check: number[] = [];
  const jcs: number[] = [];
  const chain: number[] = [];
  for (let rep = 0; rep < reps; rep++) {
    gc();
    let t = performance.now();
    for (let i = 0; i < n; i += batch) ledger.prepare(inputs.slice(i, i + batch));
    prep.push(((performance.now() - t) * 1000) / n);
    t = performance.now();
    for (const x of checked) if (fastHeader(x) === undefined) throw new Error('the compiled check sent a bench event to zod');
    check.push(((performance.now() - t) * 1000) / n);
    t = performance.now();
    for (const x of inputs) encodeJcs(x.data, { path: 'data' });
    jcs.push(((performance.now() - t) * 1000) / n);
    t = performance.now();
    for (let i = 0; i < prepared.length; i++) chainEvent(prepared[i]!, i, prev);
    chain.push(((performance.now() - t) * 1000) / n);
  }
  void ledger.close();
  removeDb(path);
  return { prepareUs: median(prep), checkUs: median(check), jcsDataUs: median(jcs), chainUs: median(chain) };
}

export async function benchAppend(cfg: Config): Promise<Section> {
  const { events: n, batch } = cfg.append;
  const reps = cfg.reps;
  log(`append: generating ${fmtInt(n)} tool.call inputs`);
  const inputs = toolCallInputs(n, 200, 1);

  // A warm-up Witness run whose rows become the baselines' precomputed values.
  log('append: warm-up Witness run (its rows are the baselines\u2019 input)');
  const ref = runWitness(inputs, batch, true);
  const { rows, pageSize } = readRows(ref.path);
  removeDb(ref.path);
  log(`append: Witness creates its ledger with ${pageSize}-byte pages; the baselines use the same`);
  const avgData = rows.reduce((s, r) => s + Buffer.byteLength(r[11] ?? ''), 0) / rows.length;
  const avgHeader = rows.reduce((s, r) => s + Buffer.byteLength(r[10]), 0) / rows.length;

  const w: WitnessRun[] = [];
  const rawIdx: number[] = [];
  const rawPlain: number[] = [];
  const rawSmall: number[] = [];
  const rawTrig: number[] = [];
  const rawV1: number[] = [];
  const base = ['witness', 'plain', 'indexed', 'triggers', 'v1'] as const;
  const order = pageSize === DEFAULT_PAGE ? base : ([...base, 'small'] as const);
  for (let rep = 0; rep < reps; rep++) {
    for (let k = 0; k < order.length; k++) {
      const which = order[(rep + k) % order.length]!;
      if (which === 'witness') {
        const r = runWitness(inputs, batch);
        w.push(r);
        log(`append: rep ${rep + 1}/${reps} Witness            ${fmtInt((n / r.ms) * 1000)} ev/s (prepare ${fmtMs(r.prepareMs)} ms, appendPrepared ${fmtMs(r.appendMs)} ms)`);
      } else if (which === 'indexed') {
        const ms = runBaseline(rows, batch, 'indexed', pageSize);
        rawIdx.push(ms);
        log(`append: rep ${rep + 1}/${reps} raw insert, v2 indexes ${fmtInt((n / ms) * 1000)} ev/s`);
      } else if (which === 'small') {
        const ms = runBaseline(rows, batch, 'indexed', DEFAULT_PAGE);
        rawSmall.push(ms);
        log(`append: rep ${rep + 1}/${reps} raw insert, v2 indexes, ${DEFAULT_PAGE}-byte pages ${fmtInt((n / ms) * 1000)} ev/s`);
      } else if (which === 'triggers') {
        const ms = runBaseline(rows, batch, 'triggers', pageSize);
        rawTrig.push(ms);
        log(`append: rep ${rep + 1}/${reps} raw insert, v2 indexes + Witness triggers ${fmtInt((n / ms) * 1000)} ev/s`);
      } else if (which === 'v1') {
        const ms = runBaseline(rows, batch, 'v1', pageSize);
        rawV1.push(ms);
        log(`append: rep ${rep + 1}/${reps} raw insert, v1's 8 indexes ${fmtInt((n / ms) * 1000)} ev/s`);
      } else {
        const ms = runBaseline(rows, batch, 'plain', pageSize);
        rawPlain.push(ms);
        log(`append: rep ${rep + 1}/${reps} raw insert, primary key only ${fmtInt((n / ms) * 1000)} ev/s`);
      }
    }
  }

  log('append: measuring the pieces of the Witness path');
  const bdInputs = inputs.slice(0, Math.min(n, 50_000));
  const bd = breakdown(bdInputs, 3, batch);

  const rate = (ms: number) => (n / ms) * 1000;
  const wRates = w.map((r) => rate(r.ms));
  const wAppendRates = w.map((r) => rate(r.appendMs));
  const idxRates = rawIdx.map(rate);
  const plainRates = rawPlain.map(rate);
  const wMed = median(wRates);
  const idxMed = median(idxRates);
  const plainMed = median(plainRates);
  const ratioPlain = wMed / plainMed;

  const row = (name: string, rates: number[]) => [
    name,
    fmtInt(median(rates)),
    `${fmtInt(min(rates))} – ${fmtInt(max(rates))}`,
    fmtMs((batch / median(rates)) * 1000),
    fmtRatio(median(rates) / plainMed),
    fmtRatio(median(rates) / idxMed),
  ];
  const table = mdTable(
    ['variant', 'events/s (median)', 'min – max', `ms per ${fmtInt(batch)}-event batch`, 'vs raw, primary key only', 'vs raw, v2 indexes'],
    [
      row('**Witness** `prepare()` + `appendPrepared()`', wRates),
      row('Witness `appendPrepared()` only (prepare untimed)', wAppendRates),
      row("**raw better-sqlite3 insert, table with only its primary key** (the target's baseline)", plainRates),
      row('raw insert, v2 `events` indexes (unique id, unique (stream, seq))', idxRates),
      row("_context:_ raw insert, v2 indexes + Witness's append-only `TRIGGERS` from schema.ts", rawTrig.map(rate)),
      row("_context:_ raw insert, schema v1's 8 secondary indexes (earlier runs' baseline)", rawV1.map(rate)),
      ...(rawSmall.length > 0 ? [row(`_context:_ raw insert, v2 indexes, SQLite's default ${DEFAULT_PAGE}-byte pages`, rawSmall.map(rate))] : []),
    ],
  );

  const totalUs = 1e6 / wMed;
  const prepareRunUs = (median(w.map((r) => r.prepareMs)) * 1000) / n;
  const appendUs = (median(w.map((r) => r.appendMs)) * 1000) / n;
  const restPrepareUs = Math.max(0, bd.prepareUs - bd.checkUs - bd.jcsDataUs);
  const insertUs = Math.max(0, appendUs - bd.chainUs);
  const idxUs = 1e6 / idxMed;
  const plainUs = 1e6 / plainMed;
  const trigUs = 1e6 / median(rawTrig.map(rate));
  const v1Us = 1e6 / median(rawV1.map(rate));
  const cpuParts: Array<[string, number]> = [
    ['schema check and JCS-ordered copy of the header (`fastHeader`, compiled from the zod schemas; `data` checked, not copied)', bd.checkUs],
    ['plain copy and JCS of `data` in one walk (`encodeJcs`)', bd.jcsDataUs],
    ['rest of `prepare()`: salt, payload digest, UUIDv7, ts, header parts, copies', restPrepareUs],
    ['`chainEvent()`: header placed at seq/prev + event hash', bd.chainUs],
  ];
  const bdTable = mdTable(
    ['step (Witness, per event)', 'µs'],
    [
      [`**\`prepare()\`** (batches of ${fmtInt(batch)}, timed alone)`, fmtUs(bd.prepareUs)],
      ...cpuParts.slice(0, 3).map(([k, v]) => [`&nbsp;&nbsp;${k}`, fmtUs(v)]),
      ['**`appendPrepared()`** (from the timed runs above)', fmtUs(appendUs)],
      [`&nbsp;&nbsp;${cpuParts[3]![0]}`, fmtUs(bd.chainUs)],
      ['&nbsp;&nbsp;rest: SQLite insert (2 indexes + the one-probe append-only trigger), stream heads, receipts, commit', fmtUs(insertUs)],
      ['**total** per event, median run (prepare part in that run: ' + fmtUs(prepareRunUs) + ' µs)', fmtUs(totalUs)],
      ['_for comparison:_ raw insert, primary key only', fmtUs(plainUs)],
      ['_for comparison:_ raw insert, v2 indexes', fmtUs(idxUs)],
      ["_for comparison:_ raw insert, v2 indexes + Witness's triggers", fmtUs(trigUs)],
      ["_for comparison:_ raw insert, v1's 8 indexes", fmtUs(v1Us)],
    ],
  );

  const sorted = [...cpuParts].sort((a, b) => b[1] - a[1]);
  const why = `Witness spends ${fmtUs(totalUs)} µs per event: ${fmtUs(prepareRunUs)} µs in \`prepare()\` (largest piece: ${sorted[0]![0]}, ${fmtUs(sorted[0]![1])} µs) and ${fmtUs(appendUs)} µs in \`appendPrepared()\` (${fmtUs(bd.chainUs)} µs of it chaining and hashing), against ${fmtUs(plainUs)} µs for the raw insert into a table with only its primary key; the same insert with v2's two unique indexes costs ${fmtUs(idxUs)} µs and with the append-only triggers too ${fmtUs(trigUs)} µs.`;
  const verdicts: Verdict[] = [];
  verdicts.push({
    target: 'Witness append ≥ 100,000 events/s',
    measured: `${fmtInt(wMed)} events/s`,
    met: wMed >= 100_000,
    ...(wMed >= 100_000
      ? {}
      : {
          note:
            plainMed < 100_000
              ? `${why} Even the raw insert into a table with only its primary key reaches only ${fmtInt(plainMed)} events/s on this machine in this run.`
              : `${why} One thread at ${fmtUs(totalUs)} µs per event tops out near ${fmtInt(1e6 / totalUs)} events/s.`,
        }),
  });
  verdicts.push({
    target: 'throughput ≥ 0.5× a raw better-sqlite3 insert of the same rows into a table with only its primary key (same batch size, same run)',
    measured: fmtRatio(ratioPlain),
    met: ratioPlain >= 0.5,
    ...(ratioPlain >= 0.5 ? {} : { note: why }),
  });

  return {
    id: 'append',
    title: '1. Append throughput',
    method: [
      `${fmtInt(n)} \`tool.call\` events per repetition (~${fmtInt(avgData)}-byte canonical payload, ~${fmtInt(avgHeader)}-byte canonical header), 200 streams, 100 agents, appended in batches of ${fmtInt(batch)} into a fresh database each repetition; ${reps} repetitions, variants interleaved; events/s is the median.`,
      'Witness: `ledger.prepare(batch)` + `ledger.appendPrepared(prepared)` (validation, canonical JSON, salt, payload digest, UUIDv7, chaining, hashing and the insert — everything between an input object and a committed row), durability `process` (WAL, synchronous=NORMAL).',
      `Baselines: the exact rows a warm-up Witness run stored (same ids, headers, payloads, salts, hashes), inserted by one prepared \`INSERT\` in \`IMMEDIATE\` transactions of the same size, into (a) the \`events\` table of \`src/store/sqlite/schema.ts\` with only its primary key (issue 10's baseline: the target ratio uses it), (b) the same table with schema v2's two unique indexes (id; stream, seq), (c) (b) plus Witness's append-only \`TRIGGERS\` (a one-probe BEFORE INSERT check; temp_store=MEMORY as the ledger sets it), and (d) the table with schema v1's eight secondary indexes, the baseline of runs before schema v2, so before and after read side by side; same settings as the ledger Witness creates (page_size ${pageSize}, WAL, synchronous=NORMAL, foreign_keys=ON)${rawSmall.length > 0 ? ", and what Witness's page size buys over SQLite's default" : ''}. Schema v2 fills the query index (\`event_index\`) after commit, off the append path (\`indexTail\`), so no variant here pays for it.`,
    ],
    body: [
      table,
      `**Where the time goes** (\`prepare()\` and its pieces and \`chainEvent()\` each timed alone over the first ${fmtInt(bdInputs.length)} inputs, median of 3; the "rest" lines are differences; pieces timed alone run hotter than inside the full path, so read them as approximate):`,
      bdTable,
    ],
    verdicts,
  };
}
