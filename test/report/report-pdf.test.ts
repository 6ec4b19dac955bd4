import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PNG } from 'pngjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openLedger } from '../../src/store/index.js';
import { runCli } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { CYAN, MAGENTA, buildReportLedger, type ReportLedger } from './fixture.js';

/**
 * `witness report -o report.pdf` end to end: the report of a demo-like ledger rendered in real
 * Chromium and printed to PDF, then read back the way a person would see it — the text of each
 * page (pdftotext) and its pixels (pdftoppm).
 */

const dir = tempDir('witness-report-pdf-');
let fx: ReportLedger;
let pdf: string;
let pages: string[];
let printed: { code: number; stdout: string; stderr: string };

const SECTIONS = [
  '1. Cover and scope',
  '2. Integrity statement',
  '3. What is logged and what is not',
  '4. Control mapping',
  '5. Human oversight',
  '6. Reviews performed and due',
  '7. Change timeline',
  '8. Access to logs',
  '9. Incidents, alerts and recording gaps',
  '10. Retention and holds',
  '11. Exceptions',
  'Appendix: sampled events',
];

beforeAll(async () => {
  fx = await buildReportLedger(dir);
  pdf = path.join(dir, 'out', 'report.pdf');
  printed = await runCli(['report', '--since', '2026-11-23', '--until', '2026-11-24', '--regime', 'eu-ai-act,soc2,hipaa,sec', '--as', 'auditor-test', '--store', fx.store, '-o', pdf]);
  if (printed.code === 0) pages = execFileSync('pdftotext', ['-layout', pdf, '-'], { encoding: 'utf8' }).split('\f');
}, 120_000);

/** Pixels of one colour (within a tolerance) on each page, rendered at 50 dpi. */
function colourCounts(colour: readonly [number, number, number]): number[] {
  const prefix = path.join(dir, 'page');
  execFileSync('pdftoppm', ['-png', '-r', '50', pdf, prefix]);
  const files = fs
    .readdirSync(dir)
    .filter((f) => /^page-\d+\.png$/.test(f))
    .sort((a, b) => Number(/\d+/.exec(a)![0]) - Number(/\d+/.exec(b)![0]));
  return files.map((f) => {
    const png = PNG.sync.read(fs.readFileSync(path.join(dir, f)));
    let n = 0;
    for (let i = 0; i < png.data.length; i += 4) {
      if (Math.abs(png.data[i]! - colour[0]) < 24 && Math.abs(png.data[i + 1]! - colour[1]) < 24 && Math.abs(png.data[i + 2]! - colour[2]) < 24) n++;
    }
    return n;
  });
}

describe('witness report -o report.pdf', () => {
  it('prints an A4 PDF with Chromium, every section starting on a page of its own', () => {
    expect(printed.code, printed.stderr).toBe(0);
    expect(printed.stdout).toContain('Wrote the report of leaves 0–16 against checkpoint size 17');
    expect(fs.readFileSync(pdf).subarray(0, 5).toString()).toBe('%PDF-');
    const info = execFileSync('pdfinfo', [pdf], { encoding: 'utf8' });
    expect(info).toMatch(/Page size:.*\(A4\)/);
    const pageOf = SECTIONS.map((h) => pages.findIndex((p) => p.includes(h)));
    for (const [i, h] of SECTIONS.entries()) expect(pageOf[i], `section "${h}" is on no page`).toBeGreaterThanOrEqual(0);
    // Sections 2 onwards break before them: each starts on a later page than the one before.
    for (let i = 1; i < pageOf.length; i++) expect(pageOf[i]!).toBeGreaterThan(pageOf[i - 1]!);
    expect(pages[0]).toContain('Witness evidence report · page 1 of');
  });

  it('[R-REPORT-HONEST] says per page what the records show, and never "compliant"', () => {
    const text = pages.join('\n');
    expect(text).not.toMatch(/\bcompliant\b/i);
    const matrix = pages
      .slice(
        pages.findIndex((p) => p.includes('4. Control mapping')),
        pages.findIndex((p) => p.includes('5. Human oversight')),
      )
      .join('\n');
    expect(matrix).toMatch(/evidence present/);
    expect(matrix).toMatch(/\bgap\b/);
    // Table cells wrap, and -layout interleaves the columns' lines: "Population overrides-and-" / "halts: 0: …".
    expect(matrix).toMatch(/Population overrides-and-/);
    expect(matrix).toMatch(/halts: 0: nothing of this/);
    expect(matrix).toMatch(/not assessable from logs/);
    const oversight = pages.find((p) => p.includes('5. Human oversight'))!;
    expect(oversight).toMatch(/median 1 min 30 s/);
    expect(pages.find((p) => p.includes('10. Retention and holds'))).toMatch(/No retention purge or hold recorded/);
    // The agent's <script> is text on the page, not markup that vanished.
    expect(text).toContain('<script>alert("pwned")</script>');
  });

  it("[R-REPORT-PRINTED] shows the sampled call's before and after screenshots in the appendix", () => {
    const appendix = pages.findIndex((p) => p.includes('Appendix: sampled events'));
    const magenta = colourCounts(MAGENTA);
    const cyan = colourCounts(CYAN);
    // The screenshots' boxes are 320 × 200 px, drawn at roughly half a column's width: hundreds of pixels at 50 dpi.
    const before = magenta.findIndex((n) => n > 300);
    const after = cyan.findIndex((n) => n > 300);
    expect(before, `magenta pixels per page: ${magenta.join(',')}`).toBeGreaterThanOrEqual(appendix);
    expect(after, `cyan pixels per page: ${cyan.join(',')}`).toBeGreaterThanOrEqual(appendix);
    // Nowhere before the appendix.
    expect(magenta.slice(0, appendix).every((n) => n === 0)).toBe(true);
    expect(pages[before]).toMatch(/Before · 2026-11-23 10:00:04 UTC/);
  });

  it('[R-AUDIT-ACCESS] records the report as access to audit data', async () => {
    const ledger = await openLedger(fx.store, { create: false });
    try {
      const access = (await ledger.query({ kind: 'audit.access', limit: 10 })).events.filter((e) => e.resource === 'report');
      expect(access).toHaveLength(1);
      expect(access[0]!.principal).toEqual({ id: 'auditor-test', kind: 'human' });
      expect(access[0]!.data).toMatchObject({ operation: 'export', format: 'report/pdf', span: { from: 0, to: 17 } });
    } finally {
      await ledger.close();
    }
  });
});

describe('witness report refuses, in one sentence', () => {
  const saved = process.env['WITNESS_CHROMIUM'];
  afterEach(() => {
    if (saved === undefined) delete process.env['WITNESS_CHROMIUM'];
    else process.env['WITNESS_CHROMIUM'] = saved;
  });

  it('a report with no scope, an unknown regime, or an output that is neither .pdf nor .html (exit 2)', async () => {
    const out = path.join(dir, 'x.pdf');
    const none = await runCli(['report', '--store', fx.store, '-o', out]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^witness: Say what the report covers: give --since and --until, --agent or --session \(any together\)\.\n$/);
    const regime = await runCli(['report', '--agent', 'ops-bot', '--regime', 'gdpr', '--store', fx.store, '-o', out]);
    expect(regime.code).toBe(2);
    expect(regime.stderr).toContain('Unknown regime gdpr; choose from eu-ai-act, soc2, hipaa, sec.');
    const txt = await runCli(['report', '--agent', 'ops-bot', '--store', fx.store, '-o', path.join(dir, 'x.txt')]);
    expect(txt.code).toBe(2);
    expect(txt.stderr).toContain('must end in .pdf or .html');
    const empty = await runCli(['report', '--agent', 'nobody', '--store', fx.store, '-o', out]);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toContain('No events in');
  });

  it('a PDF without Chromium: the sentence capture gives, and no file', async () => {
    process.env['WITNESS_CHROMIUM'] = path.join(dir, 'no-such-chromium');
    const out = path.join(dir, 'no-chromium.pdf');
    const r = await runCli(['report', '--agent', 'ops-bot', '--store', fx.store, '-o', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^witness: chromium is not installed \(looked at .*no-such-chromium\); install it with `sudo sh scripts\/setup-system\.sh`/);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('writes HTML with no Chromium at all', async () => {
    process.env['WITNESS_CHROMIUM'] = path.join(dir, 'no-such-chromium');
    const out = path.join(dir, 'report.html');
    const r = await runCli(['report', '--agent', 'ops-bot', '--regime', 'soc2', '--store', fx.store, '-o', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ format: 'html', mode: 'full', scope: { agents: ['ops-bot'], regimes: ['soc2'] } });
    expect(fs.readFileSync(out, 'utf8')).toContain('<b>CC6.1</b>');
  });
});
