import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateKey } from '../../src/core/index.js';
import { evaluate, loadPolicyFile, parsePolicy, requireApprovers, type PolicyProblem } from '../../src/policy/index.js';
import { tempDir } from '../helpers/tmp.js';
import { loadError, loadText, writePolicy } from './files.js';

const dir = tempDir('witness-policy-');

const DEMO = `# Refunds over $500 need a human.
version: 1
default: allow
rules:
  - id: refunds-over-500
    match: { tool: billing.refund }
    when: "args.amount > 500"
    effect: review
    reason: Refunds over $500 need a billing supervisor.
`;

const FULL = `version: 1
default: deny
mode: shadow
rules:
  - id: read-only-fs
    description: Support agents may read files under /srv/data.
    match:
      agent: [support-*, triage-bot]
      server: files
      tool: [fs.read_file, fs.list_*]
    when:
      - args.path under "/srv/data"
      - not args.path endsWith ".key"
    effect: allow
  - id: no-shell
    match: { tool: shell.* }
    effect: deny
    reason: No agent may run shell commands.
    hide: true
`;

describe('valid policy files', () => {
  it('load the demo policy, which sends refunds over $500 to review', () => {
    const policy = loadText(dir, DEMO);
    expect(policy.rules.map((r) => r.id)).toEqual(['refunds-over-500']);
    const call = (amount: unknown) => evaluate(policy, { agent: 'support-bot', server: 'billing', tool: 'billing.refund', args: { order_id: 'A-1042', amount } });
    expect(call(650)).toMatchObject({ decision: 'review', rule: 'refunds-over-500', reason: 'Refunds over $500 need a billing supervisor.', enforced: true });
    expect(call(500)).toMatchObject({ decision: 'allow', enforced: true });
    expect(call(500).rule).toBeUndefined();
    expect(evaluate(policy, { agent: 'support-bot', tool: 'crm.get_customer', args: { amount: 9999 } }).decision).toBe('allow');
  });

  it('normalise every field: globs become lists, omitted globs match everything, when becomes a list, lines are kept', () => {
    const policy = loadText(dir, FULL);
    expect(policy.version).toBe(1);
    expect(policy.default).toBe('deny');
    expect(policy.mode).toBe('shadow');
    const [fsRule, shell] = policy.rules;
    expect(fsRule).toMatchObject({
      id: 'read-only-fs',
      description: 'Support agents may read files under /srv/data.',
      match: { agent: ['support-*', 'triage-bot'], server: ['files'], tool: ['fs.read_file', 'fs.list_*'] },
      when: ['args.path under "/srv/data"', 'not args.path endsWith ".key"'],
      effect: 'allow',
      hide: false,
      line: 5,
    });
    expect(shell).toMatchObject({ id: 'no-shell', match: { agent: ['*'], server: ['*'], tool: ['shell.*'] }, when: [], effect: 'deny', hide: true, line: 15 });
    expect(shell?.condition).toBeUndefined();
    expect(Object.isFrozen(policy) && Object.isFrozen(policy.rules) && Object.isFrozen(shell)).toBe(true);
  });

  it('default to enforce mode and allow a policy with no rules', () => {
    const policy = loadText(dir, 'version: 1\ndefault: review\n');
    expect(policy.mode).toBe('enforce');
    expect(policy.rules).toEqual([]);
    expect(evaluate(policy, { agent: 'a', tool: 't' })).toMatchObject({ decision: 'review', enforced: true, matched: [] });
  });

  it('carry the SHA-256 of the exact file bytes as the policy version, so a changed comment is a new version', () => {
    const file = writePolicy(dir, DEMO);
    const policy = loadPolicyFile(file);
    expect(policy.sha256).toBe(createHash('sha256').update(fs.readFileSync(file)).digest('hex'));
    expect(evaluate(policy, { agent: 'a', tool: 't' }).policyVersion).toBe(policy.sha256);
    expect(loadText(dir, `${DEMO}# reviewed 2026-11-23\n`).sha256).not.toBe(policy.sha256);
    expect(policy.source).toBe(file);
  });

  it('parse the same bytes from a string as from the file', () => {
    expect(parsePolicy(DEMO).sha256).toBe(loadText(dir, DEMO).sha256);
  });

  it('accept quoted YAML values, flow style and comments anywhere', () => {
    const policy = loadText(dir, `version: 1 # format\ndefault: "deny"\nrules: [{id: 'a', match: {tool: 'x.*'}, effect: allow, when: 'args.n == 1'}]\n`);
    expect(evaluate(policy, { agent: 'a', tool: 'x.y', args: { n: 1 } }).decision).toBe('allow');
    expect(evaluate(policy, { agent: 'a', tool: 'x.y', args: { n: 2 } }).decision).toBe('deny');
  });
});

describe('bad policy files', () => {
  const head = 'version: 1\ndefault: allow\nrules:\n';
  const cases: Array<[string, string, string]> = [
    ['a YAML syntax error', `${head}  - id: a\n    effect: [deny\n`, 'policy.yaml line 6: not valid YAML (flow sequence in block collection must be sufficiently indented and end with a ])'],
    ['a tab used as indentation', `${head}  - id: a\n\teffect: deny\n`, 'policy.yaml line 5: not valid YAML (tabs are not allowed as indentation)'],
    ['an effect that is not allow, deny or review', `${head}  - id: a\n    match: { tool: x }\n    effect: block\n`, 'policy.yaml line 6: rules[0].effect must be allow, deny or review'],
    ['a wrong type', `${head}  - id: a\n    effect: deny\n    hide: yes\n`, 'policy.yaml line 6: rules[0].hide must be true or false'],
    ['a number where a glob belongs', `${head}  - id: a\n    match:\n      tool: 3\n    effect: deny\n`, 'policy.yaml line 6: rules[0].match.tool must be a glob or a list of globs'],
    ['a number inside a glob list', `${head}  - id: a\n    match:\n      tool: [fs.*, 3]\n    effect: deny\n`, 'policy.yaml line 6: rules[0].match.tool[1] must be a string'],
    ['rules that are not a list', 'version: 1\ndefault: allow\nrules:\n  id: a\n', 'policy.yaml line 4: rules must be a list'],
    ['a wrong format version', 'version: 2\ndefault: allow\n', 'policy.yaml line 1: version must be 1'],
    ['a missing default', 'version: 1\nrules: []\n', 'policy.yaml line 1: default is missing; it must be allow, deny or review'],
    ['a missing effect', `${head}  - id: a\n    match: { tool: x }\n`, 'policy.yaml line 4: rules[0].effect is missing; it must be allow, deny or review'],
    ['a misspelt key in a rule', `${head}  - id: a\n    efect: deny\n`, 'policy.yaml line 5: rules[0] has an unknown key "efect"; did you mean "effect"?'],
    ['a misspelt top-level key', 'version: 1\ndefault: allow\nrule:\n  - id: a\n    effect: deny\n', 'policy.yaml line 3: the policy has an unknown key "rule"; did you mean "rules"?'],
    ['a misspelt match key', `${head}  - id: a\n    match: { tools: x }\n    effect: deny\n`, 'policy.yaml line 5: rules[0].match has an unknown key "tools"; did you mean "tool"?'],
    [
      'an unknown key unlike any other',
      `${head}  - id: a\n    effect: deny\n    priority: 3\n`,
      'policy.yaml line 6: rules[0] has an unknown key "priority"; the keys allowed here are id, description, match, when, effect, reason, hide or approvers',
    ],
    ['a duplicate rule id', `${head}  - id: a\n    effect: deny\n  - id: b\n    effect: deny\n  - id: a\n    effect: allow\n`, 'policy.yaml line 8: rules[2].id "a" is already the id of rules[0]'],
    ['a key given twice', `${head}  - id: a\n    effect: allow\n    effect: deny\n`, 'policy.yaml line 6: the key "effect" appears twice in the same mapping'],
    [
      'a bad condition operator',
      `${head}  - id: a\n    when: "args.amount => 500"\n    effect: deny\n`,
      'policy.yaml line 5: rules[0].when is not a valid condition: "=>" is not an operator; use >= or <= (at character 13)',
    ],
    [
      'a condition without its right side',
      `${head}  - id: a\n    when: args.amount >\n    effect: deny\n`,
      'policy.yaml line 5: rules[0].when is not a valid condition: expected a value after ">", but the condition ends (at character 14)',
    ],
    [
      'a condition naming something other than args',
      `${head}  - id: a\n    when:\n      - args.a exists\n      - amount > 5\n    effect: deny\n`,
      'policy.yaml line 7: rules[0].when[1] is not a valid condition: "amount" is not a known name; argument paths start with args, as in args.amount (at character 1)',
    ],
    [
      'a bad glob',
      `${head}  - id: a\n    match:\n      tool: "fs.[rw]*"\n    effect: deny\n`,
      'policy.yaml line 6: rules[0].match.tool "fs.[rw]*" contains "[": character classes ([...]) are not supported; use * or ?',
    ],
    [
      'a negated glob',
      `${head}  - id: a\n    match:\n      agent: ["ops-*", "!ops-bot"]\n    effect: deny\n`,
      'policy.yaml line 6: rules[0].match.agent[1] "!ops-bot" starts with !, but negated globs are not supported; write a separate rule',
    ],
    ['an empty glob list', `${head}  - id: a\n    match:\n      tool: []\n    effect: deny\n`, 'policy.yaml line 6: rules[0].match.tool must not be an empty list'],
    [
      'hide on a rule that is not an unconditional deny',
      `${head}  - id: a\n    when: args.x exists\n    effect: deny\n    hide: true\n`,
      'policy.yaml line 7: rules[0].hide can be true only on a deny rule without when, since only such a rule forbids a tool outright',
    ],
    [
      'a rule id with spaces',
      `${head}  - id: refund rule\n    effect: deny\n`,
      'policy.yaml line 4: rules[0].id must start with a letter or digit and hold only letters, digits and . _ : / - (at most 128)',
    ],
    ['an empty description', `${head}  - id: a\n    description:\n    effect: deny\n`, 'policy.yaml line 5: rules[0].description must be a string'],
    ['a rule that is not a mapping', `${head}  - deny everything\n`, 'policy.yaml line 4: rules[0] must be a mapping (key: value lines)'],
    ['an empty file', '', 'policy.yaml line 1: the file is empty; a policy needs at least version and default'],
    ['a list instead of a mapping', '- a\n- b\n', 'policy.yaml line 1: the policy must be a mapping (key: value lines)'],
    ['two YAML documents', 'version: 1\ndefault: allow\n---\nversion: 1\n', 'policy.yaml line 3: a second YAML document starts here, but a policy file holds exactly one'],
    [
      'a YAML alias',
      'version: 1\ndefault: &d deny\nmode: enforce\nrules:\n  - id: a\n    effect: *d\n',
      'policy.yaml line 6: YAML aliases (*d) are not supported in a policy file; write the value out',
    ],
    ['a YAML tag', 'version: 1\ndefault: !effect allow\n', 'policy.yaml line 2: YAML tags are not used in policy files (unresolved tag: !effect)'],
    ['an invalid mode', 'version: 1\ndefault: allow\nmode: dry-run\n', 'policy.yaml line 3: mode must be enforce or shadow'],
  ];

  it.each(cases)('are refused with the line and one sentence: %s', (_name, text, message) => {
    const { message: got, error } = loadError(dir, text);
    expect(got).toBe(message);
    expect(got).not.toContain('\n');
    expect(error.details?.['line']).toBe(Number(/ line (\d+):/.exec(message)![1]));
  });

  it('list every problem in details, sorted by line, and name the first in the message', () => {
    const { message, error } = loadError(dir, `version: 1\ndefault: allow\nrules:\n  - id: a\n    effect: nope\n  - id: b\n    match: { tool: 5 }\n    effect: deny\n    extra: 1\n`);
    expect(message).toBe('policy.yaml line 5: rules[0].effect must be allow, deny or review');
    const problems = error.details?.['problems'] as PolicyProblem[];
    expect(problems.map((p) => [p.line, p.path])).toEqual([
      [5, 'rules[0].effect'],
      [7, 'rules[1].match.tool'],
      [9, 'rules[1].extra'],
    ]);
  });

  it('point the column of a bad condition at the offending character', () => {
    const { error } = loadError(dir, 'version: 1\ndefault: allow\nrules:\n  - id: a\n    when: "args.a == 1 && args.b == 2"\n    effect: deny\n');
    // `    when: "` is 11 characters; `&&` is the 13th character of the condition.
    expect(error.details).toMatchObject({ line: 5, column: 11 + 1 + 12, path: 'rules[0].when' });
    expect(error.message).toContain('"&&" is not an operator; use and (at character 13)');
  });

  it.each([
    ['folded', '>-'],
    ['literal', '|-'],
  ])('name the line inside a condition written as a %s block', (_style, indicator) => {
    const { message, error } = loadError(dir, `version: 1\ndefault: allow\nrules:\n  - id: a\n    when: ${indicator}\n      args.a > 1 and\n      args.b =! 1\n    effect: deny\n`);
    expect(message).toBe('policy.yaml line 7: rules[0].when is not a valid condition: "=" is not an operator; use == to compare (at character 23)');
    expect(error.details).toMatchObject({ line: 7, column: 14 });
  });

  it('count lines the same in a file with Windows line endings and a byte-order mark', () => {
    const text = '\ufeffversion: 1\r\ndefault: allow\r\nrules:\r\n  - id: a\r\n    effect: deny\r\n  - id: b\r\n    effect: nope\r\n';
    expect(loadError(dir, text).message).toBe('policy.yaml line 7: rules[1].effect must be allow, deny or review');
    expect(loadText(dir, text.replace('nope', 'allow')).rules.map((r) => r.line)).toEqual([4, 6]);
  });

  it('name the line of bytes that are not UTF-8', () => {
    const bytes = Buffer.concat([Buffer.from('version: 1\ndefault: allow\n# caf'), Buffer.from([0xe9]), Buffer.from('\n')]);
    expect(loadError(dir, bytes).message).toBe('policy.yaml line 3: the file is not valid UTF-8 text');
  });

  it('refuse a file larger than a megabyte without parsing it', () => {
    const { message } = loadError(dir, `version: 1\ndefault: allow\n${'#'.repeat(1024 * 1024)}\n`);
    expect(message).toMatch(/^policy\.yaml line 1: the file is \d+ bytes, more than the 1048576 a policy may have$/);
  });

  it('report a missing file as not_found and a directory as a bad argument, in one sentence', () => {
    const missing = path.join(dir, 'nope.yaml');
    expect(() => loadPolicyFile(missing)).toThrow(expect.objectContaining({ code: 'not_found', message: `${missing}: no such policy file.` }) as Error);
    expect(() => loadPolicyFile(dir)).toThrow(expect.objectContaining({ code: 'invalid_argument', message: `${dir} is a directory; give the path of a policy file.` }) as Error);
  });

  it('name the source given to parsePolicy, or "policy" by default', () => {
    expect(() => parsePolicy('version: 3\ndefault: allow\n')).toThrow(expect.objectContaining({ code: 'invalid_policy', message: 'policy line 1: version must be 1' }) as Error);
    expect(() => parsePolicy('version: 3\ndefault: allow\n', { source: 'staging.yaml' })).toThrow('staging.yaml line 1: version must be 1');
  });
});

describe('approvers', () => {
  const alice = generateKey('alice@corp').verifierKey;
  const bob = generateKey('bob@corp').verifierKey;
  const listed = `approvers:\n  - id: alice@corp\n    key: "${alice}"\n  - { id: bob@corp, key: "${bob}" }\n`;

  it('are listed once with their public keys, named per review rule, and handed to the gateway with the decision, inside the hashed policy version [R-APPROVER-ALLOWED]', () => {
    const policy = loadText(
      dir,
      `version: 1\ndefault: review\n${listed}rules:\n  - id: big\n    match: { tool: billing.refund }\n    effect: review\n    approvers: [bob@corp]\n  - id: small\n    match: { tool: billing.note }\n    effect: allow\n`,
    );
    expect(policy.approvers).toEqual([
      { id: 'alice@corp', key: alice, fingerprint: expect.stringMatching(/^alice@corp\+[0-9a-f]{8}$/), line: 4 },
      { id: 'bob@corp', key: bob, fingerprint: expect.stringMatching(/^bob@corp\+[0-9a-f]{8}$/), line: 6 },
    ]);
    expect(policy.rules[0]!.approvers).toEqual(['bob@corp']);
    expect(policy.rules[1]!.approvers).toBeUndefined();
    // The rule's own list; the whole list for a review rule without one and for the default; none for the rest.
    expect(evaluate(policy, { agent: 'a', tool: 'billing.refund' }).approvers?.map((a) => a.id)).toEqual(['bob@corp']);
    expect(evaluate(policy, { agent: 'a', tool: 'other' }).approvers?.map((a) => a.id)).toEqual(['alice@corp', 'bob@corp']);
    expect(evaluate(policy, { agent: 'a', tool: 'billing.note' }).approvers).toBeUndefined();
    expect(() => requireApprovers(policy)).not.toThrow();
  });

  const head = 'version: 1\ndefault: allow\n';
  const cases: Array<[string, string, string]> = [
    [
      'a key that belongs to someone else',
      `${head}approvers:\n  - { id: alice@corp, key: "${bob}" }\n`,
      'policy.yaml line 4: approvers[0].key belongs to bob@corp, not alice@corp; give the public key that alice@corp made with witness approver init',
    ],
    [
      'a key that is not a key',
      `${head}approvers:\n  - { id: alice@corp, key: "alice@corp+00000000+AAAA" }\n`,
      'policy.yaml line 4: approvers[0].key is not an approver public key (<name>+<hash>+<base64>, as witness approver init prints it): The verifier key uses an unknown algorithm; only Ed25519 (0x01) is supported',
    ],
    ['an approver listed twice', `${head}${listed}  - { id: alice@corp, key: "${alice}" }\n`, 'policy.yaml line 7: approvers[2].id "alice@corp" is already the id of approvers[0]'],
    [
      'an approver name with spaces',
      `${head}approvers:\n  - { id: alice smith, key: "${alice}" }\n`,
      'policy.yaml line 4: approvers[0].id must be a name of letters, digits and . _ @ - (at most 128), as in alice@acme.example',
    ],
    [
      'a rule naming nobody listed',
      `${head}${listed}rules:\n  - id: r\n    effect: review\n    approvers: [alice@corp, carol@corp]\n`,
      'policy.yaml line 10: rules[0].approvers[1] "carol@corp" is not listed under approvers',
    ],
    [
      'approvers on a rule that holds nothing',
      `${head}${listed}rules:\n  - id: r\n    effect: deny\n    approvers: [alice@corp]\n`,
      'policy.yaml line 10: rules[0].approvers applies only to a review rule, since only review holds a call for a person',
    ],
    ['an empty approvers list on a rule', `${head}${listed}rules:\n  - id: r\n    effect: review\n    approvers: []\n`, 'policy.yaml line 10: rules[0].approvers must not be an empty list'],
  ];

  it.each(cases)('are refused with the line and one sentence: %s', (_name, text, message) => {
    expect(loadError(dir, text).message).toBe(message);
  });

  it('must exist before a gateway enforces a policy that can hold a call, and need not in shadow mode or without review [R-APPROVER-ALLOWED]', () => {
    const rule = loadText(dir, `${head}rules:\n  - id: ok\n    effect: allow\n  - id: big\n    effect: review\n`);
    expect(() => requireApprovers(rule)).toThrow(
      expect.objectContaining({
        code: 'invalid_policy',
        message: expect.stringMatching(
          / line 6: rules\[1\] holds calls for review, but the policy lists no approvers who could release them; add an approvers: list with their public keys \(`witness approver init` makes one\)\.$/,
        ),
      }) as Error,
    );
    const byDefault = loadText(dir, 'version: 1\ndefault: review\n');
    expect(() => requireApprovers(byDefault)).toThrow(/ line 2: default is review, but the policy lists no approvers who could release/);
    expect(() => requireApprovers(loadText(dir, 'version: 1\ndefault: review\nmode: shadow\n'))).not.toThrow();
    expect(() => requireApprovers(loadText(dir, `${head}rules:\n  - id: no\n    effect: deny\n`))).not.toThrow();
  });
});
