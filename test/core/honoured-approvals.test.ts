import { describe, expect, it } from 'vitest';
import { honouredDecision, isHonouredRequest, statedDecision, type RecorderKind } from '../../src/core/index.js';

/**
 * The one rule for which approval records Witness honours (core's honoured-approvals.ts), which
 * the session counts (both store drivers), the overview and the auditor report all apply.
 */

const OTHERS: (RecorderKind | undefined)[] = ['sdk', 'otlp', undefined];
const GATEWAY_REQUEST = { recorder: 'gateway' };

describe('which approval records Witness honours', () => {
  it('[R-GW-APPROVAL] honours an approval.request the gateway recorded, and one by no other recorder', () => {
    expect(isHonouredRequest('gateway')).toBe(true);
    for (const r of ['sdk', 'otlp', 'cli', 'server', undefined, 1, { kind: 'gateway' }]) expect(isHonouredRequest(r)).toBe(false);
  });

  it('[R-GW-APPROVAL] honours a person’s approval or denial through the CLI or the server on the gateway’s request in the same session', () => {
    expect(honouredDecision('approved', 'cli', GATEWAY_REQUEST)).toBe('approved');
    expect(honouredDecision('denied', 'cli', GATEWAY_REQUEST)).toBe('denied');
    expect(honouredDecision('approved', 'server', GATEWAY_REQUEST)).toBe('approved');
    expect(honouredDecision('denied', 'server', GATEWAY_REQUEST)).toBe('denied');
  });

  it('[R-GW-APPROVAL] honours an expiry the gateway recorded on its own request', () => {
    expect(honouredDecision('expired', 'gateway', GATEWAY_REQUEST)).toBe('expired');
  });

  it('[R-GW-APPROVAL] judges the decision alone where the reader cannot see its request (a window of the ledger, a decision recorded after its session ended)', () => {
    expect(honouredDecision('approved', 'cli')).toBe('approved');
    expect(honouredDecision('expired', 'gateway')).toBe('expired');
    expect(honouredDecision('approved', 'sdk')).toBeUndefined();
  });

  it('[R-GW-APPROVAL] refuses an approval or a denial the gateway stamped: it records only expiries', () => {
    expect(honouredDecision('approved', 'gateway', GATEWAY_REQUEST)).toBeUndefined();
    expect(honouredDecision('denied', 'gateway', GATEWAY_REQUEST)).toBeUndefined();
  });

  it('[R-GW-APPROVAL] refuses an expiry a person’s recorder stamped: only the gateway lets a request expire', () => {
    expect(honouredDecision('expired', 'cli', GATEWAY_REQUEST)).toBeUndefined();
    expect(honouredDecision('expired', 'server', GATEWAY_REQUEST)).toBeUndefined();
  });

  it('[R-GW-APPROVAL] refuses every decision an agent’s SDK, OTLP ingest or no recorder at all wrote', () => {
    for (const r of OTHERS) for (const d of ['approved', 'denied', 'expired']) expect(honouredDecision(d, r, GATEWAY_REQUEST)).toBeUndefined();
  });

  it('[R-GW-APPROVAL] refuses a decision on an agent’s own request, or naming no request of its session', () => {
    expect(honouredDecision('approved', 'cli', { recorder: 'sdk' })).toBeUndefined();
    expect(honouredDecision('expired', 'gateway', { recorder: 'sdk' })).toBeUndefined();
    expect(honouredDecision('approved', 'cli', { recorder: undefined })).toBeUndefined();
  });

  it('[R-GW-APPROVAL] refuses a decision that states none of approved, denied or expired', () => {
    for (const d of ['maybe', 'Approved', '', undefined, null, 1, true]) {
      expect(honouredDecision(d, 'cli', GATEWAY_REQUEST)).toBeUndefined();
      expect(honouredDecision(d, 'gateway', GATEWAY_REQUEST)).toBeUndefined();
    }
  });

  it('[R-GW-APPROVAL] reads the decision from the payload, and from the header’s outcome where the payload is withheld or purged', () => {
    expect(statedDecision({ outcome: 'success', data: { decision: 'approved' } })).toBe('approved');
    expect(statedDecision({ outcome: 'denied', data: { decision: 'denied' } })).toBe('denied');
    expect(statedDecision({ outcome: 'success', data: {} })).toBeUndefined();
    expect(statedDecision({ outcome: 'success' })).toBe('approved');
    expect(statedDecision({ outcome: 'denied', data: null })).toBe('denied');
    expect(statedDecision({ outcome: 'expired', data: null })).toBe('expired');
    expect(statedDecision({ outcome: 'pending' })).toBeUndefined();
    expect(statedDecision({})).toBeUndefined();
  });
});
