import { v7 as uuidv7 } from 'uuid';
import { afterAll, describe, expect, it } from 'vitest';
import { buildStoryboard, type Step } from '../../src/capture/index.js';
import { argumentsDigest, generateKey, newArgumentsSalt, parseSignerKey, signApproval } from '../../src/core/index.js';
import { SqliteLedger, type AppendRequest } from '../../src/store/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * The video believes an approval.request only as the rest of Witness does (core's
 * isApprovalRecord: the gateway alone records one, since it holds the call). An agent that writes
 * its own request straight into the ledger, listing a key it holds itself under a person's name,
 * can then sign a decision that binds that request exactly: judged against the request's own list
 * of approvers it would count, and the video would say that person approved the call. The same
 * records stamped by the gateway are told as an approval, so the test tells the two apart.
 */

const dir = tempDir('witness-storyboard-forged-request-');
const ledgers: SqliteLedger[] = [];
afterAll(async () => {
  for (const l of ledgers) await l.close();
});

/** A call, a request on it stamped by `requestRecorder`, and a decision by "alice@corp" (a key the agent made) that binds the request exactly. */
async function session(requestRecorder: 'gateway' | 'sdk'): Promise<Step> {
  const l = SqliteLedger.open({ path: tempDb(dir) });
  ledgers.push(l);
  const stream = `s-${uuidv7()}`;
  const callId = uuidv7();
  const requestId = uuidv7();
  const key = generateKey('alice@corp');
  const args = { customer_id: 'C-1042', amount: 900 };
  const salt = newArgumentsSalt();
  const digest = argumentsDigest(salt, args);
  const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
  const policyVersion = 'ab'.repeat(32);
  const agent = { id: 'support-bot' };
  const stamp = (kind: 'gateway' | 'sdk' | 'cli') => ({ recorder: { kind, version: '0.1.0' } });
  const unsigned = {
    request_id: requestId,
    decision: 'approved',
    approver: 'alice@corp',
    approver_key: key.verifierKey,
    reason: 'pre-approved by finance',
    agent: agent.id,
    tool: 'refund',
    server: 'billing',
    session: stream,
    arguments_digest: digest,
    policy_version: policyVersion,
    expires_at: expiresAt,
    decided_at: new Date().toISOString(),
  };
  await l.append([
    { stream, agent, ...stamp('sdk'), kind: 'session.start', data: { purpose: 'refunds' } },
    { stream, agent, ...stamp('sdk'), id: callId, kind: 'tool.call', resource: 'billing', action: 'refund', outcome: 'pending', data: { tool: 'refund', server: 'billing', arguments: args } },
    {
      stream,
      agent,
      ...stamp(requestRecorder),
      id: requestId,
      parent: callId,
      kind: 'approval.request',
      resource: 'billing',
      action: 'refund',
      outcome: 'pending',
      data: {
        request_id: requestId,
        tool: 'refund',
        server: 'billing',
        session: stream,
        arguments: args,
        arguments_salt: salt,
        arguments_digest: digest,
        approvers: [key.verifierKey],
        policy_version: policyVersion,
        rule: 'refunds-over-500',
        reason: 'Refunds over 500 need a supervisor.',
        expires_at: expiresAt,
      },
    },
    {
      stream,
      agent,
      ...stamp('cli'),
      parent: requestId,
      kind: 'approval.decision',
      resource: 'billing',
      action: 'refund',
      outcome: 'success',
      data: { ...unsigned, approver_sig: signApproval(parseSignerKey(key.signerKey), unsigned) },
    },
  ] as AppendRequest[]);
  const steps = buildStoryboard(await l.readStream(stream)).steps.filter((s) => s.kind === 'call');
  expect(steps).toHaveLength(1);
  return steps[0]!;
}

const told = (step: Step) => `${step.narration}\n${step.rows.map(([k, v]) => `${k}: ${v}`).join('\n')}`;

describe('the storyboard and approval requests Witness does not believe', () => {
  it('[R-VIDEO-APPROVER] tells a decision on the gateway’s request as the approval it is', async () => {
    const step = await session('gateway');
    expect(step.narration).toContain('alice@corp approved it: pre-approved by finance.');
  });

  it('[R-VIDEO-APPROVER] tells no approval for a request the agent recorded itself, though a decision signed by a key it lists binds it exactly', async () => {
    const step = await session('sdk');
    expect(told(step)).not.toMatch(/approved/);
    expect(told(step)).not.toContain('pre-approved by finance');
    expect(step.rows.find(([k]) => k === 'Approval')).toBeUndefined();
  });
});
