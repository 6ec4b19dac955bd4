/**
 * Benchmark 9 — `witness serve` (issue 13).
 *
 * (a) HTTP ingest: batches of 500 events from 4 concurrent clients over loopback into a real
 *     `witness serve` child process (client and server on different threads), against the same
 *     events appended directly in the benchmark's own process through the store API the SDK
 *     writes through (`openLedger(…).append`, batches of 500, 4 concurrent callers).
 * (b) The viewer's session page, the API's first page of a session, and event search (agent and
 *     time window, with and without free text) on the shared large ledger: p50 and p99 of the
 *     time the app takes to answer in process (`app.request()` until the body is read), which is
 *     everything the server does (key check, schema, store reads, the audit.access append,
 *     rendering) except the socket.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { createKey, createServer } from '../src/server/index.js';
import { openLedger, type AppendRequest, type Ledger, type QueryFilter } from '../src/store/index.js';
import type { Config } from './config.js';
import { toolCallInputs } from './events.js';
import type { LargeLedgers } from './ledgers.js';
import { queries } from './query.js';
import { benchDir, fmtInt, fmtMs, fmtRatio, freshDbPath, gc, log, max, mdTable, median, percentile, removeDb, rng, type Section, type Verdict } from './util.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = path.join(ROOT, 'bin', 'witness.js');

const BATCH = 500;
const CLIENTS = 4;
/** Streams per client: each client ingests as its own agent into its own sessions. */
const STREAMS_PER_CLIENT = 25;
const TARGET_P50_MS = 50;
/** Free-text needles: two tool names, a phrase from tool arguments, and one that matches nothing. */
const NEEDLES = ['crm.lookup', 'billing.refund', 'duplicate charge', 'no such text anywhere'];

interface Sizes {
  ingestEvents: number;
  requests: number;
  warmup: number;
}

function sizes(cfg: Config): Sizes {
  return cfg.quick ? { ingestEvents: 20_000, requests: 50, warmup: 5 } : { ingestEvents: 100_000, requests: 200, warmup: 20 };
}

// ---------------------------------------------------------------- (a) ingest

/** Each client's events: the same rows on both sides (the HTTP side's identity comes from its key). */
function clientEvents(total: number): AppendRequest[][] {
  const per = Math.floor(total / CLIENTS);
  return Array.from({ length: CLIENTS }, (_, c) => toolCallInputs(per, STREAMS_PER_CLIENT, 9000 + c).map((e) => ({ ...e, agent: { id: `ingest-${c}` } })));
}

function batchesOf<T>(xs: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

interface Served {
  child: ChildProcess;
  url: string;
}

/** Starts `witness serve` on a free port and waits for its "listening on" line. */
async function serve(file: string): Promise<Served> {
  const child = spawn(process.execPath, [BIN, 'serve', '--store', `sqlite:${file}`, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`witness serve did not start within 30 s: ${err}`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`witness serve exited with ${String(code)}: ${err}`));
    });
  });
  return { child, url };
}

async function stop(s: Served): Promise<void> {
  if (s.child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => s.child.once('exit', () => resolve()));
  s.child.kill('SIGTERM');
  await exited;
}

/** One HTTP run: a fresh ledger with one agent key per client, a fresh server; returns events/s. */
async function httpRun(events: AppendRequest[][]): Promise<{ evs: number; seconds: number }> {
  const file = freshDbPath('server-ingest-http');
  const ledger = await openLedger(`sqlite:${file}`);
  const keys: string[] = [];
  for (let c = 0; c < CLIENTS; c++) keys.push((await createKey(ledger, { role: 'agent', agent: `ingest-${c}`, name: `bench client ${c}` }, { who: 'bench', recorder: 'cli' })).key);
  await ledger.close();
  const served = await serve(file);
  try {
    const bodies = events.map((evs) =>
      batchesOf(
        evs.map(({ agent: _agent, ...rest }) => rest),
        BATCH,
      ).map((b) => JSON.stringify({ events: b })),
    );
    gc();
    const t = performance.now();
    await Promise.all(
      bodies.map(async (batches, c) => {
        for (const body of batches) {
          const res = await fetch(`${served.url}/v1/events`, { method: 'POST', headers: { authorization: `Bearer ${keys[c]!}`, 'content-type': 'application/json' }, body });
          if (res.status !== 201) throw new Error(`ingest answered ${res.status}: ${await res.text()}`);
          await res.arrayBuffer();
        }
      }),
    );
    const seconds = (performance.now() - t) / 1000;
    const n = events.reduce((a, e) => a + e.length, 0);
    return { evs: n / seconds, seconds };
  } finally {
    await stop(served);
    removeDb(file);
  }
}

/** The same events appended in this process, 4 callers at once, batches of 500. */
async function directRun(events: AppendRequest[][]): Promise<{ evs: number; seconds: number }> {
  const file = freshDbPath('server-ingest-direct');
  const ledger = await openLedger(`sqlite:${file}`);
  try {
    const batches = events.map((evs) => batchesOf(evs, BATCH));
    gc();
    const t = performance.now();
    await Promise.all(
      batches.map(async (bs) => {
        for (const b of bs) await ledger.append(b);
      }),
    );
    const seconds = (performance.now() - t) / 1000;
    const n = events.reduce((a, e) => a + e.length, 0);
    return { evs: n / seconds, seconds };
  } finally {
    await ledger.close();
    removeDb(file);
  }
}

// ---------------------------------------------------------------- (b) reads on the large ledger

interface Timed {
  label: string;
  lat: number[];
  bytes: number[];
  /** Events in each JSON answer (none for HTML pages). */
  returned: number[];
  statuses: Map<number, number>;
}

type App = ReturnType<typeof createServer>;

async function timeRequests(app: App, key: string, label: string, urls: string[], warmup: number): Promise<Timed> {
  const out: Timed = { label, lat: [], bytes: [], returned: [], statuses: new Map() };
  const headers = { authorization: `Bearer ${key}` };
  for (const u of urls.slice(0, warmup)) await (await app.request(u, { headers })).arrayBuffer();
  gc();
  for (const u of urls) {
    const t = performance.now();
    const res = await app.request(u, { headers });
    const body = await res.arrayBuffer();
    out.lat.push(performance.now() - t);
    out.bytes.push(body.byteLength);
    out.statuses.set(res.status, (out.statuses.get(res.status) ?? 0) + 1);
    if (res.headers.get('content-type')?.startsWith('application/json') === true) out.returned.push((JSON.parse(Buffer.from(body).toString('utf8')) as { events?: unknown[] }).events?.length ?? 0);
  }
  return out;
}

function search(f: QueryFilter, extra: Record<string, string> = {}): string {
  const p = new URLSearchParams({ agent: f.agent!, since: f.since!, until: f.until!, ...extra });
  return `/v1/events?${p.toString()}`;
}

// ---------------------------------------------------------------- the section

export async function benchServer(cfg: Config, ledgers: LargeLedgers): Promise<Section> {
  const sz = sizes(cfg);
  const reps = cfg.reps;

  // (a) HTTP vs direct, interleaved per repetition, each on a fresh ledger.
  const events = clientEvents(sz.ingestEvents);
  const perRep = events.reduce((a, e) => a + e.length, 0);
  const http: number[] = [];
  const direct: number[] = [];
  const ratios: number[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const h = await httpRun(events);
    const d = await directRun(events);
    http.push(h.evs);
    direct.push(d.evs);
    ratios.push(h.evs / d.evs);
    log(`server: ingest rep ${rep + 1}/${reps}: HTTP ${fmtInt(h.evs)} ev/s, direct ${fmtInt(d.evs)} ev/s (${fmtRatio(h.evs / d.evs)})`);
  }

  // (b) A copy of the shared ledger, so the audit.access events these reads append do not change it for anyone else.
  const n = cfg.query.events;
  const shared = await ledgers.path(n);
  const t0 = performance.now();
  const file = path.join(benchDir(), `server-reads-${n}.db`);
  fs.copyFileSync(shared, file);
  const copySeconds = (performance.now() - t0) / 1000;
  const r = rng(4242);
  const raw = new Database(file, { readonly: true });
  const streams = raw.prepare('SELECT stream FROM events WHERE seq = 0 AND stream NOT LIKE ? ORDER BY pos').pluck().all('witness.%') as string[];
  const pickStreams = Array.from({ length: sz.requests }, () => streams[Math.floor(r() * streams.length)]!);
  const lengths = raw.prepare('SELECT count(*) FROM events WHERE stream = ?').pluck();
  const sessionLen = pickStreams.map((s) => lengths.get(s) as number);
  raw.close();
  const ledger: Ledger = await openLedger(`sqlite:${file}`, { create: false });
  const auditor = (await createKey(ledger, { role: 'auditor', name: 'bench auditor' }, { who: 'bench', recorder: 'cli' })).key;
  const app = createServer({ ledger });
  const sizeBefore = ledger.info.size;

  const runs: Timed[] = [];
  const agentWindows = queries('agent', sz.requests, cfg.query.agents, 7000);
  runs.push(
    await timeRequests(
      app,
      auditor,
      'viewer session page `GET /session?id=…`',
      pickStreams.map((s) => `/session?id=${encodeURIComponent(s)}`),
      sz.warmup,
    ),
  );
  runs.push(
    await timeRequests(
      app,
      auditor,
      'API first page of a session `GET /v1/sessions/:stream` (limit 200)',
      pickStreams.map((s) => `/v1/sessions/${encodeURIComponent(s)}`),
      sz.warmup,
    ),
  );
  runs.push(
    await timeRequests(
      app,
      auditor,
      'event search `GET /v1/events?agent&since&until` (limit 50)',
      agentWindows.map((q) => search(q)),
      sz.warmup,
    ),
  );
  runs.push(
    await timeRequests(
      app,
      auditor,
      'event search with free text `…&q=` (limit 50)',
      agentWindows.map((q, i) => search(q, { q: NEEDLES[i % NEEDLES.length]! })),
      sz.warmup,
    ),
  );
  for (const t of runs) log(`server: ${t.label}: p50 ${fmtMs(percentile(t.lat, 50))} ms, p99 ${fmtMs(percentile(t.lat, 99))} ms`);
  const accessEvents = ledger.info.size - sizeBefore;
  await ledger.close();
  removeDb(file);

  const b = ledgers.info;
  const statusText = (t: Timed) => [...t.statuses].map(([s, c]) => `${c}× ${s}`).join(', ');
  const readTable = mdTable(
    ['request (auditor key, in process)', 'requests', 'p50 ms', 'p99 ms', 'max ms', 'median response KiB', 'events returned (mean)', 'statuses'],
    runs.map((t) => [
      t.label,
      fmtInt(t.lat.length),
      fmtMs(percentile(t.lat, 50)),
      fmtMs(percentile(t.lat, 99)),
      fmtMs(max(t.lat)),
      (median(t.bytes) / 1024).toFixed(1),
      t.returned.length === 0 ? '— (HTML)' : (t.returned.reduce((a, x) => a + x, 0) / t.returned.length).toFixed(1),
      statusText(t),
    ]),
  );
  const ingestTable = mdTable(
    ['side', 'events/s (median)', 'range over reps'],
    [
      [`HTTP: \`witness serve\` child process, ${CLIENTS} clients × batches of ${BATCH} over loopback`, fmtInt(median(http)), `${fmtInt(Math.min(...http))} – ${fmtInt(Math.max(...http))}`],
      [`direct: \`openLedger(…).append\` in this process, ${CLIENTS} callers × batches of ${BATCH}`, fmtInt(median(direct)), `${fmtInt(Math.min(...direct))} – ${fmtInt(Math.max(...direct))}`],
      ['HTTP ÷ direct (median of per-rep ratios)', fmtRatio(median(ratios)), `${fmtRatio(Math.min(...ratios))} – ${fmtRatio(Math.max(...ratios))}`],
    ],
  );

  const [page, apiPage, plain, text] = runs as [Timed, Timed, Timed, Timed];
  const verdict = (what: string, t: Timed): Verdict => {
    const p50 = percentile(t.lat, 50);
    const ok = p50 <= TARGET_P50_MS && (t.statuses.get(200) ?? 0) === t.lat.length;
    return {
      target: `${what} on ${fmtInt(n)} events: server time p50 ≤ ${TARGET_P50_MS} ms`,
      measured: `p50 ${fmtMs(p50)} ms, p99 ${fmtMs(percentile(t.lat, 99))} ms (${fmtInt(t.lat.length)} requests)`,
      met: ok,
      ...(ok ? {} : { note: (t.statuses.get(200) ?? 0) !== t.lat.length ? `not every request succeeded: ${statusText(t)}.` : 'see the table for p99 and the response sizes.' }),
    };
  };
  const verdicts: Verdict[] = [
    verdict('session page (viewer)', page),
    verdict("a session's first page over the API", apiPage),
    verdict('event search, agent + time window', plain),
    verdict('event search, agent + time window + free text', text),
  ];

  return {
    id: 'server',
    title: '9. The server: HTTP ingest, session page and event search',
    method: [
      `**Ingest.** ${reps} repetitions, interleaved, each on a fresh SQLite ledger: ${fmtInt(perRep)} tool.call events (~300-byte payloads, bench/events.ts) split over ${CLIENTS} clients, each its own agent key and ${STREAMS_PER_CLIENT} sessions, posting batches of ${BATCH} one after another (\`fetch\`, keep-alive) to a \`witness serve\` started as a child process for the repetition (start-up not timed; it seals in the background every 10 s, as it does for users). The baseline appends the same events, in the same batches, 4 callers at once, with \`openLedger(…).append\` in the benchmark's process: the store call the SDK's writer and the server both end in, without HTTP, JSON, key checks or the server's stamping. Timed from the first request to the last acknowledgement.`,
      `**Reads.** On a copy of the shared ledger of ${fmtInt(n)} events (${b === undefined ? 'built earlier in this run' : `built in ${b.seconds.toFixed(1)} s for this run, shared with the other sections`}; the copy took ${copySeconds.toFixed(1)} s, so the audit.access events written by these reads change no other section's ledger), \`createServer({ ledger })\` answers \`app.request()\` with an auditor's key in the benchmark's process. **Server time is measured in process**: from \`app.request()\` until the response body is read, so it covers the key check, schema, store reads, the audit.access event each read appends (a committed write), and JSON or HTML rendering, but not the socket or HTTP parsing. ${fmtInt(sz.warmup)} warm-up requests, then ${fmtInt(sz.requests)} timed per row. Sessions are drawn at random from the ledger's ${fmtInt(streams.length)} sessions (median ${fmtInt(median(sessionLen))} events each, as the generator makes them 20–80 long); searches use a random agent of ${cfg.query.agents} and a window of 1 hour to 7 days; free text cycles through ${NEEDLES.map((x) => `\`${x}\``).join(', ')} (the server filters the store's pages for text, reading at most 10,000 events per request). ${fmtInt(accessEvents)} audit.access events were appended during the reads.`,
      cfg.quick ? `**Quick run**: ${fmtInt(perRep)} events per ingest repetition and a ledger of ${fmtInt(n)} events, not 1,000,000: the read verdicts below are not the issue's.` : '',
    ].filter((x) => x !== ''),
    body: [ingestTable, readTable],
    verdicts,
  };
}
