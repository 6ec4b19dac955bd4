export { AUDIT_STREAM, BUNDLE_FORMAT, BUNDLE_VERSION, exportSession, makeDirectory, type BundleManifest, type DirectoryUse, type ExportOptions, type ExportResult } from './bundle.js';
export { bundleSession, verifyBundle, verifyZipBundle, type VerifyBundleOptions } from './verify-bundle.js';
export { looksLikeZip } from './zip.js';
export { resolveSpan, type Span, type SpanScope } from './span.js';
