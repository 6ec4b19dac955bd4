/**
 * What both drivers' session lists share. System streams are the ledger's own (`witness.approvals`,
 * `witness.audit-access`, `witness.evidence`, `witness.gateway`): their events belong to no one
 * session, so they are not listed. Session ids are UUIDs, which never start with it.
 */
export const SYSTEM_STREAM_PREFIX = 'witness.';

/** Sessions per page: 100 unless asked, at most 1,000. */
export function sessionLimit(limit: number | undefined): number {
  return Math.min(Math.max(Math.trunc(limit ?? 100), 1), 1000);
}
