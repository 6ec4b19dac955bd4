import { keyFingerprint, keyWindows, parseVerifierKey, type KeyWindow } from '../core/index.js';
import { ledgerKeyHistory, type Ledger } from '../store/index.js';
import { KeyHistory } from './bundle-format.js';
import { isRotationHeader } from './purges.js';

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
  const recorded = await ledgerKeyHistory(ledger);
  // A key.rotated event counts only in witness.keys from the CLI (docs/FORMAT.md 7.6): one an agent
  // wrote into its own session rotates nothing, and keys.json must not hand its key to an auditor.
  const counted = await rotationLeaves(ledger);
  const history = { ...recorded, rotations: recorded.rotations.filter((r) => counted.has(r.leaf)) };
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

/** The leaves of the ledger's key.rotated events that are rotations (isRotationHeader), read through the query's kind filter. */
async function rotationLeaves(ledger: Pick<Ledger, 'query'>): Promise<Set<number>> {
  const leaves = new Set<number>();
  let cursor: string | undefined;
  do {
    const page = await ledger.query({ kind: 'key.rotated', limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
    for (const e of page.events) if (isRotationHeader(e)) leaves.add(e.pos);
    cursor = page.next;
  } while (cursor !== undefined);
  return leaves;
}

/**
 * The windows keys.json states, for the bundle verifier: undefined only for a history of one key
 * without windows (a ledger never rotated). A history of several keys is always judged by windows:
 * one that lacks them is a key_history_mismatch (keyHistoryProblems), and its keys are then all
 * required on every checkpoint, never "no windows, no rule".
 */
export function bundleKeyWindows(keys: KeyHistory['keys']): KeyWindow[] | undefined {
  if (keys.length <= 1 && !keys.some((k) => k.from_size !== undefined)) return undefined;
  return keys.map((k) => ({ vkey: k.vkey, fingerprint: k.fingerprint, fromSize: k.from_size ?? 0, untilSize: k.until_size ?? null, introducedAt: k.rotated_at_leaf ?? null }));
}

/**
 * keys.json against the signed events of the bundle (docs/FORMAT.md 7.6), one sentence a problem
 * (key_history_mismatch): several keys need a window each, every key after the first names the
 * key.rotated leaf that brought it in (its window starting right after); every key.rotated event of
 * the span that is a rotation (isRotationHeader: the caller passes only those) is in keys.json at its leaf, with the same old and new key when its payload is in the
 * bundle; and every rotation keys.json places inside the span is an event of the bundle.
 * `rotations`: leaf → the event's payload (undefined when the bundle holds none).
 */
export function keyHistoryProblems(keys: KeyHistory['keys'], rotations: ReadonlyMap<number, unknown>, span: { from: number; to: number }): string[] {
  const problems: string[] = [];
  if (keys.length > 1) {
    keys.forEach((k, i) => {
      const leaf = k.rotated_at_leaf ?? null;
      if (k.from_size === undefined || (i === 0 ? leaf !== null : leaf === null)) {
        problems.push(`keys.json holds ${keys.length} keys but key ${i + 1} states no window (from_size, rotated_at_leaf): a key history with a rotation must say which tree sizes each key signs.`);
      } else if (i > 0 && leaf !== null && k.from_size !== leaf + 1) {
        problems.push(`keys.json key ${i + 1} was brought in at leaf ${leaf}, so its window starts at size ${leaf + 1}, not ${k.from_size}.`);
      }
    });
  }
  for (const [leaf, data] of rotations) {
    const i = keys.findIndex((k, j) => j > 0 && k.rotated_at_leaf === leaf);
    if (i < 1) {
      problems.push(`The key.rotated event at leaf ${leaf} is not in keys.json: the key history leaves out a rotation the ledger signed.`);
      continue;
    }
    const d = data as { old_key?: unknown; new_key?: unknown } | undefined;
    if (d !== undefined && d !== null && (d.old_key !== keys[i - 1]!.vkey || d.new_key !== keys[i]!.vkey)) {
      problems.push(`The key.rotated event at leaf ${leaf} retires ${String(d.old_key)} for ${String(d.new_key)}, but keys.json gives other keys for that rotation.`);
    }
  }
  for (const k of keys) {
    const leaf = k.rotated_at_leaf;
    if (leaf !== undefined && leaf !== null && leaf >= span.from && leaf < span.to && !rotations.has(leaf)) {
      problems.push(`keys.json names a key rotation at leaf ${leaf}, inside the bundle's span, where the bundle holds no key.rotated event.`);
    }
  }
  return problems;
}
