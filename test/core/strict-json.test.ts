import { describe, expect, it } from 'vitest';
import { WitnessError } from '../../src/core/errors.js';
import { DEFAULT_MAX_PARSE_DEPTH, strictParse, strictParseLines } from '../../src/core/strict-json.js';
import { pick, randomJsonValue, rng } from '../helpers/random.js';
import { thrown } from '../helpers/errors.js';

/** JSON text for `v` with random insignificant whitespace and random (valid) escaping choices. */
function randomText(r: () => number, v: unknown): string {
  const ws = () => (r() < 0.7 ? '' : pick(r, [' ', '\n', '\t', '\r\n', '  ']));
  const str = (s: string) => {
    let out = JSON.stringify(s);
    if (r() < 0.3) {
      // Re-escape every character as \uXXXX (surrogate pairs become escaped pairs).
      out = `"${Array.from({ length: s.length }, (_, i) => `\\u${s.charCodeAt(i).toString(16).padStart(4, '0')}`).join('')}"`;
    }
    return out;
  };
  if (typeof v === 'string') return str(v);
  if (Array.isArray(v)) return `[${ws()}${v.map((x) => ws() + randomText(r, x) + ws()).join(',')}${ws()}]`;
  if (v !== null && typeof v === 'object') {
    return `{${ws()}${Object.entries(v)
      .map(([k, x]) => `${ws()}${str(k)}${ws()}:${ws()}${randomText(r, x)}${ws()}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** Rejections that are deliberate strictness on top of RFC 8259, i.e. JSON.parse accepts these. */
const STRICTER_THAN_JSON_PARSE = /duplicate property name|outside ±\(2\^53−1\)|would become Infinity|lone surrogate|byte order mark|nested more than/;

describe('strictParse on valid JSON', () => {
  it.each([
    ['null', null],
    ['true', true],
    [' false ', false],
    ['0', 0],
    ['-1.5e+3', -1500],
    ['1E-2', 0.01],
    ['"a\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9"', 'a"\\/\b\f\n\r\té'],
    ['"\\ud83d\\ude00"', '😀'],
    ['"😀"', '😀'],
    ['"\\uFEFF"', '\ufeff'],
    ['[]', []],
    ['{}', {}],
    ['\t\r\n[ 1 , [ ] , { "a" : { } } ]\n', [1, [], { a: {} }]],
    ['{"a":1,"A":2,"b":{"a":3}}', { a: 1, A: 2, b: { a: 3 } }],
  ])('parses %j like JSON.parse', (text, expected) => {
    expect(strictParse(text)).toEqual(expected);
    expect(strictParse(text)).toEqual(JSON.parse(text));
  });

  it('accepts the integers ±(2^53−1) and numbers with a fraction or exponent beyond them', () => {
    expect(strictParse('9007199254740991')).toBe(Number.MAX_SAFE_INTEGER);
    expect(strictParse('-9007199254740991')).toBe(-Number.MAX_SAFE_INTEGER);
    expect(strictParse('9007199254740993.0')).toBe(9007199254740992);
    expect(strictParse('1e21')).toBe(1e21);
    expect(strictParse('1.7976931348623157e308')).toBe(Number.MAX_VALUE);
  });

  it('keeps negative zero and lets tiny numbers underflow to zero, like JSON.parse', () => {
    expect(Object.is(strictParse('-0'), -0)).toBe(true);
    expect(strictParse('1e-400')).toBe(0);
  });

  it('stores a "__proto__" key as an own property without touching the prototype', () => {
    const v = strictParse('{"__proto__":{"polluted":true}}') as Record<string, unknown>;
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(Object.hasOwn(v, '__proto__')).toBe(true);
    expect((v as { polluted?: unknown }).polluted).toBeUndefined();
    expect(v).toEqual(JSON.parse('{"__proto__":{"polluted":true}}'));
  });

  it('keeps a string-valued "__proto__" member and refuses a repeated one, at any depth [R-HOSTILE]', () => {
    const v = strictParse('{"a":[{"__proto__":"attacker-iban","b":1}]}') as { a: Array<Record<string, unknown>> };
    expect(Object.keys(v.a[0]!)).toEqual(['__proto__', 'b']);
    expect(Object.getOwnPropertyDescriptor(v.a[0]!, '__proto__')?.value).toBe('attacker-iban');
    expect(thrown(() => strictParse('{"x":{"__proto__":1,"__proto__":{}}}')).message).toMatch(/duplicate property name "__proto__"/);
  });

  it(`accepts nesting up to ${DEFAULT_MAX_PARSE_DEPTH} levels and honours a custom maxDepth`, () => {
    const n = DEFAULT_MAX_PARSE_DEPTH;
    expect(() => strictParse('['.repeat(n) + ']'.repeat(n))).not.toThrow();
    expect(strictParse('[{"a":[]}]', { maxDepth: 3 })).toEqual([{ a: [] }]);
  });

  it('parses nesting far beyond the call stack when maxDepth allows it', () => {
    const n = 200_000;
    let v = strictParse('['.repeat(n) + ']'.repeat(n), { maxDepth: Infinity });
    let depth = 0;
    while (Array.isArray(v) && v.length > 0) {
      v = v[0];
      depth++;
    }
    expect(depth).toBe(n - 1);
  });

  it('parses every random JSON value exactly as JSON.parse does', () => {
    const r = rng(8259);
    for (let i = 0; i < 3000; i++) {
      const text = randomText(r, randomJsonValue(r));
      expect(strictParse(text)).toEqual(JSON.parse(text));
    }
  });
});

describe('strictParse on hostile or invalid input', () => {
  const cases: [string, string, number, RegExp][] = [
    ['a duplicate key', '{"a":1,"a":2}', 7, /duplicate property name "a"/],
    ['a duplicate key spelled with an escape', '{"a":1,"\\u0061":2}', 7, /duplicate property name "a"/],
    ['a duplicate key in a nested object', '[{"x":{"k":1,"j":2,"k":3}}]', 19, /duplicate property name "k"/],
    ['the integer 2^53', '9007199254740992', 0, /integer 9007199254740992 is outside ±\(2\^53−1\)/],
    ['the integer −2^53', '[-9007199254740992]', 1, /integer -9007199254740992 is outside/],
    ['an integer that rounds into range only after losing digits', '{"n":12345678901234567890}', 5, /outside ±\(2\^53−1\)/],
    ['a 400-digit integer', `[${'9'.repeat(400)}]`, 1, /integer 9{20}…9{10} \(400 characters\) is outside/],
    ['a number that overflows to Infinity', '1e400', 0, /number 1e400 is too large to represent/],
    ['a negative number that overflows', '{"x":-1.5e999}', 5, /would become Infinity/],
    ['an escaped lone high surrogate', '"ab\\ud800"', 3, /lone surrogate escape \\uD800 not followed by a low-surrogate escape/],
    ['an escaped lone low surrogate', '"\\udc00"', 1, /lone surrogate escape \\uDC00 without a preceding high surrogate/],
    ['an escaped high surrogate followed by a non-surrogate escape', '"\\ud83d\\u0041"', 1, /not followed by a low-surrogate escape/],
    ['an escaped high surrogate followed by a raw low surrogate', '"\\ud83d\ude00"', 1, /not followed by a low-surrogate escape/],
    ['a raw lone high surrogate', '"x\ud83d"', 2, /lone surrogate U\+D83D in a string/],
    ['a raw lone low surrogate in a key', '{"\ude00":1}', 2, /lone surrogate U\+DE00/],
    ['a reversed raw surrogate pair', '"\ude00\ud83d"', 1, /lone surrogate U\+DE00/],
    ['an invalid escape', '"\\x41"', 1, /invalid escape \\x/],
    ['an escaped single quote', `"\\'"`, 1, /invalid escape/],
    ['a short \\u escape', '"\\u12"', 1, /four hex digits/],
    ['a \\u escape with a non-hex digit', '"\\u00g1"', 1, /four hex digits/],
    ['a raw newline in a string', '"a\nb"', 2, /unescaped control character U\+000A/],
    ['a raw NUL in a string', '"\u0000"', 1, /unescaped control character U\+0000/],
    ['a raw tab in a key', '{"\t":1}', 2, /unescaped control character U\+0009/],
    ['an unterminated string', '["abc', 1, /unterminated string/],
    ['a backslash at the end of input', '"abc\\', 4, /unterminated string/],
    ['trailing garbage', '{"a":1} x', 8, /unexpected 'x' after the end of the JSON value/],
    ['a second value', '1 2', 2, /after the end of the JSON value/],
    ['a trailing comma in an array', '[1,]', 3, /unexpected character '\]'; expected a value/],
    ['a trailing comma in an object', '{"a":1,}', 7, /expected a property name/],
    ['a leading zero', '01', 0, /leading zero/],
    ['a negative leading zero', '[-012]', 1, /leading zero/],
    ['a leading plus', '+1', 0, /unexpected character '\+'/],
    ['a bare decimal point', '.5', 0, /unexpected character '\.'/],
    ['a trailing decimal point', '1.', 2, /expected a digit after the decimal point/],
    ['an empty exponent', '1e+', 3, /expected a digit in the exponent/],
    ['a hex number', '0x10', 1, /unexpected 'x' after the end/],
    ['a minus without digits', '-a', 1, /expected a digit after '-'/],
    ['NaN', 'NaN', 0, /unexpected character 'N'/],
    ['Infinity', '-Infinity', 1, /expected a digit after '-'/],
    ['a byte order mark', '\ufeff{}', 0, /byte order mark/],
    ['a byte order mark between tokens', '[\ufeff1]', 1, /unexpected character U\+FEFF/],
    ['a misspelt literal', 'nul', 0, /invalid literal; expected null/],
    ['a capitalised literal', 'True', 0, /unexpected character 'T'/],
    ['single-quoted strings', "{'a':1}", 1, /unexpected character '''; expected a property name or '}'/],
    ['an unquoted key', '{a:1}', 1, /expected a property name/],
    ['a missing colon', '{"a" 1}', 5, /expected ':' after a property name/],
    ['a missing comma', '[1 2]', 3, /expected ',' or '\]'/],
    ['a missing closing brace', '{"a":1', 6, /unexpected end of input; expected ',' or '}'/],
    ['a comment', '[1 /* c */]', 3, /unexpected character '\/'/],
    ['empty input', '', 0, /no value/],
    ['whitespace only', ' \n', 2, /no value/],
    ['a non-JSON whitespace character', '\u00a0 1', 0, /unexpected character U\+00A0/],
    ['nesting beyond the default limit', '['.repeat(DEFAULT_MAX_PARSE_DEPTH + 1), DEFAULT_MAX_PARSE_DEPTH, /nested more than 512 levels deep/],
  ];

  it.each(cases)('rejects %s with the byte offset of the problem', (_name, text, offset, message) => {
    const e = thrown(() => strictParse(text));
    expect(e.code).toBe('invalid_json');
    expect(e.details).toEqual({ offset });
    expect(e.message).toMatch(message);
    expect(e.message.startsWith(`Invalid JSON at byte ${offset}: `)).toBe(true);
    expect(e.message).toMatch(/\.$/);
  });

  it('counts the offset in UTF-8 bytes, not UTF-16 code units', () => {
    // Quotes 1+1, "é" 2 bytes, "€" 3, "😀" 4 (two code units) and a space: the 'x' is at byte 12, index 8.
    const e = thrown(() => strictParse('"é€😀" x'));
    expect(e.details).toEqual({ offset: 12 });
  });

  it('honours a custom maxDepth', () => {
    expect(thrown(() => strictParse('[[[1]]]', { maxDepth: 2 })).details).toEqual({ offset: 2 });
    expect(thrown(() => strictParse('{"a":{}}', { maxDepth: 1 })).message).toMatch(/nested more than 1 levels deep/);
  });

  it('rejects a non-string argument with a WitnessError', () => {
    expect(thrown(() => strictParse(Buffer.from('1') as unknown as string)).code).toBe('invalid_json');
    expect(thrown(() => strictParseLines(undefined as unknown as string)).code).toBe('invalid_json');
  });

  it('throws only WitnessError on random text and agrees with JSON.parse whenever it accepts', () => {
    const r = rng(1);
    const tokens = [
      '{',
      '}',
      '[',
      ']',
      ',',
      ':',
      '"',
      '\\',
      'u',
      'd83d',
      'DC00',
      '0',
      '1',
      '9',
      '-',
      '+',
      '.',
      'e',
      'E',
      'true',
      'false',
      'null',
      'nul',
      ' ',
      '\n',
      '\t',
      '\u0000',
      '\ud800',
      '\udc00',
      '😀',
      'é',
      '\ufeff',
      '"a"',
      '"a":',
      '12',
      '1e999',
      '9007199254740993',
      '\\u00',
      '\\n',
      '/',
      'x',
    ];
    for (let i = 0; i < 20_000; i++) {
      let text = '';
      const n = Math.floor(r() * 16);
      for (let k = 0; k < n; k++) text += pick(r, tokens);
      check(text);
    }
  });

  it('throws only WitnessError on mutations of valid JSON and agrees with JSON.parse whenever it accepts', () => {
    const r = rng(2);
    const inserts = ['{', '}', '[', ']', ',', ':', '"', '\\', '\\u', '\\ud800', '0', '-', '.', 'e', ' ', '\u0001', '\ud800', '\udc00', '\ufeff', 'x', '"k":1,'];
    for (let i = 0; i < 20_000; i++) {
      let text = randomText(r, randomJsonValue(r));
      const edits = 1 + Math.floor(r() * 3);
      for (let k = 0; k < edits; k++) {
        const at = Math.floor(r() * (text.length + 1));
        switch (Math.floor(r() * 4)) {
          case 0:
            text = text.slice(0, at) + text.slice(at + 1 + Math.floor(r() * 3));
            break;
          case 1:
            text = text.slice(0, at) + pick(r, inserts) + text.slice(at);
            break;
          case 2:
            text = text.slice(0, at) + pick(r, inserts) + text.slice(at + 1);
            break;
          default: {
            const from = Math.floor(r() * text.length);
            text = text.slice(0, at) + text.slice(from, from + 1 + Math.floor(r() * 8)) + text.slice(at);
          }
        }
      }
      check(text);
    }
  });

  function check(text: string): void {
    let expected: unknown;
    let jsonParseOk = true;
    try {
      expected = JSON.parse(text);
    } catch {
      jsonParseOk = false;
    }
    let ours: unknown;
    try {
      ours = strictParse(text);
    } catch (e) {
      if (!(e instanceof WitnessError) || e.code !== 'invalid_json' || typeof e.details?.['offset'] !== 'number') {
        throw new Error(`strictParse threw ${String(e)} on ${JSON.stringify(text)}`, { cause: e });
      }
      if (jsonParseOk && !STRICTER_THAN_JSON_PARSE.test(e.message)) {
        throw new Error(`strictParse rejected JSON.parse-valid ${JSON.stringify(text)}: ${e.message}`, { cause: e });
      }
      return;
    }
    if (!jsonParseOk) throw new Error(`strictParse accepted invalid JSON ${JSON.stringify(text)}`);
    expect(ours).toEqual(expected);
  }
});

describe('strictParseLines', () => {
  it('parses one value per line, with or without a final newline and with CRLF endings', () => {
    expect(strictParseLines('{"a":1}\n[2]\n"x"\n')).toEqual([{ a: 1 }, [2], 'x']);
    expect(strictParseLines('1\r\n2')).toEqual([1, 2]);
    expect(strictParseLines('')).toEqual([]);
  });

  it('names the line number and the byte offset within the whole text', () => {
    const e = thrown(() => strictParseLines('{"é":1}\n{"a":1}\n{"a":1,"a":2}\n'));
    expect(e.code).toBe('invalid_json');
    expect(e.details).toEqual({ line: 3, offset: 24 });
    expect(e.message).toBe('Invalid JSON on line 3 at byte 24: duplicate property name "a" in one object.');
  });

  it('rejects blank lines other than the final newline', () => {
    expect(thrown(() => strictParseLines('1\n\n2\n')).details).toEqual({ line: 2, offset: 2 });
    expect(thrown(() => strictParseLines('1\n \n')).message).toMatch(/blank line/);
    expect(thrown(() => strictParseLines('1\n\n')).details).toEqual({ line: 2, offset: 2 });
  });

  it('does not let a value run on to the next line', () => {
    expect(thrown(() => strictParseLines('[1,\n2]\n')).details).toEqual({ line: 1, offset: 3 });
    expect(thrown(() => strictParseLines('"a\n"\n')).details).toEqual({ line: 1, offset: 0 });
  });

  it('rejects a byte order mark at the start of the file', () => {
    expect(thrown(() => strictParseLines('\ufeff1\n')).message).toMatch(/line 1 at byte 0: byte order mark/);
  });

  it('applies maxDepth to each line', () => {
    expect(thrown(() => strictParseLines('[1]\n[[1]]\n', { maxDepth: 1 })).details).toEqual({ line: 2, offset: 5 });
  });
});
