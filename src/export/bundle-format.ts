import { z } from 'zod';

/**
 * The layout of an evidence bundle, version 2 (docs/FORMAT.md "Evidence bundle" is the prose of
 * this file; keep the two the same). A bundle is a directory or a zip of these `/`-separated names:
 *
 *   manifest.json                 BundleManifestV2: scope, mode, span, export event, file digests
 *   events.jsonl                  every event of the span, then the export's own audit.access event
 *   proofs.jsonl                  one RFC 6962 inclusion proof per line of events.jsonl
 *   checkpoint.txt                the signed checkpoint every proof leads to
 *   checkpoints.jsonl             the stored checkpoints from the one at or below the span's start
 *                                 to checkpoint.txt, each with the consistency proof from the previous
 *   keys.json                     the key history: every signing key with its validity window
 *   purges.jsonl                  the retention.purge records listing in-scope payloads the purge erased (full bundles only, when any)
 *   purge-proofs.jsonl            their inclusion proofs, one per line of purges.jsonl
 *   anchors.jsonl                 cosignatures and RFC 3161 time-stamps over checkpoints the bundle ships (when the ledger has any)
 *   system.json                   agent versions, models, prompt and tool-definition hashes, policies
 *   populations/index.json        PopulationIndex: each population's query, count and digest
 *   populations/<name>.jsonl      one PopulationLine per event of that population, in leaf order
 *   artifacts/<sha256>.<ext>      screenshots, video, captions, large outputs (none when withheld)
 *   report.html                   the auditor report (when rendered)
 *   verify.mjs                    the standalone verifier (Node built-ins only)
 *   README.txt                    how to verify this bundle, in plain words
 *
 * Version 1 bundles (manifest `version: 1`: one session, `keys.txt`, `artifacts/<sha256>` without an
 * extension) are still read and verified as before.
 */
export const BUNDLE_FORMAT_V2 = 'witness-evidence';
export const BUNDLE_VERSION_V2 = 2;

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const iso = z.string().min(1).max(64);
const leaf = z.number().int().nonnegative();

/** What was asked for: every field a filter; null means "not filtered on this". */
export const BundleScope = z.strictObject({
  since: iso.nullable(),
  until: iso.nullable(),
  agents: z.array(z.string().min(1)).nullable(),
  sessions: z.array(z.string().min(1)).nullable(),
  regimes: z.array(z.enum(['eu-ai-act', 'soc2', 'hipaa', 'sec'])),
});
export type BundleScope = z.infer<typeof BundleScope>;

/**
 * `full`: every in-scope event carries its payload and salt. `withheld`: none does (headers and
 * salted digests only). Out-of-scope events of the span never carry a payload in either mode.
 */
export const BundleMode = z.enum(['full', 'withheld']);
export type BundleMode = z.infer<typeof BundleMode>;

export const BundleManifestV2 = z.strictObject({
  format: z.literal(BUNDLE_FORMAT_V2),
  version: z.literal(BUNDLE_VERSION_V2),
  created_at: iso,
  ledger: z.strictObject({ id: z.string().min(1), origin: z.string().min(1) }),
  scope: BundleScope,
  mode: BundleMode,
  /** Leaves `from <= leaf < to`, every one of them in events.jsonl: a contiguous span of the tree. */
  span: z.strictObject({ from: leaf, to: leaf }),
  /** The audit.access event recording this export (last line of events.jsonl, leaf >= span.to). */
  export_event: z.strictObject({ leaf, id: z.string().min(1) }),
  checkpoint: z.strictObject({ size: leaf, root: hex64 }),
  /** Lines of events.jsonl, and how many of them are in scope. */
  events: leaf,
  in_scope: leaf,
  /** SHA-256 (hex) of every file of the bundle but manifest.json itself. */
  files: z.record(z.string(), hex64),
});
export type BundleManifestV2 = z.infer<typeof BundleManifestV2>;

/** One line of checkpoints.jsonl. `consistency` (hex nodes) proves this checkpoint extends the previous line's; absent on the first line. */
export const CheckpointLine = z.strictObject({
  size: leaf,
  root: hex64,
  note: z.string().min(1),
  consistency: z.array(hex64).optional(),
});
export type CheckpointLine = z.infer<typeof CheckpointLine>;

/** keys.json: the signing-key history. `valid_until` null: still in use. */
export const KeyHistory = z.strictObject({
  keys: z.array(
    z.strictObject({
      /** The verifier key string (`<name>+<hash>+<base64>`), what `--trusted-key` takes. */
      vkey: z.string().min(1),
      /** `<name>+<key hash>`: what an auditor compares with their own record. */
      fingerprint: z.string().min(1),
      role: z.literal('ledger-signing'),
      valid_from: iso,
      valid_until: iso.nullable(),
      /** Where the exporter took it from, in words (e.g. "the ledger's key table, first row"). */
      source: z.string(),
      /**
       * The key's window in tree sizes (docs/FORMAT.md "Key history and rotation"), present once the
       * ledger's key was rotated: a checkpoint of size S must be signed by every key with
       * from_size <= S <= until_size (null: no end). rotated_at_leaf: the key.rotated event that
       * introduced the key (null for the first).
       */
      from_size: leaf.optional(),
      until_size: leaf.nullable().optional(),
      rotated_at_leaf: leaf.nullable().optional(),
    }),
  ),
});
export type KeyHistory = z.infer<typeof KeyHistory>;

/** One line of populations/<name>.jsonl, keys in exactly this order (JSON.stringify of this object). */
export interface PopulationLine {
  leaf: number;
  id: string;
  stream: string;
  seq: number;
  kind: string;
  ts: string;
  /** null when the event has no outcome. */
  outcome: string | null;
  hash: string;
}

/**
 * populations/index.json. It names no checkpoint: it is written before the export's record is
 * appended, so that record can bind its SHA-256 (ExportRecord.files).
 */
export const PopulationIndex = z.strictObject({
  span: z.strictObject({ from: leaf, to: leaf }),
  populations: z.array(
    z.strictObject({
      name: z.string().min(1),
      title: z.string(),
      /** A `witness query` command an auditor can run against the ledger for the same events. */
      query: z.string(),
      /** The predicate, as data (see populations.ts POPULATIONS). */
      predicate: z.unknown(),
      count: leaf,
      /** SHA-256 of populations/<name>.jsonl's bytes. */
      digest: hex64,
    }),
  ),
});
export type PopulationIndex = z.infer<typeof PopulationIndex>;

/** The file extension an artifact of this MIME type carries in `artifacts/<sha256>.<ext>`. */
export function artifactExtension(mime: string): string {
  const base = mime.split(';')[0]!.trim().toLowerCase();
  return ARTIFACT_EXTENSIONS[base] ?? 'bin';
}

const ARTIFACT_EXTENSIONS: Record<string, string> = {
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/webp': 'webp',
  'image/gif': 'gif',
  // SVG and HTML run scripts when opened from disk: stored as text, so a double-click cannot run them.
  'image/svg+xml': 'svg.txt',
  'video/mp4': 'mp4',
  'video/webm': 'webm',
  'audio/wav': 'wav',
  'audio/x-wav': 'wav',
  'text/vtt': 'vtt',
  'text/plain': 'txt',
  'text/html': 'html.txt',
  'text/csv': 'csv',
  'application/json': 'json',
  'application/pdf': 'pdf',
};

/**
 * The payload of the export's own `audit.access` event (stream witness.audit-access, action
 * `export`), appended and sealed before the bundle is written, so the signed tree — not the
 * unsigned manifest — says what the bundle must hold: its scope, its mode (which events carry a
 * payload), the digest of its span (populations.ts EventsDigest), the SHA-256 of the files known
 * before it (BOUND_FILES) and where checkpoints.jsonl starts. The verifier checks the manifest,
 * events.jsonl and those files against it.
 */
export const ExportRecord = z.looseObject({
  actor: z.string().min(1),
  operation: z.literal('export'),
  format: z.literal('witness-evidence/2'),
  scope: BundleScope,
  mode: BundleMode,
  span: z.strictObject({ from: leaf, to: leaf }),
  events_digest: hex64,
  /** Events in the span, and how many of them are in scope. */
  count: leaf,
  in_scope: leaf,
  /**
   * SHA-256 of the bundle files known before this record is appended (BOUND_FILES; verify.mjs only
   * when the bundle has one): the signature, not only the unsigned manifest, covers them.
   * report.html cannot be bound (it shows this event), and is a reading aid.
   */
  files: z.record(z.string(), hex64),
  /** The size of checkpoints.jsonl's first line (a stored checkpoint), or null when the ledger had none and the file holds only checkpoint.txt's line. */
  checkpoints_from: leaf.nullable(),
});
export type ExportRecord = z.infer<typeof ExportRecord>;

/** The files whose SHA-256 the export record binds (ExportRecord.files), in this order; purges.jsonl only in a full bundle holding purged payloads. */
export const BOUND_FILES = ['system.json', 'README.txt', 'verify.mjs', 'populations/index.json', 'keys.json', 'purges.jsonl', 'anchors.jsonl'] as const;
