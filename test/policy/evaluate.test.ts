import { describe, expect, it } from 'vitest';
import { evaluate, matchGlob, visibleTools, type Effect } from '../../src/policy/index.js';
import { tempDir } from '../helpers/tmp.js';
import { loadText } from './files.js';

const dir = tempDir('witness-policy-');

function rule(id: string, effect: Effect, extra = ''): string {
  return `  - id: ${id}\n    effect: ${effect}\n${extra}`;
}

function permutations<T>(xs: readonly T[]): T[][] {
  if (xs.length <= 1) return [[...xs]];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));
}

describe('precedence', () => {
  it.each(permutations(['allow', 'review', 'deny'] as const).map((p) => [p.join(', '), p]))('lets deny win over review and allow whatever the file order (%s)', (_name, order) => {
    const policy = loadText(dir, `version: 1\ndefault: allow\nrules:\n${order.map((e) => rule(`r-${e}`, e)).join('')}`);
    const result = evaluate(policy, { agent: 'a', tool: 't' });
    expect(result.decision).toBe('deny');
    expect(result.rule).toBe('r-deny');
    expect(result.matched).toEqual(order.map((e) => `r-${e}`));
  });

  it('lets review win over allow, and names the first review rule when several match', () => {
    const policy = loadText(dir, `version: 1\ndefault: deny\nrules:\n${rule('ok', 'allow')}${rule('check-1', 'review', '    reason: first\n')}${rule('check-2', 'review', '    reason: second\n')}`);
    expect(evaluate(policy, { agent: 'a', tool: 't' })).toEqual({
      decision: 'review',
      rule: 'check-1',
      reason: 'first',
      mode: 'enforce',
      enforced: true,
      matched: ['ok', 'check-1', 'check-2'],
      policyVersion: policy.sha256,
    });
  });

  it('lets a matching allow rule override a deny default', () => {
    const policy = loadText(dir, `version: 1\ndefault: deny\nrules:\n${rule('read', 'allow', '    match: { tool: fs.read_file }\n')}`);
    expect(evaluate(policy, { agent: 'a', tool: 'fs.read_file' })).toMatchObject({ decision: 'allow', rule: 'read' });
    const other = evaluate(policy, { agent: 'a', tool: 'fs.write_file' });
    expect(other).toMatchObject({ decision: 'deny', matched: [] });
    expect('rule' in other).toBe(false);
  });

  it.each(['allow', 'deny', 'review'] as const)('applies the default %s when no rule matches', (d) => {
    const policy = loadText(dir, `version: 1\ndefault: ${d}\nrules:\n${rule('x', d === 'deny' ? 'allow' : 'deny', '    match: { tool: never }\n')}`);
    expect(evaluate(policy, { agent: 'a', tool: 't' }).decision).toBe(d);
  });

  it('skips a rule whose condition is false, so a conditional deny does not outrank an allow', () => {
    const policy = loadText(
      dir,
      `version: 1\ndefault: deny\nrules:\n${rule('refund', 'allow', '    match: { tool: billing.refund }\n')}${rule('big', 'deny', '    match: { tool: billing.refund }\n    when: args.amount > 10000\n')}`,
    );
    expect(evaluate(policy, { agent: 'a', tool: 'billing.refund', args: { amount: 20 } })).toMatchObject({ decision: 'allow', rule: 'refund', matched: ['refund'] });
    expect(evaluate(policy, { agent: 'a', tool: 'billing.refund', args: { amount: 20000 } })).toMatchObject({ decision: 'deny', rule: 'big' });
  });
});

describe('globs', () => {
  const policy = loadText(
    dir,
    `version: 1
default: allow
rules:
  - id: fs-writes
    match: { tool: "fs.write*" }
    effect: deny
  - id: ops-on-prod
    match: { agent: [ops-*, "deploy-bot"], server: prod-? }
    effect: review
  - id: everything-for-intern
    match: { agent: intern, server: "*", tool: "*" }
    effect: deny
`,
  );
  const decide = (agent: string, server: string | undefined, tool: string) => evaluate(policy, { agent, server, tool }).decision;

  it('match a prefix with *', () => {
    expect(decide('bot', 'files', 'fs.write_file')).toBe('deny');
    expect(decide('bot', 'files', 'fs.write')).toBe('deny');
    expect(decide('bot', 'files', 'fs.read_file')).toBe('allow');
    expect(decide('bot', 'files', 'xfs.write_file')).toBe('allow');
  });

  it('match any of a list, and exactly one character with ?', () => {
    expect(decide('ops-alice', 'prod-1', 'x')).toBe('review');
    expect(decide('deploy-bot', 'prod-2', 'x')).toBe('review');
    expect(decide('ops-alice', 'prod-12', 'x')).toBe('allow');
    expect(decide('ops-alice', 'prod-', 'x')).toBe('allow');
    expect(decide('deploy-bot2', 'prod-1', 'x')).toBe('allow');
  });

  it('match every agent, server and tool with *, including a call with no server name', () => {
    expect(decide('intern', 'anything', 'any.tool')).toBe('deny');
    expect(decide('intern', undefined, 'x')).toBe('deny');
    expect(decide('intern', '', '')).toBe('deny');
  });

  it('are case-sensitive and match the whole name', () => {
    expect(decide('Intern', 'x', 'y')).toBe('allow');
    expect(decide('interns', 'x', 'y')).toBe('allow');
    expect(decide('bot', 'files', 'FS.write_file')).toBe('allow');
  });

  it.each([
    ['*', '', true],
    ['*', 'a.b/c d', true],
    ['fs.*', 'fs.', true],
    ['fs.*', 'fs', false],
    ['*.read', 'a.b.read', true],
    ['a*b*c', 'abc', true],
    ['a*b*c', 'aXbYbZc', true],
    ['a*b*c', 'aXbYcZ', false],
    ['?', '', false],
    ['??', 'é€', true],
    ['a?c', 'abc', true],
    ['abc', 'abc', true],
    ['abc', 'ab', false],
    ['*?', 'x', true],
    ['*?', '', false],
  ])('match %j against %j: %s', (glob, name, expected) => {
    expect(matchGlob(glob, name)).toBe(expected);
  });

  it('match in linear-ish time even for patterns that make regex engines backtrack', () => {
    const name = `${'a'.repeat(20_000)}`;
    const started = performance.now();
    expect(matchGlob('*a*a*a*a*a*a*a*a*b', name)).toBe(false);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

describe('shadow mode', () => {
  const text = (mode: string) =>
    `version: 1\ndefault: allow\nmode: ${mode}\nrules:\n${rule('no-delete', 'deny', '    match: { tool: "*.delete" }\n    reason: Deletes are forbidden.\n')}${rule('big-refund', 'review', '    match: { tool: billing.refund }\n    when: args.amount > 500\n')}`;
  const shadow = loadText(dir, text('shadow'));
  const enforce = loadText(dir, text('enforce'));

  it('reports what would happen ("would deny") without enforcing it', () => {
    expect(evaluate(shadow, { agent: 'a', tool: 'crm.delete' })).toEqual({
      decision: 'deny',
      rule: 'no-delete',
      reason: 'Deletes are forbidden.',
      mode: 'shadow',
      enforced: false,
      wouldBe: 'deny',
      matched: ['no-delete'],
      policyVersion: shadow.sha256,
    });
  });

  it('reports "would need review" and "would allow" the same way', () => {
    expect(evaluate(shadow, { agent: 'a', tool: 'billing.refund', args: { amount: 650 } })).toMatchObject({ decision: 'review', wouldBe: 'review', enforced: false });
    expect(evaluate(shadow, { agent: 'a', tool: 'billing.refund', args: { amount: 5 } })).toMatchObject({ decision: 'allow', wouldBe: 'allow', enforced: false });
  });

  it('decides exactly as enforce mode does, only marked as not enforced', () => {
    for (const call of [
      { agent: 'a', tool: 'crm.delete' },
      { agent: 'a', tool: 'billing.refund', args: { amount: 650 } },
      { agent: 'a', tool: 'billing.refund', args: { amount: 5 } },
    ]) {
      const s = evaluate(shadow, call);
      const e = evaluate(enforce, call);
      expect(s.decision).toBe(e.decision);
      expect(s.rule).toBe(e.rule);
      expect(e.enforced).toBe(true);
      expect('wouldBe' in e).toBe(false);
    }
  });
});

describe('hiding tools from tools/list', () => {
  const policy = loadText(
    dir,
    `version: 1
default: allow
rules:
  - id: no-shell
    match: { tool: "shell.*" }
    effect: deny
    hide: true
  - id: no-admin-for-support
    match: { agent: "support-*", server: crm, tool: [crm.admin_*, crm.export] }
    effect: deny
    hide: true
  - id: deny-but-visible
    match: { tool: billing.void }
    effect: deny
  - id: big-refunds
    match: { tool: billing.refund }
    when: args.amount > 500
    effect: deny
`,
  );
  const tools = ['shell.exec', 'crm.get_customer', 'crm.admin_reset', 'crm.export', 'billing.void', 'billing.refund'];

  it('hides a tool only where a hide rule denies it unconditionally for that agent and server', () => {
    expect(visibleTools(policy, 'support-bot', 'crm', tools)).toEqual(['crm.get_customer', 'billing.void', 'billing.refund']);
    expect(visibleTools(policy, 'ops-bot', 'crm', tools)).toEqual(['crm.get_customer', 'crm.admin_reset', 'crm.export', 'billing.void', 'billing.refund']);
    expect(visibleTools(policy, 'support-bot', 'other', tools)).toEqual(['crm.get_customer', 'crm.admin_reset', 'crm.export', 'billing.void', 'billing.refund']);
  });

  it('also denies a hidden tool that is called anyway', () => {
    expect(evaluate(policy, { agent: 'support-bot', server: 'crm', tool: 'crm.export' })).toMatchObject({ decision: 'deny', rule: 'no-admin-for-support' });
  });

  it('filters tool objects by their name and keeps them intact', () => {
    const listed = [
      { name: 'shell.exec', description: 'run' },
      { name: 'crm.get_customer', inputSchema: { type: 'object' } },
    ];
    expect(visibleTools(policy, 'a', 'crm', listed)).toEqual([{ name: 'crm.get_customer', inputSchema: { type: 'object' } }]);
  });

  it('hides nothing in shadow mode, which must not change what the agent sees', () => {
    const shadow = loadText(dir, 'version: 1\ndefault: allow\nmode: shadow\nrules:\n  - id: no-shell\n    match: { tool: "shell.*" }\n    effect: deny\n    hide: true\n');
    expect(visibleTools(shadow, 'a', 'x', tools)).toEqual(tools);
    expect(evaluate(shadow, { agent: 'a', tool: 'shell.exec' })).toMatchObject({ decision: 'deny', enforced: false });
  });
});

describe('the demo policy', () => {
  it('loads and sends a $650 refund to review under refunds-over-500, and a $50 one through', async () => {
    const { DEMO_POLICY } = await import('../../src/demo/index.js');
    const { parsePolicy, evaluate: evaluateCall } = await import('../../src/policy/index.js');
    const policy = parsePolicy(DEMO_POLICY, { source: 'demo-policy.yaml' });
    expect(evaluateCall(policy, { agent: 'support-bot', tool: 'billing.refund', args: { amount: 650 } })).toMatchObject({ decision: 'review', rule: 'refunds-over-500' });
    expect(evaluateCall(policy, { agent: 'support-bot', tool: 'billing.refund', args: { amount: 50 } })).toMatchObject({ decision: 'allow' });
  });
});
