import { SYSTEM_STREAMS, WitnessError } from '../core/index.js';
import type { Ledger } from '../store/index.js';
import type { BundleScope } from './bundle-format.js';
import { ScopeTracker, type ScopedHeader } from './populations.js';

/** The filters of a scope that decide which events are in it (regimes do not). */
export type SpanScope = Pick<BundleScope, 'since' | 'until' | 'agents' | 'sessions'>;

/** A contiguous run of leaves `from <= leaf < to`. */
export type Span = { from: number; to: number };

/** A row as Ledger.scanForVerify reads it (the store exports no name for it). */
export type ScanRow = Ledger['scanForVerify'] extends (...a: never[]) => AsyncIterable<Array<infer R>> ? R : never;

const SYSTEM = new Set<string>(SYSTEM_STREAMS);
const PAGE = 2000;

/**
 * The smallest contiguous leaf range holding every event of `scope` (bundle-v2's span), or
 * undefined when no event is in scope. Scope is decided by ScopeTracker from headers, in leaf order.
 *
 * Read a page at a time (Ledger.scanForVerify), never the ledger whole: only the tracker's in-scope
 * ids are held. Where the scan may start: with `sessions`, at the first leaf of the earliest named
 * session (its seq-0 event, read through the (stream, seq) index) — every event in scope is in one
 * of those streams or a system-stream event about one of them, written after it began; otherwise at
 * leaf 0, since `ts` is the recorder's clock and need not grow with the leaf. It runs to the end of
 * the ledger: a session's approvals and video can be recorded long after it ended.
 */
export async function resolveSpan(ledger: Ledger, scope: SpanScope): Promise<Span | undefined> {
  const start = await scanStart(ledger, scope);
  if (start === undefined) return undefined;
  const tracker = new ScopeTracker(scope);
  let from: number | undefined;
  let last = -1;
  for await (const page of ledger.scanForVerify(start, undefined, PAGE)) {
    for (const row of page) {
      if (tracker.inScope(scopedHeaderOfRow(row))) {
        from ??= row.pos;
        last = row.pos;
      }
    }
  }
  return from === undefined ? undefined : { from, to: last + 1 };
}

/** The first leaf an in-scope event can have; undefined when none can exist (no named session has an event). */
async function scanStart(ledger: Ledger, scope: SpanScope): Promise<number | undefined> {
  if (scope.sessions === null) return 0;
  let min: number | undefined;
  for (const s of scope.sessions) {
    const first = (await ledger.readStreamPage(s, { limit: 1 })).events[0];
    if (first !== undefined && (min === undefined || first.pos < min)) min = first.pos;
  }
  return min;
}

/**
 * The header fields ScopeTracker reads, from a scanned row's columns; the stored header is parsed
 * only for a system-stream event (whose `parent` can bring it into scope).
 */
export function scopedHeaderOfRow(row: ScanRow): ScopedHeader {
  const h: ScopedHeader = { id: row.id, stream: row.stream, seq: row.seq, kind: row.kind as ScopedHeader['kind'], ts: row.ts, agent: { id: row.agent } };
  if (row.outcome !== null) h.outcome = row.outcome as ScopedHeader['outcome'];
  if (row.resource !== null) h.resource = row.resource;
  if (SYSTEM.has(row.stream)) {
    let parent: unknown;
    try {
      parent = (JSON.parse(row.header) as { parent?: unknown }).parent;
    } catch {
      throw new WitnessError('store_corrupt', `The stored event at position ${row.pos} is not valid JSON: the ledger was damaged or edited; run \`witness verify\`.`);
    }
    if (typeof parent === 'string') h.parent = parent;
  }
  return h;
}
