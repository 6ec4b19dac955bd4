import { canonicalize, encodeJcs, isWellFormedString, prototypesHaveToJSON, type Encoded } from './canonical-json.js';
import { eventHashHex, newSalt, payloadDigestHex } from './chain.js';
import { WitnessError } from './errors.js';
import { EVENT_KINDS, EventInput, SCHEMA_VERSION, formatPath, isCalendarInstant, type EventHeader, type EventKind } from './event.js';
import { fastHeader, fastHeaderParts } from './fast-header.js';
import { isoAt, uuidv7At } from './ids.js';

export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;

/**
 * An event validated and committed to its payload, waiting for its place in a stream. Everything
 * that does not depend on `seq`/`prev` is done here, outside the store's write lock.
 */
export interface PreparedEvent {
  stream: string;
  /** Header fields except v, seq, prev (filled at append time). */
  fields: Omit<EventHeader, 'v' | 'seq' | 'prev' | 'stream'>;
  data: Record<string, unknown>;
  canonicalData: string;
  salt: Buffer;
  /**
   * The canonical header without `prev` and `seq`, split where those two keys sort in, so that
   * placing the event under the write lock is string concatenation plus one SHA-256.
   */
  headerParts: HeaderParts;
}

/** JCS members of the header: before "prev", between "prev" and "seq", after "seq". */
export interface HeaderParts {
  beforePrev: string;
  betweenPrevAndSeq: string;
  afterSeq: string;
}

export interface PrepareOptions {
  maxPayloadBytes?: number;
  now?: () => Date;
}

/** Validates an event input and names the first offending field in one sentence. */
export function parseEventInput(input: unknown): EventInput {
  const r = EventInput.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const where = issue ? formatPath(issue.path) : '(event)';
  const kind = (input as { kind?: unknown } | null)?.kind;
  // zod's own text for a bad discriminator lists every kind in a second sentence; say it in one.
  const badKind = typeof input === 'object' && input !== null && !EVENT_KINDS.includes(kind as EventKind);
  const what = badKind
    ? `kind ${JSON.stringify(kind) ?? 'undefined'} is not an event kind (use one of ${EVENT_KINDS.join(', ')})`
    : `${where} ${lowerFirst((issue?.message ?? 'is invalid').replace(/\s+/g, ' ').replace(/\.+$/, ''))}`;
  throw new WitnessError('invalid_event', `Invalid event: ${what}; fix that field and record it again.`, {
    details: { path: badKind ? 'kind' : where, issues: r.error.issues.slice(0, 5).map((i) => ({ path: formatPath(i.path), message: i.message })) },
    cause: r.error,
  });
}

export function prepareEvent(stream: unknown, input: unknown, opts: PrepareOptions = {}): PreparedEvent {
  if (typeof stream !== 'string' || stream.length === 0 || stream.length > 512) {
    throw new WitnessError('invalid_event', 'Invalid event: stream must be a non-empty string of at most 512 characters; pass the session id.', {
      details: { path: 'stream' },
    });
  }
  // zod builds its output by assignment, which drops a "__proto__" member (JSON data like any
  // other) from every object it copies. So the payload is made plain JSON first (one walk that
  // also writes its JCS text), only that copy is checked, and the copy is what is hashed and
  // stored: exactly what the caller recorded.
  const given = typeof input === 'object' && input !== null ? (input as { data?: unknown }).data : undefined;
  const encoded: Encoded | undefined = typeof given === 'object' && given !== null ? encodeJcs(given, { path: 'data' }) : undefined;
  const withData = encoded === undefined ? input : { ...(input as object), data: encoded.value };
  // The compiled check accepts only what zod accepts and copies the header in JCS order; anything
  // it does not accept (invalid, or beyond what it decides) goes to zod, which also names the field.
  const fast = encoded !== undefined && isWellFormedString(stream) && !prototypesHaveToJSON() ? fastHeader(withData as Record<string, unknown>) : undefined;
  let kind: EventKind;
  let rest: Record<string, unknown>;
  let data: unknown;
  let canonicalData: string;
  if (fast !== undefined) {
    rest = fast;
    kind = fast['kind'] as EventKind;
    data = encoded!.value;
    canonicalData = encoded!.text;
  } else {
    const { data: checked, ...others } = parseEventInput(withData);
    rest = others;
    kind = others.kind;
    data = encoded?.value ?? checked;
    canonicalData = encoded?.text ?? canonicalizeAt(checked, 'data');
  }
  for (const field of ['ts', 'received_ts'] as const) {
    const t = rest[field];
    if (typeof t === 'string' && !isCalendarInstant(t)) {
      throw new WitnessError(
        'invalid_event',
        `Invalid event: ${field} ${JSON.stringify(t)} is not a real calendar instant (a second is 00–59, an hour 00–23, the day must exist in its month); fix that field and record it again.`,
        { details: { path: field } },
      );
    }
  }
  const limit = opts.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  // One UTF-8 byte per UTF-16 unit at least, three at most: the exact count only when in doubt.
  const size = canonicalData.length * 3 <= limit ? canonicalData.length : Buffer.byteLength(canonicalData, 'utf8');
  if (size > limit) {
    throw new WitnessError('payload_too_large', `The ${kind} payload is ${size} bytes, over the ${limit}-byte limit; store large content as an artifact and reference it, or raise maxPayloadBytes.`, {
      details: { bytes: size, limit, kind },
    });
  }
  const salt = newSalt();
  const now = opts.now === undefined ? Date.now() : opts.now().getTime();
  if (rest['ts'] === undefined) rest['ts'] = isoAt(now);
  if (rest['id'] === undefined) rest['id'] = uuidv7At(now);
  rest['payload_digest'] = payloadDigestHex(salt, canonicalData);
  const fields = rest as PreparedEvent['fields'];
  const parts = fast !== undefined ? fastHeaderParts(rest, stream) : headerParts(fields, stream);
  return { stream, fields, data: data as Record<string, unknown>, canonicalData, salt, headerParts: parts };
}

/** Re-commits a payload that the store completed inside its transaction (session.end's tail). */
export function recommitPayload(ev: PreparedEvent, data: Record<string, unknown>): void {
  ev.data = data;
  ev.canonicalData = canonicalizeAt(data, 'data');
  ev.fields.payload_digest = payloadDigestHex(ev.salt, ev.canonicalData);
  ev.headerParts = headerParts(ev.fields, ev.stream);
}

/**
 * JCS sorts members by key (UTF-16 code units, which is what Array#sort compares), so the header
 * is its sorted members joined; only `prev` and `seq` are unknown until the write lock is held.
 * test/core/build.test.ts proves the result equals canonicalize() of the whole header.
 */
function headerParts(fields: PreparedEvent['fields'], stream: string): HeaderParts {
  const all: Record<string, unknown> = { ...fields, stream, v: SCHEMA_VERSION };
  const keys = Object.keys(all).sort();
  const before: string[] = [];
  const between: string[] = [];
  const after: string[] = [];
  for (const k of keys) {
    const v = all[k];
    if (v === undefined) continue;
    const member = `${JSON.stringify(k)}:${typeof v === 'string' && isWellFormedString(v) ? JSON.stringify(v) : canonicalize(v, { path: k })}`;
    if (k < 'prev') before.push(member);
    else if (k < 'seq') between.push(member);
    else after.push(member);
  }
  return { beforePrev: before.join(','), betweenPrevAndSeq: between.join(','), afterSeq: after.join(',') };
}

export interface ChainedEvent {
  canonicalHeader: string;
  hash: Buffer;
  /** `hash` as lowercase hex, for receipts (converting the Buffer again costs ~0.3 µs). */
  hashHex: string;
}

/** Places a prepared event at `seq` after `prev` and computes its hash. */
export function chainEvent(ev: PreparedEvent, seq: number, prev: Buffer): ChainedEvent {
  const { beforePrev, betweenPrevAndSeq, afterSeq } = ev.headerParts;
  // "agent", "id", "kind" and "payload_digest" always sort before "prev"; "stream", "ts", "v" after "seq".
  const canonicalHeader = `{${beforePrev},"prev":"${prev.toString('hex')}"${betweenPrevAndSeq === '' ? '' : `,${betweenPrevAndSeq}`},"seq":${seq},${afterSeq}}`;
  // Hex out of crypto.hash and a Buffer made from it costs less than a Buffer out of crypto.hash.
  const hashHex = eventHashHex(prev, canonicalHeader);
  return { canonicalHeader, hash: Buffer.from(hashHex, 'hex'), hashHex };
}

/** The full header object of a chained event (for callers that need it, not the write path). */
export function headerObject(ev: PreparedEvent, seq: number, prev: Buffer): EventHeader {
  return { ...ev.fields, v: SCHEMA_VERSION, stream: ev.stream, seq, prev: prev.toString('hex') } as EventHeader;
}

function canonicalizeAt(value: unknown, path: string): string {
  return canonicalize(value, { path });
}

function lowerFirst(s: string): string {
  return s.length > 0 ? s[0]!.toLowerCase() + s.slice(1) : s;
}
