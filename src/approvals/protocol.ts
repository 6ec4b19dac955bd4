/**
 * Human approval, kept entirely in the ledger so that the process holding a call (the gateway) and
 * the process deciding it (`witness approve`, the server) need share nothing but the ledger, and a
 * pending or granted approval outlives a gateway restart.
 *
 *   approval.request   written by the gateway in the call's session; its event id is the request id.
 *                      Binds agent, server, tool, the (redacted) arguments, their salted digest, the
 *                      policy version, the session, the tool.call, an expiry, and the verifier keys
 *                      of the people the policy allows to decide it.
 *   approval.decision  written by a person (approved / denied), signed with their own Ed25519 key
 *                      over everything it says (core/approval.ts), or by the gateway (expired), with
 *                      `parent` = the request. The FIRST decision recorded that counts wins; one that
 *                      does not count (unsigned, signed by a key the request does not allow, by the
 *                      agent itself, or for other arguments, policy or expiry) is ignored.
 *   policy.decision    written by the gateway when a grant releases a call: `data.approval` names the
 *                      request and the decision, which consumes the grant (once).
 *
 * Anyone who can write the ledger can write an approval.decision; only a holder of an allowed key
 * can write one that counts. The gateway checks every decision itself against its own policy.
 *
 * Whether a decision counts is core's `decisionProblem` (pure, so the video tells the same story
 * from the events alone).
 */

import type { SystemStream } from '../core/index.js';

/** Where decisions go when the request's session has already ended (e.g. the gateway restarted). */
export const APPROVAL_STREAM: SystemStream = 'witness.approvals';

/** The gateway's own name when it records a decision (an expiry), never a person's. */
export const GATEWAY_APPROVER = 'witness-gateway';

/** What the policy said about a held call, as the approval records carry it (policy's Evaluation fits). */
export interface PolicyRef {
  rule?: string | undefined;
  reason?: string | undefined;
  /** SHA-256 of the policy file in force. */
  policyVersion: string;
  mode: 'enforce' | 'shadow';
}
