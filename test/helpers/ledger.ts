import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { openWitness, type Witness } from '../../src/index.js';
import { ledgerOf } from '../../src/recorder/index.js';
import { canonicalize, eventHash, payloadDigest, type StoredEvent, type VerifyReport } from '../../src/core/index.js';
import { SqliteLedger, sidecarPaths, verifyLedger, type CheckpointRow, type RawEventRow, type VerifyLedgerOptions } from '../../src/store/index.js';
import { tempDb } from './tmp.js';

/**
 * A small real ledger for tamper and CLI tests, recorded through the public SDK:
 *
 *   session a  support-bot  start, llm.call, tool.call, tool.result, note, session.end   (ended)
 *   session b  billing-bot  start, capture (references an artifact), tool.call, tool.result, session.end (ended)
 *   session c  ops-bot      start, note                                                   (still open)
 *
 * Events of the three sessions interleave in the global order, and three checkpoints are sealed
 * along the way (each later one with a consistency proof from the one before), the last covering
 * every event.
 */
export interface BuiltLedger {
  file: string;
  origin: string;
  /** Verifier key of the ledger's own signing key (what an auditor pins). */
  vkey: string;
  /** The private signing key (the `.key` file beside the database). */
  signerKey: string;
  sessions: { a: string; b: string; c: string };
  artifact: { sha256: string; bytes: Buffer };
  checkpoints: CheckpointRow[];
  size: number;
  /** Global position of (session, seq). */
  pos: (stream: string, seq: number) => number;
}

export const PNG_BYTES = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8ffff3f0005fe02fea7d6a4e20000000049454e44ae426082', 'hex');

/**
 * The recorder's own driver, for tests that look at what it wrote or break it on purpose. Witness
 * keeps its ledger private (callers get `reader`, which cannot write, seal or close); a test of the
 * driver under the recorder reaches it here, deliberately, through the internal `ledgerOf`.
 */
export function driverOf(w: Witness): SqliteLedger {
  return ledgerOf(w) as SqliteLedger;
}

export async function buildLedger(dir: string): Promise<BuiltLedger> {
  const file = tempDb(dir);
  const errors: unknown[] = [];
  const w = await openWitness({ store: `sqlite:${file}`, name: 'tamper', strict: true, seal: { enabled: false }, onError: (e) => errors.push(e) });
  const sealed: CheckpointRow[] = [];
  const seal = async () => {
    await w.flush();
    const cp = await driverOf(w).seal();
    if (cp === null) throw new Error('expected a checkpoint');
    sealed.push(cp);
  };
  let sessions: BuiltLedger['sessions'];
  let artifact: BuiltLedger['artifact'];
  try {
    const a = await w.session({ agent: { id: 'support-bot', version: '1.4.2' }, user: 'customer-12345', purpose: 'refund a duplicate charge' });
    const b = await w.session({ agent: { id: 'billing-bot' }, purpose: 'issue the refund' });
    await a.llmCall({ model: 'claude', input: [{ role: 'user', content: 'I was charged twice' }], output: 'Let me look that up.' });
    await a.tool('crm.lookup', { customer: 'customer-12345' }, () => ({ name: 'J. Doe', orders: 2 }));
    await seal(); // checkpoint 1: size 5

    const ref = await driverOf(w).putArtifact(PNG_BYTES, 'image/png', 'before');
    artifact = { sha256: ref.sha256, bytes: PNG_BYTES };
    await b.record('capture', { role: 'before', url: 'https://billing.example/orders/A-1042' }, { artifacts: [ref], resource: 'billing', action: 'screenshot' });
    await b.tool('billing.refund', { order: 'A-1042', amount: 50 }, () => ({ refund_id: 'R-1', status: 'succeeded' }));
    await a.note('refund requested from billing');
    await seal(); // checkpoint 2: size 9

    await a.end({ finalOutput: 'Refunded.' });
    const c = await w.session({ agent: { id: 'ops-bot' } });
    await b.end();
    await c.note('nightly check started');
    await seal(); // checkpoint 3: size 13
    sessions = { a: a.id, b: b.id, c: c.id };
  } finally {
    await w.close();
  }
  if (errors.length > 0) throw new Error(`recorder errors: ${errors.map(String).join('; ')}`);
  return describeLedger(file, sessions, artifact);
}

function describeLedger(file: string, sessions: BuiltLedger['sessions'], artifact: BuiltLedger['artifact']): BuiltLedger {
  const db = new Database(file, { readonly: true });
  try {
    const origin = db.prepare(`SELECT value FROM meta WHERE key = 'origin'`).pluck().get() as string;
    const rows = db.prepare('SELECT pos, stream, seq FROM events ORDER BY pos').all() as Array<{ pos: number; stream: string; seq: number }>;
    const checkpoints = (db.prepare('SELECT * FROM checkpoints ORDER BY id').all() as Array<Record<string, unknown>>).map((r): CheckpointRow => ({
      id: r['id'] as number,
      size: r['size'] as number,
      root: r['root'] as Buffer,
      note: r['note'] as string,
      ts: r['ts'] as string,
      consistency: JSON.parse(r['consistency'] as string) as string[],
      prevSize: r['prev_size'] as number | null,
    }));
    const index = new Map(rows.map((r) => [`${r.stream}#${r.seq}`, r.pos]));
    const { key, pub } = sidecarPaths(file);
    return {
      file,
      origin,
      vkey: fs.readFileSync(pub, 'utf8').trim(),
      signerKey: fs.readFileSync(key, 'utf8').trim(),
      sessions,
      artifact,
      checkpoints,
      size: rows.length,
      pos: (stream, seq) => {
        const p = index.get(`${stream}#${seq}`);
        if (p === undefined) throw new Error(`no event ${stream}#${seq}`);
        return p;
      },
    };
  } finally {
    db.close();
  }
}

/** Copies a ledger with its key, public key, sealer's record and artifacts, so each test tampers with its own. */
export function copyLedger(src: BuiltLedger, dir: string): BuiltLedger {
  const file = tempDb(dir);
  for (const suffix of ['', '-wal', '-shm']) {
    if (fs.existsSync(src.file + suffix)) fs.copyFileSync(src.file + suffix, file + suffix);
  }
  const from = sidecarPaths(src.file);
  const to = sidecarPaths(file);
  fs.copyFileSync(from.key, to.key);
  fs.chmodSync(to.key, 0o600);
  fs.copyFileSync(from.pub, to.pub);
  // The sealer's record travels with its ledger: without it, sealing the copy is refused until adopted.
  if (fs.existsSync(from.sealed)) fs.copyFileSync(from.sealed, to.sealed);
  if (fs.existsSync(from.artifacts)) fs.cpSync(from.artifacts, to.artifacts, { recursive: true });
  return { ...src, file };
}

/**
 * Edits the database the way an attacker with write access to the file would: with raw SQL, after
 * dropping the append-only triggers.
 */
export function tamper(file: string, edit: (db: Database.Database) => void): void {
  const db = new Database(file);
  try {
    const triggers = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'trigger'`).pluck().all() as string[];
    for (const t of triggers) db.exec(`DROP TRIGGER "${t}"`);
    db.transaction(() => edit(db))();
  } finally {
    db.close();
  }
}

/**
 * Inside `tamper`: rewrites stream `stream` from `fromSeq` on so that its chain verifies again, as
 * an attacker who can write the database would: new payload for one event, then every later header
 * re-linked and re-hashed, session.end's last_hash recomputed. Only what is signed (checkpoints)
 * or kept outside the database can still tell.
 */
export function rewriteStream(db: Database.Database, stream: string, fromSeq: number, newData: Record<string, unknown>): void {
  const rows = db.prepare('SELECT * FROM events WHERE stream = ? ORDER BY seq').all(stream) as RawEventRow[];
  let prev: Buffer = rows[fromSeq - 1]!.hash;
  for (const r of rows.slice(fromSeq)) {
    const h = JSON.parse(r.header) as Record<string, unknown>;
    let data = r.data!;
    if (r.seq === fromSeq) data = canonicalize(newData);
    if (h['kind'] === 'session.end') data = canonicalize({ ...(JSON.parse(data) as Record<string, unknown>), last_hash: prev.toString('hex') });
    h['payload_digest'] = payloadDigest(r.salt!, data).toString('hex');
    h['prev'] = prev.toString('hex');
    const header = canonicalize(h);
    const hash = eventHash(prev, header);
    db.prepare('UPDATE events SET header = ?, data = ?, hash = ? WHERE pos = ?').run(header, data, hash, r.pos);
    prev = hash;
  }
}

/** Opens the ledger read-only, as `witness verify` does, and verifies it. */
export async function verifyFile(file: string, options: VerifyLedgerOptions = {}): Promise<VerifyReport> {
  const ledger = SqliteLedger.open({ path: file, create: false, readonly: true });
  try {
    return await verifyLedger(ledger, options);
  } finally {
    await ledger.close();
  }
}

/** Every event of a ledger file (up to 10,000), read-only, in global position order. */
export async function readEvents(file: string): Promise<Array<StoredEvent & { pos: number }>> {
  const ledger = SqliteLedger.open({ path: file, create: false, readonly: true });
  try {
    return [...(await ledger.query({ limit: 10_000 })).events].sort((a, b) => a.pos - b.pos);
  } finally {
    await ledger.close();
  }
}

/** Raw rows in position order. */
export function readRows(file: string): RawEventRow[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare('SELECT * FROM events ORDER BY pos').all() as RawEventRow[];
  } finally {
    db.close();
  }
}

export function artifactFile(file: string, sha256: string): string {
  return path.join(sidecarPaths(file).artifacts, sha256.slice(0, 2), sha256);
}

/** A compact view of a report's failures, for readable assertion diffs. */
export function where(r: VerifyReport): Array<{ code: string; stream?: string; seq?: number; leaf?: number; checkpoint?: number; artifact?: string }> {
  return r.failures.map(({ code, stream, seq, leaf, checkpoint, artifact }) => ({
    code,
    ...(stream === undefined ? {} : { stream }),
    ...(seq === undefined ? {} : { seq }),
    ...(leaf === undefined ? {} : { leaf }),
    ...(checkpoint === undefined ? {} : { checkpoint }),
    ...(artifact === undefined ? {} : { artifact }),
  }));
}

// ------------------------------------------------------------------ running the CLI

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(REPO_ROOT, 'bin', 'witness.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `witness …` in this process through `main(argv, io)`, capturing everything it prints. */
export async function runCli(args: string[]): Promise<CliResult> {
  const { main } = await import('../../src/cli/index.js');
  let stdout = '';
  let stderr = '';
  const io = {
    out: (t: string) => void (stdout += t.endsWith('\n') ? t : `${t}\n`),
    err: (t: string) => void (stderr += t.endsWith('\n') ? t : `${t}\n`),
    isTTY: false,
  };
  const code = await main(['node', 'witness', ...args], io);
  return { code, stdout, stderr };
}

/** Runs the real binary (bin/witness.js → dist/), as a user would. Needs `npm run build` first. */
export function runBin(args: string[], options: { env?: Record<string, string>; cwd?: string } = {}): Promise<CliResult> {
  if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'index.js'))) {
    throw new Error('dist/ is missing: run `npx tsc -p tsconfig.build.json` before these tests.');
  }
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  for (const k of ['WITNESS_STORE', 'WITNESS_SIGNING_KEY']) if (options.env?.[k] === undefined) delete env[k];
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env, cwd: options.cwd ?? REPO_ROOT, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * One sentence a person can act on: one line, no second sentence, ends with a full stop. Returns
 * the sentence (a CLI's `witness: ` prefix and final newline removed) for further checks.
 */
export function oneSentence(text: string): string {
  const s = text.replace(/^witness: /, '').replace(/\n$/, '');
  if (s.length <= 10) throw new Error(`expected a sentence, got ${JSON.stringify(text)}`);
  if (/\n/.test(s)) throw new Error(`expected one line, got ${JSON.stringify(text)}`);
  if (!/\.$/.test(s)) throw new Error(`expected a full stop at the end of ${JSON.stringify(text)}`);
  if (/[.!?]\s+[A-Z]/.test(s)) throw new Error(`expected one sentence, got ${JSON.stringify(text)}`);
  if (/\bat .*:\d+:\d+\)?$|^\s+at /m.test(text)) throw new Error(`expected no stack trace, got ${JSON.stringify(text)}`);
  return s;
}
