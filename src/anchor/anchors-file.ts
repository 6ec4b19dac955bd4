/**
 * Where a log keeps its anchors: an append-only JSON-lines file beside the ledger
 * (`<db>.anchors.jsonl` for SQLite, `--anchors FILE` otherwise). Nothing in it needs to be
 * trusted: each cosignature carries its own signature over the exact checkpoint, and verify
 * judges it against the ledger's checkpoint of that size, so a damaged or edited line can only
 * make a required anchor missing, never make a bad checkpoint pass.
 */
import fs from 'node:fs';
import { z } from 'zod';
import { WitnessError, strictParse } from '../core/index.js';
import { parseStoreUrl } from '../store/index.js';

export const CosignatureRecord = z.strictObject({
  v: z.literal(1),
  type: z.literal('cosignature'),
  size: z.number().int().nonnegative(),
  /** SHA-256 (hex) of the checkpoint body the cosignature is over. */
  checkpoint_sha256: z.string().regex(/^[0-9a-f]{64}$/),
  cosigner: z.string(),
  line: z.string(),
  received_at: z.string(),
});
export type CosignatureRecord = z.infer<typeof CosignatureRecord>;

export const TimestampRecord = z.strictObject({
  v: z.literal(1),
  type: z.literal('timestamp'),
  size: z.number().int().nonnegative(),
  checkpoint_sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** The imprint the TSA signed: SHA-256 (hex) of the whole log-signed note as the ledger stores it. */
  note_sha256: z.string().regex(/^[0-9a-f]{64}$/),
  tsa: z.string(),
  /** The DER TimeStampResp, base64. */
  response: z.string(),
  received_at: z.string(),
});
export type TimestampRecord = z.infer<typeof TimestampRecord>;

export const AnchorRecord = z.discriminatedUnion('type', [CosignatureRecord, TimestampRecord]);
export type AnchorRecord = z.infer<typeof AnchorRecord>;

/** The default anchors file for a store: beside a SQLite ledger; PostgreSQL has no "beside" and must name one. */
export function defaultAnchorsFile(store: string, flag: string | undefined): string {
  if (flag !== undefined) return flag;
  const loc = parseStoreUrl(store);
  if (loc.driver === 'sqlite') return `${loc.path}.anchors.jsonl`;
  throw new WitnessError('invalid_argument', 'A PostgreSQL ledger has no directory to keep anchors beside; pass --anchors FILE (the same file to anchor and to verify).');
}

export function appendAnchor(file: string, rec: AnchorRecord): void {
  const fd = fs.openSync(file, 'a', 0o644);
  try {
    fs.writeSync(fd, `${JSON.stringify(rec)}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export interface ReadAnchors {
  records: AnchorRecord[];
  /** 1-based line numbers that are not anchor records, for the verdict. */
  unreadable: number[];
}

export function readAnchors(file: string): ReadAnchors {
  let textContent: string;
  try {
    textContent = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], unreadable: [] };
    throw new WitnessError('store_unavailable', `The anchors file ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'}).`, { cause: e });
  }
  const records: AnchorRecord[] = [];
  const unreadable: number[] = [];
  textContent.split('\n').forEach((l, i) => {
    if (l === '') return;
    try {
      const r = AnchorRecord.safeParse(strictParse(l));
      if (r.success) records.push(r.data);
      else unreadable.push(i + 1);
    } catch {
      unreadable.push(i + 1);
    }
  });
  return { records, unreadable };
}
