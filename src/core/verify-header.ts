import { EVENT_KINDS, OUTCOMES } from './event.js';

/**
 * The verifier's fast path for a stored header: one pass over the text that accepts it only if it
 * is exactly what Witness writes — RFC 8785 canonical form (members sorted, no whitespace, strings
 * escaped as JCS escapes them, integers in shortest form) AND valid against `EventHeader` — and
 * that extracts the fields the chain checks need on the way.
 *
 * It proves canonical form without re-encoding: a header this scanner accepts is the JCS of its
 * own JSON.parse (sorted unique keys, canonical strings and numbers leave nothing to re-spell), and
 * its schema rules are the zod schema's, written out field by field. Anything else — a stray
 * space, an unknown field, a number out of range — returns undefined, and the verifier takes the
 * slow path (JSON.parse, canonicalize, zod) that produced today's messages, so a failure is
 * reported in exactly the words it always was. test/core/verify-header.test.ts holds the scanner
 * to that: on valid, invalid and fuzzed headers, whatever it accepts the slow path accepts, with
 * the same fields.
 */

/** What the chain checks read from a header. */
export interface HeaderFields {
  id: string;
  ts: string;
  stream: string;
  seq: number;
  kind: string;
  /** agent.id */
  agent: string;
  resource: string | null;
  action: string | null;
  outcome: string | null;
  payload_digest: string;
  prev: string;
  received_ts: string | undefined;
  /** sha256 of each artifact, in order. */
  artifacts: string[];
}

const NO_ARTIFACTS: string[] = [];
Object.freeze(NO_ARTIFACTS);

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;

/** Where a value's string started and ended, and whether it held escapes: set by `str`. */
interface Cursor {
  t: string;
  i: number;
  /** Start of the last string's contents (after the quote) and its end (the closing quote). */
  s0: number;
  s1: number;
  /** Decoded length (UTF-16 units) of the last string. */
  len: number;
  esc: boolean;
  out: HeaderFields;
}

type Value = (c: Cursor) => boolean;

interface Field {
  key: string;
  /** `"key":` as it must appear. */
  lead: string;
  value: Value;
  required: boolean;
}

/**
 * Reads a string at c.i in canonical JCS spelling: no raw control characters, no lone surrogates,
 * and only the escapes JSON.stringify writes (\" \\ \b \f \n \r \t, \u00xx for other controls).
 */
function str(c: Cursor): boolean {
  const t = c.t;
  let i = c.i;
  if (t.charCodeAt(i) !== QUOTE) return false;
  i++;
  c.s0 = i;
  let len = 0;
  let esc = false;
  for (;;) {
    const ch = t.charCodeAt(i);
    if (ch === QUOTE) break;
    // NaN (past the end) fails this test too.
    if (!(ch >= 0x20)) return false;
    if (ch === BACKSLASH) {
      const e = t.charCodeAt(i + 1);
      if (e === QUOTE || e === BACKSLASH || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
        i += 2;
      } else if (e === 0x75 && t.charCodeAt(i + 2) === 0x30 && t.charCodeAt(i + 3) === 0x30) {
        const hi = t.charCodeAt(i + 4);
        const lo = t.charCodeAt(i + 5);
        const l = lo >= 0x30 && lo <= 0x39 ? lo - 0x30 : lo >= 0x61 && lo <= 0x66 ? lo - 0x57 : -1;
        if (l < 0 || (hi !== 0x30 && hi !== 0x31)) return false;
        const code = (hi - 0x30) * 16 + l;
        // JSON.stringify writes these five as short escapes.
        if (code === 0x08 || code === 0x09 || code === 0x0a || code === 0x0c || code === 0x0d) return false;
        i += 6;
      } else {
        return false;
      }
      esc = true;
      len++;
      continue;
    }
    if (ch >= 0xd800 && ch <= 0xdfff) {
      const d = t.charCodeAt(i + 1);
      if (ch > 0xdbff || !(d >= 0xdc00 && d <= 0xdfff)) return false;
      i += 2;
      len += 2;
      continue;
    }
    i++;
    len++;
  }
  c.s1 = i;
  c.i = i + 1;
  c.len = len;
  c.esc = esc;
  return true;
}

/** The decoded value of the string `str` just read. */
function strValue(c: Cursor): string {
  return c.esc ? (JSON.parse(c.t.slice(c.s0 - 1, c.s1 + 1)) as string) : c.t.slice(c.s0, c.s1);
}

function isDigit(ch: number): boolean {
  return ch >= 0x30 && ch <= 0x39;
}

function isLowerHex(ch: number): boolean {
  return (ch >= 0x30 && ch <= 0x39) || (ch >= 0x61 && ch <= 0x66);
}

/** A string of exactly `n` characters (no escapes possible) whose i-th character passes `ok(i, ch)`. */
function fixed(n: number, ok: (k: number, ch: number) => boolean): Value {
  return (c) => {
    const t = c.t;
    const i = c.i;
    if (t.charCodeAt(i) !== QUOTE || t.charCodeAt(i + n + 1) !== QUOTE) return false;
    for (let k = 0; k < n; k++) if (!ok(k, t.charCodeAt(i + 1 + k))) return false;
    c.s0 = i + 1;
    c.s1 = i + 1 + n;
    c.len = n;
    c.esc = false;
    c.i = i + n + 2;
    return true;
  };
}

/** /^[0-9a-f]{64}$/ */
const hex64 = fixed(64, (_k, ch) => isLowerHex(ch));
/** /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/ */
const ISO_SHAPE = '0000-00-00T00:00:00.000Z';
const isoTime = fixed(24, (k, ch) => (ISO_SHAPE.charCodeAt(k) === 0x30 ? isDigit(ch) : ch === ISO_SHAPE.charCodeAt(k)));
/** /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/ */
const uuid = fixed(36, (k, ch) => (k === 8 || k === 13 || k === 18 || k === 23 ? ch === 0x2d : isLowerHex(ch)));

/** z.string().min(min).max(max): lengths in UTF-16 units of the decoded string. */
function text(min: number, max: number): Value {
  return (c) => str(c) && c.len >= min && c.len <= max;
}
const name = text(1, 512);
const label = text(0, 4096);
const mime = text(1, 255);

function oneOf(values: readonly string[]): Value {
  const set = new Set(values);
  // No member needs an escape, so a string with one cannot be a member.
  return (c) => str(c) && !c.esc && set.has(c.t.slice(c.s0, c.s1));
}

/** z.number().int().nonnegative().max(MAX_SAFE_INTEGER), spelled canonically. */
function count(c: Cursor): boolean {
  const t = c.t;
  let i = c.i;
  const first = t.charCodeAt(i);
  if (first === 0x30) {
    c.i = i + 1;
    c.len = 0;
    return true;
  }
  if (!(first >= 0x31 && first <= 0x39)) return false;
  const start = i;
  do i++;
  while (isDigit(t.charCodeAt(i)));
  if (i - start > 16) return false;
  const n = Number(t.slice(start, i));
  if (n > Number.MAX_SAFE_INTEGER) return false;
  c.i = i;
  c.len = n;
  return true;
}

function arrayOf(item: Value, max: number): Value {
  return (c) => {
    const t = c.t;
    if (t.charCodeAt(c.i) !== LBRACKET) return false;
    c.i++;
    if (t.charCodeAt(c.i) === RBRACKET) {
      c.i++;
      return true;
    }
    for (let n = 1; ; n++) {
      if (n > max || !item(c)) return false;
      const d = t.charCodeAt(c.i++);
      if (d === RBRACKET) return true;
      if (d !== COMMA) return false;
    }
  };
}

function field(key: string, value: Value, required = false): Field {
  return { key, lead: `"${key}":`, value, required };
}

/** A strict object: every key known, in JCS order (which also rules out duplicates), required keys present. */
function object(fields: Field[]): Value {
  const sorted = [...fields].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const n = sorted.length;
  return (c) => {
    const t = c.t;
    if (t.charCodeAt(c.i) !== LBRACE) return false;
    c.i++;
    let f = 0;
    if (t.charCodeAt(c.i) === RBRACE) {
      c.i++;
    } else {
      for (;;) {
        // Members must come in the sorted order of the schema's keys; skipping a required one fails.
        while (f < n && !t.startsWith(sorted[f]!.lead, c.i)) {
          if (sorted[f]!.required) return false;
          f++;
        }
        if (f === n) return false;
        const fd = sorted[f]!;
        c.i += fd.lead.length;
        if (!fd.value(c)) return false;
        f++;
        const d = t.charCodeAt(c.i++);
        if (d === RBRACE) break;
        if (d !== COMMA) return false;
      }
    }
    for (; f < n; f++) if (sorted[f]!.required) return false;
    return true;
  };
}

/** Wraps a value so that its decoded string is stored in the extracted fields. */
function keep(value: Value, set: (out: HeaderFields, v: string) => void): Value {
  return (c) => {
    if (!value(c)) return false;
    set(c.out, strValue(c));
    return true;
  };
}

const agentRef = object([
  field(
    'id',
    keep(name, (o, v) => (o.agent = v)),
    true,
  ),
  field('version', label),
  field('credential', label),
]);
const recorderRef = object([field('id', label), field('kind', oneOf(['sdk', 'gateway', 'server', 'otlp', 'cli']), true), field('version', label)]);
const sourceRef = object([field('host', label), field('process', label)]);
const principalRef = object([field('id', name, true), field('kind', oneOf(['human', 'service']))]);
const delegation = object([field('id', label, true), field('issuer', label), field('scopes', arrayOf(label, 256)), field('expires', isoTime)]);
const policyContext = object([
  field('decision', oneOf(['allow', 'deny', 'review']), true),
  field('rule', label),
  field('version', hex64),
  field('reason_code', label),
  field('mode', oneOf(['enforce', 'shadow'])),
  field('approver', label),
]);
const approval = object([
  field('approver', name, true),
  field('role', label),
  field('decision', oneOf(['approved', 'denied']), true),
  field('reason', label),
  field('meaning', label),
  field('args_digest', hex64),
  field('ts', isoTime, true),
]);
const artifactRef = object([
  field(
    'sha256',
    keep(hex64, (o, v) => {
      if (o.artifacts === NO_ARTIFACTS) o.artifacts = [];
      o.artifacts.push(v);
    }),
    true,
  ),
  field('mime', mime, true),
  field('bytes', count, true),
  field('role', label),
  field('name', label),
]);

const header = object([
  // commonInput
  field(
    'id',
    keep(uuid, (o, v) => (o.id = v)),
    true,
  ),
  field(
    'ts',
    keep(isoTime, (o, v) => (o.ts = v)),
    true,
  ),
  field(
    'received_ts',
    keep(isoTime, (o, v) => (o.received_ts = v)),
  ),
  field('agent', agentRef, true),
  field('user', label),
  field('principal', principalRef),
  field('delegation', delegation),
  field('subject', label),
  field('recorder', recorderRef),
  field('source', sourceRef),
  field('env', label),
  field('tenant', label),
  field('parent', uuid),
  field(
    'resource',
    keep(label, (o, v) => (o.resource = v)),
  ),
  field(
    'action',
    keep(label, (o, v) => (o.action = v)),
  ),
  field(
    'outcome',
    keep(oneOf(OUTCOMES), (o, v) => (o.outcome = v)),
  ),
  field('policy', policyContext),
  field('approvals', arrayOf(approval, 64)),
  field('record_class', label),
  field('data_categories', arrayOf(label, 64)),
  field('artifacts', arrayOf(artifactRef, 1024)),
  // EventHeader's own
  field('v', (c) => c.t.charCodeAt(c.i) === 0x31 && !isDigit(c.t.charCodeAt(c.i + 1)) && ++c.i > 0, true),
  field(
    'stream',
    keep(name, (o, v) => (o.stream = v)),
    true,
  ),
  field(
    'seq',
    (c) => {
      if (!count(c)) return false;
      c.out.seq = c.len;
      return true;
    },
    true,
  ),
  field(
    'kind',
    keep(oneOf(EVENT_KINDS), (o, v) => (o.kind = v)),
    true,
  ),
  field(
    'payload_digest',
    keep(hex64, (o, v) => (o.payload_digest = v)),
    true,
  ),
  field(
    'prev',
    keep(hex64, (o, v) => (o.prev = v)),
    true,
  ),
]);

/** The header keys the scanner knows, for the test that compares them with the zod schema's. */
export const SCANNED_HEADER_KEYS = [
  'id',
  'ts',
  'received_ts',
  'agent',
  'user',
  'principal',
  'delegation',
  'subject',
  'recorder',
  'source',
  'env',
  'tenant',
  'parent',
  'resource',
  'action',
  'outcome',
  'policy',
  'approvals',
  'record_class',
  'data_categories',
  'artifacts',
  'v',
  'stream',
  'seq',
  'kind',
  'payload_digest',
  'prev',
] as const;

/**
 * The fields of a header that is canonical and schema-valid; undefined for anything else (the
 * caller then finds out what is wrong the slow way).
 */
export function scanHeader(t: string): HeaderFields | undefined {
  const out: HeaderFields = {
    id: '',
    ts: '',
    stream: '',
    seq: 0,
    kind: '',
    agent: '',
    resource: null,
    action: null,
    outcome: null,
    payload_digest: '',
    prev: '',
    received_ts: undefined,
    artifacts: NO_ARTIFACTS,
  };
  const c: Cursor = { t, i: 0, s0: 0, s1: 0, len: 0, esc: false, out };
  if (!header(c) || c.i !== t.length) return undefined;
  return out;
}
