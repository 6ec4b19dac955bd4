import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openWitness } from '../../src/index.js';
import type { EventInput, StoredEvent } from '../../src/core/index.js';
import { BacktestReport } from '../../src/policy/index.js';
import { SqliteLedger } from '../../src/store/index.js';
import { BIN, REPO_ROOT, oneSentence, readEvents, runCli, tamper } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { testSchemas } from '../store/postgres-driver.js';

/**
 * `witness policy test` on the demo's ledger (the real `witness demo`: its gateway, its policy and
 * its six calls), plus what a real ledger also holds: a call from 40 days ago, a call the SDK
 * recorded with a secret argument (stored redacted), and a call whose payload is gone. Which calls
 * a stricter policy changes is derived here from the stored events by hand, not by `evaluate`.
 * The demo spawns `witness proxy` from dist/: run `npm run build` first.
 */

const dir = tempDir('witness-policy-test-');
const demoDir = path.join(dir, 'demo');
const db = path.join(demoDir, 'witness.db');
const store = `sqlite:${db}`;
const DAY = 86_400_000;

const STRICT = `version: 1
default: allow
rules:
  - id: refunds-over-100
    match: { tool: billing.refund }
    when: "args.amount > 100"
    effect: review
    reason: Refunds over $100 need a billing supervisor.
  - id: refunds-over-1000
    match: { tool: billing.refund }
    when: "args.amount > 1000"
    effect: deny
    reason: Refunds over $1000 go to finance.
  - id: no-role-changes
    match: { tool: iam.set_role }
    effect: deny
    reason: Agents may not change roles at all.
  - id: records-need-review
    match: { tool: records.* }
    effect: review
  - id: no-default-db-password
    match: { tool: db.connect }
    when: args.password == "postgres"
    effect: deny
`;

/** What STRICT decides, written out by hand from its rules. */
function strictDecision(tool: string, args: Record<string, unknown>): string {
  if (tool === 'billing.refund') return (args['amount'] as number) > 1000 ? 'deny' : (args['amount'] as number) > 100 ? 'review' : 'allow';
  if (tool === 'iam.set_role') return 'deny';
  if (tool.startsWith('records.')) return 'review';
  return 'allow';
}

let strictFile: string;
let ids: { old: string; secret: string; purged: string; halted: string };

function runDemo(): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, 'demo', '--dir', demoDir], { cwd: REPO_ROOT, timeout: 180_000, env: { ...process.env, WITNESS_STORE: '' } }, (err, _out, stderr) =>
      err === null ? resolve() : reject(new Error(`witness demo failed: ${stderr}`)),
    );
  });
}

beforeAll(async () => {
  await runDemo();
  strictFile = path.join(dir, 'strict.yaml');
  fs.writeFileSync(strictFile, STRICT);
  // A refund the gateway allowed 40 days ago (outside --since 30d), recorded as the gateway records one.
  const ledger = SqliteLedger.open({ path: db, create: false });
  const oldTs = new Date(Date.now() - 40 * DAY).toISOString();
  try {
    const [call] = await ledger.append([
      {
        stream: 'old-gateway-session',
        ts: oldTs,
        kind: 'tool.call',
        agent: { id: 'support-bot' },
        recorder: { kind: 'gateway' },
        resource: 'backoffice',
        action: 'billing.refund',
        outcome: 'pending',
        data: { tool: 'billing.refund', server: 'backoffice', arguments: { customer_id: 'C-7', amount: 5000 } },
      },
    ]);
    await ledger.append([
      {
        stream: 'old-gateway-session',
        ts: oldTs,
        kind: 'policy.decision',
        agent: { id: 'support-bot' },
        recorder: { kind: 'gateway' },
        resource: 'backoffice',
        action: 'billing.refund',
        parent: call!.id,
        outcome: 'success',
        policy: { decision: 'allow', version: 'b'.repeat(64), mode: 'enforce' },
        data: { decision: 'allow', tool: 'billing.refund', policy_version: 'b'.repeat(64), mode: 'enforce' },
      },
    ]);
    // A call of a halted agent, refused as the gateway refuses one (gateway/record.ts): a deny for reason code `halted`.
    const haltTs = new Date(Date.now() - DAY).toISOString();
    const head = { stream: 'halted-session', ts: haltTs, agent: { id: 'halted-bot' }, recorder: { kind: 'gateway' as const }, resource: 'backoffice', action: 'iam.set_role' };
    const [halted] = await ledger.append([{ ...head, kind: 'tool.call', outcome: 'pending', data: { tool: 'iam.set_role', server: 'backoffice', arguments: { user_id: 'u-1', role: 'support' } } }]);
    await ledger.append([
      {
        ...head,
        kind: 'policy.decision',
        parent: halted!.id,
        outcome: 'denied',
        policy: { decision: 'deny', reason_code: 'halted', mode: 'enforce' },
        data: { decision: 'deny', reason: 'halted', tool: 'iam.set_role', halt: { id: halted!.id, actor: 'alice', reason: 'runaway loop', ts: haltTs } },
      },
    ]);
    ids = { old: call!.id, secret: '', purged: '', halted: halted!.id };
  } finally {
    await ledger.close();
  }
  // Calls the SDK recorded for ops-bot: one with a password (stored redacted), one whose payload is then removed.
  const w = await openWitness({ store, name: 'demo', strict: true, seal: { enabled: false } });
  try {
    const s = await w.session({ agent: { id: 'ops-bot' } });
    await s.tool('db.connect', { host: 'db-1', password: 'postgres' }, () => 'connected');
    await s.tool('billing.refund', { customer_id: 'C-9', amount: 3000 }, () => 'refunded');
    await s.end();
  } finally {
    await w.close();
  }
  const ops = (await readEvents(db)).filter((e) => e.agent.id === 'ops-bot' && e.kind === 'tool.call');
  ids.secret = ops.find((e) => e.data?.['tool'] === 'db.connect')!.id;
  ids.purged = ops.find((e) => e.data?.['tool'] === 'billing.refund')!.id;
  // What a retention purge leaves: the header, without payload and salt.
  tamper(db, (d) => d.prepare('UPDATE events SET data = NULL, salt = NULL WHERE id = ?').run(ids.purged));
}, 240_000);

/** The transitions STRICT should cause, derived from the stored events: { "from>to": [ids] }. */
async function expectedChanges(since: number | undefined, agent?: string): Promise<Record<string, string[]>> {
  const events = await readEvents(db);
  const firstDecision = new Map<string, StoredEvent>();
  for (const e of events) if (e.kind === 'policy.decision' && e.parent !== undefined && !firstDecision.has(e.parent)) firstDecision.set(e.parent, e);
  const out: Record<string, string[]> = {};
  for (const e of events) {
    if (e.kind !== 'tool.call' || e.data === null || e.data['method'] !== undefined) continue;
    if (since !== undefined && Date.parse(e.ts) < since) continue;
    if (agent !== undefined && e.agent.id !== agent) continue;
    if (e.id === ids.secret || e.id === ids.halted) continue; // not assessable, halted: checked on their own
    const from = firstDecision.get(e.id)?.policy?.decision ?? 'none';
    const to = strictDecision(e.data['tool'] as string, e.data['arguments'] as Record<string, unknown>);
    if (from === 'none' ? to === 'allow' : to === from) continue;
    (out[`${from}>${to}`] ??= []).push(e.id);
  }
  for (const k of Object.keys(out)) out[k]!.sort();
  return out;
}

function changesOf(r: BacktestReport): Record<string, string[]> {
  return Object.fromEntries(r.changed.transitions.map((t) => [`${t.from}>${t.to}`, t.examples.map((e) => e.id).sort()]));
}

async function backtest(args: string[], on = store): Promise<{ code: number; report: BacktestReport; stderr: string }> {
  const r = await runCli(['policy', 'test', ...args, '--store', on, '--json', '--examples', '1000']);
  return { code: r.code, report: BacktestReport.parse(JSON.parse(r.stdout)), stderr: r.stderr };
}

describe('witness policy test', () => {
  it('lists exactly the calls of the last 30 days a stricter policy decides differently, by transition, with the rule that now decides [R-POLICY-BACKTEST]', async () => {
    const { code, report, stderr } = await backtest([strictFile, '--since', '30d']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const expected = await expectedChanges(Date.now() - 30 * DAY);
    expect(changesOf(report)).toEqual(expected);
    // The demo's own calls are in there: the $1200 refund held for review is now denied, the least-privilege role change is now denied, the record fix now held.
    const events = await readEvents(db);
    const demoCall = (tool: string, pred: (a: Record<string, unknown>) => boolean) =>
      events.find((e) => e.kind === 'tool.call' && e.recorder?.kind === 'gateway' && e.data?.['tool'] === tool && pred(e.data['arguments'] as Record<string, unknown>))!.id;
    expect(expected).toMatchObject({
      'review>deny': [demoCall('billing.refund', (a) => a['amount'] === 1200)],
      'allow>deny': [demoCall('iam.set_role', (a) => a['role'] === 'billing-viewer')],
      'allow>review': [demoCall('records.fix_field', () => true)],
    });
    const refund = report.changed.transitions.find((t) => t.from === 'review' && t.to === 'deny')!.examples[0]!;
    expect(refund).toMatchObject({
      agent: 'support-bot',
      server: 'backoffice',
      tool: 'billing.refund',
      recorded: { decision: 'review', rule: 'refunds-over-500', mode: 'enforce' },
      candidate: { decision: 'deny', rule: 'refunds-over-1000', reason: 'Refunds over $1000 go to finance.' },
      why: 'rule refunds-over-1000 (line 9, when args.amount > 1000) says deny: Refunds over $1000 go to finance.',
    });
    // The redacted password and the purged payload are not assessable, each saying why.
    expect(report.not_assessable.count).toBe(2);
    const na = Object.fromEntries(report.not_assessable.examples.map((e) => [e.id, e]));
    expect(na[ids.secret]).toMatchObject({ recorded: { decision: 'none' }, possible: ['allow', 'deny'] });
    expect(na[ids.secret]!.why).toContain('tests args.password, which the record holds redacted');
    expect(na[ids.purged]).toMatchObject({ tool: null, possible: ['allow', 'review', 'deny'] });
    expect(na[ids.purged]!.why).toContain('its payload is not in the ledger');
    // The halted agent's call is counted apart: the stop button refused it, whatever a policy says.
    expect(report.halted).toBe(1);
    // Every tool call of the window is counted once: 6 demo calls + 2 ops-bot calls + 1 halted.
    expect(report.total).toBe(9);
    expect(report.unchanged.count + report.changed.count + report.not_assessable.count + report.halted).toBe(report.total);
    expect(report.window.since).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(Date.now() - Date.parse(report.window.since!)).toBeGreaterThanOrEqual(30 * DAY);
  });

  it('includes the older call without --since, and --until bounds the window', async () => {
    const all = await backtest([strictFile]);
    expect(changesOf(all.report)).toEqual(await expectedChanges(undefined));
    expect(all.report.changed.transitions.find((t) => t.from === 'allow' && t.to === 'deny')!.examples.map((e) => e.id)).toContain(ids.old);
    expect(all.report.total).toBe(10);
    const before = await backtest([strictFile, '--until', '30d']);
    expect(before.report.total).toBe(1);
    expect(changesOf(before.report)).toEqual({ 'allow>deny': [ids.old] });
  });

  it('--agent keeps only those agents', async () => {
    const ops = await backtest([strictFile, '--agent', 'ops-bot']);
    expect(ops.report.total).toBe(2);
    expect(ops.report.window.agents).toEqual(['ops-bot']);
    expect(ops.report.not_assessable.count).toBe(2);
    const support = await backtest([strictFile, '--agent', 'support-bot', '--since', '30d']);
    expect(support.report.total).toBe(6);
    expect(changesOf(support.report)).toEqual(await expectedChanges(Date.now() - 30 * DAY, 'support-bot'));
    const both = await backtest([strictFile, '--agent', 'support-bot,ops-bot', '--agent', 'nobody']);
    expect(both.report.total).toBe(9);
  });

  it("finds no change when the candidate is the policy that decided the calls (the demo's own), and --fail-on-change exits 0", async () => {
    const own = path.join(demoDir, 'policy.yaml');
    const r = await runCli(['policy', 'test', own, '--since', '30d', '--agent', 'support-bot', '--store', store, '--fail-on-change']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ {2}unchanged +6 +\(allow 3, review 2, deny 1\)$/m);
    expect(r.stdout).toMatch(/^ {2}total +6 +no decision would change$/m);
    expect(r.stdout).toContain('6 call(s) from this very file');
  });

  it('prints counts per transition, a total and examples; --fail-on-change exits 1 when a decision would change', async () => {
    const r = await runCli(['policy', 'test', strictFile, '--since', '30d', '--store', store, '--examples', '1', '--fail-on-change']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^ {2}review → deny +1$/m);
    expect(r.stdout).toMatch(/^ {2}allow → deny +1$/m);
    expect(r.stdout).toMatch(/^ {2}allow → review +1$/m);
    expect(r.stdout).toMatch(/^ {2}not assessable +2 +\(the record lacks what the policy tests\)$/m);
    expect(r.stdout).toMatch(/^ {2}halted +1 +\(refused by the stop button, whatever the policy\)$/m);
    expect(r.stdout).toMatch(/^ {2}total +9 +3 decision\(s\) would change$/m);
    expect(r.stdout).toMatch(/^not assessable \(2, first 1 shown\):$/m);
    expect(r.stdout).toMatch(/^ {2}[0-9a-f-]{36} {2}\S+ {2}support-bot {2}backoffice\/billing\.refund {2}was review \(refunds-over-500\)$/m);
    expect(r.stdout).toMatch(/^ {6}rule refunds-over-1000 \(line 9, when args\.amount > 1000\) says deny: Refunds over \$1000 go to finance\.$/m);
  });

  it('refuses a policy file that does not load, with the loader’s one sentence and exit 2, before opening the ledger', async () => {
    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(bad, 'version: 1\ndefault: allow\nrules:\n  - id: x\n    efect: deny\n');
    const r = await runCli(['policy', 'test', bad, '--store', store]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    // The loader's own sentence, on one line.
    expect(r.stderr).toBe(`witness: ${bad} line 5: rules[0] has an unknown key "efect"; did you mean "effect"?\n`);
    const missing = await runCli(['policy', 'test', path.join(dir, 'nope.yaml'), '--store', store, '--json']);
    expect(missing.code).toBe(2);
    expect(JSON.parse(missing.stdout)).toEqual({ error: { code: 'invalid_argument', message: `${path.join(dir, 'nope.yaml')}: no such policy file.` } });
  });

  it('offers exactly the flags these tests run, under `witness policy test --help`', async () => {
    const r = await runCli(['policy', 'test', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: witness policy test [options] <file>');
    const offered = [...r.stdout.matchAll(/^\s+(--[a-z][a-z-]*)/gm)].map((m) => m[1]).filter((f) => f !== '--help');
    expect(offered.sort()).toEqual(['--agent', '--examples', '--fail-on-change', '--json', '--since', '--store', '--until']);
    expect((await runCli(['--help'])).stdout).toMatch(/^\s+policy\b/m);
  });

  it('refuses bad flags in one sentence with exit 2', async () => {
    for (const [args, text] of [
      [['--since', 'yesterday'], '--since "yesterday" is not a time'],
      [['--since', '1d', '--until', '2d'], 'is not before --until'],
      [['--examples', '-1'], '--examples "-1" must be a whole number from 0 to 1000.'],
      [['--agent', ','], '--agent needs at least one id'],
    ] as const) {
      const r = await runCli(['policy', 'test', strictFile, '--store', store, ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(oneSentence(r.stderr)).toContain(text);
    }
    const none = await runCli(['policy', 'test', strictFile, '--store', `sqlite:${path.join(dir, 'absent.db')}`]);
    expect(none.code).not.toBe(0);
    oneSentence(none.stderr);
  });
});

describe('witness policy test on PostgreSQL', () => {
  const pg = testSchemas('wt_policy_test');

  it('reads the same calls through the PostgreSQL driver and finds the same changes', async () => {
    const { url, l } = await pg.fresh();
    try {
      // The demo ledger's calls and decisions, copied event by event (the purged call has no payload to copy).
      const copied = (await readEvents(db)).filter((e) => (e.kind === 'tool.call' || e.kind === 'policy.decision') && e.data !== null);
      for (const e of copied) {
        const { v: _v, seq: _seq, prev: _prev, hash: _hash, payload_digest: _d, salt: _salt, pos: _pos, stream, ...input } = e;
        await l.append([{ ...(input as EventInput), stream }]);
      }
    } finally {
      await l.close();
    }
    const onPg = await backtest([strictFile, '--since', '30d'], url);
    const onSqlite = await backtest([strictFile, '--since', '30d']);
    expect(onPg.code).toBe(0);
    expect(changesOf(onPg.report)).toEqual(changesOf(onSqlite.report));
    expect(onPg.report.total).toBe(onSqlite.report.total - 1);
    expect(onPg.report.not_assessable.examples.map((e) => e.id)).toEqual([ids.secret]);
  });
});
