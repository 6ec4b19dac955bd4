import {
  RETENTION_PRESETS,
  UNPURGEABLE_KINDS,
  WitnessError,
  cutoffOf,
  headerExtrasOf,
  leafRanges,
  retentionRuleOf,
  selectorKey,
  selectorMatches,
  type HeaderExtras,
  type RetentionPreset,
  type RetentionSelector,
} from '../core/index.js';
import { GOVERNANCE_STREAM, activeHolds, governanceEventsOf, governanceFields, holdCovers, type Actor, type Hold } from './holds.js';
import type { AppendReceipt, Ledger, LedgerReader, VerifyScanRow } from './ledger.js';

// The rules' vocabulary lives in core (purge-rules.ts), where verify judges purges by it too.
export { RETENTION_PRESETS, cutoffOf, type RetentionPreset, type RetentionSelector };

/**
 * Retention rules, kept in the ledger as config.change events (target `retention`), so the rules
 * are part of the record they govern. A rule applies to events by kind, record_class or data
 * category, or to every event; each has a period. An event expires once the LONGEST period of all
 * the rules that apply to it has passed (a longer duty wins); an event no rule applies to is kept.
 * A later rule for the same selector replaces the earlier one.
 */

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
  if (request.preset !== undefined && !Object.hasOwn(RETENTION_PRESETS, request.preset)) {
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
  // Only rules a person set (witness.retention, by the CLI or the server): one an agent appended shortens nothing.
  for (const e of await governanceEventsOf(ledger, 'config.change')) {
    const def = retentionRuleOf(e.data);
    if (def === undefined) continue;
    rules.set(def.selector, {
      ...def,
      setAt: e.ts,
      setBy: e.principal?.id ?? e.agent.id,
      event: e.id,
    });
  }
  return [...rules.values()];
}

// ------------------------------------------------------------------ reading the ledger once

/** Parses the header only when it carries one of the fields asked for (most events carry none). */
export function headerExtras(row: Pick<VerifyScanRow, 'header'>, need: { subject: boolean; classes: boolean }): HeaderExtras {
  return headerExtrasOf(row.header, need);
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
      for (const r of classRules) if (selectorMatches(r.match, row.kind, extras)) consider(r);
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
