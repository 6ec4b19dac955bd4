import { createHash, createPublicKey, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  APPROVAL_DOMAIN,
  ARGUMENTS_DOMAIN,
  approvalMessage,
  argumentsDigest,
  canonicalize,
  generateKey,
  newArgumentsSalt,
  normaliseIdentity,
  parseSignerKey,
  parseVerifierKey,
  sameIdentity,
  signApproval,
  verifyApprovalSignature,
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
    const independent = createHash('sha256').update(Buffer.from('witness/args/v1\n', 'utf8')).update(Buffer.from(salt, 'hex')).update('{"a":{"pin":"[REDACTED:key]"},"b":[1,"x"]}', 'utf8').digest('hex');
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
    // The raw public key is the 32 bytes after the algorithm byte of the verifier key's base64 part.
    const raw = Buffer.from(verifierKey.split('+')[2]!, 'base64').subarray(1);
    const pub = createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), raw]), format: 'der', type: 'spki' });
    expect(verify(null, Buffer.from(`witness/approval/v1\n${canonicalize(base)}`), pub, Buffer.from(sig, 'hex'))).toBe(true);
    expect(verifyApprovalSignature(data)?.name).toBe('alice@acme.example');
  });

  it('fails when any signed field changes, the signature is missing or malformed, or the key is not the named approver\'s', () => {
    const signer = parseSignerKey(signerKey);
    const data = { ...base, approver_sig: signApproval(signer, base) };
    for (const [field, value] of [['decision', 'denied'], ['arguments_digest', 'ef'.repeat(32)], ['expires_at', '2027-01-01T00:00:00.000Z'], ['reason', 'added later']] as const) {
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
