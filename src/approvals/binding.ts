import { argumentsDigest, decisionProblem, type DecisionProblem, type StoredEvent } from '../core/index.js';
import type { ApprovalView } from './view.js';

/** What a held call must match for a decision to release it. */
export interface Binding {
  agent: string;
  server: string | undefined;
  tool: string;
  /** The held call's arguments as the ledger stores them (redacted): digested with each request's salt. */
  arguments: unknown;
  policyVersion: string | undefined;
  /** Verifier keys the gateway's own policy allows to release this call. */
  approvers: readonly string[];
  /** The session of the held call; only checked when the request came from it. */
  session?: string;
}

/**
 * Why a request cannot stand for the held call, or undefined when it can: same agent, server, tool,
 * policy version, and arguments whose digest under the request's salt is the request's digest.
 */
export function requestMismatch(v: ApprovalView, held: Binding): string | undefined {
  if (v.agent !== held.agent) return `the request is for agent ${v.agent}, not ${held.agent}`;
  if (v.server !== held.server) return `the request is for server ${v.server ?? '(none)'}, not ${held.server ?? '(none)'}`;
  if (v.tool !== held.tool) return `the request is for tool ${v.tool}, not ${held.tool}`;
  if (v.argumentsSalt === undefined) return 'the request has no salted arguments digest (an older Witness wrote it)';
  let digest: string;
  try {
    digest = argumentsDigest(v.argumentsSalt, held.arguments);
  } catch {
    return "the call's arguments have no canonical JSON form";
  }
  if (digest !== v.argumentsDigest) return `the request is for other arguments (digest ${v.argumentsDigest}, the call's under its salt ${digest})`;
  if (v.policyVersion !== held.policyVersion) return `the approval was given under policy ${v.policyVersion ?? '(none)'}, not the policy now in force (${held.policyVersion ?? '(none)'})`;
  if (held.session !== undefined && v.session !== held.session) return `the request belongs to session ${v.session}`;
  return undefined;
}

/**
 * Why a request's first counting decision cannot release the held call (in one clause, with the
 * code to record), or undefined when it can. The gateway checks this itself, against its own
 * policy's approvers, rather than trusting whoever wrote the decision or the request.
 */
export function releaseProblem(v: ApprovalView, d: StoredEvent<'approval.decision'>, held: Binding, now: Date, origin: string): DecisionProblem | undefined {
  const problem = decisionProblem(v, d, held.approvers, origin);
  if (problem !== undefined) return problem;
  const decided = d.data?.decision;
  if (decided !== 'approved') return { code: 'approval_mismatch', reason: `the request was ${String(decided)}` };
  if (v.consumedBy !== undefined) return { code: 'approval_mismatch', reason: `the approval was already used by event ${v.consumedBy.id}` };
  if (Date.parse(v.expiresAt) <= now.getTime()) return { code: 'approval_mismatch', reason: `the approval expired at ${v.expiresAt}` };
  const mismatch = requestMismatch(v, held);
  return mismatch === undefined ? undefined : { code: 'approval_mismatch', reason: mismatch };
}
