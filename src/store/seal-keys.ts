import { GOVERNANCE_RULES, WitnessError, isGovernanceRecord, keyFingerprint, parseVerifierKey, rotationOf, type NoteSigner, type RotationEntry } from '../core/index.js';
import type { Ledger, LedgerReader, PublicKeyRow } from './ledger.js';

/*
 * The ledger's signing-key history as the sealer and verify read it: the key the ledger was created
 * with (its key table's first row) and the key.rotated events after it. The table is never trusted
 * for more than the first key: every later key comes from an event, which the checkpoint covering it
 * binds to the old key's signature (src/core/rotation.ts).
 */

/** A recorded rotation, with what a reader shows of it. */
export interface RecordedRotation extends RotationEntry {
  id: string;
  ts: string;
  reason?: string;
}

export interface LedgerKeyHistory {
  /** The key the ledger was created with; undefined for a ledger that never had one. */
  firstKey: string | undefined;
  rotations: RecordedRotation[];
}

/** The stream rotations count in (core's GOVERNANCE_RULES: witness.keys, recorded by the CLI). */
const ROTATIONS_IN = GOVERNANCE_RULES['key.rotated']!.stream;

/**
 * The ledger's key rotations in leaf order, read through its query index: the key.rotated events in
 * witness.keys that `witness keys rotate` recorded (core's isGovernanceRecord). One anywhere else, or
 * by another recorder, is an ordinary event (verify names it in a note): an agent's process that
 * appended one to its session would otherwise block every seal until someone held the key it named.
 */
export async function keyRotations(ledger: Pick<LedgerReader, 'query'>): Promise<RecordedRotation[]> {
  const out: RecordedRotation[] = [];
  let cursor: string | undefined;
  do {
    const page = await ledger.query({ kind: 'key.rotated', stream: ROTATIONS_IN, limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
    for (const e of page.events) {
      if (!isGovernanceRecord(e)) continue;
      const keys = rotationOf(e.data);
      // A rotation whose payload is unreadable introduces no key; verify reports its row.
      if (keys === undefined) continue;
      const reason = e.data?.['reason'];
      out.push({ leaf: e.pos, id: e.id, ts: e.ts, ...keys, ...(typeof reason === 'string' ? { reason } : {}) });
    }
    cursor = page.next;
  } while (cursor !== undefined);
  return out.sort((a, b) => a.leaf - b.leaf);
}

export async function ledgerKeyHistory(ledger: Pick<LedgerReader, 'query'> & { publicKeys(): Promise<PublicKeyRow[]> }): Promise<LedgerKeyHistory> {
  const first = (await ledger.publicKeys())[0];
  return { firstKey: first?.vkey, rotations: await keyRotations(ledger) };
}

/**
 * A driver's sealing state with its key checked against the key history: once a key.rotated event
 * names a new key, that key seals (the ledger's first key is no longer the only one it may be) and
 * the retired one is refused. Without rotations the state is returned as is.
 */
export async function keyAwareFront<F extends { signer: NoteSigner | undefined; canSeal: boolean; location: string; foreignKey: unknown }>(
  front: F,
  ledger: Parameters<typeof ledgerKeyHistory>[0] & Pick<Ledger, 'latestCheckpoint'>,
): Promise<F> {
  if (front.signer === undefined || !front.canSeal) return front;
  const history = await ledgerKeyHistory(ledger);
  if (history.rotations.length === 0) return front;
  checkSealingKey(front.signer, history, front.location, (await ledger.latestCheckpoint())?.size ?? 0);
  return { ...front, foreignKey: undefined };
}

/** The key in use: the last rotation's new key, else the first key. */
export function currentKey(h: LedgerKeyHistory): string | undefined {
  return h.rotations[h.rotations.length - 1]?.newKey ?? h.firstKey;
}

/**
 * Refuses to seal with a key that is not the one in use: a retired key (its checkpoints would fail
 * verify as `retired_key`) or one the ledger never named. The old key of a rotation no checkpoint
 * covers yet (`sealedSize`, the newest checkpoint's) still starts the seal that covers it.
 */
export function checkSealingKey(signer: NoteSigner, h: LedgerKeyHistory, location: string, sealedSize: number): void {
  const current = currentKey(h);
  if (current === undefined || current === signer.verifierKey) return;
  // A rotation recorded and not yet covered by a checkpoint is sealed by its old key (with the new
  // one beside it: pendingRotationSigners), so the old key is still the one to start that seal.
  const last = h.rotations[h.rotations.length - 1];
  if (last !== undefined && last.leaf >= sealedSize && last.oldKey === signer.verifierKey) return;
  const mine = fingerprintOf(signer.verifierKey);
  const retired = h.rotations.find((r) => r.oldKey === signer.verifierKey);
  if (retired !== undefined) {
    throw new WitnessError(
      'seal_refused',
      `Not signing: the signing key ${mine} was retired by the key rotation at leaf ${retired.leaf} of ${location}; sign with the key in use, ${fingerprintOf(current)} (restart long-running processes after \`witness keys rotate\`).`,
    );
  }
  throw new WitnessError(
    'seal_refused',
    `Not signing: the signing key ${mine} is not ${location}'s key in use, ${fingerprintOf(current)}; a ledger is signed by the key it was created with or the last one \`witness keys rotate\` recorded, so use that key.`,
  );
}

/**
 * The rotation a seal is about to cover, given the key.rotated rows among its new events: the seal
 * must then carry the new key's signature beside the old one's. At most one per checkpoint, and
 * only from the key in use: anything else is refused before signing.
 */
export function pendingRotationSigners(found: readonly RotationEntry[], signer: NoteSigner, cosigners: readonly NoteSigner[], location: string): NoteSigner[] {
  if (found.length === 0) return [];
  if (found.length > 1) {
    throw new WitnessError(
      'seal_refused',
      `Not signing: ${found.length} key rotations wait unsealed in ${location} (leaves ${found.map((r) => r.leaf).join(', ')}), and one checkpoint seals one rotation; this ledger was edited, run \`witness verify\`.`,
    );
  }
  const r = found[0]!;
  if (r.oldKey !== signer.verifierKey) {
    throw new WitnessError(
      'seal_refused',
      `Not signing: the key rotation at leaf ${r.leaf} of ${location} retires ${fingerprintOf(r.oldKey)}, not this key ${fingerprintOf(signer.verifierKey)}, so this key cannot vouch for it; run \`witness verify\`.`,
    );
  }
  const next = cosigners.find((c) => c.verifierKey === r.newKey);
  if (next === undefined) {
    throw new WitnessError(
      'seal_refused',
      `Not signing: the key rotation at leaf ${r.leaf} of ${location} is not sealed yet, and its checkpoint needs the new key ${fingerprintOf(r.newKey)} beside this one; \`witness keys rotate\` seals it (run it again with --new-key set to that key if it was interrupted).`,
    );
  }
  return [next];
}

function fingerprintOf(vkey: string): string {
  try {
    return keyFingerprint(parseVerifierKey(vkey));
  } catch {
    return JSON.stringify(vkey.slice(0, 80));
  }
}
