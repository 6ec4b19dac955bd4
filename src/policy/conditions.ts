import { posix } from 'node:path';

/**
 * The condition language of a rule's `when`: a tiny expression language over the call's arguments,
 * parsed once when the policy is loaded (so a mistake is reported with its line) and evaluated
 * by a small interpreter. There is no eval, no Function, no regular expression built from policy
 * text, and evaluation never throws.
 *
 *   condition  := or
 *   or         := and ("or" and)*
 *   and        := not ("and" not)*
 *   not        := "not" not | "(" condition ")" | predicate     (so `not a or b` is `(not a) or b`)
 *   predicate  := operand ("==" | "!=" | "<" | "<=" | ">" | ">=") operand
 *               | path "in" "[" literal ("," literal)* "]"
 *               | path "exists"
 *               | path ("startsWith" | "endsWith" | "contains") operand
 *               | path "under" string
 *   operand    := path | literal
 *   path       := "args" ("." name | "[" string | integer "]")*
 *   literal    := number | string | true | false | null
 *
 * Semantics (documented in the README):
 * - A path that does not resolve (a missing key, an index past the end, a step into a non-object)
 *   makes every predicate that reads it false, including `!=`. `not` inverts that as usual.
 * - A path step into an object that holds another key folding to the same name (NFKC, invisible
 *   characters removed, trimmed, case folded: "Amount", "amount\u200b" for amount), instead of the
 *   exact key or beside it, makes every predicate reading the path *undecided*: Go's encoding/json
 *   (mcp-go) reads "Amount" into amount, so the server may act on a value the rule never saw.
 * - `==` / `!=` are strict between scalars: no type coercion ("5" is not 5); two arrays or objects
 *   compare by value; an array or object against a scalar is undecided (a server expecting one value
 *   may read ["admin"] as "admin").
 * - `in`, `startsWith`, `endsWith` and `under` are undecided on an array or object. `contains` on an
 *   array is membership; when no element equals the value sought but a deeper value does, or (for a
 *   string) the array's text holds it (see heldInside), it is undecided; on an object, undecided.
 * - `< <= > >=` compare two numbers or two strings (by UTF-16 code units). A number against a
 *   plain decimal numeral string (`-?(0|[1-9][0-9]*)(\.[0-9]+)?`: "650", "650.00", "-0.5")
 *   compares as numbers: agents often send amounts as strings, and `args.amount > 500` must not
 *   quietly let "650" through a deny or review rule.
 * - Any other pair of present values cannot be ordered, and the test is *undecided*: a string
 *   that is not a plain decimal numeral ("0x3e8", "1e3", " 1000 ", "1_000", "Infinity") against a
 *   number, an array, an object, a boolean, null or NaN. An upstream server may well read such a
 *   value as a large number (JavaScript's Number("0x3e8") is 1000, [900] > 500 is true, Python's
 *   int("1_000") is 1000, parseInt("501e-3") is 501), so "false" would fail open. `and`, `or` and
 *   `not` combine undecided as three-valued (Kleene) logic: false and undecided is false, true or
 *   undecided is true, not undecided is undecided. What a rule does with an undecided condition is
 *   evaluate.ts's business: a deny or review rule applies, an allow rule does not (fail closed).
 * - `under` normalises the argument as a POSIX path (resolving `.` and `..`) and is true when it is
 *   the prefix directory or inside it. A relative path, or one containing a backslash or NUL,
 *   is under nothing.
 * - Only own data properties are read: `args.constructor` does not reach the prototype, and getters
 *   are not run.
 */

/**
 * What a condition says about a call: it holds, it does not, or it cannot be decided, with `why`
 * naming the argument and the test (never the argument's value, which may be a secret).
 */
export type ConditionResult = { readonly holds: boolean } | { readonly holds: 'undecided'; readonly why: string };

export type Scalar = string | number | boolean | null;
export type PathSegment = string | number;

export interface PathOperand {
  readonly kind: 'path';
  readonly segments: readonly PathSegment[];
  /** As written, for messages: `args.customer.id`. */
  readonly text: string;
}
export interface LiteralOperand {
  readonly kind: 'literal';
  readonly value: Scalar;
}
export type Operand = PathOperand | LiteralOperand;

export const COMPARISONS = ['==', '!=', '<', '<=', '>', '>='] as const;
export type Comparison = (typeof COMPARISONS)[number];
export const STRING_TESTS = ['startsWith', 'endsWith', 'contains'] as const;
export type StringTest = (typeof STRING_TESTS)[number];

export type Condition =
  | { readonly op: 'and' | 'or'; readonly items: readonly Condition[] }
  | { readonly op: 'not'; readonly item: Condition }
  | { readonly op: Comparison; readonly left: Operand; readonly right: Operand }
  | { readonly op: 'in'; readonly left: PathOperand; readonly values: readonly Scalar[] }
  | { readonly op: 'exists'; readonly left: PathOperand }
  | { readonly op: StringTest; readonly left: PathOperand; readonly right: Operand }
  | { readonly op: 'under'; readonly left: PathOperand; readonly prefix: string };

/** A mistake in a condition, at a character offset of its text. */
export class ConditionSyntaxError extends Error {
  override readonly name = 'ConditionSyntaxError';
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

export const MAX_CONDITION_LENGTH = 4096;
export const MAX_NESTING = 32;
const MAX_COMPARE_DEPTH = 64;
const MAX_COMPARE_VISITS = 100_000;

// ---------------------------------------------------------------- lexer

type Token =
  | { t: 'num'; v: number; at: number; end: number }
  | { t: 'str'; v: string; at: number; end: number }
  | { t: 'word'; v: string; at: number; end: number }
  | { t: 'op'; v: Comparison; at: number; end: number }
  | { t: 'punct'; v: '(' | ')' | '[' | ']' | ',' | '.'; at: number; end: number }
  | { t: 'end'; at: number; end: number };

const KEYWORDS = new Set(['and', 'or', 'not', 'in', 'exists', 'startsWith', 'endsWith', 'contains', 'under', 'true', 'false', 'null', 'args']);
const WORD = /[A-Za-z_][A-Za-z0-9_]*/y;
const NUMBER = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

function lex(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    const at = i;
    if (c === '"' || c === "'") {
      const [value, end] = lexString(src, i);
      out.push({ t: 'str', v: value, at, end });
      i = end;
      continue;
    }
    if ((c >= '0' && c <= '9') || (c === '-' && /[0-9]/.test(src[i + 1] ?? ''))) {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(src)!;
      const v = Number(m[0]);
      if (!Number.isFinite(v)) throw new ConditionSyntaxError(`the number ${m[0]} is too large`, at);
      i += m[0].length;
      if (/[A-Za-z_]/.test(src[i] ?? '')) throw new ConditionSyntaxError(`"${m[0]}${src[i]}" is not a number`, at);
      out.push({ t: 'num', v, at, end: i });
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      WORD.lastIndex = i;
      const m = WORD.exec(src)!;
      i += m[0].length;
      out.push({ t: 'word', v: m[0], at, end: i });
      continue;
    }
    const two = src.slice(i, i + 2);
    if (two === '==' || two === '!=' || two === '<=' || two === '>=') {
      out.push({ t: 'op', v: two, at, end: i + 2 });
      i += 2;
      continue;
    }
    if (c === '<' || c === '>') {
      out.push({ t: 'op', v: c, at, end: i + 1 });
      i++;
      continue;
    }
    if (c === '(' || c === ')' || c === '[' || c === ']' || c === ',' || c === '.') {
      out.push({ t: 'punct', v: c, at, end: i + 1 });
      i++;
      continue;
    }
    throw new ConditionSyntaxError(unexpectedCharacter(src, i), at);
  }
  out.push({ t: 'end', at: src.length, end: src.length });
  return out;
}

function unexpectedCharacter(src: string, i: number): string {
  const c = src[i]!;
  const two = src.slice(i, i + 2);
  if (two === '&&') return '"&&" is not an operator; use and';
  if (two === '||') return '"||" is not an operator; use or';
  if (two === '=>' || two === '=<') return `"${two}" is not an operator; use >= or <=`;
  if (c === '=') return '"=" is not an operator; use == to compare';
  if (c === '!') return '"!" is not an operator; use not, or != to compare';
  if (c === '-') return '"-" is not allowed here; a key with a dash is written args["my-key"]';
  const shown = /[\u0000-\u001f\u007f]/.test(c) ? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}` : c;
  return `"${shown}" is not allowed in a condition`;
}

function lexString(src: string, start: number): [string, number] {
  const quote = src[start]!;
  let i = start + 1;
  let value = '';
  while (i < src.length) {
    const c = src[i]!;
    if (c === quote) return [value, i + 1];
    if (c === '\\') {
      const e = src[i + 1];
      if (e === quote || e === '\\') value += e;
      else if (e === 'n') value += '\n';
      else if (e === 't') value += '\t';
      else if (e === '/') value += '/';
      else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(src.slice(i + 2, i + 6))) {
        value += String.fromCharCode(parseInt(src.slice(i + 2, i + 6), 16));
        i += 6;
        continue;
      } else throw new ConditionSyntaxError(`the escape "\\${e ?? ''}" is not supported in a string`, i);
      i += 2;
      continue;
    }
    value += c;
    i++;
  }
  throw new ConditionSyntaxError(`the string is missing its closing ${quote}`, start);
}

// ---------------------------------------------------------------- parser

/** Parses a condition; throws ConditionSyntaxError naming the problem and its offset. */
export function parseCondition(src: string): Condition {
  if (src.trim() === '') throw new ConditionSyntaxError('the condition is empty', 0);
  if (src.length > MAX_CONDITION_LENGTH) throw new ConditionSyntaxError(`the condition is longer than ${MAX_CONDITION_LENGTH} characters`, 0);
  return new Parser(lex(src)).parse();
}

class Parser {
  private pos = 0;
  private depth = 0;
  constructor(private readonly tokens: Token[]) {}

  parse(): Condition {
    const c = this.or();
    const t = this.peek();
    if (t.t !== 'end') {
      if (t.t === 'punct' && t.v === ')') throw new ConditionSyntaxError('there is a ")" without a matching "("', t.at);
      throw new ConditionSyntaxError(`${describe(t)} is unexpected here; join conditions with and or or`, t.at);
    }
    return c;
  }

  private peek(): Token {
    return this.tokens[this.pos]!;
  }
  private next(): Token {
    const t = this.tokens[this.pos]!;
    if (t.t !== 'end') this.pos++;
    return t;
  }
  private isWord(v: string): boolean {
    const t = this.peek();
    return t.t === 'word' && t.v === v;
  }
  private isPunct(v: string): boolean {
    const t = this.peek();
    return t.t === 'punct' && t.v === v;
  }

  private or(): Condition {
    const items = [this.and()];
    while (this.isWord('or')) {
      this.next();
      items.push(this.and());
    }
    return items.length === 1 ? items[0]! : { op: 'or', items };
  }

  private and(): Condition {
    const items = [this.not()];
    while (this.isWord('and')) {
      this.next();
      items.push(this.not());
    }
    return items.length === 1 ? items[0]! : { op: 'and', items };
  }

  private not(): Condition {
    const t = this.peek();
    if (this.depth >= MAX_NESTING) throw new ConditionSyntaxError(`the condition nests deeper than ${MAX_NESTING} levels`, t.at);
    if (t.t === 'word' && t.v === 'not') {
      this.next();
      this.depth++;
      const item = this.not();
      this.depth--;
      return { op: 'not', item };
    }
    if (t.t === 'punct' && t.v === '(') {
      this.next();
      this.depth++;
      const inner = this.or();
      this.depth--;
      const close = this.next();
      if (!(close.t === 'punct' && close.v === ')')) {
        throw new ConditionSyntaxError(`expected ")" to close the "(" at character ${t.at + 1}, but found ${describe(close)}`, close.at);
      }
      return inner;
    }
    return this.predicate();
  }

  private predicate(): Condition {
    const start = this.peek();
    if (start.t === 'end') throw new ConditionSyntaxError('the condition ends where an argument such as args.amount was expected', start.at);
    if (start.t === 'op' || (start.t === 'word' && (start.v === 'and' || start.v === 'or'))) {
      throw new ConditionSyntaxError(`expected an argument such as args.amount, but found ${describe(start)}`, start.at);
    }
    const left = this.operand(undefined);
    const t = this.next();
    if (t.t === 'op') {
      const right = this.operand(`"${t.v}"`);
      if (left.kind === 'literal' && right.kind === 'literal') {
        throw new ConditionSyntaxError('this compares two constants; one side must be an argument such as args.amount', start.at);
      }
      return { op: t.v, left, right };
    }
    if (t.t === 'word' && (t.v === 'in' || t.v === 'exists' || t.v === 'under' || (STRING_TESTS as readonly string[]).includes(t.v))) {
      if (left.kind !== 'path') throw new ConditionSyntaxError(`${t.v} needs an argument on its left, such as args.path`, start.at);
      switch (t.v) {
        case 'exists':
          return { op: 'exists', left };
        case 'in':
          return { op: 'in', left, values: this.list() };
        case 'under': {
          const p = this.next();
          if (p.t !== 'str' || !p.v.startsWith('/')) {
            throw new ConditionSyntaxError('under needs an absolute path in quotes on its right, such as "/srv/data"', p.at);
          }
          if (p.v.includes('\\') || p.v.includes('\u0000')) {
            throw new ConditionSyntaxError('the path after under may not contain a backslash or a NUL character', p.at);
          }
          return { op: 'under', left, prefix: normalisePrefix(p.v) };
        }
        default:
          return { op: t.v as StringTest, left, right: this.operand(t.v) };
      }
    }
    if (t.t === 'end') {
      throw new ConditionSyntaxError(
        `expected an operator after ${operandText(left)}, such as ==, >, in, exists or under${left.kind === 'path' ? ` (to test a flag, write ${operandText(left)} == true)` : ''}`,
        t.at,
      );
    }
    if (t.t === 'word' && KEYWORDS.has(t.v.toLowerCase()) && t.v !== t.v.toLowerCase() && !['startsWith', 'endsWith'].includes(t.v)) {
      throw new ConditionSyntaxError(`"${t.v}" must be written in lowercase`, t.at);
    }
    if (t.t === 'word' && t.v === 'not') {
      throw new ConditionSyntaxError(`"not" goes before a condition, as in not ${operandText(left)} in [...]`, t.at);
    }
    if (t.t === 'word' && ['startswith', 'endswith', 'StartsWith', 'EndsWith'].includes(t.v)) {
      throw new ConditionSyntaxError(`"${t.v}" is not an operator; write startsWith or endsWith`, t.at);
    }
    throw new ConditionSyntaxError(`expected an operator after ${operandText(left)} (==, !=, <, <=, >, >=, in, exists, startsWith, endsWith, contains or under), but found ${describe(t)}`, t.at);
  }

  /** A path or a literal; `after` names what precedes it, for messages (undefined at the start). */
  private operand(after: string | undefined): Operand {
    const expected = after === undefined ? 'expected an argument such as args.amount' : `expected a value after ${after}`;
    const t = this.next();
    switch (t.t) {
      case 'num':
        return { kind: 'literal', value: t.v };
      case 'str':
        return { kind: 'literal', value: t.v };
      case 'word':
        if (t.v === 'true' || t.v === 'false') return { kind: 'literal', value: t.v === 'true' };
        if (t.v === 'null') return { kind: 'literal', value: null };
        if (t.v === 'args') return this.path(t);
        if (KEYWORDS.has(t.v)) throw new ConditionSyntaxError(`${expected}, but found "${t.v}"`, t.at);
        throw new ConditionSyntaxError(`"${t.v}" is not a known name; argument paths start with args, as in args.${t.v}`, t.at);
      case 'end':
        throw new ConditionSyntaxError(`${expected}, but the condition ends`, t.at);
      default:
        throw new ConditionSyntaxError(`${expected}, but found ${describe(t)}`, t.at);
    }
  }

  private path(head: Token): PathOperand {
    const segments: PathSegment[] = [];
    let text = 'args';
    for (;;) {
      if (this.isPunct('.')) {
        const dot = this.next();
        const name = this.next();
        if (name.t !== 'word') {
          throw new ConditionSyntaxError('expected a name after "."; write other keys as args["key"] and indexes as args.list[0]', dot.end);
        }
        segments.push(name.v);
        text += `.${name.v}`;
      } else if (this.isPunct('[')) {
        const open = this.next();
        const key = this.next();
        if (key.t === 'str') {
          segments.push(key.v);
          text += `[${JSON.stringify(key.v)}]`;
        } else if (key.t === 'num' && Number.isSafeInteger(key.v) && key.v >= 0 && !/[.eE-]/.test(String(key.v))) {
          segments.push(key.v);
          text += `[${key.v}]`;
        } else {
          throw new ConditionSyntaxError('expected a quoted key or a non-negative whole number inside [ ]', key.at);
        }
        const close = this.next();
        if (!(close.t === 'punct' && close.v === ']')) {
          throw new ConditionSyntaxError(`expected "]" to close the "[" at character ${open.at + 1}`, close.at);
        }
      } else {
        break;
      }
    }
    if (segments.length === 0) {
      throw new ConditionSyntaxError('args alone is not a value; name an argument, as in args.amount', head.at);
    }
    return { kind: 'path', segments, text };
  }

  private list(): Scalar[] {
    const open = this.next();
    if (!(open.t === 'punct' && open.v === '[')) {
      throw new ConditionSyntaxError('in needs a list in brackets on its right, such as ["a", "b"]', open.at);
    }
    const values: Scalar[] = [];
    if (this.isPunct(']')) {
      throw new ConditionSyntaxError('the list after in is empty, so the condition could never be true', open.at);
    }
    for (;;) {
      const v = this.operand('"["');
      if (v.kind !== 'literal') throw new ConditionSyntaxError('a list after in may hold only constants (numbers, strings, true, false, null)', open.at);
      values.push(v.value);
      const t = this.next();
      if (t.t === 'punct' && t.v === ']') return values;
      if (!(t.t === 'punct' && t.v === ',')) {
        throw new ConditionSyntaxError(`expected "," or "]" in the list, but found ${describe(t)}`, t.at);
      }
    }
  }
}

function describe(t: Token): string {
  switch (t.t) {
    case 'end':
      return 'the end of the condition';
    case 'str':
      return `the string ${JSON.stringify(t.v)}`;
    case 'num':
      return `the number ${t.v}`;
    default:
      return `"${t.v}"`;
  }
}

function operandText(o: Operand): string {
  return o.kind === 'path' ? o.text : JSON.stringify(o.value);
}

function normalisePrefix(p: string): string {
  const n = posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

// ---------------------------------------------------------------- evaluation

const MISSING: unique symbol = Symbol('missing');

/** A test that could not be decided, and why (naming arguments and the test, never a value). */
class Undecided {
  constructor(readonly why: string) {}
}
type Truth = boolean | Undecided;

/**
 * A path that cannot be honestly resolved: on the way, an object holds a key that is spelled
 * differently from the path's segment but folds to the same name (instead of it, or beside it).
 * `where` says so without any value: `args has "Amount", not "amount"`.
 */
class Ambiguous {
  constructor(readonly where: string) {}
}

/**
 * Characters a lenient reader may drop from a key: default-ignorable code points (zero-width
 * characters, the soft hyphen, the byte order mark, variation selectors, tags), controls (a C
 * reader stops at NUL) and other format characters.
 */
const INVISIBLE = /[\p{Default_Ignorable_Code_Point}\p{Cc}\p{Cf}]/gu;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/**
 * The name a lenient reader might take `key` for: NFKC (full-width and mathematical letters, the
 * Kelvin sign, the long s), invisible characters removed, white space trimmed, then case folded
 * (upper case, then lower case, so "ß" and "SS" meet as Unicode's full folding lets them).
 */
function fold(key: string): string {
  // Printable ASCII is its own NFKC form and holds nothing invisible: only trimming and case remain.
  if (PRINTABLE_ASCII.test(key)) return key.trim().toLowerCase();
  return key.normalize('NFKC').replace(INVISIBLE, '').trim().toUpperCase().toLowerCase();
}

/**
 * Per evaluation of one call: each object's own keys grouped by their folded name, built the first
 * time a path steps into that object and shared by every rule, so a call with 100,000 keys is
 * folded once, not once per rule and segment.
 */
type FoldIndex = WeakMap<object, Map<string, string[]>>;

function keysFolding(index: FoldIndex, obj: object, key: string): readonly string[] {
  let byName = index.get(obj);
  if (byName === undefined) {
    byName = new Map();
    for (const k of Object.keys(obj)) {
      const f = fold(k);
      const list = byName.get(f);
      if (list === undefined) byName.set(f, [k]);
      else list.push(k);
    }
    index.set(obj, byName);
  }
  return byName.get(fold(key)) ?? [];
}

/** Whether `obj` has `key` as an own data property with a value (what resolve reads). */
function hasValue(obj: object, key: string): boolean {
  const d = Object.getOwnPropertyDescriptor(obj, key);
  return d !== undefined && 'value' in d && d.value !== undefined;
}

/**
 * Another own key of `obj` that folds to `key`'s name, if any. Keys whose value is undefined are
 * skipped (JSON.stringify drops them, so no server sees them); a getter counts (it would be sent).
 */
function twinOf(index: FoldIndex, obj: object, key: string): string | undefined {
  for (const k of keysFolding(index, obj, key)) {
    if (k === key) continue;
    const d = Object.getOwnPropertyDescriptor(obj, k);
    if (d !== undefined && (!('value' in d) || d.value !== undefined)) return k;
  }
  return undefined;
}

const SHOWN_KEY_LENGTH = 64;
const UNSHOWABLE = /[\p{C}\p{Z}\p{M}\p{Default_Ignorable_Code_Point}]/u;

/**
 * A key from the arguments, quoted for a reason: the first 64 characters, with quotes, backslashes
 * and anything invisible, combining or spacing (except a plain space) written as \uXXXX, so the
 * difference from the path's spelling can be seen and nothing reaches a terminal raw.
 */
function quoteKey(k: string): string {
  const chars = [...k];
  const shown = chars
    .slice(0, SHOWN_KEY_LENGTH)
    .map((c) => {
      if (c === '"' || c === '\\') return `\\${c}`;
      if (c === ' ' || !UNSHOWABLE.test(c)) return c;
      let units = '';
      for (let i = 0; i < c.length; i++) units += `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`;
      return units;
    })
    .join('');
  return `"${shown}${chars.length > SHOWN_KEY_LENGTH ? '…' : ''}"`;
}

/** A path as text, for messages: `args.customer["dry-run"][0]`. */
function pathText(segments: readonly PathSegment[]): string {
  let text = 'args';
  for (const s of segments) text += typeof s === 'number' ? `[${s}]` : /^[A-Za-z_][A-Za-z0-9_]*$/.test(s) ? `.${s}` : `[${JSON.stringify(s)}]`;
  return text;
}

/**
 * The value at `segments` inside `root`, MISSING, or Ambiguous when an object on the way holds
 * another spelling of the segment's key. Reads own data properties only; never throws.
 */
function resolve(root: unknown, segments: readonly PathSegment[], index: FoldIndex): unknown {
  try {
    let cur: unknown = root;
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i]!;
      if (cur === null || typeof cur !== 'object') return MISSING;
      let key: string;
      if (Array.isArray(cur)) {
        const idx = typeof seg === 'number' ? seg : /^(?:0|[1-9]\d{0,15})$/.test(seg) ? Number(seg) : -1;
        if (idx < 0 || idx >= cur.length) return MISSING;
        key = String(idx);
      } else {
        key = String(seg);
        // Go's encoding/json (mcp-go) takes "Amount" for amount and lets the last spelling win;
        // other readers normalise or drop invisible characters. Such a key may be what the server reads.
        const twin = twinOf(index, cur, key);
        if (twin !== undefined) {
          const parent = pathText(segments.slice(0, i));
          return new Ambiguous(hasValue(cur, key) ? `${parent} has both ${quoteKey(key)} and ${quoteKey(twin)}` : `${parent} has ${quoteKey(twin)}, not ${quoteKey(key)}`);
        }
      }
      const d = Object.getOwnPropertyDescriptor(cur, key);
      if (d === undefined || !('value' in d) || d.value === undefined) return MISSING;
      cur = d.value;
    }
    return cur;
  } catch {
    return MISSING;
  }
}

function operandValue(o: Operand, args: unknown, index: FoldIndex): unknown {
  return o.kind === 'literal' ? o.value : resolve(args, o.segments, index);
}

/**
 * Strict structural equality of JSON-like values. Bounded: past a nesting depth or a total number of
 * visited values (shared or cyclic objects could otherwise make it exponential) it answers false.
 */
function equal(a: unknown, b: unknown): boolean {
  const budget = { left: MAX_COMPARE_VISITS };
  return equalWithin(a, b, 0, budget);
}

function equalWithin(a: unknown, b: unknown, depth: number, budget: { left: number }): boolean {
  if (a === b) return true;
  if (depth > MAX_COMPARE_DEPTH || --budget.left < 0) return false;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  const aa = Array.isArray(a);
  if (aa !== Array.isArray(b)) return false;
  if (aa) {
    const x = a as unknown[];
    const y = b as unknown[];
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!equalWithin(x[i], y[i], depth + 1, budget)) return false;
    return true;
  }
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(b, k)) return false;
    if (!equalWithin((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], depth + 1, budget)) return false;
  }
  return true;
}

/** An array or an object (anything JSON would write with brackets or braces). */
function isStructured(v: unknown): v is object {
  return v !== null && typeof v === 'object';
}

function structureName(v: object): string {
  return Array.isArray(v) ? 'an array' : 'an object';
}

/**
 * Whether `list` (an array that has no element equal to `needle`) still holds it in a way a lenient
 * server could act on: a value equal to it nested deeper (in an inner array or object), or, for a
 * string needle, an occurrence in the array's text — every string inside it at any depth (object
 * keys and values included), in order, joined by single spaces, so `["rm", "-rf", "/"]` holds
 * "rm -rf". Past MAX_COMPARE_VISITS values or MAX_COMPARE_DEPTH levels it gives up: 'overflow'.
 */
function heldInside(list: readonly unknown[], needle: unknown): 'inside' | 'overflow' | false {
  const budget = { left: MAX_COMPARE_VISITS };
  const text: string[] = [];
  let found = false;
  const walk = (v: unknown, depth: number): void => {
    if (found || budget.left < 0) return;
    if (depth > MAX_COMPARE_DEPTH || --budget.left < 0) {
      budget.left = -1;
      return;
    }
    if (depth > 1 && equalWithin(v, needle, 0, budget)) {
      found = true;
      return;
    }
    if (typeof v === 'string') text.push(v);
    else if (Array.isArray(v)) for (const x of v) walk(x, depth + 1);
    else if (isStructured(v)) {
      for (const k of Object.keys(v)) {
        text.push(k);
        const d = Object.getOwnPropertyDescriptor(v, k);
        if (d !== undefined && 'value' in d) walk(d.value, depth + 1);
      }
    }
  };
  for (const x of list) walk(x, 1);
  if (found) return 'inside';
  if (budget.left < 0) return 'overflow';
  return typeof needle === 'string' && text.join(' ').includes(needle) ? 'inside' : false;
}

/** A plain decimal numeral: JSON's number grammar without the exponent, nothing around it. */
const PLAIN_NUMERAL = /^-?(?:0|[1-9]\d*)(?:\.\d+)?$/;

/** How a value takes part in ordering: as a number, as a string that is also a plain numeral, as text, or not at all. */
function ordinal(v: unknown): 'number' | 'numeral' | 'string' | 'none' {
  if (typeof v === 'number') return Number.isNaN(v) ? 'none' : 'number';
  if (typeof v === 'string') return PLAIN_NUMERAL.test(v) ? 'numeral' : 'string';
  return 'none';
}

function kindOf(v: unknown): string {
  if (typeof v === 'string') return 'a string that is not a plain decimal number';
  if (typeof v === 'number') return 'not a number';
  if (typeof v === 'boolean') return 'a boolean';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return 'not a JSON value';
}

function compare<T extends number | string>(op: '<' | '<=' | '>' | '>=', a: T, b: T): boolean {
  switch (op) {
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '>':
      return a > b;
    case '>=':
      return a >= b;
  }
}

function ordered(c: { op: '<' | '<=' | '>' | '>='; left: Operand; right: Operand }, a: unknown, b: unknown, because: (subject: string) => Undecided): Truth {
  const ka = ordinal(a);
  const kb = ordinal(b);
  if (ka !== 'none' && kb !== 'none' && ka !== 'number' && kb !== 'number') return compare(c.op, a as string, b as string);
  if ((ka === 'number' || ka === 'numeral') && (kb === 'number' || kb === 'numeral')) return compare(c.op, Number(a), Number(b));
  // Name the side that spoiled it: one that is no number or string at all, else the text against a number.
  const leftBad = ka === 'none' || (kb !== 'none' && ka === 'string');
  const [operand, value] = leftBad ? [c.left, a] : [c.right, b];
  return because(`${operandText(operand)} is ${kindOf(value)}`);
}

/** True when `value` is an absolute POSIX path that, once `.` and `..` are resolved, is `prefix` or inside it. */
export function isUnder(value: unknown, prefix: string): boolean {
  if (typeof value !== 'string' || !value.startsWith('/') || value.includes('\\') || value.includes('\u0000')) return false;
  const n = posix.normalize(value);
  if (prefix === '/') return true;
  return n === prefix || n === `${prefix}/` || n.startsWith(`${prefix}/`);
}

function test(c: Condition, args: unknown, index: FoldIndex): Truth {
  switch (c.op) {
    case 'and': {
      // Three-valued: one false decides; otherwise the first undecided item; otherwise true.
      let undecided: Undecided | undefined;
      for (const item of c.items) {
        const t = test(item, args, index);
        if (t === false) return false;
        if (t instanceof Undecided) undecided ??= t;
      }
      return undecided ?? true;
    }
    case 'or': {
      let undecided: Undecided | undefined;
      for (const item of c.items) {
        const t = test(item, args, index);
        if (t === true) return true;
        if (t instanceof Undecided) undecided ??= t;
      }
      return undecided ?? false;
    }
    case 'not': {
      const t = test(c.item, args, index);
      return t instanceof Undecided ? t : !t;
    }
    default:
      try {
        return predicate(c, args, index);
      } catch {
        // Only hostile objects (throwing proxies, revoked objects) get here: unreadable is missing.
        return false;
      }
  }
}

type Predicate = Exclude<Condition, { op: 'and' | 'or' | 'not' }>;

/** A predicate as text, for reasons: `args.role in ["admin"]`. Only policy text, never an argument's value. */
function predicateText(c: Predicate): string {
  switch (c.op) {
    case 'exists':
      return `${c.left.text} exists`;
    case 'in':
      return `${c.left.text} in [${c.values.map((v) => JSON.stringify(v)).join(', ')}]`;
    case 'under':
      return `${c.left.text} under ${JSON.stringify(c.prefix)}`;
    default:
      return `${operandText(c.left)} ${c.op} ${operandText(c.right)}`;
  }
}

function predicate(c: Predicate, args: unknown, index: FoldIndex): Truth {
  const because = (subject: string): Undecided => new Undecided(`${subject}, so ${predicateText(c)} could not be decided`);
  const a = operandValue(c.left, args, index);
  const b = c.op === 'exists' || c.op === 'in' || c.op === 'under' ? null : operandValue(c.right, args, index);
  // A missing argument decides the test (false) whatever the other side holds; a key that is
  // only another spelling of the path's may be the argument the server reads, so nothing is decided.
  if (a === MISSING || b === MISSING) return false;
  if (a instanceof Ambiguous) return because(a.where);
  if (b instanceof Ambiguous) return because(b.where);
  /**
   * A number or boolean tested with a string operator: a server that takes it as text (JavaScript,
   * a template, a query string) reads 99123 as "99123", which startsWith "99", while one that takes
   * it as a number does not. When its text would pass the test the answer depends on the server, so
   * it is undecided (deny and review rules apply); when even its text fails, it is false.
   */
  const scalar = (o: Operand, v: unknown, other: unknown): Undecided | false | undefined => {
    if (typeof other !== 'string' || (typeof v !== 'number' && typeof v !== 'boolean')) return undefined;
    const text = String(v);
    const passes = c.op === 'startsWith' ? text.startsWith(other) : c.op === 'endsWith' ? text.endsWith(other) : text.includes(other);
    // The reason names the operand, never its value (which may be a secret, e.g. a PIN).
    return passes ? because(`${operandText(o)} is a ${typeof v} whose text passes the test but whose value does not`) : false;
  };
  /** The undecided answer naming the first of the operands that holds an array or an object. */
  const structured = (...sides: Array<[Operand, unknown]>): Undecided | undefined => {
    for (const [o, v] of sides) if (isStructured(v)) return because(`${operandText(o)} is ${structureName(v)}`);
    return undefined;
  };
  switch (c.op) {
    case 'exists':
      return true;
    case 'in':
      // The list holds constants: an array or object is not one of them, but a server expecting one
      // value may read its first, last or any element (or, in JavaScript, its text).
      return structured([c.left, a]) ?? c.values.some((x) => equal(a, x));
    case 'under':
      return structured([c.left, a]) ?? isUnder(a, c.prefix);
    case '==':
    case '!=': {
      // Two arrays or objects compare by value; an array or object against a constant cannot be decided.
      if (isStructured(a) !== isStructured(b)) return structured([c.left, a], [c.right, b])!;
      const same = equal(a, b);
      return c.op === '==' ? same : !same;
    }
    case '<':
    case '<=':
    case '>':
    case '>=':
      return ordered({ op: c.op, left: c.left, right: c.right }, a, b, because);
    case 'startsWith':
    case 'endsWith':
      return structured([c.left, a], [c.right, b]) ?? scalar(c.left, a, b) ?? (typeof a === 'string' && typeof b === 'string' && (c.op === 'startsWith' ? a.startsWith(b) : a.endsWith(b)));
    case 'contains': {
      if (Array.isArray(a)) {
        // An array contains what one of its elements equals; held any other way, it is undecided.
        if (a.some((x) => equal(x, b))) return true;
        const inside = heldInside(a, b);
        if (inside === 'overflow') return because(`${c.left.text} is an array too large or too deeply nested to search`);
        if (inside === 'inside') return because(`${c.left.text} is an array that holds ${operandText(c.right)} only nested deeper or as part of its text, not as an element`);
        return false;
      }
      return structured([c.left, a], [c.right, b]) ?? scalar(c.left, a, b) ?? (typeof a === 'string' && typeof b === 'string' && a.includes(b));
    }
  }
}

/**
 * Evaluates a parsed condition against a call's arguments. Never throws: a value that cannot be
 * read (a throwing proxy, a revoked object) counts as missing, so the predicate reading it is false.
 * Nesting is bounded at parse time (MAX_NESTING), so the recursion here is too. The answer is
 * three-valued; callers must treat `undecided` as their rule's effect requires (see evaluate.ts).
 */
export function evaluateCondition(c: Condition, args: unknown): ConditionResult {
  return conditionsOn(args)(c);
}

/**
 * The evaluator for many conditions over one call's arguments (a policy's rules): the same answers
 * as evaluateCondition, sharing the work of folding the arguments' keys between conditions. The
 * arguments must not change while it is in use.
 */
export function conditionsOn(args: unknown): (c: Condition) => ConditionResult {
  const index: FoldIndex = new WeakMap();
  return (c) => {
    const t = test(c, args, index);
    return t instanceof Undecided ? { holds: 'undecided', why: t.why } : { holds: t };
  };
}
