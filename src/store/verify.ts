import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { LedgerVerifier, WitnessError, selectVerifiers, type VerifyReport } from '../core/index.js';
import type { Ledger } from './ledger.js';

export interface VerifyLedgerOptions {
  /** Verifier keys (`name+hash+key`) the auditor pins; without them the keys stored beside the ledger are used. */
  trustedKeys?: string[];
  /** A signed checkpoint the auditor saved earlier. */
  against?: string;
  onProgress?: (done: number, total: number) => void;
}

/** Feeds every raw row of a ledger through the core verifier, then re-hashes the artifacts. */
export async function verifyLedger(ledger: Ledger, options: VerifyLedgerOptions = {}): Promise<VerifyReport> {
  // An unparseable stored key verifies nothing; checkpoints signed only by it fail below.
  const stored = (await ledger.publicKeys()).map((k) => k.vkey);
  const { verifiers, source } = selectVerifiers(options.trustedKeys, stored, 'ledger');
  const v = new LedgerVerifier({ origin: ledger.info.origin, verifiers, keySource: source, ...(options.against === undefined ? {} : { against: options.against }) });
  v.setCheckpoints(await ledger.checkpoints());
  const total = ledger.info.size;
  let done = 0;
  for await (const page of ledger.scan()) {
    for (const row of page) v.addRow(row);
    done += page.length;
    options.onProgress?.(done, total);
  }
  for (const sha of v.referencedArtifacts().keys()) {
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(ledger.artifactPath(sha));
    } catch {
      v.artifactFailure(sha, true);
      continue;
    }
    if (createHash('sha256').update(bytes).digest('hex') !== sha) v.artifactFailure(sha, false);
  }
  return v.finish();
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
