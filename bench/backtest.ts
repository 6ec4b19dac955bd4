/**
 * Benchmark 12 — policy backtesting (`witness policy test`, issue 15): a candidate policy replayed
 * over 1,000,000 recorded tool calls, each with the policy.decision the gateway recorded for it,
 * read exactly as the command reads them (`Ledger.scanKind`: two kind-filtered lean reads,
 * merged, texts parsed only where the answer reads them). Three sides, interleaved: the backtest;
 * the same reading without evaluating anything (what deciding adds to reading); and the backtest
 * as it read before, through `ledger.query` pages of whole stored events (what the lean read saves).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DECISION_HORIZON_MS, backtestLedger, recordedCallBatches } from '../src/cli/commands/policy.js';
import type { StoredEvent } from '../src/core/index.js';
import { Backtest, callOf, decisionOf, evaluate, parsePolicy, type Policy, type RecordedCall, type RecordedCallFields } from '../src/policy/index.js';
import { SqliteLedger, type AppendRequest, type LedgerReader } from '../src/store/index.js';
import { indexTail } from '../src/store/sqlite/indexer.js';
import type { Config } from './config.js';
import { fakeUuid } from './events.js';
import { benchDir, fileBytes, fmtInt, fmtMiB, gc, hexOf, log, mdTable, median, pick, randInt, rng, type Section } from './util.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The policies are the reference test's too (test/policy/backtest-reference.test.ts): one copy of each. */
const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'backtest');
/** What the gateway enforced while the calls were recorded. */
const RECORDED_POLICY = fs.readFileSync(path.join(FIXTURES, 'recorded.yaml'), 'utf8');
/** The stricter candidate: lower review threshold, a deny band, role changes and record edits held, a server rule, a redacted-argument rule. */
const CANDIDATE = fs.readFileSync(path.join(FIXTURES, 'candidate.yaml'), 'utf8');

const TOOLS = ['billing.refund', 'crm.lookup', 'crm.update', 'iam.set_role', 'records.fix_field', 'kb.search', 'db.connect'] as const;
const SERVERS = ['backoffice', 'prod-eu', 'prod-us', 'staging'];
const REASONS = [
  'Duplicate charge on the March invoice.',
  'Customer asked for a goodwill credit after a late delivery.',
  'Least privilege for the new support hire.',
  'Month and day swapped at intake.',
];

function argsFor(r: () => number, tool: (typeof TOOLS)[number]): Record<string, unknown> {
  switch (tool) {
    case 'billing.refund':
      return { customer_id: `cus_${hexOf(r, 14)}`, amount: randInt(r, 5, 9_000), currency: 'USD', reason: pick(r, REASONS) };
    case 'iam.set_role':
      return { user_id: `u-${randInt(r, 1, 5000)}`, role: pick(r, ['admin', 'billing-viewer', 'support']), reason: pick(r, REASONS) };
    case 'records.fix_field':
      return { record_id: `R-${randInt(r, 1, 99_999)}`, field: 'date_of_birth', value: '1984-03-13', reason: pick(r, REASONS) };
    case 'db.connect':
      // Stored as the recorder stores it: the password redacted at write time.
      return { host: `db-${randInt(r, 1, 9)}`, password: '[REDACTED:key]' };
    default:
      return { customer_id: `cus_${hexOf(r, 14)}`, query: pick(r, REASONS) };
  }
}

/**
 * `calls` tool.call events, each followed by its policy.decision (decided by RECORDED_POLICY with
 * the gateway's `evaluate`), as the gateway records them: 2 × calls events over 2,000 sessions of
 * 100 agents, ts rising evenly over 30 days. Indexed for queries as the sealer would.
 */
export async function buildLedger(file: string, calls: number): Promise<number> {
  const recorded = parsePolicy(RECORDED_POLICY, { source: 'recorded.yaml' });
  const r = rng(12);
  const streams = Array.from({ length: 2000 }, () => fakeUuid(r));
  const start = Date.now() - 30 * 86_400_000;
  const ledger = SqliteLedger.open({ path: file });
  const t0 = performance.now();
  const BATCH = 5_000;
  for (let i = 0; i < calls;) {
    const batch: AppendRequest[] = [];
    for (const end = Math.min(calls, i + BATCH / 2); i < end; i++) {
      const s = i % streams.length;
      const tool = TOOLS[Math.floor(r() * TOOLS.length)]!;
      const server = SERVERS[Math.floor(r() * SERVERS.length)]!;
      const args = argsFor(r, tool);
      const agent = { id: `agent-${s % 100}` };
      const ts = new Date(start + Math.floor((i * 30 * 86_400_000) / calls)).toISOString();
      const id = fakeUuid(r);
      const e = evaluate(recorded, { agent: agent.id, server, tool, args });
      const head = { stream: streams[s]!, ts, agent, recorder: { kind: 'gateway' as const, version: '0.1.0' }, resource: server, action: tool };
      batch.push({ ...head, id, kind: 'tool.call', outcome: 'pending', data: { tool, server, arguments: args, jsonrpc_id: i } });
      batch.push({
        ...head,
        kind: 'policy.decision',
        parent: id,
        outcome: e.decision === 'deny' ? 'denied' : e.decision === 'review' ? 'pending' : 'success',
        policy: { decision: e.decision, ...(e.rule === undefined ? {} : { rule: e.rule }), version: e.policyVersion, mode: 'enforce' },
        data: { decision: e.decision, ...(e.rule === undefined ? {} : { rule: e.rule }), mode: 'enforce', policy_version: e.policyVersion, tool },
      });
    }
    ledger.appendPreparedSync(ledger.prepare(batch));
    if (i % 100_000 === 0) log(`backtest: ${fmtInt(i)} / ${fmtInt(calls)} calls recorded`);
  }
  indexTail(ledger.database);
  ledger.database.pragma('wal_checkpoint(TRUNCATE)');
  await ledger.close();
  return (performance.now() - t0) / 1000;
}

interface Run {
  ms: number;
  calls: number;
  peakHeapMiB: number;
}

/** Times `fn` while sampling the heap, so a run that held the calls in memory would show. */
async function timed(fn: () => Promise<number>): Promise<Run> {
  gc();
  const base = process.memoryUsage().heapUsed;
  let peak = base;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().heapUsed)), 50);
  const t0 = performance.now();
  const calls = await fn();
  const ms = performance.now() - t0;
  clearInterval(timer);
  peak = Math.max(peak, process.memoryUsage().heapUsed);
  return { ms, calls, peakHeapMiB: (peak - base) / 1024 ** 2 };
}

/**
 * The heap the backtest keeps, as opposed to garbage not yet collected: a full GC every `every`
 * calls, the heap measured after it. Flat as the calls go by when nothing is held per call.
 */
export async function retainedHeap(ledger: SqliteLedger, candidate: Policy, every: number): Promise<{ samples: number; firstMiB: number; maxMiB: number; lastMiB: number }> {
  gc();
  const base = process.memoryUsage().heapUsed;
  const bt = new Backtest(candidate, { examples: 5 });
  let n = 0;
  let next = every;
  let maxMiB = 0;
  let lastMiB = 0;
  let firstMiB = 0;
  let samples = 0;
  for await (const batch of recordedCallBatches(ledger, {})) {
    for (const c of batch) bt.add(c);
    n += batch.length;
    if (n >= next) {
      gc();
      lastMiB = (process.memoryUsage().heapUsed - base) / 1024 ** 2;
      maxMiB = Math.max(maxMiB, lastMiB);
      if (samples === 0) firstMiB = lastMiB;
      samples++;
      next += every;
    }
  }
  return { samples, firstMiB, maxMiB, lastMiB };
}

/**
 * The reading the backtest did before `Ledger.scanKind`, kept as this benchmark's yardstick: the
 * same two reads and merge, through `ledger.query` pages of whole stored events (every header
 * and payload parsed, salt and hash converted), with `callOf` / `decisionOf` on each.
 */
async function* queryCallBatches(ledger: LedgerReader): AsyncGenerator<RecordedCall[]> {
  const pages = (kind: string) => {
    let page: Array<StoredEvent & { pos: number }> = [];
    let i = 0;
    let cursor: string | undefined;
    let done = false;
    return {
      head: () => page[i],
      take: () => page[i++]!,
      ready: () => i < page.length || done,
      fill: async () => {
        while (i >= page.length && !done) {
          const p = await ledger.query({ kind, limit: 5_000, ...(cursor === undefined ? {} : { cursor }) });
          page = p.events;
          i = 0;
          cursor = p.next;
          done = p.next === undefined;
        }
      },
    };
  };
  const calls = pages('tool.call');
  const decisions = pages('policy.decision');
  const pending = new Map<string, { call: RecordedCallFields; at: number }>();
  let out: RecordedCall[] = [];
  for (;;) {
    if (!calls.ready() || !decisions.ready()) {
      if (out.length > 0) yield out;
      out = [];
      await Promise.all([calls.fill(), decisions.fill()]);
    }
    const c = calls.head();
    const d = decisions.head();
    if (c === undefined && d === undefined) break;
    const takeCall = c !== undefined && (d === undefined || c.ts < d.ts || (c.ts === d.ts && c.pos < d.pos));
    const e = takeCall ? calls.take() : decisions.take();
    const at = Date.parse(e.ts);
    for (const [id, p] of pending) {
      if (p.at >= at - DECISION_HORIZON_MS) break;
      pending.delete(id);
      out.push({ ...p.call, recorded: undefined });
    }
    if (takeCall) {
      const call = callOf(e);
      if (call !== undefined) pending.set(call.id, { call, at });
    } else if (e.parent !== undefined && pending.has(e.parent)) {
      out.push({ ...pending.get(e.parent)!.call, recorded: decisionOf(e) });
      pending.delete(e.parent);
    }
  }
  for (const p of pending.values()) out.push({ ...p.call, recorded: undefined });
  if (out.length > 0) yield out;
}

export async function benchBacktest(cfg: Config): Promise<Section> {
  const calls = cfg.quick ? 50_000 : 1_000_000;
  const reps = cfg.quick ? 3 : Math.min(cfg.reps, 3);
  const file = path.join(benchDir(), `backtest-${calls}.db`);
  log(`backtest: recording ${fmtInt(calls)} calls and their decisions at ${file}`);
  const buildSeconds = await buildLedger(file, calls);
  const candidate: Policy = parsePolicy(CANDIDATE, { source: 'candidate.yaml' });
  const ledger = SqliteLedger.open({ path: file, create: false, readonly: true });
  const scan: Run[] = [];
  const test: Run[] = [];
  const before: Run[] = [];
  let report: Awaited<ReturnType<typeof backtestLedger>> | undefined;
  let beforeReport: ReturnType<Backtest['report']> | undefined;
  let retained: Awaited<ReturnType<typeof retainedHeap>> | undefined;
  try {
    for (let rep = 0; rep < reps; rep++) {
      // Interleaved, so every side meets the same machine load.
      scan.push(
        await timed(async () => {
          let n = 0;
          for await (const batch of recordedCallBatches(ledger, {})) for (const c of batch) if (c.recorded !== undefined) n++;
          return n;
        }),
      );
      test.push(
        await timed(async () => {
          report = await backtestLedger(ledger, candidate, { since: null, until: null, agents: null, examples: 5 });
          return report.total;
        }),
      );
      before.push(
        await timed(async () => {
          const bt = new Backtest(candidate, { examples: 5 });
          for await (const batch of queryCallBatches(ledger)) for (const c of batch) bt.add(c);
          beforeReport = bt.report();
          return beforeReport.total;
        }),
      );
      log(`backtest: rep ${rep + 1}/${reps}: scan ${(scan[rep]!.ms / 1000).toFixed(1)} s, backtest ${(test[rep]!.ms / 1000).toFixed(1)} s, through query ${(before[rep]!.ms / 1000).toFixed(1)} s`);
    }
    retained = await retainedHeap(ledger, candidate, calls / 20);
  } finally {
    await ledger.close();
  }
  const bytes = fileBytes(file);
  fs.rmSync(file, { force: true });
  for (const suffix of ['-wal', '-shm']) fs.rmSync(file + suffix, { force: true });
  const r = report!;
  const kept = retained!;
  // The lean read must give the answer the whole-event read gave, count for count and example for example.
  if (JSON.stringify(beforeReport) !== JSON.stringify(report)) throw new Error('the backtest through scanKind and through query disagree');
  if (scan.some((s) => s.calls !== calls) || test.some((t) => t.calls !== calls))
    throw new Error(`expected ${calls} calls with decisions, read ${scan.map((s) => s.calls).join(', ')} / ${test.map((t) => t.calls).join(', ')}`);
  const scanMs = median(scan.map((s) => s.ms));
  const testMs = median(test.map((t) => t.ms));
  const beforeMs = median(before.map((t) => t.ms));
  const row = (name: string, runs: Run[], ms: number) => [name, `${(ms / 1000).toFixed(2)} s`, fmtInt((calls / ms) * 1000), `${Math.max(...runs.map((x) => x.peakHeapMiB)).toFixed(0)} MiB`];
  const transitions = r.changed.transitions.map((t) => `${t.from}→${t.to} ${fmtInt(t.count)}`).join(', ');
  return {
    id: 'backtest',
    title: '12. Policy backtest over recorded calls',
    method: [
      `A SQLite ledger of ${fmtInt(calls)} tool.call events, each followed by the policy.decision the gateway would have recorded (${fmtInt(calls * 2)} events, ${fmtMiB(bytes)} MiB, 2,000 sessions of 100 agents over 30 days, 7 tools on 4 servers; db.connect calls carry a redacted password; recorded in ${buildSeconds.toFixed(1)} s, unsealed, query index built). The candidate policy (\`test/fixtures/backtest/candidate.yaml\`) has 7 rules (argument conditions, tool and server globs, one rule on a redacted argument). **Backtest**: \`backtestLedger\`, what \`witness policy test\` runs: tool calls and decisions read through \`Ledger.scanKind\` (5,000 rows per page; no salt or hash; a call's payload parsed, its header only when the payload is gone; a decision's header parsed, its payload only when the header leaves something to it), merged, each call joined to its decision, decided by \`evaluate\` and counted, 5 examples per transition. **Scan (baseline)**: the same reading and join, no evaluation. **Through \`ledger.query\`**: the backtest as it read before \`scanKind\` (whole stored events, 5,000 a page), which must give the same report. Median of ${reps} interleaved repetitions; peak heap growth sampled every 50 ms (garbage not yet collected included). Then one more backtest, untimed, with a full GC every ${fmtInt(calls / 20)} calls and the heap measured after it: what the backtest keeps.`,
    ],
    body: [
      mdTable(
        ['side', 'time (median)', 'calls/s', 'peak heap growth'],
        [
          row('scan (read + join, no evaluation)', scan, scanMs),
          row('backtest (read + join + evaluate + count)', test, testMs),
          row('backtest reading through `ledger.query` (before scanKind)', before, beforeMs),
        ],
      ),
      `Backtest / scan: **${(testMs / scanMs).toFixed(2)}×**. Through \`ledger.query\` / through \`scanKind\`: **${(beforeMs / testMs).toFixed(2)}×** (the same report, checked). Load average (1 min) at the end: ${os.loadavg()[0]!.toFixed(2)} on ${os.cpus().length} CPUs. Heap kept (after a full GC, ${kept.samples} samples over the run): ${kept.firstMiB.toFixed(1)} MiB after the first ${fmtInt(calls / 20)} calls, ${kept.lastMiB.toFixed(1)} MiB after the last, at most ${kept.maxMiB.toFixed(1)} MiB (the pages in hand, the counts and the examples; nothing per call). Result: ${fmtInt(r.unchanged.count)} unchanged, ${fmtInt(r.changed.count)} changed (${transitions}), ${fmtInt(r.not_assessable.count)} not assessable (the redacted password).`,
    ],
    verdicts: [],
  };
}
