import { v7 as uuidv7 } from 'uuid';
import { textField, type StoredEvent } from '../core/index.js';
import type { Session } from '../recorder/index.js';
import type { PolicyRef } from './protocol.js';

/**
 * The approval records a gateway writes in the held call's session. Each resolves once durable, so
 * a call is never held on an unrecorded request nor forwarded on an unrecorded release.
 *
 * Outcomes say what a compliance reader expects: a request is `pending`, a release `success`, an
 * expiry `expired` (README "The event").
 */

function policyContext(p: PolicyRef, decision: 'review' | 'allow', approver?: string) {
  return { decision, ...(p.rule === undefined ? {} : { rule: p.rule }), version: p.policyVersion, mode: p.mode, ...(approver === undefined ? {} : { approver }) };
}

export interface RequestRecord {
  callId: string;
  tool: string;
  server: string | undefined;
  /** The redacted arguments, their digest under `salt`. */
  args: unknown;
  salt: string;
  digest: string;
  /** Verifier keys of the people the policy allows to decide. */
  approvers: readonly string[];
  policy: PolicyRef;
  expiresAt: string;
}

/** Records `approval.request`; returns the request id (its event id), or undefined if not recorded. */
export async function recordRequest(session: Session, r: RequestRecord): Promise<string | undefined> {
  const id = uuidv7();
  const p = r.policy;
  const receipt = await session.record(
    'approval.request',
    {
      request_id: id,
      tool: r.tool,
      ...(r.server === undefined ? {} : { server: r.server }),
      arguments: r.args,
      arguments_salt: r.salt,
      arguments_digest: r.digest,
      approvers: [...r.approvers],
      ...(p.rule === undefined ? {} : { rule: p.rule }),
      ...(p.reason === undefined ? {} : { reason: p.reason }),
      policy_version: p.policyVersion,
      session: session.id,
      call_id: r.callId,
      expires_at: r.expiresAt,
    },
    { id, parent: r.callId, resource: r.server ?? r.tool, action: r.tool, outcome: 'pending', policy: policyContext(p, 'review') },
  );
  return receipt === undefined ? undefined : id;
}

export interface ReleaseRecord {
  callId: string;
  tool: string;
  server: string | undefined;
  salt: string | undefined;
  digest: string;
  policy: PolicyRef;
  requestId: string;
  decision: StoredEvent<'approval.decision'>;
}

/** Records the policy.decision that releases an approved call and consumes its grant; false if not recorded. */
export async function recordRelease(session: Session, r: ReleaseRecord): Promise<boolean> {
  const p = r.policy;
  const dd = r.decision.data;
  const approver = textField(dd?.approver) ?? 'unknown';
  const approverKey = textField(dd?.approver_key);
  const role = textField(dd?.role);
  const reason = textField(dd?.reason);
  const meaning = textField(dd?.meaning);
  const receipt = await session.record(
    'policy.decision',
    {
      decision: 'allow',
      ...(p.rule === undefined ? {} : { rule: p.rule }),
      mode: p.mode,
      policy_version: p.policyVersion,
      reason: `approved by ${approver}`,
      tool: r.tool,
      // The request's digest (the held call's arguments were checked to have it under its salt).
      ...(r.salt === undefined ? {} : { arguments_salt: r.salt }),
      arguments_digest: r.digest,
      approval: { request_id: r.requestId, decision_id: r.decision.id, approver, ...(approverKey === undefined ? {} : { approver_key: approverKey }), stream: r.decision.stream },
    },
    {
      resource: r.server ?? r.tool,
      action: r.tool,
      parent: r.callId,
      outcome: 'success',
      policy: policyContext(p, 'allow', approver),
      approvals: [
        {
          approver,
          decision: 'approved',
          ...(role === undefined ? {} : { role }),
          ...(reason === undefined ? {} : { reason }),
          ...(meaning === undefined ? {} : { meaning }),
          args_digest: r.digest,
          ts: r.decision.ts,
        },
      ],
    },
  );
  return receipt !== undefined;
}

export interface ExpiryRecord {
  requestId: string;
  tool: string;
  server: string | undefined;
  digest: string;
  /** The gateway's own name (GATEWAY_APPROVER), never a person's. */
  approver: string;
  policy: PolicyRef;
}

/** Records that a request expired undecided (the gateway's own decision; the first that counts wins). */
export async function recordExpiry(session: Session, r: ExpiryRecord): Promise<void> {
  await session.record(
    'approval.decision',
    {
      request_id: r.requestId,
      decision: 'expired',
      approver: r.approver,
      arguments_digest: r.digest,
      tool: r.tool,
      ...(r.server === undefined ? {} : { server: r.server }),
      reason: 'no decision before the request expired',
    },
    { parent: r.requestId, resource: r.server ?? r.tool, action: r.tool, outcome: 'expired', policy: policyContext(r.policy, 'review') },
  );
}
