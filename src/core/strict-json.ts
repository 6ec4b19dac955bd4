import { WitnessError } from './errors.js';

/**
 * A strict RFC 8259 parser for data that comes back into the ledger (exports, imports, proofs).
 * JSON.parse accepts texts that are ambiguous or lossy — duplicate keys (last one wins), integers
 * past 2^53 (silently rounded), lone surrogates (not valid Unicode) — so two different files could
 * verify against the same hash, or one file could mean different things to different readers.
 * Those are rejected here, with the byte offset of the problem.
 *
 * The parser is iterative (explicit container stack), so no input and no maxDepth can overflow the
 * call stack, and it only ever throws WitnessError.
 */

export interface StrictParseOptions {
  /** Maximum nesting of arrays/objects; the top-level container is level 1. */
  maxDepth?: number;
}

/** Above canonical-json's limit so that an event nested to that limit still parses inside its envelope. */
export const DEFAULT_MAX_PARSE_DEPTH = 512;

export function strictParse(text: string, opts?: StrictParseOptions): unknown {
  requireString(text);
  const maxDepth = opts?.maxDepth ?? DEFAULT_MAX_PARSE_DEPTH;
  const p = new Parser(text, 0, text.length, maxDepth);
  try {
    return p.parseDocument();
  } catch (e) {
    throw toWitnessError(text, e, p.pos);
  }
}

/**
 * Parses JSON Lines: one value per '\n'-terminated line ('\r\n' works since '\r' is JSON
 * whitespace). A final newline is optional; any other blank line is an error because export files
 * are machine-written and a blank line means something went wrong.
 */
export function strictParseLines(text: string, opts?: StrictParseOptions): unknown[] {
  requireString(text);
  const maxDepth = opts?.maxDepth ?? DEFAULT_MAX_PARSE_DEPTH;
  const out: unknown[] = [];
  let start = 0;
  let line = 1;
  while (start < text.length) {
    let nl = text.indexOf('\n', start);
    if (nl === -1) nl = text.length;
    const p = new Parser(text, start, nl, maxDepth);
    try {
      if (skipWhitespace(text, start, nl) === nl) throw new Failure(start, 'blank line; JSON Lines needs exactly one value on every line');
      out.push(p.parseDocument());
    } catch (e) {
      throw toWitnessError(text, e, p.pos, line);
    }
    start = nl + 1;
    line++;
  }
  return out;
}

/** Internal signal carrying a UTF-16 index; converted to a byte offset only when reported. */
class Failure {
  constructor(
    readonly index: number,
    readonly problem: string,
  ) {}
}

function requireString(text: unknown): void {
  if (typeof text !== 'string') {
    throw new WitnessError('invalid_json', `Invalid JSON at byte 0: expected text but got ${text === null ? 'null' : typeof text}; decode the bytes as UTF-8 first.`, {
      details: { offset: 0 },
    });
  }
}

function toWitnessError(text: string, e: unknown, pos: number, line?: number): WitnessError {
  // Anything but a Failure is a bug here (or memory exhaustion); still report it as invalid input
  // at the current position rather than breaking the only-WitnessError promise.
  const f = e instanceof Failure ? e : new Failure(Math.min(pos, text.length), `could not be parsed (${e instanceof Error ? e.message : String(e)})`);
  const offset = Buffer.byteLength(text.slice(0, f.index), 'utf8');
  const where = line === undefined ? `at byte ${offset}` : `on line ${line} at byte ${offset}`;
  return new WitnessError('invalid_json', `Invalid JSON ${where}: ${f.problem}.`, {
    details: line === undefined ? { offset } : { line, offset },
    ...(e instanceof Failure ? {} : { cause: e }),
  });
}

function skipWhitespace(text: string, i: number, end: number): number {
  while (i < end) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i++;
  }
  return i;
}

function describeChar(text: string, i: number): string {
  const c = text.charCodeAt(i);
  if (c >= 0x21 && c <= 0x7e) return `'${text[i]}'`;
  return `U+${c.toString(16).toUpperCase().padStart(4, '0')}`;
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

const ESCAPES: Record<number, string> = {
  0x22: '"',
  0x5c: '\\',
  0x2f: '/',
  0x62: '\b',
  0x66: '\f',
  0x6e: '\n',
  0x72: '\r',
  0x74: '\t',
};

type Container = unknown[] | Record<string, unknown>;

class Parser {
  /** Current position (UTF-16 index); kept on the instance so errors outside Failure can cite it. */
  pos: number;

  constructor(
    private readonly text: string,
    start: number,
    private readonly end: number,
    private readonly maxDepth: number,
  ) {
    this.pos = start;
  }

  parseDocument(): unknown {
    const { text, end } = this;
    if (this.pos < end && text.charCodeAt(this.pos) === 0xfeff) {
      throw new Failure(this.pos, 'byte order mark (U+FEFF) before the value; save the file as UTF-8 without a BOM');
    }
    const stack: Container[] = [];
    // Pending property name for each open object (unused slots for arrays).
    const keys: string[] = [];
    let value: unknown;

    nextValue: for (;;) {
      let pos = skipWhitespace(text, this.pos, end);
      if (pos >= end) throw new Failure(pos, stack.length === 0 ? 'no value (the input is empty or only whitespace)' : 'unexpected end of input; expected a value');
      const c = text.charCodeAt(pos);
      if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
        if (stack.length >= this.maxDepth) throw new Failure(pos, `nested more than ${this.maxDepth} levels deep`);
        const open = pos;
        pos = skipWhitespace(text, pos + 1, end);
        if (c === 0x5b) {
          const arr: unknown[] = [];
          if (pos < end && text.charCodeAt(pos) === 0x5d /* ] */) {
            this.pos = pos + 1;
            value = arr;
          } else {
            stack.push(arr);
            keys.push('');
            this.pos = pos;
            continue nextValue;
          }
        } else {
          const obj: Record<string, unknown> = {};
          if (pos < end && text.charCodeAt(pos) === 0x7d /* } */) {
            this.pos = pos + 1;
            value = obj;
          } else {
            this.pos = pos;
            stack.push(obj);
            keys.push(this.parseKey(obj, open));
            continue nextValue;
          }
        }
      } else if (c === 0x22 /* " */) {
        this.pos = pos;
        value = this.parseString();
      } else if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
        this.pos = pos;
        value = this.parseNumber();
      } else if (c === 0x74 /* t */) {
        value = this.literal(pos, 'true', true);
      } else if (c === 0x66 /* f */) {
        value = this.literal(pos, 'false', false);
      } else if (c === 0x6e /* n */) {
        value = this.literal(pos, 'null', null);
      } else {
        throw new Failure(pos, `unexpected character ${describeChar(text, pos)}; expected a value`);
      }

      // A value is complete: attach it to the innermost open container, closing containers whose
      // last element it was, until one expects another element or the document is done.
      for (;;) {
        const top = stack[stack.length - 1];
        if (top === undefined) break nextValue;
        const pos = skipWhitespace(text, this.pos, end);
        const d = pos < end ? text.charCodeAt(pos) : -1;
        if (Array.isArray(top)) {
          top.push(value);
          if (d === 0x2c /* , */) {
            this.pos = pos + 1;
            continue nextValue;
          }
          if (d !== 0x5d /* ] */)
            throw new Failure(pos, d === -1 ? "unexpected end of input; expected ',' or ']'" : `unexpected character ${describeChar(text, pos)}; expected ',' or ']' after an array element`);
        } else {
          const key = keys[keys.length - 1]!;
          // A "__proto__" assignment would set the prototype instead of creating the property.
          if (key === '__proto__') Object.defineProperty(top, key, { value, enumerable: true, writable: true, configurable: true });
          else top[key] = value;
          if (d === 0x2c /* , */) {
            this.pos = skipWhitespace(text, pos + 1, end);
            keys[keys.length - 1] = this.parseKey(top, -1);
            continue nextValue;
          }
          if (d !== 0x7d /* } */)
            throw new Failure(pos, d === -1 ? "unexpected end of input; expected ',' or '}'" : `unexpected character ${describeChar(text, pos)}; expected ',' or '}' after a property value`);
        }
        this.pos = pos + 1;
        stack.pop();
        keys.pop();
        value = top;
      }
    }

    const rest = skipWhitespace(text, this.pos, end);
    if (rest < end) throw new Failure(rest, `unexpected ${describeChar(text, rest)} after the end of the JSON value`);
    this.pos = rest;
    return value;
  }

  private literal<T>(pos: number, word: string, value: T): T {
    if (pos + word.length > this.end || !this.text.startsWith(word, pos)) throw new Failure(pos, `invalid literal; expected ${word}`);
    this.pos = pos + word.length;
    return value;
  }

  /** Reads `"name" :` at this.pos and leaves this.pos at the value. `open` >= 0 if just after '{'. */
  private parseKey(obj: Record<string, unknown>, open: number): string {
    const { text, end } = this;
    const at = this.pos;
    if (at >= end || text.charCodeAt(at) !== 0x22) {
      const what = at >= end ? 'end of input' : `character ${describeChar(text, at)}`;
      throw new Failure(at, `unexpected ${what}; expected ${open >= 0 ? "a property name or '}'" : 'a property name'}`);
    }
    const key = this.parseString();
    if (Object.hasOwn(obj, key)) throw new Failure(at, `duplicate property name ${JSON.stringify(key)} in one object`);
    const colon = skipWhitespace(text, this.pos, end);
    if (colon >= end || text.charCodeAt(colon) !== 0x3a /* : */) {
      throw new Failure(colon, `${colon >= end ? 'unexpected end of input' : `unexpected character ${describeChar(text, colon)}`}; expected ':' after a property name`);
    }
    this.pos = colon + 1;
    return key;
  }

  /** Reads a string starting at the opening quote at this.pos. */
  private parseString(): string {
    const { text, end } = this;
    const open = this.pos;
    let i = open + 1;
    let chunk = i;
    let out = '';
    for (;;) {
      if (i >= end) throw new Failure(open, 'unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        this.pos = i + 1;
        return out + text.slice(chunk, i);
      }
      if (c === 0x5c) {
        out += text.slice(chunk, i);
        i = this.parseEscape(i);
        out += this.escaped;
        chunk = i;
        continue;
      }
      if (c < 0x20) throw new Failure(i, `unescaped control character ${describeChar(text, i)} in a string; write it as \\u${c.toString(16).padStart(4, '0')}`);
      if (c >= 0xd800 && c <= 0xdfff) {
        if (c <= 0xdbff && i + 1 < end) {
          const d = text.charCodeAt(i + 1);
          if (d >= 0xdc00 && d <= 0xdfff) {
            i += 2;
            continue;
          }
        }
        throw new Failure(i, `lone surrogate ${describeChar(text, i)} in a string (not valid Unicode)`);
      }
      i++;
    }
  }

  /** Decoded text of the last escape; a field rather than a tuple return to keep the loop allocation-free. */
  private escaped = '';

  /** Decodes the escape at `i` (the backslash) into this.escaped and returns the index after it. */
  private parseEscape(i: number): number {
    const { text, end } = this;
    if (i + 1 >= end) throw new Failure(i, 'unterminated string');
    const e = text.charCodeAt(i + 1);
    if (e !== 0x75 /* u */) {
      const s = ESCAPES[e];
      if (s === undefined) throw new Failure(i, `invalid escape \\${text[i + 1]} in a string`);
      this.escaped = s;
      return i + 2;
    }
    const u = this.hex4(i);
    if (u < 0xd800 || u > 0xdfff) {
      this.escaped = String.fromCharCode(u);
      return i + 6;
    }
    // Surrogates must come as an escaped high/low pair; anything else does not encode a character.
    if (u <= 0xdbff && i + 7 < end && text.charCodeAt(i + 6) === 0x5c && text.charCodeAt(i + 7) === 0x75) {
      const low = this.hex4(i + 6);
      if (low >= 0xdc00 && low <= 0xdfff) {
        this.escaped = String.fromCharCode(u, low);
        return i + 12;
      }
    }
    const code = u.toString(16).toUpperCase();
    throw new Failure(
      i,
      u <= 0xdbff
        ? `lone surrogate escape \\u${code} not followed by a low-surrogate escape (not valid Unicode)`
        : `lone surrogate escape \\u${code} without a preceding high surrogate (not valid Unicode)`,
    );
  }

  /** Value of the `\uXXXX` escape whose backslash is at `i`. */
  private hex4(i: number): number {
    const { text, end } = this;
    let v = 0;
    for (let k = i + 2; k < i + 6; k++) {
      const h = k < end ? hexDigit(text.charCodeAt(k)) : -1;
      if (h < 0) throw new Failure(i, 'invalid \\u escape in a string; it needs exactly four hex digits');
      v = v * 16 + h;
    }
    return v;
  }

  private parseNumber(): number {
    const { text, end } = this;
    const start = this.pos;
    let i = start;
    if (text.charCodeAt(i) === 0x2d) i++;
    let c = i < end ? text.charCodeAt(i) : -1;
    if (c === 0x30) {
      i++;
      c = i < end ? text.charCodeAt(i) : -1;
      if (c >= 0x30 && c <= 0x39) throw new Failure(start, 'number with a leading zero');
    } else if (c >= 0x31 && c <= 0x39) {
      do c = ++i < end ? text.charCodeAt(i) : -1;
      while (c >= 0x30 && c <= 0x39);
    } else {
      throw new Failure(i, "expected a digit after '-'");
    }
    let integer = true;
    if (c === 0x2e /* . */) {
      integer = false;
      c = ++i < end ? text.charCodeAt(i) : -1;
      if (!(c >= 0x30 && c <= 0x39)) throw new Failure(i, 'expected a digit after the decimal point');
      do c = ++i < end ? text.charCodeAt(i) : -1;
      while (c >= 0x30 && c <= 0x39);
    }
    if (c === 0x65 || c === 0x45 /* e E */) {
      integer = false;
      c = ++i < end ? text.charCodeAt(i) : -1;
      if (c === 0x2b || c === 0x2d) c = ++i < end ? text.charCodeAt(i) : -1;
      if (!(c >= 0x30 && c <= 0x39)) throw new Failure(i, 'expected a digit in the exponent');
      do c = ++i < end ? text.charCodeAt(i) : -1;
      while (c >= 0x30 && c <= 0x39);
    }
    this.pos = i;
    const literal = text.slice(start, i);
    // The grammar above is a subset of what Number() accepts, and both round to nearest like JSON.parse.
    const n = Number(literal);
    if (integer) {
      if (n > Number.MAX_SAFE_INTEGER || n < -Number.MAX_SAFE_INTEGER) {
        throw new Failure(start, `integer ${abbreviate(literal)} is outside ±(2^53−1) and cannot be represented exactly; quote it as a string`);
      }
    } else if (!Number.isFinite(n)) {
      throw new Failure(start, `number ${abbreviate(literal)} is too large to represent (it would become Infinity)`);
    }
    return n;
  }
}

function abbreviate(s: string): string {
  return s.length <= 40 ? s : `${s.slice(0, 20)}…${s.slice(-10)} (${s.length} characters)`;
}
