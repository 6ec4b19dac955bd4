import { readFileSync } from 'node:fs';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import canonicalizeModule from 'canonicalize';
import { DEFAULT_MAX_DEPTH, canonicalBytes, canonicalize, encodeJcs, serializeJcs, toJsonValue } from '../../src/core/canonical-json.js';
import { strictParse } from '../../src/core/strict-json.js';
import { randomJsonValue, rng } from '../helpers/random.js';
import { thrown } from '../helpers/errors.js';

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/jcs/${name}`, import.meta.url), 'utf8');
const library = ((canonicalizeModule as unknown as { default?: unknown }).default ?? canonicalizeModule) as (v: unknown) => string;

function fromBits(hex: string): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, BigInt(`0x${hex}`));
  return view.getFloat64(0);
}

describe('RFC 8785 test vectors', () => {
  it('canonicalises the Section 3.2.2 example to the output the RFC prints', () => {
    const input = strictParse(fixture('rfc8785-3.2.2-input.json'));
    expect(canonicalize(input)).toBe(fixture('rfc8785-3.2.2-output.json'));
  });

  it('produces the UTF-8 bytes given in Section 3.2.4', () => {
    const hex = fixture('rfc8785-3.2.4-output.hex').replace(/\s+/g, '');
    const input = strictParse(fixture('rfc8785-3.2.2-input.json'));
    expect(canonicalBytes(input).toString('hex')).toBe(hex);
  });

  it('sorts property names by UTF-16 code units as in the Section 3.2.3 example', () => {
    const input = strictParse(fixture('rfc8785-3.2.3-sorting-input.json'));
    const out = canonicalize(input);
    expect(out).toBe(fixture('rfc8785-3.2.3-sorting-output.json'));
    // Read the values in text order: a parsed object would list the integer-like key "1" first.
    expect([...out.matchAll(/:"([^"]*)"/g)].map((m) => m[1])).toEqual([
      'Carriage Return',
      'One',
      'Control',
      'Latin Small Letter O With Diaeresis',
      'Euro Sign',
      'Emoji: Grinning Face',
      'Hebrew Letter Dalet With Dagesh',
    ]);
  });

  const appendixB = JSON.parse(fixture('rfc8785-appendix-b.json')) as {
    valid: { ieee754: string; json: string }[];
    invalid: { ieee754: string; comment: string }[];
  };

  // Integers beyond 2^53 that JCS writes without an exponent are refused on write, because the
  // strict reader refuses them on read (I-JSON); every other Appendix B row must serialise exactly.
  const unsafeInteger = (json: string) => /^-?\d+$/.test(json) && !Number.isSafeInteger(Number(json));

  it.each(appendixB.valid.filter((v) => !unsafeInteger(v.json)).map((v) => [v.ieee754, v.json]))('serialises the IEEE 754 value 0x%s as %s (Appendix B)', (bits, json) => {
    expect(canonicalize(fromBits(bits))).toBe(json);
    expect(canonicalize([fromBits(bits)])).toBe(`[${json}]`);
  });

  it.each(appendixB.valid.filter((v) => unsafeInteger(v.json)).map((v) => [v.ieee754, v.json]))(
    'refuses 0x%s (JCS form %s), an integer beyond 2^53 that a strict reader could not read back',
    (bits) => {
      const e = thrown(() => canonicalize({ n: fromBits(bits) }));
      expect(e.code).toBe('not_serialisable');
      expect(e.details).toEqual({ path: 'n' });
    },
  );

  it.each(appendixB.invalid.map((v) => [v.comment, v.ieee754]))('rejects %s (0x%s), which Appendix B leaves without a JSON form', (_name, bits) => {
    const e = thrown(() => canonicalize({ n: fromBits(bits) }));
    expect(e.code).toBe('not_serialisable');
    expect(e.details).toEqual({ path: 'n' });
  });

  it.each(['arrays', 'french', 'structures', 'values', 'weird'])('canonicalises the reference test data file %s.json', (name) => {
    const input = strictParse(fixture(`input/${name}.json`));
    expect(canonicalize(input)).toBe(fixture(`output/${name}.json`).replace(/\n+$/, ''));
  });

  it('leaves Unicode unnormalised, as the reference unicode.json vector requires', () => {
    expect(canonicalize({ 'Unnormalized Unicode': 'A\u030a' })).toBe('{"Unnormalized Unicode":"A\u030a"}');
  });

  it('escapes only the characters JSON requires, with lowercase hex', () => {
    expect(canonicalize('\u0000\u0008\u0009\u000a\u000c\u000d\u001f"\\/\u007f\u2028')).toBe('"\\u0000\\b\\t\\n\\f\\r\\u001f\\"\\\\/\u007f\u2028"');
  });
});

describe('canonicalize on values that can be recorded', () => {
  it('drops properties whose value is undefined, like JSON.stringify', () => {
    expect(canonicalize({ b: 1, a: undefined, c: { d: undefined } })).toBe('{"b":1,"c":{}}');
  });

  it('uses toJSON() like JSON.stringify, passing the property name', () => {
    const keys: string[] = [];
    const spy = {
      toJSON(key: string) {
        keys.push(key);
        return { at: key };
      },
    };
    expect(canonicalize({ when: new Date(0), spy, list: [spy] })).toBe('{"list":[{"at":"0"}],"spy":{"at":"spy"},"when":"1970-01-01T00:00:00.000Z"}');
    expect(keys).toEqual(['spy', '0']);
    expect(canonicalize(spy)).toBe('{"at":""}');
  });

  it('follows a toJSON() that returns another value with toJSON(), such as a wrapped Date', () => {
    class Stamp {
      constructor(private readonly d: Date) {}
      toJSON() {
        return this.d;
      }
    }
    expect(canonicalize({ t: new Stamp(new Date(86_400_000)) })).toBe('{"t":"1970-01-02T00:00:00.000Z"}');
  });

  it('unwraps boxed primitives like JSON.stringify', () => {
    expect(canonicalize([new Number(1.5), new String('s'), new Boolean(false)])).toBe('[1.5,"s",false]');
  });

  it('writes negative zero as 0 and stores it as 0', () => {
    expect(canonicalize({ z: -0 })).toBe('{"z":0}');
    expect(Object.is((toJsonValue({ z: -0 }) as { z: number }).z, 0)).toBe(true);
  });

  it('accepts null-prototype objects and shared, non-circular references', () => {
    const shared = { x: 1 };
    const bare = Object.assign(Object.create(null) as object, { b: shared, a: shared });
    expect(canonicalize(bare)).toBe('{"a":{"x":1},"b":{"x":1}}');
  });

  it('accepts plain objects and arrays created in another realm', () => {
    const foreign = runInNewContext('({ b: [1, { c: "x" }], a: null })') as unknown;
    expect(Object.getPrototypeOf(foreign)).not.toBe(Object.prototype);
    expect(canonicalize(foreign)).toBe('{"a":null,"b":[1,{"c":"x"}]}');
    expect(thrown(() => canonicalize(runInNewContext('({ m: new Map() })'))).details).toEqual({ path: 'm' });
  });

  it('keeps a "__proto__" property as data rather than setting the prototype', () => {
    const input = JSON.parse('{"__proto__":{"polluted":true},"a":1}') as unknown;
    expect(canonicalize(input)).toBe('{"__proto__":{"polluted":true},"a":1}');
    const copy = toJsonValue(input) as Record<string, unknown>;
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect(Object.hasOwn(copy, '__proto__')).toBe(true);
    expect((copy as { polluted?: unknown }).polluted).toBeUndefined();
  });

  it('sorts a "__proto__" member among the others by its code units, as the canonicalize library does, at every depth and whatever it holds [R-HOSTILE]', () => {
    const texts = ['{"__proto__":1}', '{"b":2,"__proto__":"attacker-iban","A":1,"_":0,"a":[{"__proto__":null}]}', '{"x":{"__proto__":{"__proto__":{"y":[1,"__proto__"]}}},"__proto__":[]}'];
    for (const text of texts) {
      const value = strictParse(text);
      expect(canonicalize(value), text).toBe(library(JSON.parse(text)));
      // The copy that is hashed re-serialises to the same bytes, so no member was lost on the way.
      expect(canonicalize(toJsonValue(value)), text).toBe(canonicalize(value));
    }
    expect(canonicalize(strictParse('{"__proto__":1}'))).toBe('{"__proto__":1}');
    expect(canonicalize(strictParse(texts[1]!))).toBe('{"A":1,"_":0,"__proto__":"attacker-iban","a":[{"__proto__":null}],"b":2}');
  });

  it('returns from toJsonValue a plain copy that later changes to the input do not reach', () => {
    const input = { a: [1, { b: 'c' }], d: new Date(0), e: undefined };
    const copy = toJsonValue(input);
    input.a.push(2);
    expect(copy).toEqual({ a: [1, { b: 'c' }], d: '1970-01-01T00:00:00.000Z' });
    expect(canonicalize(copy)).toBe('{"a":[1,{"b":"c"}],"d":"1970-01-01T00:00:00.000Z"}');
  });

  it('reads each getter once, so a changing getter cannot make the hash differ from the stored copy', () => {
    let n = 0;
    const input = {
      get tick() {
        return ++n;
      },
    };
    const copy = toJsonValue(input);
    expect(copy).toEqual({ tick: 1 });
    expect(n).toBe(1);
  });

  it(`accepts nesting up to ${DEFAULT_MAX_DEPTH} levels and honours a custom maxDepth`, () => {
    let v: unknown = 1;
    for (let i = 0; i < DEFAULT_MAX_DEPTH; i++) v = i % 2 ? [v] : { k: v };
    expect(() => canonicalize(v)).not.toThrow();
    const e = thrown(() => canonicalize([v]));
    expect(e.message).toMatch(/is nested more than 200 levels deep/);
    expect(e.details?.['path']).toBe(`[0]${'[0].k'.repeat(DEFAULT_MAX_DEPTH / 2)}`.slice(0, -2));
    expect(canonicalize([[1]], { maxDepth: 2 })).toBe('[[1]]');
    expect(thrown(() => canonicalize([[[1]]], { maxDepth: 2 })).details).toEqual({ path: '[0][0]', maxDepth: 2 });
  });

  it('encodes canonicalBytes as UTF-8', () => {
    expect(canonicalBytes({ '€': '😀' }).toString('hex')).toBe(Buffer.from('{"€":"😀"}', 'utf8').toString('hex'));
  });

  it('agrees with the canonicalize library and round-trips through strictParse on random JSON values', () => {
    const r = rng(8785);
    for (let i = 0; i < 3000; i++) {
      const v = randomJsonValue(r);
      const text = canonicalize(v);
      expect(text).toBe(library(v));
      const back = strictParse(text);
      expect(back).toEqual(toJsonValue(v));
      expect(canonicalize(back)).toBe(text);
    }
  });
});

describe('canonicalize on values that cannot be recorded', () => {
  const self: Record<string, unknown> = { name: 'loop' };
  self['self'] = self;
  const deepCycle: { a: { b: unknown[] } } = { a: { b: [] } };
  deepCycle.a.b.push({ up: deepCycle.a });
  let tooDeep: unknown = 'leaf';
  for (let i = 0; i < DEFAULT_MAX_DEPTH + 1; i++) tooDeep = [tooDeep];
  class Widget {
    size = 1;
  }
  const forever = {
    toJSON(): unknown {
      return { toJSON: forever.toJSON };
    },
  };

  const cases: [string, unknown, string, RegExp][] = [
    ['a BigInt', { data: { amount: 10n } }, 'data.amount', /^BigInt at data\.amount cannot be recorded as JSON; convert it to a string or number\.$/],
    ['a boxed BigInt', { n: Object(1n) }, 'n', /^BigInt at n /],
    ['a function', { data: { args: { cb: () => 1 } } }, 'data.args.cb', /^Function at data\.args\.cb /],
    ['a symbol', { tags: ['a', Symbol('b')] }, 'tags[1]', /^Symbol at tags\[1\] /],
    ['undefined inside an array', { items: [1, 2, undefined] }, 'items[2]', /^undefined at items\[2\] .*use null/],
    // eslint-disable-next-line no-sparse-arrays -- the hole is what is being tested
    ['an empty array slot', { items: [1, , 3] }, 'items[1]', /^undefined at items\[1\] /],
    ['undefined at the top level', undefined, '(value)', /^undefined at \(value\) /],
    ['NaN', { m: { ratio: NaN } }, 'm.ratio', /^NaN at m\.ratio /],
    ['Infinity', [Infinity], '[0]', /^Infinity at \[0\] /],
    ['-Infinity', { low: -Infinity }, 'low', /^-Infinity at low /],
    ['a lone high surrogate in a string', { text: 'ab\ud83d' }, 'text', /^String at text contains a lone UTF-16 surrogate \(U\+D83D\)/],
    ['a lone low surrogate in a string', { text: ['\ude00x'] }, 'text[0]', /U\+DE00/],
    ['a reversed surrogate pair', { text: '\ude00\ud83d' }, 'text', /U\+DE00/],
    ['a lone surrogate in a property name', { outer: { ['k\ud800']: 1 } }, 'outer["k\\ud800"]', /^Property name at outer\["k\\ud800"\] contains a lone UTF-16 surrogate \(U\+D800\)/],
    ['a Map', { m: new Map([[1, 2]]) }, 'm', /^Map at m .*Object\.fromEntries/],
    ['a Set', { s: new Set([1]) }, 's', /^Set at s .*Array\.from/],
    ['a class instance without toJSON', { w: new Widget() }, 'w', /^Instance of Widget at w .*toJSON/],
    ['a WeakMap', { w: new WeakMap() }, 'w', /^Instance of WeakMap at w /],
    ['a Promise', { p: Promise.resolve(1) }, 'p', /^Promise at p .*await/],
    ['an Error', { err: new TypeError('boom') }, 'err', /^TypeError at err .*message/],
    ['a Buffer', { body: Buffer.from('hi') }, 'body', /^Buffer \(binary data\) at body .*base64/],
    ['a Uint8Array', { body: new Uint8Array(2) }, 'body', /^Uint8Array \(binary data\) at body .*base64/],
    ['an ArrayBuffer', { body: new ArrayBuffer(2) }, 'body', /^ArrayBuffer \(binary data\) at body .*base64/],
    ['a DataView', { body: new DataView(new ArrayBuffer(2)) }, 'body', /^DataView \(binary data\) at body/],
    ['an invalid Date', { when: new Date(Number.NaN) }, 'when', /^Invalid Date at when /],
    ['an invalid Date returned by toJSON()', { when: { toJSON: () => new Date('nope') } }, 'when', /^Invalid Date at when /],
    ['an object that contains itself', { root: self }, 'root.self', /^Circular reference at root\.self \(a reference back to root\)/],
    ['a cycle through an array', deepCycle, 'a.b[0].up', /^Circular reference at a\.b\[0\]\.up \(a reference back to a\)/],
    ['nesting deeper than the limit', { deep: tooDeep }, `deep${'[0]'.repeat(DEFAULT_MAX_DEPTH - 1)}`, /is nested more than 200 levels deep/],
    ['a property name that needs quoting', { headers: { 'content-type': 1n } }, 'headers["content-type"]', /^BigInt at headers\["content-type"\] /],
    [
      'a toJSON() that throws',
      {
        x: {
          toJSON() {
            throw new Error('nope');
          },
        },
      },
      'x',
      /^toJSON\(\) of the value at x threw \(nope\)/,
    ],
    ['a toJSON() that returns undefined', { x: { toJSON: () => undefined } }, 'x', /^undefined \(returned by toJSON\(\)\) at x /],
    ['a toJSON() that returns a BigInt', { x: [{ toJSON: () => 5n }] }, 'x[0]', /^BigInt at x\[0\] /],
    ['a toJSON() chain that never ends', { x: forever }, 'x', /keeps returning objects with toJSON/],
  ];

  it.each(cases)('rejects %s and names its path', (_name, value, path, message) => {
    const e = thrown(() => canonicalize(value));
    expect(e.code).toBe('not_serialisable');
    expect(e.details?.['path']).toBe(path);
    expect(e.message).toMatch(message);
    // One sentence: no line breaks, ends with a full stop, and says what to do after the semicolon.
    expect(e.message).not.toMatch(/\n/);
    expect(e.message).toMatch(/; [^;]+\.$/);
  });

  it.each(cases)('rejects %s in toJsonValue and canonicalBytes too', (_name, value, path) => {
    expect(thrown(() => toJsonValue(value)).details?.['path']).toBe(path);
    expect(thrown(() => canonicalBytes(value)).details?.['path']).toBe(path);
  });

  it('prefixes error paths with the path option', () => {
    expect(thrown(() => canonicalize({ args: { amount: 1n } }, { path: 'data' })).message).toBe('BigInt at data.args.amount cannot be recorded as JSON; convert it to a string or number.');
    expect(thrown(() => canonicalize([1n], { path: 'data' })).details).toEqual({ path: 'data[0]' });
    expect(thrown(() => canonicalize(1n, { path: 'data' })).details).toEqual({ path: 'data' });
  });

  it('keeps the message short when the path is very long, and the full path in details', () => {
    const e = thrown(() => canonicalize({ deep: tooDeep }));
    expect(e.message.length).toBeLessThan(400);
    expect((e.details?.['path'] as string).length).toBeGreaterThan(500);
  });

  it('reports a cycle reached through toJSON() as too deep instead of overflowing the stack', () => {
    class Node {
      toJSON(): unknown {
        return { next: this };
      }
    }
    const e = thrown(() => canonicalize(new Node()));
    expect(e.code).toBe('not_serialisable');
    expect(e.message).toMatch(/nested more than 200 levels/);
  });
});

describe('encodeJcs: the plain copy and its JCS text from one walk', () => {
  it('writes the same bytes as the canonicalize library and as serializeJcs, and the same copy as toJsonValue, on random JSON values', () => {
    const r = rng(9785);
    for (let i = 0; i < 3000; i++) {
      const v = randomJsonValue(r);
      const { value, text } = encodeJcs(v);
      expect(text).toBe(library(v));
      expect(text).toBe(serializeJcs(toJsonValue(v)));
      expect(value).toEqual(toJsonValue(v));
    }
  });

  it('orders member names that are array indices by code units, not numerically as engines enumerate them', () => {
    const input = { '10': 'a', '9': 'b', '1': { '2': 0, '10': 1, x: 2 }, b: [{ '0': 1, '-1': 2 }], '4294967295': 3, '01': 4 };
    const { text } = encodeJcs(input);
    expect(text).toBe(library(input));
    expect(text).toBe('{"01":4,"1":{"10":1,"2":0,"x":2},"10":"a","4294967295":3,"9":"b","b":[{"-1":2,"0":1}]}');
  });

  it('keeps a "__proto__" member in the text and in the copy', () => {
    const input = strictParse('{"b":1,"__proto__":{"x":[1]},"A":2}');
    const { value, text } = encodeJcs(input);
    expect(text).toBe('{"A":2,"__proto__":{"x":[1]},"b":1}');
    expect(Object.hasOwn(value as object, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
  });

  it('writes the JCS of its copy even when someone has put a toJSON on Object.prototype or Array.prototype', () => {
    // A toJSON that answers differently each time: JSON.stringify on the copy would call it again.
    for (const proto of [Object.prototype, Array.prototype] as object[]) {
      let calls = 0;
      const toJSON = (): unknown => Object.assign(Object.create(null) as object, { call: ++calls });
      Object.defineProperty(proto, 'toJSON', { value: toJSON, configurable: true, writable: true, enumerable: false });
      let encoded: ReturnType<typeof encodeJcs>;
      try {
        encoded = encodeJcs(proto === Array.prototype ? [1] : { a: 1 });
      } finally {
        delete (proto as { toJSON?: unknown }).toJSON;
      }
      expect(encoded.value).toEqual({ call: 1 });
      expect(encoded.text).toBe('{"call":1}');
    }
  });

  it('refuses what canonicalize refuses, naming the same path', () => {
    expect(thrown(() => encodeJcs({ a: [1, { b: 'x\ud800' }] }, { path: 'data' })).details).toEqual({ path: 'data.a[1].b' });
    expect(thrown(() => encodeJcs({ n: 2 ** 60 })).details).toEqual({ path: 'n' });
  });
});
