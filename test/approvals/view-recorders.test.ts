import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { findApproval, listApprovals } from '../../src/approvals/index.js';
import { argumentsDigest, newArgumentsSalt } from '../../src/core/index.js';
import { openLedger, type AppendRequest, type Ledger } from '../../src/store/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * Approvers' queues, `witness approvals` and the gateway's join read approval requests from the
 * ledger; a request only the gateway records (it holds the call), and an unsigned expiry only the
 * gateway records, in the request's session. These records are written straight into the ledger
 * (as a process holding the database file could), stamped as the SDK, another agent, or the gateway.
 */

const dir = tempDir('witness-approval-recorders-');
const open: Ledger[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((l) => l.close()));
});

async function ledger(): Promise<Ledger> {
  const l = await openLedger(`sqlite:${tempDb(dir)}`);
  open.push(l);
  return l;
}

function request(stream: string, recorder: 'sdk' | 'gateway' | 'server' | undefined, rule: string): AppendRequest {
  const id = randomUUID();
  const salt = newArgumentsSalt();
  const args = { order: 'all' };
  return {
    id,
    stream,
    agent: { id: 'support-bot' },
    kind: 'approval.request',
    outcome: 'pending',
    ...(recorder === undefined ? {} : { recorder: { kind: recorder, version: '0.1.0' } }),
    data: {
      request_id: id,
      tool: 'refund',
      server: 'shop',
      session: stream,
      arguments: args,
      arguments_salt: salt,
      arguments_digest: argumentsDigest(salt, args),
      rule,
      reason: 'pre-approved by finance',
      expires_at: new Date(Date.now() + 3_600_000).toISOString(),
    },
  } as AppendRequest;
}

function expiry(requestId: string, stream: string, recorder: 'sdk' | 'gateway', agent = 'support-bot'): AppendRequest {
  return {
    stream,
    agent: { id: agent },
    kind: 'approval.decision',
    parent: requestId,
    outcome: 'expired',
    recorder: { kind: recorder, version: '0.1.0' },
    data: { request_id: requestId, decision: 'expired', approver: 'nobody', arguments_digest: 'a'.repeat(64) },
  } as AppendRequest;
}

describe('the approval readers believe requests and expiries only from the gateway', () => {
  it('lists a request the gateway recorded, and not one stamped by the SDK, the server or nobody', async () => {
    const l = await ledger();
    const [gw, sdk, server, bare] = await l.append([
      request('gateway-session', 'gateway', 'refunds-over-500'),
      request('agent-own-session', 'sdk', 'routine-read-only'),
      request('agent-own-session', 'server', 'routine-read-only'),
      request('agent-own-session', undefined, 'routine-read-only'),
    ]);
    const pending = await listApprovals(l, { status: 'pending' });
    expect(pending.map((v) => v.requestId)).toEqual([gw!.id]);
    expect((await listApprovals(l, { agent: 'support-bot' })).map((v) => v.rule)).toEqual(['refunds-over-500']);
    for (const r of [sdk!, server!, bare!]) {
      await expect(findApproval(l, r.id)).rejects.toMatchObject({ code: 'not_found', message: expect.stringMatching(/not recorded by the Witness gateway/) });
      await expect(findApproval(l, r.id.slice(0, 13))).rejects.toMatchObject({ code: 'not_found' });
    }
    expect((await findApproval(l, gw!.id)).status).toBe('pending');
  });

  it('does not mark a request expired on an unsigned expiry from the SDK or another session; the gateway’s own, in the request’s session, does', async () => {
    const l = await ledger();
    const [gw] = await l.append([request('gateway-session', 'gateway', 'refunds-over-500')]);
    await l.append([expiry(gw!.id, 'other-agent-session', 'sdk', 'other-bot'), expiry(gw!.id, 'gateway-session', 'sdk'), expiry(gw!.id, 'another-gateway-session', 'gateway')]);
    const v = await findApproval(l, gw!.id);
    expect(v.status).toBe('pending');
    expect(v.decision).toBeUndefined();
    // Read by the request's agent: the other agent's record is not even among its decisions.
    expect(v.decisions).toHaveLength(2);
    const [own] = await l.append([expiry(gw!.id, 'gateway-session', 'gateway')]);
    const after = await findApproval(l, gw!.id);
    expect(after.status).toBe('expired');
    expect(after.decision?.id).toBe(own!.id);
  });
});
