import { canonicalize } from './canonical-json.js';
import { genesisHash } from './chain.js';
import { openCheckpoint, witnessTime, type Checkpoint } from './checkpoint.js';
import { ignoredRotationNote, judgeCheckpointKeys, keyWindows, rotationOf, type KeyWindow, type RotationEntry } from './rotation.js';
import { WitnessError } from './errors.js';
import { EventHeader, SCHEMA_VERSION } from './event.js';
import { Frontier, leafHash, nodeHash, verifyConsistency } from './merkle.js';
import { PurgeJudge, purgeRecordFact, type HoldFact, type PurgeRulesData, type RuleFact } from './purge-rules.js';
import { keyFingerprint, parseVerifierKey, type NoteKeyId, type NoteVerifier } from './note.js';
import { scanHeader, type HeaderFields } from './verify-header.js';
import { eventHashFromHex, payloadDigestHex } from './verify-hash.js';

/**
 * The verifier trusts no stored hash. It is fed raw rows in global-position order and recomputes
 * every payload digest, event hash, `prev` link and `seq`, folds each recomputed hash into a fresh
 * Merkle tree and compares that tree with every signed checkpoint. Memory is O(streams + log n).
 */

export type FailureCode =
  | 'malformed_header'
  | 'non_canonical'
  | 'unsupported_version'
  | 'invalid_header'
  | 'column_mismatch'
  | 'position_gap'
  | 'seq_gap'
  | 'seq_out_of_order'
  | 'wrong_genesis'
  | 'prev_mismatch'
  | 'payload_mismatch'
  | 'payload_missing'
  /** (ledger) A payload and its salt are gone, and no retention.purge event lists the leaf: erased outside the one purge path. */
  | 'uncovered_purge'
  /** (ledger) A payload was erased under a retention.purge record that may not erase it (docs/FORMAT.md 3.6: stream, recorder, governance kind, sealed, hold, policy). */
  | 'unauthorised_purge'
  | 'hash_mismatch'
  | 'session_end_mismatch'
  | 'event_after_end'
  | 'artifact_missing'
  | 'artifact_mismatch'
  | 'index_mismatch'
  | 'checkpoint_invalid'
  | 'checkpoint_signature'
  | 'checkpoint_root_mismatch'
  | 'checkpoint_beyond_ledger'
  | 'consistency_failed'
  | 'inclusion_failed'
  | 'against_mismatch'
  | 'sealed_record_mismatch'
  | 'checkpoint_missing'
  | 'unsealed_gap'
  | 'session_incomplete'
  | 'not_sealed'
  | 'bundle_invalid'
  // Evidence bundles, format 2 (src/export/verify-bundle-v2.ts):
  /** A file's SHA-256 differs from the one manifest.json lists, or a file is unlisted. */
  | 'file_mismatch'
  /** events.jsonl does not hold every leaf of the span exactly once, in order. */
  | 'span_gap'
  /** The export's own signed audit.access event does not match the manifest or the bundle's span. */
  | 'export_record_mismatch'
  /** A population file lacks events of its population that the span holds. */
  | 'population_incomplete'
  /** A population file or its index entry differs from the population recomputed from the span. */
  | 'population_mismatch'
  /** An event carries a payload the bundle's scope and mode say it must not (data outside the export). */
  | 'payload_unexpected'
  // Key rotation (src/core/rotation.ts, docs/FORMAT.md "Key history and rotation"):
  /** A checkpoint signed by a key after its window ended, and not by the key then in use. */
  | 'retired_key'
  /** The checkpoint covering a key rotation lacks the old or the new key's signature. */
  | 'rotation_unsigned'
  /** The key history disagrees with the key.rotated events (a rotation missing, altered, or retiring a key not in use). */
  | 'key_history_mismatch';

export interface Failure {
  code: FailureCode;
  reason: string;
  stream?: string;
  seq?: number;
  /** Global position = Merkle leaf index. */
  leaf?: number;
  checkpoint?: number;
  artifact?: string;
}

export type KeySource = 'ledger' | 'pinned' | 'bundle';

export interface TrustStatement {
  /** Keys whose signatures were accepted, and where they came from. */
  keys: Array<{ name: string; keyHash: string; source: KeySource }>;
  /** One sentence saying what the result rests on. */
  statement: string;
}

export interface VerifyReport {
  ok: boolean;
  /** True when something was written by a newer format: not tampered, but not checkable here. */
  unverifiable: boolean;
  events: number;
  streams: number;
  checkpoints: number;
  /** Tree size covered by the newest valid checkpoint. */
  sealedSize: number;
  /** Events past the newest checkpoint: chained, but not yet in a signed tree. */
  unsealed: number;
  payloadsAbsent: number;
  artifacts: number;
  openSessions: number;
  failures: Failure[];
  first?: Failure;
  trust: TrustStatement;
  warnings: string[];
  /** Present when the sealer's record of its last checkpoint was read: where, its size, and whether the ledger extends it. */
  sealRecord?: { location: string; size: number; extended: boolean };
  /** (ledger) Present when the ledger holds retention.purge events: what they cover, and how much of it is erased. */
  purged?: PurgeSummary;
}

/**
 * One retention.purge event as verification takes it (docs/FORMAT.md 3.6): the leaves whose
 * payloads it says were erased, as inclusive ranges below its own leaf, and the policy it names.
 */
export interface PurgeRecord {
  leaf: number;
  id: string;
  policy: string;
  count: number;
  ranges: Array<[number, number]>;
  /** Where the record is, who wrote it (header `recorder`) and when (`ts`), when its reader gave them: the purge rules judge them. */
  stream?: string;
  recorder?: unknown;
  ts?: string;
}

export interface PurgeSummary {
  /** Events whose payload is absent and which a purge record lists: "purged under policy P", not a failure. */
  payloads: number;
  /** Events a purge record lists whose payload is still stored (and verifies against its digest). */
  stillPresent: number;
  records: Array<Pick<PurgeRecord, 'leaf' | 'id' | 'policy' | 'count'>>;
}

/** Inclusive leaf ranges of ascending, distinct positions: 0,1,2,5 → [[0,2],[5,5]]. */
export function leafRanges(positions: readonly number[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const p of positions) {
    const last = out[out.length - 1];
    if (last !== undefined && p === last[1] + 1) last[1] = p;
    else out.push([p, p]);
  }
  return out;
}

/** A stored retention.purge event as purgeRecordOf reads it: the canonical payload text and its commitment. */
export interface PurgeRow {
  leaf: number;
  id: string;
  kind: string;
  payloadDigest: string;
  /** The canonical payload text, null when absent. */
  data: string | null;
  salt: Uint8Array | string | null;
  stream?: string;
  /** The header's `recorder`. */
  recorder?: unknown;
  ts?: string;
}

/**
 * A retention.purge row read as a PurgeRecord, or the sentence saying why it covers nothing. Only a
 * payload that matches its digest counts (the full pass checks the same row again and reports an
 * edit); its ranges must be ascending, disjoint, below its own leaf and add up to its count.
 */
export function purgeRecordOf(row: PurgeRow): PurgeRecord | string {
  const at = `The retention.purge event at leaf ${row.leaf}`;
  if (row.kind !== 'retention.purge') return `${at} is not one.`;
  if (row.data === null || row.salt === null) return `${at} has no payload, so it lists nothing.`;
  let digest: string;
  try {
    digest = payloadDigestHex(row.salt, row.data);
  } catch {
    return `${at} has a malformed salt.`;
  }
  if (digest !== row.payloadDigest) return `${at} does not match its digest.`;
  let d: { policy?: unknown; count?: unknown; leaves?: unknown };
  try {
    d = JSON.parse(row.data) as typeof d;
  } catch {
    return `${at} is not JSON.`;
  }
  if (typeof d !== 'object' || d === null || typeof d.policy !== 'string' || !Number.isSafeInteger(d.count) || !Array.isArray(d.leaves)) {
    return `${at} lacks policy, count or leaves.`;
  }
  const ranges: Array<[number, number]> = [];
  let total = 0;
  let next = 0;
  for (const r of d.leaves as unknown[]) {
    if (!Array.isArray(r) || r.length !== 2 || !Number.isSafeInteger(r[0]) || !Number.isSafeInteger(r[1])) return `${at} lists a leaf range that is not two integers.`;
    const [from, to] = r as [number, number];
    if (from < next || to < from || to >= row.leaf) return `${at} lists leaves ${from}–${to}, which are not ascending, disjoint and below its own leaf.`;
    ranges.push([from, to]);
    total += to - from + 1;
    next = to + 1;
  }
  if (total !== d.count) return `${at} says it purged ${String(d.count)} events but lists ${total}.`;
  return {
    leaf: row.leaf,
    id: row.id,
    policy: d.policy,
    count: total,
    ranges,
    ...(row.stream === undefined ? {} : { stream: row.stream }),
    ...('recorder' in row ? { recorder: row.recorder } : {}),
    ...(row.ts === undefined ? {} : { ts: row.ts }),
  };
}

/** What a PurgeCover holds, as plain data (for a worker thread): disjoint ranges in order, each with the leaf of the purge record that lists it. */
export interface PurgeCoverData {
  from: number[];
  to: number[];
  by: number[];
}

/** A binary min-heap, for PurgeCover.of. */
class MinHeap<T> {
  private readonly a: T[] = [];
  constructor(private readonly less: (x: T, y: T) => number) {}

  get top(): T | undefined {
    return this.a[0];
  }

  push(x: T): void {
    const a = this.a;
    let i = a.push(x) - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.less(a[p]!, a[i]!) <= 0) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }

  pop(): void {
    const a = this.a;
    const last = a.pop();
    if (a.length === 0 || last === undefined) return;
    a[0] = last;
    for (let i = 0; ;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && this.less(a[l]!, a[m]!) < 0) m = l;
      if (r < a.length && this.less(a[r]!, a[m]!) < 0) m = r;
      if (m === i) return;
      [a[m], a[i]] = [a[i]!, a[m]!];
      i = m;
    }
  }
}

/**
 * Which purge record lists a leaf, answered in O(1) amortised for leaves asked in ascending order
 * (a verify pass), by binary search otherwise. Built once from every record, so no leaf costs a
 * query. Where several records list one leaf (a second purge of an erased event, or a forgery
 * laid over a genuine record) the earliest, at the lowest leaf, answers for it, whatever range
 * starts first: a later record that keeps the rules must not hide an earlier one that broke them.
 */
export class PurgeCover {
  private i = 0;
  private last = -1;

  constructor(private readonly d: PurgeCoverData) {}

  static of(records: readonly PurgeRecord[]): PurgeCover {
    const all = records.flatMap((r) => r.ranges.map(([from, to]) => ({ from, to, by: r.leaf }))).sort((a, b) => a.from - b.from);
    // Every range starts and ends at a cut, so between two cuts the ranges listing a leaf are the
    // same ones; the owner there is the lowest record among them (a min-heap on `by`, whose ranges
    // that ended are dropped only once they reach the top). O(n log n) for n ranges.
    const cuts = [...new Set(all.flatMap((r) => [r.from, r.to + 1]))].sort((a, b) => a - b);
    const heap = new MinHeap<{ to: number; by: number }>((a, b) => a.by - b.by);
    const d: PurgeCoverData = { from: [], to: [], by: [] };
    let k = 0;
    for (let c = 0; c + 1 < cuts.length; c++) {
      const from = cuts[c]!;
      const to = cuts[c + 1]! - 1;
      while (k < all.length && all[k]!.from === from) heap.push(all[k++]!);
      while (heap.top !== undefined && heap.top.to < from) heap.pop();
      const top = heap.top;
      if (top === undefined) continue;
      const n = d.by.length - 1;
      if (n >= 0 && d.by[n] === top.by && d.to[n] === from - 1) d.to[n] = to;
      else {
        d.from.push(from);
        d.to.push(to);
        d.by.push(top.by);
      }
    }
    return new PurgeCover(d);
  }

  /** The ranges that meet [start, end), for a chunk's plan. */
  slice(start: number, end: number): PurgeCoverData {
    const out: PurgeCoverData = { from: [], to: [], by: [] };
    for (let k = this.lowerBound(start); k < this.d.from.length && this.d.from[k]! < end; k++) {
      out.from.push(this.d.from[k]!);
      out.to.push(this.d.to[k]!);
      out.by.push(this.d.by[k]!);
    }
    return out;
  }

  /** The leaf of the purge record listing `pos`, or undefined. */
  at(pos: number): number | undefined {
    if (pos < this.last) this.i = this.lowerBound(pos);
    this.last = pos;
    const { from, to, by } = this.d;
    while (this.i < from.length && to[this.i]! < pos) this.i++;
    return this.i < from.length && from[this.i]! <= pos ? by[this.i] : undefined;
  }

  /** The first range that ends at or after `pos`. */
  private lowerBound(pos: number): number {
    let lo = 0;
    let hi = this.d.to.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.d.to[mid]! < pos) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/**
 * One raw row as stored; nothing in it is trusted. `salt` and `hash` come as bytes, or as lowercase
 * hex from a driver's verify scan (Ledger.scanForVerify), which reads no Buffers.
 */
export interface VerifyRow {
  pos: number;
  id: string;
  stream: string;
  seq: number;
  ts: string;
  kind: string;
  agent: string;
  resource: string | null;
  action: string | null;
  outcome: string | null;
  header: string;
  data: string | null;
  salt: Uint8Array | string | null;
  hash: Uint8Array | string;
}

export interface StoredCheckpoint {
  id: number;
  size: number;
  note: string;
  consistency: string[];
  prevSize: number | null;
}

interface StreamState {
  nextSeq: number;
  /** Hex: it is compared with the header's `prev`, which is hex. */
  prev: string;
  ended: boolean;
}

export const MAX_FAILURES = 100;

/**
 * How much earlier than the newest checkpoint's witness-time an unsealed event may be dated before
 * its absence from that checkpoint is a failure (`unsealed_gap`). A sealer covers every event
 * committed before it signs, so an older uncovered event was committed late: the recorder retries
 * a failing store for 30 s by default and seals every 10 s; a minute covers that and clock steps.
 */
export const UNSEALED_TOLERANCE_MS = 60_000;
const RECEIVED_TS = /[{,]"received_ts":"([^"\\]*)"/;

/**
 * Per-stream chain checks shared by the ledger verifier and the bundle verifier: canonical form,
 * schema, indexed columns, seq, prev link (or genesis), payload digest, event hash, session.end.
 */
export class ChainChecker {
  /** Open streams: where each expects its next event. */
  readonly streams = new Map<string, StreamState>();
  private readonly endedStreams = new Set<string>();
  readonly artifactRefs = new Map<string, number>();
  payloadsAbsent = 0;
  /** Absent payloads a purge record lists, and listed events whose payload is still there. */
  payloadsPurged = 0;
  purgedPresent = 0;
  /** Which leaves retention.purge events list (a ledger's; see setCover), and whether each record may erase them. */
  private cover: PurgeCover | undefined;
  private judge: PurgeJudge | undefined;

  constructor(
    private readonly origin: string,
    private readonly report: (f: Failure) => void,
    private readonly warn: (w: string) => void,
    /** Bundles carry no indexed columns to compare. */
    private readonly compareColumns = true,
    /**
     * Only a bundle exported with --withhold-data may lack payloads. In a ledger an absent payload
     * must be listed by a retention.purge event (setCover), else it was erased outside the purge.
     */
    private readonly allowAbsentPayloads = false,
  ) {}

  /**
   * The leaves retention.purge events list: an absent payload there is purged, not a failure,
   * unless `judge` finds the record may not erase it (unauthorised_purge).
   */
  setCover(cover: PurgeCover, judge?: PurgeJudge): void {
    this.cover = cover;
    this.judge = judge;
  }

  /** Starts a stream mid-way: its next event must be `nextSeq` and link to `prev` (for sealing a tail). */
  seed(stream: string, nextSeq: number, prev: Uint8Array): void {
    this.streams.set(stream, { nextSeq, prev: Buffer.from(prev).toString('hex'), ended: false });
  }

  get openStreams(): number {
    return this.streams.size;
  }

  /** Whether a stream met first in a chunk, as `e`, continues from where this checker has it. */
  continues(e: { stream: string; seq: number; prev: string }): boolean {
    const s = this.streams.get(e.stream);
    if (s !== undefined) return s.nextSeq === e.seq && s.prev === e.prev;
    return !this.endedStreams.has(e.stream) && e.seq === 0 && genesisHash(this.origin, e.stream).toString('hex') === e.prev;
  }

  /** Where a chunk left its streams, its absent payloads and the artifacts it referenced. */
  exits(): Pick<ChunkResult, 'exits' | 'payloadsAbsent' | 'payloadsPurged' | 'purgedPresent' | 'artifacts'> {
    const exits: ChunkResult['exits'] = [];
    for (const [stream, st] of this.streams) exits.push({ stream, nextSeq: st.nextSeq, prev: st.prev, ended: false });
    for (const stream of this.endedStreams) exits.push({ stream, nextSeq: 0, prev: '', ended: true });
    return { exits, payloadsAbsent: this.payloadsAbsent, payloadsPurged: this.payloadsPurged, purgedPresent: this.purgedPresent, artifacts: [...this.artifactRefs] };
  }

  /** Takes in what exits() said of a chunk that follows this checker's state. */
  takeChunk(r: Pick<ChunkResult, 'exits' | 'payloadsAbsent' | 'payloadsPurged' | 'purgedPresent' | 'artifacts'>): void {
    this.payloadsPurged += r.payloadsPurged;
    this.purgedPresent += r.purgedPresent;
    for (const x of r.exits) {
      if (x.ended) {
        this.streams.delete(x.stream);
        this.endedStreams.add(x.stream);
      } else {
        this.streams.set(x.stream, { nextSeq: x.nextSeq, prev: x.prev, ended: false });
      }
    }
    this.payloadsAbsent += r.payloadsAbsent;
    for (const [sha, leaf] of r.artifacts) if (!this.artifactRefs.has(sha)) this.artifactRefs.set(sha, leaf);
  }

  get streamCount(): number {
    return this.streams.size + this.endedStreams.size;
  }

  private hashOf(header: string, prevHex: string): Buffer {
    return eventHashFromHex(prevHex, header);
  }

  /**
   * Records where each stream is first met instead of starting it from its genesis: for a checker
   * that sees a slice of the ledger (a worker's chunk) and assumes every stream it meets continues
   * correctly from what came before. Whoever holds the ledger's state before the slice checks those
   * assumptions (LedgerVerifier.addChunk) and re-checks the slice in order when one does not hold.
   */
  trackEntries(): Array<{ stream: string; seq: number; prev: string }> {
    this.entries = [];
    return this.entries;
  }

  private entries: Array<{ stream: string; seq: number; prev: string }> | undefined;

  /** Returns the hash to fold into the tree: the recomputed one whenever it can be computed. */
  check(row: VerifyRow, where: { stream: string; seq: number; leaf: number }): Uint8Array {
    // The fast path accepts only headers that are canonical and schema-valid; everything else is
    // examined the slow way, which is what names the problem.
    const h = scanHeader(row.header) ?? this.parseHeader(row, where);
    if (h === undefined) return typeof row.hash === 'string' ? Buffer.from(row.hash, 'hex') : row.hash;
    if (this.compareColumns) this.checkColumns(row, h, where);

    const at = { stream: h.stream, seq: h.seq, leaf: row.pos };
    let state = this.streams.get(h.stream);
    if (state === undefined) {
      if (this.endedStreams.has(h.stream)) {
        this.report({ ...at, code: 'event_after_end', reason: `Stream ${h.stream} has an event after its session.end.` });
        return this.hashOf(row.header, h.prev);
      }
      if (this.entries === undefined) {
        state = { nextSeq: 0, prev: genesisHash(this.origin, h.stream).toString('hex'), ended: false };
      } else {
        this.entries.push({ stream: h.stream, seq: h.seq, prev: h.prev });
        state = { nextSeq: h.seq, prev: h.prev, ended: false };
      }
      this.streams.set(h.stream, state);
    }
    if (h.seq !== state.nextSeq) {
      if (h.seq > state.nextSeq) {
        this.report({ ...at, code: 'seq_gap', reason: `Seq ${state.nextSeq}${h.seq - state.nextSeq > 1 ? `–${h.seq - 1}` : ''} of stream ${h.stream} is missing: events were deleted.` });
      } else {
        this.report({ ...at, code: 'seq_out_of_order', reason: `Seq ${h.seq} of stream ${h.stream} appears again or out of order after seq ${state.nextSeq - 1}: events were reordered or inserted.` });
      }
    }
    const prevHex = state.prev;
    if (h.prev !== prevHex) {
      if (h.seq === 0) {
        this.report({ ...at, code: 'wrong_genesis', reason: `Stream ${h.stream} does not start from this ledger's genesis for it: the event was moved from another stream or ledger.` });
      } else {
        this.report({ ...at, code: 'prev_mismatch', reason: `The event does not link to the previous event of stream ${h.stream}: an earlier event was changed, removed or reordered.` });
      }
    }

    let by: number | undefined;
    if (row.data === null || row.salt === null) {
      if (row.data !== null || row.salt !== null) {
        this.report({ ...at, code: 'payload_mismatch', reason: 'The payload and its salt must be present or absent together.' });
      } else if ((by = this.cover?.at(row.pos)) !== undefined) {
        const refused = this.judge?.refusal(by, { pos: row.pos, kind: h.kind, stream: h.stream, agent: h.agent, ts: h.ts, header: row.header });
        if (refused === undefined) this.payloadsPurged++;
        else this.report({ ...at, code: 'unauthorised_purge', reason: refused });
      } else if (!this.allowAbsentPayloads) {
        this.report({
          ...at,
          code: 'uncovered_purge',
          reason: 'The payload and its salt were erased, but no retention.purge event lists this leaf: the content was deleted outside the retention purge.',
        });
      }
      this.payloadsAbsent++;
    } else {
      if (this.cover?.at(row.pos) !== undefined) this.purgedPresent++;
      if (payloadDigestHex(row.salt, row.data) !== h.payload_digest) {
        this.report({ ...at, code: 'payload_mismatch', reason: 'The payload does not match its digest: the data was edited after it was recorded.' });
      } else if (h.kind === 'session.end') {
        this.checkSessionEnd(row.data, h.seq, prevHex, at);
      }
    }

    const hash = this.hashOf(row.header, h.prev);
    // Hex once per event: the stored hash of a verify scan is hex, and so is the next event's `prev`.
    const hashHex = hash.toString('hex');
    if (typeof row.hash === 'string' ? hashHex !== row.hash : !hash.equals(row.hash)) {
      this.report({ ...at, code: 'hash_mismatch', reason: 'The stored event hash does not match the event: the header or the hash was edited.' });
    }
    for (const sha of h.artifacts) {
      if (!this.artifactRefs.has(sha)) this.artifactRefs.set(sha, row.pos);
    }
    state.nextSeq = h.seq + 1;
    state.prev = hashHex;
    if (h.kind === 'session.end') {
      // Ended sessions keep only their id, so memory follows the open sessions, not the ledger.
      this.streams.delete(h.stream);
      this.endedStreams.add(h.stream);
    }
    return hash;
  }

  /** The header checked the slow way: JSON.parse, re-canonicalised and compared, zod; failures reported. */
  private parseHeader(row: VerifyRow, where: { stream: string; seq: number; leaf: number }): HeaderFields | undefined {
    let parsed: unknown;
    try {
      parsed = JSON.parse(row.header);
    } catch {
      this.report({ ...where, code: 'malformed_header', reason: 'The stored header is not JSON.' });
      return undefined;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      this.report({ ...where, code: 'malformed_header', reason: 'The stored header is not a JSON object.' });
      return undefined;
    }
    const v = (parsed as { v?: unknown }).v;
    if (v !== SCHEMA_VERSION) {
      if (typeof v === 'number' && Number.isInteger(v) && v > SCHEMA_VERSION) {
        // A newer Witness marks its ledgers and bundles with a newer container version, which is
        // reported as unverifiable before any event is read; inside a v1 container a v2 event
        // can only be an edit that tries to pass as "unverifiable".
        this.report({ ...where, code: 'unsupported_version', reason: `The event claims format v${v}, which a format-v${SCHEMA_VERSION} ledger or bundle cannot hold: the header was altered.` });
        return undefined;
      }
      this.report({ ...where, code: 'unsupported_version', reason: `The header has version ${JSON.stringify(v)}, which no Witness version writes.` });
      return undefined;
    }
    // Re-canonicalising and comparing bytes rejects duplicate keys, big integers and any other
    // spelling that JSON.parse would silently accept.
    let canonical: string;
    try {
      canonical = canonicalize(parsed);
    } catch (e) {
      this.report({ ...where, code: 'non_canonical', reason: `The header cannot be canonicalised: ${messageOf(e)}` });
      return undefined;
    }
    if (canonical !== row.header) {
      this.report({ ...where, code: 'non_canonical', reason: 'The stored header is not in canonical (RFC 8785) form: it was written by something other than Witness.' });
    }
    const checked = EventHeader.safeParse(parsed);
    if (!checked.success) {
      const issue = checked.error.issues[0];
      this.report({ ...where, code: 'invalid_header', reason: `The header field ${issue?.path.join('.') || '(root)'} is invalid: ${issue?.message ?? 'unknown problem'}.` });
      return undefined;
    }
    return headerFields(checked.data);
  }

  private checkColumns(row: VerifyRow, h: HeaderFields, where: { stream: string; seq: number; leaf: number }): void {
    const pairs: Array<[string, unknown, unknown]> = [
      ['id', row.id, h.id],
      ['stream', row.stream, h.stream],
      ['seq', row.seq, h.seq],
      ['ts', row.ts, h.ts],
      ['kind', row.kind, h.kind],
      ['agent', row.agent, h.agent],
      ['resource', row.resource, h.resource],
      ['action', row.action, h.action],
      ['outcome', row.outcome, h.outcome],
    ];
    for (const [col, stored, hashed] of pairs) {
      if (stored !== hashed) {
        this.report({
          ...where,
          code: 'column_mismatch',
          reason: `The indexed column "${col}" says ${JSON.stringify(stored)} but the hashed header says ${JSON.stringify(hashed)}: queries on it would lie.`,
        });
      }
    }
  }

  private checkSessionEnd(data: string, seq: number, prevHex: string, at: { stream: string; seq: number; leaf: number }): void {
    let d: { event_count?: unknown; last_hash?: unknown };
    try {
      d = JSON.parse(data) as typeof d;
    } catch {
      this.report({ ...at, code: 'session_end_mismatch', reason: 'The session.end payload is not JSON.' });
      return;
    }
    if (d.event_count !== seq || d.last_hash !== prevHex) {
      this.report({
        ...at,
        code: 'session_end_mismatch',
        reason: `session.end says ${String(d.event_count)} events before it ending in ${String(d.last_hash).slice(0, 12)}…, but the stream has ${seq} ending in ${prevHex.slice(0, 12)}….`,
      });
    }
  }
}

export interface LedgerVerifierOptions {
  origin: string;
  verifiers: NoteVerifier[];
  keySource: KeySource;
  /** A checkpoint the auditor saved earlier (signed note text): the ledger must still extend it. */
  against?: string;
  /**
   * The sealer's record of the last checkpoint its key signed, kept outside the database (beside
   * the ledger by default, or where the sealer was told): the ledger must extend it and still hold
   * a checkpoint at least that large.
   */
  sealRecord?: { note: string; location: string };
  /**
   * The ledger's key history: its first key and its key.rotated events, read before the rows (by
   * kind). Checkpoints are then judged by the key windows (src/core/rotation.ts), and each rotation
   * must be the event its leaf holds; `verifiers` should hold every key of the history.
   */
  rotations?: { firstKey: string; entries: RotationEntry[] };
}

export class LedgerVerifier {
  private readonly chain: ChainChecker;
  private frontier = Frontier.empty();
  private readonly failures: Failure[] = [];
  private readonly warnings: string[] = [];
  private readonly usedKeys = new Map<string, NoteKeyId>();
  private checkpointsDue: Array<{ id: number; checkpoint: Checkpoint }> = [];
  private nextCheckpoint = 0;
  private expectedPos = 0;
  /** Leaves of session.end events past the newest checkpoint seen so far (trimmed as checkpoints cover them). */
  private endLeaves: number[] = [];
  private validCheckpoints = 0;
  private sealedSize = 0;
  private againstCp: Checkpoint | undefined;
  private againstChecked = false;
  private againstMatched = false;
  private record: { checkpoint: Checkpoint; location: string; checked: boolean; matched: boolean } | undefined;
  /** Largest stored checkpoint whose signature verified. */
  private largestSigned = 0;
  /** Latest witness-time among those checkpoints and the sealer's record: what "newer" is measured against. */
  private newestWitness: { time: number; checkpoint?: number; label: string } | undefined;
  /**
   * The first uncovered event dated well before the newest witness-time, and how many there are:
   * [0] below the record's size (excused once the ledger is shown to extend the record), [1] the rest.
   */
  private readonly gaps: Array<{ first: Failure; count: number } | undefined> = [undefined, undefined];
  /** Rotation leaves still to be matched with their rows (see options.rotations). */
  private readonly rotationsDue = new Map<number, RotationEntry>();
  private windows: KeyWindow[] | undefined;

  constructor(private readonly options: LedgerVerifierOptions) {
    for (const r of options.rotations?.entries ?? []) this.rotationsDue.set(r.leaf, r);
    this.chain = new ChainChecker(
      options.origin,
      (f) => this.fail(f),
      (w) => this.warnings.push(w),
    );
    if (options.against !== undefined) {
      try {
        const opened = openCheckpoint(options.against, options.verifiers, options.origin);
        this.againstCp = opened.checkpoint;
        for (const k of opened.verified) this.usedKeys.set(keyId(k), k);
      } catch (e) {
        this.fail({ code: 'against_mismatch', reason: `The saved checkpoint does not verify: ${messageOf(e)}` });
      }
    }
    const rec = options.sealRecord;
    if (rec !== undefined) {
      try {
        const opened = openCheckpoint(rec.note, options.verifiers, options.origin);
        this.record = { checkpoint: opened.checkpoint, location: rec.location, checked: false, matched: false };
        const wt = witnessTime(opened.checkpoint);
        if (wt !== undefined) this.newestWitness = { time: wt, label: `the checkpoint recorded in ${rec.location}` };
      } catch (e) {
        // Signed by a key the auditor does not trust (or not a checkpoint): it proves nothing either way.
        this.warnings.push(`The sealer's record ${rec.location} was not used: ${messageOf(e).replace(/\.$/, '')}.`);
      }
    }
  }

  private purges: { records: PurgeRecord[]; cover: PurgeCover; rules?: PurgeRulesData } | undefined;

  /**
   * The ledger's retention.purge events (purgeRecordOf), before any row is read and after the
   * checkpoints: absent payloads they list are purged, not failures, and the report names each
   * record. Their rows are verified in full like every other, so an edited record fails there.
   * Given the ledger's holds and retention rules (`governance`), each erased leaf is also judged by
   * the purge rules (purge-rules.ts), with the signed checkpoints this verifier accepted.
   */
  setPurges(records: readonly PurgeRecord[], governance?: { holds: HoldFact[]; rules: RuleFact[] }): void {
    if (records.length === 0) return;
    const cover = PurgeCover.of(records);
    const sorted = [...records].sort((a, b) => a.leaf - b.leaf);
    let rules: PurgeRulesData | undefined;
    if (governance !== undefined) {
      const sizes = this.checkpointsDue.map((d) => d.checkpoint.size);
      const facts = sorted.map((r) =>
        purgeRecordFact(
          { leaf: r.leaf, policy: r.policy, stream: r.stream ?? '', recorder: r.recorder, ts: r.ts ?? '' },
          sizes.reduce((m, n) => (n <= r.leaf && n > m ? n : m), 0),
          governance.rules,
        ),
      );
      rules = { records: facts, holds: governance.holds, rules: governance.rules };
    }
    this.purges = { records: sorted, cover, ...(rules === undefined ? {} : { rules }) };
    this.chain.setCover(cover, rules === undefined ? undefined : new PurgeJudge(rules));
  }

  /** Verifies signatures and consistency of all checkpoints, before any row is read. */
  setCheckpoints(rows: readonly StoredCheckpoint[]): void {
    let prev: { size: number; root: Uint8Array; id: number } | undefined;
    const due: Array<{ id: number; checkpoint: Checkpoint }> = [];
    const rot = this.options.rotations;
    if (rot !== undefined) {
      const { windows, problems } = keyWindows(
        rot.firstKey,
        rot.entries,
        rows.map((r) => r.size),
      );
      this.windows = windows;
      for (const reason of problems) this.fail({ code: 'key_history_mismatch', reason });
    }
    for (const row of rows) {
      let cp: Checkpoint;
      try {
        const opened = openCheckpoint(row.note, this.options.verifiers, this.options.origin);
        cp = opened.checkpoint;
        for (const k of opened.verified) this.usedKeys.set(keyId(k), k);
        const wrong = this.windows === undefined ? undefined : judgeCheckpointKeys(this.windows, cp.size, opened.verified);
        if (wrong !== undefined) {
          this.fail({ code: wrong.code, checkpoint: row.id, reason: `Checkpoint ${row.id}: ${wrong.reason}` });
          continue;
        }
      } catch (e) {
        const code = e instanceof WitnessError && (e.code === 'invalid_signature' || e.code === 'invalid_key') ? 'checkpoint_signature' : 'checkpoint_invalid';
        this.fail({ code, checkpoint: row.id, reason: `Checkpoint ${row.id} (size ${row.size}) does not verify: ${messageOf(e)}` });
        continue;
      }
      if (cp.size !== row.size) {
        this.fail({ code: 'checkpoint_invalid', checkpoint: row.id, reason: `Checkpoint ${row.id} is stored as size ${row.size} but its signed body says ${cp.size}.` });
      }
      if (prev !== undefined) {
        if (cp.size < prev.size) {
          this.fail({
            code: 'consistency_failed',
            checkpoint: row.id,
            reason: `Checkpoint ${row.id} has size ${cp.size}, smaller than the previous checkpoint's ${prev.size}: history was rolled back.`,
          });
        } else if (prev.size > 0 && row.prevSize === prev.size) {
          // The stored proof was made from row.prevSize; when that checkpoint was itself invalid
          // and skipped, the roots are still compared with the rebuilt tree below.
          const proof = row.consistency.map((h) => (/^[0-9a-f]{64}$/.test(h) ? Buffer.from(h, 'hex') : Buffer.alloc(0)));
          const r = verifyConsistency(prev.size, cp.size, proof, prev.root, cp.rootHash);
          if (!r.ok) {
            this.fail({
              code: 'consistency_failed',
              checkpoint: row.id,
              reason: `Checkpoint ${row.id} (size ${cp.size}) is not consistent with checkpoint ${prev.id} (size ${prev.size}): ${r.reason}; history was rewritten.`,
            });
          }
        }
      }
      prev = { size: cp.size, root: cp.rootHash, id: row.id };
      this.validCheckpoints++;
      due.push({ id: row.id, checkpoint: cp });
      this.largestSigned = Math.max(this.largestSigned, cp.size);
      const wt = witnessTime(cp);
      if (wt !== undefined && (this.newestWitness === undefined || wt > this.newestWitness.time)) this.newestWitness = { time: wt, checkpoint: row.id, label: `checkpoint ${row.id}` };
    }
    due.sort((a, b) => a.checkpoint.size - b.checkpoint.size || a.id - b.id);
    this.checkpointsDue = due;
    this.checkRootsAtCurrentSize();
  }

  /** Feeds one raw row; rows must come in position order. */
  addRow(row: VerifyRow): void {
    // Compared with the previous row, not the tree size, so one deletion is reported once.
    if (row.pos !== this.expectedPos) this.fail(positionGap(row, this.expectedPos));
    this.expectedPos = row.pos + 1;
    const recomputed = this.chain.check(row, { stream: row.stream, seq: row.seq, leaf: row.pos });
    if (row.kind === 'session.end') this.endLeaves.push(row.pos);
    if (row.kind === 'key.rotated' || this.rotationsDue.has(row.pos)) this.checkRotationRow(row);
    if (row.pos >= this.largestSigned && this.newestWitness !== undefined) this.checkDated(row);
    this.frontier.append(leafHash(recomputed));
    this.checkRootsAtCurrentSize();
  }

  /**
   * What a ChunkChecker needs to check positions [start, end) on its own (a worker thread): the
   * tree sizes in that range whose roots are compared with something, and how to date events.
   * `start` must be a multiple of the chunk size, a power of two no smaller than end - start.
   */
  chunkPlan(start: number, end: number): ChunkPlan {
    const sizes = new Set<number>();
    for (const d of this.checkpointsDue) sizes.add(d.checkpoint.size);
    if (this.againstCp !== undefined) sizes.add(this.againstCp.size);
    if (this.record !== undefined) sizes.add(this.record.checkpoint.size);
    const marks = [...sizes].filter((n) => n > start && n <= end).sort((x, y) => x - y);
    const plan: ChunkPlan = { origin: this.options.origin, start, end, marks };
    if (this.purges !== undefined) plan.purged = this.purges.cover.slice(start, end);
    if (this.purges?.rules !== undefined) plan.purgeRules = this.purges.rules;
    if (this.newestWitness !== undefined) {
      plan.dated = { from: this.largestSigned, newest: this.newestWitness, ...(this.record === undefined ? {} : { recordSize: this.record.checkpoint.size }) };
    }
    return plan;
  }

  /**
   * Takes in a chunk checked elsewhere, as if its rows had been fed here one by one; false (and
   * nothing taken in) when that cannot be shown, and the caller then feeds the chunk's rows to
   * addRow. That is when the chunk's streams do not continue from where they stood before it (an
   * edit, a deletion, a stream moved: its failures depend on the state before the chunk), or when
   * the tree is not where the chunk starts (rows deleted earlier shift every leaf index).
   */
  addChunk(r: ChunkResult): boolean {
    if (this.frontier.size !== r.start) return false;
    // A rotation's row is matched with the key history here, so its chunk is fed row by row.
    for (const leaf of this.rotationsDue.keys()) if (leaf >= r.start && leaf < r.start + r.rows) return false;
    for (const e of r.entries) if (!this.chain.continues(e)) return false;
    if (r.first !== undefined) {
      if (r.first.pos !== this.expectedPos) this.fail(positionGap(r.first, this.expectedPos));
      this.expectedPos = r.lastPos + 1;
    }
    const base = this.frontier;
    let f = 0;
    let e = 0;
    for (const m of r.marks) {
      for (; f < m.failures; f++) this.fail(r.failures[f]!);
      for (; e < m.ends; e++) this.endLeaves.push(r.ends[e]!);
      this.frontier = extendFrontier(base, m.frontier, m.size - r.start);
      this.checkRootsAtCurrentSize();
    }
    for (; f < r.failures.length; f++) this.fail(r.failures[f]!);
    for (; e < r.ends.length; e++) this.endLeaves.push(r.ends[e]!);
    this.frontier = extendFrontier(base, r.frontier, r.rows);
    this.chain.takeChunk(r);
    for (const n of r.notes) this.warnings.push(n);
    for (const b of [0, 1] as const) {
      const g = r.gaps[b];
      if (g === undefined || g === null) continue;
      const mine = this.gaps[b];
      if (mine === undefined) this.gaps[b] = { first: g.first, count: g.count };
      else mine.count += g.count;
    }
    return true;
  }

  /**
   * A sealer covers every event committed before it signs, so an event that no stored checkpoint
   * covers but that is dated well before the newest witness-time (of a stored checkpoint, or of
   * the sealer's record) was appended afterwards with an earlier date, or the checkpoints that
   * covered it were deleted.
   */
  private checkDated(row: VerifyRow): void {
    const found = datedGap(row, this.newestWitness!, this.record?.checkpoint.size);
    if (found === undefined) return;
    const gap = this.gaps[found.bucket];
    if (gap !== undefined) gap.count++;
    else this.gaps[found.bucket] = { count: 1, first: found.first() };
  }

  /**
   * A key.rotated row must be the rotation the key history holds at its leaf, and a rotation's leaf
   * must hold that event: the history was read by kind before the rows, through an index whoever
   * writes the database could edit, and only rows are hashed into the signed tree.
   */
  private checkRotationRow(row: VerifyRow): void {
    const expected = this.rotationsDue.get(row.pos);
    const at = { stream: row.stream, seq: row.seq, leaf: row.pos };
    let data: unknown;
    try {
      data = row.data === null ? null : JSON.parse(row.data);
    } catch {
      data = null;
    }
    // A key.rotated outside witness.keys or not by the CLI rotates nothing (core's
    // isGovernanceRecord): named in a note, then verified as the ordinary event it is.
    const ignored = ignoredRotationNote(row);
    if (ignored !== undefined) this.warnings.push(ignored);
    const got = row.kind === 'key.rotated' && ignored === undefined ? rotationOf(data) : undefined;
    if (expected === undefined) {
      // One that names no keys introduces none, so it changes no window.
      if (got !== undefined && this.options.rotations !== undefined) {
        this.fail({ ...at, code: 'key_history_mismatch', reason: `The key.rotated event at leaf ${row.pos} is not in the key history read from the ledger: the query index hides a key rotation.` });
      }
      return;
    }
    this.rotationsDue.delete(row.pos);
    if (got === undefined || got.oldKey !== expected.oldKey || got.newKey !== expected.newKey) {
      this.fail({ ...at, code: 'key_history_mismatch', reason: `Leaf ${row.pos} does not hold the key rotation the key history names for it: the rotation was altered or its payload erased.` });
    }
  }

  private checkRootsAtCurrentSize(): void {
    const size = this.frontier.size;
    let root: Buffer | undefined;
    const rootNow = (): Buffer => (root ??= this.frontier.root());
    while (this.nextCheckpoint < this.checkpointsDue.length && this.checkpointsDue[this.nextCheckpoint]!.checkpoint.size === size) {
      const { id, checkpoint } = this.checkpointsDue[this.nextCheckpoint]!;
      if (!rootNow().equals(checkpoint.rootHash)) {
        this.fail({
          code: 'checkpoint_root_mismatch',
          checkpoint: id,
          leaf: size - 1,
          reason: `The first ${size} events do not hash to the root signed in checkpoint ${id}: events before leaf ${size} were changed, removed, inserted or reordered.`,
        });
      } else {
        this.sealedSize = size;
        this.endLeaves = [];
      }
      this.nextCheckpoint++;
    }
    if (this.againstCp !== undefined && !this.againstChecked && this.againstCp.size === size) {
      this.againstChecked = true;
      if (rootNow().equals(this.againstCp.rootHash)) {
        this.againstMatched = true;
      } else {
        this.fail({ code: 'against_mismatch', leaf: size - 1, reason: `The ledger no longer extends the saved checkpoint of size ${size}: its first ${size} events were rewritten.` });
      }
    }
    const rec = this.record;
    if (rec !== undefined && !rec.checked && rec.checkpoint.size === size) {
      rec.checked = true;
      if (rootNow().equals(rec.checkpoint.rootHash)) {
        rec.matched = true;
      } else {
        this.fail({
          code: 'sealed_record_mismatch',
          leaf: size - 1,
          reason: `The ledger no longer extends the last checkpoint its sealer signed (size ${size}, kept in ${rec.location}): its first ${size} events were rewritten.`,
        });
      }
    }
  }

  /** Artifacts referenced by events, with the first leaf that references each. */
  referencedArtifacts(): ReadonlyMap<string, number> {
    return this.chain.artifactRefs;
  }

  artifactFailure(sha256: string, missing: boolean): void {
    const leaf = this.chain.artifactRefs.get(sha256);
    this.fail({
      code: missing ? 'artifact_missing' : 'artifact_mismatch',
      artifact: sha256,
      ...(leaf === undefined ? {} : { leaf }),
      reason: missing
        ? `Artifact ${sha256} referenced at leaf ${leaf} is missing from the artifact store.`
        : `Artifact ${sha256} referenced at leaf ${leaf} no longer has that SHA-256: its bytes were changed.`,
    });
  }

  /**
   * The driver's query index (a copy of each event's filter columns, kept apart from the events)
   * disagrees with the events at `leaf`: an index row that was forged, altered, added for no
   * event or removed. The events themselves may verify, but `query` answers from the index.
   */
  /**
   * Leaves where the driver's query index (each event's filter columns, kept apart from the events)
   * disagrees with the events: an index row forged, altered, added for no event or removed. The
   * events may verify, but `query` answers from the index. Reported by finish() only when nothing
   * else failed: where events were edited, deleted or moved, the index disagrees with them at every
   * such place, which would only repeat those failures under another name.
   */
  indexMismatches(leaves: readonly number[]): void {
    this.indexLeaves = leaves;
  }

  private indexLeaves: readonly number[] = [];

  fail(f: Failure): void {
    if (this.failures.length < MAX_FAILURES) this.failures.push(f);
  }

  finish(): VerifyReport {
    const size = this.frontier.size;
    for (let i = this.nextCheckpoint; i < this.checkpointsDue.length; i++) {
      const { id, checkpoint } = this.checkpointsDue[i]!;
      this.fail({
        code: 'checkpoint_beyond_ledger',
        checkpoint: id,
        leaf: size,
        reason: `Checkpoint ${id} signs ${checkpoint.size} events but the ledger holds ${size}: events from leaf ${size} on were deleted.`,
      });
    }
    if (this.againstCp !== undefined && !this.againstChecked) {
      this.fail({ code: 'against_mismatch', leaf: size, reason: `The saved checkpoint covers ${this.againstCp.size} events but the ledger holds only ${size}: events were deleted.` });
    }
    const rec = this.record;
    if (rec !== undefined && !rec.checked) {
      this.fail({
        code: 'sealed_record_mismatch',
        leaf: size,
        reason: `The last checkpoint the sealer signed (kept in ${rec.location}) covers ${rec.checkpoint.size} events but the ledger holds only ${size}: events were deleted.`,
      });
    } else if (rec !== undefined && rec.matched && this.largestSigned < rec.checkpoint.size) {
      this.fail({
        code: 'checkpoint_missing',
        leaf: this.largestSigned,
        reason: `The sealer signed a checkpoint of size ${rec.checkpoint.size} (kept in ${rec.location}) but the largest checkpoint left in the ledger has size ${this.largestSigned}: checkpoints were deleted.`,
      });
    }
    // Events the record covers are vouched for once the ledger is shown to extend it.
    const gaps = (rec?.matched === true ? [this.gaps[1]] : this.gaps).filter((g) => g !== undefined);
    const firstGap = gaps[0];
    if (firstGap !== undefined) {
      const count = gaps.reduce((n, g) => n + g.count, 0);
      this.fail({
        ...firstGap.first,
        reason: `${firstGap.first.reason}${count > 1 ? `, and neither are ${count - 1} later event(s)` : ''}: it was appended after that checkpoint with an earlier date, or the checkpoints that covered it were deleted.`,
      });
    }
    for (const leaf of this.rotationsDue.keys()) {
      this.fail({ code: 'key_history_mismatch', leaf, reason: `The key history names a key rotation at leaf ${leaf}, which the ledger does not hold.` });
    }
    if (this.windows !== undefined && this.windows.length > 1) {
      const steps = this.windows.slice(1).map((w, i) => `${this.windows![i]!.fingerprint} → ${w.fingerprint} at leaf ${w.introducedAt}`);
      this.warnings.push(
        `The signing key was rotated (${steps.join('; ')}): each new key was taken from its key.rotated event and trusted because the key before it signed the checkpoint covering that event.`,
      );
    }
    const unsealed = size - this.sealedSize;
    if (this.validCheckpoints === 0 && size > 0 && this.options.keySource === 'pinned' && !this.againstMatched) {
      // With a pinned key the auditor asks "did that key sign this?"; with nothing signed, no.
      this.fail({ code: 'not_sealed', reason: 'No checkpoint signed by the pinned key covers this ledger: nothing here is vouched for by that key (were the checkpoints deleted?).' });
    } else if (this.validCheckpoints === 0 && size > 0) {
      this.warnings.push('No signed checkpoint covers this ledger: integrity rests on the hash chains alone, which anyone with write access can recompute.');
    } else if (unsealed > 0) {
      // Deliberately no advice to seal: sealing after a failed or partial check would sign whatever is there.
      this.warnings.push(`${unsealed} event(s) after the newest checkpoint are chained but not signed, so they could have been rewritten; compare with a checkpoint you saved (--against).`);
    }
    const ends = this.endLeaves.filter((leaf) => leaf >= this.sealedSize);
    if (ends.length > 0) {
      this.warnings.push(
        `${ends.length} session(s) ended (first at leaf ${ends[0]}) with no checkpoint covering the end, although the recorder seals at every session end: a checkpoint may have been deleted.`,
      );
    }
    const unlisted = this.chain.payloadsAbsent - this.chain.payloadsPurged;
    if (unlisted > 0) {
      this.warnings.push(`${unlisted} event(s) have no payload (withheld or erased with their salt): their headers and digests verify, their content cannot be checked.`);
    }
    if (this.chain.purgedPresent > 0) {
      this.warnings.push(
        `${this.chain.purgedPresent} event(s) listed by a retention.purge event still hold their payload (it verifies against its digest): the content was restored after the purge, or the purge did not complete; run the purge again to erase it.`,
      );
    }
    if (this.failures.length === 0) {
      for (const leaf of this.indexLeaves) {
        this.fail({
          code: 'index_mismatch',
          leaf,
          reason: `The query index disagrees with the event at leaf ${leaf} (an index row was added, removed or altered outside Witness), so \`witness query\` may hide or misattribute it; the events themselves verify, and the index must be rebuilt from them before queries on this ledger are trusted.`,
        });
      }
    }
    const failures = [...this.failures].sort((a, b) => (a.leaf ?? Number.MAX_SAFE_INTEGER) - (b.leaf ?? Number.MAX_SAFE_INTEGER));
    const report: VerifyReport = {
      ok: failures.length === 0,
      // A ledger of a newer schema is refused when opened (store_newer_schema), before this runs.
      unverifiable: false,
      events: size,
      streams: this.chain.streamCount,
      checkpoints: this.validCheckpoints,
      sealedSize: this.sealedSize,
      unsealed,
      payloadsAbsent: this.chain.payloadsAbsent,
      artifacts: this.chain.artifactRefs.size,
      openSessions: this.chain.openStreams,
      failures,
      trust: trustedKeys([...this.usedKeys.values()], this.options.keySource, this.validCheckpoints),
      warnings: this.warnings,
    };
    if (failures[0] !== undefined) report.first = failures[0];
    if (rec !== undefined) report.sealRecord = { location: rec.location, size: rec.checkpoint.size, extended: rec.matched && this.largestSigned >= rec.checkpoint.size };
    if (this.purges !== undefined) {
      report.purged = {
        payloads: this.chain.payloadsPurged,
        stillPresent: this.chain.purgedPresent,
        records: this.purges.records.map(({ leaf, id, policy, count }) => ({ leaf, id, policy, count })),
      };
    }
    return report;
  }
}

/**
 * Keys the auditor pinned win; otherwise the keys that came with the data are used (and the
 * report will say where they came from). A malformed pinned key is the caller's error and throws;
 * a malformed accompanying key verifies nothing and is passed to `onBad`.
 */
export function selectVerifiers(
  pinned: readonly string[] | undefined,
  accompanying: readonly string[],
  accompanyingSource: KeySource,
  onBad: (key: string, error: Error) => void = () => undefined,
): { verifiers: NoteVerifier[]; source: KeySource } {
  if (pinned !== undefined && pinned.length > 0) return { verifiers: pinned.map((k) => parseVerifierKey(k.trim())), source: 'pinned' };
  const verifiers: NoteVerifier[] = [];
  for (const k of accompanying) {
    if (k.trim() === '') continue;
    try {
      verifiers.push(parseVerifierKey(k.trim()));
    } catch (e) {
      onBad(k, e as Error);
    }
  }
  return { verifiers, source: accompanyingSource };
}

/** The trust part of a report: which keys signed what was accepted, and where they came from. */
export function trustedKeys(keys: readonly NoteKeyId[], source: KeySource, checkpoints: number): TrustStatement {
  const list = keys.map((k) => ({ name: k.name, keyHash: keyFingerprint(k).slice(k.name.length + 1), source }));
  return { keys: list, statement: trustStatement(source, list.length, checkpoints) };
}

export function trustStatement(source: KeySource, keys: number, checkpoints: number): string {
  if (checkpoints === 0) return 'No checkpoint was checked, so no signing key was relied on; only the hash chains were.';
  const which = `${keys} signing key${keys === 1 ? '' : 's'}`;
  switch (source) {
    case 'pinned':
      return `Checkpoints were verified with ${which} pinned by the auditor (--trusted-key).`;
    case 'bundle':
      return `Checkpoints were verified with ${which} shipped inside the bundle; pin the key you trust with --trusted-key for an independent check.`;
    case 'ledger':
      return `Checkpoints were verified with ${which} stored beside the ledger, which whoever controls the ledger could replace; pin a key with --trusted-key for an independent check.`;
  }
}

function keyId(k: NoteKeyId): string {
  return `${k.name}+${k.keyHash}`;
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The fields the chain checks read, from a header zod accepted. */
export function headerFields(h: EventHeader): HeaderFields {
  return {
    id: h.id,
    ts: h.ts,
    stream: h.stream,
    seq: h.seq,
    kind: h.kind,
    agent: h.agent.id,
    resource: h.resource ?? null,
    action: h.action ?? null,
    outcome: h.outcome ?? null,
    payload_digest: h.payload_digest,
    prev: h.prev,
    received_ts: h.received_ts,
    artifacts: (h.artifacts ?? []).map((a) => a.sha256),
  };
}

/** The failure for a row whose position is not the one expected after the previous row. */
function positionGap(row: { pos: number; stream: string; seq: number }, expectedPos: number): Failure {
  const missing = row.pos > expectedPos ? `${expectedPos}${row.pos - expectedPos > 1 ? `–${row.pos - 1}` : ''}` : undefined;
  return {
    stream: row.stream,
    seq: row.seq,
    leaf: row.pos,
    code: 'position_gap',
    reason:
      missing === undefined
        ? `Leaf ${row.pos} is stored after leaf ${expectedPos - 1}: positions go backwards, so rows were inserted or renumbered.`
        : `Leaf ${missing} ${missing.includes('–') ? 'are' : 'is'} missing before this one: events were deleted.`,
  };
}

export interface NewestWitness {
  time: number;
  checkpoint?: number;
  label: string;
}

/**
 * Whether an event no checkpoint covers is dated well before the newest witness-time, and in
 * which bucket: [0] below the sealer's record size, [1] the rest. The failure is made on demand.
 */
function datedGap(row: VerifyRow, newest: NewestWitness, recordSize: number | undefined): { bucket: 0 | 1; first: () => Failure } | undefined {
  // An event recorded late with the time it happened (an import, OTLP ingest) carries the time it
  // was received in `received_ts`: that is when the sealer could first have covered it. The header
  // is canonical and schema-checked by now, so the top-level member is found by its spelling.
  const received = RECEIVED_TS.exec(row.header)?.[1];
  const ts = Date.parse(received ?? row.ts);
  if (!Number.isFinite(ts) || newest.time - ts <= UNSEALED_TOLERANCE_MS) return undefined;
  const bucket = recordSize !== undefined && row.pos < recordSize ? 0 : 1;
  return {
    bucket,
    first: () => ({
      code: 'unsealed_gap',
      stream: row.stream,
      seq: row.seq,
      leaf: row.pos,
      ...(newest.checkpoint === undefined ? {} : { checkpoint: newest.checkpoint }),
      reason: `${row.kind === 'session.end' ? 'The session.end' : 'The event'} at leaf ${row.pos} is dated ${row.ts}, more than ${UNSEALED_TOLERANCE_MS / 1000} s before ${newest.label} was signed (${new Date(newest.time).toISOString()}), yet no checkpoint in the ledger covers it`,
    }),
  };
}

/**
 * `base` (whose size is a multiple of the chunk size) followed by a chunk's first `rows` leaves,
 * given as the chunk's own frontier (hex, largest subtree first). Each of those subtrees is
 * perfect and starts at a multiple of its size, so it joins the tree as a leaf joins a frontier,
 * one level up.
 */
function extendFrontier(base: Frontier, local: readonly string[], rows: number): Frontier {
  if (rows === 0) return base;
  const { size: baseSize, hashes: baseHex } = base.toJSON();
  const hashes: Buffer[] = baseHex.map((h) => Buffer.from(h, 'hex'));
  let size = baseSize;
  let i = 0;
  let left = rows;
  for (let sub = 2 ** Math.floor(Math.log2(rows)); left > 0; sub /= 2) {
    if (left < sub) continue;
    let h: Buffer = Buffer.from(local[i++]!, 'hex');
    for (let level = sub; Math.floor(size / level) % 2 === 1; level *= 2) h = nodeHash(hashes.pop()!, h);
    hashes.push(h);
    size += sub;
    left -= sub;
  }
  return Frontier.fromJSON({ size, hashes: hashes.map((h) => h.toString('hex')) });
}

/** What a worker is asked to check: positions [start, end) of the ledger. See LedgerVerifier.chunkPlan. */
export interface ChunkPlan {
  origin: string;
  start: number;
  end: number;
  /** Tree sizes in (start, end] at which the chunk reports its frontier, ascending. */
  marks: number[];
  /** For dating events no checkpoint covers (LedgerVerifier.checkDated), when there is a witness-time. */
  dated?: { from: number; newest: NewestWitness; recordSize?: number };
  /** The purge records' ranges that meet the chunk (LedgerVerifier.setPurges). */
  purged?: PurgeCoverData;
  /** What the purge rules judge those records by: the records, holds and retention rules (small). */
  purgeRules?: PurgeRulesData;
}

/** A chunk's findings, in the order a single pass would have made them; plain data, for postMessage. */
export interface ChunkResult {
  start: number;
  rows: number;
  /** The first row, whose position is checked by whoever knows the row before it. */
  first?: { pos: number; stream: string; seq: number };
  lastPos: number;
  failures: Failure[];
  /** At each planned size: how many failures and session ends came before it, and the chunk's frontier (hex). */
  marks: Array<{ size: number; failures: number; ends: number; frontier: string[] }>;
  /** The chunk's frontier after its last row (hex, largest subtree first). */
  frontier: string[];
  /** Leaves of session.end rows. */
  ends: number[];
  /** Each stream where the chunk first met it: it assumed the stream continues from there. */
  entries: Array<{ stream: string; seq: number; prev: string }>;
  exits: Array<{ stream: string; nextSeq: number; prev: string; ended: boolean }>;
  payloadsAbsent: number;
  payloadsPurged: number;
  purgedPresent: number;
  artifacts: Array<[string, number]>;
  gaps: Array<{ first: Failure; count: number } | null>;
  /** Notes on the chunk's rows, in order: key.rotated events that rotate nothing (ignoredRotationNote). */
  notes: string[];
}

/**
 * Checks one chunk of a ledger on its own (in a worker thread) with the chain checker every pass
 * uses, recording what a single pass needs to take the chunk in (LedgerVerifier.addChunk). Memory
 * is bounded by the chunk: its streams, its session ends and a frontier of log2(chunk) hashes.
 */
export class ChunkChecker {
  private readonly chain: ChainChecker;
  private readonly failures: Failure[] = [];
  private readonly entries: ChunkResult['entries'];
  private readonly frontier = Frontier.empty();
  private readonly marks: ChunkResult['marks'] = [];
  private readonly ends: number[] = [];
  private readonly notes: string[] = [];
  private readonly gaps: ChunkResult['gaps'] = [null, null];
  private first: ChunkResult['first'];
  private expectedPos = 0;
  private nextMark = 0;

  constructor(private readonly plan: ChunkPlan) {
    this.chain = new ChainChecker(
      plan.origin,
      (f) => {
        if (this.failures.length < MAX_FAILURES) this.failures.push(f);
      },
      () => undefined,
    );
    this.entries = this.chain.trackEntries();
    if (plan.purged !== undefined) this.chain.setCover(new PurgeCover(plan.purged), plan.purgeRules === undefined ? undefined : new PurgeJudge(plan.purgeRules));
  }

  add(row: VerifyRow): void {
    if (this.first === undefined) this.first = { pos: row.pos, stream: row.stream, seq: row.seq };
    else if (row.pos !== this.expectedPos && this.failures.length < MAX_FAILURES) this.failures.push(positionGap(row, this.expectedPos));
    this.expectedPos = row.pos + 1;
    const recomputed = this.chain.check(row, { stream: row.stream, seq: row.seq, leaf: row.pos });
    if (row.kind === 'session.end') this.ends.push(row.pos);
    if (row.kind === 'key.rotated') {
      const note = ignoredRotationNote(row);
      if (note !== undefined) this.notes.push(note);
    }
    const dated = this.plan.dated;
    if (dated !== undefined && row.pos >= dated.from) {
      const found = datedGap(row, dated.newest, dated.recordSize);
      if (found !== undefined) {
        const g = this.gaps[found.bucket];
        if (g === null || g === undefined) this.gaps[found.bucket] = { first: found.first(), count: 1 };
        else g.count++;
      }
    }
    this.frontier.append(leafHash(recomputed));
    const size = this.plan.start + this.frontier.size;
    const marks = this.plan.marks;
    while (this.nextMark < marks.length && marks[this.nextMark] === size) {
      this.marks.push({ size, failures: this.failures.length, ends: this.ends.length, frontier: this.frontier.toJSON().hashes });
      this.nextMark++;
    }
  }

  finish(): ChunkResult {
    return {
      start: this.plan.start,
      rows: this.frontier.size,
      ...(this.first === undefined ? {} : { first: this.first }),
      lastPos: this.expectedPos - 1,
      failures: this.failures,
      marks: this.marks,
      frontier: this.frontier.toJSON().hashes,
      ends: this.ends,
      entries: this.entries,
      ...this.chain.exits(),
      gaps: this.gaps,
      notes: this.notes,
    };
  }
}
