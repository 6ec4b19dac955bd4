import { v7 as uuidv7 } from 'uuid';
import { describe, expect, it } from 'vitest';
import { resolveSpan, type BundleScope } from '../../src/export/index.js';
import { collectFacts } from '../../src/report/collect.js';
import { openLedger, type AppendRequest } from '../../src/store/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * The report's totals of approvals and refusals count what its approvals section counts: records
 * it honours (`honoured`: a request by the gateway, a person's decision through the CLI or the
 * server, an expiry by the gateway). An agent's own request and decisions on it, and a decision
 * with no recorder, are listed apart as not honoured and counted nowhere else (its doc comment).
 */

const dir = tempDir('witness-report-approval-totals-');
const ALL: BundleScope = { since: '2026-11-23T00:00:00.000Z', until: '2026-11-24T00:00:00.000Z', agents: null, sessions: null, regimes: ['eu-ai-act', 'soc2'] };
const at = (s: number) => new Date(Date.UTC(2026, 10, 23, 10, 0, 0) + s * 1000).toISOString();
const DIGEST = 'ab'.repeat(32);

describe('the auditor report’s approval totals', () => {
  it('[R-GW-APPROVAL] counts the person’s approval of the gateway’s request and none of the decisions it lists as not honoured', async () => {
    const ledger = await openLedger(`sqlite:${tempDb(dir)}`);
    try {
      const genuine = uuidv7();
      const forged = uuidv7();
      const agent = { id: 'support-bot' };
      const stamp = (kind: string | undefined) => (kind === undefined ? {} : { recorder: { kind, version: '0.1.0' } });
      const request = (stream: string, id: string, recorder: string, s: number) =>
        ({ stream, agent, ...stamp(recorder), ts: at(s), id, kind: 'approval.request', outcome: 'pending', data: { request_id: id, arguments_digest: DIGEST } }) as AppendRequest;
      const decision = (stream: string, parent: string, d: 'approved' | 'denied', recorder: string | undefined, s: number) =>
        ({
          stream,
          agent,
          ...stamp(recorder),
          ts: at(s),
          parent,
          kind: 'approval.decision',
          outcome: d === 'approved' ? 'success' : 'denied',
          data: { request_id: parent, decision: d, approver: 'alice@corp', arguments_digest: DIGEST },
        }) as AppendRequest;
      await ledger.append([
        { stream: 'gw', agent, ...stamp('gateway'), ts: at(0), kind: 'session.start', data: {} } as AppendRequest,
        request('gw', genuine, 'gateway', 1),
        decision('gw', genuine, 'approved', 'cli', 2),
        { stream: 'own', agent, ...stamp('sdk'), ts: at(3), kind: 'session.start', data: {} } as AppendRequest,
        request('own', forged, 'sdk', 4),
        decision('own', forged, 'approved', 'sdk', 5),
        decision('own', forged, 'denied', 'sdk', 6),
        decision('gw', genuine, 'denied', undefined, 7),
      ]);
      const cp = await ledger.seal();
      const span = (await resolveSpan(ledger, ALL))!;
      const facts = await collectFacts(ledger, { scope: ALL, span, mode: 'full', seed: cp!.root.toString('hex') });
      expect(facts.outOfPlace.total).toBe(4);
      expect(facts.approvals).toMatchObject({ requests: 1, approved: 1, denied: 0, expired: 0 });
      expect(facts.counts).toEqual({ events: 8, toolCalls: 0, denials: 0, approvals: 1 });
    } finally {
      await ledger.close();
    }
  });
});
