import { describe, expect, it } from 'vitest';
import { ConditionSyntaxError, evaluate, evaluateCondition, parseCondition, type Policy } from '../../src/policy/index.js';
import { rng } from '../helpers/random.js';
import { tempDir } from '../helpers/tmp.js';
import { loadText, withCondition } from './files.js';

const dir = tempDir('witness-policy-');
const policies = new Map<string, Policy>();

/** Whether `condition` holds for `args`, through a real policy file (a deny rule with that `when`, default allow). */
function holds(condition: string, args: unknown): boolean {
  let policy = policies.get(condition);
  if (policy === undefined) {
    policy = withCondition(dir, condition);
    policies.set(condition, policy);
  }
  const { decision } = evaluate(policy, { agent: 'a', server: 's', tool: 't', args });
  return decision === 'deny';
}

/**
 * The three-valued answer of `condition` for `args`, read off two real policy files: the condition
 * under a deny rule (default allow) and under an allow rule (default review). A condition that
 * holds makes both rules match; one that does not, neither; one that cannot be decided (an argument
 * that cannot be ordered against a number) makes only the deny rule match: it fails closed.
 */
function truth(condition: string, args: unknown): boolean | 'undecided' {
  const key = `allow:${condition}`;
  let allow = policies.get(key);
  if (allow === undefined) {
    allow = loadText(dir, `version: 1\ndefault: review\nrules:\n  - id: r\n    when: ${JSON.stringify(condition)}\n    effect: allow\n`);
    policies.set(key, allow);
  }
  const denied = holds(condition, args);
  const allowed = evaluate(allow, { agent: 'a', server: 's', tool: 't', args }).decision === 'allow';
  if (denied && allowed) return true;
  if (!denied && !allowed) return false;
  if (denied && !allowed) return 'undecided';
  throw new Error(`${condition} matched an allow rule but not a deny rule`);
}

const ARGS = {
  amount: 650,
  neg: -2,
  zero: 0,
  name: 'bob',
  flag: true,
  nothing: null,
  list: [1, 2, 'three'],
  obj: { a: 1, b: [true] },
  obj2: { b: [true], a: 1 },
  str500: '500',
};

describe('comparisons', () => {
  it.each([
    ['args.amount > 500', true],
    ['args.amount > 650', false],
    ['args.amount >= 650', true],
    ['args.amount < 651', true],
    ['args.amount <= 649', false],
    ['args.amount == 650', true],
    ['args.amount == 650.0', true],
    ['args.amount != 650', false],
    ['args.amount != 651', true],
    ['500 < args.amount', true],
    ['args.neg < -1.5', true],
    ['args.amount < 1e3', true],
    ['args.amount > args.zero', true],
    ['args.name == "bob"', true],
    ["args.name == 'bob'", true],
    ['args.name != "alice"', true],
    ['args.name < "carl"', true],
    ['args.name >= "bob"', true],
    ['args.name > "bobby"', false],
    ['args.flag == true', true],
    ['args.flag != false', true],
    ['args.nothing == null', true],
    ['args.obj == args.obj2', true],
    ['args.list == args.obj', false],
  ])('%s is %s', (condition, expected) => {
    expect(holds(condition, ARGS)).toBe(expected);
  });
});

describe('in, exists and string tests', () => {
  it.each([
    ['args.name in ["alice", "bob"]', true],
    ['args.name in ["alice"]', false],
    ['args.amount in [1, 650]', true],
    ['args.amount in ["650"]', false],
    ['args.nothing in [null]', true],
    ['args.amount exists', true],
    ['args.nothing exists', true],
    ['args.missing exists', false],
    ['not args.missing exists', true],
    ['args.name startsWith "bo"', true],
    ['args.name startsWith "ob"', false],
    ['args.name endsWith "ob"', true],
    ['args.name endsWith "bo"', false],
    ['args.name contains "o"', true],
    ['args.name contains "x"', false],
    ['args.list contains 2', true],
    ['args.list contains "three"', true],
    ['args.list contains "2"', false],
  ])('%s is %s', (condition, expected) => {
    expect(holds(condition, ARGS)).toBe(expected);
  });
});

describe('and, or and not', () => {
  it.each([
    ['args.amount > 500 and args.name == "bob"', true],
    ['args.amount > 500 and args.name == "eve"', false],
    ['args.amount > 1000 or args.name == "bob"', true],
    ['args.amount > 1000 or args.name == "eve"', false],
    ['not args.amount > 1000', true],
    ['not not args.flag == true', true],
    // and binds tighter than or: (false and true) or true
    ['args.flag == false and args.amount > 1 or args.name == "bob"', true],
    ['args.flag == false and (args.amount > 1 or args.name == "bob")', false],
    ['((args.amount > 1))', true],
    // not binds tighter than and/or: (not false) or false
    ['not args.amount > 1000 or args.name == "eve"', true],
    ['not (args.amount > 100 or args.name == "eve")', false],
    ['not args.name in ["alice", "eve"]', true],
  ])('%s is %s', (condition, expected) => {
    expect(holds(condition, ARGS)).toBe(expected);
  });

  it('treats a list of conditions in when as all of them', () => {
    const policy = loadText(dir, 'version: 1\ndefault: allow\nrules:\n  - id: r\n    when: [args.amount > 500, args.currency == "USD"]\n    effect: review\n');
    expect(evaluate(policy, { agent: 'a', tool: 't', args: { amount: 600, currency: 'USD' } }).decision).toBe('review');
    expect(evaluate(policy, { agent: 'a', tool: 't', args: { amount: 600, currency: 'EUR' } }).decision).toBe('allow');
    expect(evaluate(policy, { agent: 'a', tool: 't', args: { amount: 60, currency: 'USD' } }).decision).toBe('allow');
  });
});

describe('missing argument paths', () => {
  it.each([
    'args.missing == 5',
    'args.missing != 5',
    'args.missing == null',
    'args.missing < 5',
    'args.missing >= "a"',
    'args.missing in [1, null]',
    'args.missing exists',
    'args.missing startsWith "a"',
    'args.missing endsWith "a"',
    'args.missing contains "a"',
    'args.missing under "/"',
    'args.amount == args.missing',
    'args.customer.id == 1',
    'args.name.first exists',
    'args.list[3] exists',
    'args.amount.value > 1',
  ])('make %s false', (condition) => {
    expect(holds(condition, ARGS)).toBe(false);
  });

  it('are false when the call has no arguments at all, or arguments that are not an object', () => {
    for (const args of [undefined, null, 5, 'amount', [650]]) {
      expect(holds('args.amount > 500', args)).toBe(false);
      expect(holds('args.amount != 500', args)).toBe(false);
    }
  });

  it('are inverted by not like any false predicate, so "not ... under" denies a call that omits the path', () => {
    expect(holds('not args.missing == 5', ARGS)).toBe(true);
    expect(holds('not args.path under "/srv/data"', {})).toBe(true);
  });
});

describe('type mismatches', () => {
  it.each([
    ['args.str500 == 500', false],
    ['args.str500 != 500', true],
    ['args.amount == "650"', false],
    ['args.flag == 1', false],
    ['args.nothing == 0', false],
    ['args.amount contains 6', false],
    ['args.name in [1, true]', false],
    ['args.amount under "/"', false],
  ])('%s is %s: no coercion', (condition, expected) => {
    expect(truth(condition, ARGS)).toBe(expected);
  });

  it.each([
    ['args.str500 > 400', true],
    ['args.str500 >= 500', true],
    ['args.str500 < 400', false],
    ['args.amount < "700"', true],
    ['args.amount > "650.0"', false],
    ['args.money > 500', true],
    ['args.money <= 650', true],
    ['args.money < 650', false],
    ['args.negative < 0', true],
    ['args.zero >= 0', true],
  ])('%s is %s: a plain decimal numeral string is ordered against a number as a number, so "650" cannot slip past args.amount > 500', (condition, expected) => {
    expect(truth(condition, { ...ARGS, money: '650.00', negative: '-0.5', zero: '0' })).toBe(expected);
  });
});

describe('ordering that cannot be decided [R-POLICY-FAIL-CLOSED]', () => {
  // What an upstream server might read as a number although it is not a plain decimal numeral:
  // JavaScript's Number() takes "0x3e8", " 1000 ", "Infinity" and "1e3"; Python's int() takes
  // "1_000"; parseInt() reads "501e-3" as 501; JavaScript's > coerces [900] to 900 and true to 1.
  const spellings: Array<[string, unknown]> = [
    ['"0x3e8"', '0x3e8'],
    ['"0X3E8"', '0X3E8'],
    ['"0o1750"', '0o1750'],
    ['"0b1111101000"', '0b1111101000'],
    ['"1e3"', '1e3'],
    ['"501e-3"', '501e-3'],
    ['" 1000 "', ' 1000 '],
    ['"1000\\n"', '1000\n'],
    ['"+1000"', '+1000'],
    ['"01000"', '01000'],
    ['".5e4"', '.5e4'],
    ['"1000."', '1000.'],
    ['"1_000"', '1_000'],
    ['"1,000"', '1,000'],
    ['"Infinity"', 'Infinity'],
    ['"-Infinity"', '-Infinity'],
    ['"NaN"', 'NaN'],
    ['"1000 EUR"', '1000 EUR'],
    ['"$1000"', '$1000'],
    ['"１０００" (full-width digits)', '１０００'],
    ['""', ''],
    ['[900]', [900]],
    ['["1000"]', ['1000']],
    ['[]', []],
    ['{"valueOf": 1000}', { valueOf: 1000 }],
    ['{"amount": 1000}', { amount: 1000 }],
    ['true', true],
    ['false', false],
    ['null', null],
    ['NaN (a number from the SDK)', Number.NaN],
  ];

  it.each(spellings)('count amount %s as undecided against a number, for every ordering operator', (_name, amount) => {
    for (const condition of ['args.amount > 500', 'args.amount >= 500', 'args.amount < 500', 'args.amount <= 500', '500 < args.amount', 'args.limit > args.amount']) {
      expect([condition, truth(condition, { amount, limit: 100 })]).toEqual([condition, 'undecided']);
    }
  });

  it.each(spellings)('apply a deny and a review rule, and no allow rule, whose condition reads amount %s', (_name, amount) => {
    const policy = loadText(
      dir,
      `version: 1
default: allow
rules:
  - id: small-refunds
    match: { tool: billing.refund }
    when: args.amount <= 100
    effect: allow
  - id: refunds-over-500
    match: { tool: billing.refund }
    when: args.amount > 500
    effect: review
  - id: refunds-over-5000
    match: { tool: billing.refund }
    when: not args.amount <= 5000
    effect: deny
`,
    );
    const r = evaluate(policy, { agent: 'a', tool: 'billing.refund', args: { amount } });
    expect(r).toMatchObject({ decision: 'deny', rule: 'refunds-over-5000', matched: ['refunds-over-500', 'refunds-over-5000'] });
    expect(r.reason).toMatch(
      /^This rule applied because args\.amount is (a string that is not a plain decimal number|an array|an object|a boolean|null|not a number), so args\.amount <= 5000 could not be decided\.$/,
    );
  });

  it('still decides a plain number and a plain numeral string exactly, so honest calls are unaffected', () => {
    const policy = loadText(dir, 'version: 1\ndefault: deny\nrules:\n  - id: ok\n    when: args.amount <= 100\n    effect: allow\n  - id: big\n    when: args.amount > 500\n    effect: review\n');
    expect(evaluate(policy, { agent: 'a', tool: 't', args: { amount: 50 } })).toMatchObject({ decision: 'allow', matched: ['ok'] });
    expect(evaluate(policy, { agent: 'a', tool: 't', args: { amount: '50.25' } })).toMatchObject({ decision: 'allow', matched: ['ok'] });
    expect(evaluate(policy, { agent: 'a', tool: 't', args: { amount: 300 } })).toMatchObject({ decision: 'deny', matched: [] });
    expect(evaluate(policy, { agent: 'a', tool: 't', args: { amount: '650' } })).toMatchObject({ decision: 'review', rule: 'big', matched: ['big'] });
    expect(evaluate(policy, { agent: 'a', tool: 't', args: { amount: '650' } }).reason).toBeUndefined();
  });

  it.each([
    // and: false wins over undecided; or: true wins over undecided; not keeps undecided.
    ['args.amount > 500 and args.currency == "EUR"', false],
    ['args.amount > 500 and args.currency == "USD"', 'undecided'],
    ['args.amount > 500 or args.currency == "USD"', true],
    ['args.amount > 500 or args.currency == "EUR"', 'undecided'],
    ['not args.amount > 500', 'undecided'],
    ['not not args.amount > 500', 'undecided'],
    ['not (args.amount > 500 and args.currency == "EUR")', true],
    ['args.missing > 500', false],
    ['args.amount exists', true],
  ] as const)('combine undecided with and, or and not as three-valued logic: %s is %s', (condition, expected) => {
    expect(truth(condition, { amount: '0x3e8', currency: 'USD' })).toBe(expected);
  });

  it('let a deny rule "not args.amount >= 0" refuse an amount that is missing, negative or not a plain number, as the README says', () => {
    for (const amount of [undefined, -1, '-1', '0x3e8', [900], null]) expect([amount, holds('not args.amount >= 0', { amount })]).toEqual([amount, true]);
    for (const amount of [0, 650, '650', '0.5']) expect([amount, holds('not args.amount >= 0', { amount })]).toEqual([amount, false]);
  });

  it('names the argument and the test that could not be decided, but never the value, which may be a secret', () => {
    const policy = loadText(dir, 'version: 1\ndefault: allow\nrules:\n  - id: pin-check\n    when: args.pin > 999\n    effect: review\n    reason: PINs are checked by a person.\n');
    const r = evaluate(policy, { agent: 'a', tool: 't', args: { pin: '0x4d2' } });
    expect(r).toMatchObject({ decision: 'review', rule: 'pin-check' });
    expect(r.reason).toBe('PINs are checked by a person. This rule applied because args.pin is a string that is not a plain decimal number, so args.pin > 999 could not be decided.');
    expect(r.reason).not.toContain('4d2');
  });
});

describe('argument keys spelled another way [R-POLICY-FAIL-CLOSED]', () => {
  // Go's encoding/json (behind mcp-go) matches field names case-insensitively and lets the last of two
  // spellings win; other readers normalise Unicode, trim, or drop invisible characters. A key that is
  // not the rule's but folds to it may well be the argument the server reads, so "missing" would fail open.
  const spellings: Array<[string, string]> = [
    ['"Amount"', 'Amount'],
    ['"AMOUNT"', 'AMOUNT'],
    ['"aMoUnT"', 'aMoUnT'],
    ['"amount" + zero-width space', 'amount\u200b'],
    ['zero-width joiner + "amount"', '\u200damount'],
    ['"am" + soft hyphen + "ount"', 'am\u00adount'],
    ['"amount" + byte order mark', 'amount\ufeff'],
    ['"amount" + NUL', 'amount\u0000'],
    ['" amount "', ' amount '],
    ['full-width "ａｍｏｕｎｔ"', 'ａｍｏｕｎｔ'],
    ['full-width "ＡＭＯＵＮＴ"', 'ＡＭＯＵＮＴ'],
    ['mathematical bold "𝐚𝐦𝐨𝐮𝐧𝐭"', '𝐚𝐦𝐨𝐮𝐧𝐭'],
  ];
  const conditions = [
    'args.amount > 500',
    'args.amount <= 500',
    'args.amount == 100000',
    'args.amount != 5',
    'args.amount in [1, 2]',
    'args.amount exists',
    'not args.amount exists',
    'args.amount startsWith "1"',
    'args.amount contains "1"',
    'args.amount under "/"',
    'args.limit < args.amount',
  ];

  it.each(spellings)('count every test reading args.amount as undecided when the call spells it %s', (_name, key) => {
    for (const condition of conditions) expect([condition, truth(condition, { [key]: 100000, limit: 1 })]).toEqual([condition, 'undecided']);
  });

  it.each(spellings)('count args.amount as undecided when the call holds both "amount" and %s, in either order', (_name, key) => {
    for (const args of [
      { amount: 10, [key]: 100000 },
      { [key]: 100000, amount: 10 },
    ]) {
      expect(truth('args.amount > 500', args)).toBe('undecided');
      expect(truth('args.amount <= 500', args)).toBe('undecided');
    }
  });

  it('fold compatibility letters such as the Kelvin sign and the long s, as NFKC and Go do', () => {
    expect(truth('args.kind == "refund"', { '\u212aind': 'wire' })).toBe('undecided');
    expect(truth('args.task == "x"', { 'ta\u017fk': 'y' })).toBe('undecided');
  });

  it.each([
    ['args.customer.id == "c-1"', { customer: { ID: 'c-1' } }],
    ['args.customer.id == "c-1"', { Customer: { id: 'c-1' } }],
    ['args.customer.id == "c-1"', { customer: { id: 'c-2' }, CUSTOMER: { id: 'c-1' } }],
    ['args.customer["id"] != "c-1"', { customer: { Id: 'c-1' } }],
    ['args.items[0].sku == "A"', { items: [{ Sku: 'A' }] }],
    ['args["dry-run"] == false', { 'Dry-Run': true }],
    ['args["dry-run"] == false', { 'dry-run\u2060': true }],
    ['args.customer.address.country in ["DE"]', { customer: { address: { Country: 'DE' } } }],
  ])('count %s as undecided for %j', (condition, args) => {
    expect(truth(condition, args)).toBe('undecided');
  });

  it('apply a deny rule on args.amount > 500 to {"Amount": 100000}, as the review showed, and no allow rule', () => {
    const policy = loadText(
      dir,
      'version: 1\ndefault: allow\nrules:\n  - id: small\n    when: args.amount <= 500\n    effect: allow\n  - id: big-wires\n    match: { tool: wire }\n    when: args.amount > 500\n    effect: deny\n    reason: Wires over 500 are refused.\n',
    );
    const r = evaluate(policy, { agent: 'a', tool: 'wire', args: JSON.parse('{"to":"x","Amount":100000}') });
    expect(r).toMatchObject({ decision: 'deny', rule: 'big-wires', matched: ['big-wires'] });
    expect(r.reason).toBe('Wires over 500 are refused. This rule applied because args has "Amount", not "amount", so args.amount > 500 could not be decided.');
  });

  it.each([
    ['args.amount > 500', { amount: 10, Amount: 100000 }, 'args has both "amount" and "Amount", so args.amount > 500 could not be decided'],
    ['args.amount > 500', { 'amount\u200b': 100000 }, 'args has "amount\\u200b", not "amount", so args.amount > 500 could not be decided'],
    ['args.amount exists', { 'amount\u0000': 1 }, 'args has "amount\\u0000", not "amount", so args.amount exists could not be decided'],
    ['args.customer.id == 1', { customer: { ID: 1 } }, 'args.customer has "ID", not "id", so args.customer.id == 1 could not be decided'],
    ['args["dry-run"] == false', { 'DRY-RUN': true }, 'args has "DRY-RUN", not "dry-run", so args["dry-run"] == false could not be decided'],
    ['args.amount > 500', { [`AMOUNT${'\u200b'.repeat(100)}`]: 1 }, `args has "AMOUNT${'\\u200b'.repeat(58)}…", not "amount", so args.amount > 500 could not be decided`],
  ])('name the key and the path for %s, never the value, with invisible characters escaped', (condition, args, why) => {
    expect(evaluateCondition(parseCondition(condition), args)).toEqual({ holds: 'undecided', why });
  });

  it('leave honest calls as they were: an exact key alone, and keys that are not another spelling of the path', () => {
    const args = { amount: 650, currency: 'EUR', Currency2: 1, amounts: [1], amount_usd: 1, AMOUNT_USD: 2, 'amount-': 1, Name: 'x' };
    expect(truth('args.amount > 500', args)).toBe(true);
    expect(truth('args.amount < 500', args)).toBe(false);
    expect(truth('args.currency == "EUR"', args)).toBe(true);
    expect(truth('args.currency == "EUR"', { currency: 'EUR', amount: 1, Amount: 2 })).toBe(true);
    expect(truth('args.missing exists', { Amount: 1 })).toBe(false);
    expect(truth('args.customer.id == 1', { customer: 5, Other: { id: 1 } })).toBe(false);
    expect(truth('args.list[0] == 1', { list: [1] })).toBe(true);
    // Through the SDK a key may hold undefined; JSON drops it, so no server reads it.
    expect(truth('args.amount > 500', { amount: 650, Amount: undefined })).toBe(true);
  });
});

describe('numbers and booleans under string tests [R-POLICY-FAIL-CLOSED]', () => {
  // A server that reads the value as text (JavaScript, a template, a query string) sees 99123 as
  // "99123"; one that reads it as a number does not. Where the text passes, the answer depends on the
  // server, so a deny or review rule applies; where even the text fails, the test is false.
  it.each([
    ['args.acct startsWith "99"', { acct: 99123 }],
    ['args.acct endsWith "23"', { acct: 99123 }],
    ['args.acct contains "912"', { acct: 99123 }],
    ['args.amount startsWith "6"', { amount: 650 }],
    ['args.flag contains "t"', { flag: true }],
    ['args.flag startsWith "fal"', { flag: false }],
    ['not args.acct startsWith "99"', { acct: 99123 }],
  ])('%s is undecided for %j', (condition, args) => {
    expect(truth(condition, args)).toBe('undecided');
  });

  it.each([
    ['args.acct startsWith "98"', { acct: 99123 }],
    ['args.env startsWith "prod"', { env: 7 }],
    ['args.flag contains "x"', { flag: true }],
    ['args.acct startsWith "99"', { acct: '99123' }],
  ])('%s is decided for %j', (condition, args) => {
    expect(truth(condition, args)).toBe(condition === 'args.acct startsWith "99"');
  });

  it('applies a deny rule on an account prefix when the account arrives as a number', () => {
    const policy = loadText(dir, `version: 1\ndefault: allow\nrules:\n  - id: no-internal-accounts\n    when: 'args.acct startsWith "99"'\n    effect: deny\n`);
    const r = evaluate(policy, { agent: 'a', tool: 't', args: { acct: 99123 } });
    expect(r).toMatchObject({ decision: 'deny', rule: 'no-internal-accounts' });
    expect(r.reason).toContain('args.acct is a number whose text passes the test but whose value does not');
    expect(r.reason).not.toContain('99123');
    expect(evaluate(policy, { agent: 'a', tool: 't', args: { acct: 12345 } }).decision).toBe('allow');
  });
});

describe('values of a type the test cannot decide [R-POLICY-FAIL-CLOSED]', () => {
  // A server that expects one string may read an array as its first, last or any element, or join it
  // (JavaScript's String(["prod"]) is "prod"; a shell joins argv with spaces): a string test, in or ==
  // that answered "no" for an array or an object would let it past a deny rule.
  it.each([
    ['args.env startsWith "prod"', { env: ['prod'] }],
    ['args.env startsWith "prod"', { env: ['dev', 'prod-eu'] }],
    ['args.env startsWith "prod"', { env: [] }],
    ['args.env startsWith "prod"', { env: { name: 'prod' } }],
    ['not args.env startsWith "prod"', { env: ['prod'] }],
    ['args.url endsWith ".internal"', { url: ['http://db.internal'] }],
    ['args.url endsWith ".internal"', { url: [['http://db.internal']] }],
    ['args.cmd contains "rm -rf"', { cmd: ['rm -rf /'] }],
    ['args.cmd contains "rm -rf"', { cmd: ['rm', '-rf', '/'] }],
    ['args.cmd contains "rm -rf"', { cmd: [['rm -rf /']] }],
    ['args.cmd contains "rm -rf"', { cmd: [{ run: 'rm -rf /' }] }],
    ['args.cmd contains "rm -rf"', { cmd: { run: 'rm -rf /' } }],
    ['args.cmd contains "rm -rf"', { cmd: {} }],
    ['args.list contains 2', { list: [[2]] }],
    ['args.list contains 2', { list: [1, { n: 2 }] }],
    ['args.role in ["admin"]', { role: ['admin'] }],
    ['args.role in ["admin"]', { role: ['viewer', 'admin'] }],
    ['args.role in ["admin"]', { role: ['viewer'] }],
    ['args.role in ["admin"]', { role: { name: 'admin' } }],
    ['args.role in ["admin"]', { role: [] }],
    ['args.list in [1]', { list: [1, 2, 'three'] }],
    ['args.role == "admin"', { role: ['admin'] }],
    ['args.role != "admin"', { role: ['admin'] }],
    ['args.role == "admin"', { role: { 0: 'admin' } }],
    ['args.confirm == true', { confirm: [true] }],
    ['args.amount == 1000000', { amount: [1000000] }],
    ['args.owner == null', { owner: [] }],
    ['args.role == args.expected', { role: ['admin'], expected: 'admin' }],
    ['args.path under "/etc"', { path: ['/etc/passwd'] }],
    ['args.path under "/etc"', { path: { p: '/etc/passwd' } }],
    ['not args.path under "/srv/data"', { path: ['/srv/data/x', '/etc/passwd'] }],
    ['args.name startsWith args.prefix', { name: 'prod-1', prefix: ['prod'] }],
    ['args.name contains args.part', { name: 'prod-1', part: { p: 'prod' } }],
  ])('%s is undecided for %j', (condition, args) => {
    expect(truth(condition, args)).toBe('undecided');
  });

  it('apply the deny rules that the review showed failing open on arrays, and still allow honest strings', () => {
    const rules = [
      ['no-prod', 'args.env startsWith "prod"'],
      ['no-rm', 'args.command contains "rm -rf"'],
      ['no-internal', 'args.url endsWith ".internal"'],
      ['no-admin', 'args.role in ["admin"]'],
    ];
    const policy = loadText(dir, `version: 1\ndefault: allow\nrules:\n${rules.map(([id, when]) => `  - id: ${id}\n    when: ${JSON.stringify(when)}\n    effect: deny\n`).join('')}`);
    const attacks: Array<[Record<string, unknown>, string]> = [
      [{ env: ['prod'] }, 'no-prod'],
      [{ command: ['rm -rf /'] }, 'no-rm'],
      [{ url: ['http://db.internal'] }, 'no-internal'],
      [{ role: ['admin'] }, 'no-admin'],
    ];
    for (const [args, rule] of attacks) {
      const r = evaluate(policy, { agent: 'a', tool: 't', args });
      expect(r).toMatchObject({ decision: 'deny', rule, matched: [rule] });
      expect(r.reason).toMatch(/^This rule applied because args\.[a-z]+ is an array/);
    }
    expect(evaluate(policy, { agent: 'a', tool: 't', args: { env: 'dev', command: 'ls -l', url: 'https://example.com', role: 'viewer' } })).toMatchObject({ decision: 'allow', matched: [] });
    expect(evaluate(policy, { agent: 'a', tool: 't', args: { env: 'prod', command: 'ls', url: 'x', role: 'viewer' } })).toMatchObject({ decision: 'deny', rule: 'no-prod' });
  });

  it.each([
    ['args.env startsWith "prod"', { env: ['prod'] }, 'args.env is an array, so args.env startsWith "prod" could not be decided'],
    ['args.role in ["admin", "root"]', { role: {} }, 'args.role is an object, so args.role in ["admin", "root"] could not be decided'],
    ['args.role == args.want', { role: 'x', want: ['x'] }, 'args.want is an array, so args.role == args.want could not be decided'],
    ['args.path under "/etc"', { path: ['/etc/shadow'] }, 'args.path is an array, so args.path under "/etc" could not be decided'],
    [
      'args.cmd contains "rm -rf"',
      { cmd: ['rm -rf /secret-7731'] },
      'args.cmd is an array that holds "rm -rf" only nested deeper or as part of its text, not as an element, so args.cmd contains "rm -rf" could not be decided',
    ],
  ])('explain why %s could not be decided without showing the argument', (condition, args, why) => {
    expect(evaluateCondition(parseCondition(condition), args)).toEqual({ holds: 'undecided', why });
  });

  it('count an array too deep to search as undecided for contains', () => {
    let deep: unknown = 'safe';
    for (let i = 0; i < 100; i++) deep = [deep];
    expect(truth('args.cmd contains "rm"', { cmd: deep })).toBe('undecided');
  });

  it.each([
    ['args.tags contains "vip"', { tags: ['vip', 'gold'] }, true],
    ['args.tags contains "vip"', { tags: ['gold', 'silver'] }, false],
    ['args.tags contains "vip"', { tags: [] }, false],
    ['args.ids contains 2', { ids: [1, 2, 3] }, true],
    ['args.ids contains 2', { ids: [1, 3, 12] }, false],
    ['args.list contains "2"', { list: [1, 2, 'three'] }, false],
    ['args.cmd contains "rm -rf"', { cmd: ['rm -rf'] }, true],
    ['args.cmd contains "rm -rf"', { cmd: ['ls', '-l', '/tmp'] }, false],
    ['args.a == args.b', { a: [1, { x: 2 }], b: [1, { x: 2 }] }, true],
    ['args.a != args.b', { a: [1], b: { 0: 1 } }, true],
    ['args.role in ["admin"]', { role: 'admin' }, true],
    ['args.role in ["admin"]', { role: 'Admin' }, false],
    ['args.role == "admin"', { role: 'admin' }, true],
    ['args.env startsWith "prod"', { env: 'prod-eu' }, true],
    ['args.env startsWith "prod"', { env: 'dev' }, false],
    ['args.env startsWith "prod"', { env: 7 }, false],
    ['args.env startsWith "prod"', { env: null }, false],
    ['args.path under "/srv"', { path: '/srv/x' }, true],
    ['args.path under "/srv"', { path: 5 }, false],
    ['args.list exists', { list: [] }, true],
  ])('%s is still %s for %j, as before', (condition, args, expected) => {
    expect(truth(condition, args)).toBe(expected);
  });
});

describe('paths under a prefix', () => {
  it.each([
    ['/srv/data', true],
    ['/srv/data/', true],
    ['/srv/data/report.csv', true],
    ['/srv/data/a/b/c.txt', true],
    ['/srv/data/./a', true],
    ['/srv/data/a/../b', true],
    ['/srv//data/x', true],
    ['/srv/data/a/..', true],
    ['/srv/data/..', false],
    ['/srv/data/../secrets', false],
    ['/srv/data/../../etc/passwd', false],
    ['/srv/data/a/../../../etc', false],
    ['/srv/database/x', false],
    ['/srv/dat', false],
    ['/srv', false],
    ['/', false],
    ['srv/data/x', false],
    ['./srv/data', false],
    ['../srv/data/x', false],
    ['/srv/data\\..\\..\\etc', false],
    ['/srv/data/x\u0000', false],
    ['', false],
  ])('%j is under /srv/data: %s', (path, expected) => {
    expect(holds('args.path under "/srv/data"', { path })).toBe(expected);
  });

  it('normalise the prefix too, so a trailing slash or dots in it change nothing', () => {
    for (const prefix of ['/srv/data/', '/srv/x/../data', '/srv/./data']) {
      expect(holds(`args.path under "${prefix}"`, { path: '/srv/data/a' })).toBe(true);
      expect(holds(`args.path under "${prefix}"`, { path: '/srv/data/../etc' })).toBe(false);
    }
  });

  it('count every absolute path as under /, and no relative one', () => {
    expect(holds('args.path under "/"', { path: '/etc/../x' })).toBe(true);
    expect(holds('args.path under "/"', { path: 'x' })).toBe(false);
  });

  it('differ from startsWith, which compares text and is fooled by ..', () => {
    const path = '/srv/data/../../etc/passwd';
    expect(holds('args.path startsWith "/srv/data"', { path })).toBe(true);
    expect(holds('args.path under "/srv/data"', { path })).toBe(false);
  });
});

describe('nested argument paths', () => {
  const args = JSON.parse('{"customer": {"id": "c-1", "tags": ["vip"], "address": {"country": "DE"}}, "items": [{"sku": "A", "qty": 2}], "dry-run": true, "a.b": 1, "__proto__": {"x": 1}}') as unknown;

  it.each([
    ['args.customer.id == "c-1"', true],
    ['args.customer["id"] == "c-1"', true],
    ['args.customer.address.country in ["DE", "FR"]', true],
    ['args.customer.tags contains "vip"', true],
    ['args.items[0].sku == "A"', true],
    ['args.items["0"].qty >= 2', true],
    ['args.items[1].sku exists', false],
    ['args["dry-run"] == true', true],
    ['args["a.b"] == 1', true],
    ['args.a.b exists', false],
    ['args.__proto__.x == 1', true],
  ])('%s is %s', (condition, expected) => {
    expect(holds(condition, args)).toBe(expected);
  });

  it('read own data properties only: nothing from the prototype, no array length, no getters run', () => {
    let ran = false;
    const withGetter = Object.defineProperty({ plain: 1 }, 'g', {
      enumerable: true,
      get() {
        ran = true;
        return 1;
      },
    });
    expect(holds('args.constructor exists', {})).toBe(false);
    expect(holds('args.toString exists', {})).toBe(false);
    expect(holds('args.__proto__ exists', {})).toBe(false);
    expect(holds('args.list.length exists', { list: [1] })).toBe(false);
    expect(holds('args.name.length > 0', { name: 'x' })).toBe(false);
    expect(holds('args.g exists', withGetter)).toBe(false);
    expect(ran).toBe(false);
  });
});

describe('condition syntax', () => {
  it.each([
    ['args.amount = 5', '"=" is not an operator; use == to compare', 12],
    ['args.a > 1 && args.b > 2', '"&&" is not an operator; use and', 11],
    ['args.a > 1 || args.b > 2', '"||" is not an operator; use or', 11],
    ['!args.a exists', '"!" is not an operator; use not, or != to compare', 0],
    ['args.a exists AND args.b exists', '"AND" is unexpected here; join conditions with and or or', 14],
    ['args.a EXISTS', '"EXISTS" must be written in lowercase', 7],
    ['args.a startswith "x"', '"startswith" is not an operator; write startsWith or endsWith', 7],
    ['args.flag', 'expected an operator after args.flag, such as ==, >, in, exists or under (to test a flag, write args.flag == true)', 9],
    ['args.a not in [1]', '"not" goes before a condition, as in not args.a in [...]', 7],
    ['args.a like "x"', 'expected an operator after args.a (==, !=, <, <=, >, >=, in, exists, startsWith, endsWith, contains or under), but found "like"', 7],
    ['args > 1', 'args alone is not a value; name an argument, as in args.amount', 0],
    ['amount > 500', '"amount" is not a known name; argument paths start with args, as in args.amount', 0],
    ['args.a >', 'expected a value after ">", but the condition ends', 8],
    ['args.a == 1 and', 'the condition ends where an argument such as args.amount was expected', 15],
    ['and args.a exists', 'expected an argument such as args.amount, but found "and"', 0],
    ['(args.a > 1', 'expected ")" to close the "(" at character 1, but found the end of the condition', 11],
    ['args.a > 1)', 'there is a ")" without a matching "("', 10],
    ['args.a in "x"', 'in needs a list in brackets on its right, such as ["a", "b"]', 10],
    ['args.a in []', 'the list after in is empty, so the condition could never be true', 10],
    ['args.a in [1, args.b]', 'a list after in may hold only constants (numbers, strings, true, false, null)', 10],
    ['args.a in [1 2]', 'expected "," or "]" in the list, but found the number 2', 13],
    ['args.p under "srv"', 'under needs an absolute path in quotes on its right, such as "/srv/data"', 13],
    ['args.p under args.root', 'under needs an absolute path in quotes on its right, such as "/srv/data"', 13],
    ['args.p under "/srv\\\\x"', 'the path after under may not contain a backslash or a NUL character', 13],
    ['5 > 3', 'this compares two constants; one side must be an argument such as args.amount', 0],
    ['"x" exists', 'exists needs an argument on its left, such as args.path', 0],
    ['args.a == "open', 'the string is missing its closing "', 10],
    ['args.a == "\\q"', 'the escape "\\q" is not supported in a string', 11],
    ['args.a > 1 args.b > 2', '"args" is unexpected here; join conditions with and or or', 11],
    ['args.dry-run == true', '"-" is not allowed here; a key with a dash is written args["my-key"]', 8],
    ['args.a > 1e999', 'the number 1e999 is too large', 9],
    ['args.a > 12abc', '"12a" is not a number', 9],
    ['args.items[-1] exists', 'expected a quoted key or a non-negative whole number inside [ ]', 11],
    ['args.items[1.5] exists', 'expected a quoted key or a non-negative whole number inside [ ]', 11],
    ['args.items[0 exists', 'expected "]" to close the "[" at character 11', 13],
    ['args. > 1', 'expected a name after "."; write other keys as args["key"] and indexes as args.list[0]', 5],
    ['args.a == 1 ; drop', '";" is not allowed in a condition', 12],
    ['', 'the condition is empty', 0],
    ['   ', 'the condition is empty', 0],
    [`${'not '.repeat(40)}args.a exists`, 'the condition nests deeper than 32 levels', 128],
    [`${'('.repeat(40)}args.a exists${')'.repeat(40)}`, 'the condition nests deeper than 32 levels', 32],
    [`args.a == "${'x'.repeat(5000)}"`, 'the condition is longer than 4096 characters', 0],
  ])('refuses %j: %s', (condition, message, offset) => {
    let error: unknown;
    try {
      parseCondition(condition);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConditionSyntaxError);
    expect((error as ConditionSyntaxError).message).toBe(message);
    expect((error as ConditionSyntaxError).offset).toBe(offset);
  });

  it('accepts whitespace, both quote styles and escapes', () => {
    expect(holds("  args . name   ==   'b\\'o\"b'  ", { name: 'b\'o"b' })).toBe(true);
    expect(holds('args.s == "tab\\there\\u00e9"', { s: 'tab\there\u00e9' })).toBe(true);
  });
});

describe('evaluation of arbitrary arguments', () => {
  const everyOperator = loadText(
    dir,
    `version: 1
default: allow
rules:
${[
  'args.a == 1',
  'args.a != "x"',
  'args.a < 5',
  'args.a.b <= "m"',
  'args.a > args.b',
  'args.b >= -1',
  'args.c in [1, "x", true, null]',
  'args.a.b.c exists',
  'args.s startsWith "a"',
  'args.s endsWith "z"',
  'args.l contains 1',
  'args.s contains "q"',
  'args.p under "/srv"',
  'not (args.a exists or args.b[0] exists) and args["__proto__"] exists',
  'args.l[2].x == args.l[1]',
]
  .map((c, i) => `  - id: r${i}\n    when: ${JSON.stringify(c)}\n    effect: ${['allow', 'deny', 'review'][i % 3]}\n`)
  .join('')}`,
  );

  const KEYS = ['a', 'b', 'c', 's', 'l', 'p', 'x', '__proto__', 'constructor', '0', '2'];
  function randomValue(r: () => number, depth: number): unknown {
    const k = Math.floor(r() * (depth > 3 ? 9 : 12));
    switch (k) {
      case 0:
        return null;
      case 1:
        return r() < 0.5;
      case 2:
        return Math.floor(r() * 20) - 5;
      case 3:
        return [NaN, Infinity, -Infinity, -0, 1e308, Number.MIN_VALUE][Math.floor(r() * 6)];
      case 4:
        return ['', 'a', 'xyz', 'q', '/srv/a', '/srv/../etc', 'x'.repeat(100), '\u0000', '\ud800'][Math.floor(r() * 9)];
      case 5:
        return undefined;
      case 6:
        return [10n, Symbol('s'), () => 1, new Date(0), /re/][Math.floor(r() * 5)];
      case 7:
        return 1;
      case 8:
        return 'a';
      case 9:
      case 10: {
        const o: Record<string, unknown> = r() < 0.2 ? (Object.create(null) as Record<string, unknown>) : {};
        const n = Math.floor(r() * 4);
        for (let i = 0; i < n; i++) Object.defineProperty(o, KEYS[Math.floor(r() * KEYS.length)]!, { value: randomValue(r, depth + 1), enumerable: true, configurable: true, writable: true });
        return o;
      }
      default:
        return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
    }
  }

  it('never throws and always returns a decision, for thousands of random argument objects', () => {
    const r = rng(0x5eed);
    for (let i = 0; i < 3000; i++) {
      const args = randomValue(r, 0);
      const result = evaluate(everyOperator, { agent: 'a', tool: 't', args });
      expect(['allow', 'deny', 'review']).toContain(result.decision);
    }
  });

  it('never throws on hostile objects: throwing getters and proxies, revoked proxies, cycles', () => {
    const throwing = new Proxy(
      {},
      {
        get() {
          throw new Error('get');
        },
        getOwnPropertyDescriptor() {
          throw new Error('descriptor');
        },
        ownKeys() {
          throw new Error('keys');
        },
        getPrototypeOf() {
          throw new Error('proto');
        },
      },
    );
    const { proxy: revoked, revoke } = Proxy.revocable({}, {});
    revoke();
    const cycle: Record<string, unknown> = { b: 1 };
    cycle['a'] = cycle;
    cycle['l'] = [cycle, cycle];
    const getter = Object.defineProperty({}, 'a', {
      enumerable: true,
      get() {
        throw new Error('getter');
      },
    });
    for (const args of [throwing, revoked, { a: throwing, b: revoked, l: [revoked] }, cycle, getter, { l: [1, throwing, { x: revoked }] }]) {
      expect(() => evaluate(everyOperator, { agent: 'a', tool: 't', args })).not.toThrow();
    }
    // A predicate that cannot read its value is false, and not inverts it as usual.
    expect(holds('args.a == 1', throwing)).toBe(false);
    expect(holds('not args.a == 1', throwing)).toBe(true);
    expect(holds('args.a == args.a', cycle)).toBe(true);
  });

  it('never throws when the caller passes names that are not strings', () => {
    const bad = { agent: 5, server: null, tool: undefined, args: {} } as unknown as Parameters<typeof evaluate>[1];
    expect(() => evaluate(everyOperator, bad)).not.toThrow();
  });
});
