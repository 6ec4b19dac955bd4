import { views } from '../server/index.js';

/**
 * The report's stylesheet: the viewer's own (so a step looks as it does in the viewer) plus what a
 * printed A4 document needs. Inlined in the report, which is one self-contained file.
 */
export const REPORT_CSS = `${views.STYLESHEET}
@page { size: A4; margin: 16mm 14mm 18mm; }
main { max-width: 1040px; }
.report h2 { font-size: 1.25rem; border-bottom: 2px solid var(--line); padding-bottom: 0.2rem; margin-top: 2rem; }
.report h3 { margin: 1rem 0 0.4rem; }
.report section.major { break-before: page; }
.report section.cover { break-before: auto; }
.cover h1 { font-size: 1.9rem; margin-top: 1rem; }
.status { white-space: nowrap; font-weight: 700; }
.status.present { color: var(--ok); }
.status.gap { color: var(--denied); }
.status.na { color: var(--muted); }
table.matrix td, table.matrix th, table.list td, table.list th { font-size: 0.85rem; }
table.matrix td.req { width: 38%; }
.proof { font-size: 0.72rem; overflow-wrap: anywhere; }
.sample { border: 1px solid var(--line); border-radius: 8px; padding: 0.6rem 0.9rem; margin: 0 0 1rem; break-inside: avoid-page; }
.sample .steps { margin-top: 0.5rem; }
.note { color: var(--muted); font-size: 0.88rem; }
/* The oversight chart's second series is denials: red, as the viewer draws refusals (its default second colour is green). */
.report .chart .bar.s1, .report .legend .key.s1 { fill: var(--denied); background: var(--denied); }
@media print {
  html { font-size: 9.5pt; }
  .sample, .step { border-color: #999; }
  .report section.major { break-before: page; }
  pre { max-height: none; }
  .shot > img { max-height: 120mm; object-fit: contain; }
}
`;
