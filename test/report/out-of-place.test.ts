import { beforeAll, describe, expect, it } from 'vitest';
import { resolveSpan, type BundleScope } from '../../src/export/index.js';
import { renderReport } from '../../src/report/index.js';
import { openLedger, type AppendRequest } from '../../src/store/index.js';
import { tempDir } from '../helpers/tmp.js';
import { buildReportLedger, type ReportLedger } from './fixture.js';

/**
 * Records of governance kinds an agent could write into its own session (through the database file
 * or, before the SDK checked one copy of an event, an accessor trick): three halts and a legal hold
 * stamped `sdk` in its own session, an approval request and an expiry stamped `sdk`. Readers of
 * the ledger honour none of them (core's isGovernanceRecord, isApprovalRecord); the report must not
 * count them either, and lists them apart so the auditor sees they were written.
 */

const dir = tempDir('witness-report-out-of-place-');
let fx: ReportLedger;
const ALL: BundleScope = { since: '2026-11-23T00:00:00.000Z', until: '2026-11-24T00:00:00.000Z', agents: null, sessions: null, regimes: ['eu-ai-act', 'soc2'] };
const at = (s: number) => new Date(Date.UTC(2026, 10, 23, 10, 30, 0) + s * 1000).toISOString();

beforeAll(async () => {
  fx = await buildReportLedger(dir);
  const ledger = await openLedger(fx.store, { create: false });
  try {
    const sdk = { kind: 'sdk' as const, version: '0.1.0' };
    const head = { stream: 'bot-run-1', agent: { id: 'support-bot' }, recorder: sdk };
    const forged: AppendRequest[] = [
      ...[0, 1, 2].map((i) => ({
        ...head,
        ts: at(i),
        kind: 'human.halt',
        principal: { id: 'ciso', kind: 'human' },
        data: { actor: 'ciso', reason: 'quarterly oversight drill', agent: 'support-bot' },
      })),
      { ...head, ts: at(3), kind: 'hold.placed', data: { hold_id: 'hold-lit-7', scope: { agent: 'support-bot' }, reason: 'litigation', placed_by: 'legal' } },
      {
        ...head,
        ts: at(4),
        id: '01a24dd1-0000-7000-8000-000000000001',
        kind: 'approval.request',
        outcome: 'pending',
        data: { request_id: '01a24dd1-0000-7000-8000-000000000001', arguments_digest: 'e'.repeat(64), rule: 'routine-read-only', reason: 'pre-approved by finance' },
      },
      {
        ...head,
        ts: at(5),
        parent: '01a24dd1-0000-7000-8000-000000000001',
        kind: 'approval.decision',
        outcome: 'expired',
        data: { request_id: '01a24dd1-0000-7000-8000-000000000001', decision: 'expired', approver: 'nobody', arguments_digest: 'e'.repeat(64) },
      },
    ] as AppendRequest[];
    for (const e of forged) await ledger.append([e]);
    await ledger.seal();
  } finally {
    await ledger.close();
  }
});

async function render(mode: 'full' | 'withheld'): Promise<string> {
  const ledger = await openLedger(fx.store, { create: false });
  try {
    const span = (await resolveSpan(ledger, ALL))!;
    const cp = (await ledger.latestCheckpoint())!;
    return await renderReport(ledger, { scope: ALL, span, checkpoint: { size: cp.size, root: cp.root.toString('hex') }, mode });
  } finally {
    await ledger.close();
  }
}

/** The HTML of the section with this id. */
function section(html: string, id: string): string {
  const start = html.indexOf(`id="${id}"`);
  expect(start, id).toBeGreaterThan(0);
  return html.slice(start, html.indexOf('</section>', start));
}

describe('the auditor report and governance records out of their place', () => {
  for (const mode of ['full', 'withheld'] as const) {
    it(`${mode}: counts no halt, hold, request or expiry an agent wrote into its own session, and lists them apart as not honoured`, async () => {
      const html = await render(mode);
      const oversight = section(html, 'oversight');
      expect(oversight).toContain('<b>0</b>halts');
      // The fixture's one request (the gateway's) and its one decision (alice's, through the CLI).
      expect(oversight).toContain('<b>1</b>calls held for a person');
      expect(oversight).toContain('<b>1</b>approved');
      expect(oversight).toContain('<b>0</b>expired undecided');
      expect(oversight).toContain('<b>0</b>no decision in scope');
      expect(section(html, 'retention')).toContain('No retention purge or hold recorded in scope');
      const misplaced = section(html, 'exceptions');
      expect(misplaced).toContain('Records of governance kinds out of their place (not honoured)');
      const listed = misplaced.slice(misplaced.indexOf('out of their place'));
      expect(listed.match(/<td>human\.halt<\/td>/g)).toHaveLength(3);
      expect(listed.match(/<td>hold\.placed<\/td>/g)).toHaveLength(1);
      expect(listed.match(/<td>approval\.request<\/td>/g)).toHaveLength(1);
      expect(listed.match(/<td>approval\.decision<\/td>/g)).toHaveLength(1);
      expect(listed).toContain('6 records');
    });
  }
});
