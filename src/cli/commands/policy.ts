import type { Command } from 'commander';
import { WitnessError } from '../../core/index.js';
import {
  Backtest,
  callOfTexts,
  decisionOfTexts,
  loadPolicyFile,
  parseStored,
  type BacktestExample,
  type BacktestReport,
  type DecisionHeader,
  type Policy,
  type RecordedCall,
  type RecordedCallFields,
} from '../../policy/index.js';
import type { KindScanRequest, KindScanRow, Ledger } from '../../store/index.js';
import { EXIT_FAILED, EXIT_OK } from '../exit.js';
import { type Io, inert, printJson } from '../output.js';
import { idList } from '../scope-flags.js';
import { openExisting, resolveStore } from '../store-option.js';
import { scopeTime } from './export-siem.js';

/**
 * `witness policy test`: backtests a candidate policy on the tool calls the ledger recorded
 * (src/policy/backtest.ts decides each call with the gateway's own `evaluate`). Reading is paged
 * and streaming: only the calls still waiting for their policy.decision, the counts and the first
 * examples of each transition are held, whatever the window holds.
 *
 * Not recorded as `audit.access`: like `witness query`, it reads the ledger locally and read-only
 * (it can run against a replica or with the auditor role), and the CLI's reads are not recorded;
 * reads through `witness serve` are.
 */

interface PolicyTestFlags {
  since?: string;
  until?: string;
  agent?: string[];
  store?: string;
  examples: string;
  failOnChange?: boolean;
  json?: boolean;
}

export function registerPolicy(program: Command, io: Io, setExit: (code: number) => void): void {
  const policy = program.command('policy').description('work with policy files');
  policy
    .command('test')
    .description('backtest a policy: replay the recorded tool calls through it and report which decisions would change (allow→deny, →review, …), with counts and examples')
    .argument('<file>', 'the candidate policy (YAML)')
    .option('--since <time>', 'calls at or after this time (ISO-8601, or e.g. 30d ago); default: the whole ledger')
    .option('--until <time>', 'calls before this time (ISO-8601, or e.g. 1h ago)')
    .option('--agent <ids>', 'only these agents (comma-separated; may be repeated)', (v: string, prev: string[] | undefined) => [...(prev ?? []), v])
    .option('--store <url>', 'ledger location (default: $WITNESS_STORE or sqlite:./witness.db)')
    .option('--examples <n>', 'examples shown per transition (0-1000)', '5')
    .option('--fail-on-change', 'exit 1 when any decision would change (for CI); calls that cannot be assessed do not count')
    .option('--json', 'machine-readable output')
    .action(async (file: string, opts: PolicyTestFlags) => {
      const examples = Number(opts.examples);
      if (!/^\d+$/.test(opts.examples.trim()) || examples > 1000) throw new WitnessError('invalid_argument', `--examples "${opts.examples}" must be a whole number from 0 to 1000.`);
      const since = opts.since === undefined ? null : scopeTime(opts.since, '--since');
      const until = opts.until === undefined ? null : scopeTime(opts.until, '--until');
      if (since !== null && until !== null && since >= until) {
        throw new WitnessError('invalid_argument', `--since ${opts.since} is not before --until ${opts.until}; give a window that is not empty.`);
      }
      const agents = opts.agent === undefined ? null : [...new Set(opts.agent.flatMap((a) => idList(a, '--agent') ?? []))];
      const candidate = loadCandidate(file);
      const ledger = await openExisting(resolveStore(opts.store), { readonly: true });
      let report: BacktestReport;
      try {
        report = await backtestLedger(ledger, candidate, { since, until, agents, examples });
      } finally {
        await ledger.close();
      }
      setExit(opts.failOnChange === true && report.changed.count > 0 ? EXIT_FAILED : EXIT_OK);
      if (opts.json) return printJson(io, report);
      printReport(io, report, candidate);
    });
}

/** The policy loader's own sentence; a file that is not there is bad usage (exit 2) like a file that does not parse. */
function loadCandidate(file: string): Policy {
  try {
    return loadPolicyFile(file);
  } catch (e) {
    if (e instanceof WitnessError && e.code === 'not_found') throw new WitnessError('invalid_argument', e.message, { cause: e, details: e.details });
    throw e;
  }
}

export interface BacktestScope {
  since: string | null;
  until: string | null;
  /** null: every agent. */
  agents: string[] | null;
  /** Examples kept per transition. */
  examples: number;
}

/** Runs the backtest over the ledger's recorded calls in the scope. */
export async function backtestLedger(ledger: CallSource, policy: Policy, scope: BacktestScope): Promise<BacktestReport> {
  const bt = new Backtest(policy, { examples: scope.examples, window: { since: scope.since, until: scope.until, agents: scope.agents } });
  for (const filter of filtersFor(scope)) {
    for await (const batch of recordedCallBatches(ledger, filter)) for (const call of batch) bt.add(call);
  }
  return bt.report();
}

function filtersFor(scope: BacktestScope): CallFilter[] {
  const base: CallFilter = { ...(scope.since === null ? {} : { since: scope.since }), ...(scope.until === null ? {} : { until: scope.until }) };
  // One pass per agent: the query index answers each agent's calls directly.
  return scope.agents === null ? [base] : scope.agents.map((agent) => ({ ...base, agent }));
}

// ---------------------------------------------------------------- reading the recorded calls

export interface CallFilter {
  since?: string;
  until?: string;
  agent?: string;
}

/** What the backtest reads a ledger through: one kind's events at a time, lean (Ledger.scanKind). */
export type CallSource = Pick<Ledger, 'scanKind'>;

/**
 * How long after its tool.call a call's policy.decision may be stamped. The gateway records both in
 * the same turn (gateway/record.ts), so they are milliseconds apart; a call with no decision this
 * long after it was decided by no policy (a gateway without one, or a call the SDK recorded).
 */
export const DECISION_HORIZON_MS = 60_000;

const PAGE = 5_000;

/**
 * The tool calls in the window with the decision recorded for each, read in pages through
 * `Ledger.scanKind`: calls and decisions as two kind-filtered reads in (ts, pos) order, merged. A
 * call waits in `pending` until its decision (the first policy.decision naming it as parent; a
 * later one releasing an approved call is a person's decision, not the policy's) or until the
 * merged reading is DECISION_HORIZON_MS past it. Only what the answer reads is parsed: a call's
 * payload (its header only when the payload is gone), a decision's header (its payload only when
 * the header leaves something to it: src/policy/recorded.ts). Yields calls in batches (one per
 * page or so), so a million calls cost a few hundred awaits, not millions.
 */
export async function* recordedCallBatches(ledger: CallSource, filter: CallFilter, pageSize = PAGE): AsyncGenerator<RecordedCall[]> {
  const calls = new KindPages(ledger, { ...filter, kind: 'tool.call' }, pageSize);
  // A call just before `until` may have its decision just after it.
  const decisionUntil = filter.until === undefined ? undefined : new Date(Date.parse(filter.until) + DECISION_HORIZON_MS).toISOString();
  const decisions = new KindPages(ledger, { ...filter, kind: 'policy.decision', header: 'always', ...(decisionUntil === undefined ? {} : { until: decisionUntil }) }, pageSize);
  const pending = new Map<string, { call: RecordedCallFields; at: number }>();
  let out: RecordedCall[] = [];
  for (;;) {
    // Awaited only at a page boundary.
    if (!calls.available() || !decisions.available()) {
      if (out.length > 0) {
        yield out;
        out = [];
      }
      await Promise.all([calls.fill(), decisions.fill()]);
    }
    const c = calls.head();
    const d = decisions.head();
    if (c === undefined && d === undefined) break;
    const takeCall = c !== undefined && (d === undefined || c.ts < d.ts || (c.ts === d.ts && c.pos < d.pos));
    const e = takeCall ? calls.take() : decisions.take();
    const at = Date.parse(e.ts);
    // Calls whose decision would have come by now were decided by no policy.
    if (pending.size > 0) {
      for (const [id, p] of pending) {
        if (p.at >= at - DECISION_HORIZON_MS) break;
        pending.delete(id);
        out.push({ ...p.call, recorded: undefined });
      }
    }
    if (takeCall) {
      const call = callOfTexts(e);
      if (call !== undefined) pending.set(call.id, { call, at });
    } else if (pending.size > 0) {
      // A decision is read only when a call waits for one: the header says which call it decides.
      const header = parseStored(e, e.header!) as DecisionHeader | null;
      const parent = header?.parent;
      const p = parent === undefined ? undefined : pending.get(parent);
      if (p !== undefined) {
        pending.delete(parent!);
        out.push({ ...p.call, recorded: decisionOfTexts(e.id, header!, e.data) });
      }
    }
  }
  for (const p of pending.values()) out.push({ ...p.call, recorded: undefined });
  if (out.length > 0) yield out;
}

/** The same calls one at a time. */
export async function* recordedCalls(ledger: CallSource, filter: CallFilter, pageSize = PAGE): AsyncGenerator<RecordedCall> {
  for await (const batch of recordedCallBatches(ledger, filter, pageSize)) yield* batch;
}

/** One kind's rows read page by page: the rows of the current page, and the next page when asked. */
class KindPages {
  private page: KindScanRow[] = [];
  private i = 0;
  private done = false;

  constructor(
    private readonly ledger: CallSource,
    private readonly request: KindScanRequest,
    private readonly size: number,
  ) {}

  available(): boolean {
    return this.i < this.page.length || this.done;
  }

  /** Reads pages until one has a row left, or the rows are done. */
  async fill(): Promise<void> {
    while (this.i >= this.page.length && !this.done) {
      const last = this.page[this.page.length - 1];
      const page = await this.ledger.scanKind({ ...this.request, limit: this.size, ...(last === undefined ? {} : { after: { ts: last.ts, pos: last.pos } }) });
      if (page.length < this.size) this.done = true;
      this.page = page;
      this.i = 0;
    }
  }

  head(): KindScanRow | undefined {
    return this.page[this.i];
  }

  take(): KindScanRow {
    return this.page[this.i++]!;
  }
}

// ---------------------------------------------------------------- printing

function printReport(io: Io, r: BacktestReport, policy: Policy): void {
  const window = `${r.window.since === null ? 'from the start' : `since ${r.window.since}`}${r.window.until === null ? '' : ` until ${r.window.until}`}`;
  const who = r.window.agents === null ? 'all agents' : `agents ${r.window.agents.map((a) => inert(a)).join(', ')}`;
  io.out(`Backtest of ${inert(r.policy.source)} (sha256 ${r.policy.sha256.slice(0, 16)}…, ${r.policy.rules} rule(s), default ${r.policy.default}${r.policy.mode === 'shadow' ? ', shadow mode' : ''})`);
  io.out(`on ${r.total} recorded tool call(s), ${window}, ${who}.`);
  io.out('');
  const rows: Array<[string, number, string]> = [];
  const by = Object.entries(r.unchanged.by_decision)
    .map(([d, n]) => `${d === 'none' ? 'no policy' : d} ${n}`)
    .join(', ');
  rows.push(['unchanged', r.unchanged.count, by === '' ? '' : `(${by})`]);
  for (const t of r.changed.transitions) rows.push([`${t.from === 'none' ? 'no policy' : t.from} → ${t.to}`, t.count, '']);
  rows.push(['not assessable', r.not_assessable.count, r.not_assessable.count === 0 ? '' : '(the record lacks what the policy tests)']);
  if (r.halted > 0) rows.push(['halted', r.halted, '(refused by the stop button, whatever the policy)']);
  rows.push(['total', r.total, r.changed.count === 0 ? 'no decision would change' : `${r.changed.count} decision(s) would change`]);
  const width = Math.max(...rows.map(([l]) => l.length));
  const nwidth = Math.max(...rows.map(([, n]) => String(n).length));
  for (const [label, n, note] of rows) io.out(`  ${label.padEnd(width)}  ${String(n).padStart(nwidth)}  ${note}`.trimEnd());
  for (const t of r.changed.transitions) {
    if (t.examples.length === 0) continue;
    io.out('');
    io.out(`${t.from === 'none' ? 'no policy' : t.from} → ${t.to} (${t.count}${t.count > t.examples.length ? `, first ${t.examples.length} shown` : ''}):`);
    for (const e of t.examples) printExample(io, e);
  }
  if (r.not_assessable.examples.length > 0) {
    io.out('');
    io.out(`not assessable (${r.not_assessable.count}${r.not_assessable.count > r.not_assessable.examples.length ? `, first ${r.not_assessable.examples.length} shown` : ''}):`);
    for (const e of r.not_assessable.examples) printExample(io, e);
  }
  if (r.recorded_versions.length > 0) {
    io.out('');
    const same = r.recorded_versions.find((v) => v.version === policy.sha256);
    io.out(
      `Recorded decisions came from ${r.recorded_versions.length} policy version(s)${same === undefined ? '' : `, ${same.calls} call(s) from this very file`}: ${r.recorded_versions
        .slice(0, 5)
        .map((v) => `${inert(v.version).slice(0, 12)}… (${v.calls})`)
        .join(', ')}${r.recorded_versions.length > 5 ? ', …' : ''}.`,
    );
  }
}

function printExample(io: Io, e: BacktestExample): void {
  const target = `${e.server === null ? '?' : e.server === '' ? '' : `${inert(e.server)}/`}${e.tool === null ? '?' : inert(e.tool)}`;
  const was = `was ${e.recorded.decision === 'none' ? 'not decided by a policy' : `${e.recorded.decision}${e.recorded.rule === undefined ? '' : ` (${inert(e.recorded.rule)})`}`}`;
  io.out(`  ${e.id}  ${e.ts}  ${inert(e.agent)}  ${target}  ${was}`);
  io.out(`      ${inert(e.why)}`);
}
