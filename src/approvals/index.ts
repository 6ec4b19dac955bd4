/**
 * src/approvals: human approval as one protocol, kept in the ledger — request, decision, binding
 * (arguments digest, policy version, expiry, approver ≠ agent), release, consume-once, expiry and
 * listing. The gateway holds calls through it, the CLI (`witness approvals`, `approve`, `deny`)
 * and the server list and decide through it. What each record holds and why: protocol.ts.
 *
 * Whether one recorded decision counts is core's `decisionProblem` (pure, so the video and the
 * viewer judge from the events alone exactly as the gateway does); it is re-exported here because
 * everyone who judges approvals judges through it.
 *
 * The stop button is the same kind of human oversight and lives here too (halt.ts): a person's
 * halt and resume of an agent, recorded in the oversight stream, and the state every gateway
 * reads (halt-watch.ts) to refuse a halted agent's calls.
 */
export { APPROVAL_STREAM, GATEWAY_APPROVER, type PolicyRef } from './protocol.js';
export { approvalRef, deciderOf, findApproval, listApprovals, type ApprovalStatus, type ApprovalView, type ListOptions, type Row } from './view.js';
export { releaseProblem, requestMismatch, type Binding } from './binding.js';
export { decide, decideApproval, type DecideInput, type Decided, type DecisionInput } from './decide.js';
export { recordExpiry, recordRelease, recordRequest, type ExpiryRecord, type ReleaseRecord, type RequestRecord } from './records.js';
export { CLOCK_SKEW_MS, decidedRequests, grantsUsedHere, watchDecisions } from './wait.js';
export { canonicalKey, decisionProblem, fingerprintOf, type DecisionProblem, type DecisionProblemCode } from '../core/index.js';
export {
  HALT_STREAM,
  haltState,
  haltedAgents,
  haltedMessage,
  recordHalt,
  recordResume,
  type HaltInput,
  type HaltState,
  type HaltView,
  type Halted,
  type ResumeInput,
  type ResumeView,
  type Resumed,
} from './halt.js';
export { DEFAULT_HALT_WATCH, HaltWatch, type HaltCheck, type HaltWatchSettings } from './halt-watch.js';
