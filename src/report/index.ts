/**
 * src/report: the auditor report of a scope of the ledger — cover and scope, integrity statement,
 * what is logged, the control-mapping matrix (controls.ts), human oversight, reviews performed and
 * due, change timeline, access to logs, incidents, retention and holds, exceptions, and an appendix
 * of sampled events with their inclusion proofs and before/after screenshots — as one HTML file,
 * drawn with the viewer's own views, and printed to PDF with Chromium.
 */
export { bundleReport, renderReport, type ReportOptions } from './report.js';
export { printReportPdf, writeFileAtomic } from './pdf.js';
export { CONTROLS, REGIME_TITLES, controlsFor, type Assessment, type ControlRow, type PopulationName, type Regime } from './controls.js';
export { LIST_CAP, SAMPLE_FIRST, SAMPLE_RANDOM, SKEW_LIMIT_MS } from './collect.js';
