import { keyFingerprint, keyWindows, parseVerifierKey, type KeyWindow } from '../core/index.js';
import { ledgerKeyHistory, type Ledger } from '../store/index.js';
import { KeyHistory } from './bundle-format.js';

/**
 * keys.json: the ledger's signing-key history with validity windows (docs/FORMAT.md "Key history
 * and rotation"). It is derived from the ledger, never from its key table beyond the first row: the
 * key the ledger was created with, then each key a key.rotated event introduced. Any other key in
 * the table was put there by someone who can write the database, never by the sealer, and a bundle
 * must not hand it to an auditor as the ledger's. The windows are in tree sizes (what verifiers
 * check: a checkpoint of size S must be signed by every key whose window holds S), from the
 * rotation events and the ledger's checkpoints; the times are information only.
 */
export async function keyHistory(ledger: Ledger, firstCheckpointTs: string | undefined): Promise<KeyHistory> {
  const row = (await ledger.publicKeys())[0];
  if (row === undefined) return { keys: [] };
  const history = await ledgerKeyHistory(ledger);
  const checkpoints = history.rotations.length === 0 ? [] : await ledger.checkpoints();
  const { windows } = keyWindows(
    row.vkey,
    history.rotations,
    checkpoints.map((c) => c.size),
  );
  const from = [row.addedAt, firstCheckpointTs].filter((t): t is string => t !== undefined && !Number.isNaN(Date.parse(t))).sort((a, b) => Date.parse(a) - Date.parse(b))[0] ?? row.addedAt;
  // The time a window ends: that of the checkpoint that ends it (the rotation checkpoint).
  const timeOfSize = (size: number | null): string | null => (size === null ? null : (checkpoints.find((c) => c.size === size)?.ts ?? null));
  return KeyHistory.parse({
    keys: windows.map((w, i) => {
      const rotation = history.rotations.find((r) => r.leaf === w.introducedAt);
      return {
        vkey: w.vkey,
        fingerprint: keyFingerprint(parseVerifierKey(w.vkey)),
        role: 'ledger-signing',
        valid_from: i === 0 ? from : (rotation?.ts ?? from),
        valid_until: timeOfSize(w.untilSize) ?? (w.untilSize === null ? null : (rotation?.ts ?? from)),
        source:
          i === 0
            ? "the ledger's key table, first row (the key the ledger was created with)"
            : `the key.rotated event at leaf ${w.introducedAt}, which the key before it signed in the checkpoint covering it`,
        ...(history.rotations.length === 0 ? {} : { from_size: w.fromSize, until_size: w.untilSize, rotated_at_leaf: w.introducedAt }),
      };
    }),
  });
}

/**
 * The windows keys.json states, for the bundle verifier: undefined when it states none (a ledger
 * never rotated, or a bundle from before rotation existed), and then no window is checked.
 */
export function bundleKeyWindows(keys: KeyHistory['keys']): KeyWindow[] | undefined {
  if (!keys.some((k) => k.from_size !== undefined)) return undefined;
  return keys.map((k) => ({ vkey: k.vkey, fingerprint: k.fingerprint, fromSize: k.from_size ?? 0, untilSize: k.until_size ?? null, introducedAt: k.rotated_at_leaf ?? null }));
}
