export {
  AUDIT_STREAM,
  BUNDLE_FORMAT,
  BUNDLE_VERSION,
  STANDALONE_VERIFIER,
  exportBundle,
  exportSession,
  makeDirectory,
  type BundleManifest,
  type DirectoryUse,
  type ExportOptions,
  type ExportResult,
  type ReportContext,
} from './bundle.js';
export { bundleSession, verifyBundle, verifyZipBundle, type VerifyBundleOptions } from './verify-bundle.js';
export type { BundleVerdict, BundleVerifyReport } from './verify-bundle-v2.js';
export { looksLikeZip } from './zip.js';
export { ANCHORS_FILE, checkBundleAnchors, type BundleAnchorVerdict, type BundleCosigner, type TimeStampCheck } from './bundle-anchors.js';
export { hashedHeaderOfRow, resolveSpan, type Span, type SpanScope } from './span.js';
export { BundleManifestV2, BundleMode, BundleScope, artifactExtension } from './bundle-format.js';
export { POPULATIONS, PopulationBuilder, ScopeTracker, inPopulation, normaliseInstant, type PopulationDefinition, type ScopedHeader } from './populations.js';
export { SIEM_FORMATS, exportSiem, type SiemExportOptions, type SiemExportResult, type SiemFormat } from './siem.js';
export { OCSF_REQUIRED, OCSF_VERSION, apiActivity, toOcsf, type OcsfContext } from './ocsf-map.js';
export { DISPOSITIONS, recordReview, type Disposition, type ReviewOptions, type ReviewResult } from './review.js';
