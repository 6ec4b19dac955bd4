import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { LedgerVerifier, WitnessError, keyFingerprint, parseVerifierKey, selectVerifiers, type VerifyReport } from '../core/index.js';
import type { Ledger } from './ledger.js';

export interface VerifyLedgerOptions {
  /** Verifier keys (`name+hash+key`) the auditor pins; without them the ledger's own key (the first it recorded) is used. */
  trustedKeys?: string[];
  /** A signed checkpoint the auditor saved earlier. */
  against?: string;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Feeds every raw row of a ledger through the core verifier, then re-hashes the artifacts. The
 * sealer's record of its last checkpoint (kept outside the database) is checked like a saved
 * checkpoint; when there is none but checkpoints exist, a warning says where it was looked for.
 */
export async function verifyLedger(ledger: Ledger, options: VerifyLedgerOptions = {}): Promise<VerifyReport> {
  // Without a pinned key only the ledger's own key is trusted: the first one recorded. Nothing in
  // this version adds a second one, so another key in the table was put there by whoever wrote
  // the database; it is named and not trusted, and checkpoints signed only by it fail. An
  // unparseable stored key verifies nothing; checkpoints signed only by it fail below.
  const stored = await ledger.publicKeys();
  const [own, ...others] = stored;
  const { verifiers, source } = selectVerifiers(options.trustedKeys, own === undefined ? [] : [own.vkey], 'ledger');
  const { record: sealRecord, warning } = await readRecord(ledger);
  const v = new LedgerVerifier({
    origin: ledger.info.origin,
    verifiers,
    keySource: source,
    ...(options.against === undefined ? {} : { against: options.against }),
    ...(sealRecord === undefined ? {} : { sealRecord }),
  });
  v.setCheckpoints(await ledger.checkpoints());
  const total = ledger.info.size;
  let done = 0;
  for await (const page of ledger.scan()) {
    for (const row of page) v.addRow(row);
    done += page.length;
    options.onProgress?.(done, total);
  }
  await checkArtifacts(v, ledger);
  const report = v.finish();
  if (warning !== undefined) report.warnings.push(warning);
  if (sealRecord === undefined && warning === undefined && report.checkpoints > 0) {
    // Without the record a roll-back of the checkpoints to an older genuine one (rows and tree
    // nodes deleted above an edit) leaves nothing here that disagrees: say so, and where we looked.
    report.warnings.push(
      `The ledger has checkpoints signed by the trusted key, but no record of its sealer's last checkpoint was found at ${ledger.sealRecordLocation}, so checkpoints deleted back to an older one would not show here; point verify at the record with --seal-record FILE (or $WITNESS_SEAL_RECORD), or compare with a checkpoint you saved (--against).`,
    );
  }
  if (source === 'ledger') {
    for (const k of others) {
      report.warnings.push(
        `The ledger lists a second signing key ${fingerprint(k.vkey)} (added ${k.addedAt}) besides its own ${own === undefined ? '' : fingerprint(own.vkey)}: Witness never adds one, so it was not trusted; pin the keys you trust with --trusted-key.`,
      );
    }
  }
  return report;
}

/** Re-hashes every artifact the events reference; a missing or changed one is a failure. */
export async function checkArtifacts(v: LedgerVerifier, ledger: Pick<Ledger, 'readArtifact'>): Promise<void> {
  for (const sha of v.referencedArtifacts().keys()) {
    const bytes = await ledger.readArtifact(sha);
    if (bytes === undefined) {
      v.artifactFailure(sha, true);
      continue;
    }
    if (createHash('sha256').update(bytes).digest('hex') !== sha) v.artifactFailure(sha, false);
  }
}

async function readRecord(ledger: Ledger): Promise<{ record?: { note: string; location: string }; warning?: string }> {
  try {
    const record = await ledger.sealRecord();
    return record === undefined ? {} : { record };
  } catch (e) {
    // A record that cannot be read (a symbolic link, say) vouches for nothing; the sealer refuses on it.
    return { warning: `The sealer's record was not used: ${(e instanceof Error ? e.message : String(e)).replace(/^Not signing: /, '')}` };
  }
}

function fingerprint(vkey: string): string {
  try {
    return keyFingerprint(parseVerifierKey(vkey));
  } catch {
    return JSON.stringify(vkey.slice(0, 80));
  }
}

export function readAgainstFile(file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'it does not exist' : (e as Error).message;
    throw new WitnessError('invalid_argument', `Cannot read the saved checkpoint ${file}: ${why}; save one with \`witness checkpoint > file\`.`, { cause: e });
  }
  // Only the shape is checked here; the signature is checked by verify against the trusted keys.
  if (!/\n\n\u2014 \S+ \S+\n/.test(text) || !/^[^\n]+\n\d+\n[A-Za-z0-9+/=]+\n/.test(text)) {
    throw new WitnessError('invalid_argument', `${file} is not a signed checkpoint; save one with \`witness checkpoint > file\`.`);
  }
  return text;
}
