/**
 * RFC 8785 (JCS) canonical JSON, written here: this module owns both the question of *what* may be
 * serialised (a ledger must never hash something other than what the caller thinks it recorded, so
 * every value is validated and copied into plain JSON) and the bytes. The `canonicalize` library is
 * a development dependency only: the test oracle that test/core/canonical-json.test.ts compares
 * these bytes with, on the RFC's vectors and on random values.
 */
import { WitnessError } from './errors.js';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface CanonicalOptions {
  /** Path of `value` inside a larger document (e.g. `data`), so errors name the full path. */
  path?: string;
  /** Maximum nesting of arrays/objects; the top-level container is level 1. */
  maxDepth?: number;
}

export const DEFAULT_MAX_DEPTH = 200;

/** How the top-level value is named in errors when the caller gave no `path`. */
export const ROOT_PATH = '(value)';

/**
 * Validates `value` and returns it as plain JSON: `toJSON()` applied, undefined properties dropped,
 * boxed primitives unwrapped, -0 turned into 0, members in JCS order. The result is a fresh copy, so
 * it is exactly what `canonicalize` hashes even if the caller's objects change afterwards or have
 * getters.
 */
export function toJsonValue(value: unknown, opts?: CanonicalOptions): JsonValue {
  return new Walker(opts).root(value);
}

export function canonicalize(value: unknown, opts?: CanonicalOptions): string {
  return encodeJcs(value, opts).text;
}

/** A value as plain JSON and its JCS text, from one walk. */
export interface Encoded {
  value: JsonValue;
  text: string;
}

/**
 * `toJsonValue` and `canonicalize` in one walk. The copy is built with every object's members
 * inserted in JCS order, and JSON.stringify writes members in insertion order, strings and numbers
 * exactly as JCS does (RFC 8785 adopts ECMAScript's serialisation) and -0 as 0: so on the copy the
 * native stringify *is* JCS, at a fraction of the cost of a serialiser in JavaScript. Two cases
 * break that equality and take serializeJcs instead: a member name that is an array index ("7"),
 * which engines enumerate first in numeric order, and a toJSON someone put on Object.prototype or
 * Array.prototype, which JSON.stringify would call.
 */
export function encodeJcs(value: unknown, opts?: CanonicalOptions): Encoded {
  const w = new Walker(opts);
  const plain = w.root(value);
  const text = w.indexLikeKeys || prototypesHaveToJSON() ? serializeJcs(plain) : (JSON.stringify(plain) as string);
  return { value: plain, text };
}

/** Someone put a toJSON on Object.prototype or Array.prototype: JSON.stringify is then not JCS. */
export function prototypesHaveToJSON(): boolean {
  return (objectProto as { toJSON?: unknown }).toJSON !== undefined || (Array.prototype as { toJSON?: unknown }).toJSON !== undefined;
}

/**
 * Serialises already-validated plain JSON per RFC 8785: members sorted by UTF-16 code units (what
 * Array#sort compares), strings and numbers as ECMAScript's JSON.stringify writes them, which JCS
 * adopts. For plain JSON whose members may be in any order (a value built elsewhere, zod's output);
 * a value still to be validated goes through encodeJcs, which is faster. The `canonicalize`
 * library is the oracle: test/core/canonical-json.test.ts compares both on random values.
 */
export function serializeJcs(v: JsonValue): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'string':
    case 'number':
      return JSON.stringify(v);
    case 'boolean':
      return v ? 'true' : 'false';
  }
  if (Array.isArray(v)) {
    let out = '[';
    for (let i = 0; i < v.length; i++) {
      if (i > 0) out += ',';
      out += serializeJcs(v[i]!);
    }
    return `${out}]`;
  }
  const keys = Object.keys(v).sort();
  let out = '{';
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    if (i > 0) out += ',';
    out += JSON.stringify(k);
    out += ':';
    out += serializeJcs((v as Record<string, JsonValue>)[k]!);
  }
  return `${out}}`;
}

export function canonicalBytes(value: unknown, opts?: CanonicalOptions): Buffer {
  return Buffer.from(canonicalize(value, opts), 'utf8');
}

type Segment = string | number;

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** Renders path segments the way a JS programmer would write the access: `a.b[2]["x-y"]`. */
export function formatJsonPath(segments: readonly Segment[], prefix = ''): string {
  let out = prefix;
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (IDENTIFIER.test(s)) out += out === '' ? s : `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out === '' ? ROOT_PATH : out;
}

const nativeIsWellFormed = (String.prototype as { isWellFormed?: unknown }).isWellFormed;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** True if `s` has no unpaired UTF-16 surrogate, i.e. it can be encoded as UTF-8. */
export function isWellFormedString(s: string): boolean {
  // String.prototype.isWellFormed is native in Node 20; the regex covers runtimes without it.
  return typeof nativeIsWellFormed === 'function' ? (nativeIsWellFormed.call(s) as boolean) : !LONE_SURROGATE.test(s);
}

function firstLoneSurrogate(s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        i++;
        continue;
      }
    }
    return c;
  }
  return 0;
}

function hex4(c: number): string {
  return c.toString(16).toUpperCase().padStart(4, '0');
}

const objectProto = Object.prototype;

/**
 * One validating copy. Paths are kept as a depth-indexed array of segments (overwritten, never
 * popped) so the hot loop does no string work; the path is rendered only when something fails.
 * Cycles are not tracked per node: a cycle always runs into the depth limit, and only then are the
 * ancestors searched for the repeated object, which keeps the common case free of Set traffic.
 */
class Walker {
  private readonly prefix: string;
  private readonly maxDepth: number;
  private readonly segments: Segment[] = [];
  private readonly ancestors: object[] = [];
  /** Some member name may be an array index, so the copy's insertion order is not its JCS order. */
  indexLikeKeys = false;

  constructor(opts?: CanonicalOptions) {
    this.prefix = opts?.path ?? '';
    this.maxDepth = opts?.maxDepth ?? DEFAULT_MAX_DEPTH;
  }

  root(value: unknown): JsonValue {
    if (value === undefined) this.fail(0, 'undefined', 'pass null or a value instead');
    return this.walk(value, 0);
  }

  /** `depth` is the number of containers enclosing `v`; `segments[0..depth)` is its path. */
  private walk(v: unknown, depth: number): JsonValue {
    switch (typeof v) {
      case 'string':
        if (!isWellFormedString(v)) this.failSurrogate(depth, 'String', firstLoneSurrogate(v));
        return v;
      case 'number':
        if (!Number.isFinite(v)) this.fail(depth, String(v), 'use null or a string instead');
        // JCS writes these as plain digits, which a strict reader (ours, and any that follows
        // I-JSON, RFC 7493) must refuse as beyond 2^53: record them as strings so exports re-verify.
        if (Number.isInteger(v) && !Number.isSafeInteger(v) && Math.abs(v) < 1e21) {
          this.fail(depth, `The integer ${v}`, 'it is beyond 2^53 and loses precision, so record it as a string');
        }
        return v === 0 ? 0 : v;
      case 'boolean':
        return v;
      case 'object':
        return v === null ? null : this.container(v, depth);
      case 'undefined':
        // Object properties holding undefined are dropped before we get here, like JSON.stringify.
        return this.fail(depth, 'undefined', 'use null or remove the element');
      case 'bigint':
        return this.fail(depth, 'BigInt', 'convert it to a string or number');
      case 'function':
        return this.fail(depth, 'Function', 'remove it or record a description of it instead');
      case 'symbol':
        return this.fail(depth, 'Symbol', 'convert it to a string');
      default:
        return this.fail(depth, `Value of type ${typeof v}`, 'convert it to a string');
    }
  }

  private container(v: object, depth: number): JsonValue {
    if (Array.isArray(v)) {
      if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return this.viaToJSON(v, depth);
      if (depth >= this.maxDepth) this.tooDeep(v, depth);
      this.ancestors[depth] = v;
      const len = v.length;
      const out: JsonValue[] = [];
      const next = depth + 1;
      for (let i = 0; i < len; i++) {
        const c: unknown = v[i];
        this.segments[depth] = i;
        // Sparse slots read as undefined too; JSON.stringify would quietly turn both into null.
        if (c === undefined) this.fail(next, 'undefined', 'use null or remove the element');
        out.push(this.walk(c, next));
      }
      return out;
    }
    const proto: unknown = Object.getPrototypeOf(v);
    if (proto !== objectProto && proto !== null && !isForeignObjectPrototype(proto)) return this.special(v, depth);
    if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return this.viaToJSON(v, depth);
    if (depth >= this.maxDepth) this.tooDeep(v, depth);
    this.ancestors[depth] = v;
    const rec = v as Record<string, unknown>;
    const keys = Object.keys(rec);
    let out: Record<string, JsonValue> = {};
    const next = depth + 1;
    let last = '';
    let sorted = true;
    // Members are visited in the caller's order (toJSON sees the order JSON.stringify would use),
    // and the copy is rebuilt in JCS order only when that order was not already JCS: see encodeJcs.
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      const c = rec[k];
      if (c === undefined) continue;
      this.segments[depth] = k;
      if (!isWellFormedString(k)) this.failSurrogate(next, 'Property name', firstLoneSurrogate(k));
      // Conservative: any name starting with a digit may be an array index.
      const c0 = k.charCodeAt(0);
      if (c0 >= 0x30 && c0 <= 0x39) this.indexLikeKeys = true;
      if (k < last) sorted = false;
      last = k;
      setMember(out, k, this.walk(c, next));
    }
    if (!sorted) {
      keys.sort();
      const inOrder: Record<string, JsonValue> = {};
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i]!;
        const j = out[k];
        if (j !== undefined && Object.hasOwn(out, k)) setMember(inOrder, k, j);
      }
      out = inOrder;
    }
    return out;
  }

  /** Objects with a prototype other than Object.prototype: dates, boxed values, classes, binary. */
  private special(v: object, depth: number): JsonValue {
    // Checked before toJSON: Buffer has a toJSON that yields a bulky {type, data:[…]} object.
    if (isBinary(v)) return this.fail(depth, `${typeName(v)} (binary data)`, 'encode the bytes as a base64 string first');
    if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return this.viaToJSON(v, depth);
    // JSON.stringify unwraps these, and so do we.
    if (v instanceof Number || v instanceof String || v instanceof Boolean) return this.walk(v.valueOf(), depth);
    if (v instanceof BigInt) return this.fail(depth, 'BigInt', 'convert it to a string or number');
    if (v instanceof Symbol) return this.fail(depth, 'Symbol', 'convert it to a string');
    if (v instanceof Map) return this.fail(depth, 'Map', 'convert it with Object.fromEntries(map) first');
    if (v instanceof Set) return this.fail(depth, 'Set', 'convert it with Array.from(set) first');
    if (v instanceof Promise) return this.fail(depth, 'Promise', 'await it and record the result');
    if (v instanceof Error) return this.fail(depth, typeName(v), 'record its name and message as strings');
    return this.fail(depth, `Instance of ${typeName(v)}`, 'convert it to a plain object or give the class a toJSON() method');
  }

  /**
   * Replaces `v` by its toJSON() result. Unlike JSON.stringify, a result that itself has toJSON()
   * is converted again (as the library would), so a wrapper returning a Date records the date; the
   * chain is bounded because a toJSON returning fresh objects forever would otherwise never end.
   */
  private viaToJSON(v: object, depth: number): JsonValue {
    // JSON.stringify passes the property name (array indices as strings, '' at the top level).
    const key = depth === 0 ? '' : String(this.segments[depth - 1]);
    let cur: unknown = v;
    for (let hops = 0; typeof cur === 'object' && cur !== null && !isBinary(cur); hops++) {
      const toJSON: unknown = (cur as { toJSON?: unknown }).toJSON;
      if (typeof toJSON !== 'function') break;
      // Date#toJSON turns an invalid date into null; recording that silently would hide the bug.
      if (cur instanceof Date && Number.isNaN(cur.getTime())) return this.fail(depth, 'Invalid Date', 'record null or a valid date instead');
      if (hops === MAX_TOJSON_HOPS) {
        return this.fail(depth, 'Value whose toJSON() keeps returning objects with toJSON()', 'make toJSON() return plain data');
      }
      try {
        cur = toJSON.call(cur, key);
      } catch (e) {
        const path = this.path(depth);
        const why = e instanceof Error ? e.message : String(e);
        throw new WitnessError('not_serialisable', `toJSON() of the value at ${shortPath(path)} threw (${why}); fix it or convert the value before recording it.`, {
          details: { path },
          cause: e,
        });
      }
    }
    if (cur === undefined) return this.fail(depth, 'undefined (returned by toJSON())', 'make toJSON() return a JSON value');
    return this.walk(cur, depth);
  }

  /** Called at the depth limit: names the cycle if there is one, otherwise the excessive depth. */
  private tooDeep(v: object, depth: number): never {
    const chain = this.ancestors;
    for (let i = 1; i <= depth; i++) {
      const o = i === depth ? v : chain[i];
      for (let j = 0; j < i; j++) {
        if (chain[j] !== o) continue;
        const at = this.path(i);
        throw new WitnessError('not_serialisable', `Circular reference at ${shortPath(at)} (a reference back to ${shortPath(this.path(j))}) cannot be recorded as JSON; remove the back-reference.`, {
          details: { path: at },
        });
      }
    }
    const path = this.path(depth);
    throw new WitnessError(
      'not_serialisable',
      `Value at ${shortPath(path)} is nested more than ${this.maxDepth} levels deep and cannot be recorded as JSON; flatten it or store that part as a string.`,
      { details: { path, maxDepth: this.maxDepth } },
    );
  }

  private failSurrogate(depth: number, what: string, unit: number): never {
    const path = this.path(depth);
    const fix = what === 'String' ? 'repair the text or record the raw bytes as base64' : 'rename the property';
    throw new WitnessError('not_serialisable', `${what} at ${shortPath(path)} contains a lone UTF-16 surrogate (U+${hex4(unit)}) and cannot be recorded as JSON; ${fix}.`, { details: { path } });
  }

  private fail(depth: number, what: string, fix: string): never {
    const path = this.path(depth);
    throw new WitnessError('not_serialisable', `${what} at ${shortPath(path)} cannot be recorded as JSON; ${fix}.`, { details: { path } });
  }

  private path(depth: number): string {
    return formatJsonPath(this.segments.slice(0, depth), this.prefix);
  }
}

/** Plain assignment to "__proto__" would set the prototype instead of creating the property. */
function setMember(out: Record<string, JsonValue>, k: string, j: JsonValue): void {
  if (k === '__proto__') Object.defineProperty(out, k, { value: j, enumerable: true, writable: true, configurable: true });
  else out[k] = j;
}

/** Keeps messages one readable sentence when the path is hundreds of levels long; details keep it whole. */
function shortPath(path: string): string {
  return path.length <= 160 ? path : `${path.slice(0, 80)}…${path.slice(-60)}`;
}

const MAX_TOJSON_HOPS = 16;

/** Object.prototype of another realm (e.g. a node:vm context): such objects are still plain data. */
function isForeignObjectPrototype(proto: unknown): boolean {
  return typeof proto === 'object' && proto !== null && Object.getPrototypeOf(proto) === null && typeName(proto) === 'Object';
}

function isBinary(v: object): boolean {
  return ArrayBuffer.isView(v) || v instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && v instanceof SharedArrayBuffer);
}

function typeName(v: object): string {
  const ctor = (v as { constructor?: { name?: unknown } }).constructor;
  return typeof ctor?.name === 'string' && ctor.name !== '' ? ctor.name : 'object';
}
