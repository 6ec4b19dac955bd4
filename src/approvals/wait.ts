import type { LedgerReader } from '../store/index.js';

/** How far another process's clock may lag ours when it stamps a decision. */
export const CLOCK_SKEW_MS = 10 * 60_000;

/**
 * Requests among `ids` (of `agent`) that have a decision recorded. Only decisions recorded since
 * the oldest of them (less a margin for another process's clock) are read, so a waiter polling
 * every 250 ms does not rescan every decision the agent ever had.
 */
export async function decidedRequests(reader: LedgerReader, agent: string, ids: ReadonlySet<string>, oldestRequestMs: number): Promise<Set<string>> {
  const out = new Set<string>();
  const since = new Date(oldestRequestMs - CLOCK_SKEW_MS).toISOString();
  let cursor: string | undefined;
  do {
    const page = await reader.query({ kind: 'approval.decision', agent, since, limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
    for (const e of page.events) if (e.parent !== undefined && ids.has(e.parent)) out.add(e.parent);
    cursor = page.next;
  } while (cursor !== undefined);
  return out;
}

/**
 * Calls `onDecision` as soon as a decision is committed, on a ledger that announces commits
 * (PostgreSQL's LISTEN/NOTIFY, on any host); returns the way to stop, or undefined when the ledger
 * does not announce them (then polling is the only way, and the waiter's fallback anyway).
 */
export function watchDecisions(reader: LedgerReader, onDecision: () => void): (() => void) | undefined {
  return reader.watch?.('approval.decision', onDecision);
}

/**
 * Grants this process has released a call on. The ledger's release record is what makes a grant
 * "used", but whoever can write the database can hide that row (relabel its kind, which the query
 * reads from an indexed column) and have the grant released again until it expires; verify would
 * catch the edit only afterwards. So a grant used by this process is never used again by it,
 * whatever the rows say. Shared by every waiter of the process (one HTTP gateway serves many
 * sessions); decision ids are UUIDv7s, so they never collide.
 */
export const grantsUsedHere = new Set<string>();
