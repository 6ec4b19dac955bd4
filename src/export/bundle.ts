import type { Ledger } from '../store/index.js';
import { exportBundle, type ExportOptions, type ExportResult } from './write-bundle.js';

export { AUDIT_STREAM } from './export-record.js';
export { makeDirectory, type DirectoryUse } from './bundle-out.js';
export { exportBundle, STANDALONE_VERIFIER, type ExportOptions, type ExportResult, type ReportContext } from './write-bundle.js';

/**
 * Version 1 of the evidence bundle, which `witness export` wrote before version 2 (bundle-format.ts)
 * and `witness verify` still reads: one session, `keys.txt`, `artifacts/<sha256>` without an extension.
 */
export const BUNDLE_FORMAT = 'witness-evidence';
export const BUNDLE_VERSION = 1;

/** manifest.json of a version-1 bundle. */
export interface BundleManifest {
  format: typeof BUNDLE_FORMAT;
  version: number;
  created_at: string;
  ledger: { id: string; origin: string };
  session: string;
  agent: string;
  events: number;
  checkpoint: { size: number; root: string };
  withheld: boolean;
  files: Record<string, string>;
}

/** One session as a version-2 bundle: exportBundle with the scope `--session <session>`. */
export function exportSession(ledger: Ledger, session: string, out: string, options: ExportOptions = {}): Promise<ExportResult> {
  return exportBundle(ledger, { since: null, until: null, agents: null, sessions: [session], regimes: [] }, out, options);
}
