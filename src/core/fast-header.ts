import type { z } from 'zod';
import { ASK_ZOD, compileObject, type Check } from './fast-check.js';
import { EventHeader, EventInput, SCHEMA_VERSION } from './event.js';

/**
 * The event header on the write path: checked by checks compiled from EventInput (fast-check.ts)
 * and written as JCS without sorting or a generic serialiser.
 *
 * The compiled check copies the header with every object's members in JCS order and only
 * well-formed strings, so JSON.stringify of that copy is its JCS text (see encodeJcs in
 * canonical-json.ts for why). The header's member names are known in advance; they are split once
 * here around `prev` and `seq`, the two members known only under the write lock.
 */

type Option = z.core.$ZodType;

/** One compiled check per kind: the header copied, `data` (already a plain copy) only checked. */
const BY_KIND: ReadonlyMap<unknown, Check> = new Map(
  (EventInput._zod.def.options as unknown as Option[]).map((o) => {
    const kind = [...(((o._zod.def as unknown as { shape: Record<string, Option> }).shape['kind']!._zod.values as Set<unknown> | undefined) ?? [])][0];
    return [kind, compileObject(o, 'copy', ['data'])] as const;
  }),
);

/**
 * The header copy of an event input (`{ ...input, data: plainCopy }`) when the compiled check
 * accepts it, which means zod accepts it too; undefined means "ask zod" (invalid, or undecided).
 */
export function fastHeader(input: Record<string, unknown>): Record<string, unknown> | undefined {
  const check = BY_KIND.get(input['kind']);
  if (check === undefined) return undefined;
  const r = check(input);
  return r === ASK_ZOD ? undefined : (r as Record<string, unknown>);
}

const HEADER_KEYS = Object.keys(EventHeader.shape).sort();
const BEFORE_PREV = HEADER_KEYS.filter((k) => k < 'prev');
const BETWEEN_PREV_AND_SEQ = HEADER_KEYS.filter((k) => k > 'prev' && k < 'seq');
const AFTER_SEQ = HEADER_KEYS.filter((k) => k > 'seq');

/** Header members no index-like name could break the stringify-is-JCS equality: checked once. */
if (HEADER_KEYS.some((k) => /^[0-9]/.test(k))) throw new Error('A header member name starts with a digit; fast-header.ts cannot encode it.');

/**
 * The JCS members of a header copied by `fastHeader` (plus the generated id, ts and
 * payload_digest), split around `prev` and `seq`. `stream` must be well-formed.
 */
export function fastHeaderParts(fields: Record<string, unknown>, stream: string): { beforePrev: string; betweenPrevAndSeq: string; afterSeq: string } {
  return {
    beforePrev: members(fields, BEFORE_PREV, stream),
    betweenPrevAndSeq: members(fields, BETWEEN_PREV_AND_SEQ, stream),
    afterSeq: members(fields, AFTER_SEQ, stream),
  };
}

function members(fields: Record<string, unknown>, keys: readonly string[], stream: string): string {
  let out = '';
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const v = k === 'stream' ? stream : k === 'v' ? SCHEMA_VERSION : fields[k];
    if (v === undefined) continue;
    if (out !== '') out += ',';
    out += PREFIX[k]!;
    out += typeof v === 'string' ? (PLAIN_TEXT.has(k) ? `"${v}"` : quote(v)) : JSON.stringify(v);
  }
  return out;
}

/** `"name":` of every header member. */
const PREFIX: Readonly<Record<string, string>> = Object.fromEntries(HEADER_KEYS.map((k) => [k, `${JSON.stringify(k)}:`]));

/**
 * Members whose text never needs escaping: their schemas admit only hex, digits, letters, `-`,
 * `.`, `:` (ids, times, digests, kinds, outcomes), and the generated ones are made that way.
 * test/core/fast-check.test.ts checks the schemas still say so.
 */
export const PLAIN_TEXT: ReadonlySet<string> = new Set(['id', 'ts', 'received_ts', 'parent', 'kind', 'outcome', 'payload_digest']);

const NEEDS_ESCAPE = /["\\\u0000-\u001f]/;

/** JSON.stringify of a well-formed string, without the call when nothing needs escaping. */
function quote(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}
