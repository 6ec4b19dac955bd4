/**
 * A cosigning witness's memory: the latest checkpoint it cosigned for each log origin, one file
 * per origin in its own state directory. Written atomically (temporary file, fsync, rename, fsync
 * of the directory) because a witness that forgets, or half-remembers, a size would cosign a fork.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { WitnessError } from '../core/index.js';

const StateFile = z.strictObject({
  v: z.literal(1),
  origin: z.string(),
  size: z.number().int().nonnegative(),
  root: z.string(),
  /** The log-signed note, kept as evidence of what was cosigned. */
  note: z.string(),
  cosigned_at: z.number().int().nonnegative(),
});
export type WitnessState = z.infer<typeof StateFile>;

function fileFor(dir: string, origin: string): string {
  return path.join(dir, `${createHash('sha256').update(origin, 'utf8').digest('hex')}.json`);
}

export function readState(dir: string, origin: string): WitnessState | undefined {
  const file = fileFor(dir, origin);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new WitnessError('store_unavailable', `The witness state ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'}); fix its permissions before cosigning again.`, {
      cause: e,
    });
  }
  const parsed = StateFile.safeParse(JSON.parse(text));
  if (!parsed.success || parsed.data.origin !== origin) {
    // Never start over from zero: that would cosign whatever the log shows next, fork or not.
    throw new WitnessError('store_corrupt', `The witness state ${file} is damaged; restore it from a backup (a witness that lost its state must be retired, not reset).`);
  }
  return parsed.data;
}

export function writeState(dir: string, state: WitnessState): void {
  const file = fileFor(dir, state.origin);
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeSync(fd, `${JSON.stringify(state)}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  const dfd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(dfd);
  } finally {
    fs.closeSync(dfd);
  }
}

/** Log-signed requests the witness refused for inconsistency: evidence of a forked log, kept append-only. */
export function recordRefusal(dir: string, entry: { origin: string; status: number; reason: string; request: string }): void {
  fs.appendFileSync(path.join(dir, 'refused.jsonl'), `${JSON.stringify({ ...entry, at: new Date().toISOString() })}\n`, { mode: 0o600 });
}

/**
 * One witness process per state directory: two would each check the old size against the file and
 * could cosign two branches (the spec's roll-back race, across processes). A lock file naming the
 * holder's pid; a lock whose process is gone is taken over. Returns the release function.
 */
export function lockState(dir: string): () => void {
  const file = path.join(dir, 'lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return () => fs.rmSync(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(fs.readFileSync(file, 'utf8').trim());
      if (Number.isSafeInteger(pid) && pid > 0 && alive(pid)) {
        throw new WitnessError('store_locked', `Another witness (pid ${pid}) serves the state directory ${dir}; stop it first — two witnesses on one state could cosign a fork.`);
      }
      fs.rmSync(file, { force: true });
    }
  }
  throw new WitnessError('store_locked', `Cannot lock the state directory ${dir}; another witness is starting there.`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
