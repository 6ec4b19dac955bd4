import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import {
  LedgerVerifier,
  MAX_FAILURES,
  WitnessError,
  canonicalize,
  governanceRecordProblem,
  holdScopeOf,
  isWitnessError,
  keyFingerprint,
  parseVerifierKey,
  purgeRecordOf,
  retentionRuleOf,
  selectVerifiers,
  type ChunkResult,
  type HoldFact,
  type PurgeRecord,
  type RuleFact,
  type VerifyReport,
} from '../core/index.js';
import type { Ledger } from './ledger.js';
import { keyRotations } from './seal-keys.js';
import { VerifyPool, availableThreads, scanRange, workerEntry } from './verify-pool.js';

export interface VerifyLedgerOptions {
  /** Verifier keys (`name+hash+key`) the auditor pins; without them the ledger's own key (the first it recorded) is used. */
  trustedKeys?: string[];
  /** A signed checkpoint the auditor saved earlier. */
  against?: string;
  onProgress?: (done: number, total: number) => void;
  /**
   * Worker threads to verify with: 1 checks everything in this thread; by default one per core
   * once the ledger holds PARALLEL_MIN_EVENTS or more (below that, starting threads costs more
   * than it saves). Each thread opens the ledger read-only and checks chunks of it.
   */
  threads?: number;
  /** Where the threads open the ledger; by default `ledger.info.location` (a SQLite file). */
  url?: string;
  /** Events per chunk, a power of two (default 32,768); smaller only to test the chunk seams. */
  chunkEvents?: number;
  /** Called once the work is split: threads used (1 = in-thread), chunks, and how many chunks the threads' results stood for. */
  onPlan?: (plan: { threads: number; chunks: number }) => void;
  onChunks?: (stats: { fromThreads: number; rechecked: number }) => void;
}

/** Below this many events a ledger is verified in-thread by default. */
export const PARALLEL_MIN_EVENTS = 65_536;
const CHUNK_EVENTS = 32_768;

/**
 * Feeds every raw row of a ledger through the core verifier, then re-hashes the artifacts. The
 * sealer's record of its last checkpoint (kept outside the database) is checked like a saved
 * checkpoint; when there is none but checkpoints exist, a warning says where it was looked for.
 */
export async function verifyLedger(ledger: Ledger, options: VerifyLedgerOptions = {}): Promise<VerifyReport> {
  // Without a pinned key only the ledger's own key is trusted: the first one recorded. Nothing in
  // this version adds a second one, so another key in the table was put there by whoever wrote
  // the database; it is named and not trusted, and checkpoints signed only by it fail. An
  // unparseable stored key verifies nothing; checkpoints signed only by it fail below.
  const stored = await ledger.publicKeys();
  const [own, ...others] = stored;
  // Keys after the first come from key.rotated events only (seal-keys.ts), each trusted because the
  // key before it signed the checkpoint covering its event; a pinned key anywhere in that chain
  // extends the same trust to the rest of it, and checkpoints are judged by the keys' windows.
  const rotations = await keyRotations(ledger);
  // The first key is the ledger's own (its key table's first row), unless the auditor pinned keys.
  const firstKey = options.trustedKeys !== undefined && options.trustedKeys.length > 0 ? (rotations[0]?.oldKey ?? own?.vkey) : own?.vkey;
  const chain = firstKey === undefined ? [] : [firstKey, ...rotations.map((r) => r.newKey)];
  const pinnedInChain = options.trustedKeys?.some((k) => chain.includes(k.trim())) === true;
  const history = rotations.length > 0 && firstKey !== undefined && (options.trustedKeys === undefined || options.trustedKeys.length === 0 || pinnedInChain);
  const selected = selectVerifiers(options.trustedKeys, own === undefined ? [] : [own.vkey], 'ledger');
  const verifiers = history ? selectVerifiers(undefined, chain, selected.source).verifiers : selected.verifiers;
  const source = selected.source;
  const { record: sealRecord, warning } = await readRecord(ledger);
  const v = new LedgerVerifier({
    origin: ledger.info.origin,
    verifiers,
    keySource: source,
    ...(history && firstKey !== undefined ? { rotations: { firstKey, entries: rotations } } : {}),
    ...(options.against === undefined ? {} : { against: options.against }),
    ...(sealRecord === undefined ? {} : { sealRecord }),
  });
  v.setCheckpoints(await ledger.checkpoints());
  const purges = await readPurgeRecords(ledger);
  v.setPurges(purges.records, purges.records.length === 0 ? undefined : await readGovernance(ledger));
  // A query index the driver keeps beside the events is compared with them (see indexMismatches):
  // with worker threads, while they check the rows, which leaves this thread idle.
  let index: Promise<number[]> | undefined;
  const checkIndex = (): Promise<number[]> => {
    if (index === undefined) {
      index = ledger.queryIndexMismatches?.(MAX_FAILURES) ?? Promise.resolve([]);
      // Awaited below; until then a rejection must not count as unhandled.
      index.catch(() => undefined);
    }
    return index;
  };
  await feedRows(v, ledger, options, checkIndex);
  await checkArtifacts(v, ledger);
  v.indexMismatches(await checkIndex());
  const report = v.finish();
  report.warnings.push(...purges.notes);
  if (warning !== undefined) report.warnings.push(warning);
  if (sealRecord === undefined && warning === undefined && report.checkpoints > 0) {
    // Without the record a roll-back of the checkpoints to an older genuine one (rows and tree
    // nodes deleted above an edit) leaves nothing here that disagrees: say so, and where we looked.
    report.warnings.push(
      `The ledger has checkpoints signed by the trusted key, but no record of its sealer's last checkpoint was found at ${ledger.sealRecordLocation}, so checkpoints deleted back to an older one would not show here; point verify at the record with --seal-record FILE (or $WITNESS_SEAL_RECORD), or compare with a checkpoint you saved (--against).`,
    );
  }
  if (source === 'ledger') {
    for (const k of others) {
      report.warnings.push(
        `The ledger lists a second signing key ${fingerprint(k.vkey)} (added ${k.addedAt}) besides its own ${own === undefined ? '' : fingerprint(own.vkey)}: Witness never adds one, so it was not trusted; pin the keys you trust with --trusted-key.`,
      );
    }
  }
  return report;
}

/**
 * Every retention.purge event of the ledger, read before the rows through the query's kind filter
 * (one indexed read, never a query per event), each taken as a PurgeRecord when its payload matches
 * its digest and lists leaves below its own; `notes` says why any other covers nothing. The rows
 * themselves are verified in the full pass like every other.
 */
export async function readPurgeRecords(ledger: Pick<Ledger, 'query'>): Promise<{ records: PurgeRecord[]; notes: string[] }> {
  const records: PurgeRecord[] = [];
  const notes: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await ledger.query({ kind: 'retention.purge', limit: 10_000, ...(cursor === undefined ? {} : { cursor }) });
    for (const e of page.events) {
      let data: string | null = null;
      try {
        data = e.data === null ? null : canonicalize(e.data);
      } catch {
        // Not canonicalisable: purgeRecordOf then says it does not match its digest.
      }
      const r = purgeRecordOf({
        leaf: e.pos,
        id: e.id,
        kind: e.kind,
        payloadDigest: e.payload_digest,
        data: data ?? (e.data === null ? null : ''),
        salt: e.salt,
        stream: e.stream,
        recorder: e.recorder,
        ts: e.ts,
      });
      if (typeof r === 'string') notes.push(`${r} It covers no erased payload.`);
      else records.push(r);
    }
    cursor = page.next;
  } while (cursor !== undefined);
  return { records, notes };
}

/**
 * The holds and retention rules the purge rules judge records by (core purge-rules.ts), read like
 * the purge records through the query's kind filter, in position order. Only records in
 * witness.retention by the CLI or the server count, as the writers' readers count them. A
 * hold.placed whose payload is gone (erased: verify names that too) or names no scope this version
 * reads covers everything and is never released: a hold is never weakened by a reader that cannot
 * read it. The rows themselves are verified in the full pass like every other.
 */
export async function readGovernance(ledger: Pick<Ledger, 'query'>): Promise<{ holds: HoldFact[]; rules: RuleFact[] }> {
  const holds = new Map<string, HoldFact>();
  const rules: RuleFact[] = [];
  const all = async (kind: string, each: (e: { pos: number; data: unknown }) => void) => {
    let cursor: string | undefined;
    const found: Array<{ pos: number; data: unknown }> = [];
    do {
      const page = await ledger.query({ kind, limit: 10_000, ...(cursor === undefined ? {} : { cursor }) });
      for (const e of page.events) if (governanceRecordProblem(e.stream, e.recorder) === undefined) found.push({ pos: e.pos, data: e.data });
      cursor = page.next;
    } while (cursor !== undefined);
    for (const e of found.sort((a, b) => a.pos - b.pos)) each(e);
  };
  await all('hold.placed', (e) => {
    const d = e.data as { hold_id?: unknown; scope?: unknown } | null;
    const id = d !== null && typeof d.hold_id === 'string' ? d.hold_id : `leaf ${e.pos}`;
    if (!holds.has(id)) holds.set(id, { id, placed: e.pos, scope: d === null ? null : (holdScopeOf(d.scope) ?? null) });
  });
  await all('hold.released', (e) => {
    const d = e.data as { hold_id?: unknown } | null;
    const h = d === null || typeof d.hold_id !== 'string' ? undefined : holds.get(d.hold_id);
    if (h !== undefined && h.released === undefined && e.pos > h.placed) h.released = e.pos;
  });
  await all('config.change', (e) => {
    const def = retentionRuleOf(e.data);
    if (def !== undefined) rules.push({ ...def, leaf: e.pos });
  });
  return { holds: [...holds.values()], rules };
}

/**
 * Every row into the verifier: in this thread, or in chunks checked by worker threads and taken in
 * order, with any chunk whose result cannot be taken in as is (see LedgerVerifier.addChunk), and
 * anything appended meanwhile, checked here row by row. Either way the report is the same.
 */
async function feedRows(v: LedgerVerifier, ledger: Ledger, options: VerifyLedgerOptions, meanwhile: () => unknown): Promise<void> {
  const total = ledger.info.size;
  const chunk = options.chunkEvents ?? CHUNK_EVENTS;
  if (!Number.isInteger(Math.log2(chunk))) throw new WitnessError('invalid_argument', `chunkEvents must be a power of two, not ${chunk}.`);
  const chunks = Math.ceil(total / chunk);
  // The size comes from the stored positions; one past 2^53 is hostile and is checked row by row.
  const wanted = !Number.isSafeInteger(total) ? 1 : (options.threads ?? (total >= PARALLEL_MIN_EVENTS ? availableThreads() : 1));
  const entry = wanted > 1 && chunks > 1 ? workerEntry() : undefined;
  let done = 0;
  const progress = (n: number) => {
    done += n;
    options.onProgress?.(done, total);
  };
  const inThread = async (from: number, to: number): Promise<number> => {
    let rows = 0;
    for await (const page of scanRange(ledger, from, to)) {
      for (const row of page) v.addRow(row);
      rows += page.length;
      progress(page.length);
    }
    if (rows === 0) progress(0);
    return rows;
  };
  // Positions start at 0. A row stored below 0 was put there behind the driver's back: checked in
  // order from the lowest position, so the verifier reports it (and the leaf it adds) as a gap.
  let below = false;
  for await (const page of scanRange(ledger, -Infinity, 0, 1)) {
    below = page.length > 0;
    break;
  }
  if (entry === undefined || below) {
    options.onPlan?.({ threads: 1, chunks: 1 });
    await inThread(below ? -Infinity : 0, Infinity);
    return;
  }
  const threads = Math.min(wanted, chunks);
  options.onPlan?.({ threads, chunks });
  const pool = new VerifyPool(entry, options.url ?? ledger.info.location, threads);
  const stats = { fromThreads: 0, rechecked: 0 };
  try {
    // A few chunks ahead of the one being taken in, so threads never wait and results never pile up.
    const pending = new Map<number, Promise<ChunkResult | undefined>>();
    let next = 0;
    for (let i = 0; i < chunks; i++) {
      for (; next < chunks && next < i + 2 * threads; next++) {
        pending.set(
          next,
          pool.run(v.chunkPlan(next * chunk, Math.min(total, (next + 1) * chunk))).catch(() => undefined),
        );
      }
      // The threads have work queued: this thread's own SQL (synchronous in SQLite) runs meanwhile.
      if (i === 0) meanwhile();
      const r = await pending.get(i);
      pending.delete(i);
      const start = i * chunk;
      const end = Math.min(total, start + chunk);
      let rows: number;
      if (r !== undefined && v.addChunk(r)) {
        stats.fromThreads++;
        rows = r.rows;
        progress(rows);
      } else {
        stats.rechecked++;
        rows = await inThread(start, end);
      }
      if (rows !== end - start) {
        // Rows are missing (deleted: the report says so): every later leaf index is shifted, so
        // no later chunk lines up with the tree; the rest is checked here, row by row.
        await inThread(end, Infinity);
        options.onChunks?.(stats);
        return;
      }
    }
  } finally {
    await pool.close();
  }
  options.onChunks?.(stats);
  // Appended while the threads worked: checked here, after the rest.
  await inThread(total, Infinity);
}

/**
 * Re-hashes every artifact the events reference, streamed from the store (a 200 MB video is never
 * in memory whole); a missing one is a failure, and so is a changed one, or one whose stored bytes
 * the store finds incomplete while reading them (a chunk gone).
 */
export async function checkArtifacts(v: LedgerVerifier, ledger: Pick<Ledger, 'readArtifactStream'>): Promise<void> {
  for (const sha of v.referencedArtifacts().keys()) {
    let stream: Readable | undefined;
    try {
      stream = await ledger.readArtifactStream(sha);
    } catch (e) {
      // A digest that is not one (the header was edited to name it) is held by no store.
      if (isWitnessError(e, 'invalid_argument')) {
        v.artifactFailure(sha, true);
        continue;
      }
      throw e;
    }
    if (stream === undefined) {
      v.artifactFailure(sha, true);
      continue;
    }
    const hash = createHash('sha256');
    try {
      for await (const piece of stream) hash.update(piece as Buffer);
    } catch (e) {
      if (!isWitnessError(e, 'store_corrupt')) throw e;
      v.artifactFailure(sha, false);
      continue;
    }
    if (hash.digest('hex') !== sha) v.artifactFailure(sha, false);
  }
}

async function readRecord(ledger: Ledger): Promise<{ record?: { note: string; location: string }; warning?: string }> {
  try {
    const record = await ledger.sealRecord();
    return record === undefined ? {} : { record };
  } catch (e) {
    // A record that cannot be read (a symbolic link, say) vouches for nothing; the sealer refuses on it.
    return { warning: `The sealer's record was not used: ${(e instanceof Error ? e.message : String(e)).replace(/^Not signing: /, '')}` };
  }
}

function fingerprint(vkey: string): string {
  try {
    return keyFingerprint(parseVerifierKey(vkey));
  } catch {
    return JSON.stringify(vkey.slice(0, 80));
  }
}

export function readAgainstFile(file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'it does not exist' : (e as Error).message;
    throw new WitnessError('invalid_argument', `Cannot read the saved checkpoint ${file}: ${why}; save one with \`witness checkpoint > file\`.`, { cause: e });
  }
  // Only the shape is checked here; the signature is checked by verify against the trusted keys.
  if (!/\n\n\u2014 \S+ \S+\n/.test(text) || !/^[^\n]+\n\d+\n[A-Za-z0-9+/=]+\n/.test(text)) {
    throw new WitnessError('invalid_argument', `${file} is not a signed checkpoint; save one with \`witness checkpoint > file\`.`);
  }
  return text;
}
