import { createHash, createPublicKey, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  APPROVAL_DOMAIN,
  ARGUMENTS_DOMAIN,
  approvalMessage,
  approvalRequestParts,
  argumentsDigest,
  canonicalKey,
  canonicalize,
  decisionProblem,
  fingerprintOf,
  generateKey,
  listedApprovers,
  newArgumentsSalt,
  normaliseIdentity,
  parseSignerKey,
  parseVerifierKey,
  sameIdentity,
  signApproval,
  verifyApprovalSignature,
  type StoredEvent,
} from '../../src/core/index.js';

/**
 * The two things an auditor must be able to recompute from the README alone: the salted
 * arguments digest and the approver's signature. Each is checked against an independent
 * implementation here (node:crypto directly, not our helpers).
 */

describe('the arguments digest', () => {
  it('is SHA-256("witness/args/v1\\n" ‖ salt ‖ JCS(arguments)), with a fresh 32-byte salt each time [R-DIGEST-SALTED]', () => {
    expect(ARGUMENTS_DOMAIN).toBe('witness/args/v1\n');
    const salt = newArgumentsSalt();
    expect(salt).toMatch(/^[0-9a-f]{64}$/);
    expect(newArgumentsSalt()).not.toBe(salt);
    const args = { b: [1, 'x'], a: { pin: '[REDACTED:key]' } };
    const independent = createHash('sha256')
      .update(Buffer.from('witness/args/v1\n', 'utf8'))
      .update(Buffer.from(salt, 'hex'))
      .update('{"a":{"pin":"[REDACTED:key]"},"b":[1,"x"]}', 'utf8')
      .digest('hex');
    expect(argumentsDigest(salt, args)).toBe(independent);
    // Missing arguments are digested as null; another salt gives another digest; the unsalted hash never appears.
    expect(argumentsDigest(salt, undefined)).toBe(argumentsDigest(salt, null));
    expect(argumentsDigest(newArgumentsSalt(), args)).not.toBe(independent);
    expect(independent).not.toBe(createHash('sha256').update(canonicalize(args)).digest('hex'));
  });

  it('refuses a salt that is not 32 bytes of hex', () => {
    expect(() => argumentsDigest('abc', {})).toThrow(/salt/);
  });
});

describe('the approver signature', () => {
  const { signerKey, verifierKey } = generateKey('alice@acme.example');
  const base = {
    request_id: '01900000-0000-7000-8000-000000000001',
    decision: 'approved',
    approver: 'alice@acme.example',
    approver_key: verifierKey,
    agent: 'support-bot',
    tool: 'billing.refund',
    session: '01900000-0000-7000-8000-000000000000',
    arguments_digest: 'ab'.repeat(32),
    policy_version: 'cd'.repeat(32),
    expires_at: '2026-11-23T10:05:00.000Z',
    origin: 'demo/witness/0190',
    decided_at: '2026-11-23T10:01:00.000Z',
  };

  it('is Ed25519 over "witness/approval/v1\\n" ‖ JCS(the decision without approver_sig), in hex, checkable with any Ed25519 library [R-APPROVER-SIGNED]', () => {
    expect(APPROVAL_DOMAIN).toBe('witness/approval/v1\n');
    const sig = signApproval(parseSignerKey(signerKey), base);
    expect(sig).toMatch(/^[0-9a-f]{128}$/);
    const data = { ...base, approver_sig: sig };
    expect(approvalMessage(data).toString('utf8')).toBe(`witness/approval/v1\n${canonicalize(base)}`);
    // The raw public key is the 32 bytes after the algorithm byte of the verifier key's base64 part:
    // everything after the second '+' (the base64 may itself hold a '+'; a name never does).
    const raw = Buffer.from(verifierKey.split('+').slice(2).join('+'), 'base64').subarray(1);
    const pub = createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), raw]), format: 'der', type: 'spki' });
    expect(verify(null, Buffer.from(`witness/approval/v1\n${canonicalize(base)}`), pub, Buffer.from(sig, 'hex'))).toBe(true);
    expect(verifyApprovalSignature(data)?.name).toBe('alice@acme.example');
  });

  it("fails when any signed field changes, the signature is missing or malformed, or the key is not the named approver's", () => {
    const signer = parseSignerKey(signerKey);
    const data = { ...base, approver_sig: signApproval(signer, base) };
    for (const [field, value] of [
      ['decision', 'denied'],
      ['arguments_digest', 'ef'.repeat(32)],
      ['expires_at', '2027-01-01T00:00:00.000Z'],
      ['reason', 'added later'],
    ] as const) {
      expect(verifyApprovalSignature({ ...data, [field]: value }), field).toBeUndefined();
    }
    expect(verifyApprovalSignature(base)).toBeUndefined();
    expect(verifyApprovalSignature({ ...data, approver_sig: 'zz' })).toBeUndefined();
    expect(verifyApprovalSignature({ ...data, approver_key: 'not a key' })).toBeUndefined();
    // A key named for someone else, signing a decision in alice's name.
    const mallory = generateKey('mallory@acme.example');
    const claimed = { ...base, approver_key: mallory.verifierKey };
    expect(verifyApprovalSignature({ ...claimed, approver_sig: signApproval(parseSignerKey(mallory.signerKey), claimed) })).toBeUndefined();
    expect(parseVerifierKey(verifierKey).name).toBe('alice@acme.example');
  });
});

describe('identities', () => {
  it('are compared after NFKC, trimming and case folding, so the agent cannot pass as a person by spelling [R-APPROVER-ALLOWED]', () => {
    expect(sameIdentity('Support-Bot', 'support-bot')).toBe(true);
    expect(sameIdentity(' support-bot ', 'support-bot')).toBe(true);
    expect(sameIdentity('ｓｕｐｐｏｒｔ-ｂｏｔ', 'support-bot')).toBe(true);
    expect(sameIdentity('STRASSE', 'straße')).toBe(true);
    expect(sameIdentity('alice@corp', 'support-bot')).toBe(false);
    expect(normaliseIdentity('  Alice@Corp ')).toBe('alice@corp');
  });
});

/**
 * Whether a recorded decision counts is one pure judgement, shared by the gateway (which acts on
 * it), `witness approvals` and the video (which tell it): judged here without a ledger.
 */
describe('whether a decision counts', () => {
  const alice = generateKey('alice@corp');
  const bob = generateKey('bob@corp');
  const agentKey = generateKey('Support-Bot');
  const ORIGIN = 'demo/witness/0190';
  const request: StoredEvent = {
    v: 1,
    id: '01900000-0000-7000-8000-000000000001',
    stream: '01900000-0000-7000-8000-000000000000',
    seq: 4,
    ts: '2026-11-23T10:00:00.000Z',
    agent: { id: 'support-bot' },
    kind: 'approval.request',
    parent: '01900000-0000-7000-8000-000000000003',
    resource: 'everything',
    action: 'get-sum',
    outcome: 'pending',
    payload_digest: '00'.repeat(32),
    prev: '11'.repeat(32),
    hash: '22'.repeat(32),
    salt: '33'.repeat(32),
    data: {
      request_id: '01900000-0000-7000-8000-000000000001',
      tool: 'get-sum',
      server: 'everything',
      arguments: { a: 500, b: 1 },
      arguments_digest: 'ab'.repeat(32),
      arguments_salt: 'cd'.repeat(32),
      policy_version: 'ef'.repeat(32),
      // A key written in another spelling (uppercase hash) is the same key.
      approvers: [alice.verifierKey.replace(/\+([0-9a-f]{8})\+/, (_m, h: string) => `+${h.toUpperCase()}+`), bob.verifierKey, 'not a key'],
      expires_at: '2026-11-23T10:05:00.000Z',
    },
  } as StoredEvent;
  const parts = approvalRequestParts(request);
  const allowed = listedApprovers(request);

  function decision(key: { signerKey: string; verifierKey: string }, changes: Record<string, unknown> = {}, ts = '2026-11-23T10:01:00.500Z'): Pick<StoredEvent, 'data' | 'ts'> {
    const signer = parseSignerKey(key.signerKey);
    const unsigned = {
      request_id: parts.requestId,
      decision: 'approved',
      approver: signer.name,
      approver_key: key.verifierKey,
      agent: parts.agent,
      tool: parts.tool,
      server: parts.server,
      session: parts.session,
      arguments_digest: parts.argumentsDigest,
      policy_version: parts.policyVersion,
      expires_at: parts.expiresAt,
      origin: ORIGIN,
      decided_at: '2026-11-23T10:01:00.000Z',
      ...changes,
    };
    return { ts, data: { ...unsigned, approver_sig: signApproval(signer, unsigned) } };
  }

  it('reads a request as the gateway does: its id, agent, session, tool, server, digest, policy version, expiry and listed keys in one spelling', () => {
    expect(parts).toEqual({
      requestId: request.id,
      agent: 'support-bot',
      server: 'everything',
      tool: 'get-sum',
      argumentsDigest: 'ab'.repeat(32),
      policyVersion: 'ef'.repeat(32),
      expiresAt: '2026-11-23T10:05:00.000Z',
      session: request.stream,
    });
    expect(allowed).toEqual([alice.verifierKey, bob.verifierKey]);
    expect(canonicalKey('not a key')).toBeUndefined();
    expect(fingerprintOf(alice.verifierKey)).toMatch(/^alice@corp\+[0-9a-f]{8}$/);
    expect(fingerprintOf('not a key')).toBe('not a key');
    // Without an expiry of its own, a request expires when it was made: nothing decided later counts.
    const bare = approvalRequestParts({ ...request, action: undefined, data: { request_id: request.id, arguments_digest: 'ab'.repeat(32) } } as StoredEvent);
    expect(bare).toMatchObject({ tool: '', server: undefined, policyVersion: undefined, expiresAt: request.ts });
    expect(listedApprovers({ ...request, data: null })).toEqual([]);
  });

  it('counts a decision signed by a listed approver, not the agent, binding this request, made before its expiry [R-APPROVER-SIGNED] [R-APPROVER-ALLOWED]', () => {
    expect(decisionProblem(parts, decision(alice), allowed, ORIGIN)).toBeUndefined();
    expect(decisionProblem(parts, decision(bob, { decision: 'denied', reason: 'no' }), allowed, ORIGIN)).toBeUndefined();
    // The gateway's own expiry record, in the request's session, counts unsigned: it can only ever refuse.
    const expiry = { ts: request.ts, stream: request.stream, recorder: { kind: 'gateway' as const }, data: { decision: 'expired', approver: 'witness-gateway' } };
    expect(decisionProblem(parts, expiry, allowed, ORIGIN)).toBeUndefined();
  });

  it('ignores an unsigned expiry unless the gateway recorded it in the session the request lives in', () => {
    const data = { request_id: parts.requestId, decision: 'expired', approver: 'nobody' };
    const forged: Array<[string, Pick<StoredEvent, 'data' | 'ts' | 'stream'> & Partial<Pick<StoredEvent, 'recorder'>>]> = [
      ["by the agent's SDK, in another agent's session", { ts: request.ts, stream: 'other-agent-session', recorder: { kind: 'sdk' }, data }],
      ["by the agent's SDK, in the request's session", { ts: request.ts, stream: request.stream, recorder: { kind: 'sdk' }, data }],
      ['by the CLI (a person signs what they decide)', { ts: request.ts, stream: request.stream, recorder: { kind: 'cli' }, data }],
      ['with no recorder', { ts: request.ts, stream: request.stream, data }],
      ['by the gateway, in another session', { ts: request.ts, stream: 'other-session', recorder: { kind: 'gateway' }, data }],
    ];
    for (const [what, d] of forged) {
      const problem = decisionProblem(parts, d, allowed, ORIGIN);
      expect(problem?.code, what).toBe('approval_forged');
      expect(problem?.reason, what).toMatch(/^it is an unsigned expiry that the gateway did not record in the request's session/);
    }
    // A caller that knows neither stream nor recorder (an old reader) gets no free pass either.
    expect(decisionProblem(parts, { ts: request.ts, data }, allowed, ORIGIN)?.code).toBe('approval_forged');
  });

  it('does not count an unsigned or forged decision, nor one by a key not listed or by the agent itself, and says why [R-APPROVER-SIGNED] [R-APPROVER-ALLOWED]', () => {
    const signed = decision(alice);
    const { approver_sig: _sig, ...unsigned } = signed.data!;
    expect(decisionProblem(parts, { ...signed, data: unsigned }, allowed, ORIGIN)).toEqual({ code: 'approval_forged', reason: 'it carries no valid signature by the approver it names (alice@corp)' });
    expect(decisionProblem(parts, { ...signed, data: { ...signed.data, reason: 'added later' } }, allowed, ORIGIN)?.code).toBe('approval_forged');
    expect(decisionProblem(parts, { ts: signed.ts, data: null }, allowed, ORIGIN)).toEqual({ code: 'approval_forged', reason: 'it carries no valid signature by the approver it names ((nobody))' });
    const carol = generateKey('carol@corp');
    expect(decisionProblem(parts, decision(carol), allowed, ORIGIN)).toEqual({
      code: 'approver_not_allowed',
      reason: `carol@corp (key ${fingerprintOf(carol.verifierKey)}) is not among the approvers the policy allows for this request`,
    });
    // Listed by a careless operator, the agent's own key still cannot decide: identities are compared folded.
    expect(decisionProblem(parts, decision(agentKey), [...allowed, agentKey.verifierKey], ORIGIN)).toEqual({
      code: 'approver_not_allowed',
      reason: 'Support-Bot is the agent that made the call (support-bot)',
    });
    // Who may decide is the caller's list (the gateway passes its own policy's), not the request's.
    expect(decisionProblem(parts, decision(alice), [bob.verifierKey], ORIGIN)?.code).toBe('approver_not_allowed');
  });

  it('does not count a decision that binds another request, call, policy, expiry or ledger, or came after the expiry [R-GW-APPROVAL-BINDING]', () => {
    const other = 'ff'.repeat(32);
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ request_id: '01900000-0000-7000-8000-000000000009' }, /^the decision signed request id 01900000-0000-7000-8000-000000000009, but the request has 01900000-0000-7000-8000-000000000001$/],
      [{ agent: 'billing-bot' }, /^the decision signed agent billing-bot, but the request has support-bot$/],
      [{ tool: 'echo' }, /^the decision signed tool echo/],
      [{ server: undefined }, /^the decision signed server \(none\), but the request has everything$/],
      [{ session: 'another' }, /^the decision signed session another/],
      [{ arguments_digest: other }, new RegExp(`^the decision signed arguments with digest ${other}, but the request has ${'ab'.repeat(32)}$`)],
      [{ policy_version: other }, /^the decision signed policy version f+, but the request has e/],
      [{ expires_at: '2027-01-01T00:00:00.000Z' }, /^the decision signed expires at 2027-01-01T00:00:00.000Z/],
      [{ origin: 'elsewhere/witness/1' }, /^the decision signed origin elsewhere\/witness\/1, but the request has demo\/witness\/0190$/],
      [{ decided_at: '2026-11-23T10:05:00.001Z' }, /^the decision was made after the request expired at 2026-11-23T10:05:00.000Z$/],
      [{ decided_at: undefined }, /^the decision was made after the request expired/],
    ];
    for (const [changes, reason] of cases) {
      const problem = decisionProblem(parts, decision(alice, changes), allowed, ORIGIN);
      expect(problem?.code, JSON.stringify(changes)).toBe('approval_mismatch');
      expect(problem?.reason, JSON.stringify(changes)).toMatch(reason);
    }
    // Recorded after the expiry, whatever time it claims.
    expect(decisionProblem(parts, decision(alice, {}, '2026-11-23T10:05:00.001Z'), allowed, ORIGIN)?.reason).toMatch(/after the request expired/);
    // Judged from the events alone (the video), the ledger origin is not known and not checked.
    expect(decisionProblem(parts, decision(alice, { origin: 'elsewhere/witness/1' }), allowed, undefined)).toBeUndefined();
  });
});
