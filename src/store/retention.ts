import { WitnessError, leafRanges } from '../core/index.js';
import { GOVERNANCE_STREAM, activeHolds, eventsOfKind, governanceFields, holdCovers, type Actor, type Hold } from './holds.js';
import { UNPURGEABLE_KINDS, type AppendReceipt, type Ledger, type LedgerReader, type VerifyScanRow } from './ledger.js';

/**
 * Retention rules, kept in the ledger as config.change events (target `retention`), so the rules
 * are part of the record they govern. A rule applies to events by kind, record_class or data
 * category, or to every event; each has a period. An event expires once the LONGEST period of all
 * the rules that apply to it has passed (a longer duty wins); an event no rule applies to is kept.
 * A later rule for the same selector replaces the earlier one.
 */

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

export interface RetentionRule {
  /** `kind=llm.call`, `record_class=…`, `data_category=…` or `all`. */
  selector: string;
  match: RetentionSelector;
  /** `180d`, `6m`, `6y`, `4w`. */
  period: string;
  preset?: RetentionPreset;
  /** Set by a preset: a keeping duty (erasure is refused while it binds), not only a limit. */
  duty: boolean;
  /** The label purge records name it by: `retention:<selector>:<period>[:<preset>]`. */
  policy: string;
  setAt: string;
  setBy: string;
  event: string;
}

const PERIOD = /^([1-9]\d{0,4})([dwmy])$/;

/** `now` minus a period: days and weeks exactly, months and years by the calendar (UTC). */
export function cutoffOf(period: string, now: Date): Date {
  const m = PERIOD.exec(period);
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

function selectorKey(s: RetentionSelector): string {
  if (s.kind !== undefined) return `kind=${s.kind}`;
  if (s.record_class !== undefined) return `record_class=${s.record_class}`;
  if (s.data_category !== undefined) return `data_category=${s.data_category}`;
  return 'all';
}

export interface SetRuleRequest {
  match: RetentionSelector;
  /** A period (`180d`); or a preset, whose period it takes. */
  olderThan?: string;
  preset?: string;
}

/** Records a retention rule as a config.change event; returns the rule as it now stands. */
export async function setRetentionRule(ledger: Ledger, request: SetRuleRequest, who: Actor): Promise<{ rule: RetentionRule; receipt: AppendReceipt }> {
  const given = (['kind', 'record_class', 'data_category'] as const).filter((k) => request.match[k] !== undefined);
  if (given.length > 1) throw new WitnessError('invalid_argument', 'A retention rule selects by one of --kind, --record-class or --data-category, not several; set one rule for each.');
  if ((request.olderThan === undefined) === (request.preset === undefined)) {
    throw new WitnessError('invalid_argument', 'Give a retention rule either --older-than (e.g. 180d) or --preset (eu-ai-act, hipaa, sec-17a-4), one of them.');
  }
  if (request.preset !== undefined && !(request.preset in RETENTION_PRESETS)) {
    throw new WitnessError('invalid_argument', `Unknown preset ${JSON.stringify(request.preset)}; use one of ${Object.keys(RETENTION_PRESETS).join(', ')}.`);
  }
  const preset = request.preset as RetentionPreset | undefined;
  const period = preset === undefined ? request.olderThan! : RETENTION_PRESETS[preset];
  cutoffOf(period, new Date());
  const match = given.length === 0 ? {} : { [given[0]!]: request.match[given[0]!] };
  const selector = selectorKey(match);
  const rule = { selector, ...match, older_than: period, ...(preset === undefined ? {} : { preset }), duty: preset !== undefined };
  const [receipt] = await ledger.append([
    {
      stream: GOVERNANCE_STREAM,
      ...governanceFields(who),
      kind: 'config.change',
      resource: 'retention',
      action: 'set',
      outcome: 'success',
      data: { target: 'retention', description: `Retention for ${selector}: payloads purged after ${period}${preset === undefined ? '' : ` (preset ${preset})`}.`, rule, approved_by: who.actor },
    },
  ]);
  const rules = await listRetentionRules(ledger);
  return { rule: rules.find((r) => r.selector === selector)!, receipt: receipt! };
}

/** The rules in force, read from the ledger's config.change events: the latest per selector. */
export async function listRetentionRules(ledger: Pick<LedgerReader, 'query'>): Promise<RetentionRule[]> {
  const rules = new Map<string, RetentionRule>();
  for (const e of await eventsOfKind(ledger, 'config.change')) {
    const d = e.data as { target?: unknown; rule?: Record<string, unknown> } | null;
    const r = d?.rule;
    if (d?.target !== 'retention' || typeof r !== 'object' || r === null || typeof r['older_than'] !== 'string' || !PERIOD.test(r['older_than'])) continue;
    const match: RetentionSelector = {};
    for (const k of ['kind', 'record_class', 'data_category'] as const) if (typeof r[k] === 'string') match[k] = r[k];
    const selector = selectorKey(match);
    const preset = typeof r['preset'] === 'string' && r['preset'] in RETENTION_PRESETS ? (r['preset'] as RetentionPreset) : undefined;
    const period = r['older_than'];
    rules.set(selector, {
      selector,
      match,
      period,
      ...(preset === undefined ? {} : { preset }),
      duty: r['duty'] === true,
      policy: `retention:${selector}:${period}${preset === undefined ? '' : `:${preset}`}`,
      setAt: e.ts,
      setBy: e.principal?.id ?? e.agent.id,
      event: e.id,
    });
  }
  return [...rules.values()];
}

// ------------------------------------------------------------------ reading the ledger once

/** The header fields retention and holds read beyond the indexed columns, when the header has them. */
interface HeaderExtras {
  subject?: string;
  record_class?: string;
  data_categories?: string[];
}

/** Parses the header only when it carries one of the fields asked for (most events carry none). */
export function headerExtras(row: Pick<VerifyScanRow, 'header'>, need: { subject: boolean; classes: boolean }): HeaderExtras {
  const h = row.header;
  if (!((need.subject && h.includes('"subject":')) || (need.classes && (h.includes('"record_class":') || h.includes('"data_categories":'))))) return {};
  try {
    const p = JSON.parse(h) as { subject?: unknown; record_class?: unknown; data_categories?: unknown };
    return {
      ...(typeof p.subject === 'string' ? { subject: p.subject } : {}),
      ...(typeof p.record_class === 'string' ? { record_class: p.record_class } : {}),
      ...(Array.isArray(p.data_categories) ? { data_categories: p.data_categories.filter((x): x is string => typeof x === 'string') } : {}),
    };
  } catch {
    return {};
  }
}

/** Size of the newest checkpoint: only events below it may be purged (the key vouched for them first). */
export async function sealedSize(ledger: Pick<Ledger, 'latestCheckpoint'>): Promise<number> {
  return Number((await ledger.latestCheckpoint())?.size ?? 0);
}

/** The first hold that covers an event, or undefined. */
export function heldBy(holds: readonly Hold[], row: Pick<VerifyScanRow, 'stream' | 'agent' | 'ts'>, extras: HeaderExtras): Hold | undefined {
  for (const h of holds) if (holdCovers(h, { stream: row.stream, agent: row.agent, ts: row.ts, subject: extras.subject })) return h;
  return undefined;
}

/** Positions per purge record: at most this many, and at most PURGE_RANGES ranges, so a record stays far below the payload limit. */
export const PURGE_BATCH = 50_000;
export const PURGE_RANGES = 10_000;

/** Splits ascending positions into batches for one purge record each. */
export function purgeBatches(positions: readonly number[], max = PURGE_BATCH, maxRanges = PURGE_RANGES): number[][] {
  const out: number[][] = [];
  let cur: number[] = [];
  let ranges = 0;
  for (const p of positions) {
    const startsRange = cur.length === 0 || p !== cur[cur.length - 1]! + 1;
    if (cur.length >= max || (startsRange && ranges >= maxRanges)) {
      out.push(cur);
      cur = [];
      ranges = 0;
    }
    if (cur.length === 0 || p !== cur[cur.length - 1]! + 1) ranges++;
    cur.push(p);
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/** One purge record's data: what it erased (leaf ranges), under which policy, and the cut-off. */
export function purgeData(policy: string, before: string, positions: readonly number[], extra: Record<string, unknown>): Record<string, unknown> & { policy: string; before: string; count: number } {
  return { policy, before, count: positions.length, leaves: leafRanges(positions), ...extra };
}

// ------------------------------------------------------------------ retention run

export interface RetentionRunOptions {
  now?: Date;
  dryRun?: boolean;
  onProgress?: (done: number, total: number) => void;
}

export interface PolicyOutcome {
  policy: string;
  before: string;
  /** Expired payloads erased now (or, in a dry run, that would be). */
  purged: number;
  /** Expired but covered by a hold in force: kept. */
  held: number;
  /** Expired but not yet in a signed checkpoint: kept until sealed. */
  unsealed: number;
  /** The retention.purge events recorded (none in a dry run). */
  records: Array<{ id: string; pos: number; count: number }>;
}

export interface RetentionRunResult {
  dryRun: boolean;
  rules: number;
  policies: PolicyOutcome[];
  purged: number;
  held: number;
  /** Holds that kept something back, by id, with how many events each kept. */
  heldBy: Record<string, number>;
}

/**
 * Purges the payloads of expired events (see the rules above), except those a hold in force
 * covers, through the ledger's one purge path, one retention.purge record per batch and policy.
 * Reads the ledger once, in position order; a dry run reads the same and changes nothing.
 */
export async function runRetention(ledger: Ledger, who: Actor, options: RetentionRunOptions = {}): Promise<RetentionRunResult> {
  const now = options.now ?? new Date();
  const rules = await listRetentionRules(ledger);
  const result: RetentionRunResult = { dryRun: options.dryRun === true, rules: rules.length, policies: [], purged: 0, held: 0, heldBy: {} };
  if (rules.length === 0) return result;
  const cut = new Map(rules.map((r) => [r.selector, cutoffOf(r.period, now).toISOString()]));
  const holds = await activeHolds(ledger);
  const sealed = await sealedSize(ledger);
  const need = { subject: holds.some((h) => h.scope.subject !== undefined), classes: rules.some((r) => r.match.record_class !== undefined || r.match.data_category !== undefined) };
  const byKind = new Map<string, RetentionRule>();
  let all: RetentionRule | undefined;
  for (const r of rules) {
    if (r.match.kind !== undefined) byKind.set(r.match.kind, r);
    else if (r.selector === 'all') all = r;
  }
  const classRules = rules.filter((r) => r.match.record_class !== undefined || r.match.data_category !== undefined);
  const outcomes = new Map<string, PolicyOutcome & { positions: number[] }>();
  const outcome = (r: RetentionRule) => {
    let o = outcomes.get(r.policy);
    if (o === undefined) outcomes.set(r.policy, (o = { policy: r.policy, before: cut.get(r.selector)!, purged: 0, held: 0, unsealed: 0, records: [], positions: [] }));
    return o;
  };
  const total = ledger.info.size;
  let done = 0;
  for await (const page of ledger.scanForVerify(0, total, 10_000)) {
    for (const row of page) {
      if (row.data === null || UNPURGEABLE_KINDS.includes(row.kind)) continue;
      const extras = headerExtras(row, need);
      // The rule with the earliest cut-off (the longest period) among those that apply decides.
      let decider: RetentionRule | undefined;
      const consider = (r: RetentionRule | undefined) => {
        if (r !== undefined && (decider === undefined || cut.get(r.selector)! < cut.get(decider.selector)!)) decider = r;
      };
      consider(byKind.get(row.kind));
      consider(all);
      for (const r of classRules) {
        if (r.match.record_class !== undefined ? extras.record_class === r.match.record_class : extras.data_categories?.includes(r.match.data_category!) === true) consider(r);
      }
      const d = decider as RetentionRule | undefined;
      if (d === undefined || !(row.ts < cut.get(d.selector)!)) continue;
      const o = outcome(d);
      const hold = heldBy(holds, row, extras);
      if (hold !== undefined) {
        o.held++;
        result.heldBy[hold.id] = (result.heldBy[hold.id] ?? 0) + 1;
      } else if (row.pos >= sealed) {
        o.unsealed++;
      } else {
        o.positions.push(row.pos);
      }
    }
    done += page.length;
    options.onProgress?.(done, total);
  }
  for (const o of outcomes.values()) {
    const { positions, ...rest } = o;
    rest.purged = positions.length;
    if (!result.dryRun) {
      const batches = purgeBatches(positions);
      for (const [i, batch] of batches.entries()) {
        const r = await ledger.purgePayloads({
          positions: batch,
          record: {
            stream: GOVERNANCE_STREAM,
            ...governanceFields(who),
            kind: 'retention.purge',
            resource: 'retention',
            action: 'purge',
            outcome: 'success',
            data: purgeData(o.policy, o.before, batch, { batch: i + 1, batches: batches.length, ...(i === 0 && o.held > 0 ? { held_back: o.held } : {}) }),
          },
        });
        rest.records.push({ id: r.record.id, pos: r.record.pos, count: batch.length });
      }
    }
    result.policies.push(rest);
    result.purged += rest.purged;
    result.held += rest.held;
  }
  return result;
}
