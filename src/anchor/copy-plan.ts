/**
 * What a copy of a checkpoint becomes, wherever it is kept (a directory, a bucket): decided from
 * what is already there, so both kinds of copy refuse a fork and merge cosignatures alike.
 */
import { parseCheckpoint } from '../core/index.js';
import { checkpointBodyOf } from './body.js';

export type CopyPlan =
  | { kind: 'create'; content: string }
  | { kind: 'update'; content: string }
  | { kind: 'unchanged' }
  /** Another tree of the same size is there: never overwritten. */
  | { kind: 'fork' };

export function planCopy(existing: string | undefined, note: string, cosignatureLines: readonly string[]): CopyPlan {
  const extra = cosignatureLines.filter((l) => !note.includes(l));
  if (existing === undefined) return { kind: 'create', content: note + extra.join('') };
  if (!sameTree(existing, note)) return { kind: 'fork' };
  // A heartbeat re-signs the same tree with a new time line: the earlier copy of that tree stays.
  if (checkpointBodyOf(existing) !== checkpointBodyOf(note)) return { kind: 'unchanged' };
  // Same checkpoint: add cosignature lines the copy lacks, never remove any.
  const missing = extra.filter((l) => !existing.includes(l));
  return missing.length === 0 ? { kind: 'unchanged' } : { kind: 'update', content: existing + missing.join('') };
}

export function forkMessage(where: string, size: number, existing: string, note: string): string {
  return `${where} already holds a different checkpoint of size ${size} (${describe(existing)}; the ledger's is ${describe(note)}): two trees of one size is a fork; the copy was not overwritten — investigate which one is genuine.`;
}

/** Same origin, size and root (extension lines may differ); false for another tree or an unreadable copy. */
function sameTree(a: string, b: string): boolean {
  try {
    const x = parseCheckpoint(checkpointBodyOf(a));
    const y = parseCheckpoint(checkpointBodyOf(b));
    return x.origin === y.origin && x.size === y.size && Buffer.from(x.rootHash).equals(Buffer.from(y.rootHash));
  } catch {
    return false;
  }
}

function describe(note: string): string {
  try {
    const c = parseCheckpoint(checkpointBodyOf(note));
    return `root ${Buffer.from(c.rootHash).toString('base64')} of ${c.origin}`;
  } catch {
    return 'not a readable checkpoint';
  }
}
