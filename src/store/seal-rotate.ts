import { GOVERNANCE_RULES, WitnessError, keyFingerprint, type NoteSigner } from '../core/index.js';
import type { CheckpointRow, Ledger } from './ledger.js';
import { currentKey, ledgerKeyHistory, type RecordedRotation } from './seal-keys.js';

/** The system stream key rotations are recorded on. */
export const ROTATION_STREAM = GOVERNANCE_RULES['key.rotated']!.stream;

export interface RotateRequest {
  /** The key in use, which vouches for the new one. */
  oldSigner: NoteSigner;
  newSigner: NoteSigner;
  reason?: string;
  /** Who rotates (the operating-system user), recorded as the principal. */
  who: string;
  /** The CLI's version, recorded with its recorder kind (`cli`: the one recorder whose rotations count, core's GOVERNANCE_RULES). */
  version?: string;
}

export interface RotateResult {
  rotation: RecordedRotation;
  /** The checkpoint signed by both keys. */
  checkpoint: CheckpointRow;
  /** True when an interrupted rotation (recorded, not yet sealed) was completed rather than a new one recorded. */
  resumed: boolean;
}

/**
 * Rotates the ledger's signing key: seals what is pending with the old key, records `key.rotated`
 * (both verifier keys and fingerprints: the ledger itself says which key comes next, signed by the
 * old one), then seals the checkpoint that first covers it with both keys. From then on only the
 * new key seals (seal-keys.ts). A rotation recorded but not sealed (a crash in between) is completed
 * when asked again with the same new key; with another, it is refused.
 */
export async function rotateSigningKey(ledger: Ledger, req: RotateRequest): Promise<RotateResult> {
  const { oldSigner, newSigner } = req;
  if (oldSigner.verifierKey === newSigner.verifierKey) {
    throw new WitnessError('invalid_argument', 'The new signing key is the key in use; give a different key, or leave --new-key out to generate one.');
  }
  const history = await ledgerKeyHistory(ledger);
  const inUse = currentKey(history);
  const last = history.rotations[history.rotations.length - 1];
  const sealedSize = (await ledger.latestCheckpoint())?.size ?? 0;
  if (last !== undefined && last.leaf >= sealedSize) {
    // Recorded, not sealed: only its own new key may complete it.
    if (last.oldKey !== oldSigner.verifierKey || last.newKey !== newSigner.verifierKey) {
      throw new WitnessError(
        'invalid_argument',
        `A key rotation to ${fp(last.newKey)} was recorded at leaf ${last.leaf} but not sealed; run \`witness keys rotate --new-key FILE\` with that key (kept as <key>.next beside the key file when it was generated) to complete it.`,
      );
    }
    const checkpoint = await ledger.seal({ cosigners: [newSigner] });
    if (checkpoint === null) throw new WitnessError('seal_refused', `The key rotation at leaf ${last.leaf} could not be sealed; run \`witness verify\`.`);
    return { rotation: last, checkpoint, resumed: true };
  }
  if (inUse !== undefined && inUse !== oldSigner.verifierKey) {
    throw new WitnessError('invalid_key', `The signing key ${fp(oldSigner.verifierKey)} is not the key ${ledger.info.location} is signed with now (${fp(inUse)}); rotate with the key in use.`);
  }
  // Everything before the rotation is sealed by the old key alone, so the rotation checkpoint adds little.
  await ledger.seal();
  const data = {
    old_key: oldSigner.verifierKey,
    new_key: newSigner.verifierKey,
    old_fingerprint: keyFingerprint(oldSigner),
    new_fingerprint: keyFingerprint(newSigner),
    ...(req.reason === undefined ? {} : { reason: req.reason }),
  };
  const [receipt] = await ledger.append([
    {
      stream: ROTATION_STREAM,
      agent: { id: 'witness-cli' },
      principal: { id: req.who, kind: 'human' },
      recorder: { kind: 'cli', ...(req.version === undefined ? {} : { version: req.version }) },
      kind: 'key.rotated',
      resource: 'signing-key',
      action: 'rotate',
      outcome: 'success',
      data,
    },
  ]);
  if (receipt === undefined) throw new WitnessError('store_unavailable', 'The key rotation was not recorded; nothing changed, run it again.');
  const checkpoint = await ledger.seal({ cosigners: [newSigner] });
  if (checkpoint === null) throw new WitnessError('seal_refused', `The key rotation at leaf ${receipt.pos} was recorded but not sealed; run \`witness keys rotate\` again with the same --new-key.`);
  const rotation: RecordedRotation = {
    leaf: receipt.pos,
    id: receipt.id,
    ts: (await ledger.getEvent(receipt.id))?.ts ?? new Date().toISOString(),
    oldKey: data.old_key,
    newKey: data.new_key,
    ...(req.reason === undefined ? {} : { reason: req.reason }),
  };
  return { rotation, checkpoint, resumed: false };
}

function fp(vkey: string): string {
  const [name, hash] = vkey.split('+');
  return `${name ?? ''}+${hash ?? ''}`;
}
