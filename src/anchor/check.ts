/**
 * What `witness verify --require-cosigner` adds: for each required cosigner, a valid cosignature
 * (tlog-cosignature v1 over that exact checkpoint body) on the newest checkpoint the ledger
 * verified against. Older cosignatures in the file are checked too when their checkpoint is
 * still in the ledger: one that does not verify is a failure (someone edited the anchors), never
 * silently skipped. Cosignatures by cosigners the auditor did not name are counted, not judged.
 */
import { createHash } from 'node:crypto';
import { sha256Hex } from '../core/index.js';
import type { CheckpointRow } from '../store/index.js';
import type { AnchorRecord } from './anchors-file.js';
import { checkpointBodyOf } from './body.js';
import { cosignerLabel, parseCosignatureLine, verifyCosignature, type CosignerVerifier } from './cosig-key.js';
import { verifyTimeStamp } from './tsa.js';

export type AnchorFailureCode = 'cosignature_missing' | 'cosignature_invalid' | 'anchors_unreadable';

export interface AnchorFailure {
  code: AnchorFailureCode;
  cosigner?: string;
  size?: number;
  reason: string;
}

export interface AnchorVerdict {
  ok: boolean;
  /** The checkpoint the required cosignatures must cover. */
  head: { size: number; checkpoint_sha256: string } | null;
  checked: Array<{ cosigner: string; size: number; timestamp: number }>;
  unjudged: number;
  failures: AnchorFailure[];
}

export function checkCosignatures(checkpoints: readonly CheckpointRow[], records: readonly AnchorRecord[], unreadable: readonly number[], required: readonly CosignerVerifier[]): AnchorVerdict {
  const byDigest = new Map<string, CheckpointRow>();
  for (const cp of checkpoints) byDigest.set(sha256Hex(Buffer.from(checkpointBodyOf(cp.note), 'utf8')), cp);
  const newest = checkpoints.reduce<CheckpointRow | undefined>((a, b) => (a === undefined || b.id > a.id ? b : a), undefined);
  const headDigest = newest === undefined ? undefined : sha256Hex(Buffer.from(checkpointBodyOf(newest.note), 'utf8'));
  const verdict: AnchorVerdict = { ok: true, head: newest === undefined ? null : { size: newest.size, checkpoint_sha256: headDigest! }, checked: [], unjudged: 0, failures: [] };
  if (unreadable.length > 0) {
    verdict.failures.push({ code: 'anchors_unreadable', reason: `line(s) ${unreadable.slice(0, 5).join(', ')} of the anchors file are not anchor records` });
  }
  const byLabel = new Map(required.map((v) => [cosignerLabel(v), v]));
  const covered = new Set<string>();
  for (const r of records) {
    if (r.type !== 'cosignature') continue;
    const v = byLabel.get(r.cosigner);
    if (v === undefined) {
      verdict.unjudged++;
      continue;
    }
    const cp = byDigest.get(r.checkpoint_sha256);
    // A checkpoint the ledger no longer holds cannot be judged here; only the head is required.
    if (cp === undefined) continue;
    const c = parseCosignatureLine(r.line);
    if (c === undefined || cp.size !== r.size || !verifyCosignature(v, checkpointBodyOf(cp.note), c)) {
      verdict.failures.push({
        code: 'cosignature_invalid',
        cosigner: r.cosigner,
        size: r.size,
        reason: `the cosignature by ${r.cosigner} recorded for checkpoint ${r.size} does not verify over that checkpoint`,
      });
      continue;
    }
    verdict.checked.push({ cosigner: r.cosigner, size: cp.size, timestamp: c.timestamp });
    if (r.checkpoint_sha256 === headDigest) covered.add(r.cosigner);
  }
  for (const label of byLabel.keys()) {
    if (newest === undefined) {
      verdict.failures.push({ code: 'cosignature_missing', cosigner: label, reason: `the ledger has no checkpoint for ${label} to cosign` });
    } else if (!covered.has(label)) {
      verdict.failures.push({
        code: 'cosignature_missing',
        cosigner: label,
        size: newest.size,
        reason: `no valid cosignature by ${label} on the newest checkpoint (size ${newest.size}); run \`witness anchor --cosigner URL=VKEY\` after sealing`,
      });
    }
  }
  verdict.ok = verdict.failures.length === 0;
  return verdict;
}

export interface TimestampVerdict {
  ok: boolean;
  head: { size: number } | null;
  checked: Array<{ tsa: string; size: number; time: string }>;
  failures: Array<{ code: 'timestamp_missing' | 'timestamp_invalid'; size?: number; tsa?: string; reason: string }>;
}

/**
 * RFC 3161 tokens: each recorded for a checkpoint the ledger holds must verify (imprint = SHA-256
 * of that exact log-signed note, signature chaining to the auditor's TSA certificate), and the
 * newest checkpoint must have one.
 */
export async function checkTimestamps(checkpoints: readonly CheckpointRow[], records: readonly AnchorRecord[], tsaCertFile: string): Promise<TimestampVerdict> {
  const byDigest = new Map<string, CheckpointRow>();
  for (const cp of checkpoints) byDigest.set(sha256Hex(Buffer.from(checkpointBodyOf(cp.note), 'utf8')), cp);
  const newest = checkpoints.reduce<CheckpointRow | undefined>((a, b) => (a === undefined || b.id > a.id ? b : a), undefined);
  const verdict: TimestampVerdict = { ok: true, head: newest === undefined ? null : { size: newest.size }, checked: [], failures: [] };
  let headCovered = false;
  for (const r of records) {
    if (r.type !== 'timestamp') continue;
    const cp = byDigest.get(r.checkpoint_sha256);
    if (cp === undefined) continue;
    const noteDigest = createHash('sha256').update(cp.note, 'utf8').digest();
    const res = await verifyTimeStamp(Buffer.from(r.response, 'base64'), noteDigest, tsaCertFile);
    if (!res.ok) {
      verdict.failures.push({ code: 'timestamp_invalid', size: cp.size, tsa: r.tsa, reason: `the time-stamp from ${r.tsa} on checkpoint ${cp.size} does not verify: ${res.reason}` });
      continue;
    }
    verdict.checked.push({ tsa: r.tsa, size: cp.size, time: res.info.time });
    if (cp === newest) headCovered = true;
  }
  if (newest !== undefined && !headCovered) {
    verdict.failures.push({
      code: 'timestamp_missing',
      size: newest.size,
      reason: `no valid RFC 3161 time-stamp on the newest checkpoint (size ${newest.size}); run \`witness anchor --tsa URL\` after sealing`,
    });
  }
  verdict.ok = verdict.failures.length === 0;
  return verdict;
}
