/**
 * Signing-key rotation as the ledger records it (issue 15): a `key.rotated` event names the old and
 * the new verifier key; the first checkpoint that covers it is signed by both; later ones by the new
 * key alone. Everything here is pure: the key history (which key may sign which tree sizes) is
 * derived from the rotation events and the checkpoint sizes, never from a table anyone could edit,
 * and one rule (docs/FORMAT.md "Key history and rotation") says which keys a checkpoint must carry.
 */
import { GOVERNANCE_RULES, isGovernanceHeaderText } from './governance.js';
import { keyFingerprint, parseVerifierKey, type NoteKeyId } from './note.js';

/**
 * The note verify gives a key.rotated event that is not a rotation, or undefined: a rotation counts
 * only in witness.keys recorded by the CLI (`witness keys rotate`; core's GOVERNANCE_RULES). One
 * anywhere else (an agent's process appending to its session) changes no key and is verified as an
 * ordinary event; sealing ignores it too (src/store/seal-rules.ts).
 */
export function ignoredRotationNote(row: { kind: string; stream: string; seq: number; pos: number; header: string }): string | undefined {
  if (row.kind !== 'key.rotated' || isGovernanceHeaderText(row.kind, row.stream, row.header)) return undefined;
  let recorder = 'none';
  try {
    const r = (JSON.parse(row.header) as { recorder?: { kind?: unknown } }).recorder?.kind;
    if (typeof r === 'string') recorder = r;
  } catch {
    recorder = 'unreadable';
  }
  const rule = GOVERNANCE_RULES['key.rotated']!;
  return `The key.rotated event at leaf ${row.pos} (stream ${JSON.stringify(row.stream)}, seq ${row.seq}, recorder ${recorder}) rotates no key: a rotation counts only in ${rule.stream} recorded by the CLI (\`witness keys rotate\`), so it was verified as an ordinary event.`;
}

/** One `key.rotated` event: its leaf and the verifier keys it names. */
export interface RotationEntry {
  leaf: number;
  oldKey: string;
  newKey: string;
}

/**
 * One key of the history and the tree sizes it may sign: a checkpoint of size S must carry a
 * signature of every key with `fromSize <= S <= untilSize` (untilSize null: no end).
 */
export interface KeyWindow {
  vkey: string;
  /** `<name>+<hash>`, as signatures are matched. */
  fingerprint: string;
  /** 0 for the ledger's first key; else the rotation's leaf + 1, the first tree that holds the event. */
  fromSize: number;
  /** The size of the first checkpoint covering the next rotation (the rotation checkpoint); null while none does, or for the current key. */
  untilSize: number | null;
  /** Leaf of the key.rotated event that introduced the key; null for the first key. */
  introducedAt: number | null;
}

/** The old and new keys of a key.rotated payload, when both are verifier keys; else undefined. */
export function rotationOf(data: unknown): { oldKey: string; newKey: string } | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const d = data as Record<string, unknown>;
  const oldKey = d['old_key'];
  const newKey = d['new_key'];
  if (typeof oldKey !== 'string' || typeof newKey !== 'string') return undefined;
  try {
    parseVerifierKey(oldKey);
    parseVerifierKey(newKey);
  } catch {
    return undefined;
  }
  return oldKey === newKey ? undefined : { oldKey, newKey };
}

/**
 * The key history: the first key, then each rotation's new key, with windows in tree sizes. A
 * rotation whose old key is not the key current before it breaks the chain: it is returned as a
 * problem (one sentence) and ignored, so its new key is never trusted. `checkpointSizes` are the
 * sizes of the checkpoints known (any order); the first one above a rotation's leaf ends the old
 * key's window.
 */
export function keyWindows(firstKey: string, rotations: readonly RotationEntry[], checkpointSizes: readonly number[]): { windows: KeyWindow[]; problems: string[] } {
  const sizes = [...checkpointSizes].sort((a, b) => a - b);
  const windows: KeyWindow[] = [{ vkey: firstKey, fingerprint: fingerprintOf(firstKey), fromSize: 0, untilSize: null, introducedAt: null }];
  const problems: string[] = [];
  const seen = new Set([firstKey]);
  for (const r of [...rotations].sort((a, b) => a.leaf - b.leaf)) {
    const current = windows[windows.length - 1]!;
    if (r.oldKey !== current.vkey) {
      problems.push(`The key.rotated event at leaf ${r.leaf} retires ${fingerprintOf(r.oldKey)}, which is not the key then in use (${current.fingerprint}): its new key is not trusted.`);
      continue;
    }
    if (seen.has(r.newKey)) {
      problems.push(`The key.rotated event at leaf ${r.leaf} brings back ${fingerprintOf(r.newKey)}, a key already used: a retired key never returns, so it is not trusted.`);
      continue;
    }
    seen.add(r.newKey);
    current.untilSize = sizes.find((s) => s > r.leaf) ?? null;
    windows.push({ vkey: r.newKey, fingerprint: fingerprintOf(r.newKey), fromSize: r.leaf + 1, untilSize: null, introducedAt: r.leaf });
  }
  return { windows, problems };
}

/** The keys whose window holds `size`: a checkpoint of that size must carry a signature of each. */
export function requiredKeys(windows: readonly KeyWindow[], size: number): KeyWindow[] {
  return windows.filter((w) => w.fromSize <= size && (w.untilSize === null || size <= w.untilSize));
}

export type WindowFailureCode = 'retired_key' | 'rotation_unsigned' | 'checkpoint_signature';

/**
 * Judges one checkpoint of `size` whose signatures by `signedBy` verified: undefined when every key
 * whose window holds it signed; otherwise the failure. `rotation_unsigned`: the checkpoint covers a
 * rotation event and lies in both the old and the new key's window (the rotation checkpoint), but
 * one of them did not sign. `retired_key`: a key signed after its window ended, and the key then
 * current did not. `checkpoint_signature`: signed only by a key whose window starts later.
 */
export function judgeCheckpointKeys(windows: readonly KeyWindow[], size: number, signedBy: readonly NoteKeyId[]): { code: WindowFailureCode; reason: string } | undefined {
  const signed = new Set(signedBy.map((k) => keyFingerprint(k)));
  const required = requiredKeys(windows, size);
  const missing = required.filter((w) => !signed.has(w.fingerprint));
  if (missing.length === 0) return undefined;
  const names = missing.map((w) => w.fingerprint).join(' and ');
  if (required.length > 1) {
    const rotation = required[required.length - 1]!;
    return {
      code: 'rotation_unsigned',
      reason: `The checkpoint of size ${size} covers the key rotation at leaf ${rotation.introducedAt} and must be signed by both the old and the new key, but ${names} did not sign it.`,
    };
  }
  const retired = windows.find((w) => signed.has(w.fingerprint) && w.untilSize !== null && w.untilSize < size);
  if (retired !== undefined) {
    return {
      code: 'retired_key',
      reason: `The checkpoint of size ${size} is signed by ${retired.fingerprint}, retired by the checkpoint of size ${retired.untilSize}, and not by the key then in use (${names}): a retired key signed it after its window.`,
    };
  }
  return { code: 'checkpoint_signature', reason: `The checkpoint of size ${size} is not signed by ${names}, the key whose window holds it (a key signed it before the rotation that introduced it).` };
}

function fingerprintOf(vkey: string): string {
  try {
    return keyFingerprint(parseVerifierKey(vkey));
  } catch {
    return JSON.stringify(vkey.slice(0, 80));
  }
}
