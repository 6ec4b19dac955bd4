import { WitnessError, eventHash } from '../core/index.js';
import { verifyLedger, type Ledger } from '../store/index.js';
import type { BundleScope } from './bundle-format.js';
import { ScopeTracker, normaliseInstant, type ScopedHeader } from './populations.js';

/** The filters of a scope that decide which events are in it (regimes do not). */
export type SpanScope = Pick<BundleScope, 'since' | 'until' | 'agents' | 'sessions'>;

/**
 * `scope` with since/until in the form ScopeTracker compares and a manifest records
 * (YYYY-MM-DDTHH:MM:SS.mmmZ), or a one-sentence refusal naming the field. The export module's
 * entry points (exportBundle, recordReview, exportSiem) call it on the scope they are given, so a
 * caller of the API may pass any time normaliseInstant reads; the CLI parses and refuses its flags
 * with that same function first (naming the flag), so what it hands over is already in this form
 * and passes unchanged: one reading of a time, in one module.
 */
export function normaliseScopeTimes<S extends SpanScope>(scope: S): S {
  return { ...scope, since: scope.since === null ? null : normaliseInstant(scope.since, 'scope.since'), until: scope.until === null ? null : normaliseInstant(scope.until, 'scope.until') };
}

/** A contiguous run of leaves `from <= leaf < to`. */
export type Span = { from: number; to: number };

/** A row as Ledger.scanForVerify reads it (the store exports no name for it). */
export type ScanRow = Ledger['scanForVerify'] extends (...a: never[]) => AsyncIterable<Array<infer R>> ? R : never;

const HEX64 = /^[0-9a-f]{64}$/;
const ARTIFACT_FAILURES: ReadonlySet<string> = new Set(['artifact_missing', 'artifact_mismatch']);
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
  await assertLedgerVerifies(ledger);
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

/**
 * Refuses, as verification_failed, a ledger that `witness verify` would fail. The span and every
 * population are decided from the stored headers; a header rewritten together with its stored hash
 * passes the checks a scan can make row by row (hashedHeaderOfRow), yet moves its event out of the
 * scope, and no bundle verifier can see an event the bundle leaves out. Only the whole ledger tells:
 * the next event of the stream still links to the old hash, and a sealed event's leaf no longer
 * rebuilds the signed root. So everything that picks events from a scope (export, report, review,
 * the SIEM exports) first verifies the ledger it reads, from the raw rows, as `witness verify` does.
 * What it cannot tell is an unsealed tail rewritten by someone who can write the database; sealing
 * bounds that window (docs/FORMAT.md 7.3).
 */
export async function assertLedgerVerifies(ledger: Ledger): Promise<void> {
  // One thread: worker threads (one per core, from 65,536 events) would add 100-150 MiB of peak
  // memory to every large export and let it grow with the ledger (BENCHMARKS.md, export), for a
  // speed-up of at most the number of cores; an export's memory must stay flat in its events.
  const report = await verifyLedger(ledger, { threads: 1 });
  // A lost or altered artifact changes no event and so no span or population: the export goes on,
  // and the bundle's verifiers report the artifact by its hash (artifact_missing / artifact_mismatch).
  const failures = report.failures.filter((f) => !ARTIFACT_FAILURES.has(f.code));
  if (failures.length === 0 && !report.unverifiable) return;
  const first = failures[0];
  const where = first?.leaf !== undefined ? ` at position ${first.leaf}` : first?.stream !== undefined ? ` in ${JSON.stringify(first.stream)}` : '';
  const why = first === undefined ? (report.unverifiable ? 'written by a newer Witness' : 'unknown') : `${first.code}${where}: ${first.reason.replace(/[.\s]+$/, '')}`;
  const n = failures.length;
  throw new WitnessError(
    'verification_failed',
    `The ledger ${ledger.info.location} fails verification (${n === 1 ? '1 problem' : `${n} problems`}, the first ${why.replace(/\.\s+(?=[A-Z])/g, '; ')}), so events picked from it could be left out unnoticed; run \`witness verify\` to see every problem, and export from a ledger that verifies.`,
  );
}

/** The first leaf an in-scope event can have; undefined when none can exist (no named session has an event). */
async function scanStart(ledger: Ledger, scope: SpanScope): Promise<number | undefined> {
  if (scope.sessions === null) return 0;
  let min: number | undefined;
  for (const s of scope.sessions) {
    const first = (await ledger.readStreamPage(s, { limit: 1 })).events[0];
    // Found through the (stream, seq) columns; the header (checked against its hash when the scan
    // reads it) must agree, or an edited column could start the scan after the session's first events.
    if (first !== undefined && (first.stream !== s || first.seq !== 0)) {
      throw new WitnessError(
        'store_corrupt',
        `The ledger's index columns disagree with the hashed headers (position ${first.pos}, the first event of session ${JSON.stringify(s)} is ${JSON.stringify(first.stream)} seq ${first.seq}), so the export cannot trust them to pick its events; run \`witness verify\`.`,
      );
    }
    if (first !== undefined && (min === undefined || first.pos < min)) min = first.pos;
  }
  return min;
}

/**
 * The hashed header of a scanned row, parsed from the stored header text (never from the row's
 * index columns, which are not hashed), after two checks the export can afford as it reads: the
 * header hashes to the row's stored hash (the hash the bundle exports and the tree holds), and each
 * index column (id, stream, seq, ts, kind, agent, resource, action, outcome) says what the header
 * says. Either failing means the database was edited: refused as store_corrupt, since a span or
 * scope decided from a lying column could leave an event out and every verifier would still pass.
 */
export function hashedHeaderOfRow<H extends ScopedHeader = ScopedHeader>(row: ScanRow): H {
  let h: H & { prev?: unknown; action?: unknown };
  try {
    h = JSON.parse(row.header) as typeof h;
  } catch {
    throw new WitnessError('store_corrupt', `The stored event at position ${row.pos} is not valid JSON: the ledger was damaged or edited; run \`witness verify\`.`);
  }
  if (typeof h !== 'object' || h === null || typeof h.prev !== 'string' || !HEX64.test(h.prev) || eventHash(Buffer.from(h.prev, 'hex'), row.header).toString('hex') !== row.hash) {
    throw new WitnessError('store_corrupt', `The stored event at position ${row.pos} does not match its stored hash: the ledger was edited; run \`witness verify\`.`);
  }
  const agent = typeof h.agent === 'object' && h.agent !== null ? h.agent.id : undefined;
  const columns: Array<[string, unknown, unknown]> = [
    ['id', row.id, h.id],
    ['stream', row.stream, h.stream],
    ['seq', row.seq, h.seq],
    ['ts', row.ts, h.ts],
    ['kind', row.kind, h.kind],
    ['agent', row.agent, agent],
    ['resource', row.resource, h.resource ?? null],
    ['action', row.action, h.action ?? null],
    ['outcome', row.outcome, h.outcome ?? null],
  ];
  const wrong = columns.find(([, col, hashed]) => col !== hashed);
  if (wrong !== undefined) {
    throw new WitnessError(
      'store_corrupt',
      `The ledger's index columns disagree with the hashed headers (position ${row.pos}, column "${wrong[0]}"), so the export cannot trust them to pick its events; run \`witness verify\`.`,
    );
  }
  return h;
}

/** The header fields ScopeTracker reads, from a scanned row's hashed header (see hashedHeaderOfRow). */
export function scopedHeaderOfRow(row: ScanRow): ScopedHeader {
  return hashedHeaderOfRow(row);
}
