/**
 * anchors.jsonl in an evidence bundle (docs/FORMAT.md 7.14): the cosignatures and RFC 3161
 * time-stamps `witness anchor` kept for checkpoints the bundle ships, and their check. The
 * cryptography is given by the caller (src/anchor's cosignature/v1 and `openssl ts -verify`; this
 * folder may not import it); the rule is here: an anchor counts only over a checkpoint of the bundle
 * (checkpoint.txt or a line of checkpoints.jsonl, whose consistency to checkpoint.txt the bundle
 * verifier proves), and a required one only over a checkpoint that covers every leaf of the span.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { strictParse } from '../core/index.js';
import { BUNDLE_LIMITS, capOfName } from './bundle-checks.js';
import { openBundleFile, readWhole } from './bundle-files.js';
import { extractZip, looksLikeZip } from './zip.js';

export const ANCHORS_FILE = 'anchors.jsonl';

/** SHA-256 (hex) of the checkpoint body a note's signatures are over: everything up to its last blank line (as src/anchor's checkpointBodyOf). */
export function anchoredDigest(note: string): string {
  return createHash('sha256').update(bodyOf(note), 'utf8').digest('hex');
}

function bodyOf(note: string): string {
  const i = note.lastIndexOf('\n\n');
  return i < 0 ? note : note.slice(0, i + 1);
}

/** A cosigner the auditor requires: its `<name>+<key hash>` label and a check of one signature line over a body (its timestamp when valid). */
export interface BundleCosigner {
  label: string;
  verify: (body: string, line: string) => number | undefined;
}

export type TimeStampCheck = (response: Buffer, noteDigest: Buffer) => Promise<{ ok: true; info: { time: string } } | { ok: false; reason: string }>;

export type BundleAnchorCode = 'cosignature_missing' | 'cosignature_invalid' | 'anchors_unreadable' | 'timestamp_missing' | 'timestamp_invalid';

export interface BundleAnchorVerdict {
  ok: boolean;
  /** The leaves a required anchor must cover: the span's end (exclusive). */
  covers: number;
  checked: Array<{ cosigner: string; size: number; timestamp: number }>;
  timestamps: Array<{ tsa: string; size: number; time: string }>;
  /** Cosignatures by cosigners the auditor did not name: counted, not judged (no key to judge them by). */
  unjudged: number;
  failures: Array<{ code: BundleAnchorCode; cosigner?: string; size?: number; reason: string }>;
}

const NAMES = ['manifest.json', 'checkpoint.txt', 'checkpoints.jsonl', ANCHORS_FILE];

/** Checks the anchors of the bundle at `bundle` (a directory or zip) for `cosigners` and, with `timeStamps`, its time-stamps. */
export async function checkBundleAnchors(bundle: string, cosigners: readonly BundleCosigner[], timeStamps?: TimeStampCheck): Promise<BundleAnchorVerdict> {
  const zipped = looksLikeZip(bundle);
  const dir = zipped ? fs.mkdtempSync(path.join(os.tmpdir(), 'witness-anchors-')) : bundle;
  try {
    if (zipped) await extractZip(bundle, dir, capOfName, (n) => NAMES.includes(n));
    return await judge(readFiles(dir), cosigners, timeStamps);
  } finally {
    if (zipped) fs.rmSync(dir, { recursive: true, force: true });
  }
}

function readText(dir: string, name: string): string | undefined {
  const f = openBundleFile(path.join(dir, name), capOfName(name) ?? BUNDLE_LIMITS.fileBytes);
  if (!('fd' in f)) return undefined;
  try {
    return readWhole(f);
  } finally {
    fs.closeSync(f.fd);
  }
}

interface Files {
  spanTo: number | undefined;
  checkpoints: Map<string, { size: number; note: string }>;
  anchors: string | undefined;
}

function readFiles(dir: string): Files {
  const checkpoints = new Map<string, { size: number; note: string }>();
  const add = (note: unknown, size: unknown) => {
    if (typeof note === 'string' && typeof size === 'number') checkpoints.set(anchoredDigest(note), { size, note });
  };
  let spanTo: number | undefined;
  try {
    const m = strictParse(readText(dir, 'manifest.json') ?? 'null') as { span?: { to?: unknown }; checkpoint?: { size?: unknown } } | null;
    if (typeof m?.span?.to === 'number') spanTo = m.span.to;
    add(readText(dir, 'checkpoint.txt'), m?.checkpoint?.size);
  } catch {
    // An unreadable manifest fails the bundle's own verification; here it leaves nothing covered.
  }
  for (const l of (readText(dir, 'checkpoints.jsonl') ?? '').split('\n')) {
    try {
      if (l !== '') {
        const c = strictParse(l) as { size?: unknown; note?: unknown } | null;
        add(c?.note, c?.size);
      }
    } catch {
      // as above: checkpoints.jsonl is judged by the bundle verifier
    }
  }
  return { spanTo, checkpoints, anchors: readText(dir, ANCHORS_FILE) };
}

type Rec =
  { type: 'cosignature'; size: number; checkpoint_sha256: string; cosigner: string; line: string } | { type: 'timestamp'; size: number; checkpoint_sha256: string; tsa: string; response: string };

function record(text: string): Rec | undefined {
  const r = strictParse(text) as Record<string, unknown> | null;
  if (typeof r !== 'object' || r === null || r.v !== 1 || typeof r.size !== 'number' || typeof r.checkpoint_sha256 !== 'string') return undefined;
  if (r.type === 'cosignature' && typeof r.cosigner === 'string' && typeof r.line === 'string') return r as Rec;
  if (r.type === 'timestamp' && typeof r.tsa === 'string' && typeof r.response === 'string') return r as Rec;
  return undefined;
}

async function judge(files: Files, cosigners: readonly BundleCosigner[], timeStamps: TimeStampCheck | undefined): Promise<BundleAnchorVerdict> {
  const covers = files.spanTo ?? Number.MAX_SAFE_INTEGER;
  const v: BundleAnchorVerdict = { ok: true, covers, checked: [], timestamps: [], unjudged: 0, failures: [] };
  const records: Rec[] = [];
  const unreadable: number[] = [];
  (files.anchors ?? '').split('\n').forEach((l, i) => {
    if (l === '') return;
    try {
      const r = record(l);
      if (r === undefined) unreadable.push(i + 1);
      else records.push(r);
    } catch {
      unreadable.push(i + 1);
    }
  });
  if (unreadable.length > 0) v.failures.push({ code: 'anchors_unreadable', reason: `line(s) ${unreadable.slice(0, 5).join(', ')} of ${ANCHORS_FILE} are not anchor records` });
  const byLabel = new Map(cosigners.map((c) => [c.label, c]));
  const covered = new Set<string>();
  let stamped = false;
  for (const r of records) {
    // An anchor over a checkpoint the bundle does not ship cannot be judged here and counts for nothing.
    const cp = files.checkpoints.get(r.checkpoint_sha256);
    if (r.type === 'cosignature') {
      const c = byLabel.get(r.cosigner);
      if (c === undefined) {
        v.unjudged++;
        continue;
      }
      if (cp === undefined) continue;
      const t = cp.size === r.size ? c.verify(bodyOf(cp.note), r.line) : undefined;
      if (t === undefined) {
        v.failures.push({
          code: 'cosignature_invalid',
          cosigner: r.cosigner,
          size: r.size,
          reason: `the cosignature by ${r.cosigner} in ${ANCHORS_FILE} for checkpoint ${r.size} does not verify over that checkpoint`,
        });
        continue;
      }
      v.checked.push({ cosigner: r.cosigner, size: cp.size, timestamp: t });
      if (cp.size >= covers) covered.add(r.cosigner);
    } else if (timeStamps !== undefined && cp !== undefined) {
      const res = await timeStamps(Buffer.from(r.response, 'base64'), createHash('sha256').update(cp.note, 'utf8').digest());
      if (!res.ok) {
        v.failures.push({ code: 'timestamp_invalid', size: cp.size, reason: `the time-stamp from ${r.tsa} on checkpoint ${cp.size} does not verify: ${res.reason}` });
        continue;
      }
      v.timestamps.push({ tsa: r.tsa, size: cp.size, time: res.info.time });
      if (cp.size >= covers) stamped = true;
    }
  }
  for (const label of byLabel.keys()) {
    if (!covered.has(label)) {
      v.failures.push({
        code: 'cosignature_missing',
        cosigner: label,
        reason: `${ANCHORS_FILE} holds no valid cosignature by ${label} on a checkpoint of the bundle covering its span (size at least ${covers}); anchor the ledger (\`witness anchor --cosigner URL=VKEY\`) after sealing, then export again`,
      });
    }
  }
  if (timeStamps !== undefined && !stamped) {
    v.failures.push({
      code: 'timestamp_missing',
      reason: `${ANCHORS_FILE} holds no valid RFC 3161 time-stamp on a checkpoint of the bundle covering its span (size at least ${covers}); run \`witness anchor --tsa URL\` after sealing, then export again`,
    });
  }
  v.ok = v.failures.length === 0;
  return v;
}
