import type { Readable } from 'node:stream';
import {
  WitnessError,
  governanceKindProblem,
  leafRanges,
  unsealedProblem,
  type ArtifactRef,
  type EventInput,
  type NoteSigner,
  type PreparedEvent,
  type StoredEvent,
  type VerifyRow,
} from '../core/index.js';

/** One event to append: the caller's input plus the stream (session) it belongs to. */
export type AppendRequest = EventInput & { stream: string };

/** Conditions an append must meet, checked inside its transaction (so no other append slips between check and write). */
export interface AppendOptions {
  /**
   * Every stream the batch touches must be new (its first event in this batch, by this agent) or
   * already begun by this agent (its seq-0 event's `agent.id`); otherwise the whole batch is
   * refused with `forbidden`. The server passes an agent key's identity, so two agents posting to
   * one new session id at once cannot both write into it. Absent: no check, no extra statement.
   */
  owner?: string;
}

/** The streams a batch touches, each with the agent of its first event in the batch. */
export function batchStreams(events: readonly PreparedEvent[]): Map<string, string> {
  const first = new Map<string, string>();
  for (const ev of events) if (!first.has(ev.stream)) first.set(ev.stream, ev.fields.agent.id);
  return first;
}

/**
 * The owner check both drivers run inside their append transaction, given `stored`: the agent of
 * each touched stream's stored seq-0 event (absent for a new stream). Throws `forbidden`.
 */
export function checkOwner(first: ReadonlyMap<string, string>, owner: string, stored: ReadonlyMap<string, string>): void {
  for (const [stream, batchAgent] of first) {
    if ((stored.get(stream) ?? batchAgent) !== owner) throw ownerRefusal(stream);
  }
}

export function ownerRefusal(stream: string): WitnessError {
  return new WitnessError('forbidden', `Stream ${JSON.stringify(stream)} is another agent's session; record under a session id of your own.`, { details: { path: 'stream', stream } });
}

export interface AppendReceipt {
  id: string;
  stream: string;
  seq: number;
  /** Global position = Merkle leaf index. */
  pos: number;
  hash: string;
}

export interface LedgerInfo {
  /** The ledger's UUID, fixed at creation. */
  id: string;
  /** C2SP checkpoint origin, `<name>/witness/<ledger id>`; also binds every stream's genesis. */
  origin: string;
  schemaVersion: number;
  /** Where the ledger lives, for messages (a path or URL without credentials). */
  location: string;
  /** Number of events (= next global position). */
  size: number;
}

export interface QueryFilter {
  agent?: string;
  stream?: string;
  kind?: string;
  resource?: string;
  action?: string;
  outcome?: string;
  /** Inclusive lower bound on `ts` (ISO-8601). */
  since?: string;
  /** Exclusive upper bound on `ts` (ISO-8601). */
  until?: string;
  limit?: number;
  /** Opaque cursor from a previous page's `next`. */
  cursor?: string;
}

export interface QueryPage {
  events: Array<StoredEvent & { pos: number }>;
  /** Present when more events match: pass it back as `cursor`. */
  next?: string;
}

/**
 * Which sessions `listSessions` lists. A session is a stream, except the system streams (named
 * `witness.…`: approvals decided after their session ended, audit access, the gateway's own
 * errors), which belong to no one session. Every filter must hold; none given lists them all.
 */
export interface SessionFilter {
  /**
   * Exactly this session (stream id): its one summary, or none when it is not a session (no
   * events, or a system stream). A page's header reads it instead of walking the stream; both
   * drivers answer it from their session index (SQLite's session rows, PostgreSQL's (stream, seq)
   * index), never by reading the whole ledger.
   */
  session?: string;
  /** Sessions in which this agent recorded at least one event. */
  agent?: string;
  /** Sessions with at least one event on this resource. */
  resource?: string;
  /** Sessions with at least one event of this outcome. */
  outcome?: string;
  /** Sessions overlapping [since, until): the last event at or after `since` (ISO-8601). */
  since?: string;
  /** …and the first event before `until` (ISO-8601). */
  until?: string;
  /** true: only sessions closed by a session.end; false: only those still open. */
  ended?: boolean;
}

export interface SessionPageRequest {
  /** Sessions per page, 1 to 1,000; default 100. */
  limit?: number;
  /** Opaque cursor from a previous page's `next`. */
  cursor?: string;
}

/** One session as listed: what it is, when, and how much of what happened in it. */
export interface SessionSummary {
  stream: string;
  /** Every agent that recorded in it, the first event's agent first (almost always just one). */
  agents: string[];
  /** `ts` of its first event. */
  start: string;
  /** `ts` of its last event so far. */
  end: string;
  /** Closed by a session.end. */
  ended: boolean;
  /** The session.end's reason (undefined while open, or when its payload was purged). */
  endReason?: string;
  events: number;
  /** tool.call events. */
  toolCalls: number;
  /** Events with outcome `denied`. */
  denials: number;
  /** `error` events and events with outcome `error`, each counted once. */
  errors: number;
  /** approval.request events, and approval.decision events by their data.decision (a purged payload counts in none). */
  approvals: { requested: number; approved: number; denied: number; expired: number };
}

export interface SessionPage {
  /** Newest first: by start, then by stream id, descending. */
  sessions: SessionSummary[];
  /** Present when more sessions match: pass it back as `cursor`. */
  next?: string;
}

/** Which events of one stream `readStreamPage` reads. */
export interface StreamPageRequest {
  /** The first seq to read, an integer from 0 (the default). */
  fromSeq?: number;
  /** Events per page, an integer from 1 to 10,000; default 200. */
  limit?: number;
}

export interface StreamPage {
  /** In seq order: the chain's order, which is what a session's timeline means. */
  events: Array<StoredEvent & { pos: number }>;
  /** Present when the stream held more events when this page was read: pass it back as `fromSeq`. */
  nextSeq?: number;
}

/** Which events `scanKind` reads: one kind, in `query`'s (ts, pos) order, in a window. */
export interface KindScanRequest {
  kind: string;
  agent?: string;
  /** Inclusive lower bound on `ts` (ISO-8601). */
  since?: string;
  /** Exclusive upper bound on `ts` (ISO-8601). */
  until?: string;
  /** Continue after this event (exclusive): the previous page's last row. */
  after?: { ts: string; pos: number };
  /** Rows per page, an integer from 1 to 10,000; default 5,000. Fewer rows than this: the last page. */
  limit?: number;
  /** `always`: every row carries its header text; `purged` (the default): only a row whose payload is gone. */
  header?: 'always' | 'purged';
}

/** One event as `scanKind` reads it: what a bulk reader needs and nothing parsed or converted. */
export interface KindScanRow {
  pos: number;
  id: string;
  ts: string;
  agent: string;
  /** The stored header text (JCS), or null when the request did not ask for it. */
  header: string | null;
  /** The stored payload text (JCS); null when purged or withheld. */
  data: string | null;
}

/** A raw row as stored, for `verify`: nothing in it is trusted. SQLite hands blobs over as Buffers. */
export type RawEventRow = VerifyRow & { salt: Buffer | null; hash: Buffer };

/**
 * A row as `verify` reads it (Ledger.scanForVerify): every column, nothing converted but the two
 * blobs, which come as lowercase hex (a Buffer per blob cost ~2 µs a row, hex strings ~0.1 µs).
 */
export type VerifyScanRow = VerifyRow & { salt: string | null; hash: string };

export interface CheckpointRow {
  id: number;
  size: number;
  root: Buffer;
  /** The signed note (C2SP signed-note over a tlog-checkpoint body). */
  note: string;
  ts: string;
  /** Proof that this checkpoint extends the previous one (hex hashes); empty for the first. */
  consistency: string[];
  prevSize: number | null;
}

export interface PublicKeyRow {
  /** C2SP note verifier key: `<name>+<hash>+<base64 key>`. */
  vkey: string;
  name: string;
  addedAt: string;
}

/** The sealer's record of the last checkpoint its key signed, as kept outside the database (unverified). */
export interface SealRecordText {
  /** The signed note, exactly as the sealer wrote it. */
  note: string;
  /** Where it is kept, for messages. */
  location: string;
}

/** For a ledger that has checkpoints but no record (see Ledger.adopt). */
export interface AdoptOptions {
  /** A signed checkpoint saved earlier (note text): the ledger must still extend it to be adopted. */
  against?: string;
}

export interface AdoptResult {
  /** The checkpoint now recorded as the last one this key signed; null when the ledger has none (nothing to adopt). */
  checkpoint: CheckpointRow | null;
  /** Where the record was written. */
  location: string;
  /** What verification noted but did not fail (an unsealed tail, say): the adopter should read them. */
  warnings: string[];
}

export interface SealOptions {
  /** Write a checkpoint even when no event arrived since the last one (the hourly heartbeat). */
  force?: boolean;
  now?: Date;
  /**
   * The new key of a key rotation being sealed (`witness keys rotate`): the checkpoint that first
   * covers a key.rotated event must carry the new key's signature beside the old one's, and a seal
   * that would cover one without its new key here is refused (store/seal-keys.ts).
   */
  cosigners?: readonly NoteSigner[];
}

/** What a store knows of an artifact without reading its bytes. */
export interface ArtifactInfo {
  sha256: string;
  /** Its length in bytes. */
  bytes: number;
  /** As given when it was first stored; undefined when the store kept the bytes but not the type. */
  mime?: string;
}

/**
 * A byte range of an artifact, both ends inclusive as in HTTP `Range: bytes=start-end` and
 * fs.createReadStream: `start` defaults to 0, `end` to the last byte and is clamped to it.
 */
export interface ArtifactRange {
  start?: number;
  end?: number;
}

/** Bytes fed to putArtifactStream: any async iterable of byte chunks, such as a Node Readable without an encoding. */
export type ArtifactSource = AsyncIterable<Uint8Array>;

/**
 * Event kinds a driver with `watch` announces as they commit: rare ones a process waits on (a held
 * call waits for a person's approval.decision), so that ordinary appends never pay for announcing.
 */
export type WatchedKind = 'approval.decision';

/**
 * What a reader of the ledger needs and nothing more: the gateway's approval desk and anyone
 * handed a recorder's view of its ledger read through this, never write or seal.
 */
export interface LedgerReader {
  readonly info: LedgerInfo;
  getEvent(id: string): Promise<(StoredEvent & { pos: number }) | undefined>;
  readStream(stream: string): Promise<Array<StoredEvent & { pos: number }>>;
  query(filter: QueryFilter): Promise<QueryPage>;
  /** An artifact's bytes by SHA-256 (hex); undefined when the store does not hold it. */
  readArtifact(sha256: string): Promise<Buffer | undefined>;
  /**
   * Optional: calls `onCommit` soon after any process on any host commits an event of `kind` to
   * this ledger (PostgreSQL: LISTEN/NOTIFY), and once each time the driver (re)starts listening, since
   * announcements made meanwhile are lost. A hint to read now, never the events themselves: the
   * watcher reads the ledger, and keeps polling as the fallback. A driver without it (SQLite, one
   * host) leaves readers to poll. Returns the function that stops watching.
   */
  watch?(kind: WatchedKind, onCommit: () => void): () => void;
}

/**
 * The one storage contract. Every driver passes test/store/ledger.contract.ts. Appends are
 * atomic per batch; events, checkpoints and tree nodes are append-only in the database itself.
 */
export interface Ledger extends LedgerReader {
  append(batch: readonly AppendRequest[], options?: AppendOptions): Promise<AppendReceipt[]>;
  /**
   * Validates and commits to payloads (salt, digest, canonical bytes) without touching storage, so
   * a caller can do this CPU work before it queues: pure, no I/O, hence synchronous in every driver.
   */
  prepare(batch: readonly AppendRequest[]): PreparedEvent[];
  /** Appends events made by `prepare` of this ledger, atomically: `append` is prepare + this. */
  appendPrepared(events: readonly PreparedEvent[], options?: AppendOptions): Promise<AppendReceipt[]>;
  /**
   * Sessions matching `filter`, newest first, with their counts, in pages. A page continues after
   * the previous one's last session whatever was appended since: sessions that start later are
   * not on later pages (list again from the top for them), and counts are as of each page's read.
   * An invalid cursor is refused (`invalid_argument`).
   */
  listSessions(filter?: SessionFilter, page?: SessionPageRequest): Promise<SessionPage>;
  /**
   * One stream a page at a time in seq order, read through the (stream, seq) index that appends
   * keep anyway, so a page costs the same wherever it starts and however long the stream is (an
   * agent can make one arbitrarily long). A page continues at `fromSeq` whatever was appended
   * since: pages read while the stream grows are complete and never repeat an event. Anything but
   * integers in range is refused (`invalid_argument`).
   */
  readStreamPage(stream: string, page?: StreamPageRequest): Promise<StreamPage>;
  /**
   * One page of one kind's events in (ts, pos) order, as `query` would find them, but lean: no
   * salt or hash, the header only where asked, nothing parsed. What a reader of many events of a
   * kind (the policy backtest) reads instead of whole stored events. Answers never depend on how
   * far a driver's query index has got.
   */
  scanKind(request: KindScanRequest): Promise<KindScanRow[]>;
  /** Raw rows in position order, in pages, for verification. */
  scan(fromPos?: number, pageSize?: number): AsyncIterable<RawEventRow[]>;
  /**
   * The rows at positions [fromPos, toPos) in position order, in pages of at most `pageSize`, as
   * cheaply as the driver can read them (see VerifyScanRow): what `verify` and its threads read.
   */
  scanForVerify(fromPos: number, toPos?: number, pageSize?: number): AsyncIterable<VerifyScanRow[]>;
  /**
   * Positions (ascending, at most `limit`) where a separate query index the driver keeps disagrees
   * with the events it copies: a row altered, added for no event, or missing below the index's end.
   * `verify` reports each, since `query` answers from that index. A driver that answers queries
   * from the events themselves has nothing to check and may leave this out.
   */
  queryIndexMismatches?(limit: number): Promise<number[]>;
  /**
   * Seals unsealed events into the Merkle tree and writes a signed checkpoint; null when nothing to
   * seal. Refuses (`seal_refused`) unless the tree extends the last checkpoint this key signed.
   */
  seal(options?: SealOptions): Promise<CheckpointRow | null>;
  /** The last checkpoint this ledger's sealer recorded outside the database, for verify; undefined when none. */
  sealRecord(): Promise<SealRecordText | undefined>;
  /** Where the sealer's record is kept (or looked for), for messages. */
  readonly sealRecordLocation: string;
  /**
   * The explicit first use of a ledger that has checkpoints but no record: verifies the whole
   * ledger with this key (and against a saved checkpoint when given), then records its newest
   * checkpoint. Never done silently by seal(), which refuses such a ledger.
   */
  adopt(options?: AdoptOptions): Promise<AdoptResult>;
  checkpoints(): Promise<CheckpointRow[]>;
  latestCheckpoint(): Promise<CheckpointRow | undefined>;
  inclusionProof(pos: number, size: number): Promise<Buffer[]>;
  consistencyProof(oldSize: number, newSize: number): Promise<Buffer[]>;
  /**
   * Every key recorded for the ledger, in the order they were added. The first is the ledger's own
   * key (the one it was created with); `verify` trusts no other without --trusted-key.
   */
  publicKeys(): Promise<PublicKeyRow[]>;
  putArtifact(bytes: Uint8Array, mime: string, role?: string): Promise<ArtifactRef>;
  /**
   * Stores an artifact read from `source` without holding it whole: hashed while written, so its
   * SHA-256 is known only at the end. It becomes visible under that digest only once complete; a
   * source that throws (or a crash) midway leaves nothing under any digest, and the source's own
   * error is rethrown. Bytes already stored are kept once (deduplicated).
   */
  putArtifactStream(source: ArtifactSource, mime: string, role?: string): Promise<ArtifactRef>;
  /**
   * An artifact's bytes (or a range of them) as a stream that reads from the store as it is
   * consumed, never the whole artifact at once; undefined when the store does not hold it. A range
   * that starts past the last byte is refused (`invalid_argument`), as HTTP answers 416.
   */
  readArtifactStream(sha256: string, range?: ArtifactRange): Promise<Readable | undefined>;
  /** An artifact's length (and type) without its bytes; undefined when the store does not hold it. */
  artifactInfo(sha256: string): Promise<ArtifactInfo | undefined>;
  /** Every artifact the store holds, by digest (whether or not an event names it), in digest order. */
  listArtifacts(): AsyncIterable<ArtifactInfo>;
  /**
   * Whether the store holds an artifact's bytes. Artifacts are named by digest only, never by a
   * file path: where the bytes live (files beside a SQLite ledger, a table) is the driver's affair.
   */
  hasArtifact(sha256: string): Promise<boolean>;
  /** Whether this process can sign checkpoints (it has the private key). */
  readonly canSeal: boolean;
  /**
   * The one change to a stored event the ledger allows (DESIGN "Integrity"): in one transaction,
   * appends `record` (a retention.purge event whose data.leaves lists exactly `positions`, see
   * purgeRecord) and sets `data` and `salt` of the events at those positions to NULL. Headers,
   * hashes and digests stay, so everything still verifies, and verify names the record. Both commit
   * or neither does: a crash never leaves a purge without its record. Refused (`invalid_argument`)
   * for positions not ascending, not yet sealed (the sealer checks every payload it signs), of a
   * governance kind (retention.purge, hold.*, config.change, key.rotated), or a record that does
   * not list them. The database's own guard admits this change and no other (purge.ts of each driver).
   */
  purgePayloads(request: PurgeRequest): Promise<PurgeReceipt>;
  close(): Promise<void>;
}

/** What purgePayloads erases and the event that records it. */
export interface PurgeRequest {
  /** Positions whose payloads are erased, ascending and distinct. */
  positions: readonly number[];
  /** The retention.purge event, `data.leaves` = leafRanges(positions) and `data.count` = their number. */
  record: AppendRequest;
}

export interface PurgeReceipt {
  /** The recording retention.purge event. */
  record: AppendReceipt;
  /** Payloads erased now (positions already erased count in `positions` but not here). */
  erased: number;
}

// Kinds never purged (the record of governance itself) are core's: verify judges purges by the same list.
export { UNPURGEABLE_KINDS } from '../core/index.js';

/** The checks both drivers run on a purge request before their transaction; throws `invalid_argument`. */
export function checkPurgeRequest(request: PurgeRequest): void {
  const { positions, record } = request;
  const bad = (why: string) => new WitnessError('invalid_argument', `Cannot purge: ${why}.`, { details: { path: 'positions' } });
  if (!Array.isArray(positions) || positions.length === 0) throw bad('no positions were given');
  for (let i = 0; i < positions.length; i++) {
    const p = positions[i]!;
    if (!Number.isSafeInteger(p) || p < 0 || (i > 0 && p <= positions[i - 1]!)) throw bad(`positions must be ascending distinct integers from 0, and ${String(p)} at index ${i} is not`);
  }
  if (record.kind !== 'retention.purge') throw bad(`the record must be a retention.purge event, not ${String(record.kind)}`);
  const data = record.data as { count?: unknown; leaves?: unknown };
  if (data.count !== positions.length || JSON.stringify(data.leaves) !== JSON.stringify(leafRanges(positions))) {
    throw bad('the retention.purge record must list exactly the purged positions (data.leaves = leafRanges(positions), data.count = their number)');
  }
}

/** The refusal of a purge that reaches a governance kind or an unsealed position, in one sentence; undefined when none does. */
export function purgeTargetRefusal(rows: ReadonlyArray<{ pos: number; kind: string }>, sealedSize: number, expected: number): WitnessError | undefined {
  if (rows.length !== expected) return new WitnessError('invalid_argument', `Cannot purge: ${expected - rows.length} of the given positions hold no event.`);
  for (const r of rows) {
    if (unsealedProblem(r.pos, sealedSize) !== undefined) {
      return new WitnessError(
        'invalid_argument',
        `Cannot purge leaf ${r.pos}: it is not in a signed checkpoint yet (sealed size ${sealedSize}); run \`witness seal\` first, so the key vouched for the content before it goes.`,
      );
    }
    if (governanceKindProblem(r.pos, r.kind) !== undefined) {
      return new WitnessError('invalid_argument', `Cannot purge leaf ${r.pos}: it is a ${r.kind} event, part of the record of governance, which is kept.`);
    }
  }
  return undefined;
}

/** Events per page of `readStreamPage` when the caller names no limit, and the most it allows. */
export const STREAM_PAGE_DEFAULT = 200;
export const STREAM_PAGE_MAX = 10_000;

/** `readStreamPage`'s arguments checked as both drivers need them: { fromSeq, limit }, or a refusal. */
export function streamPageArgs(stream: string, page: StreamPageRequest): { fromSeq: number; limit: number } {
  const { fromSeq = 0, limit = STREAM_PAGE_DEFAULT } = page;
  if (typeof stream !== 'string' || stream === '') {
    throw new WitnessError('invalid_argument', 'readStreamPage needs a stream name; pass the session id.', { details: { path: 'stream' } });
  }
  if (!Number.isSafeInteger(fromSeq) || fromSeq < 0) {
    throw new WitnessError('invalid_argument', `fromSeq must be an integer from 0, not ${String(fromSeq)}; pass 0 or the previous page's nextSeq.`, { details: { path: 'fromSeq' } });
  }
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > STREAM_PAGE_MAX) {
    throw new WitnessError('invalid_argument', `limit must be an integer from 1 to ${STREAM_PAGE_MAX}, not ${String(limit)}; read a long stream in several pages.`, { details: { path: 'limit' } });
  }
  return { fromSeq, limit };
}

/** A page from `limit + 1` rows read in seq order: the extra row only says that more follow. */
export function streamPageOf(rows: Array<StoredEvent & { pos: number }>, limit: number): StreamPage {
  if (rows.length <= limit) return { events: rows };
  const events = rows.slice(0, limit);
  return { events, nextSeq: events[events.length - 1]!.seq + 1 };
}
