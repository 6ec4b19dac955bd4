import fs from 'node:fs';
import path from 'node:path';
import { LedgerVerifier, WitnessError, keyFingerprint, parseVerifierKey, type NoteSigner, type NoteVerifier } from '../core/index.js';
import type { AdoptOptions, AdoptResult, CheckpointRow, Ledger, SealRecordText } from './ledger.js';
import { openSealRecord, readSealRecordText, writeSealRecord } from './seal-record.js';
import { sealRefused } from './seal-rules.js';
import { checkArtifacts } from './verify.js';

/*
 * What both drivers do around a seal and an adoption before and after their own reads: the key
 * checks, the record's directory, the retry while another process's first record is on its way,
 * and adoption's refusals, verdict and record. One implementation, so SQLite and PostgreSQL refuse
 * the same ledgers with the same sentences; the drivers keep only how they read their rows.
 */

/** A ledger's sealing state as the front steps read it. */
export interface SealFront {
  /** The ledger, for messages (a path, or a URL without credentials). */
  location: string;
  origin: string;
  sealRecordPath: string;
  signer: NoteSigner | undefined;
  own: NoteVerifier | undefined;
  canSeal: boolean;
  /** Set when the process's key is not the ledger's own. */
  foreignKey: { signer: string; ledger: string } | undefined;
  /** Where this driver finds its key, ending the `invalid_key` sentence. */
  keyHint: string;
}

/** The signer and its verifier, or the reason this process cannot seal. */
export function sealingKey(f: SealFront): { signer: NoteSigner; own: NoteVerifier } {
  if (f.signer === undefined || f.own === undefined || !f.canSeal) {
    throw new WitnessError('invalid_key', `No signing key for ${f.location}; checkpoints need ${f.keyHint}.`);
  }
  return { signer: f.signer, own: f.own };
}

export function refuseForeignKey(f: Pick<SealFront, 'foreignKey'>): void {
  if (f.foreignKey !== undefined) {
    throw new WitnessError(
      'seal_refused',
      `Not signing: the signing key ${fingerprintOf(f.foreignKey.signer)} is not this ledger's key ${fingerprintOf(f.foreignKey.ledger)}, and a ledger is signed by the key it was created with until \`witness keys rotate\` names another; use that key.`,
    );
  }
}

/**
 * Checked before signing, since a checkpoint committed but not recorded makes every later seal
 * ask for adoption (the record is replaced by a rename, so the directory is what must be writable).
 */
export function checkRecordWritable(sealRecordPath: string): void {
  const dir = path.dirname(sealRecordPath);
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (e) {
    throw sealRefused(
      `this process cannot write ${dir}, where it must record the checkpoint it signs (${sealRecordPath}: ${(e as NodeJS.ErrnoException).code ?? 'error'}); create that directory or let the sealer write it`,
    );
  }
}

/** The key checks every seal makes before it reads anything; returns the key to sign with. */
export function sealFrontSteps(f: SealFront): { signer: NoteSigner; own: NoteVerifier } {
  const key = sealingKey(f);
  refuseForeignKey(f);
  checkRecordWritable(f.sealRecordPath);
  return key;
}

/**
 * Runs one seal, again while it is refused for want of a record: another process that has just
 * committed a ledger's first checkpoint writes the record right after its commit, so a seal that
 * lands in between sees checkpoints and no record yet. Up to a second; a deleted record stays
 * refused, a second later.
 */
export async function retryWhileRecordMissing<T>(seal: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await seal();
    } catch (e) {
      if (attempt >= 20 || !(e instanceof WitnessError) || e.details?.['noRecord'] !== true) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** What adoption needs of the driver: its first checkpoint's existence, and one snapshot read of everything. */
export interface AdoptReads {
  hasCheckpoint(): Promise<boolean>;
  /**
   * In one read snapshot: gives `v` every stored checkpoint (setCheckpoints) and every raw row
   * (addRow) in position order; returns the newest checkpoint, undefined when there is none.
   */
  readAll(v: LedgerVerifier): Promise<CheckpointRow | undefined>;
}

/**
 * For a ledger with checkpoints but no record, on explicit request (`witness seal --adopt`):
 * verifies the whole ledger from raw rows, in one read snapshot, with this key alone (every
 * checkpoint must be this key's, every root must match the rebuilt tree, every artifact its
 * digest) and against `against` when given; any failure refuses. Then records the newest
 * checkpoint as the one this key last signed. It signs nothing itself. An existing record, even a
 * damaged one, is never replaced here: it may be the evidence of a roll-back.
 */
export async function adoptLedger(f: SealFront, ledger: Pick<Ledger, 'readArtifactStream'>, reads: AdoptReads, options: AdoptOptions = {}): Promise<AdoptResult> {
  const { own } = sealingKey(f);
  refuseForeignKey(f);
  const location = f.sealRecordPath;
  let existing: string | undefined;
  try {
    existing = readSealRecordText(location);
  } catch (e) {
    throw sealRefused(
      `${location} exists but cannot be used as the record (${(e as Error).message.replace(/^Not signing: /, '').replace(/\.$/, '')}), and adopting never replaces a record; move it aside (keep it as evidence) and run again`,
    );
  }
  if (existing !== undefined) {
    let size = '';
    try {
      size = `, size ${openSealRecord(existing, own, f.origin, location).size}`;
    } catch {
      // Foreign or damaged: still a record that adopting must not replace.
    }
    throw new WitnessError(
      'invalid_argument',
      `The sealer already has a record of its last checkpoint for ${f.location} (${location}${size}), so there is nothing to adopt; run \`witness seal\` without --adopt, or move the record aside (keep it as evidence) if you mean to replace it.`,
    );
  }
  checkRecordWritable(location);
  if (!(await reads.hasCheckpoint())) {
    // No checkpoint, so no record can be missing: the first seal starts the record itself.
    return { checkpoint: null, location, warnings: [`${f.location} has no checkpoint yet; \`witness seal\` signs its first one and starts the record.`] };
  }
  const verifier = new LedgerVerifier({ origin: f.origin, verifiers: [own], keySource: 'pinned', ...(options.against === undefined ? {} : { against: options.against }) });
  const newest = await reads.readAll(verifier);
  // Artifacts are stored outside the read snapshot, so they are re-hashed after it as verify does.
  await checkArtifacts(verifier, ledger);
  const report = verifier.finish();
  const bad = report.first;
  if (bad !== undefined) {
    const at = bad.leaf !== undefined ? ` at leaf ${bad.leaf}` : bad.checkpoint !== undefined ? ` at checkpoint ${bad.checkpoint}` : '';
    throw new WitnessError(
      'seal_refused',
      `Not adopting: ${f.location} does not verify with this key (${bad.code}${at}${report.failures.length > 1 ? ` and ${report.failures.length - 1} more` : ''}), so its newest checkpoint is not recorded as one this key vouches for; run \`witness verify --trusted-key\` with this ledger's public key to see why.`,
      { details: { failure: bad } },
    );
  }
  if (newest === undefined) return { checkpoint: null, location, warnings: report.warnings };
  writeSealRecord(location, { note: newest.note, size: newest.size, root: newest.root }, own, f.origin);
  return { checkpoint: newest, location, warnings: report.warnings };
}

/** The sealer's record as stored, for `witness verify --against` and the viewer. */
export function sealRecordText(sealRecordPath: string): SealRecordText | undefined {
  const text = readSealRecordText(sealRecordPath);
  return text === undefined ? undefined : { note: text, location: sealRecordPath };
}

/** A stored checkpoint row, as both drivers' tables hold it. */
export interface StoredCheckpointRow {
  id: number;
  size: number;
  root: Buffer;
  note: string;
  ts: string;
  frontier: string;
  consistency: string;
  prev_size: number | null;
}

export function toCheckpoint(r: StoredCheckpointRow): CheckpointRow {
  let consistency: string[] = [];
  try {
    const parsed: unknown = JSON.parse(r.consistency);
    if (Array.isArray(parsed)) consistency = parsed.map(String);
  } catch {
    // A damaged proof column surfaces as a failed consistency check in verify, not here.
  }
  return { id: r.id, size: r.size, root: r.root, note: r.note, ts: r.ts, consistency, prevSize: r.prev_size };
}

function fingerprintOf(vkey: string): string {
  try {
    return keyFingerprint(parseVerifierKey(vkey));
  } catch {
    return JSON.stringify(vkey.slice(0, 80));
  }
}
