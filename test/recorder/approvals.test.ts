import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { argumentsDigest, generateKey, newArgumentsSalt, parseSignerKey, type NoteSigner } from '../../src/core/index.js';
import { decideApproval, findApproval, openWitness, type Witness } from '../../src/recorder/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import { driverOf } from '../helpers/ledger.js';

/**
 * The approval protocol over a real SQLite ledger, without a gateway: a request written as the
 * gateway writes it, and people deciding it through decideApproval from separate recorders.
 */

const dir = tempDir('witness-approvals-');
const alice = parseSignerKey(generateKey('alice@corp').signerKey);
const bob = parseSignerKey(generateKey('bob@corp').signerKey);

async function request(w: Witness, approvers: NoteSigner[]): Promise<string> {
  const s = await w.session({ agent: { id: 'support-bot' } });
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
});
