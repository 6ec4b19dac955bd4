import { PurgeCover, UNPURGEABLE_KINDS, canonicalize, purgeRecordOf, type PurgeRecord } from '../core/index.js';
import type { Ledger } from '../store/index.js';

/*
 * Purged payloads in a full bundle, and which governance records a bundle believes (docs/FORMAT.md
 * 7.13 and 7.6). The exporter ships the retention.purge records that list the in-scope events whose
 * payloads the purge erased, in purges.jsonl (bound by the export record) with their inclusion
 * proofs in purge-proofs.jsonl; the three verifiers accept an absent payload only where such a
 * record, checked as this file says, lists it.
 */

/** The purge records of a full bundle: stored events with `leaf`, in leaf order. Bound by the export record (BOUND_FILES). */
export const PURGES_FILE = 'purges.jsonl';
/** One inclusion proof per line of purges.jsonl, same order, to checkpoint.txt's size (not bound: each proof checks itself against the signed root). */
export const PURGE_PROOFS_FILE = 'purge-proofs.jsonl';

/** Where a retention.purge record counts, and which recorders write it there (the CLI's retention run and erasure, the server's). */
export const PURGE_STREAM = 'witness.retention';
export const PURGE_RECORDERS: readonly string[] = ['cli', 'server'];

/** Kinds whose payloads are never purged (core's UNPURGEABLE_KINDS, every kind GOVERNANCE_RULES counts): one of them without its payload is never "purged". */
export const GOVERNANCE_KINDS: readonly string[] = UNPURGEABLE_KINDS;

/** Where a key.rotated event counts as a rotation, and the one recorder that writes it there (`witness keys rotate`). */
export const ROTATION_STREAM = 'witness.keys';
export const ROTATION_RECORDERS: readonly string[] = ['cli'];

type Header = { kind?: unknown; stream?: unknown; recorder?: unknown };

const recorderOf = (h: Header): unknown => (typeof h.recorder === 'object' && h.recorder !== null ? (h.recorder as { kind?: unknown }).kind : undefined);

/**
 * Whether a key.rotated header is a rotation: in witness.keys, stamped by the CLI. One anywhere else
 * (an agent's event in its own session, say) is an ordinary event: keys.json neither lists it nor
 * must, and no verifier compares it with the key history.
 */
export function isRotationHeader(h: Header): boolean {
  if (h.kind !== 'key.rotated' || h.stream !== ROTATION_STREAM) return false;
  // No recorder at all: a rotation written before `witness keys rotate` stamped `cli` (core's GOVERNANCE_RULES, FORMAT 5.4).
  if (h.recorder === undefined) return true;
  return typeof recorderOf(h) === 'string' && ROTATION_RECORDERS.includes(recorderOf(h) as string);
}

/** Why a header cannot be a purge record a bundle believes (kind, stream, recorder), or undefined. */
export function purgeHeaderProblem(h: Header): string | undefined {
  if (h.kind !== 'retention.purge') return `is a ${String(h.kind)} event, not retention.purge`;
  if (h.stream !== PURGE_STREAM) return `is in stream ${JSON.stringify(h.stream)}, not ${PURGE_STREAM}`;
  const r = recorderOf(h);
  if (typeof r !== 'string' || !PURGE_RECORDERS.includes(r)) return `was recorded by ${r === undefined ? 'no recorder' : JSON.stringify(r)}, not the CLI or the server`;
  return undefined;
}

/** The ledger's retention.purge records a bundle can carry: in witness.retention by the CLI or server, payload matching its digest, leaves well formed. */
export interface LedgerPurges {
  cover: PurgeCover;
  records: Map<number, PurgeRecord>;
}

/**
 * Every retention.purge record of the ledger that a bundle verifier would believe (purgeHeaderProblem
 * and core's purgeRecordOf), read once through the query's kind filter before the span is read.
 */
export async function ledgerPurges(ledger: Pick<Ledger, 'query'>): Promise<LedgerPurges> {
  const records = new Map<number, PurgeRecord>();
  let cursor: string | undefined;
  do {
    const page = await ledger.query({ kind: 'retention.purge', limit: 10_000, ...(cursor === undefined ? {} : { cursor }) });
    for (const e of page.events) {
      if (purgeHeaderProblem(e) !== undefined) continue;
      let data: string | null;
      try {
        data = e.data === null ? null : canonicalize(e.data);
      } catch {
        continue;
      }
      const r = purgeRecordOf({ leaf: e.pos, id: e.id, kind: e.kind, payloadDigest: e.payload_digest, data, salt: e.salt });
      if (typeof r !== 'string') records.set(r.leaf, r);
    }
    cursor = page.next;
  } while (cursor !== undefined);
  return { cover: PurgeCover.of([...records.values()]), records };
}

/** "2 payloads purged under policy P by the record at leaf L": what every verifier says of each record a bundle relied on. */
export function purgeSentence(count: number, policy: string, leaf: number): string {
  return `${count} payload${count === 1 ? '' : 's'} purged under policy ${policy} by the record at leaf ${leaf} (purges.jsonl): their headers, digests and proofs were verified, not their content.`;
}
