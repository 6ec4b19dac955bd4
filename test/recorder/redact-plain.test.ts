import { describe, expect, it } from 'vitest';
import { canonicalize, toJsonValue } from '../../src/core/index.js';
import { Redactor } from '../../src/index.js';
import { NOT_PLAIN } from '../../src/recorder/redact.js';

/** What the recorder stored before the one-walk path, and still does for anything not plain. */
function twoWalks(r: Redactor, value: unknown): string {
  return canonicalize(r.redact(toJsonValue(value, { path: 'data' })));
}

const SECRET = 'sk-proj-Zq8xR2vLm4Tn6Wp0Yb3Kc5Hd7Jf9Gs1A';

/** Plain JSON of the shapes redaction has rules for: keys, name/value pairs, argument vectors, JSON text, header lines. */
const PLAIN: Array<[string, unknown]> = [
  ['a tool call with members out of order', { tool: 'billing.refund', arguments: { order_id: 'ord_1', amount_cents: 120, currency: 'USD', customer_id: 'cus_9' } }],
  ['secret keys, blanked or searched', { password: 'hunter2-hunter2', credentials: { user: 'ann', password: 'x-y-z-1' }, api_key: 42, token: ['t1', 't2'], secret: '', auth: null }],
  ['a secret in free text and in a URL', { note: `use Bearer ${SECRET} here`, url: 'https://ann:pa55word@db.example.com/x?api_key=abcdef123456' }],
  [
    'name/value pairs in either order and case',
    {
      env: [
        { name: 'DB_PASSWORD', value: 'p4ss-w0rd-9' },
        { Value: 'v-2', Name: 'API_TOKEN' },
        { key: 'region', value: 'eu' },
      ],
    },
  ],
  [
    'pairs in a list and argument vectors',
    {
      headers: [
        ['X-Api-Key', 'k-123456'],
        ['Accept', 'json'],
      ],
      argv: ['mysql', '-uroot', '-pS3cret!', 'db'],
      curl: ['curl', '-u', 'ann:pw-77', 'https://x'],
      flags: ['--api-key', 'abc-def', '--verbose'],
    },
  ],
  ['JSON text inside a string', { body: JSON.stringify({ password: 'in-json-1', nested: JSON.stringify({ token: 'deeper-2' }) }) }],
  ['header lines', { raw: 'GET / HTTP/1.1\r\nAuthorization: Digest abc=1\r\nCookie: a=1; b=2\r\n' }],
  ['numbers, -0, booleans, null, empty containers', { n: -0, f: 1.5, big: 9007199254740991, exp: 1e21, t: true, z: null, a: [], o: {} }],
  ['undefined members dropped', { keep: 1, gone: undefined, nested: { also: undefined, here: 'x' } }],
  ['a __proto__ member kept as data', JSON.parse('{"__proto__": {"password": "proto-secret-1"}, "b": 1}') as unknown],
  ['index-like member names', { '10': 'ten', '2': 'two', b: 'bee', a: [{ '1': 'one', password: 'idx-pw-1' }] }],
  ['an object without a prototype', Object.assign(Object.create(null) as object, { password: 'np-secret-1', x: 'y' })],
  ['a string at the top', `Authorization: Bearer ${SECRET}`],
  ['a list at the top', ['--password', 'top-pw-1', 'rest']],
];

/** Values toJsonValue converts or refuses: the one-walk path must hand each back untouched. */
const NOT_PLAIN_VALUES: Array<[string, () => unknown]> = [
  ['a Date', () => ({ at: new Date(0) })],
  ['a URL carrying a secret through toJSON', () => ({ link: new URL(`https://x.example/?token=${SECRET}`) })],
  ['an own toJSON', () => ({ v: { toJSON: () => ({ password: 'from-tojson-1' }) } })],
  ['an array with toJSON', () => ({ v: Object.assign(['a'], { toJSON: () => 'b' }) })],
  ['a class instance', () => ({ v: new (class Thing {})() })],
  ['a Map', () => ({ v: new Map() })],
  ['a boxed string', () => ({ v: new String('boxed') })],
  [
    'a cycle',
    () => {
      const o: Record<string, unknown> = { a: 1 };
      o['self'] = o;
      return o;
    },
  ],
  ['NaN', () => ({ v: Number.NaN })],
  ['an unsafe integer', () => ({ v: 2 ** 60 })],
  ['a BigInt', () => ({ v: 1n })],
  ['a function', () => ({ v: () => 1 })],
  ['a symbol', () => ({ v: Symbol('s') })],
  // eslint-disable-next-line no-sparse-arrays -- the hole is the case under test
  ['a sparse array', () => ({ v: [1, , 3] })],
  ['undefined in an array', () => ({ v: [undefined] })],
  ['a lone surrogate in a string', () => ({ v: 'a\uD800b' })],
  ['a lone surrogate in a member name', () => ({ ['k\uDC00']: 1 })],
  ['undefined at the top', () => undefined],
  [
    'nesting 100 deep',
    () => {
      let v: unknown = 'leaf';
      for (let i = 0; i < 100; i++) v = { v };
      return v;
    },
  ],
  ['a NaN under a secret key (blanked, yet still refused)', () => ({ password: Number.NaN })],
];

describe('redacting plain data in one walk', () => {
  for (const builtins of [true, false]) {
    const r = new Redactor({ builtins, keys: ['region'], patterns: [{ name: 'ticket', pattern: /T-\d{6}/g }] });
    for (const [name, value] of PLAIN) {
      it(`gives the same bytes as toJsonValue then redact for ${name}${builtins ? '' : ' (built-in rules off)'}`, () => {
        const one = r.redactPlainJson(value);
        expect(one).not.toBe(NOT_PLAIN);
        expect(canonicalize(one)).toBe(twoWalks(r, value));
      });
    }
  }

  it('reads each member once, as toJsonValue does, so a getter cannot show redaction one value and the ledger another', () => {
    let reads = 0;
    const value = {
      name: 'DB_PASSWORD',
      get value() {
        reads++;
        return reads === 1 ? 'first-secret-1' : 'second-value';
      },
    };
    const out = new Redactor().redactPlainJson(value) as Record<string, unknown>;
    expect(reads).toBe(1);
    expect(out['value']).toBe('[REDACTED:key]');
  });

  it('does not change the value it was given', () => {
    const value = { password: 'kept-in-caller-1', list: ['--token', 'abc-123'], nested: { z: 1, a: 2 } };
    const before = JSON.stringify(value);
    new Redactor().redactPlainJson(value);
    expect(JSON.stringify(value)).toBe(before);
  });

  for (const [name, make] of NOT_PLAIN_VALUES) {
    it(`leaves ${name} to toJsonValue (NOT_PLAIN), calling no toJSON`, () => {
      let called = false;
      const value = make();
      const spy = value !== null && typeof value === 'object' && 'v' in value && typeof (value as { v: { toJSON?: unknown } }).v?.toJSON === 'function';
      if (spy) {
        const v = (value as { v: { toJSON: () => unknown } }).v;
        const original = v.toJSON.bind(v);
        v.toJSON = () => {
          called = true;
          return original();
        };
      }
      expect(new Redactor().redactPlainJson(value)).toBe(NOT_PLAIN);
      expect(called).toBe(false);
    });
  }
});
