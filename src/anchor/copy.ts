/**
 * A copy of each checkpoint in a directory the operator controls elsewhere (a mounted share,
 * a synced folder): `<size>.checkpoint` holds the log-signed note with any cosignature lines
 * appended, so it is itself a C2SP checkpoint that note tooling can read. A file already there
 * for that size is never overwritten with a different tree: two roots for one size is a fork.
 */
import fs from 'node:fs';
import path from 'node:path';
import { WitnessError } from '../core/index.js';
import { forkMessage, planCopy } from './copy-plan.js';

export interface CopyResult {
  file: string;
  written: boolean;
}

export function copyCheckpoint(dir: string, size: number, note: string, cosignatureLines: readonly string[], timeStamps: readonly Buffer[] = []): CopyResult {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${size}.checkpoint`);
  let existing: string | undefined;
  try {
    existing = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new WitnessError('store_unavailable', `The copy ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'}).`, { cause: e });
  }
  const plan = planCopy(existing, note, cosignatureLines);
  if (plan.kind === 'fork') throw new WitnessError('conflict', forkMessage(file, size, existing ?? '', note));
  if (plan.kind !== 'unchanged') writeAtomic(file, plan.content);
  writeTokens(dir, size, timeStamps);
  return { file, written: plan.kind !== 'unchanged' };
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
