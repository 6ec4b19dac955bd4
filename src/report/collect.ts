import { createHash } from 'node:crypto';
import { GOVERNANCE_RULES, honouredDecision, isGovernanceRecord, isHonouredRequest, statedDecision, type EventKind, type HonouredDecision, type StoredEvent } from '../core/index.js';
import { POPULATIONS, PopulationBuilder, ScopeTracker, inPopulation, type BundleMode, type BundleScope, type PopulationDefinition, type Span } from '../export/index.js';
import { views } from '../server/index.js';
import { toStored, type Ledger } from '../store/index.js';

/**
 * One pass over the span, in leaf order, keeping what the report's sections show and nothing
 * else: counts, the populations (built by the exporter's own PopulationBuilder, so the report's
 * numbers are the bundle's), bounded lists of the rare kinds (changes, access, alerts, holds) and
 * the sample for the appendix. The span is read a page at a time; memory grows with the rare
 * kinds (each list capped at LIST_CAP rows, the total still counted) and the scope tracker's ids.
 */

export type Ev = StoredEvent & { pos: number };

/** Rows a list section shows at most; the total is always stated. */
export const LIST_CAP = 500;
/** How far `received_ts` may be from `ts` before the event is listed as clock skew. */
export const SKEW_LIMIT_MS = 60_000;
/** The appendix: each population's first events, and tool calls picked by the seeded hash. */
export const SAMPLE_FIRST = 2;
export const SAMPLE_RANDOM = 6;
/** Oversight events kept for the chart. */
export const OVERSIGHT_CAP = 50_000;

export class Capped<T> {
  readonly items: T[] = [];
  total = 0;
  constructor(private readonly cap = LIST_CAP) {}
  add(x: T): void {
    this.total++;
    if (this.items.length < this.cap) this.items.push(x);
  }
}

export interface ApprovalStats {
  requests: number;
  approved: number;
  denied: number;
  expired: number;
  /** Requests in scope with no decision in scope. */
  undecided: number;
  /** Request → decision, in ms, for decisions whose request is in scope. */
  waits: number[];
  policyDenials: number;
  overrides: number;
  halts: number;
}

export interface SampleEntry {
  /** Why it was picked: `first of <population>` or `seeded hash`. */
  reasons: string[];
  event: Ev;
}

export interface ReportFacts {
  spanEvents: number;
  inScope: number;
  first?: string;
  last?: string;
  kinds: Map<string, number>;
  sessions: Set<string>;
  agents: Map<string, Set<string>>;
  /** In-scope events whose payload is gone (purged under retention) in a full export. */
  purged: number;
  toolCalls: number;
  counts: views.SessionCounts;
  populations: Array<{ def: PopulationDefinition; count: number; digest: string }>;
  /** Per population, per calendar month (UTC, `YYYY-MM`), events in scope. */
  populationMonths: Map<string, Map<string, number>>;
  approvals: ApprovalStats;
  /** Approval requests, decisions and policy refusals (full mode only) for the viewer's per-interval chart. */
  oversightEvents: Ev[];
  /** More than OVERSIGHT_CAP of them: the chart is left out. */
  oversightOverflow: boolean;
  reviews: Capped<Ev>;
  changes: Capped<Ev>;
  access: Capped<Ev>;
  accessByActor: Map<string, number>;
  alerts: Capped<Ev>;
  errorsBySource: Map<string, number>;
  recordingGaps: Capped<Ev>;
  retention: Capped<Ev>;
  /**
   * Records of governance kinds that no reader of the ledger honours (core's isGovernanceRecord:
   * a halt, resume, hold, purge, retention rule or key rotation outside its witness.* stream or
   * from another recorder; isHonouredRequest and honouredDecision: an approval request not the
   * gateway's, a decision not by a person through the CLI or the server, an expiry not the gateway's). Counted nowhere else
   * in the report; the populations include them as recorded.
   */
  outOfPlace: Capped<Ev>;
  skew: Capped<{ event: Ev; deltaMs: number }>;
  failedCaptures: Capped<Ev>;
  /** Narrated videos (an artifact of type video/*, read from the header, so withheld exports list them too). */
  videos: Capped<{ event: Ev; sha256: string; mime: string }>;
  sample: SampleEntry[];
  /** The seed of the hash sample (hex), as stated in the appendix. */
  sampleSeed: string;
}

function monthOf(ts: string): string {
  return ts.slice(0, 7);
}

function bump<K>(m: Map<K, number>, k: K, n = 1): void {
  m.set(k, (m.get(k) ?? 0) + n);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** The payload as this report may show it: none in a withheld export. */
export function asExported(e: Ev, mode: BundleMode): Ev {
  return mode === 'withheld' ? { ...e, data: null, salt: null } : e;
}

export interface CollectOptions {
  scope: BundleScope;
  span: Span;
  mode: BundleMode;
  /** The sample's seed: the checkpoint root (hex), fixed before anyone picks events. */
  seed: string;
}

export async function collectFacts(ledger: Ledger, o: CollectOptions): Promise<ReportFacts> {
  const tracker = new ScopeTracker(o.scope);
  const builder = new PopulationBuilder();
  const f: ReportFacts = {
    spanEvents: 0,
    inScope: 0,
    kinds: new Map(),
    sessions: new Set(),
    agents: new Map(),
    purged: 0,
    toolCalls: 0,
    counts: { events: 0, toolCalls: 0, denials: 0, approvals: 0 },
    populations: [],
    populationMonths: new Map(POPULATIONS.map((p) => [p.name, new Map()])),
    approvals: { requests: 0, approved: 0, denied: 0, expired: 0, undecided: 0, waits: [], policyDenials: 0, overrides: 0, halts: 0 },
    oversightEvents: [],
    oversightOverflow: false,
    reviews: new Capped(),
    changes: new Capped(),
    access: new Capped(),
    accessByActor: new Map(),
    alerts: new Capped(),
    errorsBySource: new Map(),
    recordingGaps: new Capped(),
    retention: new Capped(),
    outOfPlace: new Capped(),
    skew: new Capped(),
    failedCaptures: new Capped(),
    videos: new Capped(),
    sample: [],
    sampleSeed: o.seed,
  };
  const firstOf = new Map<string, Ev[]>(POPULATIONS.map((p) => [p.name, []]));
  const requested = new Map<string, number>();
  const decided = new Set<string>();
  // Bottom-k of SHA-256(seed ‖ event hash) over in-scope tool calls: deterministic, independent of
  // the order events are read in, and recomputable by an auditor from the bundle alone.
  const picks: Array<{ key: string; event: Ev }> = [];
  const seed = Buffer.from(o.seed, 'hex');

  outer: for await (const page of ledger.scan(o.span.from, 1000)) {
    for (const row of page) {
      if (row.pos >= o.span.to) break outer;
      f.spanEvents++;
      const stored = toStored(row);
      if (!tracker.inScope(stored)) continue;
      if (o.mode === 'full' && stored.data === null) f.purged++;
      // From here on the event is what the bundle shows: no payload when the export withholds them.
      const e = asExported(stored, o.mode);
      f.inScope++;
      f.first ??= e.ts;
      f.last = e.ts;
      builder.add(e.pos, e);
      bump(f.kinds, e.kind);
      if (!e.stream.startsWith('witness.')) f.sessions.add(e.stream);
      const versions = f.agents.get(e.agent.id) ?? new Set<string>();
      if (e.agent.version !== undefined) versions.add(e.agent.version);
      f.agents.set(e.agent.id, versions);
      const c = views.countEvents([e]);
      f.counts.events += c.events;
      f.counts.toolCalls += c.toolCalls;
      // countEvents counts approvals and refusals by core's honouredDecision, as `honoured` judges
      // them here: a decision nobody honours is counted in outOfPlace alone.
      f.counts.denials += c.denials;
      f.counts.approvals += c.approvals;
      for (const p of POPULATIONS) {
        if (!inPopulation(p, e)) continue;
        bump(f.populationMonths.get(p.name)!, monthOf(e.ts));
        const list = firstOf.get(p.name)!;
        if (list.length < SAMPLE_FIRST) list.push(e);
      }
      collectKind(f, e, o.mode, requested, decided);
      for (const a of e.artifacts ?? []) if (a.mime.startsWith('video/')) f.videos.add({ event: e, sha256: a.sha256, mime: a.mime });
      if (e.kind === 'tool.call') {
        f.toolCalls++;
        const key = createHash('sha256').update(seed).update(Buffer.from(e.hash, 'hex')).digest('hex');
        if (picks.length < SAMPLE_RANDOM || key < picks[picks.length - 1]!.key) {
          picks.push({ key, event: e });
          picks.sort((a, b) => (a.key < b.key ? -1 : 1));
          if (picks.length > SAMPLE_RANDOM) picks.pop();
        }
      }
      if (e.received_ts !== undefined) {
        const d = Date.parse(e.received_ts) - Date.parse(e.ts);
        if (Math.abs(d) > SKEW_LIMIT_MS) f.skew.add({ event: e, deltaMs: d });
      }
    }
  }
  f.approvals.undecided = [...requested.keys()].filter((id) => !decided.has(id)).length;
  f.populations = builder.results().map(({ def, count, digest }) => ({ def, count, digest }));
  // The appendix, in leaf order, each event once with every reason it was picked.
  const byId = new Map<string, SampleEntry>();
  for (const p of POPULATIONS) {
    for (const e of firstOf.get(p.name)!) {
      const s = byId.get(e.id) ?? { reasons: [], event: e };
      s.reasons.push(`first of ${p.name}`);
      byId.set(e.id, s);
    }
  }
  for (const { event } of picks) {
    const s = byId.get(event.id) ?? { reasons: [], event };
    s.reasons.push('seeded hash');
    byId.set(event.id, s);
  }
  f.sample = [...byId.values()].sort((a, b) => a.event.pos - b.event.pos);
  return f;
}

/**
 * An approval.decision as Witness honours it (core's honouredDecision, as the session counts and the
 * overview judge it), judged without its request, which the report's window may not hold: a person's
 * approval or denial through the CLI or the server, an expiry by the gateway. Read from the header's
 * outcome where the export withholds the payload (statedDecision).
 */
function decisionOf(e: Ev): HonouredDecision | undefined {
  return honouredDecision(statedDecision(e), e.recorder?.kind);
}

/**
 * Whether readers of the ledger honour `e`, a record of a governance kind, where it is; true for
 * every other record. Read from the header (a withheld export reads the same), but for a
 * config.change, which is a retention rule only when its payload says so: any recorder may record
 * a model or prompt change anywhere.
 */
export function honoured(e: Ev): boolean {
  if (e.kind === 'approval.request') return isHonouredRequest(e.recorder?.kind);
  if (e.kind === 'approval.decision') return decisionOf(e) !== undefined;
  if (GOVERNANCE_RULES[e.kind as EventKind] === undefined) return true;
  if (e.kind === 'config.change' && str(e.data?.['target']) !== 'retention') return true;
  return isGovernanceRecord(e);
}

function collectKind(f: ReportFacts, e: Ev, mode: BundleMode, requested: Map<string, number>, decided: Set<string>): void {
  if (!honoured(e)) {
    f.outOfPlace.add(e);
    return;
  }
  const a = f.approvals;
  switch (e.kind) {
    case 'approval.request':
      a.requests++;
      requested.set(e.id, Date.parse(e.ts));
      break;
    case 'approval.decision': {
      // As `honoured` judged it (so a withheld export reads the same); the approvals module links
      // the decision to its request by `parent`.
      const d = decisionOf(e);
      if (d !== undefined) a[d]++;
      if (e.parent !== undefined) {
        decided.add(e.parent);
        const asked = requested.get(e.parent);
        if (asked !== undefined && d !== 'expired') a.waits.push(Date.parse(e.ts) - asked);
      }
      break;
    }
    case 'policy.decision':
      if (e.policy?.decision === 'deny') a.policyDenials++;
      break;
    case 'human.override':
      a.overrides++;
      break;
    case 'human.halt':
      a.halts++;
      break;
    case 'review':
      f.reviews.add(e);
      break;
    case 'config.change':
      f.changes.add(e);
      break;
    case 'audit.access':
      f.access.add(e);
      bump(f.accessByActor, e.principal?.id ?? str(e.data?.['actor']) ?? e.agent.id);
      break;
    case 'alert':
      f.alerts.add(e);
      break;
    case 'error': {
      const source = str(e.data?.['source']) ?? 'unspecified';
      bump(f.errorsBySource, mode === 'withheld' ? 'payload withheld' : source);
      const code = e.data?.['code'];
      if (code === 'recording_gap') f.recordingGaps.add(e);
      if (code === 'capture_failed' || code === 'no_capturer' || source === 'capture') f.failedCaptures.add(e);
      break;
    }
    case 'retention.purge':
    case 'hold.placed':
    case 'hold.released':
      f.retention.add(e);
      break;
    default:
      break;
  }
  // What the viewer's per-interval oversight chart reads: requests, decisions and refusals (rare
  // kinds, not every call), kept whole up to OVERSIGHT_CAP; past it the chart is left out, not cut.
  if (mode === 'full' && (e.kind === 'approval.request' || e.kind === 'approval.decision' || (e.kind === 'policy.decision' && e.policy?.decision === 'deny'))) {
    if (f.oversightEvents.length < OVERSIGHT_CAP) f.oversightEvents.push(e);
    else f.oversightOverflow = true;
  }
  if (e.kind === 'config.change' && str(e.data?.['target']) === 'retention') f.retention.add(e);
}
