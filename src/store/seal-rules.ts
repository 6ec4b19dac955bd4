import {
  ChainChecker,
  Frontier,
  WitnessError,
  consistencyProof,
  formatCheckpoint,
  isGovernanceHeaderText,
  leafHash,
  openCheckpoint,
  rotationOf,
  verifyConsistency,
  type Failure,
  type NodeSource,
  type NoteVerifier,
  type RotationEntry,
} from '../core/index.js';
import type { RawEventRow } from './ledger.js';
import { openSealRecord, readSealRecordText, recordOrPending, writeSealRecord, type SealRecord } from './seal-record.js';

/*
 * The sealing rules every driver applies before its key signs anything, independent of how the
 * driver reads its rows (SQLite's synchronous statements, PostgreSQL's pooled queries): the newest
 * stored checkpoint must be this key's, at least as large as the sealer's record, provably
 * consistent with it, and its stored frontier must reproduce its signed root. Moved here from
 * sqlite/sealer.ts unchanged so the PostgreSQL sealer (postgres/seal.ts) refuses exactly the same
 * ledgers with exactly the same sentences.
 */

/** The stored checkpoint columns the rules read. */
export interface StoredCheckpoint {
  id: number;
  size: number;
  note: string;
  frontier: string;
}

/** What the rules say in their sentences about the ledger being sealed. */
export interface SealRulesContext {
  /** The ledger, for messages (a path, or a URL without credentials). */
  location: string;
  origin: string;
  sealRecordPath: string;
  /** The record's path was given (option or environment), so messages repeat it. */
  sealRecordConfigured: boolean;
  /** The `--store` argument that names this ledger, for the `witness seal --adopt` a message suggests. */
  storeArg: string;
}

export function sealRefused(why: string, details?: Record<string, unknown>): WitnessError {
  return new WitnessError('seal_refused', `Not signing: ${why}.`, details === undefined ? {} : { details });
}

/**
 * Where the next tree starts: the newest stored checkpoint's frontier, once that checkpoint is
 * shown to be this key's and to extend the record. `stored` serves the stored tree nodes the
 * consistency proof from the record's size to the checkpoint's size needs (see neededNodes).
 */
export function trustedFrontier(
  last: StoredCheckpoint | undefined,
  record: SealRecord | undefined,
  own: NoteVerifier,
  ctx: SealRulesContext,
  stored: NodeSource,
): { frontier: Frontier; root: Buffer | undefined } {
  const where = ctx.location;
  const recordPath = ctx.sealRecordPath;
  const kept = `kept in ${recordPath}`;
  if (last === undefined) {
    if (record !== undefined) {
      throw sealRefused(
        `${where} holds no checkpoint, but this key last signed one of size ${record.size} for it (${kept}), so its checkpoints were deleted or the ledger was replaced; run \`witness verify --against ${recordPath}\``,
      );
    }
    return { frontier: Frontier.empty(), root: undefined };
  }
  if (record === undefined) {
    // No silent trust on first use: a ledger with checkpoints and no record was sealed before
    // records existed, had its record moved aside, or had it deleted by someone rolling it back.
    // Only a person can tell which, so adoption is an explicit command that verifies first.
    const seal = `witness seal --adopt --store ${ctx.storeArg}${ctx.sealRecordConfigured ? ` --seal-record ${recordPath}` : ''}`;
    throw sealRefused(
      `${where} has checkpoints but no record of the last one this key signed (looked for ${recordPath}), so it cannot tell whether they were rolled back; if the ledger is yours and intact, run \`${seal}\` (with --against FILE if you saved a checkpoint), which verifies it whole and then records its newest checkpoint`,
      { noRecord: true },
    );
  }
  let signed: { size: number; root: Buffer };
  try {
    const { checkpoint } = openCheckpoint(last.note, [own], ctx.origin);
    signed = { size: checkpoint.size, root: Buffer.from(checkpoint.rootHash) };
  } catch {
    throw sealRefused(`the newest checkpoint in ${where} (id ${last.id}, size ${last.size}) is not signed by this key, so it was not written by this ledger's sealer; run \`witness verify\``);
  }
  if (signed.size !== last.size) {
    throw sealRefused(`checkpoint ${last.id} in ${where} is stored as size ${last.size} but signed for size ${signed.size}, so the checkpoints table was edited; run \`witness verify\``);
  }
  if (signed.size < record.size) {
    throw sealRefused(
      `the newest checkpoint in ${where} has size ${signed.size}, but this key last signed one of size ${record.size} (${kept}), so checkpoints were deleted or the ledger was rolled back; run \`witness verify --against ${recordPath}\``,
    );
  }
  provenConsistency(
    record.size,
    record.root,
    signed.size,
    signed.root,
    stored,
    () =>
      `the newest checkpoint in ${where} (size ${signed.size}) does not extend the last one this key signed (size ${record.size}, ${kept}), so history was rewritten; run \`witness verify --against ${recordPath}\``,
  );
  let frontier: Frontier;
  try {
    frontier = Frontier.fromJSON(JSON.parse(last.frontier));
  } catch {
    throw sealRefused(`the stored frontier of checkpoint ${last.id} in ${where} is malformed, so the sealer's working state was edited; run \`witness verify\``);
  }
  if (frontier.size !== signed.size || !frontier.root().equals(signed.root)) {
    throw sealRefused(
      `the stored frontier of checkpoint ${last.id} in ${where} does not reproduce the root this key signed for size ${signed.size}, so it was edited to make the key sign another tree; run \`witness verify\``,
    );
  }
  return { frontier, root: signed.root };
}

/** A consistency proof from stored nodes, checked by the core verifier against two signed roots; refuses when it fails. */
export function provenConsistency(oldSize: number, oldRoot: Buffer, newSize: number, newRoot: Buffer, src: NodeSource, why: () => string): Buffer[] {
  let proof: Buffer[];
  try {
    proof = consistencyProof(oldSize, newSize, src);
  } catch {
    throw sealRefused(why());
  }
  if (!verifyConsistency(oldSize, newSize, proof, oldRoot, newRoot).ok) throw sealRefused(why());
  return proof;
}

/** `stored` plus the nodes a seal is about to store. */
export function withNewNodes(stored: NodeSource, nodes: ReadonlyArray<{ level: number; index: number; hash: Buffer }>): NodeSource {
  const fresh = new Map<string, Buffer>();
  for (const n of nodes) fresh.set(`${n.level}/${n.index}`, n.hash);
  return { node: (level, index) => fresh.get(`${level}/${index}`) ?? stored.node(level, index) };
}

/**
 * The (level, index) of every stored node `proof` reads, found by running it over placeholder
 * hashes: which nodes a proof reads depends on the sizes alone, never on the hashes. A driver
 * whose reads are asynchronous fetches these in one query and then runs the proof for real.
 * Invalid sizes throw here as they would in the proof itself.
 */
export function neededNodes(proof: (src: NodeSource) => unknown): Array<{ level: number; index: number }> {
  const seen = new Map<string, { level: number; index: number }>();
  const placeholder = Buffer.alloc(32);
  proof({
    node(level, index) {
      seen.set(`${level}/${index}`, { level, index });
      return placeholder;
    },
  });
  return [...seen.values()];
}

// ------------------------------------------------------------------ the plan of one seal

/**
 * At most this many events go into one checkpoint: their new tree nodes are held in memory until
 * the short write transaction stores them. A larger backlog (a bulk import, a ledger sealed for the
 * first time) is sealed as several checkpoints in a row, each extending the one before.
 */
export const SEAL_MAX_EVENTS = 100_000;

/** A seal's work, planned in one read snapshot and stored by the driver's short write transaction. */
export interface SealPlan {
  /** The record as read with the snapshot; the commit starts over when it changed since. */
  recordText: string | undefined;
  lastId: number | undefined;
  end: number;
  /** More events were committed than one checkpoint takes (SEAL_MAX_EVENTS): seal again. */
  more: boolean;
  nodes: Array<{ level: number; index: number; hash: Buffer }>;
  root: Buffer;
  frontier: string;
  consistency: Buffer[];
  prevSize: number | null;
  body: string;
  /** key.rotated events this checkpoint is the first to cover. */
  rotations: RotationEntry[];
}

/** The sealer's record as the plan reads it (read before the newest checkpoint is looked at), or the pending note that stands for it. */
export function readRecord(ctx: SealRulesContext, own: NoteVerifier): { recordText: string | undefined; record: (newestSize: number | undefined) => SealRecord | undefined } {
  const recordText = readSealRecordText(ctx.sealRecordPath);
  const opened = recordText === undefined ? undefined : openSealRecord(recordText, own, ctx.origin, ctx.sealRecordPath);
  return { recordText, record: (newestSize) => recordOrPending(ctx.sealRecordPath, opened, newestSize, own, ctx.origin) };
}

/**
 * Whether there is nothing to seal: no event since the newest checkpoint (or none at all), and no
 * forced heartbeat. After a kill -9 that left only the pending note (seal-record.ts), the newest
 * checkpoint, just shown to extend it, becomes the record here, so the ledger needs the note no more.
 */
export function nothingToSeal(
  last: (StoredCheckpoint & { root: Buffer }) | undefined,
  committed: number,
  force: boolean,
  recordText: string | undefined,
  ctx: SealRulesContext,
  own: NoteVerifier,
): boolean {
  if (force) return false;
  if (last === undefined) return committed === 0;
  if (committed !== last.size) return false;
  if (recordText === undefined) writeSealRecord(ctx.sealRecordPath, { note: last.note, size: Number(last.size), root: Buffer.from(last.root) }, own, ctx.origin);
  return true;
}

/**
 * The new events of a seal, in position order, each verified before the key vouches for it (digest,
 * hash, link to its stored predecessor: a rewrite of the unsealed tail is refused here instead of
 * being signed by the real key) and folded into the tree.
 */
export class NewEvents {
  private readonly failures: Failure[] = [];
  private readonly chain: ChainChecker;
  readonly nodes: Array<{ level: number; index: number; hash: Buffer }> = [];
  /** key.rotated events among the new ones: the checkpoint must then carry the new key's signature too (seal-keys.ts). */
  readonly rotations: RotationEntry[] = [];

  constructor(
    private readonly ctx: SealRulesContext,
    readonly frontier: Frontier,
  ) {
    this.chain = new ChainChecker(
      ctx.origin,
      (f) => this.failures.push(f),
      () => undefined,
    );
  }

  /** The next position the tree expects. */
  get size(): number {
    return this.frontier.size;
  }

  /** Whether `row` continues a stream that began before this seal, so its stored predecessor must be given (seed). */
  needsPredecessor(row: Pick<RawEventRow, 'stream' | 'seq'>): boolean {
    return !this.chain.streams.has(row.stream) && row.seq > 0;
  }

  /** The stored hash of the event before `seq` in `stream`. */
  seed(stream: string, seq: number, prev: Buffer): void {
    this.chain.seed(stream, seq, prev);
  }

  add(row: RawEventRow): void {
    if (row.pos !== this.frontier.size) throw this.missing();
    const hash = this.chain.check(row, { stream: row.stream, seq: row.seq, leaf: row.pos });
    const bad = this.failures[0];
    if (bad !== undefined) {
      throw new WitnessError(
        'store_corrupt',
        `Not signing: the event at leaf ${row.pos} (session ${row.stream}, seq ${row.seq}) does not verify (${bad.code}); the ledger may have been edited, run \`witness verify\`.`,
        { details: { failure: bad } },
      );
    }
    for (const n of this.frontier.push(leafHash(hash))) this.nodes.push(n);
    // Only a rotation `witness keys rotate` recorded asks for the new key's signature (core's
    // isGovernanceRecord): any other key.rotated is an ordinary event, so no writer of an agent's
    // session can stop the sealer by naming a key nobody holds.
    if (row.kind === 'key.rotated' && isGovernanceHeaderText(row.kind, row.stream, row.header)) {
      let data: unknown = null;
      try {
        data = row.data === null ? null : JSON.parse(row.data);
      } catch {
        // Unreadable: it names no key, so it asks for no signature (verify ignores it likewise).
      }
      const keys = rotationOf(data);
      if (keys !== undefined) this.rotations.push({ leaf: row.pos, ...keys });
    }
  }

  /** A page came back shorter than asked: a position below the committed end is not stored. */
  missing(): WitnessError {
    return new WitnessError('store_corrupt', `Event position ${this.frontier.size} is missing from ${this.ctx.location}; not signing: run \`witness verify\`.`);
  }
}

/**
 * The rest of the plan once the new events are in: the new root, the consistency proof from the
 * newest checkpoint (built from stored nodes plus the new ones, which the database's writer could
 * have edited: checked before it is stored, so a stored proof never fails), and the body to sign.
 * `stored` serves the stored nodes that proof reads (see neededNodes).
 */
export function finishPlan(
  ctx: SealRulesContext,
  events: NewEvents,
  last: { id: number; size: number } | undefined,
  lastRoot: Buffer | undefined,
  committed: number,
  recordText: string | undefined,
  stored: NodeSource,
  now: Date,
): SealPlan {
  const end = events.size;
  const root = events.frontier.root();
  const prevSize = last?.size ?? null;
  let consistency: Buffer[] = [];
  if (last !== undefined && lastRoot !== undefined) {
    consistency = provenConsistency(
      last.size,
      lastRoot,
      end,
      root,
      withNewNodes(stored, events.nodes),
      () => `the stored tree nodes do not prove that the new tree of ${end} events extends checkpoint ${last.id} (size ${last.size}): the tree_nodes table was edited`,
    );
  }
  const body = formatCheckpoint({ origin: ctx.origin, size: end, rootHash: root, extensions: [`witness-time ${now.toISOString()}`] });
  return {
    recordText,
    lastId: last?.id,
    end,
    more: end < committed,
    nodes: events.nodes,
    root,
    frontier: JSON.stringify(events.frontier.toJSON()),
    consistency,
    prevSize,
    body,
    rotations: events.rotations,
  };
}
