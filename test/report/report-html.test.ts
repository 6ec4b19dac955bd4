import { beforeAll, describe, expect, it } from 'vitest';
import { recordReview, resolveSpan, type BundleScope } from '../../src/export/index.js';
import { CONTROLS, renderReport, type ReportOptions } from '../../src/report/index.js';
import { openLedger } from '../../src/store/index.js';
import { tempDir } from '../helpers/tmp.js';
import { SCRIPT_TEXT, buildReportLedger, type ReportLedger } from './fixture.js';

const dir = tempDir('witness-report-html-');
let fx: ReportLedger;

beforeAll(async () => {
  fx = await buildReportLedger(dir);
});

const ALL: BundleScope = { since: '2026-11-23T00:00:00.000Z', until: '2026-11-24T00:00:00.000Z', agents: null, sessions: null, regimes: ['eu-ai-act', 'soc2', 'hipaa', 'sec'] };

async function render(scope: BundleScope, extra: Partial<ReportOptions> = {}): Promise<string> {
  const ledger = await openLedger(fx.store, { create: false });
  try {
    const span = await resolveSpan(ledger, scope);
    if (span === undefined) throw new Error('empty scope');
    const cp = (await ledger.latestCheckpoint())!;
    return await renderReport(ledger, { scope, span, checkpoint: { size: cp.size, root: cp.root.toString('hex') }, mode: 'full', ...extra });
  } finally {
    await ledger.close();
  }
}

/** The text of one matrix row (from its requirement id to the end of the row). */
function row(html: string, id: string): string {
  const at = html.indexOf(`<b>${id}</b>`);
  expect(at, `row ${id}`).toBeGreaterThan(0);
  return html.slice(at, html.indexOf('</tr>', at));
}

describe('the auditor report (HTML)', () => {
  it('[R-REPORT-PRINTED] has every section, in order, and runs no script: agent text with <script> is shown escaped', async () => {
    const html = await render(ALL);
    const headings = [...html.matchAll(/<h[12][^>]*>([^<]+)/g)].map((m) => m[1]!.trim());
    expect(headings).toEqual([
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
    ]);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/\son[a-z]+=/i);
    expect(html).toContain('&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;');
    expect(SCRIPT_TEXT).toContain('<script>');
  });

  it('[R-REPORT-HONEST] maps every chosen regime and never says "compliant"; an empty population is a gap row', async () => {
    const html = await render(ALL);
    expect(html).not.toMatch(/\bcompliant\b/i);
    for (const c of CONTROLS) expect(html).toContain(`<b>${c.id}</b>`);
    // No override or halt was recorded, and no review.
    expect(row(html, 'Art. 14(4)(d)-(e)')).toContain('status gap');
    expect(row(html, 'Art. 14(4)(d)-(e)')).toContain('overrides-and-halts: 0');
    expect(row(html, 'CC7.3')).toContain('status gap');
    expect(row(html, '164.308(a)(1)(ii)(D)')).toContain('status gap');
    // One approval request and decision, one denial, one config change were.
    expect(row(html, 'Art. 14(1), 14(4)(a)-(c)')).toContain('status present');
    expect(row(html, 'CC8.1')).toContain('status present');
    expect(row(html, 'Art. 12(1)')).toContain('status present');
    expect(row(html, 'Art. 12(3)')).toContain('not assessable from logs');
    expect(row(html, 'Art. 19(1)')).toContain('not assessable from logs');
  });

  it('shows only the chosen regimes', async () => {
    const html = await render({ ...ALL, regimes: ['hipaa'] });
    expect(html).toContain('<b>164.312(b)</b>');
    expect(html).not.toContain('<b>CC6.1</b>');
    expect(html).not.toContain('<b>Art. 12(1)</b>');
  });

  it('states oversight, reviews due, changes, access, retention and clock skew from the records', async () => {
    const html = await render(ALL);
    expect(html).toMatch(/<b>1<\/b>calls held for a person/);
    expect(html).toMatch(/<b>1<\/b>approved/);
    expect(html).toMatch(/<b>1<\/b>denied by policy/);
    expect(html).toContain('median 1 min 30 s');
    expect(html).toContain('one review is due per population per calendar month (UTC)');
    expect(html).toContain('0 of 5 due reviews were performed');
    expect(html).toContain('raised the refund review threshold to 500');
    expect(html).toContain('amy@audit');
    expect(html).toContain('No retention purge or hold recorded');
    expect(html).toMatch(/by more than 60 s: 1\./);
    expect(html).toContain('5 min 0 s');
  });

  it('samples deterministically, with each proof checked against the signed root and the screenshots embedded', async () => {
    const a = await render(ALL, { now: new Date('2026-12-01T00:00:00Z') });
    const b = await render(ALL, { now: new Date('2026-12-01T00:00:00Z') });
    expect(a).toBe(b);
    expect(a).toContain('checked while this report was made: it leads to the signed root.');
    expect(a).not.toContain('does NOT lead');
    expect(a).toContain('seeded hash');
    expect(a).toContain('first of approvals');
    const images = [...a.matchAll(/<img src="([^"]+)"/g)].map((m) => m[1]!);
    expect(images.length).toBe(2);
    for (const src of images) expect(src).toMatch(/^data:image\/png;base64,/);
    expect(a).not.toContain('/v1/artifacts/');
  });

  it('inside a bundle links the artifact files, and in a withheld export shows no payload and no screenshot', async () => {
    const bundled = await render(ALL, { artifactFile: (sha) => `artifacts/${sha}.png` });
    expect(bundled).toContain(`<img src="artifacts/${fx.shots.before}.png"`);
    expect(bundled).toContain(`<img src="artifacts/${fx.shots.after}.png"`);
    const withheld = await render(ALL, { mode: 'withheld', artifactFile: () => undefined });
    expect(withheld).not.toContain('A-1042');
    expect(withheld).not.toContain('pwned');
    expect(withheld).not.toContain('raised the refund review threshold');
    expect(withheld).not.toMatch(/<img /);
    expect(withheld).toContain('withheld with the payloads in this export');
  });

  it('covers only the scope: one agent leaves the other agent out', async () => {
    const html = await render({ ...ALL, agents: ['ops-bot'] });
    expect(html).toContain('ops-bot');
    expect(html).not.toContain('billing.refund');
    expect(html).not.toMatch(/<img /);
  });

  it('counts a review recorded after the period for the population it bound (same digest), and says where it is and that its proof holds', async () => {
    const own = await buildReportLedger(dir);
    const ledger = await openLedger(own.store, { create: false });
    try {
      // Reviewed the day's denials; the review is dated now, so the window leaves it out of the span.
      const review = await recordReview(ledger, { population: 'denials', scope: ALL, disposition: 'ok', note: 'denials of the day looked at', reviewer: 'rita@corp' });
      const span = (await resolveSpan(ledger, ALL))!;
      expect(review.leaf).toBeGreaterThanOrEqual(span.to);
      const cp = (await ledger.latestCheckpoint())!;
      const html = await renderReport(ledger, { scope: ALL, span, checkpoint: { size: cp.size, root: cp.root.toString('hex') }, mode: 'full' });
      expect(html).toMatch(/<td>denials<\/td><td>2026-11<\/td><td class="num">1<\/td><td class="num">1<\/td><td><span class="status present">reviewed<\/span>/);
      expect(html).toMatch(/<td>approvals<\/td><td>2026-11<\/td><td class="num">\d+<\/td><td class="num">0<\/td><td><span class="status gap">not reviewed<\/span>/);
      expect(html).toContain(`recorded after this period, at leaf ${review.leaf}; its inclusion proof to checkpoint ${cp.size} holds`);
      expect(html).toContain('rita@corp');
    } finally {
      await ledger.close();
    }
  });

  it("does not count a review of one session for a two-session report's denials: it is listed as a review of another population or scope, with its digest", async () => {
    const own = await buildReportLedger(dir);
    const ledger = await openLedger(own.store, { create: false });
    try {
      const review = await recordReview(ledger, {
        population: 'denials',
        scope: { since: null, until: null, agents: null, sessions: [own.refund] },
        disposition: 'ok',
        note: 'refund session checked',
        reviewer: 'rita@corp',
      });
      const scope: BundleScope = { since: null, until: null, agents: null, sessions: [own.refund, own.ops], regimes: ALL.regimes };
      const span = (await resolveSpan(ledger, scope))!;
      // The review names the refund session, so this scope holds it (system-stream rule).
      expect(review.leaf).toBeLessThan(span.to);
      const cp = (await ledger.latestCheckpoint())!;
      const html = await renderReport(ledger, { scope, span, checkpoint: { size: cp.size, root: cp.root.toString('hex') }, mode: 'full' });
      expect(html).toMatch(/<td>denials<\/td><td>2026-11<\/td><td class="num">1<\/td><td class="num">0<\/td><td><span class="status gap">not reviewed<\/span>/);
      expect(html).toContain(`review of another population or scope (digest ${review.population.digest.slice(0, 12)}`);
      expect(html).toContain('0 of ');
    } finally {
      await ledger.close();
    }
  });
});
