import { z } from 'zod';
import type { Condition, Operand, PathSegment } from './conditions.js';
import { evaluate } from './evaluate.js';
import { matchAny } from './glob.js';
import { EFFECTS, MODES, type Effect, type Evaluation, type Policy, type PolicyRule } from './types.js';

/**
 * Backtesting a candidate policy: replaying recorded tool calls through the same `evaluate` the
 * gateway runs, and saying which decisions would change. Pure: the caller reads the ledger and
 * hands calls in one at a time (`Backtest.add`), so a million calls never sit in memory; only
 * counts and the first examples of each transition are kept.
 *
 * A recorded call cannot always be replayed as it was made. Its payload may be purged (retention)
 * or withheld, and its arguments are stored redacted (secrets became `[REDACTED:…]` before they
 * were written). Replaying a redacted value as if it were the real one would decide a different
 * call, so such a call is *not assessable* unless the candidate's decision cannot depend on what
 * is missing. That is decided exactly, with `evaluate` itself: every rule that might apply only
 * because of what is missing (its condition reads a redacted value or missing arguments, or its
 * match names a server or tool the record no longer says) is taken out, then put back alone as if
 * it applied; precedence (deny > review > allow, else the default) is monotone, so these worlds
 * hold every decision the call could have got. One decision across them all: assessable.
 */

/** The marker the recorder writes in place of a secret (recorder/redact.ts); the recorder never leaves it half-written. */
export const REDACTION_MARKER = '[REDACTED:';

/** What the gateway decided when the call was recorded. */
export interface RecordedDecision {
  readonly decision: Effect;
  readonly rule?: string | undefined;
  /** SHA-256 of the policy file that decided it. */
  readonly policyVersion?: string | undefined;
  readonly mode?: 'enforce' | 'shadow' | undefined;
  /** The call was refused because its agent was halted (human.halt): the stop button decided, not a policy. */
  readonly halted?: boolean | undefined;
}

/** One recorded tool call, as the ledger still holds it. */
export interface RecordedCall {
  /** The tool.call event's id. */
  readonly id: string;
  readonly ts: string;
  readonly agent: string;
  /** The upstream server's name, `''` for a gateway's one unnamed upstream; null when the record no longer says. */
  readonly server: string | null;
  /** null when the record no longer says (a purged payload whose header does not name it). */
  readonly tool: string | null;
  /** The arguments as stored (redacted at write time), or why there are none to read. */
  readonly args: { readonly value: unknown } | { readonly missing: string };
  /** undefined: no policy decided the call when it was made (no policy.decision was recorded for it). */
  readonly recorded: RecordedDecision | undefined;
}

/** `none`: no policy decided the call when it was made; it went through. */
export type FromDecision = Effect | 'none';

export type Classification =
  | { readonly kind: 'assessed'; readonly from: FromDecision; readonly evaluation: Evaluation; readonly changed: boolean; readonly why: string }
  | { readonly kind: 'not_assessable'; readonly from: FromDecision; readonly possible: readonly Effect[]; readonly why: string }
  | { readonly kind: 'halted'; readonly from: 'deny'; readonly why: string };

// ---------------------------------------------------------------- one call

/** Effects from the least to the most restrictive, the order decisions are listed in. */
const SEVERITY: readonly Effect[] = ['allow', 'review', 'deny'];

/**
 * How the candidate decides one recorded call. `changed` is true when the decision differs from
 * the recorded one; a call no policy decided (`none`) went through, so only a candidate deny or
 * review changes it.
 */
export function classifyCall(policy: Policy, call: RecordedCall): Classification {
  const from: FromDecision = call.recorded?.decision ?? 'none';
  // A halt outranks every policy (gateway/relay.ts): no candidate would have let the call through.
  if (call.recorded?.halted === true) return { kind: 'halted', from: 'deny', why: 'its agent was halted (human.halt), which refuses calls whatever a policy says' };
  const args = 'value' in call.args ? call.args.value : undefined;
  const missing = 'missing' in call.args ? call.args.missing : undefined;
  const context = { agent: call.agent, server: call.server ?? '', tool: call.tool ?? '', args };
  // The common case: everything the policy could read is in the record.
  if (missing === undefined && call.server !== null && call.tool !== null && !holdsMarker(args, 0)) {
    return assessed(policy, from, evaluate(policy, context));
  }
  const unknown = new Map<PolicyRule, string>();
  for (const rule of policy.rules) {
    if (!matchAny(rule.match.agent, call.agent)) continue;
    if (call.tool !== null && !matchAny(rule.match.tool, call.tool)) continue;
    if (call.server !== null && !matchAny(rule.match.server, call.server)) continue;
    const why = unknownBecause(rule, call, args, missing);
    if (why !== undefined) unknown.set(rule, why);
  }
  if (unknown.size === 0) return assessed(policy, from, evaluate(policy, context));
  // Worlds: none of the unknown rules applies, or exactly one does (see the module comment).
  const base = evaluate(
    withRules(
      policy,
      policy.rules.filter((r) => !unknown.has(r)),
    ),
    context,
  );
  const worlds = [base];
  for (const rule of unknown.keys()) {
    const forced: PolicyRule = { ...rule, match: { agent: rule.match.agent, server: ['*'], tool: ['*'] }, when: [], condition: undefined };
    worlds.push(
      evaluate(
        withRules(
          policy,
          policy.rules.map((r) => (r === rule ? forced : unknown.has(r) ? undefined : r)).filter((r): r is PolicyRule => r !== undefined),
        ),
        context,
      ),
    );
  }
  const decisions = SEVERITY.filter((e) => worlds.some((w) => w.decision === e));
  if (decisions.length > 1) {
    const deciding = [...unknown.entries()].filter(([r]) => decisions.includes(r.effect) && r.effect !== base.decision);
    const shown = (deciding.length > 0 ? deciding : [...unknown.entries()]).slice(0, 3);
    return {
      kind: 'not_assessable',
      from,
      possible: decisions,
      why: `${shown.map(([r, why]) => `rule ${r.id} (${r.effect}) ${why}`).join('; ')}${unknown.size > shown.length ? ` (and ${unknown.size - shown.length} more rule(s))` : ''}, so the decision could be ${decisions.join(' or ')}`,
    };
  }
  const result = assessed(policy, from, base);
  const rules = new Set(worlds.map((w) => w.rule ?? ''));
  if (rules.size === 1) return result;
  const others = [...rules].filter((r) => r !== (base.rule ?? '')).map((r) => (r === '' ? 'the default' : `rule ${r}`));
  return { ...result, why: `${result.why} (the decision is certain, but ${others.join(', ')} may have decided it instead: what it tests is not in the record)` };
}

function assessed(policy: Policy, from: FromDecision, evaluation: Evaluation): Classification {
  const changed = from === 'none' ? evaluation.decision !== 'allow' : evaluation.decision !== from;
  return { kind: 'assessed', from, evaluation, changed, why: explain(policy, evaluation) };
}

/** The rule that now decides, where it is and what it says; or the default. */
export function explain(policy: Policy, e: Evaluation): string {
  if (e.rule === undefined) return `no rule matches, so the default (${policy.default}, line ${policy.defaultLine}) applies`;
  const rule = policy.rules.find((r) => r.id === e.rule);
  const where = rule === undefined ? '' : ` (line ${rule.line}${rule.when.length === 0 ? '' : `, when ${rule.when.join(' and ')}`})`;
  return `rule ${e.rule}${where} says ${e.decision}${e.reason === undefined ? '' : `: ${e.reason}`}`;
}

/** Why a rule's applying cannot be told from the record, or undefined when it can. */
function unknownBecause(rule: PolicyRule, call: RecordedCall, args: unknown, missing: string | undefined): string | undefined {
  if (call.tool === null && !rule.match.tool.includes('*')) return `names tools (${rule.match.tool.join(', ')}) and ${missing ?? 'the record does not say which tool was called'}`;
  if (call.server === null && !rule.match.server.includes('*')) return `names servers (${rule.match.server.join(', ')}) and ${missing ?? 'the record does not say which server was called'}`;
  if (rule.condition === undefined) return undefined;
  if (missing !== undefined) return `tests the arguments (${rule.when.join(' and ')}) and ${missing}`;
  const hidden = readPaths(rule.condition).filter((p) => reachesMarker(args, p.segments));
  if (hidden.length === 0) return undefined;
  return `tests ${[...new Set(hidden.map((p) => p.text))].join(', ')}, which the record holds redacted`;
}

function withRules(policy: Policy, rules: readonly PolicyRule[]): Policy {
  return { ...policy, rules };
}

// ---------------------------------------------------------------- redaction

/** The argument paths a condition reads. */
function readPaths(c: Condition): Array<{ segments: readonly PathSegment[]; text: string }> {
  const out: Array<{ segments: readonly PathSegment[]; text: string }> = [];
  const operand = (o: Operand) => {
    if (o.kind === 'path') out.push(o);
  };
  const walk = (x: Condition): void => {
    switch (x.op) {
      case 'and':
      case 'or':
        x.items.forEach(walk);
        return;
      case 'not':
        walk(x.item);
        return;
      case 'in':
      case 'exists':
      case 'under':
        operand(x.left);
        return;
      default:
        operand(x.left);
        operand(x.right);
    }
  };
  walk(c);
  return out;
}

/**
 * Whether reading `segments` from the stored arguments may meet a redacted value: on the way (a
 * secret object replaced whole by a string), or anywhere inside the value reached (`contains`
 * looks inside lists). Keys are matched loosely, a superset of how conditions.ts folds them
 * (a path also reads a key spelled "Amount" for amount), so nothing the evaluator reads is missed.
 */
function reachesMarker(value: unknown, segments: readonly PathSegment[]): boolean {
  let current: unknown[] = [value];
  for (const seg of segments) {
    const next: unknown[] = [];
    for (const v of current) {
      if (typeof v === 'string') {
        if (v.includes(REDACTION_MARKER)) return true;
      } else if (Array.isArray(v)) {
        const i = typeof seg === 'number' ? seg : /^\d+$/.test(seg) ? Number(seg) : undefined;
        if (i !== undefined && i < v.length) next.push(v[i]);
      } else if (v !== null && typeof v === 'object') {
        const want = loose(String(seg));
        for (const k of Object.keys(v)) if (k === seg || loose(k) === want) next.push((v as Record<string, unknown>)[k]);
      }
    }
    if (next.length === 0) return false;
    current = next;
  }
  return current.some((v) => holdsMarker(v, 0));
}

const IGNORABLE = /[\p{Default_Ignorable_Code_Point}\p{Cc}\p{Cf}\p{White_Space}]/gu;

function loose(key: string): string {
  return key.normalize('NFKC').replace(IGNORABLE, '').toUpperCase().toLowerCase();
}

/** Whether a redaction marker occurs anywhere in a value (depth-limited: deeper counts as holding one). */
function holdsMarker(v: unknown, depth: number): boolean {
  if (typeof v === 'string') return v.includes(REDACTION_MARKER);
  if (v === null || typeof v !== 'object') return false;
  if (depth > 64) return true;
  if (Array.isArray(v)) {
    for (const x of v) if (holdsMarker(x, depth + 1)) return true;
    return false;
  }
  for (const k of Object.keys(v)) if (holdsMarker((v as Record<string, unknown>)[k], depth + 1)) return true;
  return false;
}

// ---------------------------------------------------------------- many calls

/** A call shown as an example of a transition. */
export const BacktestExample = z.strictObject({
  id: z.string(),
  ts: z.string(),
  agent: z.string(),
  server: z.string().nullable(),
  tool: z.string().nullable(),
  /** What was recorded: the decision, its rule and the policy version that made it. */
  recorded: z.strictObject({ decision: z.enum([...EFFECTS, 'none']), rule: z.string().optional(), policy_version: z.string().optional(), mode: z.enum(MODES).optional() }),
  /** What the candidate decides (absent when not assessable). */
  candidate: z.strictObject({ decision: z.enum(EFFECTS), rule: z.string().optional(), reason: z.string().optional(), matched: z.array(z.string()) }).optional(),
  /** Not assessable: the decisions the call could get. */
  possible: z.array(z.enum(EFFECTS)).optional(),
  /** The rule that now decides and why, or why the call cannot be assessed. */
  why: z.string(),
});
export type BacktestExample = z.infer<typeof BacktestExample>;

const Count = z.number().int().nonnegative();

/** `witness policy test --json`: stable, and checked against this schema before it is printed. */
export const BacktestReport = z.strictObject({
  policy: z.strictObject({ source: z.string(), sha256: z.string(), mode: z.enum(MODES), default: z.enum(EFFECTS), rules: Count }),
  window: z.strictObject({ since: z.string().nullable(), until: z.string().nullable(), agents: z.array(z.string()).nullable() }),
  /** Tool calls read. */
  total: Count,
  /** Calls decided as they were (for `none`: allowed, as they went through). */
  unchanged: z.strictObject({ count: Count, by_decision: z.partialRecord(z.enum([...EFFECTS, 'none']), Count) }),
  /** Calls whose decision would change, per transition, most frequent first. */
  changed: z.strictObject({
    count: Count,
    transitions: z.array(z.strictObject({ from: z.enum([...EFFECTS, 'none']), to: z.enum(EFFECTS), count: Count, examples: z.array(BacktestExample) })),
  }),
  not_assessable: z.strictObject({ count: Count, examples: z.array(BacktestExample) }),
  /** Calls refused because their agent was halted: the stop button decided them, and no policy would change that. */
  halted: Count,
  /** The policy versions that decided the recorded calls (at most 100 listed), with their counts. */
  recorded_versions: z.array(z.strictObject({ version: z.string(), calls: Count })),
});
export type BacktestReport = z.infer<typeof BacktestReport>;

export interface BacktestOptions {
  /** Examples kept per transition (and of calls not assessable); default 5. */
  readonly examples?: number;
  /** Echoed in the report. */
  readonly window?: BacktestReport['window'];
}

const MAX_VERSIONS = 100;

/** Counts calls as they are added; keeps only counts and the first examples of each transition. */
export class Backtest {
  private total = 0;
  private readonly unchanged = new Map<FromDecision, number>();
  private readonly changed = new Map<string, { from: FromDecision; to: Effect; count: number; examples: BacktestExample[] }>();
  private notAssessable = 0;
  private halted = 0;
  private readonly notAssessableExamples: BacktestExample[] = [];
  private readonly versions = new Map<string, number>();
  private readonly examples: number;

  constructor(
    readonly policy: Policy,
    private readonly options: BacktestOptions = {},
  ) {
    this.examples = options.examples ?? 5;
  }

  add(call: RecordedCall): Classification {
    const c = classifyCall(this.policy, call);
    this.total++;
    const version = call.recorded?.policyVersion;
    if (version !== undefined && (this.versions.has(version) || this.versions.size < MAX_VERSIONS)) this.versions.set(version, (this.versions.get(version) ?? 0) + 1);
    if (c.kind === 'halted') {
      this.halted++;
    } else if (c.kind === 'not_assessable') {
      this.notAssessable++;
      if (this.notAssessableExamples.length < this.examples) this.notAssessableExamples.push(example(call, c));
    } else if (!c.changed) {
      this.unchanged.set(c.from, (this.unchanged.get(c.from) ?? 0) + 1);
    } else {
      const key = `${c.from}>${c.evaluation.decision}`;
      let t = this.changed.get(key);
      if (t === undefined) {
        t = { from: c.from, to: c.evaluation.decision, count: 0, examples: [] };
        this.changed.set(key, t);
      }
      t.count++;
      if (t.examples.length < this.examples) t.examples.push(example(call, c));
    }
    return c;
  }

  report(): BacktestReport {
    const transitions = [...this.changed.values()].sort((a, b) => b.count - a.count || ORDER.indexOf(a.from) - ORDER.indexOf(b.from) || ORDER.indexOf(a.to) - ORDER.indexOf(b.to));
    const report: BacktestReport = {
      policy: { source: this.policy.source, sha256: this.policy.sha256, mode: this.policy.mode, default: this.policy.default, rules: this.policy.rules.length },
      window: this.options.window ?? { since: null, until: null, agents: null },
      total: this.total,
      unchanged: { count: sum(this.unchanged.values()), by_decision: Object.fromEntries(ORDER.filter((d) => this.unchanged.has(d)).map((d) => [d, this.unchanged.get(d)!])) },
      changed: { count: sum(transitions.map((t) => t.count)), transitions },
      not_assessable: { count: this.notAssessable, examples: this.notAssessableExamples },
      halted: this.halted,
      recorded_versions: [...this.versions].map(([version, calls]) => ({ version, calls })).sort((a, b) => b.calls - a.calls),
    };
    return BacktestReport.parse(report);
  }
}

const ORDER: readonly FromDecision[] = ['allow', 'review', 'deny', 'none'];

function sum(xs: Iterable<number>): number {
  let n = 0;
  for (const x of xs) n += x;
  return n;
}

function example(call: RecordedCall, c: Classification): BacktestExample {
  const r = call.recorded;
  return {
    id: call.id,
    ts: call.ts,
    agent: call.agent,
    server: call.server,
    tool: call.tool,
    recorded: {
      decision: c.from,
      ...(r?.rule === undefined ? {} : { rule: r.rule }),
      ...(r?.policyVersion === undefined ? {} : { policy_version: r.policyVersion }),
      ...(r?.mode === undefined ? {} : { mode: r.mode }),
    },
    ...(c.kind === 'assessed'
      ? {
          candidate: {
            decision: c.evaluation.decision,
            ...(c.evaluation.rule === undefined ? {} : { rule: c.evaluation.rule }),
            ...(c.evaluation.reason === undefined ? {} : { reason: c.evaluation.reason }),
            matched: [...c.evaluation.matched],
          },
        }
      : c.kind === 'not_assessable'
        ? { possible: [...c.possible] }
        : {}),
    why: c.why,
  };
}
