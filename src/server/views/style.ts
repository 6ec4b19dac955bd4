/**
 * The viewer's one stylesheet, served from PATHS.stylesheet (the CSP allows styles from the page's
 * own origin only, and no inline style). System fonts, no images, readable on a laptop; a print
 * section drops the navigation and forms and keeps every step on paper in full.
 */
export const STYLESHEET = `
:root {
  --fg: #1b1f24; --muted: #59636e; --line: #d0d7de; --bg: #ffffff; --panel: #f6f8fa;
  --ok: #1a7f37; --ok-bg: #dafbe1; --denied: #cf222e; --denied-bg: #ffebe9;
  --review: #9a6700; --review-bg: #fff8c5; --accent: #0969da; --accent-bg: #ddf4ff;
}
* { box-sizing: border-box; }
html { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Liberation Sans", sans-serif; color: var(--fg); background: var(--bg); }
body { margin: 0; }
a { color: var(--accent); }
code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 0.86rem; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 0.6rem 0.75rem; margin: 0.25rem 0 0; max-height: 24rem; overflow: auto; }
h1 { font-size: 1.45rem; margin: 0 0 0.25rem; }
h2 { font-size: 1.15rem; margin: 1.5rem 0 0.5rem; }
h3 { font-size: 1rem; margin: 0; }
.top { display: flex; align-items: center; gap: 1.5rem; padding: 0.6rem 1.5rem; border-bottom: 1px solid var(--line); background: var(--panel); flex-wrap: wrap; }
.brand { font-weight: 700; letter-spacing: 0.02em; color: var(--fg); text-decoration: none; }
.top nav { display: flex; gap: 1rem; flex: 1; flex-wrap: wrap; }
.top nav a { text-decoration: none; color: var(--fg); padding: 0.15rem 0.1rem; border-bottom: 2px solid transparent; }
.top nav a[aria-current="page"] { border-bottom-color: var(--accent); font-weight: 600; }
.who { display: flex; gap: 0.6rem; align-items: center; color: var(--muted); font-size: 0.9rem; }
.who form { margin: 0; }
main { padding: 1.25rem 1.5rem 3rem; max-width: 1280px; margin: 0 auto; }
.sub { color: var(--muted); margin: 0 0 1rem; }
.notice { padding: 0.5rem 0.75rem; border-radius: 6px; border: 1px solid var(--line); background: var(--panel); margin: 0.75rem 0; }
.notice.ok { background: var(--ok-bg); border-color: var(--ok); }
.notice.error { background: var(--denied-bg); border-color: var(--denied); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.4rem 0.6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 0.82rem; color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1rem; margin: 0.5rem 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.badge { display: inline-block; padding: 0 0.5rem; border-radius: 1rem; font-size: 0.8rem; font-weight: 600; border: 1px solid var(--line); background: var(--panel); white-space: nowrap; }
.badge.ok { color: var(--ok); background: var(--ok-bg); border-color: var(--ok); }
.badge.denied, .badge.error { color: var(--denied); background: var(--denied-bg); border-color: var(--denied); }
.badge.review { color: var(--review); background: var(--review-bg); border-color: var(--review); }
.badge.neutral { color: var(--muted); }
form.filters { display: flex; flex-wrap: wrap; gap: 0.75rem; align-items: end; padding: 0.75rem; background: var(--panel); border: 1px solid var(--line); border-radius: 6px; margin-bottom: 1rem; }
label { display: flex; flex-direction: column; gap: 0.2rem; font-size: 0.85rem; color: var(--muted); }
input, select, textarea { font: inherit; color: var(--fg); padding: 0.3rem 0.45rem; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); }
textarea { min-height: 3.5rem; width: 100%; }
button, .button { font: inherit; font-weight: 600; padding: 0.35rem 0.9rem; border-radius: 6px; border: 1px solid var(--line); background: var(--panel); color: var(--fg); cursor: pointer; text-decoration: none; display: inline-block; }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
button.approve { background: var(--ok); border-color: var(--ok); color: #fff; }
button.deny { background: var(--denied); border-color: var(--denied); color: #fff; }
button.link { background: none; border: none; color: var(--accent); padding: 0; font-weight: 400; text-decoration: underline; }
.paging { display: flex; gap: 1rem; margin-top: 1rem; }
.steps { list-style: none; padding: 0; margin: 0; }
.step { border: 1px solid var(--line); border-radius: 8px; margin: 0 0 1rem; break-inside: avoid-page; }
.step > header { display: flex; gap: 0.75rem; align-items: baseline; padding: 0.5rem 0.9rem; background: var(--panel); border-bottom: 1px solid var(--line); border-radius: 8px 8px 0 0; flex-wrap: wrap; }
.step > header .when { color: var(--muted); font-size: 0.85rem; margin-left: auto; }
.step .part { padding: 0.5rem 0.9rem; border-top: 1px solid var(--panel); }
.step .part:first-of-type { border-top: none; }
.label { font-size: 0.78rem; font-weight: 700; letter-spacing: 0.04em; text-transform: uppercase; color: var(--muted); margin-top: 0.5rem; }
.step .label { margin-top: 0; }
.label .model { text-transform: none; letter-spacing: 0; font-weight: 600; }
.panel > h2:first-child, .queue h2 { margin-top: 0; }
ul.plain { list-style: none; padding: 0; margin: 0; }
.reasoning { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0.2rem 0 0; border-left: 3px solid var(--accent-bg); padding-left: 0.6rem; }
.shots { display: grid; grid-template-columns: 1fr 1fr; gap: 0.75rem; }
figure { margin: 0; }
figcaption { font-size: 0.85rem; color: var(--muted); overflow-wrap: anywhere; }
.shot { display: grid; border: 1px solid var(--line); border-radius: 4px; overflow: hidden; background: var(--panel); }
.shot > img, .shot > svg { grid-area: 1 / 1; width: 100%; height: auto; display: block; }
.shot > svg { height: 100%; }
.shot rect.changed { fill: rgba(207, 34, 46, 0.08); stroke: var(--denied); stroke-width: 3; vector-effect: non-scaling-stroke; }
.shot.missing { padding: 2rem; text-align: center; color: var(--muted); }
.errors li { color: var(--denied); }
.video video { width: 100%; max-width: 960px; background: #000; border-radius: 6px; }
.chapters { columns: 2; font-size: 0.9rem; }
.queue { list-style: none; padding: 0; }
.queue > li { border: 1px solid var(--line); border-radius: 8px; padding: 0.75rem 1rem; margin-bottom: 1rem; break-inside: avoid-page; }
.decide { display: grid; gap: 0.5rem; margin-top: 0.5rem; }
.decide .buttons { display: flex; gap: 0.6rem; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 1rem; }
.chart { border: 1px solid var(--line); border-radius: 8px; padding: 0.6rem 0.8rem; }
.chart svg { width: 100%; height: auto; display: block; }
.chart .bar { fill: var(--accent); }
.chart .bar.s1 { fill: var(--ok); }
.chart .bar.s2 { fill: var(--denied); }
.chart .line { fill: none; stroke: var(--accent); stroke-width: 2; }
.chart .dot { fill: var(--accent); }
.chart .axis { stroke: var(--line); stroke-width: 1; }
.chart text { font-size: 11px; fill: var(--muted); }
.legend { display: flex; gap: 0.9rem; font-size: 0.8rem; color: var(--muted); margin: 0.25rem 0 0; padding: 0; list-style: none; }
.legend .key { display: inline-block; width: 0.7rem; height: 0.7rem; margin-right: 0.3rem; border-radius: 2px; background: var(--accent); vertical-align: -0.05rem; }
.legend .key.s1 { background: var(--ok); }
.legend .key.s2 { background: var(--denied); }
.totals { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 0.75rem; margin: 0.75rem 0 1.25rem; }
.totals div { border: 1px solid var(--line); border-radius: 8px; padding: 0.5rem 0.8rem; }
.totals b { display: block; font-size: 1.4rem; }
.signin { max-width: 26rem; margin: 4rem auto; border: 1px solid var(--line); border-radius: 8px; padding: 1.5rem; }
.signin form { display: grid; gap: 0.75rem; }
.or { text-align: center; color: var(--muted); margin: 1rem 0; }
.signin .button { display: block; text-align: center; }
.panel { border: 1px solid var(--line); border-radius: 8px; padding: 0.75rem 1rem; margin-bottom: 1rem; }
.print-only { display: none; }
@media (max-width: 800px) { .shots { grid-template-columns: 1fr; } .chapters { columns: 1; } main { padding: 1rem; } }
@media print {
  html { font-size: 10.5pt; }
  .top nav, .who, form, .paging, .no-print, video { display: none !important; }
  .print-only { display: block; }
  .shots { grid-template-columns: 1fr 1fr; }
  main { max-width: none; padding: 0; }
  pre { max-height: none; overflow: visible; border-color: #999; }
  .step, .queue > li, .panel, .chart { border-color: #999; }
  a { color: inherit; text-decoration: none; }
  .badge { border-color: #666; }
}
`;
