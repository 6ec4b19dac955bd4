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

// A session's approval counts include only the records the rest of Witness honours: core's
// honouredDecision and isHonouredRequest, the one rule the overview and the report apply too. Here
// the reader sees the whole session, so a decision counts only on an honoured request its `parent`
// names in the same session. Both drivers read the facts from the hashed headers (the decision from
// the payload), SQLite in its fold (sqlite/sessions.ts, through the functions) and PostgreSQL in
// SQL (postgres/sessions.ts, from the same recorder lists). A cli- or server-stamped decision whose
// signature or binding fails still counts here (what the rule leaves to the session page); only a
// writer of the database or a holder of an approver's or admin's credential can record one.
