import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { canonicalize, payloadDigest } from '../../src/core/index.js';
import { recordReview, resolveSpan, type BundleMode, type BundleScope } from '../../src/export/index.js';
import { renderReport } from '../../src/report/index.js';
import { openLedger, type Ledger } from '../../src/store/index.js';
import { tamper } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { buildReportLedger } from './fixture.js';

/**
 * Reviews recorded after the report's period ("reviews performed vs due"): found however many
 * reviews the ledger holds, read through their hashed headers, counted only once sealed, shown in a
 * withheld report without their note, and bound to this report's population by name, scope and
 * digest (an empty population has the same digest in every scope).
 */
const dir = tempDir('witness-later-reviews-');
const ALL: BundleScope = { since: '2026-11-23T00:00:00.000Z', until: '2026-11-24T00:00:00.000Z', agents: null, sessions: null, regimes: ['soc2'] };
const NOTE = 'denials of the day looked at, nothing odd';

async function render(ledger: Ledger, scope: BundleScope, mode: BundleMode = 'full', checkpoint?: { size: number; root: string }): Promise<string> {
  const span = (await resolveSpan(ledger, scope))!;
  const cp = (await ledger.latestCheckpoint())!;
  return renderReport(ledger, { scope, span, checkpoint: checkpoint ?? { size: cp.size, root: cp.root.toString('hex') }, mode });
}

const denialsRow = (reviews: number) =>
  new RegExp(`<td>denials</td><td>2026-11</td><td class="num">1</td><td class="num">${reviews}</td><td><span class="status ${reviews > 0 ? 'present">reviewed' : 'gap">not reviewed'}</span>`);

describe('reviews recorded after the period', () => {
  it('are found among more than 10,000 reviews: the newest counts, not only the oldest 10,000', async () => {
    const own = await buildReportLedger(dir);
    const ledger = await openLedger(own.store, { create: false });
    try {
      // 10,000 older reviews of another population, dated after the window (so outside the span).
      for (let b = 0; b < 10; b++) {
        await ledger.append(
          Array.from({ length: 1000 }, (_, i) => ({
            stream: 'old-reviews',
            agent: { id: 'witness-cli' },
            ts: new Date(Date.UTC(2026, 10, 25, 0, 0, 0, b * 1000 + i)).toISOString(),
            kind: 'review' as const,
            data: { reviewer: 'old@corp', population_digest: 'ab'.repeat(32), population: { name: 'approvals', count: 9 }, attestation: 'old' },
          })),
        );
      }
      await ledger.seal();
      const review = await recordReview(ledger, { population: 'denials', scope: ALL, disposition: 'ok', note: NOTE, reviewer: 'rita@corp' });
      expect(review.sealed).toBe(true);
      const html = await render(ledger, ALL);
      expect(html).toMatch(denialsRow(1));
      expect(html).toContain(`recorded after this period, at leaf ${review.leaf}; its inclusion proof to checkpoint`);
    } finally {
      await ledger.close();
    }
  });

  it('do not count while no signed checkpoint covers them, and count once one does', async () => {
    const own = await buildReportLedger(dir);
    // Without the signing key the review is recorded but not sealed.
    fs.renameSync(`${own.file}.key`, `${own.file}.key.away`);
    let review: Awaited<ReturnType<typeof recordReview>>;
    let before: { size: number; root: string };
    let ledger = await openLedger(own.store, { create: false });
    try {
      review = await recordReview(ledger, { population: 'denials', scope: ALL, disposition: 'ok', note: NOTE, reviewer: 'rita@corp' });
      expect(review.sealed).toBe(false);
      const cp = (await ledger.latestCheckpoint())!;
      expect(cp.size).toBeLessThanOrEqual(review.leaf);
      before = { size: cp.size, root: cp.root.toString('hex') };
      const html = await render(ledger, ALL);
      expect(html).toMatch(denialsRow(0));
      expect(html).toContain(`at leaf ${review.leaf}, not yet sealed into a signed checkpoint, so not counted`);
    } finally {
      await ledger.close();
    }
    fs.renameSync(`${own.file}.key.away`, `${own.file}.key`);
    ledger = await openLedger(own.store, { create: false });
    try {
      const cp = (await ledger.seal())!;
      expect(cp.size).toBeGreaterThan(review.leaf);
      // The report's own checkpoint is the older one; the review's proof is checked against the newer.
      const html = await render(ledger, ALL, 'full', before);
      expect(html).toMatch(denialsRow(1));
      expect(html).toContain(`recorded after this period, at leaf ${review.leaf}; its inclusion proof to checkpoint ${cp.size} holds`);
    } finally {
      await ledger.close();
    }
  });

  it('are read through their hashed header: a review whose verdict was rewritten in the database, stored hash kept, is refused', async () => {
    const own = await buildReportLedger(dir);
    let review: Awaited<ReturnType<typeof recordReview>>;
    let span: { from: number; to: number };
    let checkpoint: { size: number; root: string };
    let ledger = await openLedger(own.store, { create: false });
    try {
      review = await recordReview(ledger, { population: 'denials', scope: ALL, disposition: 'escalated', note: NOTE, reviewer: 'rita@corp' });
      // The span is picked while the ledger still verifies (as `witness report` does, just before rendering).
      span = (await resolveSpan(ledger, ALL))!;
      const cp = (await ledger.latestCheckpoint())!;
      checkpoint = { size: cp.size, root: cp.root.toString('hex') };
    } finally {
      await ledger.close();
    }
    // Then the verdict and the header's payload digest are rewritten to match, the stored hash kept.
    tamper(own.file, (db) => {
      const row = db.prepare('SELECT header, data, salt FROM events WHERE pos = ?').get(review.leaf) as { header: string; data: string; salt: Buffer };
      const data = canonicalize({ ...(JSON.parse(row.data) as Record<string, unknown>), disposition: 'ok' });
      const header = JSON.parse(row.header) as Record<string, unknown>;
      header['payload_digest'] = payloadDigest(row.salt, data).toString('hex');
      db.prepare('UPDATE events SET header = ?, data = ? WHERE pos = ?').run(canonicalize(header), data, review.leaf);
    });
    ledger = await openLedger(own.store, { create: false });
    try {
      const err: unknown = await renderReport(ledger, { scope: ALL, span, checkpoint, mode: 'full' }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'store_corrupt' });
      expect((err as Error).message).toContain(`position ${review.leaf} does not match its stored hash`);
    } finally {
      await ledger.close();
    }
  });

  it('are shown in a withheld report too, from their header, without the note and without being counted', async () => {
    const own = await buildReportLedger(dir);
    const ledger = await openLedger(own.store, { create: false });
    try {
      const review = await recordReview(ledger, { population: 'denials', scope: ALL, disposition: 'ok', note: NOTE, reviewer: 'rita@corp' });
      const html = await render(ledger, ALL, 'withheld');
      expect(html).toContain('rita@corp');
      expect(html).toContain(`recorded after this period, at leaf ${review.leaf}`);
      expect(html).toContain('not counted (its payload is withheld)');
      expect(html).not.toContain(NOTE);
      // Population, disposition and digest are payload: the row says so instead of showing them.
      expect(html).toContain('<td>rita@corp</td><td>(withheld)</td><td>(withheld)</td><td class="mono"></td>');
      expect(html).toMatch(denialsRow(0));
    } finally {
      await ledger.close();
    }
  });

  it('count for an empty population only when they reviewed it in this scope: the empty digest is the same in every scope', async () => {
    const own = await buildReportLedger(dir);
    const ledger = await openLedger(own.store, { create: false });
    try {
      const other = await recordReview(ledger, {
        population: 'overrides-and-halts',
        scope: { since: null, until: null, agents: null, sessions: [own.ops] },
        disposition: 'ok',
        note: 'no overrides in the ops session',
        reviewer: 'olga@corp',
      });
      expect(other.population.count).toBe(0);
      let html = await render(ledger, ALL);
      expect(html).not.toContain('counted for overrides-and-halts');
      expect(html).toContain(`review of another population or scope (digest ${other.population.digest.slice(0, 12)}`);
      const same = await recordReview(ledger, { population: 'overrides-and-halts', scope: ALL, disposition: 'ok', note: 'no overrides that day', reviewer: 'olga@corp' });
      expect(same.population.digest).toBe(other.population.digest);
      html = await render(ledger, ALL);
      expect(html.match(/counted for overrides-and-halts/g)).toHaveLength(1);
      expect(html).toContain(`counted for overrides-and-halts; recorded after this period, at leaf ${same.leaf}`);
    } finally {
      await ledger.close();
    }
  });
});
