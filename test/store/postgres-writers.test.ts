import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLedger } from '../../src/store/index.js';
import { tempDir } from '../helpers/tmp.js';
import { PG_URL, requirePostgres } from './postgres-driver.js';

/**
 * Many writer processes on one PostgreSQL ledger, as many gateways and recorders on many hosts
 * would be: each child (test/fixtures/children/ledger-writer.mjs) opens the ledger with dist's
 * openLedger(url). Four write two sessions each and two share one session, 10,000 events each in
 * batches of 100–500 (the recorder's group commit), while a sealer process seals in a loop. Then
 * the same with the sealer killed with SIGKILL while it holds the sealer lock and writers' backends
 * terminated mid-batch; and a batch whose COMMIT reached the server but whose reply never came
 * back. Everything is checked against the rows themselves and by the real `witness verify`.
 */
const CHILD = fileURLToPath(new URL('../fixtures/children/ledger-writer.mjs', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/witness.js', import.meta.url));
const DIST = fileURLToPath(new URL('../../dist/store/index.js', import.meta.url));
const EVENTS = 10_000;
/** Two runs of 60,000 events take 20–35 s each on this machine's two shared cores. */
const HEAVY_MS = 150_000;

const dir = tempDir('witness-pg-writers-');
const schemas: string[] = [];
const children: ChildProcess[] = [];

beforeAll(async () => {
  if (!fs.existsSync(DIST)) throw new Error('dist/ is missing: run `npx tsc -p tsconfig.build.json` before the PostgreSQL writer tests.');
  await requirePostgres();
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await sql(async (c) => {
    for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
  });
});

interface Fresh {
  schema: string;
  url: string;
  keyFile: string;
  env: Record<string, string>;
}

/** A new ledger in a schema of its own, created (with its key) by this process, as `witness init` would. */
async function fresh(): Promise<Fresh> {
  const schema = `wt_writers_${randomBytes(5).toString('hex')}`;
  schemas.push(schema);
  const url = `${PG_URL}?schema=${schema}`;
  const keyFile = path.join(dir, `${schema}.key`);
  await (await openLedger(url, { keyFile })).close();
  // Every process finds the key and the sealer's record by the environment, as a host would.
  return { schema, url, keyFile, env: { WITNESS_SIGNING_KEY_FILE: keyFile } };
}

async function sql<T>(fn: (c: pg.Client) => Promise<T>, schema?: string): Promise<T> {
  const c = new pg.Client({ connectionString: PG_URL, ...(schema === undefined ? {} : { options: `-c search_path=${schema}` }) });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** A child process and its output lines so far (only whole lines: one cut by a kill was never printed). */
class Child {
  readonly lines: string[] = [];
  stderr = '';
  acked = 0;
  readonly exited: Promise<number | null>;
  private readonly proc: ChildProcess;
  private partial = '';

  constructor(
    readonly name: string,
    args: string[],
    env: Record<string, string>,
  ) {
    // application_name (PGAPPNAME) lets the test find this process's backends in pg_stat_activity.
    this.proc = spawn(process.execPath, [CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env, PGAPPNAME: name } });
    children.push(this.proc);
    this.proc.stdout!.setEncoding('utf8');
    this.proc.stderr!.setEncoding('utf8');
    this.proc.stdout!.on('data', (chunk: string) => {
      const parts = (this.partial + chunk).split('\n');
      this.partial = parts.pop()!;
      for (const line of parts) {
        this.lines.push(line);
        if (line.startsWith('A ')) this.acked++;
      }
    });
    this.proc.stderr!.on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve, reject) => {
      this.proc.on('error', reject);
      this.proc.on('close', (code) => resolve(code));
    });
  }

  kill(signal: NodeJS.Signals): void {
    this.proc.kill(signal);
  }

  starting(prefix: string): string[] {
    return this.lines.filter((l) => l.startsWith(prefix));
  }

  checkpoints(): number[] {
    return this.starting('C ').map((l) => Number(l.slice(2)));
  }
}

async function until(what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Four writers on two sessions each and two on one shared session, `events` each, batches of 100–500. */
function startWriters(f: Fresh, events = EVENTS, url = f.url): Child[] {
  const own = ['w1', 'w2', 'w3', 'w4'].map((w) => new Child(`${f.schema}:${w}`, ['write', url, w, `${w}-a,${w}-b`, String(events), '100', '500'], f.env));
  const shared = ['s1', 's2'].map((w) => new Child(`${f.schema}:${w}`, ['write', url, w, 'shared', String(events), '100', '500'], f.env));
  return [...own, ...shared];
}

/**
 * A TCP proxy in front of the server that loses one reply: once armed, the first CommandComplete
 * "COMMIT" the server sends is not passed on, and both sides of that connection are closed. The
 * server has committed by then (it answers COMMIT only after the commit is durable), so the client
 * sees a cut connection for a transaction that did commit: the outcome of its batch is unknown to it.
 */
async function commitReplyCutter(): Promise<{ url: (schema: string) => string; arm: () => void; cuts: () => number; close: () => Promise<void> }> {
  const target = new URL(PG_URL);
  let armed = false;
  let cuts = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream);
    // Server to client, message by message (a type byte, then a length that counts itself).
    let pending = Buffer.alloc(0);
    upstream.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      let at = 0;
      while (pending.length - at >= 5) {
        const length = pending.readUInt32BE(at + 1);
        if (pending.length - at < 1 + length) break;
        const type = String.fromCharCode(pending[at]!);
        if (armed && type === 'C' && pending.toString('utf8', at + 5, at + length).replace(/\0$/, '') === 'COMMIT') {
          armed = false;
          cuts++;
          client.write(pending.subarray(0, at));
          client.destroy();
          upstream.destroy();
          return;
        }
        at += 1 + length;
      }
      client.write(pending.subarray(0, at));
      pending = pending.subarray(at);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: (schema) => {
      const u = new URL(PG_URL);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      u.searchParams.set('schema', schema);
      return u.toString();
    },
    arm: () => (armed = true),
    cuts: () => cuts,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

interface Receipt {
  id: string;
  stream: string;
  seq: number;
  pos: number;
  hash: string;
}

function receiptsOf(children: Child[]): Receipt[] {
  return children.flatMap((c) =>
    c.starting('A ').map((l) => {
      const [, id, stream, seq, pos, hash] = l.split(' ');
      return { id: id!, stream: stream!, seq: Number(seq), pos: Number(pos), hash: hash! };
    }),
  );
}

/**
 * What the rows themselves say, checked without the driver: every acknowledged receipt's event is
 * stored once with its stream, seq, position and hash; no event text is stored twice (a batch
 * written again under new ids would be); positions are 0..n-1; each session's seqs are 0..k-1 and
 * each event's prev is the hash of the one before (no fork). Returns the number of events.
 */
async function expectOneHistory(f: Fresh, acked: Receipt[]): Promise<number> {
  const rows = await sql(
    async (c) =>
      (
        await c.query<{ pos: string; id: string; stream: string; seq: string; hash: string; header: string; data: string }>(
          `SELECT pos, id, stream, seq, encode(hash, 'hex') AS hash, header, data FROM events ORDER BY pos`,
        )
      ).rows,
    f.schema,
  );
  const gap = rows.findIndex((r, i) => Number(r.pos) !== i);
  expect(gap, 'the first position out of 0..n-1').toBe(-1);
  const byId = new Map(rows.map((r) => [r.id, r]));
  expect(byId.size, 'events with the same id').toBe(rows.length);
  const wrong = acked.filter((a) => {
    const r = byId.get(a.id);
    return r === undefined || r.stream !== a.stream || Number(r.seq) !== a.seq || Number(r.pos) !== a.pos || r.hash !== a.hash;
  });
  expect(wrong.slice(0, 5), `${wrong.length} acknowledged receipt(s) missing or different`).toEqual([]);
  expect(new Set(acked.map((a) => a.id)).size, 'an id acknowledged twice').toBe(acked.length);
  const texts = new Map<string, number>();
  for (const r of rows) texts.set(r.data, (texts.get(r.data) ?? 0) + 1);
  const twice = [...texts].filter(([, n]) => n > 1).map(([t]) => t);
  expect(twice.slice(0, 5), `${twice.length} event text(s) stored more than once`).toEqual([]);
  const heads = new Map<string, { seq: number; hash: string }>();
  const forks: string[] = [];
  for (const r of rows) {
    const head = heads.get(r.stream);
    const prev = (JSON.parse(r.header) as { prev: string }).prev;
    if (Number(r.seq) !== (head?.seq ?? -1) + 1 || (head !== undefined && prev !== head.hash)) forks.push(`${r.stream}#${r.seq} at ${r.pos}`);
    heads.set(r.stream, { seq: Number(r.seq), hash: r.hash });
  }
  expect(forks.slice(0, 5), 'events out of their session order or not linked to the one before').toEqual([]);
  return rows.length;
}

function witness(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, maxBuffer: 1 << 26 }, (err, stdout, stderr) =>
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }),
    );
  });
}

/** The real `witness seal` then `witness verify --json` on the ledger's URL: intact, every event sealed. */
async function expectSealsAndVerifies(f: Fresh, events: number): Promise<void> {
  const seal = await witness(['seal', '--store', f.url], f.env);
  expect(seal.stderr, 'witness seal').toBe('');
  expect(seal.code, 'witness seal').toBe(0);
  const verify = await witness(['verify', '--store', f.url, '--json'], f.env);
  expect(verify.stderr, 'witness verify').toBe('');
  const report = JSON.parse(verify.stdout) as { ok: boolean; failures: unknown[]; events: number; sealedSize: number; unsealed: number };
  expect(report.failures).toEqual([]);
  expect(report).toMatchObject({ ok: true, events, sealedSize: events, unsealed: 0 });
  expect(verify.code, 'witness verify').toBe(0);
  // One linear checkpoint history, whoever sealed: each extends the one before.
  const cps = await sql(async (c) => (await c.query<{ size: string; prev_size: string | null }>('SELECT size, prev_size FROM checkpoints ORDER BY id')).rows, f.schema);
  for (let i = 1; i < cps.length; i++) expect(Number(cps[i]!.prev_size), `checkpoint ${i + 1}`).toBe(Number(cps[i - 1]!.size));
  expect(Number(cps.at(-1)!.size)).toBe(events);
}

async function expectWritersDone(writers: Child[], events = EVENTS): Promise<void> {
  const codes = await Promise.all(writers.map((w) => w.exited));
  for (const [i, w] of writers.entries()) {
    expect(w.stderr, w.name).toBe('');
    expect(w.starting('L '), `${w.name}: batches given up`).toEqual([]);
    expect(codes[i], w.name).toBe(0);
    expect(w.lines.at(-1), w.name).toBe(`DONE ${events}`);
    expect(w.acked, w.name).toBe(events);
  }
}

describe('many writer processes on one PostgreSQL ledger', () => {
  it(
    'loses, duplicates and forks nothing when six processes append 10,000 events each at once while another seals, and `witness verify` passes',
    async () => {
      const f = await fresh();
      const sealer = new Child(`${f.schema}:sealer`, ['seal', f.url], f.env);
      const writers = startWriters(f);
      await expectWritersDone(writers);
      sealer.kill('SIGTERM');
      expect(await sealer.exited, sealer.stderr).toBe(0);
      expect(sealer.checkpoints().length, 'checkpoints the sealer wrote while the writers ran').toBeGreaterThan(0);
      const acked = receiptsOf(writers);
      expect(await expectOneHistory(f, acked)).toBe(6 * EVENTS);
      expect(acked).toHaveLength(6 * EVENTS);
      await expectSealsAndVerifies(f, 6 * EVENTS);
    },
    HEAVY_MS,
  );

  it(
    "keeps every acknowledged event once when the sealer is killed mid-seal and writers' backends are terminated mid-batch; another process takes over sealing and `witness verify` passes",
    async () => {
      const f = await fresh();
      const first = new Child(`${f.schema}:sealer1`, ['seal', f.url], f.env);
      const writers = startWriters(f);
      const total = () => writers.reduce((n, w) => n + w.acked, 0);

      // Writers' connections cut mid-batch: each backend terminated while it waits for the ledger's
      // append lock inside its batch's transaction.
      const cut = [writers[1]!, writers[4]!];
      for (const w of cut) {
        await until(`${w.name} inside a batch`, async () =>
          sql(
            async (c) =>
              (await c.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND xact_start IS NOT NULL AND wait_event_type = 'Lock'`, [w.name])).rowCount! > 0,
          ),
        );
      }
      // Killed while it holds the ledger's sealer lock, i.e. inside a seal, after it has sealed once
      // (so the seal it dies in extends a checkpoint and a record).
      await until('a first checkpoint', () => first.checkpoints().length > 0 && total() > 6 * EVENTS * 0.15);
      const sealerLock = (app: string) =>
        sql(
          async (c) =>
            (await c.query(`SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = $1`, [app])).rowCount! > 0,
        );
      await until('the sealer inside a seal', () => sealerLock(first.name));
      first.kill('SIGKILL');
      const killedAt = Date.now();
      expect(await first.exited).toBe(null);
      const sealedBefore = Math.max(...first.checkpoints());
      // Another process takes over while the writers go on.
      const second = new Child(`${f.schema}:sealer2`, ['seal', f.url], f.env);
      await until('a checkpoint by the second sealer', () => second.checkpoints().some((s) => s > sealedBefore), 20_000);
      const takeoverMs = Date.now() - killedAt;

      await expectWritersDone(writers);
      for (const w of cut) expect(w.starting('R '), `${w.name} retried its batch`).toContain('R store_unavailable');
      second.kill('SIGTERM');
      expect(await second.exited, second.stderr).toBe(0);
      expect(takeoverMs).toBeLessThan(20_000);

      const acked = receiptsOf(writers);
      expect(await expectOneHistory(f, acked)).toBe(6 * EVENTS);
      await expectSealsAndVerifies(f, 6 * EVENTS);
    },
    HEAVY_MS,
  );

  // A client that loses the answer to its COMMIT cannot know whether the batch is in; it retries
  // the same prepared events (same ids), and the driver answers with the stored receipts.
  it('acknowledges a batch whose COMMIT reached the server but whose reply was lost, on the retry, and stores it once', async () => {
    const f = await fresh();
    const cutter = await commitReplyCutter();
    try {
      const events = 3000;
      const through = new Child(`${f.schema}:cut`, ['write', cutter.url(f.schema), 'cut', 'cut-a,cut-b', String(events), '100', '500'], f.env);
      const direct = new Child(`${f.schema}:direct`, ['write', f.url, 'direct', 'direct-a', String(events), '100', '500'], f.env);
      await until('a first batch through the proxy', () => through.acked > 0);
      cutter.arm();
      await until('a COMMIT reply cut', () => cutter.cuts() === 1);
      await Promise.all([through.exited, direct.exited]);
      expect(direct.stderr, 'the writer on a direct connection').toBe('');
      expect(through.stderr, 'the writer whose COMMIT reply was lost').toBe('');
      expect(through.starting('R '), 'the cut connection is an outage, so the batch is retried').toContain('R store_unavailable');
      const acked = receiptsOf([through, direct]);
      // Nothing acknowledged lost, nothing stored twice …
      const stored = await expectOneHistory(f, acked);
      // … and the retry of the committed batch returns its receipts rather than failing, so its
      // writer does not report as lost a batch that is in the ledger.
      expect(through.starting('L '), 'batches given up though committed').toEqual([]);
      expect(through.acked).toBe(events);
      expect(stored).toBe(2 * events);
      await expectSealsAndVerifies(f, 2 * events);
    } finally {
      await cutter.close();
    }
  });

  it('names the position of an UPDATE made after dropping the triggers, in `witness verify`', async () => {
    const f = await fresh();
    const l = await openLedger(f.url, { keyFile: f.keyFile });
    try {
      for (let b = 0; b < 4; b++) {
        await l.append(Array.from({ length: 50 }, (_, i) => ({ stream: i % 2 === 0 ? 'left' : 'right', agent: { id: 'bot' }, kind: 'note', data: { text: `note ${b * 50 + i}` } })));
        await l.seal();
      }
    } finally {
      await l.close();
    }
    const before = await witness(['verify', '--store', f.url], f.env);
    expect(before.stdout).toMatch(/is intact: 200 events in 2 session\(s\)/);
    // As the database owner could: drop the append-only trigger, then rewrite one payload.
    const row = await sql(async (c) => {
      await c.query('DROP TRIGGER events_no_change ON events');
      const r = (await c.query<{ stream: string; seq: string; data: string }>('SELECT stream, seq, data FROM events WHERE pos = 137')).rows[0]!;
      expect((await c.query('UPDATE events SET data = $1 WHERE pos = 137', [r.data.replace('note 137', 'note 731')])).rowCount).toBe(1);
      return r;
    }, f.schema);
    const after = await witness(['verify', '--store', f.url], f.env);
    expect(after.code).toBe(1);
    expect(after.stdout).toContain(`FAILED verification at session ${row.stream}, seq ${row.seq}, leaf 137: payload_mismatch`);
  });
});
