/**
 * A copy of each checkpoint in a directory the operator controls elsewhere (a mounted share,
 * a synced folder): `<size>.checkpoint` holds the log-signed note with any cosignature lines
 * appended, so it is itself a C2SP checkpoint that note tooling can read. A file already there
 * for that size is never overwritten with a different tree: two roots for one size is a fork.
 */
import fs from 'node:fs';
import path from 'node:path';
import { WitnessError, parseCheckpoint } from '../core/index.js';
import { checkpointBodyOf } from './body.js';

export interface CopyResult {
  file: string;
  written: boolean;
}

export function copyCheckpoint(dir: string, size: number, note: string, cosignatureLines: readonly string[], timeStamps: readonly Buffer[] = []): CopyResult {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${size}.checkpoint`);
  const body = checkpointBodyOf(note);
  const extra = cosignatureLines.filter((l) => !note.includes(l));
  const content = note + extra.join('');
  let existing: string | undefined;
  try {
    existing = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new WitnessError('store_unavailable', `The copy ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'}).`, { cause: e });
  }
  if (existing !== undefined) {
    const same = sameTree(existing, note);
    if (same === false) {
      throw new WitnessError(
        'conflict',
        `${file} already holds a different checkpoint of size ${size} (${describe(existing)}; the ledger's is ${describe(note)}): two trees of one size is a fork; the copy was not overwritten — investigate which one is genuine.`,
      );
    }
    writeTokens(dir, size, timeStamps);
    // A heartbeat re-signs the same tree with a new time line: the earlier copy of that tree stays.
    if (checkpointBodyOf(existing) !== body) return { file, written: false };
    // Same checkpoint: add cosignature lines the copy lacks, never remove any.
    const missing = extra.filter((l) => !existing.includes(l));
    if (missing.length === 0) return { file, written: false };
    writeAtomic(file, existing + missing.join(''));
    return { file, written: true };
  }
  writeAtomic(file, content);
  writeTokens(dir, size, timeStamps);
  return { file, written: true };
}

/** RFC 3161 responses beside the copy (<size>.tsr, then <size>.2.tsr …); each token is new, none replaced. */
function writeTokens(dir: string, size: number, timeStamps: readonly Buffer[]): void {
  for (const der of timeStamps) {
    for (let n = 1; ; n++) {
      const tsr = path.join(dir, n === 1 ? `${size}.tsr` : `${size}.${n}.tsr`);
      if (fs.existsSync(tsr)) continue;
      writeAtomic(tsr, der);
      break;
    }
  }
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

function writeAtomic(file: string, content: string | Buffer): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, content, { mode: 0o644 });
  const fd = fs.openSync(tmp, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}
