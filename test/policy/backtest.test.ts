import { describe, expect, it } from 'vitest';
import { Backtest, BacktestReport, classifyCall, evaluate, type Effect, type Policy, type RecordedCall } from '../../src/policy/index.js';
import { Redactor } from '../../src/recorder/index.js';
import { tempDir } from '../helpers/tmp.js';
import { loadText } from './files.js';

/**
 * The pure backtest: every recorded call is decided by the same `evaluate` the gateway runs, and
 * classified as unchanged, changed from → to, or not assessable (with why), with the deciding rule.
 */

const dir = tempDir('witness-backtest-');

/** The recorded side: what the old policy decided (whatever policy that was; only its decision matters here). */
function call(tool: string, args: unknown, recorded: Effect | undefined, extra: Partial<RecordedCall> = {}): RecordedCall {
  return {
    id: `call-${tool}-${JSON.stringify(args)}`,
    ts: '2026-12-01T10:00:00.000Z',
    agent: 'support-bot',
    server: 'backoffice',
    tool,
    args: { value: args },
    recorded: recorded === undefined ? undefined : { decision: recorded, policyVersion: 'a'.repeat(64), mode: 'enforce' },
    ...extra,
  };
}

const STRICT = `version: 1
default: allow
rules:
  - id: refunds-over-100
    match: { tool: billing.refund }
    when: "args.amount > 100"
    effect: review
    reason: Refunds over $100 need a supervisor.
  - id: refunds-over-5000
    match: { tool: billing.refund }
    when: "args.amount > 5000"
    effect: deny
    reason: Refunds over $5000 are never made by an agent.
  - id: no-role-changes
    match: { tool: iam.set_role }
    effect: deny
    reason: Agents may not change roles.
  - id: lookups
    match: { tool: crm.* }
    effect: allow
`;

describe('classifyCall: each transition', () => {
  const policy = loadText(dir, STRICT);

  it.each([
    ['allow → review', call('billing.refund', { amount: 650 }, 'allow'), 'review', 'refunds-over-100'],
    ['allow → deny', call('iam.set_role', { role: 'billing-viewer' }, 'allow'), 'deny', 'no-role-changes'],
    ['review → deny', call('billing.refund', { amount: 9000 }, 'review'), 'deny', 'refunds-over-5000'],
    ['deny → allow', call('crm.lookup_customer', { customer_id: 'C-1' }, 'deny'), 'allow', 'lookups'],
    ['review → allow', call('crm.update', { customer_id: 'C-1' }, 'review'), 'allow', 'lookups'],
    ['deny → review', call('billing.refund', { amount: 200 }, 'deny'), 'review', 'refunds-over-100'],
    ['none → deny', call('iam.set_role', { role: 'admin' }, undefined), 'deny', 'no-role-changes'],
  ] as const)('%s', (_name, c, to, rule) => {
    const r = classifyCall(policy, c);
    expect(r.kind).toBe('assessed');
    if (r.kind !== 'assessed') return;
    expect(r.changed).toBe(true);
    expect(r.from).toBe(c.recorded?.decision ?? 'none');
    expect(r.evaluation.decision).toBe(to);
    expect(r.evaluation.rule).toBe(rule);
    // The very evaluation the gateway would make.
    expect(r.evaluation).toEqual(evaluate(policy, { agent: c.agent, server: c.server ?? '', tool: c.tool ?? '', args: 'value' in c.args ? c.args.value : undefined }));
  });

  it('leaves a call decided the same way unchanged, and a call no policy decided unchanged when the candidate allows it', () => {
    const same = classifyCall(policy, call('billing.refund', { amount: 650 }, 'review'));
    expect(same).toMatchObject({ kind: 'assessed', changed: false, from: 'review', evaluation: { decision: 'review', rule: 'refunds-over-100' } });
    const none = classifyCall(policy, call('billing.refund', { amount: 20 }, undefined));
    expect(none).toMatchObject({ kind: 'assessed', changed: false, from: 'none', evaluation: { decision: 'allow' } });
  });

  it('names the deciding rule, its line, its condition and its reason; or the default and its line', () => {
    const r = classifyCall(policy, call('billing.refund', { amount: 9000 }, 'allow'));
    expect(r.why).toBe('rule refunds-over-5000 (line 9, when args.amount > 5000) says deny: Refunds over $5000 are never made by an agent.');
    const d = classifyCall(policy, call('fs.read_file', { path: '/tmp/x' }, 'deny'));
    expect(d.why).toBe('no rule matches, so the default (allow, line 2) applies');
  });
});

describe('classifyCall: calls whose arguments are not all in the record', () => {
  const policy = loadText(dir, STRICT);
  const purged = (tool: string | null, recorded: Effect, server: string | null = 'backoffice'): RecordedCall => ({
    ...call(tool ?? 'x', null, recorded),
    tool,
    server,
    args: { missing: 'its payload is not in the ledger (purged or withheld)' },
  });

  it('reports a purged call as not assessable when a rule that may apply tests its arguments, with why and the possible decisions [R-POLICY-BACKTEST]', () => {
    const r = classifyCall(policy, purged('billing.refund', 'allow'));
    expect(r).toMatchObject({ kind: 'not_assessable', from: 'allow', possible: ['allow', 'review', 'deny'] });
    expect(r.why).toContain('rule refunds-over-100 (review) tests the arguments (args.amount > 100) and its payload is not in the ledger (purged or withheld)');
    expect(r.why).toContain('so the decision could be allow or review or deny');
  });

  it('assesses a purged call exactly when no rule that may apply depends on its arguments', () => {
    const r = classifyCall(policy, purged('iam.set_role', 'allow'));
    expect(r).toMatchObject({ kind: 'assessed', changed: true, evaluation: { decision: 'deny', rule: 'no-role-changes' } });
    const lookup = classifyCall(policy, purged('crm.lookup_customer', 'allow'));
    expect(lookup).toMatchObject({ kind: 'assessed', changed: false, evaluation: { decision: 'allow', rule: 'lookups' } });
  });

  it('is not assessable when the record no longer names the tool and a rule names tools', () => {
    const r = classifyCall(policy, purged(null, 'allow'));
    expect(r.kind).toBe('not_assessable');
    expect(r.why).toContain('names tools (iam.set_role) and its payload is not in the ledger');
  });

  it('is assessable without the tool name when every rule that could apply is decided without it', () => {
    const p = loadText(dir, 'version: 1\ndefault: deny\nrules:\n  - id: bots-may\n    match: { agent: support-* }\n    effect: allow\n');
    expect(classifyCall(p, purged(null, 'allow', null))).toMatchObject({ kind: 'assessed', changed: false, evaluation: { decision: 'allow', rule: 'bots-may' } });
    expect(classifyCall(p, { ...purged(null, 'allow', null), agent: 'ops-bot' })).toMatchObject({ kind: 'assessed', changed: true, evaluation: { decision: 'deny' } });
  });

  it('is not assessable when a rule names servers and the record does not say which server it was', () => {
    const p = loadText(dir, 'version: 1\ndefault: allow\nrules:\n  - id: no-prod\n    match: { server: prod-* }\n    effect: deny\n');
    const r = classifyCall(p, purged('billing.refund', 'allow', null));
    expect(r).toMatchObject({ kind: 'not_assessable', possible: ['allow', 'deny'] });
    expect(r.why).toContain('rule no-prod (deny) names servers (prod-*)');
  });

  const redactor = new Redactor();

  it('is not assessable when a rule tests an argument the recorder redacted (a secret key, or a secret inside a string)', () => {
    const p = loadText(dir, 'version: 1\ndefault: allow\nrules:\n  - id: no-default-password\n    match: { tool: db.connect }\n    when: args.password == "postgres"\n    effect: deny\n');
    const stored = redactor.redact({ host: 'db', password: 'postgres' });
    expect(stored).toEqual({ host: 'db', password: '[REDACTED:key]' });
    const r = classifyCall(p, call('db.connect', stored, 'allow'));
    expect(r).toMatchObject({ kind: 'not_assessable', from: 'allow', possible: ['allow', 'deny'] });
    expect(r.why).toBe('rule no-default-password (deny) tests args.password, which the record holds redacted, so the decision could be allow or deny');

    const q = loadText(dir, 'version: 1\ndefault: allow\nrules:\n  - id: no-curl-auth\n    match: { tool: shell.run }\n    when: args.command contains "Authorization"\n    effect: review\n');
    const cmd = redactor.redact({ command: 'curl -H "Authorization: Bearer abcdefghijklmnop1234567890" https://x.example' });
    expect(JSON.stringify(cmd)).toContain('[REDACTED:');
    expect(classifyCall(q, call('shell.run', cmd, 'review'))).toMatchObject({ kind: 'not_assessable', possible: ['allow', 'review'] });
  });

  it('assesses a call with redacted arguments exactly when no rule reads them', () => {
    const p = loadText(dir, 'version: 1\ndefault: allow\nrules:\n  - id: prod-db\n    match: { tool: db.connect }\n    when: args.host startsWith "prod"\n    effect: review\n');
    const stored = redactor.redact({ host: 'prod-1', password: 'postgres' });
    expect(classifyCall(p, call('db.connect', stored, 'allow'))).toMatchObject({ kind: 'assessed', changed: true, evaluation: { decision: 'review', rule: 'prod-db' } });
    expect(classifyCall(p, call('db.connect', { ...stored, host: 'dev-1' }, 'allow'))).toMatchObject({ kind: 'assessed', changed: false, evaluation: { decision: 'allow' } });
  });

  it('treats a path through a value redacted whole, or a key the evaluator folds to the path, as depending on it', () => {
    const p = loadText(
      dir,
      'version: 1\ndefault: allow\nrules:\n  - id: no-root\n    when: args.creds.user == "root"\n    effect: deny\n  - id: big\n    when: args.amount > 10\n    effect: review\n',
    );
    expect(classifyCall(p, call('t', { creds: '[REDACTED:key]' }, 'allow'))).toMatchObject({ kind: 'not_assessable', possible: ['allow', 'deny'] });
    expect(classifyCall(p, call('t', { Amount: '[REDACTED:custom]' }, 'allow'))).toMatchObject({ kind: 'not_assessable', possible: ['allow', 'review'] });
    expect(classifyCall(p, call('t', { items: [{ note: '[REDACTED:key]' }], amount: 5 }, 'allow'))).toMatchObject({ kind: 'assessed', changed: false });
  });

  it('assesses the decision when what is missing cannot change it, and says the deciding rule is uncertain', () => {
    const p = loadText(
      dir,
      'version: 1\ndefault: allow\nrules:\n  - id: maybe-deny\n    when: args.password == "x"\n    effect: deny\n  - id: always-deny\n    match: { tool: db.* }\n    effect: deny\n',
    );
    const r = classifyCall(p, call('db.connect', { password: '[REDACTED:key]' }, 'allow'));
    expect(r).toMatchObject({ kind: 'assessed', changed: true, evaluation: { decision: 'deny', rule: 'always-deny' } });
    expect(r.why).toContain('the decision is certain, but rule maybe-deny may have decided it instead');
    // A missing argument that only an allow rule tests cannot lift a deny default… unless it could: then not assessable.
    const q = loadText(dir, 'version: 1\ndefault: deny\nrules:\n  - id: small\n    when: args.amount < 10\n    effect: allow\n');
    expect(classifyCall(q, call('t', { amount: '[REDACTED:x]' }, 'deny'))).toMatchObject({ kind: 'not_assessable', possible: ['allow', 'deny'] });
  });
});

describe('classifyCall: a halted agent', () => {
  it('counts a call refused by a halt apart: the stop button decided it, not a policy', () => {
    const policy = loadText(dir, 'version: 1\ndefault: allow\n');
    const c = call('iam.set_role', { role: 'x' }, 'deny');
    const halted = classifyCall(policy, { ...c, recorded: { decision: 'deny', halted: true } });
    expect(halted).toEqual({ kind: 'halted', from: 'deny', why: 'its agent was halted (human.halt), which refuses calls whatever a policy says' });
    expect(classifyCall(policy, c)).toMatchObject({ kind: 'assessed', changed: true, evaluation: { decision: 'allow' } });
    const bt = new Backtest(policy);
    bt.add({ ...c, recorded: { decision: 'deny', halted: true } });
    expect(bt.report()).toMatchObject({ total: 1, halted: 1, changed: { count: 0 }, unchanged: { count: 0 } });
  });
});

describe('Backtest: counts, examples and the report', () => {
  it('counts each transition, keeps the first N examples of each, and gives a report the schema accepts', () => {
    const policy: Policy = loadText(dir, STRICT);
    const bt = new Backtest(policy, { examples: 2, window: { since: '2026-11-01T00:00:00.000Z', until: null, agents: ['support-bot'] } });
    const calls = [
      ...Array.from({ length: 5 }, (_, i) => call('billing.refund', { amount: 200 + i }, 'allow', { id: `r${i}` })),
      ...Array.from({ length: 3 }, (_, i) => call('iam.set_role', { role: 'x' }, 'allow', { id: `i${i}` })),
      call('crm.lookup', {}, 'allow', { id: 'c0' }),
      call('crm.lookup', {}, undefined, { id: 'c1' }),
      call('billing.refund', null, 'allow', { id: 'p0', args: { missing: 'its payload is not in the ledger' } }),
    ];
    for (const c of calls) bt.add(c);
    const report = bt.report();
    expect(BacktestReport.parse(report)).toEqual(report);
    expect(report.total).toBe(11);
    expect(report.unchanged).toEqual({ count: 2, by_decision: { allow: 1, none: 1 } });
    expect(report.changed.count).toBe(8);
    expect(report.changed.transitions.map((t) => [t.from, t.to, t.count, t.examples.map((e) => e.id)])).toEqual([
      ['allow', 'review', 5, ['r0', 'r1']],
      ['allow', 'deny', 3, ['i0', 'i1']],
    ]);
    expect(report.changed.transitions[0]!.examples[0]).toMatchObject({
      agent: 'support-bot',
      tool: 'billing.refund',
      recorded: { decision: 'allow', policy_version: 'a'.repeat(64), mode: 'enforce' },
      candidate: { decision: 'review', rule: 'refunds-over-100', reason: 'Refunds over $100 need a supervisor.', matched: ['refunds-over-100'] },
    });
    expect(report.not_assessable.count).toBe(1);
    expect(report.not_assessable.examples[0]).toMatchObject({ id: 'p0', possible: ['allow', 'review', 'deny'] });
    expect(report.recorded_versions).toEqual([{ version: 'a'.repeat(64), calls: 10 }]);
    expect(report.policy).toEqual({ source: policy.source, sha256: policy.sha256, mode: 'enforce', default: 'allow', rules: 4 });
    expect(report.window).toEqual({ since: '2026-11-01T00:00:00.000Z', until: null, agents: ['support-bot'] });
  });
});
