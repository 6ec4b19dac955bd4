import { WitnessError } from './errors.js';
import { GOVERNANCE_RULES } from './governance.js';

/**
 * The rules a retention.purge record must keep to erase a payload (docs/FORMAT.md 3.6, README
 * "Retention, legal hold and erasure"), judged from the ledger alone. Pure: the writers
 * (store/retention.ts, store/erase.ts, the drivers' purge checks) decide with these functions, and
 * the verifier judges every erased payload with the same ones, so a writer can never record a purge
 * that verify refuses, and a purge forged past the writers is named as one.
 */

/** The stream that holds the record of governance: retention rules, holds and purges. */
export const GOVERNANCE_STREAM = 'witness.retention';

/** The recorders that write governance records there: `witness retention|hold|erase` and the server. */
export const GOVERNANCE_RECORDERS: readonly string[] = ['cli', 'server'];

/**
 * Kinds never purged: the record of governance itself, every kind core's GOVERNANCE_RULES counts
 * (halts and resumes, holds, rules, purges, keys). Derived from it so the two cannot drift: a
 * resume whose payload a retention run erased once stopped lifting its halt (found by review).
 */
export const UNPURGEABLE_KINDS: readonly string[] = Object.keys(GOVERNANCE_RULES);

/** The recorder kind a header names, or `none`. */
export function recorderKindOf(recorder: unknown): string {
  const k = typeof recorder === 'object' && recorder !== null ? (recorder as { kind?: unknown }).kind : undefined;
  return typeof k === 'string' ? k : 'none';
}

/**
 * Why a record in `stream` stamped by `recorder` does not count as governance (a purge, a hold, a
 * rule), or undefined when it does: in witness.retention, by the CLI or the server.
 */
export function governanceRecordProblem(stream: string, recorder: unknown): string | undefined {
  if (stream !== GOVERNANCE_STREAM) return `the record is in stream ${stream}, not ${GOVERNANCE_STREAM}`;
  const kind = recorderKindOf(recorder);
  if (!GOVERNANCE_RECORDERS.includes(kind)) return `the record was written by recorder ${kind}, not the CLI or the server`;
  return undefined;
}

// ------------------------------------------------------------------ legal holds

/** What a legal hold covers: every field given must match (a session of an agent in a window, say). */
export interface HoldScope {
  session?: string;
  agent?: string;
  subject?: string;
  /** Events at or after (ISO-8601). */
  since?: string;
  /** Events before (ISO-8601). */
  until?: string;
}

export const HOLD_SCOPE_KEYS = ['session', 'agent', 'subject', 'since', 'until'] as const;

/** A scope read from a stored hold.placed payload; undefined when it names nothing this version understands. */
export function holdScopeOf(v: unknown): HoldScope | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const out: HoldScope = {};
  for (const k of HOLD_SCOPE_KEYS) {
    const x = (v as Record<string, unknown>)[k];
    if (typeof x === 'string') out[k] = x;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

/** The fields of an event a hold is judged on; `subject` only when the scope needs it (it is read from the header). */
export interface HoldTarget {
  stream: string;
  agent: string;
  ts: string;
  subject?: string | undefined;
}

/** Whether a hold of `scope` covers the event (an empty scope covers everything). */
export function holdScopeCovers(s: HoldScope, e: HoldTarget): boolean {
  if (s.session !== undefined && e.stream !== s.session) return false;
  if (s.agent !== undefined && e.agent !== s.agent) return false;
  if (s.subject !== undefined && e.subject !== s.subject) return false;
  if (s.since !== undefined && e.ts < s.since) return false;
  if (s.until !== undefined && e.ts >= s.until) return false;
  return true;
}

// ------------------------------------------------------------------ retention rules

/** Presets: minimum keeping duties of the named regimes, as periods (README "Retention, legal hold and erasure"). */
export const RETENTION_PRESETS = {
  /** EU AI Act Art. 19(1) and 26(6): logs of high-risk AI systems kept at least six months. */
  'eu-ai-act': '6m',
  /** HIPAA 45 CFR 164.316(b)(2)(i): required documentation kept six years. */
  hipaa: '6y',
  /** SEC Rule 17a-4(a): the records it names kept six years (others three; the longer is the safe default). */
  'sec-17a-4': '6y',
} as const;
export type RetentionPreset = keyof typeof RETENTION_PRESETS;

/** Which events a rule applies to: exactly one of these, or none for every event. */
export interface RetentionSelector {
  kind?: string;
  record_class?: string;
  data_category?: string;
}

export const RETENTION_PERIOD = /^([1-9]\d{0,4})([dwmy])$/;

/** `now` minus a period: days and weeks exactly, months and years by the calendar (UTC). */
export function cutoffOf(period: string, now: Date): Date {
  const m = RETENTION_PERIOD.exec(period);
  if (m === null) throw new WitnessError('invalid_argument', `${JSON.stringify(period)} is not a retention period; write a number and d, w, m or y, e.g. 180d or 6y.`);
  const n = Number(m[1]);
  const d = new Date(now.getTime());
  switch (m[2]) {
    case 'd':
      return new Date(now.getTime() - n * 86_400_000);
    case 'w':
      return new Date(now.getTime() - n * 7 * 86_400_000);
    case 'm':
      d.setUTCMonth(d.getUTCMonth() - n);
      return d;
    default:
      d.setUTCFullYear(d.getUTCFullYear() - n);
      return d;
  }
}

/** `kind=llm.call`, `record_class=…`, `data_category=…` or `all`. */
export function selectorKey(s: RetentionSelector): string {
  if (s.kind !== undefined) return `kind=${s.kind}`;
  if (s.record_class !== undefined) return `record_class=${s.record_class}`;
  if (s.data_category !== undefined) return `data_category=${s.data_category}`;
  return 'all';
}

/** The label purge records name a rule by: `retention:<selector>:<period>[:<preset>]`. */
export function retentionPolicyLabel(selector: string, period: string, preset?: string): string {
  return `retention:${selector}:${period}${preset === undefined ? '' : `:${preset}`}`;
}

/** The policy an erasure of `subject` is recorded under. */
export function erasurePolicy(subject: string): string {
  return `erasure:${subject}`;
}

/** A retention rule as a config.change payload defines it. */
export interface RetentionRuleDef {
  selector: string;
  match: RetentionSelector;
  period: string;
  preset?: RetentionPreset;
  /** Set by a preset: a keeping duty (erasure is refused while it binds), not only a limit. */
  duty: boolean;
  policy: string;
}

/** The rule a config.change payload defines (target `retention`), or undefined when it defines none. */
export function retentionRuleOf(data: unknown): RetentionRuleDef | undefined {
  const d = data as { target?: unknown; rule?: unknown } | null | undefined;
  if (typeof d !== 'object' || d === null || d.target !== 'retention') return undefined;
  const r = d.rule as Record<string, unknown> | null | undefined;
  if (typeof r !== 'object' || r === null || typeof r['older_than'] !== 'string' || !RETENTION_PERIOD.test(r['older_than'])) return undefined;
  const match: RetentionSelector = {};
  for (const k of ['kind', 'record_class', 'data_category'] as const) if (typeof r[k] === 'string') match[k] = r[k];
  const selector = selectorKey(match);
  const preset = typeof r['preset'] === 'string' && Object.hasOwn(RETENTION_PRESETS, r['preset']) ? (r['preset'] as RetentionPreset) : undefined;
  const period = r['older_than'];
  return { selector, match, period, ...(preset === undefined ? {} : { preset }), duty: r['duty'] === true, policy: retentionPolicyLabel(selector, period, preset) };
}

/** The header fields retention, holds and erasure read beyond the indexed columns, when the header has them. */
export interface HeaderExtras {
  subject?: string;
  record_class?: string;
  data_categories?: string[];
}

/** Parses a stored header only when it carries one of the fields asked for (most events carry none). */
export function headerExtrasOf(header: string, need: { subject: boolean; classes: boolean }): HeaderExtras {
  if (!((need.subject && header.includes('"subject":')) || (need.classes && (header.includes('"record_class":') || header.includes('"data_categories":'))))) return {};
  try {
    const p = JSON.parse(header) as { subject?: unknown; record_class?: unknown; data_categories?: unknown };
    return {
      ...(typeof p.subject === 'string' ? { subject: p.subject } : {}),
      ...(typeof p.record_class === 'string' ? { record_class: p.record_class } : {}),
      ...(Array.isArray(p.data_categories) ? { data_categories: p.data_categories.filter((x): x is string => typeof x === 'string') } : {}),
    };
  } catch {
    return {};
  }
}

/** Whether selectorMatches needs the header's extras for a rule of `match` (a record class or a data category). */
function selectorNeedsHeader(match: RetentionSelector): boolean {
  return match.kind === undefined && (match.record_class !== undefined || match.data_category !== undefined);
}

/** Whether a rule of `match` applies to an event of `kind` with these header extras. */
export function selectorMatches(match: RetentionSelector, kind: string, extras: HeaderExtras): boolean {
  if (match.kind !== undefined) return match.kind === kind;
  if (match.record_class !== undefined) return extras.record_class === match.record_class;
  if (match.data_category !== undefined) return extras.data_categories?.includes(match.data_category) === true;
  return true;
}

// ------------------------------------------------------------------ a purged leaf

/** Why a leaf of `kind` may never be purged, or undefined. */
export function governanceKindProblem(pos: number, kind: string): string | undefined {
  return UNPURGEABLE_KINDS.includes(kind) ? `leaf ${pos} is a ${kind} event, part of the record of governance, which is never purged` : undefined;
}

/** Why a leaf was not sealed before a purge whose newest signed checkpoint had `sealed` leaves, or undefined. */
export function unsealedProblem(pos: number, sealed: number): string | undefined {
  return pos >= sealed ? `leaf ${pos} was not in a signed checkpoint before the record (the newest then had ${sealed} leaves)` : undefined;
}

/** A hold as the verifier takes it: where it was placed and released, and what it covers (null: unknown, so everything). */
export interface HoldFact {
  id: string;
  placed: number;
  released?: number;
  scope: HoldScope | null;
}

/** A retention rule as the verifier takes it: where it was defined. */
export interface RuleFact extends RetentionRuleDef {
  leaf: number;
}

/** A purge record as the rules judge it; `problem` when the record itself breaks a rule (stream, recorder, policy). */
export interface PurgeRecordFact {
  leaf: number;
  policy: string;
  /** Size of the largest valid signed checkpoint no larger than the record's leaf. */
  sealed: number;
  problem?: string;
  /** `erasure:<subject>`: the subject, the record's time, and the keeping duties (indices in `rules`) in force at it. */
  erasure?: string;
  ts?: string;
  duties?: number[];
  /** A retention label: the rule that defined it (the latest such definition before the record). */
  rule?: number;
}

/** Everything verify reads before the rows to judge purges, as plain data (it crosses to worker threads). */
export interface PurgeRulesData {
  records: PurgeRecordFact[];
  holds: HoldFact[];
  rules: RuleFact[];
}

/**
 * A purge record's own problem (stream, recorder, policy), and what its policy names: the erased
 * subject, or the index in `rules` of the rule that defined its label before it.
 */
export function purgeRecordFact(record: { leaf: number; policy: string; stream: string; recorder: unknown; ts: string }, sealed: number, rules: readonly RuleFact[]): PurgeRecordFact {
  const base = { leaf: record.leaf, policy: record.policy, sealed };
  const own = governanceRecordProblem(record.stream, record.recorder);
  if (own !== undefined) return { ...base, problem: own };
  if (record.policy.startsWith('erasure:') && record.policy.length > 'erasure:'.length) {
    if (!Number.isFinite(Date.parse(record.ts))) return { ...base, problem: `the record's time ${JSON.stringify(record.ts)} is not a time` };
    // The rules in force at the record: the latest definition per selector before it.
    const latest = new Map<string, number>();
    rules.forEach((r, i) => {
      if (r.leaf < record.leaf) latest.set(r.selector, i);
    });
    const duties = [...latest.values()].filter((i) => rules[i]!.duty);
    return { ...base, erasure: record.policy.slice('erasure:'.length), ts: record.ts, duties };
  }
  if (record.policy.startsWith('retention:')) {
    let found: number | undefined;
    rules.forEach((r, i) => {
      if (r.leaf < record.leaf && r.policy === record.policy) found = i;
    });
    if (found === undefined) return { ...base, problem: `no retention rule in ${GOVERNANCE_STREAM} defined policy ${record.policy} before the record` };
    return { ...base, rule: found };
  }
  return { ...base, problem: `policy ${record.policy} is neither erasure:<subject> nor a retention rule's label` };
}

/** An erased leaf as the rules read it: its indexed fields, and its header for what they lack. */
export interface PurgedLeaf {
  pos: number;
  kind: string;
  stream: string;
  agent: string;
  ts: string;
  header: string;
}

/**
 * Judges purge records against erased leaves: the rule a record breaks on a leaf, in one clause,
 * or undefined when the record may erase it. Built once per verifier from PurgeRulesData.
 */
export class PurgeJudge {
  private readonly records = new Map<number, PurgeRecordFact>();
  /** What each record needs, worked out once per record (a purge lists up to 50,000 leaves): the holds in force at it, its duties, and which header fields its leaves are judged on. */
  private readonly inForce = new Map<number, { holds: HoldFact[]; duties: RuleFact[]; subject: boolean; classes: boolean }>();

  constructor(private readonly d: PurgeRulesData) {
    for (const r of d.records) this.records.set(r.leaf, r);
  }

  /** The sentence saying why the record at `by` may not erase `leaf` (verify's unauthorised_purge), or undefined. */
  refusal(by: number, leaf: PurgedLeaf): string | undefined {
    const why = this.problem(by, leaf);
    if (why === undefined) return undefined;
    const policy = this.records.get(by)?.policy ?? '?';
    return `The payload was erased under the retention.purge event at leaf ${by} (policy ${policy}), which may not erase it: ${why}.`;
  }

  /** Why the record at `by` may not erase `leaf`, in one clause, or undefined. */
  problem(by: number, leaf: PurgedLeaf): string | undefined {
    const r = this.records.get(by);
    if (r === undefined) return 'the record was not read before the rows';
    const kind = governanceKindProblem(leaf.pos, leaf.kind);
    if (kind !== undefined) return kind;
    if (r.problem !== undefined) return r.problem;
    const unsealed = unsealedProblem(leaf.pos, r.sealed);
    if (unsealed !== undefined) return unsealed;
    const rule = r.rule === undefined ? undefined : this.d.rules[r.rule];
    let at = this.inForce.get(by);
    if (at === undefined) {
      const holds = this.d.holds.filter((h) => h.placed < by && (h.released === undefined || h.released > by));
      const duties = (r.duties ?? []).map((i) => this.d.rules[i]!);
      at = {
        holds,
        duties,
        subject: r.erasure !== undefined || holds.some((h) => h.scope?.subject !== undefined),
        // A rule for every event or for a kind matches without the header: searching each erased
        // leaf's header for classes it never uses cost 0.7 s of a 1,000,000-leaf verify (profiled).
        classes: (rule !== undefined && selectorNeedsHeader(rule.match)) || duties.some((d) => selectorNeedsHeader(d.match)),
      };
      this.inForce.set(by, at);
    }
    const { holds, duties } = at;
    const extras = headerExtrasOf(leaf.header, { subject: at.subject, classes: at.classes });
    for (const h of holds) {
      if (h.scope === null) return `the hold placed at leaf ${h.placed} was in force at the record, and its payload is gone or names no scope this version reads, so it may cover leaf ${leaf.pos}`;
      if (holdScopeCovers(h.scope, { stream: leaf.stream, agent: leaf.agent, ts: leaf.ts, subject: extras.subject })) {
        return `leaf ${leaf.pos} was under legal hold ${h.id} (placed at leaf ${h.placed}), in force at the record`;
      }
    }
    if (r.erasure !== undefined) {
      if (extras.subject !== r.erasure) return `leaf ${leaf.pos} is not about subject ${r.erasure} (${extras.subject === undefined ? 'it names no subject' : `it names ${extras.subject}`})`;
      // A legal obligation to keep wins over erasure (GDPR Art. 17(3)(b)), as eraseSubject refuses.
      for (const d of duties) {
        if (selectorMatches(d.match, leaf.kind, extras) && leaf.ts >= cutoffOf(d.period, new Date(r.ts!)).toISOString()) {
          return `the keeping duty ${d.policy} (set at leaf ${d.leaf}) still bound leaf ${leaf.pos}, dated ${leaf.ts}, at the record's time ${r.ts!}`;
        }
      }
      return undefined;
    }
    if (rule !== undefined && !selectorMatches(rule.match, leaf.kind, extras)) return `the rule ${rule.selector} does not apply to leaf ${leaf.pos} (a ${leaf.kind})`;
    return undefined;
  }
}
