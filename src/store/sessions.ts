import { APPROVAL_RECORDERS } from '../core/index.js';

/**
 * What both drivers' session lists share. System streams are the ledger's own (core's
 * SYSTEM_STREAMS: approvals decided after their session ended, audit access, evidence, the
 * gateway's errors, keys): their events belong to no one session, so they are not listed. They are
 * matched by prefix, so a system stream added later is left out too (a contract test checks every
 * one core names); session ids are UUIDs, which never start with it.
 */
export const SYSTEM_STREAM_PREFIX = 'witness.';

/** Sessions per page: 100 unless asked, at most 1,000. */
export function sessionLimit(limit: number | undefined): number {
  return Math.min(Math.max(Math.trunc(limit ?? 100), 1), 1000);
}

/**
 * Which approval records a session's counts include: the ones the rest of Witness honours (core's
 * APPROVAL_RECORDERS, as approvers' queues, the viewer and the report read them). A request counts
 * when the gateway recorded it (it holds the call); a decision when it names, by `parent`, such a
 * request in the same session and was written by the recorder that writes its kind of decision: an
 * expiry by the gateway alone (core's decisionProblem takes an unsigned expiry only from the gateway
 * in the request's session), an approval or denial by a person through the CLI or the server (the
 * gateway records only expiries). An agent writing straight into the ledger, or anyone stamping
 * another recorder, so adds nothing to the counts. Both drivers apply this one rule, SQLite in
 * its fold (sqlite/sessions.ts) and PostgreSQL in SQL (postgres/sessions.ts).
 *
 * What a store cannot know, and so the counts do not check: a person's signature, whether the key
 * is one the policy allows, the binding to the request's arguments and expiry, and which of several
 * decisions on one request came first (decisionProblem needs the payloads, the policy's keys and
 * the ledger origin; the session page, the approvals queue and the gateway make that judgement).
 * A cli- or server-stamped decision that fails it still counts here; only a writer of the database
 * or a holder of an approver's or admin's credential can record one.
 */
export const COUNTED_REQUEST_RECORDERS: readonly string[] = APPROVAL_RECORDERS['approval.request'];
/** The recorder of the one decision that needs no signature, an expiry. */
export const EXPIRY_RECORDER = 'gateway';
/** Who records a person's approval or denial: APPROVAL_RECORDERS's decision recorders but the gateway's own. */
export const PERSON_DECISION_RECORDERS: readonly string[] = APPROVAL_RECORDERS['approval.decision'].filter((r) => r !== EXPIRY_RECORDER);

export type CountedDecision = 'approved' | 'denied' | 'expired';

/**
 * The decision a session counts, or undefined: `decision` as the payload says, `recorder` the
 * decision's own recorder kind, `requestRecorder` that of the request its `parent` names in the
 * same session (undefined when there is none).
 */
export function countedDecision(decision: unknown, recorder: unknown, requestRecorder: unknown): CountedDecision | undefined {
  if (typeof requestRecorder !== 'string' || !COUNTED_REQUEST_RECORDERS.includes(requestRecorder)) return undefined;
  if (decision === 'expired') return recorder === EXPIRY_RECORDER ? 'expired' : undefined;
  if (decision !== 'approved' && decision !== 'denied') return undefined;
  return typeof recorder === 'string' && PERSON_DECISION_RECORDERS.includes(recorder) ? decision : undefined;
}

/** Whether a session counts an approval.request its recorder (kind) wrote. */
export function countedRequest(recorder: unknown): boolean {
  return typeof recorder === 'string' && COUNTED_REQUEST_RECORDERS.includes(recorder);
}
