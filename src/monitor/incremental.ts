import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ChainChecker, Frontier, genesisHash, leafHash, openCheckpoint, selectVerifiers, verifyConsistency, type Failure, type NoteVerifier } from '../core/index.js';
import { ledgerKeyHistory, type CheckpointRow, type Ledger } from '../store/index.js';

/**
 * Verifies each checkpoint as it appears, from the last one verified: its signature, that it
 * extends the verified one (the consistency proof checked against the root verified before, not
 * against anything stored), and every new leaf (payload digest, event hash, the link to the
 * stream's previous event, the artifacts it names), folded into the saved frontier whose root must
 * equal the signed one. The frontier is O(log n) hashes, so this costs the new events only; what
 * it cannot see (an old row edited later, an artifact replaced later) is the scheduled full pass's.
 */

export const VerifiedState = z.strictObject({
  checkpoint: z.number().int(),
  size: z.number().int().min(0),
  root: z.string().regex(/^[0-9a-f]{64}$/),
  frontier: z.strictObject({ size: z.number().int().min(0), hashes: z.array(z.string()) }),
});
export type VerifiedState = z.infer<typeof VerifiedState>;

export interface IncrementalResult {
  /** Checkpoints verified in this call: the newest, or none when it was verified before. */
  checkpoints: number;
  /** New leaves checked. */
  events: number;
  /** Empty when everything checked holds; the state then advanced to `state`. */
  failures: Failure[];
  state: VerifiedState | undefined;
  /** Trusted keys' source, for messages. */
  keySource: string;
}

/**
 * Verifies the newest checkpoint against the last one verified. Checkpoints sealed in between are
 * covered by the consistency proof between the two (and each is checked by itself in the full
 * pass), so a pass reads one checkpoint row however many a busy sealer wrote: the table grows by
 * 8,640 rows a day at one seal every 10 s.
 */
export async function verifyNewCheckpoints(ledger: Ledger, state: VerifiedState | undefined, trustedKeys?: string[]): Promise<IncrementalResult> {
  const latest = await ledger.latestCheckpoint();
  const result: IncrementalResult = { checkpoints: 0, events: 0, failures: [], state, keySource: 'ledger' };
  if (latest === undefined || (state !== undefined && latest.id <= state.checkpoint)) return result;
  // The ledger's keys: its first, and each a key.rotated event named after it. Any of them may have
  // signed the newest checkpoint (one sealed just before a rotation's checkpoint carries only the
  // old key); which key may sign when (the windows) is judged by the full pass. Pinned keys: the
  // same chain when one of them is in it, else those keys alone.
  const history = await ledgerKeyHistory(ledger);
  const chain = history.firstKey === undefined ? [] : [history.firstKey, ...history.rotations.map((r) => r.newKey)];
  const pinned = trustedKeys !== undefined && trustedKeys.length > 0 ? trustedKeys : undefined;
  const inChain = pinned?.some((k) => chain.includes(k.trim())) === true;
  const { verifiers, source } = pinned !== undefined && !inChain ? selectVerifiers(pinned, [], 'ledger') : selectVerifiers(undefined, chain, pinned === undefined ? 'ledger' : 'pinned');
  result.keySource = source;
  const checked = await checkOne(ledger, state, latest, verifiers);
  result.checkpoints = 1;
  result.failures = checked.failures;
  if (checked.failures.length === 0) {
    result.events = checked.events;
    result.state = checked.next;
  }
  return result;
}

async function checkOne(
  ledger: Ledger,
  from: VerifiedState | undefined,
  cp: CheckpointRow,
  verifiers: NoteVerifier[],
): Promise<{ failures: Failure[]; events: number; next: VerifiedState | undefined }> {
  const failures: Failure[] = [];
  const fail = (f: Failure) => {
    if (failures.length < 100) failures.push(f);
  };
  const origin = ledger.info.origin;
  const fromSize = from?.size ?? 0;
  const frontier = from === undefined ? Frontier.empty() : Frontier.fromJSON(from.frontier);
  const nothing = { failures, events: 0, next: from };
  let rootHash: Buffer;
  let size: number;
  try {
    const opened = openCheckpoint(cp.note, verifiers, origin);
    rootHash = Buffer.from(opened.checkpoint.rootHash);
    size = opened.checkpoint.size;
  } catch (e) {
    fail({ code: 'checkpoint_signature', checkpoint: cp.id, reason: `Checkpoint ${cp.id} (size ${cp.size}) does not verify: ${(e as Error).message}` });
    return nothing;
  }
  if (size !== cp.size) fail({ code: 'checkpoint_invalid', checkpoint: cp.id, reason: `Checkpoint ${cp.id} is stored as size ${cp.size} but its signed body says ${size}.` });
  if (size < fromSize) {
    fail({ code: 'consistency_failed', checkpoint: cp.id, reason: `Checkpoint ${cp.id} has size ${size}, smaller than the verified checkpoint's ${fromSize}: history was rolled back.` });
    return nothing;
  }
  if (from !== undefined && fromSize > 0) {
    // The stored proof when it was made from the verified size, else one the store computes now:
    // either way it is checked against the root verified earlier, so a store cannot talk its way past.
    const proof = cp.prevSize === fromSize ? cp.consistency.map((h) => Buffer.from(/^[0-9a-f]{64}$/.test(h) ? h : '', 'hex')) : await ledger.consistencyProof(fromSize, size);
    const r = verifyConsistency(fromSize, size, proof, Buffer.from(from.root, 'hex'), rootHash);
    if (!r.ok)
      fail({
        code: 'consistency_failed',
        checkpoint: cp.id,
        reason: `Checkpoint ${cp.id} (size ${size}) does not extend the verified checkpoint ${from.checkpoint} (size ${fromSize}): ${r.reason}; history was rewritten.`,
      });
  }
  const chain = new ChainChecker(origin, fail, () => undefined);
  const entries = chain.trackEntries();
  let expected = fromSize;
  for await (const page of ledger.scanForVerify(fromSize, size, 1000)) {
    for (const row of page) {
      if (row.pos !== expected) fail({ code: 'position_gap', leaf: expected, reason: `Leaf ${expected} is missing: the next stored event is at position ${row.pos}.` });
      expected = row.pos + 1;
      frontier.append(leafHash(chain.check(row, { stream: row.stream, seq: row.seq, leaf: row.pos })));
    }
  }
  if (expected < size)
    fail({ code: 'checkpoint_beyond_ledger', checkpoint: cp.id, leaf: expected, reason: `Checkpoint ${cp.id} signs ${size} events but the ledger holds ${expected}: events were deleted.` });
  // Each stream met in the new leaves must continue from where it stood before them.
  for (const e of entries) {
    const at = { stream: e.stream, seq: e.seq };
    if (e.seq === 0) {
      if (genesisHash(origin, e.stream).toString('hex') !== e.prev) fail({ ...at, code: 'wrong_genesis', reason: `Stream ${e.stream} does not start from this ledger's genesis for it.` });
      continue;
    }
    const before = (await ledger.readStreamPage(e.stream, { fromSeq: e.seq - 1, limit: 1 })).events[0];
    if (before === undefined || before.seq !== e.seq - 1) fail({ ...at, code: 'seq_gap', reason: `Seq ${e.seq - 1} of stream ${e.stream}, which seq ${e.seq} follows, is missing.` });
    else if (before.pos >= fromSize) fail({ ...at, code: 'seq_out_of_order', reason: `Seq ${e.seq - 1} of stream ${e.stream} is stored after seq ${e.seq}.` });
    else if (before.hash !== e.prev) fail({ ...at, code: 'prev_mismatch', reason: `Seq ${e.seq} of stream ${e.stream} does not link to the event before it.` });
    else if (before.kind === 'session.end') fail({ ...at, code: 'event_after_end', reason: `Stream ${e.stream} has an event after its session.end.` });
  }
  if (!frontier.root().equals(rootHash)) {
    fail({
      code: 'checkpoint_root_mismatch',
      checkpoint: cp.id,
      reason: `The first ${size} events do not hash to the root signed in checkpoint ${cp.id}: events after leaf ${fromSize} were changed, removed, inserted or reordered.`,
    });
  }
  for (const [sha, leaf] of chain.artifactRefs) {
    const stream = await ledger.readArtifactStream(sha).catch(() => undefined);
    if (stream === undefined) {
      fail({ code: 'artifact_missing', artifact: sha, leaf, reason: `Artifact ${sha} referenced at leaf ${leaf} is missing from the artifact store.` });
      continue;
    }
    const hash = createHash('sha256');
    try {
      for await (const piece of stream) hash.update(piece as Buffer);
    } catch {
      fail({ code: 'artifact_mismatch', artifact: sha, leaf, reason: `Artifact ${sha} referenced at leaf ${leaf} could not be read whole.` });
      continue;
    }
    if (hash.digest('hex') !== sha) fail({ code: 'artifact_mismatch', artifact: sha, leaf, reason: `Artifact ${sha} referenced at leaf ${leaf} no longer has that SHA-256: its bytes were changed.` });
  }
  const next: VerifiedState = { checkpoint: cp.id, size, root: rootHash.toString('hex'), frontier: frontier.toJSON() };
  return { failures, events: size - fromSize, next: failures.length === 0 ? next : from };
}
