import { APPROVAL_RECORDERS } from './governance.js';

/**
 * Which approval records Witness honours: the one rule the session counts (both store drivers),
 * the overview's totals and the auditor report apply, so that none of them believes a record
 * another one leaves out. Pure; each reader says where it reads the facts from.
 *
 * A request counts when the gateway recorded it: it holds the call (APPROVAL_RECORDERS). A decision
 * counts when the recorder that writes its kind of decision wrote it: an expiry by the gateway
 * alone (decisionProblem takes an unsigned expiry only from the gateway in the request's session),
 * an approval or denial by a person through the CLI or the server (the gateway records only
 * expiries); and, where the reader sees the request its `parent` names in the same session, when
 * that request counts. An agent writing straight into the ledger, or anyone stamping another
 * recorder, so adds no approval and no refusal anywhere.
 *
 * What the rule cannot know from records alone, and so leaves to the session page, the approvals
 * queue and the gateway (decisionProblem needs the payloads, the policy's keys and the ledger
 * origin): a person's signature, whether the key is one the policy allows, the binding to the
 * request's arguments and expiry, and which of several decisions on one request came first.
 */

export type HonouredDecision = 'approved' | 'denied' | 'expired';

/** The recorders whose approval.request Witness honours (the gateway). */
export const HONOURED_REQUEST_RECORDERS: readonly string[] = APPROVAL_RECORDERS['approval.request'];
/** The recorder of the one decision that needs no person, an expiry. */
export const EXPIRY_RECORDER = 'gateway';
/** Who records a person's approval or denial: APPROVAL_RECORDERS's decision recorders but the gateway. */
export const PERSON_DECISION_RECORDERS: readonly string[] = APPROVAL_RECORDERS['approval.decision'].filter((r) => r !== EXPIRY_RECORDER);

/** Whether Witness honours an approval.request whose recorder kind is `recorder`. */
export function isHonouredRequest(recorder: unknown): boolean {
  return typeof recorder === 'string' && HONOURED_REQUEST_RECORDERS.includes(recorder);
}

/**
 * The decision Witness honours, or undefined. `decision` is what the record states (statedDecision,
 * or the payload's field where a reader has only that), `recorder` the decision's recorder kind.
 * `request` is what the reader found of the request the decision's `parent` names in the same
 * session (`{ recorder: undefined }` when it found none); omit it only where the reader cannot see
 * that session whole: a report or overview of a time window may not hold the request, and a
 * decision recorded after its session ended lives in witness.approvals.
 */
export function honouredDecision(decision: unknown, recorder: unknown, request?: { recorder: unknown }): HonouredDecision | undefined {
  if (request !== undefined && !isHonouredRequest(request.recorder)) return undefined;
  if (decision === 'expired') return recorder === EXPIRY_RECORDER ? 'expired' : undefined;
  if (decision !== 'approved' && decision !== 'denied') return undefined;
  return typeof recorder === 'string' && PERSON_DECISION_RECORDERS.includes(recorder) ? decision : undefined;
}

/** The outcome the approvals module stamps in a decision's header, by decision (src/approvals decide.ts, records.ts). */
const DECISION_OF_OUTCOME: ReadonlyMap<unknown, HonouredDecision> = new Map([
  ['success', 'approved'],
  ['denied', 'denied'],
  ['expired', 'expired'],
]);

/**
 * What an approval.decision states: its payload's `decision`, or, where the payload is withheld
 * (an export with --withhold-data) or purged, the outcome in its hashed header, so a report reads
 * the same with or without payloads.
 */
export function statedDecision(e: { outcome?: unknown; data?: Record<string, unknown> | null }): unknown {
  if (e.data !== undefined && e.data !== null) return e.data['decision'];
  return DECISION_OF_OUTCOME.get(e.outcome);
}
