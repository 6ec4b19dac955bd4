import { randomUUID } from 'node:crypto';
import { argumentsDigest, newArgumentsSalt } from '../../src/core/index.js';
import type { Ledger } from '../../src/store/index.js';

/**
 * Appends an approval.request as the gateway writes one (a held call in its own session), allowed
 * for the given verifier keys; returns its id. For tests of the server's approval routes that do
 * not need a gateway holding the call.
 */
export async function heldRequest(ledger: Ledger, approvers: readonly string[], options: { agent?: string; expiresInMs?: number; args?: Record<string, unknown> } = {}): Promise<string> {
  const agent = options.agent ?? 'support-bot';
  const stream = `held-${randomUUID()}`;
  const salt = newArgumentsSalt();
  const args = options.args ?? { amount: 650, customer: 'c-1' };
  const id = randomUUID();
  await ledger.append([
    { stream, agent: { id: agent }, kind: 'session.start', data: {} },
    {
      stream,
      id,
      agent: { id: agent },
      user: 'customer-12345',
      // Readers believe an approval.request only as the gateway records it (core's isApprovalRecord).
      recorder: { kind: 'gateway' },
      kind: 'approval.request',
      resource: 'billing',
      action: 'refund',
      outcome: 'pending',
      data: {
        request_id: id,
        tool: 'billing.refund',
        arguments: args,
        arguments_salt: salt,
        arguments_digest: argumentsDigest(salt, args),
        approvers: [...approvers],
        policy_version: 'ab'.repeat(32),
        rule: 'refunds-over-500',
        reason: 'Refunds over 500 need a supervisor.',
        session: stream,
        expires_at: new Date(Date.now() + (options.expiresInMs ?? 60_000)).toISOString(),
      },
    },
  ]);
  return id;
}
