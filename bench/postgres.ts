/**
 * Benchmark 8 — the PostgreSQL ledger (issue 12), against a real server (WITNESS_BENCH_PG_URL,
 * default this machine's postgres://postgres@127.0.0.1:5432/test), every ledger and table in a
 * schema of its own, created for the run and dropped after it:
 *
 *   (1) append: PostgresLedger prepare() + appendPrepared() in batches vs a raw batched INSERT of
 *       the very same rows (one multi-row INSERT per batch, arrays through unnest, as the driver
 *       sends them) into an equivalent table with only its primary key; for context the same raw
 *       INSERT into the table with Witness's indexes, and into Witness's own `events` table
 *       (indexes + the position guard trigger); where the Witness batch's time goes, statement by
 *       statement;
 *   (2) 1, 2 and 4 concurrent writer processes (bench/writer-child.ts, each on streams of its own),
 *       SQLite and PostgreSQL side by side;
 *   (3) query by agent and a time window on a 1,000,000-event PostgreSQL ledger built with the
 *       driver itself (prepare() + appendPrepared() in big batches; sealed, so every row is
 *       verified by the sealer and covered by a signed checkpoint).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import pg from 'pg';
import { chainEvent, type PreparedEvent } from '../src/core/index.js';
import { openLedger, type AppendRequest, type Ledger } from '../src/store/index.js';
import { pgQuerySql } from '../src/store/postgres/query.js';
import type { Config } from './config.js';
import { Timeline, toolCallInputs } from './events.js';
import { queries } from './query.js';
import { benchDir, fmtInt, fmtMiB, fmtMs, fmtRatio, fmtUs, freshDbPath, gc, log, max, mdTable, median, min, percentile, removeDb, type Section, type Verdict } from './util.js';
import type { WriterJob, WriterResult } from './writer-child.js';

export const PG_BENCH_URL = process.env['WITNESS_BENCH_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const CHILD = fileURLToPath(new URL('./writer-child.js', import.meta.url));
const COLUMNS = 'pos, id, stream, seq, ts, kind, agent, resource, action, outcome, header, data, salt, hash';
/** The driver's own statement shape (src/store/postgres/append.ts), so both sides send the same bytes the same way. */
const RAW_INSERT = (table: string) =>
  `INSERT INTO ${table} (${COLUMNS}) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bytea[], $14::bytea[])`;

// ---------------------------------------------------------------- schemas of this run

const runTag = randomBytes(3).toString('hex');
let schemaCounter = 0;
const created: string[] = [];

/** A new schema name for this run (`wbench_<run>_<n>`); every one is dropped by dropSchemas(). */
function newSchema(label: string): string {
  const s = `wbench_${runTag}_${label}_${++schemaCounter}`;
  created.push(s);
  return s;
}

function urlOf(schema: string): string {
  const u = new URL(PG_BENCH_URL);
  u.searchParams.set('schema', schema);
  return u.toString();
}

function keyFileOf(schema: string): string {
  return path.join(benchDir(), `${schema}.key`);
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: PG_BENCH_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function dropSchema(c: pg.Client, schema: string): Promise<void> {
  await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  const i = created.indexOf(schema);
  if (i >= 0) created.splice(i, 1);
}

async function dropSchemas(): Promise<void> {
  if (created.length === 0) return;
  await admin(async (c) => {
    for (const s of [...created]) await dropSchema(c, s);
  });
}

async function openPg(schema: string, create = true): Promise<Ledger> {
  return openLedger(urlOf(schema), { create, keyFile: keyFileOf(schema) });
}

// ---------------------------------------------------------------- statement timing

/**
 * Times every statement node-postgres sends while `on` (client-side: round trip + server
 * execution), by wrapping Client.prototype.query — the driver loads the same `pg`, so its
 * statements pass through here. Used only in the untimed breakdown run.
 */
class StatementClock {
  on = false;
  readonly ms = new Map<string, number>();
  readonly count = new Map<string, number>();
  private readonly original = pg.Client.prototype.query;

  install(classify: (sql: string) => string): void {
    const original = this.original;
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const clock = this;
    pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
      // Started before the call: an idle client encodes the parameters (arrays to text, bytea to
      // hex) synchronously inside query(), and the raw side pays that encoding too.
      const t = performance.now();
      const out = (original as (...a: unknown[]) => unknown).apply(this, args);
      const first = args[0];
      const text = typeof first === 'string' ? first : ((first as { text?: string } | undefined)?.text ?? '');
      if (clock.on && out instanceof Promise) {
        const key = classify(text);
        void out.then(
          () => clock.add(key, performance.now() - t),
          () => clock.add(key, performance.now() - t),
        );
      }
      return out;
    } as typeof pg.Client.prototype.query;
  }

  private add(key: string, ms: number): void {
    this.ms.set(key, (this.ms.get(key) ?? 0) + ms);
    this.count.set(key, (this.count.get(key) ?? 0) + 1);
  }

  uninstall(): void {
    pg.Client.prototype.query = this.original;
  }
}

const STMT_LOCK = 'BEGIN + position lock (`SELECT next_pos FROM ledger_head … FOR UPDATE`)';
const STMT_HEADS = 'stream heads (`SELECT … FROM stream_heads … FOR UPDATE`)';
const STMT_INSERT = 'the batch statement (encoding the arrays; multi-row INSERT of events via unnest + stream heads upsert + ledger head update, position guard trigger)';
const STMT_COMMIT = 'COMMIT (WAL flush, synchronous_commit on)';

function classifyDriverSql(sql: string): string {
  if (sql.startsWith('BEGIN')) return STMT_LOCK;
  if (sql.startsWith('SELECT stream, seq')) return STMT_HEADS;
  if (sql.trimStart().startsWith('WITH e AS')) return STMT_INSERT;
  if (sql === 'COMMIT') return STMT_COMMIT;
  return `other: ${sql.slice(0, 40)}`;
}

// ---------------------------------------------------------------- (1) append vs raw

type Variant = 'witness' | 'pipelined' | 'plain' | 'indexed' | 'table';

/** Column arrays of one batch, as the driver builds them (pos, id, …, salt, hash). */
type Columns = unknown[][];

interface WitnessRun {
  ms: number;
  prepareMs: number;
  appendMs: number;
}

/**
 * prepare() + appendPrepared(), batch after batch. `pipelined`: each batch is prepared while the
 * previous one is in flight (what a writer that keeps accepting events during a commit, like the
 * recorder's group commit, gets); the node side then overlaps the server's.
 */
async function runWitness(inputs: readonly AppendRequest[], batch: number, schema: string, pipelined = false): Promise<WitnessRun> {
  const ledger = await openPg(schema);
  gc();
  let prepareMs = 0;
  let appendMs = 0;
  const t0 = performance.now();
  if (pipelined) {
    let pending: Promise<unknown> = Promise.resolve();
    for (let i = 0; i < inputs.length; i += batch) {
      const prepared = ledger.prepare(inputs.slice(i, i + batch));
      await pending;
      pending = ledger.appendPrepared(prepared);
    }
    await pending;
  }
  for (let i = 0; !pipelined && i < inputs.length; i += batch) {
    const a = performance.now();
    const prepared = ledger.prepare(inputs.slice(i, i + batch));
    const b = performance.now();
    await ledger.appendPrepared(prepared);
    appendMs += performance.now() - b;
    prepareMs += b - a;
  }
  const ms = performance.now() - t0;
  await ledger.close();
  return { ms, prepareMs, appendMs };
}

/** The rows a Witness run stored, as per-batch column arrays (the raw side sends them precomputed). */
async function readBatches(schema: string, batch: number): Promise<Columns[]> {
  return admin(async (c) => {
    const { rows } = await c.query({ text: `SELECT ${COLUMNS} FROM ${schema}.events ORDER BY pos`, rowMode: 'array' });
    const out: Columns[] = [];
    for (let i = 0; i < rows.length; i += batch) {
      const cols: Columns = Array.from({ length: 14 }, () => []);
      for (const r of rows.slice(i, i + batch) as unknown[][]) {
        for (let k = 0; k < 14; k++) cols[k]!.push(k === 0 || k === 3 ? Number(r[k]) : r[k]);
      }
      out.push(cols);
    }
    return out;
  });
}

/**
 * The raw side: the same rows, one autocommitted multi-row INSERT per batch (one round trip, its
 * own commit), into (plain) a table with the columns of Witness's `events` (same types and
 * collations, `LIKE`) and only its primary key on pos; (indexed) that table with Witness's
 * constraints and indexes (`LIKE … INCLUDING INDEXES`: unique id, unique (stream, seq) and the six
 * query indexes); (table) Witness's own `events` table in a freshly created ledger, with those
 * indexes and its position guard trigger.
 */
async function runRaw(batches: readonly Columns[], kind: Exclude<Variant, 'witness' | 'pipelined'>, template: string): Promise<number> {
  const schema = newSchema(`raw${kind}`);
  if (kind === 'table') await (await openPg(schema)).close();
  return admin(async (c) => {
    if (kind !== 'table') {
      await c.query(`CREATE SCHEMA ${schema}`);
      if (kind === 'plain') await c.query(`CREATE TABLE ${schema}.events (LIKE ${template}.events, PRIMARY KEY (pos))`);
      else await c.query(`CREATE TABLE ${schema}.events (LIKE ${template}.events INCLUDING INDEXES)`);
    }
    const sql = RAW_INSERT(`${schema}.events`);
    gc();
    const t0 = performance.now();
    for (const cols of batches) await c.query(sql, cols);
    const ms = performance.now() - t0;
    await dropSchema(c, schema);
    return ms;
  });
}

/** Per-event CPU of prepare() and of chainEvent(), timed alone (the node side of a Witness batch). */
async function cpuBreakdown(inputs: readonly AppendRequest[], batch: number, schema: string): Promise<{ prepareUs: number; chainUs: number }> {
  const ledger = await openPg(schema);
  const prepared: PreparedEvent[] = ledger.prepare(inputs);
  const prev = Buffer.alloc(32, 7);
  const prep: number[] = [];
  const chain: number[] = [];
  for (let rep = 0; rep < 3; rep++) {
    gc();
    let t = performance.now();
    for (let i = 0; i < inputs.length; i += batch) ledger.prepare(inputs.slice(i, i + batch));
    prep.push(((performance.now() - t) * 1000) / inputs.length);
    t = performance.now();
    for (let i = 0; i < prepared.length; i++) chainEvent(prepared[i]!, i, prev);
    chain.push(((performance.now() - t) * 1000) / inputs.length);
  }
  await ledger.close();
  return { prepareUs: median(prep), chainUs: median(chain) };
}

async function roundTripMs(): Promise<number> {
  return admin(async (c) => {
    const xs: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      await c.query('SELECT 1');
      xs.push(performance.now() - t);
    }
    return median(xs.slice(20));
  });
}

interface AppendResult {
  body: string[];
  method: string[];
  verdict: Verdict;
}

async function benchPgAppend(cfg: Config): Promise<AppendResult> {
  const { appendEvents: n, batch } = cfg.postgres;
  const reps = cfg.reps;
  log(`postgres append: generating ${fmtInt(n)} tool.call inputs`);
  const inputs = toolCallInputs(n, 200, 1);

  log('postgres append: warm-up Witness run (its rows are the baselines\u2019 input, its table their template)');
  const template = newSchema('template');
  await runWitness(inputs, batch, template);
  const batches = await readBatches(template, batch);
  const bytes = await admin(async (c) => {
    const r = await c.query<{ h: string; d: string }>(`SELECT avg(octet_length(header)) AS h, avg(octet_length(data)) AS d FROM ${template}.events`);
    return { header: Number(r.rows[0]!.h), data: Number(r.rows[0]!.d) };
  });

  const w: WitnessRun[] = [];
  const piped: number[] = [];
  const raw: Record<Exclude<Variant, 'witness' | 'pipelined'>, number[]> = { plain: [], indexed: [], table: [] };
  const order: Variant[] = ['witness', 'plain', 'pipelined', 'indexed', 'table'];
  for (let rep = 0; rep < reps; rep++) {
    for (let k = 0; k < order.length; k++) {
      const which = order[(rep + k) % order.length]!;
      if (which === 'witness') {
        const schema = newSchema('witness');
        const r = await runWitness(inputs, batch, schema);
        await admin((c) => dropSchema(c, schema));
        w.push(r);
        log(`postgres append: rep ${rep + 1}/${reps} Witness ${fmtInt((n / r.ms) * 1000)} ev/s (prepare ${fmtMs(r.prepareMs)} ms, appendPrepared ${fmtMs(r.appendMs)} ms)`);
      } else if (which === 'pipelined') {
        const schema = newSchema('pipelined');
        const r = await runWitness(inputs, batch, schema, true);
        await admin((c) => dropSchema(c, schema));
        piped.push(r.ms);
        log(`postgres append: rep ${rep + 1}/${reps} Witness, pipelined ${fmtInt((n / r.ms) * 1000)} ev/s`);
      } else {
        const ms = await runRaw(batches, which, template);
        raw[which].push(ms);
        log(`postgres append: rep ${rep + 1}/${reps} raw INSERT (${which}) ${fmtInt((n / ms) * 1000)} ev/s`);
      }
    }
  }

  // One more Witness run, untimed as a whole, with every statement timed.
  log('postgres append: breakdown run (statement by statement)');
  const clock = new StatementClock();
  clock.install(classifyDriverSql);
  const bdSchema = newSchema('breakdown');
  const bdLedger = await openPg(bdSchema);
  const bdTotal = await (async () => {
    try {
      clock.on = true;
      const t0 = performance.now();
      for (let i = 0; i < inputs.length; i += batch) await bdLedger.appendPrepared(bdLedger.prepare(inputs.slice(i, i + batch)));
      return performance.now() - t0;
    } finally {
      clock.on = false;
      clock.uninstall();
      await bdLedger.close();
    }
  })();
  const cpu = await cpuBreakdown(inputs.slice(0, Math.min(n, 50_000)), batch, newSchema('cpu'));
  const rtt = await roundTripMs();
  await admin((c) => dropSchema(c, template));

  const rate = (ms: number) => (n / ms) * 1000;
  const wRates = w.map((r) => rate(r.ms));
  const plainRates = raw.plain.map(rate);
  const wMed = median(wRates);
  const plainMed = median(plainRates);
  const ratio = wMed / plainMed;
  const nb = Math.ceil(n / batch);
  const perBatch = (rates: number[]) => fmtMs((batch / median(rates)) * 1000);
  const row = (name: string, rates: number[]) => [name, fmtInt(median(rates)), `${fmtInt(min(rates))} – ${fmtInt(max(rates))}`, perBatch(rates), fmtRatio(median(rates) / plainMed)];
  const table = mdTable(
    ['variant', 'events/s (median)', 'min – max', `ms per ${fmtInt(batch)}-event batch`, 'vs raw, primary key only'],
    [
      row('**Witness** `prepare()` + `appendPrepared()`', wRates),
      row(
        'Witness `appendPrepared()` only (prepare untimed)',
        w.map((r) => rate(r.appendMs)),
      ),
      row('_context:_ Witness, each batch prepared while the previous one is stored (pipelined)', piped.map(rate)),
      row("**raw multi-row INSERT, table with only its primary key** (the target's baseline)", plainRates),
      row("raw INSERT, + Witness's constraints and indexes (unique id, unique (stream, seq), 6 query indexes)", raw.indexed.map(rate)),
      row("raw INSERT into Witness's own `events` table (those indexes + the position guard trigger)", raw.table.map(rate)),
    ],
  );

  const perBatchMs = (key: string) => (clock.ms.get(key) ?? 0) / nb;
  const stmtKeys = [STMT_LOCK, STMT_HEADS, STMT_INSERT, STMT_COMMIT];
  const stmtTotal = stmtKeys.reduce((s, k) => s + perBatchMs(k), 0);
  const bdPerBatch = bdTotal / nb;
  const plainBatch = (batch / plainMed) * 1000;
  const idxBatch = (batch / median(raw.indexed.map(rate))) * 1000;
  const tableBatch = (batch / median(raw.table.map(rate))) * 1000;
  const prepareBatch = (cpu.prepareUs * batch) / 1000;
  const bdTable = mdTable(
    [`where a Witness batch of ${fmtInt(batch)} goes (breakdown run)`, 'ms per batch'],
    [
      ...stmtKeys.map((k) => [k, fmtMs(perBatchMs(k))]),
      [`rest: node-side work between statements (prepare(), chaining and hashing, building the arrays), pool checkout`, fmtMs(Math.max(0, bdPerBatch - stmtTotal))],
      ['**total** (breakdown run)', fmtMs(bdPerBatch)],
      [`&nbsp;&nbsp;_for comparison:_ \`prepare()\` timed alone (${fmtUs(cpu.prepareUs)} µs/event)`, fmtMs(prepareBatch)],
      [`&nbsp;&nbsp;_for comparison:_ \`chainEvent()\` timed alone (${fmtUs(cpu.chainUs)} µs/event)`, fmtMs((cpu.chainUs * batch) / 1000)],
      ['_for comparison:_ one round trip (`SELECT 1`, median)', fmtMs(rtt)],
      ['_for comparison:_ raw INSERT, primary key only (one statement, its own commit)', fmtMs(plainBatch)],
      ["_for comparison:_ raw INSERT, + Witness's indexes", fmtMs(idxBatch)],
      ["_for comparison:_ raw INSERT into Witness's `events` (indexes + trigger)", fmtMs(tableBatch)],
    ],
  );
  // Differences of two medians: within the run's noise they can come out below zero, shown as ≈ 0.
  const diff = (x: number) => (x > 0 ? `${fmtMs(x)} ms` : '≈ 0 ms (within noise)');
  const nodeSide = Math.max(0, bdPerBatch - stmtTotal);
  const why =
    `A Witness batch of ${fmtInt(batch)} costs ${fmtMs((batch / wMed) * 1000)} ms against ${fmtMs(plainBatch)} ms for the raw INSERT into a table with only its primary key (\`appendPrepared()\` alone: ${fmtMs((batch / median(w.map((r) => rate(r.appendMs)))) * 1000)} ms, ${fmtRatio(median(w.map((r) => rate(r.appendMs))) / plainMed)}). ` +
    `Of the difference: the node side of the batch (\`prepare()\`: validation, canonical JSON, salt, digests, UUIDv7; then chaining, hashing and building the arrays), which runs before the INSERT is sent, ${fmtMs(nodeSide)} ms in the breakdown run (\`prepare()\` timed alone: ${fmtMs(prepareBatch)} ms, \`chainEvent()\` ${fmtMs((cpu.chainUs * batch) / 1000)} ms); ` +
    `the indexes Witness's queries need ${diff(idxBatch - plainBatch)} (raw INSERT with them: ${fmtMs(idxBatch)} ms); the position guard trigger ${diff(tableBatch - idxBatch)}; ` +
    `the position lock and the stream heads ${fmtMs(perBatchMs(STMT_LOCK) + perBatchMs(STMT_HEADS))} ms (two extra round trips, uncontended; one round trip is ${fmtMs(rtt)} ms); ` +
    `the batch statement itself ${fmtMs(perBatchMs(STMT_INSERT))} ms and its COMMIT ${fmtMs(perBatchMs(STMT_COMMIT))} ms. ` +
    `Even the raw INSERT into Witness's own table reaches only ${fmtRatio(median(raw.table.map(rate)) / plainMed)} of the primary-key-only one: the indexes alone leave little room for the rest. ` +
    `Preparing each batch while the previous one is stored (the node side overlapping the server's work, on ${os.cpus().length} cores shared with the server): ${fmtInt(median(piped.map(rate)))} events/s, ${fmtRatio(median(piped.map(rate)) / plainMed)}.`;
  return {
    method: [
      `**(1) Append.** ${fmtInt(n)} \`tool.call\` events per repetition (~${fmtInt(bytes.data)}-byte canonical payload, ~${fmtInt(bytes.header)}-byte canonical header; the generator of benchmark 1), 200 streams, 100 agents, in batches of ${fmtInt(batch)}, each repetition into a fresh schema (table) dropped after it; ${reps} repetitions, variants interleaved; events/s is the median.`,
      "Witness: a `PostgresLedger` opened with `openLedger('postgres://…?schema=…')`, `prepare(batch)` + `appendPrepared(prepared)`: validation, canonical JSON, salt, payload digest, UUIDv7, chaining, hashing, and the driver's transaction (BEGIN + the ledger-wide position lock, the stream heads locked, one multi-row INSERT of the batch with the stream heads and ledger head, COMMIT: four round trips).",
      `Baselines: the exact rows a warm-up Witness run stored (same ids, headers, payloads, salts, hashes), sent precomputed as one autocommitted \`INSERT … SELECT * FROM unnest($1::bigint[], …)\` per batch of ${fmtInt(batch)} (the driver's own statement shape; one round trip, its own commit), on one connection, into (a) a table \`LIKE\` Witness's \`events\` (same columns, types and "C" collations) with only its primary key on \`pos\` — the target's baseline; (b) the same with Witness's constraints and indexes (\`LIKE … INCLUDING INDEXES\`); (c) Witness's own \`events\` table in a freshly created ledger (indexes + the statement-level position guard trigger; the append-only UPDATE/DELETE triggers do not fire on INSERT).`,
      "The breakdown times each statement the driver sends in one more (untimed) run, by wrapping node-postgres's `Client.prototype.query` (client-side: encoding the parameters, round trip, server execution); `prepare()` and `chainEvent()` are timed alone over the first inputs.",
    ],
    body: [table, `**Where the time goes:**`, bdTable],
    verdict: {
      target: 'PostgreSQL append ≥ 0.7× a raw batched INSERT of the same rows into an equivalent plain table (primary key only), same batch size',
      measured: `${fmtRatio(ratio)} (${fmtInt(wMed)} vs ${fmtInt(plainMed)} events/s)`,
      met: ratio >= 0.7,
      note: why,
    },
  };
}

// ---------------------------------------------------------------- (2) concurrent writers

interface WritersRun {
  rate: number;
  seconds: number;
}

async function spawnWriters(jobs: WriterJob[]): Promise<WriterResult[]> {
  const children = jobs.map((job) => {
    const child = spawn(process.execPath, [CHILD, JSON.stringify(job)], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => (err += d));
    const ready = new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: string) => {
        out += d;
        if (out.startsWith('ready\n')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`writer exited ${code} before it was ready: ${err.trim()}`)));
    });
    const done = new Promise<WriterResult>((resolve, reject) => {
      child.once('exit', (code) => {
        if (code !== 0) return reject(new Error(`writer exited ${code}: ${err.trim()}`));
        const last = out.trim().split('\n').pop() ?? '';
        resolve(JSON.parse(last) as WriterResult);
      });
    });
    done.catch(() => undefined);
    return { child, ready, done };
  });
  await Promise.all(children.map((c) => c.ready));
  for (const c of children) c.child.stdin.end('go\n');
  return Promise.all(children.map((c) => c.done));
}

async function runWriters(driver: 'sqlite' | 'postgres', writers: number, cfg: Config): Promise<WritersRun> {
  const { writerEvents, writerBatch, writerStreams } = cfg.postgres;
  let url: string;
  let keyFile: string | undefined;
  let file: string | undefined;
  let schema: string | undefined;
  if (driver === 'postgres') {
    schema = newSchema(`w${writers}`);
    keyFile = keyFileOf(schema);
    url = urlOf(schema);
    await (await openPg(schema)).close();
  } else {
    file = freshDbPath(`writers-${writers}`);
    url = `sqlite:${file}`;
    await (await openLedger(url)).close();
  }
  const jobs = Array.from({ length: writers }, (_, i): WriterJob => ({
    url,
    ...(keyFile === undefined ? {} : { keyFile }),
    events: writerEvents,
    batch: writerBatch,
    streams: writerStreams,
    seed: 100 + i,
  }));
  const results = await spawnWriters(jobs);
  const total = results.reduce((s, r) => s + r.events, 0);
  const ms = max(results.map((r) => r.end)) - min(results.map((r) => r.start));
  // Nothing lost, nothing doubled, positions gap-free.
  let count: number;
  let top: number;
  if (schema !== undefined) {
    const s = schema;
    const r = await admin((c) => c.query<{ n: string; m: string }>(`SELECT count(*) AS n, max(pos) AS m FROM ${s}.events`));
    count = Number(r.rows[0]!.n);
    top = Number(r.rows[0]!.m);
    await admin((c) => dropSchema(c, s));
  } else {
    const db = new Database(file!, { readonly: true });
    const r = db.prepare('SELECT count(*) AS n, max(pos) AS m FROM events').get() as { n: number; m: number };
    db.close();
    count = r.n;
    top = r.m;
    removeDb(file!);
  }
  if (count !== total || top !== total - 1) throw new Error(`${driver} with ${writers} writers: ${count} events stored (top position ${top}), expected ${total}`);
  return { rate: (total / ms) * 1000, seconds: ms / 1000 };
}

async function benchWriters(cfg: Config): Promise<{ method: string; body: string }> {
  const { writers, writerEvents, writerBatch, writerStreams, writerReps } = cfg.postgres;
  const configs = (['sqlite', 'postgres'] as const).flatMap((d) => writers.map((k) => ({ driver: d, writers: k })));
  const rates = new Map<string, number[]>(configs.map((c) => [`${c.driver}/${c.writers}`, []]));
  for (let rep = 0; rep < writerReps; rep++) {
    for (let k = 0; k < configs.length; k++) {
      const c = configs[(rep + k) % configs.length]!;
      const r = await runWriters(c.driver, c.writers, cfg);
      rates.get(`${c.driver}/${c.writers}`)!.push(r.rate);
      log(`postgres writers: rep ${rep + 1}/${writerReps} ${c.driver} × ${c.writers}: ${fmtInt(r.rate)} ev/s (${r.seconds.toFixed(2)} s)`);
    }
  }
  const cell = (d: string, k: number) => {
    const xs = rates.get(`${d}/${k}`)!;
    return `${fmtInt(median(xs))} (${fmtInt(min(xs))} – ${fmtInt(max(xs))})`;
  };
  const body = mdTable(
    ['writer processes', 'SQLite events/s total (min – max)', 'PostgreSQL events/s total (min – max)', 'PostgreSQL / SQLite'],
    writers.map((k) => [String(k), cell('sqlite', k), cell('postgres', k), fmtRatio(median(rates.get(`postgres/${k}`)!) / median(rates.get(`sqlite/${k}`)!))]),
  );
  return {
    method: `**(2) Concurrent writers** (context, no target). 1, 2 and 4 writer processes (\`bench/writer-child.ts\`, each a separate node process opening the ledger with \`openLedger\`), each appending ${fmtInt(writerEvents)} \`tool.call\` events on ${writerStreams} streams of its own with \`prepare()\` + \`appendPrepared()\` in batches of ${writerBatch}, into one fresh ledger per run: a SQLite file (durability \`process\`: WAL, synchronous=NORMAL, no fsync per commit — the default) or a PostgreSQL schema (every commit flushed, synchronous_commit on). The writers open, generate their events, then start together on a signal; events/s total = all events / (last writer's end − first writer's start). After each run the ledger holds exactly the events written at positions 0…n−1 (checked). ${writerReps} repetitions, configurations interleaved; medians. The machine has ${os.cpus().length} cores, shared by the writers, the PostgreSQL server and anything else running.`,
    body,
  };
}

// ---------------------------------------------------------------- (3) query on 1,000,000 events

interface Built {
  schema: string;
  seconds: number;
  sealSeconds: number;
  sessions: number;
  bytes: number;
  checkpoint: number;
}

/**
 * The large PostgreSQL ledger, built with the driver itself: the timeline of the shared SQLite
 * ledger (bench/events.ts), prepare() + appendPrepared() in batches of cfg.postgres.buildBatch, the
 * next batch prepared while the server stores the previous one; then sealed (the sealer re-verifies
 * every row and signs a checkpoint over all of them) and ANALYZEd, as autovacuum would after a bulk
 * load.
 */
async function buildLarge(cfg: Config): Promise<Built> {
  const { queryEvents: total, buildBatch } = cfg.postgres;
  const schema = newSchema('query');
  const ledger = await openPg(schema);
  const timeline = new Timeline(total, cfg.query.agents, 42);
  log(`postgres query: building ${fmtInt(total)} events in schema ${schema}`);
  const t0 = performance.now();
  let lastLog = t0;
  let pending: Promise<unknown> = Promise.resolve();
  let built = 0;
  while (built < total) {
    const k = Math.min(buildBatch, total - built);
    const batch = new Array<AppendRequest>(k);
    for (let i = 0; i < k; i++) batch[i] = timeline.next();
    const prepared = ledger.prepare(batch);
    await pending;
    pending = ledger.appendPrepared(prepared);
    built += k;
    const now = performance.now();
    if (now - lastLog > 10_000) {
      lastLog = now;
      log(`postgres query: ${fmtInt(built)} / ${fmtInt(total)} events (${fmtInt((built / (now - t0)) * 1000)} ev/s)`);
    }
  }
  await pending;
  const seconds = (performance.now() - t0) / 1000;
  log(`postgres query: built in ${seconds.toFixed(1)} s (${fmtInt(total / seconds)} ev/s); sealing`);
  const s0 = performance.now();
  let checkpoint = 0;
  for (;;) {
    const cp = await ledger.seal();
    if (cp === null || cp.size >= total) {
      checkpoint = cp?.size ?? checkpoint;
      break;
    }
    checkpoint = cp.size;
  }
  const sealSeconds = (performance.now() - s0) / 1000;
  await ledger.close();
  const bytes = await admin(async (c) => {
    await c.query(`ANALYZE ${schema}.events`);
    return Number((await c.query<{ b: string }>(`SELECT pg_total_relation_size('${schema}.events') AS b`)).rows[0]!.b);
  });
  log(`postgres query: sealed in ${sealSeconds.toFixed(1)} s (checkpoint of ${fmtInt(checkpoint)}), events table ${fmtMiB(bytes)} MiB`);
  return { schema, seconds, sealSeconds, sessions: timeline.sessions, bytes, checkpoint };
}

async function benchPgQuery(cfg: Config): Promise<{ method: string[]; body: string; verdict: Verdict }> {
  const n = cfg.postgres.queryEvents;
  const count = cfg.query.queries;
  const reps = cfg.reps;
  const built = await buildLarge(cfg);
  if (built.checkpoint !== n) throw new Error(`the sealer's last checkpoint covers ${built.checkpoint} of ${n} events`);
  // A fresh handle, as a reader would open it.
  const ledger = await openLedger(urlOf(built.schema), { create: false, readonly: true, keyFile: keyFileOf(built.schema) });
  const p50: number[] = [];
  const p99: number[] = [];
  const worst: number[] = [];
  let rows = 0;
  let full = 0;
  let total = 0;
  for (let rep = 0; rep < reps; rep++) {
    const qs = queries('agent', count, cfg.query.agents, 1000 + rep);
    gc();
    const lat: number[] = [];
    for (const q of qs) {
      const t = performance.now();
      const page = await ledger.query({ ...q, limit: 100 });
      lat.push(performance.now() - t);
      rows += page.events.length;
      if (page.events.length === 100) full++;
      total++;
    }
    p50.push(percentile(lat, 50));
    p99.push(percentile(lat, 99));
    worst.push(max(lat));
    log(`postgres query: rep ${rep + 1}/${reps} agent + window p50 ${fmtMs(percentile(lat, 50))} ms p99 ${fmtMs(percentile(lat, 99))} ms`);
  }
  await ledger.close();
  // The plan, and the statement alone through node-postgres (rows not turned into events).
  const sample = queries('agent', 1, cfg.query.agents, 999)[0]!;
  const { sql, args } = pgQuerySql({ ...sample, limit: 100 }, 101);
  const { plan, rawP50 } = await admin(async (c) => {
    await c.query(`SET search_path = ${built.schema}`);
    const r = await c.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, args);
    const lat: number[] = [];
    for (const q of queries('agent', count, cfg.query.agents, 1000)) {
      const x = pgQuerySql({ ...q, limit: 100 }, 101);
      const t = performance.now();
      await c.query(x.sql, x.args);
      lat.push(performance.now() - t);
    }
    return { plan: r.rows.map((x) => x['QUERY PLAN'].trim()).join(' → '), rawP50: percentile(lat, 50) };
  });
  await admin((c) => dropSchema(c, built.schema));

  const a = median(p50);
  const body = mdTable(
    ['agent + window (limit 100)', 'p50 ms', 'p99 ms', 'max ms', 'p50 range over reps ms', 'events returned (mean)', 'pages hitting the limit'],
    [
      [
        `**\`ledger.query\`** on ${fmtInt(n)} events`,
        fmtMs(a),
        fmtMs(median(p99)),
        fmtMs(median(worst)),
        `${fmtMs(min(p50))} – ${fmtMs(max(p50))}`,
        (rows / total).toFixed(1),
        `${fmtInt((full / total) * 100)} %`,
      ],
      ['_context:_ the same statement through node-postgres alone (rows not turned into events)', fmtMs(rawP50), '', '', '', '', ''],
    ],
  );
  return {
    method: [
      `**(3) Query by agent and a time window** on a ${fmtInt(n)}-event PostgreSQL ledger built for the run with the driver itself: the timeline of the shared SQLite ledger (${fmtInt(built.sessions)} sessions of 20–80 events by ${cfg.query.agents} agents, ts over January 2026), \`prepare()\` + \`appendPrepared()\` in batches of ${fmtInt(cfg.postgres.buildBatch)} (the next batch prepared while the server stores the previous one): **${built.seconds.toFixed(1)} s to build (${fmtInt(n / built.seconds)} events/s)**; then sealed (the sealer re-verified every row and signed a checkpoint of size ${fmtInt(built.checkpoint)}, ${built.sealSeconds.toFixed(1)} s), and ANALYZEd as autovacuum would after a bulk load; \`events\` with its indexes ${fmtMiB(built.bytes)} MiB. Then a fresh read-only handle (\`openLedger(…, { readonly: true })\`), ${reps} repetitions × ${count} random queries \`ledger.query({ agent, since, until, limit: 100 })\` (the windows of benchmark 4: 1 hour to 7 days, log-uniform), a new set each repetition. The server's cache is warm from the build (the table fits in this machine's memory).`,
      `PostgreSQL's plan for one of them: \`${plan}\`.`,
    ],
    body,
    verdict: {
      target: `PostgreSQL query by agent + window, p50 ≤ 10 ms on ${fmtInt(n)} events`,
      measured: `${fmtMs(a)} ms (p99 ${fmtMs(median(p99))} ms)`,
      met: a <= 10,
      ...(a <= 10 ? {} : { note: `PostgreSQL's plan: ${plan}.` }),
    },
  };
}

// ---------------------------------------------------------------- the section

export async function benchPostgres(cfg: Config): Promise<Section> {
  await admin((c) => c.query('SELECT 1')).catch((e: unknown) => {
    throw new Error(`PostgreSQL is not reachable at ${PG_BENCH_URL} (${(e as Error).message}); start it (scripts/setup-system.sh) or set WITNESS_BENCH_PG_URL`, { cause: e });
  });
  const version = await admin(async (c) => (await c.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v);
  try {
    const append = await benchPgAppend(cfg);
    const writers = await benchWriters(cfg);
    const query = await benchPgQuery(cfg);
    return {
      id: 'postgres',
      title: '8. PostgreSQL ledger',
      method: [
        `PostgreSQL ${version} at \`${new URL(PG_BENCH_URL).host}\` (database \`${new URL(PG_BENCH_URL).pathname.slice(1)}\`), on this machine, default settings (synchronous_commit on, shared_buffers as configured); every ledger and table of the run in a schema of its own (\`?schema=\`), dropped after it.`,
        ...append.method,
      ],
      body: [...append.body, writers.method, writers.body, ...query.method, query.body],
      verdicts: [append.verdict, query.verdict],
    };
  } finally {
    await dropSchemas();
  }
}
