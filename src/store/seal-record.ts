import fs from 'node:fs';
import path from 'node:path';
import { WitnessError, openCheckpoint, type NoteVerifier } from '../core/index.js';
import { syncDirectory } from './sync-directory.js';

/**
 * The sealer's record of the last checkpoint its key signed for one ledger, kept outside the
 * database (by default `<db>.sealed`, beside the key, mode 0600; or wherever `sealRecord` /
 * `$WITNESS_SEAL_RECORD` says). Whoever can rewrite the database rows can delete checkpoint rows
 * and tree nodes together with them; this file is what they cannot rewrite along with the rows, so
 * the sealer checks every new tree against it before signing.
 *
 * The file holds exactly the signed note of that checkpoint (C2SP signed-note over a
 * tlog-checkpoint body, byte for byte as stored in the checkpoints table and printed by
 * `witness checkpoint`), so it authenticates itself: it is only believed once its signature
 * verifies with the sealer's own key and its origin is the ledger's. It is therefore also a saved
 * checkpoint that `witness verify --against` accepts. Being genuine, an older note of the same
 * ledger is believed too: whoever can replace the file can roll it back, which is why the file
 * must live where the database's writers cannot write when they are not trusted (README, "The
 * sealer's record").
 */

/** Where the sealer's record is kept when no `sealRecord` option is given (a file path). */
export const SEAL_RECORD_ENV = 'WITNESS_SEAL_RECORD';

/**
 * The record's path: the option, else `$WITNESS_SEAL_RECORD`, else `<db>.sealed`. `configured` is
 * false for the default, so messages can tell the user to name a non-default one again.
 */
export function sealRecordPath(defaultPath: string, option: string | undefined, env: NodeJS.ProcessEnv = process.env): { file: string; configured: boolean } {
  const given = option ?? env[SEAL_RECORD_ENV];
  if (given === undefined || given.trim() === '') return { file: defaultPath, configured: false };
  return { file: path.resolve(given.trim()), configured: true };
}

/**
 * A configured record must be writable before anything is signed: a checkpoint committed but not
 * recorded would make every later seal ask for adoption. Checked when a writer opens the ledger.
 */
export function checkSealRecordDirectory(file: string): void {
  const dir = path.dirname(file);
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (e) {
    throw new WitnessError(
      'invalid_argument',
      `The sealer's record ${file} cannot be kept there: its directory ${dir} does not exist; create it (writable by the sealer only) or change the record's path.`,
      { cause: e },
    );
  }
  if (!st.isDirectory()) {
    throw new WitnessError('invalid_argument', `The sealer's record ${file} cannot be kept there: ${dir} is not a directory; change the record's path.`);
  }
}

/** A signed note is a few hundred bytes; anything far larger is not a record. */
const MAX_RECORD_BYTES = 64 * 1024;

export interface SealRecord {
  note: string;
  size: number;
  root: Buffer;
}

function refused(message: string, cause?: unknown): WitnessError {
  return new WitnessError('seal_refused', message, cause === undefined ? undefined : { cause });
}

/**
 * The record's text, read without following a symbolic link (a link could point the sealer at a
 * file the database writer controls); undefined when there is none.
 */
export function readSealRecordText(file: string): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') {
      throw refused(`Not signing: ${file}, the record of the last checkpoint this key signed, is a symbolic link, which Witness does not follow; replace it with the file itself.`, e);
    }
    throw refused(`Not signing: cannot read ${file}, the record of the last checkpoint this key signed (${(e as Error).message}); check its permissions.`, e);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.size > MAX_RECORD_BYTES) {
      throw refused(`Not signing: ${file} is not a record of a checkpoint (a regular file of a few hundred bytes); restore it from a backup.`);
    }
    return fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/** Believes a record only when the sealer's own key signed it for this ledger. */
export function openSealRecord(text: string, verifier: NoteVerifier, origin: string, file: string): SealRecord {
  try {
    const { checkpoint } = openCheckpoint(text, [verifier], origin);
    return { note: text, size: checkpoint.size, root: Buffer.from(checkpoint.rootHash) };
  } catch (e) {
    const why = (e instanceof Error ? e.message : String(e)).replace(/\.$/, '').replace(/[.!?]\s+(?=[A-Z])/g, '; ');
    throw refused(
      `Not signing: ${file} does not hold a checkpoint of this ledger signed by this key (${why}); restore it from a backup, or move it aside (keep it as evidence) and run \`witness seal --adopt\`.`,
      e,
    );
  }
}

/**
 * Replaces the record atomically (temporary file, fsync, rename, fsync of the directory), with
 * mode 0600, never writing through a symbolic link (rename replaces a link, it does not follow it).
 * It only moves forward: when two processes seal one ledger, the one that commits first may write
 * its record last, and a smaller checkpoint must not then replace a larger one.
 */
export function writeSealRecord(file: string, record: SealRecord, verifier: NoteVerifier, origin: string): void {
  try {
    const current = readSealRecordText(file);
    if (current !== undefined) {
      const known = openSealRecord(current, verifier, origin, file);
      if (known.size >= record.size) return;
    }
  } catch {
    // An unreadable or foreign record is replaced: this checkpoint was just verified and signed.
  }
  try {
    replaceAtomically(file, record.note);
  } catch (e) {
    throw new WitnessError(
      'store_unavailable',
      `Sealed checkpoint of size ${record.size}, but could not record it in ${file} (${(e as Error).message}); fix that directory's permissions, since until then the sealer checks new trees against an older checkpoint.`,
      { cause: e },
    );
  }
  // The record now vouches for at least as much as a pending note (below) could.
  clearPendingRecord(file);
}

/*
 * The pending note: a ledger's first checkpoint is committed before its record can name it, and a
 * kill -9 in between would leave checkpoints and no record, which every later seal refuses (it
 * cannot tell that from a record deleted to roll the ledger back). So before committing a
 * checkpoint while there is no record, the sealer writes its signed note to `<record>.pending`,
 * beside the record, where the same writers may write; once the record is written the pending
 * note is removed. The rules read it only when the ledger has checkpoints and no record: then a
 * pending note signed by this key stands for the record (the newest stored checkpoint must extend
 * it like any record), since the key signed it and only the sealer writes there. A record missing
 * for any other reason (no pending note beside it) is still refused until `witness seal --adopt`.
 * Checkpoints of a ledger that has a record never pass through here: a kill -9 after their commit
 * leaves the record behind the database, which the rules accept.
 */

/** Where the pending note of the record `file` is kept. */
export function pendingRecordPath(file: string): string {
  return `${file}.pending`;
}

/** Written before the commit of a checkpoint that no record precedes (atomically, mode 0600). */
export function writePendingRecord(file: string, note: string): void {
  try {
    replaceAtomically(pendingRecordPath(file), note);
  } catch (e) {
    throw new WitnessError('store_unavailable', `Not signing: could not write ${pendingRecordPath(file)} before the first checkpoint (${(e as Error).message}); fix that directory's permissions.`, {
      cause: e,
    });
  }
}

export function clearPendingRecord(file: string): void {
  try {
    fs.rmSync(pendingRecordPath(file), { force: true });
  } catch {
    // Left behind it only stands in for a record while there is none.
  }
}

/**
 * The record the sealing rules check against: the record itself; when there is none but the ledger
 * has checkpoints, the pending note if this key signed it for this ledger and it names no more
 * events than the newest stored checkpoint (see above); otherwise undefined. A pending note that is
 * unreadable or not genuine is ignored (the rules then refuse, as for any missing record), and so
 * is one larger than the newest checkpoint: it was written by a seal that has not committed, or
 * never will (it lost the race to another process's first checkpoint, whose record is on its way),
 * so it vouches for no stored checkpoint; taking it for the record would call that race a roll-back.
 */
export function recordOrPending(file: string, record: SealRecord | undefined, newestSize: number | undefined, verifier: NoteVerifier, origin: string): SealRecord | undefined {
  if (record !== undefined || newestSize === undefined) return record;
  const pending = pendingRecordPath(file);
  let note: SealRecord;
  try {
    const text = readSealRecordText(pending);
    if (text === undefined) return undefined;
    note = openSealRecord(text, verifier, origin, pending);
  } catch {
    return undefined;
  }
  return note.size <= newestSize ? note : undefined;
}

/** Temporary file, fsync, rename, fsync of the directory; never through a symbolic link. */
function replaceAtomically(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  try {
    const fd = fs.openSync(tmp, 'wx', 0o600);
    try {
      fs.writeSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
    syncDirectory(path.dirname(file));
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * Test-only: with $WITNESS_TEST_SEAL_KILL=after-commit the process kills itself (SIGKILL) right
 * after a checkpoint's commit and before its record is written, the window test/store/
 * seal-crash.test.ts proves harmless. Unset (always, outside that test) it does nothing.
 */
export function testKillAfterCommit(): void {
  if (process.env['WITNESS_TEST_SEAL_KILL'] === 'after-commit') process.kill(process.pid, 'SIGKILL');
}
