import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { argumentsDigest, generateKey, newArgumentsSalt, parseSignerKey, type NoteSigner } from '../../src/core/index.js';
import { decide, decideApproval, findApproval, listApprovals } from '../../src/approvals/index.js';
import { openWitness, systemWriter, type Witness } from '../../src/recorder/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import { driverOf } from '../helpers/ledger.js';

/**
 * The approval protocol over a real SQLite ledger, without a gateway: a request written as the
 * gateway writes it, and people deciding it through decideApproval from separate recorders.
 */

const dir = tempDir('witness-approvals-');
const alice = parseSignerKey(generateKey('alice@corp').signerKey);
const bob = parseSignerKey(generateKey('bob@corp').signerKey);
/** A key a careless operator listed, named for the agent itself. */
const agentKey = parseSignerKey(generateKey('Support-Bot').signerKey);

async function request(w: Witness, approvers: NoteSigner[]): Promise<string> {
  // As the gateway records it: the SDK's public path refuses approval.request.
  const s = await systemWriter(w, 'gateway').session({ agent: { id: 'support-bot' } });
  const salt = newArgumentsSalt();
  const args = { amount: 650 };
  const id = randomUUID();
  await s.record(
    'approval.request',
    {
      request_id: id,
      tool: 'billing.refund',
      arguments: args,
      arguments_salt: salt,
      arguments_digest: argumentsDigest(salt, args),
      approvers: approvers.map((a) => a.verifierKey),
      policy_version: 'ab'.repeat(32),
      expires_at: new Date(Date.now() + 60_000).toISOString(),
    },
    { id, outcome: 'pending' },
  );
  await w.flush();
  return id;
}

describe('deciding an approval request', () => {
  it('tells the one recorded second that it lost, even when both read the request as pending before either wrote [R-APPROVAL-RACE]', async () => {
    const store = `sqlite:${tempDb(dir)}`;
    const gateway = await openWitness({ store });
    const id = await request(gateway, [alice, bob]);
    const [a, b] = [await openWitness({ store }), await openWitness({ store })];
    try {
      const results = await Promise.allSettled([decideApproval(a, id, { decision: 'approved', signer: alice }), decideApproval(b, id, { decision: 'denied', signer: bob, reason: 'no' })]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      const winner = (won[0] as PromiseFulfilledResult<{ decisionId: string }>).value;
      expect(lost[0]!.reason).toMatchObject({
        code: 'conflict',
        message: expect.stringMatching(
          /^You lost the race for approval request .*: (alice@corp approved|bob@corp denied) it first \(event [0-9a-f-]{36}, .*\); your (approval|denial), event [0-9a-f-]{36}, stays in the ledger but does not count\.$/,
        ),
      });
      // Both are in the ledger; the first recorded is the decision that counts.
      const v = await findApproval(driverOf(gateway), id);
      expect(v.decisions).toHaveLength(2);
      expect(v.decision?.id).toBe(winner.decisionId);
      expect(v.decisions[0]!.id).toBe(winner.decisionId);
    } finally {
      await Promise.all([a.close(), b.close(), gateway.close()]);
    }
  });

  it('refuses a reason that redaction would change, since the signed decision would not survive being recorded [R-APPROVER-SIGNED]', async () => {
    const store = `sqlite:${tempDb(dir)}`;
    const w = await openWitness({ store });
    try {
      const id = await request(w, [alice]);
      await expect(decideApproval(w, id, { decision: 'approved', signer: alice, reason: 'the customer read out password=hunter2 on the call' })).rejects.toMatchObject({
        code: 'invalid_argument',
        message: expect.stringMatching(/redacts as a secret/),
      });
      expect((await findApproval(driverOf(w), id)).decisions).toEqual([]);
    } finally {
      await w.close();
    }
  });

  it('decides as the identity the caller gives, binding it as witness approve does, and lists the request by status [R-GW-APPROVAL-BINDING] [R-OUTCOMES]', async () => {
    const store = `sqlite:${tempDb(dir)}`;
    const w = await openWitness({ store });
    try {
      const approved = await request(w, [alice, bob]);
      const denied = await request(w, [alice, bob]);
      expect((await listApprovals(driverOf(w), { status: 'pending' })).map((v) => v.requestId)).toEqual([approved, denied]);
      const a = await decide(w, { request: approved.slice(0, 13), approver: 'alice@corp', signer: alice, decision: 'approved', reason: 'checked' });
      const d = await decide(w, { request: denied, approver: 'bob@corp', signer: bob, decision: 'denied', reason: 'no' });
      await w.flush();
      const reader = driverOf(w);
      const [va, vd] = [await findApproval(reader, approved), await findApproval(reader, denied)];
      expect(va).toMatchObject({
        status: 'approved',
        decision: { id: a.decisionId, outcome: 'success', data: { approver: 'alice@corp', decision: 'approved', request_id: approved, agent: 'support-bot' } },
      });
      expect(vd).toMatchObject({ status: 'denied', decision: { id: d.decisionId, outcome: 'denied', data: { approver: 'bob@corp', decision: 'denied' } } });
      expect(await listApprovals(reader, { status: 'pending' })).toEqual([]);
      expect((await listApprovals(reader, { status: ['approved', 'denied'] })).map((v) => v.status)).toEqual(['approved', 'denied']);
    } finally {
      await w.close();
    }
  });

  it("refuses the agent deciding its own request with a typed error whatever the case of its name, and a key that is not the approver's, recording nothing [R-APPROVER-ALLOWED]", async () => {
    const store = `sqlite:${tempDb(dir)}`;
    const w = await openWitness({ store });
    try {
      const id = await request(w, [alice, agentKey]);
      await expect(decide(w, { request: id, approver: 'ＳＵＰＰＯＲＴ-bot', signer: agentKey, decision: 'approved' })).rejects.toMatchObject({
        code: 'forbidden',
        details: { refusal: 'approver_is_agent', request: id },
        message: expect.stringMatching(/is the agent that made this call \(support-bot\) and cannot decide its own approval request/),
      });
      // Named as a person, signed with the agent's key: still the agent.
      await expect(decide(w, { request: id, approver: 'alice@corp', signer: agentKey, decision: 'approved' })).rejects.toMatchObject({ code: 'forbidden', details: { refusal: 'approver_is_agent' } });
      await expect(decide(w, { request: id, approver: 'bob@corp', signer: alice, decision: 'denied' })).rejects.toMatchObject({
        code: 'forbidden',
        details: { refusal: 'key_not_approver' },
        message: expect.stringMatching(/belongs to alice@corp, not to bob@corp/),
      });
      await w.flush();
      expect((await findApproval(driverOf(w), id)).decisions).toEqual([]);
    } finally {
      await w.close();
    }
  });
});
