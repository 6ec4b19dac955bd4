import { v7 as uuidv7 } from 'uuid';
import { describe, expect, it } from 'vitest';
import type { AppendRequest, Ledger, SessionSummary } from '../../../src/store/index.js';
import type { DriverUnderTest } from './driver.js';
import { verifyAfresh, withLedger } from './fixtures.js';

const minute = (i: number) => new Date(Date.UTC(2026, 10, 2, 0, i)).toISOString();
const DIGEST = 'ab'.repeat(32);
type Recorder = 'gateway' | 'cli' | 'server' | 'sdk';

function ev(stream: string, i: number, kind: string, recorder: Recorder | undefined, data: Record<string, unknown>, extra: Record<string, unknown> = {}): AppendRequest {
  return { stream, agent: { id: 'support-bot' }, ts: minute(i), kind, data, ...(recorder === undefined ? {} : { recorder: { kind: recorder, version: '0.1.0' } }), ...extra } as AppendRequest;
}

const request = (stream: string, i: number, id: string, recorder: Recorder) => ev(stream, i, 'approval.request', recorder, { request_id: id, arguments_digest: DIGEST }, { id, outcome: 'pending' });
const decision = (stream: string, i: number, parent: string | undefined, d: string, recorder: Recorder | undefined) =>
  ev(stream, i, 'approval.decision', recorder, { request_id: parent ?? 'none', decision: d, approver: 'alice@corp', arguments_digest: DIGEST }, parent === undefined ? {} : { parent });

/**
 * A session's approval counts hold only the records the rest of Witness honours (core's
 * APPROVAL_RECORDERS, as approvers' queues and the report read them): a request the gateway
 * recorded, and a decision on such a request in the same session, an approval or denial by a
 * person through the CLI or the server, an expiry by the gateway. What an agent wrote straight into
 * the ledger, stamped as its SDK stamps everything, counts for nothing, nor does a person's
 * decision on the agent's own request or a decision naming a request of another session.
 */
function corpus(): { first: AppendRequest[]; second: AppendRequest[] } {
  const [r1, r2, r3, f1] = [uuidv7(), uuidv7(), uuidv7(), uuidv7()];
  return {
    first: [
      ev('gw', 0, 'session.start', 'gateway', {}),
      request('gw', 1, r1, 'gateway'),
      decision('gw', 2, r1, 'approved', 'cli'),
      ev('own', 3, 'session.start', 'sdk', {}),
      request('own', 4, f1, 'sdk'),
      decision('own', 5, f1, 'approved', 'sdk'),
    ],
    second: [
      request('gw', 6, r2, 'gateway'),
      decision('gw', 7, r2, 'denied', 'server'),
      request('gw', 8, r3, 'gateway'),
      // An expiry only the gateway records; a person approving is never the gateway.
      decision('gw', 9, r3, 'expired', 'cli'),
      decision('gw', 10, r3, 'expired', 'gateway'),
      decision('gw', 11, r1, 'approved', 'gateway'),
      decision('gw', 12, r1, 'denied', undefined),
      // A person's decision on the agent's own request, one naming no request, one on another session's.
      decision('own', 13, f1, 'approved', 'cli'),
      decision('own', 14, undefined, 'approved', 'cli'),
      decision('own', 15, r2, 'denied', 'server'),
      decision('own', 16, f1, 'expired', 'gateway'),
    ],
  };
}

const counts = (requested: number, approved: number, denied: number, expired: number) => ({ requested, approved, denied, expired });

async function approvalsOf(l: Ledger): Promise<Record<string, SessionSummary['approvals']>> {
  const out: Record<string, SessionSummary['approvals']> = {};
  for (const s of (await l.listSessions()).sessions) out[s.stream] = s.approvals;
  for (const id of ['gw', 'own']) {
    const [one] = (await l.listSessions({ session: id })).sessions;
    expect(one?.approvals, `${id} alone`).toEqual(out[id]);
  }
  return out;
}

export function sessionApprovalsContract(driver: DriverUnderTest): void {
  describe('listSessions approval counts', () => {
    it('[R-WHAT-WHEN-RESULT] counts only the gateway’s requests and the decisions on them that their recorders may write, indexed or not, from every handle', async () => {
      await withLedger(driver, async (l, also) => {
        const { first, second } = corpus();
        await l.append(first);
        await l.seal();
        await l.append(second);
        const want = { gw: counts(3, 1, 1, 1), own: counts(0, 0, 0, 0) };
        // Part sealed (and so indexed, where a driver keeps an index) and part not.
        expect(await approvalsOf(l)).toEqual(want);
        await l.seal();
        expect(await approvalsOf(l)).toEqual(want);
        const reader = also(await driver.openAgain(l, driver.readonly ? { readonly: true } : {}));
        expect(await approvalsOf(reader)).toEqual(want);
        // Whatever a driver keeps per session agrees with the events.
        expect((await verifyAfresh(driver, l)).ok).toBe(true);
      });
    });
  });
}
