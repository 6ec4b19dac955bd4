/**
 * `witness anchor`: after sealing, take the ledger's newest checkpoint outside Witness — to each
 * configured cosigning witness (tlog-witness), to time-stamp authorities, and to copies in
 * directories and S3 buckets — and keep what comes back
 * in the anchors file. Run after `witness seal` rather than inside the sealer so that a witness
 * that is down or slow never holds up sealing (the sealer's lock and its checkpoints stay as they
 * are); verify with --require-cosigner is what makes a missing anchor count.
 */
import { createHash } from 'node:crypto';
import { WitnessError, sha256Hex } from '../core/index.js';
import type { Ledger } from '../store/index.js';
import { checkpointBodyOf } from './body.js';
import { appendAnchor, readAnchors, type AnchorRecord } from './anchors-file.js';
import { cosignerLabel } from './cosig-key.js';
import { copyCheckpoint, type CopyResult } from './copy.js';
import { copyCheckpointToS3 } from './s3-copy.js';
import { parseS3Url, requireCredentials, s3SettingsFrom, type S3Flags, type S3Location, type S3Settings } from './s3-settings.js';
import { submitCheckpoint, type CosignerTarget } from './submit.js';
import { requestTimeStamp } from './tsa.js';

export interface AnchorOptions {
  anchorsFile: string;
  cosigners: readonly CosignerTarget[];
  /** Directories and `s3://bucket/prefix` URLs. */
  copyTo?: string | readonly string[];
  /** How to reach s3:// destinations; `env` holds the AWS_* variables (the CLI passes process.env). */
  s3?: S3Flags & { env?: Readonly<Record<string, string | undefined>> };
  /** RFC 3161 time-stamp authority URLs. */
  tsa?: readonly string[];
  now?: () => Date;
}

export interface AnchorOutcome {
  size: number;
  cosigned: Array<{ cosigner: string; timestamp: number }>;
  refused: Array<{ cosigner: string; code: string; message: string }>;
  timestamps: Array<{ tsa: string; time: string }>;
  tsaFailed: Array<{ tsa: string; code: string; message: string }>;
  copies: CopyResult[];
  /** Destinations that refused or failed, each with its one-sentence reason; the others were still written. */
  copyFailed: Array<{ to: string; code: string; message: string }>;
}

type CopyTarget = { kind: 'dir'; dir: string; label: string } | { kind: 's3'; location: S3Location; label: string };

function copyTargets(opts: AnchorOptions): { targets: CopyTarget[]; s3?: S3Settings } {
  const given = opts.copyTo === undefined ? [] : typeof opts.copyTo === 'string' ? [opts.copyTo] : opts.copyTo;
  const targets = given.map((to): CopyTarget => {
    if (to.startsWith('s3://')) {
      const location = parseS3Url(to);
      return { kind: 's3', location, label: location.label };
    }
    // Another scheme taken as a directory would write into ./gs:/… : say so instead.
    if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(to)) throw new WitnessError('invalid_argument', `--copy-to ${to}: only directories and s3:// URLs are supported.`);
    return { kind: 'dir', dir: to, label: to };
  });
  const firstS3 = targets.find((t) => t.kind === 's3');
  if (firstS3 === undefined) return { targets };
  const s3 = s3SettingsFrom(opts.s3?.env ?? {}, opts.s3 ?? {});
  requireCredentials(s3, firstS3.location);
  return { targets, s3 };
}

export async function anchorLatest(ledger: Ledger, opts: AnchorOptions): Promise<AnchorOutcome> {
  const cp = await ledger.latestCheckpoint();
  if (cp === undefined) throw new WitnessError('not_found', `${ledger.info.location} has no checkpoint yet; run \`witness seal\` first.`);
  // Destinations and S3 settings are checked before anything is sent anywhere.
  const { targets, s3 } = copyTargets(opts);
  if (opts.cosigners.length === 0 && targets.length === 0 && (opts.tsa ?? []).length === 0) {
    throw new WitnessError('invalid_argument', 'Nothing to anchor to: give --cosigner URL=VKEY, --tsa URL and/or --copy-to DIR|s3://BUCKET/PREFIX.');
  }
  const body = checkpointBodyOf(cp.note);
  const digest = sha256Hex(Buffer.from(body, 'utf8'));
  const known = readAnchors(opts.anchorsFile).records;
  const outcome: AnchorOutcome = { size: cp.size, cosigned: [], refused: [], timestamps: [], tsaFailed: [], copies: [], copyFailed: [] };
  const received: AnchorRecord[] = [];
  for (const target of opts.cosigners) {
    const label = cosignerLabel(target.verifier);
    // Start from the largest size this witness cosigned for us; a 409 corrects a wrong guess.
    const guess = Math.max(0, ...known.filter((r) => r.type === 'cosignature' && r.cosigner === label && r.size <= cp.size).map((r) => r.size));
    try {
      const c = await submitCheckpoint(target, { note: cp.note, size: cp.size, guess, proof: (old) => ledger.consistencyProof(old, cp.size) });
      received.push({ v: 1, type: 'cosignature', size: cp.size, checkpoint_sha256: digest, cosigner: label, line: c.line, received_at: (opts.now?.() ?? new Date()).toISOString() });
      outcome.cosigned.push({ cosigner: label, timestamp: c.timestamp });
    } catch (e) {
      if (!(e instanceof WitnessError)) throw e;
      outcome.refused.push({ cosigner: label, code: e.code, message: e.message });
    }
  }
  const noteDigest = createHash('sha256').update(cp.note, 'utf8').digest();
  for (const url of opts.tsa ?? []) {
    try {
      const { response, info } = await requestTimeStamp(url, noteDigest);
      received.push({
        v: 1,
        type: 'timestamp',
        size: cp.size,
        checkpoint_sha256: digest,
        note_sha256: noteDigest.toString('hex'),
        tsa: url,
        response: response.toString('base64'),
        received_at: (opts.now?.() ?? new Date()).toISOString(),
      });
      outcome.timestamps.push({ tsa: url, time: info.time });
    } catch (e) {
      if (!(e instanceof WitnessError)) throw e;
      outcome.tsaFailed.push({ tsa: url, code: e.code, message: e.message });
    }
  }
  for (const r of received) appendAnchor(opts.anchorsFile, r);
  const lines = received.flatMap((r) => (r.type === 'cosignature' ? [r.line] : []));
  const tokens = received.flatMap((r) => (r.type === 'timestamp' ? [Buffer.from(r.response, 'base64')] : []));
  for (const t of targets) {
    try {
      outcome.copies.push(t.kind === 'dir' ? copyCheckpoint(t.dir, cp.size, cp.note, lines, tokens) : await copyCheckpointToS3(t.location, s3!, cp.size, cp.note, lines, tokens));
    } catch (e) {
      if (!(e instanceof WitnessError)) throw e;
      outcome.copyFailed.push({ to: t.label, code: e.code, message: e.message });
    }
  }
  return outcome;
}
