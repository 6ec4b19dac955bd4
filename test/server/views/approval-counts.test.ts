import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../../src/core/index.js';
import { countEvents, overviewBuckets } from '../../../src/server/views/index.js';

/**
 * The overview's and the report's totals count an approval.decision as an approval or a denial only
 * as the rest of Witness honours it (core's isApprovalRecord; the report's `honoured`): a person's
 * approval or denial recorded through the CLI or the server, an expiry recorded by the gateway. A
 * decision an agent wrote straight into the ledger (stamped as its SDK stamps everything), or with no
 * recorder at all, or an "approval" stamped by the gateway (which records only expiries), is kept and
 * shown as recorded but counted nowhere.
 */

const T0 = Date.UTC(2026, 10, 23, 10, 0, 0);
const at = (s: number) => new Date(T0 + s * 1000).toISOString();
let n = 0;

function ev(kind: string, recorder: string | undefined, s: number, data: Record<string, unknown>, extra: Partial<StoredEvent> = {}): StoredEvent {
  n += 1;
  return {
    v: 1,
    id: `ev-${n}`,
    stream: 'sess',
    seq: n,
    ts: at(s),
    agent: { id: 'support-bot' },
    kind,
    ...(recorder === undefined ? {} : { recorder: { kind: recorder, version: '0.1.0' } }),
    data,
    ...extra,
  } as unknown as StoredEvent;
}

const request = (id: string, recorder: string, s: number) => ev('approval.request', recorder, s, { request_id: id }, { id });
const decision = (id: string, d: string, recorder: string | undefined, s: number) =>
  ev('approval.decision', recorder, s, { request_id: id, decision: d, approver: 'alice@corp', decided_at: at(s) }, { parent: id });

function corpus(): StoredEvent[] {
  return [
    request('r1', 'gateway', 0),
    decision('r1', 'approved', 'cli', 60),
    request('r2', 'gateway', 0),
    decision('r2', 'denied', 'server', 120),
    request('r3', 'gateway', 0),
    decision('r3', 'expired', 'gateway', 180),
    // Not honoured: an agent's own pair, an unstamped decision, a gateway "approval", a person's "expiry".
    request('f1', 'sdk', 0),
    decision('f1', 'approved', 'sdk', 240),
    decision('r1', 'approved', undefined, 300),
    decision('r1', 'approved', 'gateway', 360),
    decision('r2', 'denied', 'sdk', 420),
    decision('r3', 'expired', 'cli', 480),
  ];
}

describe('approval totals on the overview and in the report', () => {
  it('[R-GW-APPROVAL] countEvents counts one approval and two refusals (a denial and the gateway’s expiry), none of the decisions nobody honours', () => {
    expect(countEvents(corpus())).toEqual({ events: 12, toolCalls: 0, denials: 2, approvals: 1 });
  });

  it('[R-GW-APPROVAL] overviewBuckets counts and times only the honoured decisions, in their own buckets', () => {
    const buckets = overviewBuckets(corpus(), { from: at(0), to: at(600), buckets: 10 });
    expect(buckets.map((b) => [b.approvals, b.denials])).toEqual([
      [0, 0],
      [1, 0],
      [0, 1],
      [0, 1],
      [0, 0],
      [0, 0],
      [0, 0],
      [0, 0],
      [0, 0],
      [0, 0],
    ]);
    // A person's decisions wait from the gateway's request; the forged ones start no wait and end none.
    expect(buckets.map((b) => b.approvalWaitMs)).toEqual([undefined, 60_000, 120_000, undefined, undefined, undefined, undefined, undefined, undefined, undefined]);
  });
});
