import { createHash, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { argumentsDigest, canonicalize, generateKey, newArgumentsSalt, parseSignerKey, signApproval, type NoteSigner, type StoredEvent } from '../../src/core/index.js';
import { decide, decisionProblem, findApproval, releaseProblem, type Binding } from '../../src/approvals/index.js';
import { openWitness, systemWriter, type Witness } from '../../src/recorder/index.js';
import { driverOf, readEvents, verifyFile } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * The arguments digest an approval binds: SHA-256("witness/args/v1\n" ‖ salt ‖ JCS(arguments)),
 * a fresh 32-byte salt per request kept in the payload. Over a real SQLite ledger, without a
 * gateway: requests written as the gateway writes them (and as an older Witness wrote them),
 * decisions signed by a person's own key, and the gateway's release check (`releaseProblem`).
 */

const dir = tempDir('witness-args-digest-');
const alice = parseSignerKey(generateKey('alice@corp').signerKey);
const ARGS = { amount: 650, customer: 'customer-12345' };
const POLICY = 'ab'.repeat(32);

/** What anyone holding a header but not the payload could compute from a guess: the unsalted hash. */
const plain = (args: unknown) => createHash('sha256').update(canonicalize(args)).digest('hex');

interface Req {
  id: string;
  stream: string;
  digest: string;
}

/**
 * An approval.request as the gateway records it; `salt: null` writes it as a Witness from before
 * salting did (no `arguments_salt`, the digest SHA-256(JCS(arguments))), `digestSalt` digests under
 * another salt than the one recorded.
 */
async function request(w: Witness, opts: { salt?: string | null; digestSalt?: string } = {}): Promise<Req> {
  // As the gateway records it: the SDK's public path refuses approval.request.
  const s = await systemWriter(w, 'gateway').session({ agent: { id: 'support-bot' } });
  const id = randomUUID();
  const salt = opts.salt === null ? undefined : (opts.salt ?? newArgumentsSalt());
  const digest = salt === undefined ? plain(ARGS) : argumentsDigest(opts.digestSalt ?? salt, ARGS);
  await s.record(
    'approval.request',
    {
      request_id: id,
      tool: 'billing.refund',
      arguments: ARGS,
      ...(salt === undefined ? {} : { arguments_salt: salt }),
      arguments_digest: digest,
      approvers: [alice.verifierKey],
      policy_version: POLICY,
      expires_at: new Date(Date.now() + 60_000).toISOString(),
    },
    { id, outcome: 'pending', resource: 'billing.refund', action: 'billing.refund' },
  );
  await w.flush();
  return { id, stream: s.id, digest };
}

/**
 * A decision `who` really signed for request `r`, bound as `witness approve` binds it, with
 * `override` changed before signing; recorded straight into the ledger with the header approval.
 */
async function signedDecision(w: Witness, r: Req, who: NoteSigner, override: Record<string, unknown> = {}): Promise<void> {
  const unsigned: Record<string, unknown> = {
    request_id: r.id,
    decision: 'approved',
    approver: who.name,
    approver_key: who.verifierKey,
    agent: 'support-bot',
    tool: 'billing.refund',
    session: r.stream,
    arguments_digest: r.digest,
    policy_version: POLICY,
    expires_at: (await driverOf(w).getEvent(r.id))!.data!['expires_at'],
    origin: w.reader.info.origin,
    decided_at: new Date().toISOString(),
    ...override,
  };
  const data = { ...unsigned, approver_sig: signApproval(who, unsigned) };
  // As `witness approve` records it (the SDK's public path refuses approval.decision).
  await systemWriter(w, 'cli').recordStrict(r.stream, {
    agent: { id: 'support-bot' },
    principal: { id: who.name, kind: 'human' },
    kind: 'approval.decision',
    parent: r.id,
    outcome: 'success',
    approvals: [{ approver: who.name, decision: 'approved', args_digest: String(unsigned['arguments_digest']), ts: new Date().toISOString() }],
    data: data as never,
  });
  await w.flush();
}

/** The held call as the gateway binds it: these arguments, this policy, alice allowed. */
const held = (args: unknown = ARGS): Binding => ({ agent: 'support-bot', server: undefined, tool: 'billing.refund', arguments: args, policyVersion: POLICY, approvers: [alice.verifierKey] });

/** Every event's header as an export with --withhold-data shows it: everything but the payload and its salt. */
function headers(events: readonly StoredEvent[]): string {
  return events.map(({ data: _data, ...header }) => JSON.stringify(header)).join('\n');
}

describe('the arguments digest an approval binds', () => {
  it('cannot be confirmed from the arguments alone: no header holds their unsalted hash, and each request salts afresh [R-DIGEST-SALTED]', async () => {
    const file = tempDb(dir);
    const w = await openWitness({ store: `sqlite:${file}` });
    try {
      const [a, b] = [await request(w), await request(w)];
      await decide(w, { request: a.id, approver: 'alice@corp', signer: alice, decision: 'approved', reason: 'checked' });
      await w.flush();
      const events = await readEvents(file);
      const decision = events.find((e) => e.kind === 'approval.decision')!;
      const salt = String(events.find((e) => e.id === a.id)!.data!['arguments_salt']);
      // The header digest is the salted one, over the arguments as recorded...
      expect(decision.approvals?.[0]?.args_digest).toBe(argumentsDigest(salt, ARGS));
      expect(decision.approvals?.[0]?.args_digest).toBe(createHash('sha256').update('witness/args/v1\n').update(Buffer.from(salt, 'hex')).update(canonicalize(ARGS)).digest('hex'));
      // ...and neither it nor anything else in any header is the hash a guess could be tested against.
      expect(headers(events)).not.toContain(plain(ARGS));
      expect(headers(events)).not.toContain(salt);
      // The same arguments, two requests: two digests.
      expect(a.digest).not.toBe(b.digest);
    } finally {
      await w.close();
    }
    expect((await verifyFile(file)).ok).toBe(true);
  });

  it('refuses a decision signed for the same arguments under another request’s salt, and the gateway does not release on it [R-GW-APPROVAL-BINDING]', async () => {
    const file = tempDb(dir);
    const w = await openWitness({ store: `sqlite:${file}` });
    try {
      const [mine, other] = [await request(w), await request(w)];
      // Alice signs for this request, but over the digest of the same arguments under the other salt.
      await signedDecision(w, mine, alice, { arguments_digest: other.digest });
      const v = await findApproval(driverOf(w), mine.id);
      expect(v.decision).toBeUndefined();
      expect(v.status).toBe('pending');
      expect(decisionProblem(v, v.decisions[0]!, [alice.verifierKey], w.reader.info.origin)).toEqual({
        code: 'approval_mismatch',
        reason: `the decision signed arguments with digest ${other.digest}, but the request has ${mine.digest}`,
      });
      // Her decision for the other request binds the other request only: it releases nothing held under this one.
      await signedDecision(w, other, alice);
      const vo = await findApproval(driverOf(w), other.id);
      expect(vo.status).toBe('approved');
      expect(decisionProblem(v, vo.decision!, [alice.verifierKey], w.reader.info.origin)?.code).toBe('approval_mismatch');
    } finally {
      await w.close();
    }
  });

  it('refuses, deciding or releasing, a request whose digest was taken under another salt than the one it records', async () => {
    const file = tempDb(dir);
    const w = await openWitness({ store: `sqlite:${file}` });
    try {
      const r = await request(w, { digestSalt: newArgumentsSalt() });
      await expect(decide(w, { request: r.id, approver: 'alice@corp', signer: alice, decision: 'approved' })).rejects.toMatchObject({
        code: 'conflict',
        message: `The arguments shown in approval request ${r.id} do not match its digest, so they may not be what the gateway holds; nothing was recorded.`,
      });
      // Signed anyway, straight into the ledger: the decision binds the request as recorded, but the
      // gateway recomputes the held call's digest under the recorded salt and will not release.
      await signedDecision(w, r, alice);
      const v = await findApproval(driverOf(w), r.id);
      expect(v.status).toBe('approved');
      expect(releaseProblem(v, v.decision!, held(), new Date(), w.reader.info.origin)).toMatchObject({
        code: 'approval_mismatch',
        reason: expect.stringMatching(/^the request is for other arguments \(digest [0-9a-f]{64}, the call's under its salt [0-9a-f]{64}\)$/),
      });
    } finally {
      await w.close();
    }
  });

  it('releases a held call only on its own arguments under the request’s salt', async () => {
    const file = tempDb(dir);
    const w = await openWitness({ store: `sqlite:${file}` });
    try {
      const r = await request(w);
      await decide(w, { request: r.id, approver: 'alice@corp', signer: alice, decision: 'approved' });
      await w.flush();
      const v = await findApproval(driverOf(w), r.id);
      expect(releaseProblem(v, v.decision!, held(), new Date(), w.reader.info.origin)).toBeUndefined();
      expect(releaseProblem(v, v.decision!, held({ ...ARGS, amount: 6500 }), new Date(), w.reader.info.origin)?.code).toBe('approval_mismatch');
    } finally {
      await w.close();
    }
  });

  it('leaves a request an older Witness recorded with an unsalted digest verifiable, but refuses to decide or release it, in one sentence', async () => {
    const file = tempDb(dir);
    const w = await openWitness({ store: `sqlite:${file}` });
    let r: Req;
    try {
      r = await request(w, { salt: null });
      expect(r.digest).toBe(plain(ARGS));
      await expect(decide(w, { request: r.id, approver: 'alice@corp', signer: alice, decision: 'approved' })).rejects.toMatchObject({
        code: 'conflict',
        message: `Approval request ${r.id} was recorded by an older Witness with an unsalted arguments digest, which no gateway of this version releases a call on; nothing was recorded; retry the call to get a new request.`,
      });
      expect((await findApproval(driverOf(w), r.id)).decisions).toEqual([]);
      // A decision over the old digest, signed and recorded as an older Witness did (header digest
      // unsalted too): it counts as a decision, but the gateway does not release on it.
      await signedDecision(w, r, alice);
      const v = await findApproval(driverOf(w), r.id);
      expect(v).toMatchObject({ status: 'approved', argumentsSalt: undefined });
      expect(releaseProblem(v, v.decision!, held(), new Date(), w.reader.info.origin)).toEqual({
        code: 'approval_mismatch',
        reason: 'the request has no salted arguments digest (an older Witness wrote it)',
      });
    } finally {
      await w.close();
    }
    // Headers are hashed and never rewritten: the old events verify as recorded.
    const report = await verifyFile(file);
    expect(report.ok).toBe(true);
    expect((await readEvents(file)).find((e) => e.kind === 'approval.decision')?.approvals?.[0]?.args_digest).toBe(plain(ARGS));
  });
});
