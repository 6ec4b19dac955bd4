import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { v7 as uuidv7 } from 'uuid';
import { describe, expect, it } from 'vitest';
import { backtestLedger, recordedCallBatches } from '../../src/cli/commands/policy.js';
import { Backtest, evaluate, type BacktestReport, type Effect, type Policy } from '../../src/policy/index.js';
import { openLedger, type AppendRequest, type Ledger } from '../../src/store/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import { testSchemas } from '../store/postgres-driver.js';
import { loadText } from './files.js';

/**
 * The backtest's fast path (Ledger.scanKind, two kind-filtered reads merged, texts parsed only
 * where the answer reads them) against a brute-force reference: every event read raw and parsed
 * whole, every call joined to its first decision by hand, every call decided by `evaluate`
 * directly. A generated ledger of a few thousand calls from several agents in interleaved
 * sessions: gateway calls with their recorded decisions, SDK calls nobody decided, requests that
 * are not tools/call, halted agents, approvals released by a second decision, and a redacted
 * argument that one rule reads (not assessable) and another that no rule reads (assessed).
 */

const dir = tempDir('witness-backtest-reference-');

/** The benchmark's policies (bench/backtest.ts): what the gateway enforced, and the stricter candidate. */
const FIXTURES = fileURLToPath(new URL('../fixtures/backtest/', import.meta.url));
const RECORDED = fs.readFileSync(path.join(FIXTURES, 'recorded.yaml'), 'utf8');
const CANDIDATE = fs.readFileSync(path.join(FIXTURES, 'candidate.yaml'), 'utf8');

const TOOLS = ['billing.refund', 'iam.set_role', 'crm.lookup', 'crm.update', 'kb.search', 'records.fix_field', 'db.connect'] as const;
const SERVERS = ['backoffice', 'prod-eu', 'prod-us', 'staging'];
const AGENTS = ['bot-0', 'bot-1', 'bot-2', 'bot-3', 'bot-4'];
const START = Date.UTC(2026, 10, 2, 9, 0, 0);

/** A small deterministic generator, so a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function argsFor(r: () => number, tool: (typeof TOOLS)[number]): Record<string, unknown> {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  switch (tool) {
    case 'billing.refund':
      return { customer_id: `C-${Math.floor(r() * 900)}`, amount: Math.floor(r() * 9000), currency: pick(['USD', 'EUR']) };
    case 'iam.set_role':
      return { user_id: pick(['u-1', 'u-2', 'svc-9']), role: pick(['admin', 'support', 'viewer']) };
    case 'records.fix_field':
      return { record_id: `R-${Math.floor(r() * 900)}`, field: 'date_of_birth', value: '1984-03-13' };
    case 'db.connect':
      // As the recorder stores it: the password redacted at write time. A rule reads it.
      return { host: 'db-1', password: '[REDACTED:key]' };
    case 'crm.lookup':
      // Redacted too, but no rule reads it: still decided exactly.
      return { customer_id: `C-${Math.floor(r() * 900)}`, api_key: '[REDACTED:key]' };
    default:
      return { customer_id: `C-${Math.floor(r() * 900)}`, note: pick(['x', 'y']) };
  }
}

/**
 * `calls` recorded requests over ~`calls` seconds, with their decisions a few hundred ms later
 * (so a decision often comes after other sessions' calls), as one list in (ts) order.
 */
function generate(calls: number, recorded: Policy): AppendRequest[] {
  const r = rng(15);
  const events: Array<{ at: number; order: number; event: AppendRequest }> = [];
  const streams = Array.from({ length: 40 }, (_, i) => `reference-session-${i}`);
  let order = 0;
  const push = (at: number, event: AppendRequest) => events.push({ at, order: order++, event });
  for (let i = 0; i < calls; i++) {
    const s = Math.floor(r() * streams.length);
    const agent = { id: AGENTS[s % AGENTS.length]! };
    const tool = TOOLS[Math.floor(r() * TOOLS.length)]!;
    const server = SERVERS[Math.floor(r() * SERVERS.length)]!;
    const args = argsFor(r, tool);
    const at = START + i * 1000 + Math.floor(r() * 500);
    const id = uuidv7();
    const head = { stream: streams[s]!, agent, resource: server, action: tool };
    const roll = r();
    if (roll < 0.06) {
      // The SDK recorded it: no policy decided it.
      push(at, { ...head, id, ts: iso(at), kind: 'tool.call', recorder: { kind: 'sdk' }, outcome: 'success', data: { tool, arguments: args } } as AppendRequest);
      continue;
    }
    if (roll < 0.1) {
      // Not a tools/call: no policy decides a resource read.
      push(at, {
        ...head,
        id,
        ts: iso(at),
        kind: 'tool.call',
        recorder: { kind: 'gateway' },
        action: 'resources/read',
        outcome: 'success',
        data: { tool: 'resources/read', method: 'resources/read', target: 'file:///x', server, arguments: { uri: 'file:///x' } },
      } as AppendRequest);
      continue;
    }
    push(at, { ...head, id, ts: iso(at), kind: 'tool.call', recorder: { kind: 'gateway' }, outcome: 'pending', data: { tool, server, arguments: args, jsonrpc_id: i } } as AppendRequest);
    const dAt = at + 1 + Math.floor(r() * 400);
    const decision = (d: Effect, extra: Record<string, unknown> = {}) =>
      ({
        ...head,
        ts: iso(dAt),
        kind: 'policy.decision',
        recorder: { kind: 'gateway' },
        parent: id,
        outcome: d === 'deny' ? 'denied' : d === 'review' ? 'pending' : 'success',
        ...extra,
      }) as AppendRequest;
    if (roll < 0.13) {
      // Halted: said by the header's reason code, or (as some records have it) by the payload alone.
      const code = roll < 0.115 ? { reason_code: 'halted' } : {};
      push(
        dAt,
        decision('deny', { policy: { decision: 'deny', ...code, mode: 'enforce' }, data: { decision: 'deny', reason: 'halted', tool, halt: { id, actor: 'alice', reason: 'loop', ts: iso(dAt) } } }),
      );
      continue;
    }
    const e = evaluate(recorded, { agent: agent.id, server, tool, args });
    const rule = e.rule === undefined ? {} : { rule: e.rule };
    // Some headers leave the policy version (and the mode) to the payload.
    const inHeader = roll < 0.8 ? { version: e.policyVersion, mode: 'enforce' } : {};
    push(dAt, decision(e.decision, { policy: { decision: e.decision, ...rule, ...inHeader }, data: { decision: e.decision, ...rule, mode: 'enforce', policy_version: e.policyVersion, tool } }));
    if (e.decision === 'review') {
      // A person released it later: a second decision, which is not the policy's.
      push(dAt + 700, decision('allow', { policy: { decision: 'allow', mode: 'enforce' }, data: { decision: 'allow', tool } }));
    }
  }
  return events.sort((a, b) => a.at - b.at || a.order - b.order).map((x) => x.event);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

async function record(l: Ledger, events: AppendRequest[], sealAt?: number): Promise<void> {
  for (let i = 0; i < events.length; i += 500) {
    await l.append(events.slice(i, i + 500));
    // Sealed part way: on SQLite the query index then covers the first part, and the rest is its tail.
    if (sealAt !== undefined && i + 500 >= sealAt && i < sealAt) await l.seal();
  }
}

interface Expected {
  total: number;
  transitions: Record<string, string[]>;
  unchanged: Record<string, number>;
  notAssessable: string[];
  halted: number;
  /** Calls per policy version that decided them. */
  versions: Record<string, number>;
}

/** The brute force: every event read raw and parsed whole; calls joined by hand; every assessable call decided by `evaluate`. */
async function reference(l: Ledger, candidate: Policy, scope: { since?: string; until?: string; agents?: string[] }): Promise<Expected> {
  const events: Array<Record<string, unknown> & { pos: number }> = [];
  for await (const page of l.scan())
    for (const row of page) events.push({ ...(JSON.parse(row.header) as Record<string, unknown>), data: row.data === null ? null : JSON.parse(row.data), pos: row.pos });
  events.sort((a, b) => ((a['ts'] as string) < (b['ts'] as string) ? -1 : (a['ts'] as string) > (b['ts'] as string) ? 1 : a.pos - b.pos));
  const first = new Map<string, Record<string, unknown>>();
  for (const e of events) if (e['kind'] === 'policy.decision' && !first.has(e['parent'] as string)) first.set(e['parent'] as string, e);
  const out: Expected = { total: 0, transitions: {}, unchanged: {}, notAssessable: [], halted: 0, versions: {} };
  for (const e of events) {
    const data = e['data'] as Record<string, unknown>;
    const agent = (e['agent'] as { id: string }).id;
    const ts = e['ts'] as string;
    if (e['kind'] !== 'tool.call' || typeof data['method'] === 'string') continue;
    if ((scope.since !== undefined && ts < scope.since) || (scope.until !== undefined && ts >= scope.until)) continue;
    if (scope.agents !== undefined && !scope.agents.includes(agent)) continue;
    out.total++;
    const d = first.get(e['id'] as string);
    const policy = d?.['policy'] as { decision: Effect; reason_code?: string; version?: string } | undefined;
    const dData = (d?.['data'] ?? {}) as Record<string, unknown>;
    const version = policy?.version ?? (dData['policy_version'] as string | undefined);
    if (version !== undefined) out.versions[version] = (out.versions[version] ?? 0) + 1;
    if (policy?.reason_code === 'halted' || (dData['reason'] === 'halted' && dData['halt'] !== undefined)) {
      out.halted++;
      continue;
    }
    if (data['tool'] === 'db.connect') {
      out.notAssessable.push(e['id'] as string);
      continue;
    }
    const from = policy?.decision ?? 'none';
    const to = evaluate(candidate, { agent, server: typeof data['server'] === 'string' ? data['server'] : '', tool: data['tool'] as string, args: data['arguments'] }).decision;
    if (from === 'none' ? to === 'allow' : to === from) out.unchanged[from] = (out.unchanged[from] ?? 0) + 1;
    else (out.transitions[`${from}>${to}`] ??= []).push(e['id'] as string);
  }
  return out;
}

function observed(r: BacktestReport): Expected {
  return {
    total: r.total,
    transitions: Object.fromEntries(r.changed.transitions.map((t) => [`${t.from}>${t.to}`, t.examples.map((e) => e.id)])),
    unchanged: r.unchanged.by_decision as Record<string, number>,
    notAssessable: r.not_assessable.examples.map((e) => e.id),
    halted: r.halted,
    versions: Object.fromEntries(r.recorded_versions.map((v) => [v.version, v.calls])),
  };
}

const sorted = (x: Expected): Expected => ({
  ...x,
  transitions: Object.fromEntries(Object.entries(x.transitions).map(([k, v]) => [k, [...v].sort()])),
  notAssessable: [...x.notAssessable].sort(),
});

const CALLS = 3000;
const ALL = 1_000_000;

async function agreeOn(l: Ledger): Promise<void> {
  const candidate = loadText(dir, CANDIDATE);
  const mid = { since: iso(START + 700_000), until: iso(START + 2_100_000) };
  for (const scope of [{}, mid, { agents: ['bot-1', 'bot-3'] }, { ...mid, agents: ['bot-3'] }] as Array<{ since?: string; until?: string; agents?: string[] }>) {
    const want = sorted(await reference(l, candidate, scope));
    const report = await backtestLedger(l, candidate, { since: scope.since ?? null, until: scope.until ?? null, agents: scope.agents ?? null, examples: ALL });
    expect(sorted(observed(report)), JSON.stringify(scope)).toEqual(want);
    // Every kind of answer is in the population, so agreement means something.
    if (Object.keys(scope).length === 0) {
      expect(want.total).toBeGreaterThan(CALLS * 0.85);
      expect(want.halted).toBeGreaterThan(0);
      expect(want.notAssessable.length).toBeGreaterThan(0);
      expect(want.unchanged['none']).toBeGreaterThan(0);
      expect(Object.keys(want.transitions).sort()).toEqual(expect.arrayContaining(['allow>deny', 'allow>review', 'none>deny', 'none>review', 'review>deny']));
      expect(Object.keys(want.unchanged).sort()).toEqual(['allow', 'deny', 'none', 'review']);
      expect(Object.values(want.versions)).toHaveLength(1);
    }
  }
  // Pages of a few rows, so every page boundary falls between a call and its decision somewhere.
  const bt = new Backtest(candidate, { examples: ALL });
  for await (const batch of recordedCallBatches(l, {}, 7)) for (const c of batch) bt.add(c);
  expect(sorted(observed(bt.report()))).toEqual(sorted(await reference(l, candidate, {})));
}

describe('the backtest agrees with a brute-force reference', () => {
  const recorded = loadText(dir, RECORDED);
  const events = generate(CALLS, recorded);

  it('on SQLite, across the query index and its unindexed tail [R-POLICY-BACKTEST]', async () => {
    const l = await openLedger(`sqlite:${tempDb(dir)}`);
    try {
      await record(l, events, Math.floor(events.length / 2));
      await agreeOn(l);
    } finally {
      await l.close();
    }
  }, 120_000);

  describe('on PostgreSQL', () => {
    const pg = testSchemas('wt_backtest_ref');
    it('through the PostgreSQL driver [R-POLICY-BACKTEST]', async () => {
      const { l } = await pg.fresh();
      try {
        await record(l, events);
        await agreeOn(l);
      } finally {
        await l.close();
      }
    }, 120_000);
  });
});
