import { v7 as uuidv7 } from 'uuid';
import { canonicalize } from './canonical-json.js';
import { eventHash, newSalt, payloadDigest } from './chain.js';
import { WitnessError } from './errors.js';
import { EventInput, SCHEMA_VERSION, formatPath, type EventHeader } from './event.js';

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
  const what = issue?.message ?? 'is invalid';
  throw new WitnessError('invalid_event', `Invalid event: ${where} ${lowerFirst(what)}; fix that field and record it again.`, {
    details: { path: where, issues: r.error.issues.slice(0, 5).map((i) => ({ path: formatPath(i.path), message: i.message })) },
    cause: r.error,
  });
}

export function prepareEvent(stream: unknown, input: unknown, opts: PrepareOptions = {}): PreparedEvent {
  if (typeof stream !== 'string' || stream.length === 0 || stream.length > 512) {
    throw new WitnessError('invalid_event', 'Invalid event: stream must be a non-empty string of at most 512 characters; pass the session id.', {
      details: { path: 'stream' },
    });
  }
  const ev = parseEventInput(input);
  const { data, ...rest } = ev;
  const canonicalData = canonicalizeAt(data, 'data');
  const limit = opts.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  const size = Buffer.byteLength(canonicalData, 'utf8');
  if (size > limit) {
    throw new WitnessError(
      'payload_too_large',
      `The ${ev.kind} payload is ${size} bytes, over the ${limit}-byte limit; store large content as an artifact and reference it, or raise maxPayloadBytes.`,
      { details: { bytes: size, limit, kind: ev.kind } },
    );
  }
  const salt = newSalt();
  const now = opts.now?.() ?? new Date();
  const fields = {
    ...rest,
    id: rest.id ?? uuidv7({ msecs: now.getTime() }),
    ts: rest.ts ?? now.toISOString(),
    payload_digest: payloadDigest(salt, canonicalData).toString('hex'),
  } as PreparedEvent['fields'];
  return { stream, fields, data: data as Record<string, unknown>, canonicalData, salt };
}

/** Re-commits a payload that the store completed inside its transaction (session.end's tail). */
export function recommitPayload(ev: PreparedEvent, data: Record<string, unknown>): void {
  ev.data = data;
  ev.canonicalData = canonicalizeAt(data, 'data');
  ev.fields.payload_digest = payloadDigest(ev.salt, ev.canonicalData).toString('hex');
}

export interface ChainedEvent {
  header: EventHeader;
  canonicalHeader: string;
  hash: Buffer;
}

/** Places a prepared event at `seq` after `prev` and computes its hash. */
export function chainEvent(ev: PreparedEvent, seq: number, prev: Buffer): ChainedEvent {
  const header = { ...ev.fields, v: SCHEMA_VERSION, stream: ev.stream, seq, prev: prev.toString('hex') } as EventHeader;
  const canonicalHeader = canonicalize(header);
  return { header, canonicalHeader, hash: eventHash(prev, canonicalHeader) };
}

function canonicalizeAt(value: unknown, path: string): string {
  return canonicalize(value, { path });
}

function lowerFirst(s: string): string {
  return s.length > 0 ? s[0]!.toLowerCase() + s.slice(1) : s;
}
