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
